//! The deterministic core of the simulated city. [`Simulation`] owns every
//! model (signal controllers, call centres, fleet, service apps, incidents)
//! and one seeded random stream; `step` advances simulated time by real time
//! times the acceleration and returns the messages to publish, stamped with
//! the `now` it was given. Discrete happenings (a call's next stage, a unit
//! arriving) sit on one agenda in simulated time; periodic reports (signal
//! state each second, unit positions, KPIs) run on the real clock, so their
//! rate does not grow with the acceleration.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Timelike};
use serde::Serialize;

use crate::contract::messages::{
    AckStatus, AssignmentAction, CallCategory, CallLine, Command, CommandAck, Message, Ts,
    UnitAssignment,
};
use crate::contract::Topic;

use super::agenda::{Action, Agenda};
use super::atcs::{AtcsParams, Controller};
use super::calls::{self, CallCentre, Hotspot, LineSim};
use super::draw::{self, SimRng};
use super::geo::LatLon;
use super::scenario::{parse_category, parse_hhmm, Scenario};
use super::services::Services;
use super::units::{Fleet, Job};

/// Real seconds between two state messages of one controller.
pub const STATE_EVERY_S: f64 = 1.0;
/// Longest real step honoured at once: a process paused for hours resumes
/// with one hour of simulated catch-up, not a flood.
const MAX_STEP_S: f64 = 3600.0;
/// An order to a unit older than this (real seconds) is a retained one from
/// before the run: not obeyed (human dispatch).
const STALE_ORDER_S: i64 = 120;
/// How long a unit works on scene under human dispatch, simulated seconds.
const HUMAN_ON_SCENE_S: [f64; 2] = [300.0, 1200.0];
/// Turn-out of a unit sent to a call this run did not ring, seconds.
const HUMAN_TURNOUT_S: [f64; 2] = [30.0, 90.0];

/// A [`Ctx`] over the simulation's own fields: a macro, not a method, so
/// that the caller keeps the call centre, the fleet and the controllers
/// beside it.
macro_rules! ctx {
    ($sim:expr, $out:expr, $now:expr, $at:expr) => {
        Ctx {
            rng: &mut $sim.rng,
            agenda: &mut $sim.agenda,
            stats: &mut $sim.stats,
            out: $out,
            city: &$sim.scenario.city,
            now: $now,
            at: $at,
            real_t: $sim.real_t,
        }
    };
}

/// The acceleration to run `scenario` at when none is given: its own, but
/// real time when people answer and dispatch (a drill's calls and units must
/// move at the pace of the people handling them).
pub fn default_accel(scenario: &Scenario, human_dispatch: bool) -> f64 {
    if human_dispatch {
        1.0
    } else {
        scenario.accel
    }
}

/// Counts of what the simulation has published.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimStats {
    /// Simulated seconds elapsed.
    pub sim_seconds: f64,
    /// Every message returned by `initial`, `step` and `command`.
    pub messages: u64,
    /// Calls received, by line (`112`, `119`).
    pub calls_started: BTreeMap<String, u64>,
    /// Call events, by type (`received`, `answered`, ...).
    pub call_events: BTreeMap<String, u64>,
    pub calls_abandoned: u64,
    /// App events, by service id.
    pub app_events: BTreeMap<String, u64>,
    pub kpi_samples: u64,
    pub info_messages: u64,
    pub state_messages: u64,
    pub unit_status_messages: u64,
    pub incidents_fired: u64,
    pub detector_faults: u64,
    pub commands_applied: u64,
    pub commands_rejected: u64,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl SimStats {
    fn count(&mut self, msg: &Message) {
        self.messages += 1;
        match msg {
            Message::IntersectionInfo(_) => self.info_messages += 1,
            Message::IntersectionState(_) => self.state_messages += 1,
            Message::CallEvent(e) => {
                bump(&mut self.call_events, e.kind.as_str());
                match e.kind {
                    crate::contract::CallEventType::Received => {
                        bump(&mut self.calls_started, e.line.as_str())
                    }
                    crate::contract::CallEventType::Abandoned => self.calls_abandoned += 1,
                    _ => {}
                }
            }
            Message::UnitStatus(_) => self.unit_status_messages += 1,
            Message::AppEvent(e) => bump(&mut self.app_events, &e.service),
            Message::KpiSample(_) => self.kpi_samples += 1,
            Message::CommandAck(a) => match a.status {
                AckStatus::Applied => self.commands_applied += 1,
                AckStatus::Rejected => self.commands_rejected += 1,
            },
            Message::Command(_) | Message::UnitAssignment(_) | Message::Alert(_) => {}
        }
    }
}

/// What a handler needs to emit messages and schedule what comes next.
pub struct Ctx<'a> {
    pub rng: &'a mut SimRng,
    pub agenda: &'a mut Agenda,
    stats: &'a mut SimStats,
    out: &'a mut Vec<(Topic, Message)>,
    pub city: &'a str,
    /// Wall-clock stamp of every message of this step.
    pub now: Ts,
    /// Simulated second of the happening being handled.
    pub at: f64,
    /// Real seconds since start, for real-time periodic reports.
    pub real_t: f64,
}

impl Ctx<'_> {
    pub fn emit(&mut self, topic: Topic, msg: Message) {
        self.stats.count(&msg);
        self.out.push((topic, msg));
    }
}

/// A scheduled incident, resolved against the scenario.
#[derive(Clone, Debug)]
pub struct IncidentSim {
    pub id: String,
    pub title: String,
    pub kind: CallCategory,
    pub junction: usize,
    pub pos: LatLon,
    pub address: String,
    pub start_s: f64,
    pub end_s: f64,
    pub surge: f64,
    pub surge_categories: Vec<(CallCategory, f64)>,
    pub lines: Vec<CallLine>,
    pub congestion: f64,
    pub dispatch: Vec<(String, u32)>,
    pub duplicate_prob: f64,
    pub active: bool,
}

