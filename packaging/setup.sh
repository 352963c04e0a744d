#!/bin/sh
# One command for a new user on Debian 12: install what ZOS needs, build it,
# install the `zos` binary and the desktop launcher, and start the demo
# (a master, a local demo zombie paired with it, and the master window).
#
#   sh packaging/setup.sh            # install + build + run `zos demo`
#   sh packaging/setup.sh --no-run   # install + build only
set -eu
cd "$(dirname "$0")/.."
sh packaging/install-system-packages.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is needed: install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi
# The root package alone is `zos`; a pod's init is a binary of its own, installed next to it.
cargo build --release --locked -p zos -p zos-pod-init
if [ "$(id -u)" -eq 0 ]; then bindir=/usr/local/bin; appdir=/usr/local/share/applications; icondir=/usr/local/share/icons/hicolor/scalable/apps
else bindir="$HOME/.local/bin"; appdir="$HOME/.local/share/applications"; icondir="$HOME/.local/share/icons/hicolor/scalable/apps"; fi
mkdir -p "$bindir" "$appdir" "$icondir"
install -m 0755 target/release/zos "$bindir/zos"
install -m 0755 target/release/zos-pod-init "$bindir/zos-pod-init"
install -m 0644 packaging/zos-master.desktop "$appdir/zos-master.desktop"
install -m 0644 resources/zos.svg "$icondir/zos.svg"
echo "installed $bindir/zos, $bindir/zos-pod-init and the ZOS Master launcher"
if [ "${1:-}" = "--no-run" ]; then exit 0; fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "no display: starting the demo headless (Ctrl-C stops it)"
  exec "$bindir/zos" demo --headless
fi
exec "$bindir/zos" demo
