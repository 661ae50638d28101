//! The alert engine: a stage beside the hub and the store, fed by the
//! state's fan-out with the changes its rules look at (a junction's
//! conditions, a call, a unit, a feed, a command, a KPI, and alerts as
//! they come back from the bus). It keeps, per rule and entity, whether
//! the rule's condition holds and since when; once a second it raises what
//! has held for the rule's `for_s`, clears what no longer holds, ends
//! shelvings that ran out and judges the rates (answer target, surge).
//!
//! It acts only by publishing alert transitions (`city/{city}/alerts/{id}`,
//! retained while not normal), which come back through ingest to the
//! state, the store and the screens like any other message. Operators'
//! acknowledgements and shelvings come in through [`AlertsHandle`], so one
//! task decides every transition of an alert.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::config::DispatchSettings;
use crate::contract::validate::validate_outgoing;
use crate::contract::{
    Alert, AlertRule, AlertState, CallEventType, CallLine, Family, Message, Topic, Ts, UnitState,
};
use crate::domain::alerts::{self as life, AlertSettings, Finding, LifecycleError};
use crate::domain::wib;
use crate::state::{Update, UpdateKind};
use crate::store::history::{HistoryAnswer, HistoryQuery, Range};
use crate::store::StoreHandle;
use crate::traffic::Outbox;

/// How often rules are judged on time (a call ringing, a unit in a stage,
/// a shelving ending): the screens count seconds, so does the engine.
const EVERY: Duration = Duration::from_secs(1);
/// Input queue from the state's fan-out: a burst of junctions changing
/// conditions at once, or the whole restored state at start.
pub const INPUT_CAPACITY: usize = 8192;
/// After a start, an alert restored from the store is not cleared for this
/// long unless a live message has said its condition is over: the
/// conditions behind them come back with the first live messages.
const START_GRACE: chrono::Duration = chrono::Duration::seconds(30);
/// Alerts kept live at most. Past it, the oldest that have cleared and wait
/// only for an acknowledgement are closed (`rule:overflow`): a surge of
/// calls ringing unanswered must not grow the state, the store's restore and
/// the broker's retained messages without bound.
const LIVE_MAX: usize = 5_000;
/// Call ids remembered to count each call once (arrivals, answers).
const CALLS_REMEMBERED: usize = 50_000;
/// Transition ids this engine published, remembered to recognise their echo.
const MINE_REMEMBERED: usize = 10_000;
/// Acknowledged latching alerts whose condition still holds, remembered.
const LATCHED_REMEMBERED: usize = 10_000;
/// The surge rule's window, and how many weeks back its baseline looks.
const SURGE_WINDOW: chrono::Duration = chrono::Duration::hours(1);
const SURGE_WEEKS: i64 = 4;
/// A surge baseline is asked of the store at most this often per line.
const BASELINE_EVERY: chrono::Duration = chrono::Duration::minutes(10);

/// What an operator asks of an alert.
#[derive(Debug)]
pub enum Act {
    Acknowledge { reason: Option<String> },
    Shelve { reason: String, minutes: u32 },
    Unshelve,
}

/// Why an operator's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("no alert {0} is known")]
    Unknown(Uuid),
    #[error("{0}")]
    Lifecycle(#[from] LifecycleError),
    #[error("shelving is for 1..={0} minutes")]
    ShelveTooLong(u32),
    #[error("could not publish the transition: {0}")]
    Publish(String),
    #[error("the alert engine is not running")]
    Gone,
}

/// One operator request on its way to the engine.
pub struct Request {
    alert_id: Uuid,
    by: String,
    act: Act,
    reply: oneshot::Sender<Result<Alert, ActError>>,
}

/// The web's way to the engine.
#[derive(Clone)]
pub struct AlertsHandle {
    tx: mpsc::Sender<Request>,
}

impl AlertsHandle {
    /// Asks for `act` on `alert_id` by `by` (from the session); answers the
    /// transition published (it shows once it is back through ingest).
    pub async fn act(&self, alert_id: Uuid, by: &str, act: Act) -> Result<Alert, ActError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request {
                alert_id,
                by: by.to_owned(),
                act,
                reply,
            })
            .await
            .map_err(|_| ActError::Gone)?;
        rx.await.map_err(|_| ActError::Gone)?
    }
}

