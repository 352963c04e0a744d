//! A private sshd on 127.0.0.1 and an `ssh -L` tunnel through it, as the
//! comparison the paper's users had; `zos bench fs` mounts sshfs through
//! the same sshd.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Sink, cpu};

/// A private sshd on 127.0.0.1 with a fresh host key and one client key.
pub struct Sshd {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The user to log in as (the current one).
    pub user: String,
    child: Child,
    dir: PathBuf,
}

/// A running tunnel: local port → sshd → our sink.
pub struct Tunnel {
    /// Where to connect to go through the tunnel.
    pub local: SocketAddr,
    /// The sink at the far end.
    pub sink: Sink,
    sshd: Sshd,
    ssh: Child,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Sshd {
    /// Starts sshd; fails if openssh is not installed.
    pub fn start() -> Result<Sshd> {
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
             PidFile none\nStrictModes no\nPermitRootLogin yes\nUsePAM no\nPasswordAuthentication no\nAllowTcpForwarding yes\n\
             Subsystem sftp internal-sftp\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config)?;
        let child = Command::new(sshd_bin)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(Stdio::null())
            .spawn()
            .context("start sshd")?;
        let sshd = Sshd {
            port,
            user,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sshd)
    }

    /// The client's private key.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// ssh options that trust this sshd without a known-hosts file.
    pub fn client_options(&self) -> Vec<String> {
        [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// CPU seconds used so far by sshd and its session children.
    pub fn cpu_seconds(&self) -> f64 {
        cpu::tree(self.child.id())
            .into_iter()
            .map(cpu::seconds_of)
            .sum()
    }

    /// Stops sshd and its sessions and removes the keys.
    pub fn stop(mut self) {
        for pid in cpu::tree(self.child.id()).into_iter().rev() {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tunnel {
    /// Starts sshd and the tunnel; fails if openssh is not installed.
    pub async fn start() -> Result<Tunnel> {
        let sshd = Sshd::start()?;
        let sink = Sink::start().await?;
        let local_port = free_port()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ssh = Command::new("ssh");
        ssh.arg("-N");
        for o in sshd.client_options() {
            ssh.arg("-o").arg(o);
        }
        let ssh = ssh
            .arg("-i")
            .arg(sshd.client_key())
            .arg("-p")
            .arg(sshd.port.to_string())
            .arg("-L")
            .arg(format!("{local_port}:127.0.0.1:{}", sink.addr.port()))
            .arg(format!("{}@127.0.0.1", sshd.user))
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
        })
    }

    /// CPU seconds used so far by ssh, sshd and its session children.
    pub fn cpu_seconds(&self) -> f64 {
        self.sshd.cpu_seconds() + cpu::seconds_of(self.ssh.id())
    }

    /// Stops ssh and sshd and removes the keys.
    pub fn stop(mut self) {
        let _ = self.ssh.kill();
        let _ = self.ssh.wait();
        self.sshd.stop();
    }
}
