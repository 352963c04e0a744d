//! Dirty-page tracking primitives: userfaultfd write-protect in async mode and the
//! `PAGEMAP_SCAN` ioctl of `/proc/PID/pagemap` (Linux ≥ 6.7). Debian 12's headers predate
//! both, so the constants are spelled out here from the kernel's uapi headers
//! (`linux/userfaultfd.h`, `linux/fs.h`).
//!
//! A userfaultfd acts on the address space of the process that created it, whoever holds
//! the descriptor; so the tracker creates it inside the target (an injected system call)
//! and takes it out with `pidfd_getfd`. In async mode the kernel resolves a write to a
//! protected page itself (no fault is ever delivered): it only clears the page's protection,
//! which `PAGEMAP_SCAN` then reports as `PAGE_IS_WRITTEN`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// `userfaultfd(2)`.
pub const NR_USERFAULTFD: u64 = 323;
/// `UFFD_USER_MODE_ONLY`: allowed without privilege (async write-protect never faults).
pub const UFFD_USER_MODE_ONLY: u64 = 1;
const UFFD_API: u64 = 0xAA;
const FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const FEATURE_WP_ASYNC: u64 = 1 << 15;
const REGISTER_MODE_WP: u64 = 1 << 1;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
const UFFDIO_API: u64 = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
const UFFDIO_REGISTER: u64 = 0xC020_AA00;
/// `_IOR(0xAA, 0x01, struct uffdio_range)`.
const UFFDIO_UNREGISTER: u64 = 0x8010_AA01;
/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1;

/// `PAGE_IS_WPALLOWED`: in a mapping registered for async write-protect.
pub const PAGE_IS_WPALLOWED: u64 = 1;
/// `PAGE_IS_WRITTEN`: not write-protected (written since the last protecting scan).
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// `PAGE_IS_FILE`: backed by a file page (not copied on write).
pub const PAGE_IS_FILE: u64 = 1 << 2;
/// `PAGE_IS_PRESENT`.
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
/// `PAGE_IS_SWAPPED`.
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// `PAGE_IS_PFNZERO`: maps the shared zero page.
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// One region a scan reports: `[start, end)` with its categories.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageRegion {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `PAGE_IS_*` bits.
    pub categories: u64,
}

fn ioctl<T>(fd: &impl AsRawFd, req: u64, arg: &mut T) -> io::Result<i64> {
    // SAFETY: `arg` is a live, exclusively borrowed #[repr(C)] struct of the size `req`
    // encodes; the kernel reads and writes only within it (and, for PAGEMAP_SCAN, within
    // the vector whose pointer and length the struct carries, checked by the caller).
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i64)
    }
}

/// Enable async write-protect on a fresh userfaultfd (the API handshake, done once).
pub fn enable_wp_async(uffd: &OwnedFd) -> io::Result<()> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features: FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED,
        ioctls: 0,
    };
    ioctl(uffd, UFFDIO_API, &mut api).map(|_| ())
}

/// Register `[start, end)` (whole mappings) for write-protect tracking.
pub fn register_wp(uffd: &OwnedFd, start: u64, end: u64) -> io::Result<()> {
    let mut reg = UffdioRegister {
        start,
        len: end - start,
        mode: REGISTER_MODE_WP,
        ioctls: 0,
    };
    ioctl(uffd, UFFDIO_REGISTER, &mut reg).map(|_| ())
}

/// Stop tracking `[start, end)` (the kernel drops the protection bits).
pub fn unregister(uffd: &OwnedFd, start: u64, end: u64) -> io::Result<()> {
    let mut range = [start, end - start];
    ioctl(uffd, UFFDIO_UNREGISTER, &mut range).map(|_| ())
}

/// Which pages a scan reports: the kernel's category filter (see `PAGEMAP_SCAN`).
#[derive(Clone, Copy)]
struct Filter {
    inverted: u64,
    mask: u64,
    anyof: u64,
    returned: u64,
}

