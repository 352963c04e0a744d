//! This machine's image key: images signed with it (HMAC-SHA256 over the whole stream) may be
//! restored by root under credentials other than root's own.
//!
//! The key is 32 random bytes in a file of mode 0600 owned by the caller; the library does not
//! decide where that file lives (the CLI keeps it in the ZOS home as `image.key`).

use crate::error::{Error, Result, io_err};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Length of a key and of a MAC, in bytes.
pub const KEY_LEN: usize = 32;

/// The running MAC of an image stream.
pub(crate) type ImageMac = Hmac<Sha256>;

/// A secret key that signs images written by this machine.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageKey([u8; KEY_LEN]);

impl std::fmt::Debug for ImageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageKey(…)")
    }
}

impl ImageKey {
    /// A key made of the given bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> ImageKey {
        ImageKey(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Result<ImageKey> {
        let mut k = [0u8; KEY_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut k))
            .map_err(io_err("/dev/urandom"))?;
        Ok(ImageKey(k))
    }

    /// Read the key at `path`, or create it (0600, never through a symbolic link) if there is
    /// none. An existing key must be a regular file of exactly 32 bytes, owned by the caller
    /// and readable by nobody else.
    pub fn load_or_create(path: &Path) -> Result<ImageKey> {
        let open = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path);
        let mut file = match open {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return match Self::create(path) {
                    // Another caller made it meanwhile: use theirs.
                    Err(Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        Self::load_or_create(path)
                    }
                    r => r,
                };
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        let md = file.metadata().map_err(io_err(path))?;
        let refuse = |why: String| Error::Denied(format!("image key {}: {why}", path.display()));
        if !md.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        if md.uid() != crate::sys::euid() {
            return Err(refuse(format!("owned by uid {}, not by you", md.uid())));
        }
        if md.mode() & 0o077 != 0 {
            return Err(refuse(format!(
                "mode {:o} lets others read it (must be 0600)",
                md.mode() & 0o777
            )));
        }
        let mut k = Vec::new();
        file.read_to_end(&mut k).map_err(io_err(path))?;
        let k: [u8; KEY_LEN] = k
            .try_into()
            .map_err(|_| refuse(format!("not {KEY_LEN} bytes long")))?;
        Ok(ImageKey(k))
    }

    fn create(path: &Path) -> Result<ImageKey> {
        let key = Self::generate()?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err(path))?;
        f.write_all(&key.0)
            .and_then(|_| f.sync_all())
            .map_err(io_err(path))?;
        Ok(key)
    }

    /// A MAC state keyed with this key.
    pub(crate) fn mac(&self) -> ImageMac {
        <ImageMac as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// Whether `tag` is the MAC of `signed` under this key (constant-time comparison).
    pub fn verifies(&self, signed: &[u8], tag: &[u8]) -> bool {
        let mut m = self.mac();
        m.update(signed);
        m.verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_is_created_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("zckpt-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("image.key");
        let a = ImageKey::load_or_create(&path).unwrap();
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        assert_eq!(md.len(), KEY_LEN as u64);
        assert_eq!(ImageKey::load_or_create(&path).unwrap(), a);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ImageKey::load_or_create(&path).unwrap_err();
        assert!(e.to_string().contains("0600"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &path).unwrap();
        assert!(
            ImageKey::load_or_create(&path).is_err(),
            "followed a symlink"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
