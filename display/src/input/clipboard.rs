//! [`ClipboardAgent`]: text on one display's CLIPBOARD and PRIMARY
//! selections, read when another client takes them over and offered as our
//! own when the other side sends some — for the master's display and for
//! the ZOS session, so text copied on one side can be pasted on the other.
//!
//! UTF-8 only, at most [`MAX_CLIPBOARD_TEXT`] bytes (larger selections are
//! not forwarded); owners that answer in pieces (INCR) are read to the end.
//! Serving is done by [`super::selection`].

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, info, warn};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, Property, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use super::mailbox::{Inbox, Mailbox, mailbox};
use super::selection::{Atoms, Served};
use crate::error::{DisplayError, Result};
use crate::xconn::{self, x_error};

/// The largest clipboard text forwarded, in bytes of UTF-8.
pub const MAX_CLIPBOARD_TEXT: usize = 1 << 20;
/// How long a selection owner may take to hand its text (or the next piece
/// of it) over.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a transfer in pieces may take in all.
const TRANSFER_LIMIT: Duration = Duration::from_secs(30);

/// Which selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selection {
    /// `CLIPBOARD` (Ctrl+C / Ctrl+V).
    Clipboard,
    /// `PRIMARY` (select / middle click).
    Primary,
}

impl Selection {
    const ALL: [Selection; 2] = [Selection::Clipboard, Selection::Primary];

    fn index(self) -> usize {
        self as usize
    }
}

/// Text another client put on a selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipboardChange {
    /// Which selection.
    pub selection: Selection,
    /// Its text.
    pub text: String,
}

enum Command {
    Set(Selection, String),
    Report(bool),
    AnnounceCurrent,
    Stop,
}

