//! Dirty-page tracking on running pods: pre-copy rounds and a delta image restore the task
//! with the memory of an uninterrupted run; a chain of a whole and a delta snapshot restores
//! the state of the delta's moment; what the tracker cannot vouch for is taken whole.

mod common;

use common::pods::*;
use std::sync::Arc;
use std::time::Duration;
use zos_checkpoint::{
    AfterDump, DirtyTracker, PageBase, TreeDumpOptions, TreeDumpStats, TreeRestoreOptions,
    checkpoint_tree_delta, checkpoint_tree_tracked, restore_tree_with_base, write_round,
};

const KILL: TreeDumpOptions = TreeDumpOptions {
    after: AfterDump::Kill,
};

fn opts(after: AfterDump) -> TreeDumpOptions {
    TreeDumpOptions { after }
}

/// `n` pre-copy rounds (the first whole), `pause_ms` apart, taken into a base; the pages each
/// round carried.
fn rounds(tracker: &mut DirtyTracker, n: usize, pause_ms: u64) -> (PageBase, Vec<u64>) {
    let mut base = PageBase::new();
    let mut sizes = Vec::new();
    for k in 0..n {
        let mut round = Vec::new();
        let st = write_round(tracker, k == 0, &mut round).expect("round");
        sizes.push(st.pages);
        base.add_round(round).expect("absorb round");
        std::thread::sleep(Duration::from_millis(pause_ms));
    }
    (base, sizes)
}

/// Starts tracking `run`'s pod and takes its first (whole) snapshot, the task running on.
fn tracked_whole_snapshot(run: &PodRun) -> (DirtyTracker, Vec<u8>, TreeDumpStats) {
    let mut tracker = DirtyTracker::start(run.pod.pid()).expect("start tracking");
    let mut image = Vec::new();
    let stats = checkpoint_tree_tracked(
        run.pod.pid(),
        &opts(AfterDump::LeaveRunning),
        &mut tracker,
        &mut image,
    )
    .expect("whole snapshot while tracked");
    (tracker, image, stats)
}

fn gap_ms(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("GAP "))
        .expect("GAP line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn precopy_rounds_and_a_delta_image_continue_the_task_exactly() {
    // 64 MiB, 20 MiB/s, 3 s of ticks.
    let run = start_prog("dirtier", &["64", "20", "3000"]);
    run.wait_for("READY", 20);
    let mut tracker = DirtyTracker::start(run.pod.pid()).expect("start tracking");
    let (base, sizes) = rounds(&mut tracker, 4, 150);
    assert!(
        sizes[0] >= 64 * 256,
        "round 0 carries every page: {sizes:?}"
    );
    assert!(
        sizes[1..].iter().all(|&p| p < 64 * 256 / 4),
        "later rounds carry what was written (~20 MiB/s for 150 ms): {sizes:?}"
    );
    let mut delta = Vec::new();
    let stats = checkpoint_tree_delta(run.pod.pid(), &KILL, &mut tracker, &mut delta)
        .expect("delta checkpoint");
    drop(tracker);
    assert!(
        stats.bytes_written < 16 << 20,
        "the delta holds only recent writes: {} bytes",
        stats.bytes_written
    );
    let (code, _) = run.finish(10);
    assert_eq!(code, 128 + 9);
    let full = zos_checkpoint::restore_tree(&delta, &TreeRestoreOptions::default());
    assert!(
        full.unwrap_err().to_string().contains("needs its base"),
        "a delta alone is refused"
    );
    let held = restore_tree_with_base(&delta, &base, &TreeRestoreOptions::default())
        .expect("restore over the rounds");
    let after = PodRun::adopt(held.resume().expect("resume"));
    let (code, text) = after.finish(60);
    assert!(text.contains("PASS"), "{text}");
    assert_eq!(code, 0, "{text}");
    eprintln!("longest tick gap after restore: {} ms", gap_ms(&text));
}

