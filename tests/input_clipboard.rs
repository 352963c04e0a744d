//! Issue 12: text copied on the master can be pasted in the ZOS session it
//! drives, and the other way round — CLIPBOARD and PRIMARY, UTF-8, up to
//! the cap — and nothing crosses while the master does not drive it.
//! xclip on each side is the independent witness.

mod common;

use common::drive::{self, copy, paste};
use common::secs;

#[test]
fn clipboard_text_goes_both_ways_between_the_master_and_the_session_it_drives() {
    common::tools::require("xclip");
    let d = drive::driven(&[], |_| {});
    let (m, z) = (d.m(), d.z());
    let master_env = [("DISPLAY", d.master_screen.display.as_str())];
    let session_env = d.session.env();

    // Copied on the master before driving: there when driving starts.
    copy(m, &master_env, "clipboard", "from the master: ünïcødé ✓");
    d.drive(&["z1"]);
    let seen = common::until(secs(10), || {
        paste(z, &session_env, "clipboard").filter(|t| t == "from the master: ünïcødé ✓")
    });
    assert!(
        seen.is_some(),
        "the session's CLIPBOARD: {:?}",
        paste(z, &session_env, "clipboard")
    );

    // Selected in the session (PRIMARY) while driving: pasted on the master.
    copy(z, &session_env, "primary", "selected in the session");
    let seen = common::until(secs(10), || {
        paste(m, &master_env, "primary").filter(|t| t == "selected in the session")
    });
    assert!(
        seen.is_some(),
        "the master's PRIMARY: {:?}",
        paste(m, &master_env, "primary")
    );

    // Copied in the session (CLIPBOARD): on the master too.
    copy(z, &session_env, "clipboard", "copied in the session");
    let seen = common::until(secs(10), || {
        paste(m, &master_env, "clipboard").filter(|t| t == "copied in the session")
    });
    assert!(
        seen.is_some(),
        "the master's CLIPBOARD: {:?}",
        paste(m, &master_env, "clipboard")
    );

    // Not driving: the session's copies stay in the session.
    d.drive(&["--stop"]);
    copy(z, &session_env, "clipboard", "kept in the session");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        paste(m, &master_env, "clipboard").as_deref(),
        Some("copied in the session")
    );
}

#[test]
fn clipboard_text_over_the_cap_is_not_forwarded() {
    common::tools::require("xclip");
    let d = drive::driven(&[], |_| {});
    let (m, z) = (d.m(), d.z());
    let master_env = [("DISPLAY", d.master_screen.display.as_str())];
    let session_env = d.session.env();
    d.drive(&["z1"]);
    copy(z, &session_env, "clipboard", "small");
    assert!(
        common::until(secs(10), || paste(m, &master_env, "clipboard")
            .filter(|t| t == "small"))
        .is_some()
    );
    let huge = "x".repeat(zos_display::input::MAX_CLIPBOARD_TEXT + 1);
    copy(z, &session_env, "clipboard", &huge);
    // The master keeps what it had (xclip serves one reader at a time, so
    // the session's own paste comes after the zombie has read and dropped
    // the text) …
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(paste(m, &master_env, "clipboard").as_deref(), Some("small"));
    // … and the session still holds it whole: the zombie read it to the end.
    assert_eq!(
        paste(z, &session_env, "clipboard").map(|t| t.len()),
        Some(huge.len())
    );
    // Text at the cap goes through whole.
    let full = "y".repeat(zos_display::input::MAX_CLIPBOARD_TEXT);
    copy(z, &session_env, "clipboard", &full);
    let seen = common::until(secs(15), || {
        paste(m, &master_env, "clipboard").filter(|t| t.len() == full.len())
    });
    assert!(
        seen.is_some(),
        "{MAX} bytes did not arrive whole",
        MAX = full.len()
    );
}
