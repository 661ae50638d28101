//! ATCS signal controllers. Each junction cycles one phase per approach; its
//! traffic (demand from the hourly profile with slow noise, capacity from the
//! green split, residual queues when demand exceeds capacity) follows
//! simulated time, while the signal itself runs on the real clock so that the
//! phase shown on the wall is watchable even in a 1440x drill. Adaptive mode
//! gives the most saturated approach extra green at the start of each cycle;
//! operators can change mode or plan and extend a green.

use crate::contract::messages::{
    ApproachInfo, ApproachState, Command, CommandAction, ControllerMode, IntersectionInfo,
    IntersectionState, PhaseLabel, Ts,
};

use super::draw::{self, SimRng};
use super::scenario::{parse_hhmm, AtcsConfig, IntersectionDef};

/// Metres of queue per queued vehicle in one lane (car length plus gap).
const METRES_PER_VEHICLE: f64 = 7.0;
/// Stationary deviation and relaxation time of the demand noise (log scale).
const DEMAND_NOISE: f64 = 0.08;
const DEMAND_NOISE_TAU_S: f64 = 900.0;
/// Capacity of an unsignalised junction relative to its signalised capacity.
const FLASHING_CAPACITY: f64 = 0.55;
const OFF_CAPACITY: f64 = 0.45;
/// Seconds of extra green per unit of saturation above the adaptive threshold.
const ADAPTIVE_GAIN_S: f64 = 150.0;
const ADAPTIVE_MAX_EXTRA_S: f64 = 60.0;
/// Contract limits on what a state message may carry.
const MAX_GREEN_S: f64 = 300.0;
const MAX_CYCLE_S: f64 = 600.0;
const MAX_APPROACHES: usize = 16;

/// A signal plan in force from `from_s` (seconds after midnight).
#[derive(Clone, Debug)]
struct Plan {
    id: String,
    from_s: f64,
    cycle_s: f64,
}

/// City-wide controller settings, sanitised from the scenario.
#[derive(Clone, Debug)]
pub struct AtcsParams {
    plans: Vec<Plan>,
    pub default_mode: ControllerMode,
    intergreen_s: f64,
    min_green_s: f64,
    max_cycle_s: f64,
    threshold: f64,
    fault_rate_per_s: f64,
    fault_s: [f64; 2],
}

impl AtcsParams {
    pub fn new(c: &AtcsConfig) -> AtcsParams {
        let mut plans: Vec<Plan> = c
            .plans
            .iter()
            .filter_map(|p| {
                let from_s = parse_hhmm(&p.from)?;
                let ok = !p.id.trim().is_empty() && p.id.len() <= 64 && p.cycle_s.is_finite();
                ok.then(|| Plan {
                    id: p.id.clone(),
                    from_s,
                    cycle_s: p.cycle_s.clamp(20.0, 300.0),
                })
            })
            .collect();
        if plans.is_empty() {
            plans.push(Plan {
                id: "tetap".into(),
                from_s: 0.0,
                cycle_s: 120.0,
            });
        }
        plans.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
        let finite_or = |x: f64, d: f64| if x.is_finite() { x } else { d };
        AtcsParams {
            plans,
            default_mode: c.default_mode,
            intergreen_s: finite_or(c.intergreen_s, 5.0).clamp(0.0, 30.0),
            min_green_s: finite_or(c.min_green_s, 8.0).clamp(1.0, 120.0),
            max_cycle_s: finite_or(c.max_cycle_s, 180.0).clamp(20.0, 480.0),
            threshold: finite_or(c.adaptive_threshold, 0.85).clamp(0.1, 2.0),
            fault_rate_per_s: finite_or(c.detector_faults_per_day, 0.0).max(0.0) / 86_400.0,
            fault_s: [c.fault_minutes[0] * 60.0, c.fault_minutes[1] * 60.0],
        }
    }

    /// The scheduled plan at time of day `tod` (the last one started; wraps past midnight).
    fn plan_at(&self, tod: f64) -> usize {
        self.plans
            .iter()
            .rposition(|p| p.from_s <= tod)
            .unwrap_or(self.plans.len() - 1)
    }

    fn plan_ids(&self) -> String {
        let mut ids: Vec<&str> = self.plans.iter().map(|p| p.id.as_str()).collect();
        ids.dedup();
        ids.join(", ")
    }
}

