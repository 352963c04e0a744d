//! The local control protocol between a daemon and its clients (the `zos`
//! commands, the master window, the tray helper).
//!
//! Transport: a Unix stream socket, mode 0600, in the instance's runtime
//! directory. Each connection carries one [`Request`] as a JSON line; the
//! daemon answers with one or more [`Reply`] lines, the last of which is
//! final ([`Reply::is_final`]). Streaming requests (ping with a count) send
//! intermediate replies before the final one.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::discovery::HostInfo;
use crate::error::{Error, Result};
use crate::trust::{Level, PeerEntry};
use crate::wire::Role;

/// A client's request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// The daemon's own state.
    Status,
    /// Zombies discovered on the LAN (master).
    Hosts,
    /// Issue a one-time pairing code (zombie).
    PairCode {
        /// Level the code grants.
        level: Level,
    },
    /// Pair with a zombie using its code (master).
    Pair {
        /// Zombie name, instance, fingerprint prefix or `ip:port`.
        host: String,
        /// The 6-digit code shown on the zombie.
        code: String,
    },
    /// Round trips to a zombie over one session (master).
    Ping {
        /// As for `Pair`.
        host: String,
        /// How many pings.
        count: u32,
        /// Pause between pings, milliseconds.
        interval_ms: u64,
    },
    /// The trust store (zombie) or paired zombies (master).
    TrustList,
    /// Remove a trust entry; its live sessions end at once.
    TrustRevoke {
        /// Key, fingerprint prefix or name.
        what: String,
    },
    /// Start a task on the master (`zos run`).
    Run {
        /// Run it as a virtually shared app: in its own virtual display.
        shared: bool,
        /// The command and its arguments.
        argv: Vec<String>,
    },
    /// The master's registered tasks; on a zombie, the tasks of the master
    /// dominating it.
    Tasks,
    /// Take a paired zombie over (master).
    Dominate {
        /// As for `Pair`.
        host: String,
        /// The level asked for; the zombie may grant less.
        level: Level,
    },
    /// End the domination of a zombie (master).
    Release {
        /// As for `Pair`.
        host: String,
    },
    /// Answer the domination request waiting on this zombie (zombie).
    Answer {
        /// Accept it (or refuse it).
        accept: bool,
    },
    /// View a shared app: after the final [`Reply::Stream`], the connection
    /// carries the app's RFB stream (the client must not send before it).
    View {
        /// The task id (on a zombie: the dominating master's task).
        task: u64,
    },
    /// Stop the daemon.
    Shutdown,
    /// Send this master's keyboard and mouse to a dominated zombie's ZOS
    /// session (master), or give them back (`host: None`).
    Drive {
        /// The zombie (its paired name or fingerprint); `None` stops driving.
        host: Option<String>,
        /// Instead of driving at once, switch when the pointer leaves this
        /// edge of the master's screen (`left`, `right`, `top`, `bottom`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edge: Option<String>,
        /// The master's X display to capture, when the daemon has none of
        /// its own (the caller's `DISPLAY`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<String>,
        /// The caller's `XAUTHORITY` for that display.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        xauthority: Option<String>,
    },
    /// Allow or refuse the dominating master's input in the ZOS session
    /// (zombie; the tray's item).
    AllowInput {
        /// Allow it (or refuse it).
        allow: bool,
    },
}

/// A task as the master reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task id, unique within the daemon's life.
    pub id: u64,
    /// `shared` (virtually shared app).
    pub kind: String,
    /// The command line.
    pub command: Vec<String>,
    /// Its X display on the master (e.g. `:12`).
    pub display: Option<String>,
    /// `running`.
    pub state: String,
    /// The app's process id.
    pub pid: Option<u32>,
    /// Where the task runs when that is not this daemon's machine (on a
    /// zombie: the dominating master's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// A live session as the daemon reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Peer's name.
    pub peer: String,
    /// Peer's fingerprint.
    pub fingerprint: String,
    /// Peer's address.
    pub addr: String,
    /// Seconds since it started.
    pub age_s: u64,
    /// The level, when this session dominates (zombie) or is dominated by
    /// us (master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dominating: Option<Level>,
    /// Where the master's shared folders are mounted (zombie, while
    /// dominated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// Whether this master's keyboard and mouse drive that zombie's ZOS
    /// session now (master).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub driven: bool,
}

