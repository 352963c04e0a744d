//! The server side of the RFB handshake (RFC 6143 §7.1–7.3): version, security type None
//! (the session layer has authenticated the viewer already), ClientInit and ServerInit.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::error::{DisplayError, Result};
use crate::fanout::format::to_wire;
use crate::framebuffer::wire_format;

/// Security type None.
const SECURITY_NONE: u8 = 1;

/// The protocol version a viewer settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V3_3,
    V3_7,
    V3_8,
}

/// Parses a ProtocolVersion message; unknown minor versions count as 3.3 (RFC 6143 §7.1.1),
/// later ones as 3.8.
fn parse_version(bytes: &[u8; 12]) -> Result<Version> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    let minor = text
        .strip_prefix("RFB 003.")
        .and_then(|rest| rest.strip_suffix('\n'))
        .and_then(|minor| minor.parse::<u32>().ok())
        .ok_or_else(|| DisplayError::Protocol(format!("bad protocol version {bytes:?}")))?;
    Ok(match minor {
        7 => Version::V3_7,
        m if m >= 8 => Version::V3_8,
        _ => Version::V3_3,
    })
}

/// Runs the handshake up to and including ClientInit; the viewer then waits for ServerInit
/// ([`server_init`]).
pub(crate) async fn negotiate<S>(stream: &mut S) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(b"RFB 003.008\n").await?;
    stream.flush().await?;
    let mut version = [0u8; 12];
    stream.read_exact(&mut version).await?;
    let version = parse_version(&version)?;
    debug!(?version, "viewer protocol version");
    if version == Version::V3_3 {
        // The server decides: a single u32 security type, no result for None.
        stream.write_u32(u32::from(SECURITY_NONE)).await?;
    } else {
        stream.write_all(&[1, SECURITY_NONE]).await?;
        stream.flush().await?;
        let chosen = stream.read_u8().await?;
        if chosen != SECURITY_NONE {
            if version == Version::V3_8 {
                let reason = b"only security type None is offered";
                stream.write_u32(1).await?;
                stream.write_u32(reason.len() as u32).await?;
                stream.write_all(reason).await?;
                stream.flush().await?;
            }
            return Err(DisplayError::Protocol(format!(
                "the viewer chose security type {chosen}"
            )));
        }
        if version == Version::V3_8 {
            stream.write_u32(0).await?;
        }
    }
    stream.flush().await?;
    let _shared = stream.read_u8().await?;
    Ok(())
}

/// Sends ServerInit: the screen size, the upstream's pixel format and the desktop name.
pub(crate) async fn server_init<S>(
    stream: &mut S,
    (width, height): (u16, u16),
    name: &str,
) -> Result<()>
where
    S: AsyncWrite + Unpin,
{
    let mut init = Vec::with_capacity(24 + name.len());
    init.extend_from_slice(&width.to_be_bytes());
    init.extend_from_slice(&height.to_be_bytes());
    init.extend_from_slice(&to_wire(wire_format()));
    init.extend_from_slice(&(name.len() as u32).to_be_bytes());
    init.extend_from_slice(name.as_bytes());
    stream.write_all(&init).await?;
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version(b"RFB 003.008\n").unwrap(), Version::V3_8);
        assert_eq!(parse_version(b"RFB 003.889\n").unwrap(), Version::V3_8);
        assert_eq!(parse_version(b"RFB 003.007\n").unwrap(), Version::V3_7);
        assert_eq!(parse_version(b"RFB 003.005\n").unwrap(), Version::V3_3);
        assert!(parse_version(b"HTTP/1.1 200").is_err());
    }

    #[tokio::test]
    async fn a_3_8_viewer_gets_none_and_the_server_init() {
        let (mut server, mut client) = tokio::io::duplex(1024);
        let viewer = async move {
            let mut v = [0u8; 12];
            client.read_exact(&mut v).await.unwrap();
            assert_eq!(&v, b"RFB 003.008\n");
            client.write_all(b"RFB 003.008\n").await.unwrap();
            let mut types = [0u8; 2];
            client.read_exact(&mut types).await.unwrap();
            assert_eq!(types, [1, 1]);
            client.write_all(&[1]).await.unwrap();
            assert_eq!(client.read_u32().await.unwrap(), 0);
            client.write_all(&[1]).await.unwrap();
            let mut init = [0u8; 24 + 3];
            client.read_exact(&mut init).await.unwrap();
            init
        };
        let serve = async {
            negotiate(&mut server).await.unwrap();
            server_init(&mut server, (640, 480), "zos").await.unwrap();
        };
        let (init, ()) = tokio::join!(viewer, serve);
        assert_eq!(&init[..4], &[2, 128, 1, 224]);
        assert_eq!(&init[4..8], &[32, 24, 0, 1]);
        assert_eq!(&init[20..], &[0, 0, 0, 3, b'z', b'o', b's']);
    }

    #[tokio::test]
    async fn another_security_type_is_refused_with_a_reason() {
        let (mut server, mut client) = tokio::io::duplex(1024);
        let viewer = async move {
            let mut v = [0u8; 12];
            client.read_exact(&mut v).await.unwrap();
            client.write_all(b"RFB 003.008\n").await.unwrap();
            let mut types = [0u8; 2];
            client.read_exact(&mut types).await.unwrap();
            client.write_all(&[2]).await.unwrap();
            assert_eq!(client.read_u32().await.unwrap(), 1);
            let n = client.read_u32().await.unwrap();
            let mut reason = vec![0u8; n as usize];
            client.read_exact(&mut reason).await.unwrap();
            String::from_utf8(reason).unwrap()
        };
        let (reason, result) = tokio::join!(viewer, negotiate(&mut server));
        assert!(reason.contains("None"), "{reason}");
        assert!(result.is_err());
    }
}
