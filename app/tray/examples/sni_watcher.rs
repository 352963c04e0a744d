//! A stand-in `org.kde.StatusNotifierWatcher` for headless sessions: run it
//! on a session bus (e.g. under `dbus-run-session`) so that a tray item can
//! register without a desktop, then inspect the item with `busctl --user`.

#[path = "../tests/common/watcher.rs"]
mod watcher;

use std::time::Duration;

#[tokio::main]
async fn main() -> zbus::Result<()> {
    let (_conn, watcher) = watcher::Watcher::start().await?;
    println!("watcher up");
    let mut seen = 0;
    loop {
        let items = watcher.items();
        for item in &items[seen..] {
            println!("item registered: {item}");
        }
        seen = items.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
