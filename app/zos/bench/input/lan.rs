//! The bench's two-host LAN: network namespaces `zosb-PID-m` and
//! `zosb-PID-z` joined by a veth pair (10.77.0.1 and 10.77.0.2), an Xvfb
//! screen per host and purpose, processes started inside with
//! `ip netns exec`, and X connections opened from a thread that joined a
//! namespace (X's abstract sockets belong to one network namespace).
//! Everything is removed on drop.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The shell line that mounts an empty tmpfs over `/var/lib/xkb` (in the mount namespace of
/// `ip netns exec`) and execs `"$0" "$@"`.
const PRIVATE_XKB: &str = "if [ -d /var/lib/xkb ]; then \
    mount -t tmpfs -o mode=1777,size=16m zos-xkb /var/lib/xkb || exit 125; fi; exec \"$0\" \"$@\"";

/// The master's address.
pub const MASTER_ADDR: &str = "10.77.0.1";
/// The zombie's address.
pub const ZOMBIE_ADDR: &str = "10.77.0.2";

/// The two namespaces; deleted (with what runs in them) on drop.
pub struct Lan {
    /// The master's namespace.
    pub m: String,
    /// The zombie's namespace.
    pub z: String,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run ip (package iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Lan {
    /// Makes the namespaces and joins them; needs root.
    pub fn new() -> Result<Lan> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("zos bench input builds network namespaces: run it as root");
        }
        let pid = std::process::id();
        let lan = Lan {
            m: format!("zosb-{pid}-m"),
            z: format!("zosb-{pid}-z"),
        };
        ip(&["netns", "add", &lan.m])?;
        ip(&["netns", "add", &lan.z])?;
        ip(&[
            "-n", &lan.m, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &lan.z,
        ])?;
        for (ns, addr) in [(&lan.m, MASTER_ADDR), (&lan.z, ZOMBIE_ADDR)] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(lan)
    }

    /// `program ARGS` inside namespace `ns`, ending with us (SIGTERM).
    pub fn command(&self, ns: &str, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        // A private /var/lib/xkb: X servers of two namespaces pick the same display number and
        // would overwrite each other's compiled keymap there (`server-N.xkm`), one failing with
        // "XKB: Failed to compile keymap". `exec` keeps the pid (and the parent-death signal).
        cmd.args(["netns", "exec", ns, "sh", "-c", PRIVATE_XKB])
            .arg(program)
            .args(args);
        zos_display::die_with_parent(&mut cmd, libc::SIGTERM);
        cmd
    }

    /// Starts `cmd` with its output in `log`; killed on drop.
    pub fn spawn(&self, mut cmd: Command, log: &Path) -> Result<Guard> {
        let file = std::fs::File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd.spawn().with_context(|| format!("start {cmd:?}"))?;
        Ok(Guard(child))
    }

    /// An Xvfb (1280x800) in namespace `ns`.
    pub fn xvfb(&self, ns: &str) -> Result<Xvfb> {
        let mut cmd = self.command(
            ns,
            Path::new("Xvfb"),
            &[
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
        );
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().context("start Xvfb (package xvfb)")?;
        let stdout = child.stdout.take().context("Xvfb's stdout")?;
        let mut number = String::new();
        std::io::BufReader::new(stdout).read_line(&mut number)?;
        let number = number.trim().to_string();
        if number.is_empty() {
            bail!("Xvfb in {ns} reported no display");
        }
        Ok(Xvfb {
            _guard: Guard(child),
            display: format!(":{number}"),
        })
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in [&self.m, &self.z] {
            let pids = Command::new("ip").args(["netns", "pids", ns]).output();
            if let Ok(out) = pids {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: kill(2) on a process inside a namespace this bench made.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A child process killed (SIGTERM, then SIGKILL) and reaped on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An X screen in a namespace.
pub struct Xvfb {
    _guard: Guard,
    /// Its display, e.g. `:5`.
    pub display: String,
}

/// Runs `f` on a thread that joined network namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = PathBuf::from(format!("/run/netns/{ns}"));
    let file = std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
    let thread = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on a namespace file we opened; it changes only
        // this thread's network namespace, and the thread ends with `f`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        drop(file);
        Ok(f())
    });
    match thread.join() {
        Ok(result) => result.context("join the namespace"),
        Err(_) => bail!("a thread in namespace {ns} panicked"),
    }
}
