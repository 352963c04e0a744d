//! egui keyboard events → X keysyms for the remote app.
//!
//! Text arrives as `Event::Text` and is sent as the keysyms of its characters (pressed and
//! released at once). Keys that make no text (Return, arrows, F-keys, …) and every key typed
//! with Ctrl held (egui sends no text then) are sent from `Event::Key`: pressed on press,
//! released on release, with the keysym of the press, so a key never sticks when a modifier
//! changes in between. Modifiers are pressed and released as `Shift_L`, `Control_L` and
//! `Alt_L` when egui's modifier state changes. Losing the focus releases everything held.
//!
//! egui 0.37 does not report the Super (Windows) key on Linux — neither as a key nor in its
//! modifier state — so `Super_L` cannot be forwarded from here.

use eframe::egui::{Event, Key, Modifiers};

/// `Shift_L`.
pub const XK_SHIFT_L: u32 = 0xffe1;
/// `Control_L`.
pub const XK_CONTROL_L: u32 = 0xffe3;
/// `Alt_L`.
pub const XK_ALT_L: u32 = 0xffe9;

/// One key press (`down`) or release to send.
pub type KeyAction = (u32, bool);

/// The keysym of a key that makes no text.
pub fn special_keysym(key: Key) -> Option<u32> {
    Some(match key {
        Key::Enter => 0xff0d,
        Key::Backspace => 0xff08,
        Key::Tab => 0xff09,
        Key::Escape => 0xff1b,
        Key::ArrowLeft => 0xff51,
        Key::ArrowUp => 0xff52,
        Key::ArrowRight => 0xff53,
        Key::ArrowDown => 0xff54,
        Key::Home => 0xff50,
        Key::End => 0xff57,
        Key::PageUp => 0xff55,
        Key::PageDown => 0xff56,
        Key::Insert => 0xff63,
        Key::Delete => 0xffff,
        _ => return function_key(key).map(|n| 0xffbe + n - 1),
    })
}

/// 1 for F1 … 35 for F35.
fn function_key(key: Key) -> Option<u32> {
    const F: [Key; 35] = [
        Key::F1,
        Key::F2,
        Key::F3,
        Key::F4,
        Key::F5,
        Key::F6,
        Key::F7,
        Key::F8,
        Key::F9,
        Key::F10,
        Key::F11,
        Key::F12,
        Key::F13,
        Key::F14,
        Key::F15,
        Key::F16,
        Key::F17,
        Key::F18,
        Key::F19,
        Key::F20,
        Key::F21,
        Key::F22,
        Key::F23,
        Key::F24,
        Key::F25,
        Key::F26,
        Key::F27,
        Key::F28,
        Key::F29,
        Key::F30,
        Key::F31,
        Key::F32,
        Key::F33,
        Key::F34,
        Key::F35,
    ];
    F.iter().position(|k| *k == key).map(|i| i as u32 + 1)
}

