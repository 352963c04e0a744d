//! The channels a master opens on this zombie: only the migration's (`migrants` and
//! `migrate/<task>`, see [`crate::migration::ZombieMoves`]), and only from the master that
//! dominates it at level `complete` (as its trust entry allows, checked on every use). Any
//! other channel is reset; past [`MAX_REFUSED_CHANNELS`] of those the session ends.

use std::sync::Arc;

use zos_netproto::mux::Mux;
use zos_netproto::{Level, PublicKey};

use super::Zombie;
use crate::limits::MAX_REFUSED_CHANNELS;
use crate::migration::{Authority, MasterLink};
use crate::peer::ChannelPolicy;

impl Zombie {
    /// The policy for the channels the master with `key` opens on session `mux`.
    pub(super) fn master_channels(self: &Arc<Self>, key: PublicKey, mux: Mux) -> ChannelPolicy {
        let me = self.clone();
        let authority: Authority = {
            let me = Arc::downgrade(self);
            Arc::new(move |key: &PublicKey| match me.upgrade() {
                Some(z) => z.migrant_authority(key),
                None => Err("the zombie is stopping".into()),
            })
        };
        let mut refused = 0usize;
        ChannelPolicy::Serve(Box::new(move |channel| {
            let paired = me.trusted_level(&key).is_some();
            let rest = if paired {
                me.moves.serve_channel(channel, key, authority.clone())
            } else {
                Some(channel)
            };
            let Some(mut channel) = rest else { return };
            tracing::debug!("a master opened channel {:?}; refused", channel.label());
            channel.reset("this zombie accepts no such channel");
            refused += 1;
            if refused > MAX_REFUSED_CHANNELS {
                mux.abort(&format!(
                    "the peer opened {refused} channels this zombie does not accept"
                ));
            }
        }))
    }

    /// Whether the master with `key` may run migrants here now: it dominates this zombie at
    /// level `complete`, and its trust entry still allows `complete`.
    pub(crate) fn migrant_authority(&self, key: &PublicKey) -> Result<MasterLink, String> {
        let trusted = self.trusted_level(key);
        let dominion = self.dominion.lock();
        let Some(d) = dominion.as_ref().filter(|d| d.master == *key) else {
            return Err(format!("{} is not dominated by this master", self.cfg.name));
        };
        if d.level != Level::Complete || trusted != Some(Level::Complete) {
            let level = trusted.map_or("none".to_string(), |l| l.to_string());
            return Err(format!(
                "{} takes migrants only from a master it trusts at level complete (this master's level here: {level})",
                self.cfg.name
            ));
        }
        let mux = d
            .mux
            .clone()
            .ok_or_else(|| "the dominating session carries no channels".to_string())?;
        Ok(MasterLink {
            key: *key,
            name: d.master_name.clone(),
            mux,
        })
    }
}
