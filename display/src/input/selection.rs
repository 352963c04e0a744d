//! The selection owner's side of the clipboard: the atoms it speaks, and the
//! text it offers, answered to each `SelectionRequest` as `TARGETS`,
//! `UTF8_STRING`, `TEXT` or (Latin-1) `STRING`, in one property.

use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, EventMask, PropMode, SelectionNotifyEvent,
    SelectionRequestEvent,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::clipboard::Selection;
use crate::error::Result;
use crate::xconn::x_error;

/// The atoms the clipboard uses.
#[derive(Debug)]
pub(crate) struct Atoms {
    clipboard: Atom,
    targets: Atom,
    text: Atom,
    pub(crate) utf8_string: Atom,
    pub(crate) incr: Atom,
    /// Our properties receiving each selection's text.
    properties: [Atom; 2],
}

impl Atoms {
    /// Interns them.
    pub(crate) fn intern(conn: &RustConnection) -> Result<Atoms> {
        let names: [&[u8]; 7] = [
            b"CLIPBOARD",
            b"TARGETS",
            b"TEXT",
            b"UTF8_STRING",
            b"INCR",
            b"ZOS_CLIPBOARD",
            b"ZOS_PRIMARY",
        ];
        let cookies = names
            .iter()
            .map(|n| conn.intern_atom(false, n))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| x_error("InternAtom", e))?;
        let mut atoms = Vec::with_capacity(names.len());
        for cookie in cookies {
            atoms.push(cookie.reply().map_err(|e| x_error("InternAtom", e))?.atom);
        }
        Ok(Atoms {
            clipboard: atoms[0],
            targets: atoms[1],
            text: atoms[2],
            utf8_string: atoms[3],
            incr: atoms[4],
            properties: [atoms[5], atoms[6]],
        })
    }

    /// The selection's atom.
    pub(crate) fn selection(&self, selection: Selection) -> Atom {
        match selection {
            Selection::Clipboard => self.clipboard,
            Selection::Primary => AtomEnum::PRIMARY.into(),
        }
    }

    /// The selection an atom names, if it is one of ours.
    pub(crate) fn which(&self, atom: Atom) -> Option<Selection> {
        if atom == self.clipboard {
            Some(Selection::Clipboard)
        } else if atom == Atom::from(AtomEnum::PRIMARY) {
            Some(Selection::Primary)
        } else {
            None
        }
    }

    /// Our property that receives `selection`'s text.
    pub(crate) fn property(&self, selection: Selection) -> Atom {
        self.properties[selection as usize]
    }

    /// The selection whose text arrives in property `atom`.
    pub(crate) fn which_property(&self, atom: Atom) -> Option<Selection> {
        [Selection::Clipboard, Selection::Primary]
            .into_iter()
            .find(|&s| self.property(s) == atom)
    }
}

/// The text we offer on each selection while we own it.
#[derive(Debug, Default)]
pub(crate) struct Served {
    texts: [Option<Vec<u8>>; 2],
}

impl Served {
    /// Offers `text` on `selection`.
    pub(crate) fn offer(&mut self, selection: Selection, text: Vec<u8>) {
        self.texts[selection as usize] = Some(text);
    }

    /// Another client owns `selection` now.
    pub(crate) fn withdraw(&mut self, selection: Selection) {
        self.texts[selection as usize] = None;
    }

    /// Answers one request: the text in the target asked for, or a refusal.
    pub(crate) fn answer(
        &self,
        conn: &RustConnection,
        atoms: &Atoms,
        request: &SelectionRequestEvent,
    ) -> Result<()> {
        // Obsolete clients name no property: the target is the property.
        let property = if request.property == x11rb::NONE {
            request.target
        } else {
            request.property
        };
        let text = atoms
            .which(request.selection)
            .and_then(|s| self.texts[s as usize].as_ref());
        let answered = match text {
            None => false,
            Some(_) if request.target == atoms.targets => {
                let targets = [
                    atoms.targets,
                    atoms.utf8_string,
                    atoms.text,
                    AtomEnum::STRING.into(),
                ];
                conn.change_property32(
                    PropMode::REPLACE,
                    request.requestor,
                    property,
                    AtomEnum::ATOM,
                    &targets,
                )
                .map_err(|e| x_error("ChangeProperty", e))?;
                true
            }
            Some(text) if request.target == atoms.utf8_string || request.target == atoms.text => {
                conn.change_property8(
                    PropMode::REPLACE,
                    request.requestor,
                    property,
                    atoms.utf8_string,
                    text,
                )
                .map_err(|e| x_error("ChangeProperty", e))?;
                true
            }
            Some(text) if request.target == Atom::from(AtomEnum::STRING) => {
                let latin1: Vec<u8> = String::from_utf8_lossy(text)
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                    .collect();
                conn.change_property8(
                    PropMode::REPLACE,
                    request.requestor,
                    property,
                    AtomEnum::STRING,
                    &latin1,
                )
                .map_err(|e| x_error("ChangeProperty", e))?;
                true
            }
            Some(_) => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: x11rb::protocol::xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: if answered { property } else { x11rb::NONE },
        };
        conn.send_event(false, request.requestor, EventMask::NO_EVENT, notify)
            .map_err(|e| x_error("SendEvent", e))?;
        Ok(())
    }
}
