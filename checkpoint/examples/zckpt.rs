//! Manual driver: `zckpt check PID`, `zckpt dump PID DIR [--leave-running]`,
//! `zckpt restore DIR [STDIN [STDOUT]]`, `zckpt bench`, and for pods:
//! `zckpt pod INIT CMD…` (run a pod, relay its pty to stdout, exit with its code),
//! `zckpt tree-check PID`, `zckpt tree-dump PID FILE [--leave-running]`,
//! `zckpt tree-restore FILE` (relay the restored pod's pty, exit with its code).

use std::io::{Read, Write};

fn relay(mut pod: zos_checkpoint::pod::Pod) -> i32 {
    if let Some(m) = pod.take_pty_master() {
        let mut f = std::fs::File::from(m);
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = std::io::stdout().write_all(&buf[..n]);
            let _ = std::io::stdout().flush();
        }
    }
    pod.wait().unwrap_or(-1)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let r = match a.get(1).map(String::as_str) {
        Some("check") => zos_checkpoint::check(a[2].parse().unwrap()).map(|r| println!("{r:?}")),
        Some("dump") => zos_checkpoint::checkpoint(
            a[2].parse().unwrap(),
            a[3].as_ref(),
            &zos_checkpoint::DumpOptions {
                leave_running: a.iter().any(|x| x == "--leave-running"),
                ..Default::default()
            },
        )
        .map(|s| println!("{s:?}")),
        Some("restore") => zos_checkpoint::restore(
            a[2].as_ref(),
            &zos_checkpoint::RestoreOptions {
                stdin: a.get(3).map(Into::into),
                stdout: a.get(4).map(Into::into),
                stderr: None,
                force: a.iter().any(|x| x == "--force"),
                ..Default::default()
            },
        )
        .map(|s| println!("{s:?}")),
        Some("bench") => zos_checkpoint::bench::run(&mut std::io::stdout()),
        Some("pod") => {
            let spec = zos_checkpoint::pod::PodSpec {
                init: a[2].clone().into(),
                argv: a[3..].iter().map(Into::into).collect(),
                cwd: std::env::current_dir().unwrap(),
                env: std::env::vars_os()
                    .map(|(k, v)| {
                        let mut s = k;
                        s.push("=");
                        s.push(v);
                        s
                    })
                    .collect(),
                inside_uid: 0,
                inside_gid: 0,
                mounts: Default::default(),
            };
            zos_checkpoint::pod::spawn(&spec).map(|p| {
                eprintln!("pod init is host PID {}", p.pid());
                std::process::exit(relay(p))
            })
        }
        Some("tree-check") => zos_checkpoint::check_tree(a[2].parse().unwrap()).map(|r| {
            for x in &r.reasons {
                println!("- {x}");
            }
            if r.ok() {
                println!("ok");
            }
        }),
        Some("tree-dump") => {
            let f = std::fs::File::create(&a[3]).unwrap();
            let after = if a.iter().any(|x| x == "--leave-running") {
                zos_checkpoint::AfterDump::LeaveRunning
            } else {
                zos_checkpoint::AfterDump::Kill
            };
            zos_checkpoint::checkpoint_tree(
                a[2].parse().unwrap(),
                &zos_checkpoint::TreeDumpOptions { after },
                std::io::BufWriter::new(f),
            )
            .map(|s| println!("{s:?}"))
        }
        Some("tree-restore") => {
            let bytes = std::fs::read(&a[2]).unwrap();
            zos_checkpoint::restore_tree(&bytes, &Default::default())
                .and_then(|t| {
                    eprintln!("restored: {:?}", t.pids());
                    t.resume()
                })
                .map(|p| std::process::exit(relay(p)))
        }
        _ => {
            eprintln!(
                "usage: zckpt check|dump|restore|bench|pod|tree-check|tree-dump|tree-restore …"
            );
            std::process::exit(2)
        }
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
