//! The receive queue of a unix socket: read without consuming it (`SO_PEEK_OFF` moved along
//! with `MSG_PEEK`, then put back), and written back by sending from the peer.
//!
//! A stream queue is saved as its bytes; a datagram or seqpacket queue as its messages, each
//! a little-endian u32 length and the bytes, so boundaries (and empty datagrams) are kept.

use crate::error::{Error, Result, SysContext};
use crate::sys::sock;
use std::os::fd::OwnedFd;

const CHUNK: usize = 64 * 1024;

/// Set the peek offset (an error says which socket).
fn peek_at(s: &OwnedFd, off: usize) -> Result<()> {
    let off = i32::try_from(off).map_err(|_| Error::Restore("socket queue over 2 GiB".into()))?;
    sock::set_int(s, libc::SOL_SOCKET, libc::SO_PEEK_OFF, off).sys(|| "SO_PEEK_OFF".into())
}

/// Everything queued for reading on `s`, encoded as described above. `seq_eof`: a seqpacket
/// socket shut down for reading (an empty read there means the end, not an empty record).
pub(crate) fn peek(s: &OwnedFd, stream: bool, seq_eof: bool) -> Result<Vec<u8>> {
    let saved =
        sock::get_int(s, libc::SOL_SOCKET, libc::SO_PEEK_OFF).sys(|| "SO_PEEK_OFF".into())?;
    let r = peek_all(s, stream, seq_eof);
    sock::set_int(s, libc::SOL_SOCKET, libc::SO_PEEK_OFF, saved)
        .sys(|| "put SO_PEEK_OFF back".into())?;
    r
}

fn peek_all(s: &OwnedFd, stream: bool, seq_eof: bool) -> Result<Vec<u8>> {
    let flags = libc::MSG_PEEK | libc::MSG_DONTWAIT | if stream { 0 } else { libc::MSG_TRUNC };
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0;
    let mut empty_here = false;
    loop {
        peek_at(s, off)?;
        let n = match sock::recv(s, &mut buf, flags) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(out),
            Err(e) => return Err(e).sys(|| "peek into the socket queue".into()),
        };
        if stream {
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        } else if n > buf.len() {
            buf.resize(n, 0);
            continue;
        } else {
            // On a seqpacket socket shut down for reading, an empty read is also the end: two
            // at one offset are taken as the end (a real empty record, once peeked, is
            // skipped the second time; a trailing one there is lost).
            if n == 0 && seq_eof && empty_here {
                out.truncate(out.len() - 4);
                return Ok(out);
            }
            empty_here = n == 0;
            out.extend((n as u32).to_le_bytes());
            out.extend_from_slice(&buf[..n]);
        }
        off += n;
    }
}

/// The messages of an encoded datagram queue (refused if the encoding is broken).
pub(crate) fn messages(blob: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < blob.len() {
        let len = blob
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()) as usize)
            .ok_or_else(|| Error::BadImage("socket queue: cut length".into()))?;
        let msg = blob
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| Error::BadImage("socket queue: cut message".into()))?;
        out.push(msg);
        at += 4 + len;
    }
    Ok(out)
}

/// Queue `blob` (encoded as by [`peek`]) for reading on the peer of `sender`, by sending it
/// from `sender`.
pub(crate) fn fill(sender: &OwnedFd, stream: bool, blob: &[u8]) -> Result<()> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let full = |e: std::io::Error| Error::Sys {
        op: format!(
            "put back a socket queue of {} bytes (larger than the socket's buffer here?)",
            blob.len()
        ),
        source: e,
    };
    if stream {
        let mut at = 0;
        while at < blob.len() {
            at += sock::send(sender, &blob[at..], flags).map_err(full)?;
        }
        return Ok(());
    }
    for m in messages(blob)? {
        let n = sock::send(sender, m, flags).map_err(full)?;
        if n != m.len() {
            return Err(Error::Restore(format!(
                "datagram of {} bytes sent as {n}",
                m.len()
            )));
        }
    }
    Ok(())
}
