//! One websocket session: its own task, draining its own bounded queue from
//! the hub into actix-ws, reading the client's messages, and keeping the
//! heartbeat. Only this task ever waits on this client.

use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use bytestring::ByteString;
use futures_util::StreamExt as _;
use serde::Deserialize;

use super::{close, Connected, Filter, HubHandle};

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

pub async fn run(hub: HubHandle, mut session: Session, stream: MessageStream, conn: Connected) {
    let Connected {
        id,
        mut frames,
        mut kill,
        queued_bytes,
    } = conn;
    let settings = hub.settings.clone();
    let timeout = Duration::from_secs(settings.client_timeout_s);
    let mut stream = stream.max_frame_size(settings.max_client_frame_bytes);
    let mut ping = tokio::time::interval(Duration::from_secs(settings.ping_interval_s));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut reason = "client_closed";
    let closing: Option<CloseReason> = loop {
        tokio::select! {
            biased;
            k = &mut kill => {
                let c = k.unwrap_or(super::Close { code: close::SHUTDOWN, reason: "hub stopped".into() });
                reason = "";
                break Some(CloseReason { code: CloseCode::Other(c.code), description: Some(c.reason) });
            }
            f = frames.recv() => match f {
                Some(frame) => {
                    queued_bytes.fetch_sub(frame.len(), std::sync::atomic::Ordering::Relaxed);
                    if !send(&mut session, frame, timeout).await {
                        reason = "send_failed";
                        break None;
                    }
                }
                None => { reason = ""; break None; }
            },
            m = stream.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    last_heard = Instant::now();
                    match serde_json::from_str::<ClientMessage>(&t) {
                        Ok(ClientMessage::Subscribe { filter }) => {
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
                    if session.pong(&b).await.is_err() {
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
