//! Flow control: what each side may send on a channel.
//!
//! The receiver of a channel grants the sender a window of bytes; every
//! piece costs its length plus [`PIECE_OVERHEAD`], so a flood of empty pieces
//! is bounded in count as well as in bytes. The receiver gives credit back
//! as its application takes pieces, in batches of a quarter window.
//!
//! **Credit only for accepted channels.** A channel the peer opens has no
//! window at all until the application accepts it ([`super::Mux::accept`]);
//! accepting grants the whole window with one `Credit` frame. A piece on a
//! channel not yet accepted, or beyond the window, is a protocol violation
//! that ends the session. The opener grants its own window with the `Open`
//! frame itself, so the acceptor may answer at once.

use crate::error::{Error, Result};

/// Receive window of each bulk channel, in bytes.
pub const WINDOW: usize = 4 << 20;
/// Receive window of the control channel (id 0), in bytes.
pub const CONTROL_WINDOW: usize = 4 * super::MAX_CONTROL_MESSAGE;
/// Credit charged for a piece beyond its bytes, so empty pieces are not
/// free: a window holds at most `WINDOW / PIECE_OVERHEAD` pieces.
pub const PIECE_OVERHEAD: usize = 128;

/// What a piece costs in credit.
pub fn cost(piece_len: usize) -> usize {
    piece_len + PIECE_OVERHEAD
}

/// The receiving side's account of one channel.
#[derive(Debug)]
pub(super) struct RecvWindow {
    /// The channel's full window.
    window: usize,
    /// Whether the window has been granted (at accept, or at open for the
    /// opener's own window).
    granted: bool,
    /// Bytes the peer may still send.
    allowance: usize,
    /// Credit freed by the application and not yet given back.
    to_return: usize,
    /// Bytes of the message now arriving (pieces since the last `last`).
    message_so_far: usize,
    /// The peer has closed or reset its side: it sends nothing more.
    peer_finished: bool,
    /// Nobody receives any more: pieces are discarded, so no message is
    /// too large.
    discarding: bool,
}

/// What is wrong with an arriving piece.
pub(super) enum Refusal {
    /// The peer broke the protocol: the session ends.
    Violation(Error),
    /// The message is larger than the channel accepts.
    TooLarge(String),
}

impl RecvWindow {
    /// A window the peer may use at once (channels we open, control).
    pub fn granted(window: usize) -> RecvWindow {
        RecvWindow {
            window,
            granted: true,
            allowance: window,
            to_return: 0,
            message_so_far: 0,
            peer_finished: false,
            discarding: false,
        }
    }

    /// A window not granted yet (channels the peer opens).
    pub fn pending(window: usize) -> RecvWindow {
        RecvWindow {
            granted: false,
            allowance: 0,
            ..RecvWindow::granted(window)
        }
    }

    /// Whether the application has accepted the channel.
    pub fn is_granted(&self) -> bool {
        self.granted
    }

    /// Grants the whole window at accept; returns the credit to send, or
    /// `None` if it was granted already.
    pub fn grant(&mut self) -> Option<u32> {
        if self.granted {
            return None;
        }
        self.granted = true;
        self.allowance += self.window;
        Some(self.window as u32)
    }

    /// Charges an arriving piece against the window.
    pub fn charge(
        &mut self,
        channel: u32,
        piece_len: usize,
        last: bool,
        max_message: usize,
    ) -> std::result::Result<(), Refusal> {
        if !self.granted {
            return Err(Refusal::Violation(Error::Malformed(format!(
                "peer sent data on channel {channel} before it was accepted"
            ))));
        }
        if self.peer_finished {
            return Err(Refusal::Violation(Error::Malformed(format!(
                "peer sent data on channel {channel} after closing it"
            ))));
        }
        let cost = cost(piece_len);
        if cost > self.allowance {
            return Err(Refusal::Violation(Error::Malformed(format!(
                "peer overran channel {channel}'s credit window ({cost} bytes with {} left of {})",
                self.allowance, self.window
            ))));
        }
        self.allowance -= cost;
        self.message_so_far += piece_len;
        if self.message_so_far > max_message && !self.discarding {
            return Err(Refusal::TooLarge(format!(
                "message larger than the {max_message} bytes this channel accepts"
            )));
        }
        if last {
            self.message_so_far = 0;
        }
        Ok(())
    }