/// The simulated city.
pub struct Simulation {
    scenario: Scenario,
    accel: f64,
    rng: SimRng,
    agenda: Agenda,
    stats: SimStats,
    sim_t: f64,
    real_t: f64,
    /// Simulated time of day at start, seconds; set by the first `initial`/`step`.
    start_tod: Option<f64>,
    demand_profile: [f64; 24],
    calls_profile: [f64; 24],
    service_profile: [f64; 24],
    atcs: AtcsParams,
    controllers: Vec<Controller>,
    calls: CallCentre,
    fleet: Fleet,
    services: Services,
    incidents: Vec<IncidentSim>,
}

fn profile(p: Option<&Vec<f64>>, fallback: &[f64; 24]) -> [f64; 24] {
    match p {
        Some(v) if v.len() == 24 => {
            let mut out = [1.0; 24];
            for (o, x) in out.iter_mut().zip(v) {
                *o = if x.is_finite() { x.max(0.0) } else { 1.0 };
            }
            out
        }
        _ => *fallback,
    }
}

/// The profile's value at time of day `tod`, interpolated between hour midpoints.
fn profile_at(p: &[f64; 24], tod: f64) -> f64 {
    let h = (tod / 3600.0 - 0.5).rem_euclid(24.0);
    let i = (h.floor() as usize) % 24;
    let f = h - h.floor();
    p[i] * (1.0 - f) + p[(i + 1) % 24] * f
}

