//! Payload types of the bus contract, v1. Field names are the wire names.
//! Every type derives `JsonSchema`; `schema.rs` writes one schema per kind.
//!
//! Unknown extra fields are accepted and ignored (publishers may add more
//! optional fields); the fields below are what Kendali reads and forwards.

use chrono::{DateTime, FixedOffset};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A source timestamp: RFC 3339 with offset (`2026-11-22T08:15:00.123456+07:00`).
pub type Ts = DateTime<FixedOffset>;

/// serde helpers for [`Ts`]: a parse error names itself so that the
/// validator can report `bad_timestamp` rather than a generic type error.
pub mod ts_format {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ts, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid timestamp {s:?}: {e} (expected RFC 3339 with offset, e.g. 2026-11-22T08:15:00+07:00)"
            ))
        })
    }

    pub fn serialize<S: serde::Serializer>(ts: &Ts, s: S) -> Result<S::Ok, S::Error> {
        crate::contract::rfc3339::serialize_ts(ts, s)
    }
}

/// Requires an `Option` field to be present (it may be `null`).
fn required_nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

// ---------------------------------------------------------------- ATCS

/// One approach (arm) of a signalised intersection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApproachInfo {
    /// Approach id, unique within the intersection (e.g. `utara`, `N`).
    pub id: String,
    /// Human name (e.g. `Jl. S.A. Tirtayasa (utara)`).
    pub name: String,
}

/// `city/{city}/atcs/{intersection}/info`, QoS 1, retained: intersection metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntersectionInfo {
    /// Intersection id; equals the `{intersection}` topic segment.
    pub intersection: String,
    /// Place name shown on screens (e.g. `Simpang PCI`).
    pub name: String,
    /// Latitude, WGS 84 degrees.
    pub lat: f64,
    /// Longitude, WGS 84 degrees.
    pub lon: f64,
    /// The approaches (arms), in phase order.
    pub approaches: Vec<ApproachInfo>,
    /// District (kecamatan) the junction lies in, for per-district screens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// When the metadata was published (optional).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ts")]
    #[schemars(with = "Option<Ts>")]
    pub ts: Option<Ts>,
}

/// A signal phase as a controller names it: SCATS-style controllers use
/// letters (`A`, `B`, `C`...), NTCIP ones numbers (`1`, `2`...). On the wire
/// it is a JSON integer or a string; it is written back the way it came (a
/// numeric label as an integer). `0` means "no phase running" and is allowed
/// only while the controller is flashing or off.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhaseLabel(String);

impl PhaseLabel {
    pub fn new(label: impl Into<String>) -> PhaseLabel {
        PhaseLabel(label.into())
    }

    /// Phase `n` of a controller that numbers its phases.
    pub fn number(n: u32) -> PhaseLabel {
        PhaseLabel(n.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The phase's number, when the controller numbers its phases.
    pub fn as_number(&self) -> Option<u32> {
        if self.0.is_empty() || !self.0.bytes().all(|b| b.is_ascii_digit()) || self.0.len() > 9 {
            return None;
        }
        self.0.parse().ok()
    }
}

impl std::fmt::Display for PhaseLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for PhaseLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A numeric label goes back as the integer it came as (`2`, not `02`).
        match self.as_number() {
            Some(n) if n == 0 || !self.0.starts_with('0') => s.serialize_u32(n),
            _ => s.serialize_str(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for PhaseLabel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PhaseLabel, D::Error> {
        label(d).map(PhaseLabel)
    }
}

impl JsonSchema for PhaseLabel {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PhaseLabel".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        label_schema("A phase: an integer (NTCIP-style, 0 = none while flashing or off) or a label such as `A` (SCATS-style).")
    }
}

/// A label that a controller may send as a JSON string or a whole number
/// (phases, plans). Kept as its text.
fn label<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a whole number")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
    }
    d.deserialize_any(V)
}

fn label_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({
        "description": description,
        "type": ["string", "integer"]
    })
}

/// A signal plan's name as a controller sends it: a string, or a plan number
/// (kept as its text, written back as a string).
pub mod plan_label {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        label(d)
    }

    pub fn schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        label_schema("Signal plan in force: a name (`pagi`, `P3`) or a plan number.")
    }
}

/// Controller operating mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControllerMode {
    Adaptive,
    Fixed,
    Manual,
    Flashing,
    Off,
}

