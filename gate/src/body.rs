//! The bodies the gate sends: its own (a page, a JSON answer) or the upstream's, streamed
//! frame by frame; and the client's request body on its way to the upstream, counted against
//! the size limit. Both streamed bodies end with an error when nothing arrives for the idle
//! timeout, so a stalled peer cannot hold a connection forever.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// A deadline that starts only when a body first has to wait (most small bodies never do, and
/// pay for no timer), and moves on with every frame.
struct Idle {
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Idle {
    fn new(timeout: Duration) -> Self {
        Idle {
            timeout,
            sleep: None,
        }
    }

    /// After a frame: the next one has a full timeout again.
    fn progressed(&mut self) {
        if let Some(sleep) = &mut self.sleep {
            sleep.as_mut().reset(Instant::now() + self.timeout);
        }
    }

    /// While waiting: whether the timeout has run out.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let timeout = self.timeout;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        sleep.as_mut().poll(cx).is_ready()
    }
}

/// Why a streamed body stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The request body is larger than `[proxy] max_body_bytes`.
    #[error("the request body is larger than the gate accepts (proxy.max_body_bytes)")]
    TooLarge,
    /// Nothing arrived for the idle timeout.
    #[error("the peer sent nothing for the idle timeout (proxy.idle_timeout_secs)")]
    Idle,
    /// The connection failed.
    #[error("{0}")]
    Connection(#[from] hyper::Error),
}

/// A response body: the gate's own bytes, or the upstream's stream.
pub enum GateBody {
    /// A whole body (`None` once sent).
    Full(Option<Bytes>),
    /// The upstream's body, streamed.
    Upstream(Incoming, IdleGuard),
}

/// The idle deadline of a streamed upstream body.
pub struct IdleGuard(Idle);

impl GateBody {
    /// No body.
    pub fn empty() -> Self {
        GateBody::Full(None)
    }

    /// The upstream's body, ending with an error after `idle` without a frame.
    pub fn upstream(body: Incoming, idle: Duration) -> Self {
        GateBody::Upstream(body, IdleGuard(Idle::new(idle)))
    }

    /// The bytes of a whole body (`None` for a streamed one).
    pub fn whole(&self) -> Option<&[u8]> {
        match self {
            GateBody::Full(bytes) => Some(bytes.as_deref().unwrap_or(&[])),
            GateBody::Upstream(..) => None,
        }
    }
}

impl From<String> for GateBody {
    fn from(text: String) -> Self {
        GateBody::Full(Some(Bytes::from(text)))
    }
}

impl From<Bytes> for GateBody {
    fn from(bytes: Bytes) -> Self {
        GateBody::Full(Some(bytes))
    }
}

impl From<&'static str> for GateBody {
    fn from(text: &'static str) -> Self {
        GateBody::Full(Some(Bytes::from_static(text.as_bytes())))
    }
}

impl Body for GateBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            GateBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            GateBody::Upstream(body, IdleGuard(idle)) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(frame) => {
                    idle.progressed();
                    Poll::Ready(frame.map(|f| f.map_err(BodyError::Connection)))
                }
                Poll::Pending if idle.expired(cx) => Poll::Ready(Some(Err(BodyError::Idle))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GateBody::Full(bytes) => bytes.is_none(),
            GateBody::Upstream(body, _) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GateBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            GateBody::Upstream(body, _) => body.size_hint(),
        }
    }
}

/// A client's request body on its way to the upstream: ends with [`BodyError::TooLarge`] past
/// the limit (and raises the shared flag, so the proxy answers `413`), with
/// [`BodyError::Idle`] when the client stalls.
pub struct Outgoing {
    body: Incoming,
    seen: u64,
    limit: u64,
    too_large: Arc<AtomicBool>,
    idle: Idle,
}

impl Outgoing {
    /// `body`, limited to `limit` bytes; `too_large` is raised when it goes past.
    pub fn new(body: Incoming, limit: u64, idle: Duration, too_large: Arc<AtomicBool>) -> Self {
        Outgoing {
            body,
            seen: 0,
            limit,
            too_large,
            idle: Idle::new(idle),
        }
    }
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending if this.idle.expired(cx) => {
                return Poll::Ready(Some(Err(BodyError::Idle)));
            }
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        this.idle.progressed();
        let Some(frame) = frame else {
            return Poll::Ready(None);
        };
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            this.seen = this.seen.saturating_add(data.len() as u64);
            if this.seen > this.limit {
                // Relaxed: the flag is read after the request future has finished with it.
                this.too_large.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(BodyError::TooLarge)));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Reads a whole request body of at most `limit` bytes (the booking and admin APIs).
///
/// # Errors
/// [`BodyError::TooLarge`] past the limit, [`BodyError::Idle`] after `idle` without a frame,
/// [`BodyError::Connection`].
pub async fn read_limited(body: Incoming, limit: u64, idle: Duration) -> Result<Bytes, BodyError> {
    // A declared length over the limit is refused before anything is read.
    if body.size_hint().lower() > limit {
        return Err(BodyError::TooLarge);
    }
    let flag = Arc::new(AtomicBool::new(false));
    let mut body = Outgoing::new(body, limit, idle, flag);
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}
