//! Serves one directory and mounts it over a Noise session on 127.0.0.1, in
//! one process, until SIGINT or SIGTERM; then
//! unmounts. Used by `packaging/pjdfstest.sh` and handy for trying things:
//!
//! ```sh
//! cargo run -p zos-fileshare --example loopback_share -- /srv/dir /mnt/share
//! ```
//!
//! The export appears as `/mnt/share/<base name of /srv/dir>`. Needs root
//! (or fusermount3) for the mount.

use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use zos_fileshare::{Export, ExportPolicy};
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (Some(dir), Some(mnt)) = (args.next(), args.next()) else {
        eprintln!("usage: loopback_share EXPORT_DIR MOUNTPOINT");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Runtime::new()?;
    let (master, zombie) = rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let zid = Identity::generate()?;
        let z = tokio::spawn(async move {
            let (s, _) = l
                .accept()
                .await
                .map_err(|e| zos_netproto::Error::io("accept", e))?;
            Session::accept(s, &zid, Role::Zombie, "zombie").await
        });
        let m = Session::connect(addr, &Identity::generate()?, Role::Master, "master").await?;
        Ok::<_, Box<dyn std::error::Error>>((m, z.await??))
    })?;
    let policy = ExportPolicy::new(
        vec![Export {
            path: std::fs::canonicalize(&dir)?,
            read_only: false,
        }],
        vec![],
    );
    let channel = master.mux.open("fileshare")?;
    rt.spawn(zos_fileshare::serve(channel, policy));
    let accepted = rt.block_on(zombie.mux.accept()).ok_or("no channel")?;
    let mount = zos_fileshare::mount(accepted, &mnt, rt.handle().clone())?;
    println!("mounted {}", mount.mountpoint().display());
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    mount.unmount()?;
    Ok(())
}