impl ControllerMode {
    /// The mode as it is written on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ControllerMode::Adaptive => "adaptive",
            ControllerMode::Fixed => "fixed",
            ControllerMode::Manual => "manual",
            ControllerMode::Flashing => "flashing",
            ControllerMode::Off => "off",
        }
    }
}

/// Live measurements of one approach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApproachState {
    /// Approach id, as in the intersection's info.
    pub id: String,
    /// Green time given to this approach in the current cycle, seconds (0..=300).
    pub green_s: f64,
    /// Flow in vehicles per hour (0..=20000).
    pub flow_vph: f64,
    /// Queue length in metres (0..=10000).
    pub queue_m: f64,
    /// Degree of saturation (flow/capacity), 0..~1.2 (accepted 0..=3).
    pub saturation: f64,
    /// False when the approach's detector is faulty (its figures are estimates).
    pub detector_ok: bool,
}

/// `city/{city}/atcs/{intersection}/state`, QoS 0: controller state, about once a second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntersectionState {
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    /// Intersection id; equals the `{intersection}` topic segment.
    pub intersection: String,
    pub mode: ControllerMode,
    /// Signal plan in force (e.g. `pagi`, `P3`, or a plan number).
    #[serde(deserialize_with = "plan_label::deserialize")]
    #[schemars(schema_with = "plan_label::schema")]
    pub plan: String,
    /// Cycle length, seconds (1..=600; 0 while flashing or off).
    pub cycle_s: f64,
    /// The phase running: a number or a letter label (`0` while flashing or off).
    pub phase: PhaseLabel,
    /// Seconds since the current phase began (0..=600).
    pub phase_elapsed_s: f64,
    pub approaches: Vec<ApproachState>,
}

/// What an operator command asks a controller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// Extend `approach`'s green by `seconds`.
    ExtendGreen,
    /// Switch to signal plan `plan`.
    SetPlan,
    /// Switch to mode `mode`.
    SetMode,
    /// Play the loudspeaker warning `message` (from template `template`) at the junction.
    Announce,
    /// Hold `approach` green for an emergency vehicle (`unit`) coming on it
    /// (pre-emption), for `expires_in_s` or until Kendali's revert.
    Priority,
}

impl CommandAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandAction::ExtendGreen => "extend_green",
            CommandAction::SetPlan => "set_plan",
            CommandAction::SetMode => "set_mode",
            CommandAction::Announce => "announce",
            CommandAction::Priority => "priority",
        }
    }
}

/// `city/{city}/atcs/{intersection}/command`, QoS 1: an operator command, published by Kendali.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Command {
    pub command_id: Uuid,
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    pub action: CommandAction,
    /// For `extend_green`: the approach id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approach: Option<String>,
    /// For `extend_green`: extra green seconds (1..=120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// For `set_plan`: the plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// For `set_mode`: the new mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ControllerMode>,
    /// For `announce`: the template the message was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// For `announce`: the words the loudspeaker says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the operator acted (v1.2; Kendali always sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `set_plan`, `set_mode` and `priority`: seconds the change is
    /// leased for; Kendali publishes the revert when the lease ends (v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<f64>,
    /// For `priority`: the emergency unit the green is held for (v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The command whose lease this one ends, when it is Kendali's revert (v1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverts: Option<Uuid>,
    /// Who issued it (operator login, or `rule:...` for Kendali's own rules).
    pub issued_by: String,
}

impl Command {
    /// A command with only what every action needs; set the action's fields after.
    pub fn new(command_id: Uuid, ts: Ts, action: CommandAction, issued_by: String) -> Command {
        Command {
            command_id,
            ts,
            action,
            approach: None,
            seconds: None,
            plan: None,
            mode: None,
            template: None,
            message: None,
            reason: None,
            expires_in_s: None,
            unit: None,
            reverts: None,
            issued_by,
        }
    }
}

/// A controller's answer to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Applied,
    Rejected,
}

/// `city/{city}/atcs/{intersection}/command/ack`, QoS 1: the controller's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandAck {
    pub command_id: Uuid,
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    pub status: AckStatus,
    /// Why it was rejected; `null` (but present) when applied.
    #[serde(deserialize_with = "required_nullable")]
    #[schemars(required)]
    pub reason: Option<String>,
}

