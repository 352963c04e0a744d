//! One host of the test LAN: its namespace, address, directories, and the
//! commands run inside it.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::lan::ip;
use super::proc::Proc;
use super::tmp::{TempDir, private_dir};

/// The `zos` binary under test.
pub const ZOS: &str = env!("CARGO_BIN_EXE_zos");

/// How long a one-shot command may run before the harness kills it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `"$0" "$@"` with a private, empty `/var/lib/xkb` (a tmpfs in the mount namespace that
/// `ip netns exec` makes for the command). X servers compile their keymap to
/// `/var/lib/xkb/server-N.xkm`, N their display number, and servers in different network
/// namespaces pick the same numbers (`-displayfd` probes the abstract sockets, which are per
/// namespace): two hosts' servers starting at once overwrote and removed each other's file, and
/// one died with "XKB: Failed to compile keymap" (CI, input_drive). `exec` keeps the pid, so
/// signals and `PR_SET_PDEATHSIG` reach the program itself.
pub const PRIVATE_XKB: &str = "if [ -d /var/lib/xkb ]; then \
    mount -t tmpfs -o mode=1777,size=16m zos-xkb /var/lib/xkb || exit 125; fi; exec \"$0\" \"$@\"";

/// Writes a sysctl under /proc/sys inside namespace `ns`.
pub fn write_sysctl(ns: &str, key: &str, value: &str) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo {value} > /proc/sys/{key}"),
        ])
        .output()
        .expect("run ip netns exec");
    assert!(
        out.status.success(),
        "sysctl {key} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A host: a network namespace with one interface `eth0`.
pub struct Host {
    /// Its label in the LAN (`m`, `z1` …).
    pub label: String,
    /// Its network namespace.
    pub ns: String,
    /// Its address on `eth0`.
    pub addr: Ipv4Addr,
    /// `ZOS_HOME` (and `HOME`) of everything run on it: a fresh directory.
    pub home: PathBuf,
    /// `XDG_RUNTIME_DIR` of everything run on it (mode 0700).
    pub runtime: PathBuf,
    bridge_ns: String,
    bridge_port: String,
    commands_log: PathBuf,
    logs: Mutex<Vec<PathBuf>>,
    next_log: AtomicU32,
    _dir: TempDir,
}

impl Host {
    pub(crate) fn new(
        label: &str,
        ns: &str,
        addr: Ipv4Addr,
        bridge_ns: &str,
        bridge_port: &str,
    ) -> Host {
        let dir = TempDir::new();
        let home = dir.path().join(format!("{label}-home"));
        let runtime = dir.path().join(format!("{label}-run"));
        private_dir(&home);
        private_dir(&runtime);
        let commands_log = dir.path().join(format!("{label}-commands.log"));
        Host {
            label: label.to_string(),
            ns: ns.to_string(),
            addr,
            home,
            runtime,
            bridge_ns: bridge_ns.to_string(),
            bridge_port: bridge_port.to_string(),
            logs: Mutex::new(vec![commands_log.clone()]),
            commands_log,
            next_log: AtomicU32::new(0),
            _dir: dir,
        }
    }

    /// A command that runs `program ARGS` inside this host's namespace with
    /// this host's environment (and nothing of the test process's).
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        // A missing tool fails here, naming its package, not later in `ip`'s log.
        super::tools::require(program);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "sh", "-c", PRIVATE_XKB, program])
            .args(args);
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("HOME", &self.home)
            .env("ZOS_HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("XDG_CACHE_HOME", self.home.join(".cache"))
            .env("LANG", "C.UTF-8")
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "1")
            .current_dir(&self.home);
        cmd
    }

    /// A fresh log file path in the home, remembered for [`Host::dump_logs`].
    pub fn new_log(&self, what: &str) -> PathBuf {
        let n = self.next_log.fetch_add(1, Ordering::Relaxed);
        let safe: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(24)
            .collect();
        let path = self.home.join(format!("log-{n:02}-{safe}.log"));
        self.logs.lock().unwrap().push(path.clone());
        path
    }

    /// Starts `zos ARGS` in the background; its output goes to a log file.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        self.spawn_env(args, &[])
    }

    /// Like [`Host::spawn`], with extra environment variables.
    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Proc {
        self.spawn_program(ZOS, args, env)
    }

    /// Starts any program in the background in this host's namespace.
    pub fn spawn_program(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = self.command(program, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let what = Path::new(program)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string()
            + "-"
            + args.first().copied().unwrap_or("");
        let log = self.new_log(&what);
        let label = format!("{}: {} {}", self.label, program, args.join(" "));
        let _ = std::fs::write(&log, format!("$ {label}\n"));
        Proc::start(&label, cmd, &log)
    }

    /// Runs `zos ARGS` to completion (at most [`RUN_TIMEOUT`]).
    pub fn run(&self, args: &[&str]) -> Output {
        self.exec(ZOS, args)
    }

    /// Runs `zos ARGS`, panics unless it succeeds, and returns its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}: zos {} failed ({}):\nstdout: {}\nstderr: {}",
            self.label,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs any program to completion in this host's namespace (at most
    /// [`RUN_TIMEOUT`]); the call and its output are kept for the logs.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.exec_env(program, args, &[])
    }

    /// Like [`Host::exec`], with extra environment variables.
    pub fn exec_env(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(program, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        super::proc::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pgid = child.id() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let shown = format!(
            "{} {}",
            Path::new(program).file_name().unwrap().to_string_lossy(),
            args.join(" ")
        );
        let out = match rx.recv_timeout(RUN_TIMEOUT) {
            Ok(out) => out.expect("wait for command"),
            Err(_) => {
                // SAFETY: kill(2) on the process group this call created.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let out = rx
                    .recv()
                    .expect("command thread")
                    .expect("wait for command");
                self.note(&shown, &out);
                panic!(
                    "{}: `{shown}` still ran after {RUN_TIMEOUT:?}; killed it.\nstdout: {}\nstderr: {}",
                    self.label,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        self.note(&shown, &out);
        out
    }

    fn note(&self, shown: &str, out: &Output) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.commands_log)
        {
            let _ = writeln!(
                f,
                "$ {shown}   [{}]\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Runs `f` on a thread that has entered this host's network namespace,
    /// so that sockets it opens live on this host's LAN.
    pub fn in_netns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.ns);
        let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        let handle = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on a valid namespace fd; it changes only this
            // thread's network namespace, and this thread ends with `f`.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            drop(ns);
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Cuts this host off the LAN (its cable is pulled: the bridge's side of
    /// its veth pair goes down).
    pub fn link_down(&self) {
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &self.bridge_port,
            "down",
        ]);
    }

    /// Plugs it back in.
    pub fn link_up(&self) {
        ip(&[
            "-n",
            &self.bridge_ns,
            "link",
            "set",
            &self.bridge_port,
            "up",
        ]);
    }

    /// Starts an X server for this host (see [`super::xvfb::Xvfb`]).
    pub fn xvfb(&self) -> super::xvfb::Xvfb {
        super::xvfb::Xvfb::start(self)
    }

    /// Prints this host's logs (daemons, commands) to stderr.
    pub fn dump_logs(&self) {
        for path in self.logs.lock().unwrap().iter() {
            let text = std::fs::read(path).unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            eprintln!("----- [{}] {} -----", self.label, path.display());
            eprintln!("{}", String::from_utf8_lossy(&text));
        }
    }
}
