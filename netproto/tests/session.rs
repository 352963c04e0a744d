//! Sessions over real TCP on loopback: handshake, channels, and bad input.

use std::time::Duration;

mod common;

use common::{listener, pair_of_sessions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zos_netproto::mux::{Mux, WINDOW};
use zos_netproto::session::Session;
use zos_netproto::wire::{Message, Role};
use zos_netproto::{Error, Identity, PROTOCOL_VERSION, noise};

#[tokio::test]
async fn handshake_authenticates_both_static_keys() {
    let (l, addr) = listener().await;
    let zid = Identity::generate().unwrap();
    let mid = Identity::generate().unwrap();
    let (zpub, mpub) = (zid.public(), mid.public());
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        Session::accept(s, &zid, Role::Zombie, "z").await.unwrap()
    });
    let m = Session::connect(addr, &mid, Role::Master, "m")
        .await
        .unwrap();
    let z = server.await.unwrap();
    assert_eq!(m.remote, zpub);
    assert_eq!(z.remote, mpub);
    assert_eq!(m.handshake_hash, z.handshake_hash);
    assert_eq!((m.remote_name.as_str(), m.remote_role), ("z", Role::Zombie));
    assert_eq!((z.remote_name.as_str(), z.remote_role), ("m", Role::Master));
}

#[tokio::test]
async fn large_messages_cross_intact() {
    let (mut m, mut z) = pair_of_sessions().await;
    let ch = m.mux.open("bulk").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let sender = {
        let big = big.clone();
        tokio::spawn(async move {
            ch.send(&big).await.unwrap();
            ch.send(b"").await.unwrap();
            ch
        })
    };
    let mut theirs = z.mux.accept().await.unwrap();
    assert_eq!(theirs.label(), "bulk");
    assert_eq!(theirs.recv().await.unwrap().unwrap(), big);
    assert_eq!(theirs.recv().await.unwrap().unwrap().len(), 0);
    drop(sender.await.unwrap());
    assert_eq!(theirs.recv().await.unwrap(), None, "close after the data");
    m.send(&Message::Ping { seq: 5 }).await.unwrap();
    assert_eq!(z.recv().await.unwrap(), Message::Ping { seq: 5 });
}

#[tokio::test]
async fn a_stalled_channel_does_not_block_others() {
    let (mut m, mut z) = pair_of_sessions().await;
    let stalled = m.mux.open("stalled").unwrap();
    // Nobody reads `stalled` on the zombie side: its sender must block once
    // the window is full, while the control channel keeps working.
    let chunk = vec![0xabu8; 60_000];
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            stalled.send(&chunk).await.unwrap();
            sent += chunk.len();
            if sent > 4 * WINDOW {
                return sent;
            }
        }
    });
    let _unread = z.mux.accept().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !writer.is_finished(),
        "sender must be held back by the credit window"
    );
    for seq in 0..20 {
        m.send(&Message::Ping { seq }).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), z.recv())
            .await
            .expect("control not blocked")
            .unwrap();
        assert_eq!(got, Message::Ping { seq });
        z.send(&Message::Pong { seq }).await.unwrap();
        assert_eq!(m.recv().await.unwrap(), Message::Pong { seq });
    }
    // A second bulk channel also flows.
    // (Sending waits until the zombie accepts the channel.)
    let other = m.mux.open("other").unwrap();
    let (sent, other_z) = tokio::join!(other.send(b"still moving"), z.mux.accept());
    sent.unwrap();
    let mut other_z = other_z.unwrap();
    assert_eq!(&other_z.recv().await.unwrap().unwrap()[..], b"still moving");
    writer.abort();
}