// ---------------------------------------------------------------- calls

/// Emergency line.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum CallLine {
    /// 112: the general emergency number.
    #[serde(rename = "112")]
    L112,
    /// 119: medical emergencies (PSC 119).
    #[serde(rename = "119")]
    L119,
}

impl CallLine {
    pub fn as_str(self) -> &'static str {
        match self {
            CallLine::L112 => "112",
            CallLine::L119 => "119",
        }
    }
    pub fn parse(s: &str) -> Option<CallLine> {
        match s {
            "112" => Some(CallLine::L112),
            "119" => Some(CallLine::L119),
            _ => None,
        }
    }
}

/// Stage of a call's lifecycle carried by one call event.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallEventType {
    Received,
    Answered,
    Classified,
    Dispatched,
    EnRoute,
    OnScene,
    Closed,
    Abandoned,
    Transferred,
    /// The caller's position or address was set or corrected (not a stage).
    Located,
    /// A narrative note was added (not a stage).
    Noted,
    /// A unit was taken off the call (`unit`; not a stage).
    UnitCancelled,
    /// The call was linked to an incident with other calls (`incident_id`,
    /// `related_call`), or kept apart from a call it looked like a duplicate
    /// of (`related_call`, no `incident_id`; not a stage).
    Merged,
    /// A call taker called an abandoned caller back (`note` says how it went; not a stage).
    CalledBack,
}

impl CallEventType {
    /// The lifecycle's stages, in the order of the `calls` table's stage columns.
    pub const ALL: [CallEventType; 9] = [
        CallEventType::Received,
        CallEventType::Answered,
        CallEventType::Classified,
        CallEventType::Dispatched,
        CallEventType::EnRoute,
        CallEventType::OnScene,
        CallEventType::Closed,
        CallEventType::Abandoned,
        CallEventType::Transferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallEventType::Received => "received",
            CallEventType::Answered => "answered",
            CallEventType::Classified => "classified",
            CallEventType::Dispatched => "dispatched",
            CallEventType::EnRoute => "en_route",
            CallEventType::OnScene => "on_scene",
            CallEventType::Closed => "closed",
            CallEventType::Abandoned => "abandoned",
            CallEventType::Transferred => "transferred",
            CallEventType::Located => "located",
            CallEventType::Noted => "noted",
            CallEventType::UnitCancelled => "unit_cancelled",
            CallEventType::Merged => "merged",
            CallEventType::CalledBack => "called_back",
        }
    }

    /// An event that records something about the call without being a stage
    /// of its lifecycle: it has no rank and never contradicts a stage.
    pub fn is_annotation(self) -> bool {
        matches!(
            self,
            CallEventType::Located
                | CallEventType::Noted
                | CallEventType::UnitCancelled
                | CallEventType::Merged
                | CallEventType::CalledBack
        )
    }

    /// The stages a field unit moves through on a call; several units may
    /// each pass them on one call.
    pub fn is_unit_stage(self) -> bool {
        matches!(
            self,
            CallEventType::Dispatched | CallEventType::EnRoute | CallEventType::OnScene
        )
    }

    /// Whether the call is over after this stage.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallEventType::Closed | CallEventType::Abandoned | CallEventType::Transferred
        )
    }
}

/// Call category, set when the call is classified.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CallCategory {
    Fire,
    Medical,
    Crime,
    TrafficAccident,
    Disaster,
    PublicService,
    Prank,
    Other,
}

impl CallCategory {
    pub const ALL: [CallCategory; 8] = [
        CallCategory::Fire,
        CallCategory::Medical,
        CallCategory::Crime,
        CallCategory::TrafficAccident,
        CallCategory::Disaster,
        CallCategory::PublicService,
        CallCategory::Prank,
        CallCategory::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CallCategory::Fire => "fire",
            CallCategory::Medical => "medical",
            CallCategory::Crime => "crime",
            CallCategory::TrafficAccident => "traffic_accident",
            CallCategory::Disaster => "disaster",
            CallCategory::PublicService => "public_service",
            CallCategory::Prank => "prank",
            CallCategory::Other => "other",
        }
    }
}

/// How a 112 centre sorts a call when it is classified: a real emergency,
/// a silent or empty line, a prank, or a request for information.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Triage {
    Normal,
    Ghost,
    Prank,
    Info,
}

