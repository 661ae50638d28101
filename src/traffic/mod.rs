//! The traffic desk: what acts on junctions beside the officers. It reads
//! the live state the screens read (the hub), never the bus directly, and
//! acts only by publishing commands, which come back through ingest like
//! any other:
//! - a lease that has ended (a `set_plan`, `set_mode` or `priority` held
//!   for its `expires_in_s`) gets its revert, issued by `rule:lease`;
//! - a green corridor's hold (`priority` for a unit) is released as soon
//!   as its unit has passed the junction, issued by `rule:corridor`;
//! - a junction in automatic mode gets a green extension while an approach
//!   is congested, within `traffic.auto_max_s_per_hour` and
//!   `traffic.auto_min_gap_s`, issued by `rule:auto_extend`;
//! - commands per junction are rate-limited, all officers together.
//!
//! Each command it publishes is audited under its rule's name. With several
//! nodes, every desk follows the whole city and one of them acts: the node
//! that runs the rules (`store::leader`); a revert keeps its command id
//! whichever node publishes it.

pub mod corridor;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::bus::{BusClient, Qos};
use crate::contract::validate::validate_outgoing;
use crate::contract::{Command, CommandAction, ControllerMode, Limits, Message, Topic};
use crate::domain::traffic::{AutoBudget, TrafficSettings};
use crate::hub::HubHandle;
use crate::identity::audit::Entry;
use crate::identity::directory::Directory;
use crate::ingest::IngestStatus;
use crate::state::UpdateKind;

/// How often the desk looks at leases and automatic junctions.
const EVERY: Duration = Duration::from_secs(1);
/// Automatic mode and its budgets are read from the audit every this many
/// ticks, and when this node takes the rules over.
const AUTO_READ_EVERY: u64 = 3;
/// Each read goes back this far before the last: another node's row may
/// commit a little after its time.
const AUTO_OVERLAP: chrono::Duration = chrono::Duration::seconds(10);
/// A revert not seen back through ingest is published again after this.
const REVERT_RETRY: Duration = Duration::from_secs(30);
/// A lease that ended longer ago than this (a node down for hours) is left
/// to the officers: reverting it now could undo what they did since.
const REVERT_WITHIN: chrono::Duration = chrono::Duration::hours(1);
/// How long publishing may wait for room in the bus client's queue (full
/// only while the broker is unreachable).
pub const PUBLISH_WAIT: Duration = Duration::from_secs(2);
/// Namespace of reverts' command ids (UUID v5 of the reverted command's id).
const REVERT_NS: Uuid = Uuid::from_u128(0x6b656e64_616c_6952_8e76_657274000001);

/// Why a command could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the command breaks the contract: {0}")]
    Invalid(String),
    #[error("the broker is unreachable")]
    Disconnected,
    #[error("could not record the command in the audit: it was not sent")]
    Audit,
    #[error("could not publish the command: {0}")]
    Bus(String),
}

/// What publishing a command needs.
#[derive(Clone)]
pub struct Outbox {
    pub bus: BusClient,
    pub ingest: Arc<IngestStatus>,
    pub directory: Directory,
    pub limits: Limits,
}

impl Outbox {
    /// Audits `audit` (with outcome `published`), then publishes `cmd` to
    /// `city`'s junction, only while the bus is up: a command queued during
    /// an outage would reach the controller after the officer has acted
    /// otherwise. A failure after the audit is audited too.
    pub async fn publish(
        &self,
        city: &str,
        intersection: &str,
        cmd: &Command,
        audit: Entry,
    ) -> Result<Topic, PublishError> {
        let topic = Topic::Command {
            city: city.to_owned(),
            intersection: intersection.to_owned(),
        };
        let msg = Message::Command(Box::new(cmd.clone()));
        let bytes = validate_outgoing(&topic, &msg, &self.limits)
            .map_err(|r| PublishError::Invalid(r.to_string()))?;
        if !self.ingest.main_connected() {
            let _ = self
                .directory
                .audit(audit.outcome("broker_unreachable"))
                .await;
            return Err(PublishError::Disconnected);
        }
        // Recorded before it leaves: an action the audit cannot hold does not happen.
        if self
            .directory
            .audit(audit.clone().outcome("published"))
            .await
            .is_err()
        {
            return Err(PublishError::Audit);
        }
        let Err(err) = self.send(&topic, bytes).await else {
            return Ok(topic);
        };
        let _ = self.directory.audit(audit.outcome("publish_failed")).await;
        Err(PublishError::Bus(err))
    }

