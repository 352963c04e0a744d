//! Compression of image chunks on the link: none, LZ4 (`lz4_flex`, block format) or Zstandard
//! (`zstd`, level 1), each chunk compressed alone and tagged with its codec.
//!
//! # `--compress auto`
//!
//! [`AutoCodec`] picks per chunk, by the rule: a codec is worth it when it moves raw bytes
//! faster than sending them as they are, i.e. for codec `c` with compression speed `s_c` (raw
//! bytes per second on this CPU, one thread) and ratio `r_c` (compressed / raw), both measured
//! on the image itself, the effective rate is `min(s_c, link / r_c)`; `none`'s is `link`. The
//! largest wins. The link's rate is what the sender measures while sending (bytes over the time
//! spent waiting in `send`), at first the last one measured on this peer, or
//! [`DEFAULT_LINK_BPS`] (gigabit Ethernet) when there is none. Every codec is tried on the
//! first chunk and again every [`PROBE_EVERY`] chunks (memory differs across an image), and
//! the choice is revised then with the latest link rate. A chunk that does not shrink goes
//! raw whatever was chosen.

use std::time::Instant;

use zos_netproto::migration::{Codec, IMAGE_CHUNK};

/// The link rate assumed before any was measured: gigabit Ethernet's payload.
pub const DEFAULT_LINK_BPS: f64 = 117e6;
/// Chunks between two probes of every codec.
pub const PROBE_EVERY: usize = 32;
/// Zstandard's level: its fastest regular one.
const ZSTD_LEVEL: i32 = 1;

