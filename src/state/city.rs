//! The live city: every entity the room shows, and the rules that move it.
//! Pure (no I/O, no clock of its own): [`CityState::apply`] takes a validated
//! message and its receive time and returns the [`Update`]s it caused, or a
//! [`Rejection`] (duplicate event, contradictory call lifecycle).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::update::{encode, Deferred, Tags, Update, UpdateKind};
use crate::config::StateSettings;
use crate::contract::*;
use crate::domain::traffic::{suggestions, Condition, Suggestion, TrafficSettings, Watch};
use crate::domain::{rank, AnswerTimes, Call, CallUnit, Zone, Zones};

/// An intersection: its metadata and latest controller state. Cloning it
/// (the snapshot an update keeps until a screen needs it) copies no data.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Intersection {
    pub city: Arc<str>,
    pub id: Arc<str>,
    pub info: Option<Arc<IntersectionInfo>>,
    pub state: Option<Arc<IntersectionState>>,
    /// Highest degree of saturation over the approaches, and which approach holds it.
    pub worst_saturation: Option<f64>,
    pub worst_approach: Option<Arc<str>>,
    /// Conditions flagged (congestion, detector faults, silence, flashing),
    /// each with since when. Left out when none (most junctions, most of
    /// the time: every screen is sent every junction's updates).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub conditions: Arc<[Condition]>,
    /// The extension Kendali proposes for each congested approach (left out when none).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub suggestions: Arc<[Suggestion]>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde_option")]
    pub rx: Option<DateTime<Utc>>,
    /// Its key (`{city}/{id}`) and district, for its updates' key and tags.
    #[serde(skip)]
    key: Arc<str>,
    #[serde(skip)]
    district: Option<Arc<str>>,
}

impl Deferred for Intersection {
    fn full(&self, kind: UpdateKind, key: &str, rx: DateTime<Utc>) -> String {
        encode(kind, key, rx, Some(self))
    }

    fn summary(&self, kind: UpdateKind, key: &str, rx: DateTime<Utc>) -> Option<String> {
        Some(encode(kind, key, rx, Some(&IntersectionSummary::of(self))))
    }
}

/// An intersection for a screen that asked for `view=summary`: the same
/// shape without the metadata and without each approach's figures.
#[derive(Serialize)]
pub struct IntersectionSummary<'a> {
    pub city: &'a str,
    pub id: &'a str,
    pub worst_saturation: Option<f64>,
    pub worst_approach: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub conditions: &'a [Condition],
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde_option")]
    pub rx: Option<DateTime<Utc>>,
    pub state: Option<StateSummary<'a>>,
}

#[derive(Serialize)]
pub struct StateSummary<'a> {
    #[serde(with = "crate::contract::messages::ts_format")]
    pub ts: Ts,
    pub mode: ControllerMode,
    pub plan: &'a str,
    pub cycle_s: f64,
    pub phase: &'a PhaseLabel,
}

impl<'a> IntersectionSummary<'a> {
    fn of(e: &'a Intersection) -> IntersectionSummary<'a> {
        IntersectionSummary {
            city: &e.city,
            id: &e.id,
            worst_saturation: e.worst_saturation,
            worst_approach: e.worst_approach.as_deref(),
            conditions: &e.conditions,
            rx: e.rx,
            state: e.state.as_ref().map(|s| StateSummary {
                ts: s.ts,
                mode: s.mode,
                plan: &s.plan,
                cycle_s: s.cycle_s,
                phase: &s.phase,
            }),
        }
    }
}

/// A field unit: its latest status message, and the dispatcher's latest
/// order to it (which its status may not show yet).
#[derive(Clone, Debug, Serialize)]
pub struct Unit {
    pub city: String,
    #[serde(flatten)]
    pub status: UnitStatus,
    pub assignment: Option<UnitAssignment>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub rx: DateTime<Utc>,
}

impl Unit {
    /// The unit without where it was sent (the caller's position and address).
    fn without_personal_data(&self) -> Unit {
        let mut u = self.clone();
        if let Some(a) = u.assignment.as_mut() {
            a.destination = None;
            a.note = None;
        }
        u
    }

    fn update(&self, key: &str, rx: DateTime<Utc>) -> Update {
        Update::with_public(
            UpdateKind::Unit,
            &self.city,
            key.to_owned(),
            tags(Family::Units),
            rx,
            self,
            &self.without_personal_data(),
        )
    }
}

/// Latest sample of one KPI.
#[derive(Clone, Debug, Serialize)]
pub struct Kpi {
    pub city: String,
    pub service: String,
    #[serde(flatten)]
    pub sample: KpiSample,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub rx: DateTime<Utc>,
}

/// Per-line call counters for today.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LineCounters {
    pub received: u64,
    pub answered: u64,
    pub answered_within_10s: u64,
    pub answered_within_15s: u64,
    pub answered_within_20s: u64,
    /// Answer times: how many, their mean and the mean of the slowest 10 %
    /// (a replay checkpoint stores all of them beside, `day`).
    #[serde(skip_deserializing)]
    pub answer_times: AnswerTimes,
    /// Calls by their triage now (a reclassified call moves).
    pub triage: BTreeMap<Triage, u64>,
    pub abandoned: u64,
    pub transferred: u64,
    pub dispatched: u64,
    pub closed: u64,
}

/// A city's counters for its current local day.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    pub city: String,
    /// The city's local date these counters are for, and its zone (the
    /// screens label its times with it).
    pub date: Option<NaiveDate>,
    pub zone: Zone,
    pub lines: BTreeMap<String, LineCounters>,
    pub categories: BTreeMap<CallCategory, u64>,
    /// Calls not yet over, and those of them not yet answered.
    pub open_calls: u64,
    pub waiting_calls: u64,
    /// App events today by service and type.
    pub app_events: BTreeMap<String, BTreeMap<String, u64>>,
    pub complaints_filed: u64,
    /// Complaints routed to an OPD and not yet resolved, by OPD.
    pub complaints_open: BTreeMap<String, u64>,
}

/// Freshness of one feed (a replay checkpoint stores the skipped fields beside).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Feed {
    pub city: String,
    pub family: Family,
    pub source: String,
    /// Server time of the last message.
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub last_rx: DateTime<Utc>,
    /// Source time of the last message.
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde_option")]
    pub last_ts: Option<Ts>,
    pub stale: bool,
    pub stale_after_s: u64,
    pub messages: u64,
    #[serde(skip)]
    emitted_at: DateTime<Utc>,
    /// For intersection feeds: the district, so per-district screens get them.
    #[serde(skip)]
    district: Option<Arc<str>>,
}

/// An operator command and what became of it: `pending` until its
/// controller answers, then `applied` or `rejected` (with the controller's
/// reason), or `timed_out` when no answer came within
/// `traffic.ack_timeout_s` (a later answer still counts, marked `late`).
#[derive(Clone, Debug, Serialize)]
pub struct CommandEntry {
    pub city: String,
    pub intersection: String,
    pub command_id: Uuid,
    /// The command as published (None while only its ack has been seen).
    pub command: Option<Command>,
    pub status: &'static str,
    pub reason: Option<String>,
    /// The answer came after the command had been shown timed out.
    pub late: bool,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde_option")]
    pub ack_ts: Option<Ts>,
    /// When an answer is due (the command's receive time plus the timeout).
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde_option")]
    pub due: Option<DateTime<Utc>>,
    /// The controller's mode and plan when the command came, what a revert returns to.
    pub before: Option<Before>,
    /// For an applied command that holds the controller for a time.
    pub lease: Option<Lease>,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub rx: DateTime<Utc>,
}

/// The controller's regime before a command changed it.
#[derive(Clone, Debug, Serialize)]
pub struct Before {
    pub mode: ControllerMode,
    pub plan: String,
}

/// An applied command's hold on its controller: `in_force` until `until`,
/// then `ended` (Kendali publishes the revert of a `set_plan` or
/// `set_mode`), `reverted` once the revert is on the bus, or `superseded` by
/// a later command of the same action at the same junction (whose revert
/// returns to what this one replaced).
#[derive(Clone, Debug, Serialize)]
pub struct Lease {
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub until: DateTime<Utc>,
    pub state: &'static str,
    /// Whether its end needs a revert command (`set_plan`, `set_mode`).
    pub revert: bool,
    pub reverted_by: Option<Uuid>,
}

/// An alert as the screens get it: the bus message, and its city.
#[derive(Serialize)]
struct LiveAlert<'a> {
    city: &'a str,
    #[serde(flatten)]
    alert: &'a Alert,
}

/// Sizes, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Sizes {
    pub intersections: usize,
    pub calls: usize,
    pub open_calls: usize,
    pub units: usize,
    pub kpis: usize,
    pub feeds: usize,
    pub stale_feeds: usize,
    pub commands: usize,
    pub alerts: usize,
}

