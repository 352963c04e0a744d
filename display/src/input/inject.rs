//! [`Injector`]: the master's input events played into one display (the ZOS
//! session) with XTest, and nowhere else.
//!
//! Keysyms become keycodes of that display's keymap; Shift is pressed or
//! lifted around a key whose keysym needs the other level, and a keysym the
//! keymap lacks is bound to a spare keycode first (as xdotool does) — kept
//! there until the spare is needed again, so a client that reads the
//! mapping late still sees it. Every key and button pressed is remembered
//! and [`Injector::release_all`] lets them all go.

use std::collections::BTreeMap;
use std::path::Path;

use tracing::{debug, warn};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{self, ConnectionExt as _, Mapping, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::keymap::{self, Keymap};
use super::wire::{InputEvent, denormalise};
use crate::error::Result;
use crate::xconn::{self, x_error};

/// `Shift_L`.
const SHIFT_L: u32 = 0xffe1;
/// `Caps_Lock`.
const CAPS_LOCK: u32 = 0xffe5;

/// Plays input events into one X display.
pub struct Injector {
    conn: RustConnection,
    root: Window,
    size: (u16, u16),
    keymap: Keymap,
    /// The mapping changed (ours or another client's): read it again
    /// before the next key.
    keymap_stale: bool,
    /// Keys down: the master's keycode → the keycode pressed here.
    keys: BTreeMap<u8, u8>,
    buttons: Vec<u8>,
    /// Spare keycodes bound to keysyms the keymap lacked, least recently
    /// used first.
    bound: Vec<(u32, u8)>,
    spares: Vec<u8>,
    /// Caps Lock as toggled by the keys we pressed.
    caps_lock: bool,
}

impl Injector {
    /// Connects to display `name` with the cookie in `xauthority`; fails
    /// if the display has no XTest.
    pub fn connect(name: &str, xauthority: Option<&Path>) -> Result<Injector> {
        let (conn, screen) = xconn::connect(name, xauthority)?;
        if conn
            .extension_information(x11rb::protocol::xtest::X11_EXTENSION_NAME)
            .map_err(|e| x_error("query XTEST", e))?
            .is_none()
        {
            return Err(x_error(
                "XTEST",
                format!("display {name} has no XTEST extension"),
            ));
        }
        let s = &conn.setup().roots[screen];
        let (root, size) = (s.root, (s.width_in_pixels, s.height_in_pixels));
        let keymap = read_keymap(&conn)?;
        let spares = keymap.spare_keycodes();
        debug!(display = name, spares = spares.len(), "injector connected");
        Ok(Injector {
            conn,
            root,
            size,
            keymap,
            keymap_stale: false,
            keys: BTreeMap::new(),
            buttons: Vec::new(),
            bound: Vec::new(),
            spares,
            caps_lock: false,
        })
    }

    /// The display's screen size.
    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    /// How many keys and buttons are held down by us.
    pub fn held(&self) -> (usize, usize) {
        (self.keys.len(), self.buttons.len())
    }

    /// Plays `events` in order, then flushes.
    pub fn inject(&mut self, events: &[InputEvent]) -> Result<()> {
        self.notice_mapping_changes()?;
        for event in events {
            match *event {
                InputEvent::KeyDown { keysym, code } => self.key_down(keysym, code)?,
                InputEvent::KeyUp { code } => self.key_up(code)?,
                InputEvent::Motion { x, y } => {
                    let (x, y) = (denormalise(x, self.size.0), denormalise(y, self.size.1));
                    self.fake(xproto::MOTION_NOTIFY_EVENT, 0, x, y)?;
                }
                InputEvent::ButtonDown(b) => {
                    if !self.buttons.contains(&b) {
                        self.buttons.push(b);
                    }
                    self.fake(xproto::BUTTON_PRESS_EVENT, b, 0, 0)?;
                }
                InputEvent::ButtonUp(b) => {
                    if self.buttons.contains(&b) {
                        self.buttons.retain(|&x| x != b);
                        self.fake(xproto::BUTTON_RELEASE_EVENT, b, 0, 0)?;
                    }
                }
            }
        }
        self.conn.flush().map_err(|e| x_error("X flush", e))
    }

    /// Releases every key and button we hold down, then flushes.
    pub fn release_all(&mut self) -> Result<()> {
        let keys: Vec<u8> = std::mem::take(&mut self.keys).into_values().collect();
        for keycode in keys {
            self.fake(xproto::KEY_RELEASE_EVENT, keycode, 0, 0)?;
        }
        for button in std::mem::take(&mut self.buttons) {
            self.fake(xproto::BUTTON_RELEASE_EVENT, button, 0, 0)?;
        }
        self.conn.flush().map_err(|e| x_error("X flush", e))
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<()> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)
            .map_err(|e| x_error("XTEST fake input", e))?;
        Ok(())
    }

    fn key_down(&mut self, keysym: u32, code: u8) -> Result<()> {
        if let Some(&keycode) = self.keys.get(&code) {
            // Auto-repeat: the same key again.
            return self.fake(xproto::KEY_PRESS_EVENT, keycode, 0, 0);
        }
        if self.keymap_stale {
            self.reload_keymap()?;
        }
        let Some((keycode, shifted)) = self.key_for(keysym)? else {
            warn!("no key for keysym {keysym:#x} and no spare keycode left; dropped");
            return Ok(());
        };
        if keysym == CAPS_LOCK {
            self.caps_lock = !self.caps_lock;
        }
        let needs_level = !keymap::is_modifier(keysym) && !self.keymap.shift_invariant(keycode);
        let shift_keys = self.held_shift_keys();
        let mut shift_on = !shift_keys.is_empty();
        if self.caps_lock && is_letter(keysym) {
            shift_on = !shift_on;
        }
        if needs_level && shifted && !shift_on {
            let shift = self.keymap.find(SHIFT_L).map(|(k, _)| k);
            if let Some(shift) = shift {
                self.fake(xproto::KEY_PRESS_EVENT, shift, 0, 0)?;
                self.fake(xproto::KEY_PRESS_EVENT, keycode, 0, 0)?;
                self.fake(xproto::KEY_RELEASE_EVENT, shift, 0, 0)?;
                self.keys.insert(code, keycode);
                return Ok(());
            }
        } else if needs_level && !shifted && shift_on && !shift_keys.is_empty() {
            for &k in &shift_keys {
                self.fake(xproto::KEY_RELEASE_EVENT, k, 0, 0)?;
            }
            self.fake(xproto::KEY_PRESS_EVENT, keycode, 0, 0)?;
            for &k in &shift_keys {
                self.fake(xproto::KEY_PRESS_EVENT, k, 0, 0)?;
            }
            self.keys.insert(code, keycode);
            return Ok(());
        }
        self.fake(xproto::KEY_PRESS_EVENT, keycode, 0, 0)?;
        self.keys.insert(code, keycode);
        Ok(())
    }

    fn key_up(&mut self, code: u8) -> Result<()> {
        match self.keys.remove(&code) {
            Some(keycode) => self.fake(xproto::KEY_RELEASE_EVENT, keycode, 0, 0),
            // A release whose press came before we drove (or was dropped).
            None => Ok(()),
        }
    }

    /// The keycodes of held shift keys.
    fn held_shift_keys(&self) -> Vec<u8> {
        self.keys
            .values()
            .copied()
            .filter(|&k| {
                self.keymap
                    .row(k)
                    .first()
                    .is_some_and(|&s| keymap::is_shift(s))
            })
            .collect()
    }

    /// The key for `keysym`, binding a spare keycode when the keymap has none.
    fn key_for(&mut self, keysym: u32) -> Result<Option<(u8, bool)>> {
        if let Some(found) = self.keymap.find(keysym) {
            if let Some(i) = self.bound.iter().position(|&(s, _)| s == keysym) {
                let entry = self.bound.remove(i);
                self.bound.push(entry);
            }
            return Ok(Some(found));
        }
        let held: Vec<u8> = self.keys.values().copied().collect();
        let keycode = if let Some(&free) = self.spares.iter().find(|k| !held.contains(k)) {
            self.spares.retain(|&k| k != free);
            free
        } else if let Some(i) = self.bound.iter().position(|(_, k)| !held.contains(k)) {
            self.bound.remove(i).1
        } else {
            return Ok(None);
        };
        let row = vec![keysym; usize::from(self.keymap.per_keycode())];
        self.conn
            .change_keyboard_mapping(1, keycode, self.keymap.per_keycode(), &row)
            .map_err(|e| x_error("ChangeKeyboardMapping", e))?;
        self.keymap.set_row(keycode, &row);
        self.bound.push((keysym, keycode));
        debug!("keysym {keysym:#x} bound to spare keycode {keycode}");
        Ok(Some((keycode, false)))
    }

    /// Marks the keymap stale on a `MappingNotify` (drains our events).
    fn notice_mapping_changes(&mut self) -> Result<()> {
        while let Some(event) = self
            .conn
            .poll_for_event()
            .map_err(|e| x_error("X events", e))?
        {
            if let Event::MappingNotify(m) = event
                && m.request == Mapping::KEYBOARD
            {
                self.keymap_stale = true;
            }
        }
        Ok(())
    }

    fn reload_keymap(&mut self) -> Result<()> {
        self.keymap = read_keymap(&self.conn)?;
        self.keymap_stale = false;
        let keymap = &self.keymap;
        self.bound
            .retain(|&(keysym, keycode)| keymap.row(keycode).first() == Some(&keysym));
        let bound: Vec<u8> = self.bound.iter().map(|&(_, k)| k).collect();
        self.spares = keymap
            .spare_keycodes()
            .into_iter()
            .filter(|k| !bound.contains(k))
            .collect();
        Ok(())
    }
}

/// Whether `keysym` is a Latin-1 letter (Caps Lock shifts it).
fn is_letter(keysym: u32) -> bool {
    matches!(keysym, 0x41..=0x5a | 0x61..=0x7a | 0xc0..=0xde | 0xe0..=0xfe)
        && keysym != 0xd7
        && keysym != 0xf7
}

/// The display's core keyboard mapping.
pub(crate) fn read_keymap(conn: &RustConnection) -> Result<Keymap> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let reply = conn
        .get_keyboard_mapping(min, max - min + 1)
        .map_err(|e| x_error("GetKeyboardMapping", e))?
        .reply()
        .map_err(|e| x_error("GetKeyboardMapping", e))?;
    Ok(Keymap::new(min, reply.keysyms_per_keycode, reply.keysyms))
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("size", &self.size)
            .field("keys", &self.keys)
            .field("buttons", &self.buttons)
            .finish_non_exhaustive()
    }
}
