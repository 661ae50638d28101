//! An emergency call (112/119) as the room sees it: the projection of its
//! events, and the lifecycle rules that refuse an event contradicting the
//! call's other stages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::contract::{
    CallCategory, CallEvent, CallEventType, CallLine, Caller, Disposition, RejectReason, Rejection,
    Triage, Ts,
};

/// A unit on a call: the furthest of its own stages (`dispatched`,
/// `en_route`, `on_scene`) and when it reached it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallUnit {
    pub unit: String,
    pub stage: CallEventType,
    pub since: Ts,
}

/// The projection of one emergency call, built from its events in `ts` order.
#[derive(Clone, Debug, Serialize)]
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

impl Call {
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