/// The daemon's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    /// Master or zombie.
    pub role: Role,
    /// Instance name.
    pub name: String,
    /// Key fingerprint.
    pub fingerprint: String,
    /// Session listener (zombie), e.g. `10.0.0.2:40123`.
    pub listen: Option<String>,
    /// Trust entries.
    pub trusted: usize,
    /// The pairing code on offer (zombie), with level and seconds left.
    pub pairing: Option<PairCodeInfo>,
    /// Live sessions.
    pub sessions: Vec<SessionInfo>,
    /// A domination request waiting for this zombie's user to answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<AskInfo>,
    /// Recent pairing attempts that failed or were refused (zombie), the
    /// newest first.
    #[serde(default)]
    pub pairing_attempts: Vec<PairAttemptInfo>,
    /// The ZOS session open for the dominating master (zombie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Box<ZosSessionInfo>>,
}

/// A zombie's ZOS session: the nested X display where the dominating
/// master's user works.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZosSessionInfo {
    /// Its X display, for `DISPLAY` (e.g. `:3`).
    pub display: String,
    /// Its authority file (mode 0600), for `XAUTHORITY`.
    pub xauthority: String,
    /// The master it belongs to.
    pub master: String,
    /// The master's input: `off`, `on` (driving it now) or `refused` (by
    /// this zombie's user).
    pub input: String,
}

/// A pairing attempt that failed or was refused, as a zombie shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairAttemptInfo {
    /// The peer's address (IP).
    pub addr: String,
    /// The fingerprint of the key it used (the last one, if repeated).
    pub fingerprint: String,
    /// When (the last time), seconds since the Unix epoch.
    pub at_unix: u64,
    /// Seconds ago.
    pub age_s: u64,
    /// Why it failed or was refused.
    pub why: String,
    /// How many such attempts in a row from this address.
    pub count: u32,
}

/// A master asking to dominate a zombie, waiting for the zombie's user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AskInfo {
    /// The master's name.
    pub master: String,
    /// Its key fingerprint.
    pub fingerprint: String,
    /// The level it would get.
    pub level: Level,
    /// Seconds left to answer.
    pub expires_in_s: u64,
}

/// A pairing code on offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairCodeInfo {
    /// The 6 digits.
    pub code: String,
    /// Level it grants.
    pub level: Level,
    /// Seconds until it expires.
    pub expires_in_s: u64,
    /// Attempts left.
    pub attempts_left: u32,
}

/// A daemon's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Reply {
    /// For `Status`.
    Status(StatusInfo),
    /// For `Hosts`.
    Hosts {
        /// Zombies currently seen.
        hosts: Vec<HostInfo>,
    },
    /// For `PairCode`.
    PairCode(PairCodeInfo),
    /// For `Pair`: success.
    Paired {
        /// Zombie's name.
        name: String,
        /// Zombie's fingerprint.
        fingerprint: String,
        /// Level granted.
        level: Level,
    },
    /// For `Ping`: one round trip (not final).
    Pong {
        /// Sequence number.
        seq: u64,
        /// Round trip, microseconds.
        rtt_us: u64,
        /// Zombie's name.
        peer: String,
    },
    /// For `TrustList`.
    Trust {
        /// Entries.
        entries: Vec<PeerEntry>,
    },
    /// For `TrustRevoke`.
    Revoked {
        /// Entries removed.
        entries: Vec<PeerEntry>,
        /// Live sessions ended.
        sessions_ended: usize,
    },
    /// For `Run`: the task started.
    Started {
        /// The new task.
        task: TaskInfo,
    },
    /// For `Tasks`.
    Tasks {
        /// Every registered task.
        tasks: Vec<TaskInfo>,
    },
    /// For `Dominate`: the zombie is ours.
    Dominated {
        /// Zombie's name.
        name: String,
        /// Level granted.
        level: Level,
        /// How long each part of the set-up took, in order (the paper's zt,
        /// file-system mount, xt …), microseconds.
        timing: Vec<(String, u64)>,
    },
    /// For `Release`: the zombie let go of everything.
    Released {
        /// Zombie's name.
        name: String,
    },
    /// For `View`: from the next byte on, the connection carries the stream.
    Stream,
    /// For `Drive`: where input goes now.
    Driving {
        /// The zombie driven, if any.
        target: Option<String>,
        /// What happened, in words for the user.
        message: String,
    },
    /// Progress of a long request (not final), in words for the user.
    Progress {
        /// What is happening.
        message: String,
    },
    /// A request finished with nothing more to say.
    Done,
    /// A request failed.
    Error {
        /// What went wrong, for the user.
        message: String,
    },
}

