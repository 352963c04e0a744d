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
//! The master serves files as its own user, whoever the caller on the
//! zombie is (root included): new files and directories belong to the
//! server's user, owners never change (a chown to anything but the current
//! owner and group fails with `EPERM`), no setuid or setgid bit is ever
//! added (chmod asking for one: `EPERM`; a creation mode loses them) and
//! writes clear them as the kernel does for an unprivileged writer. uids and
//! gids are shown numerically. Run the server as the master's user.
//!
//! Everything the server holds for one zombie between calls (node
//! descriptors, open files and directories) is charged to that zombie's
//! budget of [`server::MAX_DESCRIPTORS`]; an open beyond it fails with
//! `EMFILE` on the zombie and the master goes on (listings kept for open
//! directories are capped the same way, [`server::MAX_LISTED_ENTRIES`],
//! `ENOMEM` beyond). Nodes keep a descriptor
//! only while recently used, so trees with far more files than that can be
//! walked.
//!
//! A node the master's user moves out of its export or under a never-path
//! stops answering (`ESTALE` / `ENOENT`), open handles included, within
//! [`server::RECHECK_AFTER`] (50 ms): calls check where their nodes and
//! handles are now, asking the kernel again once the last answer is older. Within the export a moved
//! node is served where it now is while it holds a descriptor or the zombie
//! has it open; otherwise it answers `ESTALE` and the zombie's kernel looks
//! its name up again.
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
