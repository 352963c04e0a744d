//! The byte format of an image: a header and a sequence of checksummed frames.
//!
//! ```text
//! header  = "ZOSCKPT\0" (8 bytes) | version: u32 LE | flags: u32 LE
//!           flags: bit 0 = SIGNED (a MAC frame follows END); every other bit must be 0
//! frame   = kind: u32 LE | len: u64 LE | crc: u32 LE | payload (len bytes)
//!           crc = CRC-32 (IEEE) over kind, len and payload
//! kinds   = 1 META       payload: postcard-encoded `ProcessImage`, always the first frame
//!           2 PAGES      payload: address u64 LE | page bytes (a whole number of pages)
//!           3 FILE_DATA  payload: index u32 LE | content of a deleted-while-open file
//!           4 TREE       payload: postcard-encoded tree (pod images only), first frame
//!           5 OBJECT_DATA payload: index u32 LE | bytes of a shared object (pipe buffer, …)
//!           6 PRESENT    payload: (address u64 LE, length u64 LE)… — delta pod images only,
//!                        right after each META: the pages the process had (see below)
//!           7 PROC       payload: PID in the pod, i32 LE — rounds streams only
//!           0x21444e45 END  payload: number of frames before it, u64 LE
//!           0x2143414d MAC  payload: HMAC-SHA256 (32 bytes), with the writer's image key, of
//!                           every byte before this frame; present exactly when SIGNED
//! ```
//!
//! A single-process image ([`VERSION`]) is META, PAGES…, FILE_DATA…, END[, MAC]. A pod image
//! ([`TREE_VERSION`]) is TREE, then for each live process META and its PAGES…, then
//! OBJECT_DATA… in index order, then END[, MAC]. A **delta** pod image (header flag DELTA,
//! bit 1) holds only the pages written since a base (earlier pre-copy rounds or snapshots):
//! each META is followed by one PRESENT frame listing every page the process had with
//! content of its own; a listed page without a PAGES frame here keeps the base's content, an
//! unlisted page is zero (or the file's). A **rounds** stream ([`ROUNDS_VERSION`]: pre-copy)
//! is, per process, PROC then its PAGES…, then END. Frames are written strictly in this order,
//! so the same bytes can be written to a file or a socket and consumed as they arrive. The
//! CRCs catch accidents; only the MAC shows that this machine wrote the image.

use super::key::{ImageKey, ImageMac, KEY_LEN};
use super::model::ProcessImage;
use crate::error::{Error, Result};
use hmac::Mac;
use std::io::Write;

/// First eight bytes of every image.
pub const MAGIC: &[u8; 8] = b"ZOSCKPT\0";
/// Format version of a single-process image; any other is refused by [`parse`].
pub const VERSION: u32 = 2;
/// Format version of a pod image (a process tree); read by [`parse_tree`].
pub const TREE_VERSION: u32 = 3;
/// Format version of a pre-copy rounds stream (pages only); read by [`parse_rounds`].
pub const ROUNDS_VERSION: u32 = 4;
/// Header flag: the image ends with a MAC frame.
pub const FLAG_SIGNED: u32 = 1;
/// Header flag of a pod image: a delta over a base (see the module docs).
pub const FLAG_DELTA: u32 = 2;
const KNOWN_FLAGS: u32 = FLAG_SIGNED | FLAG_DELTA;
/// Length of the header.
pub const HEADER_LEN: usize = 16;
const FRAME_HDR: usize = 16;
const META: u32 = 1;
const PAGES: u32 = 2;
const FILE_DATA: u32 = 3;
const TREE: u32 = 4;
const OBJECT_DATA: u32 = 5;
const PRESENT: u32 = 6;
const PROC: u32 = 7;
const END: u32 = 0x2144_4e45;
const MAC: u32 = 0x2143_414d;

/// Writes an image stream.
pub struct ImageWriter<W: Write> {
    out: W,
    frames: u64,
    bytes: u64,
    mac: Option<ImageMac>,
}