/// A feed refreshes its freshness update at most this often (the screens
/// compute age from `last_rx`; this only keeps `last_rx` current). A change
/// between fresh and stale is sent at once. Intersections are many and carry
/// their own receive time, so theirs refresh less often: 2,000 junctions
/// would otherwise add 2,000 updates a second to every screen.
fn feed_emit_every(family: Family) -> chrono::Duration {
    match family {
        Family::Atcs => chrono::Duration::seconds(5),
        _ => chrono::Duration::seconds(1),
    }
}
/// Commands remembered (most recent).
const COMMANDS_KEPT: usize = 500;
/// Complaint references remembered to close them per OPD (a reference is at
/// most `caps::REFERENCE` bytes: this is at most about 40 MB).
const COMPLAINTS_TRACKED: usize = 100_000;
/// Distinct (service, event type) pairs counted per city and day; past this a
/// new type is counted as its service's `_other`, a new service as `_other`.
const APP_EVENT_TYPES_KEPT: usize = 1000;

/// The maps whose entries count against `state.max_entities`.
#[derive(Clone, Copy)]
enum EntityMap {
    Intersections,
    Units,
    Assignments,
    Kpis,
    Feeds,
}

/// The whole live city (all cities on the bus).
pub struct CityState {
    settings: StateSettings,
    traffic: TrafficSettings,
    /// Each city's local time: when its day rolls over.
    zones: Zones,
    intersections: HashMap<String, Intersection>,
    /// Per intersection, what its conditions are judged on.
    watches: HashMap<Arc<str>, Watch>,
    calls: HashMap<String, Call>,
    closed_calls: VecDeque<String>,
    /// Call keys in the order they were first seen (may hold pruned ones).
    call_order: VecDeque<String>,
    /// Open calls dropped from the live state by `calls_kept`.
    calls_evicted: u64,
    units: HashMap<String, Unit>,
    /// `{city}/{unit}` -> the newest order to the unit (also before its first status).
    assignments: HashMap<String, UnitAssignment>,
    kpis: HashMap<String, Kpi>,
    counters: HashMap<String, Counters>,
    feeds: HashMap<String, Feed>,
    commands: HashMap<Uuid, CommandEntry>,
    command_order: VecDeque<Uuid>,
    /// Alerts not back to normal, by `{city}/{alert_id}` (as many as rules
    /// times entities at most: one alert per rule and entity).
    alerts: HashMap<String, Alert>,
    seen_events: HashSet<Uuid>,
    seen_order: VecDeque<Uuid>,
    complaint_opd: HashMap<String, (String, String)>,
    complaint_order: VecDeque<String>,
    /// Reused to build map keys for lookups.
    scratch: String,
}

impl CityState {
    pub fn new(settings: StateSettings) -> CityState {
        CityState {
            settings,
            traffic: TrafficSettings::default(),
            zones: Zones::default(),
            intersections: HashMap::new(),
            watches: HashMap::new(),
            calls: HashMap::new(),
            closed_calls: VecDeque::new(),
            call_order: VecDeque::new(),
            calls_evicted: 0,
            units: HashMap::new(),
            assignments: HashMap::new(),
            kpis: HashMap::new(),
            counters: HashMap::new(),
            feeds: HashMap::new(),
            commands: HashMap::new(),
            alerts: HashMap::new(),
            command_order: VecDeque::new(),
            seen_events: HashSet::new(),
            seen_order: VecDeque::new(),
            scratch: String::new(),
            complaint_opd: HashMap::new(),
            complaint_order: VecDeque::new(),
        }
    }

    /// The rules that flag junctions' conditions and time commands out.
    pub fn with_traffic(mut self, traffic: TrafficSettings) -> CityState {
        self.traffic = traffic;
        self
    }

    /// Each city's zone (WIB for all by default).
    pub fn with_zones(mut self, zones: Zones) -> CityState {
        self.zones = zones;
        self
    }

    pub fn sizes(&self) -> Sizes {
        Sizes {
            intersections: self.intersections.len(),
            calls: self.calls.len(),
            open_calls: self.calls.values().filter(|c| c.open).count(),
            units: self.units.len(),
            kpis: self.kpis.len(),
            feeds: self.feeds.len(),
            stale_feeds: self.feeds.values().filter(|f| f.stale).count(),
            commands: self.commands.len(),
            alerts: self.alerts.len(),
        }
    }

    /// Whether an event with this id was applied (among the ids remembered).
    pub fn has_seen(&self, id: Uuid) -> bool {
        self.seen_events.contains(&id)
    }

    /// One call's projection.
    pub fn call(&self, city: &str, call_id: &str) -> Option<&Call> {
        self.calls.get(&format!("{city}/{call_id}"))
    }

