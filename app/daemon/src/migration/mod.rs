//! Moving migrants: the master's mover and the zombie's side, on the migration protocol of
//! [`zos_netproto::migration`] (read its module docs first: channels, messages, the commit
//! point, what happens on every failure).
//!
//! | module | concept |
//! |---|---|
//! | `master` | [`Mover`]: `zos migrate`, `zos checkpoint --task`, reconciling after a domination |
//! | `homing` | `zos home`, `--from-image`, the migrants of a zombie being released |
//! | `zombie` | [`ZombieMoves`]: the `migrants` channel, copies held in doubt, the grace period |
//! | `arrive` | a task arriving on the zombie: admission, files, image, restore in a masked pod |
//! | `depart` | a recalled task leaving the zombie |
//! | `sender` | sending a task up to its image's end (offer, files, image, late files) |
//! | `receiver` | receiving a task up to its image's end |
//! | `engine` | the checkpoint engine on threads of their own: dump and compress, restore, holds |
//! | `codec` | none / lz4 / zstd per chunk; the `auto` rule |
//! | `files` | executables and libraries by SHA-256; the store of travelled files |
//! | `images` | the master's last image of each migrant (`HOME/images/`) |
//! | `link` | a move's channel with deadlines; the `migrants` client |
//! | `progress` | phases, bytes, rate, time left; phase times |
//! | `pushes` | the zombie's periodic snapshots of its migrants, sent home (`image/<task>`) |
//! | `kept` | the master's side of those: a delta merged into the task's last image |
//! | `home_channels` | the `home/<task>` channels a master waits for |
//!
//! Who decides: the master (its registry is the truth; see `migrants`). A zombie resumes a
//! copy only on the master's `Commit` or `Resume` naming that copy's epoch.

mod arrive;
mod codec;
mod depart;
mod engine;
mod files;
mod home_channels;
mod homing;
mod images;
mod kept;
mod link;
mod master;
mod progress;
mod pushes;
mod receiver;
mod sender;
mod zombie;

pub use codec::{Decoder, Encoder};
pub use home_channels::HomeChannels;
pub use homing::{LOST_BEFORE_IMAGE, human_age};
pub use master::{MoveHow, Mover};
pub use progress::{PROGRESS_EVERY, Phase, Progress, Reporter};
pub use zombie::{Authority, DEFAULT_GRACE, MasterLink, ZombieMoves};

use zos_netproto::PublicKey;
use zos_netproto::control::Reply;

use crate::control_server::Replies;
use crate::error::Result;
use crate::migrants::{Migrants, Placement};

/// The dominion of the zombie with `key` ended: each migrant running there is `lost` (until
/// that zombie comes back with it, or `zos home --from-image`).
pub fn zombie_gone(migrants: &Migrants, key: &PublicKey) {
    for info in migrants.infos() {
        if info.zombie_key.as_ref() == Some(key) && matches!(info.placement, Placement::Away { .. })
        {
            tracing::warn!("task {} is lost: its zombie is gone", info.id);
            let _ = migrants.mark_lost(info.id);
        }
    }
}

/// Runs a move (`job`, reporting to `progress`) to its end on a task of its own — a client
/// that hangs up does not cut a move short — and meanwhile sends `out` a progress reply at
/// least every [`PROGRESS_EVERY`]. The move's final reply, or its error as one.
pub async fn run_with_progress(
    out: &mut Replies,
    progress: Progress,
    job: impl Future<Output = Result<Reply>> + Send + 'static,
) -> Reply {
    let mut job = tokio::spawn(job);
    let mut reporter = Reporter::new(progress);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut listening = true;
    loop {
        tokio::select! {
            result = &mut job => {
                return match result {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(e)) => Reply::Error { message: e.to_string() },
                    Err(_) => Reply::Error { message: "the move failed unexpectedly".into() },
                };
            }
            _ = tick.tick(), if listening => {
                if out.send(&reporter.reply()).await.is_err() {
                    listening = false;
                }
            }
        }
    }
}