impl Simulation {
    /// `seed` drives one ChaCha stream; same scenario + seed + same sequence of
    /// `step` calls (and `now` values) give identical output, byte for byte.
    /// Never panics: an unvalidated scenario is sanitised (see `Scenario::validate`).
    pub fn new(scenario: Scenario, seed: u64, accel: f64) -> Simulation {
        let accel = if accel.is_finite() && accel > 0.0 {
            accel.min(100_000.0)
        } else {
            1.0
        };
        let mut rng = draw::rng_from_seed(seed);
        let mut agenda = Agenda::default();
        let flat = [1.0; 24];
        let demand_profile = profile(Some(&scenario.demand_profile), &flat);
        let calls_profile = profile(scenario.calls.profile.as_ref(), &demand_profile);
        let service_profile = profile(scenario.service_profile.as_ref(), &demand_profile);
        let atcs = AtcsParams::new(&scenario.atcs);
        let n = scenario.intersections.len().max(1) as f64;
        let controllers: Vec<Controller> = scenario
            .intersections
            .iter()
            .enumerate()
            .filter_map(|(i, def)| Controller::new(def, &atcs, STATE_EVERY_S * i as f64 / n))
            .collect();
        let city_name = scenario.city_display_name();
        let hotspots = controllers
            .iter()
            .map(|c| Hotspot {
                pos: (c.lat, c.lon),
                weight: c.base_demand().max(1.0),
                junction: c.name.clone(),
                district: c.district.clone(),
                roads: c.road_names(),
            })
            .collect();
        let mut lines = Vec::new();
        if let Some(l) = &scenario.calls.line112 {
            lines.push(LineSim::new(CallLine::L112, l));
        }
        if let Some(l) = &scenario.calls.line119 {
            lines.push(LineSim::new(CallLine::L119, l));
        }
        let center = (scenario.center[0], scenario.center[1]);
        let calls = CallCentre::new(lines, hotspots, city_name.clone(), center);
        let fleet = Fleet::new(&scenario.units);
        fleet.schedule_maintenance(&mut rng, &mut agenda);
        let services = Services::new(&scenario.services);
        let incidents = resolve_incidents(&scenario, &controllers, &city_name);
        for (i, inc) in incidents.iter().enumerate() {
            agenda.at(inc.start_s, Action::IncidentStart(i));
            agenda.at(inc.end_s, Action::IncidentEnd(i));
        }
        Simulation {
            scenario,
            accel,
            rng,
            agenda,
            stats: SimStats::default(),
            sim_t: 0.0,
            real_t: 0.0,
            start_tod: None,
            demand_profile,
            calls_profile,
            service_profile,
            atcs,
            controllers,
            calls,
            fleet,
            services,
            incidents,
        }
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn accel(&self) -> f64 {
        self.accel
    }

    /// Simulated time elapsed since start.
    pub fn sim_elapsed(&self) -> Duration {
        Duration::try_from_secs_f64(self.sim_t.max(0.0)).unwrap_or_default()
    }

    /// Simulated local time of day, seconds after midnight (once started).
    pub fn sim_time_of_day(&self) -> Option<f64> {
        self.start_tod.map(|s| self.tod(s, self.sim_t))
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    fn tod(&self, start: f64, t: f64) -> f64 {
        (start + t).rem_euclid(86_400.0)
    }

    /// Fixes the simulated start time of day and the call-id session tag from the first `now`.
    fn ensure_started(&mut self, now: DateTime<FixedOffset>) -> f64 {
        if let Some(s) = self.start_tod {
            return s;
        }
        let wall = now.with_timezone(&self.scenario.time_zone.offset());
        let wall_tod = f64::from(wall.num_seconds_from_midnight());
        let start = self
            .scenario
            .start_time
            .as_deref()
            .and_then(parse_hhmm)
            .unwrap_or(wall_tod);
        self.start_tod = Some(start);
        self.calls.session = wall.format("%H%M").to_string();
        let mult = profile_at(&self.demand_profile, start);
        for c in &mut self.controllers {
            c.prime(&self.atcs, mult, start);
        }
        start
    }

    /// Messages to publish once at start: every intersection's `info` and
    /// every unit's initial `status` (both retained topics).
    pub fn initial(&mut self, now: DateTime<FixedOffset>) -> Vec<(Topic, Message)> {
        self.ensure_started(now);
        let mut out = Vec::with_capacity(self.controllers.len() + self.fleet.units.len());
        let mut ctx = ctx!(self, &mut out, now, self.sim_t);
        for c in &self.controllers {
            let topic = Topic::IntersectionInfo {
                city: ctx.city.to_owned(),
                intersection: c.id.clone(),
            };
            ctx.emit(topic, Message::IntersectionInfo(Box::new(c.info(now))));
        }
        for i in 0..self.fleet.units.len() {
            let (topic, msg) = self.fleet.status(i, &ctx);
            ctx.emit(topic, msg);
        }
        out
    }

    /// Advances by `dt` of real time (simulated time advances `dt * accel`)
    /// and returns what to publish, every message stamped `now`.
    pub fn step(&mut self, now: DateTime<FixedOffset>, dt: Duration) -> Vec<(Topic, Message)> {
        let start = self.ensure_started(now);
        let dt_real = dt.as_secs_f64().min(MAX_STEP_S);
        let dt_sim = dt_real * self.accel;
        let (t0, t1) = (self.sim_t, self.sim_t + dt_sim);
        let mut out = Vec::new();
        self.schedule_arrivals(start, t0, t1);
        self.real_t += dt_real;
        self.run_agenda(t1, now, &mut out);
        self.sim_t = t1;
        self.stats.sim_seconds = t1;

        let tod = self.tod(start, t1);
        let traffic = profile_at(&self.demand_profile, tod);
        let services_mult = profile_at(&self.service_profile, tod);
        let mut ctx = ctx!(self, &mut out, now, t1);
        for c in &mut self.controllers {
            let faults = c.advance_traffic(&self.atcs, traffic, dt_sim, t1, ctx.rng);
            ctx.stats.detector_faults += faults;
            c.advance_signal(&self.atcs, dt_real, tod);
            if ctx.real_t >= c.next_state_at {
                // Keep a steady one-second cadence; after a long pause start afresh.
                c.next_state_at = if ctx.real_t - c.next_state_at > STATE_EVERY_S {
                    ctx.real_t + STATE_EVERY_S
                } else {
                    c.next_state_at + STATE_EVERY_S
                };
                let state = c.state(&self.atcs, now, t1, ctx.rng);
                let topic = Topic::IntersectionState {
                    city: ctx.city.to_owned(),
                    intersection: c.id.clone(),
                };
                ctx.emit(topic, Message::IntersectionState(state.into()));
            }
        }
        self.fleet.report_moving(&mut ctx);
        self.services.sample_kpis(services_mult, &mut ctx);
        out
    }

    /// Poisson arrivals of calls (with incident surges) and root app events in `[t0, t1)`.
    fn schedule_arrivals(&mut self, start: f64, t0: f64, t1: f64) {
        if t1 <= t0 {
            return;
        }
        let mid = self.tod(start, (t0 + t1) / 2.0);
        let calls_mult = profile_at(&self.calls_profile, mid);
        let hours = (t1 - t0) / 3600.0;
        for (li, line) in self.calls.lines.iter().enumerate() {
            let n = draw::poisson(&mut self.rng, line.rate_per_hour * calls_mult * hours);
            for _ in 0..n {
                let at = draw::uniform(&mut self.rng, [t0, t1]);
                self.agenda.at(
                    at,
                    Action::CallArrival {
                        line: li,
                        surge: None,
                    },
                );
            }
        }
        for (ii, inc) in self.incidents.iter().enumerate() {
            let (s, e) = (t0.max(inc.start_s), t1.min(inc.end_s));
            if e <= s {
                continue;
            }
            for line in &inc.lines {
                let Some(li) = self.calls.line_index(*line) else {
                    continue;
                };
                let extra =
                    self.calls.lines[li].rate_per_hour * calls_mult * (inc.surge - 1.0) * (e - s)
                        / 3600.0;
                for _ in 0..draw::poisson(&mut self.rng, extra) {
                    let at = draw::uniform(&mut self.rng, [s, e]);
                    self.agenda.at(
                        at,
                        Action::CallArrival {
                            line: li,
                            surge: Some(ii),
                        },
                    );
                }
            }
        }
        let services_mult = profile_at(&self.service_profile, mid);
        self.services
            .schedule_arrivals(t0, t1, services_mult, &mut self.agenda, &mut self.rng);
    }

    /// Handles everything on the agenda due by `until`, in time order.
    fn run_agenda(&mut self, until: f64, now: Ts, out: &mut Vec<(Topic, Message)>) {
        while let Some((at, action)) = self.agenda.pop_due(until) {
            let mut ctx = ctx!(self, out, now, at);
            match action {
                Action::CallArrival { line, surge } => {
                    self.calls
                        .arrive(line, surge, &self.incidents, &self.fleet, &mut ctx)
                }
                Action::Call { key, gen } => {
                    self.calls.advance(key, gen, &mut self.fleet, &mut ctx)
                }
                Action::Unit { unit, gen } => {
                    let (note, freed) = self.fleet.advance(unit, gen, &mut ctx);
                    if let Some(note) = note {
                        self.calls.on_unit(note, &mut ctx);
                    }
                    if freed {
                        self.calls.retry_waiting(&mut self.fleet, &mut ctx);
                    }
                }
                Action::Maintenance { unit } => self.fleet.maintenance(unit, &mut ctx),
                Action::AppRoot { service, spec } => self.services.root(service, spec, &mut ctx),
                Action::AppFollow(chain) => self.services.event(*chain, &mut ctx),
                Action::IncidentStart(i) => {
                    ctx.stats.incidents_fired += 1;
                    if let Some(inc) = self.incidents.get_mut(i) {
                        inc.active = true;
                    }
                    apply_congestion(&self.incidents, &mut self.controllers, i);
                    self.calls.open_incident(i, &self.incidents, &mut ctx);
                }
                Action::IncidentEnd(i) => {
                    if let Some(inc) = self.incidents.get_mut(i) {
                        inc.active = false;
                    }
                    apply_congestion(&self.incidents, &mut self.controllers, i);
                }
            }
        }
    }

    /// People answer and dispatch at the console: calls ring until a call
    /// taker answers (or the caller hangs up) and units go where their
    /// assignments send them (`--human-dispatch`).
    pub fn set_human_dispatch(&mut self, on: bool) {
        self.calls.human = on;
        self.calls.accel = self.accel;
    }

    pub fn human_dispatch(&self) -> bool {
        self.calls.human
    }

    /// What the simulated city hears on the bus: operator commands for its
    /// controllers and, with human dispatch, people's call events and the
    /// orders to its units. Returns what to publish in answer.
    pub fn incoming(
        &mut self,
        topic: &Topic,
        msg: &Message,
        now: DateTime<FixedOffset>,
    ) -> Vec<(Topic, Message)> {
        if topic.city() != self.scenario.city {
            return Vec::new();
        }
        match msg {
            Message::Command(cmd) => self.command(topic, cmd, now).into_iter().collect(),
            Message::CallEvent(ev) => {
                self.calls.heard(ev);
                Vec::new()
            }
            Message::UnitAssignment(a) if self.calls.human => self.assignment(a, now),
            _ => Vec::new(),
        }
    }

    /// A unit obeys its order: to a call (from where it is), or off it (home).
    /// An order older than [`STALE_ORDER_S`] is a retained one from before
    /// this run, and is not obeyed.
    fn assignment(
        &mut self,
        a: &UnitAssignment,
        now: DateTime<FixedOffset>,
    ) -> Vec<(Topic, Message)> {
        if (now - a.ts).num_seconds() > STALE_ORDER_S {
            return Vec::new();
        }
        self.ensure_started(now);
        let Some(i) = self.fleet.index_of(&a.unit) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut ctx = ctx!(self, &mut out, now, self.sim_t);
        match a.action {
            AssignmentAction::Assign => {
                let key = self.calls.key_of(&a.call_id);
                let scene = key.and_then(|k| self.calls.scene_of(k));
                let here = self.fleet.units[i].position(ctx.at);
                let target = a
                    .destination
                    .as_ref()
                    .map(|d| (d.lat, d.lon))
                    .or(scene.map(|(p, _)| p))
                    .unwrap_or(here);
                let job = Job {
                    // A call this run did not ring still gets its unit; no events follow.
                    key: key.unwrap_or(u64::MAX),
                    call_id: a.call_id.clone(),
                    primary: true,
                    target,
                    on_scene_s: draw::uniform(ctx.rng, HUMAN_ON_SCENE_S),
                };
                let turnout = scene.map_or(HUMAN_TURNOUT_S, |(_, m)| m);
                self.fleet.assign(i, job, turnout, &mut ctx);
            }
            AssignmentAction::Cancel => {
                let on_it = self.fleet.units[i]
                    .job
                    .as_ref()
                    .is_some_and(|j| j.call_id == a.call_id);
                if on_it {
                    self.fleet.stand_down(i, &mut ctx);
                }
            }
        }
        out
    }

    /// A controller obeys an operator command and returns its `command/ack`
    /// (applied, or rejected with the reason). `None` when the topic is not a
    /// command for one of this city's controllers: nobody there to answer.
    pub fn command(
        &mut self,
        topic: &Topic,
        cmd: &Command,
        now: DateTime<FixedOffset>,
    ) -> Option<(Topic, Message)> {
        let Topic::Command { city, intersection } = topic else {
            return None;
        };
        if *city != self.scenario.city {
            return None;
        }
        let start = self.ensure_started(now);
        let tod = self.tod(start, self.sim_t);
        let c = self
            .controllers
            .iter_mut()
            .find(|c| c.id == *intersection)?;
        let result = c.command(&self.atcs, cmd, tod);
        if let Err(reason) = &result {
            tracing::info!(intersection = %intersection, command = %cmd.command_id, %reason, "simulated controller rejected a command");
        }
        let ack = CommandAck {
            command_id: cmd.command_id,
            ts: now,
            status: if result.is_ok() {
                AckStatus::Applied
            } else {
                AckStatus::Rejected
            },
            reason: result.err(),
        };
        let msg = Message::CommandAck(Box::new(ack));
        self.stats.count(&msg);
        Some((
            Topic::CommandAck {
                city: city.clone(),
                intersection: intersection.clone(),
            },
            msg,
        ))
    }
}

/// Sets incident `i`'s junction to the worst congestion of its active incidents.
fn apply_congestion(incidents: &[IncidentSim], controllers: &mut [Controller], i: usize) {
    let Some(j) = incidents.get(i).map(|inc| inc.junction) else {
        return;
    };
    let worst = incidents
        .iter()
        .filter(|x| x.active && x.junction == j)
        .map(|x| x.congestion)
        .fold(1.0, f64::max);
    if let Some(c) = controllers.get_mut(j) {
        c.set_congestion(worst);
    }
}

/// Incidents whose junction exists, with their schedule in simulated seconds.
fn resolve_incidents(
    s: &Scenario,
    controllers: &[Controller],
    city_name: &str,
) -> Vec<IncidentSim> {
    s.incidents
        .iter()
        .filter_map(|d| {
            let junction = controllers.iter().position(|c| c.id == d.intersection)?;
            let c = &controllers[junction];
            let kind = parse_category(&d.kind).unwrap_or(CallCategory::TrafficAccident);
            let mut surge_categories = calls::categories(&d.surge_categories);
            if surge_categories.is_empty() {
                surge_categories.push((kind, 1.0));
            }
            let finite =
                |x: f64, lo: f64, hi: f64| if x.is_finite() { x.clamp(lo, hi) } else { lo };
            let start_s = finite(d.at_min, 0.0, 1e7) * 60.0;
            let address = match &c.district {
                Some(dist) => format!("{}, Kec. {dist}, {city_name}", c.name),
                None => format!("{}, {city_name}", c.name),
            };
            Some(IncidentSim {
                id: d.id.clone(),
                title: d.title.clone(),
                kind,
                junction,
                pos: (c.lat, c.lon),
                address,
                start_s,
                end_s: start_s + finite(d.duration_min, 1.0, 7.0 * 1440.0) * 60.0,
                surge: finite(d.call_surge, 1.0, 100.0),
                surge_categories,
                lines: d.lines.iter().filter_map(|l| CallLine::parse(l)).collect(),
                congestion: finite(d.congestion, 1.0, 10.0),
                dispatch: if d.dispatch.is_empty() {
                    // No explicit dispatch: one unit of the agency for the kind, if any.
                    calls::agency_for(kind, 1)
                        .map(|a| (a.to_owned(), 1))
                        .into_iter()
                        .collect()
                } else {
                    d.dispatch
                        .iter()
                        .map(|(a, n)| (a.clone(), (*n).min(50)))
                        .collect()
                },
                duplicate_prob: finite(d.duplicate_prob, 0.0, 1.0),
                active: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use chrono::Utc;

    use super::*;
    use crate::contract::messages::{
        CallEvent, CallEventType, CommandAction, ControllerMode, UnitState,
    };
    use crate::contract::{decode, Limits};
    use crate::sensors::geo;

    const STEP: Duration = Duration::from_millis(250);

    fn t0() -> DateTime<FixedOffset> {
        "2026-11-22T08:00:00+07:00".parse().unwrap()
    }

    /// One published message with the step's `now` and the simulated seconds after that step.
    struct Out {
        now: DateTime<FixedOffset>,
        sim_s: f64,
        topic: Topic,
        msg: Message,
    }

    fn scenario(name: &str, start: Option<&str>) -> Scenario {
        let mut s = Scenario::builtin(name).unwrap();
        if let Some(t) = start {
            s.start_time = Some(t.into());
        }
        s
    }

    fn run(sim: &mut Simulation, steps: usize) -> Vec<Out> {
        let mut out = Vec::new();
        let mut now = t0();
        for (topic, msg) in sim.initial(now) {
            out.push(Out {
                now,
                sim_s: 0.0,
                topic,
                msg,
            });
        }
        for _ in 0..steps {
            now += chrono::Duration::from_std(STEP).unwrap();
            for (topic, msg) in sim.step(now, STEP) {
                out.push(Out {
                    now,
                    sim_s: sim.sim_t,
                    topic,
                    msg,
                });
            }
        }
        out
    }

    fn bytes(out: &[Out]) -> Vec<(String, Vec<u8>)> {
        out.iter()
            .map(|o| (o.topic.to_string(), o.msg.to_json()))
            .collect()
    }

    /// Every message decodes under the contract, event ids are unique and
    /// each call's events start with `received` and end with one terminal event.
    fn check_contract(name: &str, out: &[Out]) {
        let mut ids = BTreeSet::new();
        let mut calls: BTreeMap<String, Vec<CallEventType>> = BTreeMap::new();
        for o in out {
            let now_utc = o.now.with_timezone(&Utc);
            let (topic, msg) = decode(
                &o.topic.to_string(),
                &o.msg.to_json(),
                &Limits::default(),
                now_utc,
            )
            .unwrap_or_else(|e| {
                panic!(
                    "{name}: {} rejected: {e}\n{}",
                    o.topic,
                    String::from_utf8_lossy(&o.msg.to_json())
                )
            });
            assert_eq!(topic, o.topic);
            assert_eq!(msg.ts(), Some(o.now), "{name}: ts must be the step's now");
            if let Some(id) = msg.event_id() {
                assert!(ids.insert(id), "{name}: duplicate event id {id}");
            }
            if let Message::CallEvent(e) = &msg {
                calls.entry(e.call_id.clone()).or_default().push(e.kind);
            }
        }
        for (id, events) in &calls {
            assert_eq!(
                events[0],
                CallEventType::Received,
                "{name}: {id}: {events:?}"
            );
            let terminal: Vec<usize> = events
                .iter()
                .enumerate()
                .filter(|(_, k)| k.is_terminal())
                .map(|(i, _)| i)
                .collect();
            assert!(
                terminal.len() <= 1 && terminal.iter().all(|&i| i == events.len() - 1),
                "{name}: {id}: {events:?}"
            );
            let first = |k: CallEventType| events.iter().position(|e| *e == k);
            for (a, b) in [
                (CallEventType::Answered, CallEventType::Classified),
                (CallEventType::Classified, CallEventType::Dispatched),
                (CallEventType::Dispatched, CallEventType::EnRoute),
                (CallEventType::EnRoute, CallEventType::OnScene),
            ] {
                if let (Some(x), Some(y)) = (first(a), first(b)) {
                    assert!(x < y, "{name}: {id}: {events:?}");
                }
            }
        }
    }

    #[test]
    fn every_message_of_every_scenario_passes_the_contract() {
        for name in Scenario::builtin_names() {
            // Half an hour at 60x, then a whole day at 1440x for the long lifecycles.
            let mut sim = Simulation::new(scenario(name, None), 11, 60.0);
            let out = run(&mut sim, 120);
            assert!((sim.sim_t - 1800.0).abs() < 1e-6);
            check_contract(name, &out);
            let mut sim = Simulation::new(scenario(name, None), 12, 1440.0);
            let out = run(&mut sim, 240);
            check_contract(name, &out);
            let s = sim.stats();
            assert!(s.call_events.contains_key("closed"), "{name}: {s:?}");
            assert!(
                s.kpi_samples > 0 && s.state_messages > 0 && s.unit_status_messages > 0,
                "{name}: {s:?}"
            );
        }
    }

    #[test]
    fn initial_publishes_every_info_and_unit() {
        let mut sim = Simulation::new(scenario("cilegon-weekday", None), 1, 1.0);
        let out = sim.initial(t0());
        let s = sim.scenario();
        assert_eq!(out.len(), s.intersections.len() + s.units.len());
        assert!(out.iter().all(|(t, _)| t.retained()));
        assert_eq!(sim.stats().info_messages as usize, s.intersections.len());
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let go = |seed| {
            let mut sim = Simulation::new(scenario("cilegon-weekday", Some("07:00")), seed, 120.0);
            bytes(&run(&mut sim, 400))
        };
        let a = go(42);
        assert_eq!(a, go(42));
        assert_ne!(a, go(43));
    }

    #[test]
    fn start_time_defaults_to_the_wib_wall_clock() {
        let mut sim = Simulation::new(scenario("cilegon-weekday", None), 1, 1.0);
        sim.initial("2026-11-22T02:15:00Z".parse().unwrap());
        assert_eq!(sim.sim_time_of_day(), Some(9.0 * 3600.0 + 15.0 * 60.0));
    }

    #[test]
    fn a_wita_city_starts_at_its_own_wall_clock() {
        let mut s = scenario("cilegon-weekday", None);
        s.time_zone = crate::domain::Zone::Wita;
        let mut sim = Simulation::new(s, 1, 1.0);
        // 02:15 UTC is 09:15 WIB and 10:15 WITA, whatever the stamp's offset.
        sim.initial("2026-11-22T09:15:00+07:00".parse().unwrap());
        assert_eq!(sim.sim_time_of_day(), Some(10.0 * 3600.0 + 15.0 * 60.0));
    }

    /// The pinned run: cilegon-weekday, seed 42, 60x from 08:00 WIB, 1440 steps of
    /// 250 ms (6 real minutes = 6 simulated hours, 08:00-14:00). A change here
    /// means the simulation's behaviour changed: re-pin deliberately.
    #[test]
    fn golden_cilegon_weekday_seed_42() {
        let mut sim = Simulation::new(scenario("cilegon-weekday", Some("08:00")), 42, 60.0);
        let out = run(&mut sim, 1440);
        let s = sim.stats().clone();
        assert_eq!(s.messages as usize, out.len());
        assert!((s.sim_seconds - 6.0 * 3600.0).abs() < 1e-6);

        // Sanity: 6 h at ~1.1x of 9/h (112) and 4/h (119), one incident, 21 junctions at 1/s.
        let started: u64 = s.calls_started.values().sum();
        assert!((45..=130).contains(&started), "{started}");
        assert_eq!(
            s.calls_started.values().sum::<u64>(),
            s.call_events["received"]
        );
        assert_eq!(s.incidents_fired, 1);
        assert_eq!(s.info_messages, 21);
        assert!(
            (21 * 359..=21 * 361).contains(&s.state_messages),
            "{}",
            s.state_messages
        );
        let kpis = sim
            .scenario()
            .services
            .iter()
            .map(|x| x.kpis.len() as u64)
            .sum::<u64>();
        assert!(
            (kpis * 35..=kpis * 37).contains(&s.kpi_samples),
            "{} samples of {kpis} KPIs",
            s.kpi_samples
        );

        let pinned = GOLDEN;
        assert_eq!(
            (
                s.calls_started.get("112").copied(),
                s.calls_started.get("119").copied()
            ),
            (Some(pinned.calls_112), Some(pinned.calls_119)),
            "calls started"
        );
        assert_eq!(s.calls_abandoned, pinned.abandoned, "abandoned");
        assert_eq!(
            s.call_events.values().sum::<u64>(),
            pinned.call_events,
            "call events"
        );
        assert_eq!(
            s.call_events.get("dispatched").copied().unwrap_or(0),
            pinned.dispatched,
            "dispatched"
        );
        assert_eq!(
            s.app_events.values().sum::<u64>(),
            pinned.app_events,
            "app events"
        );
        assert_eq!(
            s.app_events.get("pengaduan").copied().unwrap_or(0),
            pinned.pengaduan,
            "pengaduan events"
        );
        assert_eq!(s.kpi_samples, pinned.kpi_samples, "kpi samples");
        assert_eq!(s.state_messages, pinned.state_messages, "state messages");
        assert_eq!(
            s.unit_status_messages, pinned.unit_status,
            "unit status messages"
        );
        assert_eq!(s.detector_faults, pinned.detector_faults, "detector faults");
        assert_eq!(s.messages, pinned.messages, "messages");
    }

    struct Golden {
        calls_112: u64,
        calls_119: u64,
        abandoned: u64,
        call_events: u64,
        dispatched: u64,
        app_events: u64,
        pengaduan: u64,
        kpi_samples: u64,
        state_messages: u64,
        unit_status: u64,
        detector_faults: u64,
        messages: u64,
    }

    const GOLDEN: Golden = Golden {
        calls_112: 60,
        calls_119: 28,
        abandoned: 5,
        call_events: 473,
        dispatched: 45,
        app_events: 1980,
        pengaduan: 128,
        kpi_samples: 505,
        state_messages: 7561,
        unit_status: 295,
        detector_faults: 3,
        messages: 10835,
    };

    fn command(action: CommandAction) -> Command {
        Command::new(
            uuid::Uuid::from_u128(7),
            t0(),
            action,
            "petugas.lalin".into(),
        )
    }

    fn next_state(
        sim: &mut Simulation,
        now: &mut DateTime<FixedOffset>,
        id: &str,
    ) -> crate::contract::IntersectionState {
        for _ in 0..20 {
            *now += chrono::Duration::from_std(STEP).unwrap();
            for (_, m) in sim.step(*now, STEP) {
                if let Message::IntersectionState(s) = m {
                    if s.intersection == id {
                        return (*s).clone();
                    }
                }
            }
        }
        panic!("no state for {id} within 5 s");
    }

    fn ack(reply: Option<(Topic, Message)>, now: DateTime<FixedOffset>) -> CommandAck {
        let (topic, msg) = reply.expect("a controller of this city answers");
        decode(
            &topic.to_string(),
            &msg.to_json(),
            &Limits::default(),
            now.with_timezone(&Utc),
        )
        .unwrap();
        match msg {
            Message::CommandAck(a) => *a,
            other => panic!("not an ack: {other:?}"),
        }
    }

    #[test]
    fn controllers_obey_and_acknowledge_commands() {
        // 03:00: light traffic, so adaptive control adds nothing and the split is stable.
        let mut sim = Simulation::new(scenario("cilegon-weekday", Some("03:00")), 5, 1.0);
        let mut now = t0();
        sim.initial(now);
        let id = "simpang-pci";
        let topic = Topic::Command {
            city: "cilegon".into(),
            intersection: id.into(),
        };
        let before = next_state(&mut sim, &mut now, id);
        let green = |s: &crate::contract::IntersectionState, a: &str| {
            s.approaches.iter().find(|x| x.id == a).unwrap().green_s
        };

        let mut extend = command(CommandAction::ExtendGreen);
        extend.approach = Some("timur".into());
        extend.seconds = Some(15.0);
        let a = ack(sim.command(&topic, &extend, now), now);
        assert_eq!(
            (a.status, a.reason.as_deref(), a.command_id),
            (AckStatus::Applied, None, extend.command_id)
        );
        let after = next_state(&mut sim, &mut now, id);
        assert_eq!(green(&after, "timur"), green(&before, "timur") + 15.0);
        assert_eq!(after.cycle_s, before.cycle_s + 15.0);

        extend.approach = Some("tenggara".into());
        let a = ack(sim.command(&topic, &extend, now), now);
        assert_eq!(a.status, AckStatus::Rejected);
        assert!(
            a.reason
                .as_deref()
                .unwrap()
                .contains("unknown approach \"tenggara\""),
            "{a:?}"
        );

        let mut plan = command(CommandAction::SetPlan);
        plan.plan = Some("sore".into());
        assert_eq!(
            ack(sim.command(&topic, &plan, now), now).status,
            AckStatus::Applied
        );
        assert_eq!(next_state(&mut sim, &mut now, id).plan, "sore");

        let mut mode = command(CommandAction::SetMode);
        mode.mode = Some(ControllerMode::Flashing);
        assert_eq!(
            ack(sim.command(&topic, &mode, now), now).status,
            AckStatus::Applied
        );
        let s = next_state(&mut sim, &mut now, id);
        assert_eq!(s.mode, ControllerMode::Flashing);
        assert!(s.approaches.iter().all(|a| a.green_s == 0.0));

        let elsewhere = Topic::Command {
            city: "cilegon".into(),
            intersection: "simpang-tidak-ada".into(),
        };
        assert!(sim.command(&elsewhere, &mode, now).is_none());
        let other_city = Topic::Command {
            city: "cirebon".into(),
            intersection: id.into(),
        };
        assert!(sim.command(&other_city, &mode, now).is_none());
        assert_eq!(
            (sim.stats().commands_applied, sim.stats().commands_rejected),
            (3, 1)
        );
    }

    #[test]
    fn incident_surge_spikes_calls_jams_the_junction_and_draws_units() {
        let s = Scenario::builtin("incident-surge").unwrap();
        let (seed, accel) = (s.seed, s.accel);
        let inc = s.incidents[0].clone();
        let pci = s
            .intersections
            .iter()
            .find(|i| i.id == inc.intersection)
            .map(|i| (i.lat, i.lon))
            .unwrap();
        let window = (inc.at_min * 60.0, (inc.at_min + inc.duration_min) * 60.0);
        let received_in_window = |out: &[Out]| {
            out.iter()
                .filter(|o| {
                    matches!(&o.msg, Message::CallEvent(e) if e.kind == CallEventType::Received)
                        && o.sim_s > window.0
                        && o.sim_s <= window.1
                })
                .count()
        };

        let mut sim = Simulation::new(s.clone(), seed, accel);
        let out = run(&mut sim, 4 * 70); // 70 real s = 70 simulated minutes at 60x
        check_contract("incident-surge", &out);
        let mut calm = s.clone();
        calm.incidents.clear();
        let mut baseline = Simulation::new(calm, seed, accel);
        let base_out = run(&mut baseline, 4 * 70);
        let (with, without) = (received_in_window(&out), received_in_window(&base_out));
        assert!(
            with > 2 * without.max(1),
            "calls in the incident window: {with} with the incident, {without} without"
        );
        assert_eq!(sim.stats().incidents_fired, 2);

        let jammed = out.iter().any(|o| match &o.msg {
            Message::IntersectionState(st)
                if st.intersection == inc.intersection
                    && o.sim_s > window.0
                    && o.sim_s < window.1 =>
            {
                st.approaches.iter().any(|a| a.saturation > 1.0)
            }
            _ => false,
        });
        assert!(
            jammed,
            "{} should exceed saturation 1.0 during the incident",
            inc.intersection
        );

        let on_scene: BTreeSet<&str> = out
            .iter()
            .filter_map(|o| match &o.msg {
                Message::UnitStatus(u)
                    if u.status == UnitState::OnScene
                        && geo::distance_km((u.lat?, u.lon?), pci) < 0.3 =>
                {
                    Some(u.unit.as_str())
                }
                _ => None,
            })
            .collect();
        assert!(
            on_scene.len() >= 4,
            "units on scene at the junction: {on_scene:?}"
        );
        let lead = out.iter().find_map(|o| match &o.msg {
            Message::CallEvent(e)
                if e.kind == CallEventType::Dispatched
                    && e.note
                        .as_deref()
                        .is_some_and(|n| n.contains("unit dikerahkan")) =>
            {
                Some(e.call_id.clone())
            }
            _ => None,
        });
        let lead = lead.expect("the incident's lead call dispatches several units");
        let working: BTreeSet<&str> = out
            .iter()
            .filter_map(|o| match &o.msg {
                Message::UnitStatus(u) if u.call_id.as_deref() == Some(lead.as_str()) => {
                    Some(u.unit.as_str())
                }
                _ => None,
            })
            .collect();
        assert!(working.len() >= 4, "units on the lead call: {working:?}");
    }

    #[test]
    fn nonsense_scenarios_do_not_panic() {
        let mut s = Scenario::builtin("cilegon-weekday").unwrap();
        s.demand_profile = vec![f64::NAN];
        s.start_time = Some("later".into());
        s.intersections[0].approaches.clear();
        s.intersections[1].approaches[0].capacity_vph = 0.0;
        s.intersections[2].approaches[0].demand_vph = f64::INFINITY;
        s.atcs.plans.clear();
        s.atcs.intergreen_s = f64::NAN;
        s.units.truncate(1);
        if let Some(l) = s.calls.line112.as_mut() {
            l.rate_per_hour = f64::NAN;
            l.categories.clear();
            l.operators = 0;
            l.stages.answer_s = [50.0, -3.0];
        }
        if let Some(l) = s.calls.line119.as_mut() {
            l.rate_per_hour = 1e9;
            l.priorities = [0.0; 4];
        }
        s.services[0].events[0].then[0].prob = 7.0;
        s.services[1].kpis[0].noise = f64::NAN;
        s.incidents[0].intersection = "nowhere".into();
        assert!(s.validate().is_err());
        let mut sim = Simulation::new(s, 3, f64::NAN);
        let mut now = t0();
        sim.initial(now);
        for _ in 0..4 {
            now += chrono::Duration::seconds(10);
            sim.step(now, Duration::from_secs(10));
        }
        let mut sim = Simulation::new(Scenario::builtin("cirebon-atcs").unwrap(), 3, 1e9);
        sim.step(now, Duration::from_secs(1));
        assert!(sim.stats().sim_seconds <= 1e5 + 1.0);
    }

    /// Human dispatch: calls ring until a person answers (an answered call
    /// is not abandoned, the others are, after the caller's patience); the
    /// centre takes no step of its own; a unit obeys its assignment, reports
    /// its stages on the call, and goes home on a cancel; a stale retained
    /// order is not obeyed.
    #[test]
    fn human_dispatch_rings_waits_for_people_and_units_obey_their_orders() {
        let mut sim = Simulation::new(scenario("cilegon-weekday", Some("08:00")), 7, 60.0);
        sim.set_human_dispatch(true);
        let mut now = t0();
        let units: Vec<String> = sim
            .initial(now)
            .into_iter()
            .filter_map(|(_, m)| match m {
                Message::UnitStatus(u) => Some(u.unit.clone()),
                _ => None,
            })
            .collect();
        let unit = units[0].clone();
        let mut seen: Vec<Message> = Vec::new();
        let step = |sim: &mut Simulation,
                    now: &mut DateTime<FixedOffset>,
                    n: usize,
                    seen: &mut Vec<Message>| {
            for _ in 0..n {
                *now += chrono::Duration::from_std(STEP).unwrap();
                seen.extend(sim.step(*now, STEP).into_iter().map(|(_, m)| m));
            }
        };
        // The first call rings; a person answers it.
        let mut first = None;
        for _ in 0..400 {
            step(&mut sim, &mut now, 1, &mut seen);
            first = seen.iter().find_map(|m| match m {
                Message::CallEvent(e) if e.kind == CallEventType::Received => Some(e.clone()),
                _ => None,
            });
            if first.is_some() {
                break;
            }
        }
        let first = first.expect("a call rings");
        assert!(
            first.callback.is_some() && first.operator.is_none(),
            "{first:?}"
        );
        let topic = Topic::Call {
            city: "cilegon".into(),
            line: first.line,
        };
        let person = |kind| CallEvent {
            operator: Some("dewi".into()),
            action_id: Some(uuid::Uuid::new_v4()),
            ..CallEvent::new(
                uuid::Uuid::new_v4(),
                first.call_id.clone(),
                now,
                first.line,
                kind,
            )
        };
        sim.incoming(
            &topic,
            &Message::CallEvent(Box::new(person(CallEventType::Answered))),
            now,
        );
        // An order from before this run is not obeyed.
        let order = |action, ts| UnitAssignment {
            assignment_id: uuid::Uuid::new_v4(),
            ts,
            unit: unit.clone(),
            action,
            call_id: first.call_id.clone(),
            line: first.line,
            priority: Some(1),
            category: None,
            destination: first.caller.clone(),
            note: None,
            issued_by: "dewi".into(),
        };
        let at_unit = Topic::Assignment {
            city: "cilegon".into(),
            unit: unit.clone(),
        };
        let stale = order(
            AssignmentAction::Assign,
            now - chrono::Duration::minutes(10),
        );
        assert!(sim
            .incoming(&at_unit, &Message::UnitAssignment(Box::new(stale)), now)
            .is_empty());
        let go = order(AssignmentAction::Assign, now);
        let reply = sim.incoming(&at_unit, &Message::UnitAssignment(Box::new(go)), now);
        assert!(
            matches!(&reply[..], [(_, Message::UnitStatus(u))] if u.status == UnitState::Dispatched && u.call_id.as_deref() == Some(first.call_id.as_str())),
            "{reply:?}"
        );
        // Until the unit is on scene (it stays there at least 5 simulated minutes).
        for _ in 0..300 {
            step(&mut sim, &mut now, 1, &mut seen);
            let there = seen.iter().any(|m| {
                matches!(m, Message::CallEvent(e) if e.call_id == first.call_id && e.kind == CallEventType::OnScene)
            });
            if there {
                break;
            }
        }
        let on_first: Vec<(CallEventType, Option<String>, Option<String>)> = seen
            .iter()
            .filter_map(|m| match m {
                Message::CallEvent(e) if e.call_id == first.call_id => {
                    Some((e.kind, e.unit.clone(), e.operator.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            on_first,
            [
                (CallEventType::Received, None, None),
                (CallEventType::EnRoute, Some(unit.clone()), None),
                (CallEventType::OnScene, Some(unit.clone()), None),
            ],
            "the answered call is never abandoned; the field reports its unit's stages"
        );
        // The centre took no step of its own on any call.
        let kinds: BTreeSet<CallEventType> = seen
            .iter()
            .filter_map(|m| match m {
                Message::CallEvent(e) => Some(e.kind),
                _ => None,
            })
            .collect();
        for k in [
            CallEventType::Answered,
            CallEventType::Classified,
            CallEventType::Dispatched,
            CallEventType::Closed,
        ] {
            assert!(!kinds.contains(&k), "the simulator published {k:?}");
        }
        // Stood down: the unit drives home.
        let stop = order(AssignmentAction::Cancel, now);
        let reply = sim.incoming(&at_unit, &Message::UnitAssignment(Box::new(stop)), now);
        assert!(
            matches!(&reply[..], [(_, Message::UnitStatus(u))] if u.status == UnitState::Returning),
            "{reply:?}"
        );
        // Callers wait up to two real minutes for a person, then hang up.
        step(&mut sim, &mut now, 600, &mut seen);
        let abandoned = seen
            .iter()
            .any(|m| matches!(m, Message::CallEvent(e) if e.kind == CallEventType::Abandoned));
        assert!(abandoned, "unanswered calls are abandoned");
    }

    /// Cost of one step of the default scenario (run with --release --ignored --nocapture).
    #[test]
    #[ignore]
    fn step_cost() {
        for accel in [1.0, 60.0, 1440.0] {
            let mut sim = Simulation::new(scenario("cilegon-weekday", Some("07:00")), 42, accel);
            let mut now = t0();
            sim.initial(now);
            let n = 20_000;
            let started = std::time::Instant::now();
            let mut msgs = 0;
            for _ in 0..n {
                now += chrono::Duration::milliseconds(250);
                msgs += sim.step(now, STEP).len();
            }
            let per = started.elapsed() / n;
            println!(
                "accel {accel}: {per:?} per 250 ms step, {:.1} messages per step",
                msgs as f64 / f64::from(n)
            );
        }
    }
}
