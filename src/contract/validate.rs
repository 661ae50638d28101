//! Validation: raw topic + payload bytes in, a typed [`Message`] or a
//! [`Rejection`] with a specific reason out. Pure and panic-free; the ingest
//! loop dead-letters every rejection and carries on.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::messages::*;
use super::topic::{is_identifier, Topic, TopicError};

/// Limits applied to every message (from the `[ingest]` settings).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest accepted payload in bytes (default 64 KiB).
    pub max_payload: usize,
    /// How far a `ts` may lie in the future (default 5 minutes).
    pub max_future: chrono::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 64 * 1024,
            max_future: chrono::Duration::minutes(5),
        }
    }
}

/// Why a message was refused: the dead-letter reason and the metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The topic is not part of the contract (or has a malformed segment).
    UnknownTopic,
    /// Payload larger than the configured limit.
    PayloadTooLarge,
    /// Payload is not UTF-8.
    NotUtf8,
    /// Payload is not a JSON object.
    InvalidJson,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// An enumerated field has a value the contract does not know.
    UnknownEnum,
    /// A number is NaN, infinite or beyond f64.
    NonFiniteNumber,
    /// A value is outside its allowed range or form.
    OutOfRange,
    /// `ts` is not RFC 3339 with an offset.
    BadTimestamp,
    /// `ts` lies further in the future than allowed.
    FutureTimestamp,
    /// The payload names another entity than the topic does.
    TopicMismatch,
    /// The `event_id` was seen before (the message is ignored).
    DuplicateEvent,
    /// A call event's time contradicts the call's other stages.
    LifecycleOutOfOrder,
}