    /// Publishes a validated message (QoS 1, retained as its topic says),
    /// waiting at most [`PUBLISH_WAIT`] for room in the bus client's queue;
    /// the reason when it could not.
    pub async fn send(&self, topic: &Topic, bytes: Vec<u8>) -> Result<(), String> {
        self.send_with(topic, bytes, topic.retained()).await
    }

    /// The same with the retain flag given (an alert's depends on its state).
    pub async fn send_with(
        &self,
        topic: &Topic,
        bytes: Vec<u8>,
        retain: bool,
    ) -> Result<(), String> {
        let sent = tokio::time::timeout(
            PUBLISH_WAIT,
            self.bus
                .publish(topic.to_string(), Qos::AtLeastOnce, retain, bytes),
        )
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the bus client is not taking requests".to_owned()),
        }
    }
}

/// A junction in automatic mode.
#[derive(Clone, Debug)]
struct Auto {
    enabled_by: String,
    since: DateTime<Utc>,
    budget: AutoBudget,
}

/// A junction in automatic mode, as the console shows it.
#[derive(Clone, Debug, Serialize)]
pub struct AutoView {
    pub intersection: String,
    pub enabled_by: String,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub since: DateTime<Utc>,
    /// Seconds of extension given in the last hour, and the hour's limit.
    pub used_s: u32,
    pub limit_s: u32,
}

/// The desk's memory, shared with the web handlers.
pub struct TrafficDesk {
    pub settings: TrafficSettings,
    /// The roads corridors follow.
    roads: Arc<crate::domain::route::CityRoads>,
    /// Orders (assignment ids) the corridor policy has served.
    served: Mutex<VecDeque<Uuid>>,
    /// Per junction (`city/intersection`), when its recent commands came.
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
    auto: Mutex<HashMap<String, Auto>>,
    /// Reverts published and not yet seen back, and when.
    reverts: Mutex<HashMap<Uuid, Instant>>,
    /// Per held green of a corridor, the closest its unit has come, metres.
    closest: Mutex<HashMap<Uuid, f64>>,
}