    /// Applies one validated message received at `rx`.
    pub fn apply(
        &mut self,
        topic: &Topic,
        msg: &Message,
        rx: DateTime<Utc>,
    ) -> Result<Vec<Update>, Rejection> {
        if let Some(id) = msg.event_id() {
            if self.seen_events.contains(&id) {
                return Err(Rejection::new(
                    RejectReason::DuplicateEvent,
                    format!("event_id {id} was already received"),
                ));
            }
        }
        let city = topic.city();
        // A call is never refused for room: calls and their cities' counters
        // are bounded by `calls_kept` and the day.
        // A message adds at most two entities (one and its feed): the
        // lookups are only needed near the bound.
        if self.entities() + 2 > self.settings.max_entities && !matches!(msg, Message::CallEvent(_))
        {
            let new = self.new_entities(topic, msg);
            if new > 0 && self.entities() + new > self.settings.max_entities {
                return Err(Rejection::new(
                    RejectReason::StateFull,
                    format!(
                        "the live state holds {} entities (state.max_entities = {}); this message would add {new}",
                        self.entities(),
                        self.settings.max_entities
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(4);
        match (topic, msg) {
            (Topic::IntersectionInfo { intersection, .. }, Message::IntersectionInfo(m)) => {
                let e = self.intersection_mut(city, intersection);
                e.district = m.district.as_deref().map(Arc::from);
                e.info = Some(Arc::new((**m).clone()));
                out.push(intersection_update(e, rx));
            }
            (Topic::IntersectionState { intersection, .. }, Message::IntersectionState(m)) => {
                let e = intersection_in(
                    &mut self.intersections,
                    &mut self.scratch,
                    city,
                    intersection,
                );
                // A late message (older ts) must not overwrite a newer state.
                if e.state.as_ref().is_some_and(|s| s.ts > m.ts) {
                    return Ok(out);
                }
                let worst = m
                    .approaches
                    .iter()
                    .max_by(|a, b| a.saturation.total_cmp(&b.saturation));
                e.worst_saturation = worst.map(|a| a.saturation);
                e.worst_approach = match worst {
                    Some(a) if e.worst_approach.as_deref() == Some(a.id.as_str()) => {
                        e.worst_approach.take()
                    }
                    worst => worst.map(|a| a.id.as_str().into()),
                };
                e.state = Some(m.clone());
                e.rx = Some(rx);
                let watch = match self.watches.get_mut(&*e.key) {
                    Some(w) => w,
                    None => self.watches.entry(e.key.clone()).or_default(),
                };
                let changed = watch.observe(m, &self.traffic);
                let routine = changed.is_none();
                if let Some(c) = changed {
                    e.conditions = c;
                }
                if e.conditions.iter().any(|c| c.kind == "congested") {
                    e.suggestions = suggestions(m, &e.conditions, self.traffic.extend_max_s).into();
                } else if !e.suggestions.is_empty() {
                    e.suggestions = Arc::from([]);
                }
                let mut u = intersection_update(e, rx);
                u.routine = routine;
                out.push(u);
                let district = e.district.clone();
                let ts = Some(m.ts);
                out.extend(self.touch_feed(city, Family::Atcs, intersection, district, ts, rx));
            }
            (Topic::Command { intersection, .. }, Message::Command(m)) => {
                let before = self
                    .intersections
                    .get(scratch_key(&mut self.scratch, &[city, intersection]))
                    .and_then(|e| e.state.as_ref())
                    .map(|s| Before {
                        mode: s.mode,
                        plan: s.plan.clone(),
                    });
                let due = rx + chrono::Duration::seconds(self.traffic.ack_timeout_s as i64);
                let entry = self.command_entry(city, intersection, m.command_id, rx);
                entry.command = Some((**m).clone());
                entry.due = Some(due);
                // An ack that came first has started its lease without the command.
                if entry.status == "applied" && entry.lease.is_none() {
                    let at = entry.rx;
                    entry.lease = lease_of(m, at);
                }
                if entry.before.is_none() {
                    entry.before = before;
                }
                entry.rx = rx;
                let id = m.command_id;
                if let Some(orig) = m.reverts {
                    if let Some(o) = self.commands.get_mut(&orig) {
                        if let Some(l) = o.lease.as_mut() {
                            l.state = "reverted";
                            l.reverted_by = Some(id);
                            out.push(self.command_update(orig));
                        }
                    }
                }
                self.remember_command(id, &mut out);
                out.push(self.command_update(id));
            }
            (Topic::CommandAck { intersection, .. }, Message::CommandAck(m)) => {
                let entry = self.command_entry(city, intersection, m.command_id, rx);
                if entry.ack_ts.is_some() {
                    // A controller's second answer to the same command changes nothing.
                    return Ok(out);
                }
                entry.late = entry.status == "timed_out";
                entry.status = match m.status {
                    AckStatus::Applied => "applied",
                    AckStatus::Rejected => "rejected",
                };
                entry.reason = m.reason.clone();
                entry.ack_ts = Some(m.ts);
                entry.rx = rx;
                let id = m.command_id;
                if m.status == AckStatus::Applied {
                    if let Some(cmd) = entry.command.clone() {
                        entry.lease = lease_of(&cmd, rx);
                        if entry.lease.is_some() {
                            self.supersede(&cmd, city, intersection, &mut out);
                            // Its revert may be known already (restored from the store).
                            let revert = self
                                .commands
                                .values()
                                .find(|e| e.command.as_ref().is_some_and(|c| c.reverts == Some(id)))
                                .map(|e| e.command_id);
                            if let (Some(r), Some(l)) = (
                                revert,
                                self.commands.get_mut(&id).and_then(|e| e.lease.as_mut()),
                            ) {
                                l.state = "reverted";
                                l.reverted_by = Some(r);
                            }
                        }
                    }
                }
                self.remember_command(id, &mut out);
                out.push(self.command_update(id));
            }
            (Topic::Call { .. }, Message::CallEvent(m)) => {
                self.apply_call_event(city, m, rx, &mut out)?;
            }
            (Topic::Unit { unit, .. }, Message::UnitStatus(m)) => {
                let key = format!("{city}/{unit}");
                if self.units.get(&key).is_some_and(|u| u.status.ts > m.ts) {
                    return Ok(out);
                }
                let u = Unit {
                    city: city.to_owned(),
                    status: (**m).clone(),
                    assignment: self.assignments.get(&key).cloned(),
                    rx,
                };
                out.push(u.update(&key, rx));
                self.units.insert(key, u);
                out.extend(self.touch_feed(city, Family::Units, "all", None, Some(m.ts), rx));
            }
            (Topic::Assignment { unit, .. }, Message::UnitAssignment(m)) => {
                // Retained, so redelivered on every reconnect: the newest order wins.
                let key = format!("{city}/{unit}");
                if self
                    .assignments
                    .get(&key)
                    .is_some_and(|a| a.ts > m.ts || a.assignment_id == m.assignment_id)
                {
                    return Ok(out);
                }
                self.assignments.insert(key.clone(), (**m).clone());
                if let Some(u) = self.units.get_mut(&key) {
                    u.assignment = Some((**m).clone());
                    u.rx = rx;
                    out.push(u.update(&key, rx));
                }
            }
            (Topic::AppEvents { service, .. }, Message::AppEvent(m)) => {
                self.apply_app_event(city, service, m, rx, &mut out);
            }
            (Topic::Kpi { service, .. }, Message::KpiSample(m)) => {
                let key = format!("{city}/{service}/{}", m.metric);
                if self.kpis.get(&key).is_some_and(|k| k.sample.ts > m.ts) {
                    return Ok(out);
                }
                let k = Kpi {
                    city: city.to_owned(),
                    service: service.clone(),
                    sample: (**m).clone(),
                    rx,
                };
                out.push(Update::new(
                    UpdateKind::Kpi,
                    city,
                    key.clone(),
                    tags(Family::Kpi),
                    rx,
                    Some(&k),
                ));
                self.kpis.insert(key, k);
                out.extend(self.touch_feed(city, Family::Kpi, service, None, Some(m.ts), rx));
            }
            (Topic::Alert { alert_id, .. }, Message::Alert(m)) => {
                let key = format!("{city}/{alert_id}");
                // The newest transition wins; a retained one seen again
                // (every reconnect) changes nothing.
                if self
                    .alerts
                    .get(&key)
                    .is_some_and(|a| a.event_id == m.event_id || a.ts > m.ts)
                {
                    return Ok(out);
                }
                let t = Tags {
                    family: None,
                    intersection: m.entity.strip_prefix("intersection:").map(Arc::from),
                    district: m.district.as_deref().map(Arc::from),
                    line: None,
                };
                if m.is_live() {
                    let value = LiveAlert { city, alert: m };
                    out.push(Update::new(
                        UpdateKind::Alert,
                        city,
                        key.clone(),
                        t,
                        rx,
                        Some(&value),
                    ));
                    self.alerts.insert(key, (**m).clone());
                } else if self.alerts.remove(&key).is_some() {
                    out.push(Update::new::<Alert>(
                        UpdateKind::Alert,
                        city,
                        key,
                        t,
                        rx,
                        None,
                    ));
                }
            }
            _ => unreachable!("decode() chooses the message type from the topic"),
        }
        if let Some(id) = msg.event_id() {
            self.remember_event(id);
        }
        Ok(out)
    }

    /// Entities counted against `state.max_entities`.
    pub fn entities(&self) -> usize {
        self.intersections.len()
            + self.units.len()
            + self.assignments.len()
            + self.kpis.len()
            + self.feeds.len()
            + self.counters.len()
    }

    /// How many entities applying `msg` would add (calls and commands aside).
    fn new_entities(&mut self, topic: &Topic, msg: &Message) -> usize {
        use EntityMap::*;
        let city = topic.city();
        match (topic, msg) {
            (Topic::IntersectionInfo { intersection, .. }, _) => {
                self.missing(Intersections, &[city, intersection])
            }
            (Topic::IntersectionState { intersection, .. }, _) => {
                self.missing(Intersections, &[city, intersection])
                    + self.missing(Feeds, &[city, Family::Atcs.as_str(), intersection])
            }
            (Topic::Unit { unit, .. }, _) => {
                self.missing(Units, &[city, unit])
                    + self.missing(Feeds, &[city, Family::Units.as_str(), "all"])
            }
            (Topic::Assignment { unit, .. }, _) => self.missing(Assignments, &[city, unit]),
            (Topic::Kpi { service, .. }, Message::KpiSample(m)) => {
                self.missing(Kpis, &[city, service, &m.metric])
                    + self.missing(Feeds, &[city, Family::Kpi.as_str(), service])
            }
            (Topic::AppEvents { service, .. }, _) => {
                self.missing(Feeds, &[city, Family::Apps.as_str(), service])
                    + usize::from(!self.counters.contains_key(city))
            }
            _ => 0,
        }
    }

    /// 1 if `map` has no entry under the key made of `parts`, else 0.
    fn missing(&mut self, map: EntityMap, parts: &[&str]) -> usize {
        let key = scratch_key(&mut self.scratch, parts);
        let known = match map {
            EntityMap::Intersections => self.intersections.contains_key(key),
            EntityMap::Units => self.units.contains_key(key),
            EntityMap::Assignments => self.assignments.contains_key(key),
            EntityMap::Kpis => self.kpis.contains_key(key),
            EntityMap::Feeds => self.feeds.contains_key(key),
        };
        usize::from(!known)
    }

    /// Periodic housekeeping: marks silent feeds stale (and their
    /// junctions out of contact), times out unanswered commands, ends
    /// leases, and rolls counters over at WIB midnight.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Update> {
        let mut out = Vec::new();
        for f in self.feeds.values_mut() {
            let silent = (now - f.last_rx).num_milliseconds() as f64 / 1000.0;
            let stale = silent > f.stale_after_s as f64;
            if stale != f.stale {
                f.stale = stale;
                f.emitted_at = now;
                out.push(feed_update(f, now));
                if f.family == Family::Atcs && stale {
                    let key = scratch_key(&mut self.scratch, &[&f.city, &f.source]);
                    if let (Some(w), Some(e)) =
                        (self.watches.get_mut(key), self.intersections.get_mut(key))
                    {
                        if let Some(c) = w.silent(Some(f.last_rx)) {
                            e.conditions = c;
                            out.push(intersection_update(e, now));
                        }
                    }
                }
            }
        }
        let mut changed = Vec::new();
        for e in self.commands.values_mut() {
            if e.status == "pending" && e.due.is_some_and(|d| now >= d) {
                e.status = "timed_out";
                e.reason = Some(format!(
                    "no answer from the controller within {} s",
                    self.traffic.ack_timeout_s
                ));
                changed.push(e.command_id);
            }
            if let Some(l) = e.lease.as_mut() {
                if l.state == "in_force" && now >= l.until {
                    l.state = "ended";
                    changed.push(e.command_id);
                }
            }
        }
        for id in changed {
            out.push(self.command_update(id));
        }
        let cities: Vec<String> = self.counters.keys().cloned().collect();
        for city in cities {
            if self.roll_day(&city, now) {
                out.push(self.counters_update(&city, now));
            }
        }
        out
    }

    fn intersection_mut(&mut self, city: &str, id: &str) -> &mut Intersection {
        intersection_in(&mut self.intersections, &mut self.scratch, city, id)
    }

    /// A newly applied lease ends the earlier ones of the same action at the
    /// same junction: their revert would undo this command. This one's
    /// revert returns to what the first of them replaced.
    fn supersede(&mut self, cmd: &Command, city: &str, intersection: &str, out: &mut Vec<Update>) {
        if !matches!(cmd.action, CommandAction::SetPlan | CommandAction::SetMode)
            || cmd.reverts.is_some()
        {
            return;
        }
        let mut first_before: Option<(DateTime<Utc>, Before)> = None;
        let mut ended = Vec::new();
        for e in self.commands.values_mut() {
            if e.command_id == cmd.command_id || e.city != city || e.intersection != intersection {
                continue;
            }
            let same = e
                .command
                .as_ref()
                .is_some_and(|c| c.action == cmd.action && c.reverts.is_none());
            if let (true, Some(l)) = (same, e.lease.as_mut()) {
                if l.state == "in_force" {
                    l.state = "superseded";
                    ended.push(e.command_id);
                    if let Some(b) = &e.before {
                        if first_before.as_ref().is_none_or(|(t, _)| e.rx < *t) {
                            first_before = Some((e.rx, b.clone()));
                        }
                    }
                }
            }
        }
        if let (Some((_, b)), Some(e)) = (first_before, self.commands.get_mut(&cmd.command_id)) {
            e.before = Some(b);
        }
        for id in ended {
            out.push(self.command_update(id));
        }
    }

    /// The district an intersection lies in, from its info.
    fn district_of(&self, city: &str, id: &str) -> Option<Arc<str>> {
        self.intersections
            .get(&format!("{city}/{id}"))
            .and_then(|e| e.district.clone())
    }

    /// The command's entry, created pending if this is the first we hear of it
    /// (an ack may arrive before its command).
    fn command_entry(
        &mut self,
        city: &str,
        intersection: &str,
        id: Uuid,
        rx: DateTime<Utc>,
    ) -> &mut CommandEntry {
        self.commands.entry(id).or_insert_with(|| CommandEntry {
            city: city.to_owned(),
            intersection: intersection.to_owned(),
            command: None,
            command_id: id,
            status: "pending",
            reason: None,
            late: false,
            ack_ts: None,
            due: None,
            before: None,
            lease: None,
            rx,
        })
    }

    fn remember_command(&mut self, id: Uuid, out: &mut Vec<Update>) {
        if !self.command_order.contains(&id) {
            self.command_order.push_back(id);
        }
        while self.command_order.len() > COMMANDS_KEPT {
            if let Some(old) = self.command_order.pop_front() {
                if let Some(e) = self.commands.remove(&old) {
                    let key = old.to_string();
                    out.push(Update::new::<CommandEntry>(
                        UpdateKind::Command,
                        &e.city,
                        key,
                        tags(Family::Atcs),
                        e.rx,
                        None,
                    ));
                }
            }
        }
    }

    fn command_update(&self, id: Uuid) -> Update {
        let e = &self.commands[&id];
        let district = self.district_of(&e.city, &e.intersection);
        let t = Tags {
            family: Some(Family::Atcs),
            intersection: Some(e.intersection.as_str().into()),
            district,
            line: None,
        };
        Update::new(
            UpdateKind::Command,
            &e.city,
            id.to_string(),
            t,
            e.rx,
            Some(e),
        )
    }

    fn remember_event(&mut self, id: Uuid) {
        self.seen_events.insert(id);
        self.seen_order.push_back(id);
        while self.seen_order.len() > self.settings.dedup_window {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_events.remove(&old);
            }
        }
    }

    /// A message came from `source`: refresh its feed's freshness; returns the
    /// feed's update when one is due. An intersection's feed carries its
    /// district, so per-district screens get it.
    fn touch_feed(
        &mut self,
        city: &str,
        family: Family,
        source: &str,
        district: Option<Arc<str>>,
        ts: Option<Ts>,
        rx: DateTime<Utc>,
    ) -> Option<Update> {
        let key = scratch_key(&mut self.scratch, &[city, family.as_str(), source]);
        let stale_after_s = self.settings.stale_after(family).as_secs();
        match self.feeds.get_mut(key) {
            Some(f) => {
                f.last_rx = rx;
                f.last_ts = ts.or(f.last_ts);
                f.messages += 1;
                if f.stale || rx - f.emitted_at >= feed_emit_every(family) {
                    f.stale = false;
                    f.emitted_at = rx;
                    f.district = district;
                    return Some(feed_update(f, rx));
                }
                None
            }
            None => {
                let f = Feed {
                    city: city.to_owned(),
                    family,
                    source: source.to_owned(),
                    last_rx: rx,
                    last_ts: ts,
                    stale: false,
                    stale_after_s,
                    messages: 1,
                    emitted_at: rx,
                    district,
                };
                let u = feed_update(&f, rx);
                self.feeds.insert(key.to_owned(), f);
                Some(u)
            }
        }
    }

    fn counters_mut(&mut self, city: &str, rx: DateTime<Utc>) -> &mut Counters {
        self.roll_day(city, rx);
        self.counters
            .get_mut(city)
            .expect("roll_day creates the city's counters")
    }

    /// Starts a new day's counters when the city's local date changed at
    /// `now`; returns whether it did.
    fn roll_day(&mut self, city: &str, now: DateTime<Utc>) -> bool {
        let zone = self.zones.of(city);
        let today = zone.date(now);
        let c = self
            .counters
            .entry(city.to_owned())
            .or_insert_with(|| Counters {
                city: city.to_owned(),
                ..Default::default()
            });
        if c.date == Some(today) {
            return false;
        }
        // Open calls and open complaints carry over; today's tallies restart.
        *c = Counters {
            city: city.to_owned(),
            date: Some(today),
            zone,
            open_calls: c.open_calls,
            waiting_calls: c.waiting_calls,
            complaints_open: std::mem::take(&mut c.complaints_open),
            ..Default::default()
        };
        true
    }

    fn counters_update(&self, city: &str, rx: DateTime<Utc>) -> Update {
        Update::new(
            UpdateKind::Counters,
            city,
            city.to_owned(),
            Tags::default(),
            rx,
            self.counters.get(city),
        )
    }

    /// Possible duplicates: a call that has just learnt where its caller is
    /// or their number is flagged against the city's open calls it may
    /// repeat (both ways); a `merged` event settles a pair, linked into one
    /// incident or kept apart for good. Returns the keys of the other calls
    /// whose projection changed.
    fn flag_duplicates(&mut self, city: &str, key: &str, m: &CallEvent) -> Vec<String> {
        let Some(this) = self.calls.get(key) else {
            return Vec::new();
        };
        let this_id = this.call_id.clone();
        let mut linked = Vec::new();
        if m.kind == CallEventType::Merged {
            if let Some(other) = &m.related_call {
                let okey = format!("{city}/{other}");
                let apart = m.incident_id.is_none();
                for (k, id) in [(key.to_owned(), other.clone()), (okey.clone(), this_id)] {
                    if let Some(c) = self.calls.get_mut(&k) {
                        c.possible_duplicates.retain(|d| *d != id);
                        if apart && !c.kept_apart.contains(&id) {
                            c.kept_apart.push(id);
                        }
                    }
                }
                linked.push(okey);
            }
            return linked;
        }
        if !this.open || (m.caller.is_none() && m.callback.is_none()) {
            return linked;
        }
        let (window, radius) = (
            self.settings.duplicate_window_s as f64,
            self.settings.duplicate_radius_m,
        );
        let prefix = format!("{city}/");
        // The most recent candidates first, at most [`Call::DUPLICATES_KEPT`]
        // on each call: a surge of calls from one crash must not make every
        // call list (and re-send) every other.
        let mut found: Vec<(String, String, Option<Ts>)> = self
            .calls
            .iter()
            .filter(|(k, c)| {
                k.starts_with(&prefix)
                    && k.as_str() != key
                    && c.open
                    && !this.possible_duplicates.contains(&c.call_id)
                    && !this.kept_apart.contains(&c.call_id)
                    && (this.incident_id.is_none() || c.incident_id != this.incident_id)
                    && this.may_repeat(c, window, radius)
            })
            .map(|(k, c)| {
                let received = c.stages.get(&CallEventType::Received).copied();
                (k.clone(), c.call_id.clone(), received)
            })
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.2));
        let room = Call::DUPLICATES_KEPT.saturating_sub(this.possible_duplicates.len());
        for (okey, oid, _) in found.into_iter().take(room) {
            if let Some(c) = self.calls.get_mut(&okey) {
                if c.possible_duplicates.len() < Call::DUPLICATES_KEPT {
                    c.possible_duplicates.push(this_id.clone());
                    linked.push(okey);
                }
            }
            if let Some(c) = self.calls.get_mut(key) {
                c.possible_duplicates.push(oid);
            }
        }
        linked
    }

    fn apply_call_event(
        &mut self,
        city: &str,
        m: &CallEvent,
        rx: DateTime<Utc>,
        out: &mut Vec<Update>,
    ) -> Result<(), Rejection> {
        let key = format!("{city}/{}", m.call_id);
        if let Some(call) = self.calls.get(&key) {
            call.check(m)?;
        }
        let was = self
            .calls
            .get(&key)
            .map(|c| (c.open, c.stages.contains_key(&CallEventType::Answered)));
        let call = self.calls.entry(key.clone()).or_insert_with(|| Call {
            city: city.to_owned(),
            call_id: m.call_id.clone(),
            line: m.line,
            stage: m.kind,
            open: true,
            stages: BTreeMap::new(),
            category: None,
            priority: None,
            agency: None,
            unit: None,
            operator: None,
            caller: None,
            callback: None,
            triage: None,
            protocol: None,
            disposition: None,
            incident_id: None,
            units: Vec::new(),
            possible_duplicates: Vec::new(),
            kept_apart: Vec::new(),
            actions: Vec::new(),
            answer_s: None,
            dispatch_s: None,
            events: 0,
            rx,
        });
        let first_of_stage = !m.kind.is_annotation() && !call.stages.contains_key(&m.kind);
        if let (Some(new), Some(now)) = (rank(m.kind), rank(call.stage)) {
            let entry = call.stages.entry(m.kind).or_insert(m.ts);
            if m.ts < *entry {
                *entry = m.ts;
            }
            if new > now || (new == now && m.kind.is_terminal()) {
                call.stage = m.kind;
            }
        } else if rank(call.stage).is_none() {
            // A call first heard of through an annotation: its stage waits for a stage.
            call.stage = CallEventType::Received;
        }
        if let Some(unit) = &m.unit {
            if m.kind.is_unit_stage() {
                match call.units.iter_mut().find(|u| &u.unit == unit) {
                    Some(u) => {
                        if rank(m.kind) > rank(u.stage) {
                            u.stage = m.kind;
                            u.since = m.ts;
                        }
                    }
                    None => call.units.push(CallUnit {
                        unit: unit.clone(),
                        stage: m.kind,
                        since: m.ts,
                    }),
                }
            } else if m.kind == CallEventType::UnitCancelled {
                call.units.retain(|u| &u.unit != unit);
            }
        }
        call.callback = m.callback.clone().or(call.callback.take());
        let triage_was = call.triage;
        call.triage = m.triage.or(call.triage);
        let triage_now = call.triage;
        call.protocol = m.protocol.clone().or(call.protocol.take());
        call.disposition = m.disposition.or(call.disposition);
        call.incident_id = m.incident_id.clone().or(call.incident_id.take());
        call.open = !call.stages.keys().any(|s| s.is_terminal());
        call.category = m.category.or(call.category);
        call.priority = m.priority.or(call.priority);
        call.agency = m.agency.clone().or(call.agency.take());
        if m.kind != CallEventType::UnitCancelled {
            call.unit = m.unit.clone().or(call.unit.take());
        } else if call.unit == m.unit {
            call.unit = call.units.last().map(|u| u.unit.clone());
        }
        // The call taker is who answered; later events by others (a note,
        // a dispatch) do not take the call from them.
        if m.kind == CallEventType::Answered || call.operator.is_none() {
            call.operator = m.operator.clone().or(call.operator.take());
        }
        if let Some(id) = m.action_id {
            call.applied_action(id);
        }
        call.caller = m.caller.clone().or(call.caller.take());
        let secs = |a: Option<&Ts>, b: Option<&Ts>| match (a, b) {
            (Some(a), Some(b)) => Some((*b - *a).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        let received = call.stages.get(&CallEventType::Received);
        let had_answer_s = call.answer_s.is_some();
        call.answer_s = secs(received, call.stages.get(&CallEventType::Answered));
        call.dispatch_s = secs(received, call.stages.get(&CallEventType::Dispatched));
        call.events += 1;
        call.rx = rx;
        let (open, answered, answer_s, line, category) = (
            call.open,
            call.stages.contains_key(&CallEventType::Answered),
            call.answer_s,
            call.line,
            m.category,
        );
        let new_answer_s = (!had_answer_s).then_some(answer_s).flatten();
        let linked = self.flag_duplicates(city, &key, m);
        let call_value = self
            .calls
            .get(&key)
            .cloned()
            .expect("the call just applied");

        // Counters: tallies count each stage once per call; open/waiting follow the projection.
        let c = self.counters_mut(city, rx);
        let lc = c.lines.entry(line.as_str().to_owned()).or_default();
        if first_of_stage {
            match m.kind {
                CallEventType::Received => lc.received += 1,
                CallEventType::Answered => lc.answered += 1,
                CallEventType::Abandoned => lc.abandoned += 1,
                CallEventType::Transferred => lc.transferred += 1,
                CallEventType::Dispatched => lc.dispatched += 1,
                CallEventType::Closed => lc.closed += 1,
                _ => {}
            }
        }
        if triage_now != triage_was {
            if let Some(t) = triage_was {
                let n = lc.triage.entry(t).or_default();
                *n = n.saturating_sub(1);
            }
            if let Some(t) = triage_now {
                *lc.triage.entry(t).or_default() += 1;
            }
        }
        if let Some(s) = new_answer_s {
            lc.answer_times.add(s);
            if s <= 10.0 {
                lc.answered_within_10s += 1;
            }
            if s <= 15.0 {
                lc.answered_within_15s += 1;
            }
            if s <= 20.0 {
                lc.answered_within_20s += 1;
            }
        }
        if let (CallEventType::Classified, Some(cat)) = (m.kind, category) {
            if first_of_stage {
                *c.categories.entry(cat).or_default() += 1;
            }
        }
        let (was_open, was_waiting) = match was {
            Some((o, a)) => (o, o && !a),
            None => (false, false),
        };
        let (is_open, is_waiting) = (open, open && !answered);
        c.open_calls = (c.open_calls + is_open as u64).saturating_sub(was_open as u64);
        c.waiting_calls = (c.waiting_calls + is_waiting as u64).saturating_sub(was_waiting as u64);

        // Callers' personal data reach only those allowed to see them
        // (`Permission::PersonalData`): each update carries a form without them.
        out.push(Update::with_public(
            UpdateKind::CallEvent,
            city,
            m.event_id.to_string(),
            call_tags(line),
            rx,
            m,
            &m.without_personal_data(),
        ));
        out.push(call_update(city, &key, &call_value, rx));
        for other in linked {
            if let Some(c) = self.calls.get(&other) {
                out.push(call_update(city, &other, c, rx));
            }
        }
        out.push(self.counters_update(city, rx));
        if was.is_none() {
            self.call_order.push_back(key.clone());
            self.bound_calls(&key, rx, out);
        }
        if was_open && !open {
            self.closed_calls.push_back(key);
            while self.closed_calls.len() > self.settings.closed_calls_kept {
                let Some(old) = self.closed_calls.pop_front() else {
                    break;
                };
                // A closed call may have been reopened by a late event: only drop it if still closed.
                if self.calls.get(&old).is_some_and(|c| !c.open) {
                    self.drop_call(old, rx, out);
                }
            }
        }
        let src = line.as_str().to_owned();
        out.extend(self.touch_feed(city, Family::Calls, &src, None, Some(m.ts), rx));
        Ok(())
    }

    /// Drops a call from the live state (never from the store): screens get a removal.
    fn drop_call(&mut self, key: String, rx: DateTime<Utc>, out: &mut Vec<Update>) {
        if let Some(c) = self.calls.remove(&key) {
            let t = Tags {
                family: Some(Family::Calls),
                line: Some(c.line),
                ..Default::default()
            };
            out.push(Update::new::<Call>(
                UpdateKind::Call,
                &c.city,
                key,
                t,
                rx,
                None,
            ));
        }
    }

    /// Holds the live state to `calls_kept` calls, dropping the oldest first.
    /// Calls that never close (their closing events lost at the source) would
    /// otherwise grow the server and every screen without bound; a dropped
    /// call stays in the database and today's counters keep counting it.
    fn bound_calls(&mut self, newest: &str, rx: DateTime<Utc>, out: &mut Vec<Update>) {
        while self.calls.len() > self.settings.calls_kept {
            let Some(old) = self.call_order.pop_front() else {
                break;
            };
            if old == newest {
                self.call_order.push_back(old);
                break;
            }
            if self.calls.get(&old).is_some_and(|c| c.open) {
                self.calls_evicted += 1;
                if self.calls_evicted == 1 || self.calls_evicted.is_multiple_of(1000) {
                    tracing::warn!(
                        call = %old,
                        evicted = self.calls_evicted,
                        kept = self.settings.calls_kept,
                        "live state full of calls: the oldest open call leaves the screens (it stays in the database)"
                    );
                }
            }
            self.drop_call(old, rx, out);
        }
        // Keys of calls already pruned as closed: drop them now and then.
        if self.call_order.len() > 2 * self.calls.len() + 1024 {
            let calls = &self.calls;
            self.call_order.retain(|k| calls.contains_key(k));
        }
    }

    fn apply_app_event(
        &mut self,
        city: &str,
        service: &str,
        m: &AppEvent,
        rx: DateTime<Utc>,
        out: &mut Vec<Update>,
    ) {
        let c = self.counters_mut(city, rx);
        let known = c
            .app_events
            .get(service)
            .is_some_and(|types| types.contains_key(&m.kind));
        let full = !known
            && c.app_events.values().map(BTreeMap::len).sum::<usize>() >= APP_EVENT_TYPES_KEPT;
        let (service_key, kind_key) = match (full, c.app_events.contains_key(service)) {
            (false, _) => (service, m.kind.as_str()),
            (true, true) => (service, "_other"),
            (true, false) => ("_other", "_other"),
        };
        *c.app_events
            .entry(service_key.to_owned())
            .or_default()
            .entry(kind_key.to_owned())
            .or_default() += 1;
        let mut track: Option<(String, Option<String>)> = None;
        match m.kind.as_str() {
            "complaint.filed" => c.complaints_filed += 1,
            "complaint.routed" | "complaint.resolved" | "complaint.closed" => {
                track = m.reference.clone().map(|r| (r, m.opd.clone()));
            }
            _ => {}
        }
        if let Some((reference, opd)) = track {
            let routed = m.kind == "complaint.routed";
            let key = format!("{city}/{reference}");
            // Routing to a new OPD moves the complaint; resolving closes it wherever it was.
            if let Some((_, prev)) = self.complaint_opd.remove(&key) {
                let c = self
                    .counters
                    .get_mut(city)
                    .expect("counters_mut created them");
                if let Some(n) = c.complaints_open.get_mut(&prev) {
                    *n = n.saturating_sub(1);
                }
            }
            if routed {
                if let Some(opd) = opd {
                    let c = self
                        .counters
                        .get_mut(city)
                        .expect("counters_mut created them");
                    *c.complaints_open.entry(opd.clone()).or_default() += 1;
                    self.complaint_opd
                        .insert(key.clone(), (city.to_owned(), opd));
                    self.complaint_order.push_back(key);
                    while self.complaint_order.len() > COMPLAINTS_TRACKED {
                        if let Some(old) = self.complaint_order.pop_front() {
                            self.complaint_opd.remove(&old);
                        }
                    }
                }
            }
        }
        let t = tags(Family::Apps);
        out.push(Update::new(
            UpdateKind::AppEvent,
            city,
            m.event_id.to_string(),
            t,
            rx,
            Some(m),
        ));
        out.push(self.counters_update(city, rx));
        out.extend(self.touch_feed(city, Family::Apps, service, None, Some(m.ts), rx));
    }
}

/// `{a}/{b}/..` in `buf`, reused so that looking up an entity allocates nothing.
fn scratch_key<'a>(buf: &'a mut String, parts: &[&str]) -> &'a str {
    buf.clear();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            buf.push('/');
        }
        buf.push_str(p);
    }
    buf
}

