//! What the live state tells the rest of the room: [`Update`]s. An update is
//! either an entity's whole new value (state-like: the latest replaces the
//! previous, so it may be conflated) or one event (delivered once, in order).
//! Each update is serialised at most once per form (now, or when a screen
//! first needs it) and shared by reference afterwards.

use std::sync::{Arc, OnceLock};

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
    /// An alert that is not back to normal (a removal when it is).
    Alert,
}

impl UpdateKind {
    pub const ALL: [UpdateKind; 10] = [
        UpdateKind::Intersection,
        UpdateKind::Call,
        UpdateKind::Unit,
        UpdateKind::Kpi,
        UpdateKind::Counters,
        UpdateKind::Feed,
        UpdateKind::Command,
        UpdateKind::CallEvent,
        UpdateKind::AppEvent,
        UpdateKind::Alert,
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
            UpdateKind::Alert => "alert",
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

/// A value whose update is encoded only when a screen first needs it.
///
/// An intersection changes 25 times a second under the bench's load, and a
/// wall capped at one update per entity per second is sent one in 25 of them:
/// encoding each at once (its full form and its summary) was more than half
/// of the state task's time in the bench's profile. The snapshot shares the
/// state's data (`Arc`s), so keeping it costs no copy.
pub trait Deferred: Send + Sync + std::fmt::Debug {
    /// The update's wire object, `{"kind":..,"key":..,"rx":..,"value":..}`.
    fn full(&self, kind: UpdateKind, key: &str, rx: DateTime<Utc>) -> String;
    /// The same with the summarised value (for `view=summary`), if there is one.
    fn summary(&self, kind: UpdateKind, key: &str, rx: DateTime<Utc>) -> Option<String>;
}

#[derive(Debug)]
enum Body {
    /// Encoded when the update was made; `public` is the form without
    /// callers' personal data, for an update that holds some.
    Encoded {
        json: String,
        value_at: usize,
        public: Option<(String, usize)>,
    },
    /// Encoded on first use, each form at most once.
    Deferred {
        value: Box<dyn Deferred>,
        full: OnceLock<(String, usize)>,
        summary: OnceLock<Option<String>>,
    },
}

/// One change of the live state, serialised at most once per form.
#[derive(Debug)]
pub struct Update {
    pub kind: UpdateKind,
    pub city: Arc<str>,
    /// Entity key, unique within the kind (`{city}/{id}`); for events the event id.
    pub key: Arc<str>,
    pub tags: Tags,
    /// When Kendali received the message behind this update.
    pub rx: DateTime<Utc>,
    /// The entity was removed (`value` is null).
    removal: bool,
    /// A telemetry update that changed nothing rules look at (a junction's
    /// figures, its conditions unchanged): consumers that act on changes
    /// (the alert engine) are not sent it.
    pub routine: bool,
    body: Body,
}

#[derive(Serialize)]
struct Wire<'a, T: Serialize> {
    kind: UpdateKind,
    key: &'a str,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    rx: DateTime<Utc>,
    value: Option<&'a T>,
}

thread_local! {
    /// Scratch for [`encode`]: it keeps the capacity of the largest update seen.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Serialises an update's wire object into a reused scratch buffer, then
/// copies once into an exactly sized string. `serde_json::to_string` grows
/// its buffer by doubling: the bench's profile at 20,000 msg/s had `realloc`
/// and its copies at about 8 % of Kendali's CPU, most of it from here.
pub fn encode<T: Serialize>(
    kind: UpdateKind,
    key: &str,
    rx: DateTime<Utc>,
    value: Option<&T>,
) -> String {
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        // Entity values are plain structs of strings, numbers, maps and timestamps.
        serde_json::to_writer(
            &mut *buf,
            &Wire {
                kind,
                key,
                rx,
                value,
            },
        )
        .expect("state values always serialise");
        std::str::from_utf8(buf)
            .expect("serde_json writes UTF-8")
            .to_owned()
    })
}

