//! What `sock_diag` says about one unix socket, decoded.

use crate::error::{Result, SysContext};
use crate::sys::sock;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const UNIX_DIAG_SHUTDOWN: u16 = 6;
const SK_MEMINFO_RCVBUF: usize = 1;
const SK_MEMINFO_SNDBUF: usize = 3;

/// One unix socket as the kernel describes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnixDiag {
    /// `TCP_ESTABLISHED`, `TCP_LISTEN`, `TCP_CLOSE`, …
    pub state: u8,
    /// Bound name (a leading NUL byte for the abstract namespace).
    pub name: Option<Vec<u8>>,
    /// Peer: absent if never connected; `Some(0)` if the peer has been closed.
    pub peer: Option<u32>,
    /// Bytes queued for reading (datagram sockets: the first datagram's length).
    pub rqueue: u32,
    /// The kernel's receive buffer size (`sk_rcvbuf`).
    pub rcvbuf: u32,
    /// The kernel's send buffer size (`sk_sndbuf`).
    pub sndbuf: u32,
    /// `RCV_SHUTDOWN` (1) and `SEND_SHUTDOWN` (2).
    pub shutdown: u8,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .map_or(0, |w| u32::from_ne_bytes(w.try_into().unwrap()))
}

/// The unix socket with inode `ino`; `None` if there is none (another family).
pub(crate) fn query(ino: u64) -> Result<Option<UnixDiag>> {
    let Some(msg) =
        sock::unix_diag_raw(ino as u32).sys(|| format!("sock_diag of socket:[{ino}]"))?
    else {
        return Ok(None);
    };
    if msg.len() < 16 || u64::from(u32_at(&msg, 4)) != ino {
        return Ok(None);
    }
    let mut d = UnixDiag {
        state: msg[2],
        ..Default::default()
    };
    let mut at = 16;
    while at + 4 <= msg.len() {
        let len = u16::from_ne_bytes([msg[at], msg[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]);
        if len < 4 || at + len > msg.len() {
            break;
        }
        let body = &msg[at + 4..at + len];
        match kind {
            UNIX_DIAG_NAME => d.name = Some(body.to_vec()),
            UNIX_DIAG_PEER => d.peer = Some(u32_at(body, 0)),
            UNIX_DIAG_RQLEN => d.rqueue = u32_at(body, 0),
            UNIX_DIAG_MEMINFO => {
                d.rcvbuf = u32_at(body, 4 * SK_MEMINFO_RCVBUF);
                d.sndbuf = u32_at(body, 4 * SK_MEMINFO_SNDBUF);
            }
            UNIX_DIAG_SHUTDOWN => d.shutdown = body.first().copied().unwrap_or(0),
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Ok(Some(d))
}

/// A bound name as users write it (`@name` for the abstract namespace).
pub(crate) fn show_name(name: &[u8]) -> String {
    match name.split_first() {
        Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
        _ => {
            let path = name.split(|&b| b == 0).next().unwrap_or(name);
            String::from_utf8_lossy(path).into_owned()
        }
    }
}
