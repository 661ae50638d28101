//! What the live state tells the rest of the room: [`Update`]s. An update is
//! either an entity's whole new value (state-like: the latest replaces the
//! previous, so it may be conflated) or one event (delivered once, in order).
//! Each update is serialised once, here, and shared by reference afterwards.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{CallLine, Family};

/// What an update is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    /// Intersection: info + latest controller state.
    Intersection,
    /// One emergency call's projection (stage times, category, unit...).
    Call,
    /// One field unit.
    Unit,
    /// Latest sample of one KPI metric of one service.
    Kpi,
    /// A city's counters for today (WIB).
    Counters,
    /// Freshness of one feed (last message time, stale or not).
    Feed,
    /// An operator command to a controller and its outcome.
    Command,
    /// One call event as published (never conflated).
    CallEvent,
    /// One service application event as published (never conflated).
    AppEvent,
}

impl UpdateKind {
    pub const ALL: [UpdateKind; 9] = [
        UpdateKind::Intersection,
        UpdateKind::Call,
        UpdateKind::Unit,
        UpdateKind::Kpi,
        UpdateKind::Counters,
        UpdateKind::Feed,
        UpdateKind::Command,
        UpdateKind::CallEvent,
        UpdateKind::AppEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Intersection => "intersection",
            UpdateKind::Call => "call",
            UpdateKind::Unit => "unit",
            UpdateKind::Kpi => "kpi",
            UpdateKind::Counters => "counters",
            UpdateKind::Feed => "feed",
            UpdateKind::Command => "command",
            UpdateKind::CallEvent => "call_event",
            UpdateKind::AppEvent => "app_event",
        }
    }

    /// Events are delivered one by one; everything else is an entity value.
    pub fn is_event(self) -> bool {
        matches!(self, UpdateKind::CallEvent | UpdateKind::AppEvent)
    }
}

/// Attributes a subscription filters on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub family: Option<Family>,
    pub intersection: Option<Arc<str>>,
    pub district: Option<Arc<str>>,
    pub line: Option<CallLine>,
}

/// One change of the live state, serialised once.
#[derive(Clone, Debug)]
pub struct Update {
    pub kind: UpdateKind,
    pub city: Arc<str>,
    /// Entity key, unique within the kind (`{city}/{id}`); for events the event id.
    pub key: Arc<str>,
    pub tags: Tags,
    /// When Kendali received the message behind this update.
    pub rx: DateTime<Utc>,
    /// `{"kind":..,"key":..,"rx":..,"value":..}`; `value` is null when the entity was removed.
    pub json: String,
    /// The same update with a summarised value, for screens that asked for
    /// `view=summary` (the wall colouring 2,000 junctions needs their worst
    /// saturation and mode, not every approach's figures).
    pub summary: Option<String>,
    /// Where `value` starts in `json` (it runs to the closing brace).
    value_at: usize,
}

#[derive(Serialize)]
struct Wire<'a, T: Serialize> {
    kind: UpdateKind,
    key: &'a str,
    rx: DateTime<Utc>,
    value: Option<&'a T>,
}

thread_local! {
    /// Scratch for [`encode`]: it keeps the capacity of the largest update seen.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Serialises into a reused scratch buffer, then copies once into an exactly
/// sized string. `serde_json::to_string` grows its buffer by doubling: the
/// bench's profile at 20,000 msg/s had `realloc` and its copies at about 8 %
/// of Kendali's CPU, most of it from here.
fn encode<T: Serialize>(wire: &Wire<'_, T>) -> String {
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        // Entity values are plain structs of strings, numbers, maps and timestamps.
        serde_json::to_writer(&mut *buf, wire).expect("state values always serialise");
        std::str::from_utf8(buf)
            .expect("serde_json writes UTF-8")
            .to_owned()
    })
}

impl Update {
    pub fn new<T: Serialize>(
        kind: UpdateKind,
        city: &str,
        key: String,
        tags: Tags,
        rx: DateTime<Utc>,
        value: Option<&T>,
    ) -> Update {
        let json = encode(&Wire {
            kind,
            key: &key,
            rx,
            value,
        });
        // `value` is the last field, so it runs from after the first `,"value":` (kind, key
        // and rx cannot contain that text) to the final `}`.
        let value_at = json
            .find(",\"value\":")
            .map(|i| i + 9)
            .expect("Wire always writes a value field");
        Update {
            kind,
            city: city.into(),
            key: key.into(),
            tags,
            rx,
            json,
            summary: None,
            value_at,
        }
    }

    /// Adds the summarised form of the value.
    pub fn with_summary<S: Serialize>(mut self, summary: &S) -> Update {
        let json = encode(&Wire {
            kind: self.kind,
            key: &self.key,
            rx: self.rx,
            value: Some(summary),
        });
        self.summary = Some(json);
        self
    }

    /// The wire object for a screen, summarised if it asked for it and there is a summary.
    pub fn wire(&self, summary: bool) -> &str {
        match (&self.summary, summary) {
            (Some(s), true) => s,
            _ => &self.json,
        }
    }

    /// The entity value (or event) as JSON text; `null` for a removal.
    pub fn value_json(&self) -> &str {
        &self.json[self.value_at..self.json.len() - 1]
    }

    pub fn is_removal(&self) -> bool {
        self.value_json() == "null"
    }
}
