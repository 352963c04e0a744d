//! Messages on a session's control channel (channel 0), encoded with
//! postcard.
//!
//! **Compatibility rule**: variant 0 is [`Message::Hello`] in every protocol
//! version, so a peer of any version can read the other's version and refuse
//! it with a clear reason. New variants are only ever appended.
//!
//! **Size**: an encoded message is at most
//! [`crate::mux::MAX_CONTROL_MESSAGE`] (64 KiB); sending a larger one fails
//! (`Error::Limit`) and the session goes on. Only the lists can get there:
//! [`Message::Tasks`] (every task with its command line) and
//! [`Message::Mounted`] (every export name); the free-text reasons and names
//! are short by nature.

use serde::{Deserialize, Serialize};

use crate::trust::Level;

/// Which side of a session a peer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The machine holding the user's anima.
    Master,
    /// A machine that can be dominated.
    Zombie,
}

/// A control-channel message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message of each side: its protocol version, role and name.
    Hello {
        /// [`crate::PROTOCOL_VERSION`] of the sender.
        version: u16,
        /// The sender's role.
        role: Role,
        /// The sender's human name (host or instance name).
        name: String,
    },
    /// The zombie's answer to a master's hello: what this master may do.
    Welcome {
        /// `Some(level)` when the master is paired, `None` when it may only pair.
        level: Option<Level>,
    },
    /// A request or the session was refused; the session ends after it.
    Refused {
        /// Why, in words for the user.
        reason: String,
    },
    /// Pairing, step 1 (master → zombie): the master's SPAKE2 message.
    PairStart {
        /// The master's name for the zombie's trust store.
        name: String,
        /// SPAKE2 side A message.
        #[serde(with = "serde_bytes")]
        spake: Vec<u8>,
    },
    /// Pairing, step 2 (zombie → master): the zombie's SPAKE2 message.
    PairChallenge {
        /// SPAKE2 side B message.
        #[serde(with = "serde_bytes")]
        spake: Vec<u8>,
    },
    /// Pairing, step 3 (master → zombie): proof the master knows the code.
    PairConfirm {
        /// HMAC over the handshake hash with the SPAKE2 key.
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    },
    /// Pairing, step 4 (zombie → master): success and the zombie's proof.
    PairDone {
        /// The control level the master now has.
        level: Level,
        /// HMAC over the handshake hash with the SPAKE2 key.
        #[serde(with = "serde_bytes")]
        mac: Vec<u8>,
    },
    /// Pairing failed (wrong code, expired code …).
    PairFailed {
        /// Why.
        reason: String,
    },
    /// Round-trip probe.
    Ping {
        /// Echoed back.
        seq: u64,
    },
    /// Answer to [`Message::Ping`].
    Pong {
        /// The ping's sequence number.
        seq: u64,
    },
    /// The sender ends the session.
    Bye {
        /// Why.
        reason: String,
    },
    /// Domination, step 1 (master → zombie): take this zombie over.
    Dominate {
        /// The level the master asks for; the zombie may grant less.
        level: Level,
    },
    /// Domination accepted (zombie → master), at the level granted.
    Dominated {
        /// What the master may do: never more than it asked for or than
        /// the zombie's trust store allows.
        level: Level,
    },
    /// The master's tasks this zombie may show (master → zombie, during
    /// domination): the whole list, sent at the start and on every change.
    /// Encoded, it must stay under the control-message limit (64 KiB: some
    /// hundreds of tasks with ordinary command lines).
    Tasks {
        /// Every task, in id order.
        tasks: Vec<TaskSummary>,
    },
    /// The master ends the domination (master → zombie); the zombie cleans
    /// up and answers [`Message::Released`].
    Release {
        /// Why, for the zombie's log and user.
        reason: String,
    },
    /// The zombie has let go of everything of the master's (zombie → master).
    Released,
    /// The zombie is asking its user whether to accept a `Dominate`
    /// (zombie → master); `Dominated` or `Refused` follows.
    Asking {
        /// How long the user has to answer, in seconds.
        timeout_s: u32,
    },
    /// The zombie mounted the master's exports (zombie → master, after
    /// `Dominated`; it served them on a `fileshare` channel it opened).
    /// Encoded, it must stay under the control-message limit (64 KiB).
    Mounted {
        /// The exports' names as they appear in the mount.
        exports: Vec<String>,
        /// Where, on the zombie.
        at: String,
    },
    /// The zombie could not mount the exports; domination goes on without.
    MountFailed {
        /// Why.
        reason: String,
    },
    /// The zombie shows the announced tasks (zombie → master, after each
    /// `Tasks`).
    Shown {
        /// Viewer windows it opened for them.
        viewers: u32,
    },
}

/// A master's task as a dominated zombie sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// The task's id on the master.
    pub id: u64,
    /// `shared` (a virtually shared app).
    pub kind: String,
    /// Its command line.
    pub command: Vec<String>,
}

/// The label of the channel on which a dominated zombie reaches the
/// master's shared folders.
pub const FILESHARE_LABEL: &str = "fileshare";

/// The label of the channel a dominated zombie opens once its ZOS session is
/// up: the master's input events and the clipboard travel on it.
pub const INPUT_LABEL: &str = "input";

/// The label of the channel a zombie opens to view the master's task `id`
/// (the channel then carries the app's RFB stream).
pub fn view_label(id: u64) -> String {
    format!("view/{id}")
}

/// The task id of a view channel's label, if it is one.
pub fn parse_view_label(label: &str) -> Option<u64> {
    label.strip_prefix("view/")?.parse().ok()
}

/// Decodes a control message, with a clear error for anything else.
pub fn decode(bytes: &[u8]) -> crate::Result<Message> {
    postcard::from_bytes(bytes)
        .map_err(|e| crate::Error::Malformed(format!("undecodable control message: {e}")))
}

/// Encodes a control message.
pub fn encode(msg: &Message) -> Vec<u8> {
    postcard::to_stdvec(msg).expect("control messages always encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_is_variant_zero_forever() {
        let bytes = encode(&Message::Hello {
            version: 1,
            role: Role::Master,
            name: "m".into(),
        });
        assert_eq!(bytes[0], 0);
    }

    #[test]
    fn roundtrip_and_garbage() {
        let m = Message::PairDone {
            level: Level::Complete,
            mac: vec![1, 2, 3],
        };
        assert_eq!(decode(&encode(&m)).unwrap(), m);
        assert!(decode(&[200, 1, 2]).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn view_labels_roundtrip_and_reject_others() {
        assert_eq!(parse_view_label(&view_label(42)), Some(42));
        assert_eq!(parse_view_label("view/"), None);
        assert_eq!(parse_view_label("view/-1"), None);
        assert_eq!(parse_view_label("fs"), None);
    }
}