#[tokio::test]
async fn garbage_ends_only_that_connection() {
    let (l, addr) = listener().await;
    let zid = Identity::generate().unwrap();
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..5 {
            let (s, _) = l.accept().await.unwrap();
            results.push(
                Session::accept(s, &zid, Role::Zombie, "z")
                    .await
                    .map(|_| ()),
            );
        }
        results
    });
    // Random bytes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x17, 0x03, 0x03, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    // A frame that claims 60000 bytes and stops after 10.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xea, 0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    // A zero-length frame.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0, 0]).await.unwrap();
    s.shutdown().await.unwrap();
    // A replayed first handshake message followed by garbage in place of the third.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut recorded = Vec::new();
    {
        // Record a genuine first message from a real initiator.
        let (l2, a2) = listener().await;
        let rec = tokio::spawn(async move {
            let (mut s2, _) = l2.accept().await.unwrap();
            let mut buf = vec![0u8; 34];
            s2.read_exact(&mut buf).await.unwrap();
            buf
        });
        let mut c = TcpStream::connect(a2).await.unwrap();
        let id = Identity::generate().unwrap();
        let _ =
            tokio::time::timeout(Duration::from_millis(300), noise::initiate(&mut c, &id)).await;
        recorded.extend(rec.await.unwrap());
    }
    s.write_all(&recorded).await.unwrap();
    let mut reply = vec![0u8; 2];
    s.read_exact(&mut reply).await.unwrap();
    let mut skip = vec![0u8; u16::from_be_bytes([reply[0], reply[1]]) as usize];
    s.read_exact(&mut skip).await.unwrap();
    s.write_all(&[0, 64]).await.unwrap();
    s.write_all(&[7u8; 64]).await.unwrap();
    s.shutdown().await.unwrap();
    // And finally a real master, which must still be served.
    let mid = Identity::generate().unwrap();
    let ok = Session::connect(addr, &mid, Role::Master, "m").await;
    assert!(
        ok.is_ok(),
        "a good master after the garbage: {:?}",
        ok.err()
    );
    let results = server.await.unwrap();
    for (i, r) in results[..4].iter().enumerate() {
        let err = r.as_ref().expect_err("garbage must fail").to_string();
        assert!(!err.is_empty(), "case {i} has a message");
        eprintln!("case {i}: {err}");
    }
    assert!(
        results[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("truncated")
    );
    assert!(
        results[2]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("zero-length")
    );
    assert!(results[4].is_ok());
}

#[tokio::test]
async fn wrong_version_is_refused_with_both_versions() {
    let (l, addr) = listener().await;
    let zid = Identity::generate().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        Session::accept(s, &zid, Role::Zombie, "z").await
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    let id = Identity::generate().unwrap();
    let done = noise::initiate(&mut s, &id).await.unwrap();
    let (r, w) = s.into_split();
    let (_mux, mut control) = Mux::start(r, w, done.transport, true);
    control
        .send(&zos_netproto::wire::encode(&Message::Hello {
            version: 99,
            role: Role::Master,
            name: "future".into(),
        }))
        .await
        .unwrap();
    let err = server.await.unwrap().err().expect("refused");
    assert!(
        matches!(err, Error::Version { peer: 99, ours } if ours == PROTOCOL_VERSION),
        "{err}"
    );
    // The old side tells the new one why, naming both versions.
    let mut saw = String::new();
    while let Ok(Some(bytes)) = control.recv().await {
        if let Ok(Message::Refused { reason }) = zos_netproto::wire::decode(&bytes) {
            saw = reason;
            break;
        }
    }
    assert!(
        saw.contains("99") && saw.contains(&PROTOCOL_VERSION.to_string()),
        "refusal names versions: {saw:?}"
    );
}

#[tokio::test]
async fn tampered_bytes_end_the_session() {
    // A relay that flips one bit in the middle of the encrypted stream.
    let (l, addr) = listener().await;
    let (relay_l, relay_addr) = listener().await;
    let zid = Identity::generate().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut z = Session::accept(s, &zid, Role::Zombie, "z").await.unwrap();
        loop {
            if let Err(e) = z.recv().await {
                return e.to_string();
            }
        }
    });
    tokio::spawn(async move {
        let (mut a, _) = relay_l.accept().await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        let (mut ar, mut aw) = a.split();
        let (mut br, mut bw) = b.split();
        let up = async {
            let mut total = 0usize;
            let mut buf = vec![0u8; 4096];
            loop {
                let n = ar.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                // Past the handshake and hello, corrupt one byte.
                if total < 400 && total + n >= 400 {
                    buf[400 - total] ^= 0x40;
                }
                total += n;
                if bw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = tokio::io::copy(&mut br, &mut aw);
        let _ = tokio::join!(up, down);
    });
    let mid = Identity::generate().unwrap();
    let mut m = Session::connect(relay_addr, &mid, Role::Master, "m")
        .await
        .unwrap();
    for seq in 0..50 {
        if m.send(&Message::Ping { seq }).await.is_err() {
            break;
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert!(reason.contains("authentication"), "{reason}");
}

#[tokio::test]
async fn garbage_after_the_handshake_closes_the_connection() {
    let (l, addr) = listener().await;
    let zid = Identity::generate().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        Session::accept(s, &zid, Role::Zombie, "z")
            .await
            .map(|_| ())
    });
    let mut s = TcpStream::connect(addr).await.unwrap();
    noise::initiate(&mut s, &Identity::generate().unwrap())
        .await
        .unwrap();
    let mut frame = vec![0x01, 0x00];
    frame.extend((0..256u32).map(|i| (i * 31 + 7) as u8));
    s.write_all(&frame).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("accept ends")
        .unwrap();
    assert!(err.unwrap_err().to_string().contains("authentication"));
    // The zombie closes the connection: we read its hello, then end of stream.
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut sink)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "connection must be closed by the zombie"
    );
}
