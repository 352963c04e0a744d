//! Every limit of the daemons, in one place.
//!
//! The threat model (DESIGN.md §8): any host on the LAN can complete a Noise
//! handshake with a key of its own. Until it is paired it may only try to
//! pair; it holds no session for long, no memory or descriptors beyond the
//! small fixed limits below, and never slows a paired master. Each constant
//! says what it bounds and what happens beyond it; ARCHITECTURE.md has the
//! same list as a table.

use std::time::Duration;

// ---------------------------------------------------------------------------
// Connections to a zombie's session port.
// ---------------------------------------------------------------------------

/// Connections a zombie holds at once, in any state (handshaking, unpaired,
/// paired). Beyond it a new connection is closed at once.
pub const MAX_CONNECTIONS: usize = 512;

/// Connections a zombie holds at once from one source address. Beyond it a
/// new connection from that address is closed at once.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 64;

/// Connections not (yet) known to come from a paired master — still in the
/// handshake, or handshaken with a key the trust store does not hold — that
/// a zombie holds at once. When they are all taken, a newcomer displaces the
/// oldest such connection of the address that holds the most of them (if
/// that address holds more than the newcomer's), so that one address — or a
/// few — cannot keep a paired master out; otherwise it is closed at once.
pub const MAX_UNPAIRED: usize = 128;

/// Connections not known to come from a paired master, per source address.
/// Beyond it a new connection from that address is closed at once.
pub const MAX_UNPAIRED_PER_ADDRESS: usize = 16;

/// From the accepted TCP connection to the peer's `Hello`: the Noise
/// handshake (netproto's own limit is [`zos_netproto::noise::HANDSHAKE_TIMEOUT`])
/// plus the hello exchange. A connection still silent then is closed.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// An unpaired session that has said nothing for this long is ended. Its
/// pairing steps have their own deadline ([`PAIR_STEP_TIMEOUT`]).
pub const UNPAIRED_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// An unpaired session ends this long after its handshake whatever it does:
/// pairing takes a few round trips, so a session that needs longer is not
/// pairing.
pub const UNPAIRED_SESSION_LIFETIME: Duration = Duration::from_secs(60);

/// A paired master's session that neither dominates the zombie nor says
/// anything for this long is ended (masters open a new one when they need
/// it; `zos ping` with longer pauses reconnects, see [`SESSION_REUSE_LIMIT`]).
pub const PAIRED_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A dominating master that says nothing for this long has lost its lease:
/// the zombie ends the session and cleans up by itself (README: 10 s).
pub const LEASE: Duration = Duration::from_secs(10);

/// Channels a peer may open on a session that accepts none (every session
/// of a zombie, a master's pairing and ping sessions): each is reset at
/// once; past this many the session is ended.
pub const MAX_REFUSED_CHANNELS: usize = 8;

/// The largest control message (channel 0); a larger one ends the session.
/// The channel layer enforces it from the first byte (netproto); the
/// largest real message is a task list, far below this.
pub const MAX_CONTROL_MESSAGE: usize = zos_netproto::mux::MAX_CONTROL_MESSAGE;

// ---------------------------------------------------------------------------
// Pairing.
// ---------------------------------------------------------------------------

/// How long a master may take between pairing steps.
pub const PAIR_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The window over which pairing attempts are counted.
pub const PAIR_ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

/// Pairing attempts (each `PairStart` that reaches the code, whatever its
/// outcome) from one source address per [`PAIR_ATTEMPT_WINDOW`]. Beyond it
/// an attempt is refused without touching the code, and the session ends.
pub const PAIR_ATTEMPTS_PER_ADDRESS: usize = 5;

/// Pairing attempts by one key per [`PAIR_ATTEMPT_WINDOW`], as for
/// [`PAIR_ATTEMPTS_PER_ADDRESS`].
pub const PAIR_ATTEMPTS_PER_KEY: usize = 5;

/// Addresses and keys whose attempts are remembered (the oldest are
/// forgotten first), so that many addresses or keys cannot grow memory.
pub const PAIR_ATTEMPT_SOURCES: usize = 1024;

/// Failed or refused pairing attempts kept for `zos status` and the tray.
pub const PAIR_ATTEMPTS_SHOWN: usize = 16;

// ---------------------------------------------------------------------------
// Domination.
// ---------------------------------------------------------------------------

/// How long the zombie's user has to accept a domination.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(45);

/// How often a master pings a zombie it dominates (the lease is renewed by
/// every message).
pub const KEEPALIVE: Duration = Duration::from_secs(2);

/// A dominated zombie that has said nothing for this long is given up.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// How long a zombie whose user ended the domination waits for its master
/// to release it (bringing its migrants home first) before letting go by
/// itself: the control protocol's
/// [`zos_netproto::control::USER_RELEASE_WAIT_S`].
pub const USER_RELEASE_WAIT: Duration =
    Duration::from_secs(zos_netproto::control::USER_RELEASE_WAIT_S);

// ---------------------------------------------------------------------------
// Deadlines on a master's waits for a zombie.
// ---------------------------------------------------------------------------

