//! Helpers of the window test: guarded processes and files, X tools, screenshots.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Kills and reaps a child process when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private (0700) directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("zos-viewer-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An Xvfb of its own (killed on drop).
pub struct Xvfb {
    _child: Reaped,
    pub display: String,
}

impl Xvfb {
    pub fn start(width: u16, height: u16) -> Xvfb {
        let child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .args(["-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = Reaped(child.unwrap_or_else(|e| panic!("cannot start Xvfb: {e}")));
        let mut number = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
            .read_line(&mut number)
            .expect("Xvfb's display number");
        Xvfb {
            _child: child,
            display: format!(":{}", number.trim()),
        }
    }
}

/// An X display to run tools against: its name and, for Xvnc, its cookie.
#[derive(Clone)]
pub struct XDisplay {
    pub display: String,
    pub xauthority: Option<PathBuf>,
}

impl XDisplay {
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display);
        match &self.xauthority {
            Some(a) => c.env("XAUTHORITY", a),
            None => c.env_remove("XAUTHORITY"),
        };
        c
    }

    /// Runs a tool; its stdout, or `None` if it failed (a tool that cannot be started at all
    /// fails the test).
    pub fn try_run(&self, program: &str, args: &[&str]) -> Option<String> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs a tool; its raw stdout, or `None` if it failed.
    #[allow(dead_code)]
    pub fn try_run_bytes(&self, program: &str, args: &[&str]) -> Option<Vec<u8>> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        out.status.success().then_some(out.stdout)
    }

    /// Starts a tool with `input` on its standard input (then closed); killed on drop.
    #[allow(dead_code)]
    pub fn spawn_stdin(&self, program: &str, args: &[&str], input: &str) -> Reaped {
        use std::io::Write;
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        Reaped(child)
    }

    /// Runs a tool that must succeed.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn xdotool(&self, args: &[&str]) -> String {
        self.run("xdotool", args)
    }

    /// The screen size, from xdpyinfo.
    pub fn size(&self) -> (u16, u16) {
        let info = self.run("xdpyinfo", &[]);
        let dims = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("dimensions:"))
            .and_then(|d| d.split_whitespace().next())
            .expect("xdpyinfo dimensions");
        let (w, h) = dims.split_once('x').unwrap();
        (w.parse().unwrap(), h.parse().unwrap())
    }

    /// The root window as RGBA, with its size.
    pub fn screenshot(&self) -> Image {
        let (width, height) = self.size();
        let out = self
            .command("import")
            .args(["-window", "root", "-depth", "8", "rgba:-"])
            .output()
            .unwrap();
        assert!(out.status.success(), "import failed");
        assert_eq!(
            out.stdout.len(),
            usize::from(width) * usize::from(height) * 4
        );
        Image {
            width: usize::from(width),
            height: usize::from(height),
            rgba: out.stdout,
        }
    }
}

/// An RGBA picture.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub rgba: Vec<u8>,
}

impl Image {
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 4;
        [self.rgba[i], self.rgba[i + 1], self.rgba[i + 2]]
    }

    /// Pixels of `other` (whole) that differ from this picture's region at (`x`, `y`),
    /// leaving out the box `skip` (x, y, w, h in `other`'s coordinates).
    pub fn differences(
        &self,
        x: usize,
        y: usize,
        other: &Image,
        skip: Option<(usize, usize, usize, usize)>,
    ) -> usize {
        let mut n = 0;
        for oy in 0..other.height {
            for ox in 0..other.width {
                if let Some((sx, sy, sw, sh)) = skip
                    && (sx..sx + sw).contains(&ox)
                    && (sy..sy + sh).contains(&oy)
                {
                    continue;
                }
                let (px, py) = (x + ox, y + oy);
                if px >= self.width
                    || py >= self.height
                    || self.pixel(px, py) != other.pixel(ox, oy)
                {
                    n += 1;
                }
            }
        }
        n
    }
}

/// Polls `f` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// The lines a child prints, as they come.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    /// Follows `child`'s stdout, echoing each line with `prefix`.
    pub fn follow(child: &mut Child, prefix: &'static str) -> Lines {
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{prefix}: {line}");
                let _ = tx.send(line);
            }
        });
        Lines(rx)
    }

    /// Waits for a line containing `wanted`; returns it.
    pub fn wait_for(&self, wanted: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(wanted) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {wanted:?}: {e}"),
            }
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
