//! Issue 2, the master window: under an Xvfb in the master's namespace it
//! lists a discovered zombie, and the screen shows the zombie's icon.

mod common;

use common::screen::{count_pixels, screenshot, screenshot_dir};
use common::zos::{self, DISCOVERY};
use common::{Lan, secs};

/// The icon colour of a zombie in the master window.
const ICON_RGB: [u8; 3] = [0x3c, 0x8c, 0xdc];

#[test]
fn master_window_lists_a_discovered_zombie() {
    common::tools::require_all(&["Xvfb", "import", "convert"]);
    let lan = Lan::new(&["m", "z1"]);
    let (m, z1) = (lan.host("m"), lan.host("z1"));
    let x = m.xvfb();
    let _master = zos::start_master(m);
    let zombie = zos::start_zombie(z1, "onscreen", &[]);
    assert!(
        zos::wait_listed(m, "onscreen", DISCOVERY).is_some(),
        "the master daemon never listed the zombie"
    );

    let gui = m.spawn_env(
        &["gui"],
        &[("DISPLAY", &x.display), ("LIBGL_ALWAYS_SOFTWARE", "1")],
    );
    let shown = common::until(secs(30), || {
        let exited = gui.exited();
        let line = gui
            .log()
            .lines()
            .find(|l| l.contains("window shows") && l.contains("onscreen"))
            .map(str::to_string);
        match (line, exited) {
            (Some(l), _) => Some(Ok(l)),
            (None, true) => Some(Err("the window process exited")),
            (None, false) => None,
        }
    });
    let shown = match shown {
        Some(Ok(line)) => line,
        Some(Err(why)) => panic!("{why} before saying it shows `onscreen`:\n{}", gui.log()),
        None => panic!(
            "the window never said it shows `onscreen` within 30 s:\n{}",
            gui.log()
        ),
    };
    assert!(
        shown.contains("window shows 1 hosts"),
        "exactly one zombie should be shown: {shown}"
    );

    let png = screenshot_dir().join("master-window.png");
    let display = x.display.clone();
    // The frame may be drawn a moment after the log line: look again until it is.
    let found = common::until(secs(15), || {
        screenshot(m, &display, &png);
        let n = count_pixels(m, &png, ICON_RGB);
        (n > 0).then_some(n)
    });
    eprintln!("screenshot: {}", png.display());
    let n =
        found.unwrap_or_else(|| panic!("no pixel of #3C8CDC on the screen; see {}", png.display()));
    assert!(
        n >= 16,
        "only {n} icon-coloured pixels: an icon should be more than a speck ({})",
        png.display()
    );

    // The list is live: when the zombie stops, the window drops it.
    zombie.proc.term();
    let gone = gui.try_wait_log("window shows 0 hosts", secs(10));
    assert!(
        gone.is_some(),
        "the window still shows the zombie 10 s after it stopped:\n{}",
        gui.log()
    );
    let after = screenshot_dir().join("master-window-after.png");
    let empty = common::until(secs(10), || {
        screenshot(m, &display, &after);
        (count_pixels(m, &after, ICON_RGB) == 0).then_some(())
    });
    assert!(
        empty.is_some(),
        "the zombie's icon is still drawn after it left; see {}",
        after.display()
    );
}
