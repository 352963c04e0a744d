//! Issue 5: the master's exports on a dominated zombie, as its user sees
//! them: POSIX inside the mount, the policy enforced against escapes, and
//! nothing left after release — also when the master is killed or its
//! cable pulled.

mod common;

use std::path::{Path, PathBuf};

use common::nsenter::{sh_in, sh_ok};
use common::zos::{self, text};
use common::{Lan, secs};

/// A master `m` with exports, and a zombie `z1` it dominates.
struct Shared {
    lan: Lan,
    master: common::Proc,
    zombie: zos::Zombie,
    /// `m`'s exported folder `docs` (read-write).
    docs: PathBuf,
    /// `m`'s exported folder `pub` (read-only).
    public: PathBuf,
    /// The mount on `z1`.
    mount: String,
}

impl Shared {
    fn zombie_pid(&self) -> i32 {
        self.zombie.proc.pid()
    }
}

fn shared_lan() -> Shared {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let docs = m.home.join("docs");
    let public = m.home.join("pub");
    std::fs::create_dir_all(docs.join("private")).unwrap();
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(docs.join("hello.txt"), "hello from the master\n").unwrap();
    std::fs::write(docs.join("private/key"), "secret\n").unwrap();
    std::fs::write(public.join("readme"), "read me\n").unwrap();
    m.run_ok(&["export", docs.to_str().unwrap()]);
    m.run_ok(&["export", "--read-only", public.to_str().unwrap()]);
    m.run_ok(&["export", "--never", docs.join("private").to_str().unwrap()]);
    let exports = m.run_ok(&["exports"]);
    assert!(
        exports.contains("read-only") && exports.contains("never"),
        "{exports}"
    );

    let master = zos::start_master(m);
    let zombie = zos::start_zombie(z, "z1", &["--auto-accept"]);
    zos::pair(m, z, "z1", "complete");
    let out = m.run(&["dominate", "z1"]);
    assert!(out.status.success(), "zos dominate: {}", text(&out));
    let shown = text(&out);
    for part in ["zt", "fs", "xt", "shared folders docs, pub at"] {
        assert!(shown.contains(part), "dominate said {shown:?}");
    }
    let status = zos::json(z, &["status", "--json"]);
    let mount = status["sessions"][0]["mount"]
        .as_str()
        .unwrap_or_else(|| panic!("no mount in {status}"))
        .to_string();
    assert!(
        mount.starts_with(z.runtime.to_str().unwrap()),
        "the share is under the zombie's runtime dir: {mount}"
    );
    Shared {
        lan,
        master,
        zombie,
        docs,
        public,
        mount,
    }
}