impl TrafficDesk {
    pub fn new(
        settings: TrafficSettings,
        roads: Arc<crate::domain::route::CityRoads>,
    ) -> TrafficDesk {
        let now = Utc::now();
        let auto = settings
            .auto_intersections
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    Auto {
                        enabled_by: "config".into(),
                        since: now,
                        budget: AutoBudget::default(),
                    },
                )
            })
            .collect();
        TrafficDesk {
            settings,
            roads,
            served: Default::default(),
            recent: Default::default(),
            auto: Mutex::new(auto),
            reverts: Default::default(),
            closest: Default::default(),
        }
    }

    /// Counts one command for junction `key`; `Err(wait)` past
    /// `traffic.commands_per_intersection_per_min`.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: junctions quiet for a minute are forgotten.
        if recent.len() > 10_000 {
            recent.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < minute));
        }
        let q = recent.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= minute) {
            q.pop_front();
        }
        if q.len() >= self.settings.commands_per_intersection_per_min as usize {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(minute.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        Ok(())
    }

    /// Turns automatic mode on or off for junction `key`; whether it changed.
    pub fn set_auto(&self, key: &str, on: bool, by: &str) -> bool {
        let mut auto = self.auto.lock().unwrap_or_else(|e| e.into_inner());
        match (on, auto.contains_key(key)) {
            (true, false) => {
                auto.insert(
                    key.to_owned(),
                    Auto {
                        enabled_by: by.to_owned(),
                        since: Utc::now(),
                        budget: AutoBudget::default(),
                    },
                );
                true
            }
            (false, true) => {
                auto.remove(key);
                true
            }
            _ => false,
        }
    }

    /// Automatic mode as the officers last left it, and the hour's budget
    /// each junction has spent: the audit holds every change (`traffic_auto`,
    /// enabled or disabled, who and when) and every automatic extension
    /// (`rule:auto_extend`). Read at start, a restart neither drops a
    /// junction an officer put in automatic mode nor revives one they took
    /// out, nor gives an hour's budget again; read every few seconds, every
    /// node of a shared group knows what an officer changed through another
    /// (the node that runs the rules extends), and a node taking the rules
    /// over goes on with the budget spent before. `since`: only the changes
    /// from then (a few seconds before the last read: rows of other nodes
    /// may be committed late); `None`: all.
    pub async fn sync_auto(&self, directory: &Directory, since: Option<DateTime<Utc>>) {
        use crate::identity::directory::AuditQuery;
        let q = |actor: Option<&str>, action: &str, from| AuditQuery {
            actor: actor.map(str::to_owned),
            action: Some(action.into()),
            entity: None,
            from,
            to: None,
            limit: 10_000,
        };
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        let (changes_q, given_q) = (
            q(None, "traffic_auto", since),
            q(Some("rule:auto_extend"), "traffic_command", Some(hour_ago)),
        );
        let (changes, given) = match tokio::try_join!(
            directory.audit_rows(&changes_q),
            directory.audit_rows(&given_q),
        ) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "automatic mode could not be read from the audit");
                return;
            }
        };
        let mut decided = HashSet::new();
        let mut auto = self.auto.lock().unwrap_or_else(|e| e.into_inner());
        let before = auto.len();
        // Newest first: the first row of each junction is its last change.
        for r in changes {
            let Some(key) = r.entry.entity.strip_prefix("atcs:") else {
                continue;
            };
            if !decided.insert(key.to_owned()) {
                continue;
            }
            match r.entry.outcome.as_str() {
                "enabled" => {
                    auto.entry(key.to_owned()).or_insert_with(|| Auto {
                        enabled_by: r.entry.actor.clone(),
                        since: r.at,
                        budget: AutoBudget::default(),
                    });
                }
                "disabled" => {
                    auto.remove(key);
                }
                _ => {
                    decided.remove(key);
                }
            }
        }
        // Each junction's extensions of the last hour, oldest first.
        let mut budgets: HashMap<&str, AutoBudget> = HashMap::new();
        for r in given.iter().rev() {
            let Some(key) = r.entry.entity.strip_prefix("atcs:") else {
                continue;
            };
            let seconds = serde_json::from_str::<serde_json::Value>(&r.entry.detail)
                .ok()
                .and_then(|d| d["seconds"].as_f64());
            if let (Some(s), "published") = (seconds, r.entry.outcome.as_str()) {
                budgets.entry(key).or_default().spend(r.at, s as u32);
            }
        }
        for (key, a) in auto.iter_mut() {
            a.budget = budgets.remove(key.as_str()).unwrap_or_default();
        }
        if (since.is_none() && !auto.is_empty()) || auto.len() != before {
            tracing::info!(junctions = auto.len(), "automatic mode read from the audit");
        }
    }

    /// The junctions of `city` in automatic mode.
    pub fn auto_in(&self, city: &str) -> Vec<AutoView> {
        let now = Utc::now();
        let auto = self.auto.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<AutoView> = auto
            .iter()
            .filter_map(|(k, a)| {
                let (c, i) = k.split_once('/')?;
                (c == city).then(|| AutoView {
                    intersection: i.to_owned(),
                    enabled_by: a.enabled_by.clone(),
                    since: a.since,
                    used_s: a.budget.used(now),
                    limit_s: self.settings.auto_max_s_per_hour,
                })
            })
            .collect();
        out.sort_by(|a, b| a.intersection.cmp(&b.intersection));
        out
    }
}

/// The parts of a live command entry the desk reads.
#[derive(Deserialize)]
struct EntryView {
    city: String,
    intersection: String,
    command_id: Uuid,
    command: Option<Command>,
    before: Option<BeforeView>,
    lease: Option<LeaseView>,
}

#[derive(Deserialize)]
struct BeforeView {
    mode: ControllerMode,
    plan: String,
}

#[derive(Deserialize)]
struct LeaseView {
    until: DateTime<Utc>,
    state: String,
    revert: bool,
    reverted_by: Option<Uuid>,
}

