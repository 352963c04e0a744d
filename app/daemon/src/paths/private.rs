//! Private directories: made by us, owned by us, closed to others.
//!
//! Every directory that holds keys, stores or sockets must be a real
//! directory (not a symbolic link), owned by our effective uid, with no
//! write access for group or others (`Privacy::NoOthersWrite`), or no
//! access at all (`Privacy::OwnerOnly`, for everything under a shared `/tmp`
//! and for runtime dirs). A directory someone else made is refused, naming
//! it and its owner: we never fall back elsewhere in silence and never
//! chmod a directory that is not ours.
//!
//! The check is done on a descriptor opened with `O_NOFOLLOW` (so a symlink
//! swapped in after a `lstat` is refused too), after our own `mkdir`: a
//! directory another user creates between our look and our `mkdir` is seen
//! by the check.

use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::unistd::{Uid, User, geteuid};

use crate::error::{DaemonError, Result};

/// How closed to others a private directory must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Privacy {
    /// Group and others may not write (the home, where a user may have
    /// opened reading on purpose; its files are 0600 anyway).
    NoOthersWrite,
    /// Group and others have no access at all (mode 0700 or less).
    OwnerOnly,
}

impl Privacy {
    /// The permission bits this level forbids.
    fn forbidden_bits(self) -> u32 {
        match self {
            Privacy::NoOthersWrite => 0o022,
            Privacy::OwnerOnly => 0o077,
        }
    }

    fn forbidden_words(self) -> &'static str {
        match self {
            Privacy::NoOthersWrite => "writable by group or others",
            Privacy::OwnerOnly => "open to group or others",
        }
    }
}

/// Creates `dir` (mode 0700 whatever the umask; missing parents 0700 too)
/// unless it exists, then checks it is a private directory of ours.
pub(crate) fn ensure_private_dir(dir: &Path, privacy: Privacy) -> Result<()> {
    let created = create(dir)?;
    let opened = open_directory(dir)?;
    let meta = opened
        .metadata()
        .map_err(|e| DaemonError::io(format!("stat {}", dir.display()), e))?;
    check_owner(dir, &meta)?;
    if created {
        // Ours (just checked) and new: make it 0700 on the descriptor we
        // checked, so a restrictive or lax umask changes nothing.
        opened
            .set_permissions(fs::Permissions::from_mode(0o700))
            .map_err(|e| DaemonError::io(format!("chmod 0700 {}", dir.display()), e))?;
        return Ok(());
    }
    check_mode(dir, &meta, privacy)
}

/// Checks, without creating anything, that `dir` is a private directory of
/// ours (for a directory someone else names, like `XDG_RUNTIME_DIR`).
pub(crate) fn check_private_dir(dir: &Path, privacy: Privacy) -> Result<()> {
    let opened = open_directory(dir)?;
    let meta = opened
        .metadata()
        .map_err(|e| DaemonError::io(format!("stat {}", dir.display()), e))?;
    check_owner(dir, &meta)?;
    check_mode(dir, &meta, privacy)
}

/// `mkdir dir 0700`; `Ok(true)` if we made it, `Ok(false)` if something
/// was already there (checked by the caller).
fn create(dir: &Path) -> Result<bool> {
    let made = |e: io::Error| DaemonError::io(format!("create {}", dir.display()), e);
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| DaemonError::io(format!("create {}", parent.display()), e))?;
            }
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(made(e)),
            }
        }
        Err(e) => Err(made(e)),
    }
}

/// Opens `dir` itself: a symbolic link or anything but a directory is
/// refused with a message saying so.
fn open_directory(dir: &Path) -> Result<File> {
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir);
    match opened {
        Ok(file) => Ok(file),
        // O_NOFOLLOW with O_DIRECTORY says ENOTDIR or ELOOP for a link.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
            let is_link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
            let why = match (is_link, fs::read_link(dir)) {
                (true, Ok(target)) => format!("is a symbolic link (to {})", target.display()),
                (true, Err(_)) => "is a symbolic link".to_string(),
                (false, _) => "is not a directory".to_string(),
            };
            Err(refused(dir, why))
        }
        Err(e) => Err(DaemonError::io(format!("open {}", dir.display()), e)),
    }
}

fn check_owner(dir: &Path, meta: &Metadata) -> Result<()> {
    let us = geteuid();
    if meta.uid() == us.as_raw() {
        return Ok(());
    }
    Err(refused(
        dir,
        format!(
            "is owned by {}, not by us ({}); another user may have made it to read what we keep there",
            describe_user(Uid::from_raw(meta.uid())),
            describe_user(us)
        ),
    ))
}

