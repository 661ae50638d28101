//! One websocket session. Its task reads the client's messages and keeps the
//! heartbeat; only this task ever waits on this client. The socket's body,
//! [`FrameBody`], takes the hub's frames from the client's bounded queue one
//! at a time, as the connection can write them.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::web::Bytes;
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use bytestring::ByteString;
use futures_util::StreamExt as _;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::hub::{close, ClientId, Close, Filter, HubHandle};

/// Messages a client may send.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    /// Replace the subscription; a new snapshot follows.
    Subscribe {
        #[serde(flatten)]
        filter: Filter,
    },
    /// Application-level ping; answered with `pong`.
    Ping,
}

fn error_frame(message: &str) -> ByteString {
    serde_json::json!({ "type": "error", "message": message })
        .to_string()
        .into()
}

/// Sends one frame unless the client stays blocked past `limit`.
async fn send(session: &mut Session, frame: ByteString, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, session.text(frame)).await,
        Ok(Ok(()))
    )
}

/// The websocket response body: the hub's frames, straight from the client's
/// queue, beside the frames actix-ws writes for the session (pings, pongs,
/// replies, the close frame).
///
/// actix-ws's own body empties its 32-message channel at every poll and
/// encodes all of it into one fresh buffer, a private copy per socket that no
/// queue bound sees (up to 32 frames for a slow socket; not, as measured, the
/// main holder with 1,000 lagging screens). Here a
/// frame leaves the queue only when the connection asks for more (actix-http
/// fills its write buffer up to 32 KiB), its payload is the hub's shared
/// buffer (only the 2-10 header bytes are new), and the queue's byte count
/// stays exact.
pub struct FrameBody {
    /// actix-ws's body; its end (after a close frame) ends the response.
    control: BoxBody,
    frames: Option<mpsc::Receiver<ByteString>>,
    queued_bytes: Arc<AtomicUsize>,
    /// Frames taken from the queue so far: the session watches it move.
    taken: Arc<AtomicU64>,
    /// What is left of the payload of the frame whose header just went out:
    /// nothing else may be written before it.
    pending: Option<Bytes>,
}

impl FrameBody {
    pub fn new(
        control: BoxBody,
        frames: mpsc::Receiver<ByteString>,
        queued_bytes: Arc<AtomicUsize>,
        taken: Arc<AtomicU64>,
    ) -> FrameBody {
        FrameBody {
            control,
            frames: Some(frames),
            queued_bytes,
            taken,
            pending: None,
        }
    }
}

/// Largest piece of a payload handed to actix-http at once. Its write buffer
/// takes pieces until it holds 32 KiB and grows to fit the last one, so a
/// whole large frame (a snapshot of a big city) would grow every slow
/// socket's buffer to that size. With slices it stays near 64 KB (measured
/// with 1,000 lagging screens). Pieces of a shared payload are slices of it,
/// not copies.
const WRITE_SLICE: usize = 8 * 1024;

/// The header of an unmasked, final text frame of `len` bytes (RFC 6455 5.2).
fn text_header(len: usize) -> Bytes {
    let mut h = Vec::with_capacity(10);
    h.push(0x81);
    if len < 126 {
        h.push(len as u8);
    } else if len <= u16::MAX as usize {
        h.push(126);
        h.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        h.push(127);
        h.extend_from_slice(&(len as u64).to_be_bytes());
    }
    Bytes::from(h)
}

