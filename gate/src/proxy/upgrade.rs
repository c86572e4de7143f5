//! A protocol upgrade (a WebSocket) passed through: once both sides have switched, bytes are
//! copied both ways until either side closes or nothing moves for the idle timeout.

use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Spawns the tunnel between the client's and the upstream's upgraded connections.
pub fn tunnel(client: OnUpgrade, upstream: OnUpgrade, idle: Duration) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::join!(client, upstream) {
            (Ok(c), Ok(u)) => (c, u),
            (c, u) => {
                tracing::debug!(
                    client = c.is_ok(),
                    upstream = u.is_ok(),
                    "an upgrade did not complete"
                );
                return;
            }
        };
        let (mut cr, mut cw) = tokio::io::split(TokioIo::new(client));
        let (mut ur, mut uw) = tokio::io::split(TokioIo::new(upstream));
        let up = copy_idle(&mut cr, &mut uw, idle);
        let down = copy_idle(&mut ur, &mut cw, idle);
        // Either direction ending (a close, an error, the idle timeout) ends the tunnel.
        tokio::select! {
            _ = up => {},
            _ = down => {},
        }
        let _ = uw.shutdown().await;
        let _ = cw.shutdown().await;
    });
}

/// Copies until end of stream, an error, or `idle` without a byte.
async fn copy_idle<R, W>(from: &mut R, to: &mut W, idle: Duration) -> std::io::Result<u64>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match tokio::time::timeout(idle, from.read(&mut buf)).await {
            Ok(read) => read?,
            Err(_) => return Ok(total),
        };
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        total += n as u64;
    }
}
