//! ZOS shared folders: master folders appear on a dominated zombie as a FUSE
//! mount served by the master over one session channel.
//!
//! - **Policy (master).** [`ExportStore`] keeps the export list
//!   (`exports.toml`, 0600, atomic replace): paths with an [`Access`]
//!   (read-write, read-only, never) and an optional target zombie.
//!   [`ExportStore::policy_for`] gives one zombie's [`ExportPolicy`].
//! - **Server (master).** [`serve`]`(channel, policy)` answers one zombie's
//!   calls on that channel until it ends; calls run concurrently on the
//!   blocking pool and replies go back as they finish.
//! - **Client (zombie).** [`mount`]`(channel, mountpoint, runtime)` makes a
//!   FUSE mount whose root holds one directory per export; [`Mount`]
//!   unmounts on [`Mount::unmount`] or drop. A dead channel makes every
//!   operation fail with `EIO` at once; the mount can still be removed.
//! - **Protocol.** [`proto`]: versioned, postcard-encoded calls with ids.
//!
//! ```no_run
//! # async fn demo(master: zos_netproto::session::Session, zombie: zos_netproto::session::Session) -> zos_fileshare::Result<()> {
//! use zos_fileshare::{Access, ExportStore, MountOptions, mount_async, serve};
//! // Master: one channel per dominated zombie.
//! let store = ExportStore::load("/home/me/.config/zos/exports.toml".as_ref())?;
//! let policy = store.policy_for("desk", &zombie_fingerprint());
//! let channel = master.mux.open("fileshare")?;
//! tokio::spawn(serve(channel, policy));
//! // Zombie: accept it and mount.
//! let channel = zombie.mux.accept().await.expect("channel");
//! let mount = mount_async(channel, "/run/zos/share".as_ref(), MountOptions::default()).await?;
//! // … later:
//! mount.unmount()?;
//! # Ok(()) }
//! # fn zombie_fingerprint() -> zos_netproto::Fingerprint { unimplemented!() }
//! ```
//!
//! # Security
//!
//! The master enforces the policy on every call; the zombie is not trusted.
//! Names are resolved one component at a time from the parent's descriptor
//! with `O_PATH | O_NOFOLLOW`; `/`, `.` and `..` are refused, so nothing
//! outside an export is reachable. The server never follows a symlink:
//! `readlink` returns the link's text and the zombie's kernel resolves it in
//! the zombie's own namespace. Never-paths are hidden inside exports (lookup
//! `ENOENT`, omitted from readdir, nothing created, renamed or linked onto
//! them), as are inodes also reachable under a never-path through a hard
//! link; other hard links the master's user made are served like any file.
//! Hard links are made only within one writable export; renames and links
//! across exports fail with `EXDEV`; read-only exports refuse every
//! modification with `EROFS`. Only regular files and directories are ever
//! opened on the master, and device nodes cannot be created.
//!
//! uids and gids pass through numerically (one user on both machines). A
//! server running as root gives new files the zombie caller's uid and gid;
//! otherwise they belong to the server's user, who is also the limit of what
//! the zombie can do. Run the server as the master's user.
//!
//! A directory renamed *on the master* while the zombie holds it keeps being
//! served where it now is (its descriptor follows it); never-paths are
//! matched by the path below the export that the zombie used and by inode.
#![deny(unsafe_code)]

pub mod client;
pub mod error;
pub mod policy;
pub mod proto;
pub mod server;
#[allow(unsafe_code)]
mod sys;

pub use client::{Mount, MountOptions, Timeouts, mount, mount_async, mount_with};
pub use error::{Error, Result};
pub use policy::{Access, Export, ExportEntry, ExportPolicy, ExportStore};
pub use server::serve;
