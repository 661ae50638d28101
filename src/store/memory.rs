//! The bounded in-memory store (the embedded default, with no database):
//! the same write and history interface as PostgreSQL, over capped rings.
//! History is lost on restart, which the start-up log says.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::history::*;
use super::{Batch, EventRow, TelemetryRow};
use crate::contract::{CallEventType, Message};

/// Rows kept per table (a telemetry row is one controller message, about
/// four approach readings): enough for the last hours of a busy city in a few tens of MB.
const TELEMETRY_KEPT: usize = 50_000;
const EVENTS_KEPT: usize = 100_000;
/// And at most this many bytes of events (as JSON): a call event may carry
/// up to about 3 KB of text, so a count alone allowed 300 MB.
const EVENT_BYTES_KEPT: usize = 64 << 20;

#[derive(Default)]
struct Tables {
    telemetry: VecDeque<TelemetryRow>,
    /// Each event with its size in bytes (as JSON).
    events: VecDeque<(EventRow, usize)>,
    event_bytes: usize,
    event_ids: HashSet<uuid::Uuid>,
}

#[derive(Clone, Default)]
pub struct MemoryBackend {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryBackend {
    pub fn write(&self, batch: Batch) {
        let mut t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        for r in batch.telemetry {
            if t.telemetry.len() == TELEMETRY_KEPT {
                t.telemetry.pop_front();
            }
            t.telemetry.push_back(r);
        }
        for e in batch.events {
            // Dead letters are shown from the dead-letter ring (`/api/deadletter`),
            // and no history reads them: kept here, 100,000 of them held 430 MB.
            let EventRow::Message { msg, .. } = &e else {
                continue;
            };
            // Idempotent by event id, as the database is.
            if let Some(id) = stored_id(msg) {
                if !t.event_ids.insert(id) {
                    continue;
                }
            }
            let bytes = msg.to_json().len();
            while t.events.len() >= EVENTS_KEPT
                || (!t.events.is_empty() && t.event_bytes + bytes > EVENT_BYTES_KEPT)
            {
                let Some((old, old_bytes)) = t.events.pop_front() else {
                    break;
                };
                t.event_bytes -= old_bytes;
                if let EventRow::Message { msg, .. } = old {
                    if let Some(id) = stored_id(&msg) {
                        t.event_ids.remove(&id);
                    }
                }
            }
            t.event_bytes += bytes;
            t.events.push_back((e, bytes));
        }
    }

