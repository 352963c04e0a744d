//! Reaching another process's memory, and mapping image files.

use super::cvt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Most iovecs one `process_vm_*` call accepts.
pub const IOV_MAX: usize = 1024;

/// Read the remote ranges `(addr, len)` of `pid` back to back into `buf`.
/// Returns the number of bytes read (short if a range faulted).
pub fn read_remote(pid: i32, ranges: &[(u64, usize)], buf: &mut [u8]) -> io::Result<usize> {
    let total: usize = ranges.iter().map(|r| r.1).sum();
    assert!(total <= buf.len() && ranges.len() <= IOV_MAX);
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: total,
    };
    let remote: Vec<libc::iovec> = ranges
        .iter()
        .map(|&(a, l)| libc::iovec {
            iov_base: a as *mut libc::c_void,
            iov_len: l,
        })
        .collect();
    // SAFETY: the local iovec covers `total` bytes of `buf`, which we checked is large
    // enough; the remote iovecs are only interpreted in the other process.
    let r =
        unsafe { libc::process_vm_readv(pid, &local, 1, remote.as_ptr(), remote.len() as _, 0) };
    cvt(r as i64).map(|n| n as usize)
}

/// Write `data` to the remote address `addr` of `pid` (the pages must be writable there).
pub fn write_remote(pid: i32, addr: u64, data: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        let local = libc::iovec {
            iov_base: data[done..].as_ptr() as *mut libc::c_void,
            iov_len: data.len() - done,
        };
        let remote = libc::iovec {
            iov_base: (addr + done as u64) as *mut libc::c_void,
            iov_len: data.len() - done,
        };
        // SAFETY: the local iovec points into `data`, which outlives the call and is only
        // read; the remote iovec is only interpreted in the other process.
        let n = cvt(unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) } as i64)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        done += n as usize;
    }
    Ok(())
}

/// Write every `(addr, data)` of `pieces` to `pid`, up to `IOV_MAX` of them per
/// `process_vm_writev` (a restore over pre-copy rounds has tens of thousands of scattered
/// pages: one call each cost more than the copy). Returns the index of the piece a call
/// stopped in and the error, if any (a short write is retried piece by piece to find it).
pub fn write_remote_many(pid: i32, pieces: &[(u64, &[u8])]) -> Result<(), (usize, io::Error)> {
    let mut at = 0;
    while at < pieces.len() {
        let batch = &pieces[at..(at + IOV_MAX).min(pieces.len())];
        let local: Vec<libc::iovec> = batch
            .iter()
            .map(|(_, d)| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        let mut remote: Vec<libc::iovec> = Vec::with_capacity(batch.len());
        for &(addr, d) in batch {
            match remote.last_mut() {
                Some(last) if last.iov_base as u64 + last.iov_len as u64 == addr => {
                    last.iov_len += d.len()
                }
                _ => remote.push(libc::iovec {
                    iov_base: addr as *mut libc::c_void,
                    iov_len: d.len(),
                }),
            }
        }
        let want: usize = batch.iter().map(|(_, d)| d.len()).sum();
        // SAFETY: every local iovec points into a slice of `pieces`, which outlives the call
        // and is only read; the remote iovecs are only interpreted in the other process.
        let r = unsafe {
            libc::process_vm_writev(
                pid,
                local.as_ptr(),
                local.len() as _,
                remote.as_ptr(),
                remote.len() as _,
                0,
            )
        };
        if r as usize != want {
            // Short or failed: redo this batch piece by piece for the exact place and error.
            for (i, &(addr, d)) in batch.iter().enumerate() {
                write_remote(pid, addr, d).map_err(|e| (at + i, e))?;
            }
        }
        at += batch.len();
    }
    Ok(())
}

/// A read-only, private mapping of a whole file.
pub struct FileMap {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned; sharing references across threads is sound.
unsafe impl Send for FileMap {}
// SAFETY: as above, nothing mutates the mapping.
unsafe impl Sync for FileMap {}

impl FileMap {
    /// Map `file` (its current length) read-only.
    pub fn new(file: &File) -> io::Result<FileMap> {
        let len = file.metadata()?.len() as usize;
        if len == 0 {
            return Ok(FileMap {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh private read-only mapping of a file we hold open; the kernel picks
        // the address, so nothing existing is replaced.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(FileMap { ptr, len })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ptr/len describe a live read-only mapping owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmapping exactly the mapping we created; no references outlive self.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// A private anonymous buffer mapped with `MAP_POPULATE` (faulted in at once, and returned to
/// the kernel on drop rather than kept by the allocator).
pub struct AnonBuf {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the buffer is owned exclusively; moving it between threads is sound.
unsafe impl Send for AnonBuf {}

impl AnonBuf {
    /// Map `len` bytes.
    pub fn new(len: usize) -> io::Result<AnonBuf> {
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(AnonBuf { ptr, len })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: ptr/len describe a live mapping owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: ptr/len describe a live mapping owned exclusively by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut u8, self.len) }
    }
}

impl Drop for AnonBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly our mapping; no borrows outlive self.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Page frame number of the kernel's shared zero page (what never-written anonymous memory
/// that was only read maps to), if `/proc/self/pagemap` shows frame numbers (root only).
pub fn zero_pfn() -> Option<u64> {
    static PFN: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *PFN.get_or_init(|| {
        use std::os::unix::fs::FileExt;
        // SAFETY: a fresh read-only anonymous page; reading one byte maps the zero page; the
        // mapping is unmapped before returning and no reference escapes.
        let addr = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return None;
            }
            std::ptr::read_volatile(p as *const u8);
            p
        };
        let mut e = [0u8; 8];
        let r = File::open("/proc/self/pagemap")
            .and_then(|f| f.read_exact_at(&mut e, addr as u64 / 4096 * 8));
        // SAFETY: unmapping the page mapped above.
        unsafe { libc::munmap(addr, 4096) };
        r.ok()?;
        let e = u64::from_le_bytes(e);
        let pfn = e & ((1 << 55) - 1);
        (e >> 63 == 1 && pfn != 0).then_some(pfn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_pieces_are_written_in_batches_and_a_bad_one_is_named() {
        let pid = std::process::id() as i32;
        let mut target = vec![0u8; 3000 * 8];
        let base = target.as_mut_ptr() as u64;
        let data: Vec<[u8; 8]> = (0..3000u64).map(|i| (i * 7).to_le_bytes()).collect();
        // Every other 8-byte slot, then the ones between: more pieces than one call takes.
        let mut pieces: Vec<(u64, &[u8])> = Vec::new();
        for parity in [0, 1] {
            for (i, d) in data.iter().enumerate().filter(|(i, _)| i % 2 == parity) {
                pieces.push((base + i as u64 * 8, &d[..]));
            }
        }
        write_remote_many(pid, &pieces).expect("write");
        let got: Vec<u64> = target
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, (0..3000u64).map(|i| i * 7).collect::<Vec<_>>());
        // A piece at an address nobody maps (page 1) stops the write and is named.
        let bad: Vec<(u64, &[u8])> = vec![(base, &data[1][..]), (4096, &data[2][..])];
        let (i, e) = write_remote_many(pid, &bad).expect_err("page 1 is never mapped");
        assert_eq!(i, 1);
        assert_eq!(e.raw_os_error(), Some(libc::EFAULT));
        assert_eq!(
            &target[..8],
            &data[1][..],
            "the good piece before it was written"
        );
    }
}