/// The agent's handle; dropping it ends the agent (and what it offered).
#[derive(Debug)]
pub struct ClipboardAgent {
    mailbox: Mailbox<Command>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClipboardAgent {
    /// Connects to display `name` and watches its selections; changes are sent to
    /// `changes` while reporting is on (it starts off).
    pub fn start(
        name: &str,
        xauthority: Option<&Path>,
        changes: UnboundedSender<ClipboardChange>,
    ) -> Result<ClipboardAgent> {
        let (conn, screen) = xconn::connect(name, xauthority)?;
        let mut agent = Agent::new(conn, screen, changes)?;
        let (mailbox, inbox) = mailbox()?;
        let thread = std::thread::Builder::new()
            .name("clipboard".into())
            .spawn(move || {
                if let Err(e) = agent.run(&inbox) {
                    debug!("clipboard agent ended: {e}");
                }
            })
            .map_err(|source| DisplayError::Sys {
                call: "spawn the clipboard thread",
                source,
            })?;
        info!(on = name, "clipboard agent started");
        Ok(ClipboardAgent {
            mailbox,
            thread: Some(thread),
        })
    }

    /// Offers `text` on `selection` (cut to [`MAX_CLIPBOARD_TEXT`] bytes).
    pub fn set(&self, selection: Selection, text: String) {
        self.mailbox.send(Command::Set(selection, text));
    }

    /// Reports changes from now on (or stops).
    pub fn report(&self, on: bool) {
        self.mailbox.send(Command::Report(on));
    }

    /// Reads both selections now and reports their text, if others own them.
    pub fn announce_current(&self) {
        self.mailbox.send(Command::AnnounceCurrent);
    }
}

impl Drop for ClipboardAgent {
    fn drop(&mut self) {
        self.mailbox.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A conversion we asked an owner for.
struct Reading {
    /// When it began: a transfer in pieces ends after [`TRANSFER_LIMIT`].
    began: Instant,
    /// When the owner last gave something.
    started: Instant,
    /// Set once the owner answered INCR: the pieces so far.
    incr: Option<Vec<u8>>,
    /// The pieces passed the cap: the rest is read (so the owner is not
    /// left waiting) and dropped.
    overflowed: bool,
}

struct Agent {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    served: Served,
    changes: UnboundedSender<ClipboardChange>,
    reporting: bool,
    reading: [Option<Reading>; 2],
    /// The last text of each selection sent or received, so nothing echoes.
    last: [Option<String>; 2],
}

impl Agent {
    fn new(
        conn: RustConnection,
        screen: usize,
        changes: UnboundedSender<ClipboardChange>,
    ) -> Result<Agent> {
        if conn
            .extension_information(x11rb::protocol::xfixes::X11_EXTENSION_NAME)
            .map_err(|e| x_error("query XFIXES", e))?
            .is_none()
        {
            return Err(x_error("XFIXES", "the display has no XFIXES extension"));
        }
        conn.xfixes_query_version(5, 0)
            .map_err(|e| x_error("XFIXES version", e))?
            .reply()
            .map_err(|e| x_error("XFIXES version", e))?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id().map_err(|e| x_error("X id", e))?;
        let aux = CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &aux,
        )
        .map_err(|e| x_error("create the clipboard window", e))?;
        let atoms = Atoms::intern(&conn)?;
        let mask = SelectionEventMask::SET_SELECTION_OWNER
            | SelectionEventMask::SELECTION_WINDOW_DESTROY
            | SelectionEventMask::SELECTION_CLIENT_CLOSE;
        for selection in Selection::ALL {
            conn.xfixes_select_selection_input(window, atoms.selection(selection), mask)
                .map_err(|e| x_error("watch a selection", e))?;
        }
        conn.flush().map_err(|e| x_error("X flush", e))?;
        Ok(Agent {
            conn,
            window,
            atoms,
            served: Served::default(),
            changes,
            reporting: false,
            reading: [None, None],
            last: [None, None],
        })
    }

    fn run(&mut self, inbox: &Inbox<Command>) -> Result<()> {
        let fd = self.conn.stream().as_raw_fd();
        loop {
            for command in inbox.drain() {
                match command {
                    Command::Stop => return Ok(()),
                    Command::Set(selection, text) => self.set(selection, text)?,
                    Command::Report(on) => self.reporting = on,
                    Command::AnnounceCurrent => {
                        for selection in Selection::ALL {
                            self.last[selection.index()] = None;
                            let owner = self
                                .conn
                                .get_selection_owner(self.atoms.selection(selection))
                                .map_err(|e| x_error("GetSelectionOwner", e))?
                                .reply()
                                .map_err(|e| x_error("GetSelectionOwner", e))?
                                .owner;
                            if owner != x11rb::NONE && owner != self.window {
                                self.request(selection)?;
                            }
                        }
                    }
                }
            }
            while let Some(event) = self
                .conn
                .poll_for_event()
                .map_err(|e| x_error("X events", e))?
            {
                self.on_event(event)?;
            }
            for slot in &mut self.reading {
                if slot.as_ref().is_some_and(|r| {
                    r.started.elapsed() > READ_TIMEOUT || r.began.elapsed() > TRANSFER_LIMIT
                }) {
                    debug!("a selection owner did not hand its text over in time");
                    *slot = None;
                }
            }
            self.conn.flush().map_err(|e| x_error("X flush", e))?;
            let timeout = self
                .reading
                .iter()
                .any(Option::is_some)
                .then_some(READ_TIMEOUT);
            inbox.wait(fd, timeout)?;
        }
    }

    fn set(&mut self, selection: Selection, mut text: String) -> Result<()> {
        truncate_utf8(&mut text, MAX_CLIPBOARD_TEXT);
        self.last[selection.index()] = Some(text.clone());
        self.served.offer(selection, text.into_bytes());
        self.conn
            .set_selection_owner(
                self.window,
                self.atoms.selection(selection),
                x11rb::CURRENT_TIME,
            )
            .map_err(|e| x_error("SetSelectionOwner", e))?;
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::XfixesSelectionNotify(e) => {
                let Some(selection) = self.atoms.which(e.selection) else {
                    return Ok(());
                };
                if e.owner != self.window {
                    self.served.withdraw(selection);
                    if self.reporting && e.owner != x11rb::NONE {
                        self.request(selection)?;
                    }
                }
            }
            Event::SelectionRequest(e) => {
                self.served.answer(&self.conn, &self.atoms, &e)?;
            }
            Event::SelectionClear(e) => {
                if let Some(selection) = self.atoms.which(e.selection) {
                    self.served.withdraw(selection);
                }
            }
            Event::SelectionNotify(e) if e.requestor == self.window => {
                let Some(selection) = self.atoms.which(e.selection) else {
                    return Ok(());
                };
                if e.property == x11rb::NONE {
                    debug!(?selection, "the owner could not give UTF-8 text");
                    self.reading[selection.index()] = None;
                    return Ok(());
                }
                self.take_property(selection, true)?;
            }
            Event::PropertyNotify(e)
                if e.window == self.window && e.state == Property::NEW_VALUE =>
            {
                if let Some(selection) = self.atoms.which_property(e.atom)
                    && self.reading[selection.index()]
                        .as_ref()
                        .is_some_and(|r| r.incr.is_some())
                {
                    self.take_property(selection, false)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Asks the owner of `selection` for its text as UTF-8.
    fn request(&mut self, selection: Selection) -> Result<()> {
        self.conn
            .convert_selection(
                self.window,
                self.atoms.selection(selection),
                self.atoms.utf8_string,
                self.atoms.property(selection),
                x11rb::CURRENT_TIME,
            )
            .map_err(|e| x_error("ConvertSelection", e))?;
        self.reading[selection.index()] = Some(Reading {
            began: Instant::now(),
            started: Instant::now(),
            incr: None,
            overflowed: false,
        });
        Ok(())
    }

    /// Reads (and deletes) our property after the owner's answer or one of
    /// its INCR pieces.
    fn take_property(&mut self, selection: Selection, first: bool) -> Result<()> {
        let limit = (MAX_CLIPBOARD_TEXT / 4 + 1) as u32;
        let reply = self
            .conn
            .get_property(
                true,
                self.window,
                self.atoms.property(selection),
                AtomEnum::ANY,
                0,
                limit,
            )
            .map_err(|e| x_error("GetProperty", e))?
            .reply()
            .map_err(|e| x_error("GetProperty", e))?;
        let slot = &mut self.reading[selection.index()];
        let Some(reading) = slot.as_mut() else {
            return Ok(());
        };
        if first && reply.type_ == self.atoms.incr {
            // Deleting the property told the owner to send the first piece.
            reading.incr = Some(Vec::new());
            reading.started = Instant::now();
            return Ok(());
        }
        let bytes = match reading.incr.as_mut() {
            Some(pieces) if !reply.value.is_empty() => {
                reading.started = Instant::now();
                if !reading.overflowed {
                    pieces.extend_from_slice(&reply.value);
                    if pieces.len() > MAX_CLIPBOARD_TEXT {
                        warn!(
                            ?selection,
                            "selection larger than {MAX_CLIPBOARD_TEXT} bytes; not forwarded"
                        );
                        reading.overflowed = true;
                        *pieces = Vec::new();
                    }
                }
                return Ok(());
            }
            Some(_) if reading.overflowed => {
                *slot = None;
                return Ok(());
            }
            Some(pieces) => std::mem::take(pieces),
            None if reply.bytes_after > 0 => {
                warn!(
                    ?selection,
                    "selection larger than {MAX_CLIPBOARD_TEXT} bytes; not forwarded"
                );
                *slot = None;
                return Ok(());
            }
            None => reply.value,
        };
        *slot = None;
        let Ok(text) = String::from_utf8(bytes) else {
            debug!(?selection, "selection text is not UTF-8; not forwarded");
            return Ok(());
        };
        let last = &mut self.last[selection.index()];
        if last.as_deref() == Some(text.as_str()) || !self.reporting {
            return Ok(());
        }
        *last = Some(text.clone());
        let _ = self.changes.send(ClipboardChange { selection, text });
        Ok(())
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn truncate_utf8(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_keeps_whole_characters() {
        let mut s = "aé€".to_string();
        super::truncate_utf8(&mut s, 4);
        assert_eq!(s, "aé");
        let mut s = "abc".to_string();
        super::truncate_utf8(&mut s, 10);
        assert_eq!(s, "abc");
    }
}