/// One rule's condition on one entity.
#[derive(Clone, Debug)]
struct Watched {
    finding: Finding,
    /// When the condition became true (the rule's `for_s` counts from here).
    since: DateTime<Utc>,
    /// For rules that measure time (ringing, in a stage): when it started;
    /// the alert's value is the seconds since.
    origin: Option<DateTime<Utc>>,
    /// Suppressed by design: not raised, and an active alert is marked.
    suppressed: bool,
}

type Key = (String, AlertRule, String);

/// Per city and line: answers and arrivals within the rates' windows.
#[derive(Default)]
struct LineRates {
    /// (answered at, seconds to answer).
    answers: VecDeque<(DateTime<Utc>, f64)>,
    arrivals: VecDeque<DateTime<Utc>>,
    /// The same hour's mean count over recent weeks, and when it was asked.
    baseline: Option<(DateTime<Utc>, Option<f64>)>,
}

pub struct AlertEngine {
    settings: AlertSettings,
    dispatch: DispatchSettings,
    congestion_saturation: f64,
    watched: HashMap<Key, Watched>,
    /// Every alert not back to normal, as last published or seen on the bus.
    alerts: HashMap<Uuid, (String, Alert)>,
    mine: HashSet<Uuid>,
    mine_order: VecDeque<Uuid>,
    calls_seen: HashSet<(String, String)>,
    answered_seen: HashSet<(String, String)>,
    calls_order: VecDeque<(String, String)>,
    rates: HashMap<(String, CallLine), LineRates>,
    /// Junctions' districts (`{city}/{id}`), for the alerts about their commands.
    districts: HashMap<String, String>,
    started: DateTime<Utc>,
    /// Conditions a live update has said are over, since the start (kept
    /// only through [`START_GRACE`]).
    settled: HashSet<Key>,
    /// Latching alerts acknowledged while their condition still holds (a
    /// command stays timed out): not raised again until the condition ends.
    latched: HashSet<Key>,
    latched_order: VecDeque<Key>,
    out: Outbox,
    store: StoreHandle,
    /// Whether this node runs the rules (one of several nodes does: `store::leader`).
    leader: watch::Receiver<bool>,
}

impl AlertEngine {
    pub fn new(
        settings: AlertSettings,
        dispatch: DispatchSettings,
        congestion_saturation: f64,
        out: Outbox,
        store: StoreHandle,
        leader: watch::Receiver<bool>,
    ) -> AlertEngine {
        AlertEngine {
            settings,
            dispatch,
            congestion_saturation,
            watched: HashMap::new(),
            alerts: HashMap::new(),
            mine: HashSet::new(),
            mine_order: VecDeque::new(),
            calls_seen: HashSet::new(),
            answered_seen: HashSet::new(),
            calls_order: VecDeque::new(),
            rates: HashMap::new(),
            districts: HashMap::new(),
            started: Utc::now(),
            settled: HashSet::new(),
            latched: HashSet::new(),
            latched_order: VecDeque::new(),
            out,
            store,
            leader,
        }
    }

    /// The handle for the web, and the request queue [`AlertEngine::run`] reads.
    pub fn handle() -> (AlertsHandle, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(64);
        (AlertsHandle { tx }, rx)
    }

