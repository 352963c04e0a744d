//! Pod images mutated as a hostile peer would (random byte changes with the CRCs recomputed):
//! each restore is refused or yields a pod that runs as the restorer's own user; none panics,
//! hangs or leaves a process behind. Run alone in its test process (it counts our children).

use super::forge::{self, Rng};
use super::pods::*;
use std::sync::mpsc;
use std::time::Duration;
use zos_checkpoint::TreeRestoreOptions;

/// Kind of the TREE frame.
const TREE: u32 = 4;

/// Our children (host PIDs), from /proc.
fn children() -> Vec<i32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let s = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
    }
    out
}

/// Restore `rounds` mutations of the image of test program `name` (seeded with `seed`).
pub fn mutate(name: &str, args: &[&str], seed: u64, rounds: usize) {
    let run = start_prog(name, args);
    run.wait_for("READY", 20);
    let (image, _) = run.checkpoint_and_end();
    let frames = forge::frames(&image);
    let tree = frames.iter().find(|f| f.kind == TREE).unwrap().payload();
    let metas: Vec<_> = frames
        .iter()
        .filter(|f| f.kind == forge::META)
        .map(|f| f.payload())
        .collect();
    let before = children();
    let mut rng = Rng(seed);
    let (mut refused, mut restored) = (0, 0);
    for round in 0..rounds {
        let pos = match rng.below(10) {
            0..=5 => tree.start + rng.below(tree.len()),
            6..=8 => {
                let m = &metas[rng.below(metas.len())];
                m.start + rng.below(m.len())
            }
            _ => rng.below(image.len()),
        };
        let mask = 1u8 << rng.below(8);
        let bad = forge::flip(&image, pos, mask);
        let (tx, rx) = mpsc::channel();
        // ptrace is per thread: restore and kill on one thread, watched from here.
        std::thread::spawn(move || {
            let r = zos_checkpoint::restore_tree(&bad, &TreeRestoreOptions::default());
            let outcome = match r {
                Err(e) => Err(e.to_string()),
                Ok(held) => {
                    let init = held.pid();
                    let status =
                        std::fs::read_to_string(format!("/proc/{init}/status")).unwrap_or_default();
                    // SAFETY: getuid cannot fail.
                    let me = unsafe { libc::getuid() };
                    let ours = status
                        .lines()
                        .any(|l| l.starts_with("Uid:") && l.ends_with(&me.to_string()));
                    held.kill();
                    Ok(ours)
                }
            };
            let _ = tx.send(outcome);
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Err(_)) => refused += 1,
            Ok(Ok(ours)) => {
                assert!(
                    ours,
                    "{name} round {round}: byte {pos} ^ {mask:#x} ran as another user"
                );
                restored += 1;
            }
            Err(_) => {
                panic!("{name} round {round}: byte {pos} ^ {mask:#x}: restore hung or panicked")
            }
        }
        let left: Vec<i32> = children()
            .into_iter()
            .filter(|c| !before.contains(c))
            .collect();
        assert!(
            left.is_empty(),
            "{name} round {round}: processes left: {left:?}"
        );
    }
    eprintln!("{name}: {refused} refused, {restored} restored harmlessly");
    assert!(refused > 0);
}
