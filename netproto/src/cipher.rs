//! The transport cipher of a session, sealing and opening frames in place.
//!
//! This is exactly Noise's transport phase for `AESGCM`: each direction has
//! its own key from the handshake's split, nonces count up from 0 and are
//! encoded as four zero bytes and the counter in big-endian, the associated
//! data is empty and the 16-byte tag follows the ciphertext. A peer using
//! snow's own transport state reads and writes the same bytes (a test below
//! checks both ways). Working in place saves the copies snow's API makes
//! (plaintext into the output, ciphertext into the plaintext buffer).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::error::{Error, Result};
use crate::frame::TAG_LEN;

/// The keys of both directions after a handshake.
pub struct TransportKeys {
    /// Seals what this side sends.
    pub sealer: Sealer,
    /// Opens what the peer sends.
    pub opener: Opener,
}

impl TransportKeys {
    /// The keys for one side from the handshake's split: the first key is
    /// the initiator's sending key, the second the responder's.
    pub fn from_split(initiator: bool, mut split: ([u8; 32], [u8; 32])) -> TransportKeys {
        let (send, recv) = if initiator {
            (&split.0, &split.1)
        } else {
            (&split.1, &split.0)
        };
        let keys = TransportKeys {
            sealer: Sealer::new(send),
            opener: Opener::new(recv),
        };
        // The raw key bytes are not needed any more.
        split.0.fill(0);
        split.1.fill(0);
        keys
    }
}

fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 takes a 32-byte key"))
}

/// Noise reserves the largest nonce; a session never gets near it, but a
/// counter must not wrap.
fn nonce(counter: &mut u64) -> Result<Nonce> {
    if *counter == u64::MAX {
        return Err(Error::Malformed(
            "nonces of this session are exhausted".into(),
        ));
    }
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    *counter += 1;
    Ok(Nonce::assume_unique_for_key(bytes))
}

/// Encrypts one direction's frames, counting nonces.
pub struct Sealer {
    key: LessSafeKey,
    counter: u64,
}

impl Sealer {
    /// A sealer with nonce 0 next.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            key: aes_key(key),
            counter: 0,
        }
    }

    /// Encrypts `buf[from..]` in place and appends the tag.
    pub fn seal(&mut self, buf: &mut Vec<u8>, from: usize) -> Result<()> {
        let nonce = nonce(&mut self.counter)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf[from..])
            .map_err(|_| Error::Malformed("frame too large to seal".into()))?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

/// Decrypts the peer's frames, counting nonces.
pub struct Opener {
    key: LessSafeKey,
    counter: u64,
}

impl Opener {
    /// An opener expecting nonce 0 next.
    pub fn new(key: &[u8; 32]) -> Opener {
        Opener {
            key: aes_key(key),
            counter: 0,
        }
    }

    /// Decrypts and authenticates a whole frame (ciphertext and tag) in
    /// place; returns the plaintext's length, at the start of `frame`.
    pub fn open(&mut self, frame: &mut [u8]) -> Result<usize> {
        let Some(plain_len) = frame.len().checked_sub(TAG_LEN) else {
            return Err(Error::Malformed(format!(
                "frame of {} bytes is shorter than its tag",
                frame.len()
            )));
        };
        let nonce = nonce(&mut self.counter)?;
        let (body, tag) = frame.split_at_mut(plain_len);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().expect("TAG_LEN bytes");
        self.key
            .open_in_place_separate_tag(nonce, Aad::empty(), Tag::from(tag), body, 0..)
            .map_err(|_| {
                Error::Malformed(
                    "frame failed authentication: tampered, replayed or corrupt".into(),
                )
            })?;
        Ok(plain_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::{NOISE_PARAMS, PROLOGUE};

    /// A finished XX handshake in memory: our keys for the initiator, and
    /// snow's own transport state for the responder.
    fn handshaken() -> (TransportKeys, snow::StatelessTransportState) {
        let params = || NOISE_PARAMS.parse().unwrap();
        let ik = snow::Builder::new(params()).generate_keypair().unwrap();
        let rk = snow::Builder::new(params()).generate_keypair().unwrap();
        let mut i = snow::Builder::new(params())
            .local_private_key(&ik.private)
            .unwrap()
            .prologue(PROLOGUE)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params())
            .local_private_key(&rk.private)
            .unwrap()
            .prologue(PROLOGUE)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut buf, mut payload) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut turn = true;
        while !(i.is_handshake_finished() && r.is_handshake_finished()) {
            let (from, to) = if turn {
                (&mut i, &mut r)
            } else {
                (&mut r, &mut i)
            };
            let n = from.write_message(&[], &mut buf).unwrap();
            to.read_message(&buf[..n], &mut payload).unwrap();
            turn = !turn;
        }
        let ours = TransportKeys::from_split(true, i.dangerously_get_raw_split());
        (ours, r.into_stateless_transport_mode().unwrap())
    }

    #[test]
    fn frames_match_snows_noise_transport_both_ways() {
        let (mut ours, theirs) = handshaken();
        for (n, text) in [&b"first"[..], b"", &[7u8; 60000][..]].iter().enumerate() {
            let mut buf = b"xx".to_vec();
            buf.extend_from_slice(text);
            ours.sealer.seal(&mut buf, 2).unwrap();
            let mut plain = vec![0u8; buf.len()];
            let len = theirs
                .read_message(n as u64, &buf[2..], &mut plain)
                .unwrap();
            assert_eq!(&plain[..len], *text);

            let mut wire = vec![0u8; text.len() + TAG_LEN];
            let len = theirs.write_message(n as u64, text, &mut wire).unwrap();
            let plain_len = ours.opener.open(&mut wire[..len]).unwrap();
            assert_eq!(&wire[..plain_len], *text);
        }
    }

    #[test]
    fn tampered_replayed_and_short_frames_fail() {
        let (mut ours, theirs) = handshaken();
        let mut wire = vec![0u8; 64];
        let len = theirs.write_message(0, b"hello", &mut wire).unwrap();
        let good = wire[..len].to_vec();
        let mut bad = good.clone();
        bad[2] ^= 1;
        assert!(ours.opener.open(&mut bad).is_err(), "tampered");
        // The failed frame used up nonce 0, as the session ends anyway.
        let mut replay = good.clone();
        assert!(ours.opener.open(&mut replay).is_err(), "wrong nonce");
        assert!(ours.opener.open(&mut [0u8; 5]).is_err(), "short");
    }
}
