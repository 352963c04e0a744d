//! X input redirection: the master's keyboard and mouse driving a zombie's
//! ZOS session, and the clipboard following them.
//!
//! | module | concept |
//! |---|---|
//! | `wire` | [`InputEvent`]: keysym keys, normalised motion, buttons; 8-byte records, strict decoding |
//! | `keymap` | a display's core keymap: a key's keysym in a modifier state; the key (and Shift) for a keysym; spare keycodes |
//! | `capture` | [`Capture`] on the master's display: hotkeys, edge watch, grab, events out |
//! | `inject` | [`Injector`]: events into one display with XTest; spare keycodes bound for missing keysyms; everything held released |
//! | `hotkey` | [`Hotkey`] and [`Edge`] as the settings name them |
//! | `banner` | a one-line text window (the master's notice, the session's panel) |
//! | `clipboard`, `selection` | [`ClipboardAgent`]: CLIPBOARD and PRIMARY text read and offered, UTF-8, capped |
//! | `mailbox` | commands for a thread that sleeps on its X connection |

mod banner;
mod capture;
mod capturer;
mod clipboard;
mod hotkey;
mod inject;
mod keymap;
mod mailbox;
mod selection;
mod wire;

pub use banner::{BANNER_HEIGHT, Banner, Placement};
pub use capture::{Capture, CaptureEvent, CaptureOptions, EDGE_POLL, InputSink, Switch};
pub use clipboard::{ClipboardAgent, ClipboardChange, MAX_CLIPBOARD_TEXT, Selection};
pub use hotkey::{Edge, Hotkey};
pub use inject::Injector;
pub use keymap::Keymap;
pub use wire::{
    EVENT_BYTES, InputEvent, MAX_BUTTON, POSITION_SCALE, WireError, decode_events, denormalise,
    encode_events, normalise,
};

pub(crate) use mailbox::{Inbox, Mailbox, mailbox};
