//! One session channel on loopback moving N MiB, for profiling the data
//! path (`perf record -g target/release/examples/throughput 4096`).

use std::time::Instant;

use tokio::net::TcpListener;
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

#[tokio::main]
async fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2048);
    let bytes = mib << 20;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let zid = Identity::generate().unwrap();
    let receiver = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let z = Session::accept(s, &zid, Role::Zombie, "z").await.unwrap();
        let mut ch = z.mux.accept().await.unwrap();
        let mut got = 0u64;
        while got < bytes {
            match ch.recv().await.unwrap() {
                Some(m) => got += m.len() as u64,
                None => break,
            }
        }
        (got, z)
    });
    let m = Session::connect(addr, &Identity::generate().unwrap(), Role::Master, "m")
        .await
        .unwrap();
    let ch = m.mux.open("bench").unwrap();
    let chunk = vec![0x5au8; zos_netproto::frame::MAX_PIECE];
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = chunk.len().min((bytes - sent) as usize);
        ch.send(&chunk[..n]).await.unwrap();
        sent += n as u64;
    }
    let (got, _z) = receiver.await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{got} bytes in {secs:.2} s: {:.0} MB/s",
        got as f64 / secs / 1e6
    );
}