    pub fn shift_rows(
        &self,
        city: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> super::shift::ShiftRows {
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let events: Vec<&EventRow> = t.events.iter().map(|(e, _)| e).collect();
        let telemetry: Vec<&TelemetryRow> = t.telemetry.iter().collect();
        super::shift::memory(&events, &telemetry, city, from, to)
    }

    pub fn query(&self, q: &HistoryQuery) -> HistoryAnswer {
        let t = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let inside = |ts: DateTime<Utc>, r: &Range| ts >= r.from && ts < r.to;
        match q {
            HistoryQuery::Atcs {
                city,
                intersection,
                approach,
                metric,
                range,
            } => {
                let mut acc = Accumulator::default();
                for r in t
                    .telemetry
                    .iter()
                    .filter(|r| *r.city == **city && r.state.intersection == **intersection)
                {
                    let ts = r.ts();
                    if !inside(ts, range) {
                        continue;
                    }
                    for a in r
                        .state
                        .approaches
                        .iter()
                        .filter(|a| approach.as_ref().is_none_or(|x| *x == a.id))
                    {
                        let v = match metric {
                            AtcsMetric::Saturation => a.saturation,
                            AtcsMetric::FlowVph => a.flow_vph,
                            AtcsMetric::QueueM => a.queue_m,
                            AtcsMetric::GreenS => a.green_s,
                        };
                        // At the precision PostgreSQL keeps (real).
                        acc.add(RangeParams::bucket_of(range, ts), v as f32 as f64);
                    }
                }
                HistoryAnswer::Series(acc.points())
            }
            HistoryQuery::Kpi {
                city,
                service,
                metric,
                range,
            } => {
                let mut acc = Accumulator::default();
                for (e, _) in &t.events {
                    if let EventRow::Message {
                        topic,
                        msg: Message::KpiSample(k),
                        ..
                    } = e
                    {
                        let ts = k.ts.with_timezone(&Utc);
                        if topic.city() == city
                            && matches!(topic, crate::contract::Topic::Kpi { service: s, .. } if s == service)
                            && k.metric == *metric
                            && inside(ts, range)
                        {
                            acc.add(RangeParams::bucket_of(range, ts), k.value);
                        }
                    }
                }
                HistoryAnswer::Series(acc.points())
            }
            HistoryQuery::Units { city, unit, range } => HistoryAnswer::Units(
                t.events
                    .iter()
                    .filter_map(|(e, _)| match e {
                        EventRow::Message {
                            topic,
                            msg: Message::UnitStatus(u),
                            ..
                        } if topic.city() == city => Some(u),
                        _ => None,
                    })
                    .filter(|u| {
                        unit.as_ref().is_none_or(|x| *x == u.unit)
                            && inside(u.ts.with_timezone(&Utc), range)
                    })
                    .map(|u| UnitRecord {
                        ts: u.ts.with_timezone(&Utc),
                        unit: u.unit.clone(),
                        agency: u.agency.clone(),
                        status: serde_json::to_value(u.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        lat: u.lat,
                        lon: u.lon,
                        call_id: u.call_id.clone(),
                    })
                    .collect(),
            ),
            HistoryQuery::Commands {
                city,
                intersection,
                range,
            } => {
                // The first answer to each command.
                let mut answers: std::collections::HashMap<
                    uuid::Uuid,
                    &crate::contract::CommandAck,
                > = Default::default();
                for (e, _) in &t.events {
                    if let EventRow::Message {
                        topic:
                            crate::contract::Topic::CommandAck {
                                city: c,
                                intersection: i,
                            },
                        msg: Message::CommandAck(a),
                        ..
                    } = e
                    {
                        if c == city && i == intersection {
                            answers.entry(a.command_id).or_insert(&**a);
                        }
                    }
                }
                let mut out: Vec<super::history::CommandRecord> = t
                    .events
                    .iter()
                    .filter_map(|(e, _)| match e {
                        EventRow::Message {
                            topic:
                                crate::contract::Topic::Command {
                                    city: c,
                                    intersection: i,
                                },
                            msg: Message::Command(m),
                            rx,
                            ..
                        } if c == city
                            && i == intersection
                            && inside(m.ts.with_timezone(&Utc), range) =>
                        {
                            let a = answers.get(&m.command_id);
                            Some(super::history::CommandRecord {
                                command: (**m).clone(),
                                rx: *rx,
                                status: a.map(|a| match a.status {
                                    crate::contract::AckStatus::Applied => "applied".to_owned(),
                                    crate::contract::AckStatus::Rejected => "rejected".to_owned(),
                                }),
                                reason: a.and_then(|a| a.reason.clone()),
                                ack_ts: a.map(|a| a.ts.with_timezone(&Utc)),
                            })
                        }
                        _ => None,
                    })
                    .collect();
                out.sort_by_key(|r| std::cmp::Reverse(r.command.ts));
                out.truncate(super::history::COMMANDS_MAX);
                HistoryAnswer::Commands(out)
            }
            HistoryQuery::Alerts { city, range } => {
                let mut out: Vec<crate::contract::Alert> = t
                    .events
                    .iter()
                    .filter_map(|(e, _)| match e {
                        EventRow::Message {
                            topic,
                            msg: Message::Alert(m),
                            ..
                        } if topic.city() == city && inside(m.ts.with_timezone(&Utc), range) => {
                            Some((**m).clone())
                        }
                        _ => None,
                    })
                    .collect();
                out.sort_by_key(|a| a.ts);
                out.truncate(super::history::ALERTS_MAX);
                HistoryAnswer::Alerts(out)
            }
            HistoryQuery::CallTimeline { city, call_id } => {
                let mut events: Vec<crate::contract::CallEvent> = t
                    .events
                    .iter()
                    .filter_map(|(e, _)| match e {
                        EventRow::Message {
                            topic,
                            msg: Message::CallEvent(m),
                            ..
                        } if topic.city() == city && m.call_id == *call_id => Some((**m).clone()),
                        _ => None,
                    })
                    .collect();
                events.sort_by_key(|m| m.ts);
                events.truncate(super::history::CALL_TIMELINE_MAX);
                HistoryAnswer::CallEvents(events)
            }
            HistoryQuery::Calls {
                city,
                line,
                category,
                range,
            } => {
                // Calls bucket by their received time, from their projections.
                let mut calls: std::collections::BTreeMap<&str, &crate::domain::Call> =
                    Default::default();
                for (e, _) in &t.events {
                    if let EventRow::Message {
                        topic,
                        projection: Some(p),
                        ..
                    } = e
                    {
                        if topic.city() == city {
                            calls.insert(&p.call_id, p);
                        }
                    }
                }
                let mut buckets: std::collections::BTreeMap<DateTime<Utc>, (CallBucket, f64, u64)> =
                    Default::default();
                for c in calls.values() {
                    if line.is_some_and(|l| l != c.line)
                        || category.is_some_and(|k| Some(k) != c.category)
                    {
                        continue;
                    }
                    let Some(received) = c
                        .stages
                        .get(&CallEventType::Received)
                        .map(|t| t.with_timezone(&Utc))
                    else {
                        continue;
                    };
                    if !inside(received, range) {
                        continue;
                    }
                    let b = RangeParams::bucket_of(range, received);
                    let e = buckets.entry(b).or_insert_with(|| {
                        (
                            CallBucket {
                                t: Some(b),
                                ..Default::default()
                            },
                            0.0,
                            0,
                        )
                    });
                    add_call(
                        &mut e.0,
                        &mut e.1,
                        &mut e.2,
                        c.answer_s,
                        c.stages.contains_key(&CallEventType::Abandoned),
                    );
                }
                HistoryAnswer::Calls(
                    buckets
                        .into_values()
                        .map(|(mut b, sum, n)| {
                            b.answer_s_avg = (n > 0).then(|| sum / n as f64);
                            b
                        })
                        .collect(),
                )
            }
        }
    }
}

/// Counts one call into a bucket.
pub fn add_call(
    b: &mut CallBucket,
    answer_sum: &mut f64,
    answered_n: &mut u64,
    answer_s: Option<f64>,
    abandoned: bool,
) {
    b.received += 1;
    if let Some(s) = answer_s {
        b.answered += 1;
        b.answered_within_15s += (s <= 15.0) as u64;
        b.answered_within_20s += (s <= 20.0) as u64;
        *answer_sum += s;
        *answered_n += 1;
    }
    b.abandoned += abandoned as u64;
}

/// The id a stored message is idempotent by: an event's, or an alert transition's.
fn stored_id(msg: &Message) -> Option<uuid::Uuid> {
    match msg {
        Message::Alert(a) => Some(a.event_id),
        m => m.event_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{example, MessageKind, RejectReason, Rejection};
    use crate::ingest::deadletter::DeadLetter;

    /// A flood of refused 10 KB messages grew the memory store by 430 MB
    /// (100,000 dead letters of 4 KB each); long call events could reach
    /// 300 MB. Dead letters are not kept here, and events are bounded in bytes.
    #[test]
    fn the_memory_store_keeps_no_dead_letters_and_a_bounded_number_of_bytes() {
        let store = MemoryBackend::default();
        let ts = Utc::now().with_timezone(&crate::domain::wib());
        let dead = DeadLetter::new(
            b"city/k/atcs/x/state",
            &[b'x'; 10_000],
            &Rejection::new(RejectReason::InvalidJson, "not JSON"),
            Utc::now(),
        );
        let mut written = 0;
        for _ in 0..40 {
            let mut batch = Batch::default();
            for _ in 0..1000 {
                let (topic, mut msg) = example(MessageKind::CallEvent, ts);
                if let Message::CallEvent(m) = &mut msg {
                    m.event_id = uuid::Uuid::new_v4();
                    m.note = Some("n".repeat(1900));
                }
                batch.events.push(EventRow::Message {
                    topic,
                    msg,
                    rx: Utc::now(),
                    projection: None,
                });
                batch.events.push(EventRow::Dead(dead.clone()));
                written += 1;
            }
            store.write(batch);
        }
        let t = store.tables.lock().unwrap();
        assert!(t
            .events
            .iter()
            .all(|(e, _)| matches!(e, EventRow::Message { .. })));
        assert!(t.event_bytes <= EVENT_BYTES_KEPT, "{}", t.event_bytes);
        assert_eq!(
            t.event_bytes,
            t.events.iter().map(|(_, b)| b).sum::<usize>()
        );
        assert!(t.events.len() < written, "the oldest left");
        assert_eq!(t.event_ids.len(), t.events.len());
    }
}
