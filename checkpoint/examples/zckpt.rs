//! Manual driver: `zckpt check PID`, `zckpt dump PID DIR [--leave-running]`,
//! `zckpt restore DIR [STDIN [STDOUT]]`, `zckpt bench`.

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
        _ => {
            eprintln!("usage: zckpt check|dump|restore|bench …");
            std::process::exit(2)
        }
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