impl Triage {
    pub fn as_str(self) -> &'static str {
        match self {
            Triage::Normal => "normal",
            Triage::Ghost => "ghost",
            Triage::Prank => "prank",
            Triage::Info => "info",
        }
    }
}

/// How a call ended, given when it is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    TreatedOnScene,
    Transported,
    Resolved,
    Referred,
    NoActionNeeded,
    FalseAlarm,
    Prank,
    Ghost,
    Duplicate,
    CancelledByCaller,
    Other,
}

/// Where the caller is (from the network or as told).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Caller {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `city/{city}/calls/{line}`, QoS 1: one event of an emergency call's lifecycle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CallEvent {
    /// Unique id of this event; duplicates are ignored.
    pub event_id: Uuid,
    /// The call this event belongs to (shared by all its events).
    pub call_id: String,
    /// When the stage happened at the source (stage times come from here, not arrival order).
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    /// Equals the `{line}` topic segment.
    pub line: CallLine,
    #[serde(rename = "type")]
    pub kind: CallEventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CallCategory>,
    /// 1 = life-threatening .. 4 = no urgency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Responding agency (e.g. `damkar`, `dinkes`, `polres`, `bpbd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Field unit assigned (for `dispatched`, `en_route`, `on_scene`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Call-taker or dispatcher handling the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The caller's callback number (personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// How the call was sorted (`classified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
    /// The dispatch protocol's code (e.g. a card and determinant), opaque to Kendali.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// How the call ended (`closed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// The incident this call belongs to with other calls (`merged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The other call of a `merged` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_call: Option<String>,
    /// The operator action that published this event (one action may publish several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<Uuid>,
}

impl CallEvent {
    /// An event with its required fields and nothing else.
    pub fn new(
        event_id: Uuid,
        call_id: String,
        ts: Ts,
        line: CallLine,
        kind: CallEventType,
    ) -> CallEvent {
        CallEvent {
            event_id,
            call_id,
            ts,
            line,
            kind,
            caller: None,
            category: None,
            priority: None,
            agency: None,
            unit: None,
            operator: None,
            note: None,
            callback: None,
            triage: None,
            protocol: None,
            disposition: None,
            incident_id: None,
            related_call: None,
            action_id: None,
        }
    }

    /// The event without the caller's position, address, callback number
    /// and the free-text note (which may name people): what roles without
    /// personal-data access see.
    pub fn without_personal_data(&self) -> CallEvent {
        CallEvent {
            caller: None,
            note: None,
            callback: None,
            ..self.clone()
        }
    }
}

// ---------------------------------------------------------------- units

/// Field unit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitState {
    Available,
    Dispatched,
    EnRoute,
    OnScene,
    Returning,
    OutOfService,
}

/// `city/{city}/units/{unit}/status`, QoS 1, retained: a field unit's status and position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnitStatus {
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    /// Unit id; equals the `{unit}` topic segment.
    pub unit: String,
    /// Owning agency (e.g. `dinkes`, `damkar`, `polres`).
    pub agency: String,
    pub status: UnitState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// The call the unit is working, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Vehicle kind (e.g. `ambulance`, `fire_engine`, `police_car`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// What a unit assignment asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentAction {
    /// Go to the call.
    Assign,
    /// The unit is taken off the call (cancelled, reassigned elsewhere, the call closed).
    Cancel,
}

/// `city/{city}/units/{unit}/assignment`, QoS 1, retained: a dispatcher's
/// order to a field unit. The unit obeys and reports its own status on
/// `.../status` as always; the retained message is its current order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnitAssignment {
    /// Unique id of this order; duplicates are ignored.
    pub assignment_id: Uuid,
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    /// Unit id; equals the `{unit}` topic segment.
    pub unit: String,
    pub action: AssignmentAction,
    /// The call the order is about.
    pub call_id: String,
    pub line: CallLine,
    /// 1 = life-threatening .. 4 = no urgency, as classified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CallCategory>,
    /// Where to go (the caller's position and address: personal data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Caller>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The dispatcher who gave the order (from their session).
    pub issued_by: String,
}

// ---------------------------------------------------------------- services

