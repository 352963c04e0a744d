//! The viewer side of the clipboard: the local X display's CLIPBOARD and PRIMARY selections,
//! bridged to the app's clipboard.
//!
//! A thread of its own with its own X connection (x11rb) and a hidden window:
//! - it watches who owns CLIPBOARD and PRIMARY (XFIXES selection notifications); when another
//!   client takes one, it asks for the text (UTF8_STRING, incremental transfers followed) and
//!   hands it to the connection, which gives it to the app;
//! - when the app's clipboard changes, it takes both selections and serves the text to local
//!   programs that ask (TARGETS, UTF8_STRING, TEXT, text/plain, STRING as Latin-1).
//!
//! Texts over [`MAX_CLIPBOARD`] are not shared either way. A text equal to the last one
//! shared is not sent again, so two viewers on one display, or the app's own text coming
//! back, never loop.

use std::sync::{Arc, Mutex};

use tracing::{debug, info, warn};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
    Property, SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use zos_display::clipboard::MAX_CLIPBOARD;

use crate::net::InputSender;

/// The local clipboard bridge of one viewer.
pub struct Bridge {
    conn: Arc<RustConnection>,
    window: Window,
    wake: Atom,
    /// The app's text waiting to be taken over by the bridge's thread.
    incoming: Arc<Mutex<Option<Arc<str>>>>,
}

#[derive(Debug, Clone, Copy)]
struct Atoms {
    clipboard: Atom,
    utf8: Atom,
    text: Atom,
    text_plain: Atom,
    targets: Atom,
    incr: Atom,
    property: Atom,
    wake: Atom,
}

fn intern(conn: &RustConnection) -> Result<Atoms> {
    let get = |name: &str| -> Result<Atom> {
        Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
    };
    Ok(Atoms {
        clipboard: get("CLIPBOARD")?,
        utf8: get("UTF8_STRING")?,
        text: get("TEXT")?,
        text_plain: get("text/plain;charset=utf-8")?,
        targets: get("TARGETS")?,
        incr: get("INCR")?,
        property: get("_ZOS_CLIPBOARD")?,
        wake: get("_ZOS_CLIPBOARD_WAKE")?,
    })
}

impl Bridge {
    /// Starts the bridge on the display of `DISPLAY`; local texts go to `input`. `None` (and
    /// a log line) without a display or XFIXES: the view works, without a clipboard.
    pub fn start(input: InputSender) -> Option<Arc<Bridge>> {
        match Self::try_start(input) {
            Ok(bridge) => Some(bridge),
            Err(e) => {
                warn!("no clipboard for this view: {e}");
                None
            }
        }
    }

