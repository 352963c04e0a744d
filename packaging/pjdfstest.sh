#!/bin/sh
# POSIX conformance of shared folders: pjdfstest (the Rust rewrite, crate
# pjdfstest 0.2.2) run inside a ZOS share (server and FUSE mount over a
# Noise session on loopback, fileshare/examples/loopback_share.rs).
#
#   sh packaging/pjdfstest.sh            # inside a share
#   sh packaging/pjdfstest.sh --tmpfs    # the same run on a plain tmpfs (anchor)
#
# Builds pjdfstest into target/pjdfstest if missing. Prints the pass, fail
# and skip counts and the failing case names; the last line reads
# "pjdfstest: N passed, N failed, N skipped". Needs root. Cleans up on exit.
#
#   PJDFSTEST_RESULTS=FILE   also writes one line per case, "NAME RESULT"
#                            (pass, fail or skip), sorted by name: what
#                            fileshare/tests/pjdfstest.rs compares with
#                            fileshare/tests/pjdfstest-expected.txt
#   PJDFSTEST_OUT=FILE       keeps pjdfstest's own output (with the reasons)
#   PJDFSTEST_FILTER=NAME    hands NAME to pjdfstest as a case filter
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/target/pjdfstest"
BIN="$CACHE/bin/pjdfstest"
if [ ! -x "$BIN" ]; then
    cargo install --quiet --locked --root "$CACHE" pjdfstest --version 0.2.2
fi
WORK=$(mktemp -d /tmp/zos-pjdfstest.XXXXXX)
# The unprivileged users of the suite must reach the test directory.
chmod 0755 "$WORK"
SHARE_PID=""
cleanup() {
    if [ -n "$SHARE_PID" ]; then
        kill "$SHARE_PID" 2>/dev/null || true
        wait "$SHARE_PID" 2>/dev/null || true
    fi
    for m in "$WORK/mnt" "$WORK/second" "$WORK/master"; do
        mountpoint -q "$m" 2>/dev/null && umount -l "$m"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/master" "$WORK/mnt" "$WORK/second"
# The second file system, for the cross-device cases.
mount -t tmpfs -o size=64m zos-pjdfstest "$WORK/second"
cat > "$WORK/pjdfstest.toml" <<CONF
[features]
posix_fallocate = {}
rename_ctime = {}
utime_now = {}
utimensat = {}

[settings]
naptime = 0.01
allow_remount = false

[dummy_auth]
entries = [["nobody", "nogroup"], ["daemon", "daemon"]]
CONF
if [ "${1:-}" = "--tmpfs" ]; then
    mount -t tmpfs -o size=256m zos-pjdfstest "$WORK/master"
    TARGET="$WORK/master"
else
    mount -t tmpfs -o size=256m zos-pjdfstest "$WORK/master"
    chmod 0755 "$WORK/master"
    (cd "$ROOT" && cargo build --quiet -p zos-fileshare --example loopback_share)
    "$ROOT/target/debug/examples/loopback_share" "$WORK/master" "$WORK/mnt" \
        > "$WORK/share.log" 2>&1 &
    SHARE_PID=$!
    i=0
    until grep -q "^mounted" "$WORK/share.log" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ] || ! kill -0 "$SHARE_PID" 2>/dev/null; then
            echo "pjdfstest: the share did not come up:" >&2
            cat "$WORK/share.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    TARGET="$WORK/mnt/master"
fi
cd "$TARGET"
"$BIN" -c "$WORK/pjdfstest.toml" -p "$TARGET" -s "$WORK/second" ${PJDFSTEST_FILTER:-} > "$WORK/out.txt" 2>&1 || true
[ -z "${PJDFSTEST_OUT:-}" ] || cp "$WORK/out.txt" "$PJDFSTEST_OUT"
if [ -n "${PJDFSTEST_RESULTS:-}" ]; then
    awk '$1 ~ /::/ && ($NF == "ok" || $NF == "FAILED" || $NF == "skipped") {
        print $1, ($NF == "ok" ? "pass" : $NF == "FAILED" ? "fail" : "skip")
    }' "$WORK/out.txt" | LC_ALL=C sort > "$PJDFSTEST_RESULTS"
fi
cd /
echo "failing cases:"
grep -E "FAILED[[:space:]]*$" "$WORK/out.txt" | awk '{print "  " $1}' || true
SUMMARY=$(grep "^Summary:" "$WORK/out.txt" || true)
[ -n "$SUMMARY" ] || { tail -20 "$WORK/out.txt"; echo "pjdfstest: no summary" >&2; exit 1; }
echo "$SUMMARY"
passed=$(echo "$SUMMARY" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')
failed=$(echo "$SUMMARY" | sed -n 's/.*: \([0-9]*\) failed.*/\1/p')
skipped=$(echo "$SUMMARY" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
echo "pjdfstest: $passed passed, $failed failed, $skipped skipped"
