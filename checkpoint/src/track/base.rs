//! The pages a receiver (or a snapshot chain) already holds, per process of a pod, and the
//! merge that turns a delta image into whole memory without copying pages.

use crate::error::{Error, Result};
use crate::image::format::{ImageWriter, parse_rounds, parse_tree};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const PAGE: u64 = 4096;

/// Bytes held by a run: a slice of a shared buffer.
#[derive(Clone)]
struct Run {
    buf: Arc<Vec<u8>>,
    off: usize,
    len: usize,
}

impl Run {
    fn bytes(&self) -> &[u8] {
        &self.buf[self.off..self.off + self.len]
    }

    fn cut(&self, from: usize, len: usize) -> Run {
        Run {
            buf: self.buf.clone(),
            off: self.off + from,
            len,
        }
    }
}

/// Pages per process of a pod (by PID in the pod), each address once, the latest copy
/// winning. The bytes stay in the buffers they arrived in (shared, never copied).
#[derive(Default, Clone)]
pub struct PageBase {
    procs: HashMap<i32, BTreeMap<u64, Run>>,
}

impl std::fmt::Debug for PageBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PageBase {{ {} processes, {} bytes }}",
            self.procs.len(),
            self.bytes()
        )
    }
}

impl PageBase {
    /// An empty base.
    pub fn new() -> PageBase {
        PageBase::default()
    }

    /// Bytes held (each address counted once).
    pub fn bytes(&self) -> u64 {
        self.procs
            .values()
            .flat_map(|m| m.values())
            .map(|r| r.len as u64)
            .sum()
    }

    /// Take in one pre-copy round (a rounds stream, checked in full first); returns the
    /// pages it carried.
    pub fn add_round(&mut self, stream: Vec<u8>) -> Result<u64> {
        let stream = Arc::new(stream);
        let parsed = parse_rounds(&stream)?;
        let mut pages = 0;
        let base = stream.as_ptr() as usize;
        let mut runs = Vec::new();
        for (pid, list) in parsed {
            for (addr, data) in list {
                pages += data.len() as u64 / PAGE;
                runs.push((pid, addr, data.as_ptr() as usize - base, data.len()));
            }
        }
        for (pid, addr, off, len) in runs {
            self.insert(
                pid,
                addr,
                Run {
                    buf: stream.clone(),
                    off,
                    len,
                },
            );
        }
        Ok(pages)
    }

    /// Take in a whole pod image (replacing what is held) or a delta over what is held
    /// (pages it does not list as present are dropped, its pages win): the state of a
    /// snapshot chain after this image.
    pub fn add_image(&mut self, image: Arc<Vec<u8>>) -> Result<()> {
        let parsed = parse_tree(&image)?;
        let base = image.as_ptr() as usize;
        let mut next: HashMap<i32, BTreeMap<u64, Run>> = HashMap::new();
        for p in &parsed.procs {
            let pid = p.meta.pid;
            let mut map = match (&p.present, parsed.delta) {
                (Some(present), true) => {
                    let old = self.procs.remove(&pid).unwrap_or_default();
                    keep_present(old, present)
                }
                _ => BTreeMap::new(),
            };
            for &(addr, data) in &p.pages {
                insert_into(
                    &mut map,
                    addr,
                    Run {
                        buf: image.clone(),
                        off: data.as_ptr() as usize - base,
                        len: data.len(),
                    },
                );
            }
            next.insert(pid, map);
        }
        self.procs = next;
        Ok(())
    }

    fn insert(&mut self, pid: i32, addr: u64, run: Run) {
        insert_into(self.procs.entry(pid).or_default(), addr, run);
    }

