//! The 112 and 119 call centres. Calls arrive as a Poisson stream (base rate
//! times the hourly profile, plus incident surges), are answered or
//! abandoned, classified, then closed (pranks, information requests, repeat
//! reports of a known incident), transferred (to PSC 119, to another
//! service) or dispatched to the nearest free unit of the right agency. The
//! primary unit's progress drives the call's `en_route`, `on_scene` and
//! `closed` events. Calls that find no free unit wait, best priority first.
//!
//! With human dispatch the call takers are people at the console: a call
//! rings until one answers it (or its caller hangs up), and everything after
//! is theirs, except what the field reports (each unit's `en_route` and
//! `on_scene` on the call it was assigned to).

use std::collections::BTreeMap;

use crate::contract::messages::{
    CallCategory, CallEvent, CallEventType, CallLine, Caller, Message,
};
use crate::contract::Topic;

use super::agenda::Action;
use super::draw;
use super::geo::{self, LatLon};
use super::scenario::{parse_category, LineConfig, StageDurations};
use super::sim::{Ctx, IncidentSim};
use super::units::{Fleet, Job, UnitNote};

/// How long a call waits for a free unit before it is handed to a neighbouring region, seconds.
const MAX_WAIT_S: f64 = 90.0 * 60.0;
/// Spread of callers around a junction, metres (one standard deviation).
const CALLER_SPREAD_M: f64 = 350.0;
const INCIDENT_SPREAD_M: f64 = 60.0;
const DISPATCHERS: u32 = 3;
/// How long a caller waits for a person to answer before hanging up, real
/// seconds whatever the acceleration (human dispatch: people answer in real
/// time). Callers to 112 rarely wait beyond two minutes.
const PATIENCE_S: [f64; 2] = [30.0, 120.0];

/// A caller's mobile number (`08xx xxxx xxxx`), made from the call's key
/// rather than drawn: the random stream, and so every seeded run, stays as
/// it was before calls had numbers.
fn callback_number(key: u64, session: &str) -> String {
    // FNV-1a over the session tag and the key.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in session.bytes().chain(key.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "08{:02} {:04} {:04}",
        11 + h % 88,
        (h >> 16) % 10_000,
        (h >> 32) % 10_000
    )
}

/// One emergency line, sanitised from the scenario.
#[derive(Clone, Debug)]
pub struct LineSim {
    pub line: CallLine,
    pub rate_per_hour: f64,
    categories: Vec<(CallCategory, f64)>,
    priorities: [f64; 4],
    abandon: f64,
    transfer: f64,
    operators: u32,
    stages: StageDurations,
}

impl LineSim {
    pub fn new(line: CallLine, c: &LineConfig) -> LineSim {
        LineSim {
            line,
            rate_per_hour: if c.rate_per_hour.is_finite() {
                c.rate_per_hour.max(0.0)
            } else {
                0.0
            },
            categories: categories(&c.categories),
            priorities: c.priorities,
            abandon: c.abandon_prob,
            transfer: c.transfer_prob,
            operators: c.operators.clamp(1, 99),
            stages: c.stages.clone(),
        }
    }
}

/// Known categories of a weight table, in a stable order (unknown names are skipped).
pub fn categories(m: &BTreeMap<String, f64>) -> Vec<(CallCategory, f64)> {
    m.iter()
        .filter_map(|(k, w)| parse_category(k).map(|c| (c, *w)))
        .collect()
}

fn pick_category(rng: &mut draw::SimRng, table: &[(CallCategory, f64)]) -> Option<CallCategory> {
    draw::weighted(rng, table.iter().map(|(_, w)| *w)).map(|i| table[i].0)
}

/// A place callers ring from: around a junction, weighted by its traffic.
#[derive(Clone, Debug)]
pub struct Hotspot {
    pub pos: LatLon,
    pub weight: f64,
    pub junction: String,
    pub district: Option<String>,
    pub roads: Vec<String>,
}

