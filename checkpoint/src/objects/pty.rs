//! The pod's terminal: descriptors on its pty slave (index 0 of the pod's own devpts).
//!
//! The pty pair itself (master, termios, window size, controlling terminal and foreground
//! process group) is the tree's business (`tree::pty`), since the master lives outside the
//! pod; each open description of the slave is an object of this kind.

use super::{Claim, FdFacts, Kind, RestoreCx};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;

/// Path of the pod's terminal inside the pod.
pub(crate) const SLAVE: &str = "/dev/pts/0";

/// One open description of the pod's pty slave.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PtySlave {
    flags: u32,
}

impl Kind for PtySlave {
    const NAME: &'static str = "pty";

    fn inspect(f: &FdFacts<'_>) -> Claim<Self> {
        if f.file_type() != libc::S_IFCHR {
            return Claim::NotMine;
        }
        let (major, minor) = (libc::major(f.rdev), libc::minor(f.rdev));
        match major {
            136..=143 if Some(f.dev) == f.pod.devpts && major == 136 && minor == 0 => {
                Claim::Mine(PtySlave { flags: f.flags })
            }
            136..=143 => Claim::Refused(format!(
                "terminal {} is not the pod's own (only its pty 0 is carried)",
                f.link
            )),
            5 if minor == 2 => Claim::Refused(
                "a pty master inside the pod (only the pod's pty 0 is carried)".into(),
            ),
            5 if minor == 0 => Claim::Refused("/dev/tty opened by name is not supported".into()),
            4 | 5 => Claim::Refused(format!("terminal {} is not the pod's own", f.link)),
            _ => Claim::NotMine,
        }
    }

    fn create(&self, cx: &mut RestoreCx<'_>) -> Result<OwnedFd> {
        cx.open_in_pod(SLAVE, self.flags as i32 | libc::O_NOCTTY, 0)
    }
}
