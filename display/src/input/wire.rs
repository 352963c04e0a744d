//! The input events a master sends to the ZOS session it drives, and their
//! encoding: fixed 8-byte records, decoded strictly (a peer's bytes are
//! input like any other).
//!
//! Keys travel as keysyms (what the user typed, whatever the two keyboard
//! layouts are) with the master's keycode as an id, so that a release finds
//! the key its press went to even if the modifiers changed in between.
//! Pointer positions are normalised to `0..=`[`POSITION_SCALE`] across the
//! master's screen, so screens of different sizes map onto each other.

/// The largest normalised coordinate (the right or bottom edge).
pub const POSITION_SCALE: u16 = u16::MAX;

/// The highest pointer button forwarded (1–3 buttons, 4–7 the wheel, 8–9
/// back and forward).
pub const MAX_BUTTON: u8 = 9;

/// The length of one encoded event.
pub const EVENT_BYTES: usize = 8;

/// One input event from the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputEvent {
    /// A key went down (or repeats): its keysym, and the master's keycode.
    KeyDown {
        /// The keysym the master's layout gives the key in its state.
        keysym: u32,
        /// The master's keycode: matches the release to the press.
        code: u8,
    },
    /// The key with the master's keycode `code` went up.
    KeyUp {
        /// The master's keycode, as in its [`InputEvent::KeyDown`].
        code: u8,
    },
    /// The pointer moved to a normalised position.
    Motion {
        /// 0 (left) ..= [`POSITION_SCALE`] (right).
        x: u16,
        /// 0 (top) ..= [`POSITION_SCALE`] (bottom).
        y: u16,
    },
    /// A pointer button (1..=[`MAX_BUTTON`]) went down.
    ButtonDown(u8),
    /// A pointer button went up.
    ButtonUp(u8),
}

/// Why bytes are not events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length is not a whole number of records.
    #[error("{0} bytes of input events are not a whole number of {EVENT_BYTES}-byte records")]
    Length(usize),
    /// A record of an unknown kind.
    #[error("unknown input event kind {0}")]
    Kind(u8),
    /// A button outside 1..=9.
    #[error("pointer button {0} is out of range")]
    Button(u8),
    /// Keysym 0 (`NoSymbol`) or one above the 29-bit keysym space.
    #[error("keysym {0:#x} is not a keysym")]
    Keysym(u32),
}

const KEY_DOWN: u8 = 1;
const KEY_UP: u8 = 2;
const MOTION: u8 = 3;
const BUTTON_DOWN: u8 = 4;
const BUTTON_UP: u8 = 5;
/// Keysyms are 29-bit values.
const MAX_KEYSYM: u32 = 0x1fff_ffff;

impl InputEvent {
    /// Appends this event's record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut record = [0u8; EVENT_BYTES];
        match *self {
            InputEvent::KeyDown { keysym, code } => {
                record[0] = KEY_DOWN;
                record[1] = code;
                record[4..8].copy_from_slice(&keysym.to_le_bytes());
            }
            InputEvent::KeyUp { code } => {
                record[0] = KEY_UP;
                record[1] = code;
            }
            InputEvent::Motion { x, y } => {
                record[0] = MOTION;
                record[2..4].copy_from_slice(&x.to_le_bytes());
                record[4..6].copy_from_slice(&y.to_le_bytes());
            }
            InputEvent::ButtonDown(b) => {
                record[0] = BUTTON_DOWN;
                record[1] = b;
            }
            InputEvent::ButtonUp(b) => {
                record[0] = BUTTON_UP;
                record[1] = b;
            }
        }
        out.extend_from_slice(&record);
    }

    /// Decodes one record.
    fn decode(record: &[u8; EVENT_BYTES]) -> Result<InputEvent, WireError> {
        let u16_at = |i: usize| u16::from_le_bytes([record[i], record[i + 1]]);
        let button = |b: u8| {
            if (1..=MAX_BUTTON).contains(&b) {
                Ok(b)
            } else {
                Err(WireError::Button(b))
            }
        };
        match record[0] {
            KEY_DOWN => {
                let keysym = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
                if keysym == 0 || keysym > MAX_KEYSYM {
                    return Err(WireError::Keysym(keysym));
                }
                Ok(InputEvent::KeyDown {
                    keysym,
                    code: record[1],
                })
            }
            KEY_UP => Ok(InputEvent::KeyUp { code: record[1] }),
            MOTION => Ok(InputEvent::Motion {
                x: u16_at(2),
                y: u16_at(4),
            }),
            BUTTON_DOWN => Ok(InputEvent::ButtonDown(button(record[1])?)),
            BUTTON_UP => Ok(InputEvent::ButtonUp(button(record[1])?)),
            other => Err(WireError::Kind(other)),
        }
    }
}

