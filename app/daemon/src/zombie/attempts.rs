//! Pairing attempts: how many each address and key may make, and which
//! failed or were refused, for the zombie's user to see.
//!
//! A code allows three guesses in all; without a limit per peer, one
//! unpaired peer could burn every new code within milliseconds. Each
//! address and each key may make [`PAIR_ATTEMPTS_PER_ADDRESS`] and
//! [`PAIR_ATTEMPTS_PER_KEY`] attempts per [`PAIR_ATTEMPT_WINDOW`] (every
//! attempt that reaches the code counts, whatever its outcome); beyond that
//! an attempt is refused without touching the code. Memory is bounded:
//! [`PAIR_ATTEMPT_SOURCES`] addresses and keys, [`PAIR_ATTEMPTS_SHOWN`]
//! records (repeats from one address with the same outcome are counted in
//! one record).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use zos_netproto::PublicKey;
use zos_netproto::control::PairAttemptInfo;

use crate::accept::LogLimiter;
use crate::limits::{
    PAIR_ATTEMPT_SOURCES, PAIR_ATTEMPT_WINDOW, PAIR_ATTEMPTS_PER_ADDRESS, PAIR_ATTEMPTS_PER_KEY,
    PAIR_ATTEMPTS_SHOWN, REFUSAL_LOG_INTERVAL,
};

/// An attempt refused by the rate limit: which limit, and when the next
/// attempt would be allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limited {
    /// "address" or "key".
    pub by: &'static str,
    /// How long until an attempt is allowed again.
    pub retry_in: Duration,
}

impl Limited {
    /// The reason given to the peer and shown to the user.
    pub fn reason(&self) -> String {
        format!(
            "too many pairing attempts from this {} (at most {} a minute); try again in {} s",
            self.by,
            if self.by == "address" {
                PAIR_ATTEMPTS_PER_ADDRESS
            } else {
                PAIR_ATTEMPTS_PER_KEY
            },
            self.retry_in.as_secs().max(1)
        )
    }
}

/// The attempts of each source (address or key) within the window.
struct Sources<K> {
    per_window: usize,
    times: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Copy> Sources<K> {
    fn new(per_window: usize) -> Self {
        Sources {
            per_window,
            times: HashMap::new(),
        }
    }

    /// `Err(wait)` if `source` has used its attempts.
    fn check(&mut self, source: K, now: Instant) -> Result<(), Duration> {
        let Some(times) = self.times.get_mut(&source) else {
            return Ok(());
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= PAIR_ATTEMPT_WINDOW)
        {
            times.pop_front();
        }
        match times.front() {
            Some(oldest) if times.len() >= self.per_window => {
                Err(PAIR_ATTEMPT_WINDOW - now.duration_since(*oldest))
            }
            _ => Ok(()),
        }
    }

    fn record(&mut self, source: K, now: Instant) {
        if !self.times.contains_key(&source) && self.times.len() >= PAIR_ATTEMPT_SOURCES {
            self.times.retain(|_, t| {
                t.back()
                    .is_some_and(|last| now.duration_since(*last) < PAIR_ATTEMPT_WINDOW)
            });
            if self.times.len() >= PAIR_ATTEMPT_SOURCES {
                let stalest = self
                    .times
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(k, _)| *k);
                if let Some(k) = stalest {
                    self.times.remove(&k);
                }
            }
        }
        let times = self.times.entry(source).or_default();
        times.push_back(now);
        while times.len() > self.per_window {
            times.pop_front();
        }
    }
}

struct Record {
    addr: IpAddr,
    key: PublicKey,
    at: SystemTime,
    when: Instant,
    why: String,
    count: u32,
}

/// The zombie's account of pairing attempts.
pub struct PairAttempts {
    by_address: Sources<IpAddr>,
    by_key: Sources<PublicKey>,
    recent: VecDeque<Record>,
    refusals_log: LogLimiter,
}

impl Default for PairAttempts {
    fn default() -> Self {
        PairAttempts {
            by_address: Sources::new(PAIR_ATTEMPTS_PER_ADDRESS),
            by_key: Sources::new(PAIR_ATTEMPTS_PER_KEY),
            recent: VecDeque::new(),
            refusals_log: LogLimiter::new(REFUSAL_LOG_INTERVAL),
        }
    }
}

