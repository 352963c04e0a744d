#!/bin/sh
# The fuzz targets of fuzz/ as CI runs them (packaging/test.sh calls this):
# builds every target with cargo-fuzz (libFuzzer + AddressSanitizer) on the
# stable toolchain and runs each for a fixed time. A crash, a leak or an
# input slower than 10 s fails the run (libFuzzer exits non-zero and leaves
# the input in fuzz/artifacts/TARGET/).
#
#   ZOS_FUZZ_SECONDS   seconds per target (default 25)
#
# Needs a C++ compiler (libfuzzer-sys builds libFuzzer; g++ is in
# packaging/system-packages.txt). cargo-fuzz is installed from crates.io
# when missing (about 1.5 min).
set -eu
cd "$(dirname "$0")/.."
seconds=${ZOS_FUZZ_SECONDS:-25}
cargo_fuzz_version=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi
cd fuzz
# Lets the stable compiler accept cargo-fuzz's -Zsanitizer flags.
export RUSTC_BOOTSTRAP=1
# fuzz/ is its own workspace: its lock file must be current, as --locked
# demands of the main one.
cargo fetch --locked
cargo fuzz build
for target in $(cargo fuzz list); do
  echo "fuzz: $target for ${seconds} s"
  cargo fuzz run "$target" -- \
    -max_total_time="$seconds" -timeout=10 -verbosity=0 -print_final_stats=1
done
echo "fuzz: every target ran ${seconds} s without a crash"
