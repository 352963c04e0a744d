//! Pixel formats a fan-out serves: the upstream's own (Xvnc's 32-bit BGRx, copied as is) and
//! any other true-colour 32 bits-per-pixel format a viewer asks for (converted per pixel).

use vnc::PixelFormat;

use crate::error::{DisplayError, Result};
use crate::framebuffer::wire_format;

/// How the stored pixels (the wire format: bytes blue, green, red, padding) become a viewer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Converter {
    /// The viewer's format is the stored one: rows are copied.
    Same,
    /// Each pixel is rebuilt: channel values scaled to the viewer's maxima and shifted.
    Convert {
        /// Maxima of red, green, blue.
        max: [u32; 3],
        /// Shifts of red, green, blue.
        shift: [u32; 3],
        /// Whether the viewer wants the 32-bit value big-endian.
        big_endian: bool,
    },
}

/// The 16 bytes of a PIXEL_FORMAT.
pub(crate) fn to_wire(format: PixelFormat) -> Vec<u8> {
    format.into()
}

impl Converter {
    /// The converter for a viewer that asked for `format` (the 16 bytes of SetPixelFormat);
    /// refuses what is not true colour at 32 bits per pixel.
    pub(crate) fn for_format(bytes: [u8; 16]) -> Result<Converter> {
        let format = PixelFormat::try_from(bytes)
            .map_err(|_| DisplayError::PixelFormat(format!("invalid format {bytes:?}")))?;
        if format.true_color_flag == 0 {
            return Err(DisplayError::PixelFormat(
                "colour maps are not served; ask for true colour".into(),
            ));
        }
        if format.bits_per_pixel != 32 {
            return Err(DisplayError::PixelFormat(format!(
                "{} bits per pixel are not served; ask for 32",
                format.bits_per_pixel
            )));
        }
        let native = wire_format();
        let same_layout = |f: &PixelFormat| {
            (f.big_endian_flag, f.red_max, f.green_max, f.blue_max)
                == (
                    native.big_endian_flag,
                    native.red_max,
                    native.green_max,
                    native.blue_max,
                )
                && (f.red_shift, f.green_shift, f.blue_shift)
                    == (native.red_shift, native.green_shift, native.blue_shift)
        };
        if same_layout(&format) {
            return Ok(Converter::Same);
        }
        Ok(Converter::Convert {
            max: [format.red_max, format.green_max, format.blue_max].map(u32::from),
            shift: [format.red_shift, format.green_shift, format.blue_shift].map(u32::from),
            big_endian: format.big_endian_flag != 0,
        })
    }

    /// One pixel from 8-bit red, green, blue, as the viewer's 4 bytes.
    pub(crate) fn pixel(&self, rgb: [u8; 3]) -> [u8; 4] {
        match *self {
            Converter::Same => [rgb[2], rgb[1], rgb[0], 0],
            Converter::Convert {
                max,
                shift,
                big_endian,
            } => {
                let mut value = 0u32;
                for i in 0..3 {
                    value |= ((u32::from(rgb[i]) * max[i] + 127) / 255) << shift[i];
                }
                if big_endian {
                    value.to_be_bytes()
                } else {
                    value.to_le_bytes()
                }
            }
        }
    }

    /// Appends `row` (stored pixels) to `out` in the viewer's format.
    pub(crate) fn extend(&self, out: &mut Vec<u8>, row: &[u8]) {
        match self {
            Converter::Same => out.extend_from_slice(row),
            Converter::Convert { .. } => {
                out.reserve(row.len());
                for p in row.chunks_exact(4) {
                    out.extend_from_slice(&self.pixel([p[2], p[1], p[0]]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(format: PixelFormat) -> [u8; 16] {
        to_wire(format).try_into().unwrap()
    }

    #[test]
    fn the_native_format_is_copied() {
        let c = Converter::for_format(bytes(wire_format())).unwrap();
        assert_eq!(c, Converter::Same);
        let mut out = Vec::new();
        c.extend(&mut out, &[1, 2, 3, 0, 4, 5, 6, 0]);
        assert_eq!(out, [1, 2, 3, 0, 4, 5, 6, 0]);
        assert_eq!(c.pixel([3, 2, 1]), [1, 2, 3, 0]);
    }

    #[test]
    fn rgba_and_big_endian_formats_are_converted() {
        let rgba = Converter::for_format(bytes(PixelFormat::rgba())).unwrap();
        let mut out = Vec::new();
        rgba.extend(&mut out, &[1, 2, 3, 0]);
        assert_eq!(out, [3, 2, 1, 0]);

        let mut be = bytes(wire_format());
        be[2] = 1;
        let be = Converter::for_format(be).unwrap();
        assert_eq!(be.pixel([0x30, 0x20, 0x10]), [0, 0x30, 0x20, 0x10]);
    }

    #[test]
    fn fewer_bits_per_channel_are_scaled() {
        // 32 bits per pixel, depth 15: 5 bits per channel, red at 10.
        let f: [u8; 16] = [32, 15, 0, 1, 0, 31, 0, 31, 0, 31, 10, 5, 0, 0, 0, 0];
        let c = Converter::for_format(f).unwrap();
        let v = u32::from_le_bytes(c.pixel([255, 0, 128]));
        assert_eq!((v >> 10, (v >> 5) & 31, v & 31), (31, 0, 16));
    }

    #[test]
    fn other_formats_are_refused_with_a_reason() {
        let mut eight = bytes(wire_format());
        eight[0] = 8;
        eight[1] = 8;
        eight[4..10].copy_from_slice(&[0, 7, 0, 7, 0, 3]);
        eight[10..13].copy_from_slice(&[0, 3, 6]);
        let e = Converter::for_format(eight).unwrap_err().to_string();
        assert!(e.contains("8 bits per pixel"), "{e}");
        let mut map = bytes(wire_format());
        map[3] = 0;
        let e = Converter::for_format(map).unwrap_err().to_string();
        assert!(e.contains("colour maps"), "{e}");
    }
}