/// Where `value` starts in a wire object: it is the last field, so it runs
/// from after the first `,"value":` (kind, key and rx cannot contain that
/// text) to the final `}`.
fn value_at(json: &str) -> usize {
    json.find(",\"value\":")
        .map(|i| i + 9)
        .expect("Wire always writes a value field")
}

impl Update {
    /// An update encoded now.
    pub fn new<T: Serialize>(
        kind: UpdateKind,
        city: &str,
        key: String,
        tags: Tags,
        rx: DateTime<Utc>,
        value: Option<&T>,
    ) -> Update {
        let json = encode(kind, &key, rx, value);
        Update {
            kind,
            city: city.into(),
            key: key.into(),
            tags,
            rx,
            removal: value.is_none(),
            routine: false,
            body: Body::Encoded {
                value_at: value_at(&json),
                json,
                public: None,
            },
        }
    }

    /// An update holding callers' personal data, encoded now in both forms:
    /// `value` for those who may see it, `public` for everyone else.
    pub fn with_public<T: Serialize, P: Serialize>(
        kind: UpdateKind,
        city: &str,
        key: String,
        tags: Tags,
        rx: DateTime<Utc>,
        value: &T,
        public: &P,
    ) -> Update {
        let json = encode(kind, &key, rx, Some(value));
        let public = encode(kind, &key, rx, Some(public));
        Update {
            kind,
            city: city.into(),
            key: key.into(),
            tags,
            rx,
            removal: false,
            routine: false,
            body: Body::Encoded {
                value_at: value_at(&json),
                json,
                public: Some({
                    let at = value_at(&public);
                    (public, at)
                }),
            },
        }
    }

    /// An update of a present entity, encoded when first needed.
    pub fn deferred(
        kind: UpdateKind,
        city: Arc<str>,
        key: Arc<str>,
        tags: Tags,
        rx: DateTime<Utc>,
        value: Box<dyn Deferred>,
    ) -> Update {
        Update {
            kind,
            city,
            key,
            tags,
            rx,
            removal: false,
            routine: false,
            body: Body::Deferred {
                value,
                full: OnceLock::new(),
                summary: OnceLock::new(),
            },
        }
    }

    fn full(&self) -> (&str, usize) {
        match &self.body {
            Body::Encoded { json, value_at, .. } => (json, *value_at),
            Body::Deferred { value, full, .. } => {
                let (json, at) = full.get_or_init(|| {
                    let json = value.full(self.kind, &self.key, self.rx);
                    let at = value_at(&json);
                    (json, at)
                });
                (json, *at)
            }
        }
    }

    /// The wire object for a screen, summarised if it asked for it and there is a summary.
    pub fn wire(&self, summary: bool) -> &str {
        if let (
            Body::Deferred {
                value, summary: s, ..
            },
            true,
        ) = (&self.body, summary)
        {
            if let Some(s) = s.get_or_init(|| value.summary(self.kind, &self.key, self.rx)) {
                return s;
            }
        }
        self.full().0
    }

    /// The wire object for a screen, without callers' personal data unless
    /// `personal`.
    pub fn wire_for(&self, summary: bool, personal: bool) -> &str {
        match &self.body {
            Body::Encoded {
                public: Some((json, _)),
                ..
            } if !personal => json,
            _ => self.wire(summary),
        }
    }

    /// The entity value as JSON text, without callers' personal data unless `personal`.
    pub fn value_json_for(&self, personal: bool) -> &str {
        match &self.body {
            Body::Encoded {
                public: Some((json, at)),
                ..
            } if !personal => &json[*at..json.len() - 1],
            _ => self.value_json(),
        }
    }

    /// The entity value (or event) as JSON text; `null` for a removal.
    pub fn value_json(&self) -> &str {
        let (json, at) = self.full();
        &json[at..json.len() - 1]
    }

    pub fn is_removal(&self) -> bool {
        self.removal
    }
}
