//! The rows a shift report is computed from, read the same way from
//! PostgreSQL and from the memory store: the calls received in the shift
//! (their projections), the commands sent with their controllers' first
//! answers, the alert transitions, each junction's worst degree of
//! saturation per hour, and the calls still open. The report's figures are
//! computed from these rows alone (`crate::report`), so a test can compute
//! the same figures with SQL over the same rows and compare.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{EventRow, StoreError};
use crate::contract::{Alert, CallEventType, Message, Topic};

/// One call received in the shift, as its projection stands now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRow {
    pub call_id: String,
    pub line: String,
    pub category: Option<String>,
    pub triage: Option<String>,
    pub priority: Option<i16>,
    pub received_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answer_s: Option<f64>,
    pub open: bool,
    pub stage: String,
}

/// One command sent in the shift, with its controller's first answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandRow {
    pub command_id: Uuid,
    pub ts: DateTime<Utc>,
    pub intersection: String,
    pub action: String,
    pub issued_by: String,
    /// `applied`, `rejected`, or None: never answered.
    pub status: Option<String>,
}

/// One junction's worst approach's degree of saturation over one hour:
/// per controller message the highest DS of its approaches, then their
/// mean and maximum within the hour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JunctionHour {
    pub intersection: String,
    pub hour: DateTime<Utc>,
    pub ds_avg: f64,
    pub ds_max: f64,
    pub samples: i64,
}

/// Everything a shift report reads.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ShiftRows {
    /// Calls received in [from, to).
    pub calls: Vec<CallRow>,
    /// Calls received before `to` and open now: what is handed over.
    pub open_calls: Vec<CallRow>,
    pub commands: Vec<CommandRow>,
    /// Alert transitions from a day before the shift to its end (alerts
    /// raised before the shift and still live are handed over too).
    pub alerts: Vec<Alert>,
    pub junctions: Vec<JunctionHour>,
}

/// How far before the shift alert transitions are read.
pub const ALERTS_LOOKBACK: chrono::Duration = chrono::Duration::hours(24);

pub(super) async fn postgres(
    pool: &deadpool_postgres::Pool,
    city: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ShiftRows, StoreError> {
    let client = pool.get().await.map_err(StoreError::from)?;
    let call = |r: &tokio_postgres::Row| CallRow {
        call_id: r.get(0),
        line: r.get(1),
        category: r.get(2),
        triage: r.get(3),
        priority: r.get(4),
        received_at: r.get(5),
        answered_at: r.get(6),
        answer_s: r.get::<_, Option<f32>>(7).map(f64::from),
        open: r.get(8),
        stage: r.get(9),
    };
    const CALL: &str =
        "SELECT call_id, line, category, projection->>'triage', priority, received_at, answered_at,
                               answer_s, open, stage FROM calls";
    let calls = client
        .query(
            &format!("{CALL} WHERE city = $1 AND received_at >= $2 AND received_at < $3 ORDER BY received_at, call_id"),
            &[&city, &from, &to],
        )
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(call)
        .collect();
    let open_calls = client
        .query(
            &format!("{CALL} WHERE city = $1 AND open AND received_at < $2 ORDER BY received_at, call_id"),
            &[&city, &to],
        )
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(call)
        .collect();
    let commands = client
        .query(
            "SELECT c.command_id, c.ts, c.intersection, c.action, c.issued_by, a.status
             FROM commands c
             LEFT JOIN LATERAL (SELECT status FROM command_acks a WHERE a.command_id = c.command_id
                                ORDER BY a.rx LIMIT 1) a ON true
             WHERE c.city = $1 AND c.ts >= $2 AND c.ts < $3 ORDER BY c.ts, c.command_id",
            &[&city, &from, &to],
        )
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| CommandRow {
            command_id: r.get(0),
            ts: r.get(1),
            intersection: r.get(2),
            action: r.get(3),
            issued_by: r.get(4),
            status: r.get(5),
        })
        .collect();
    let alerts = client
        .query(
            "SELECT payload FROM alert_events WHERE city = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, rx",
            &[&city, &(from - ALERTS_LOOKBACK), &to],
        )
        .await
        .map_err(StoreError::from)?
        .iter()
        .filter_map(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok())
        .collect();
    let junctions = client
        .query(
            "SELECT intersection, date_trunc('hour', ts) AS hour, avg(ds)::float8, max(ds)::float8, count(*)
             FROM (SELECT intersection, ts, max(saturation) AS ds FROM atcs_telemetry
                   WHERE city = $1 AND ts >= $2 AND ts < $3 GROUP BY intersection, ts) per_message
             GROUP BY 1, 2 ORDER BY 1, 2",
            &[&city, &from, &to],
        )
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| JunctionHour {
            intersection: r.get(0),
            hour: r.get(1),
            ds_avg: r.get(2),
            ds_max: r.get::<_, f64>(3),
            samples: r.get(4),
        })
        .collect();
    Ok(ShiftRows {
        calls,
        open_calls,
        commands,
        alerts,
        junctions,
    })
}

