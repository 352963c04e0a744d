//! A hand-driven peer: a real handshake, then inner frames written one by
//! one, so tests can send what our own channel layer never would.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use zos_netproto::cipher::{Opener, Sealer};
use zos_netproto::frame::{FrameReader, Inner};
use zos_netproto::wire::{Message, Role};
use zos_netproto::{Identity, PROTOCOL_VERSION, noise};

/// The initiator's side of a session, frame by frame.
pub struct RawPeer {
    writer: OwnedWriteHalf,
    sealer: Sealer,
    frames: FrameReader<OwnedReadHalf>,
    opener: Opener,
    /// The next channel id this (initiator) side opens.
    pub next_id: u32,
}

impl RawPeer {
    /// Connects and runs the handshake; `small_receive_buffer` makes the
    /// kernel hold little of what the other side sends us.
    pub async fn connect(addr: SocketAddr, small_receive_buffer: bool) -> RawPeer {
        let socket = TcpSocket::new_v4().unwrap();
        if small_receive_buffer {
            socket.set_recv_buffer_size(4096).unwrap();
        }
        let mut stream: TcpStream = socket.connect(addr).await.unwrap();
        let done = noise::initiate(&mut stream, &Identity::generate().unwrap())
            .await
            .unwrap();
        let (r, w) = stream.into_split();
        RawPeer {
            writer: w,
            sealer: done.transport.sealer,
            frames: FrameReader::new(r),
            opener: done.transport.opener,
            next_id: 1,
        }
    }

    /// Connects and exchanges hellos as a master would.
    pub async fn connect_with_hello(addr: SocketAddr, small_receive_buffer: bool) -> RawPeer {
        let mut peer = RawPeer::connect(addr, small_receive_buffer).await;
        let hello = zos_netproto::wire::encode(&Message::Hello {
            version: PROTOCOL_VERSION,
            role: Role::Master,
            name: "raw".into(),
        });
        peer.data(0, &hello, true).await;
        match peer.recv().await {
            Some(Inner::Data { channel: 0, .. }) => {}
            other => panic!("expected the other side's hello, got {other:?}"),
        }
        peer
    }

    /// Sends one inner frame (write errors are ignored: the other side
    /// may have ended the session, which the tests check there).
    pub async fn send(&mut self, inner: &Inner) {
        let mut buf = vec![0u8, 0];
        inner.encode_into(&mut buf);
        self.sealer.seal(&mut buf, 2).unwrap();
        let len = (buf.len() - 2) as u16;
        buf[..2].copy_from_slice(&len.to_be_bytes());
        let _ = self.writer.write_all(&buf).await;
    }

    /// Sends one data piece.
    pub async fn data(&mut self, channel: u32, bytes: &[u8], last: bool) {
        self.send(&Inner::Data {
            channel,
            bytes: bytes.to_vec().into(),
            last,
        })
        .await;
    }

    /// Opens a channel without waiting for anything; returns its id.
    pub async fn open(&mut self, label: &str) -> u32 {
        let channel = self.next_id;
        self.next_id += 2;
        self.send(&Inner::Open {
            channel,
            label: label.into(),
        })
        .await;
        channel
    }

    /// The next frame from the other side; `None` at the end of the stream
    /// or on an error.
    pub async fn recv(&mut self) -> Option<Inner> {
        let mut frame = self.frames.next().await.ok()??;
        let len = self.opener.open(&mut frame).ok()?;
        frame.truncate(len);
        Inner::decode_owned(frame).ok()
    }
}
