//! The ZOS zombie's own windows, for a user without a tray host.
//!
//! - [`consent_prompt`] (`zos consent-prompt`): the zombie daemon starts it
//!   while a master asks to dominate the machine. A small window shows the
//!   master's name, fingerprint and level with a countdown, "show the
//!   master's apps on this screen", Refuse and Accept; where a notification
//!   server runs on the D-Bus session bus, a desktop notification with
//!   Accept and Refuse actions says the same ([`notify`]). Closing the
//!   window refuses. Both go away as soon as the request is answered
//!   (here, by `zos accept`, in the tray), withdrawn by the master, or
//!   expired.
//! - [`status_window`] (`zos zombie-window`): opened by the daemon while a
//!   master dominates the machine (or by hand): who dominates, at what
//!   level, since when, the master's shared apps to view, and Release.
//!
//! Like the tray, they talk to the daemon only through its control socket
//! ([`link`]); the drawing ([`consent_ui`], [`status_ui`]) works on plain
//! models ([`consent`], [`status`]) so tests run it headless.

pub mod consent;
pub mod consent_ui;
pub mod link;
pub mod notify;
pub mod status;
pub mod status_ui;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use eframe::egui;

use consent::Consent;
use link::Link;
use notify::{Choice, Notification};
use status::ZombieStatus;
use status_ui::Action;

/// Opens a viewer for a task of the dominating master (the `zos` binary
/// starts `zos view TASK`).
pub type OpenView = Box<dyn Fn(u64) -> std::io::Result<()>>;

/// How often the consent prompt asks the daemon whether the request waits.
const CONSENT_POLL: Duration = Duration::from_millis(250);
/// How often the status window refreshes.
const STATUS_POLL: Duration = Duration::from_secs(1);

/// The application id (`WM_CLASS`) of the zombie's windows.
pub const APP_ID: &str = "zos-zombie";

/// Set by SIGTERM (the daemon closing a window it opened): the window
/// closes, taking its notification with it.
fn on_sigterm(wake: impl Fn() + Send + 'static) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let _ = std::thread::Builder::new()
        .name("sigterm".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    term.recv().await;
                    set.store(true, Ordering::Relaxed);
                    wake();
                }
            });
        });
    flag
}

/// Asks the zombie's user about the domination request waiting on the
/// daemon at `socket`: a window when there is a display, a notification
/// where a notification server runs; returns once the request is answered,
/// withdrawn or expired (at once if none waits).
pub fn consent_prompt(socket: PathBuf) -> anyhow::Result<()> {
    let status = link::status(&socket).map_err(|e| anyhow!(e))?;
    let Some(ask) = status.asking.clone().filter(|a| a.expires_in_s > 0) else {
        tracing::info!("no domination request is waiting");
        return Ok(());
    };
    let total = Duration::from_secs(ask.expires_in_s);
    let mut model = Consent::default();
    model.apply(link::Event::Status(Ok(Box::new(status))), Instant::now());
    let (choice_tx, choices) = mpsc::channel();
    let notification = if env_set("DBUS_SESSION_BUS_ADDRESS") {
        let content = notify::Content {
            summary: model.title().trim_start_matches("ZOS: ").to_owned(),
            body: format!(
                "Level {} · fingerprint {}\n{}",
                ask.level,
                ask.fingerprint,
                consent_ui::level_words(ask.level)
            ),
            deadline: Instant::now() + total,
        };
        Notification::show(content, choice_tx)
            .inspect_err(|e| tracing::info!("no desktop notification: {e}"))
            .ok()
    } else {
        None
    };
    if !env_set("DISPLAY") {
        return answer_without_window(&socket, &mut model, &choices, notification);
    }
    let title = model.title();
    tracing::info!("consent prompt: {title}");
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(&title)
            .with_app_id(APP_ID)
            .with_inner_size([500.0, 300.0])
            .with_resizable(false)
            .with_window_level(egui::WindowLevel::AlwaysOnTop),
        ..Default::default()
    };
    eframe::run_native(
        &title,
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let wake = ctx.clone();
            let link = Link::spawn(socket.clone(), CONSENT_POLL, false, move || {
                ctx.request_repaint()
            });
            Ok(Box::new(ConsentApp {
                terminate: on_sigterm(move || wake.request_repaint()),
                model,
                link,
                socket,
                choices,
                notification,
                total,
            }))
        }),
    )
    .map_err(|e| anyhow!("the consent prompt failed: {e}"))
}

