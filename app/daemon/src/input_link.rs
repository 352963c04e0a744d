//! The `input` channel of a domination session: the master's keyboard and
//! mouse and the clipboard, between a master and the ZOS session of a
//! zombie it dominates.
//!
//! The zombie opens the channel once its ZOS session is up and says so
//! ([`InputMessage::Session`]); the master then drives it at will:
//! `Drive(true)`, events, `Drive(false)`. While it drives, the master sends
//! [`InputMessage::Alive`] every [`ALIVE_INTERVAL`] and the zombie echoes
//! each; a master that hears nothing for [`LINK_TIMEOUT`] takes its
//! keyboard back (a cut cable). Clipboard text goes both ways, only while
//! driving. Every message is at most [`MAX_INPUT_MESSAGE`] bytes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zos_display::input::{MAX_CLIPBOARD_TEXT, Selection};

/// How often a driving master says it is there.
pub const ALIVE_INTERVAL: Duration = Duration::from_millis(250);
/// How long a driving master waits for the zombie before it takes its
/// keyboard and mouse back.
pub const LINK_TIMEOUT: Duration = Duration::from_millis(1500);
/// The largest message on the channel: the clipboard's cap and room for its
/// envelope (events come in far smaller batches).
pub const MAX_INPUT_MESSAGE: usize = MAX_CLIPBOARD_TEXT + 1024;
/// Events queued for a zombie's channel before the link counts as stuck.
pub const MAX_QUEUED_MESSAGES: usize = 4096;

/// A message on the `input` channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputMessage {
    /// Zombie → master, first: the ZOS session is open, this big, and
    /// whether the zombie's user allows input into it.
    Session {
        /// Its screen width.
        width: u16,
        /// Its screen height.
        height: u16,
        /// Input allowed.
        allowed: bool,
    },
    /// Zombie → master: its user allowed (or refused) input.
    Allowed(bool),
    /// Master → zombie: input goes to the session from now on (or not).
    Drive(bool),
    /// Master → zombie: input events, `zos_display::input` records.
    Events(Vec<u8>),
    /// Master → zombie while driving, echoed back: the link is alive.
    Alive(u32),
    /// Either way while driving: text on a selection.
    Clipboard {
        /// `PRIMARY` (else `CLIPBOARD`).
        primary: bool,
        /// The text (at most `MAX_CLIPBOARD_TEXT` bytes).
        text: String,
    },
}

impl InputMessage {
    /// A clipboard message for `selection`.
    pub fn clipboard(selection: Selection, text: String) -> InputMessage {
        InputMessage::Clipboard {
            primary: selection == Selection::Primary,
            text,
        }
    }
}

/// The selection a clipboard message names.
pub fn selection_of(primary: bool) -> Selection {
    if primary {
        Selection::Primary
    } else {
        Selection::Clipboard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_clipboard_fits_in_a_message() {
        let m = InputMessage::clipboard(Selection::Primary, "é".repeat(MAX_CLIPBOARD_TEXT / 2));
        let bytes = postcard::to_stdvec(&m).unwrap();
        assert!(bytes.len() <= MAX_INPUT_MESSAGE, "{}", bytes.len());
        assert_eq!(postcard::from_bytes::<InputMessage>(&bytes).unwrap(), m);
    }
}
