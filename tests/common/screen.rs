//! Screenshots of a host's X display and pixel counts, with ImageMagick.

use std::path::{Path, PathBuf};

use super::host::Host;

/// `target/e2e-screenshots/`, where screenshots are kept for people to look at.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("e2e-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `import -window root PNG` on `display`, run inside `host`'s namespace.
pub fn screenshot(host: &Host, display: &str, png: &Path) {
    let out = host.exec_env(
        "import",
        &["-window", "root", png.to_str().unwrap()],
        &[("DISPLAY", display)],
    );
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pixels of exactly `rgb` in an image (decoded by ImageMagick to raw RGB).
pub fn count_pixels(host: &Host, image: &Path, rgb: [u8; 3]) -> usize {
    let out = host.exec(
        "convert",
        &[image.to_str().unwrap(), "-depth", "8", "rgb:-"],
    );
    assert!(
        out.status.success(),
        "convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.chunks_exact(3).filter(|p| *p == rgb).count()
}
