//! Hotkeys (`Ctrl+Alt+Right`) and screen edges (`right`) as the master's
//! settings and `zos drive --edge` name them.

use std::fmt;
use std::str::FromStr;

use super::keymap::state;

/// `Mod4`, usually Super (the Windows key).
const MOD4: u16 = 64;

/// Named keys a hotkey may use besides single characters.
const NAMED_KEYS: &[(&str, u32)] = &[
    ("Left", 0xff51),
    ("Up", 0xff52),
    ("Right", 0xff53),
    ("Down", 0xff54),
    ("Page_Up", 0xff55),
    ("Page_Down", 0xff56),
    ("Home", 0xff50),
    ("End", 0xff57),
    ("Insert", 0xff63),
    ("Delete", 0xffff),
    ("Escape", 0xff1b),
    ("Tab", 0xff09),
    ("Return", 0xff0d),
    ("BackSpace", 0xff08),
    ("space", 0x20),
    ("Pause", 0xff13),
    ("Scroll_Lock", 0xff14),
];

/// The first function key's keysym (`F1`; `F24` is 23 further).
const F1: u32 = 0xffbe;

/// A key with modifiers that switches where input goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hotkey {
    /// The modifier bits that must be held (Shift 1, Control 4, Mod1 8, Mod4 64).
    pub modifiers: u16,
    /// The key's unshifted keysym.
    pub keysym: u32,
}

impl Hotkey {
    /// Whether a key event with `keysym` and modifier `state` is this hotkey
    /// (Caps Lock, Num Lock and other bits are ignored).
    pub fn matches(&self, keysym: u32, state_bits: u16) -> bool {
        let relevant = state::SHIFT | state::CONTROL | state::MOD1 | MOD4;
        keysym == self.keysym && state_bits & relevant == self.modifiers
    }
}

impl FromStr for Hotkey {
    type Err = String;

    fn from_str(text: &str) -> Result<Hotkey, String> {
        let mut parts: Vec<&str> = text.split('+').map(str::trim).collect();
        let key = parts
            .pop()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("hotkey {text:?}: no key (write it like Ctrl+Alt+Right)"))?;
        let mut modifiers = 0;
        for m in parts {
            modifiers |= match m.to_ascii_lowercase().as_str() {
                "ctrl" | "control" => state::CONTROL,
                "alt" | "mod1" => state::MOD1,
                "shift" => state::SHIFT,
                "super" | "win" | "mod4" => MOD4,
                _ => {
                    return Err(format!(
                        "hotkey {text:?}: unknown modifier {m:?} (Ctrl, Alt, Shift, Super)"
                    ));
                }
            };
        }
        if modifiers == 0 {
            return Err(format!(
                "hotkey {text:?}: needs at least one modifier, or typing that key would switch"
            ));
        }
        let keysym =
            key_keysym(key).ok_or_else(|| format!("hotkey {text:?}: unknown key {key:?}"))?;
        Ok(Hotkey { modifiers, keysym })
    }
}

impl fmt::Display for Hotkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, name) in [
            (state::CONTROL, "Ctrl"),
            (state::MOD1, "Alt"),
            (state::SHIFT, "Shift"),
            (MOD4, "Super"),
        ] {
            if self.modifiers & bit != 0 {
                write!(f, "{name}+")?;
            }
        }
        match keysym_name(self.keysym) {
            Some(name) => f.write_str(&name),
            None => write!(f, "{:#x}", self.keysym),
        }
    }
}

fn key_keysym(key: &str) -> Option<u32> {
    if let Some(&(_, k)) = NAMED_KEYS.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
        return Some(k);
    }
    if let Some(n) = key
        .strip_prefix(['F', 'f'])
        .and_then(|n| n.parse::<u32>().ok())
        && (1..=24).contains(&n)
    {
        return Some(F1 + n - 1);
    }
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_graphic() => Some(u32::from(c.to_ascii_lowercase())),
        _ => None,
    }
}

