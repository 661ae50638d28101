//! Deadlines for what a client sends. actix reads a request's head within
//! `http.head_timeout_s` (its `client_request_timeout`), but nothing bounds
//! the body: a client sending one byte a second held a web worker's
//! connection for minutes. This middleware gives every request body
//! `http.body_timeout_s` from the moment its head was read; the request then
//! fails with 408. Websocket upgrades are left alone: their "body" is the
//! session's incoming frames, which the session's own heartbeat watches.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use futures_util::Stream;

use super::WebContext;

/// A request body that ends in an error once its time is up.
struct Deadline {
    inner: Pin<Box<Payload>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.as_mut().poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired = true;
            let message = format!(
                "the request body did not arrive within {} s",
                self.limit.as_secs()
            );
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                message,
            )))));
        }
        Poll::Pending
    }
}

/// Puts the deadline on every request body but a websocket upgrade's.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<WebContext>>()
        .map(|ctx| Duration::from_secs(ctx.settings.http.body_timeout_s));
    if let (Some(limit), false) = (limit, req.headers().contains_key(header::UPGRADE)) {
        let inner = Box::pin(req.take_payload());
        let body: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            limit,
            expired: false,
        });
        req.set_payload(Payload::from(body));
    }
    next.call(req).await
}

/// Whether an extractor's payload error is this deadline's.
pub fn timed_out(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}