#[derive(Clone, Debug)]
struct Approach {
    id: String,
    name: String,
    base_vph: f64,
    capacity_vph: f64,
    lanes: f64,
    /// Log-scale demand noise (an Ornstein-Uhlenbeck state).
    noise: f64,
    demand_vph: f64,
    capacity_eff_vph: f64,
    queue_veh: f64,
    /// Simulated second until which the detector is faulty.
    fault_until: f64,
}

impl Approach {
    fn max_queue_veh(&self) -> f64 {
        10_000.0 * self.lanes / METRES_PER_VEHICLE
    }
}

/// One junction's controller and the traffic around it.
#[derive(Clone, Debug)]
pub struct Controller {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub district: Option<String>,
    approaches: Vec<Approach>,
    mode: ControllerMode,
    plan: usize,
    plan_override: Option<usize>,
    /// Green per approach this cycle (plan split plus adaptive extra).
    greens: Vec<f64>,
    /// Operator extensions, consumed when the approach's phase ends.
    ext: Vec<f64>,
    /// Whether the extension belongs to the phase now running.
    armed: Vec<bool>,
    phase: usize,
    phase_elapsed: f64,
    /// Green share of one approach under the plan's equal split.
    nominal_share: f64,
    /// Capacity divisor from incidents at this junction (1 = none).
    congestion: f64,
    profile: f64,
    /// Real second at which the next state message is due.
    pub next_state_at: f64,
    /// Loudspeaker announcements played.
    announcements: u64,
    /// An approach held green for an emergency vehicle (pre-emption).
    priority: Option<usize>,
}

fn signalised(mode: ControllerMode) -> bool {
    matches!(
        mode,
        ControllerMode::Adaptive | ControllerMode::Fixed | ControllerMode::Manual
    )
}

fn mode_name(mode: ControllerMode) -> &'static str {
    match mode {
        ControllerMode::Adaptive => "adaptive",
        ControllerMode::Fixed => "fixed",
        ControllerMode::Manual => "manual",
        ControllerMode::Flashing => "flashing",
        ControllerMode::Off => "off",
    }
}

impl Controller {
    /// A controller for `def`; `None` when the junction has no approaches to signal.
    pub fn new(
        def: &IntersectionDef,
        params: &AtcsParams,
        next_state_at: f64,
    ) -> Option<Controller> {
        let approaches: Vec<Approach> = def
            .approaches
            .iter()
            .take(MAX_APPROACHES)
            .map(|a| Approach {
                id: a.id.clone(),
                name: a.name.clone(),
                base_vph: if a.demand_vph.is_finite() {
                    a.demand_vph.max(0.0)
                } else {
                    0.0
                },
                capacity_vph: if a.capacity_vph.is_finite() {
                    a.capacity_vph.max(50.0)
                } else {
                    1000.0
                },
                lanes: f64::from(a.lanes.clamp(1, 8)),
                noise: 0.0,
                demand_vph: 0.0,
                capacity_eff_vph: 1.0,
                queue_veh: 0.0,
                fault_until: f64::NEG_INFINITY,
            })
            .collect();
        if approaches.is_empty() {
            return None;
        }
        let n = approaches.len();
        Some(Controller {
            id: def.id.clone(),
            name: def.name.clone(),
            lat: def.lat,
            lon: def.lon,
            district: def.district.clone(),
            approaches,
            mode: def.mode.unwrap_or(params.default_mode),
            plan: 0,
            plan_override: None,
            greens: vec![params.min_green_s; n],
            ext: vec![0.0; n],
            armed: vec![false; n],
            phase: 0,
            phase_elapsed: 0.0,
            nominal_share: 1.0 / n as f64,
            congestion: 1.0,
            profile: 1.0,
            next_state_at,
            announcements: 0,
            priority: None,
        })
    }

    /// Sets traffic to its noiseless expectation and starts a cycle: the state before the first step.
    pub fn prime(&mut self, params: &AtcsParams, profile: f64, tod: f64) {
        self.profile = profile;
        for a in &mut self.approaches {
            a.demand_vph = a.base_vph * profile;
        }
        self.start_cycle(params, tod);
        let cycle = self.cycle_s(params);
        for i in 0..self.approaches.len() {
            self.approaches[i].capacity_eff_vph = self.effective_capacity(i, cycle);
        }
    }

