//! Pod images mutated as a hostile peer would (random byte changes with the CRCs recomputed):
//! each restore is refused or yields a pod that runs as the restorer's own user; none panics,
//! hangs or leaves a process behind.

mod common;

#[test]
fn mutated_pod_images_are_refused_or_harmless_and_never_hang_or_leak() {
    common::mutate::mutate("forkwait", &[], 0x5eed_0010, 150);
}