#[derive(Clone, Debug)]
enum Plan {
    Abandon,
    Close(String),
    Transfer(String),
    Dispatch {
        wants: Vec<(String, u32)>,
        on_scene_s: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Answer,
    Abandon,
    Classify,
    Close,
    Transfer,
    Dispatch,
    /// Waiting for a unit; the scheduled entry gives up after [`MAX_WAIT_S`].
    Waiting,
    /// Driven by the primary unit from here on.
    WithUnits,
}

#[derive(Clone, Debug)]
struct Call {
    id: String,
    line: usize,
    category: CallCategory,
    priority: u8,
    /// The lead call of an incident (handled faster, several units).
    lead: bool,
    classified: bool,
    caller: Caller,
    /// The caller's number, as the switch gives it.
    callback: String,
    target: LatLon,
    operator: String,
    dispatcher: String,
    gen: u32,
    next: Next,
    plan: Plan,
    agency: Option<String>,
    unit: Option<String>,
    note: Option<String>,
}

/// Both call centres and their open calls.
#[derive(Clone, Debug, Default)]
pub struct CallCentre {
    pub lines: Vec<LineSim>,
    hotspots: Vec<Hotspot>,
    city_name: String,
    center: LatLon,
    calls: BTreeMap<u64, Call>,
    waiting: Vec<u64>,
    next_key: u64,
    seq: BTreeMap<CallLine, u64>,
    /// Start time tag (`HHMM`) in call ids, so runs on one day do not reuse ids.
    pub session: String,
    /// People answer and dispatch (the console); the centre only rings.
    pub human: bool,
    /// Simulated seconds per real second, for the callers' patience.
    pub accel: f64,
}

impl CallCentre {
    pub fn new(
        lines: Vec<LineSim>,
        hotspots: Vec<Hotspot>,
        city_name: String,
        center: LatLon,
    ) -> CallCentre {
        CallCentre {
            lines,
            hotspots,
            city_name,
            center,
            session: "0000".into(),
            ..CallCentre::default()
        }
    }

    /// Open calls (for tests and diagnostics).
    pub fn open_calls(&self) -> usize {
        self.calls.len()
    }

    pub fn line_index(&self, line: CallLine) -> Option<usize> {
        self.lines.iter().position(|l| l.line == line)
    }

    fn new_call_id(&mut self, line: CallLine, ctx: &Ctx) -> String {
        let seq = self.seq.entry(line).or_default();
        *seq += 1;
        format!(
            "{}-{}-{}-{:04}",
            line.as_str(),
            ctx.now.format("%Y%m%d"),
            self.session,
            *seq
        )
    }

    /// A caller somewhere near a busy junction, with a street address.
    fn caller_near_hotspot(&self, ctx: &mut Ctx) -> (LatLon, String) {
        let Some(i) = draw::weighted(ctx.rng, self.hotspots.iter().map(|h| h.weight)) else {
            return (self.center, self.city_name.clone());
        };
        let h = &self.hotspots[i];
        let p = geo::offset(
            h.pos,
            draw::normal(ctx.rng) * CALLER_SPREAD_M,
            draw::normal(ctx.rng) * CALLER_SPREAD_M,
        );
        let road = draw::one_of(ctx.rng, &h.roads)
            .cloned()
            .unwrap_or_else(|| h.junction.clone());
        let number = 1 + (draw::uniform(ctx.rng, [0.0, 180.0]) as u32);
        let address = match &h.district {
            Some(d) => format!(
                "{road} No. {number}, dekat {}, Kec. {d}, {}",
                h.junction, self.city_name
            ),
            None => format!(
                "{road} No. {number}, dekat {}, {}",
                h.junction, self.city_name
            ),
        };
        (p, address)
    }

    fn priority_for(&self, line: usize, category: CallCategory, rng: &mut draw::SimRng) -> u8 {
        match category {
            CallCategory::Prank | CallCategory::Other => 4,
            CallCategory::PublicService => 3,
            _ => {
                let w = self.lines[line].priorities;
                let p = draw::weighted(rng, w.into_iter()).map_or(3, |i| i as u8 + 1);
                // A reported fire or disaster is never routine.
                if matches!(category, CallCategory::Fire | CallCategory::Disaster) {
                    p.min(2)
                } else {
                    p
                }
            }
        }
    }

