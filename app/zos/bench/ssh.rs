//! A private sshd on 127.0.0.1 and an `ssh -L` tunnel through it, as the
//! comparison the paper's users had.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Sink, cpu};

/// A running tunnel: local port → sshd → our sink.
pub struct Tunnel {
    /// Where to connect to go through the tunnel.
    pub local: SocketAddr,
    /// The sink at the far end.
    pub sink: Sink,
    sshd: Child,
    ssh: Child,
    dir: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Tunnel {
    /// Starts sshd and the tunnel; fails if openssh is not installed.
    pub async fn start() -> Result<Tunnel> {
        let sshd_bin = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .context("sshd not installed (apt-get install openssh-server)")?;
        let dir = std::env::temp_dir().join(format!("zos-bench-ssh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::create_dir_all("/run/sshd");
        for (name, kind) in [("host_key", "ed25519"), ("client_key", "ed25519")] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", kind, "-N", "", "-f"])
                .arg(dir.join(name))
                .status()
                .context("ssh-keygen")?;
            if !st.success() {
                bail!("ssh-keygen failed");
            }
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))?;
        let port = free_port()?;
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile none\nStrictModes no\nPermitRootLogin yes\nUsePAM no\nPasswordAuthentication no\nAllowTcpForwarding yes\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config)?;
        let sshd = Command::new(sshd_bin)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(Stdio::null())
            .spawn()
            .context("start sshd")?;
        let sink = Sink::start().await?;
        let local_port = free_port()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let ssh = Command::new("ssh")
            .args([
                "-N",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg("-i")
            .arg(dir.join("client_key"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-L")
            .arg(format!("{local_port}:127.0.0.1:{}", sink.addr.port()))
            .arg(format!("{user}@127.0.0.1"))
            .spawn()
            .context("start ssh")?;
        let local: SocketAddr = ([127, 0, 0, 1], local_port).into();
        while std::net::TcpStream::connect(local).is_err() {
            if Instant::now() > deadline {
                bail!("ssh -L tunnel did not come up");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The probe connection above reached the sink; swallow its count.
        let _ = sink.wait().await;
        Ok(Tunnel {
            local,
            sink,
            sshd,
            ssh,
            dir,
        })
    }

    /// CPU seconds used so far by ssh, sshd and its session children.
    pub fn cpu_seconds(&self) -> f64 {
        let mut pids = cpu::tree(self.sshd.id());
        pids.push(self.ssh.id());
        pids.into_iter().map(cpu::seconds_of).sum()
    }

    /// Stops ssh and sshd and removes the keys.
    pub fn stop(mut self) {
        let _ = self.ssh.kill();
        let _ = self.ssh.wait();
        for pid in cpu::tree(self.sshd.id()).into_iter().rev() {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.sshd.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