impl PairAttempts {
    /// Counts an attempt by `key` from `addr` at `now`, or refuses it (the
    /// refusal is recorded for the user, and not counted).
    pub fn admit(&mut self, addr: IpAddr, key: &PublicKey, now: Instant) -> Result<(), Limited> {
        let limited = match (
            self.by_address.check(addr, now),
            self.by_key.check(*key, now),
        ) {
            (Err(wait), _) => Some(Limited {
                by: "address",
                retry_in: wait,
            }),
            (_, Err(wait)) => Some(Limited {
                by: "key",
                retry_in: wait,
            }),
            (Ok(()), Ok(())) => None,
        };
        if let Some(limited) = limited {
            self.note_failure(
                addr,
                key,
                &format!("refused: too many attempts from this {}", limited.by),
                now,
            );
            return Err(limited);
        }
        self.by_address.record(addr, now);
        self.by_key.record(*key, now);
        Ok(())
    }

    /// Whether a refused attempt may be logged now (see [`LogLimiter`]).
    pub fn log_refusal(&mut self, now: Instant) -> Option<u64> {
        self.refusals_log.allow(now)
    }

    /// Records an attempt that failed (`why`: wrong code, no code …).
    pub fn note_failure(&mut self, addr: IpAddr, key: &PublicKey, why: &str, now: Instant) {
        if let Some(last) = self
            .recent
            .iter_mut()
            .find(|r| r.addr == addr)
            .filter(|r| r.why == why)
        {
            last.count += 1;
            last.key = *key;
            last.at = SystemTime::now();
            last.when = now;
            return;
        }
        self.recent.push_front(Record {
            addr,
            key: *key,
            at: SystemTime::now(),
            when: now,
            why: why.to_string(),
            count: 1,
        });
        self.recent.truncate(PAIR_ATTEMPTS_SHOWN);
    }

    /// The recorded failures, the newest first.
    pub fn recent(&self, now: Instant) -> Vec<PairAttemptInfo> {
        let mut shown: Vec<&Record> = self.recent.iter().collect();
        shown.sort_by_key(|r| std::cmp::Reverse(r.when));
        shown
            .into_iter()
            .map(|r| PairAttemptInfo {
                addr: r.addr.to_string(),
                fingerprint: r.key.fingerprint().0,
                at_unix: r
                    .at
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                age_s: now.duration_since(r.when).as_secs(),
                why: r.why.clone(),
                count: r.count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_slice(&[n; 32]).unwrap()
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_is_slowed_to_its_limit_whatever_keys_it_uses() {
        let mut a = PairAttempts::default();
        let now = Instant::now();
        for n in 0..PAIR_ATTEMPTS_PER_ADDRESS {
            a.admit(ip(1), &key(n as u8), now)
                .expect("within the limit");
        }
        let limited = a.admit(ip(1), &key(99), now).unwrap_err();
        assert_eq!(limited.by, "address");
        assert_eq!(limited.retry_in, PAIR_ATTEMPT_WINDOW);
        // Another address with another key is not affected.
        a.admit(ip(2), &key(100), now).expect("another peer");
        // Refused attempts do not count: a minute after the first ones,
        // the address may try again.
        let later = now + PAIR_ATTEMPT_WINDOW;
        a.admit(ip(1), &key(101), later)
            .expect("the window has passed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_slowed_to_its_limit_whatever_addresses_it_uses() {
        let mut a = PairAttempts::default();
        let now = Instant::now();
        for n in 0..PAIR_ATTEMPTS_PER_KEY {
            a.admit(ip(n as u8), &key(7), now).unwrap();
        }
        assert_eq!(a.admit(ip(200), &key(7), now).unwrap_err().by, "key");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_listed_newest_first_with_repeats_counted() {
        let mut a = PairAttempts::default();
        let start = Instant::now();
        a.note_failure(ip(1), &key(1), "wrong code", start);
        a.note_failure(ip(1), &key(2), "wrong code", start + Duration::from_secs(1));
        a.note_failure(
            ip(2),
            &key(3),
            "no code is active",
            start + Duration::from_secs(2),
        );
        let shown = a.recent(start + Duration::from_secs(5));
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].addr, "10.0.0.2");
        assert_eq!(shown[0].age_s, 3);
        assert_eq!(shown[1].why, "wrong code");
        assert_eq!(shown[1].count, 2);
        assert_eq!(shown[1].fingerprint, key(2).fingerprint().0);
        assert_eq!(shown[1].age_s, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_stays_bounded_under_many_sources() {
        let mut a = PairAttempts::default();
        let now = Instant::now();
        for n in 0..5000u32 {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(n as u128));
            let k = PublicKey::from_slice(&[&n.to_le_bytes()[..], &[0; 28]].concat()).unwrap();
            let _ = a.admit(addr, &k, now);
            a.note_failure(addr, &k, "wrong code", now);
        }
        assert!(a.by_address.times.len() <= PAIR_ATTEMPT_SOURCES);
        assert!(a.by_key.times.len() <= PAIR_ATTEMPT_SOURCES);
        assert!(a.recent.len() <= PAIR_ATTEMPTS_SHOWN);
    }
}