impl futures_util::Stream for FrameBody {
    type Item = Result<Bytes, Box<dyn std::error::Error>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(mut rest) = this.pending.take() {
            if rest.len() > WRITE_SLICE {
                let head = rest.split_to(WRITE_SLICE);
                this.pending = Some(rest);
                return Poll::Ready(Some(Ok(head)));
            }
            return Poll::Ready(Some(Ok(rest)));
        }
        // Control frames first: they are small and a pong is waited for.
        match Pin::new(&mut this.control).poll_next(cx) {
            Poll::Ready(Some(chunk)) => return Poll::Ready(Some(chunk)),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        let Some(frames) = this.frames.as_mut() else {
            return Poll::Pending;
        };
        match frames.poll_recv(cx) {
            Poll::Ready(Some(frame)) => {
                this.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                this.taken.fetch_add(1, Ordering::Relaxed);
                let payload = frame.into_bytes();
                let header = text_header(payload.len());
                this.pending = Some(payload).filter(|p| !p.is_empty());
                Poll::Ready(Some(Ok(header)))
            }
            // The hub let the client go; the session closes the socket.
            Poll::Ready(None) => {
                this.frames = None;
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What the session watches of its queue: the bytes waiting in it (the hub
/// adds, the socket's body subtracts) and the frames taken from it.
pub struct QueueWatch {
    pub queued_bytes: Arc<AtomicUsize>,
    pub taken: Arc<AtomicU64>,
}

/// What the person behind the socket may see, and when their session ends.
pub struct Access {
    /// Callers' personal data (kept across resubscriptions: the client cannot ask for it).
    pub personal: bool,
    /// Resolves when the person's session ends (revoked, expired, user disabled).
    pub session_end: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
}

pub async fn run(
    hub: HubHandle,
    mut session: Session,
    stream: MessageStream,
    id: ClientId,
    mut kill: oneshot::Receiver<Close>,
    queue: QueueWatch,
    access: Access,
) {
    let Access {
        personal,
        mut session_end,
    } = access;
    let settings = hub.settings.clone();
    let timeout = Duration::from_secs(settings.client_timeout_s);
    let mut stream = stream.max_frame_size(settings.max_client_frame_bytes);
    let mut ping = tokio::time::interval(Duration::from_secs(settings.ping_interval_s));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    // When the queue was last empty or last gave a frame to the socket: a
    // client that sends (pings, even) but never reads would otherwise hold
    // its queue, and the hub's place for it, for ever.
    let mut last_moved = Instant::now();
    let mut taken_seen = 0;
    let mut reason = "client_closed";
    let closing: Option<CloseReason> = loop {
        tokio::select! {
            biased;
            k = &mut kill => {
                let c = k.unwrap_or(Close { code: close::SHUTDOWN, reason: "hub stopped".into() });
                reason = "";
                break Some(CloseReason { code: CloseCode::Other(c.code), description: Some(c.reason) });
            }
            _ = &mut session_end => {
                reason = "session_ended";
                break Some(CloseReason { code: CloseCode::Policy, description: Some("your session has ended: sign in again".into()) });
            }
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    last_heard = Instant::now();
                    match serde_json::from_str::<ClientMessage>(&t) {
                        Ok(ClientMessage::Subscribe { mut filter }) => {
                            filter.personal = personal;
                            if hub.resubscribe(id, filter).await.is_err() {
                                break None;
                            }
                        }
                        Ok(ClientMessage::Ping) => {
                            let pong = format!("{{\"type\":\"pong\",\"server_time\":\"{}\"}}", chrono::Utc::now().to_rfc3339());
                            if !send(&mut session, pong.into(), timeout).await {
                                break None;
                            }
                        }
                        Err(e) => {
                            if !send(&mut session, error_frame(&format!("bad client message: {e}")), timeout).await {
                                break None;
                            }
                        }
                    }
                }
                Some(Ok(Message::Ping(b))) => {
                    last_heard = Instant::now();
                    // Bounded: the pong waits for room in actix-ws's channel,
                    // which a client that does not read never makes.
                    if !matches!(tokio::time::timeout(timeout, session.pong(&b)).await, Ok(Ok(()))) {
                        reason = "stalled";
                        break None;
                    }
                }
                Some(Ok(Message::Pong(_))) | Some(Ok(Message::Continuation(_))) | Some(Ok(Message::Nop)) => last_heard = Instant::now(),
                Some(Ok(Message::Binary(_))) => {
                    last_heard = Instant::now();
                    if !send(&mut session, error_frame("binary frames are not part of the protocol; send JSON text"), timeout).await {
                        break None;
                    }
                }
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Err(e)) => {
                    reason = "protocol_error";
                    break Some(CloseReason { code: CloseCode::Size, description: Some(format!("protocol error: {e}")) });
                }
            },
            _ = ping.tick() => {
                let taken = queue.taken.load(Ordering::Relaxed);
                if taken != taken_seen || queue.queued_bytes.load(Ordering::Relaxed) == 0 {
                    taken_seen = taken;
                    last_moved = Instant::now();
                } else if last_moved.elapsed() > timeout {
                    reason = "stalled";
                    break Some(CloseReason { code: CloseCode::Other(close::TIMEOUT), description: Some("the client took no data within the timeout".into()) });
                }
                if last_heard.elapsed() > timeout {
                    reason = "timeout";
                    break Some(CloseReason { code: CloseCode::Other(close::TIMEOUT), description: Some("no frame from client within the timeout".into()) });
                }
                if tokio::time::timeout(timeout, session.ping(b"kendali")).await.map(|r| r.is_err()).unwrap_or(true) {
                    reason = "send_failed";
                    break None;
                }
            }
        }
    };
    if !reason.is_empty() {
        hub.disconnect(id, reason).await;
    }
    // A client that stopped reading may never take the close frame: do not wait on it.
    let _ = tokio::time::timeout(Duration::from_secs(1), session.close(closing)).await;
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use actix_web::body::{BodyStream, BoxBody};
    use actix_web::web::Bytes;
    use futures_util::Stream;
    use tokio::sync::mpsc;

    use super::{text_header, FrameBody, WRITE_SLICE};

    #[test]
    fn a_large_frame_goes_to_the_connection_in_slices_of_its_shared_payload() {
        let control = BoxBody::new(BodyStream::new(futures_util::stream::pending::<
            Result<Bytes, std::convert::Infallible>,
        >()));
        let (tx, rx) = mpsc::channel(4);
        let queued = Arc::new(AtomicUsize::new(0));
        let mut body = FrameBody::new(control, rx, queued, Default::default());
        let payload = "x".repeat(2 * WRITE_SLICE + 1000);
        let shared = bytestring::ByteString::from(payload.clone());
        let start = shared.as_bytes().as_ptr() as usize;
        tx.try_send(shared).unwrap();
        tx.try_send("next".into()).unwrap();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let mut next = || match std::pin::Pin::new(&mut body).poll_next(&mut cx) {
            Poll::Ready(Some(Ok(b))) => b,
            _ => panic!("FrameBody had nothing to write"),
        };
        assert_eq!(&next()[..], &text_header(payload.len())[..]);
        let mut written = Vec::new();
        for expected in [WRITE_SLICE, WRITE_SLICE, 1000] {
            let piece = next();
            assert_eq!(piece.len(), expected);
            // A slice of the hub's buffer, not a copy of it.
            assert_eq!(piece.as_ptr() as usize, start + written.len());
            written.extend_from_slice(&piece);
        }
        assert_eq!(written, payload.as_bytes());
        // Only then the next frame.
        assert_eq!(&next()[..], &text_header(4)[..]);
        assert_eq!(&next()[..], b"next");
    }

    #[test]
    fn text_frame_headers_use_the_shortest_length_form() {
        assert_eq!(&text_header(0)[..], &[0x81, 0]);
        assert_eq!(&text_header(125)[..], &[0x81, 125]);
        assert_eq!(&text_header(126)[..], &[0x81, 126, 0, 126]);
        assert_eq!(&text_header(65_535)[..], &[0x81, 126, 0xff, 0xff]);
        assert_eq!(
            &text_header(70_000)[..],
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
    }
}
