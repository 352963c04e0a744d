//! Fresh temporary directories that remove themselves.
//!
//! Names carry the creating process's id (`zos-e2e-<pid>-XXXXXX`) so that
//! [`remove_stale`] can delete what a crashed earlier run left behind.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Prefix of every temporary directory the harness makes.
pub const PREFIX: &str = "zos-e2e-";

/// A directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Makes a fresh, empty directory of mode 0700.
    pub fn new() -> TempDir {
        let template = std::env::temp_dir().join(format!("{PREFIX}{}-XXXXXX", std::process::id()));
        let c = CString::new(template.as_os_str().as_bytes()).expect("temp path has no NUL");
        let mut bytes = c.into_bytes_with_nul();
        // SAFETY: `bytes` is a writable, NUL-terminated template ending in
        // "XXXXXX", as mkdtemp requires; it stays alive for the call.
        let ret = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
        assert!(
            !ret.is_null(),
            "mkdtemp {}: {}",
            template.display(),
            std::io::Error::last_os_error()
        );
        bytes.pop();
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .expect("chmod temp dir");
        TempDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("[harness] could not remove {}: {e}", self.path.display());
        }
    }
}

/// Makes `path` (and its parents) with mode 0700.
pub fn private_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod 0700");
}

/// Removes temp directories made by harness processes that no longer run.
pub fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !crate::common::pid_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