/// The parts of a live intersection the automatic mode reads.
#[derive(Deserialize)]
struct JunctionView {
    #[serde(default)]
    suggestions: Vec<SuggestionView>,
}

#[derive(Deserialize)]
struct SuggestionView {
    approach: String,
    seconds: u32,
    saturation: f64,
}

/// The revert of `cmd`: back to what it replaced.
fn revert_of(cmd: &Command, before: Option<&BeforeView>) -> Option<Command> {
    let mut r = Command::new(
        Uuid::new_v5(&REVERT_NS, cmd.command_id.as_bytes()),
        Utc::now().with_timezone(&crate::domain::wib()),
        cmd.action,
        "rule:lease".into(),
    );
    r.reverts = Some(cmd.command_id);
    r.reason = Some(format!("masa berlaku perintah {} berakhir", cmd.command_id));
    match cmd.action {
        // A controller with a time-of-day schedule returns to it; `plan`
        // names the plan that was in force, for one without.
        CommandAction::SetPlan => {
            r.plan = Some(before.map_or_else(|| "auto".into(), |b| b.plan.clone()))
        }
        CommandAction::SetMode => {
            r.mode = Some(before.map_or(ControllerMode::Adaptive, |b| b.mode))
        }
        // The held approach is released.
        CommandAction::Priority => {
            r.approach = cmd.approach.clone();
            r.unit = cmd.unit.clone();
        }
        _ => return None,
    }
    Some(r)
}

/// Runs the desk until `shutdown` turns true.
pub async fn run(
    desk: Arc<TrafficDesk>,
    hub: HubHandle,
    out: Outbox,
    mut shutdown: watch::Receiver<bool>,
    rules: watch::Receiver<bool>,
) {
    desk.sync_auto(&out.directory, None).await;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut ticks, mut was_leader, mut read_at) = (0u64, false, Utc::now());
    while crate::store::leader::next_tick(&mut tick, &mut shutdown).await {
        ticks += 1;
        // With several nodes, one publishes the desk's own commands
        // (`store::leader`); an officer's change may come through any.
        let leader = *rules.borrow();
        if ticks % AUTO_READ_EVERY == 0 || (leader && !was_leader) {
            let now = Utc::now();
            desk.sync_auto(&out.directory, Some(read_at - AUTO_OVERLAP))
                .await;
            read_at = now;
        }
        was_leader = leader;
        if !leader {
            continue;
        }
        if watch_leases(&desk, &hub, &out).await.is_err()
            || extend_automatically(&desk, &hub, &out).await.is_err()
            || corridors_by_policy(&desk, &hub, &out).await.is_err()
        {
            // The hub is gone: shutting down.
            return;
        }
    }
}

/// A unit within this of a junction has reached it; this much further from
/// it than its closest, it has passed.
const REACHED_M: f64 = 60.0;
const PASSED_M: f64 = 40.0;

/// The parts of a live unit the corridor watch reads.
#[derive(Deserialize)]
struct UnitAt {
    lat: Option<f64>,
    lon: Option<f64>,
}

/// The parts of a live junction the corridor watch reads.
#[derive(Deserialize)]
struct PlaceView {
    info: Option<crate::contract::IntersectionInfo>,
}