impl<W: Write> ImageWriter<W> {
    /// Start a single-process stream (writes the header); with a key, the stream is signed.
    pub fn new(out: W, key: Option<&ImageKey>) -> std::io::Result<Self> {
        Self::with_version(out, key, VERSION)
    }

    /// Start a pod stream ([`TREE_VERSION`]); with a key, the stream is signed.
    pub fn new_tree(out: W, key: Option<&ImageKey>) -> std::io::Result<Self> {
        Self::with_version(out, key, TREE_VERSION)
    }

    /// Start a delta pod stream (see the module docs); with a key, the stream is signed.
    pub fn new_tree_delta(out: W, key: Option<&ImageKey>) -> std::io::Result<Self> {
        Self::with_flags(out, key, TREE_VERSION, FLAG_DELTA)
    }

    /// Start a pre-copy rounds stream ([`ROUNDS_VERSION`]).
    pub fn new_rounds(out: W) -> std::io::Result<Self> {
        Self::with_version(out, None, ROUNDS_VERSION)
    }

    fn with_version(out: W, key: Option<&ImageKey>, version: u32) -> std::io::Result<Self> {
        Self::with_flags(out, key, version, 0)
    }

    fn with_flags(
        mut out: W,
        key: Option<&ImageKey>,
        version: u32,
        extra: u32,
    ) -> std::io::Result<Self> {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&version.to_le_bytes());
        let flags = extra | if key.is_some() { FLAG_SIGNED } else { 0 };
        h[12..16].copy_from_slice(&flags.to_le_bytes());
        out.write_all(&h)?;
        let mut mac = key.map(ImageKey::mac);
        if let Some(m) = &mut mac {
            m.update(&h);
        }
        Ok(ImageWriter {
            out,
            frames: 0,
            bytes: HEADER_LEN as u64,
            mac,
        })
    }

    fn frame(&mut self, kind: u32, prefix: &[u8], body: &[u8]) -> std::io::Result<()> {
        let crc = frame_crc(kind, prefix, body);
        self.frame_with_crc(kind, prefix, body, crc)
    }

    fn frame_with_crc(
        &mut self,
        kind: u32,
        prefix: &[u8],
        body: &[u8],
        crc: u32,
    ) -> std::io::Result<()> {
        let len = (prefix.len() + body.len()) as u64;
        let mut hdr = [0u8; FRAME_HDR];
        hdr[..4].copy_from_slice(&kind.to_le_bytes());
        hdr[4..12].copy_from_slice(&len.to_le_bytes());
        hdr[12..16].copy_from_slice(&crc.to_le_bytes());
        if let Some(m) = &mut self.mac {
            m.update(&hdr);
            m.update(prefix);
            m.update(body);
        }
        self.out.write_all(&hdr)?;
        self.out.write_all(prefix)?;
        self.out.write_all(body)?;
        self.frames += 1;
        self.bytes += FRAME_HDR as u64 + len;
        Ok(())
    }

    /// The metadata frame (must come first).
    pub fn meta(&mut self, img: &ProcessImage) -> std::io::Result<()> {
        let bytes = postcard::to_stdvec(img).map_err(std::io::Error::other)?;
        self.frame(META, &[], &bytes)
    }

    /// Memory at `addr`.
    pub fn pages(&mut self, addr: u64, data: &[u8]) -> std::io::Result<()> {
        self.frame(PAGES, &addr.to_le_bytes(), data)
    }

    /// Memory at `addr` whose checksum was computed already with [`pages_crc`] (so that
    /// checksumming can run on another thread).
    pub fn pages_with_crc(&mut self, addr: u64, data: &[u8], crc: u32) -> std::io::Result<()> {
        self.frame_with_crc(PAGES, &addr.to_le_bytes(), data, crc)
    }

    /// The TREE frame of a pod stream (postcard bytes; must come first).
    pub fn tree(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.frame(TREE, &[], payload)
    }

    /// The PRESENT frame of a delta pod stream: `(address, length)` of every page range the
    /// process had.
    pub fn present(&mut self, ranges: &[(u64, usize)]) -> std::io::Result<()> {
        let mut body = Vec::with_capacity(ranges.len() * 16);
        for &(a, l) in ranges {
            body.extend_from_slice(&a.to_le_bytes());
            body.extend_from_slice(&(l as u64).to_le_bytes());
        }
        self.frame(PRESENT, &[], &body)
    }

    /// The PROC frame of a rounds stream: the pages that follow are process `pid`'s.
    pub fn proc_marker(&mut self, pid: i32) -> std::io::Result<()> {
        self.frame(PROC, &[], &pid.to_le_bytes())
    }

    /// Object data blob `index` of a pod stream.
    pub fn object_data(&mut self, index: u32, data: &[u8]) -> std::io::Result<()> {
        self.frame(OBJECT_DATA, &index.to_le_bytes(), data)
    }

    /// Content of saved file `index`.
    pub fn file_data(&mut self, index: u32, data: &[u8]) -> std::io::Result<()> {
        self.frame(FILE_DATA, &index.to_le_bytes(), data)
    }

    /// Write the END frame (and the MAC frame of a signed stream) and flush; returns the
    /// total bytes written.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        let n = self.frames;
        self.frame(END, &[], &n.to_le_bytes())?;
        if let Some(m) = self.mac.take() {
            let tag = m.finalize().into_bytes();
            self.frame(MAC, &[], &tag)?;
        }
        self.out.flush()?;
        Ok((self.out, self.bytes))
    }
}

