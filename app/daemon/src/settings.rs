//! A zombie's settings file, `<home>/zombie.toml` (see
//! `resources/zombie.toml` for every key with its default). A missing file
//! means the defaults; an unreadable or invalid one is an error naming it.

use std::path::Path;

use serde::Deserialize;

use crate::error::{DaemonError, Result};

/// What `zombie.toml` may say.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZombieSettings {
    /// Accept every domination by a trusted master without asking the
    /// user (for unattended hosts).
    #[serde(default)]
    pub auto_accept: bool,
    /// Open a viewer window for each of the dominating master's shared
    /// apps by itself (when the machine has a display); otherwise only when
    /// its user asks.
    #[serde(default)]
    pub viewers: bool,
    /// Seconds the migrants of a master that went away (its lease ended)
    /// are kept here, stopped, for it to come back; then they are killed.
    #[serde(default = "default_grace")]
    pub migrant_grace: u64,
    /// Show the status window (with Release) while a master dominates.
    #[serde(default = "yes")]
    pub status_window: bool,
    /// Open a ZOS session (Xephyr) on this machine's display for a master
    /// dominating at `complete`.
    #[serde(default = "yes")]
    pub zos_session: bool,
    /// Keep the ZOS session a window instead of full screen.
    #[serde(default)]
    pub windowed: bool,
    /// The size of that window, `WIDTHxHEIGHT`.
    #[serde(default = "default_window_size")]
    pub window_size: String,
    /// Open the ZOS session at `partial` domination too (it never runs
    /// migrants; viewers open in it).
    #[serde(default)]
    pub session_at_partial: bool,
    /// Let the dominating master's keyboard and mouse drive the ZOS
    /// session (the tray can change it at any time).
    #[serde(default = "yes")]
    pub allow_input: bool,
}

fn default_window_size() -> String {
    "1024x768".into()
}

/// Parses `WIDTHxHEIGHT` (each 64 to 16384).
pub fn parse_size(text: &str) -> std::result::Result<(u16, u16), String> {
    let bad = || format!("window size {text:?}: write it as WIDTHxHEIGHT, e.g. 1024x768");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let (w, h): (u16, u16) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(64..=16384).contains(&w) || !(64..=16384).contains(&h) {
        return Err(format!(
            "window size {text:?}: each side between 64 and 16384"
        ));
    }
    Ok((w, h))
}

fn yes() -> bool {
    true
}

fn default_grace() -> u64 {
    crate::migration::DEFAULT_GRACE.as_secs()
}

impl Default for ZombieSettings {
    fn default() -> Self {
        ZombieSettings {
            auto_accept: false,
            viewers: false,
            migrant_grace: default_grace(),
            status_window: true,
            zos_session: true,
            windowed: false,
            window_size: default_window_size(),
            session_at_partial: false,
            allow_input: true,
        }
    }
}

impl ZombieSettings {
    /// Reads `path`; the defaults if it does not exist.
    pub fn load(path: &Path) -> Result<ZombieSettings> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .map_err(|e| DaemonError::User(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ZombieSettings::default()),
            Err(e) => Err(DaemonError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Parses the text of a settings file.
    pub fn parse(text: &str) -> std::result::Result<ZombieSettings, String> {
        let settings: ZombieSettings = toml::from_str(text).map_err(|e| e.to_string())?;
        parse_size(&settings.window_size)?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_to_the_defaults() {
        let text = include_str!("../../../resources/zombie.toml");
        assert_eq!(ZombieSettings::parse(text), Ok(ZombieSettings::default()));
    }

    #[test]
    fn keys_are_read_and_typos_refused() {
        let s = ZombieSettings::parse(
            "auto_accept = true\nviewers = true\nstatus_window = false\nmigrant_grace = 30\n",
        )
        .unwrap();
        assert!(s.auto_accept && s.viewers && !s.status_window);
        assert_eq!(s.migrant_grace, 30);
        assert_eq!(ZombieSettings::default().migrant_grace, 600);
        assert!(ZombieSettings::parse("migrant_grace = \"10m\"").is_err());
        let err = ZombieSettings::parse("auto_acept = true").unwrap_err();
        assert!(err.contains("auto_acept"), "{err}");
        let s = ZombieSettings::parse(
            "allow_input = false\nwindowed = true\nwindow_size = \"800x600\"\n",
        )
        .unwrap();
        assert!(!s.allow_input && s.windowed && s.zos_session);
        assert_eq!(parse_size(&s.window_size), Ok((800, 600)));
        let err = ZombieSettings::parse("window_size = \"big\"").unwrap_err();
        assert!(err.contains("WIDTHxHEIGHT"), "{err}");
        assert!(parse_size("10x10").is_err());
    }
}