    /// The whole memory of process `pid` for a delta image: every `present` range, from
    /// `delta` (the image's own pages) where it has them, else from this base. Fails naming
    /// the first page neither holds.
    pub fn merged<'a>(
        &'a self,
        pid: i32,
        present: &[(u64, u64)],
        delta: &[(u64, &'a [u8])],
    ) -> Result<Vec<(u64, &'a [u8])>> {
        static EMPTY: BTreeMap<u64, Run> = BTreeMap::new();
        let held: &'a BTreeMap<u64, Run> = self.procs.get(&pid).unwrap_or(&EMPTY);
        let mut fresh: BTreeMap<u64, &'a [u8]> = BTreeMap::new();
        for &(a, d) in delta {
            fresh.insert(a, d);
        }
        let mut out: Vec<(u64, &'a [u8])> = Vec::new();
        for &(start, len) in present {
            let end = start + len;
            let mut at = start;
            while at < end {
                if let Some(piece) = slice_at(&fresh, at, end, |d: &&'a [u8]| *d) {
                    at += piece.len() as u64;
                    out.push((at - piece.len() as u64, piece));
                    continue;
                }
                // Up to the next delta page, from the base.
                let limit = fresh.range(at..end).next().map_or(end, |(a, _)| *a);
                match slice_at(held, at, limit, |r| r.bytes()) {
                    Some(piece) => {
                        out.push((at, piece));
                        at += piece.len() as u64;
                    }
                    None => {
                        return Err(Error::BadImage(format!(
                            "page {at:#x} of process {pid} is in neither the delta image nor its base"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The whole pod image equal to `image` (a delta) over `base`: every page in place, as a
/// dump of that moment would have written it. A whole image comes back unchanged.
pub fn flatten(image: &[u8], base: &PageBase) -> Result<Vec<u8>> {
    let parsed = parse_tree(image)?;
    if !parsed.delta {
        return Ok(image.to_vec());
    }
    let io = |e: std::io::Error| Error::Restore(format!("flatten the image: {e}"));
    let mut w = ImageWriter::new_tree(Vec::with_capacity(image.len()), None).map_err(io)?;
    w.tree(parsed.tree).map_err(io)?;
    for p in &parsed.procs {
        w.meta(&p.meta).map_err(io)?;
        let present = p.present.clone().unwrap_or_default();
        for (addr, data) in base.merged(p.meta.pid, &present, &p.pages)? {
            w.pages(addr, data).map_err(io)?;
        }
    }
    for (i, blob) in parsed.data.iter().enumerate() {
        w.object_data(i as u32, blob).map_err(io)?;
    }
    Ok(w.finish().map_err(io)?.0)
}

/// The bytes held in `map` from `at` up to at most `limit` (within one run), if `at` is held.
fn slice_at<'m, 'a, T>(
    map: &'m BTreeMap<u64, T>,
    at: u64,
    limit: u64,
    bytes: impl Fn(&'m T) -> &'a [u8],
) -> Option<&'a [u8]> {
    let (&a, v) = map.range(..=at).next_back()?;
    let b = bytes(v);
    let end = a + b.len() as u64;
    if end <= at {
        return None;
    }
    let from = (at - a) as usize;
    let to = (end.min(limit) - a) as usize;
    Some(&b[from..to])
}

/// Put `run` at `addr`, cutting whatever it overlaps.
fn insert_into(map: &mut BTreeMap<u64, Run>, addr: u64, run: Run) {
    let end = addr + run.len as u64;
    // A run starting before `addr` and reaching into it.
    if let Some((&a, r)) = map.range(..addr).next_back() {
        let r_end = a + r.len as u64;
        if r_end > addr {
            let r = r.clone();
            map.insert(a, r.cut(0, (addr - a) as usize));
            if r_end > end {
                map.insert(end, r.cut((end - a) as usize, (r_end - end) as usize));
            }
        }
    }
    let inside: Vec<u64> = map.range(addr..end).map(|(a, _)| *a).collect();
    for a in inside {
        let r = map.remove(&a).expect("listed");
        let r_end = a + r.len as u64;
        if r_end > end {
            map.insert(end, r.cut((end - a) as usize, (r_end - end) as usize));
        }
    }
    map.insert(addr, run);
}

/// Only the parts of `map` inside the sorted `present` ranges.
fn keep_present(map: BTreeMap<u64, Run>, present: &[(u64, u64)]) -> BTreeMap<u64, Run> {
    let mut out = BTreeMap::new();
    for (a, r) in map {
        let end = a + r.len as u64;
        let i = present.partition_point(|p| p.0 + p.1 <= a);
        for &(ps, pl) in &present[i..] {
            if ps >= end {
                break;
            }
            let (s, e) = (a.max(ps), end.min(ps + pl));
            if s < e {
                out.insert(s, r.cut((s - a) as usize, (e - s) as usize));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::format::ImageWriter;

    fn round(pages: &[(i32, u64, u8, usize)]) -> Vec<u8> {
        let mut w = ImageWriter::new_rounds(Vec::new()).unwrap();
        let mut last = None;
        for &(pid, addr, byte, n) in pages {
            if last != Some(pid) {
                w.proc_marker(pid).unwrap();
                last = Some(pid);
            }
            w.pages(addr, &vec![byte; n * 4096]).unwrap();
        }
        w.finish().unwrap().0
    }

    fn flatten(v: &[(u64, &[u8])]) -> Vec<(u64, u8)> {
        v.iter()
            .flat_map(|(a, d)| {
                d.chunks(4096)
                    .enumerate()
                    .map(move |(i, c)| (a + i as u64 * 4096, c[0]))
            })
            .collect()
    }

    #[test]
    fn later_rounds_win_and_the_delta_wins_over_all() {
        let mut b = PageBase::new();
        assert_eq!(b.add_round(round(&[(1, 0x10000, 1, 8)])).unwrap(), 8);
        b.add_round(round(&[(1, 0x12000, 2, 2), (2, 0x5000, 9, 1)]))
            .unwrap();
        let delta_page = vec![3u8; 4096];
        let delta = [(0x13000u64, &delta_page[..])];
        let merged = b.merged(1, &[(0x10000, 0x8000)], &delta).unwrap();
        let got = flatten(&merged);
        let want: Vec<(u64, u8)> = (0..8)
            .map(|i| {
                let a = 0x10000 + i * 4096;
                (a, [1, 1, 2, 3, 1, 1, 1, 1][i as usize])
            })
            .collect();
        assert_eq!(got, want);
        // Only what is present is taken; a present page nobody holds is an error.
        assert_eq!(
            flatten(&b.merged(1, &[(0x11000, 0x1000)], &[]).unwrap()),
            vec![(0x11000, 1)]
        );
        let e = b.merged(1, &[(0x20000, 0x1000)], &[]).unwrap_err();
        assert!(e.to_string().contains("0x20000"), "{e}");
        assert_eq!(
            flatten(&b.merged(2, &[(0x5000, 0x1000)], &[]).unwrap()),
            vec![(0x5000, 9)]
        );
    }

    #[test]
    fn a_corrupt_round_is_refused_whole() {
        let mut r = round(&[(1, 0x10000, 1, 1)]);
        let n = r.len();
        r[n - 30] ^= 0xff;
        assert!(PageBase::new().add_round(r).is_err());
    }

    #[test]
    fn keep_present_cuts_runs() {
        let buf = Arc::new(vec![7u8; 4 * 4096]);
        let mut m = BTreeMap::new();
        m.insert(
            0x1000,
            Run {
                buf,
                off: 0,
                len: 4 * 4096,
            },
        );
        let kept = keep_present(m, &[(0x2000, 0x1000), (0x4000, 0x4000)]);
        let spans: Vec<(u64, usize)> = kept.iter().map(|(a, r)| (*a, r.len)).collect();
        assert_eq!(spans, vec![(0x2000, 0x1000), (0x4000, 0x1000)]);
    }
}
