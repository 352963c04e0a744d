//! Unix sockets between processes of the pod: socket pairs (stream, datagram, seqpacket)
//! with the data queued in each direction, their shutdown state, buffer sizes, peek offset
//! and flags; also a pair whose other end was closed, and unconnected unbound sockets.
//!
//! Refused, with the reason: sockets bound to a path or abstract name (listening or
//! connected through it), sockets connected to one outside the pod, descriptors in flight
//! (`SCM_RIGHTS`) and credentials in flight (`SO_PASSCRED` with data queued); every other
//! family (TCP/IP and the rest): network connections do not migrate yet.
//!
//! Not carried: `SO_PEERCRED` of a restored pair names the restorer (the kernel records the
//! creator of a pair); the `ECONNRESET` a socket reports once when its peer was closed with
//! data unread (reading it would clear it).

use super::fdinfo::{FdInfo, dup_of};
use super::unixdiag::{self, show_name};
use super::unixqueue;
use super::{Claim, DumpCx, FdFacts, Kind, Object, RestoreCx};
use crate::error::{Error, Result, SysContext};
use crate::sys::{fds, sock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::fd::OwnedFd;

const TCP_LISTEN: u8 = 10;
const SO_PASSPIDFD: i32 = 76;
const RCV_SHUTDOWN: u8 = 1;

/// The other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Peer {
    /// Connected to the socket with this inode (in the pod).
    Pair(u64),
    /// It was connected; the other end has been closed.
    Widowed,
    /// Never connected.
    Unconnected,
}

/// Settings put back on each end.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Settings {
    /// `sk_sndbuf` (what `getsockopt(SO_SNDBUF)` says).
    sndbuf: u32,
    /// `sk_rcvbuf`.
    rcvbuf: u32,
    /// `SO_PEEK_OFF` (-1: off).
    peek_off: i32,
    /// `SO_PASSCRED`.
    passcred: bool,
    /// `RCV_SHUTDOWN` (1) | `SEND_SHUTDOWN` (2).
    shutdown: u8,
}

/// One end (open file description) of a unix socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UnixEnd {
    /// Inode number (names the socket within the image).
    ino: u64,
    /// The other end.
    peer: Peer,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
    kind: i32,
    /// Status flags.
    flags: u32,
    /// Its settings.
    settings: Settings,
    /// `sk_sndbuf` of the peer, which sent what is queued here.
    peer_sndbuf: u32,
    /// Blob of the receive queue (set by `capture`).
    queue: Option<u32>,
}

/// Restore state: the first-made end of each pair, waiting for its peer (by the peer's inode):
/// the end to give the peer, and a copy of the first end with its settings.
#[derive(Default)]
struct Waiting(HashMap<u64, (OwnedFd, OwnedFd, Settings)>);

/// Why a socket of another family is refused.
fn other_family(domain: i32, kind: i32, link: &str) -> String {
    let what = match (domain, kind) {
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_STREAM) => "a TCP socket".to_string(),
        (libc::AF_INET | libc::AF_INET6, libc::SOCK_DGRAM) => "a UDP socket".to_string(),
        (libc::AF_INET | libc::AF_INET6, _) => "an IP socket".to_string(),
        (libc::AF_NETLINK, _) => "a netlink socket".to_string(),
        (libc::AF_PACKET, _) => "a packet socket".to_string(),
        _ => format!("a socket of family {domain}"),
    };
    format!("{link} is {what}: network connections do not migrate yet")
}