#[test]
fn the_exports_behave_like_a_local_folder_and_writes_land_on_the_master() {
    let s = shared_lan();
    let (pid, mount) = (s.zombie_pid(), s.mount.clone());
    let listing = sh_ok(pid, &format!("ls {mount}"));
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["docs", "pub"]
    );
    assert_eq!(
        sh_ok(pid, &format!("cat {mount}/docs/hello.txt")),
        "hello from the master\n"
    );
    // Create, append, rename, mkdir, symlink, chmod, truncate, unlink, rmdir.
    sh_ok(
        pid,
        &format!(
            "set -e; cd {mount}/docs
             echo one > notes; echo two >> notes; mv notes notes.txt
             mkdir -p sub/deeper; ln -s ../notes.txt sub/link; chmod 600 notes.txt
             printf 0123456789 > cut; truncate -s 4 cut
             echo gone > tmp; rm tmp; mkdir empty; rmdir empty
             dd if=/dev/urandom of=big bs=1M count=8 conv=fsync status=none"
        ),
    );
    let docs = &s.docs;
    assert_eq!(
        std::fs::read_to_string(docs.join("notes.txt")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(
        std::fs::read_link(docs.join("sub/link")).unwrap(),
        Path::new("../notes.txt")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(docs.join("notes.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read(docs.join("cut")).unwrap(), b"0123");
    assert!(!docs.join("tmp").exists() && !docs.join("empty").exists());
    // The 8 MiB file read back on the zombie equals the master's copy.
    let zombie_sum = sh_ok(pid, &format!("md5sum < {mount}/docs/big"));
    let master_sum = String::from_utf8(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("md5sum < {}", docs.join("big").display()))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(zombie_sum, master_sum);
    // A change on the master shows on the zombie.
    std::fs::write(docs.join("from-master"), "fresh\n").unwrap();
    let seen = common::until(secs(5), || {
        let out = sh_in(pid, &format!("cat {mount}/docs/from-master"));
        (out.stdout == b"fresh\n").then_some(())
    });
    assert!(seen.is_some(), "the master's new file never showed");
}

#[test]
fn the_policy_holds_against_escapes_read_only_and_never() {
    let s = shared_lan();
    let (pid, mount) = (s.zombie_pid(), s.mount.clone());
    // A file that only the master's mount namespace holds.
    let secret_dir = s.lan.host("m").home.join("master-only");
    std::fs::create_dir_all(&secret_dir).unwrap();
    sh_ok(
        s.master.pid(),
        &format!(
            "mount -t tmpfs tmpfs {0} && echo master-secret > {0}/s",
            secret_dir.display()
        ),
    );
    let docs = &s.docs;
    std::os::unix::fs::symlink(secret_dir.join("s"), docs.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../master-only/s", docs.join("up-link")).unwrap();
    std::os::unix::fs::symlink(&secret_dir, docs.join("dir-link")).unwrap();

    for (what, script) in [
        (
            "`..` out of the mount",
            format!("cat {mount}/docs/../../master-only/s"),
        ),
        ("an absolute symlink", format!("cat {mount}/docs/abs-link")),
        ("a symlink to `..`", format!("cat {mount}/docs/up-link")),
        (
            "a symlinked directory",
            format!("cat {mount}/docs/dir-link/s"),
        ),
        ("the never path", format!("cat {mount}/docs/private/key")),
    ] {
        let out = sh_in(pid, &script);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("secret"),
            "{what} reached the master's secret: {}",
            text(&out)
        );
    }
    // The never path is not even listed.
    let listing = sh_ok(pid, &format!("ls -a {mount}/docs"));
    assert!(!listing.contains("private"), "{listing}");
    // Nothing can be created over it either.
    let out = sh_in(pid, &format!("mkdir {mount}/docs/private"));
    assert!(!out.status.success(), "mkdir over a never path worked");
    assert_eq!(
        std::fs::read_to_string(s.docs.join("private/key")).unwrap(),
        "secret\n",
        "the never path on the master is untouched"
    );
    // Hard links out of a read-only export into a writable one are refused.
    let out = sh_in(
        pid,
        &format!("ln {mount}/pub/readme {mount}/docs/readme-link"),
    );
    assert!(!out.status.success(), "a hard link across exports worked");
    // Read-only means read-only.
    assert_eq!(sh_ok(pid, &format!("cat {mount}/pub/readme")), "read me\n");
    for script in [
        format!("echo x > {mount}/pub/new"),
        format!("echo x >> {mount}/pub/readme"),
        format!("rm {mount}/pub/readme"),
        format!("mkdir {mount}/pub/d"),
        format!("chmod 777 {mount}/pub/readme"),
    ] {
        let out = sh_in(pid, &script);
        assert!(
            !out.status.success(),
            "`{script}` changed a read-only export"
        );
        assert!(
            text(&out).contains("Read-only file system"),
            "`{script}`: {}",
            text(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(s.public.join("readme")).unwrap(),
        "read me\n"
    );
    let _ = sh_in(s.master.pid(), &format!("umount {}", secret_dir.display()));
}

/// A program kept running in the zombie's namespaces (as root), fed lines on
/// its stdin and read line by line; killed with its process group on drop.
struct ZombieProgram {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ZombieProgram {
    fn start(zombie_pid: i32, program: &[&str]) -> ZombieProgram {
        use std::process::{Command, Stdio};
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &zombie_pid.to_string(), "-m", "-n", "--"])
            .args(program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        common::proc::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("start a program on the zombie");
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        ZombieProgram {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").expect("the zombie program's stdin");
        self.stdin.flush().unwrap();
    }

    /// The next line it printed (without the newline); panics at its end.
    fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        let n = self.stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the zombie program ended");
        line.trim_end().to_string()
    }
}

impl Drop for ZombieProgram {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group die_with_parent made for
        // this child (its pid), so nothing else is hit.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A shell on the zombie whose working directory is `dir`.
struct ZombieShell(ZombieProgram);

impl ZombieShell {
    fn in_dir(zombie_pid: i32, dir: &str) -> ZombieShell {
        ZombieShell(ZombieProgram::start(
            zombie_pid,
            &["sh", "-c", &format!("cd '{dir}' && exec sh")],
        ))
    }

    /// Runs `script` in the shell: (its exit status, its output).
    fn run(&mut self, script: &str) -> (i32, String) {
        self.0
            .send(&format!("{{ {script} ; }} 2>&1; echo \"@rc=$?\""));
        let mut out = String::new();
        loop {
            let line = self.0.line();
            if let Some(rc) = line.strip_prefix("@rc=") {
                return (rc.parse().unwrap(), out);
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// The effective uid and gid of a process.
fn process_owner(pid: i32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
fn zombie_root_cannot_plant_a_setuid_program_or_give_files_away() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let s = shared_lan();
    let (pid, mount) = (s.zombie_pid(), s.mount.clone());
    // A program the master's user (uid 1000) keeps in the export.
    let tool = s.docs.join("tool");
    std::fs::copy("/bin/sh", &tool).unwrap();
    std::os::unix::fs::chown(&tool, Some(1000), Some(1000)).unwrap();
    // Root on the zombie copies a shell in, then tries what the issue did.
    sh_ok(pid, &format!("cp /bin/sh {mount}/docs/sh"));
    for script in [
        format!("chown 0:0 {mount}/docs/tool"),
        format!("chmod 4755 {mount}/docs/tool"),
        format!("chmod 4755 {mount}/docs/sh"),
        format!("chmod g+s {mount}/docs/sh"),
        format!("chown 1000:1000 {mount}/docs/sh"),
        format!("chown 0:0 {mount}/docs/sh && chmod 4755 {mount}/docs/sh"),
    ] {
        let out = sh_in(pid, &script);
        assert!(!out.status.success(), "`{script}` worked");
        assert!(
            text(&out).contains("Operation not permitted"),
            "`{script}`: {}",
            text(&out)
        );
    }
    let daemon = process_owner(s.master.pid());
    let (t, sh) = (
        std::fs::metadata(&tool).unwrap(),
        std::fs::metadata(s.docs.join("sh")).unwrap(),
    );
    assert_eq!((t.uid(), t.gid()), (1000, 1000), "tool changed owner");
    assert_eq!(
        (sh.uid(), sh.gid()),
        daemon,
        "the zombie's copy belongs to the master daemon's user"
    );
    for (name, m) in [("tool", &t), ("sh", &sh)] {
        assert_eq!(
            m.permissions().mode() & 0o6000,
            0,
            "{name} has a set-id bit: {:o}",
            m.permissions().mode()
        );
    }
    // A local user on the master who runs the copy stays who they are.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(s.docs.join("sh"))
        .args(["-p", "-c", "id -u; cat /etc/shadow"])
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(
        !shown.contains("root:") && !String::from_utf8_lossy(&out.stdout).starts_with("0\n"),
        "a local user became root through the zombie's program: {shown}"
    );
}

#[test]
fn a_directory_the_zombie_works_in_is_cut_off_when_the_master_moves_it_away() {
    let s = shared_lan();
    let (pid, mount) = (s.zombie_pid(), s.mount.clone());
    let home = s.lan.host("m").home.clone();
    std::fs::create_dir_all(home.join("outside")).unwrap();
    for (what, dir, to) in [
        (
            "moved out of the export",
            "project",
            home.join("outside/project"),
        ),
        (
            "moved into the never path",
            "project2",
            s.docs.join("private/project2"),
        ),
    ] {
        std::fs::create_dir_all(s.docs.join(dir).join("sub")).unwrap();
        std::fs::write(s.docs.join(dir).join("notes"), "master notes\n").unwrap();
        let mut shell = ZombieShell::in_dir(pid, &format!("{mount}/docs/{dir}"));
        assert_eq!(shell.run("cat notes"), (0, "master notes\n".into()));
        assert_eq!(shell.run("ls").0, 0);

        std::fs::rename(s.docs.join(dir), &to).unwrap();
        // The master looks where a node is at most this long ago.
        std::thread::sleep(2 * zos_fileshare::server::RECHECK_AFTER);
        for script in [
            "cat notes",
            "ls",
            "ls sub",
            "echo planted > new",
            "mkdir made",
            "cat sub/../notes",
        ] {
            let (rc, out) = shell.run(script);
            assert!(
                rc != 0 && !out.contains("master notes"),
                "{what}: `{script}` in the zombie's working directory worked: {out}"
            );
        }
        assert!(!to.join("new").exists() && !to.join("made").exists());
        assert_eq!(
            std::fs::read_to_string(to.join("notes")).unwrap(),
            "master notes\n"
        );
    }
}

#[test]
fn a_zombie_holding_10000_files_gets_emfile_and_the_master_keeps_answering() {
    const FILES: usize = 10_000;
    let cap = zos_fileshare::server::MAX_DESCRIPTORS;
    let s = shared_lan();
    let (pid, mount) = (s.zombie_pid(), s.mount.clone());
    std::fs::create_dir(s.docs.join("many")).unwrap();
    for i in 0..FILES {
        std::fs::write(s.docs.join(format!("many/f{i:05}")), "x").unwrap();
    }
    let master_pid = s.master.pid();
    let master_fds = || {
        std::fs::read_dir(format!("/proc/{master_pid}/fd"))
            .unwrap()
            .count()
    };
    let limit: usize = std::fs::read_to_string(format!("/proc/{master_pid}/limits"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap();
    let before = master_fds();
    let log_before = s.master.log().len();

    // On the zombie: `open N` opens N more files and holds them, `close`
    // closes them all; each answers one line.
    let opener = format!(
        "import os, sys, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
for line in sys.stdin:
    if line.startswith('open'):
        err = 0
        for i in range(int(line.split()[1])):
            try:
                held.append(os.open('{mount}/docs/many/f%05d' % (i % {FILES}), os.O_RDONLY))
            except OSError as e:
                err = e.errno
                break
        print('opened', len(held), 'errno', err, flush=True)
    else:
        for fd in held:
            os.close(fd)
        held = []
        print('closed', flush=True)
"
    );
    let mut zombie = ZombieProgram::start(pid, &["python3", "-c", &opener]);
    let open = |zombie: &mut ZombieProgram, n: usize| -> (usize, i32) {
        zombie.send(&format!("open {n}"));
        let said = zombie.line();
        let words: Vec<&str> = said.split_whitespace().collect();
        (words[1].parse().unwrap(), words[3].parse().unwrap())
    };
    let (opened, errno) = open(&mut zombie, FILES);
    assert_eq!(errno, libc::EMFILE, "opened {opened}");
    assert!(
        opened <= cap && opened + 16 >= cap,
        "the zombie holds {opened} files, the cap is {cap}"
    );
    let held = master_fds();
    assert!(
        held < limit && held <= before + cap + 3 * zos_fileshare::server::MAX_IN_FLIGHT,
        "the master holds {held} descriptors (limit {limit}, {before} before)"
    );
    // More tries are refused as well and cost the master nothing.
    assert_eq!(open(&mut zombie, 500), (opened, libc::EMFILE));
    assert!(master_fds() <= held + 8);
    // The master still answers its control socket and pings the zombie.
    let m = s.lan.host("m");
    assert!(m.run_ok(&["hosts"]).contains("z1"));
    let status = zos::json(m, &["status", "--json"]);
    assert!(status.is_object(), "{status}");
    let grown = s.master.log().len() - log_before;
    assert!(grown < 16 << 10, "the master's log grew {grown} bytes");

    zombie.send("close");
    assert_eq!(zombie.line(), "closed");
    // Opening works again once the releases reached the master.
    let again = common::until(secs(20), || {
        let (n, errno) = open(&mut zombie, cap / 2);
        if errno == 0 {
            return Some(n);
        }
        zombie.send("close");
        assert_eq!(zombie.line(), "closed");
        None
    });
    assert_eq!(again, Some(cap / 2), "opening never worked again");
    drop(zombie);
    // What stays are the descriptors of recently used nodes, kept while the
    // zombie's kernel holds them.
    let kept = before + zos_fileshare::server::NODE_FDS + 16;
    let settled = common::until(secs(20), || (master_fds() <= kept).then_some(()));
    assert!(
        settled.is_some(),
        "the master kept {} descriptors",
        master_fds()
    );
}
