//! The zombie's side: [`mount`] shows the master's exports as a FUSE mount.
//!
//! The mount's root is a synthetic read-only directory with one entry per
//! export. Every other request becomes a call on the master over the
//! channel, many in flight at once. When the channel or session dies, every
//! pending and later operation fails with `EIO` at once; the mount can still
//! be removed ([`Mount::unmount`], or dropping the [`Mount`]), lazily if
//! something still uses it.
//!
//! Mounting needs `/dev/fuse` and either root (the mount is made directly;
//! `allow_other` is then on, so every local user can use it, with the
//! kernel checking modes through `default_permissions`) or `fusermount3`.

mod convert;
mod core;
mod fs;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuser::{Config, MountOption, SessionACL};
use tokio::runtime::Handle;
use zos_netproto::mux::{Channel, ChannelReceiver, ChannelSender};

pub use self::fs::Timeouts;
use crate::error::{Error, Result};
use crate::proto::{self, ClientMsg, ExportInfo, ServerMsg};

/// How long the master may take to answer `Hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(15);

/// How a share is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Let every local user use the mount (`allow_other`; needs root or
    /// `user_allow_other` in `/etc/fuse.conf`). Default: when root.
    pub allow_other: bool,
    /// How long the kernel caches attributes and names (default 1 s each).
    pub timeouts: Timeouts,
    /// Read-ahead of the mount in KiB, set through its `/sys/class/bdi`
    /// entry when root (default 4096; `None` keeps the kernel's 128).
    pub read_ahead_kb: Option<u32>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: nix::unistd::geteuid().is_root(),
            timeouts: Timeouts {
                attr: Duration::from_secs(1),
                entry: Duration::from_secs(1),
            },
            read_ahead_kb: Some(4096),
        }
    }
}

/// A mounted share. Dropping it unmounts (lazily if busy).
///
/// Unmounting waits up to 2 s for the FUSE thread to end (it ends at once
/// when nothing uses the mount); in async code unmount or drop it inside
/// `spawn_blocking`. The file service's channel closes when the kernel lets
/// go of the mount, which ends the master's [`serve`](crate::serve).
pub struct Mount {
    mountpoint: PathBuf,
    exports: Vec<ExportInfo>,
    unmounter: Option<fuser::SessionUnmounter>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    watcher: core::Watcher,
    mounted: bool,
}

/// Mounts the share served at the other end of `channel` at `mountpoint`
/// (an existing empty directory), with default [`MountOptions`].
///
/// Blocks the calling thread until the master answered and the kernel
/// mounted; call it from a plain or blocking thread, never from a runtime
/// worker (in async code use [`mount_async`]). The file service's tasks run
/// on `runtime`, which must outlive the mount.
pub fn mount(channel: Channel, mountpoint: &Path, runtime: Handle) -> Result<Mount> {
    mount_with(channel, mountpoint, runtime, MountOptions::default())
}

/// [`mount`] with options.
pub fn mount_with(
    channel: Channel,
    mountpoint: &Path,
    runtime: Handle,
    options: MountOptions,
) -> Result<Mount> {
    let (tx, rx, exports) = runtime.block_on(handshake(channel))?;
    mount_connected(tx, rx, exports, mountpoint, runtime, options)
}

/// [`mount_with`] for async code: the kernel side runs on a blocking thread.
pub async fn mount_async(
    channel: Channel,
    mountpoint: &Path,
    options: MountOptions,
) -> Result<Mount> {
    let (tx, rx, exports) = handshake(channel).await?;
    let runtime = Handle::current();
    let mountpoint = mountpoint.to_path_buf();
    tokio::task::spawn_blocking(move || {
        mount_connected(tx, rx, exports, &mountpoint, runtime, options)
    })
    .await
    .map_err(|e| Error::Mount {
        path: String::new(),
        reason: format!("mount thread failed: {e}"),
    })?
}

async fn handshake(channel: Channel) -> Result<(ChannelSender, ChannelReceiver, Vec<ExportInfo>)> {
    let (tx, mut rx) = channel.split();
    rx.set_max_message(proto::MAX_MESSAGE);
    tx.send(&proto::encode(&ClientMsg::Hello {
        version: proto::VERSION,
    }))
    .await?;
    let answer = tokio::time::timeout(WELCOME_TIMEOUT, rx.recv())
        .await
        .map_err(|_| Error::Protocol("the master did not answer Hello".into()))??
        .ok_or_else(|| Error::Protocol("the master closed the channel at Hello".into()))?;
    match proto::decode_server(&answer)? {
        ServerMsg::Welcome { version, exports } if version == proto::VERSION => {
            Ok((tx, rx, exports))
        }
        ServerMsg::Welcome { version, .. } => Err(Error::Version {
            peer: version,
            ours: proto::VERSION,
        }),
        ServerMsg::Refused { reason } => Err(Error::Refused(reason)),
        ServerMsg::Reply { .. } => Err(Error::Protocol("a reply before Welcome".into())),
    }
}

