//! Whose credentials a restored process gets, and who may restore what.
//!
//! The rules (DESIGN.md §8: credentials an image names are granted only when the restorer
//! already has them):
//! - an image whose credentials (real/effective/saved/filesystem uid and gid, supplementary
//!   groups) equal the caller's is restored as it is, with or without a signature;
//! - other credentials need a caller that is root *and* an image signed with this machine's
//!   image key; anything else is refused, naming what differs;
//! - [`Credentials::Caller`] ignores the image's credentials altogether: the process runs as
//!   the caller (a migrant restored by the zombie daemon's unprivileged user).
//!
//! Capabilities are not saved: a restored process gets the capabilities its credentials give
//! it under the restorer (full for uid 0, none otherwise).

use crate::error::{Error, Result};
use crate::image::format::ParsedImage;
use crate::image::key::ImageKey;
use crate::image::model::Creds;

/// Whose credentials the restored process runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Credentials {
    /// The image's, when the caller may grant them (see the module docs).
    #[default]
    Image,
    /// The caller's, whatever the image says (no signature needed).
    Caller,
}

/// What the restore must do about credentials once authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredsPlan {
    /// Leave the placeholder's (the caller's) credentials as they are.
    Keep,
    /// Switch every thread to these.
    Set(Creds),
}

/// The calling process's credentials, from `/proc/self/status` (groups sorted).
pub fn caller() -> Creds {
    let text = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let field = |k: &str| -> Vec<u32> {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
            .map(crate::proc::numbers)
            .unwrap_or_default()
    };
    let four = |v: Vec<u32>| [0, 1, 2, 3].map(|i| v.get(i).copied().unwrap_or(u32::MAX));
    let mut groups = field("Groups");
    groups.sort_unstable();
    Creds {
        uids: four(field("Uid")),
        gids: four(field("Gid")),
        groups,
    }
}

/// What differs between the image's credentials and the caller's, in words.
fn differences(image: &Creds, caller: &Creds) -> String {
    let mut d = Vec::new();
    let ids = |v: &[u32; 4]| format!("{}/{}/{}/{}", v[0], v[1], v[2], v[3]);
    if image.uids != caller.uids {
        d.push(format!(
            "uids {} (yours {})",
            ids(&image.uids),
            ids(&caller.uids)
        ));
    }
    if image.gids != caller.gids {
        d.push(format!(
            "gids {} (yours {})",
            ids(&image.gids),
            ids(&caller.gids)
        ));
    }
    let mut groups = image.groups.clone();
    groups.sort_unstable();
    if groups != caller.groups {
        d.push(format!(
            "groups {:?} (yours {:?})",
            image.groups, caller.groups
        ));
    }
    d.join(", ")
}

/// Decide whether the caller may restore `img` under `mode`, and how.
pub fn authorize(
    img: &ParsedImage<'_>,
    mode: Credentials,
    key: Option<&ImageKey>,
) -> Result<CredsPlan> {
    let caller = caller();
    let wanted = &img.meta.attrs.creds;
    let mut sorted = wanted.clone();
    sorted.groups.sort_unstable();
    if mode == Credentials::Caller || sorted == caller {
        return Ok(CredsPlan::Keep);
    }
    let what = differences(wanted, &caller);
    if caller.uids[1] != 0 {
        return Err(Error::Denied(format!(
            "the image's credentials differ from yours ({what}); only root may restore \
             another user's process"
        )));
    }
    let signature = match (img.signature.is_some(), key) {
        (false, _) => "it is not signed",
        (true, None) => "no image key was given to check its signature",
        (true, Some(k)) if !img.signed_by(k) => "its signature is not this machine's",
        (true, Some(_)) => return Ok(CredsPlan::Set(wanted.clone())),
    };
    Err(Error::Denied(format!(
        "the image's credentials differ from yours ({what}) and {signature}: root restores \
         other credentials only from images this machine signed"
    )))
}