    /// A call arrives on line index `line`; `surge` is the incident that prompted it.
    pub fn arrive(
        &mut self,
        line: usize,
        surge: Option<usize>,
        incidents: &[IncidentSim],
        fleet: &Fleet,
        ctx: &mut Ctx,
    ) {
        let Some(l) = self.lines.get(line) else {
            return;
        };
        let (line_id, abandon, transfer, operators) = (l.line, l.abandon, l.transfer, l.operators);
        let incident = surge.and_then(|i| incidents.get(i));
        let category = match incident {
            Some(inc) => pick_category(ctx.rng, &inc.surge_categories).unwrap_or(inc.kind),
            None => {
                pick_category(ctx.rng, &self.lines[line].categories).unwrap_or(CallCategory::Other)
            }
        };
        let (target, address) = match incident {
            Some(inc) => {
                let p = geo::offset(
                    inc.pos,
                    draw::normal(ctx.rng) * INCIDENT_SPREAD_M,
                    draw::normal(ctx.rng) * INCIDENT_SPREAD_M,
                );
                (p, inc.address.clone())
            }
            None => self.caller_near_hotspot(ctx),
        };
        let priority = self.priority_for(line, category, ctx.rng);
        let plan = if draw::chance(ctx.rng, abandon) {
            Plan::Abandon
        } else {
            match category {
                CallCategory::Prank => {
                    Plan::Close("Panggilan iseng, ditutup setelah diklasifikasi".into())
                }
                CallCategory::Other => {
                    Plan::Close("Permintaan informasi, bukan kedaruratan".into())
                }
                CallCategory::PublicService => {
                    Plan::Transfer("Diteruskan ke layanan publik terkait (PLN/PDAM/OPD)".into())
                }
                _ => match incident {
                    Some(inc) if draw::chance(ctx.rng, inc.duplicate_prob) => {
                        Plan::Close(format!("Laporan ganda: {}", inc.title))
                    }
                    _ => self.response_plan(line_id, category, priority, transfer, fleet, ctx),
                },
            }
        };
        self.open(
            line, category, priority, target, address, plan, operators, ctx, None,
        );
    }

