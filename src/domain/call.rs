//! An emergency call (112/119) as the room sees it: the projection of its
//! events, and the lifecycle rules that refuse an event contradicting the
//! call's other stages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contract::{
    CallCategory, CallEvent, CallEventType, CallLine, Caller, Disposition, RejectReason, Rejection,
    Triage, Ts,
};

/// A unit on a call: the furthest of its own stages (`dispatched`,
/// `en_route`, `on_scene`) and when it reached it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallUnit {
    pub unit: String,
    pub stage: CallEventType,
    pub since: Ts,
}

/// The projection of one emergency call, built from its events in `ts` order.
/// A replay checkpoint stores it as the screens get it, and `kept_apart`
/// beside it (`state::city::day`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Call {
    pub city: String,
    pub call_id: String,
    pub line: CallLine,
    /// The furthest stage reached (by lifecycle, not by arrival order).
    pub stage: CallEventType,
    pub open: bool,
    /// Source time of each stage seen.
    pub stages: BTreeMap<CallEventType, Ts>,
    pub category: Option<CallCategory>,
    pub priority: Option<u8>,
    pub agency: Option<String>,
    pub unit: Option<String>,
    pub operator: Option<String>,
    pub caller: Option<Caller>,
    /// The caller's callback number.
    pub callback: Option<String>,
    pub triage: Option<Triage>,
    pub protocol: Option<String>,
    pub disposition: Option<Disposition>,
    /// The incident this call was merged into with others.
    pub incident_id: Option<String>,
    /// The units on the call now (a cancelled unit leaves the list).
    pub units: Vec<CallUnit>,
    /// Open calls this one may repeat (same callback number, or close in
    /// time and place), until a dispatcher merges or keeps them apart.
    pub possible_duplicates: Vec<String>,
    /// Calls a dispatcher looked at and kept apart from this one: never
    /// flagged again.
    #[serde(skip)]
    pub kept_apart: Vec<String>,
    /// The operator actions whose events this projection holds, the newest
    /// last (at most [`Call::ACTIONS_KEPT`]): how a console sees that its
    /// action came back through ingest.
    pub actions: Vec<uuid::Uuid>,
    /// Seconds from received to answered, once both are known.
    pub answer_s: Option<f64>,
    /// Seconds from received to dispatched, once both are known.
    pub dispatch_s: Option<f64>,
    pub events: u32,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub rx: DateTime<Utc>,
}

/// Lifecycle rank: a stage of lower rank cannot happen after one of higher
/// rank. Annotations (a note, a location, a unit cancelled...) have none.
pub fn rank(t: CallEventType) -> Option<u8> {
    use CallEventType::*;
    Some(match t {
        Received => 0,
        Answered | Abandoned => 1,
        Classified => 2,
        Dispatched | Transferred => 3,
        EnRoute => 4,
        OnScene => 5,
        Closed => 6,
        Located | Noted | UnitCancelled | Merged | CalledBack => return None,
    })
}

/// Distance between two callers' positions, metres.
pub fn distance_m(a: &Caller, b: &Caller) -> f64 {
    super::route::metres((a.lat, a.lon), (b.lat, b.lon))
}

/// The agency whose units answer a call of this category and priority
/// (`None`: nobody is sent; the call is handled on the line or handed over).
pub fn agency_for(category: CallCategory, priority: u8) -> Option<&'static str> {
    match category {
        CallCategory::Fire => Some("damkar"),
        CallCategory::Medical => Some("dinkes"),
        CallCategory::Crime => Some("polres"),
        // Injuries need an ambulance; a fender-bender needs the traffic police.
        CallCategory::TrafficAccident if priority <= 2 => Some("dinkes"),
        CallCategory::TrafficAccident => Some("polres"),
        CallCategory::Disaster => Some("bpbd"),
        CallCategory::PublicService | CallCategory::Prank | CallCategory::Other => None,
    }
}

impl Call {
    /// Whether `other` may be the same emergency: received within
    /// `window_s` of this one, and from the same callback number or within
    /// `radius_m` of it.
    pub fn may_repeat(&self, other: &Call, window_s: f64, radius_m: f64) -> bool {
        let received = |c: &Call| c.stages.get(&CallEventType::Received).copied();
        let close_in_time = match (received(self), received(other)) {
            (Some(a), Some(b)) => ((a - b).num_milliseconds().abs() as f64) / 1000.0 <= window_s,
            _ => false,
        };
        let same_number = matches!((&self.callback, &other.callback), (Some(a), Some(b)) if digits(a) == digits(b));
        let near = matches!((&self.caller, &other.caller), (Some(a), Some(b)) if distance_m(a, b) <= radius_m);
        close_in_time && (same_number || near)
    }

    /// How many possible duplicates a call lists at most (the most recent).
    pub const DUPLICATES_KEPT: usize = 8;

    /// How many recent action ids a call keeps.
    pub const ACTIONS_KEPT: usize = 16;

    /// Records that an action's event was applied.
    pub fn applied_action(&mut self, id: uuid::Uuid) {
        if !self.actions.contains(&id) {
            if self.actions.len() == Self::ACTIONS_KEPT {
                self.actions.remove(0);
            }
            self.actions.push(id);
        }
    }

    /// The call as everyone but dispatchers and supervisors sees it: its
    /// line, category, priority, stages and unit, without the caller.
    pub fn without_personal_data(&self) -> Call {
        Call {
            caller: None,
            callback: None,
            ..self.clone()
        }
    }

    /// Refuses an event of this call whose line differs from the call's, or
    /// whose time contradicts a stage already known: a stage of lower rank
    /// after one of higher rank, or the reverse (CONTRACT.md, call lifecycle).
    /// A unit's own stages (a second unit dispatched after the first is on
    /// scene) and a stage seen again (a reclassification) are held only to
    /// the call's start and its close; annotations to nothing.
    pub fn check(&self, m: &CallEvent) -> Result<(), Rejection> {
        if self.line != m.line {
            return Err(Rejection::new(
                RejectReason::TopicMismatch,
                format!(
                    "call {} is on line {}, this event says {}",
                    m.call_id,
                    self.line.as_str(),
                    m.line.as_str()
                ),
            ));
        }
        let Some(r_new) = rank(m.kind) else {
            return Ok(());
        };
        let loose =
            (m.kind.is_unit_stage() && m.unit.is_some()) || self.stages.contains_key(&m.kind);
        for (stage, ts) in &self.stages {
            if loose
                && !matches!(
                    stage,
                    CallEventType::Received | CallEventType::Answered | CallEventType::Closed
                )
            {
                continue;
            }
            let Some(r_old) = rank(*stage) else {
                continue;
            };
            if (r_old < r_new && *ts > m.ts) || (r_old > r_new && *ts < m.ts) {
                return Err(Rejection::new(
                    RejectReason::LifecycleOutOfOrder,
                    format!(
                        "call {}: {} at {} contradicts {} at {}",
                        m.call_id,
                        m.kind.as_str(),
                        m.ts.to_rfc3339(),
                        stage.as_str(),
                        ts.to_rfc3339()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A phone number's digits, so that `0812-3456` and `0812 3456` match.
fn digits(n: &str) -> String {
    n.chars().filter(char::is_ascii_digit).collect()
}
