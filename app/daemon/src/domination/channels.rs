//! The channels a dominated zombie opens on its session: the file service
//! (with the export policy of the name and key it was paired under, read
//! afresh from `exports.toml`), views of shared apps, the terminals of
//! migrants running there (`pty/<task>`), migrants it sends home when
//! recalled (`home/<task>`), snapshots of migrants (`image/<task>`, handed
//! to the mover) and the ZOS session's `input` channel (handed to the
//! drive controller). Any other label is reset.

use std::sync::Arc;

use zos_netproto::mux::Channel;
use zos_netproto::wire;

use super::{Dominions, PairedZombie};
use crate::peer::ChannelPolicy;
use crate::views;

impl Dominions {
    /// The policy that serves the channels `zombie` opens.
    pub fn channel_policy(self: &Arc<Self>, zombie: PairedZombie) -> ChannelPolicy {
        let me = self.clone();
        ChannelPolicy::Serve(Box::new(move |channel| me.serve_channel(channel, &zombie)))
    }

    /// Serves one channel the zombie opened.
    fn serve_channel(&self, mut channel: Channel, zombie: &PairedZombie) {
        let name = zombie.name.clone();
        if channel.label() == wire::FILESHARE_LABEL {
            let policy = match zos_fileshare::ExportStore::load(&self.exports) {
                Ok(store) => store.policy_for(&zombie.name, &zombie.key.fingerprint()),
                Err(e) => {
                    tracing::warn!("cannot read the export list: {e}");
                    channel.reset(&format!("the master cannot read its export list: {e}"));
                    return;
                }
            };
            tokio::spawn(async move {
                tracing::info!("serving {} export(s) to {name}", policy.names().len());
                match zos_fileshare::serve(channel, policy).await {
                    Ok(()) => tracing::info!("{name} unmounted the shared folders"),
                    Err(e) => tracing::info!("file service for {name} ended: {e}"),
                }
            });
            return;
        }
        if let Some(task) = zos_netproto::migration::parse_home_label(channel.label()) {
            self.home_channels.deliver(task, &zombie.key, channel);
            return;
        }
        if let Some(task) = zos_netproto::migration::parse_image_label(channel.label()) {
            match self.images.get() {
                Some(sink) => sink(task, zombie.key, name, channel),
                None => channel.reset("this master keeps no images"),
            }
            return;
        }
        if crate::migrants::parse_pty_label(channel.label()).is_some() {
            self.tasks.migrants().serve_relay(channel, zombie);
            return;
        }
        if channel.label() == wire::INPUT_LABEL
            && let Some(drive) = self.input.get()
        {
            drive.attach(name, zombie.key, channel);
            return;
        }
        match wire::parse_view_label(channel.label()) {
            Some(id) => match self.tasks.fanout(id) {
                Some(fanout) => {
                    tokio::spawn(async move {
                        tracing::info!("{name} views task {id}");
                        views::serve_channel(channel, fanout).await;
                        tracing::info!("{name} stopped viewing task {id}");
                    });
                }
                None => channel.reset(&format!("no shared task {id} on this master")),
            },
            None => {
                let label = channel.label().to_string();
                tracing::warn!("{name} opened an unknown channel {label:?}");
                channel.reset(&format!("unknown channel {label:?}"));
            }
        }
    }
}