fn describe(f: &FdFacts<'_>) -> std::result::Result<UnixEnd, String> {
    let copy = dup_of(f.pid, f.fd).map_err(|e| format!("socket {}: {e}", f.link))?;
    let int = |level, opt| sock::get_int(&copy, level, opt);
    let domain = int(libc::SOL_SOCKET, libc::SO_DOMAIN).map_err(|e| e.to_string())?;
    let kind = int(libc::SOL_SOCKET, libc::SO_TYPE).map_err(|e| e.to_string())?;
    if domain != libc::AF_UNIX {
        return Err(other_family(domain, kind, &f.link));
    }
    let d = match unixdiag::query(f.ino) {
        Ok(Some(d)) => d,
        Ok(None) => return Err(format!("unix socket {} unknown to sock_diag", f.link)),
        Err(e) => return Err(e.to_string()),
    };
    if let Some(name) = d.name.as_ref().filter(|n| !n.is_empty()) {
        return Err(format!(
            "{} is a unix socket bound to {}: network connections do not migrate yet",
            f.link,
            show_name(name)
        ));
    }
    if d.state == TCP_LISTEN {
        return Err(format!(
            "{} is a listening unix socket: network connections do not migrate yet",
            f.link
        ));
    }
    if ![libc::SOCK_STREAM, libc::SOCK_DGRAM, libc::SOCK_SEQPACKET].contains(&kind) {
        return Err(format!(
            "{} is a unix socket of type {kind} (not supported)",
            f.link
        ));
    }
    let scm = FdInfo::read(f.pid, f.fd)
        .ok()
        .and_then(|i| i.dec("scm_fds"))
        .unwrap_or(0);
    if scm > 0 {
        return Err(format!(
            "{} has {scm} descriptor(s) in flight (SCM_RIGHTS) in its queue",
            f.link
        ));
    }
    let passcred = int(libc::SOL_SOCKET, libc::SO_PASSCRED).unwrap_or(0) != 0;
    let passpidfd = int(libc::SOL_SOCKET, SO_PASSPIDFD).unwrap_or(0) != 0;
    if (passcred || passpidfd) && d.rqueue > 0 {
        return Err(format!(
            "{} has credentials in flight (SO_PASSCRED with data queued)",
            f.link
        ));
    }
    let peer = match d.peer {
        None => Peer::Unconnected,
        // A closed stream peer shuts this end down both ways; a connection still waiting in
        // a listener's queue (not accepted yet) has no inode either.
        Some(0) if kind == libc::SOCK_DGRAM || d.shutdown & 3 == 3 => Peer::Widowed,
        Some(0) => {
            return Err(format!(
                "{} is connected to a listening socket that has not accepted it yet: network \
                 connections do not migrate yet",
                f.link
            ));
        }
        Some(p) => Peer::Pair(u64::from(p)),
    };
    let peer_sndbuf = match peer {
        Peer::Pair(p) => unixdiag::query(p).ok().flatten().map_or(0, |pd| pd.sndbuf),
        _ => 0,
    };
    Ok(UnixEnd {
        ino: f.ino,
        peer,
        kind,
        flags: f.flags,
        settings: Settings {
            sndbuf: d.sndbuf,
            rcvbuf: d.rcvbuf,
            peek_off: int(libc::SOL_SOCKET, libc::SO_PEEK_OFF).unwrap_or(-1),
            passcred,
            shutdown: d.shutdown,
        },
        peer_sndbuf,
        queue: None,
    })
}

/// Set a buffer size option so that the kernel's value becomes `want` (it doubles what it is
/// given); best effort above the system's limit.
fn set_buf(s: &OwnedFd, opt: i32, want: u32) -> Result<()> {
    let now = sock::get_int(s, libc::SOL_SOCKET, opt).sys(|| "getsockopt".into())?;
    if want == 0 || now as u32 == want {
        return Ok(());
    }
    sock::set_int(s, libc::SOL_SOCKET, opt, (want / 2) as i32).sys(|| "setsockopt".into())?;
    let got = sock::get_int(s, libc::SOL_SOCKET, opt).unwrap_or(0);
    if got as u32 != want {
        tracing::warn!(opt, want, got, "socket buffer size capped by the system");
    }
    Ok(())
}

