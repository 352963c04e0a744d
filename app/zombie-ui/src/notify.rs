//! A desktop notification with actions (`org.freedesktop.Notifications` on
//! the D-Bus session bus): the consent prompt's second voice, for a user
//! who looks at the notification area rather than at our window.
//!
//! It shows the question with an **Accept** and a **Refuse** action,
//! critical urgency, and an expiry at the answer's deadline; every few
//! seconds it is replaced with the time left. The action the user picks
//! comes back as a [`Choice`]. Only the notification server's signals
//! count: zbus matches them on the sender that owns
//! `org.freedesktop.Notifications`, so another client on the bus cannot
//! answer for the user by emitting `ActionInvoked` itself (a process of the
//! same user could still run `zos accept`: the bus adds no privilege).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::oneshot;
use zbus::zvariant::Value;

/// How often the notification is replaced with the time left.
const REFRESH: Duration = Duration::from_secs(5);
/// How long connecting to the bus and showing may take.
const SHOW_TIMEOUT: Duration = Duration::from_secs(5);

/// The action keys the notification offers.
pub const ACCEPT: &str = "accept";
/// See [`ACCEPT`].
pub const REFUSE: &str = "refuse";

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_service = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications"
)]
trait Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;

    fn close_notification(&self, id: u32) -> zbus::Result<()>;

    #[zbus(signal)]
    fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;

    #[zbus(signal)]
    fn notification_closed(&self, id: u32, reason: u32) -> zbus::Result<()>;
}

/// What the user picked in the notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Accept.
    Accept,
    /// Refuse.
    Refuse,
    /// Dismissed it without choosing (or it expired).
    Dismissed,
}

/// What the notification says.
#[derive(Clone, Debug)]
pub struct Content {
    /// Its heading.
    pub summary: String,
    /// Its text, before the line with the time left.
    pub body: String,
    /// When the question expires.
    pub deadline: Instant,
}

impl Content {
    fn body_now(&self) -> String {
        let left = self.deadline.saturating_duration_since(Instant::now());
        format!(
            "{}\nAnswer within {} s, or it is refused.",
            self.body,
            left.as_secs()
        )
    }
}

/// A notification on screen; closing it (or dropping it) takes it away.
pub struct Notification {
    close: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notification {
    /// Shows `content` on the session bus's notification server; the
    /// user's pick goes to `choices`. Fails (saying why) when there is no
    /// session bus or no notification server.
    pub fn show(content: Content, choices: mpsc::Sender<Choice>) -> Result<Notification, String> {
        let (shown_tx, shown_rx) = mpsc::channel();
        let (close_tx, close_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("notification".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = shown_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(run(content, choices, shown_tx, close_rx));
            })
            .map_err(|e| e.to_string())?;
        match shown_rx.recv_timeout(SHOW_TIMEOUT) {
            Ok(Ok(())) => Ok(Notification {
                close: Some(close_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the notification server did not answer".into()),
        }
    }

    /// Takes the notification away and waits (briefly) until it is gone.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Notification {
    fn drop(&mut self) {
        self.shut();
    }
}

async fn run(
    content: Content,
    choices: mpsc::Sender<Choice>,
    shown: mpsc::Sender<Result<(), String>>,
    mut close: oneshot::Receiver<()>,
) {
    let started = async {
        let conn = zbus::Connection::session()
            .await
            .map_err(|e| format!("no D-Bus session bus: {e}"))?;
        let proxy = NotificationsProxy::new(&conn)
            .await
            .map_err(|e| e.to_string())?;
        let actions = proxy
            .receive_action_invoked()
            .await
            .map_err(|e| e.to_string())?;
        let closed = proxy
            .receive_notification_closed()
            .await
            .map_err(|e| e.to_string())?;
        let id = notify(&proxy, &content, 0)
            .await
            .map_err(|e| format!("no notification server: {e}"))?;
        Ok::<_, String>((conn, proxy, actions, closed, id))
    };
    let (_conn, proxy, mut actions, mut closed, mut id) = match started.await {
        Ok(s) => {
            let _ = shown.send(Ok(()));
            s
        }
        Err(e) => {
            let _ = shown.send(Err(e));
            return;
        }
    };
    tracing::info!("notification {id} shown");
    let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
    loop {
        tokio::select! {
            Some(signal) = actions.next() => {
                let Ok(args) = signal.args() else { continue };
                if args.id != id {
                    continue;
                }
                let choice = match args.action_key.as_str() {
                    ACCEPT => Choice::Accept,
                    REFUSE => Choice::Refuse,
                    _ => continue,
                };
                tracing::info!("notification {id}: {choice:?} chosen");
                let _ = choices.send(choice);
                let _ = proxy.close_notification(id).await;
                return;
            }
            Some(signal) = closed.next() => {
                let Ok(args) = signal.args() else { continue };
                if args.id == id {
                    tracing::info!("notification {id} closed (reason {})", args.reason);
                    let _ = choices.send(Choice::Dismissed);
                    return;
                }
            }
            _ = refresh.tick() => {
                if content.deadline <= Instant::now() {
                    continue;
                }
                match notify(&proxy, &content, id).await {
                    Ok(new) => id = new,
                    Err(e) => tracing::debug!("refreshing notification {id}: {e}"),
                }
            }
            _ = &mut close => {
                let _ = proxy.close_notification(id).await;
                tracing::info!("notification {id} taken away");
                return;
            }
        }
    }
}

/// Shows (or, with `replaces`, updates) the notification; its id.
async fn notify(
    proxy: &NotificationsProxy<'_>,
    content: &Content,
    replaces: u32,
) -> zbus::Result<u32> {
    let left = content.deadline.saturating_duration_since(Instant::now());
    let mut hints = HashMap::new();
    // Critical: it stays until answered or expired.
    hints.insert("urgency", Value::U8(2));
    proxy
        .notify(
            "ZOS",
            replaces,
            "dialog-question",
            &content.summary,
            &content.body_now(),
            &[ACCEPT, "Accept", REFUSE, "Refuse"],
            hints,
            left.as_millis().clamp(1, i32::MAX as u128) as i32,
        )
        .await
}
