//! The emergency fleet: ambulances, fire engines, police cars and rescue
//! vehicles with home bases. A dispatched unit turns out, drives in a straight
//! line (with a detour factor) to the scene, works there, and drives home,
//! reporting its status at each change and every few real seconds while
//! moving. Units on the way home can take a new call. Now and then a unit
//! goes out of service for maintenance.

use crate::contract::messages::{CallEventType, Message, UnitState, UnitStatus};
use crate::contract::Topic;

use super::agenda::Action;
use super::draw;
use super::geo::{self, LatLon};
use super::scenario::UnitDef;
use super::sim::Ctx;

/// Road distance over straight-line distance in a city street grid.
const DETOUR: f64 = 1.3;
const MIN_TRAVEL_S: f64 = 60.0;
/// Real seconds between position reports of a moving unit.
pub const REPORT_EVERY_S: f64 = 5.0;
/// Maintenance windows per unit per simulated day, and their length in minutes.
const DOWNTIME_PER_DAY: f64 = 0.2;
const DOWNTIME_MIN: [f64; 2] = [45.0, 180.0];
/// Turn-out of a unit already on the road (returning), seconds.
const REROUTE_S: [f64; 2] = [10.0, 30.0];

/// The call a unit is working.
#[derive(Clone, Debug)]
pub struct Job {
    pub key: u64,
    pub call_id: String,
    /// The first unit on a call drives its call events.
    pub primary: bool,
    pub target: LatLon,
    pub on_scene_s: f64,
}

/// What a unit's transition means for its call.
#[derive(Clone, Debug)]
pub struct UnitNote {
    pub key: u64,
    pub kind: CallEventType,
    pub unit: String,
}

#[derive(Clone, Debug)]
pub struct Unit {
    pub id: String,
    pub agency: String,
    pub kind: String,
    pub home: LatLon,
    speed_kmh: f64,
    pub state: UnitState,
    gen: u32,
    from: LatLon,
    to: LatLon,
    leg_start: f64,
    leg_end: f64,
    pub job: Option<Job>,
    next_report_at: f64,
}

impl Unit {
    fn new(def: &UnitDef) -> Unit {
        let default_speed = match def.kind.as_str() {
            "ambulance" => 40.0,
            "police_car" => 45.0,
            "fire_engine" => 32.0,
            _ => 35.0,
        };
        let speed = def
            .speed_kmh
            .filter(|s| s.is_finite() && *s >= 5.0)
            .unwrap_or(default_speed);
        let home = (def.lat, def.lon);
        Unit {
            id: def.id.clone(),
            agency: def.agency.clone(),
            kind: def.kind.clone(),
            home,
            speed_kmh: speed.min(150.0),
            state: UnitState::Available,
            gen: 0,
            from: home,
            to: home,
            leg_start: 0.0,
            leg_end: 0.0,
            job: None,
            next_report_at: 0.0,
        }
    }

    /// Where the unit is at simulated second `t`.
    pub fn position(&self, t: f64) -> LatLon {
        let span = self.leg_end - self.leg_start;
        if span <= 0.0 {
            return self.to;
        }
        geo::lerp(self.from, self.to, (t - self.leg_start) / span)
    }

    /// Free to take a call: at base, or driving home.
    pub fn free(&self) -> bool {
        matches!(self.state, UnitState::Available | UnitState::Returning)
    }

    fn moving(&self) -> bool {
        matches!(self.state, UnitState::EnRoute | UnitState::Returning)
    }

    fn stop_at(&mut self, p: LatLon, t: f64) {
        self.from = p;
        self.to = p;
        self.leg_start = t;
        self.leg_end = t;
    }

    /// Starts a leg to `to`; returns its arrival time.
    fn drive(&mut self, to: LatLon, t: f64) -> f64 {
        let from = self.position(t);
        let km = geo::distance_km(from, to) * DETOUR;
        let secs = (km / self.speed_kmh * 3600.0).max(MIN_TRAVEL_S);
        self.from = from;
        self.to = to;
        self.leg_start = t;
        self.leg_end = t + secs;
        self.leg_end
    }
}

