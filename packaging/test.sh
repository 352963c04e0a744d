#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls exactly this):
# system packages, formatting, lints, then every test of every crate,
# including the multi-host tests in network namespaces (needs root), and
# last each fuzz target for a short fixed time (packaging/fuzz.sh).
set -eu
cd "$(dirname "$0")/.."
# A clean checkout gains nothing from incremental state; it only takes disk.
export CARGO_INCREMENTAL=0
df -h . | tail -n 1
sh packaging/install-system-packages.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast -- --test-threads=4
sh packaging/fuzz.sh
