//! Barrier 2.4's side of the comparison: `barriers` on a master screen of
//! its own, `barrierc` on a zombie screen of its own, in the same two
//! namespaces over the same veth pair, with TLS and mutual certificate
//! checks as Barrier ships them (certificates made here with openssl, each
//! side trusting the other's SHA-256 fingerprint), the client to the right
//! of the server.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::lan::{Guard, Lan, MASTER_ADDR};
use super::probe::{Receiver, Sender, What};

/// Barrier's port.
const PORT: u16 = 24800;

/// A running server and client.
pub struct Barrier {
    _client: Guard,
    _server: Guard,
}

/// Makes a self-signed certificate (and key) at `pem`; returns its
/// SHA-256 fingerprint as Barrier writes it.
fn certificate(pem: &Path) -> Result<String> {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Barrier",
        ])
        .args(["-newkey", "rsa:2048", "-keyout"])
        .arg(pem)
        .arg("-out")
        .arg(pem)
        .output()
        .context("run openssl (package openssl)")?;
    if !out.status.success() {
        bail!("openssl req: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hex: String = text
        .split('=')
        .nth(1)
        .context("openssl printed no fingerprint")?
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect();
    Ok(format!("v2:sha256:{}", hex.to_ascii_lowercase()))
}

/// Starts both and waits until the client is connected.
pub fn start(lan: &Lan, dir: &Path, server_screen: &str, client_screen: &str) -> Result<Barrier> {
    let (server_profile, client_profile) = (dir.join("barrier-server"), dir.join("barrier-client"));
    for profile in [&server_profile, &client_profile] {
        std::fs::create_dir_all(profile.join("SSL/Fingerprints"))?;
    }
    let server_fp = certificate(&server_profile.join("SSL/Barrier.pem"))?;
    let client_fp = certificate(&client_profile.join("SSL/Barrier.pem"))?;
    std::fs::write(
        client_profile.join("SSL/Fingerprints/TrustedServers.txt"),
        server_fp + "\n",
    )?;
    std::fs::write(
        server_profile.join("SSL/Fingerprints/TrustedClients.txt"),
        client_fp + "\n",
    )?;
    let config = dir.join("barrier.conf");
    std::fs::write(
        &config,
        "section: screens\n  m:\n  z:\nend\nsection: links\n  m:\n    right = z\n  z:\n    left = m\nend\n",
    )?;
    let text = |p: &Path| p.to_string_lossy().into_owned();
    let address = format!("{MASTER_ADDR}:{PORT}");
    // In the foreground, once, TLS on, its own profile (certificates) and screen.
    let common = |name: &'static str, profile: String, screen: &str| -> Vec<String> {
        let flags = [
            "-f",
            "--no-restart",
            "--no-tray",
            "--debug",
            "NOTE",
            "--name",
        ];
        let mut args: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        args.extend([
            name.into(),
            "--enable-crypto".into(),
            "--profile-dir".into(),
        ]);
        args.extend([profile, "--display".into(), screen.into()]);
        args
    };
    let mut server_args = common("m", text(&server_profile), server_screen);
    server_args.extend([
        "-c".into(),
        text(&config),
        "--address".into(),
        address.clone(),
    ]);
    let mut server = lan.command(&lan.m, Path::new("barriers"), &as_strs(&server_args));
    server.env("HOME", dir);
    let server_log = dir.join("barriers.log");
    let server = lan
        .spawn(server, &server_log)
        .context("start barriers (package barrier)")?;
    std::thread::sleep(Duration::from_millis(300));
    let mut client_args = common("z", text(&client_profile), client_screen);
    client_args.push(address);
    let mut client = lan.command(&lan.z, Path::new("barrierc"), &as_strs(&client_args));
    client.env("HOME", dir);
    let client = lan.spawn(client, &dir.join("barrierc.log"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(&server_log)
        .unwrap_or_default()
        .contains("client \"z\" has connected")
    {
        if Instant::now() > deadline {
            bail!(
                "barrierc did not connect within 15 s (see {} and barrierc.log)",
                server_log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Barrier {
        _client: client,
        _server: server,
    })
}

/// Moves the server's pointer off its right edge, so Barrier sends input
/// to the client, and checks that a key arrives there.
pub fn switch_to_client(sender: &Sender, receiver: &Receiver) -> Result<()> {
    sender.motion(640, 400)?;
    std::thread::sleep(Duration::from_millis(100));
    sender.motion(1279, 400)?;
    std::thread::sleep(Duration::from_millis(100));
    // Barrier switches when the pointer pushes against the edge.
    sender.nudge(5, 0)?;
    std::thread::sleep(Duration::from_millis(200));
    // Well inside the client's screen: 300 pixels right of its left edge.
    sender.motion(940, 400)?;
    std::thread::sleep(Duration::from_millis(100));
    receiver.drain();
    sender.key(true)?;
    sender.key(false)?;
    if receiver
        .next(Duration::from_secs(3), |w| w == What::KeyRelease)
        .is_none()
    {
        bail!("Barrier did not switch to its client");
    }
    Ok(())
}

/// `args` borrowed as `&str`s, for [`Lan::command`].
fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