fn frame_crc(kind: u32, prefix: &[u8], body: &[u8]) -> u32 {
    let len = (prefix.len() + body.len()) as u64;
    let mut h = crc32fast::Hasher::new();
    h.update(&kind.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(prefix);
    h.update(body);
    h.finalize()
}

/// Checksum of the PAGES frame for `data` at `addr`.
pub fn pages_crc(addr: u64, data: &[u8]) -> u32 {
    frame_crc(PAGES, &addr.to_le_bytes(), data)
}

/// A fully validated image, borrowing page data from the underlying bytes.
pub struct ParsedImage<'a> {
    /// The metadata.
    pub meta: ProcessImage,
    /// (address, bytes) of every saved memory range.
    pub pages: Vec<(u64, &'a [u8])>,
    /// Contents of deleted files, by index.
    pub files: Vec<&'a [u8]>,
    /// Delta pod images: `(address, length)` of every page the process had.
    pub present: Option<Vec<(u64, u64)>>,
    /// For a signed image: the bytes the MAC covers, and the MAC.
    pub signature: Option<(&'a [u8], &'a [u8])>,
}

impl ParsedImage<'_> {
    /// Whether the image carries a MAC made with `key` (this machine's key).
    pub fn signed_by(&self, key: &ImageKey) -> bool {
        self.signature
            .is_some_and(|(signed, tag)| key.verifies(signed, tag))
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadImage(msg.into())
}

/// One checked frame of a stream.
struct Frame<'a> {
    kind: u32,
    at: usize,
    body: &'a [u8],
}

/// The MAC of a signed image: (the bytes it covers, the tag).
type Signature<'a> = Option<(&'a [u8], &'a [u8])>;

/// Check the header (magic, `version`, flags), every frame's length and checksum, the END
/// frame and, for a signed image, the MAC frame's form; the frames before END, in order.
type Frames<'a> = (Vec<Frame<'a>>, Signature<'a>, u32);

