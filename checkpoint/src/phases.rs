//! Where the time of a dump or a restore goes, phase by phase, for the debug log.

use std::time::Instant;

/// Time spent per phase of a dump or a restore, summed by name (for the debug log).
pub(crate) struct Phases {
    last: Instant,
    spent: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    /// Starts timing now.
    pub(crate) fn new() -> Phases {
        Phases {
            last: Instant::now(),
            spent: Vec::new(),
        }
    }

    /// The time since the previous mark goes to `name`.
    pub(crate) fn end(&mut self, name: &'static str) {
        let now = Instant::now();
        let d = now - self.last;
        self.last = now;
        match self.spent.iter_mut().find(|p| p.0 == name) {
            Some(p) => p.1 += d,
            None => self.spent.push((name, d)),
        }
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, d)) in self.spent.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {:.1} ms", d.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}