impl RejectReason {
    pub const ALL: [RejectReason; 14] = [
        RejectReason::UnknownTopic,
        RejectReason::PayloadTooLarge,
        RejectReason::NotUtf8,
        RejectReason::InvalidJson,
        RejectReason::MissingField,
        RejectReason::WrongType,
        RejectReason::UnknownEnum,
        RejectReason::NonFiniteNumber,
        RejectReason::OutOfRange,
        RejectReason::BadTimestamp,
        RejectReason::FutureTimestamp,
        RejectReason::TopicMismatch,
        RejectReason::DuplicateEvent,
        RejectReason::LifecycleOutOfOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownTopic => "unknown_topic",
            RejectReason::PayloadTooLarge => "payload_too_large",
            RejectReason::NotUtf8 => "not_utf8",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::UnknownEnum => "unknown_enum",
            RejectReason::NonFiniteNumber => "non_finite_number",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::FutureTimestamp => "future_timestamp",
            RejectReason::TopicMismatch => "topic_mismatch",
            RejectReason::DuplicateEvent => "duplicate_event",
            RejectReason::LifecycleOutOfOrder => "lifecycle_out_of_order",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message: the reason and a human sentence saying exactly what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl From<TopicError> for Rejection {
    fn from(e: TopicError) -> Self {
        Rejection::new(RejectReason::UnknownTopic, e.to_string())
    }
}

/// Decodes and validates one bus message.
pub fn decode(
    topic: &str,
    payload: &[u8],
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<(Topic, Message), Rejection> {
    let topic = Topic::parse(topic)?;
    if payload.len() > limits.max_payload {
        return Err(Rejection::new(
            RejectReason::PayloadTooLarge,
            format!(
                "payload is {} bytes, the limit is {}",
                payload.len(),
                limits.max_payload
            ),
        ));
    }
    let text = std::str::from_utf8(payload)
        .map_err(|e| Rejection::new(RejectReason::NotUtf8, format!("payload is not UTF-8: {e}")))?;
    let msg = match topic.kind() {
        MessageKind::IntersectionInfo => Message::IntersectionInfo(parse(text)?),
        MessageKind::IntersectionState => {
            Message::IntersectionState(std::sync::Arc::new(parse(text)?))
        }
        MessageKind::Command => Message::Command(parse(text)?),
        MessageKind::CommandAck => Message::CommandAck(parse(text)?),
        MessageKind::CallEvent => Message::CallEvent(parse(text)?),
        MessageKind::UnitStatus => Message::UnitStatus(parse(text)?),
        MessageKind::AppEvent => Message::AppEvent(parse(text)?),
        MessageKind::KpiSample => Message::KpiSample(parse(text)?),
    };
    check(&topic, &msg)?;
    if let Some(ts) = msg.ts() {
        if ts.with_timezone(&Utc) > now + limits.max_future {
            return Err(Rejection::new(
                RejectReason::FutureTimestamp,
                format!(
                    "ts {} is more than {} s ahead of the server clock",
                    ts.to_rfc3339(),
                    limits.max_future.num_seconds()
                ),
            ));
        }
    }
    Ok((topic, msg))
}

/// Validates a message built in code (e.g. by `kendali publish` or the simulator)
/// exactly as ingest would, by encoding and decoding it.
pub fn validate_outgoing(
    topic: &Topic,
    msg: &Message,
    limits: &Limits,
) -> Result<Vec<u8>, Rejection> {
    let bytes = msg.to_json();
    decode(&topic.to_string(), &bytes, limits, Utc::now())?;
    Ok(bytes)
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, Rejection> {
    serde_json::from_str(text).map_err(|e| classify(text, e))
}

/// Maps a serde_json error to the reason an operator can act on.
fn classify(text: &str, e: serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let msg = e.to_string();
    let reason = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            if msg.starts_with("number out of range")
                || non_finite_literal_at(text, e.line(), e.column())
            {
                RejectReason::NonFiniteNumber
            } else {
                RejectReason::InvalidJson
            }
        }
        Category::Data => {
            if msg.starts_with("missing field") {
                RejectReason::MissingField
            } else if msg.starts_with("unknown variant") {
                RejectReason::UnknownEnum
            } else if msg.starts_with("invalid timestamp") {
                RejectReason::BadTimestamp
            } else if msg.starts_with("invalid type: map") && text.trim_start().starts_with('[') {
                RejectReason::InvalidJson
            } else if msg.starts_with("invalid type") && !text.trim_start().starts_with('{') {
                // A JSON scalar or array where an object was expected.
                RejectReason::InvalidJson
            } else if msg.starts_with("invalid type") || msg.starts_with("invalid length") {
                RejectReason::WrongType
            } else {
                RejectReason::OutOfRange
            }
        }
    };
    Rejection::new(reason, msg)
}

/// Whether the JSON syntax error points at `NaN`, `Infinity` or `-Infinity`,
/// which some publishers write for non-finite floats.
fn non_finite_literal_at(text: &str, line: usize, column: usize) -> bool {
    let Some(l) = text.lines().nth(line.saturating_sub(1)) else {
        return false;
    };
    let start = column.saturating_sub(2).min(l.len());
    let rest = l.get(start..).unwrap_or("");
    let rest = rest.trim_start_matches([' ', ':', '-', '+']);
    rest.starts_with("NaN") || rest.starts_with("Infinity") || rest.starts_with("inf")
}

fn out_of_range(detail: String) -> Rejection {
    Rejection::new(RejectReason::OutOfRange, detail)
}

fn range(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), Rejection> {
    if !v.is_finite() {
        return Err(Rejection::new(
            RejectReason::NonFiniteNumber,
            format!("{field} is not finite"),
        ));
    }
    if v < lo || v > hi {
        return Err(out_of_range(format!(
            "{field} = {v} is outside {lo}..={hi}"
        )));
    }
    Ok(())
}

fn ident(field: &str, v: &str) -> Result<(), Rejection> {
    if is_identifier(v) {
        Ok(())
    } else {
        Err(out_of_range(format!(
            "{field} {v:?} is not an identifier (1-64 of a-z A-Z 0-9 _ -)"
        )))
    }
}

fn text(field: &str, v: &str, max: usize) -> Result<(), Rejection> {
    if v.trim().is_empty() || v.len() > max {
        Err(out_of_range(format!(
            "{field} must be 1..={max} bytes of text"
        )))
    } else {
        Ok(())
    }
}

fn matches_topic(field: &str, payload: &str, topic: &str) -> Result<(), Rejection> {
    if payload == topic {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectReason::TopicMismatch,
            format!("payload {field} {payload:?} differs from the topic's {topic:?}"),
        ))
    }
}

fn lat_lon(lat: f64, lon: f64) -> Result<(), Rejection> {
    range("lat", lat, -90.0, 90.0)?;
    range("lon", lon, -180.0, 180.0)
}