/// The intersection `{city}/{id}` of `map`, made on first mention.
fn intersection_in<'a>(
    map: &'a mut HashMap<String, Intersection>,
    scratch: &mut String,
    city: &str,
    id: &str,
) -> &'a mut Intersection {
    let key = scratch_key(scratch, &[city, id]);
    if !map.contains_key(key) {
        let shared: Arc<str> = key.into();
        map.insert(
            key.to_owned(),
            Intersection {
                city: city.into(),
                id: id.into(),
                key: shared,
                ..Default::default()
            },
        );
    }
    map.get_mut(key).expect("inserted above if it was missing")
}

/// The hold an applied command takes from `applied_at`: a `set_plan` or
/// `set_mode` for its `expires_in_s`, an extension for its seconds.
fn lease_of(cmd: &Command, applied_at: DateTime<Utc>) -> Option<Lease> {
    if cmd.reverts.is_some() {
        return None;
    }
    let (secs, revert) = match cmd.action {
        CommandAction::SetPlan | CommandAction::SetMode | CommandAction::Priority => {
            (cmd.expires_in_s?, true)
        }
        CommandAction::ExtendGreen => (cmd.seconds?, false),
        CommandAction::Announce => return None,
    };
    Some(Lease {
        until: applied_at + chrono::Duration::milliseconds((secs * 1000.0) as i64),
        state: "in_force",
        revert,
        reverted_by: None,
    })
}