    fn try_start(input: InputSender) -> Result<Arc<Bridge>> {
        let (conn, screen) = x11rb::connect(None)?;
        let conn = Arc::new(conn);
        let root = conn.setup().roots[screen].root;
        let atoms = intern(&conn)?;
        conn.xfixes_query_version(5, 0)?.reply()?;
        let window = conn.generate_id()?;
        conn.create_window(
            0,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?
        .check()?;
        let owner_changes = SelectionEventMask::SET_SELECTION_OWNER;
        for selection in [atoms.clipboard, AtomEnum::PRIMARY.into()] {
            conn.xfixes_select_selection_input(window, selection, owner_changes)?
                .check()?;
        }
        conn.flush()?;
        let incoming = Arc::new(Mutex::new(None));
        let keeper = Keeper {
            conn: Arc::clone(&conn),
            window,
            atoms,
            input,
            incoming: Arc::clone(&incoming),
            owned: None,
            owns: [false; 2],
            shared: None,
            incr: None,
        };
        std::thread::Builder::new()
            .name("zos-clipboard".into())
            .spawn(move || {
                if let Err(e) = keeper.run() {
                    debug!("clipboard bridge ended: {e}");
                }
            })?;
        Ok(Arc::new(Bridge {
            conn,
            window,
            wake: atoms.wake,
            incoming,
        }))
    }

    /// The app's clipboard changed to `text`: local programs get it from now on.
    pub fn set(&self, text: Arc<str>) {
        *self.incoming.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        let event = ClientMessageEvent::new(32, self.window, self.wake, [0u32; 5]);
        let sent = self
            .conn
            .send_event(false, self.window, EventMask::NO_EVENT, event)
            .map(|_| ())
            .and_then(|()| self.conn.flush());
        if let Err(e) = sent {
            debug!("clipboard bridge: {e}");
        }
    }
}

/// The hook the connection calls with the app's texts.
pub fn hook(bridge: Option<Arc<Bridge>>) -> Box<dyn Fn(Arc<str>) + Send + Sync> {
    Box::new(move |text| {
        if let Some(b) = &bridge {
            b.set(text);
        }
    })
}

struct Keeper {
    conn: Arc<RustConnection>,
    window: Window,
    atoms: Atoms,
    input: InputSender,
    incoming: Arc<Mutex<Option<Arc<str>>>>,
    /// The app's text we serve while we own a selection.
    owned: Option<Arc<str>>,
    /// Whether we own CLIPBOARD and PRIMARY.
    owns: [bool; 2],
    /// The text last shared either way.
    shared: Option<Arc<str>>,
    /// An incremental transfer under way: what came so far.
    incr: Option<Vec<u8>>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

impl Keeper {
    fn run(mut self) -> Result<()> {
        loop {
            let event = self.conn.wait_for_event()?;
            self.handle(event)?;
            self.conn.flush()?;
        }
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        match event {
            // Someone else copied: ask for the text.
            Event::XfixesSelectionNotify(e) if e.owner != self.window && e.owner != x11rb::NONE => {
                self.conn.convert_selection(
                    self.window,
                    e.selection,
                    self.atoms.utf8,
                    self.atoms.property,
                    e.selection_timestamp,
                )?;
            }
            Event::SelectionNotify(e)
                if e.requestor == self.window && e.property != x11rb::NONE =>
            {
                self.read_property()?;
            }
            Event::PropertyNotify(e)
                if e.window == self.window
                    && e.atom == self.atoms.property
                    && e.state == Property::NEW_VALUE
                    && self.incr.is_some() =>
            {
                self.read_property()?;
            }
            Event::SelectionRequest(e) => self.answer(&e)?,
            Event::SelectionClear(e) => {
                if let Some(i) = self.index(e.selection) {
                    self.owns[i] = false;
                }
                if self.owns == [false; 2] {
                    self.owned = None;
                }
            }
            Event::ClientMessage(e) if e.type_ == self.atoms.wake => {
                let text = self
                    .incoming
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                if let Some(text) = text {
                    self.take_selections(text)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// 0 for CLIPBOARD, 1 for PRIMARY.
    fn index(&self, selection: Atom) -> Option<usize> {
        if selection == self.atoms.clipboard {
            Some(0)
        } else if selection == u32::from(AtomEnum::PRIMARY) {
            Some(1)
        } else {
            None
        }
    }

    /// The app's text becomes the local CLIPBOARD and PRIMARY.
    fn take_selections(&mut self, text: Arc<str>) -> Result<()> {
        for selection in [self.atoms.clipboard, AtomEnum::PRIMARY.into()] {
            self.conn
                .set_selection_owner(self.window, selection, x11rb::CURRENT_TIME)?;
        }
        self.owns = [true; 2];
        debug!(
            bytes = text.len(),
            "the app's clipboard is now the local one"
        );
        self.shared = Some(Arc::clone(&text));
        self.owned = Some(text);
        Ok(())
    }

    /// Reads our property after a conversion or an incremental chunk.
    fn read_property(&mut self) -> Result<()> {
        let limit = (MAX_CLIPBOARD as u32).div_ceil(4) + 1;
        let reply = self
            .conn
            .get_property(
                true,
                self.window,
                self.atoms.property,
                AtomEnum::ANY,
                0,
                limit,
            )?
            .reply()?;
        if reply.type_ == self.atoms.incr {
            // The text comes in pieces: each new value of the property is the next one.
            self.incr = Some(Vec::new());
            return Ok(());
        }
        let latin1 = reply.type_ == u32::from(AtomEnum::STRING);
        let bytes = match self.incr.take() {
            Some(mut so_far) if !reply.value.is_empty() => {
                if so_far.len() + reply.value.len() > MAX_CLIPBOARD {
                    info!("a local clipboard over {MAX_CLIPBOARD} bytes is not shared");
                    return Ok(());
                }
                so_far.extend_from_slice(&reply.value);
                self.incr = Some(so_far);
                return Ok(());
            }
            Some(all) => all,
            None if reply.bytes_after > 0 => {
                info!("a local clipboard over {MAX_CLIPBOARD} bytes is not shared");
                return Ok(());
            }
            None => reply.value,
        };
        let text: String = if latin1 {
            bytes.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        if text.is_empty() || self.shared.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        debug!(bytes = text.len(), "local clipboard for the app");
        self.shared = Some(text.clone().into());
        self.input.send(crate::net::Input::Clipboard(text));
        Ok(())
    }

    /// Serves our text to a local program.
    fn answer(&mut self, e: &SelectionRequestEvent) -> Result<()> {
        let property = if e.property == x11rb::NONE {
            e.target
        } else {
            e.property
        };
        let a = self.atoms;
        let ours = self.index(e.selection).is_some_and(|i| self.owns[i]);
        let served = match self.owned.as_ref().filter(|_| ours) {
            None => false,
            Some(_) if e.target == a.targets => {
                let targets = [
                    a.targets,
                    a.utf8,
                    a.text,
                    a.text_plain,
                    AtomEnum::STRING.into(),
                ];
                self.conn.change_property32(
                    PropMode::REPLACE,
                    e.requestor,
                    property,
                    AtomEnum::ATOM,
                    &targets,
                )?;
                true
            }
            Some(text) if [a.utf8, a.text, a.text_plain].contains(&e.target) => {
                self.conn.change_property8(
                    PropMode::REPLACE,
                    e.requestor,
                    property,
                    a.utf8,
                    text.as_bytes(),
                )?;
                true
            }
            Some(text) if e.target == u32::from(AtomEnum::STRING) => {
                let latin1: Vec<u8> = text
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                    .collect();
                self.conn.change_property8(
                    PropMode::REPLACE,
                    e.requestor,
                    property,
                    AtomEnum::STRING,
                    &latin1,
                )?;
                true
            }
            Some(_) => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: x11rb::protocol::xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: e.time,
            requestor: e.requestor,
            selection: e.selection,
            target: e.target,
            property: if served { property } else { x11rb::NONE },
        };
        self.conn
            .send_event(false, e.requestor, EventMask::NO_EVENT, notify)?;
        Ok(())
    }
}
