//! The Noise handshake over a TCP stream.
//!
//! Pattern `XX` (both sides send their static key, encrypted), X25519,
//! AES-256-GCM, SHA-256, with a prologue naming the framing version so that a
//! peer with an incompatible framing fails the handshake instead of
//! misreading frames. Handshake messages travel in the same length-prefixed
//! frames as transport messages (see [`crate::frame`]).

use std::time::Duration;

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::cipher::TransportKeys;
use crate::error::{Error, Result};
use crate::frame::{MAX_NOISE_MESSAGE, read_frame, write_frame};
use crate::identity::{Identity, PublicKey};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_SHA256";

/// Mixed into the handshake: peers with other framing never agree.
pub const PROLOGUE: &[u8] = b"zos session framing 1";

/// How long a whole handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of a finished handshake.
pub struct Handshaken {
    /// The transport keys of both directions, nonces from 0.
    pub transport: TransportKeys,
    /// The peer's authenticated static key.
    pub remote: PublicKey,
    /// The handshake hash, unique to this session; pairing binds to it.
    pub handshake_hash: [u8; 32],
}

/// Computes the X25519 public key for a private key.
pub(crate) fn x25519_base(private: &[u8; 32]) -> [u8; 32] {
    let mut dh = DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .expect("curve25519 is built in");
    dh.set(private);
    dh.pubkey()
        .try_into()
        .expect("x25519 public key is 32 bytes")
}

fn initiator_state(identity: &Identity) -> Result<snow::HandshakeState> {
    let params = NOISE_PARAMS.parse().expect("valid noise params");
    Ok(snow::Builder::new(params)
        .local_private_key(identity.private_bytes())?
        .prologue(PROLOGUE)?
        .build_initiator()?)
}

fn responder_state(identity: &Identity) -> Result<snow::HandshakeState> {
    let params = NOISE_PARAMS.parse().expect("valid noise params");
    Ok(snow::Builder::new(params)
        .local_private_key(identity.private_bytes())?
        .prologue(PROLOGUE)?
        .build_responder()?)
}

/// Runs the initiator's side of the handshake.
pub async fn initiate<S>(stream: &mut S, identity: &Identity) -> Result<Handshaken>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    with_timeout(run(stream, initiator_state(identity)?)).await
}

/// Runs the responder's side of the handshake.
pub async fn respond<S>(stream: &mut S, identity: &Identity) -> Result<Handshaken>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    with_timeout(run(stream, responder_state(identity)?)).await
}

async fn with_timeout(fut: impl Future<Output = Result<Handshaken>>) -> Result<Handshaken> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .map_err(|_| Error::Timeout("noise handshake".into()))?
}

async fn run<S>(stream: &mut S, mut hs: snow::HandshakeState) -> Result<Handshaken>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut msg = vec![0u8; MAX_NOISE_MESSAGE];
    let mut payload = vec![0u8; MAX_NOISE_MESSAGE];
    while !hs.is_handshake_finished() {
        if hs.is_my_turn() {
            let n = hs.write_message(&[], &mut msg)?;
            write_frame(stream, &msg[..n]).await?;
        } else {
            let n = read_frame(stream, &mut msg)
                .await?
                .ok_or_else(|| Error::Closed("peer closed during handshake".into()))?;
            // ZOS sends no handshake payloads; anything there is not ours,
            // and refusing it at once spares a wait for the handshake timeout.
            if hs.read_message(&msg[..n], &mut payload)? != 0 {
                return Err(Error::Malformed(
                    "unexpected payload in a handshake message".into(),
                ));
            }
        }
    }
    let remote = PublicKey::from_slice(
        hs.get_remote_static()
            .ok_or_else(|| Error::Malformed("no remote static key".into()))?,
    )?;
    let handshake_hash: [u8; 32] = hs
        .get_handshake_hash()
        .try_into()
        .map_err(|_| Error::Malformed("handshake hash length".into()))?;
    let initiator = hs.is_initiator();
    Ok(Handshaken {
        transport: TransportKeys::from_split(initiator, hs.dangerously_get_raw_split()),
        remote,
        handshake_hash,
    })
}
