//! The thread behind [`Capture`](super::Capture): one X connection to the
//! master's display, its hotkey grabs, the edge watch, the grab with its
//! blank cursor and banner, and the turning of X events into
//! [`InputEvent`]s.

use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConnectionExt as _, Cursor, EventMask, GrabMode, GrabStatus, Mapping, ModMask, Window,
};
use x11rb::rust_connection::RustConnection;

use super::banner::{Banner, Placement};
use super::capture::{
    CaptureEvent, CaptureOptions, Command, EDGE_POLL, GRAB_PATIENCE, InputSink, MESSAGE_TIME,
    Switch,
};
use super::hotkey::{Edge, Hotkey};
use super::inject::read_keymap;
use super::keymap::{Keymap, state};
use super::mailbox::Inbox;
use super::wire::{InputEvent, MAX_BUTTON, normalise};
use crate::error::Result;
use crate::xconn::x_error;

/// The capture thread's state: its X connection and what it holds.
pub(super) struct Capturer {
    conn: RustConnection,
    root: Window,
    size: (u16, u16),
    keymap: Keymap,
    hotkeys: [(Hotkey, Switch); 2],
    events: UnboundedSender<CaptureEvent>,
    sink: Option<InputSink>,
    banner: Banner,
    message_until: Option<Instant>,
    blank: Cursor,
    grabbed: bool,
    /// The edge crossed into the current target, if that is how we got there.
    entered: Option<Edge>,
    watched: Option<Edge>,
    at_edge: bool,
    /// Hotkey presses whose releases are not forwarded.
    swallowed: BTreeSet<u8>,
    batch: Vec<InputEvent>,
}

impl Capturer {
    /// Reads the keymap, makes the banner and the blank cursor, and grabs
    /// the hotkeys.
    pub(super) fn new(
        conn: RustConnection,
        screen: usize,
        options: &CaptureOptions,
        events: UnboundedSender<CaptureEvent>,
        sink: Option<InputSink>,
    ) -> Result<Capturer> {
        let s = &conn.setup().roots[screen];
        let (root, size) = (s.root, (s.width_in_pixels, s.height_in_pixels));
        let keymap = read_keymap(&conn)?;
        let banner = Banner::create(&conn, screen, Placement::TopCentre, 0x20_3a5f, 0xff_ffff)?;
        let blank = blank_cursor(&conn, root)?;
        let capturer = Capturer {
            conn,
            root,
            size,
            keymap,
            hotkeys: [
                (options.next, Switch::Next),
                (options.previous, Switch::Previous),
            ],
            events,
            sink,
            banner,
            message_until: None,
            blank,
            grabbed: false,
            entered: None,
            watched: None,
            at_edge: false,
            swallowed: BTreeSet::new(),
            batch: Vec::new(),
        };
        capturer.grab_hotkeys()?;
        capturer.conn.flush().map_err(|e| x_error("X flush", e))?;
        Ok(capturer)
    }

    /// Sends `event` to the capture's owner (gone owners are ignored).
    pub(super) fn report(&self, event: CaptureEvent) {
        let _ = self.events.send(event);
    }

    /// The thread's loop: X events, commands, the edge watch, until
    /// [`Command::Stop`] or an X error.
    pub(super) fn run(&mut self, inbox: &Inbox<Command>) -> Result<()> {
        let fd = self.conn.stream().as_raw_fd();
        loop {
            for command in inbox.drain() {
                match command {
                    Command::Stop => {
                        self.ungrab()?;
                        self.conn.flush().map_err(|e| x_error("X flush", e))?;
                        return Ok(());
                    }
                    Command::Grab { notice, entered } => self.grab(&notice, entered)?,
                    Command::Release { message } => {
                        self.ungrab()?;
                        self.show_message(message)?;
                    }
                    Command::Watch(edge) => {
                        self.watched = edge;
                        self.at_edge = false;
                    }
                    Command::Notice(text) => {
                        if self.grabbed {
                            self.banner.show(&self.conn, &text)?;
                        }
                    }
                }
            }
            if !self.grabbed && self.watched.is_some() {
                self.look_at_edge()?;
            }
            while let Some(event) = self
                .conn
                .poll_for_event()
                .map_err(|e| x_error("X events", e))?
            {
                self.on_event(event)?;
            }
            if !self.batch.is_empty() {
                let batch = std::mem::take(&mut self.batch);
                match self.sink.as_mut() {
                    Some(sink) => {
                        if !sink(batch) {
                            let _ = self.events.send(CaptureEvent::SinkRefused);
                        }
                    }
                    None => {
                        let _ = self.events.send(CaptureEvent::Input(batch));
                    }
                }
            }
            if let Some(until) = self.message_until
                && !self.grabbed
                && Instant::now() >= until
            {
                self.message_until = None;
                self.banner.hide(&self.conn)?;
            }
            self.conn.flush().map_err(|e| x_error("X flush", e))?;
            let timeout = if !self.grabbed && self.watched.is_some() {
                Some(EDGE_POLL)
            } else {
                self.message_until
                    .map(|u| u.saturating_duration_since(Instant::now()))
            };
            inbox.wait(fd, timeout)?;
        }
    }

    fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::KeyPress(e) => {
                let plain = self.keymap.keysym_for(e.detail, 0).unwrap_or(0);
                let state_bits = u16::from(e.state);
                if let Some(&(_, switch)) = self
                    .hotkeys
                    .iter()
                    .find(|(h, _)| h.matches(plain, state_bits))
                {
                    if self.grabbed {
                        self.swallowed.insert(e.detail);
                    }
                    let _ = self.events.send(CaptureEvent::Hotkey(switch));
                } else if self.grabbed
                    && let Some(keysym) = self.keymap.keysym_for(e.detail, state_bits)
                {
                    self.batch.push(InputEvent::KeyDown {
                        keysym,
                        code: e.detail,
                    });
                }
            }
            Event::KeyRelease(e) if self.grabbed && !self.swallowed.remove(&e.detail) => {
                self.batch.push(InputEvent::KeyUp { code: e.detail });
            }
            Event::ButtonPress(e) if self.grabbed && (1..=MAX_BUTTON).contains(&e.detail) => {
                self.batch.push(InputEvent::ButtonDown(e.detail));
            }
            Event::ButtonRelease(e) if self.grabbed && (1..=MAX_BUTTON).contains(&e.detail) => {
                self.batch.push(InputEvent::ButtonUp(e.detail));
            }
            Event::MotionNotify(e) if self.grabbed => {
                let (x, y) = (i32::from(e.root_x), i32::from(e.root_y));
                if let Some(entered) = self.entered
                    && entered.opposite().touches(x, y, self.size)
                {
                    let _ = self.events.send(CaptureEvent::CrossedBack);
                }
                self.batch.push(InputEvent::Motion {
                    x: normalise(x, self.size.0),
                    y: normalise(y, self.size.1),
                });
            }
            Event::Expose(e) if e.window == self.banner.window() => self.banner.draw(&self.conn)?,
            Event::MappingNotify(m) if m.request == Mapping::KEYBOARD => {
                self.keymap = read_keymap(&self.conn)?;
                self.conn
                    .ungrab_key(x11rb::protocol::xproto::Grab::ANY, self.root, ModMask::ANY)
                    .map_err(|e| x_error("UngrabKey", e))?;
                self.grab_hotkeys()?;
            }
            Event::Error(e) => debug!("X error (ignored): {e:?}"),
            _ => {}
        }
        Ok(())
    }

    /// Passive grabs of the hotkeys, whatever the lock keys are.
    fn grab_hotkeys(&self) -> Result<()> {
        for (hotkey, _) in &self.hotkeys {
            let Some((keycode, _)) = self.keymap.find(hotkey.keysym) else {
                warn!("the master's keymap has no key for hotkey {hotkey}");
                continue;
            };
            for locks in [0, state::LOCK, state::MOD2, state::LOCK | state::MOD2] {
                self.conn
                    .grab_key(
                        false,
                        self.root,
                        ModMask::from(hotkey.modifiers | locks),
                        keycode,
                        GrabMode::ASYNC,
                        GrabMode::ASYNC,
                    )
                    .map_err(|e| x_error("GrabKey", e))?;
            }
        }
        Ok(())
    }

    fn grab(&mut self, notice: &str, entered: Option<Edge>) -> Result<()> {
        let deadline = Instant::now() + GRAB_PATIENCE;
        let why = loop {
            let keyboard = self
                .conn
                .grab_keyboard(
                    false,
                    self.root,
                    x11rb::CURRENT_TIME,
                    GrabMode::ASYNC,
                    GrabMode::ASYNC,
                )
                .map_err(|e| x_error("GrabKeyboard", e))?
                .reply()
                .map_err(|e| x_error("GrabKeyboard", e))?
                .status;
            let mask =
                EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE | EventMask::POINTER_MOTION;
            let pointer = self
                .conn
                .grab_pointer(
                    false,
                    self.root,
                    mask,
                    GrabMode::ASYNC,
                    GrabMode::ASYNC,
                    x11rb::NONE,
                    self.blank,
                    x11rb::CURRENT_TIME,
                )
                .map_err(|e| x_error("GrabPointer", e))?
                .reply()
                .map_err(|e| x_error("GrabPointer", e))?
                .status;
            if keyboard == GrabStatus::SUCCESS && pointer == GrabStatus::SUCCESS {
                break None;
            }
            self.let_go()?;
            self.conn.flush().map_err(|e| x_error("X flush", e))?;
            if Instant::now() >= deadline {
                break Some(format!(
                    "another program holds the master's {} (grab status {keyboard:?}/{pointer:?})",
                    if keyboard != GrabStatus::SUCCESS {
                        "keyboard"
                    } else {
                        "pointer"
                    }
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(why) = why {
            let _ = self.events.send(CaptureEvent::GrabFailed(why));
            return Ok(());
        }
        self.grabbed = true;
        self.entered = entered;
        self.swallowed.clear();
        self.message_until = None;
        self.banner.show(&self.conn, notice)?;
        if let Some(edge) = entered {
            let p = self.pointer()?;
            let (x, y) = edge.opposite().inside(p.0, p.1, self.size);
            self.warp(x, y)?;
        }
        let _ = self.events.send(CaptureEvent::Grabbed);
        Ok(())
    }

    fn ungrab(&mut self) -> Result<()> {
        if !self.grabbed {
            return Ok(());
        }
        self.let_go()?;
        self.grabbed = false;
        if let Some(edge) = self.entered.take() {
            // Back just inside the edge it left by, off the edge itself.
            let p = self.pointer()?;
            let (x, y) = edge.inside(p.0, p.1, self.size);
            self.warp(x, y)?;
            self.at_edge = false;
        }
        self.banner.hide(&self.conn)
    }

    /// Ungrabs keyboard and pointer.
    fn let_go(&self) -> Result<()> {
        self.conn
            .ungrab_keyboard(x11rb::CURRENT_TIME)
            .map_err(|e| x_error("UngrabKeyboard", e))?;
        self.conn
            .ungrab_pointer(x11rb::CURRENT_TIME)
            .map_err(|e| x_error("UngrabPointer", e))?;
        Ok(())
    }

    fn show_message(&mut self, message: Option<String>) -> Result<()> {
        if let Some(text) = message {
            self.banner.show(&self.conn, &text)?;
            self.message_until = Some(Instant::now() + MESSAGE_TIME);
        }
        Ok(())
    }

    fn look_at_edge(&mut self) -> Result<()> {
        let Some(edge) = self.watched else {
            return Ok(());
        };
        let (x, y) = self.pointer()?;
        let touching = edge.touches(x, y, self.size);
        if touching && !self.at_edge {
            let _ = self.events.send(CaptureEvent::EdgeReached(edge));
        }
        self.at_edge = touching;
        Ok(())
    }

    fn pointer(&self) -> Result<(i32, i32)> {
        let p = self
            .conn
            .query_pointer(self.root)
            .map_err(|e| x_error("QueryPointer", e))?
            .reply()
            .map_err(|e| x_error("QueryPointer", e))?;
        Ok((i32::from(p.root_x), i32::from(p.root_y)))
    }

    fn warp(&self, x: i16, y: i16) -> Result<()> {
        self.conn
            .warp_pointer(x11rb::NONE, self.root, 0, 0, 0, 0, x, y)
            .map_err(|e| x_error("WarpPointer", e))?;
        Ok(())
    }
}

/// A cursor with no visible pixel, for the pointer while it drives a zombie.
fn blank_cursor(conn: &RustConnection, root: Window) -> Result<Cursor> {
    let pixmap = conn.generate_id().map_err(|e| x_error("X id", e))?;
    conn.create_pixmap(1, pixmap, root, 1, 1)
        .map_err(|e| x_error("create a pixmap", e))?;
    // A pixmap's content is undefined until drawn: clear it, so the mask hides all.
    let gc = conn.generate_id().map_err(|e| x_error("X id", e))?;
    conn.create_gc(
        gc,
        pixmap,
        &x11rb::protocol::xproto::CreateGCAux::new().foreground(0),
    )
    .map_err(|e| x_error("create a graphics context", e))?;
    let all = x11rb::protocol::xproto::Rectangle {
        x: 0,
        y: 0,
        width: 1,
        height: 1,
    };
    conn.poly_fill_rectangle(pixmap, gc, &[all])
        .map_err(|e| x_error("clear a pixmap", e))?;
    conn.free_gc(gc)
        .map_err(|e| x_error("free a graphics context", e))?;
    let cursor = conn.generate_id().map_err(|e| x_error("X id", e))?;
    conn.create_cursor(cursor, pixmap, pixmap, 0, 0, 0, 0, 0, 0, 0, 0)
        .map_err(|e| x_error("create the blank cursor", e))?;
    conn.free_pixmap(pixmap)
        .map_err(|e| x_error("free a pixmap", e))?;
    Ok(cursor)
}