    /// Transfer, or a dispatch to the category's agency (transfer when the city has no such unit).
    fn response_plan(
        &self,
        line: CallLine,
        category: CallCategory,
        priority: u8,
        transfer: f64,
        fleet: &Fleet,
        ctx: &mut Ctx,
    ) -> Plan {
        let line_idx = self.line_index(line).unwrap_or(0);
        if draw::chance(ctx.rng, transfer) {
            return if line == CallLine::L112 && category == CallCategory::Medical {
                Plan::Transfer("Dialihkan ke PSC 119".into())
            } else {
                Plan::Transfer("Dilimpahkan ke instansi wilayah tetangga".into())
            };
        }
        let Some(agency) = agency_for(category, priority) else {
            return Plan::Close("Ditangani melalui telepon".into());
        };
        if !fleet.has_agency(agency) {
            return Plan::Transfer(format!(
                "Diteruskan ke {agency} (tidak ada unit di wilayah ini)"
            ));
        }
        let factor = match category {
            CallCategory::Fire => 2.0,
            CallCategory::Disaster => 2.5,
            CallCategory::TrafficAccident => 1.2,
            CallCategory::Medical => 0.8,
            _ => 1.0,
        };
        let minutes = draw::uniform(ctx.rng, self.lines[line_idx].stages.on_scene_min);
        Plan::Dispatch {
            wants: vec![(agency.to_owned(), 1)],
            on_scene_s: minutes * 60.0 * factor,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        line: usize,
        category: CallCategory,
        priority: u8,
        target: LatLon,
        address: String,
        plan: Plan,
        operators: u32,
        ctx: &mut Ctx,
        quick: Option<[f64; 2]>,
    ) {
        let line_id = self.lines[line].line;
        let key = self.next_key;
        self.next_key += 1;
        let id = self.new_call_id(line_id, ctx);
        let op =
            1 + (draw::uniform(ctx.rng, [0.0, f64::from(operators)]) as u32).min(operators - 1);
        let disp =
            1 + (draw::uniform(ctx.rng, [0.0, f64::from(DISPATCHERS)]) as u32).min(DISPATCHERS - 1);
        let answer_s =
            draw::skewed(ctx.rng, quick.unwrap_or(self.lines[line].stages.answer_s)).max(1.0);
        let (next, due) = match plan {
            // Nobody here answers: the caller waits for a person, then hangs up.
            _ if self.human => (
                Next::Abandon,
                ctx.at + draw::uniform(ctx.rng, PATIENCE_S) * self.accel.max(1.0),
            ),
            // A caller who hangs up does so before the call would have been answered.
            Plan::Abandon => (
                Next::Abandon,
                ctx.at + draw::uniform(ctx.rng, [1.0, answer_s.max(2.0)]),
            ),
            _ => (Next::Answer, ctx.at + answer_s),
        };
        let callback = callback_number(key, &self.session);
        let call = Call {
            id,
            line,
            category,
            priority,
            lead: quick.is_some(),
            classified: false,
            caller: Caller {
                lat: draw::round(target.0, 6),
                lon: draw::round(target.1, 6),
                address: Some(address),
            },
            callback,
            target,
            operator: format!("op-{}-{op:02}", line_id.as_str()),
            dispatcher: format!("disp-{disp:02}"),
            gen: 0,
            next,
            plan,
            agency: None,
            unit: None,
            note: None,
        };
        self.emit(&call, CallEventType::Received, ctx);
        ctx.agenda.at(due, Action::Call { key, gen: 0 });
        self.calls.insert(key, call);
    }

    /// The lead call of an incident: answered fast, priority 1, several units at once.
    pub fn open_incident(&mut self, idx: usize, incidents: &[IncidentSim], ctx: &mut Ctx) {
        let Some(inc) = incidents.get(idx) else {
            return;
        };
        let Some(line) = self
            .line_index(CallLine::L112)
            .or_else(|| self.line_index(CallLine::L119))
        else {
            return;
        };
        let operators = self.lines[line].operators;
        let on_scene_s = (inc.end_s - ctx.at - 300.0).max(600.0);
        let plan = Plan::Dispatch {
            wants: inc.dispatch.clone(),
            on_scene_s,
        };
        self.open(
            line,
            inc.kind,
            1,
            inc.pos,
            inc.address.clone(),
            plan,
            operators,
            ctx,
            Some([3.0, 10.0]),
        );
        if let Some(call) = self.calls.get_mut(&(self.next_key - 1)) {
            call.note = Some(inc.title.clone());
        }
    }

    /// Handles a call's next due stage.
    pub fn advance(&mut self, key: u64, gen: u32, fleet: &mut Fleet, ctx: &mut Ctx) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.gen != gen {
            return;
        }
        let stages = self.lines[call.line].stages.clone();
        let lead = call.lead;
        match call.next {
            Next::Abandon => {
                self.finish(
                    key,
                    CallEventType::Abandoned,
                    Some("Penelepon menutup sebelum dijawab".into()),
                    ctx,
                );
            }
            Next::Answer => {
                self.emit_key(key, CallEventType::Answered, ctx);
                let delay = if lead {
                    draw::uniform(ctx.rng, [20.0, 45.0])
                } else {
                    draw::skewed(ctx.rng, stages.classify_s)
                };
                self.schedule(key, Next::Classify, ctx.at + delay.max(1.0), ctx);
            }
            Next::Classify => {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.classified = true;
                }
                self.emit_key(key, CallEventType::Classified, ctx);
                let plan = self.calls.get(&key).map(|c| c.plan.clone());
                let (next, range) = match plan {
                    Some(Plan::Dispatch { .. }) if lead => (Next::Dispatch, [10.0, 30.0]),
                    Some(Plan::Dispatch { .. }) => (Next::Dispatch, stages.dispatch_s),
                    Some(Plan::Transfer(_)) => (Next::Transfer, stages.close_s),
                    _ => (Next::Close, stages.close_s),
                };
                let due = ctx.at + draw::skewed(ctx.rng, range).max(1.0);
                self.schedule(key, next, due, ctx);
            }
            Next::Close | Next::Transfer => {
                let (kind, note) = match &call.plan {
                    Plan::Close(n) => (CallEventType::Closed, n.clone()),
                    Plan::Transfer(n) => (CallEventType::Transferred, n.clone()),
                    _ => (CallEventType::Closed, "Selesai".into()),
                };
                self.finish(key, kind, Some(note), ctx);
            }
            Next::Dispatch => {
                if !self.try_dispatch(key, fleet, &stages, ctx) {
                    self.waiting.push(key);
                    self.schedule(key, Next::Waiting, ctx.at + MAX_WAIT_S, ctx);
                }
            }
            Next::Waiting => {
                self.waiting.retain(|k| *k != key);
                self.finish(
                    key,
                    CallEventType::Transferred,
                    Some("Tidak ada unit tersedia; dilimpahkan ke wilayah tetangga".into()),
                    ctx,
                );
            }
            Next::WithUnits => {}
        }
    }

