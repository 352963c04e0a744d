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