fn env_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// The notification alone: waits for its action, the daemon or SIGTERM.
fn answer_without_window(
    socket: &std::path::Path,
    model: &mut Consent,
    choices: &Receiver<Choice>,
    notification: Option<Notification>,
) -> anyhow::Result<()> {
    let Some(notification) = notification else {
        return Err(anyhow!(
            "neither a display nor a notification server to ask the user with"
        ));
    };
    let terminate = on_sigterm(|| {});
    while !model.finished() && !terminate.load(Ordering::Relaxed) {
        let accept = match choices.recv_timeout(CONSENT_POLL) {
            Ok(Choice::Accept) => Some(true),
            Ok(Choice::Refuse) => Some(false),
            // Nothing left to ask with: the tray or `zos accept` may still.
            Ok(Choice::Dismissed) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => None,
        };
        if let Some(command) = accept.and_then(|a| model.answer(a)) {
            tracing::info!("answered from the notification: {command:?}");
            let result = link::carry_out(socket, &command);
            model.apply(link::Event::Done { command, result }, Instant::now());
        }
        let status = link::status(socket).map(Box::new);
        model.apply(link::Event::Status(status), Instant::now());
    }
    notification.close();
    Ok(())
}

/// The consent prompt's window.
struct ConsentApp {
    model: Consent,
    link: Link,
    socket: PathBuf,
    choices: Receiver<Choice>,
    notification: Option<Notification>,
    total: Duration,
    terminate: Arc<AtomicBool>,
}

impl eframe::App for ConsentApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let now = Instant::now();
        for event in self.link.drain() {
            self.model.apply(event, now);
        }
        for choice in self.choices.try_iter().collect::<Vec<_>>() {
            let command = match choice {
                Choice::Accept => self.model.answer(true),
                Choice::Refuse => self.model.answer(false),
                Choice::Dismissed => None,
            };
            if let Some(command) = command {
                tracing::info!("answered from the notification: {command:?}");
                self.link.send(command);
            }
        }
        let ctx = ui.ctx().clone();
        if ctx.input(|i| i.viewport().close_requested()) && self.model.can_answer() {
            // Closing the prompt is a no.
            if let Some(command) = self.model.answer(false) {
                tracing::info!("the prompt was closed: refusing");
                let _ = link::carry_out(&self.socket, &command);
            }
        }
        if self.model.finished() || self.terminate.load(Ordering::Relaxed) {
            if let Some(n) = self.notification.take() {
                n.close();
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if let Some(command) = consent_ui::draw(ui, &mut self.model, now, self.total) {
            tracing::info!("answered in the window: {command:?}");
            self.link.send(command);
        }
        ctx.request_repaint_after(CONSENT_POLL);
    }
}

/// Shows the zombie's status window for the daemon at `socket` until it is
/// closed; `open_view` opens a viewer for one of the master's apps.
pub fn status_window(socket: PathBuf, open_view: OpenView) -> anyhow::Result<()> {
    let title = "ZOS zombie";
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_app_id(APP_ID)
            .with_inner_size([500.0, 380.0])
            .with_min_inner_size([420.0, 320.0]),
        ..Default::default()
    };
    eframe::run_native(
        title,
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let link = Link::spawn(socket, STATUS_POLL, true, move || ctx.request_repaint());
            Ok(Box::new(StatusApp {
                model: ZombieStatus::default(),
                link,
                open_view,
                shown: None,
            }))
        }),
    )
    .map_err(|e| anyhow!("the status window failed: {e}"))
}

/// The status window.
struct StatusApp {
    model: ZombieStatus,
    link: Link,
    open_view: OpenView,
    /// The domination last logged, to log changes once.
    shown: Option<Option<String>>,
}

impl eframe::App for StatusApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        for event in self.link.drain() {
            self.model.apply(event);
        }
        let now = self.model.domination().map(|d| d.master);
        if self.model.status.is_some() && self.shown.as_ref() != Some(&now) {
            match &now {
                Some(master) => tracing::info!("status window: dominated by {master}"),
                None => tracing::info!("status window: free"),
            }
            self.shown = Some(now);
        }
        for action in status_ui::draw(ui, &mut self.model) {
            match action {
                Action::Daemon(command) => {
                    tracing::info!("status window: {command:?}");
                    self.link.send(command);
                }
                Action::View(task) => {
                    if let Err(e) = (self.open_view)(task) {
                        self.model.outcome = Some(Err(format!("no viewer for task {task}: {e}")));
                    }
                }
            }
        }
        ui.ctx().request_repaint_after(STATUS_POLL);
    }
}