    fn schedule(&mut self, key: u64, next: Next, due: f64, ctx: &mut Ctx) {
        if let Some(c) = self.calls.get_mut(&key) {
            c.gen = c.gen.wrapping_add(1);
            c.next = next;
            ctx.agenda.at(due, Action::Call { key, gen: c.gen });
        }
    }

    /// Sends the nearest free units the call wants; false when none is free.
    fn try_dispatch(
        &mut self,
        key: u64,
        fleet: &mut Fleet,
        stages: &StageDurations,
        ctx: &mut Ctx,
    ) -> bool {
        let Some(call) = self.calls.get(&key) else {
            return true;
        };
        let Plan::Dispatch { wants, on_scene_s } = &call.plan else {
            return true;
        };
        let mut chosen: Vec<usize> = Vec::new();
        for (agency, count) in wants {
            for _ in 0..*count {
                match fleet.nearest_free(agency, call.target, ctx.at, &chosen) {
                    Some(u) => chosen.push(u),
                    None => break,
                }
            }
        }
        let Some(&first) = chosen.first() else {
            return false;
        };
        let (on_scene_s, target, call_id) = (*on_scene_s, call.target, call.id.clone());
        let ids: Vec<&str> = chosen.iter().map(|&u| fleet.units[u].id.as_str()).collect();
        let note = (chosen.len() > 1)
            .then(|| format!("{} unit dikerahkan: {}", chosen.len(), ids.join(", ")));
        let agency = fleet.units[first].agency.clone();
        let unit = fleet.units[first].id.clone();
        if let Some(c) = self.calls.get_mut(&key) {
            c.agency = Some(agency);
            c.unit = Some(unit);
            c.gen = c.gen.wrapping_add(1);
            c.next = Next::WithUnits;
            if note.is_some() {
                c.note = note;
            }
        }
        self.emit_key(key, CallEventType::Dispatched, ctx);
        for (n, &u) in chosen.iter().enumerate() {
            let job = Job {
                key,
                call_id: call_id.clone(),
                primary: n == 0,
                target,
                on_scene_s,
            };
            fleet.assign(u, job, stages.mobilize_s, ctx);
        }
        true
    }

    /// Gives waiting calls (best priority, then oldest) to units that became free.
    pub fn retry_waiting(&mut self, fleet: &mut Fleet, ctx: &mut Ctx) {
        if self.waiting.is_empty() || !fleet.any_free() {
            return;
        }
        let mut order = std::mem::take(&mut self.waiting);
        order.sort_by_key(|k| (self.calls.get(k).map_or(9, |c| c.priority), *k));
        for key in order {
            let stages = match self.calls.get(&key) {
                Some(c) => self.lines[c.line].stages.clone(),
                None => continue,
            };
            if !self.try_dispatch(key, fleet, &stages, ctx) {
                self.waiting.push(key);
            }
        }
    }

