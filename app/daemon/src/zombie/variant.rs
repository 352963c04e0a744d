//! Names of control messages for logs and errors.

use zos_netproto::wire::Message;

/// The name of a message's variant, for error texts (never its contents).
pub(crate) fn variant(m: &Message) -> &'static str {
    match m {
        Message::Hello { .. } => "Hello",
        Message::Welcome { .. } => "Welcome",
        Message::Refused { .. } => "Refused",
        Message::PairStart { .. } => "PairStart",
        Message::PairChallenge { .. } => "PairChallenge",
        Message::PairConfirm { .. } => "PairConfirm",
        Message::PairDone { .. } => "PairDone",
        Message::PairFailed { .. } => "PairFailed",
        Message::Ping { .. } => "Ping",
        Message::Pong { .. } => "Pong",
        Message::Bye { .. } => "Bye",
        Message::Dominate { .. } => "Dominate",
        Message::Dominated { .. } => "Dominated",
        Message::Tasks { .. } => "Tasks",
        Message::Release { .. } => "Release",
        Message::Released => "Released",
        Message::Asking { .. } => "Asking",
        Message::Mounted { .. } => "Mounted",
        Message::MountFailed { .. } => "MountFailed",
        Message::Shown { .. } => "Shown",
    }
}
