//! The one body type every response (and every forwarded request) uses: an
//! enum, so the hot path boxes nothing.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::limit::InflightGuard;

/// Errors a body can end with.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body.
#[derive(Debug)]
pub(crate) struct Body {
    kind: Kind,
    /// Keeps the request counted as in flight until the body is done.
    _guard: Option<InflightGuard>,
}

#[derive(Debug)]
enum Kind {
    Empty,
    Full(Bytes),
    Channel(mpsc::Receiver<Result<Bytes, BodyError>>),
    Incoming(hyper::body::Incoming),
}

impl Body {
    pub(crate) fn empty() -> Self {
        Body {
            kind: Kind::Empty,
            _guard: None,
        }
    }

    pub(crate) fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        Body {
            kind: if b.is_empty() {
                Kind::Empty
            } else {
                Kind::Full(b)
            },
            _guard: None,
        }
    }

    pub(crate) fn channel(rx: mpsc::Receiver<Result<Bytes, BodyError>>) -> Self {
        Body {
            kind: Kind::Channel(rx),
            _guard: None,
        }
    }

    pub(crate) fn incoming(b: hyper::body::Incoming) -> Self {
        Body {
            kind: Kind::Incoming(b),
            _guard: None,
        }
    }

    /// Hold `guard` until this body is dropped.
    pub(crate) fn with_guard(mut self, guard: InflightGuard) -> Self {
        self._guard = Some(guard);
        self
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => {
                let Kind::Full(b) = std::mem::replace(&mut self.kind, Kind::Empty) else {
                    unreachable!("matched Full above")
                };
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Kind::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
            Kind::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(_) | Kind::Channel(_) => false,
            Kind::Incoming(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(b) => SizeHint::with_exact(b.len() as u64),
            Kind::Channel(_) => SizeHint::default(),
            Kind::Incoming(b) => b.size_hint(),
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Longer than the limit (in bytes).
    TooLarge(usize),
    /// Not received within the read timeout.
    Timeout(Duration),
    /// The connection failed.
    Body(BodyError),
}

/// Read a whole body, refusing (without reading further) more than `limit`
/// bytes, within `timeout`. A body in one frame is returned without a copy.
pub(crate) async fn read_body(
    mut body: Body,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<Bytes, ReadError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    if body.size_hint().lower() > limit as u64 {
        return Err(ReadError::TooLarge(limit));
    }
    let fut = collect(&mut body, limit);
    match timeout {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .map_err(|_| ReadError::Timeout(t))?,
        None => fut.await,
    }
}

async fn collect(body: &mut Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ReadError::Body)?.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(ReadError::TooLarge(limit));
        }
        if let Some(buf) = more.as_mut() {
            buf.extend_from_slice(&data);
        } else if let Some(f) = first.take() {
            let cap = (body.size_hint().lower() as usize)
                .saturating_add(total)
                .min(limit);
            let mut buf = BytesMut::with_capacity(cap);
            buf.extend_from_slice(&f);
            buf.extend_from_slice(&data);
            more = Some(buf);
        } else {
            first = Some(data);
        }
    }
    Ok(match more {
        Some(b) => b.freeze(),
        None => first.unwrap_or_default(),
    })
}