    pub fn info(&self, now: Ts) -> IntersectionInfo {
        IntersectionInfo {
            intersection: self.id.clone(),
            name: self.name.clone(),
            lat: self.lat,
            lon: self.lon,
            approaches: self
                .approaches
                .iter()
                .map(|a| ApproachInfo {
                    id: a.id.clone(),
                    name: a.name.clone(),
                })
                .collect(),
            district: self.district.clone(),
            ts: Some(now),
        }
    }

    pub fn mode(&self) -> ControllerMode {
        self.mode
    }

    pub fn set_congestion(&mut self, c: f64) {
        self.congestion = if c.is_finite() { c.max(1.0) } else { 1.0 };
    }

    /// The highest true degree of saturation over the approaches.
    pub fn max_saturation(&self) -> f64 {
        self.approaches
            .iter()
            .map(|a| a.demand_vph / a.capacity_eff_vph.max(1.0))
            .fold(0.0, f64::max)
    }

    /// Total base demand, used to weigh where callers are.
    pub fn base_demand(&self) -> f64 {
        self.approaches.iter().map(|a| a.base_vph).sum()
    }

    /// Road names of the approaches, without the `(utara)` direction suffixes.
    pub fn road_names(&self) -> Vec<String> {
        let mut roads: Vec<String> = self
            .approaches
            .iter()
            .map(|a| match a.name.find(" (") {
                Some(i) => a.name[..i].to_owned(),
                None => a.name.clone(),
            })
            .collect();
        roads.dedup();
        roads
    }

    fn phase_duration(&self, i: usize, params: &AtcsParams) -> f64 {
        self.greens[i] + self.ext[i] + params.intergreen_s
    }

    /// The running cycle length: the split plus extensions when signalised, the plan's otherwise.
    fn cycle_s(&self, params: &AtcsParams) -> f64 {
        if signalised(self.mode) {
            (0..self.approaches.len())
                .map(|i| self.phase_duration(i, params))
                .sum()
        } else {
            params.plans[self.plan].cycle_s
        }
    }

    /// Capacity of approach `i` given the current split, mode and incident congestion.
    fn effective_capacity(&self, i: usize, cycle: f64) -> f64 {
        let a = &self.approaches[i];
        let factor = match self.mode {
            ControllerMode::Flashing => FLASHING_CAPACITY,
            ControllerMode::Off => OFF_CAPACITY,
            _ => {
                let share = (self.greens[i] + self.ext[i]) / cycle.max(1.0);
                share / self.nominal_share.max(1e-6)
            }
        };
        (a.capacity_vph * factor / self.congestion).max(1.0)
    }

    /// Chooses the plan and the green split for a new cycle.
    fn start_cycle(&mut self, params: &AtcsParams, tod: f64) {
        if self.mode != ControllerMode::Manual {
            self.plan = self.plan_override.unwrap_or_else(|| params.plan_at(tod));
        }
        let n = self.approaches.len() as f64;
        let ig = params.intergreen_s;
        let base = ((params.plans[self.plan].cycle_s - n * ig) / n).max(params.min_green_s);
        self.greens.iter_mut().for_each(|g| *g = base);
        self.nominal_share = base / (n * (base + ig));
        if self.mode == ControllerMode::Adaptive {
            // Under congestion the cycle grows (within the adaptive limit) and the
            // extra green goes to the approaches above the threshold, in
            // proportion to their excess: most of it to the most saturated one.
            let excess: Vec<f64> = self
                .approaches
                .iter()
                .map(|a| {
                    (a.demand_vph * self.congestion / a.capacity_vph - params.threshold).max(0.0)
                })
                .collect();
            let total: f64 = excess.iter().sum();
            if total > 0.0 {
                let room = (params.max_cycle_s - n * (base + ig)).max(0.0);
                let extra = (total * ADAPTIVE_GAIN_S)
                    .min(ADAPTIVE_MAX_EXTRA_S)
                    .min(room);
                for (g, e) in self.greens.iter_mut().zip(&excess) {
                    *g += extra * e / total;
                }
            }
        }
        for g in &mut self.greens {
            *g = g.min(MAX_GREEN_S - 60.0);
        }
    }