    /// Records that the peer closed or reset its side; `true` the first
    /// time only, so a channel gets one end event however often the peer
    /// repeats itself.
    pub fn peer_finished(&mut self) -> bool {
        !std::mem::replace(&mut self.peer_finished, true)
    }

    /// Records that the receiver is gone: what arrives is discarded.
    pub fn discard(&mut self) {
        self.discarding = true;
    }

    /// Records that `cost` bytes were freed; returns credit to give back
    /// once a quarter window has gathered.
    pub fn freed(&mut self, cost: usize) -> Option<u32> {
        self.to_return += cost;
        if self.to_return < self.window / 4 {
            return None;
        }
        let bytes = std::mem::take(&mut self.to_return);
        self.allowance += bytes;
        Some(bytes as u32)
    }
}

/// Checks a peer's grant against the window we could ever be owed.
pub(super) fn check_grant(channel: u32, available: usize, bytes: u32, window: usize) -> Result<()> {
    if available + bytes as usize > window {
        return Err(Error::Malformed(format!(
            "peer granted excess credit on channel {channel} ({bytes} bytes with {available} unused of a {window}-byte window)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_window_refuses_data_until_granted() {
        let mut w = RecvWindow::pending(WINDOW);
        assert!(matches!(
            w.charge(3, 0, true, usize::MAX),
            Err(Refusal::Violation(_))
        ));
        assert_eq!(w.grant(), Some(WINDOW as u32));
        assert_eq!(w.grant(), None, "granted once");
        assert!(w.charge(3, 1000, true, usize::MAX).is_ok());
    }

    #[test]
    fn empty_pieces_use_up_the_window_too() {
        let mut w = RecvWindow::granted(WINDOW);
        let fit = WINDOW / PIECE_OVERHEAD;
        for _ in 0..fit {
            assert!(w.charge(1, 0, true, usize::MAX).is_ok());
        }
        assert!(matches!(
            w.charge(1, 0, true, usize::MAX),
            Err(Refusal::Violation(_))
        ));
    }

    #[test]
    fn credit_returns_in_quarter_windows_and_reopens_the_window() {
        let mut w = RecvWindow::granted(WINDOW);
        let piece = 60_000;
        let mut pieces = 0;
        while w.charge(1, piece, true, usize::MAX).is_ok() {
            pieces += 1;
        }
        let mut returned = 0u64;
        for _ in 0..pieces {
            if let Some(bytes) = w.freed(cost(piece)) {
                assert!(bytes as usize >= WINDOW / 4);
                returned += bytes as u64;
            }
        }
        assert!(returned as usize > WINDOW / 2);
        assert!(w.charge(1, piece, true, usize::MAX).is_ok());
    }

    #[test]
    fn the_peer_finishes_once_and_sends_nothing_after() {
        let mut w = RecvWindow::granted(WINDOW);
        assert!(w.peer_finished());
        assert!(!w.peer_finished(), "a repeated close is no new event");
        assert!(matches!(
            w.charge(1, 10, true, usize::MAX),
            Err(Refusal::Violation(_))
        ));
    }

    #[test]
    fn messages_are_bounded_across_pieces() {
        let mut w = RecvWindow::granted(WINDOW);
        assert!(w.charge(1, 40_000, false, 65_536).is_ok());
        assert!(matches!(
            w.charge(1, 40_000, true, 65_536),
            Err(Refusal::TooLarge(_))
        ));
        let mut w = RecvWindow::granted(WINDOW);
        assert!(w.charge(1, 40_000, true, 65_536).is_ok());
        assert!(w.charge(1, 40_000, true, 65_536).is_ok(), "a new message");
    }
}
