//! The bench's screens: K websocket clients subscribed as a wall is (every
//! family of the bench city, each entity at most once a second). Every
//! screen counts the updates it is sent; every screen records the call
//! events it gets (for the lost/duplicated accounting) and their latency;
//! one extra screen without the rate cap measures telemetry latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What one screen saw.
#[derive(Default, Debug)]
pub struct ScreenStats {
    pub frames: u64,
    pub bytes: u64,
    pub updates: u64,
    /// Call event id -> times received.
    pub call_events: HashMap<uuid::Uuid, u32>,
    /// Publish -> receipt, milliseconds.
    pub call_latency_ms: Vec<f64>,
    pub telemetry_latency_ms: Vec<f64>,
    /// Dispatcher actions seen (their call events' `action_id`) and when.
    pub actions_seen: Vec<(uuid::Uuid, std::time::Instant)>,
    pub closed_early: bool,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    updates: Vec<Upd<'a>>,
    #[serde(borrow, default)]
    events: Vec<Upd<'a>>,
}

#[derive(Deserialize)]
struct Upd<'a> {
    kind: &'a str,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallEv<'a> {
    event_id: uuid::Uuid,
    ts: &'a str,
    /// Set on the events of a dispatcher's action (the bench's round trip).
    #[serde(default)]
    action_id: Option<uuid::Uuid>,
}

#[derive(Deserialize)]
struct Inter<'a> {
    #[serde(borrow)]
    state: Option<TsOnly<'a>>,
}

#[derive(Deserialize)]
struct TsOnly<'a> {
    ts: &'a str,
}

/// The call events of a frame, each parsed alone. An update is
/// `{"seq":..,"kind":..,"key":..,"rx":..,"value":{..}}`: the first `"value":`
/// after an event's kind is its value (keys are event ids, `rx` a time).
fn call_events(text: &str) -> impl Iterator<Item = CallEv<'_>> {
    text.match_indices("\"kind\":\"call_event\"")
        .filter_map(|(at, _)| {
            let rest = &text[at..];
            let value = rest.find("\"value\":")? + "\"value\":".len();
            serde_json::Deserializer::from_str(&rest[value..])
                .into_iter::<CallEv>()
                .next()?
                .ok()
        })
}

fn age_ms(ts: &str, now: chrono::DateTime<chrono::Utc>) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some((now - t.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1000.0)
}

/// Bytes a screen's websocket reads at a time.
const READ_BUFFER: usize = 16 * 1024;

/// Connects one screen and reads until `stop`; returns what it saw.
pub async fn screen(
    url: String,
    measure_telemetry: bool,
    stop: watch::Receiver<bool>,
    measuring: Arc<AtomicBool>,
    // Call events seen, the dispatcher's included: the bench stops the
    // screens once each has seen every one.
    seen_calls: Arc<std::sync::atomic::AtomicU64>,
) -> ScreenStats {
    let mut stats = ScreenStats::default();
    // tungstenite zeroes `read_buffer_size` bytes before every read (128 KiB
    // by default): with 100 screens reading frames of a few KiB a piece,
    // that memset was a sixth of the bench's CPU, taken from the machine it
    // measures.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let Ok((mut ws, _)) =
        tokio_tungstenite::connect_async_with_config(&url, Some(config), false).await
    else {
        stats.closed_early = true;
        return stats;
    };
    let mut stop = stop;
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let Some(Ok(msg)) = msg else {
            stats.closed_early = !*stop.borrow();
            break;
        };
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
            continue;
        };
        // Call events are accounted for from the start; rates and latencies after the warm-up.
        let measure = measuring.load(Ordering::Relaxed);
        let now = chrono::Utc::now();
        if measure {
            stats.frames += 1;
            stats.bytes += text.len() as u64;
        }
        // A wall screen only counts updates; it parses frames that carry call events
        // (for the accounting) and, on the measuring screen, everything.
        if measure {
            stats.updates += text.matches("{\"seq\":").count() as u64;
        }
        if !measure_telemetry {
            // A wall screen reads only its call events: tokenizing every
            // frame of 2,500 updates/s on 100 screens was most of the
            // bench's CPU, taken from the machine it measures.
            for ev in call_events(&text) {
                seen_calls.fetch_add(1, Ordering::Relaxed);
                if let Some(a) = ev.action_id {
                    stats.actions_seen.push((a, std::time::Instant::now()));
                    continue;
                }
                *stats.call_events.entry(ev.event_id).or_default() += 1;
                if measure {
                    if let Some(ms) = age_ms(ev.ts, now) {
                        stats.call_latency_ms.push(ms);
                    }
                }
            }
            continue;
        }
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            continue;
        };
        for u in frame.updates.iter().chain(frame.events.iter()) {
            match (u.kind, u.value) {
                ("call_event", Some(v)) => {
                    if let Ok(ev) = serde_json::from_str::<CallEv>(v.get()) {
                        seen_calls.fetch_add(1, Ordering::Relaxed);
                        if let Some(a) = ev.action_id {
                            stats.actions_seen.push((a, std::time::Instant::now()));
                            continue;
                        }
                        *stats.call_events.entry(ev.event_id).or_default() += 1;
                        if measure {
                            if let Some(ms) = age_ms(ev.ts, now) {
                                stats.call_latency_ms.push(ms);
                            }
                        }
                    }
                }
                ("intersection", Some(v)) if measure_telemetry && measure => {
                    if let Ok(Inter { state: Some(s) }) = serde_json::from_str::<Inter>(v.get()) {
                        if let Some(ms) = age_ms(s.ts, now) {
                            stats.telemetry_latency_ms.push(ms);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_screen_finds_every_call_event_of_a_frame_without_parsing_the_rest() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let frame = format!(
            r#"{{"type":"snapshot","seq":9,"updates":[{{"seq":3,"kind":"intersection","key":"k/j1","rx":"2026-11-23T03:00:00Z","value":{{"ts":"x","value":{{"a":1}}}}}},{{"seq":5,"kind":"call_event","key":"{a}","rx":"2026-11-23T03:00:01Z","value":{{"event_id":"{a}","ts":"2026-11-23T10:00:01+07:00","note":"\"value\": in a note"}}}}],"events":[{{"seq":7,"kind":"call_event","key":"{b}","rx":"2026-11-23T03:00:02Z","value":{{"ts":"2026-11-23T10:00:02+07:00","event_id":"{b}"}}}}]}}"#
        );
        let got: Vec<(uuid::Uuid, &str)> =
            call_events(&frame).map(|e| (e.event_id, e.ts)).collect();
        assert_eq!(
            got,
            [
                (a, "2026-11-23T10:00:01+07:00"),
                (b, "2026-11-23T10:00:02+07:00")
            ]
        );
        // Every update is still counted, and the frame is valid JSON as the server sends it.
        assert_eq!(frame.matches("{\"seq\":").count(), 3);
        assert!(serde_json::from_str::<serde_json::Value>(&frame).is_ok());
    }
}