/// One `PAGEMAP_SCAN` walk of `[start, end)` (as many calls as the output needs), adjacent
/// regions of the same categories merged; `protect` write-protects the matching pages.
fn scan(
    pagemap: &impl AsRawFd,
    start: u64,
    end: u64,
    filter: Filter,
    protect: bool,
) -> io::Result<Vec<PageRegion>> {
    const VEC: usize = 1024;
    let mut out: Vec<PageRegion> = Vec::new();
    let mut vec = vec![PageRegion::default(); VEC];
    let mut at = start;
    while at < end {
        let mut arg = PmScanArg {
            size: std::mem::size_of::<PmScanArg>() as u64,
            flags: if protect { PM_SCAN_WP_MATCHING } else { 0 },
            start: at,
            end,
            vec: vec.as_mut_ptr() as u64,
            vec_len: VEC as u64,
            category_inverted: filter.inverted,
            category_mask: filter.mask,
            category_anyof_mask: filter.anyof,
            return_mask: filter.returned,
            ..Default::default()
        };
        let n = ioctl(pagemap, PAGEMAP_SCAN, &mut arg)? as usize;
        for r in &vec[..n.min(VEC)] {
            match out.last_mut() {
                Some(last) if last.end == r.start && last.categories == r.categories => {
                    last.end = r.end
                }
                _ => out.push(*r),
            }
        }
        if arg.walk_end <= at {
            return Err(io::Error::other("PAGEMAP_SCAN made no progress"));
        }
        at = arg.walk_end;
    }
    Ok(out)
}

/// The pages of `[start, end)` written since they were last protected, as `[start, end)`
/// ranges, and protect them again, in one pass (the kernel's fast path: written pages only,
/// no other category asked). Mappings not registered for async write-protect are skipped.
/// Unpopulated pages count as written and get a write-protect marker: give it only ranges
/// that had content, or a sparse mapping gains page tables (see the tracker).
pub fn protect_written(
    pagemap: &impl AsRawFd,
    start: u64,
    end: u64,
) -> io::Result<Vec<(u64, u64)>> {
    let filter = Filter {
        inverted: 0,
        mask: PAGE_IS_WRITTEN,
        anyof: 0,
        returned: PAGE_IS_WRITTEN,
    };
    Ok(scan(pagemap, start, end, filter, true)?
        .into_iter()
        .map(|r| (r.start, r.end))
        .collect())
}

/// What kind of mapping a content scan walks (what counts as the process's own page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Private anonymous: every page but the shared zero page.
    PrivateAnon,
    /// Shared anonymous: every page.
    SharedAnon,
    /// Private mapping of a file: only the pages copied on write (not the file's). Slower
    /// to scan: the kernel looks at every page's owner.
    PrivateFile,
}

/// The pages of `[start, end)` (one kind of mapping) with content of their own, as
/// `[start, end)` ranges: present or swapped, and as [`Mapping`] says. A write-protect
/// marker (a page that had content, dropped since) reads as swapped: its content is zeros.
/// Fails with `ENOTTY` or `EINVAL` on kernels without `PAGEMAP_SCAN`.
pub fn scan_content(
    pagemap: &impl AsRawFd,
    start: u64,
    end: u64,
    kind: Mapping,
) -> io::Result<Vec<(u64, u64)>> {
    let not = match kind {
        Mapping::PrivateAnon => PAGE_IS_PFNZERO,
        Mapping::SharedAnon => 0,
        Mapping::PrivateFile => PAGE_IS_FILE | PAGE_IS_PFNZERO,
    };
    let filter = Filter {
        inverted: not,
        mask: not,
        anyof: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        returned: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
    };
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in scan(pagemap, start, end, filter, false)? {
        match out.last_mut() {
            Some(last) if last.1 == r.start => last.1 = r.end,
            _ => out.push((r.start, r.end)),
        }
    }
    Ok(out)
}

