//! Which connections a zombie takes on its session port.
//!
//! Every accepted connection holds a [`Ticket`] until it ends. A connection
//! counts as *unpaired* from its first byte until its peer has shown a key
//! the trust store holds ([`Ticket::set_paired`]). The caps (see
//! [`crate::limits`]) bound connections in total and per source address,
//! and unpaired ones in total and per source address. When the unpaired
//! connections are all taken, a newcomer displaces the oldest unpaired
//! connection of the address that holds the most of them — if that address
//! holds more than the newcomer's — so an attacker needs as many addresses as
//! there are unpaired places ([`Caps::unpaired`]) to keep a paired master
//! out. Paired connections are never displaced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::limits;

/// The caps of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Connections in any state.
    pub total: usize,
    /// Connections in any state from one address.
    pub per_address: usize,
    /// Unpaired connections.
    pub unpaired: usize,
    /// Unpaired connections from one address.
    pub unpaired_per_address: usize,
}

impl Caps {
    /// The zombie's caps, from [`crate::limits`].
    pub const ZOMBIE: Caps = Caps {
        total: limits::MAX_CONNECTIONS,
        per_address: limits::MAX_CONNECTIONS_PER_ADDRESS,
        unpaired: limits::MAX_UNPAIRED,
        unpaired_per_address: limits::MAX_UNPAIRED_PER_ADDRESS,
    };
}

/// Why a connection was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds as many connections (or unpaired ones) as it may.
    AddressFull,
    /// The listener holds as many as it may, none of them displaceable.
    Full,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::AddressFull => "its address holds as many connections as it may",
            Refusal::Full => "the zombie holds as many connections as it may",
        })
    }
}

struct Conn {
    addr: IpAddr,
    paired: bool,
    since: Instant,
    evict: CancellationToken,
}

#[derive(Default, Clone, Copy)]
struct Count {
    all: usize,
    unpaired: usize,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    conns: HashMap<u64, Conn>,
    by_addr: HashMap<IpAddr, Count>,
    all: usize,
    unpaired: usize,
}

/// The connections of one listener.
pub struct Admission {
    caps: Caps,
    table: Mutex<Table>,
}

/// A connection's place; dropping it frees the place.
pub struct Ticket {
    id: u64,
    admission: Arc<Admission>,
    evicted: CancellationToken,
    paired: AtomicBool,
}

impl Admission {
    /// No connections yet.
    pub fn new(caps: Caps) -> Arc<Admission> {
        Arc::new(Admission {
            caps,
            table: Mutex::new(Table::default()),
        })
    }

    /// Takes a new (unpaired) connection from `addr`, displacing another if
    /// the rules above allow, or says why not.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Ticket, Refusal> {
        let mut t = self.table.lock();
        let mine = t.by_addr.get(&addr).copied().unwrap_or_default();
        if mine.all >= self.caps.per_address || mine.unpaired >= self.caps.unpaired_per_address {
            return Err(Refusal::AddressFull);
        }
        if t.all >= self.caps.total || t.unpaired >= self.caps.unpaired {
            displace_one(&mut t, mine.unpaired).ok_or(Refusal::Full)?;
        }
        let id = t.next_id;
        t.next_id += 1;
        let evicted = CancellationToken::new();
        t.conns.insert(
            id,
            Conn {
                addr,
                paired: false,
                since: Instant::now(),
                evict: evicted.clone(),
            },
        );
        let count = t.by_addr.entry(addr).or_default();
        count.all += 1;
        count.unpaired += 1;
        t.all += 1;
        t.unpaired += 1;
        Ok(Ticket {
            id,
            admission: self.clone(),
            evicted,
            paired: AtomicBool::new(false),
        })
    }

    /// Connections held: (all, unpaired).
    pub fn counts(&self) -> (usize, usize) {
        let t = self.table.lock();
        (t.all, t.unpaired)
    }

    fn set_paired(&self, id: u64, paired: bool) {
        let mut t = self.table.lock();
        let Some(conn) = t.conns.get_mut(&id) else {
            return;
        };
        if conn.paired == paired {
            return;
        }
        conn.paired = paired;
        let addr = conn.addr;
        let delta: isize = if paired { -1 } else { 1 };
        let count = t.by_addr.entry(addr).or_default();
        count.unpaired = count.unpaired.saturating_add_signed(delta);
        t.unpaired = t.unpaired.saturating_add_signed(delta);
    }

    fn release(&self, id: u64) {
        let mut t = self.table.lock();
        if let Some(conn) = t.conns.remove(&id) {
            forget(&mut t, &conn);
        }
    }
}

/// Removes a connection's counts.
fn forget(t: &mut Table, conn: &Conn) {
    t.all -= 1;
    if !conn.paired {
        t.unpaired -= 1;
    }
    if let Some(count) = t.by_addr.get_mut(&conn.addr) {
        count.all -= 1;
        if !conn.paired {
            count.unpaired -= 1;
        }
        if count.all == 0 {
            t.by_addr.remove(&conn.addr);
        }
    }
}

