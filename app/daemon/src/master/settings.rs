//! A master's settings file, `<home>/master.toml` (see
//! `resources/master.toml` for every key with its default). A missing file
//! means the defaults; an unreadable or invalid one is an error naming it.

use std::path::Path;

use serde::Deserialize;
use zos_display::input::Hotkey;

use super::drive::{DEFAULT_NEXT, DEFAULT_PREVIOUS};
use crate::error::{DaemonError, Result};

/// What `master.toml` may say.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSettings {
    /// Driving zombies with this master's keyboard and mouse.
    #[serde(default)]
    pub drive: DriveSettings,
}

/// The `[drive]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriveSettings {
    /// The hotkey that sends input to the next target (master, then each
    /// driveable zombie by name).
    #[serde(default = "default_next")]
    pub next: String,
    /// The hotkey that sends input to the previous target.
    #[serde(default = "default_previous")]
    pub previous: String,
}

fn default_next() -> String {
    DEFAULT_NEXT.into()
}

fn default_previous() -> String {
    DEFAULT_PREVIOUS.into()
}

impl Default for DriveSettings {
    fn default() -> Self {
        DriveSettings {
            next: default_next(),
            previous: default_previous(),
        }
    }
}

impl MasterSettings {
    /// Reads `path`; the defaults if it does not exist.
    pub fn load(path: &Path) -> Result<MasterSettings> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .map_err(|e| DaemonError::User(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(MasterSettings::default()),
            Err(e) => Err(DaemonError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Parses the text of a settings file, hotkeys included.
    pub fn parse(text: &str) -> std::result::Result<MasterSettings, String> {
        let settings: MasterSettings = toml::from_str(text).map_err(|e| e.to_string())?;
        let (next, previous) = settings.hotkeys()?;
        if next == previous {
            return Err(format!(
                "drive.next and drive.previous are the same hotkey ({next})"
            ));
        }
        Ok(settings)
    }

    /// The two hotkeys: (next, previous).
    pub fn hotkeys(&self) -> std::result::Result<(Hotkey, Hotkey), String> {
        let next = self
            .drive
            .next
            .parse()
            .map_err(|e| format!("drive.next: {e}"))?;
        let previous = self
            .drive
            .previous
            .parse()
            .map_err(|e| format!("drive.previous: {e}"))?;
        Ok((next, previous))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_parses_to_the_defaults() {
        let text = include_str!("../../../../resources/master.toml");
        assert_eq!(MasterSettings::parse(text), Ok(MasterSettings::default()));
        let (next, previous) = MasterSettings::default().hotkeys().unwrap();
        assert_eq!(
            (next.to_string(), previous.to_string()),
            (DEFAULT_NEXT.into(), DEFAULT_PREVIOUS.into())
        );
    }

    #[test]
    fn hotkeys_are_checked() {
        let s = MasterSettings::parse("[drive]\nnext = \"Super+F2\"\n").unwrap();
        assert_eq!(s.drive.next, "Super+F2");
        assert_eq!(s.drive.previous, DEFAULT_PREVIOUS);
        let err = MasterSettings::parse("[drive]\nnext = \"Right\"\n").unwrap_err();
        assert!(
            err.contains("drive.next") && err.contains("modifier"),
            "{err}"
        );
        let err = MasterSettings::parse("[drive]\nnext = \"Ctrl+Alt+Left\"\n").unwrap_err();
        assert!(err.contains("same hotkey"), "{err}");
        let err = MasterSettings::parse("[drvie]\n").unwrap_err();
        assert!(err.contains("drvie"), "{err}");
    }
}