/// Put `s`'s settings back (its queue is in place).
fn settle(s: &OwnedFd, st: &Settings) -> Result<()> {
    set_buf(s, libc::SO_SNDBUF, st.sndbuf)?;
    set_buf(s, libc::SO_RCVBUF, st.rcvbuf)?;
    if st.passcred {
        sock::set_int(s, libc::SOL_SOCKET, libc::SO_PASSCRED, 1).sys(|| "SO_PASSCRED".into())?;
    }
    sock::set_int(s, libc::SOL_SOCKET, libc::SO_PEEK_OFF, st.peek_off).sys(|| "SO_PEEK_OFF".into())
}

/// Shut `s` down as saved (after both queues are in place).
fn shut(s: &OwnedFd, bits: u8) -> Result<()> {
    if bits & 3 != 0 {
        sock::shutdown(s, i32::from(bits & 3) - 1).sys(|| format!("shutdown {bits}"))?;
    }
    Ok(())
}

impl Kind for UnixEnd {
    const NAME: &'static str = "unix socket";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.file_type() != libc::S_IFSOCK {
            return Claim::NotMine;
        }
        match describe(f) {
            Ok(u) => Claim::Mine(u),
            Err(r) => Claim::Refused(r),
        }
    }

    fn related(&self, all: &[&Object]) -> Option<String> {
        let Peer::Pair(p) = self.peer else {
            return None;
        };
        let inside = all
            .iter()
            .any(|o| matches!(o, Object::Unix(u) if u.ino == p && u.peer == Peer::Pair(self.ino)));
        (!inside).then(|| {
            format!(
                "socket:[{}] is connected to socket:[{p}] outside the pod: network connections \
                 do not migrate yet",
                self.ino
            )
        })
    }

    fn capture(&mut self, f: &FdFacts<'_>, cx: &mut DumpCx) -> Result<()> {
        let copy = dup_of(f.pid, f.fd)?;
        let seq_eof =
            self.kind == libc::SOCK_SEQPACKET && self.settings.shutdown & RCV_SHUTDOWN != 0;
        let bytes = unixqueue::peek(&copy, self.kind == libc::SOCK_STREAM, seq_eof)?;
        self.queue = Some(cx.data.add(bytes));
        Ok(())
    }

    fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        let stream = self.kind == libc::SOCK_STREAM;
        let data = match self.queue {
            Some(i) => cx.data(i)?.to_vec(),
            None => Vec::new(),
        };
        let end = match self.peer {
            Peer::Unconnected if data.is_empty() => {
                let s = sock::unix_socket(self.kind).sys(|| "socket".into())?;
                settle(&s, &self.settings)?;
                shut(&s, self.settings.shutdown)?;
                s
            }
            Peer::Unconnected => {
                return Err(Error::BadImage(
                    "an unconnected unix socket with data queued".into(),
                ));
            }
            Peer::Widowed => {
                let (mine, other) = sock::unix_pair(self.kind).sys(|| "socketpair".into())?;
                set_buf(&other, libc::SO_SNDBUF, self.peer_sndbuf)?;
                unixqueue::fill(&other, stream, &data)?;
                drop(other);
                settle(&mine, &self.settings)?;
                shut(&mine, self.settings.shutdown)?;
                mine
            }
            Peer::Pair(peer) => match cx.state.get::<Waiting>().0.remove(&self.ino) {
                Some((mine, first, first_settings)) => {
                    settle(&first, &first_settings)?;
                    unixqueue::fill(&first, stream, &data)?;
                    settle(&mine, &self.settings)?;
                    shut(&first, first_settings.shutdown)?;
                    shut(&mine, self.settings.shutdown)?;
                    mine
                }
                None => {
                    let (mine, other) = sock::unix_pair(self.kind).sys(|| "socketpair".into())?;
                    set_buf(&other, libc::SO_SNDBUF, self.peer_sndbuf)?;
                    unixqueue::fill(&other, stream, &data)?;
                    let copy = mine.try_clone().sys(|| "dup".into())?;
                    cx.state
                        .get::<Waiting>()
                        .0
                        .insert(peer, (other, copy, self.settings));
                    mine
                }
            },
        };
        fds::fcntl(&end, libc::F_SETFL, self.flags as i32).sys(|| "F_SETFL".into())?;
        Ok(end)
    }
}