/// Displaces the oldest unpaired connection of the address holding the
/// most unpaired ones, if it holds more than `newcomer_holds`.
fn displace_one(t: &mut Table, newcomer_holds: usize) -> Option<()> {
    let (&heaviest, count) = t
        .by_addr
        .iter()
        .max_by_key(|(_, c)| c.unpaired)
        .filter(|(_, c)| c.unpaired > newcomer_holds)?;
    debug_assert!(count.unpaired > 0);
    let (&id, _) = t
        .conns
        .iter()
        .filter(|(_, c)| c.addr == heaviest && !c.paired)
        .min_by_key(|(_, c)| c.since)?;
    let conn = t.conns.remove(&id)?;
    forget(t, &conn);
    conn.evict.cancel();
    Some(())
}

impl Ticket {
    /// Marks the connection as coming from a paired master (never
    /// displaced, not counted among the unpaired) or not.
    pub fn set_paired(&self, paired: bool) {
        self.paired.store(paired, Ordering::Relaxed);
        self.admission.set_paired(self.id, paired);
    }

    /// Whether the connection is known to come from a paired master.
    pub fn is_paired(&self) -> bool {
        self.paired.load(Ordering::Relaxed)
    }

    /// Cancelled when a newcomer displaced this connection.
    pub fn evicted(&self) -> &CancellationToken {
        &self.evicted
    }

    /// A ticket that belongs to no listener (sessions made in tests).
    #[cfg(test)]
    pub fn detached() -> Ticket {
        Admission::new(Caps::ZOMBIE)
            .admit(IpAddr::from([127, 0, 0, 1]))
            .expect("an empty table admits")
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Caps = Caps {
        total: 8,
        per_address: 4,
        unpaired: 4,
        unpaired_per_address: 2,
    };

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_gets_no_more_than_its_share() {
        let a = Admission::new(SMALL);
        let held: Vec<Ticket> = (0..2).map(|_| a.admit(ip(1)).unwrap()).collect();
        assert_eq!(a.admit(ip(1)).err(), Some(Refusal::AddressFull));
        // Another address is unaffected.
        let other = a.admit(ip(2)).unwrap();
        drop(held);
        assert_eq!(a.counts(), (1, 1));
        a.admit(ip(1)).expect("room again once they are gone");
        drop(other);
    }

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_displaces_the_oldest_of_the_heaviest_address() {
        let a = Admission::new(SMALL);
        let first = a.admit(ip(1)).unwrap();
        tokio::time::advance(std::time::Duration::from_millis(1)).await;
        let second = a.admit(ip(1)).unwrap();
        let third = a.admit(ip(2)).unwrap();
        let fourth = a.admit(ip(3)).unwrap();
        assert_eq!(a.counts(), (4, 4));
        // Address 4 holds none, address 1 holds two: its oldest goes.
        let newcomer = a.admit(ip(4)).unwrap();
        assert!(first.evicted().is_cancelled());
        for t in [&second, &third, &fourth, &newcomer] {
            assert!(!t.evicted().is_cancelled());
        }
        assert_eq!(a.counts(), (4, 4));
        // Now every address holds one: one of them cannot displace another.
        assert_eq!(a.admit(ip(2)).err(), Some(Refusal::Full));
        // The displaced ticket's drop frees nothing twice.
        drop(first);
        assert_eq!(a.counts(), (4, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn paired_connections_are_never_displaced_and_leave_room_for_unpaired() {
        let a = Admission::new(SMALL);
        let paired: Vec<Ticket> = (0..4)
            .map(|n| {
                let t = a.admit(ip(n)).unwrap();
                t.set_paired(true);
                t
            })
            .collect();
        assert_eq!(a.counts(), (4, 0));
        let unpaired: Vec<Ticket> = (0..4).map(|n| a.admit(ip(10 + n)).unwrap()).collect();
        assert_eq!(a.counts(), (8, 4));
        // Full in total: the newcomer (holding none) displaces an unpaired one.
        let _newcomer = a.admit(ip(20)).unwrap();
        assert!(paired.iter().all(|t| !t.evicted().is_cancelled()));
        assert_eq!(
            unpaired
                .iter()
                .filter(|t| t.evicted().is_cancelled())
                .count(),
            1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_attackers_cannot_keep_a_single_master_out() {
        // 100 connections from each of 3 addresses, then the master's.
        let a = Admission::new(Caps::ZOMBIE);
        let mut attackers = Vec::new();
        for n in 0..3 {
            for _ in 0..100 {
                if let Ok(t) = a.admit(ip(n)) {
                    attackers.push(t);
                }
            }
        }
        assert_eq!(attackers.len(), 3 * limits::MAX_UNPAIRED_PER_ADDRESS);
        let master = a.admit(ip(200)).expect("the master gets in");
        master.set_paired(true);
        // With enough addresses to fill every unpaired place, a newcomer
        // still gets in by displacing the heaviest address's oldest.
        for n in 3..40 {
            for _ in 0..limits::MAX_UNPAIRED_PER_ADDRESS {
                if let Ok(t) = a.admit(ip(n)) {
                    attackers.push(t);
                }
            }
        }
        let (_, unpaired) = a.counts();
        assert_eq!(unpaired, limits::MAX_UNPAIRED);
        assert!(!master.evicted().is_cancelled());
        let again = a.admit(ip(201)).expect("a second master gets in too");
        drop(again);
    }
}
