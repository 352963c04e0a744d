//! A stand-in `org.kde.StatusNotifierWatcher`: the piece of a desktop's
//! tray host that items register with. It only records who registered and
//! says a host is present, which is all ksni needs to show its item.

use std::sync::{Arc, Mutex};

use zbus::message::Header;

/// The watcher; clones share the list of registered items.
#[derive(Clone, Default)]
pub struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str, #[zbus(header)] header: Header<'_>) {
        // Items give a bus name, or an object path on their own connection.
        let name = if service.starts_with('/') {
            header.sender().map(|s| s.to_string()).unwrap_or_default()
        } else {
            service.to_owned()
        };
        self.items.lock().unwrap().push(name);
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

impl Watcher {
    /// Takes the well-known name on the session bus and serves the watcher.
    pub async fn start() -> zbus::Result<(zbus::Connection, Watcher)> {
        let watcher = Watcher::default();
        let conn = zbus::connection::Builder::session()?
            .name("org.kde.StatusNotifierWatcher")?
            .serve_at("/StatusNotifierWatcher", watcher.clone())?
            .build()
            .await?;
        Ok((conn, watcher))
    }

    /// The bus names of the items registered so far.
    pub fn items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }
}