    /// The primary unit of a call moved on: report it on the call. With
    /// human dispatch every assigned unit reports its own stages, and
    /// leaving the scene closes nothing: the dispatcher closes the call.
    pub fn on_unit(&mut self, note: UnitNote, ctx: &mut Ctx) {
        let Some(call) = self.calls.get_mut(&note.key) else {
            return;
        };
        call.unit = Some(note.unit);
        match note.kind {
            CallEventType::Closed if self.human => {}
            CallEventType::Closed => self.finish(
                note.key,
                CallEventType::Closed,
                Some("Selesai ditangani di lokasi".into()),
                ctx,
            ),
            kind => self.emit_key(note.key, kind, ctx),
        }
    }

    /// The call of `call_id` still open here.
    pub fn key_of(&self, call_id: &str) -> Option<u64> {
        self.calls
            .iter()
            .find(|(_, c)| c.id == call_id)
            .map(|(k, _)| *k)
    }

    /// Where the call is, and how long its units take to turn out.
    pub fn scene_of(&self, key: u64) -> Option<(LatLon, [f64; 2])> {
        let c = self.calls.get(&key)?;
        Some((c.target, self.lines[c.line].stages.mobilize_s))
    }

    /// A person acted on a call (human dispatch; events without an
    /// `action_id` are the centre's own): an answer keeps the caller on the
    /// line, a classification is remembered for the field's reports, a close
    /// or a hand-over ends the call here.
    pub fn heard(&mut self, ev: &CallEvent) {
        if !self.human || ev.action_id.is_none() {
            return;
        }
        let Some(key) = self.key_of(&ev.call_id) else {
            return;
        };
        match ev.kind {
            CallEventType::Answered => {
                if let Some(c) = self.calls.get_mut(&key) {
                    if c.next == Next::Abandon {
                        // The scheduled hang-up no longer matches the call's generation.
                        c.gen = c.gen.wrapping_add(1);
                        c.next = Next::WithUnits;
                    }
                }
            }
            CallEventType::Classified => {
                if let Some(c) = self.calls.get_mut(&key) {
                    c.classified = true;
                    c.category = ev.category.unwrap_or(c.category);
                    c.priority = ev.priority.unwrap_or(c.priority);
                }
            }
            CallEventType::Closed | CallEventType::Transferred => {
                self.calls.remove(&key);
            }
            _ => {}
        }
    }

    fn finish(&mut self, key: u64, kind: CallEventType, note: Option<String>, ctx: &mut Ctx) {
        if let Some(mut call) = self.calls.remove(&key) {
            if note.is_some() {
                call.note = note;
            }
            self.emit(&call, kind, ctx);
        }
    }

    fn emit_key(&self, key: u64, kind: CallEventType, ctx: &mut Ctx) {
        if let Some(call) = self.calls.get(&key) {
            self.emit(call, kind, ctx);
        }
    }

    fn emit(&self, call: &Call, kind: CallEventType, ctx: &mut Ctx) {
        use CallEventType as T;
        let line = self.lines[call.line].line;
        let with_unit = matches!(kind, T::Dispatched | T::EnRoute | T::OnScene);
        let dispatched = with_unit || (kind == T::Closed && call.agency.is_some());
        let note = match kind {
            T::Classified | T::Dispatched | T::Closed | T::Transferred | T::Abandoned => {
                call.note.clone()
            }
            _ => None,
        };
        let event = CallEvent {
            caller: (kind == T::Received).then(|| call.caller.clone()),
            callback: (kind == T::Received).then(|| call.callback.clone()),
            category: call.classified.then_some(call.category),
            priority: call.classified.then_some(call.priority),
            agency: if dispatched {
                call.agency.clone()
            } else {
                None
            },
            unit: if with_unit { call.unit.clone() } else { None },
            // With human dispatch nobody here handles the call: the switch
            // rings it and the field reports its stages.
            operator: (!self.human).then(|| {
                if dispatched {
                    call.dispatcher.clone()
                } else {
                    call.operator.clone()
                }
            }),
            note,
            ..CallEvent::new(draw::uuid(ctx.rng), call.id.clone(), ctx.now, line, kind)
        };
        ctx.emit(
            Topic::Call {
                city: ctx.city.to_owned(),
                line,
            },
            Message::CallEvent(Box::new(event)),
        );
    }
}

pub use crate::domain::agency_for;
