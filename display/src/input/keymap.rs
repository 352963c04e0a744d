//! A display's core keyboard mapping (keycode → keysyms, as
//! `GetKeyboardMapping` gives it) and the two questions input redirection
//! asks of it: which keysym a key gives in a modifier state (the master),
//! and which key gives a keysym (the zombie), with spare keycodes for the
//! keysyms a layout lacks.
//!
//! Columns follow the core protocol's reading of an XKB map: 0 and 1 are
//! group 1's levels 1 and 2 (unshifted, shifted), 4 and 5 its levels 3 and 4
//! (with AltGr, `ISO_Level3_Shift`, usually `Mod5`).

/// `NoSymbol`.
pub const NO_SYMBOL: u32 = 0;

/// The modifier bits of an X event's state.
pub mod state {
    /// Shift.
    pub const SHIFT: u16 = 1;
    /// Caps Lock.
    pub const LOCK: u16 = 2;
    /// Control.
    pub const CONTROL: u16 = 4;
    /// Alt, usually.
    pub const MOD1: u16 = 8;
    /// Num Lock, usually.
    pub const MOD2: u16 = 16;
    /// AltGr (`ISO_Level3_Shift`), usually.
    pub const MOD5: u16 = 128;
}

/// Keysyms of the modifier keys: never shifted or unshifted on the way.
pub fn is_modifier(keysym: u32) -> bool {
    matches!(
        keysym,
        0xffe1..=0xffee // Shift, Control, Caps/Shift Lock, Meta, Alt, Super, Hyper
        | 0xfe01..=0xfe13 // ISO lock and level shifts (AltGr)
        | 0xff7e // Mode_switch
        | 0xff7f // Num_Lock
    )
}

/// Whether `keysym` is one of the shift keys.
pub fn is_shift(keysym: u32) -> bool {
    matches!(keysym, 0xffe1 | 0xffe2)
}

/// Keypad keysyms (their level follows Num Lock).
fn is_keypad(keysym: u32) -> bool {
    (0xff80..=0xffbd).contains(&keysym)
}

/// The lower and upper case of a Latin-1 letter keysym, if it is one.
fn letter_cases(keysym: u32) -> Option<(u32, u32)> {
    match keysym {
        0x41..=0x5a => Some((keysym + 0x20, keysym)),
        0x61..=0x7a => Some((keysym, keysym - 0x20)),
        0xc0..=0xde if keysym != 0xd7 => Some((keysym + 0x20, keysym)),
        0xe0..=0xfe if keysym != 0xf7 => Some((keysym, keysym - 0x20)),
        _ => None,
    }
}

/// A keyboard mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keymap {
    min_keycode: u8,
    per_keycode: usize,
    keysyms: Vec<u32>,
}

impl Keymap {
    /// The mapping from `GetKeyboardMapping(min_keycode, …)`'s reply.
    pub fn new(min_keycode: u8, per_keycode: u8, keysyms: Vec<u32>) -> Keymap {
        let per_keycode = usize::from(per_keycode.max(1));
        let mut keysyms = keysyms;
        keysyms.truncate(keysyms.len() / per_keycode * per_keycode);
        Keymap {
            min_keycode,
            per_keycode,
            keysyms,
        }
    }

    /// Keysyms per keycode.
    pub fn per_keycode(&self) -> u8 {
        self.per_keycode as u8
    }

    /// The highest keycode mapped.
    pub fn max_keycode(&self) -> u8 {
        let count = self.keysyms.len() / self.per_keycode;
        (usize::from(self.min_keycode) + count.saturating_sub(1)).min(255) as u8
    }

    /// The keysyms of `keycode` (empty outside the mapping).
    pub fn row(&self, keycode: u8) -> &[u32] {
        let Some(index) = usize::from(keycode).checked_sub(usize::from(self.min_keycode)) else {
            return &[];
        };
        let start = index * self.per_keycode;
        self.keysyms
            .get(start..start + self.per_keycode)
            .unwrap_or(&[])
    }

    /// Column `col` of `keycode`, with the core protocol's rule for a
    /// letter given in one case only.
    fn column(&self, keycode: u8, col: usize) -> u32 {
        let row = self.row(keycode);
        let get = |c: usize| row.get(c).copied().unwrap_or(NO_SYMBOL);
        let base = col & !1;
        let (first, second) = (get(base), get(base + 1));
        let (first, second) = match (second, letter_cases(first)) {
            (NO_SYMBOL, Some((lower, upper))) => (lower, upper),
            (NO_SYMBOL, None) => (first, first),
            _ => (first, second),
        };
        if col & 1 == 0 { first } else { second }
    }

    /// The keysym `keycode` gives with the modifiers `state` (master side).
    pub fn keysym_for(&self, keycode: u8, state_bits: u16) -> Option<u32> {
        let level3 = state_bits & state::MOD5 != 0;
        let base = if level3 && self.column(keycode, 4) != NO_SYMBOL {
            4
        } else {
            0
        };
        let unshifted = self.column(keycode, base);
        let mut shifted = state_bits & state::SHIFT != 0;
        if state_bits & state::LOCK != 0 && letter_cases(unshifted).is_some() {
            shifted = !shifted;
        }
        if state_bits & state::MOD2 != 0 && is_keypad(self.column(keycode, base + 1)) {
            shifted = !shifted;
        }
        let keysym = self.column(keycode, base + usize::from(shifted));
        let keysym = if keysym == NO_SYMBOL {
            unshifted
        } else {
            keysym
        };
        (keysym != NO_SYMBOL).then_some(keysym)
    }

