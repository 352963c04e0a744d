//! A small Noise client of an attacker's own: any host on the LAN can
//! complete a handshake with a fresh key of its own and then say what it
//! likes on the session (DESIGN.md §8). Built on netproto's handshake and
//! channel layer, so everything it sends is well-formed at that level.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use zos_netproto::mux::{Channel, Mux};
use zos_netproto::wire::{self, Message, Role};
use zos_netproto::{Identity, PROTOCOL_VERSION, PublicKey};

use super::host::Host;

/// How long the attacker waits for any one answer.
pub const ANSWER: Duration = Duration::from_secs(10);

/// Runs `f` in a single-threaded tokio runtime on a thread inside `host`'s
/// network namespace.
pub fn on<T: Send + 'static, F>(host: &Host, f: impl FnOnce() -> F + Send + 'static) -> T
where
    F: Future<Output = T>,
{
    host.in_netns(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}

/// Like [`on`], but returns at once: `f` runs on its own thread inside the
/// network namespace `ns` until it finishes.
pub fn spawn_on<T: Send + 'static, F>(
    ns: &str,
    f: impl FnOnce() -> F + Send + 'static,
) -> std::thread::JoinHandle<T>
where
    F: Future<Output = T>,
{
    let path = format!("/run/netns/{ns}");
    let netns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: setns(2) on a valid namespace fd; it changes only this
        // thread's network namespace, and this thread ends with `f`.
        let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        drop(netns);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}

/// A handshaken session with a key nobody paired.
pub struct Intruder {
    /// The session's channel layer.
    pub mux: Mux,
    /// Its control channel.
    pub control: Channel,
    /// Our end's address.
    pub local: SocketAddr,
    /// Our fresh identity.
    pub identity: Identity,
    /// The zombie's key, as the handshake proved it.
    pub zombie: PublicKey,
    /// The session's handshake hash.
    pub handshake_hash: [u8; 32],
}

/// Connects to `target` (from the local address `from`, if given), runs the
/// handshake with a fresh key and exchanges hellos as a master would;
/// returns the session after the zombie's `Welcome`.
pub async fn intrude(target: SocketAddr, from: Option<IpAddr>) -> Result<Intruder, String> {
    let stream = match from {
        None => TcpStream::connect(target).await,
        Some(ip) => {
            let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| format!("bind {ip}: {e}"))?;
            socket.connect(target).await
        }
    };
    let mut stream = stream.map_err(|e| format!("connect: {e}"))?;
    let local = stream.local_addr().map_err(|e| e.to_string())?;
    let identity = Identity::generate().map_err(|e| e.to_string())?;
    let done = zos_netproto::noise::initiate(&mut stream, &identity)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (r, w) = stream.into_split();
    let (mux, control) = Mux::start(r, w, done.transport, true);
    let mut intruder = Intruder {
        mux,
        control,
        local,
        identity,
        zombie: done.remote,
        handshake_hash: done.handshake_hash,
    };
    intruder
        .send(&Message::Hello {
            version: PROTOCOL_VERSION,
            role: Role::Master,
            name: "intruder".into(),
        })
        .await?;
    match intruder.recv().await? {
        Message::Hello { .. } => {}
        other => return Err(format!("expected the zombie's Hello, got {other:?}")),
    }
    match intruder.recv().await? {
        Message::Welcome { level: None } => Ok(intruder),
        other => Err(format!("expected Welcome(unpaired), got {other:?}")),
    }
}

impl Intruder {
    /// Sends one control message.
    pub async fn send(&mut self, m: &Message) -> Result<(), String> {
        self.control
            .send(&wire::encode(m))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// The next control message, within [`ANSWER`].
    pub async fn recv(&mut self) -> Result<Message, String> {
        match tokio::time::timeout(ANSWER, self.control.recv()).await {
            Err(_) => Err(format!("no answer within {ANSWER:?}")),
            Ok(Ok(Some(bytes))) => wire::decode(&bytes).map_err(|e| e.to_string()),
            Ok(Ok(None)) => Err("the zombie closed the control channel".into()),
            Ok(Err(e)) => Err(format!("session ended: {e}")),
        }
    }

    /// Whether the zombie has ended the session.
    pub fn ended(&self) -> bool {
        self.mux.end_reason().is_some()
    }

    /// One pairing attempt with `code`: the zombie's last answer
    /// (`PairFailed` or `PairDone`), or why there was none.
    pub async fn try_pairing(&mut self, code: &str) -> Result<Message, String> {
        use zos_netproto::pairing::{self, Side};
        let (state, spake) = pairing::master_start(code, &self.identity.public(), &self.zombie);
        self.send(&Message::PairStart {
            name: "intruder".into(),
            spake,
        })
        .await?;
        let challenge = match self.recv().await? {
            Message::PairChallenge { spake } => spake,
            other => return Ok(other),
        };
        let key = state.finish(&challenge).map_err(|e| e.to_string())?;
        let mac = pairing::confirmation(&key, Side::Master, &self.handshake_hash);
        self.send(&Message::PairConfirm { mac }).await?;
        self.recv().await
    }
}

/// The number of open descriptors of process `pid`.
pub fn descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) process `pid` has used, in clock ticks.
pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}