impl Reply {
    /// Whether this reply ends the exchange.
    pub fn is_final(&self) -> bool {
        !matches!(self, Reply::Pong { .. } | Reply::Progress { .. })
    }
}

/// How long a client waits for a reply (pairing waits on the network and
/// the other user, so this is generous).
pub const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends `request` to the daemon at `socket` and hands each reply to
/// `on_reply`, until the final one, which is returned.
pub fn call(socket: &Path, request: &Request, mut on_reply: impl FnMut(&Reply)) -> Result<Reply> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        Error::io(
            format!(
                "no daemon answers at {} (start one with `zos master` or `zos zombie`)",
                socket.display()
            ),
            e,
        )
    })?;
    // A daemon that accepts but never answers must not hang its clients.
    // Pings stream at the user's interval, so they get no read deadline.
    if !matches!(request, Request::Ping { .. }) {
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| Error::io("control socket", e))?;
    }
    let mut writer = stream
        .try_clone()
        .map_err(|e| Error::io("control socket", e))?;
    let mut line = serde_json::to_string(request).expect("requests serialise");
    line.push('\n');
    writer
        .write_all(line.as_bytes())
        .map_err(|e| Error::io("send request", e))?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut buf = String::new();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| Error::io("read reply", e))?;
        if n == 0 {
            return Err(Error::Closed(
                "daemon closed the control connection without a reply".into(),
            ));
        }
        let reply: Reply = serde_json::from_str(&buf)
            .map_err(|e| Error::Malformed(format!("daemon reply {buf:?}: {e}")))?;
        if reply.is_final() {
            return Ok(reply);
        }
        on_reply(&reply);
    }
}

/// Sends a request expecting a single reply.
pub fn request(socket: &Path, request: &Request) -> Result<Reply> {
    call(socket, request, |_| {})
}

/// Sends a request that turns the connection into a byte stream (`View`)
/// and returns the connection once the daemon said [`Reply::Stream`]. Reads
/// the reply byte by byte, so not one byte of the stream is taken from it.
pub fn open_stream(socket: &Path, request: &Request) -> Result<UnixStream> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        Error::io(
            format!(
                "no daemon answers at {} (start one with `zos master` or `zos zombie`)",
                socket.display()
            ),
            e,
        )
    })?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| Error::io("control socket", e))?;
    let mut line = serde_json::to_string(request).expect("requests serialise");
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| Error::io("send request", e))?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match std::io::Read::read(&mut stream, &mut byte) {
            Ok(0) => {
                return Err(Error::Closed(
                    "daemon closed the control connection without a reply".into(),
                ));
            }
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if reply.len() >= MAX_REPLY_LINE => {
                return Err(Error::Malformed("daemon reply line too long".into()));
            }
            Ok(_) => reply.push(byte[0]),
            Err(e) => return Err(Error::io("read reply", e)),
        }
    }
    match serde_json::from_slice::<Reply>(&reply) {
        Ok(Reply::Stream) => {
            stream
                .set_read_timeout(None)
                .map_err(|e| Error::io("control socket", e))?;
            Ok(stream)
        }
        Ok(Reply::Error { message }) => Err(Error::Refused(message)),
        Ok(other) => Err(Error::Malformed(format!(
            "daemon answered {other:?} instead of a stream"
        ))),
        Err(e) => Err(Error::Malformed(format!(
            "daemon reply {:?}: {e}",
            String::from_utf8_lossy(&reply)
        ))),
    }
}

/// The longest reply line [`open_stream`] reads.
const MAX_REPLY_LINE: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_stable() {
        let r = Request::Pair {
            host: "z1".into(),
            code: "123456".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"op":"pair","host":"z1","code":"123456"}"#
        );
        let back: Request = serde_json::from_str(r#"{"op":"status"}"#).unwrap();
        assert_eq!(back, Request::Status);
        assert!(
            !Reply::Pong {
                seq: 1,
                rtt_us: 2,
                peer: "z".into()
            }
            .is_final()
        );
        assert!(Reply::Done.is_final());
    }
}