/// The same from the memory store's events and telemetry.
pub(super) fn memory(
    events: &[&EventRow],
    telemetry: &[&super::TelemetryRow],
    city: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ShiftRows {
    let mut out = ShiftRows::default();
    let mut calls: std::collections::BTreeMap<&str, &crate::domain::Call> = Default::default();
    let mut acks: std::collections::HashMap<Uuid, &str> = Default::default();
    for e in events {
        let EventRow::Message {
            topic,
            msg,
            projection,
            ..
        } = e
        else {
            continue;
        };
        if topic.city() != city {
            continue;
        }
        if let Some(p) = projection {
            calls.insert(&p.call_id, p);
        }
        match (topic, msg) {
            (Topic::CommandAck { .. }, Message::CommandAck(a)) => {
                acks.entry(a.command_id).or_insert(match a.status {
                    crate::contract::AckStatus::Applied => "applied",
                    crate::contract::AckStatus::Rejected => "rejected",
                });
            }
            (_, Message::Alert(a)) => {
                let ts = a.ts.with_timezone(&Utc);
                if ts >= from - ALERTS_LOOKBACK && ts < to {
                    out.alerts.push((**a).clone());
                }
            }
            _ => {}
        }
    }
    for e in events {
        if let EventRow::Message {
            topic:
                Topic::Command {
                    city: c,
                    intersection,
                },
            msg: Message::Command(m),
            ..
        } = e
        {
            let ts = m.ts.with_timezone(&Utc);
            if c == city && ts >= from && ts < to {
                out.commands.push(CommandRow {
                    command_id: m.command_id,
                    ts,
                    intersection: intersection.clone(),
                    action: m.action.as_str().to_owned(),
                    issued_by: m.issued_by.clone(),
                    status: acks.get(&m.command_id).map(|s| (*s).to_owned()),
                });
            }
        }
    }
    for c in calls.values() {
        let Some(received) = c
            .stages
            .get(&CallEventType::Received)
            .map(|t| t.with_timezone(&Utc))
        else {
            continue;
        };
        let row = CallRow {
            call_id: c.call_id.clone(),
            line: c.line.as_str().to_owned(),
            category: c.category.map(|k| k.as_str().to_owned()),
            triage: c.triage.map(|t| t.as_str().to_owned()),
            priority: c.priority.map(i16::from),
            received_at: received,
            answered_at: c
                .stages
                .get(&CallEventType::Answered)
                .map(|t| t.with_timezone(&Utc)),
            // At the precision the database keeps (real).
            answer_s: c.answer_s.map(|s| s as f32 as f64),
            open: c.open,
            stage: c.stage.as_str().to_owned(),
        };
        if c.open && received < to {
            out.open_calls.push(row.clone());
        }
        if received >= from && received < to {
            out.calls.push(row);
        }
    }
    let by_time = |a: &CallRow, b: &CallRow| {
        a.received_at
            .cmp(&b.received_at)
            .then_with(|| a.call_id.cmp(&b.call_id))
    };
    out.calls.sort_by(by_time);
    out.open_calls.sort_by(by_time);
    out.commands
        .sort_by(|a, b| a.ts.cmp(&b.ts).then(a.command_id.cmp(&b.command_id)));
    out.alerts.sort_by_key(|a| a.ts);
    let mut hours: std::collections::BTreeMap<(String, DateTime<Utc>), (f64, f64, i64)> =
        Default::default();
    for r in telemetry {
        let ts = r.ts();
        if *r.city != *city || ts < from || ts >= to {
            continue;
        }
        let ds = r
            .state
            .approaches
            .iter()
            .map(|a| a.saturation as f32 as f64)
            .fold(f64::NEG_INFINITY, f64::max);
        if !ds.is_finite() {
            continue;
        }
        let hour = DateTime::from_timestamp(ts.timestamp() - ts.timestamp().rem_euclid(3600), 0)
            .unwrap_or(ts);
        let e = hours
            .entry((r.state.intersection.clone(), hour))
            .or_insert((0.0, f64::NEG_INFINITY, 0));
        e.0 += ds;
        e.1 = e.1.max(ds);
        e.2 += 1;
    }
    out.junctions = hours
        .into_iter()
        .map(|((intersection, hour), (sum, max, n))| JunctionHour {
            intersection,
            hour,
            ds_avg: sum / n as f64,
            ds_max: max,
            samples: n,
        })
        .collect();
    out
}