#[test]
fn a_whole_then_a_delta_snapshot_restore_the_deltas_moment() {
    // 4 MB of state that does not change, and a counter that does.
    let script = "big=$(printf '%4000000s' x); i=0; \
                  while read c; do [ \"$c\" = inc ] && i=$((i+1)); echo \"AT $i ${#big}\"; done";
    let run = PodRun::start(&spec(&["bash", "-c", script]));
    run.type_in("inc\n");
    run.wait_for("AT 1", 10);
    let (mut tracker, whole, st_whole) = tracked_whole_snapshot(&run);
    run.type_in("inc\n");
    run.wait_for("AT 2", 10);
    let mut delta = Vec::new();
    let st_delta = checkpoint_tree_delta(
        run.pod.pid(),
        &opts(AfterDump::LeaveRunning),
        &mut tracker,
        &mut delta,
    )
    .expect("delta snapshot");
    eprintln!(
        "SIZES whole {} B {} pages, delta {} B {} pages",
        st_whole.bytes_written, st_whole.pages, st_delta.bytes_written, st_delta.pages
    );
    assert!(
        st_delta.bytes_written * 10 < st_whole.bytes_written,
        "incremental {} vs whole {}",
        st_delta.bytes_written,
        st_whole.bytes_written
    );
    run.type_in("inc\n");
    run.wait_for("AT 3", 10);
    drop(run);
    let mut base = PageBase::new();
    base.add_image(Arc::new(whole)).expect("chain base");
    let held = restore_tree_with_base(&delta, &base, &TreeRestoreOptions::default())
        .expect("restore the chain");
    let back = PodRun::adopt(held.resume().expect("resume"));
    back.type_in("show\n");
    let text = back.wait_for("AT ", 10);
    assert!(
        text.contains("AT 2 4000000"),
        "back at the delta's moment: {text:?}"
    );
}

#[test]
fn a_mapping_replaced_at_the_same_address_between_rounds_is_carried_anew() {
    let dir = common::TempDir::new("remap");
    let stop = dir.join("stop");
    let run = start_prog("remapper", &["50", stop.to_str().unwrap()]);
    run.wait_for("READY", 20);
    let mut tracker = DirtyTracker::start(run.pod.pid()).expect("start tracking");
    let (base, _) = rounds(&mut tracker, 3, 100);
    let mut delta = Vec::new();
    checkpoint_tree_delta(run.pod.pid(), &KILL, &mut tracker, &mut delta).expect("delta");
    drop(tracker);
    let _ = run.finish(10);
    let held = restore_tree_with_base(&delta, &base, &TreeRestoreOptions::default())
        .expect("restore over the rounds");
    let after = PodRun::adopt(held.resume().expect("resume"));
    std::fs::write(&stop, "").unwrap();
    let (code, text) = after.finish(30);
    assert!(text.contains("PASS"), "{text}");
    assert_eq!(code, 0, "{text}");
}

#[test]
fn pages_a_tracked_task_never_touched_are_neither_carried_nor_made_resident() {
    // 512 MiB mapped, 16 pages written: rounds, snapshots and the delta carry only those.
    let dir = common::TempDir::new("sparse");
    let stop = dir.join("stop");
    let run = start_prog("sparse", &[stop.to_str().unwrap()]);
    run.wait_for("READY", 20);
    let (mut tracker, _, st) = tracked_whole_snapshot(&run);
    assert!(
        st.bytes_written < 16 << 20,
        "a whole snapshot of a tracked task holds what it wrote, not 512 MiB of zeros: {} bytes",
        st.bytes_written
    );
    let (base, sizes) = rounds(&mut tracker, 3, 100);
    assert!(
        sizes.iter().all(|&p| p < 4096),
        "rounds carry the pages with content, not untouched ones (pages per round): {sizes:?}"
    );
    let mut delta = Vec::new();
    let stats =
        checkpoint_tree_delta(run.pod.pid(), &KILL, &mut tracker, &mut delta).expect("delta");
    drop(tracker);
    assert!(
        stats.bytes_written < 16 << 20,
        "the delta: {} bytes",
        stats.bytes_written
    );
    let _ = run.finish(10);
    let held = restore_tree_with_base(&delta, &base, &TreeRestoreOptions::default())
        .expect("restore over the rounds");
    let after = PodRun::adopt(held.resume().expect("resume"));
    std::fs::write(&stop, "").unwrap();
    let (code, text) = after.finish(30);
    assert!(text.contains("PASS"), "{text}");
    assert_eq!(code, 0, "{text}");
}
