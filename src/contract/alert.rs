//! Alerts on the bus (contract v1.3): `city/{city}/alerts/{alert_id}`,
//! QoS 1, retained while the alert is not back to normal. Kendali's alert
//! engine publishes one message per transition of an alert's lifecycle
//! (ISA-18.2 / IEC 62682 states); each message is the whole alert as it
//! stands after that transition, so the retained one is all another city
//! system needs, and the newest per alert wins.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::messages::{opt_ts, ts_format, Ts};

/// The rules that raise alerts (each configured per city under `[alerts]`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// A 112/119 call ringing unanswered for more than `threshold` s.
    CallUnanswered,
    /// The share of calls answered within the answer target, over the
    /// rolling window, below `threshold` %.
    AnswerTarget,
    /// A unit in one stage (dispatched, en route, on scene) longer than its target.
    UnitStage,
    /// A feed (calls, units, apps, KPIs) silent past its staleness limit.
    FeedStale,
    /// A junction's controller out of contact.
    ControllerOffline,
    /// A junction's signals flashing or off.
    ControllerFlashing,
    /// A junction's detector faulty, stuck or flickering (suppressed while
    /// the controller is flashing, off or out of contact).
    DetectorFault,
    /// A junction congested (the `congested` condition, held `for_s`).
    JunctionCongested,
    /// A traffic command its controller never answered.
    CommandTimedOut,
    /// A service KPI missing its target.
    KpiBelowTarget,
    /// Calls in the last hour at least `threshold` times the same hour of recent weeks.
    CallSurge,
}

impl AlertRule {
    pub const ALL: [AlertRule; 11] = [
        AlertRule::CallUnanswered,
        AlertRule::AnswerTarget,
        AlertRule::UnitStage,
        AlertRule::FeedStale,
        AlertRule::ControllerOffline,
        AlertRule::ControllerFlashing,
        AlertRule::DetectorFault,
        AlertRule::JunctionCongested,
        AlertRule::CommandTimedOut,
        AlertRule::KpiBelowTarget,
        AlertRule::CallSurge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::CallUnanswered => "call_unanswered",
            AlertRule::AnswerTarget => "answer_target",
            AlertRule::UnitStage => "unit_stage",
            AlertRule::FeedStale => "feed_stale",
            AlertRule::ControllerOffline => "controller_offline",
            AlertRule::ControllerFlashing => "controller_flashing",
            AlertRule::DetectorFault => "detector_fault",
            AlertRule::JunctionCongested => "junction_congested",
            AlertRule::CommandTimedOut => "command_timed_out",
            AlertRule::KpiBelowTarget => "kpi_below_target",
            AlertRule::CallSurge => "call_surge",
        }
    }

    pub fn parse(s: &str) -> Option<AlertRule> {
        AlertRule::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where an alert stands (ISA-18.2): raised and not yet acknowledged;
/// acknowledged and still active; cleared before anyone acknowledged it
/// (it waits for an acknowledgement); back to normal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    ActiveUnack,
    ActiveAck,
    ClearedUnack,
    Normal,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::ActiveUnack => "active_unack",
            AlertState::ActiveAck => "active_ack",
            AlertState::ClearedUnack => "cleared_unack",
            AlertState::Normal => "normal",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, AlertState::ActiveUnack | AlertState::ActiveAck)
    }

    pub fn is_acknowledged(self) -> bool {
        matches!(self, AlertState::ActiveAck | AlertState::Normal)
    }
}

/// What changed in this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertTransition {
    /// The condition began (or came back before the alert was acknowledged).
    Raised,
    /// Someone acknowledged it.
    Acknowledged,
    /// The condition ended (before an acknowledgement: it waits for one).
    Cleared,
    /// Back to normal (cleared and acknowledged).
    Normal,
    /// Someone shelved it for a time, with a reason.
    Shelved,
    /// Its shelving ended (by time, or by someone).
    Unshelved,
    /// Suppressed by design (e.g. a flashing controller's detector fault).
    Suppressed,
    /// No longer suppressed.
    Unsuppressed,
    /// Its measured value or priority changed while active.
    Updated,
}

impl AlertTransition {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertTransition::Raised => "raised",
            AlertTransition::Acknowledged => "acknowledged",
            AlertTransition::Cleared => "cleared",
            AlertTransition::Normal => "normal",
            AlertTransition::Shelved => "shelved",
            AlertTransition::Unshelved => "unshelved",
            AlertTransition::Suppressed => "suppressed",
            AlertTransition::Unsuppressed => "unsuppressed",
            AlertTransition::Updated => "updated",
        }
    }
}

/// `city/{city}/alerts/{alert_id}`, QoS 1, retained while not normal: an
/// alert as it stands after one transition, published by Kendali (v1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// Unique id of this transition; duplicates are ignored.
    pub event_id: Uuid,
    /// The alert: one per rule and entity (UUID v5 of `{city}/{rule}/{entity}`), equal to the topic's segment.
    pub alert_id: Uuid,
    /// When the transition happened.
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    pub rule: AlertRule,
    /// What it is about, `{kind}:{id}` (`call:…`, `intersection:…`, `unit:…`,
    /// `feed:{family}/{source}`, `command:…`, `kpi:{service}/{metric}`, `line:112`).
    pub entity: String,
    /// Alerts of one incident share a group (e.g. a junction's, or a call's).
    pub group: String,
    /// The entity's district, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// 1 (critical) .. 4 (low).
    pub priority: u8,
    pub state: AlertState,
    pub transition: AlertTransition,
    /// Who made the transition: a user, or `rule:{rule}` for the engine.
    pub by: String,
    /// Why (a shelve's or an acknowledgement's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the condition last began.
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub raised_at: Ts,
    #[serde(default, with = "opt_ts", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Ts>")]
    pub acked_at: Option<Ts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
    #[serde(default, with = "opt_ts", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Ts>")]
    pub cleared_at: Option<Ts>,
    /// While shelved: until when (it comes back by itself then).
    #[serde(default, with = "opt_ts", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Ts>")]
    pub shelved_until: Option<Ts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelved_by: Option<String>,
    /// Suppressed by design: kept, not shown.
    #[serde(default)]
    pub suppressed: bool,
    /// The measured value that raised it, against `threshold`, in `unit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl Alert {
    /// Whether the alert is retained on the bus (and kept in the live state).
    pub fn is_live(&self) -> bool {
        self.state != AlertState::Normal || self.shelved_until.is_some()
    }
}