/// Reverts the leases that ended, and the corridor holds whose unit has passed.
async fn watch_leases(
    desk: &TrafficDesk,
    hub: &HubHandle,
    out: &Outbox,
) -> Result<(), crate::hub::HubGone> {
    let now = Utc::now();
    let entries = hub.all_of_every_city(UpdateKind::Command).await?;
    let mut held = Vec::new();
    for u in entries {
        let json = u.value_json_for(true);
        // Most commands hold no ended lease and no corridor: skip them undecoded.
        let ended = json.contains("\"state\":\"ended\"");
        let held_green =
            json.contains("\"state\":\"in_force\"") && json.contains("\"action\":\"priority\"");
        if !(ended || held_green) {
            continue;
        }
        let Ok(e) = serde_json::from_str::<EntryView>(json) else {
            continue;
        };
        let (Some(cmd), Some(lease)) = (&e.command, &e.lease) else {
            continue;
        };
        if !lease.revert || lease.reverted_by.is_some() {
            continue;
        }
        if lease.state == "ended" && now - lease.until <= REVERT_WITHIN {
            let cmd = cmd.clone();
            revert(desk, out, &e, &cmd, "rule:lease", None).await;
        } else if lease.state == "in_force" && cmd.action == CommandAction::Priority {
            held.push(e);
        }
    }
    let mut live = HashSet::new();
    for e in held {
        let Some(cmd) = &e.command else { continue };
        let Some(unit) = &cmd.unit else { continue };
        live.insert(e.command_id);
        let at = hub
            .get(UpdateKind::Unit, &format!("{}/{unit}", e.city))
            .await?;
        let place = hub
            .get(
                UpdateKind::Intersection,
                &format!("{}/{}", e.city, e.intersection),
            )
            .await?;
        let (Some(at), Some(place)) = (at, place) else {
            continue;
        };
        let (Ok(at), Ok(place)) = (
            serde_json::from_str::<UnitAt>(at.value_json_for(false)),
            serde_json::from_str::<PlaceView>(place.value_json_for(false)),
        ) else {
            continue;
        };
        let (Some(lat), Some(lon), Some(info)) = (at.lat, at.lon, place.info) else {
            continue;
        };
        let d = crate::domain::route::metres((lat, lon), (info.lat, info.lon));
        let passed = {
            let mut closest = desk.closest.lock().unwrap_or_else(|e| e.into_inner());
            let c = closest.entry(e.command_id).or_insert(d);
            *c = c.min(d);
            *c <= REACHED_M && d >= *c + PASSED_M
        };
        if passed {
            let why = format!("{unit} telah melewati simpang");
            revert(desk, out, &e, cmd, "rule:corridor", Some(why)).await;
        }
    }
    desk.closest
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|id, _| live.contains(id));
    Ok(())
}

/// Publishes the revert of `cmd` (once, retried after [`REVERT_RETRY`] until it comes back).
async fn revert(
    desk: &TrafficDesk,
    out: &Outbox,
    e: &EntryView,
    cmd: &Command,
    rule: &str,
    why: Option<String>,
) {
    let Some(mut revert) = revert_of(cmd, e.before.as_ref()) else {
        return;
    };
    revert.issued_by = rule.to_owned();
    if let Some(why) = why {
        revert.reason = Some(why);
    }
    {
        let mut sent = desk.reverts.lock().unwrap_or_else(|e| e.into_inner());
        sent.retain(|_, at| at.elapsed() < REVERT_RETRY);
        if sent.contains_key(&revert.command_id) {
            return;
        }
        sent.insert(revert.command_id, Instant::now());
    }
    let audit = Entry::new(rule, "rule", "-", "traffic_command")
        .entity(format!("atcs:{}/{}", e.city, e.intersection))
        .detail(serde_json::json!({ "command_id": revert.command_id, "action": revert.action, "reverts": e.command_id, "plan": revert.plan, "mode": revert.mode, "approach": revert.approach, "reason": revert.reason }));
    match out.publish(&e.city, &e.intersection, &revert, audit).await {
        Ok(_) => {
            tracing::info!(city = %e.city, intersection = %e.intersection, reverts = %e.command_id, %rule, "revert published")
        }
        Err(err) => {
            tracing::warn!(city = %e.city, intersection = %e.intersection, reverts = %e.command_id, error = %err, "revert not published, retried")
        }
    }
}

