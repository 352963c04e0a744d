//! The X authority file of a virtual display: one MIT-MAGIC-COOKIE-1 shared by Xvnc (`-auth`)
//! and the apps launched in it (`XAUTHORITY`), so no other local user can open the X display.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{DisplayError, Result};

/// `FamilyWild`: the entry matches any host address.
const FAMILY_WILD: u16 = 0xffff;
const COOKIE_NAME: &[u8] = b"MIT-MAGIC-COOKIE-1";

fn io_err(call: &'static str) -> impl FnOnce(std::io::Error) -> DisplayError {
    move |source| DisplayError::Sys { call, source }
}

/// Writes a new authority file at `path` (mode 0600) holding a fresh random cookie valid for
/// any display number and host (an empty display number matches every display).
pub(crate) fn write_cookie_file(path: &Path) -> Result<()> {
    let mut cookie = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut cookie))
        .map_err(io_err("read /dev/urandom"))?;
    let entry = encode_entry(FAMILY_WILD, b"", b"", COOKIE_NAME, &cookie);
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create X authority file"))?;
    file.write_all(&entry)
        .map_err(io_err("write X authority file"))
}

/// The cookie an authority file holds for display `number`: the first record
/// naming that display, or any display (an empty number), as Xlib picks it.
/// `None` when the file has no record for it.
pub(crate) fn cookie_for(path: &Path, number: u32) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let bytes = std::fs::read(path).map_err(io_err("read X authority file"))?;
    let wanted = number.to_string();
    Ok(parse_records(&bytes)?
        .into_iter()
        .find(|r| r.number.is_empty() || r.number == wanted.as_bytes())
        .map(|r| (r.name, r.data)))
}

/// One record of an authority file (the address is not needed here).
struct Record {
    number: Vec<u8>,
    name: Vec<u8>,
    data: Vec<u8>,
}

fn invalid() -> DisplayError {
    DisplayError::Sys {
        call: "parse X authority file",
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    }
}

/// Every record of an authority file; a truncated one is an error.
fn parse_records(bytes: &[u8]) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        at += 2; // the family
        let mut fields = Vec::with_capacity(4);
        for _ in 0..4 {
            let len = bytes
                .get(at..at + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            let field = len.and_then(|len| bytes.get(at + 2..at + 2 + len));
            let Some(field) = field else {
                return Err(invalid());
            };
            fields.push(field.to_vec());
            at += 2 + field.len();
        }
        let data = fields.pop().unwrap_or_default();
        let name = fields.pop().unwrap_or_default();
        let number = fields.pop().unwrap_or_default();
        records.push(Record { number, name, data });
    }
    Ok(records)
}

/// One Xauthority record: a family, then four length-prefixed (u16, big endian) fields.
fn encode_entry(family: u16, address: &[u8], number: &[u8], name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = family.to_be_bytes().to_vec();
    for field in [address, number, name, data] {
        out.extend_from_slice(&(field.len() as u16).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_layout() {
        let e = encode_entry(FAMILY_WILD, b"", b"", COOKIE_NAME, &[7; 16]);
        assert_eq!(&e[..6], &[0xff, 0xff, 0, 0, 0, 0]);
        assert_eq!(&e[6..8], &[0, 18]);
        assert_eq!(&e[8..26], COOKIE_NAME);
        assert_eq!(&e[26..28], &[0, 16]);
        assert_eq!(e.len(), 28 + 16);
    }

    #[test]
    fn the_record_of_the_display_is_found() {
        let mut file = encode_entry(256, b"host", b"3", COOKIE_NAME, &[3; 16]);
        file.extend(encode_entry(256, b"host", b"5", COOKIE_NAME, &[5; 16]));
        let dir = std::env::temp_dir().join(format!("zos-xauth-find-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let path = dir.join("a");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(cookie_for(&path, 5).unwrap().unwrap().1, vec![5; 16]);
        assert_eq!(cookie_for(&path, 3).unwrap().unwrap().1, vec![3; 16]);
        assert_eq!(cookie_for(&path, 4).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cookie_roundtrip() {
        let dir = std::env::temp_dir().join(format!("zos-xauth-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        let path = dir.join("a");
        write_cookie_file(&path).unwrap();
        let (name, data) = cookie_for(&path, 7).unwrap().unwrap();
        assert_eq!(name, COOKIE_NAME);
        assert_eq!(data.len(), 16);
        std::fs::write(&path, [0xff, 0xff, 0, 3]).unwrap();
        assert!(cookie_for(&path, 7).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