fn frames(bytes: &[u8], version: u32) -> Result<Frames<'_>> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err(bad("not a ZOS checkpoint image (bad magic)"));
    }
    let found = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if found != version {
        let what = match found {
            VERSION => "a single-process image",
            TREE_VERSION => "a pod image",
            ROUNDS_VERSION => "pre-copy rounds",
            _ => "an unknown format",
        };
        return Err(bad(format!(
            "format version {found} ({what}), this reader takes version {version}"
        )));
    }
    let flags = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    if flags & !KNOWN_FLAGS != 0 {
        return Err(bad(format!(
            "unknown header flags {:#x}",
            flags & !KNOWN_FLAGS
        )));
    }
    let signed = flags & FLAG_SIGNED != 0;
    let mut signature = None;
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    let mut spans: Vec<(usize, u32, &[u8])> = Vec::new();
    loop {
        if bytes.len() - at < FRAME_HDR {
            return Err(bad(format!("truncated at byte {at} (no END frame)")));
        }
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap());
        let crc = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap());
        let body_at = at + FRAME_HDR;
        if len > (bytes.len() - body_at) as u64 {
            return Err(bad(format!(
                "truncated: frame at byte {at} needs {len} bytes"
            )));
        }
        let body = &bytes[body_at..body_at + len as usize];
        spans.push((at, crc, body));
        if kind == END {
            if body.len() != 8 || u64::from_le_bytes(body.try_into().unwrap()) != out.len() as u64 {
                return Err(bad("frame count mismatch"));
            }
            let end = body_at + 8;
            if signed {
                signature = Some(mac_frame(bytes, end)?);
            } else if end != bytes.len() {
                return Err(bad("trailing bytes after END"));
            }
            break;
        }
        out.push(Frame { kind, at, body });
        at = body_at + len as usize;
    }
    verify(bytes, &spans)?;
    Ok((out, signature, flags))
}

/// Check the header, every frame's checksum and the frame order; decode the metadata.
pub fn parse(bytes: &[u8]) -> Result<ParsedImage<'_>> {
    let (frames, signature, flags) = frames(bytes, VERSION)?;
    if flags & FLAG_DELTA != 0 {
        return Err(bad(
            "header flags: a single-process image cannot be a delta",
        ));
    }
    let mut it = frames.iter();
    let meta = match it.next() {
        Some(f) if f.kind == META => decode_meta(f.body)?,
        _ => return Err(bad("first frame is not the metadata")),
    };
    let mut pages = Vec::new();
    let mut files = Vec::new();
    for f in it {
        match f.kind {
            PAGES if f.body.len() >= 8 && files.is_empty() => pages.push(split_pages(f.body)),
            FILE_DATA if f.body.len() >= 4 => {
                let idx = u32::from_le_bytes(f.body[..4].try_into().unwrap());
                if idx as usize != files.len() {
                    return Err(bad("file contents out of order"));
                }
                files.push(&f.body[4..]);
            }
            k => return Err(unexpected(k, f.at)),
        }
    }
    Ok(ParsedImage {
        meta,
        pages,
        files,
        present: None,
        signature,
    })
}

fn unexpected(kind: u32, at: usize) -> Error {
    bad(format!("unexpected frame kind {kind:#x} at byte {at}"))
}

fn decode_meta(body: &[u8]) -> Result<ProcessImage> {
    postcard::from_bytes(body).map_err(|e| bad(format!("metadata does not decode: {e}")))
}

fn split_pages(body: &[u8]) -> (u64, &[u8]) {
    (
        u64::from_le_bytes(body[..8].try_into().unwrap()),
        &body[8..],
    )
}

/// A fully validated pod image: the TREE frame's payload (decoded by the tree module), each
/// saved process (metadata and pages, no FILE_DATA), and the object data blobs.
pub struct ParsedTree<'a> {
    /// Postcard bytes of the TREE frame.
    pub tree: &'a [u8],
    /// The processes with a META frame, in order.
    pub procs: Vec<ParsedImage<'a>>,
    /// OBJECT_DATA blobs by index.
    pub data: Vec<&'a [u8]>,
    /// A delta image: pages only where written since its base (see the module docs).
    pub delta: bool,
    /// For a signed image: the bytes the MAC covers, and the MAC.
    pub signature: Signature<'a>,
}

