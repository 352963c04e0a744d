//! A master `m` sharing one app as task 1 and a zombie `z1` it has paired
//! with at `complete` and dominates (auto-accepted): the setting of the view
//! tests.

use super::zos::{self, text};
use super::{Lan, Proc};

/// The LAN and both daemons, ended when dropped.
pub struct Dominated {
    /// Hosts `m` and `z1`.
    pub lan: Lan,
    /// The master daemon.
    pub master: Proc,
    /// The zombie daemon.
    pub zombie: zos::Zombie,
    /// What `zos dominate z1` printed.
    pub dominate_output: String,
}

/// Starts both daemons, pairs them, runs `argv` with `zos run --shared` and
/// dominates `z1`.
pub fn dominated_lan(argv: &[&str]) -> Dominated {
    let lan = Lan::new(&["m", "z1"]);
    let (m, z) = (lan.host("m"), lan.host("z1"));
    let master = zos::start_master(m);
    let zombie = zos::start_zombie(z, "z1", &["--auto-accept"]);
    zos::pair(m, z, "z1", "complete");
    let mut args = vec!["run", "--shared", "--"];
    args.extend_from_slice(argv);
    let out = m.run(&args);
    assert!(out.status.success(), "zos run: {}", text(&out));
    let out = m.run(&["dominate", "z1"]);
    assert!(out.status.success(), "zos dominate: {}", text(&out));
    Dominated {
        lan,
        master,
        zombie,
        dominate_output: text(&out),
    }
}
