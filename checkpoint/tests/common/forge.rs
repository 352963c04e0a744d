//! What an attacker does to an image file: edit bytes or metadata and fix the CRCs (but not
//! the MAC: that needs the machine's key).

use zos_checkpoint::image::model::ProcessImage;

const HEADER: usize = 16;
const FRAME: usize = 16;
/// Kind of the metadata frame.
pub const META: u32 = 1;
/// Kind of a memory frame.
pub const PAGES: u32 = 2;

/// One frame of an image: where it starts, its kind and payload length.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub at: usize,
    pub kind: u32,
    pub len: usize,
}

impl Frame {
    /// Byte range of the payload.
    pub fn payload(&self) -> std::ops::Range<usize> {
        self.at + FRAME..self.at + FRAME + self.len
    }
}

/// The frames of a well-formed image, in order (including END and MAC).
pub fn frames(b: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut at = HEADER;
    while at + FRAME <= b.len() {
        let kind = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let len = u64::from_le_bytes(b[at + 4..at + 12].try_into().unwrap()) as usize;
        out.push(Frame { at, kind, len });
        at += FRAME + len;
    }
    out
}

/// Recompute the CRC of the frame at `f` after its payload was changed in place.
pub fn fix_crc(b: &mut [u8], f: Frame) {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[f.at..f.at + 12]);
    h.update(&b[f.payload()]);
    let crc = h.finalize();
    b[f.at + 12..f.at + 16].copy_from_slice(&crc.to_le_bytes());
}

/// Flip `mask` into byte `pos` and fix the CRC of the frame holding it (a header byte has none).
pub fn flip(b: &[u8], pos: usize, mask: u8) -> Vec<u8> {
    let mut out = b.to_vec();
    out[pos] ^= mask;
    if let Some(f) = frames(b).into_iter().find(|f| f.payload().contains(&pos)) {
        fix_crc(&mut out, f);
    }
    out
}

/// Decode the metadata, change it, and write it back with a correct length and CRC.
pub fn edit_meta(b: &[u8], edit: impl FnOnce(&mut ProcessImage)) -> Vec<u8> {
    let f = frames(b)[0];
    assert_eq!(f.kind, META);
    let mut meta: ProcessImage = postcard::from_bytes(&b[f.payload()]).expect("decode metadata");
    edit(&mut meta);
    let body = postcard::to_stdvec(&meta).unwrap();
    let mut out = b[..f.at + 4].to_vec();
    out.extend((body.len() as u64).to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(&body);
    out.extend(&b[f.payload().end..]);
    fix_crc(
        &mut out,
        Frame {
            at: f.at,
            kind: META,
            len: body.len(),
        },
    );
    out
}

/// Remove the signature: clear the header flag and drop the MAC frame.
pub fn unsign(b: &[u8]) -> Vec<u8> {
    let last = *frames(b).last().unwrap();
    let mut out = b[..last.at].to_vec();
    out[12] = 0;
    out
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