async fn extend_automatically(
    desk: &TrafficDesk,
    hub: &HubHandle,
    out: &Outbox,
) -> Result<(), crate::hub::HubGone> {
    let keys: Vec<String> = {
        let auto = desk.auto.lock().unwrap_or_else(|e| e.into_inner());
        auto.keys().cloned().collect()
    };
    for key in keys {
        let Some((city, intersection)) = key.split_once('/') else {
            continue;
        };
        let Some(u) = hub.get(UpdateKind::Intersection, &key).await? else {
            continue;
        };
        let Ok(j) = serde_json::from_str::<JunctionView>(u.value_json_for(true)) else {
            continue;
        };
        // The most saturated congested approach first.
        let Some(s) = j
            .suggestions
            .iter()
            .max_by(|a, b| a.saturation.total_cmp(&b.saturation))
        else {
            continue;
        };
        let now = Utc::now();
        let seconds = {
            let mut auto = desk.auto.lock().unwrap_or_else(|e| e.into_inner());
            let Some(a) = auto.get_mut(&key) else {
                continue;
            };
            let n = a.budget.allows(now, s.seconds, &desk.settings);
            if n > 0 {
                a.budget.spend(now, n);
            }
            n
        };
        if seconds == 0 {
            continue;
        }
        let mut cmd = Command::new(
            Uuid::new_v4(),
            now.with_timezone(&crate::domain::wib()),
            CommandAction::ExtendGreen,
            "rule:auto_extend".into(),
        );
        cmd.approach = Some(s.approach.clone());
        cmd.seconds = Some(f64::from(seconds));
        cmd.reason = Some(format!(
            "mode otomatis: {} jenuh (DS {:.2}) selama {} siklus",
            s.approach, s.saturation, desk.settings.congestion_cycles
        ));
        let audit = Entry::new("rule:auto_extend", "rule", "-", "traffic_command")
            .entity(format!("atcs:{key}"))
            .detail(serde_json::json!({ "command_id": cmd.command_id, "action": cmd.action, "approach": cmd.approach, "seconds": cmd.seconds }));
        if let Err(err) = out.publish(city, intersection, &cmd, audit).await {
            tracing::warn!(%key, error = %err, "automatic extension not published");
        }
    }
    Ok(())
}

/// Orders the corridor policy remembers having served.
const SERVED_KEPT: usize = 10_000;

/// A unit's order, as the corridor policy reads it.
#[derive(Deserialize)]
struct OrderedUnit {
    city: String,
    unit: String,
    status: crate::contract::UnitState,
    assignment: Option<OrderView>,
}

#[derive(Deserialize)]
struct OrderView {
    assignment_id: Uuid,
    priority: Option<u8>,
    action: crate::contract::AssignmentAction,
}

/// `traffic.corridor_priority`: a unit sent to a call of that priority or
/// more urgent gets a green corridor by itself, issued by `rule:corridor`.
async fn corridors_by_policy(
    desk: &TrafficDesk,
    hub: &HubHandle,
    out: &Outbox,
) -> Result<(), crate::hub::HubGone> {
    use crate::contract::{AssignmentAction, UnitState};
    let top = desk.settings.corridor_priority;
    if top == 0 {
        return Ok(());
    }
    for u in hub.all_of_every_city(UpdateKind::Unit).await? {
        let Ok(v) = serde_json::from_str::<OrderedUnit>(u.value_json_for(false)) else {
            continue;
        };
        let Some(order) = v.assignment else { continue };
        let urgent = order.priority.is_some_and(|p| p <= top);
        let on_the_way = matches!(v.status, UnitState::Dispatched | UnitState::EnRoute);
        if !urgent || !on_the_way || order.action != AssignmentAction::Assign {
            continue;
        }
        {
            let mut served = desk.served.lock().unwrap_or_else(|e| e.into_inner());
            if served.contains(&order.assignment_id) {
                continue;
            }
            served.push_back(order.assignment_id);
            while served.len() > SERVED_KEPT {
                served.pop_front();
            }
        }
        let issuer = corridor::Issuer {
            name: "rule:corridor",
            roles: "rule".into(),
            addr: "-",
            person: None,
        };
        let lease = desk.settings.corridor_s as f64;
        match corridor::give(
            hub,
            desk,
            out,
            &desk.roads,
            &v.city,
            &v.unit,
            &issuer,
            &format!("prioritas {}", order.priority.unwrap_or(top)),
            lease,
        )
        .await
        {
            Ok(g) => {
                tracing::info!(city = %v.city, unit = %v.unit, held = g.commands.len(), skipped = g.skipped.len(), "green corridor by policy")
            }
            Err(corridor::CorridorError::Hub(e)) => return Err(e),
            Err(e) => {
                tracing::info!(city = %v.city, unit = %v.unit, error = %e, "no green corridor by policy")
            }
        }
    }
    Ok(())
}
