//! Municipal service applications (permits, e-puskesmas, library, social aid,
//! UMKM e-commerce, regional assets, roads, tax, complaints). Root events
//! arrive as Poisson streams following the service profile; each case then
//! may produce one of several follow-ups after a delay (a permit is verified,
//! then approved or rejected; a complaint is routed to an OPD, then
//! resolved), all under the same reference. Every KPI is sampled about every
//! 10 s of real time as a slow drift around its baseline, optionally
//! following the service profile (queues and hourly rates rise and fall
//! with office hours).

use crate::contract::messages::{AppEvent, KpiSample, Message};
use crate::contract::Topic;

use super::agenda::{Action, Agenda};
use super::draw::{self, SimRng};
use super::scenario::{EventDef, KpiDef, ServiceDef};
use super::sim::Ctx;

/// Real seconds between two samples of one KPI.
pub const KPI_EVERY_S: f64 = 10.0;
/// Relaxation time of KPI drift, simulated seconds.
const KPI_TAU_S: f64 = 1800.0;

/// An event type, flattened from the scenario's nested `then` lists.
#[derive(Clone, Debug)]
struct Spec {
    kind: String,
    rate_per_hour: f64,
    prob: f64,
    after_min: [f64; 2],
    attrs: Vec<(String, Vec<String>)>,
    routed: bool,
    then: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Route {
    opd: String,
    weight: f64,
    topics: Vec<String>,
}

#[derive(Clone, Debug)]
struct Kpi {
    metric: String,
    unit: String,
    baseline: f64,
    target: Option<f64>,
    noise: f64,
    window_s: f64,
    follows: f64,
    min: f64,
    max: f64,
    drift: f64,
    last_sim: f64,
    next_at: f64,
}

#[derive(Clone, Debug)]
struct Service {
    id: String,
    opd: Option<String>,
    prefix: String,
    roots: Vec<usize>,
    routes: Vec<Route>,
    seq: u64,
    kpis: Vec<Kpi>,
}

/// One case in flight: the next event due and what it carries forward.
#[derive(Clone, Debug)]
pub struct Chain {
    service: usize,
    spec: usize,
    reference: String,
    opd: Option<String>,
    route: Option<usize>,
    attrs: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct Services {
    services: Vec<Service>,
    specs: Vec<Spec>,
}

impl Services {
    pub fn new(defs: &[ServiceDef]) -> Services {
        let mut s = Services::default();
        let total_kpis: usize = defs.iter().map(|d| d.kpis.len()).sum::<usize>().max(1);
        let mut k_index = 0usize;
        for d in defs {
            let roots = d.events.iter().map(|e| s.add_spec(e, 0)).collect();
            let kpis = d
                .kpis
                .iter()
                .map(|k| {
                    // Stagger the samples over the period so they do not all land in one step.
                    let next_at = KPI_EVERY_S * k_index as f64 / total_kpis as f64;
                    k_index += 1;
                    kpi(k, next_at)
                })
                .collect();
            let prefix = d
                .ref_prefix
                .clone()
                .unwrap_or_else(|| d.id.chars().take(3).collect::<String>().to_uppercase());
            s.services.push(Service {
                id: d.id.clone(),
                opd: d.opd.clone(),
                prefix,
                roots,
                routes: d
                    .routes
                    .iter()
                    .map(|r| Route {
                        opd: r.opd.clone(),
                        weight: r.weight,
                        topics: r.topics.clone(),
                    })
                    .collect(),
                seq: 0,
                kpis,
            });
        }
        s
    }

    fn add_spec(&mut self, e: &EventDef, depth: usize) -> usize {
        let idx = self.specs.len();
        self.specs.push(Spec {
            kind: e.kind.clone(),
            rate_per_hour: if e.rate_per_hour.is_finite() {
                e.rate_per_hour.max(0.0)
            } else {
                0.0
            },
            prob: e.prob,
            after_min: e.after_min.unwrap_or([1.0, 60.0]),
            attrs: e
                .attrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            routed: e.routed,
            then: Vec::new(),
        });
        // Deeper chains than the validator allows are cut, not followed.
        if depth < 8 {
            let children: Vec<usize> = e.then.iter().map(|t| self.add_spec(t, depth + 1)).collect();
            self.specs[idx].then = children;
        }
        idx
    }

    /// Schedules the root events arriving in `[t0, t1)` at profile multiplier `mult`.
    pub fn schedule_arrivals(
        &self,
        t0: f64,
        t1: f64,
        mult: f64,
        agenda: &mut Agenda,
        rng: &mut SimRng,
    ) {
        let hours = (t1 - t0) / 3600.0;
        for (si, s) in self.services.iter().enumerate() {
            for &spec in &s.roots {
                let n = draw::poisson(rng, self.specs[spec].rate_per_hour * mult * hours);
                for _ in 0..n {
                    agenda.at(
                        draw::uniform(rng, [t0, t1]),
                        Action::AppRoot { service: si, spec },
                    );
                }
            }
        }
    }

