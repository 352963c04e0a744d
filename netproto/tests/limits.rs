//! The channel layer's limits against a peer that does not play along:
//! real sessions on loopback, the hostile side driven frame by frame.

use std::time::Duration;

mod common;

use common::raw::RawPeer;
use common::{listener, pair_of_sessions};
use tokio::net::TcpListener;
use zos_netproto::frame::Inner;
use zos_netproto::mux::{
    MAX_CONTROL_MESSAGE, MAX_OPEN_CHANNELS, MAX_PENDING_OPENS, PIECE_OVERHEAD, WINDOW, writer,
};
use zos_netproto::session::Session;
use zos_netproto::wire::{Message, Role, TaskSummary};
use zos_netproto::{Error, Identity};

/// A zombie session on the next connection to `l`.
async fn zombie_on(l: TcpListener) -> Session {
    let (s, _) = l.accept().await.unwrap();
    Session::accept(s, &Identity::generate().unwrap(), Role::Zombie, "z")
        .await
        .unwrap()
}

/// Why the session ended, waiting at most `secs`.
async fn end_within(session: &Session, secs: u64) -> String {
    tokio::time::timeout(Duration::from_secs(secs), session.mux.ended())
        .await
        .unwrap_or_else(|_| panic!("the session did not end within {secs} s"))
}

