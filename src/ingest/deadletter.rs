//! The dead-letter: every refused message with its topic, reason, payload and
//! time, kept in a bounded ring for `GET /api/deadletter` and counted by
//! reason. Only the rejection path takes its lock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::contract::{RejectReason, Rejection};
use crate::metrics::Metrics;

/// One refused message.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub rx: DateTime<Utc>,
    pub topic: String,
    pub reason: RejectReason,
    pub detail: String,
    /// The payload as received (lossy UTF-8, cut at 4 KiB).
    pub payload: String,
    pub payload_bytes: usize,
}

/// Largest payload excerpt kept per entry.
const PAYLOAD_EXCERPT: usize = 4096;

impl DeadLetter {
    pub fn new(
        topic: &[u8],
        payload: &[u8],
        rejection: &Rejection,
        rx: DateTime<Utc>,
    ) -> DeadLetter {
        let cut = &payload[..payload.len().min(PAYLOAD_EXCERPT)];
        DeadLetter {
            rx,
            topic: storable(String::from_utf8_lossy(topic).into_owned()),
            reason: rejection.reason,
            detail: storable(rejection.detail.clone()),
            payload: storable(String::from_utf8_lossy(cut).into_owned()),
            payload_bytes: payload.len(),
        }
    }
}

/// The text with every NUL character replaced by U+FFFD: a dead letter must
/// always be storable, and PostgreSQL's text refuses NUL (a payload of raw
/// NUL bytes would otherwise stop the store at its dead letter).
fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[derive(Clone)]
pub struct DeadLetters {
    ring: Arc<Mutex<Ring>>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

/// Log lines of dead letters per second; past this they are counted and
/// summarised once a second. A flood of bad messages (70,000 a second in a
/// bench step) logged one line each costs more CPU than refusing them and
/// fills the disk; every one is still counted and kept in the ring.
const LOGGED_PER_SECOND: u32 = 20;

struct Ring {
    entries: VecDeque<DeadLetter>,
    window: Instant,
    logged: u32,
    unlogged: u64,
}

impl DeadLetters {
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> DeadLetters {
        DeadLetters {
            ring: Arc::new(Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.min(4096)),
                window: Instant::now(),
                logged: 0,
                unlogged: 0,
            })),
            capacity: capacity.max(1),
            metrics,
        }
    }

    pub fn push(&self, d: DeadLetter) {
        self.metrics
            .rejected
            .with_label_values(&[d.reason.as_str()])
            .inc();
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.window.elapsed() >= Duration::from_secs(1) {
            if ring.unlogged > 0 {
                tracing::warn!(
                    not_logged = ring.unlogged,
                    "more messages dead-lettered than logged (see /api/deadletter and kendali_rejected_total)"
                );
            }
            ring.window = Instant::now();
            ring.logged = 0;
            ring.unlogged = 0;
        }
        if ring.logged < LOGGED_PER_SECOND {
            ring.logged += 1;
            tracing::warn!(topic = %d.topic, reason = %d.reason, detail = %d.detail, "message dead-lettered");
        } else {
            ring.unlogged += 1;
        }
        if ring.entries.len() == self.capacity {
            ring.entries.pop_front();
        }
        ring.entries.push_back(d);
    }

    /// Most recent first, at most `limit`, optionally only one reason.
    pub fn recent(&self, limit: usize, reason: Option<RejectReason>) -> Vec<DeadLetter> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.entries
            .iter()
            .rev()
            .filter(|d| reason.is_none_or(|r| d.reason == r))
            .take(limit)
            .cloned()
            .collect()
    }
}