fn keysym_name(keysym: u32) -> Option<String> {
    if let Some((name, _)) = NAMED_KEYS.iter().find(|(_, k)| *k == keysym) {
        return Some((*name).to_string());
    }
    if (F1..F1 + 24).contains(&keysym) {
        return Some(format!("F{}", keysym - F1 + 1));
    }
    char::from_u32(keysym)
        .filter(char::is_ascii_graphic)
        .map(|c| c.to_ascii_uppercase().to_string())
}

/// A side of the master's screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// x = 0.
    Left,
    /// The last column.
    Right,
    /// y = 0.
    Top,
    /// The last row.
    Bottom,
}

impl Edge {
    /// The side across from this one (where input comes back).
    pub fn opposite(self) -> Edge {
        match self {
            Edge::Left => Edge::Right,
            Edge::Right => Edge::Left,
            Edge::Top => Edge::Bottom,
            Edge::Bottom => Edge::Top,
        }
    }

    /// Whether (x, y) lies on this edge of a `size` screen.
    pub fn touches(self, x: i32, y: i32, size: (u16, u16)) -> bool {
        match self {
            Edge::Left => x <= 0,
            Edge::Right => x >= i32::from(size.0) - 1,
            Edge::Top => y <= 0,
            Edge::Bottom => y >= i32::from(size.1) - 1,
        }
    }

    /// Where to put the pointer, one pixel inside this edge, keeping the
    /// other coordinate.
    pub fn inside(self, x: i32, y: i32, size: (u16, u16)) -> (i16, i16) {
        let (w, h) = (i32::from(size.0), i32::from(size.1));
        let (x, y) = match self {
            Edge::Left => (1, y),
            Edge::Right => (w - 2, y),
            Edge::Top => (x, 1),
            Edge::Bottom => (x, h - 2),
        };
        (x.clamp(0, w - 1) as i16, y.clamp(0, h - 1) as i16)
    }
}

impl FromStr for Edge {
    type Err = String;

    fn from_str(text: &str) -> Result<Edge, String> {
        match text.to_ascii_lowercase().as_str() {
            "left" => Ok(Edge::Left),
            "right" => Ok(Edge::Right),
            "top" => Ok(Edge::Top),
            "bottom" => Ok(Edge::Bottom),
            _ => Err(format!("edge {text:?}: one of left, right, top, bottom")),
        }
    }
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Edge::Left => "left",
            Edge::Right => "right",
            Edge::Top => "top",
            Edge::Bottom => "bottom",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotkeys_parse_print_and_match() {
        let h: Hotkey = "Ctrl+Alt+Right".parse().unwrap();
        assert_eq!(
            h,
            Hotkey {
                modifiers: 4 | 8,
                keysym: 0xff53
            }
        );
        assert_eq!(h.to_string(), "Ctrl+Alt+Right");
        assert!(h.matches(0xff53, 4 | 8 | 2 | 16), "locks are ignored");
        assert!(!h.matches(0xff53, 4));
        assert!(!h.matches(0xff53, 4 | 8 | 1));
        let f: Hotkey = "super+F12".parse().unwrap();
        assert_eq!(f.to_string(), "Super+F12");
        let k: Hotkey = "control+shift+k".parse().unwrap();
        assert_eq!((k.keysym, k.to_string().as_str()), (0x6b, "Ctrl+Shift+K"));
        for bad in ["Right", "Ctrl+", "Hyper+Right", "Ctrl+Nothing", "Ctrl+F25"] {
            assert!(bad.parse::<Hotkey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn edges_parse_and_place_the_pointer() {
        let e: Edge = "Right".parse().unwrap();
        assert_eq!(e, Edge::Right);
        assert_eq!(e.opposite(), Edge::Left);
        let size = (1280, 800);
        assert!(e.touches(1279, 5, size) && !e.touches(1278, 5, size));
        assert!(Edge::Left.touches(0, 5, size));
        assert_eq!(Edge::Left.inside(1279, 300, size), (1, 300));
        assert_eq!(Edge::Right.inside(0, 300, size), (1278, 300));
        assert_eq!(Edge::Bottom.inside(5, 0, size), (5, 798));
        assert!("middle".parse::<Edge>().is_err());
    }
}