/// Compresses chunks (one per thread: it keeps its buffers and the zstd context).
pub struct Encoder {
    zstd: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl Encoder {
    /// A new encoder.
    pub fn new() -> Encoder {
        Encoder {
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context"),
            out: Vec::new(),
        }
    }

    /// `raw` as an encoded `MoveMessage::Image`, compressed with `codec` (raw when that would
    /// not shrink it); the codec used.
    pub fn encode_message(&mut self, codec: Codec, raw: &[u8]) -> (Codec, Vec<u8>) {
        let raw_len = raw.len() as u32;
        if codec == Codec::None {
            return (Codec::None, image_message(Codec::None, raw_len, raw));
        }
        match self.compress(codec, raw) {
            Some(n) => (codec, image_message(codec, raw_len, &self.out[..n])),
            None => (Codec::None, image_message(Codec::None, raw_len, raw)),
        }
    }

    /// Compresses `raw` into the scratch buffer; its length if that shrank it.
    fn compress(&mut self, codec: Codec, raw: &[u8]) -> Option<usize> {
        let n = match codec {
            Codec::None => return None,
            Codec::Lz4 => {
                self.out
                    .resize(lz4_flex::block::get_maximum_output_size(raw.len()), 0);
                lz4_flex::block::compress_into(raw, &mut self.out).ok()?
            }
            Codec::Zstd => {
                self.out
                    .resize(zstd::zstd_safe::compress_bound(raw.len()), 0);
                self.zstd.compress_to_buffer(raw, &mut self.out[..]).ok()?
            }
        };
        (n < raw.len()).then_some(n)
    }

    /// `raw` compressed with `codec`; raw itself (tagged [`Codec::None`]) when it would not
    /// shrink.
    pub fn encode(&mut self, codec: Codec, raw: &[u8]) -> (Codec, Vec<u8>) {
        match self.compress(codec, raw) {
            Some(n) => (codec, self.out[..n].to_vec()),
            None => (Codec::None, raw.to_vec()),
        }
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

/// Decompresses chunks from a peer: every length is checked, nothing grows beyond what the
/// chunk announced (at most [`IMAGE_CHUNK`]).
pub struct Decoder {
    zstd: zstd::bulk::Decompressor<'static>,
}

impl Decoder {
    /// A new decoder.
    pub fn new() -> Decoder {
        Decoder {
            zstd: zstd::bulk::Decompressor::new().expect("a zstd context"),
        }
    }

    /// Appends the `raw_len` bytes that `data` decodes to (with `codec`) to `out`.
    pub fn decode_into(
        &mut self,
        codec: Codec,
        data: &[u8],
        raw_len: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let raw_len = raw_len as usize;
        if raw_len == 0 || raw_len > IMAGE_CHUNK {
            return Err(format!("an image chunk of {raw_len} bytes"));
        }
        let start = out.len();
        if codec == Codec::None {
            if data.len() != raw_len {
                return Err("a raw image chunk of the wrong length".into());
            }
            out.extend_from_slice(data);
            return Ok(());
        }
        out.resize(start + raw_len, 0);
        let dest = &mut out[start..];
        let got = match codec {
            Codec::Lz4 => lz4_flex::block::decompress_into(data, dest).map_err(|e| e.to_string()),
            Codec::Zstd => self
                .zstd
                .decompress_to_buffer(data, dest)
                .map_err(|e| e.to_string()),
            Codec::None => unreachable!("handled above"),
        };
        match got {
            Ok(n) if n == raw_len => Ok(()),
            Ok(n) => {
                out.truncate(start);
                Err(format!(
                    "a {} chunk decoded to {n} bytes, not {raw_len}",
                    codec.name()
                ))
            }
            Err(e) => {
                out.truncate(start);
                Err(format!("a {} chunk does not decode: {e}", codec.name()))
            }
        }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

/// What one probe measured of a codec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// Raw bytes per second it compresses.
    pub speed_bps: f64,
    /// Compressed size over raw size.
    pub ratio: f64,
}

/// The `auto` choice (see the module docs).
#[derive(Debug)]
pub struct AutoCodec {
    link_bps: f64,
    lz4: Option<Probe>,
    zstd: Option<Probe>,
    chosen: Codec,
    since_probe: usize,
}

impl AutoCodec {
    /// Starts with a link of `link_bps` (the last measured on this peer, or
    /// [`DEFAULT_LINK_BPS`]).
    pub fn new(link_bps: f64) -> AutoCodec {
        AutoCodec {
            link_bps: link_bps.max(1e6),
            lz4: None,
            zstd: None,
            chosen: Codec::None,
            since_probe: 0,
        }
    }

    /// The link rate measured lately.
    pub fn set_link_rate(&mut self, bps: f64) {
        if bps.is_finite() && bps > 0.0 {
            self.link_bps = bps.max(1e6);
        }
    }

    /// Encodes the next chunk as an image message: probing every codec when due, else with
    /// the one chosen.
    pub fn encode_message(&mut self, enc: &mut Encoder, raw: &[u8]) -> (Codec, Vec<u8>) {
        if self.since_probe % PROBE_EVERY != 0 {
            self.since_probe += 1;
            return enc.encode_message(self.chosen, raw);
        }
        self.since_probe = 1;
        for codec in [Codec::Lz4, Codec::Zstd] {
            let t = Instant::now();
            let n = enc.compress(codec, raw);
            let secs = t.elapsed().as_secs_f64().max(1e-6);
            let probe = Probe {
                speed_bps: raw.len() as f64 / secs,
                ratio: n.map_or(1.0, |n| n as f64 / raw.len().max(1) as f64),
            };
            match codec {
                Codec::Lz4 => self.lz4 = Some(probe),
                _ => self.zstd = Some(probe),
            }
        }
        self.chosen = pick(self.link_bps, self.lz4, self.zstd);
        enc.encode_message(self.chosen, raw)
    }
}

/// The codec with the largest effective rate (module docs).
pub fn pick(link_bps: f64, lz4: Option<Probe>, zstd: Option<Probe>) -> Codec {
    let effective = |p: Probe| p.speed_bps.min(link_bps / p.ratio.max(1e-3));
    let mut best = (Codec::None, link_bps);
    for (codec, probe) in [(Codec::Lz4, lz4), (Codec::Zstd, zstd)] {
        if let Some(p) = probe
            && p.ratio < 1.0
            && effective(p) > best.1
        {
            best = (codec, effective(p));
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_like(n: usize) -> Vec<u8> {
        // Half zero pages, half text-like bytes: what process memory often is.
        (0..n)
            .map(|i| {
                if (i / 4096) % 2 == 0 {
                    0
                } else {
                    b"the quick brown fox "[i % 20]
                }
            })
            .collect()
    }

    #[test]
    fn every_codec_roundtrips_and_raw_is_used_when_nothing_shrinks() {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new();
        let data = memory_like(IMAGE_CHUNK);
        for codec in Codec::ALL {
            let (used, packed) = enc.encode(codec, &data);
            assert_eq!(used, codec);
            let mut out = vec![9, 9];
            dec.decode_into(used, &packed, data.len() as u32, &mut out)
                .unwrap();
            assert_eq!(&out[2..], &data[..]);
        }
        // Random bytes do not compress: they go raw.
        let mut x = 0x1234_5678_u64;
        let noise: Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(enc.encode(Codec::Zstd, &noise).0, Codec::None);
    }

    #[test]
    fn hostile_chunks_are_refused_without_growing_anything() {
        let mut dec = Decoder::new();
        let mut enc = Encoder::new();
        let (_, packed) = enc.encode(Codec::Zstd, &vec![0u8; IMAGE_CHUNK]);
        let mut out = Vec::new();
        // Announced smaller than it decodes to: refused, nothing appended.
        assert!(
            dec.decode_into(Codec::Zstd, &packed, 4096, &mut out)
                .is_err()
        );
        assert!(out.is_empty());
        // Larger than a chunk may be.
        let too_big = (IMAGE_CHUNK + 1) as u32;
        assert!(
            dec.decode_into(Codec::Lz4, &[0], too_big, &mut out)
                .is_err()
        );
        // Garbage.
        assert!(
            dec.decode_into(Codec::Lz4, &[0xff; 10], 100, &mut out)
                .is_err()
        );
        assert!(
            dec.decode_into(Codec::Zstd, &[0xff; 10], 100, &mut out)
                .is_err()
        );
        assert!(dec.decode_into(Codec::None, &[1, 2], 3, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn auto_sends_raw_on_a_fast_link_and_compresses_on_a_slow_one() {
        let fast = Probe {
            speed_bps: 2e9,
            ratio: 0.3,
        };
        let slow = Probe {
            speed_bps: 5e8,
            ratio: 0.2,
        };
        // 10 GB/s link: no codec keeps up.
        assert_eq!(pick(1e10, Some(fast), Some(slow)), Codec::None);
        // 1 GB/s: lz4 moves 2 GB/s of raw bytes (min(2e9, 1e9/0.3)), zstd 0.5.
        assert_eq!(pick(1e9, Some(fast), Some(slow)), Codec::Lz4);
        // 50 MB/s: zstd's better ratio wins (0.25 GB/s vs 0.17).
        assert_eq!(pick(5e7, Some(fast), Some(slow)), Codec::Zstd);
        // Nothing shrinks: raw.
        let useless = Probe {
            speed_bps: 1e9,
            ratio: 1.0,
        };
        assert_eq!(pick(1e6, Some(useless), Some(useless)), Codec::None);
    }

    #[test]
    fn auto_probes_then_keeps_its_choice_between_probes() {
        let mut enc = Encoder::new();
        let mut auto = AutoCodec::new(1e6);
        let data = memory_like(IMAGE_CHUNK);
        let (first, message) = auto.encode_message(&mut enc, &data);
        // On a 1 MB/s link compressing always pays.
        assert_ne!(first, Codec::None);
        let (codec, raw_len, packed) = parse_image(&bytes::Bytes::from(message)).unwrap();
        let mut out = Vec::new();
        Decoder::new()
            .decode_into(codec, &packed, raw_len, &mut out)
            .unwrap();
        assert_eq!(out, data);
        for _ in 1..PROBE_EVERY {
            assert_eq!(auto.encode_message(&mut enc, &data).0, first);
        }
        auto.set_link_rate(1e12);
        // The next probe sees a link faster than any codec.
        assert_eq!(auto.encode_message(&mut enc, &data).0, Codec::None);
    }
}

/// The postcard variant index of `MoveMessage::Image`.
const IMAGE_VARIANT: u8 = 4;

/// Encodes `MoveMessage::Image { codec, raw_len, data }` exactly as postcard does, with one
/// copy of `data` (the message is 1 MiB: the image goes through here a megabyte at a time).
pub fn image_message(codec: Codec, raw_len: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    out.push(IMAGE_VARIANT);
    out.push(codec_index(codec));
    push_varint(&mut out, raw_len as u64);
    push_varint(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

/// The parts of an encoded `MoveMessage::Image` without copying its data; `None` if the
/// message is another one (or not well formed: the caller decodes it the slow way).
pub fn parse_image(message: &bytes::Bytes) -> Option<(Codec, u32, bytes::Bytes)> {
    let b = message.as_ref();
    if b.first() != Some(&IMAGE_VARIANT) {
        return None;
    }
    let codec = match b.get(1)? {
        0 => Codec::None,
        1 => Codec::Lz4,
        2 => Codec::Zstd,
        _ => return None,
    };
    let mut at = 2;
    let raw_len = u32::try_from(read_varint(b, &mut at)?).ok()?;
    let len = usize::try_from(read_varint(b, &mut at)?).ok()?;
    if b.len() != at.checked_add(len)? {
        return None;
    }
    Some((codec, raw_len, message.slice(at..)))
}

fn codec_index(codec: Codec) -> u8 {
    match codec {
        Codec::None => 0,
        Codec::Lz4 => 1,
        Codec::Zstd => 2,
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod message_tests {
    use super::*;
    use zos_netproto::migration::MoveMessage;

    #[test]
    fn image_messages_are_postcards_and_parse_back_without_copies() {
        for (codec, raw_len, len) in [
            (Codec::None, 1u32, 1usize),
            (Codec::Lz4, 127, 128),
            (Codec::Zstd, 1 << 20, 300_000),
            (Codec::None, IMAGE_CHUNK as u32, IMAGE_CHUNK),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let ours = image_message(codec, raw_len, &data);
            let theirs = postcard::to_stdvec(&MoveMessage::Image {
                codec,
                raw_len,
                data: data.clone(),
            })
            .unwrap();
            assert_eq!(ours, theirs);
            let (c, r, d) = parse_image(&bytes::Bytes::from(ours)).unwrap();
            assert_eq!((c, r, &d[..]), (codec, raw_len, &data[..]));
        }
        let other = postcard::to_stdvec(&MoveMessage::ImageEnd { raw_bytes: 3 }).unwrap();
        assert!(parse_image(&bytes::Bytes::from(other)).is_none());
        // Truncated or padded: not taken for an image.
        let mut bad = image_message(Codec::None, 4, b"abcd");
        bad.pop();
        assert!(parse_image(&bytes::Bytes::from(bad)).is_none());
        let mut bad = image_message(Codec::None, 4, b"abcd");
        bad.push(0);
        assert!(parse_image(&bytes::Bytes::from(bad)).is_none());
    }
}
