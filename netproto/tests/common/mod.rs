//! A pair of real sessions on loopback, for the integration tests.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use zos_netproto::Identity;
use zos_netproto::session::Session;
use zos_netproto::wire::Role;

/// A listener on a free loopback port.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Connects a master session to a zombie session on loopback.
pub async fn pair_of_sessions() -> (Session, Session) {
    let (l, addr) = listener().await;
    let zid = Identity::generate().unwrap();
    let mid = Identity::generate().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        Session::accept(s, &zid, Role::Zombie, "z").await.unwrap()
    });
    let m = Session::connect(addr, &mid, Role::Master, "m")
        .await
        .unwrap();
    (m, server.await.unwrap())
}

pub mod raw;
