//! The zombie's control socket: what its CLI, tray and windows may ask.

use std::sync::Arc;

use zos_netproto::PublicKey;
use zos_netproto::control::{Reply, Request};
use zos_netproto::pairing::PendingCode;

use super::Zombie;
use super::consent::Decision;
use super::pairing::code_info;
use crate::control_server::{Handler, Replies};

impl Handler for Zombie {
    async fn handle(self: Arc<Self>, request: Request, out: &mut Replies) -> Reply {
        match request {
            Request::Status => Reply::Status(self.status()),
            Request::PairCode { level } => {
                if !self.cfg.levels.contains(&level) {
                    return Reply::Error {
                        message: format!("this zombie does not offer level {level} (see --levels)"),
                    };
                }
                let code = PendingCode::issue(level);
                let info = code_info(&code);
                *self.pending.lock() = Some(code);
                tracing::info!(
                    "pairing code issued for level {level}, valid {} s",
                    info.expires_in_s
                );
                Reply::PairCode(info)
            }
            Request::TrustList => Reply::Trust {
                entries: self.trust.lock().entries().to_vec(),
            },
            Request::TrustRevoke { what } => {
                let removed = match self.trust.lock().remove(&what) {
                    Ok(r) => r,
                    Err(e) => {
                        return Reply::Error {
                            message: e.to_string(),
                        };
                    }
                };
                if removed.is_empty() {
                    return Reply::Error {
                        message: format!(
                            "no trusted master matches {what:?} (see `zos trust list`)"
                        ),
                    };
                }
                let keys: Vec<PublicKey> =
                    removed.iter().filter_map(|e| e.public_key().ok()).collect();
                let sessions_ended =
                    self.end_sessions(|s| keys.contains(&s.master), "its key was revoked");
                Reply::Revoked {
                    entries: removed,
                    sessions_ended,
                }
            }
            Request::Shutdown { .. } => {
                self.shutdown.cancel();
                Reply::Done
            }
            Request::Answer { accept, show_apps } => {
                match self.answer(Decision { accept, show_apps }) {
                    Ok(master) => {
                        tracing::info!(
                            "domination by {master} {} by the user",
                            if accept { "accepted" } else { "refused" }
                        );
                        Reply::Done
                    }
                    Err(message) => Reply::Error { message },
                }
            }
            Request::Tasks => Reply::Tasks {
                tasks: self.master_tasks(),
            },
            Request::Release { host, .. } => match self.user_release(&host).await {
                Ok(name) => Reply::Released { name },
                Err(e) => Reply::Error {
                    message: e.to_string(),
                },
            },
            Request::ShowMasterApps => match self.show_master_apps() {
                Ok(_) => Reply::Done,
                Err(e) => Reply::Error {
                    message: e.to_string(),
                },
            },
            Request::View { task } => match self.open_view(task) {
                Ok(channel) => {
                    out.upgrade(Box::new(move |stream| {
                        Box::pin(crate::views::serve_remote(stream, channel))
                    }));
                    Reply::Stream
                }
                Err(e) => Reply::Error {
                    message: e.to_string(),
                },
            },
            Request::AllowInput { allow } => {
                self.allow_input(allow);
                Reply::Done
            }
            Request::Hosts
            | Request::Drive { .. }
            | Request::Pair { .. }
            | Request::Ping { .. }
            | Request::Run { .. }
            | Request::Dominate { .. }
            | Request::RunMigrant { .. }
            | Request::Attach { .. }
            | Request::Resize { .. }
            | Request::Logs { .. }
            | Request::Migrate { .. }
            | Request::Home { .. }
            | Request::CheckpointTask { .. }
            | Request::Snapshot { .. }
            | Request::SnapshotEvery { .. }
            | Request::Snapshots { .. }
            | Request::PruneSnapshots
            | Request::Rollback { .. }
            | Request::Suspend
            | Request::Resume { .. } => Reply::Error {
                message:
                    "this is a zombie daemon; run that command against a master (`zos master`)"
                        .into(),
            },
        }
    }
}
