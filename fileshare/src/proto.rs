//! The file protocol spoken on one session channel (postcard-encoded).
//!
//! ```text
//! zombie → master   Hello{version}                         (first message)
//! master → zombie   Welcome{version, exports} | Refused{reason}
//! zombie → master   Call{id, op}        … many in flight, any order
//!                   Forget{nodes}       (no answer)
//! master → zombie   Reply{id, result}   … as each call finishes
//! ```
//!
//! `Hello` and `Welcome` stay variant 0 in every version, so any two versions
//! can tell each other apart. Node ids are the master's: the export roots
//! come in `Welcome`, every other node from a `Lookup` (or a creating call)
//! and lives until `Forget` drops its last lookup. A call on a node, file or
//! directory handle the master did not hand out fails with `ESTALE`/`EBADF`.
//! Anything undecodable, trailing bytes, or a message of the wrong direction
//! ends the channel.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::{Error, Result};

/// The version of this protocol.
pub const VERSION: u16 = 1;

/// The largest message either side accepts (a 1 MiB write or read plus
/// headers, with room to spare).
pub const MAX_MESSAGE: usize = 4 << 20;

/// The largest read or write a call may ask for.
pub const MAX_IO: u32 = 2 << 20;

/// Messages from the zombie (client) to the master (server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// The first message: the client's protocol version.
    Hello {
        /// [`VERSION`] of the client.
        version: u16,
    },
    /// One file operation; answered by a `Reply` with the same id.
    Call {
        /// Chosen by the client, unique among its calls in flight.
        id: u64,
        /// What to do.
        op: Op,
    },
    /// The kernel dropped lookups of these nodes: `(node, count)`.
    Forget {
        /// Nodes and how many lookups each loses.
        nodes: Vec<(u64, u64)>,
    },
}

/// Messages from the master (server) to the zombie (client).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Answer to `Hello`: the exports this zombie sees.
    Welcome {
        /// [`VERSION`] of the server.
        version: u16,
        /// One entry per export, in the order of the mount's root.
        exports: Vec<ExportInfo>,
    },
    /// The server will not serve this client.
    Refused {
        /// Why.
        reason: String,
    },
    /// The result of a call: an answer or a positive errno.
    Reply {
        /// The call's id.
        id: u64,
        /// What came of it.
        result: Result<Answer, i32>,
    },
}

/// An export as the zombie sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// Its name in the mount's root.
    pub name: String,
    /// The node of its root directory.
    pub node: u64,
    /// Whether modifications are refused with `EROFS`.
    pub read_only: bool,
}

/// Who creates a node (the caller on the zombie), numerically. The master
/// does not act on it (new nodes belong to the master's own user); it stays
/// on the wire so that version 1 peers keep understanding each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A point in time: seconds (may be negative) and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {
    /// Whole seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds, below 1e9.
    pub nanos: u32,
}

/// A time to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetTime {
    /// The master's current time.
    Now,
    /// This time.
    At(Time),
}

/// Attribute changes (`chmod`, `chown`, `truncate`, `utimensat`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAttr {
    /// New permission bits (07777).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// A file operation. Names are single path components, as bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // the fields are named as in the system calls
pub enum Op {
    Lookup {
        parent: u64,
        name: ByteBuf,
    },
    GetAttr {
        node: u64,
    },
    SetAttr {
        node: u64,
        fh: Option<u64>,
        set: SetAttr,
    },
    ReadLink {
        node: u64,
    },
    Mknod {
        parent: u64,
        name: ByteBuf,
        mode: u32,
        rdev: u64,
        owner: Owner,
    },
    Mkdir {
        parent: u64,
        name: ByteBuf,
        mode: u32,
        owner: Owner,
    },
    Symlink {
        parent: u64,
        name: ByteBuf,
        target: ByteBuf,
        owner: Owner,
    },
    Link {
        node: u64,
        parent: u64,
        name: ByteBuf,
    },
    Unlink {
        parent: u64,
        name: ByteBuf,
    },
    Rmdir {
        parent: u64,
        name: ByteBuf,
    },
    Rename {
        parent: u64,
        name: ByteBuf,
        new_parent: u64,
        new_name: ByteBuf,
        flags: u32,
    },
    Open {
        node: u64,
        flags: i32,
    },
    Create {
        parent: u64,
        name: ByteBuf,
        mode: u32,
        flags: i32,
        owner: Owner,
    },
    Read {
        fh: u64,
        offset: u64,
        size: u32,
    },
    Write {
        fh: u64,
        offset: u64,
        data: ByteBuf,
    },
    Release {
        fh: u64,
    },
    Fsync {
        fh: u64,
        datasync: bool,
    },
    OpenDir {
        node: u64,
    },
    ReadDir {
        fh: u64,
        offset: u64,
    },
    ReleaseDir {
        fh: u64,
    },
    FsyncDir {
        fh: u64,
        datasync: bool,
    },
    StatFs {
        node: u64,
    },
    Fallocate {
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    },
    Lseek {
        fh: u64,
        offset: i64,
        whence: i32,
    },
}

