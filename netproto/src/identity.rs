//! The static X25519 identity of a ZOS installation.
//!
//! Each home directory holds one `identity.key` (mode 0600) with the raw
//! 32-byte private key, created on first start. The public key is what peers
//! see in the Noise handshake; its [`Fingerprint`] is what users compare.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::noise::NOISE_PARAMS;

/// A peer's static public key (X25519, 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Reads a key from a slice, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Malformed(format!("public key of {} bytes", bytes.len())))?;
        Ok(PublicKey(arr))
    }

    /// Parses the 64-character hex form.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = hex::decode(s.trim())
            .map_err(|e| Error::Malformed(format!("public key {s:?}: {e}")))?;
        Self::from_slice(&bytes)
    }

    /// The 64-character hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The short form users compare: see [`Fingerprint`].
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = Sha256::digest(self.0);
        Fingerprint(
            digest[..10]
                .chunks(2)
                .map(hex::encode)
                .collect::<Vec<_>>()
                .join("-"),
        )
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// The first 80 bits of SHA-256 of a public key, as five dash-separated hex
/// groups (`3f2a-91bc-0d4e-77a1-c2e0`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// Whether `text` names this fingerprint: the whole of it or a prefix of
    /// at least four hex digits, dashes optional.
    pub fn matches(&self, text: &str) -> bool {
        let want: String = text.chars().filter(|c| *c != '-').collect();
        let have: String = self.0.chars().filter(|c| *c != '-').collect();
        want.len() >= 4 && have.starts_with(&want.to_ascii_lowercase())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An installation's static key pair.
#[derive(Clone)]
pub struct Identity {
    private: [u8; 32],
    public: PublicKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Creates a fresh random identity.
    pub fn generate() -> Result<Self> {
        let builder = snow::Builder::new(NOISE_PARAMS.parse().expect("valid noise params"));
        let pair = builder.generate_keypair()?;
        let private: [u8; 32] = pair.private.try_into().expect("x25519 key is 32 bytes");
        Ok(Identity {
            private,
            public: PublicKey::from_slice(&pair.public)?,
        })
    }

    /// Loads the identity at `path`, creating it (mode 0600) if it does not
    /// exist. Refuses a key file that others can read.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match fs::read(path) {
            Ok(bytes) => {
                let mode = fs::metadata(path)
                    .map_err(|e| Error::io(format!("stat {}", path.display()), e))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    return Err(Error::BadFile {
                        path: path.display().to_string(),
                        reason: format!(
                            "private key is readable by others (mode {:o}); run chmod 600",
                            mode & 0o777
                        ),
                    });
                }
                Self::from_private_bytes(&bytes).map_err(|reason| Error::BadFile {
                    path: path.display().to_string(),
                    reason,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Self::generate()?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
                file.write_all(&id.private)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
                tracing::info!(fingerprint = %id.public.fingerprint(), "created identity {}", path.display());
                Ok(id)
            }
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    fn from_private_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        let private: [u8; 32] = bytes.try_into().map_err(|_| {
            format!(
                "expected a 32-byte private key, found {} bytes",
                bytes.len()
            )
        })?;
        let public = x25519_public(&private);
        Ok(Identity { private, public })
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The private half, for the Noise handshake.
    pub(crate) fn private_bytes(&self) -> &[u8; 32] {
        &self.private
    }
}

/// Derives the X25519 public key of a private key (scalar times base point).
fn x25519_public(private: &[u8; 32]) -> PublicKey {
    PublicKey(crate::noise::x25519_base(private))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_file_roundtrips_and_is_private() {
        let dir = std::env::temp_dir().join(format!("zos-id-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identity.key");
        let a = Identity::load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Identity::load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Identity::load_or_create(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn derived_public_key_matches_generated() {
        let id = Identity::generate().unwrap();
        assert_eq!(x25519_public(&id.private), id.public);
    }

    #[test]
    fn fingerprint_prefix_matching() {
        let fp = Fingerprint("3f2a-91bc-0d4e-77a1-c2e0".into());
        assert!(fp.matches("3f2a91"));
        assert!(fp.matches("3f2a-91bc"));
        assert!(!fp.matches("3f2"));
        assert!(!fp.matches("3f2b"));
    }
}
