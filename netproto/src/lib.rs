//! The ZOS network protocol.
//!
//! Everything that crosses a machine boundary, and the local control protocol
//! that the CLI, window and tray use to talk to their daemon:
//!
//! - [`identity`]: the static X25519 key of an installation and its fingerprint;
//! - [`trust`]: the zombie's trust store (the paper's `zpasswd`) and the
//!   master's list of paired zombies;
//! - [`discovery`]: `_zos._tcp.local.` advertisement and browsing over mDNS;
//! - [`frame`], [`noise`], [`cipher`], [`mux`], [`session`]: Noise-encrypted
//!   sessions over TCP carrying independent, flow-controlled channels;
//! - [`wire`]: the messages of a session's control channel;
//! - [`pipe`]: byte streams spliced through a channel;
//! - [`pairing`]: one-time codes and the SPAKE2 exchange that binds them to
//!   both static keys and the Noise handshake;
//! - [`control`]: the local control socket protocol.
//!
//! This crate has no `unsafe` code.
#![forbid(unsafe_code)]

pub mod cipher;
pub mod control;
pub mod discovery;
pub mod error;
pub mod frame;
pub mod identity;
pub mod migration;
pub mod mux;
pub mod noise;
pub mod pairing;
pub mod pipe;
pub mod session;
pub mod trust;
pub mod wire;

pub use error::{Error, Result};
pub use identity::{Fingerprint, Identity, PublicKey};
pub use trust::Level;

/// The version of the session protocol spoken after the Noise handshake.
///
/// Peers with another version are refused with a clear message. Version 2:
/// a channel gets credit only once its acceptor accepts it, and control
/// messages are limited to [`mux::MAX_CONTROL_MESSAGE`] (a version-1 peer
/// would send on a channel before it is accepted).
pub const PROTOCOL_VERSION: u16 = 2;

/// The mDNS service type zombies advertise.
pub const SERVICE_TYPE: &str = "_zos._tcp.local.";