    /// Runs until its input closes (the state stopped) or shutdown.
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<Arc<Update>>,
        mut requests: mpsc::Receiver<Request>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(256);
        loop {
            tokio::select! {
                n = input.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        break;
                    }
                    for u in batch.drain(..) {
                        self.observe(&u);
                    }
                }
                Some(r) = requests.recv() => {
                    let answer = self.act(r.alert_id, &r.by, r.act).await;
                    let _ = r.reply.send(answer);
                }
                _ = tick.tick() => {
                    if *self.leader.borrow() {
                        self.judge(Utc::now()).await;
                    }
                }
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        tracing::info!(alerts = self.alerts.len(), "alert engine stopped");
    }

    // ------------------------------------------------------------ observe

    fn watch(
        &mut self,
        city: &str,
        f: Finding,
        since: DateTime<Utc>,
        origin: Option<DateTime<Utc>>,
        suppressed: bool,
    ) {
        let key = (city.to_owned(), f.rule, f.entity.clone());
        match self.watched.get_mut(&key) {
            // A condition that goes on keeps its start.
            Some(w) => {
                w.finding = f;
                w.suppressed = suppressed;
                w.origin = origin.or(w.origin);
            }
            None => {
                self.watched.insert(
                    key,
                    Watched {
                        finding: f,
                        since,
                        origin,
                        suppressed,
                    },
                );
            }
        }
    }

    fn unwatch(&mut self, city: &str, rule: AlertRule, entity: &str) {
        let key = (city.to_owned(), rule, entity.to_owned());
        self.watched.remove(&key);
        self.latched.remove(&key);
        if Utc::now() < self.started + START_GRACE {
            self.settled.insert(key);
        }
    }

    fn observe(&mut self, u: &Update) {
        let city = u.city.to_string();
        let json = u.value_json_for(true);
        match u.kind {
            UpdateKind::Intersection => self.intersection(&city, &u.key, json),
            UpdateKind::Call => self.call(&city, json),
            UpdateKind::Unit => self.unit(&city, &u.key, json),
            UpdateKind::Feed => self.feed(&city, &u.key, json),
            UpdateKind::Command => self.command(&city, &u.key, json),
            UpdateKind::Kpi => self.kpi(&city, json),
            UpdateKind::Alert => self.alert(&city, &u.key, json),
            _ => {}
        }
    }

    fn intersection(&mut self, city: &str, key: &str, json: &str) {
        #[derive(Deserialize)]
        struct Cond {
            kind: String,
            since: DateTime<Utc>,
        }
        #[derive(Deserialize)]
        struct Info {
            district: Option<String>,
        }
        #[derive(Deserialize)]
        struct J {
            info: Option<Info>,
            worst_saturation: Option<f64>,
            #[serde(default)]
            conditions: Vec<Cond>,
        }
        let id = key.rsplit('/').next().unwrap_or(key);
        let entity = format!("intersection:{id}");
        let j: Option<J> = serde_json::from_str(json).ok();
        let earliest = |kinds: &[&str]| {
            j.as_ref().and_then(|j| {
                j.conditions
                    .iter()
                    .filter(|c| kinds.contains(&c.kind.as_str()))
                    .map(|c| c.since)
                    .min()
            })
        };
        let district = j
            .as_ref()
            .and_then(|j| j.info.as_ref())
            .and_then(|i| i.district.clone());
        if let Some(d) = &district {
            if self.districts.get(key) != Some(d) {
                self.districts.insert(key.to_owned(), d.clone());
            }
        }
        let offline = earliest(&["comm_loss"]);
        let dark = earliest(&["flashing", "off"]);
        let rules = [
            (AlertRule::ControllerOffline, offline, None, None),
            (AlertRule::ControllerFlashing, dark, None, None),
            (
                AlertRule::DetectorFault,
                earliest(&["detector_fault", "detector_stuck", "detector_flicker"]),
                None,
                None,
            ),
            (
                AlertRule::JunctionCongested,
                earliest(&["congested"]),
                j.as_ref().and_then(|j| j.worst_saturation),
                Some(self.congestion_saturation),
            ),
        ];
        // A dark or silent controller's detectors say nothing worth an alert.
        let suppress_detectors = offline.is_some() || dark.is_some();
        for (rule, since, value, threshold) in rules {
            match since {
                Some(since) => {
                    let f = Finding {
                        rule,
                        entity: entity.clone(),
                        group: entity.clone(),
                        district: district.clone(),
                        value,
                        threshold,
                        unit: None,
                    };
                    let suppressed = rule == AlertRule::DetectorFault && suppress_detectors;
                    self.watch(city, f, since, None, suppressed);
                }
                None => self.unwatch(city, rule, &entity),
            }
        }
    }

    fn call(&mut self, city: &str, json: &str) {
        #[derive(Deserialize)]
        struct J {
            call_id: String,
            line: CallLine,
            open: bool,
            stage: CallEventType,
            stages: HashMap<CallEventType, Ts>,
            answer_s: Option<f64>,
            incident_id: Option<String>,
        }
        let Ok(j) = serde_json::from_str::<J>(json) else {
            return;
        };
        let entity = format!("call:{}", j.call_id);
        let key = (city.to_owned(), j.call_id.clone());
        let received = j
            .stages
            .get(&CallEventType::Received)
            .map(|t| t.with_timezone(&Utc));
        if !self.calls_seen.contains(&key) {
            self.calls_seen.insert(key.clone());
            self.calls_order.push_back(key.clone());
            if let Some(r) = received {
                self.rates
                    .entry((city.to_owned(), j.line))
                    .or_default()
                    .arrivals
                    .push_back(r);
            }
            if self.calls_order.len() > CALLS_REMEMBERED {
                if let Some(old) = self.calls_order.pop_front() {
                    self.calls_seen.remove(&old);
                    self.answered_seen.remove(&old);
                }
            }
        }
        if let (Some(s), Some(at)) = (j.answer_s, j.stages.get(&CallEventType::Answered)) {
            if self.answered_seen.insert(key) {
                self.rates
                    .entry((city.to_owned(), j.line))
                    .or_default()
                    .answers
                    .push_back((at.with_timezone(&Utc), s));
            }
        }
        let ringing = j.open
            && !j.stages.contains_key(&CallEventType::Answered)
            && !matches!(
                j.stage,
                CallEventType::Abandoned | CallEventType::Transferred | CallEventType::Closed
            );
        match (ringing, received) {
            (true, Some(r)) => {
                let rule = self.settings.rule(city, AlertRule::CallUnanswered);
                let limit = rule.threshold.unwrap_or(20.0);
                let f = Finding {
                    rule: AlertRule::CallUnanswered,
                    entity: entity.clone(),
                    group: j
                        .incident_id
                        .map(|i| format!("incident:{i}"))
                        .unwrap_or_else(|| entity.clone()),
                    district: None,
                    value: None,
                    threshold: Some(limit),
                    unit: Some("s".into()),
                };
                let since = r + chrono::Duration::milliseconds((limit * 1000.0) as i64);
                self.watch(city, f, since, Some(r), false);
            }
            _ => self.unwatch(city, AlertRule::CallUnanswered, &entity),
        }
    }

    fn unit(&mut self, city: &str, key: &str, json: &str) {
        #[derive(Deserialize)]
        struct J {
            unit: String,
            status: UnitState,
            ts: Ts,
            call_id: Option<String>,
        }
        let id = key.rsplit('/').next().unwrap_or(key);
        let entity = format!("unit:{id}");
        let j = serde_json::from_str::<J>(json).ok();
        let target = j.as_ref().and_then(|j| match j.status {
            UnitState::Dispatched => Some(self.dispatch.unit_dispatched_s),
            UnitState::EnRoute => Some(self.dispatch.unit_en_route_s),
            UnitState::OnScene => Some(self.dispatch.unit_on_scene_s),
            _ => None,
        });
        match (j, target) {
            (Some(j), Some(target)) => {
                let rule = self.settings.rule(city, AlertRule::UnitStage);
                let limit = target as f64 * rule.threshold.unwrap_or(1.0);
                let at = j.ts.with_timezone(&Utc);
                let f = Finding {
                    rule: AlertRule::UnitStage,
                    entity: format!("unit:{}", j.unit),
                    group: j
                        .call_id
                        .map(|c| format!("call:{c}"))
                        .unwrap_or_else(|| entity.clone()),
                    district: None,
                    value: None,
                    threshold: Some(limit),
                    unit: Some("s".into()),
                };
                // A new stage starts the count again.
                let key = (city.to_owned(), AlertRule::UnitStage, entity.clone());
                if self.watched.get(&key).is_some_and(|w| w.origin != Some(at)) {
                    self.watched.remove(&key);
                }
                let since = at + chrono::Duration::milliseconds((limit * 1000.0) as i64);
                self.watch(city, f, since, Some(at), false);
            }
            _ => self.unwatch(city, AlertRule::UnitStage, &entity),
        }
    }

    fn feed(&mut self, city: &str, key: &str, json: &str) {
        #[derive(Deserialize)]
        struct J {
            family: Family,
            source: String,
            stale: bool,
            last_rx: DateTime<Utc>,
            stale_after_s: u64,
        }
        let Ok(j) = serde_json::from_str::<J>(json) else {
            // A removed feed: its key is `{city}/{family}/{source}`.
            if let Some(rest) = key.strip_prefix(city).and_then(|k| k.strip_prefix('/')) {
                self.unwatch(city, AlertRule::FeedStale, &format!("feed:{rest}"));
            }
            return;
        };
        let entity = format!("feed:{}/{}", j.family.as_str(), j.source);
        if j.stale && j.family != Family::Atcs {
            let f = Finding {
                rule: AlertRule::FeedStale,
                entity: entity.clone(),
                group: entity.clone(),
                district: None,
                value: None,
                threshold: Some(j.stale_after_s as f64),
                unit: Some("s".into()),
            };
            let since = j.last_rx + chrono::Duration::seconds(j.stale_after_s as i64);
            self.watch(city, f, since, Some(j.last_rx), false);
        } else {
            self.unwatch(city, AlertRule::FeedStale, &entity);
        }
    }

    fn command(&mut self, city: &str, key: &str, json: &str) {
        #[derive(Deserialize)]
        struct J {
            intersection: String,
            command_id: Uuid,
            status: String,
            late: bool,
            due: Option<DateTime<Utc>>,
        }
        let id = key.rsplit('/').next().unwrap_or(key);
        let entity = format!("command:{id}");
        match serde_json::from_str::<J>(json) {
            Ok(j) if j.status == "timed_out" && !j.late => {
                let district = self
                    .districts
                    .get(&format!("{city}/{}", j.intersection))
                    .cloned();
                let f = Finding {
                    rule: AlertRule::CommandTimedOut,
                    entity: format!("command:{}", j.command_id),
                    group: format!("intersection:{}", j.intersection),
                    district,
                    value: None,
                    threshold: None,
                    unit: None,
                };
                self.watch(city, f, j.due.unwrap_or_else(Utc::now), None, false);
            }
            _ => self.unwatch(city, AlertRule::CommandTimedOut, &entity),
        }
    }

    fn kpi(&mut self, city: &str, json: &str) {
        #[derive(Deserialize)]
        struct J {
            service: String,
            metric: String,
            value: f64,
            unit: String,
            target: Option<f64>,
        }
        let Ok(j) = serde_json::from_str::<J>(json) else {
            return;
        };
        let entity = format!("kpi:{}/{}", j.service, j.metric);
        let missed = j.target.is_some_and(|t| {
            if life::lower_is_better(&j.metric, &j.unit) {
                j.value > t
            } else {
                j.value < t
            }
        });
        if missed {
            let f = Finding {
                rule: AlertRule::KpiBelowTarget,
                entity: entity.clone(),
                group: format!("service:{}", j.service),
                district: None,
                value: Some(j.value),
                threshold: j.target,
                unit: Some(j.unit.clone()),
            };
            self.watch(city, f, Utc::now(), None, false);
        } else {
            self.unwatch(city, AlertRule::KpiBelowTarget, &entity);
        }
    }

    /// An alert as it came back from the bus: this engine's own (already
    /// known), another node's, or one restored from the store at start.
    fn alert(&mut self, city: &str, key: &str, json: &str) {
        let Ok(a) = serde_json::from_str::<Alert>(json) else {
            // Removed: back to normal.
            if let Some(id) = key.rsplit('/').next().and_then(|s| Uuid::parse_str(s).ok()) {
                self.alerts.remove(&id);
            }
            return;
        };
        if self.mine.contains(&a.event_id) {
            return;
        }
        let newer = self
            .alerts
            .get(&a.alert_id)
            .is_none_or(|(_, known)| known.ts <= a.ts);
        if newer {
            if a.is_live() {
                self.alerts.insert(a.alert_id, (city.to_owned(), a));
            } else {
                self.alerts.remove(&a.alert_id);
            }
        }
    }

    // ------------------------------------------------------------ judge

    /// Once a second: the rates, then raise, clear, end shelvings.
    async fn judge(&mut self, now: DateTime<Utc>) {
        self.rates(now).await;
        let at = now.with_timezone(&wib());
        let mut out = Vec::new();
        for ((city, rule, entity), w) in &self.watched {
            let settings = self.settings.rule(city, *rule);
            if !settings.enabled || w.suppressed {
                continue;
            }
            if self
                .latched
                .contains(&(city.clone(), *rule, entity.clone()))
            {
                continue;
            }
            if now < w.since + chrono::Duration::seconds(settings.for_s as i64) {
                continue;
            }
            let id = life::alert_id(city, *rule, entity);
            let previous = self.alerts.get(&id).map(|(_, a)| a);
            let mut f = w.finding.clone();
            if let Some(o) = w.origin {
                f.value = Some(((now - o).num_milliseconds() as f64 / 1000.0).round());
            }
            if let Some(a) = life::raise(city, previous, &f, settings.priority, at, false) {
                out.push((city.clone(), a));
            }
        }
        let grace = now < self.started + START_GRACE;
        if !grace && !self.settled.is_empty() {
            self.settled = HashSet::new();
        }
        for (city, a) in self.alerts.values() {
            let key = (city.clone(), a.rule, a.entity.clone());
            let watched = self.watched.get(&key);
            let over = !grace || self.settled.contains(&key);
            // A condition that started again (a unit in a new stage) holds
            // only from its new start: until then the alert clears.
            let restarted = watched.is_some_and(|w| now < w.since);
            if a.state.is_active() && ((watched.is_none() && over) || restarted) {
                out.extend(life::clear(a, at).map(|n| (city.clone(), n)));
            } else if let Some(w) = watched {
                if let Some(n) = life::suppress(a, at, w.suppressed) {
                    out.push((city.clone(), n));
                }
            }
            if life::shelving_over(a, now) {
                if let Ok(n) = life::unshelve(a, at, "rule:shelving") {
                    out.push((city.clone(), n));
                }
            }
        }
        if self.alerts.len() > LIVE_MAX {
            let mut waiting: Vec<&(String, Alert)> = self
                .alerts
                .values()
                .filter(|(_, a)| a.state == AlertState::ClearedUnack)
                .collect();
            waiting.sort_by_key(|(_, a)| a.cleared_at);
            let excess = self.alerts.len() - LIVE_MAX;
            out.extend(
                waiting
                    .into_iter()
                    .take(excess)
                    .filter_map(|(city, a)| life::overflow(a, at).map(|n| (city.clone(), n))),
            );
        }
        for (city, a) in out {
            let _ = self.publish(&city, a).await;
        }
    }

    /// The answer-target and surge rules, per city and line.
    async fn rates(&mut self, now: DateTime<Utc>) {
        let within = self.dispatch.answer_standard.targets()[0].0 as f64;
        let keys: Vec<(String, CallLine)> = self.rates.keys().cloned().collect();
        for (city, line) in keys {
            let answer = self.settings.rule(&city, AlertRule::AnswerTarget);
            let surge = self.settings.rule(&city, AlertRule::CallSurge);
            let entity = format!("line:{}", line.as_str());
            let r = self
                .rates
                .get_mut(&(city.clone(), line))
                .expect("a key just listed");
            let window = chrono::Duration::seconds(answer.window_s as i64);
            while r.answers.front().is_some_and(|(t, _)| *t < now - window) {
                r.answers.pop_front();
            }
            while r.arrivals.front().is_some_and(|t| *t < now - SURGE_WINDOW) {
                r.arrivals.pop_front();
            }
            let n = r.answers.len();
            let share = if n == 0 {
                100.0
            } else {
                100.0 * r.answers.iter().filter(|(_, s)| *s <= within).count() as f64 / n as f64
            };
            let limit = answer.threshold.unwrap_or(90.0);
            let arrivals = r.arrivals.len();
            let ask_baseline = arrivals >= surge.min_count as usize
                && r.baseline
                    .is_none_or(|(asked, _)| now - asked > BASELINE_EVERY);
            if n >= answer.min_count as usize && share < limit {
                let f = Finding {
                    rule: AlertRule::AnswerTarget,
                    entity: entity.clone(),
                    group: entity.clone(),
                    district: None,
                    value: Some((share * 10.0).round() / 10.0),
                    threshold: Some(limit),
                    unit: Some("%".into()),
                };
                self.watch(&city, f, now, None, false);
            } else {
                self.unwatch(&city, AlertRule::AnswerTarget, &entity);
            }
            if ask_baseline {
                let b = self.baseline(&city, line, now).await;
                if let Some(r) = self.rates.get_mut(&(city.clone(), line)) {
                    r.baseline = Some((now, b));
                }
            }
            let baseline = self
                .rates
                .get(&(city.clone(), line))
                .and_then(|r| r.baseline)
                .and_then(|(_, b)| b);
            let factor = surge.threshold.unwrap_or(2.0);
            match baseline {
                Some(b)
                    if arrivals >= surge.min_count as usize
                        && arrivals as f64 >= factor * b.max(1.0) =>
                {
                    let f = Finding {
                        rule: AlertRule::CallSurge,
                        entity: entity.clone(),
                        group: entity.clone(),
                        district: None,
                        value: Some(((arrivals as f64 / b.max(1.0)) * 10.0).round() / 10.0),
                        threshold: Some(factor),
                        unit: Some("x".into()),
                    };
                    self.watch(&city, f, now, None, false);
                }
                _ => self.unwatch(&city, AlertRule::CallSurge, &entity),
            }
        }
    }

    /// Calls received in the hour up to `now`, on the same weekday and hour
    /// of the last [`SURGE_WEEKS`] weeks, on average; `None` when the store
    /// holds none of those weeks.
    async fn baseline(&self, city: &str, line: CallLine, now: DateTime<Utc>) -> Option<f64> {
        let mut counts = Vec::new();
        for w in 1..=SURGE_WEEKS {
            let to = now - chrono::Duration::weeks(w);
            let q = HistoryQuery::Calls {
                city: city.to_owned(),
                line: Some(line),
                category: None,
                range: Range {
                    from: to - SURGE_WINDOW,
                    to,
                    bucket: SURGE_WINDOW,
                },
            };
            if let Ok(HistoryAnswer::Calls(b)) = self.store.query(&q).await {
                if !b.is_empty() {
                    counts.push(b.iter().map(|b| b.received).sum::<u64>() as f64);
                }
            }
        }
        (!counts.is_empty()).then(|| counts.iter().sum::<f64>() / counts.len() as f64)
    }

    // ------------------------------------------------------------ act

    async fn act(&mut self, alert_id: Uuid, by: &str, act: Act) -> Result<Alert, ActError> {
        let (city, a) = self
            .alerts
            .get(&alert_id)
            .cloned()
            .ok_or(ActError::Unknown(alert_id))?;
        let at = Utc::now().with_timezone(&wib());
        let next = match act {
            Act::Acknowledge { reason } => {
                let latching = a.rule == AlertRule::CommandTimedOut;
                life::acknowledge(&a, at, by, reason, latching)?
            }
            Act::Shelve { reason, minutes } => {
                if minutes == 0 || minutes > self.settings.shelve_max_min {
                    return Err(ActError::ShelveTooLong(self.settings.shelve_max_min));
                }
                let until = at + chrono::Duration::minutes(minutes as i64);
                life::shelve(&a, at, by, reason, until)?
            }
            Act::Unshelve => life::unshelve(&a, at, by)?,
        };
        self.publish(&city, next.clone())
            .await
            .map_err(ActError::Publish)?;
        if a.rule == AlertRule::CommandTimedOut && next.state == AlertState::Normal {
            let key = (city, a.rule, a.entity.clone());
            if self.watched.contains_key(&key) && self.latched.insert(key.clone()) {
                self.latched_order.push_back(key);
                if self.latched_order.len() > LATCHED_REMEMBERED {
                    if let Some(old) = self.latched_order.pop_front() {
                        self.latched.remove(&old);
                    }
                }
            }
        }
        Ok(next)
    }

    /// Publishes a transition (retained while the alert is live; when it is
    /// back to normal, its retained message is cleared) and keeps it.
    async fn publish(&mut self, city: &str, a: Alert) -> Result<(), String> {
        let topic = Topic::Alert {
            city: city.to_owned(),
            alert_id: a.alert_id.to_string(),
        };
        let live = a.is_live();
        let msg = Message::Alert(Box::new(a.clone()));
        let bytes = validate_outgoing(&topic, &msg, &self.out.limits).map_err(|r| r.to_string())?;
        self.mine.insert(a.event_id);
        self.mine_order.push_back(a.event_id);
        if self.mine_order.len() > MINE_REMEMBERED {
            if let Some(old) = self.mine_order.pop_front() {
                self.mine.remove(&old);
            }
        }
        if live {
            self.alerts.insert(a.alert_id, (city.to_owned(), a.clone()));
        } else {
            self.alerts.remove(&a.alert_id);
        }
        tracing::info!(%city, alert = %a.alert_id, rule = a.rule.as_str(), entity = %a.entity,
            transition = a.transition.as_str(), state = a.state.as_str(), by = %a.by, "alert transition");
        let sent = self.out.send_with(&topic, bytes, live).await;
        if sent.is_ok() && !live {
            // An empty retained message removes the retained one.
            let _ = self.out.send_with(&topic, Vec::new(), true).await;
        }
        if let Err(e) = &sent {
            tracing::warn!(%city, alert = %a.alert_id, error = %e, "an alert transition was not published");
        }
        sent
    }
}