/// The parts of `[start, end)` in mappings *not* registered for async write-protect (the
/// kernel's own word: a mapping replaced at the same address, or moved by `mremap`, loses
/// its registration). Populated or not.
pub fn scan_unregistered(
    pagemap: &impl AsRawFd,
    start: u64,
    end: u64,
) -> io::Result<Vec<(u64, u64)>> {
    let filter = Filter {
        inverted: PAGE_IS_WPALLOWED,
        mask: PAGE_IS_WPALLOWED,
        anyof: 0,
        returned: PAGE_IS_WPALLOWED,
    };
    Ok(scan(pagemap, start, end, filter, false)?
        .into_iter()
        .map(|r| (r.start, r.end))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn own_uffd() -> OwnedFd {
        // SAFETY: a plain system call with integer arguments; a descriptor it returns is ours.
        let fd = unsafe {
            libc::syscall(
                NR_USERFAULTFD as i64,
                libc::O_CLOEXEC | UFFD_USER_MODE_ONLY as i32,
            )
        };
        assert!(fd >= 0, "userfaultfd: {}", io::Error::last_os_error());
        // SAFETY: `fd` was just returned to us and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(fd as i32) }
    }

    #[test]
    fn written_pages_are_reported_once_then_again_after_a_write() {
        let len = 64 * 4096;
        // SAFETY: a fresh private anonymous mapping; unmapped at the end of the test.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let base = p as u64;
        // SAFETY: `p` points at `len` writable bytes we own.
        let mem = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) };
        mem[0] = 1;
        mem[5 * 4096] = 1;
        let uffd = own_uffd();
        enable_wp_async(&uffd).unwrap();
        register_wp(&uffd, base, base + len as u64).unwrap();
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let pages = |ranges: &[(u64, u64)]| -> Vec<u64> {
            ranges
                .iter()
                .flat_map(|r| (r.0..r.1).step_by(4096))
                .map(|a| (a - base) / 4096)
                .collect()
        };
        let content =
            scan_content(&pagemap, base, base + len as u64, Mapping::PrivateAnon).unwrap();
        assert_eq!(pages(&content), vec![0, 5], "the two touched pages");
        for &(s, e) in &content {
            assert_eq!(
                pages(&protect_written(&pagemap, s, e).unwrap()),
                pages(&[(s, e)])
            );
        }
        for &(s, e) in &content {
            assert!(
                protect_written(&pagemap, s, e).unwrap().is_empty(),
                "protected"
            );
        }
        mem[9 * 4096 + 7] = 3;
        mem[0] = 2;
        let again: Vec<(u64, u64)> = content
            .iter()
            .flat_map(|&(s, e)| protect_written(&pagemap, s, e).unwrap())
            .collect();
        assert_eq!(pages(&again), vec![0], "the protected page written again");
        assert_eq!(
            pages(&scan_content(&pagemap, base, base + len as u64, Mapping::PrivateAnon).unwrap()),
            vec![0, 5, 9],
            "a page never touched before was not protected (no marker): it shows as new content"
        );
        assert!(
            scan_unregistered(&pagemap, base, base + len as u64)
                .unwrap()
                .is_empty(),
            "all registered"
        );
        // A mapping put in place of part of it is not registered, whatever its address.
        // SAFETY: replaces 4 pages inside our own mapping; `mem` is not used for them after.
        let q = unsafe {
            libc::mmap(
                (base + 8 * 4096) as *mut libc::c_void,
                4 * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert_eq!(q as u64, base + 8 * 4096);
        assert_eq!(
            scan_unregistered(&pagemap, base, base + len as u64).unwrap(),
            vec![(base + 8 * 4096, base + 12 * 4096)]
        );
        unregister(&uffd, base, base + len as u64).unwrap();
        // SAFETY: unmapping the mapping made above; `mem` is not used after this.
        unsafe { libc::munmap(p, len) };
    }
}