/// TCP connect, Noise handshake and hello: netproto's
/// [`zos_netproto::session::CONNECT_TIMEOUT`] and handshake timeout; the
/// whole is bounded by [`HANDSHAKE_DEADLINE`].
pub const CONNECT_DEADLINE: Duration = HANDSHAKE_DEADLINE;

/// A zombie's answer that needs no person: `Welcome`, `Pong`, a pairing
/// step, the first answer to `Dominate` (`Asking` or the decision).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A zombie announces how long its user has to answer (`Asking`); a master
/// waits that long plus this margin, and never more than [`MAX_CONSENT_WAIT`].
pub const CONSENT_MARGIN: Duration = Duration::from_secs(5);

/// The longest consent time a master accepts from a zombie's `Asking`.
pub const MAX_CONSENT_WAIT: Duration = Duration::from_secs(120);

/// How long a zombie may take to mount the shared folders and to open its
/// viewers.
pub const SET_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a zombie may take to clean up after `Release`.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(20);

/// `zos ping` with pauses longer than this opens a new session for the next
/// round trip rather than keep an idle one past the zombie's
/// [`PAIRED_IDLE_TIMEOUT`].
pub const SESSION_REUSE_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Accepting connections (session port and control socket).
// ---------------------------------------------------------------------------

/// The first pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS …);
/// each further failure in a row doubles it, up to [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);

/// The longest pause after failed `accept`s in a row. One warning is
/// logged per pause of this length at most, not one per error.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Refused connections (over a cap) are logged at most once per this
/// period per listener, with the count of those not logged.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Clients a daemon's control socket serves at once (CLI commands, the
/// tray, the window, one per open view). Beyond it a new client is closed
/// at once.
pub const MAX_CONTROL_CLIENTS: usize = 64;

/// How long a control client may take to send its request line.
pub const CONTROL_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest control request line.
pub const MAX_CONTROL_REQUEST: usize = 64 << 10;

// ---------------------------------------------------------------------------
// Limits of the channel layer and the file service, quoted.
// ---------------------------------------------------------------------------

/// Each channel's credit window: what a peer may have in flight on one
/// channel (netproto).
pub const CHANNEL_WINDOW: usize = zos_netproto::mux::WINDOW;

/// The largest message on a bulk channel (netproto's default).
pub const MAX_CHANNEL_MESSAGE: usize = zos_netproto::mux::MAX_MESSAGE;

/// Channels the peer opened that the application has not accepted yet; the
/// peer's further opens are reset (netproto). Such channels get no credit,
/// so they cost no buffered bytes.
pub const MAX_PENDING_OPENS: usize = zos_netproto::mux::MAX_PENDING_OPENS;

/// Open channels per session; the peer's further opens are reset and ours
/// fail (netproto).
pub const MAX_OPEN_CHANNELS: usize = zos_netproto::mux::MAX_OPEN_CHANNELS;

/// Bytes of data frames queued for one session's writer, and of small
/// frames (credit, open, reset, close): a peer that stops reading ends its
/// session, it does not grow our memory (netproto).
pub const WRITER_QUEUE: usize = zos_netproto::mux::writer::DATA_QUEUE;

/// File-service calls a master runs at once for one zombie (fileshare).
pub const FILESHARE_CALLS_IN_FLIGHT: usize = zos_fileshare::server::MAX_IN_FLIGHT;

/// Descriptors the master holds for one dominated zombie (node
/// descriptors, open files and directories, for every server of that
/// zombie's key together); beyond it the zombie's open, create or opendir
/// gets `EMFILE` and the master goes on (fileshare).
pub const FILESHARE_DESCRIPTORS: usize = zos_fileshare::server::MAX_DESCRIPTORS;

/// Node descriptors the master keeps open per zombie (the most recently
/// used; an evicted node is reopened by name and checked to be the same
/// inode) (fileshare).
pub const FILESHARE_NODE_FDS: usize = zos_fileshare::server::NODE_FDS;

// The caps nest, so that a paired master always has room, and the timeouts
// are ordered as the doc comments say; checked when the crate compiles.
const _: () = {
    assert!(MAX_UNPAIRED_PER_ADDRESS <= MAX_CONNECTIONS_PER_ADDRESS);
    assert!(MAX_UNPAIRED < MAX_CONNECTIONS);
    assert!(MAX_CONNECTIONS_PER_ADDRESS < MAX_CONNECTIONS);
    assert!(MAX_UNPAIRED_PER_ADDRESS < MAX_UNPAIRED);
    assert!(UNPAIRED_IDLE_TIMEOUT.as_secs() < UNPAIRED_SESSION_LIFETIME.as_secs());
    assert!(UNPAIRED_SESSION_LIFETIME.as_secs() < PAIRED_IDLE_TIMEOUT.as_secs());
    assert!(SESSION_REUSE_LIMIT.as_secs() < PAIRED_IDLE_TIMEOUT.as_secs());
    assert!(KEEPALIVE.as_secs() * 2 < LEASE.as_secs());
    assert!(CONSENT_TIMEOUT.as_secs() < MAX_CONSENT_WAIT.as_secs());
    assert!(ACCEPT_BACKOFF_MIN.as_millis() < ACCEPT_BACKOFF_MAX.as_millis());
};