/// An intersection's update, encoded when a screen first needs it.
fn intersection_update(e: &Intersection, rx: DateTime<Utc>) -> Update {
    let t = Tags {
        family: Some(Family::Atcs),
        intersection: Some(e.id.clone()),
        district: e.district.clone(),
        line: None,
    };
    Update::deferred(
        UpdateKind::Intersection,
        e.city.clone(),
        e.key.clone(),
        t,
        rx,
        Box::new(e.clone()),
    )
}

fn tags(family: Family) -> Tags {
    Tags {
        family: Some(family),
        ..Default::default()
    }
}

fn call_tags(line: CallLine) -> Tags {
    Tags {
        line: Some(line),
        ..tags(Family::Calls)
    }
}

/// A call's projection for the screens, with and without personal data.
fn call_update(city: &str, key: &str, call: &Call, rx: DateTime<Utc>) -> Update {
    Update::with_public(
        UpdateKind::Call,
        city,
        key.to_owned(),
        call_tags(call.line),
        rx,
        call,
        &call.without_personal_data(),
    )
}

fn feed_update(f: &Feed, rx: DateTime<Utc>) -> Update {
    let key = format!("{}/{}/{}", f.city, f.family.as_str(), f.source);
    let mut t = tags(f.family);
    match f.family {
        Family::Atcs => {
            t.intersection = Some(f.source.as_str().into());
            t.district = f.district.clone();
        }
        Family::Calls => t.line = CallLine::parse(&f.source),
        _ => {}
    }
    Update::new(UpdateKind::Feed, &f.city, key, t, rx, Some(f))
}

