//! Split channels and byte streams spliced through a session on loopback.

use std::time::Duration;

mod common;

use common::pair_of_sessions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zos_netproto::mux::WINDOW;
use zos_netproto::pipe::splice;

#[tokio::test]
async fn split_halves_send_and_receive_at_once() {
    let (m, z) = pair_of_sessions().await;
    let (tx, mut rx) = m.mux.open("echo").unwrap().split();
    let theirs = z.mux.accept().await.unwrap();
    let (ztx, mut zrx) = theirs.split();
    // The zombie echoes every message back.
    let echo = tokio::spawn(async move {
        while let Some(m) = zrx.recv().await.unwrap() {
            ztx.send(&m).await.unwrap();
        }
    });
    // Far more than one window in flight each way: needs both halves busy.
    let sender = tokio::spawn(async move {
        for i in 0..200u32 {
            tx.send(&vec![i as u8; 100_000]).await.unwrap();
        }
    });
    for i in 0..200u32 {
        let m = rx.recv().await.unwrap().unwrap();
        assert_eq!(m.len(), 100_000);
        assert!(m.iter().all(|&b| b == i as u8));
    }
    sender.await.unwrap();
    // The sending half is gone: the echo ends, and so does our receiver.
    echo.await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), None);
}

#[tokio::test]
async fn a_dropped_receiver_does_not_stall_the_peer() {
    let (m, z) = pair_of_sessions().await;
    let ch = m.mux.open("one-way").unwrap();
    let theirs = z.mux.accept().await.unwrap();
    let (_keep_sending_half, rx) = theirs.split();
    drop(rx);
    // Three windows' worth: without credit coming back this would hang.
    let big = vec![7u8; 3 * WINDOW];
    tokio::time::timeout(Duration::from_secs(10), ch.send(&big))
        .await
        .expect("credit returned for discarded data")
        .unwrap();
}

#[tokio::test]
async fn splice_carries_a_byte_stream_both_ways_and_half_closes() {
    let (m, z) = pair_of_sessions().await;
    // Master side: the channel is spliced to an in-memory "server".
    let (server_end, mut server) = tokio::io::duplex(1 << 16);
    let channel = m.mux.open("stream").unwrap();
    let master = tokio::spawn(splice(channel, server_end));
    // Zombie side: a "client" stream spliced to the accepted channel.
    let (client_end, mut client) = tokio::io::duplex(1 << 16);
    let accepted = z.mux.accept().await.unwrap();
    let zombie = tokio::spawn(splice(accepted, client_end));

    let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let writer = tokio::spawn(async move {
        client.write_all(&payload).await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        answer
    });
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert!(got == expected, "the stream arrived intact");
    server.write_all(b"thanks").await.unwrap();
    server.shutdown().await.unwrap();
    assert_eq!(writer.await.unwrap(), b"thanks");
    let (ms, zs) = (
        master.await.unwrap().unwrap(),
        zombie.await.unwrap().unwrap(),
    );
    assert_eq!(ms.from_channel, 5_000_000);
    assert_eq!(zs.to_channel, 5_000_000);
    assert_eq!((ms.to_channel, zs.from_channel), (6, 6));
}

#[tokio::test]
async fn splice_ends_with_an_error_when_the_session_dies() {
    let (m, z) = pair_of_sessions().await;
    let (server_end, _server) = tokio::io::duplex(1 << 16);
    let master = tokio::spawn(splice(m.mux.open("stream").unwrap(), server_end));
    let _accepted = z.mux.accept().await.unwrap();
    z.mux.abort("cable pulled");
    drop(z);
    let result = tokio::time::timeout(Duration::from_secs(10), master)
        .await
        .expect("splice notices the end")
        .unwrap();
    assert!(result.is_err(), "{result:?}");
}