#[tokio::test]
async fn channels_never_accepted_get_no_credit_and_buffer_nothing() {
    let (m, z) = pair_of_sessions().await;
    // Only the hello has been held so far.
    let hello_only = z.mux.stats().held_peak;
    let message = vec![0x42u8; 1 << 20];
    let mut senders = Vec::new();
    for i in 0..MAX_PENDING_OPENS {
        let channel = m.mux.open(&format!("unwanted-{i}")).unwrap();
        let message = message.clone();
        senders.push(tokio::spawn(async move {
            channel.send(&message).await.unwrap();
            channel
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        senders.iter().all(|s| !s.is_finished()),
        "no sender may send before the zombie accepts its channel"
    );
    let stats = z.mux.stats();
    assert_eq!(stats.pending, MAX_PENDING_OPENS, "{stats:?}");
    assert_eq!(
        stats.held_peak, hello_only,
        "nothing buffered for them: {stats:?}"
    );

    // Accepting one grants its window: its message arrives, the rest wait.
    let mut first = z.mux.accept().await.unwrap();
    assert_eq!(first.label(), "unwanted-0");
    assert_eq!(first.recv().await.unwrap().unwrap(), message);
    tokio::time::timeout(Duration::from_secs(5), senders.remove(0))
        .await
        .expect("the accepted channel's sender finishes")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(senders.iter().all(|s| !s.is_finished()));
    // The opener's own window came with the open: the zombie answers at once.
    first.send(b"thanks").await.unwrap();
    assert_eq!(z.mux.stats().held, 0);
}

#[tokio::test]
async fn data_before_accept_ends_the_session() {
    let (l, addr) = listener().await;
    let zombie = tokio::spawn(zombie_on(l));
    let mut peer = RawPeer::connect_with_hello(addr, false).await;
    let z = zombie.await.unwrap();
    let hello_only = z.mux.stats().held_peak;
    let channel = peer.open("pushy").await;
    peer.data(channel, &[7u8; 1000], true).await;
    let reason = end_within(&z, 5).await;
    assert!(reason.contains("before it was accepted"), "{reason}");
    assert_eq!(
        z.mux.stats().held_peak,
        hello_only,
        "nothing of it was held"
    );
}

#[tokio::test]
async fn frames_for_a_channel_never_opened_end_the_session() {
    let (l, addr) = listener().await;
    let zombie = tokio::spawn(zombie_on(l));
    let mut peer = RawPeer::connect_with_hello(addr, false).await;
    let z = zombie.await.unwrap();
    peer.data(7, b"out of nowhere", true).await;
    let reason = end_within(&z, 5).await;
    assert!(reason.contains("never opened"), "{reason}");
}

#[tokio::test]
async fn data_after_the_peer_closed_a_channel_ends_the_session() {
    let (l, addr) = listener().await;
    let zombie = tokio::spawn(zombie_on(l));
    let mut peer = RawPeer::connect_with_hello(addr, false).await;
    let z = zombie.await.unwrap();
    let channel = peer.open("closing").await;
    let mut accepted = z.mux.accept().await.unwrap();
    peer.data(channel, b"last words", true).await;
    peer.send(&Inner::Close { channel }).await;
    peer.data(channel, b"and more", true).await;
    assert_eq!(&accepted.recv().await.unwrap().unwrap()[..], b"last words");
    let reason = end_within(&z, 5).await;
    assert!(reason.contains("after closing it"), "{reason}");
}

#[tokio::test]
async fn an_oversized_control_message_ends_the_session_after_at_most_64_kib() {
    let (l, addr) = listener().await;
    let zombie = tokio::spawn(zombie_on(l));
    let mut peer = RawPeer::connect_with_hello(addr, false).await;
    let z = zombie.await.unwrap();
    // A control message that never finishes: pieces with "more follows".
    let piece = vec![0u8; 30_000];
    for _ in 0..6 {
        peer.data(0, &piece, false).await;
    }
    let reason = end_within(&z, 5).await;
    assert!(
        reason.contains("control message larger than"),
        "the reason names the control limit: {reason}"
    );
    let peak = z.mux.stats().held_peak;
    assert!(
        peak <= MAX_CONTROL_MESSAGE,
        "buffered {peak} bytes of it, more than {MAX_CONTROL_MESSAGE}"
    );
}

#[tokio::test]
async fn a_control_message_over_the_limit_is_refused_before_sending() {
    let (mut m, mut z) = pair_of_sessions().await;
    let tasks: Vec<TaskSummary> = (0..2000)
        .map(|id| TaskSummary {
            id,
            kind: "shared".into(),
            command: vec!["some-long-program-name".into(), "--with-an-argument".into()],
        })
        .collect();
    let err = m.send(&Message::Tasks { tasks }).await.unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
    // Nothing was sent: the session goes on.
    m.send(&Message::Ping { seq: 1 }).await.unwrap();
    assert_eq!(z.recv().await.unwrap(), Message::Ping { seq: 1 });
}

#[tokio::test]
async fn a_peer_that_stops_reading_ends_the_session_instead_of_growing_our_queues() {
    let (l, addr) = listener().await;
    let zombie = tokio::spawn(zombie_on(l));
    let mut peer = RawPeer::connect_with_hello(addr, true).await;
    let mut z = zombie.await.unwrap();

    // One channel the zombie accepts and reads, so it owes us credit.
    let channel = peer.open("fed").await;
    let mux = z.mux.clone();
    tokio::spawn(async move {
        let mut ch = mux.accept().await.unwrap();
        while let Ok(Some(_)) = ch.recv().await {}
    });
    loop {
        match peer.recv().await {
            Some(Inner::Credit { channel: c, .. }) if c == channel => break,
            Some(_) => continue,
            None => panic!("session ended before the grant"),
        }
    }
    // From here on we never read. The zombie pings us...
    let mux = z.mux.clone();
    tokio::spawn(async move {
        for seq in 0.. {
            if z.send(&Message::Ping { seq }).await.is_err() {
                break;
            }
        }
    });
    // ...owes us credit for a window of data...
    let piece = vec![1u8; 60_000];
    for _ in 0..(WINDOW / (piece.len() + PIECE_OVERHEAD)) {
        peer.data(channel, &piece, true).await;
    }
    // ...and must reset every channel we open beyond its caps.
    let mut opens = 0;
    while mux.end_reason().is_none() && opens < 2_000_000 {
        peer.open("more").await;
        opens += 1;
        if opens % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let reason = tokio::time::timeout(Duration::from_secs(30), mux.ended())
        .await
        .expect("the session ends once too much is queued for a peer that does not read");
    assert!(reason.contains("not reading"), "{reason}");
    let stats = mux.stats();
    assert!(
        stats.small_queued_peak <= writer::SMALL_QUEUE,
        "queued {} bytes of small frames",
        stats.small_queued_peak
    );
    eprintln!("ended after {opens} opens: {reason}");
}

#[tokio::test]
async fn channels_beyond_the_session_cap_are_refused() {
    let (m, z) = pair_of_sessions().await;
    let mut open = Vec::new();
    for i in 0..MAX_OPEN_CHANNELS {
        let ours = m.mux.open(&format!("c{i}")).unwrap();
        let theirs = z.mux.accept().await.unwrap();
        open.push((ours, theirs));
    }
    for mux in [&m.mux, &z.mux] {
        let err = mux.open("one too many").unwrap_err();
        assert!(matches!(err, Error::Limit(_)), "{err}");
    }
    // Closing one makes room again.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = m.mux.open("room again").unwrap();
    let mut theirs = z.mux.accept().await.unwrap();
    again.send(b"hi").await.unwrap();
    assert_eq!(&theirs.recv().await.unwrap().unwrap()[..], b"hi");
}