mod day;
pub use day::DayPart;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{decode, Limits};

    fn call_event(state: &mut CityState, call: u32, kind: &str) -> Vec<Update> {
        let ts = Utc::now().with_timezone(&crate::domain::wib()).to_rfc3339();
        apply_json(state, &format!("c{call}"), &ts, kind, "").expect("applies")
    }

    /// Applies one call event on line 112, given its call, time, type and
    /// further JSON fields (`,"unit":"a"`).
    fn apply_json(
        state: &mut CityState,
        call: &str,
        ts: &str,
        kind: &str,
        extra: &str,
    ) -> Result<Vec<Update>, Rejection> {
        let now = Utc::now();
        let payload = format!(
            r#"{{"event_id":"{}","call_id":"{call}","ts":"{ts}","line":"112","type":"{kind}"{extra}}}"#,
            Uuid::new_v4()
        );
        let (topic, msg) = decode(
            "city/kota/calls/112",
            payload.as_bytes(),
            &Limits::default(),
            now,
        )?;
        state.apply(&topic, &msg, now)
    }

    /// Applies one call event of call `c1` given as JSON fields after `type`.
    fn event_at(state: &mut CityState, min: u32, kind: &str, extra: &str) -> Result<(), Rejection> {
        let ts = format!("2026-12-05T08:{min:02}:00+07:00");
        apply_json(state, "c1", &ts, kind, extra).map(|_| ())
    }

    /// Applies `payload` on `topic` (an ATCS topic of city `kota`) at `rx`.
    fn atcs(state: &mut CityState, topic: &str, payload: &str, rx: DateTime<Utc>) -> Vec<Update> {
        let (topic, msg) = decode(
            &format!("city/kota/atcs/{topic}"),
            payload.as_bytes(),
            &Limits::default(),
            rx,
        )
        .unwrap();
        state.apply(&topic, &msg, rx).unwrap()
    }

    #[test]
    fn commands_time_out_hold_leases_and_a_later_plan_supersedes_an_earlier_one() {
        let mut state = CityState::new(StateSettings::default());
        let t0 = Utc::now();
        let ts = t0.with_timezone(&crate::domain::wib()).to_rfc3339();
        let s = format!(
            r#"{{"ts":"{ts}","intersection":"j","mode":"adaptive","plan":"pagi","cycle_s":90,"phase":1,"phase_elapsed_s":0,"approaches":[]}}"#
        );
        atcs(&mut state, "j/state", &s, t0);
        let cmd = |id: u128, plan: &str| {
            format!(
                r#"{{"command_id":"{}","ts":"{ts}","action":"set_plan","plan":"{plan}","expires_in_s":600,"reason":"uji","issued_by":"p"}}"#,
                Uuid::from_u128(id)
            )
        };
        let ack = |id: u128| {
            format!(
                r#"{{"command_id":"{}","ts":"{ts}","status":"applied","reason":null}}"#,
                Uuid::from_u128(id)
            )
        };
        let sec = |n: i64| t0 + chrono::Duration::seconds(n);
        // One never answered: timed out at 10 s, not before.
        atcs(&mut state, "j/command", &cmd(9, "x"), t0);
        state.tick(sec(9));
        assert_eq!(state.commands[&Uuid::from_u128(9)].status, "pending");
        state.tick(sec(10));
        assert_eq!(state.commands[&Uuid::from_u128(9)].status, "timed_out");
        // Two plans, the second over the first.
        atcs(&mut state, "j/command", &cmd(1, "festival"), sec(1));
        atcs(&mut state, "j/command/ack", &ack(1), sec(2));
        let first = &state.commands[&Uuid::from_u128(1)];
        assert_eq!(
            (first.status, first.lease.as_ref().unwrap().state),
            ("applied", "in_force")
        );
        assert_eq!(first.before.as_ref().unwrap().plan, "pagi");
        let s2 = s.replace("pagi", "festival");
        atcs(&mut state, "j/state", &s2, sec(3));
        atcs(&mut state, "j/command", &cmd(2, "malam"), sec(4));
        atcs(&mut state, "j/command/ack", &ack(2), sec(5));
        assert_eq!(
            state.commands[&Uuid::from_u128(1)]
                .lease
                .as_ref()
                .unwrap()
                .state,
            "superseded"
        );
        let second = &state.commands[&Uuid::from_u128(2)];
        assert_eq!(
            second.before.as_ref().unwrap().plan,
            "pagi",
            "its revert goes back to before the first"
        );
        // Its lease ends at 605 s.
        state.tick(sec(604));
        assert_eq!(
            state.commands[&Uuid::from_u128(2)]
                .lease
                .as_ref()
                .unwrap()
                .state,
            "in_force"
        );
        state.tick(sec(605));
        assert_eq!(
            state.commands[&Uuid::from_u128(2)]
                .lease
                .as_ref()
                .unwrap()
                .state,
            "ended"
        );
        // The revert seen on the bus marks it reverted.
        let revert = format!(
            r#"{{"command_id":"{}","ts":"{ts}","action":"set_plan","plan":"pagi","reverts":"{}","issued_by":"rule:lease"}}"#,
            Uuid::from_u128(3),
            Uuid::from_u128(2)
        );
        atcs(&mut state, "j/command", &revert, sec(606));
        let l = state.commands[&Uuid::from_u128(2)].lease.clone().unwrap();
        assert_eq!(
            (l.state, l.reverted_by),
            ("reverted", Some(Uuid::from_u128(3)))
        );
        assert!(
            state.commands[&Uuid::from_u128(3)].lease.is_none(),
            "a revert holds nothing"
        );
    }

    #[test]
    fn a_surge_from_one_place_flags_each_call_against_a_bounded_few() {
        let mut state = CityState::new(StateSettings::default());
        let ts = Utc::now().with_timezone(&crate::domain::wib()).to_rfc3339();
        let at = r#","caller":{"lat":-6.0,"lon":106.0}"#;
        let mut last = Vec::new();
        for i in 0..40 {
            last = apply_json(&mut state, &format!("s{i}"), &ts, "received", at).unwrap();
        }
        // The 40th call: its event, itself, the calls it flagged with room
        // left (none: the recent ones are full), the counters.
        let calls = last.iter().filter(|u| u.kind == UpdateKind::Call).count();
        assert!(calls <= 1 + Call::DUPLICATES_KEPT, "{calls} call updates");
        for c in state.calls.values() {
            assert!(
                c.possible_duplicates.len() <= Call::DUPLICATES_KEPT,
                "{:?}",
                c.possible_duplicates
            );
        }
        assert_eq!(
            state.calls["kota/s39"].possible_duplicates.len(),
            Call::DUPLICATES_KEPT
        );
    }

    #[test]
    fn counters_give_the_eu_answer_indicators_and_follow_a_reclassified_triage() {
        let mut state = CityState::new(StateSettings::default());
        let at = |min: u32, sec: u32| format!("2026-12-05T08:{min:02}:{sec:02}+07:00");
        for (call, answer_after_s) in [("a", 5), ("b", 12), ("c", 25)] {
            apply_json(&mut state, call, &at(0, 0), "received", "").unwrap();
            apply_json(&mut state, call, &at(0, answer_after_s), "answered", "").unwrap();
        }
        // b: a second look finds not a prank but a silent line.
        for (call, min, triage) in [("a", 1, "normal"), ("b", 1, "prank"), ("b", 2, "ghost")] {
            let extra = format!(r#","triage":"{triage}""#);
            apply_json(&mut state, call, &at(min, 0), "classified", &extra).unwrap();
        }
        let c = state.counters.get("kota").expect("counters");
        let lc = &c.lines["112"];
        assert_eq!(
            (
                lc.answered_within_10s,
                lc.answered_within_15s,
                lc.answered_within_20s
            ),
            (1, 2, 2)
        );
        assert_eq!(lc.answer_times.count(), 3);
        assert_eq!(lc.answer_times.mean_s(), Some(14.0));
        assert_eq!(lc.answer_times.slowest_tenth_mean_s(), Some(25.0));
        let triage: Vec<_> = lc.triage.iter().filter(|(_, n)| **n > 0).collect();
        assert_eq!(triage, [(&Triage::Normal, &1), (&Triage::Ghost, &1)]);
    }

    #[test]
    fn a_call_holds_several_units_reclassifications_and_annotations_without_contradiction() {
        let mut state = CityState::new(StateSettings::default());
        let ok = |r: Result<(), Rejection>| r.expect("accepted");
        ok(event_at(
            &mut state,
            0,
            "received",
            r#","callback":"0812-3456-7890""#,
        ));
        ok(event_at(&mut state, 1, "answered", r#","operator":"rina""#));
        ok(event_at(
            &mut state,
            2,
            "classified",
            r#","category":"fire","priority":2,"triage":"normal""#,
        ));
        ok(event_at(&mut state, 3, "dispatched", r#","unit":"dmk-01""#));
        ok(event_at(&mut state, 9, "on_scene", r#","unit":"dmk-01""#));
        // A second unit after the first is on scene, and a reclassification after dispatch.
        ok(event_at(
            &mut state,
            10,
            "dispatched",
            r#","unit":"amb-02""#,
        ));
        ok(event_at(
            &mut state,
            11,
            "classified",
            r#","priority":1,"protocol":"FIRE-2B""#,
        ));
        ok(event_at(
            &mut state,
            12,
            "noted",
            r#","note":"korban terjebak di lantai 2""#,
        ));
        ok(event_at(
            &mut state,
            13,
            "unit_cancelled",
            r#","unit":"dmk-01""#,
        ));
        let c = state.call("kota", "c1").expect("the call");
        assert_eq!(
            c.stage,
            CallEventType::OnScene,
            "annotations and repeats move no stage"
        );
        assert_eq!(c.priority, Some(1));
        assert_eq!(c.triage, Some(crate::contract::Triage::Normal));
        assert_eq!(c.protocol.as_deref(), Some("FIRE-2B"));
        assert_eq!(c.callback.as_deref(), Some("0812-3456-7890"));
        let units: Vec<_> = c.units.iter().map(|u| (u.unit.as_str(), u.stage)).collect();
        assert_eq!(units, [("amb-02", CallEventType::Dispatched)]);
        assert_eq!(c.unit.as_deref(), Some("amb-02"));
        assert!(!c.stages.contains_key(&CallEventType::Noted));
        assert!(c.without_personal_data().callback.is_none());
        ok(event_at(
            &mut state,
            20,
            "closed",
            r#","disposition":"transported""#,
        ));
        // Still refused: a stage before the call began, a unit after the close.
        let r = event_at(&mut state, 14, "received", "").expect_err("a second start");
        assert_eq!(r.reason, RejectReason::LifecycleOutOfOrder);
        let r =
            event_at(&mut state, 30, "dispatched", r#","unit":"amb-03""#).expect_err("after close");
        assert_eq!(r.reason, RejectReason::LifecycleOutOfOrder);
        let c = state.call("kota", "c1").expect("the call");
        assert_eq!(
            c.disposition,
            Some(crate::contract::Disposition::Transported)
        );
        assert!(!c.open);
        // An annotation needs its field.
        let r = event_at(&mut state, 21, "unit_cancelled", "").expect_err("no unit");
        assert_eq!(r.reason, RejectReason::MissingField);
    }

    #[test]
    fn calls_that_never_close_do_not_grow_the_live_state_without_bound() {
        let settings = StateSettings {
            calls_kept: 300,
            closed_calls_kept: 20,
            ..Default::default()
        };
        let mut state = CityState::new(settings);
        let mut removed = Vec::new();
        for i in 0..1000 {
            // Every tenth call closes; the others stay open for ever.
            call_event(&mut state, i, "received");
            let out = if i % 10 == 0 {
                call_event(&mut state, i, "closed")
            } else {
                Vec::new()
            };
            removed.extend(
                out.into_iter()
                    .filter(|u| u.kind == UpdateKind::Call && u.is_removal())
                    .map(|u| u.key.to_string()),
            );
            assert!(state.calls.len() <= 300, "bounded at call {i}");
            assert!(state.call_order.len() <= 2 * state.calls.len() + 1024);
        }
        // The newest calls are there, the oldest open ones are gone.
        assert!(state.call("kota", "c999").is_some());
        assert!(state.call("kota", "c1").is_none());
        assert!(state.calls_evicted > 0);
        assert!(removed.contains(&"kota/c0".to_owned()), "screens were told");
        // Today's counters still count every call.
        let c = &state.counters["kota"];
        assert_eq!(c.lines["112"].received, 1000);
    }

    #[test]
    fn the_live_state_refuses_new_entities_past_its_bound_but_never_a_call() {
        let mut state = CityState::new(StateSettings {
            max_entities: 100,
            ..Default::default()
        });
        let now = Utc::now();
        let ts = now.with_timezone(&crate::domain::wib()).to_rfc3339();
        let mut refused = 0;
        for i in 0..80 {
            let id = format!("x{i}");
            let payload = crate::bench::load::state_payload(&id, &ts, i);
            let (topic, msg) = decode(
                &format!("city/kota/atcs/{id}/state"),
                payload.as_bytes(),
                &Limits::default(),
                now,
            )
            .expect("a valid state");
            match state.apply(&topic, &msg, now) {
                Ok(_) => {}
                Err(r) => {
                    assert_eq!(r.reason, RejectReason::StateFull, "{r}");
                    refused += 1;
                }
            }
        }
        // Each junction is an intersection and a feed: 50 fit in 100.
        assert_eq!(state.entities(), 100);
        assert_eq!(refused, 30);
        // A known junction still updates; a call (and its city's counters) still comes in.
        let payload = crate::bench::load::state_payload("x1", &ts, 1);
        let (topic, msg) = decode(
            "city/kota/atcs/x1/state",
            payload.as_bytes(),
            &Limits::default(),
            now,
        )
        .unwrap();
        assert!(state.apply(&topic, &msg, now).is_ok());
        assert!(!call_event(&mut state, 1, "received").is_empty());
        assert!(state.call("kota", "c1").is_some());
    }

    /// A state's day part written as JSON and read back into a fresh state
    /// holds the same calls (with what the screens do not get: the calls
    /// kept apart), counters (every answer time), complaints and event ids:
    /// the same next events do the same to both.
    #[test]
    fn a_day_part_read_back_goes_on_as_the_state_it_came_from() {
        let mut state = CityState::new(Default::default());
        let ts = |s: u32| format!("2026-12-05T08:00:{s:02}+07:00");
        let caller = r#","callback":"0811","caller":{"lat":-6.0,"lon":106.0}"#;
        for (i, call) in ["a", "b", "c"].into_iter().enumerate() {
            apply_json(&mut state, call, &ts(i as u32), "received", caller).unwrap();
            apply_json(&mut state, call, &ts(5 + 7 * i as u32), "answered", "").unwrap();
        }
        // a and b rang from one number: kept apart by a dispatcher.
        apply_json(&mut state, "a", &ts(30), "merged", r#","related_call":"b""#).unwrap();
        let now = Utc::now();
        let app = |state: &mut CityState, kind: &str, reference: &str| {
            let payload = format!(
                r#"{{"event_id":"{}","ts":"{}","service":"lapor","type":"{kind}","ref":"{reference}","opd":"dishub"}}"#,
                Uuid::new_v4(),
                ts(40)
            );
            let (topic, msg) = decode(
                "city/kota/apps/lapor/events",
                payload.as_bytes(),
                &Limits::default(),
                now,
            )
            .unwrap();
            state.apply(&topic, &msg, now).unwrap();
        };
        app(&mut state, "complaint.routed", "r1");
        app(&mut state, "complaint.routed", "r2");
        let json = serde_json::to_vec(&state.day_part()).unwrap();
        let part: DayPart = serde_json::from_slice(&json).unwrap();
        assert_eq!(part.calls(), 3);
        let (mut back, updates) = CityState::new(Default::default()).with_day_part(part);
        assert_eq!(
            updates
                .iter()
                .filter(|u| u.kind == UpdateKind::Call)
                .count(),
            3
        );
        assert_eq!(back.counters, state.counters, "answer times and all");
        assert_eq!(back.call("kota", "a").unwrap().kept_apart, ["b"]);
        // The same next events: the same counters, calls and refusals.
        let seen = state.seen_order.back().copied().unwrap();
        for s in [&mut state, &mut back] {
            apply_json(s, "d", &ts(50), "received", caller).unwrap();
            apply_json(s, "d", &ts(59), "answered", "").unwrap();
            apply_json(s, "b", &ts(51), "closed", "").unwrap();
            app(s, "complaint.resolved", "r1");
            assert!(s.has_seen(seen));
        }
        assert_eq!(back.counters, state.counters);
        // (Each event's receive time is its own moment here.)
        let call = |s: &CityState, id: &str| {
            let mut v = serde_json::to_value(s.call("kota", id)).unwrap();
            v["rx"] = serde_json::Value::Null;
            v
        };
        for id in ["a", "b", "c", "d"] {
            assert_eq!(call(&back, id), call(&state, id), "{id}");
        }
        assert_eq!(back.counters["kota"].complaints_open["dishub"], 1);
        assert_eq!(back.sizes().open_calls, state.sizes().open_calls);
    }

    #[test]
    fn app_event_types_past_the_bound_are_counted_as_other() {
        let mut state = CityState::new(Default::default());
        let now = Utc::now();
        let ts = now.with_timezone(&crate::domain::wib()).to_rfc3339();
        for i in 0..(APP_EVENT_TYPES_KEPT + 5) {
            let service = if i < APP_EVENT_TYPES_KEPT + 2 {
                "s"
            } else {
                "t"
            };
            let payload = format!(
                r#"{{"event_id":"{}","ts":"{ts}","service":"{service}","type":"k.t{i}"}}"#,
                Uuid::new_v4()
            );
            let (topic, msg) = decode(
                &format!("city/kota/apps/{service}/events"),
                payload.as_bytes(),
                &Limits::default(),
                now,
            )
            .unwrap();
            state.apply(&topic, &msg, now).expect("applies");
        }
        let c = &state.counters["kota"].app_events;
        assert_eq!(c["s"].len(), APP_EVENT_TYPES_KEPT + 1);
        assert_eq!(c["s"]["_other"], 2);
        assert_eq!(c["_other"]["_other"], 3);
        assert!(!c.contains_key("t"));
    }

    #[test]
    fn a_wita_city_rolls_its_counters_over_at_its_own_midnight() {
        let zones = Zones::new(
            Zone::Wib,
            &[("badung".to_owned(), Zone::Wita)].into_iter().collect(),
        );
        let mut state = CityState::new(Default::default()).with_zones(zones);
        let call = |state: &mut CityState, city: &str, id: &str, at: DateTime<Utc>| {
            let ts = at.with_timezone(&Zone::Wita.offset()).to_rfc3339();
            let payload = format!(
                r#"{{"event_id":"{}","call_id":"{id}","ts":"{ts}","line":"112","type":"received"}}"#,
                Uuid::new_v4()
            );
            let (topic, msg) = decode(
                &format!("city/{city}/calls/112"),
                payload.as_bytes(),
                &Limits::default(),
                at,
            )
            .unwrap();
            state.apply(&topic, &msg, at).expect("applies");
        };
        let received = |state: &CityState, city: &str| {
            let c = &state.counters[city];
            (c.date.unwrap().to_string(), c.zone, c.lines["112"].received)
        };
        // 23:50 WITA on 6 December is 22:50 WIB.
        let before: DateTime<Utc> = "2026-12-06T15:50:00Z".parse().unwrap();
        call(&mut state, "badung", "b1", before);
        call(&mut state, "cilegon", "c1", before);
        assert_eq!(
            received(&state, "badung"),
            ("2026-12-06".into(), Zone::Wita, 1)
        );
        // Midnight WITA: Badung's day turns over on the tick, Cilegon's does not.
        let midnight: DateTime<Utc> = "2026-12-06T16:00:00Z".parse().unwrap();
        let out = state.tick(midnight);
        assert!(out
            .iter()
            .any(|u| u.kind == UpdateKind::Counters && &*u.key == "badung"));
        assert_eq!(
            state.counters["badung"].date.unwrap().to_string(),
            "2026-12-07"
        );
        assert!(state.counters["badung"].lines.is_empty(), "today restarts");
        assert_eq!(
            state.counters["badung"].open_calls, 1,
            "the open call carries over"
        );
        call(
            &mut state,
            "badung",
            "b2",
            midnight + chrono::Duration::minutes(5),
        );
        call(
            &mut state,
            "cilegon",
            "c2",
            midnight + chrono::Duration::minutes(5),
        );
        assert_eq!(
            received(&state, "badung"),
            ("2026-12-07".into(), Zone::Wita, 1)
        );
        assert_eq!(
            received(&state, "cilegon"),
            ("2026-12-06".into(), Zone::Wib, 2)
        );
        // Midnight WIB, an hour later: now Cilegon's.
        state.tick("2026-12-06T17:00:00Z".parse().unwrap());
        assert_eq!(
            state.counters["cilegon"].date.unwrap().to_string(),
            "2026-12-07"
        );
        assert_eq!(received(&state, "badung").2, 1, "Badung's day goes on");
    }
}
