//! Shared apps that survive the master daemon.
//!
//! Each virtually shared app runs with its Xvnc under a **supervisor**, a
//! small process of ours (`zos supervise-app`, a re-exec of the `zos`
//! binary) that the daemon starts but that is not tied to it: it leaves the
//! daemon's session, owns the display and the app, and serves a 0600 socket
//! in the runtime dir. The daemon keeps, per app, the [`zos_display::Fanout`]
//! that serves its viewers and a watch on the supervisor's socket.
//!
//! What survives what:
//!
//! - **The daemon dies** (`kill -9`, a crash, an upgrade by `zos stop
//!   --keep-apps`): every shared app, its display and its supervisor run on;
//!   views end with the daemon. The next daemon adopts them at start (same
//!   task ids, same pids) and serves views again.
//! - **The daemon stops** (`zos stop`, SIGTERM, SIGINT): it asks every
//!   supervisor to end its app, and waits for the displays to go.
//! - **A supervisor dies** (killed): its Xvnc dies with it
//!   (`PR_SET_PDEATHSIG`), and the app loses its display and ends. Its files
//!   are removed by the daemon at its next start.
//! - **Migrants** are not supervised: their pods end when the daemon stops,
//!   and a daemon killed with SIGKILL leaves them without their terminal
//!   (see [`crate::migrants`]).
//!
//! | module | concept |
//! |---|---|
//! | `record` | the supervisor's files (`apps/ID.sock`, `apps/ID.json`), its spec, [`AppRecord`], the socket's requests and events |
//! | `supervisor` | the supervisor process: display, windows, app, socket; ends with the app |
//! | `link` | the daemon's side: start a supervisor, `info`, `watch`, `stop` |
//! | `adopt` | at start: adopt live supervisors, remove what dead ones left |

mod adopt;
mod link;
mod record;
mod supervisor;

pub use adopt::{Found, scan};
pub use link::{SUPERVISE_COMMAND, Supervised, Watch, info, start, stop, watch};
pub use record::{AppRecord, SupervisorEvent, SupervisorRequest, SupervisorSpec};
pub use supervisor::main as supervise_main;
