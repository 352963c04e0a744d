//! Time from starting a zombie process to a master seeing it over mDNS.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use zos_netproto::discovery::{Browser, Change, Interfaces};

use super::median;

/// Starts a real `zos zombie` `runs` times and times its discovery by an
/// in-process browser (the master daemon's own code path).
pub fn run(runs: usize, interface: &str) -> Result<()> {
    let exe = std::env::current_exe()?;
    let (browser, changes) = Browser::start(&Interfaces::Only(vec![interface.to_string()]))?;
    let mut times = Vec::new();
    println!("zos bench discovery: mDNS on {interface}, median of {runs} runs");
    for i in 0..runs {
        let home = std::env::temp_dir().join(format!("zos-bench-disc-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let name = format!("bench-{}-{i}", std::process::id());
        let start = Instant::now();
        let mut child = Command::new(&exe)
            .arg("--home")
            .arg(&home)
            .args(["zombie", "--name", &name, "--interface", interface])
            .stderr(Stdio::null())
            .spawn()
            .context("start zombie")?;
        let found = loop {
            match changes.recv_timeout(Duration::from_secs(10)) {
                Ok(Change::Up(h)) if h.name == name => break Some(start.elapsed()),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&home);
        match found {
            Some(t) => {
                println!("run {}: {:.0} ms", i + 1, t.as_secs_f64() * 1e3);
                times.push(t.as_secs_f64());
            }
            None => bail!("zombie {name} was not discovered within 10 s"),
        }
        // Let its goodbye pass before the next run.
        while changes.recv_timeout(Duration::from_millis(300)).is_ok() {}
    }
    browser.stop();
    println!(
        "zombie start → seen by master: median {:.0} ms (process start, identity, listener, mDNS probe/announce included)",
        median(times) * 1e3
    );
    Ok(())
}