    /// A new case begins with a root event.
    pub fn root(&mut self, service: usize, spec: usize, ctx: &mut Ctx) {
        let Some(s) = self.services.get_mut(service) else {
            return;
        };
        s.seq += 1;
        let reference = format!("{}-{}-{:05}", s.prefix, ctx.now.format("%Y%m"), s.seq);
        let route = draw::weighted(ctx.rng, s.routes.iter().map(|r| r.weight));
        let mut attrs = Vec::new();
        if let Some(topic) = route.and_then(|r| draw::one_of(ctx.rng, &s.routes[r].topics)) {
            attrs.push(("topic".to_owned(), topic.clone()));
        }
        let chain = Chain {
            service,
            spec,
            reference,
            opd: s.opd.clone(),
            route,
            attrs,
        };
        self.event(chain, ctx);
    }

    /// Emits the chain's current event and schedules one of its follow-ups.
    pub fn event(&mut self, mut chain: Chain, ctx: &mut Ctx) {
        let (Some(s), Some(spec)) = (self.services.get(chain.service), self.specs.get(chain.spec))
        else {
            return;
        };
        for (name, choices) in &spec.attrs {
            if let Some(v) = draw::one_of(ctx.rng, choices) {
                chain.attrs.retain(|(k, _)| k != name);
                chain.attrs.push((name.clone(), v.clone()));
            }
        }
        if spec.routed {
            if let Some(r) = chain.route.and_then(|r| s.routes.get(r)) {
                chain.opd = Some(r.opd.clone());
            }
        }
        let attrs: serde_json::Map<String, serde_json::Value> = chain
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let event = AppEvent {
            event_id: draw::uuid(ctx.rng),
            ts: ctx.now,
            service: s.id.clone(),
            kind: spec.kind.clone(),
            reference: Some(chain.reference.clone()),
            opd: chain.opd.clone(),
            attrs: (!attrs.is_empty()).then_some(attrs),
        };
        ctx.emit(
            Topic::AppEvents {
                city: ctx.city.to_owned(),
                service: s.id.clone(),
            },
            Message::AppEvent(Box::new(event)),
        );
        // The follow-ups are alternatives: one draw picks at most one of them.
        let mut u = draw::uniform(ctx.rng, [0.0, 1.0]);
        for &next in &spec.then {
            let p = self.specs[next].prob;
            if u < p {
                let delay = draw::uniform(ctx.rng, self.specs[next].after_min) * 60.0;
                chain.spec = next;
                ctx.agenda
                    .at(ctx.at + delay.max(1.0), Action::AppFollow(Box::new(chain)));
                return;
            }
            u -= p;
        }
    }

    /// KPI samples whose real-time period has come round; `mult` is the service profile now.
    pub fn sample_kpis(&mut self, mult: f64, ctx: &mut Ctx) {
        for s in &mut self.services {
            for k in &mut s.kpis {
                if ctx.real_t < k.next_at {
                    continue;
                }
                k.next_at = if ctx.real_t - k.next_at > KPI_EVERY_S {
                    ctx.real_t + KPI_EVERY_S
                } else {
                    k.next_at + KPI_EVERY_S
                };
                k.drift = draw::ou_step(ctx.rng, k.drift, k.noise, KPI_TAU_S, ctx.at - k.last_sim);
                k.last_sim = ctx.at;
                let level = k.baseline * (1.0 + k.follows * (mult - 1.0));
                // Counts are whole; rates and percentages carry one decimal.
                let decimals = if k.unit == "count" { 0 } else { 1 };
                let value = draw::round((level + k.drift).clamp(k.min, k.max), decimals);
                let sample = KpiSample {
                    ts: ctx.now,
                    metric: k.metric.clone(),
                    value,
                    unit: k.unit.clone(),
                    target: k.target,
                    window_s: Some(k.window_s),
                };
                ctx.emit(
                    Topic::Kpi {
                        city: ctx.city.to_owned(),
                        service: s.id.clone(),
                    },
                    Message::KpiSample(Box::new(sample)),
                );
            }
        }
    }
}

fn kpi(k: &KpiDef, next_at: f64) -> Kpi {
    let finite = |x: f64, d: f64| if x.is_finite() { x } else { d };
    let baseline = finite(k.baseline, 0.0).clamp(-1e12, 1e12);
    // Percentages stay within 0..100 and non-negative quantities stay non-negative.
    let default_min = if baseline >= 0.0 { 0.0 } else { -1e12 };
    let default_max = if k.unit == "%" { 100.0 } else { 1e12 };
    let min = finite(k.min.unwrap_or(default_min), default_min);
    let max = finite(k.max.unwrap_or(default_max), default_max).max(min);
    Kpi {
        metric: k.metric.clone(),
        unit: k.unit.clone(),
        baseline,
        target: k.target.filter(|t| t.is_finite()),
        noise: finite(k.noise, 0.0).max(0.0),
        window_s: finite(k.window_s, 86_400.0).clamp(0.0, 366.0 * 86_400.0),
        follows: finite(k.follows_demand, 0.0),
        min,
        max,
        drift: 0.0,
        last_sim: 0.0,
        next_at,
    }
}