/// Encodes events into one message.
pub fn encode_events(events: &[InputEvent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(events.len() * EVENT_BYTES);
    for e in events {
        e.encode_into(&mut out);
    }
    out
}

/// Decodes a message of events; any bad record fails the whole message.
pub fn decode_events(bytes: &[u8]) -> Result<Vec<InputEvent>, WireError> {
    if bytes.len() % EVENT_BYTES != 0 {
        return Err(WireError::Length(bytes.len()));
    }
    bytes
        .chunks_exact(EVENT_BYTES)
        .map(|chunk| {
            let record: &[u8; EVENT_BYTES] = chunk.try_into().expect("exact chunks");
            InputEvent::decode(record)
        })
        .collect()
}

/// A pixel position on a screen of `size` pixels, normalised.
pub fn normalise(position: i32, size: u16) -> u16 {
    let last = i64::from(size.max(2)) - 1;
    let p = i64::from(position).clamp(0, last);
    ((p * i64::from(POSITION_SCALE) + last / 2) / last) as u16
}

/// A normalised position as a pixel on a screen of `size` pixels.
pub fn denormalise(position: u16, size: u16) -> i16 {
    let last = i64::from(size.max(2)) - 1;
    let scale = i64::from(POSITION_SCALE);
    ((i64::from(position) * last + scale / 2) / scale).min(i64::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_the_wire() {
        let events = [
            InputEvent::KeyDown {
                keysym: 0x0100_263a,
                code: 38,
            },
            InputEvent::KeyUp { code: 38 },
            InputEvent::Motion { x: 0, y: u16::MAX },
            InputEvent::ButtonDown(1),
            InputEvent::ButtonUp(9),
        ];
        let bytes = encode_events(&events);
        assert_eq!(bytes.len(), events.len() * EVENT_BYTES);
        assert_eq!(decode_events(&bytes).unwrap(), events);
    }

    #[test]
    fn bad_records_are_refused() {
        assert_eq!(decode_events(&[1; 7]), Err(WireError::Length(7)));
        assert_eq!(
            decode_events(&[9, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Kind(9))
        );
        assert_eq!(
            decode_events(&[4, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Button(0))
        );
        assert_eq!(
            decode_events(&[5, 10, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Button(10))
        );
        assert_eq!(
            decode_events(&[1, 38, 0, 0, 0, 0, 0, 0]),
            Err(WireError::Keysym(0))
        );
        assert_eq!(
            decode_events(&[1, 38, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(WireError::Keysym(u32::MAX))
        );
        assert_eq!(decode_events(&[]), Ok(Vec::new()));
    }

    #[test]
    fn equal_screens_map_pixel_for_pixel_and_edges_stay_edges() {
        for size in [2u16, 640, 1280, 1281, 4096] {
            for p in [
                0,
                1,
                i32::from(size) / 2,
                i32::from(size) - 2,
                i32::from(size) - 1,
            ] {
                assert_eq!(
                    i32::from(denormalise(normalise(p, size), size)),
                    p,
                    "{p} of {size}"
                );
            }
        }
        assert_eq!(normalise(-5, 100), 0);
        assert_eq!(normalise(500, 100), POSITION_SCALE);
        assert_eq!(denormalise(POSITION_SCALE, 800), 799);
        assert_eq!(denormalise(normalise(1279, 1280), 800), 799);
    }
}
