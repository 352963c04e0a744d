//! Helpers for the `zos` command line contract.

use std::time::Duration;

use serde_json::Value;

use super::host::Host;
use super::poll;
use super::proc::Proc;

/// How long a daemon may take to come up.
pub const STARTUP: Duration = Duration::from_secs(20);
/// How long discovery may take ("within a few seconds"; generous for a
/// loaded 2-core machine).
pub const DISCOVERY: Duration = Duration::from_secs(10);

/// A running zombie daemon and what it told about itself.
pub struct Zombie {
    /// The daemon.
    pub proc: Proc,
    /// Its instance name.
    pub name: String,
    /// The port from its `listening on ADDR` line.
    pub port: u16,
}

/// Starts `zos zombie --name NAME` (plus `extra` arguments) on `host` and
/// waits for `listening on ADDR`.
pub fn start_zombie(host: &Host, name: &str, extra: &[&str]) -> Zombie {
    let mut args = vec!["zombie", "--name", name];
    args.extend_from_slice(extra);
    let proc = host.spawn(&args);
    let line = proc.wait_log("listening on", STARTUP);
    let port = parse_port(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
    Zombie {
        proc,
        name: name.to_string(),
        port,
    }
}

/// The port of the address after `listening on` in a log line.
pub fn parse_port(line: &str) -> Option<u16> {
    let addr = line
        .split("listening on")
        .nth(1)?
        .split_whitespace()
        .next()?;
    addr.trim_end_matches(|c: char| !c.is_ascii_digit())
        .rsplit(':')
        .next()?
        .parse()
        .ok()
}

/// Starts `zos master` on `host` and waits for `master daemon ready`.
pub fn start_master(host: &Host) -> Proc {
    start_master_with(host, &[])
}

/// Starts `zos master EXTRA…` on `host` and waits for `master daemon ready`.
pub fn start_master_with(host: &Host, extra: &[&str]) -> Proc {
    let mut args = vec!["master"];
    args.extend_from_slice(extra);
    let proc = host.spawn(&args);
    proc.wait_log("master daemon ready", STARTUP);
    proc
}

/// `zos id`: the installation's fingerprint.
pub fn fingerprint(host: &Host) -> String {
    let out = host.run_ok(&["id"]);
    let fp = out.trim().to_string();
    assert!(
        is_fingerprint(&fp),
        "{}: `zos id` printed {out:?}, not a fingerprint",
        host.label
    );
    fp
}

/// Five dash-separated groups of four lowercase or uppercase hex digits.
pub fn is_fingerprint(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parses a command's stdout as JSON, with the text in the panic message.
pub fn json(host: &Host, args: &[&str]) -> Value {
    let out = host.run_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "{}: zos {} printed invalid JSON ({e}):\n{out}",
            host.label,
            args.join(" ")
        )
    })
}

/// `zos hosts --json` on a master.
pub fn hosts(master: &Host) -> Vec<Value> {
    match json(master, &["hosts", "--json"]) {
        Value::Array(a) => a,
        other => panic!("zos hosts --json: expected an array, got {other}"),
    }
}

/// Polls `zos hosts --json` until a host named `name` is listed.
pub fn wait_listed(master: &Host, name: &str, timeout: Duration) -> Option<Value> {
    poll::until(timeout, || {
        hosts(master).into_iter().find(|h| h["name"] == name)
    })
}

/// Polls `zos hosts --json` until no host named `name` is listed.
pub fn wait_unlisted(master: &Host, name: &str, timeout: Duration) -> bool {
    poll::until(timeout, || {
        (!hosts(master).iter().any(|h| h["name"] == name)).then_some(())
    })
    .is_some()
}

/// `zos pair-code --level LEVEL` on a zombie: the 6-digit code.
pub fn pair_code(zombie: &Host, level: &str) -> String {
    let out = zombie.run_ok(&["pair-code", "--level", level]);
    let code = out.lines().next().unwrap_or("").trim().to_string();
    assert!(
        code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()),
        "pair-code's first line should be a 6-digit code; stdout was {out:?}"
    );
    code
}

/// A 6-digit code that differs from `code`.
pub fn wrong_code(code: &str, k: u32) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1 + k) % 1_000_000)
}

/// `zos trust list --json`.
pub fn trust_list(host: &Host) -> Vec<Value> {
    match json(host, &["trust", "list", "--json"]) {
        Value::Array(a) => a,
        Value::Object(o) if o.get("entries").is_some_and(Value::is_array) => {
            o["entries"].as_array().unwrap().clone()
        }
        other => panic!("zos trust list --json: expected an array, got {other}"),
    }
}

/// Pairs `master` with the zombie `zombie_name` on `zombie` at `level`,
/// after waiting for the master to discover it.
pub fn pair(master: &Host, zombie: &Host, zombie_name: &str, level: &str) {
    wait_listed(master, zombie_name, DISCOVERY)
        .unwrap_or_else(|| panic!("master never listed {zombie_name}"));
    let code = pair_code(zombie, level);
    master.run_ok(&["pair", zombie_name, "--code", &code]);
}

/// Stdout and stderr of a command together, for message checks.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The fingerprint of a trust-list entry: its `fingerprint` field, or the
/// fingerprint of its hex `key`.
pub fn entry_fingerprint(e: &Value) -> Option<String> {
    if let Some(fp) = e["fingerprint"].as_str() {
        return Some(fp.to_string());
    }
    let key = zos_netproto::PublicKey::from_hex(e["key"].as_str()?).ok()?;
    Some(key.fingerprint().to_string())
}