/// The keysym of a text key typed with Ctrl held (uppercase letters with Shift).
pub fn command_keysym(key: Key, shift: bool) -> Option<u32> {
    let name = key.name();
    let c = match key {
        Key::Space => ' ',
        Key::Colon => ':',
        Key::Comma => ',',
        Key::Minus => '-',
        Key::Period => '.',
        Key::Plus => '+',
        Key::Equals => '=',
        Key::Semicolon => ';',
        Key::Backslash => '\\',
        Key::Slash => '/',
        Key::Pipe => '|',
        Key::Questionmark => '?',
        Key::Exclamationmark => '!',
        Key::OpenBracket => '[',
        Key::CloseBracket => ']',
        Key::OpenCurlyBracket => '{',
        Key::CloseCurlyBracket => '}',
        Key::Backtick => '`',
        Key::Quote => '\'',
        _ if name.len() == 1 => {
            let c = name.chars().next()?;
            if shift {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        }
        _ => return None,
    };
    Some(char_keysym(c))
}

/// The keysym of a character: Latin-1 as is, other Unicode as `0x01000000 | code point`.
pub fn char_keysym(c: char) -> u32 {
    let cp = u32::from(c);
    if (0x20..=0x7e).contains(&cp) || (0xa0..=0xff).contains(&cp) {
        cp
    } else {
        0x0100_0000 | cp
    }
}

/// Whether `event` is Ctrl+0 (pressed or released): the viewer's "back to one to one", which
/// never reaches the app.
pub fn is_one_to_one_key(event: &Event) -> bool {
    matches!(event, Event::Key { key: Key::Num0, modifiers, .. }
        if modifiers.ctrl && !modifiers.shift && !modifiers.alt)
}

/// The keyboard state of one view: what the remote side believes is held.
#[derive(Debug, Default)]
pub struct Keyboard {
    modifiers: Modifiers,
    /// Keys held down remotely, with the keysym their press sent.
    held: Vec<(Key, u32)>,
}

impl Keyboard {
    /// Translates one egui event, appending what to send to `out`.
    pub fn on_event(&mut self, event: &Event, out: &mut Vec<KeyAction>) {
        match event {
            Event::ModifiersChanged(m) => self.sync_modifiers(*m, out),
            Event::Key {
                key,
                pressed,
                modifiers,
                ..
            } => {
                self.sync_modifiers(*modifiers, out);
                let keysym = special_keysym(*key).or_else(|| {
                    (modifiers.ctrl || self.is_held(*key))
                        .then(|| command_keysym(*key, modifiers.shift))
                        .flatten()
                });
                if let Some(keysym) = keysym {
                    self.key(*key, keysym, *pressed, out);
                }
            }
            Event::Text(text) if !self.modifiers.ctrl => {
                for c in text.chars().filter(|c| !c.is_control()) {
                    let keysym = char_keysym(c);
                    out.push((keysym, true));
                    out.push((keysym, false));
                }
            }
            // Only with eframe's clipboard shortcuts on: Ctrl is held, so the letter is enough.
            Event::Copy => tap(char_keysym('c'), out),
            Event::Cut => tap(char_keysym('x'), out),
            Event::Paste(_) => tap(char_keysym('v'), out),
            Event::WindowFocused(false) => self.release_all(out),
            _ => {}
        }
    }

    fn is_held(&self, key: Key) -> bool {
        self.held.iter().any(|(k, _)| *k == key)
    }

    fn key(&mut self, key: Key, keysym: u32, pressed: bool, out: &mut Vec<KeyAction>) {
        if pressed {
            // A repeat of a held key sends another press, as a local auto-repeat would.
            if !self.is_held(key) {
                self.held.push((key, keysym));
            }
            let keysym = self
                .held
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(keysym, |(_, s)| *s);
            out.push((keysym, true));
        } else if let Some(i) = self.held.iter().position(|(k, _)| *k == key) {
            let (_, keysym) = self.held.remove(i);
            out.push((keysym, false));
        }
    }

    /// Presses or releases the modifier keys whose state differs from `m`.
    fn sync_modifiers(&mut self, m: Modifiers, out: &mut Vec<KeyAction>) {
        let old = self.modifiers;
        for (was, is, keysym) in [
            (old.shift, m.shift, XK_SHIFT_L),
            (old.ctrl, m.ctrl, XK_CONTROL_L),
            (old.alt, m.alt, XK_ALT_L),
        ] {
            if was != is {
                out.push((keysym, is));
            }
        }
        self.modifiers = m;
    }

    /// Releases every key and modifier held (the window lost the focus, or closes).
    pub fn release_all(&mut self, out: &mut Vec<KeyAction>) {
        for (_, keysym) in self.held.drain(..).rev() {
            out.push((keysym, false));
        }
        self.sync_modifiers(Modifiers::NONE, out);
    }
}

fn tap(keysym: u32, out: &mut Vec<KeyAction>) {
    out.push((keysym, true));
    out.push((keysym, false));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: Key, pressed: bool, modifiers: Modifiers) -> Event {
        Event::Key {
            key,
            physical_key: None,
            pressed,
            repeat: false,
            modifiers,
        }
    }

    fn run(events: &[Event]) -> (Keyboard, Vec<KeyAction>) {
        let mut kb = Keyboard::default();
        let mut out = Vec::new();
        for e in events {
            kb.on_event(e, &mut out);
        }
        (kb, out)
    }

    #[test]
    fn keysyms_of_characters() {
        assert_eq!(char_keysym('a'), 0x61);
        assert_eq!(char_keysym('~'), 0x7e);
        assert_eq!(char_keysym('é'), 0xe9);
        assert_eq!(char_keysym('€'), 0x0100_20ac);
        assert_eq!(special_keysym(Key::F1), Some(0xffbe));
        assert_eq!(special_keysym(Key::F12), Some(0xffc9));
        assert_eq!(special_keysym(Key::A), None);
        assert_eq!(command_keysym(Key::C, false), Some(0x63));
        assert_eq!(command_keysym(Key::C, true), Some(0x43));
        assert_eq!(command_keysym(Key::Minus, false), Some(0x2d));
        assert_eq!(command_keysym(Key::Num4, false), Some(0x34));
    }

    #[test]
    fn shifted_text_is_sent_once_with_shift_held() {
        let shift = Modifiers::SHIFT;
        let (_, out) = run(&[
            Event::ModifiersChanged(shift),
            key(Key::H, true, shift),
            Event::Text("H".into()),
            key(Key::H, false, shift),
            Event::ModifiersChanged(Modifiers::NONE),
        ]);
        assert_eq!(
            out,
            vec![
                (XK_SHIFT_L, true),
                (0x48, true),
                (0x48, false),
                (XK_SHIFT_L, false)
            ]
        );
    }

    #[test]
    fn ctrl_c_reaches_the_app_as_a_key() {
        let ctrl = Modifiers::CTRL;
        let (_, out) = run(&[
            Event::ModifiersChanged(ctrl),
            key(Key::C, true, ctrl),
            key(Key::C, false, ctrl),
            Event::ModifiersChanged(Modifiers::NONE),
        ]);
        assert_eq!(
            out,
            vec![
                (XK_CONTROL_L, true),
                (0x63, true),
                (0x63, false),
                (XK_CONTROL_L, false)
            ]
        );
        // With eframe's clipboard shortcuts left on, the Copy event stands in for the key.
        let (_, out) = run(&[Event::ModifiersChanged(ctrl), Event::Copy]);
        assert_eq!(out[1..], [(0x63, true), (0x63, false)]);
    }

    #[test]
    fn release_uses_the_keysym_of_the_press() {
        let ctrl = Modifiers::CTRL;
        let ctrl_shift = Modifiers::CTRL | Modifiers::SHIFT;
        let (_, out) = run(&[key(Key::A, true, ctrl), key(Key::A, false, ctrl_shift)]);
        assert_eq!(
            out,
            vec![
                (XK_CONTROL_L, true),
                (0x61, true),
                (XK_SHIFT_L, true),
                (0x61, false)
            ]
        );
    }

    #[test]
    fn focus_loss_releases_everything() {
        let ctrl = Modifiers::CTRL;
        let (kb, out) = run(&[
            key(Key::ArrowLeft, true, Modifiers::NONE),
            key(Key::ArrowLeft, true, Modifiers::NONE),
            key(Key::X, true, ctrl),
            Event::WindowFocused(false),
        ]);
        assert_eq!(
            out,
            vec![
                (0xff51, true),
                (0xff51, true),
                (XK_CONTROL_L, true),
                (0x78, true),
                (0x78, false),
                (0xff51, false),
                (XK_CONTROL_L, false)
            ]
        );
        assert!(kb.held.is_empty());
        // Nothing left to release.
        let mut kb = kb;
        let mut more = Vec::new();
        kb.release_all(&mut more);
        assert!(more.is_empty());
    }

    #[test]
    fn special_keys_and_unicode_text() {
        let (_, out) = run(&[
            key(Key::Enter, true, Modifiers::NONE),
            key(Key::Enter, false, Modifiers::NONE),
            Event::Text("€".into()),
            // A release of a key that was typed as text sends nothing.
            key(Key::E, false, Modifiers::NONE),
        ]);
        assert_eq!(
            out,
            vec![
                (0xff0d, true),
                (0xff0d, false),
                (0x0100_20ac, true),
                (0x0100_20ac, false)
            ]
        );
    }
}
