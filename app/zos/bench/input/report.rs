//! What `zos bench input` prints: each system's figures, the comparison,
//! issue 12's goals met or not, and the machine's load.

use std::time::Duration;

use super::probe::{Flow, percentile};

/// What one system gave.
pub struct Figures {
    /// Key latencies, master's display → far window.
    pub keys: Vec<Duration>,
    /// Key latencies of XTest on the far display itself.
    pub floor: Vec<Duration>,
    /// Pointer motion at the asked rate.
    pub paced: Flow,
    /// Pointer motion as fast as it can be written.
    pub burst: Flow,
}

impl Figures {
    /// Each key latency less the floor's median: what the crossing adds.
    fn added(&self) -> Vec<Duration> {
        let floor = percentile(&self.floor, 0.5);
        self.keys.iter().map(|k| k.saturating_sub(floor)).collect()
    }

    /// The median of [`Figures::added`].
    fn added_median(&self) -> Duration {
        percentile(&self.added(), 0.5)
    }
}

/// Largest change of the paced flow's median latency from its first tenth
/// to its last that still counts as "no drift".
const DRIFT_TOLERANCE: Duration = Duration::from_millis(1);

/// The motion rate to sustain: a 1000 Hz mouse.
const GOAL_RATE: f64 = 1000.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One system's figures.
pub fn print(name: &str, f: &Figures) {
    let added = f.added();
    println!("{name}:");
    println!(
        "  key, master's display -> far window: median {:.3} ms, p99 {:.3} ms (n={})",
        ms(percentile(&f.keys, 0.5)),
        ms(percentile(&f.keys, 0.99)),
        f.keys.len()
    );
    println!(
        "  floor, XTest on the far display itself: median {:.3} ms, p99 {:.3} ms; added by the crossing (each key less the floor's median): median {:.3} ms, p99 {:.3} ms",
        ms(percentile(&f.floor, 0.5)),
        ms(percentile(&f.floor, 0.99)),
        ms(percentile(&added, 0.5)),
        ms(percentile(&added, 0.99))
    );
    for (what, flow) in [("paced", &f.paced), ("burst", &f.burst)] {
        println!(
            "  motion {what}: sent {} at {:.0}/s, received {} at {:.0}/s, complete and in order: {}; lag after the last event {:.3} ms",
            flow.sent,
            flow.sent_rate,
            flow.received,
            flow.received_rate,
            if flow.in_order { "yes" } else { "NO" },
            ms(flow.tail),
        );
        if flow.in_order {
            println!(
                "    latency median of the first tenth {:.3} ms, of the last tenth {:.3} ms (drift {:+.3} ms), p99 {:.3} ms",
                ms(flow.first_tenth),
                ms(flow.last_tenth),
                ms(flow.last_tenth) - ms(flow.first_tenth),
                ms(flow.p99)
            );
        }
    }
}

/// ZOS against Barrier, median key latency.
pub fn compare(ours: &Figures, barrier: &Figures) {
    let (a, b) = (percentile(&ours.keys, 0.5), percentile(&barrier.keys, 0.5));
    println!(
        "median key latency: ZOS {:.3} ms, Barrier {:.3} ms (ZOS {:.1}x {})",
        ms(a),
        ms(b),
        if a < b { ms(b) / ms(a) } else { ms(a) / ms(b) },
        if a < b { "faster" } else { "slower" }
    );
}

/// Issue 12's goals, met or not: under 2 ms added median and below
/// Barrier's; 1000 motions a second complete, in order, without drift.
pub fn goals(ours: &Figures, barrier: Option<&Figures>) {
    let yes = |ok: bool| if ok { "met" } else { "NOT met" };
    let added = ours.added_median();
    println!(
        "goal: added median latency under 2 ms: {} ({:.3} ms)",
        yes(added < Duration::from_millis(2)),
        ms(added)
    );
    match barrier {
        Some(b) => println!(
            "goal: added median latency below Barrier's: {} (ZOS {:.3} ms, Barrier {:.3} ms)",
            yes(added < b.added_median()),
            ms(added),
            ms(b.added_median())
        ),
        None => println!(
            "goal: added median latency below Barrier's: not measured (Barrier did not run)"
        ),
    }
    let paced = &ours.paced;
    let drift = paced.last_tenth.abs_diff(paced.first_tenth);
    println!(
        "goal: {GOAL_RATE:.0} motions/s sustained, none lost or reordered, drift under {} ms: {} (received {} of {} at {:.0}/s, in order: {}, drift {:.3} ms)",
        ms(DRIFT_TOLERANCE),
        // 1 % for the clock: the arrival span is measured between events.
        yes(paced.in_order && paced.received_rate >= GOAL_RATE * 0.99 && drift < DRIFT_TOLERANCE),
        paced.received,
        paced.sent,
        paced.received_rate,
        if paced.in_order { "yes" } else { "no" },
        ms(drift)
    );
}

/// `/proc/loadavg`'s three averages (the machine may be shared).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