/// Semantic checks after typing: ranges, identifiers, topic agreement.
fn check(topic: &Topic, msg: &Message) -> Result<(), Rejection> {
    match (topic, msg) {
        (Topic::IntersectionInfo { intersection, .. }, Message::IntersectionInfo(m)) => {
            matches_topic("intersection", &m.intersection, intersection)?;
            text("name", &m.name, 200)?;
            lat_lon(m.lat, m.lon)?;
            if m.approaches.is_empty() || m.approaches.len() > 16 {
                return Err(out_of_range(
                    "approaches must list 1..=16 approaches".into(),
                ));
            }
            for a in &m.approaches {
                ident("approaches[].id", &a.id)?;
                text("approaches[].name", &a.name, 200)?;
            }
        }
        (Topic::IntersectionState { intersection, .. }, Message::IntersectionState(m)) => {
            matches_topic("intersection", &m.intersection, intersection)?;
            text("plan", &m.plan, 64)?;
            range("cycle_s", m.cycle_s, 1.0, 600.0)?;
            range("phase_elapsed_s", m.phase_elapsed_s, 0.0, 600.0)?;
            if m.phase == 0 || m.phase > 32 {
                return Err(out_of_range(format!(
                    "phase = {} is outside 1..=32",
                    m.phase
                )));
            }
            if m.approaches.len() > 16 {
                return Err(out_of_range(
                    "approaches must list at most 16 approaches".into(),
                ));
            }
            for a in &m.approaches {
                ident("approaches[].id", &a.id)?;
                range("green_s", a.green_s, 0.0, 300.0)?;
                range("flow_vph", a.flow_vph, 0.0, 20_000.0)?;
                range("queue_m", a.queue_m, 0.0, 10_000.0)?;
                range("saturation", a.saturation, 0.0, 3.0)?;
            }
        }
        (Topic::Command { .. }, Message::Command(m)) => {
            text("issued_by", &m.issued_by, 128)?;
            match m.action {
                CommandAction::ExtendGreen => {
                    let Some(a) = &m.approach else {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "extend_green needs `approach`",
                        ));
                    };
                    ident("approach", a)?;
                    let Some(s) = m.seconds else {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "extend_green needs `seconds`",
                        ));
                    };
                    range("seconds", s, 1.0, 120.0)?;
                }
                CommandAction::SetPlan => match &m.plan {
                    Some(p) => text("plan", p, 64)?,
                    None => {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "set_plan needs `plan`",
                        ))
                    }
                },
                CommandAction::SetMode => {
                    if m.mode.is_none() {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "set_mode needs `mode`",
                        ));
                    }
                }
            }
        }
        (Topic::CommandAck { .. }, Message::CommandAck(_)) => {}
        (Topic::Call { line, .. }, Message::CallEvent(m)) => {
            matches_topic("line", m.line.as_str(), line.as_str())?;
            ident("call_id", &m.call_id)?;
            if let Some(c) = &m.caller {
                lat_lon(c.lat, c.lon)?;
            }
            if let Some(p) = m.priority {
                if !(1..=4).contains(&p) {
                    return Err(out_of_range(format!("priority = {p} is outside 1..=4")));
                }
            }
            if let Some(u) = &m.unit {
                ident("unit", u)?;
            }
        }
        (Topic::Unit { unit, .. }, Message::UnitStatus(m)) => {
            matches_topic("unit", &m.unit, unit)?;
            ident("agency", &m.agency)?;
            match (m.lat, m.lon) {
                (Some(lat), Some(lon)) => lat_lon(lat, lon)?,
                (None, None) => {}
                _ => {
                    return Err(Rejection::new(
                        RejectReason::MissingField,
                        "lat and lon come together",
                    ))
                }
            }
        }
        (Topic::AppEvents { service, .. }, Message::AppEvent(m)) => {
            matches_topic("service", &m.service, service)?;
            let dotted = m.kind.len() <= 64
                && m.kind.contains('.')
                && m.kind.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                });
            if !dotted {
                return Err(out_of_range(format!(
                    "type {:?} is not dotted lowercase (e.g. permit.submitted)",
                    m.kind
                )));
            }
            if let Some(o) = &m.opd {
                ident("opd", o)?;
            }
        }
        (Topic::Kpi { .. }, Message::KpiSample(m)) => {
            let ok = !m.metric.is_empty()
                && m.metric.len() <= 64
                && m.metric.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                });
            if !ok {
                return Err(out_of_range(format!(
                    "metric {:?} is not [a-z0-9_.]{{1,64}}",
                    m.metric
                )));
            }
            range("value", m.value, -1e15, 1e15)?;
            text("unit", &m.unit, 32)?;
            if let Some(t) = m.target {
                range("target", t, -1e15, 1e15)?;
            }
            if let Some(w) = m.window_s {
                range("window_s", w, 0.0, 366.0 * 86400.0)?;
            }
        }
        // decode() picks the payload type from the topic, so the pair always agrees.
        _ => unreachable!("decode() chooses the message type from the topic"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-22T01:00:00Z".parse().unwrap()
    }

    fn reason(topic: &str, payload: &str) -> RejectReason {
        decode(topic, payload.as_bytes(), &Limits::default(), now())
            .unwrap_err()
            .reason
    }

    const KPI: &str = "city/cilegon/kpi/perizinan";

    #[test]
    fn a_controller_mode_is_named_as_on_the_wire() {
        use ControllerMode::*;
        for mode in [Adaptive, Fixed, Manual, Flashing, Off] {
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::Value::from(mode.as_str())
            );
        }
    }

    #[test]
    fn every_example_decodes_to_itself() {
        let ts = "2026-11-22T08:00:00.123456+07:00".parse().unwrap();
        for kind in MessageKind::ALL {
            let (topic, msg) = example(kind, ts);
            let (t2, m2) = decode(
                &topic.to_string(),
                &msg.to_json(),
                &Limits::default(),
                now(),
            )
            .unwrap();
            assert_eq!((t2, m2), (topic, msg), "{kind:?}");
        }
    }

    #[test]
    fn each_bad_input_gets_its_reason() {
        let ok = r#"{"ts":"2026-11-22T08:00:00+07:00","metric":"m","value":1,"unit":"%"}"#;
        assert!(decode(KPI, ok.as_bytes(), &Limits::default(), now()).is_ok());
        assert_eq!(reason(KPI, "not json"), RejectReason::InvalidJson);
        assert_eq!(reason(KPI, "[1,2]"), RejectReason::InvalidJson);
        assert_eq!(reason(KPI, "42"), RejectReason::InvalidJson);
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22T08:00:00+07:00","metric":"m","value":NaN,"unit":"%"}"#
            ),
            RejectReason::NonFiniteNumber
        );
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22T08:00:00+07:00","metric":"m","value":1e999,"unit":"%"}"#
            ),
            RejectReason::NonFiniteNumber
        );
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22T08:00:00+07:00","metric":"m","value":"1","unit":"%"}"#
            ),
            RejectReason::WrongType
        );
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22T08:00:00+07:00","metric":"m","unit":"%"}"#
            ),
            RejectReason::MissingField
        );
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22 08:00","metric":"m","value":1,"unit":"%"}"#
            ),
            RejectReason::BadTimestamp
        );
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22T09:00:00+07:00","metric":"m","value":1,"unit":"%"}"#
            ),
            RejectReason::FutureTimestamp
        );
        assert_eq!(
            reason(
                KPI,
                r#"{"ts":"2026-11-22T08:00:00+07:00","metric":"M!","value":1,"unit":"%"}"#
            ),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason("city/cilegon/weather", ok),
            RejectReason::UnknownTopic
        );
        let unit = r#"{"ts":"2026-11-22T08:00:00+07:00","unit":"amb-01","agency":"dinkes","status":"flying"}"#;
        assert_eq!(
            reason("city/cilegon/units/amb-01/status", unit),
            RejectReason::UnknownEnum
        );
        let unit = unit.replace("flying", "available");
        assert!(decode(
            "city/cilegon/units/amb-01/status",
            unit.as_bytes(),
            &Limits::default(),
            now()
        )
        .is_ok());
        assert_eq!(
            reason("city/cilegon/units/amb-02/status", &unit),
            RejectReason::TopicMismatch
        );
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
        assert_eq!(reason(KPI, &big), RejectReason::PayloadTooLarge);
        assert_eq!(
            decode(KPI, &[b'{', 0xff, b'}'], &Limits::default(), now())
                .unwrap_err()
                .reason,
            RejectReason::NotUtf8
        );
    }
}