/// `city/{city}/apps/{service}/events`, QoS 1: an event written by a service application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppEvent {
    pub event_id: Uuid,
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    /// Service id; equals the `{service}` topic segment (e.g. `perizinan`).
    pub service: String,
    /// Dotted event type, lowercase (e.g. `permit.submitted`, `complaint.routed`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The application's own reference (permit number, ticket id...).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Responsible agency (OPD), e.g. `dpmptsp`, `dinkes`, `dpupr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opd: Option<String>,
    /// Free-form attributes of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `city/{city}/kpi/{service}`, QoS 0 or 1: a KPI sample computed by a service application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KpiSample {
    #[serde(with = "ts_format")]
    #[schemars(with = "Ts")]
    pub ts: Ts,
    /// Metric name, `[a-z0-9_.]` (e.g. `permits_on_time_pct`).
    pub metric: String,
    pub value: f64,
    /// Unit of `value` (e.g. `%`, `count`, `min`).
    pub unit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Window the value was computed over, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<f64>,
}

pub(crate) mod opt_ts {
    use super::*;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "ts_format")] Ts);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
    pub fn serialize<S: serde::Serializer>(ts: &Option<Ts>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(t) => ts_format::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}

// ---------------------------------------------------------------- envelope

/// The kinds of message, one per topic shape (and one JSON Schema each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    IntersectionInfo,
    IntersectionState,
    Command,
    CommandAck,
    CallEvent,
    UnitStatus,
    UnitAssignment,
    AppEvent,
    KpiSample,
    Alert,
}

impl MessageKind {
    pub const ALL: [MessageKind; 10] = [
        MessageKind::IntersectionInfo,
        MessageKind::IntersectionState,
        MessageKind::Command,
        MessageKind::CommandAck,
        MessageKind::CallEvent,
        MessageKind::UnitStatus,
        MessageKind::UnitAssignment,
        MessageKind::AppEvent,
        MessageKind::KpiSample,
        MessageKind::Alert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::IntersectionInfo => "intersection_info",
            MessageKind::IntersectionState => "intersection_state",
            MessageKind::Command => "command",
            MessageKind::CommandAck => "command_ack",
            MessageKind::CallEvent => "call_event",
            MessageKind::UnitStatus => "unit_status",
            MessageKind::UnitAssignment => "unit_assignment",
            MessageKind::AppEvent => "app_event",
            MessageKind::KpiSample => "kpi_sample",
            MessageKind::Alert => "alert",
        }
    }

    pub fn parse(s: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A validated contract message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
// Every variant is behind a pointer: a message moves through two channels
// and a few buffers on its way to the state and the store, and inline the
// largest variant made each of them 200 bytes wide.
pub enum Message {
    IntersectionInfo(Box<IntersectionInfo>),
    /// Shared, not copied, with the live state that keeps it.
    IntersectionState(std::sync::Arc<IntersectionState>),
    Command(Box<Command>),
    CommandAck(Box<CommandAck>),
    CallEvent(Box<CallEvent>),
    UnitStatus(Box<UnitStatus>),
    UnitAssignment(Box<UnitAssignment>),
    AppEvent(Box<AppEvent>),
    KpiSample(Box<KpiSample>),
    Alert(Box<super::alert::Alert>),
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::IntersectionInfo(_) => MessageKind::IntersectionInfo,
            Message::IntersectionState(_) => MessageKind::IntersectionState,
            Message::Command(_) => MessageKind::Command,
            Message::CommandAck(_) => MessageKind::CommandAck,
            Message::CallEvent(_) => MessageKind::CallEvent,
            Message::UnitStatus(_) => MessageKind::UnitStatus,
            Message::UnitAssignment(_) => MessageKind::UnitAssignment,
            Message::AppEvent(_) => MessageKind::AppEvent,
            Message::KpiSample(_) => MessageKind::KpiSample,
            Message::Alert(_) => MessageKind::Alert,
        }
    }

    /// The source timestamp, where the message has one.
    pub fn ts(&self) -> Option<Ts> {
        match self {
            Message::IntersectionInfo(m) => m.ts,
            Message::IntersectionState(m) => Some(m.ts),
            Message::Command(m) => Some(m.ts),
            Message::CommandAck(m) => Some(m.ts),
            Message::CallEvent(m) => Some(m.ts),
            Message::UnitStatus(m) => Some(m.ts),
            Message::UnitAssignment(m) => Some(m.ts),
            Message::AppEvent(m) => Some(m.ts),
            Message::KpiSample(m) => Some(m.ts),
            Message::Alert(m) => Some(m.ts),
        }
    }

    /// The unique event id of event messages (calls and app events). A unit
    /// assignment is retained state, redelivered on every reconnect: the
    /// newest per unit wins, as a unit status does; so does an alert's
    /// newest transition (its `event_id` makes the store's write idempotent).
    pub fn event_id(&self) -> Option<Uuid> {
        match self {
            Message::CallEvent(m) => Some(m.event_id),
            Message::AppEvent(m) => Some(m.event_id),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain structs of strings, numbers and maps cannot fail.
        serde_json::to_vec(self).expect("contract messages always serialise")
    }
}