fn mount_connected(
    tx: ChannelSender,
    rx: ChannelReceiver,
    exports: Vec<ExportInfo>,
    mountpoint: &Path,
    runtime: Handle,
    options: MountOptions,
) -> Result<Mount> {
    let failed = |reason: String| Error::Mount {
        path: mountpoint.display().to_string(),
        reason,
    };
    let mountpoint = std::fs::canonicalize(mountpoint).map_err(|e| failed(e.to_string()))?;
    let core = Arc::new(core::Core::start(tx, rx, &runtime));
    let watcher = core.watcher();
    let filesystem = fs::ShareFs::new(core, exports.clone(), options.timeouts);
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("zos".into()),
        MountOption::Subtype("zos".into()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if options.allow_other {
        config.acl = SessionACL::All;
    }
    let mut session =
        fuser::Session::new(filesystem, &mountpoint, &config).map_err(|e| failed(e.to_string()))?;
    let unmounter = session.unmount_callable();
    let thread = std::thread::Builder::new()
        .name("zos-fuse".into())
        .spawn(move || session.run())
        .map_err(|e| failed(format!("start the FUSE thread: {e}")))?;
    let mount = Mount {
        mountpoint,
        exports,
        unmounter: Some(unmounter),
        thread: Some(thread),
        watcher,
        mounted: true,
    };
    if let Some(kb) = options.read_ahead_kb {
        mount.set_read_ahead(kb);
    }
    tracing::info!(
        "shared folders mounted at {} ({} exports)",
        mount.mountpoint.display(),
        mount.exports.len()
    );
    Ok(mount)
}

impl Mount {
    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// The exports shown in its root, in order.
    pub fn exports(&self) -> &[ExportInfo] {
        &self.exports
    }

    /// Why the channel to the master is gone, once it is (every operation
    /// then fails with `EIO`).
    pub fn connection_lost(&self) -> Option<String> {
        self.watcher.lost()
    }

    /// Unmounts; lazily (detached now, gone when the last user lets go) if
    /// something still uses it.
    pub fn unmount(mut self) -> Result<()> {
        self.detach()
    }

    fn set_read_ahead(&self, kb: u32) {
        let Ok(md) = std::fs::metadata(&self.mountpoint) else {
            return;
        };
        let dev = md.dev();
        let bdi = format!(
            "/sys/class/bdi/{}:{}/read_ahead_kb",
            nix::sys::stat::major(dev),
            nix::sys::stat::minor(dev)
        );
        if let Err(e) = std::fs::write(&bdi, kb.to_string()) {
            tracing::debug!("read-ahead not set ({bdi}: {e})");
        }
    }

    fn detach(&mut self) -> Result<()> {
        if !std::mem::replace(&mut self.mounted, false) {
            return Ok(());
        }
        let result = match crate::sys::detach(&self.mountpoint) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
            Err(nix::errno::Errno::EPERM) => fusermount_detach(&self.mountpoint),
            Err(e) => Err(Error::Mount {
                path: self.mountpoint.display().to_string(),
                reason: format!("umount: {e}"),
            }),
        };
        // fuser's own handle finds it gone (or detached) and lets go.
        if let Some(mut u) = self.unmounter.take() {
            let _ = u.unmount();
        }
        // The FUSE thread ends once the kernel lets go (at once when idle).
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::info!(
                    "{} is busy: detached, it goes when its last user lets go",
                    self.mountpoint.display()
                );
            }
        }
        tracing::info!(
            "shared folders unmounted from {}",
            self.mountpoint.display()
        );
        result
    }
}

fn fusermount_detach(path: &Path) -> Result<()> {
    let status = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(path)
        .status()
        .map_err(|e| Error::Mount {
            path: path.display().to_string(),
            reason: format!("fusermount3: {e}"),
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Mount {
            path: path.display().to_string(),
            reason: format!("fusermount3 -u -z failed ({status})"),
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            tracing::warn!("{e}");
        }
    }
}