/// Check and split a pod image ([`TREE_VERSION`]): TREE, then per process META and PAGES,
/// then OBJECT_DATA in index order, then END (and MAC when signed).
pub fn parse_tree(bytes: &[u8]) -> Result<ParsedTree<'_>> {
    let (frames, signature, flags) = frames(bytes, TREE_VERSION)?;
    let delta = flags & FLAG_DELTA != 0;
    let mut it = frames.iter();
    let tree = match it.next() {
        Some(f) if f.kind == TREE => f.body,
        _ => return Err(bad("first frame is not the tree")),
    };
    let mut procs: Vec<ParsedImage<'_>> = Vec::new();
    let mut data = Vec::new();
    for f in it {
        match f.kind {
            META if data.is_empty() => procs.push(ParsedImage {
                meta: decode_meta(f.body)?,
                pages: Vec::new(),
                files: Vec::new(),
                present: None,
                signature: None,
            }),
            PRESENT
                if delta
                    && procs
                        .last()
                        .is_some_and(|p| p.present.is_none() && p.pages.is_empty()) =>
            {
                let last = procs.len() - 1;
                procs[last].present = Some(decode_present(f.body, f.at)?);
            }
            PAGES if f.body.len() >= 8 && data.is_empty() && !procs.is_empty() => {
                let last = procs.len() - 1;
                procs[last].pages.push(split_pages(f.body));
            }
            OBJECT_DATA if f.body.len() >= 4 => {
                let idx = u32::from_le_bytes(f.body[..4].try_into().unwrap());
                if idx as usize != data.len() {
                    return Err(bad("object data out of order"));
                }
                data.push(&f.body[4..]);
            }
            k => return Err(unexpected(k, f.at)),
        }
    }
    if delta && procs.iter().any(|p| p.present.is_none()) {
        return Err(bad("a delta image without the PRESENT frame of a process"));
    }
    Ok(ParsedTree {
        tree,
        procs,
        data,
        delta,
        signature,
    })
}

/// A PRESENT frame's ranges: page-aligned, non-empty, in order, not overlapping.
fn decode_present(body: &[u8], at: usize) -> Result<Vec<(u64, u64)>> {
    if body.len() % 16 != 0 {
        return Err(bad(format!(
            "PRESENT frame at byte {at} has a partial range"
        )));
    }
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(body.len() / 16);
    for c in body.chunks_exact(16) {
        let a = u64::from_le_bytes(c[..8].try_into().unwrap());
        let l = u64::from_le_bytes(c[8..].try_into().unwrap());
        let ok = a % 4096 == 0
            && l % 4096 == 0
            && l > 0
            && a.checked_add(l).is_some()
            && out.last().is_none_or(|&(pa, pl)| pa + pl <= a);
        if !ok {
            return Err(bad(format!(
                "PRESENT frame at byte {at}: range {a:#x}+{l:#x} misaligned, empty or out of order"
            )));
        }
        out.push((a, l));
    }
    Ok(out)
}

/// The pages of one process in a rounds stream.
pub type RoundPages<'a> = (i32, Vec<(u64, &'a [u8])>);

/// Parse a pre-copy rounds stream ([`ROUNDS_VERSION`]): the pages of each process.
pub fn parse_rounds(bytes: &[u8]) -> Result<Vec<RoundPages<'_>>> {
    let (frames, _, flags) = frames(bytes, ROUNDS_VERSION)?;
    if flags != 0 {
        return Err(bad("a rounds stream takes no header flags"));
    }
    let mut out: Vec<RoundPages<'_>> = Vec::new();
    for f in &frames {
        match f.kind {
            PROC if f.body.len() == 4 => {
                out.push((i32::from_le_bytes(f.body.try_into().unwrap()), Vec::new()));
            }
            PAGES if f.body.len() >= 8 && !out.is_empty() => {
                let (a, data) = split_pages(f.body);
                if a % 4096 != 0 || data.is_empty() || data.len() % 4096 != 0 {
                    return Err(bad(format!(
                        "PAGES frame at byte {} is not whole pages",
                        f.at
                    )));
                }
                let last = out.len() - 1;
                out[last].1.push((a, data));
            }
            k => return Err(unexpected(k, f.at)),
        }
    }
    Ok(out)
}

