//! 200 images mutated as an attacker would (random byte changes, CRCs recomputed; the MAC
//! cannot be): none restores with credentials the caller does not have, none crashes or hangs
//! the restorer.

mod common;

use common::forge::{self, META, PAGES, Rng};
use common::*;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use zos_checkpoint::{DumpOptions, Error, RestoreOptions, checkpoint, restore_from_bytes};

/// A position to change: mostly the metadata (credentials, layout, files, signals), some
/// page contents, frame headers and the image header.
fn pick(rng: &mut Rng, image: &[u8]) -> usize {
    let frames = forge::frames(image);
    let meta = frames.iter().find(|f| f.kind == META).unwrap().payload();
    let pages: Vec<_> = frames.iter().filter(|f| f.kind == PAGES).collect();
    match rng.below(10) {
        0..=5 => meta.start + rng.below(meta.len()),
        6 | 7 => {
            let p = pages[rng.below(pages.len())].payload();
            p.start + rng.below(p.len())
        }
        8 => frames[rng.below(frames.len())].at + rng.below(16),
        _ => rng.below(16),
    }
}

/// Checkpoint `sleep 1000` (as nobody when `nobody`), signed with the test key.
fn sleep_image(dir: &TempDir, nobody: bool) -> Vec<u8> {
    let mut p = if nobody {
        Running::start_as_nobody(&["sleep", "1000"])
    } else {
        Running::start(&["sleep", "1000"])
    };
    assert!(wait_until(5, || fs::read_to_string(format!(
        "/proc/{}/syscall",
        p.pid
    ))
    .is_ok_and(|s| s.starts_with("230 "))));
    let img = dir.join(if nobody { "nobody" } else { "root" });
    let opts = DumpOptions {
        key: Some(test_key()),
        ..Default::default()
    };
    checkpoint(p.pid, &img, &opts).expect("checkpoint");
    p.reap();
    fs::read(img.join("image.zckpt")).unwrap()
}

#[derive(Default, Debug)]
struct Outcomes {
    restored: usize,
    bad_image: usize,
    denied: usize,
    failed: usize,
}

/// Restore every mutant of `image`; `may_restore`: whether a mutant may come back at all.
fn run_mutants(image: &[u8], count: usize, seed: u64, may_restore: bool, progress: &AtomicUsize) {
    let caller = ids_of(std::process::id() as i32);
    let mut rng = Rng(seed);
    let mut seen = Outcomes::default();
    for i in 0..count {
        let pos = pick(&mut rng, image);
        let mask = (rng.below(255) + 1) as u8;
        let mutant = forge::flip(image, pos, mask);
        let opts = RestoreOptions {
            key: Some(test_key()),
            ..Default::default()
        };
        match restore_from_bytes(&mutant, &opts) {
            Ok(r) => {
                let ids = ids_of(r.pid);
                kill(r.pid);
                let _ = zos_checkpoint::wait_child(r.pid, Duration::from_secs(5));
                assert!(
                    may_restore,
                    "mutant {i} (byte {pos} ^ {mask:#x}) restored from a signed image"
                );
                // A process that died at once has no ids left to compare.
                assert!(
                    ids.is_empty() || ids == caller,
                    "mutant {i} (byte {pos} ^ {mask:#x}) runs as {ids}, caller is {caller}"
                );
                seen.restored += 1;
            }
            Err(Error::BadImage(_)) => seen.bad_image += 1,
            Err(Error::Denied(_)) => seen.denied += 1,
            Err(_) => seen.failed += 1,
        }
        progress.fetch_add(1, Ordering::Relaxed);
    }
    eprintln!("seed {seed:#x}: {seen:?}");
}

#[test]
fn two_hundred_mutated_images_grant_nothing_and_never_crash_the_restorer() {
    let dir = TempDir::new("mutants");
    let own = sleep_image(&dir, false);
    let nobodys = sleep_image(&dir, true);
    let progress = Arc::new(AtomicUsize::new(0));
    let watch = Arc::clone(&progress);
    // A restore that hangs would stall the count: fail loudly instead of waiting forever.
    std::thread::spawn(move || {
        let mut last = usize::MAX;
        loop {
            std::thread::sleep(Duration::from_secs(30));
            let now = watch.load(Ordering::Relaxed);
            if now == last {
                eprintln!("a mutated image hung the restorer (after {now} mutants)");
                std::process::abort();
            }
            last = now;
        }
    });
    // Root's own image: no signature needed, so mutants may restore, but only as the caller.
    run_mutants(&own, 150, 0x5eed_0001, true, &progress);
    // Nobody's image, signed here: no mutant keeps a valid signature, so none restores.
    run_mutants(&nobodys, 50, 0x5eed_0002, false, &progress);
    assert_eq!(progress.load(Ordering::Relaxed), 200);
}