    /// Advances the traffic by `dt_s` simulated seconds ending at `sim_t`;
    /// returns how many detector faults began.
    pub fn advance_traffic(
        &mut self,
        params: &AtcsParams,
        profile: f64,
        dt_s: f64,
        sim_t: f64,
        rng: &mut SimRng,
    ) -> u64 {
        self.profile = profile;
        let cycle = self.cycle_s(params);
        let fault_p = 1.0 - (-params.fault_rate_per_s * dt_s.max(0.0)).exp();
        let mut faults = 0;
        for i in 0..self.approaches.len() {
            let cap = self.effective_capacity(i, cycle);
            let a = &mut self.approaches[i];
            a.noise = draw::ou_step(rng, a.noise, DEMAND_NOISE, DEMAND_NOISE_TAU_S, dt_s);
            a.demand_vph = a.base_vph * profile * a.noise.exp();
            a.capacity_eff_vph = cap;
            a.queue_veh =
                (a.queue_veh + (a.demand_vph - cap) * dt_s / 3600.0).clamp(0.0, a.max_queue_veh());
            if a.fault_until <= sim_t && draw::chance(rng, fault_p) {
                a.fault_until = sim_t + draw::uniform(rng, params.fault_s);
                faults += 1;
            }
        }
        faults
    }

    /// Runs the signal for `dt_s` real seconds; new cycles take the plan of time of day `tod`.
    pub fn advance_signal(&mut self, params: &AtcsParams, dt_s: f64, tod: f64) {
        if !signalised(self.mode) {
            self.phase = 0;
            self.phase_elapsed = 0.0;
            return;
        }
        let n = self.approaches.len();
        self.phase_elapsed += dt_s.max(0.0);
        // Pre-emption: the held approach's green runs on until released
        // (its clock capped so that the state stays within the contract).
        if let Some(i) = self.priority {
            self.phase = i;
            self.phase_elapsed = self.phase_elapsed.min(MAX_CYCLE_S - 1.0);
            return;
        }
        // Bounded: a step longer than 64 phases (a paused process) restarts the phase.
        for _ in 0..64 {
            let duration = self.phase_duration(self.phase, params);
            if self.phase_elapsed < duration {
                return;
            }
            self.phase_elapsed -= duration;
            let ended = self.phase;
            if self.armed[ended] {
                self.ext[ended] = 0.0;
                self.armed[ended] = false;
            }
            self.phase = (ended + 1) % n;
            if self.phase == 0 {
                self.start_cycle(params, tod);
            }
            if self.ext[self.phase] > 0.0 {
                self.armed[self.phase] = true;
            }
        }
        self.phase_elapsed = 0.0;
    }

    /// Vehicles waiting at approach `i` because of the signal itself (red time), beyond any residual queue.
    fn cyclic_queue(&self, i: usize, params: &AtcsParams, cycle: f64) -> f64 {
        if !signalised(self.mode) {
            return 0.0;
        }
        let a = &self.approaches[i];
        let d = a.demand_vph / 3600.0;
        let g = self.greens[i] + self.ext[i];
        let start_i: f64 = (0..i).map(|k| self.phase_duration(k, params)).sum();
        let pos: f64 = (0..self.phase)
            .map(|k| self.phase_duration(k, params))
            .sum::<f64>()
            + self.phase_elapsed;
        let since_start = (pos - start_i).rem_euclid(cycle.max(1.0));
        if since_start < g {
            let discharge = a.capacity_eff_vph / 3600.0 * cycle / g.max(1.0);
            (d * (cycle - g) - (discharge - d).max(0.0) * since_start).max(0.0)
        } else {
            d * (since_start - g)
        }
    }