/// A node's attributes (its number is the node id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // as in struct stat
pub struct Attr {
    pub size: u64,
    pub blocks: u64,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    /// Type and permission bits, as `st_mode`.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub blksize: u32,
}

/// A node and its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The node id (also the inode number the zombie sees).
    pub node: u64,
    /// Its attributes.
    pub attr: Attr,
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// Inode number as shown by `readdir`.
    pub ino: u64,
    /// The offset to continue after this entry.
    pub offset: u64,
    /// File type bits (`st_mode & S_IFMT`).
    pub kind: u32,
    /// The name.
    pub name: ByteBuf,
}

/// File system statistics, as `statvfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// The successful result of a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// A node (lookup, mknod, mkdir, symlink, link).
    Entry(Entry),
    /// Attributes (getattr, setattr).
    Attr(Attr),
    /// Bytes (read, readlink).
    Data(ByteBuf),
    /// Bytes written.
    Written(u32),
    /// A file or directory handle.
    Opened(u64),
    /// A created node and its open handle.
    Created(Entry, u64),
    /// A batch of directory entries; empty at the end.
    Dir(Vec<DirEntry>),
    /// File system statistics.
    StatFs(StatFs),
    /// A file offset (lseek).
    Offset(i64),
    /// Done, nothing to return.
    Done,
}

/// Encodes a message.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_stdvec(msg).expect("file protocol messages always encode")
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    let (msg, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| Error::Protocol(format!("undecodable {what} ({} bytes): {e}", bytes.len())))?;
    if !rest.is_empty() {
        return Err(Error::Protocol(format!(
            "{} stray bytes after a {what}",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Decodes a message from the zombie; refuses trailing bytes.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg> {
    decode(bytes, "client message")
}

/// Decodes a message from the master; refuses trailing bytes.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg> {
    decode(bytes, "server message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let call = ClientMsg::Call {
            id: 7,
            op: Op::Write {
                fh: 3,
                offset: 5 << 32,
                data: ByteBuf::from(vec![1, 2, 3]),
            },
        };
        let bytes = encode(&call);
        assert_eq!(decode_client(&bytes).unwrap(), call);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            decode_client(&longer)
                .unwrap_err()
                .to_string()
                .contains("stray")
        );
        assert!(decode_client(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode_client(&bytes[..bytes.len() - 1]).is_err());
        // Hello is variant 0: a one-byte tag then the version.
        assert_eq!(encode(&ClientMsg::Hello { version: 1 }), vec![0, 1]);
        let reply = ServerMsg::Reply {
            id: 1,
            result: Err(libc::ENOENT),
        };
        assert_eq!(decode_server(&encode(&reply)).unwrap(), reply);
    }

    #[test]
    fn mangled_messages_never_panic() {
        // A cheap stand-in for the fuzz target: flip, cut and extend valid
        // messages and random bytes; decoding must return, never panic.
        let samples = [
            encode(&ClientMsg::Call {
                id: 9,
                op: Op::Rename {
                    parent: 2,
                    name: ByteBuf::from(b"a".to_vec()),
                    new_parent: 3,
                    new_name: ByteBuf::from(b"b".to_vec()),
                    flags: 1,
                },
            }),
            encode(&ServerMsg::Reply {
                id: 9,
                result: Ok(Answer::Dir(vec![DirEntry {
                    ino: 5,
                    offset: 1,
                    kind: libc::S_IFREG,
                    name: ByteBuf::from(b"x".to_vec()),
                }])),
            }),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let mut bytes = samples[round % 2].clone();
            match next() % 3 {
                0 => {
                    let i = next() as usize % bytes.len();
                    bytes[i] ^= next() as u8;
                }
                1 => bytes.truncate(next() as usize % bytes.len()),
                _ => bytes = (0..next() % 64).map(|_| next() as u8).collect(),
            }
            let _ = decode_client(&bytes);
            let _ = decode_server(&bytes);
        }
    }
}
