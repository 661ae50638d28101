//! Validation: raw topic + payload bytes in, a typed [`Message`] or a
//! [`Rejection`] with a specific reason out. Pure and panic-free; the ingest
//! loop dead-letters every rejection and carries on.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::alert::AlertState;
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
    /// The message would add an entity (intersection, unit, KPI, feed,
    /// city) to a live state already holding `state.max_entities`.
    StateFull,
    /// The database refused to store the message (the detail is its own
    /// error). It is kept here and acknowledged, never retried.
    StoreRefused,
}

impl RejectReason {
    pub const ALL: [RejectReason; 16] = [
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
        RejectReason::StateFull,
        RejectReason::StoreRefused,
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
            RejectReason::StateFull => "state_full",
            RejectReason::StoreRefused => "store_refused",
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
    if let Some(at) = nul_escape(text) {
        return Err(out_of_range(format!(
            "a string holds U+0000 (\\u0000 at byte {at}), which no text column can store"
        )));
    }
    let mut msg = match topic.kind() {
        MessageKind::IntersectionInfo => Message::IntersectionInfo(parse(text)?),
        MessageKind::IntersectionState => {
            Message::IntersectionState(std::sync::Arc::new(parse(text)?))
        }
        MessageKind::Command => Message::Command(parse(text)?),
        MessageKind::CommandAck => Message::CommandAck(parse(text)?),
        MessageKind::CallEvent => Message::CallEvent(parse(text)?),
        MessageKind::UnitStatus => Message::UnitStatus(parse(text)?),
        MessageKind::UnitAssignment => Message::UnitAssignment(parse(text)?),
        MessageKind::AppEvent => Message::AppEvent(parse(text)?),
        MessageKind::KpiSample => Message::KpiSample(parse(text)?),
        MessageKind::Alert => Message::Alert(parse(text)?),
    };
    check(&topic, &msg)?;
    if let Message::CallEvent(m) = &mut msg {
        cut_call_text(m);
    }
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

/// Where the payload has a `\u0000` escape (a NUL character in a string),
/// if anywhere. A raw NUL byte is invalid JSON already; an escaped one is
/// valid JSON that PostgreSQL's text and jsonb refuse. A backslash before the
/// escape's own backslash makes it plain text (`\\u0000`), not a NUL.
fn nul_escape(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("\\u0000").map(|i| i + from) {
        let backslashes = bytes[..i].iter().rev().take_while(|b| **b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// Caps on free text, in bytes (UTF-8). Over its cap, a call event's text is
/// cut (a call is never refused for the length of its address or note: see
/// [`cut`]); any other message's is refused as `out_of_range`. Identifiers
/// (ids, agencies of units, OPDs) are 1-64 of `a-z A-Z 0-9 _ -` throughout.
/// With these and `state.max_entities`, every entity of the live state, and
/// so the state, has a bounded size.
pub mod caps {
    /// Intersection and approach names (`info`).
    pub const NAME: usize = 200;
    /// An intersection's district.
    pub const DISTRICT: usize = 100;
    /// A signal plan's name.
    pub const PLAN: usize = 64;
    /// A command's `issued_by`.
    pub const ISSUED_BY: usize = 128;
    /// A command ack's `reason`.
    pub const ACK_REASON: usize = 500;
    /// An operator's reason for a traffic command.
    pub const COMMAND_REASON: usize = 300;
    /// The words of a loudspeaker announcement.
    pub const ANNOUNCEMENT: usize = 500;
    /// A caller's address (call events: cut).
    pub const ADDRESS: usize = 500;
    /// A call event's note (cut).
    pub const NOTE: usize = 2000;
    /// A call event's agency and operator (cut).
    pub const CALL_WHO: usize = 128;
    /// A call event's dispatch protocol code.
    pub const PROTOCOL: usize = 64;
    /// A unit's vehicle kind.
    pub const UNIT_KIND: usize = 64;
    /// An app event's `ref`.
    pub const REFERENCE: usize = 128;
    /// An app event's `attrs`, as JSON.
    pub const ATTRS: usize = 4096;
    /// A KPI's unit.
    pub const KPI_UNIT: usize = 32;
    /// An alert's entity and group (`{kind}:{id}`).
    pub const ALERT_ENTITY: usize = 200;
}

/// Cuts `text` to at most `cap` bytes at a character boundary, ending it
/// with a marker that says how much was cut: `… [+N bytes]`.
pub fn cut(text: &mut String, cap: usize) {
    if text.len() <= cap {
        return;
    }
    // The marker is at most 3 + 3 + 10 + 7 bytes (N below 10^10).
    let mut keep = cap.saturating_sub(24);
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let marker = format!("… [+{} bytes]", text.len() - keep);
    text.truncate(keep);
    text.push_str(&marker);
}

fn cut_call_text(m: &mut CallEvent) {
    if let Some(a) = m.caller.as_mut().and_then(|c| c.address.as_mut()) {
        cut(a, caps::ADDRESS);
    }
    for (t, cap) in [
        (&mut m.note, caps::NOTE),
        (&mut m.agency, caps::CALL_WHO),
        (&mut m.operator, caps::CALL_WHO),
    ] {
        if let Some(t) = t {
            cut(t, cap);
        }
    }
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

/// A callback number as a call centre gives it: digits, `+`, `-` and spaces.
fn is_phone_number(v: &str) -> bool {
    (3..=32).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '))
        && v.chars().filter(char::is_ascii_digit).count() >= 3
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

/// A phase: a number 1..=32 (0 only when `may_be_none`), or a label of 1-8
/// of `A-Z a-z 0-9 _ -` (SCATS names its phases A, B, C...).
fn phase(p: &PhaseLabel, signalising: bool) -> Result<(), Rejection> {
    match p.as_number() {
        Some(0) if !signalising => Ok(()),
        Some(n) if (1..=32).contains(&n) => Ok(()),
        Some(n) => Err(out_of_range(format!(
            "phase = {n} is outside 1..=32{}",
            if signalising {
                " (0 only while flashing or off)"
            } else {
                ""
            }
        ))),
        None if p.as_str().len() <= 8 && is_identifier(p.as_str()) => Ok(()),
        None => Err(out_of_range(format!(
            "phase {:?} is neither a number 1..=32 nor a label of 1-8 of A-Z a-z 0-9 _ -",
            p.as_str()
        ))),
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

/// A KPI metric name: 1-64 of `a-z 0-9 _ .`.
pub fn is_kpi_metric(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// An optional text: any length up to `max` bytes, empty included.
fn at_most(field: &str, v: &str, max: usize) -> Result<(), Rejection> {
    if v.len() > max {
        Err(out_of_range(format!(
            "{field} is {} bytes, the limit is {max}",
            v.len()
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
            text("name", &m.name, caps::NAME)?;
            if let Some(d) = &m.district {
                at_most("district", d, caps::DISTRICT)?;
            }
            lat_lon(m.lat, m.lon)?;
            if m.approaches.is_empty() || m.approaches.len() > 16 {
                return Err(out_of_range(
                    "approaches must list 1..=16 approaches".into(),
                ));
            }
            for a in &m.approaches {
                ident("approaches[].id", &a.id)?;
                text("approaches[].name", &a.name, caps::NAME)?;
            }
        }
        (Topic::IntersectionState { intersection, .. }, Message::IntersectionState(m)) => {
            matches_topic("intersection", &m.intersection, intersection)?;
            text("plan", &m.plan, caps::PLAN)?;
            // A flashing or dark controller runs no cycle and no phase, and
            // real ones say so with 0; a signalising one must give both.
            let signalising = !matches!(m.mode, ControllerMode::Flashing | ControllerMode::Off);
            range(
                "cycle_s",
                m.cycle_s,
                if signalising { 1.0 } else { 0.0 },
                600.0,
            )?;
            range("phase_elapsed_s", m.phase_elapsed_s, 0.0, 600.0)?;
            phase(&m.phase, signalising)?;
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
            text("issued_by", &m.issued_by, caps::ISSUED_BY)?;
            if let Some(r) = &m.reason {
                text("reason", r, caps::COMMAND_REASON)?;
            }
            if let Some(e) = m.expires_in_s {
                if !matches!(
                    m.action,
                    CommandAction::SetPlan | CommandAction::SetMode | CommandAction::Priority
                ) {
                    return Err(out_of_range(format!(
                        "expires_in_s is for set_plan, set_mode and priority, not {}",
                        m.action.as_str()
                    )));
                }
                range("expires_in_s", e, 10.0, 86_400.0)?;
            }
            if let Some(u) = &m.unit {
                ident("unit", u)?;
            }
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
                    Some(p) => text("plan", p, caps::PLAN)?,
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
                CommandAction::Announce => {
                    if let Some(t) = &m.template {
                        ident("template", t)?;
                    }
                    if let Some(a) = &m.approach {
                        ident("approach", a)?;
                    }
                    let Some(text_) = &m.message else {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "announce needs `message`",
                        ));
                    };
                    text("message", text_, caps::ANNOUNCEMENT)?;
                }
                CommandAction::Priority => {
                    let Some(a) = &m.approach else {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "priority needs `approach`",
                        ));
                    };
                    ident("approach", a)?;
                    // A held green that nothing ends would stop the cross streets for good.
                    if m.expires_in_s.is_none() && m.reverts.is_none() {
                        return Err(Rejection::new(
                            RejectReason::MissingField,
                            "priority needs `expires_in_s`",
                        ));
                    }
                }
            }
        }
        (Topic::CommandAck { .. }, Message::CommandAck(m)) => {
            if let Some(r) = &m.reason {
                at_most("reason", r, caps::ACK_REASON)?;
            }
        }
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
            for (field, v) in [
                ("incident_id", &m.incident_id),
                ("related_call", &m.related_call),
            ] {
                if let Some(v) = v {
                    ident(field, v)?;
                }
            }
            if let Some(p) = &m.protocol {
                text("protocol", p, caps::PROTOCOL)?;
            }
            if let Some(n) = &m.callback {
                if !is_phone_number(n) {
                    return Err(out_of_range(format!(
                        "callback {n:?} is not a phone number (3-32 of 0-9 + - space, at least 3 digits)"
                    )));
                }
            }
            let needs = |field: &str, present: bool| {
                if present {
                    Ok(())
                } else {
                    Err(Rejection::new(
                        RejectReason::MissingField,
                        format!("a {} event needs {field}", m.kind.as_str()),
                    ))
                }
            };
            match m.kind {
                CallEventType::UnitCancelled => needs("unit", m.unit.is_some())?,
                CallEventType::Merged => needs("related_call", m.related_call.is_some())?,
                CallEventType::Located => needs("caller", m.caller.is_some())?,
                CallEventType::Noted => needs("note", m.note.is_some())?,
                _ => {}
            }
        }
        (Topic::Unit { unit, .. }, Message::UnitStatus(m)) => {
            matches_topic("unit", &m.unit, unit)?;
            ident("agency", &m.agency)?;
            if let Some(c) = &m.call_id {
                ident("call_id", c)?;
            }
            if let Some(k) = &m.kind {
                at_most("kind", k, caps::UNIT_KIND)?;
            }
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
        (Topic::Assignment { unit, .. }, Message::UnitAssignment(m)) => {
            matches_topic("unit", &m.unit, unit)?;
            ident("call_id", &m.call_id)?;
            text("issued_by", &m.issued_by, caps::ISSUED_BY)?;
            if let Some(p) = m.priority {
                if !(1..=4).contains(&p) {
                    return Err(out_of_range(format!("priority = {p} is outside 1..=4")));
                }
            }
            if let Some(d) = &m.destination {
                lat_lon(d.lat, d.lon)?;
                if let Some(a) = &d.address {
                    at_most("destination.address", a, caps::ADDRESS)?;
                }
            }
            if let Some(n) = &m.note {
                at_most("note", n, caps::NOTE)?;
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
            if let Some(r) = &m.reference {
                at_most("ref", r, caps::REFERENCE)?;
            }
            if let Some(a) = &m.attrs {
                let len = serde_json::to_string(a).map_or(usize::MAX, |j| j.len());
                if len > caps::ATTRS {
                    return Err(out_of_range(format!(
                        "attrs is {len} bytes of JSON, the limit is {}",
                        caps::ATTRS
                    )));
                }
            }
        }
        (Topic::Kpi { .. }, Message::KpiSample(m)) => {
            if !is_kpi_metric(&m.metric) {
                return Err(out_of_range(format!(
                    "metric {:?} is not [a-z0-9_.]{{1,64}}",
                    m.metric
                )));
            }
            range("value", m.value, -1e15, 1e15)?;
            text("unit", &m.unit, caps::KPI_UNIT)?;
            if let Some(t) = m.target {
                range("target", t, -1e15, 1e15)?;
            }
            if let Some(w) = m.window_s {
                range("window_s", w, 0.0, 366.0 * 86400.0)?;
            }
        }
        (Topic::Alert { alert_id, .. }, Message::Alert(m)) => {
            matches_topic("alert_id", &m.alert_id.to_string(), alert_id)?;
            text("entity", &m.entity, caps::ALERT_ENTITY)?;
            text("group", &m.group, caps::ALERT_ENTITY)?;
            text("by", &m.by, caps::ISSUED_BY)?;
            if let Some(d) = &m.district {
                text("district", d, caps::DISTRICT)?;
            }
            if let Some(r) = &m.reason {
                text("reason", r, caps::COMMAND_REASON)?;
            }
            if let Some(a) = &m.acked_by {
                text("acked_by", a, caps::ISSUED_BY)?;
            }
            if let Some(a) = &m.shelved_by {
                text("shelved_by", a, caps::ISSUED_BY)?;
            }
            if let Some(u) = &m.unit {
                text("unit", u, caps::KPI_UNIT)?;
            }
            if !(1..=4).contains(&m.priority) {
                return Err(out_of_range(format!(
                    "priority must be 1..=4, not {}",
                    m.priority
                )));
            }
            for (field, v) in [("value", m.value), ("threshold", m.threshold)] {
                if let Some(v) = v {
                    range(field, v, -1e15, 1e15)?;
                }
            }
            if m.state.is_acknowledged() != m.acked_at.is_some() && m.state != AlertState::Normal {
                return Err(out_of_range(format!(
                    "state {} and acked_at disagree",
                    m.state.as_str()
                )));
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
    fn a_nul_in_a_string_is_refused_and_an_escaped_backslash_is_not_a_nul() {
        let kpi = |unit: &str| {
            format!(
                r#"{{"ts":"2026-11-22T08:00:00+07:00","metric":"m","value":1,"unit":"{unit}"}}"#
            )
        };
        let r = decode(KPI, kpi(r"a\u0000b").as_bytes(), &Limits::default(), now()).unwrap_err();
        assert_eq!(r.reason, RejectReason::OutOfRange, "{r}");
        assert!(r.detail.contains("U+0000"), "{r}");
        // `\\u0000` is a backslash and the text u0000; `\\\u0000` is a backslash and a NUL.
        assert!(decode(KPI, kpi(r"a\\u0000").as_bytes(), &Limits::default(), now()).is_ok());
        assert_eq!(reason(KPI, &kpi(r"\\\u0000")), RejectReason::OutOfRange);
    }

    #[test]
    fn a_call_events_long_text_is_cut_with_a_marker_and_other_long_text_is_refused() {
        let address = "Jl. Panjang ".repeat(3_000);
        let note = "é".repeat(4_000);
        let call = format!(
            r#"{{"event_id":"{}","call_id":"c1","ts":"2026-11-22T08:00:00+07:00","line":"112","type":"received","caller":{{"lat":-6,"lon":106,"address":"{address}"}},"note":"{note}","operator":"op"}}"#,
            uuid::Uuid::new_v4()
        );
        let (topic, msg) = decode(
            "city/k/calls/112",
            call.as_bytes(),
            &Limits::default(),
            now(),
        )
        .expect("a call is never refused for its text");
        let Message::CallEvent(m) = &msg else {
            panic!("a call event")
        };
        let a = m.caller.as_ref().unwrap().address.as_deref().unwrap();
        assert!(
            a.len() <= caps::ADDRESS && a.starts_with("Jl. Panjang"),
            "{a}"
        );
        let kept = a.find('…').expect("a marker");
        assert!(
            a.ends_with(&format!("… [+{} bytes]", address.len() - kept)),
            "{a}"
        );
        let n = m.note.as_deref().unwrap();
        assert!(
            n.len() <= caps::NOTE && n.starts_with('é'),
            "cut at a character boundary"
        );
        assert_eq!(m.operator.as_deref(), Some("op"));
        // The cut message validates again unchanged (publishing it back is a no-op).
        assert_eq!(
            decode(
                &topic.to_string(),
                &msg.to_json(),
                &Limits::default(),
                now()
            )
            .unwrap()
            .1,
            msg
        );
        let long = "x".repeat(caps::REFERENCE + 1);
        let app = format!(
            r#"{{"event_id":"{}","ts":"2026-11-22T08:00:00+07:00","service":"s","type":"a.b","ref":"{long}"}}"#,
            uuid::Uuid::new_v4()
        );
        assert_eq!(
            reason("city/k/apps/s/events", &app),
            RejectReason::OutOfRange
        );
        let attrs = format!(
            r#"{{"event_id":"{}","ts":"2026-11-22T08:00:00+07:00","service":"s","type":"a.b","attrs":{{"x":"{}"}}}}"#,
            uuid::Uuid::new_v4(),
            "y".repeat(caps::ATTRS)
        );
        assert_eq!(
            reason("city/k/apps/s/events", &attrs),
            RejectReason::OutOfRange
        );
    }

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