/// One example of every message kind, as documented in CONTRACT.md and used by tests.
pub fn example(kind: MessageKind, ts: Ts) -> (super::Topic, Message) {
    use super::Topic as T;
    let city = "cilegon".to_owned();
    let id = |s: &str| s.to_owned();
    match kind {
        MessageKind::IntersectionInfo => (
            T::IntersectionInfo {
                city,
                intersection: id("simpang-pci"),
            },
            Message::IntersectionInfo(Box::new(IntersectionInfo {
                intersection: id("simpang-pci"),
                name: id("Simpang PCI"),
                lat: -6.0047,
                lon: 106.0413,
                approaches: vec![
                    ApproachInfo {
                        id: id("utara"),
                        name: id("Jl. S.A. Tirtayasa (utara)"),
                    },
                    ApproachInfo {
                        id: id("selatan"),
                        name: id("Jl. S.A. Tirtayasa (selatan)"),
                    },
                    ApproachInfo {
                        id: id("timur"),
                        name: id("Jl. Sudirman"),
                    },
                ],
                district: Some(id("Cibeber")),
                ts: Some(ts),
            })),
        ),
        MessageKind::IntersectionState => (
            T::IntersectionState {
                city,
                intersection: id("simpang-pci"),
            },
            Message::IntersectionState(std::sync::Arc::new(IntersectionState {
                ts,
                intersection: id("simpang-pci"),
                mode: ControllerMode::Adaptive,
                plan: id("pagi"),
                cycle_s: 120.0,
                phase: PhaseLabel::number(2),
                phase_elapsed_s: 14.5,
                approaches: vec![
                    ApproachState {
                        id: id("utara"),
                        green_s: 42.0,
                        flow_vph: 1450.0,
                        queue_m: 85.0,
                        saturation: 0.92,
                        detector_ok: true,
                    },
                    ApproachState {
                        id: id("selatan"),
                        green_s: 38.0,
                        flow_vph: 1210.0,
                        queue_m: 60.0,
                        saturation: 0.81,
                        detector_ok: true,
                    },
                    ApproachState {
                        id: id("timur"),
                        green_s: 25.0,
                        flow_vph: 640.0,
                        queue_m: 30.0,
                        saturation: 0.55,
                        detector_ok: false,
                    },
                ],
            })),
        ),
        MessageKind::Command => (
            T::Command {
                city,
                intersection: id("simpang-pci"),
            },
            Message::Command(Box::new(Command {
                command_id: Uuid::parse_str("5b0c2a8e-3f7e-4d59-9c3a-1f2e7d9a4b10")
                    .expect("literal uuid"),
                ts,
                action: CommandAction::ExtendGreen,
                approach: Some(id("utara")),
                seconds: Some(15.0),
                plan: None,
                mode: None,
                template: None,
                message: None,
                reason: Some(id("antrean utara sampai simpang sebelumnya")),
                expires_in_s: None,
                unit: None,
                reverts: None,
                issued_by: id("petugas.lalin"),
            })),
        ),
        MessageKind::CommandAck => (
            T::CommandAck {
                city,
                intersection: id("simpang-pci"),
            },
            Message::CommandAck(Box::new(CommandAck {
                command_id: Uuid::parse_str("5b0c2a8e-3f7e-4d59-9c3a-1f2e7d9a4b10")
                    .expect("literal uuid"),
                ts,
                status: AckStatus::Applied,
                reason: None,
            })),
        ),
        MessageKind::CallEvent => (
            T::Call {
                city,
                line: CallLine::L112,
            },
            Message::CallEvent(Box::new(CallEvent {
                caller: Some(Caller {
                    lat: -6.0170,
                    lon: 106.0540,
                    address: Some(id("Jl. Jend. Sudirman No. 10, Cilegon")),
                }),
                operator: Some(id("op-07")),
                ..CallEvent::new(
                    Uuid::parse_str("0f8e1c9a-6b1d-4c55-8a3e-2d4b6f8a1c20").expect("literal uuid"),
                    id("112-20261122-0042"),
                    ts,
                    CallLine::L112,
                    CallEventType::Received,
                )
            })),
        ),
        MessageKind::UnitStatus => (
            T::Unit {
                city,
                unit: id("amb-03"),
            },
            Message::UnitStatus(Box::new(UnitStatus {
                ts,
                unit: id("amb-03"),
                agency: id("dinkes"),
                status: UnitState::EnRoute,
                lat: Some(-6.0102),
                lon: Some(106.0489),
                call_id: Some(id("112-20261122-0042")),
                kind: Some(id("ambulance")),
            })),
        ),
        MessageKind::UnitAssignment => (
            T::Assignment {
                city,
                unit: id("amb-03"),
            },
            Message::UnitAssignment(Box::new(UnitAssignment {
                assignment_id: Uuid::parse_str("5c1f7a2e-3b8d-4e0a-9f61-7d2c4b8e9a13")
                    .expect("literal uuid"),
                ts,
                unit: id("amb-03"),
                action: AssignmentAction::Assign,
                call_id: id("112-20261122-0042"),
                line: CallLine::L112,
                priority: Some(1),
                category: Some(CallCategory::Medical),
                destination: Some(Caller {
                    lat: -6.0170,
                    lon: 106.0540,
                    address: Some(id("Jl. Jend. Sudirman No. 10, Cilegon")),
                }),
                note: None,
                issued_by: id("dewi"),
            })),
        ),
        MessageKind::AppEvent => (
            T::AppEvents {
                city,
                service: id("pengaduan"),
            },
            Message::AppEvent(Box::new(AppEvent {
                event_id: Uuid::parse_str("7d3f5a21-9c4e-4b8f-a1d2-3e5f7a9c0b31")
                    .expect("literal uuid"),
                ts,
                service: id("pengaduan"),
                kind: id("complaint.routed"),
                reference: Some(id("ADU-2026-11-0815")),
                opd: Some(id("dpupr")),
                attrs: Some(serde_json::Map::from_iter([
                    ("channel".to_owned(), serde_json::json!("whatsapp")),
                    ("topic".to_owned(), serde_json::json!("jalan rusak")),
                ])),
            })),
        ),
        MessageKind::KpiSample => (
            T::Kpi {
                city,
                service: id("perizinan"),
            },
            Message::KpiSample(Box::new(KpiSample {
                ts,
                metric: id("permits_on_time_pct"),
                value: 93.4,
                unit: id("%"),
                target: Some(95.0),
                window_s: Some(86400.0),
            })),
        ),
        MessageKind::Alert => {
            use super::alert::*;
            let alert_id =
                Uuid::parse_str("0f6a3c52-9d1e-5b7a-8c4f-2e9b1d7a6c30").expect("literal uuid");
            (
                T::Alert {
                    city,
                    alert_id: alert_id.to_string(),
                },
                Message::Alert(Box::new(Alert {
                    event_id: Uuid::parse_str("3a8e1f4c-6b2d-4e9a-b7c1-5d0f2a9e8b64")
                        .expect("literal uuid"),
                    alert_id,
                    ts,
                    rule: AlertRule::CallUnanswered,
                    entity: id("call:112-20261122-0042"),
                    group: id("call:112-20261122-0042"),
                    district: None,
                    priority: 1,
                    state: AlertState::ActiveAck,
                    transition: AlertTransition::Acknowledged,
                    by: id("dewi"),
                    reason: None,
                    raised_at: ts - chrono::Duration::seconds(4),
                    acked_at: Some(ts),
                    acked_by: Some(id("dewi")),
                    cleared_at: None,
                    shelved_until: None,
                    shelved_by: None,
                    suppressed: false,
                    value: Some(24.0),
                    threshold: Some(20.0),
                    unit: Some(id("s")),
                })),
            )
        }
    }
}