#[derive(Clone, Debug, Default)]
pub struct Fleet {
    pub units: Vec<Unit>,
}

impl Fleet {
    pub fn new(defs: &[UnitDef]) -> Fleet {
        Fleet {
            units: defs.iter().map(Unit::new).collect(),
        }
    }

    pub fn has_agency(&self, agency: &str) -> bool {
        self.units.iter().any(|u| u.agency == agency)
    }

    /// The free unit of `agency` closest to `target` at time `t`, not in `taken`.
    pub fn nearest_free(
        &self,
        agency: &str,
        target: LatLon,
        t: f64,
        taken: &[usize],
    ) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, u) in self.units.iter().enumerate() {
            if u.agency != agency || !u.free() || taken.contains(&i) {
                continue;
            }
            let d = geo::distance_km(u.position(t), target);
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((i, d));
            }
        }
        best.map(|(i, _)| i)
    }

    pub fn any_free(&self) -> bool {
        self.units.iter().any(Unit::free)
    }

    /// The status message of unit `i` now.
    pub fn status(&self, i: usize, ctx: &Ctx) -> (Topic, Message) {
        let u = &self.units[i];
        let (lat, lon) = u.position(ctx.at);
        (
            Topic::Unit {
                city: ctx.city.to_owned(),
                unit: u.id.clone(),
            },
            Message::UnitStatus(Box::new(UnitStatus {
                ts: ctx.now,
                unit: u.id.clone(),
                agency: u.agency.clone(),
                status: u.state,
                lat: Some(draw::round(lat, 6)),
                lon: Some(draw::round(lon, 6)),
                call_id: u.job.as_ref().map(|j| j.call_id.clone()),
                kind: Some(u.kind.clone()),
            })),
        )
    }

    fn report(&mut self, i: usize, ctx: &mut Ctx) {
        let (topic, msg) = self.status(i, ctx);
        ctx.emit(topic, msg);
        self.units[i].next_report_at = ctx.real_t + REPORT_EVERY_S;
    }

    /// Sends unit `i` to a call.
    pub fn assign(&mut self, i: usize, job: Job, mobilize_s: [f64; 2], ctx: &mut Ctx) {
        let turnout = if self.units[i].state == UnitState::Returning {
            REROUTE_S
        } else {
            mobilize_s
        };
        let u = &mut self.units[i];
        let here = u.position(ctx.at);
        u.stop_at(here, ctx.at);
        u.state = UnitState::Dispatched;
        u.job = Some(job);
        u.gen = u.gen.wrapping_add(1);
        let gen = u.gen;
        let due = ctx.at + draw::uniform(ctx.rng, turnout).max(1.0);
        ctx.agenda.at(due, Action::Unit { unit: i, gen });
        self.report(i, ctx);
    }

    /// The unit of id `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.units.iter().position(|u| u.id == id)
    }

    /// Takes unit `i` off its call: it drives home from where it is (a
    /// dispatcher's cancel under human dispatch).
    pub fn stand_down(&mut self, i: usize, ctx: &mut Ctx) {
        let Some(u) = self.units.get_mut(i) else {
            return;
        };
        if !matches!(
            u.state,
            UnitState::Dispatched | UnitState::EnRoute | UnitState::OnScene
        ) {
            return;
        }
        let here = u.position(ctx.at);
        u.stop_at(here, ctx.at);
        u.job = None;
        let home = u.home;
        let back = u.drive(home, ctx.at);
        u.state = UnitState::Returning;
        u.gen = u.gen.wrapping_add(1);
        let gen = u.gen;
        ctx.agenda.at(back, Action::Unit { unit: i, gen });
        self.report(i, ctx);
    }

    /// The unit's next transition. Returns what it means for its call (if
    /// it is the call's primary unit) and whether the unit became free.
    pub fn advance(&mut self, i: usize, gen: u32, ctx: &mut Ctx) -> (Option<UnitNote>, bool) {
        let Some(u) = self.units.get_mut(i) else {
            return (None, false);
        };
        if u.gen != gen {
            return (None, false);
        }
        let at = ctx.at;
        let primary_key = u.job.as_ref().filter(|j| j.primary).map(|j| j.key);
        let (call_event, freed) = match u.state {
            UnitState::Dispatched => {
                let target = u.job.as_ref().map_or(u.home, |j| j.target);
                let arrive = u.drive(target, at);
                u.state = UnitState::EnRoute;
                ctx.agenda.at(arrive, Action::Unit { unit: i, gen });
                (Some(CallEventType::EnRoute), false)
            }
            UnitState::EnRoute => {
                let (target, stay) = u
                    .job
                    .as_ref()
                    .map_or((u.home, 0.0), |j| (j.target, j.on_scene_s));
                u.stop_at(target, at);
                u.state = UnitState::OnScene;
                ctx.agenda
                    .at(at + stay.max(60.0), Action::Unit { unit: i, gen });
                (Some(CallEventType::OnScene), false)
            }
            UnitState::OnScene => {
                let home = u.home;
                let back = u.drive(home, at);
                u.state = UnitState::Returning;
                u.job = None;
                ctx.agenda.at(back, Action::Unit { unit: i, gen });
                (Some(CallEventType::Closed), true)
            }
            UnitState::Returning | UnitState::OutOfService => {
                let home = u.home;
                u.stop_at(home, at);
                u.state = UnitState::Available;
                (None, true)
            }
            UnitState::Available => return (None, false),
        };
        let note = primary_key.zip(call_event).map(|(key, kind)| UnitNote {
            key,
            kind,
            unit: self.units[i].id.clone(),
        });
        self.report(i, ctx);
        (note, freed)
    }

    /// First maintenance window of each unit, drawn at start.
    pub fn schedule_maintenance(
        &self,
        ctx_rng: &mut draw::SimRng,
        agenda: &mut super::agenda::Agenda,
    ) {
        for i in 0..self.units.len() {
            agenda.at(next_downtime(ctx_rng, 0.0), Action::Maintenance { unit: i });
        }
    }

    /// A maintenance window falls due: an idle unit goes out of service; a busy one is asked again later.
    pub fn maintenance(&mut self, i: usize, ctx: &mut Ctx) {
        let Some(u) = self.units.get_mut(i) else {
            return;
        };
        if u.state != UnitState::Available {
            ctx.agenda
                .at(ctx.at + 1800.0, Action::Maintenance { unit: i });
            return;
        }
        u.state = UnitState::OutOfService;
        u.gen = u.gen.wrapping_add(1);
        let back = ctx.at + draw::uniform(ctx.rng, DOWNTIME_MIN) * 60.0;
        ctx.agenda.at(
            back,
            Action::Unit {
                unit: i,
                gen: u.gen,
            },
        );
        ctx.agenda.at(
            next_downtime(ctx.rng, back),
            Action::Maintenance { unit: i },
        );
        self.report(i, ctx);
    }

    /// Position reports of moving units whose report is due.
    pub fn report_moving(&mut self, ctx: &mut Ctx) {
        for i in 0..self.units.len() {
            if self.units[i].moving() && ctx.real_t >= self.units[i].next_report_at {
                self.report(i, ctx);
            }
        }
    }
}

/// Exponential waiting time to the next maintenance window after `after`.
fn next_downtime(rng: &mut draw::SimRng, after: f64) -> f64 {
    let u = draw::uniform(rng, [1e-9, 1.0]);
    after - u.ln() / (DOWNTIME_PER_DAY / 86_400.0)
}