/// The MAC frame at `at`, which must be the last thing in `bytes`: (signed bytes, MAC).
fn mac_frame(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8])> {
    let rest = &bytes[at..];
    if rest.len() != FRAME_HDR + KEY_LEN {
        return Err(bad(
            "signed image without a well-formed MAC frame after END",
        ));
    }
    let kind = u32::from_le_bytes(rest[..4].try_into().unwrap());
    let len = u64::from_le_bytes(rest[4..12].try_into().unwrap());
    let crc = u32::from_le_bytes(rest[12..16].try_into().unwrap());
    let tag = &rest[FRAME_HDR..];
    if kind != MAC || len != KEY_LEN as u64 || frame_crc(MAC, &[], tag) != crc {
        return Err(bad(
            "signed image without a well-formed MAC frame after END",
        ));
    }
    Ok((&bytes[..at], tag))
}

/// Check every frame's CRC, on two threads for large images.
fn verify(bytes: &[u8], spans: &[(usize, u32, &[u8])]) -> Result<()> {
    let check = |part: &[(usize, u32, &[u8])]| -> Result<()> {
        for &(at, crc, body) in part {
            let mut h = crc32fast::Hasher::new();
            h.update(&bytes[at..at + 12]);
            h.update(body);
            if h.finalize() != crc {
                return Err(bad(format!("checksum mismatch in frame at byte {at}")));
            }
        }
        Ok(())
    };
    let total: usize = spans.iter().map(|s| s.2.len()).sum();
    if total < (64 << 20) {
        return check(spans);
    }
    let mut acc = 0;
    let mid = spans
        .iter()
        .position(|s| {
            acc += s.2.len();
            acc >= total / 2
        })
        .unwrap_or(0);
    let (a, b) = spans.split_at(mid);
    std::thread::scope(|sc| {
        let other = sc.spawn(|| check(b));
        let r = check(a);
        let r2 = other
            .join()
            .unwrap_or_else(|_| Err(bad("checksum thread panicked")));
        r.and(r2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::model::{MmInfo, Origin, ProcAttrs};

    /// The metadata of a process with nothing in it.
    fn bare_image(pid: i32) -> ProcessImage {
        ProcessImage {
            pid,
            origin: Origin::default(),
            xcr0: 7,
            mm: MmInfo::default(),
            vmas: vec![],
            threads: vec![],
            files: vec![],
            attrs: ProcAttrs::default(),
        }
    }

    fn sample(key: Option<&ImageKey>) -> Vec<u8> {
        let img = bare_image(42);
        let mut w = ImageWriter::new(Vec::new(), key).unwrap();
        w.meta(&img).unwrap();
        w.pages(0x1000, &[7u8; 4096]).unwrap();
        let crc = pages_crc(0x3000, &[9u8; 8192]);
        w.pages_with_crc(0x3000, &[9u8; 8192], crc).unwrap();
        w.file_data(0, b"content").unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn roundtrip() {
        let bytes = sample(None);
        let p = parse(&bytes).unwrap();
        assert_eq!(p.meta.pid, 42);
        assert_eq!(p.pages.len(), 2);
        assert_eq!((p.pages[1].0, p.pages[1].1.len()), (0x3000, 8192));
        assert_eq!(p.files, vec![&b"content"[..]]);
        assert!(p.signature.is_none());
    }

    #[test]
    fn signed_image_verifies_only_with_its_key() {
        let key = ImageKey::from_bytes([5; KEY_LEN]);
        let bytes = sample(Some(&key));
        let p = parse(&bytes).unwrap();
        assert!(p.signed_by(&key));
        assert!(!p.signed_by(&ImageKey::from_bytes([6; KEY_LEN])));
        // Dropping the MAC frame without clearing the flag is refused; clearing the flag too
        // leaves an image that no longer claims to be signed.
        let stripped = &bytes[..bytes.len() - FRAME_HDR - KEY_LEN];
        assert!(parse(stripped).is_err());
        let mut unsigned = stripped.to_vec();
        unsigned[12] = 0;
        let p = parse(&unsigned).unwrap();
        assert!(p.signature.is_none() && !p.signed_by(&key));
    }

    /// Every byte of a small image (unsigned and signed), each changed in every single bit
    /// and inverted whole: every such change is refused.
    #[test]
    fn every_single_byte_flip_is_detected() {
        let key = ImageKey::from_bytes([5; KEY_LEN]);
        for bytes in [sample(None), sample(Some(&key))] {
            for i in 0..bytes.len() {
                for mask in [1u8, 2, 4, 8, 16, 32, 64, 128, 0xff] {
                    let mut b = bytes.clone();
                    b[i] ^= mask;
                    assert!(parse(&b).is_err(), "flip {mask:#x} at {i} not detected");
                }
            }
        }
    }

    fn delta_tree(present: Option<&[(u64, usize)]>) -> Vec<u8> {
        let img = bare_image(1);
        let mut w = ImageWriter::new_tree_delta(Vec::new(), None).unwrap();
        w.tree(b"t").unwrap();
        w.meta(&img).unwrap();
        if let Some(p) = present {
            w.present(p).unwrap();
        }
        w.pages(0x2000, &[1u8; 4096]).unwrap();
        w.finish().unwrap().0
    }

    #[test]
    fn delta_images_need_a_well_formed_present_frame_per_process() {
        let bytes = delta_tree(Some(&[(0x1000, 0x2000), (0x8000, 0x1000)]));
        let ok = parse_tree(&bytes).unwrap();
        assert!(ok.delta);
        assert_eq!(
            ok.procs[0].present,
            Some(vec![(0x1000, 0x2000), (0x8000, 0x1000)])
        );
        let missing = parse_tree(&delta_tree(None)).err().unwrap().to_string();
        assert!(missing.contains("PRESENT"), "{missing}");
        for bad in [
            &[(0x1001, 0x1000)][..],
            &[(0x1000, 0)][..],
            &[(0x8000, 0x1000), (0x1000, 0x1000)][..],
            &[(0x1000, 0x2000), (0x2000, 0x1000)][..],
        ] {
            assert!(parse_tree(&delta_tree(Some(bad))).is_err(), "{bad:x?}");
        }
    }

    #[test]
    fn rounds_streams_hold_whole_pages_after_a_process_marker() {
        let mut w = ImageWriter::new_rounds(Vec::new()).unwrap();
        w.proc_marker(3).unwrap();
        w.pages(0x4000, &[5u8; 8192]).unwrap();
        let bytes = w.finish().unwrap().0;
        let r = parse_rounds(&bytes).unwrap();
        assert_eq!((r[0].0, r[0].1[0].0, r[0].1[0].1.len()), (3, 0x4000, 8192));
        let mut w = ImageWriter::new_rounds(Vec::new()).unwrap();
        w.pages(0x4000, &[5u8; 4096]).unwrap();
        assert!(
            parse_rounds(&w.finish().unwrap().0).is_err(),
            "pages before a marker"
        );
        let mut w = ImageWriter::new_rounds(Vec::new()).unwrap();
        w.proc_marker(3).unwrap();
        w.pages(0x4000, &[5u8; 100]).unwrap();
        assert!(
            parse_rounds(&w.finish().unwrap().0).is_err(),
            "part of a page"
        );
        assert!(
            parse_tree(&bytes).is_err(),
            "a rounds stream is not an image"
        );
    }

    #[test]
    fn unknown_header_flags_are_refused() {
        let bytes = sample(None);
        for bit in 1..32 {
            let mut b = bytes.clone();
            b[12..16].copy_from_slice(&(1u32 << bit).to_le_bytes());
            assert!(
                matches!(parse(&b), Err(Error::BadImage(m)) if m.contains("flags")),
                "flag bit {bit}"
            );
        }
    }

    #[test]
    fn truncation_and_versions_are_refused() {
        let bytes = sample(None);
        for n in [0, 10, 16, 40, bytes.len() - 1] {
            assert!(parse(&bytes[..n]).is_err(), "truncated to {n}");
        }
        let mut b = bytes.clone();
        b[8] = 1;
        assert!(matches!(parse(&b), Err(Error::BadImage(m)) if m.contains("version")));
    }
}