    /// The key that gives `keysym` at level 1 or 2 (zombie side): its
    /// keycode and whether Shift is needed. Unshifted places come first.
    pub fn find(&self, keysym: u32) -> Option<(u8, bool)> {
        if keysym == NO_SYMBOL {
            return None;
        }
        let codes = self.min_keycode..=self.max_keycode();
        codes
            .clone()
            .find(|&k| self.column(k, 0) == keysym)
            .map(|k| (k, false))
            .or_else(|| {
                codes
                    .into_iter()
                    .find(|&k| self.column(k, 1) == keysym)
                    .map(|k| (k, true))
            })
    }

    /// Whether `keycode` gives the same keysym with and without Shift.
    pub fn shift_invariant(&self, keycode: u8) -> bool {
        self.column(keycode, 0) == self.column(keycode, 1)
    }

    /// Keycodes with no keysym at all: free to bind a missing keysym to.
    pub fn spare_keycodes(&self) -> Vec<u8> {
        (self.min_keycode..=self.max_keycode())
            .filter(|&k| k > 8 && self.row(k).iter().all(|&s| s == NO_SYMBOL))
            .collect()
    }

    /// Replaces `keycode`'s keysyms (after a `ChangeKeyboardMapping` of ours).
    pub fn set_row(&mut self, keycode: u8, keysyms: &[u32]) {
        let Some(index) = usize::from(keycode).checked_sub(usize::from(self.min_keycode)) else {
            return;
        };
        let start = index * self.per_keycode;
        if let Some(row) = self.keysyms.get_mut(start..start + self.per_keycode) {
            for (i, slot) in row.iter_mut().enumerate() {
                *slot = keysyms.get(i).copied().unwrap_or(NO_SYMBOL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::*;

    /// Keycodes 8..=13 of a small US-like map, 6 keysyms each.
    fn sample() -> Keymap {
        let rows: [[u32; 6]; 6] = [
            [0; 6],                         // 8: unused
            [0x31, 0x21, 0, 0, 0, 0],       // 9: 1 !
            [0x61, 0x41, 0, 0, 0xe6, 0xc6], // 10: a A æ Æ
            [0x65, 0, 0, 0, 0x20ac, 0],     // 11: e (case rule) €
            [0xffe1, 0, 0, 0, 0, 0],        // 12: Shift_L
            [0xff9c, 0xffb1, 0, 0, 0, 0],   // 13: KP_End KP_1
        ];
        Keymap::new(8, 6, rows.iter().flatten().copied().collect())
    }

    #[test]
    fn the_master_reads_keysyms_by_level() {
        let k = sample();
        assert_eq!(k.keysym_for(9, 0), Some(0x31));
        assert_eq!(k.keysym_for(9, SHIFT), Some(0x21));
        assert_eq!(k.keysym_for(9, CONTROL), Some(0x31));
        assert_eq!(k.keysym_for(10, SHIFT), Some(0x41));
        assert_eq!(k.keysym_for(10, LOCK), Some(0x41));
        assert_eq!(k.keysym_for(10, LOCK | SHIFT), Some(0x61));
        assert_eq!(k.keysym_for(10, MOD5), Some(0xe6));
        assert_eq!(k.keysym_for(10, MOD5 | SHIFT), Some(0xc6));
        // A letter given in one case only has both.
        assert_eq!(k.keysym_for(11, SHIFT), Some(0x45));
        assert_eq!(k.keysym_for(11, MOD5), Some(0x20ac));
        // Num Lock picks the keypad's digit.
        assert_eq!(k.keysym_for(13, 0), Some(0xff9c));
        assert_eq!(k.keysym_for(13, MOD2), Some(0xffb1));
        assert_eq!(k.keysym_for(8, 0), None);
        assert_eq!(k.keysym_for(200, 0), None);
    }

    #[test]
    fn the_zombie_finds_keys_and_spares() {
        let mut k = sample();
        assert_eq!(k.find(0x31), Some((9, false)));
        assert_eq!(k.find(0x21), Some((9, true)));
        assert_eq!(k.find(0x45), Some((11, true)));
        assert_eq!(k.find(0x263a), None);
        assert!(!k.shift_invariant(9));
        assert_eq!(k.max_keycode(), 13);
        // Keycode 8 is never handed out (X reserves it on many servers).
        assert_eq!(k.spare_keycodes(), Vec::<u8>::new());
        let mut rows = k.keysyms.clone();
        rows.extend([0u32; 6]);
        k = Keymap::new(8, 6, rows);
        assert_eq!(k.spare_keycodes(), vec![14]);
        k.set_row(14, &[0x100_263a, 0x100_263a]);
        assert_eq!(k.find(0x100_263a), Some((14, false)));
        assert!(k.shift_invariant(14));
        assert!(k.spare_keycodes().is_empty());
    }

    #[test]
    fn modifiers_are_known() {
        assert!(is_modifier(0xffe1) && is_modifier(0xffe3) && is_modifier(0xfe03));
        assert!(is_shift(0xffe2) && !is_shift(0xffe3));
        assert!(!is_modifier(0x61) && !is_modifier(0xff0d));
    }
}