fn check_mode(dir: &Path, meta: &Metadata, privacy: Privacy) -> Result<()> {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & privacy.forbidden_bits() == 0 {
        return Ok(());
    }
    Err(refused(
        dir,
        format!(
            "is {} (mode {mode:o}, wanted {:o} or stricter); `chmod {:o} {}` if it is yours to keep",
            privacy.forbidden_words(),
            0o777 & !privacy.forbidden_bits(),
            mode & 0o7777 & !privacy.forbidden_bits(),
            dir.display()
        ),
    ))
}

/// `uid 1000 (alice)`, or `uid 1000` for a uid without a name.
fn describe_user(uid: Uid) -> String {
    match User::from_uid(uid) {
        Ok(Some(user)) => format!("uid {uid} ({})", user.name),
        _ => format!("uid {uid}"),
    }
}

fn refused(dir: &Path, why: String) -> DaemonError {
    DaemonError::User(format!(
        "{} {why}: refusing to keep keys or sockets there",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A scratch directory of ours, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("zos-private-dir-test-{}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn message(r: Result<()>) -> String {
        r.expect_err("refused").to_string()
    }

    #[test]
    fn a_missing_directory_and_its_parents_are_made_0700_and_ours() {
        let s = Scratch::new("make");
        let dir = s.0.join("a/b/c");
        ensure_private_dir(&dir, Privacy::OwnerOnly).unwrap();
        for p in [s.0.join("a"), s.0.join("a/b"), dir.clone()] {
            assert_eq!(mode_of(&p), 0o700, "{}", p.display());
            assert_eq!(fs::metadata(&p).unwrap().uid(), geteuid().as_raw());
        }
        // Accepted as it is the second time.
        ensure_private_dir(&dir, Privacy::OwnerOnly).unwrap();
    }

    #[test]
    fn a_symlink_to_our_own_private_directory_is_refused() {
        let s = Scratch::new("link");
        let real = s.0.join("real");
        ensure_private_dir(&real, Privacy::OwnerOnly).unwrap();
        let link = s.0.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let text = message(ensure_private_dir(&link, Privacy::OwnerOnly));
        assert!(
            text.contains(&format!("{} is a symbolic link", link.display())),
            "{text}"
        );
        let text = message(check_private_dir(&link, Privacy::OwnerOnly));
        assert!(text.contains("is a symbolic link"), "{text}");
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_refused() {
        let s = Scratch::new("file");
        let file = s.0.join("file");
        fs::write(&file, b"").unwrap();
        let text = message(ensure_private_dir(&file, Privacy::NoOthersWrite));
        assert!(text.contains("is not a directory"), "{text}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused_naming_its_owner_and_left_alone() {
        if !geteuid().is_root() {
            panic!("this test gives a directory to another user: run it as root (CI does)");
        }
        let s = Scratch::new("owner");
        let planted = s.0.join("planted");
        fs::DirBuilder::new().mode(0o700).create(&planted).unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o700)).unwrap();
        let nobody = User::from_name("nobody").unwrap().expect("user nobody");
        std::os::unix::fs::chown(&planted, Some(nobody.uid.as_raw()), None).unwrap();
        for privacy in [Privacy::NoOthersWrite, Privacy::OwnerOnly] {
            let text = message(ensure_private_dir(&planted, privacy));
            assert!(
                text.contains(&format!(
                    "{} is owned by uid {} (nobody), not by us (uid 0 (root))",
                    planted.display(),
                    nobody.uid
                )),
                "{text}"
            );
        }
        // Neither taken over nor opened up.
        let meta = fs::metadata(&planted).unwrap();
        assert_eq!(meta.uid(), nobody.uid.as_raw());
        assert_eq!(mode_of(&planted), 0o700);
    }

    #[test]
    fn a_directory_others_may_write_is_refused_and_not_changed() {
        let s = Scratch::new("mode");
        let dir = s.0.join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        for privacy in [Privacy::NoOthersWrite, Privacy::OwnerOnly] {
            let text = message(ensure_private_dir(&dir, privacy));
            assert!(text.contains("(mode 777"), "{text}");
        }
        assert_eq!(mode_of(&dir), 0o777);
    }

    #[test]
    fn owner_only_refuses_a_readable_directory_the_home_level_accepts() {
        let s = Scratch::new("readable");
        let dir = s.0.join("readable");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&dir, Privacy::NoOthersWrite).unwrap();
        let text = message(ensure_private_dir(&dir, Privacy::OwnerOnly));
        assert!(
            text.contains("open to group or others (mode 755, wanted 700 or stricter)"),
            "{text}"
        );
        let text = message(check_private_dir(&dir, Privacy::OwnerOnly));
        assert!(text.contains("mode 755"), "{text}");
    }

    #[test]
    fn checking_does_not_create() {
        let s = Scratch::new("check");
        let dir = s.0.join("absent");
        let text = message(check_private_dir(&dir, Privacy::OwnerOnly));
        assert!(text.contains("No such file"), "{text}");
        assert!(!dir.exists());
    }
}
