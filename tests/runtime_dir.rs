//! Issue 9, runtime-dir squatting: without `XDG_RUNTIME_DIR` our sockets live
//! under `/tmp/zos-EUID`; another local user who makes that directory first
//! must not get what we put there (the pairing code a user types goes
//! through the control socket in it).
//!
//! Each test runs in a mount namespace of its own with a fresh tmpfs on
//! `/tmp` (so the machine's real `/tmp/zos-0` is never touched), where the
//! user `nobody` plays the other local user and root the victim.

#[path = "common/tools.rs"]
mod tools;

use std::process::{Command, Output};

/// Runs `script` with `sh` in a private mount namespace with an empty,
/// world-writable, sticky tmpfs on `/tmp`; `$ZOS` is the binary under test.
fn in_private_tmp(script: &str) -> Output {
    // SAFETY: geteuid(2) has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "these tests mount a tmpfs and act as nobody: run them as root"
    );
    tools::require_all(&[
        "unshare",
        "mount",
        "setpriv",
        "timeout",
        "sha256sum",
        "stat",
    ]);
    tools::require("/usr/bin/python3");
    let setup = "set -eu\nmount -t tmpfs -o mode=1777 zos-test-tmp /tmp\n";
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!("{setup}{script}"))
        .env("ZOS", env!("CARGO_BIN_EXE_zos"))
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run unshare (util-linux)");
    assert!(
        out.status.success(),
        "the test script failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The value of a `KEY=value` line the script printed.
fn field(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the script's output:\n{stdout}"))
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// As `nobody`, without a login: `setpriv` drops every id and group.
const AS_NOBODY: &str = "setpriv --reuid=nobody --regid=nogroup --clear-groups";

#[test]
fn a_daemon_refuses_a_runtime_base_another_user_planted() {
    let script = format!(
        r#"
{AS_NOBODY} mkdir -m 0700 /tmp/zos-0
mkdir -m 0700 /tmp/home
set +e
timeout 20 "$ZOS" --home /tmp/home zombie --name squatted --interface lo --no-viewers
echo "exit=$?"
set -e
echo "owner=$(stat -c %U:%a /tmp/zos-0)"
echo "inside=$(ls -A /tmp/zos-0 | tr '\n' ' ')"
"#
    );
    let out = in_private_tmp(&script);
    let exit = field(&out, "exit");
    assert_ne!(
        exit,
        "124",
        "the daemon ran with its sockets in a directory of nobody's:\n{}",
        stderr(&out)
    );
    assert_ne!(exit, "0", "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/tmp/zos-0 is owned by uid 65534 (nobody), not by us (uid 0 (root))"),
        "the refusal does not name the directory and its owner:\n{err}"
    );
    // Left as nobody made it, and nothing of ours put in it.
    assert_eq!(field(&out, "owner"), "nobody:700");
    assert_eq!(field(&out, "inside"), "");
}

#[test]
fn a_pairing_code_never_reaches_a_socket_another_user_planted() {
    // nobody makes our runtime base readable to all and, at the path our
    // CLI derives from the home, a control socket of its own that writes
    // down whatever a client sends.
    let listener = r#"
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(1)
c, _ = s.accept()
c.settimeout(5)
data = b""
try:
    while b"\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
open(log, "wb").write(data)
"#;
    let script = format!(
        r#"
mkdir -m 0700 /tmp/home
hash=$(printf %s /tmp/home | sha256sum | cut -c1-12)
run=/tmp/zos-0/zos-$hash
{AS_NOBODY} mkdir -m 0755 /tmp/zos-0 "$run"
printf '%s\n' '{listener}' > /tmp/listener.py
{AS_NOBODY} /usr/bin/python3 /tmp/listener.py "$run/control.sock" /tmp/stolen &
squatter=$!
i=0
while [ ! -S "$run/control.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -S "$run/control.sock" ] || {{ echo "the squatter's socket did not appear" >&2; exit 1; }}
set +e
timeout 20 "$ZOS" --home /tmp/home pair somezombie --code 314159
echo "exit=$?"
set -e
kill $squatter 2>/dev/null || true
wait $squatter 2>/dev/null || true
echo "stolen=$(cat /tmp/stolen 2>/dev/null)"
"#
    );
    let out = in_private_tmp(&script);
    let stolen = field(&out, "stolen");
    assert!(
        !stolen.contains("314159"),
        "another user's socket received the pairing code: {stolen}"
    );
    assert_ne!(field(&out, "exit"), "0", "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/tmp/zos-0 is owned by uid 65534 (nobody)"),
        "the refusal does not name the directory and its owner:\n{err}"
    );
}

#[test]
fn an_xdg_runtime_dir_of_another_user_or_open_to_others_is_refused() {
    let script = format!(
        r#"
mkdir -m 0700 /tmp/home
{AS_NOBODY} mkdir -m 0700 /tmp/theirs
mkdir -m 0755 /tmp/open
mkdir -m 0700 /tmp/ours
set +e
XDG_RUNTIME_DIR=/tmp/theirs "$ZOS" --home /tmp/home id
echo "theirs=$?"
XDG_RUNTIME_DIR=/tmp/open "$ZOS" --home /tmp/home id
echo "open=$?"
XDG_RUNTIME_DIR=/tmp/ours "$ZOS" --home /tmp/home id >/dev/null
echo "ours=$?"
set -e
echo "inside_theirs=$(ls -A /tmp/theirs | tr '\n' ' ')"
"#
    );
    let out = in_private_tmp(&script);
    let err = stderr(&out);
    assert_ne!(field(&out, "theirs"), "0", "{err}");
    assert_ne!(field(&out, "open"), "0", "{err}");
    assert_eq!(field(&out, "ours"), "0", "{err}");
    assert!(
        err.contains("XDG_RUNTIME_DIR: /tmp/theirs is owned by uid 65534 (nobody)"),
        "{err}"
    );
    assert!(
        err.contains("XDG_RUNTIME_DIR: /tmp/open is open to group or others (mode 755"),
        "{err}"
    );
    assert_eq!(field(&out, "inside_theirs"), "");
}