    /// The state message: measured figures with detector noise, or estimates where a detector is faulty.
    pub fn state(
        &self,
        params: &AtcsParams,
        now: Ts,
        sim_t: f64,
        rng: &mut SimRng,
    ) -> IntersectionState {
        let cycle = self.cycle_s(params);
        let on = signalised(self.mode);
        let approaches = self
            .approaches
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let faulty = a.fault_until > sim_t;
                let cap = a.capacity_eff_vph.max(1.0);
                let to_m = METRES_PER_VEHICLE / a.lanes;
                let (flow, queue_m, sat) = if faulty {
                    // The controller falls back to its historical profile for this arm.
                    let est = a.base_vph * self.profile;
                    (
                        est.min(cap),
                        (a.queue_veh * to_m / 10.0).round() * 10.0,
                        est / cap,
                    )
                } else {
                    let true_flow = if a.queue_veh > 0.5 {
                        cap
                    } else {
                        a.demand_vph.min(cap)
                    };
                    let flow = true_flow * (1.0 + 0.03 * draw::normal(rng));
                    let q = (a.queue_veh + self.cyclic_queue(i, params, cycle)) * to_m;
                    (
                        flow,
                        q * (1.0 + 0.05 * draw::normal(rng)),
                        a.demand_vph / cap,
                    )
                };
                ApproachState {
                    id: a.id.clone(),
                    green_s: if on {
                        draw::round(self.greens[i] + self.ext[i], 1).min(MAX_GREEN_S)
                    } else {
                        0.0
                    },
                    flow_vph: flow.clamp(0.0, 20_000.0).round(),
                    queue_m: queue_m.clamp(0.0, 10_000.0).round(),
                    saturation: draw::round(sat.clamp(0.0, 3.0), 2),
                    detector_ok: !faulty,
                }
            })
            .collect();
        IntersectionState {
            ts: now,
            intersection: self.id.clone(),
            mode: self.mode,
            plan: params.plans[self.plan].id.clone(),
            // As real controllers report it: no cycle and no phase (0) while
            // flashing or dark.
            cycle_s: if on {
                draw::round(cycle, 1).clamp(1.0, MAX_CYCLE_S)
            } else {
                0.0
            },
            phase: PhaseLabel::number(if on {
                (self.phase as u32 + 1).min(32)
            } else {
                0
            }),
            phase_elapsed_s: if on {
                draw::round(self.phase_elapsed, 1).clamp(0.0, MAX_CYCLE_S)
            } else {
                0.0
            },
            approaches,
        }
    }

    /// Obeys an operator command, or says why not.
    pub fn command(&mut self, params: &AtcsParams, cmd: &Command, tod: f64) -> Result<(), String> {
        match cmd.action {
            CommandAction::ExtendGreen => self.extend_green(params, cmd),
            CommandAction::SetPlan => {
                let Some(plan) = cmd.plan.as_deref() else {
                    return Err("set_plan needs a plan".into());
                };
                // `auto`, or the revert of an operator's plan: back to the
                // time-of-day schedule.
                if plan == "auto" || cmd.reverts.is_some() {
                    self.plan_override = None;
                    return Ok(());
                }
                match params.plans.iter().position(|p| p.id == plan) {
                    Some(i) => {
                        // Shown at once; its cycle starts at the next cycle boundary.
                        self.plan_override = Some(i);
                        self.plan = i;
                        Ok(())
                    }
                    None => Err(format!(
                        "unknown plan {plan:?} (plans: {}, or auto)",
                        params.plan_ids()
                    )),
                }
            }
            CommandAction::SetMode => {
                let Some(mode) = cmd.mode else {
                    return Err("set_mode needs a mode".into());
                };
                let was_on = signalised(self.mode);
                self.mode = mode;
                if signalised(mode) && !was_on {
                    self.phase = 0;
                    self.phase_elapsed = 0.0;
                    self.start_cycle(params, tod);
                }
                Ok(())
            }
            CommandAction::Announce => {
                let Some(message) = cmd.message.as_deref() else {
                    return Err("announce needs a message".into());
                };
                if let Some(a) = cmd.approach.as_deref() {
                    if !self.approaches.iter().any(|x| x.id == a) {
                        return Err(format!("no loudspeaker on approach {a:?} at {}", self.id));
                    }
                }
                // The loudspeaker is heard at the junction, not on the bus.
                self.announcements += 1;
                tracing::info!(intersection = %self.id, approach = ?cmd.approach, %message, "simulated loudspeaker announcement");
                Ok(())
            }
            CommandAction::Priority => self.priority(cmd),
        }
    }

    fn priority(&mut self, cmd: &Command) -> Result<(), String> {
        if cmd.reverts.is_some() {
            // Released: the cycle goes on from the held phase.
            self.priority = None;
            return Ok(());
        }
        let Some(approach) = cmd.approach.as_deref() else {
            return Err("priority needs an approach".into());
        };
        let Some(i) = self.approaches.iter().position(|a| a.id == approach) else {
            return Err(format!("unknown approach {approach:?} at {}", self.id));
        };
        if !signalised(self.mode) {
            return Err(format!(
                "controller is in {} mode: there is no green to hold",
                mode_name(self.mode)
            ));
        }
        if self.priority.is_some_and(|p| p != i) {
            return Err("another approach is already held for an emergency vehicle".into());
        }
        if self.phase != i {
            self.phase = i;
            self.phase_elapsed = 0.0;
        }
        self.priority = Some(i);
        tracing::info!(intersection = %self.id, %approach, unit = ?cmd.unit, "simulated controller holds green for an emergency vehicle");
        Ok(())
    }

    /// Announcements played at this junction's loudspeakers.
    pub fn announcements(&self) -> u64 {
        self.announcements
    }

    fn extend_green(&mut self, params: &AtcsParams, cmd: &Command) -> Result<(), String> {
        let Some(approach) = cmd.approach.as_deref() else {
            return Err("extend_green needs an approach".into());
        };
        let Some(i) = self.approaches.iter().position(|a| a.id == approach) else {
            let known: Vec<&str> = self.approaches.iter().map(|a| a.id.as_str()).collect();
            return Err(format!(
                "unknown approach {approach:?} at {} (approaches: {})",
                self.id,
                known.join(", ")
            ));
        };
        let seconds = cmd.seconds.unwrap_or(f64::NAN);
        if !(seconds.is_finite() && (1.0..=120.0).contains(&seconds)) {
            return Err(format!("seconds must be within 1..=120, got {seconds}"));
        }
        if !signalised(self.mode) {
            return Err(format!(
                "controller is in {} mode: there is no green to extend",
                mode_name(self.mode)
            ));
        }
        let room =
            (MAX_GREEN_S - self.greens[i] - self.ext[i]).min(MAX_CYCLE_S - self.cycle_s(params));
        if room < 1.0 {
            return Err("the green or the cycle is already at its limit".into());
        }
        self.ext[i] += seconds.min(room);
        if self.phase == i {
            self.armed[i] = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensors::scenario::Scenario;

    fn setup() -> (AtcsParams, Controller) {
        let s = Scenario::builtin("cirebon-atcs").unwrap();
        let params = AtcsParams::new(&s.atcs);
        let mut c = Controller::new(&s.intersections[0], &params, 0.0).unwrap();
        c.prime(&params, 0.3, 3.0 * 3600.0);
        (params, c)
    }

    fn cmd(action: CommandAction) -> Command {
        Command::new(
            uuid::Uuid::nil(),
            "2026-11-22T08:00:00+07:00".parse().unwrap(),
            action,
            "test".into(),
        )
    }

    #[test]
    fn phases_cycle_through_every_approach() {
        let (params, mut c) = setup();
        let n = c.approaches.len();
        let mut seen = vec![false; n];
        for _ in 0..2000 {
            c.advance_signal(&params, 0.25, 3.0 * 3600.0);
            seen[c.phase] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn extension_lasts_one_phase_of_its_approach() {
        let (params, mut c) = setup();
        let base = c.greens[1];
        let mut e = cmd(CommandAction::ExtendGreen);
        e.approach = Some(c.approaches[1].id.clone());
        e.seconds = Some(20.0);
        c.command(&params, &e, 0.0).unwrap();
        assert_eq!(c.greens[1] + c.ext[1], base + 20.0);
        // Run until phase 2 (index 1) has come and gone.
        let mut was_in = false;
        for _ in 0..10_000 {
            c.advance_signal(&params, 0.25, 3.0 * 3600.0);
            if c.phase == 1 {
                was_in = true;
            } else if was_in {
                break;
            }
        }
        assert_eq!(c.ext[1], 0.0);
    }

    #[test]
    fn commands_are_checked() {
        let (params, mut c) = setup();
        let mut e = cmd(CommandAction::ExtendGreen);
        e.approach = Some("nowhere".into());
        e.seconds = Some(10.0);
        assert!(c
            .command(&params, &e, 0.0)
            .unwrap_err()
            .contains("unknown approach"));
        let mut p = cmd(CommandAction::SetPlan);
        p.plan = Some("festival".into());
        assert!(c
            .command(&params, &p, 0.0)
            .unwrap_err()
            .contains("unknown plan"));
        p.plan = Some("sore".into());
        c.command(&params, &p, 0.0).unwrap();
        let mut m = cmd(CommandAction::SetMode);
        m.mode = Some(ControllerMode::Flashing);
        c.command(&params, &m, 0.0).unwrap();
        e.approach = Some(c.approaches[0].id.clone());
        assert!(c
            .command(&params, &e, 0.0)
            .unwrap_err()
            .contains("flashing"));
    }
}
