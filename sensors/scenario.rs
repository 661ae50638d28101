//! Scenario files: the description of one simulated city in TOML. A scenario
//! names the city, draws its map for the wall (districts, roads), lists its
//! signalised junctions, emergency units, call-centre load, service
//! applications and scheduled incidents. Scenarios are read from a path or
//! from the copies built into the binary, and validated before use so that a
//! typo is reported as a sentence, never as a panic later.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::geo;
use crate::contract::messages::{CallCategory, ControllerMode};
use crate::contract::topic::{is_city_slug, is_identifier};

/// Scenarios compiled into the binary, by name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "cilegon-weekday",
        include_str!("../scenarios/cilegon-weekday.toml"),
    ),
    (
        "cirebon-atcs",
        include_str!("../scenarios/cirebon-atcs.toml"),
    ),
    (
        "incident-surge",
        include_str!("../scenarios/incident-surge.toml"),
    ),
    (
        "tangerang-liveroom",
        include_str!("../scenarios/tangerang-liveroom.toml"),
    ),
    ("badung-wita", include_str!("../scenarios/badung-wita.toml")),
];

/// The scenario used when none is named.
pub const DEFAULT_SCENARIO: &str = "cilegon-weekday";

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("scenario {origin} is not a valid scenario file: {source}")]
    Parse {
        origin: String,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("scenario {name:?} is invalid:\n  - {}", problems.join("\n  - "))]
    Invalid { name: String, problems: Vec<String> },
    #[error(
        "no scenario file {given:?} and no built-in scenario of that name (built-in: {available})"
    )]
    NotFound { given: String, available: String },
}

/// One simulated city.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario name (e.g. `cilegon-weekday`).
    pub name: String,
    /// City slug used in topics (`city/{city}/...`).
    pub city: String,
    /// City name used in caller addresses (default: the slug, capitalised).
    #[serde(default)]
    pub city_name: Option<String>,
    /// Title shown to operators.
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default seed of the random stream.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Default time acceleration (1 = real time; drills use 60..1440).
    #[serde(default = "default_accel")]
    pub accel: f64,
    /// The city's local time (`WIB`, `WITA`, `WIT`): the start time, the
    /// profiles' hours and the signal plans' `from` are in it, and the
    /// simulated messages carry its offset. Kendali counts the city's day in
    /// it unless the settings' `cities.time_zones` name another.
    #[serde(default)]
    pub time_zone: crate::domain::Zone,
    /// Simulated local time of day at start, `HH:MM`; default: the local time of the first step.
    #[serde(default)]
    pub start_time: Option<String>,
    /// Calls wait for people at the dispatcher console and units for their
    /// assignments (a drill); `--human-dispatch` asks the same of any scenario.
    #[serde(default)]
    pub human_dispatch: bool,
    /// Map centre `[lat, lon]` for the wall display.
    pub center: [f64; 2],
    /// Map bounds `[[south, west], [north, east]]`; every coordinate must lie inside.
    pub bounds: [[f64; 2]; 2],
    /// Traffic demand multiplier per hour of day (24 entries, 00..23).
    pub demand_profile: Vec<f64>,
    /// Service application load per hour of day (default: the demand profile).
    #[serde(default)]
    pub service_profile: Option<Vec<f64>>,
    #[serde(default)]
    pub districts: Vec<District>,
    #[serde(default)]
    pub roads: Vec<Road>,
    #[serde(default)]
    pub atcs: AtcsConfig,
    pub intersections: Vec<IntersectionDef>,
    #[serde(default)]
    pub units: Vec<UnitDef>,
    #[serde(default)]
    pub calls: CallsConfig,
    #[serde(default)]
    pub services: Vec<ServiceDef>,
    #[serde(default)]
    pub incidents: Vec<IncidentDef>,
}

fn default_seed() -> u64 {
    1
}
fn default_accel() -> f64 {
    1.0
}
fn one() -> f64 {
    1.0
}

/// A district (kecamatan) outline for the map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct District {
    pub name: String,
    /// Outline `[[lat, lon], ...]`, not necessarily closed.
    pub polygon: Vec<[f64; 2]>,
}

/// A main road for the map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Road {
    pub name: String,
    /// e.g. `arteri`, `kolektor`, `tol`.
    #[serde(default)]
    pub class: Option<String>,
    pub polyline: Vec<[f64; 2]>,
}

/// Settings shared by all the city's signal controllers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtcsConfig {
    /// Time-of-day signal plans; each runs from its `from` until the next one.
    #[serde(default = "default_plans")]
    pub plans: Vec<PlanDef>,
    #[serde(default = "default_mode")]
    pub default_mode: ControllerMode,
    /// Amber plus all-red after each green, seconds.
    #[serde(default = "default_intergreen")]
    pub intergreen_s: f64,
    #[serde(default = "default_min_green")]
    pub min_green_s: f64,
    /// Longest cycle adaptive control may stretch to, seconds.
    #[serde(default = "default_max_cycle")]
    pub max_cycle_s: f64,
    /// Degree of saturation above which adaptive control gives extra green.
    #[serde(default = "default_adaptive_threshold")]
    pub adaptive_threshold: f64,
    /// Detector faults per approach per simulated day.
    #[serde(default = "default_fault_rate")]
    pub detector_faults_per_day: f64,
    /// How long a detector fault lasts, simulated minutes.
    #[serde(default = "default_fault_minutes")]
    pub fault_minutes: [f64; 2],
}

impl Default for AtcsConfig {
    fn default() -> Self {
        AtcsConfig {
            plans: default_plans(),
            default_mode: default_mode(),
            intergreen_s: default_intergreen(),
            min_green_s: default_min_green(),
            max_cycle_s: default_max_cycle(),
            adaptive_threshold: default_adaptive_threshold(),
            detector_faults_per_day: default_fault_rate(),
            fault_minutes: default_fault_minutes(),
        }
    }
}

fn default_plans() -> Vec<PlanDef> {
    [
        ("dini_hari", "00:00", 60.0),
        ("pagi", "05:30", 140.0),
        ("siang", "09:00", 110.0),
        ("sore", "15:30", 140.0),
        ("malam", "19:30", 90.0),
        ("dini_hari", "22:30", 60.0),
    ]
    .into_iter()
    .map(|(id, from, cycle_s)| PlanDef {
        id: id.into(),
        from: from.into(),
        cycle_s,
    })
    .collect()
}
fn default_mode() -> ControllerMode {
    ControllerMode::Adaptive
}
fn default_intergreen() -> f64 {
    5.0
}
fn default_min_green() -> f64 {
    8.0
}
fn default_max_cycle() -> f64 {
    180.0
}
fn default_adaptive_threshold() -> f64 {
    0.85
}
fn default_fault_rate() -> f64 {
    0.2
}
fn default_fault_minutes() -> [f64; 2] {
    [10.0, 90.0]
}

/// A signal plan: its cycle length, in force from `from` (local `HH:MM`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDef {
    pub id: String,
    pub from: String,
    pub cycle_s: f64,
}

/// A signalised junction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntersectionDef {
    pub id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub district: Option<String>,
    /// Mode at start (default: `atcs.default_mode`).
    #[serde(default)]
    pub mode: Option<ControllerMode>,
    /// Approaches in phase order (one phase each).
    pub approaches: Vec<ApproachDef>,
}

/// One arm of a junction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproachDef {
    pub id: String,
    pub name: String,
    /// Arrivals per hour at demand multiplier 1.
    pub demand_vph: f64,
    /// Vehicles per hour the arm discharges under the plan's equal split.
    pub capacity_vph: f64,
    #[serde(default = "default_lanes")]
    pub lanes: u32,
}

fn default_lanes() -> u32 {
    2
}

/// An emergency unit and its home base.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitDef {
    pub id: String,
    /// `dinkes`, `damkar`, `polres`, `bpbd`, ...
    pub agency: String,
    /// `ambulance`, `fire_engine`, `police_car`, `rescue`, ...
    pub kind: String,
    /// Name of the home base (e.g. `RSUD Kota Cilegon`).
    #[serde(default)]
    pub base: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// Average road speed on a call, km/h (default by kind).
    #[serde(default)]
    pub speed_kmh: Option<f64>,
}

/// The emergency lines (absent lines get no calls).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsConfig {
    /// Call load per hour of day (default: the demand profile).
    #[serde(default)]
    pub profile: Option<Vec<f64>>,
    #[serde(default, rename = "112")]
    pub line112: Option<LineConfig>,
    #[serde(default, rename = "119")]
    pub line119: Option<LineConfig>,
}

/// One emergency line's load and behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// Calls per hour at profile multiplier 1.
    pub rate_per_hour: f64,
    /// Weight per call category (`medical = 40`, `prank = 30`, ...).
    pub categories: BTreeMap<String, f64>,
    /// Weights of priority 1..4 for categories that need a response.
    #[serde(default = "default_priorities")]
    pub priorities: [f64; 4],
    /// Share of calls hung up before they are answered.
    #[serde(default)]
    pub abandon_prob: f64,
    /// Share of answered calls passed to another line or agency.
    #[serde(default)]
    pub transfer_prob: f64,
    /// Call-takers on duty (ids `op-{line}-NN`).
    #[serde(default = "default_operators")]
    pub operators: u32,
    #[serde(default)]
    pub stages: StageDurations,
}

fn default_priorities() -> [f64; 4] {
    [15.0, 35.0, 35.0, 15.0]
}
fn default_operators() -> u32 {
    4
}

/// Simulated durations of the call lifecycle, `[min, max]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDurations {
    /// received -> answered, seconds.
    #[serde(default = "d_answer")]
    pub answer_s: [f64; 2],
    /// answered -> classified, seconds.
    #[serde(default = "d_classify")]
    pub classify_s: [f64; 2],
    /// classified -> dispatched, seconds.
    #[serde(default = "d_dispatch")]
    pub dispatch_s: [f64; 2],
    /// dispatched -> en_route (crew turn-out), seconds.
    #[serde(default = "d_mobilize")]
    pub mobilize_s: [f64; 2],
    /// on_scene -> closed, minutes (scaled by category: fires and disasters last longer).
    #[serde(default = "d_on_scene")]
    pub on_scene_min: [f64; 2],
    /// classified -> closed or transferred for calls without a dispatch, seconds.
    #[serde(default = "d_close")]
    pub close_s: [f64; 2],
}

impl Default for StageDurations {
    fn default() -> Self {
        StageDurations {
            answer_s: d_answer(),
            classify_s: d_classify(),
            dispatch_s: d_dispatch(),
            mobilize_s: d_mobilize(),
            on_scene_min: d_on_scene(),
            close_s: d_close(),
        }
    }
}

fn d_answer() -> [f64; 2] {
    [3.0, 40.0]
}
fn d_classify() -> [f64; 2] {
    [20.0, 120.0]
}
fn d_dispatch() -> [f64; 2] {
    [30.0, 180.0]
}
fn d_mobilize() -> [f64; 2] {
    [30.0, 120.0]
}
fn d_on_scene() -> [f64; 2] {
    [10.0, 40.0]
}
fn d_close() -> [f64; 2] {
    [10.0, 90.0]
}

/// A municipal service application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// Service id, used in topics (e.g. `perizinan`).
    pub id: String,
    pub title: String,
    /// The group the screens show it in (`e-government`, `kesehatan`,
    /// `pendidikan`, `sosial`, `ekonomi`, `infrastruktur`...).
    #[serde(default)]
    pub category: Option<String>,
    /// Owning OPD, stamped on its events (e.g. `dpmptsp`).
    #[serde(default)]
    pub opd: Option<String>,
    /// Prefix of its references (e.g. `IZN` -> `IZN-202611-00042`).
    #[serde(default)]
    pub ref_prefix: Option<String>,
    /// KPIs, the headline first.
    pub kpis: Vec<KpiDef>,
    #[serde(default)]
    pub events: Vec<EventDef>,
    /// Where a `routed` event sends a case (complaints to OPDs), by weight.
    #[serde(default)]
    pub routes: Vec<RouteDef>,
}

/// A KPI a service publishes about every 10 s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiDef {
    pub metric: String,
    pub unit: String,
    pub baseline: f64,
    #[serde(default)]
    pub target: Option<f64>,
    /// Standard deviation of the slow drift around the baseline.
    #[serde(default)]
    pub noise: f64,
    #[serde(default = "default_window")]
    pub window_s: f64,
    /// How strongly the value follows the service profile (0 = flat).
    #[serde(default)]
    pub follows_demand: f64,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

fn default_window() -> f64 {
    86_400.0
}

/// An app event type: root events arrive at `rate_per_hour`; `then` lists
/// mutually exclusive follow-ups (same reference), each with its probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDef {
    #[serde(rename = "type")]
    pub kind: String,
    /// Arrivals per hour at profile multiplier 1 (root events only).
    #[serde(default)]
    pub rate_per_hour: f64,
    /// Probability of this follow-up (follow-ups only).
    #[serde(default = "one")]
    pub prob: f64,
    /// Delay after the previous event, simulated minutes (follow-ups only).
    #[serde(default)]
    pub after_min: Option<[f64; 2]>,
    /// Attribute name -> choices; one is picked per case.
    #[serde(default)]
    pub attrs: BTreeMap<String, Vec<String>>,
    /// This event routes the case to an OPD from the service's `routes`.
    #[serde(default)]
    pub routed: bool,
    #[serde(default)]
    pub then: Vec<EventDef>,
}

/// A destination OPD for routed cases, with the topics it receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    pub opd: String,
    pub weight: f64,
    #[serde(default)]
    pub topics: Vec<String>,
}

/// A scheduled incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentDef {
    pub id: String,
    /// Call category of the incident (e.g. `traffic_accident`, `fire`).
    pub kind: String,
    pub title: String,
    /// Simulated minutes after start.
    pub at_min: f64,
    pub duration_min: f64,
    /// The junction it happens at.
    pub intersection: String,
    /// Call rate multiplier on `lines` while it lasts (1 = no surge).
    #[serde(default = "one")]
    pub call_surge: f64,
    /// Category mix of the extra calls (default: the incident's kind).
    #[serde(default)]
    pub surge_categories: BTreeMap<String, f64>,
    #[serde(default = "default_lines")]
    pub lines: Vec<String>,
    /// Capacity divisor at the junction while it lasts (1 = none).
    #[serde(default = "one")]
    pub congestion: f64,
    /// Units sent by agency (`dinkes = 2`).
    #[serde(default)]
    pub dispatch: BTreeMap<String, u32>,
    /// Share of extra calls that merely report the same incident again.
    #[serde(default = "default_duplicate")]
    pub duplicate_prob: f64,
}

fn default_lines() -> Vec<String> {
    vec!["112".into(), "119".into()]
}
fn default_duplicate() -> f64 {
    0.5
}

/// Parses a call category name (`traffic_accident`).
pub fn parse_category(s: &str) -> Option<CallCategory> {
    CallCategory::ALL.into_iter().find(|c| c.as_str() == s)
}

/// Parses `HH:MM` (24 h) into seconds after midnight.
pub fn parse_hhmm(s: &str) -> Option<f64> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(f64::from(h * 3600 + m * 60))
}

/// Whether `s` is a dotted lowercase event type (`permit.submitted`), as the contract requires.
fn is_event_type(s: &str) -> bool {
    s.len() <= 64
        && s.contains('.')
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn is_metric(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_owned(),
            source,
        })?;
        Scenario::from_toml(&text, &path.display().to_string())
    }

    /// A scenario built into the binary, validated.
    pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
        match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Scenario::from_toml(text, &format!("built-in {n}")),
            None => Err(ScenarioError::NotFound {
                given: name.to_owned(),
                available: Scenario::builtin_names().join(", "),
            }),
        }
    }

    /// Names of the built-in scenarios.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A path if such a file exists, else a built-in name (with or without `.toml`).
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        let path = Path::new(name_or_path);
        if path.is_file() {
            return Scenario::load(path);
        }
        let name = name_or_path.strip_suffix(".toml").unwrap_or(name_or_path);
        let name = Path::new(name)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(name);
        match Scenario::builtin(name) {
            Err(ScenarioError::NotFound { available, .. }) => Err(ScenarioError::NotFound {
                given: name_or_path.to_owned(),
                available,
            }),
            other => other,
        }
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            origin: origin.to_owned(),
            source: Box::new(e),
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The city name for addresses.
    pub fn city_display_name(&self) -> String {
        match &self.city_name {
            Some(n) if !n.trim().is_empty() => n.clone(),
            _ => {
                let mut c = self.city.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().chain(c).collect(),
                    None => String::new(),
                }
            }
        }
    }

    /// Checks everything the simulator relies on; lists every problem found.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut v = Problems::default();
        self.check_header(&mut v);
        self.check_map(&mut v);
        self.check_atcs(&mut v);
        self.check_intersections(&mut v);
        self.check_units(&mut v);
        self.check_calls(&mut v);
        self.check_services(&mut v);
        self.check_incidents(&mut v);
        if v.0.is_empty() {
            Ok(())
        } else {
            Err(ScenarioError::Invalid {
                name: self.name.clone(),
                problems: v.0,
            })
        }
    }

    fn in_bounds(&self, lat: f64, lon: f64) -> bool {
        let [[s, w], [n, e]] = self.bounds;
        geo::valid(lat, lon) && (s..=n).contains(&lat) && (w..=e).contains(&lon)
    }

    fn check_point(&self, v: &mut Problems, what: &str, lat: f64, lon: f64) {
        if !geo::valid(lat, lon) {
            v.push(format!(
                "{what}: [{lat}, {lon}] is not a valid latitude/longitude"
            ));
        } else if !self.in_bounds(lat, lon) {
            v.push(format!(
                "{what}: [{lat}, {lon}] lies outside the scenario bounds"
            ));
        }
    }

    fn check_header(&self, v: &mut Problems) {
        if self.name.trim().is_empty() {
            v.push("name is empty".into());
        }
        if !is_city_slug(&self.city) {
            v.push(format!(
                "city {:?} is not a lowercase slug (a-z 0-9 -)",
                self.city
            ));
        }
        if self.title.trim().is_empty() {
            v.push("title is empty".into());
        }
        if !(self.accel.is_finite() && self.accel > 0.0 && self.accel <= 100_000.0) {
            v.push(format!(
                "accel = {} must be > 0 and at most 100000",
                self.accel
            ));
        }
        if let Some(t) = &self.start_time {
            if parse_hhmm(t).is_none() {
                v.push(format!("start_time {t:?} is not HH:MM"));
            }
        }
        check_profile(v, "demand_profile", &self.demand_profile);
        if let Some(p) = &self.service_profile {
            check_profile(v, "service_profile", p);
        }
        if let Some(p) = &self.calls.profile {
            check_profile(v, "calls.profile", p);
        }
    }

    fn check_map(&self, v: &mut Problems) {
        let [[s, w], [n, e]] = self.bounds;
        if !(geo::valid(s, w) && geo::valid(n, e) && s < n && w < e) {
            v.push(
                "bounds must be [[south, west], [north, east]] with south < north and west < east"
                    .into(),
            );
            return;
        }
        self.check_point(v, "center", self.center[0], self.center[1]);
        let mut names = BTreeSet::new();
        for d in &self.districts {
            if d.name.trim().is_empty() || !names.insert(d.name.as_str()) {
                v.push(format!("district name {:?} is empty or repeated", d.name));
            }
            if d.polygon.len() < 3 {
                v.push(format!(
                    "district {:?}: polygon needs at least 3 points",
                    d.name
                ));
            }
            for p in &d.polygon {
                self.check_point(v, &format!("district {:?}", d.name), p[0], p[1]);
            }
        }
        for r in &self.roads {
            if r.name.trim().is_empty() {
                v.push("a road has an empty name".into());
            }
            if r.polyline.len() < 2 {
                v.push(format!(
                    "road {:?}: polyline needs at least 2 points",
                    r.name
                ));
            }
            for p in &r.polyline {
                self.check_point(v, &format!("road {:?}", r.name), p[0], p[1]);
            }
        }
    }

    fn check_atcs(&self, v: &mut Problems) {
        let a = &self.atcs;
        if a.plans.is_empty() {
            v.push("atcs.plans is empty".into());
        }
        for p in &a.plans {
            if p.id.trim().is_empty() || p.id.len() > 64 {
                v.push(format!("atcs plan id {:?} must be 1..=64 bytes", p.id));
            }
            if parse_hhmm(&p.from).is_none() {
                v.push(format!(
                    "atcs plan {:?}: from {:?} is not HH:MM",
                    p.id, p.from
                ));
            }
            if !(20.0..=300.0).contains(&p.cycle_s) {
                v.push(format!(
                    "atcs plan {:?}: cycle_s = {} is outside 20..=300",
                    p.id, p.cycle_s
                ));
            }
        }
        if !(0.0..=30.0).contains(&a.intergreen_s) {
            v.push(format!(
                "atcs.intergreen_s = {} is outside 0..=30",
                a.intergreen_s
            ));
        }
        if !(1.0..=120.0).contains(&a.min_green_s) {
            v.push(format!(
                "atcs.min_green_s = {} is outside 1..=120",
                a.min_green_s
            ));
        }
        if !(20.0..=480.0).contains(&a.max_cycle_s) {
            v.push(format!(
                "atcs.max_cycle_s = {} is outside 20..=480",
                a.max_cycle_s
            ));
        }
        if !(0.1..=2.0).contains(&a.adaptive_threshold) {
            v.push(format!(
                "atcs.adaptive_threshold = {} is outside 0.1..=2",
                a.adaptive_threshold
            ));
        }
        if !(a.detector_faults_per_day.is_finite() && a.detector_faults_per_day >= 0.0) {
            v.push("atcs.detector_faults_per_day must be >= 0".into());
        }
        check_range(v, "atcs.fault_minutes", a.fault_minutes);
    }

    fn check_intersections(&self, v: &mut Problems) {
        if self.intersections.is_empty() {
            v.push(
                "intersections is empty (callers and the map need at least one junction)".into(),
            );
        }
        let districts: BTreeSet<&str> = self.districts.iter().map(|d| d.name.as_str()).collect();
        let mut ids = BTreeSet::new();
        for i in &self.intersections {
            let what = format!("intersection {:?}", i.id);
            if !is_identifier(&i.id) {
                v.push(format!(
                    "{what}: id is not an identifier (1-64 of A-Z a-z 0-9 _ -)"
                ));
            }
            if !ids.insert(i.id.as_str()) {
                v.push(format!("{what}: id is used twice"));
            }
            if i.name.trim().is_empty() || i.name.len() > 200 {
                v.push(format!("{what}: name must be 1..=200 bytes"));
            }
            self.check_point(v, &what, i.lat, i.lon);
            if let Some(d) = &i.district {
                if !districts.is_empty() && !districts.contains(d.as_str()) {
                    v.push(format!(
                        "{what}: district {d:?} is not one of the scenario's districts"
                    ));
                }
            }
            if i.approaches.is_empty() || i.approaches.len() > 16 {
                v.push(format!("{what}: needs 1..=16 approaches"));
            }
            let mut aids = BTreeSet::new();
            for a in &i.approaches {
                if !is_identifier(&a.id) || !aids.insert(a.id.as_str()) {
                    v.push(format!(
                        "{what}: approach id {:?} is not an identifier or is repeated",
                        a.id
                    ));
                }
                if a.name.trim().is_empty() || a.name.len() > 200 {
                    v.push(format!(
                        "{what}: approach {:?} name must be 1..=200 bytes",
                        a.id
                    ));
                }
                if !(a.demand_vph.is_finite() && (0.0..=10_000.0).contains(&a.demand_vph)) {
                    v.push(format!(
                        "{what}: approach {:?} demand_vph = {} is outside 0..=10000",
                        a.id, a.demand_vph
                    ));
                }
                if !(a.capacity_vph.is_finite() && (50.0..=10_000.0).contains(&a.capacity_vph)) {
                    v.push(format!(
                        "{what}: approach {:?} capacity_vph = {} is outside 50..=10000",
                        a.id, a.capacity_vph
                    ));
                }
                if !(1..=8).contains(&a.lanes) {
                    v.push(format!(
                        "{what}: approach {:?} lanes = {} is outside 1..=8",
                        a.id, a.lanes
                    ));
                }
            }
        }
    }

    fn check_units(&self, v: &mut Problems) {
        let mut ids = BTreeSet::new();
        for u in &self.units {
            let what = format!("unit {:?}", u.id);
            if !is_identifier(&u.id) || !ids.insert(u.id.as_str()) {
                v.push(format!("{what}: id is not an identifier or is used twice"));
            }
            if !is_identifier(&u.agency) {
                v.push(format!(
                    "{what}: agency {:?} is not an identifier",
                    u.agency
                ));
            }
            if u.kind.trim().is_empty() {
                v.push(format!("{what}: kind is empty"));
            }
            self.check_point(v, &what, u.lat, u.lon);
            if let Some(s) = u.speed_kmh {
                if !(5.0..=150.0).contains(&s) {
                    v.push(format!("{what}: speed_kmh = {s} is outside 5..=150"));
                }
            }
        }
    }

    fn check_calls(&self, v: &mut Problems) {
        for (label, line) in [
            ("calls.112", &self.calls.line112),
            ("calls.119", &self.calls.line119),
        ] {
            let Some(l) = line else { continue };
            if !(l.rate_per_hour.is_finite() && (0.0..=10_000.0).contains(&l.rate_per_hour)) {
                v.push(format!(
                    "{label}.rate_per_hour = {} is outside 0..=10000",
                    l.rate_per_hour
                ));
            }
            check_categories(
                v,
                &format!("{label}.categories"),
                &l.categories,
                l.rate_per_hour > 0.0,
            );
            if !l.priorities.iter().all(|w| w.is_finite() && *w >= 0.0)
                || l.priorities.iter().sum::<f64>() <= 0.0
            {
                v.push(format!(
                    "{label}.priorities must be 4 weights >= 0, not all zero"
                ));
            }
            check_prob(v, &format!("{label}.abandon_prob"), l.abandon_prob);
            check_prob(v, &format!("{label}.transfer_prob"), l.transfer_prob);
            if !(1..=99).contains(&l.operators) {
                v.push(format!(
                    "{label}.operators = {} is outside 1..=99",
                    l.operators
                ));
            }
            let s = &l.stages;
            for (name, r) in [
                ("answer_s", s.answer_s),
                ("classify_s", s.classify_s),
                ("dispatch_s", s.dispatch_s),
                ("mobilize_s", s.mobilize_s),
                ("on_scene_min", s.on_scene_min),
                ("close_s", s.close_s),
            ] {
                check_range(v, &format!("{label}.stages.{name}"), r);
            }
        }
    }

    fn check_services(&self, v: &mut Problems) {
        let mut ids = BTreeSet::new();
        for s in &self.services {
            let what = format!("service {:?}", s.id);
            if !is_identifier(&s.id) || !ids.insert(s.id.as_str()) {
                v.push(format!("{what}: id is not an identifier or is used twice"));
            }
            if s.title.trim().is_empty() {
                v.push(format!("{what}: title is empty"));
            }
            if let Some(o) = &s.opd {
                if !is_identifier(o) {
                    v.push(format!("{what}: opd {o:?} is not an identifier"));
                }
            }
            if s.kpis.is_empty() {
                v.push(format!("{what}: needs at least one KPI (the headline)"));
            }
            for k in &s.kpis {
                if !is_metric(&k.metric) {
                    v.push(format!(
                        "{what}: metric {:?} is not [a-z0-9_.]{{1,64}}",
                        k.metric
                    ));
                }
                if k.unit.trim().is_empty() || k.unit.len() > 32 {
                    v.push(format!(
                        "{what}: KPI {:?} unit must be 1..=32 bytes",
                        k.metric
                    ));
                }
                let finite = [
                    Some(k.baseline),
                    k.target,
                    Some(k.noise),
                    Some(k.follows_demand),
                    k.min,
                    k.max,
                ]
                .into_iter()
                .flatten()
                .all(|x| x.is_finite() && x.abs() < 1e12);
                if !finite || k.noise < 0.0 {
                    v.push(format!(
                        "{what}: KPI {:?} has a non-finite or negative-noise value",
                        k.metric
                    ));
                }
                if !(k.window_s.is_finite() && (0.0..=366.0 * 86_400.0).contains(&k.window_s)) {
                    v.push(format!(
                        "{what}: KPI {:?} window_s is outside 0..=366 days",
                        k.metric
                    ));
                }
                if let (Some(lo), Some(hi)) = (k.min, k.max) {
                    if lo > hi {
                        v.push(format!("{what}: KPI {:?} min > max", k.metric));
                    }
                }
            }
            for e in &s.events {
                check_event(v, &what, e, 0, !s.routes.is_empty());
            }
            for r in &s.routes {
                if !is_identifier(&r.opd) {
                    v.push(format!(
                        "{what}: route opd {:?} is not an identifier",
                        r.opd
                    ));
                }
                if !(r.weight.is_finite() && r.weight >= 0.0) {
                    v.push(format!("{what}: route {:?} weight must be >= 0", r.opd));
                }
            }
        }
    }

    fn check_incidents(&self, v: &mut Problems) {
        let junctions: BTreeSet<&str> = self.intersections.iter().map(|i| i.id.as_str()).collect();
        let agencies: BTreeSet<&str> = self.units.iter().map(|u| u.agency.as_str()).collect();
        let mut ids = BTreeSet::new();
        for i in &self.incidents {
            let what = format!("incident {:?}", i.id);
            if !is_identifier(&i.id) || !ids.insert(i.id.as_str()) {
                v.push(format!("{what}: id is not an identifier or is used twice"));
            }
            if parse_category(&i.kind).is_none() {
                v.push(format!(
                    "{what}: kind {:?} is not a call category ({})",
                    i.kind,
                    category_names()
                ));
            }
            if i.title.trim().is_empty() {
                v.push(format!("{what}: title is empty"));
            }
            if !(i.at_min.is_finite() && i.at_min >= 0.0) {
                v.push(format!("{what}: at_min must be >= 0"));
            }
            if !(i.duration_min.is_finite()
                && i.duration_min > 0.0
                && i.duration_min <= 7.0 * 1440.0)
            {
                v.push(format!(
                    "{what}: duration_min must be > 0 and at most a week"
                ));
            }
            if !junctions.contains(i.intersection.as_str()) {
                v.push(format!(
                    "{what}: intersection {:?} is not in the scenario",
                    i.intersection
                ));
            }
            if !(i.call_surge.is_finite() && (1.0..=100.0).contains(&i.call_surge)) {
                v.push(format!(
                    "{what}: call_surge = {} is outside 1..=100",
                    i.call_surge
                ));
            }
            if !(i.congestion.is_finite() && (1.0..=10.0).contains(&i.congestion)) {
                v.push(format!(
                    "{what}: congestion = {} is outside 1..=10",
                    i.congestion
                ));
            }
            check_categories(
                v,
                &format!("{what}: surge_categories"),
                &i.surge_categories,
                false,
            );
            for l in &i.lines {
                if l != "112" && l != "119" {
                    v.push(format!("{what}: line {l:?} is not 112 or 119"));
                }
            }
            for (agency, n) in &i.dispatch {
                if !agencies.contains(agency.as_str()) {
                    v.push(format!(
                        "{what}: dispatches agency {agency:?}, which has no units"
                    ));
                }
                if *n > 50 {
                    v.push(format!(
                        "{what}: dispatches {n} units of {agency:?} (at most 50)"
                    ));
                }
            }
            check_prob(v, &format!("{what}: duplicate_prob"), i.duplicate_prob);
        }
    }
}

#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn push(&mut self, p: String) {
        // A broken file can repeat one mistake hundreds of times; the first few say enough.
        if self.0.len() < 50 {
            self.0.push(p);
        }
    }
}

fn category_names() -> String {
    CallCategory::ALL.map(|c| c.as_str()).join(", ")
}

fn check_profile(v: &mut Problems, what: &str, p: &[f64]) {
    if p.len() != 24 {
        v.push(format!(
            "{what} has {} entries; it needs 24 (one per hour, 00..23)",
            p.len()
        ));
    }
    if !p.iter().all(|x| x.is_finite() && (0.0..=20.0).contains(x)) {
        v.push(format!("{what} entries must be within 0..=20"));
    }
}

fn check_prob(v: &mut Problems, what: &str, p: f64) {
    if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
        v.push(format!("{what} = {p} is not a probability (0..=1)"));
    }
}

fn check_range(v: &mut Problems, what: &str, r: [f64; 2]) {
    if !(r[0].is_finite() && r[1].is_finite() && 0.0 <= r[0] && r[0] <= r[1] && r[1] <= 1e7) {
        v.push(format!(
            "{what} = [{}, {}] must be [min, max] with 0 <= min <= max",
            r[0], r[1]
        ));
    }
}

fn check_categories(v: &mut Problems, what: &str, m: &BTreeMap<String, f64>, need_weight: bool) {
    for (k, w) in m {
        if parse_category(k).is_none() {
            v.push(format!(
                "{what}: {k:?} is not a call category ({})",
                category_names()
            ));
        }
        if !(w.is_finite() && *w >= 0.0) {
            v.push(format!("{what}: weight of {k:?} must be >= 0"));
        }
    }
    if need_weight && m.values().filter(|w| w.is_finite()).sum::<f64>() <= 0.0 {
        v.push(format!("{what}: needs at least one positive weight"));
    }
}

fn check_event(v: &mut Problems, what: &str, e: &EventDef, depth: usize, has_routes: bool) {
    if depth > 8 {
        v.push(format!("{what}: event chains nest deeper than 8"));
        return;
    }
    if !is_event_type(&e.kind) {
        v.push(format!(
            "{what}: event type {:?} is not dotted lowercase (e.g. permit.submitted)",
            e.kind
        ));
    }
    if depth == 0 {
        if !(e.rate_per_hour.is_finite() && (0.0..=100_000.0).contains(&e.rate_per_hour)) {
            v.push(format!(
                "{what}: event {:?} rate_per_hour is outside 0..=100000",
                e.kind
            ));
        }
    } else {
        check_prob(v, &format!("{what}: event {:?} prob", e.kind), e.prob);
        match e.after_min {
            Some(r) => check_range(v, &format!("{what}: event {:?} after_min", e.kind), r),
            None => v.push(format!(
                "{what}: follow-up event {:?} needs after_min",
                e.kind
            )),
        }
    }
    if e.routed && !has_routes {
        v.push(format!(
            "{what}: event {:?} is routed but the service has no routes",
            e.kind
        ));
    }
    for (k, choices) in &e.attrs {
        if k.trim().is_empty() || choices.is_empty() {
            v.push(format!(
                "{what}: event {:?} attribute {k:?} needs a name and at least one choice",
                e.kind
            ));
        }
    }
    let total: f64 = e
        .then
        .iter()
        .map(|t| t.prob)
        .filter(|p| p.is_finite())
        .sum();
    if total > 1.0 + 1e-9 {
        v.push(format!("{what}: the follow-ups of {:?} are alternatives; their probabilities sum to {total} > 1", e.kind));
    }
    for t in &e.then {
        check_event(v, what, t, depth + 1, has_routes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_loads_and_validates() {
        for name in Scenario::builtin_names() {
            let s = Scenario::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.name, name);
            let resolved = Scenario::resolve(name).unwrap();
            assert_eq!(resolved, s);
            let with_ext = Scenario::resolve(&format!("{name}.toml")).unwrap();
            assert_eq!(with_ext, s);
        }
        assert!(Scenario::builtin_names().contains(&DEFAULT_SCENARIO));
    }

    #[test]
    fn scenario_files_on_disk_match_and_load_by_path() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        for name in Scenario::builtin_names() {
            let path = format!("{dir}/{name}.toml");
            let from_disk = Scenario::resolve(&path).unwrap();
            assert_eq!(from_disk, Scenario::builtin(name).unwrap());
        }
    }

    #[test]
    fn geometry_is_consistent() {
        for name in Scenario::builtin_names() {
            let s = Scenario::builtin(name).unwrap();
            for i in &s.intersections {
                let Some(d) = &i.district else { continue };
                let poly = &s.districts.iter().find(|x| &x.name == d).unwrap().polygon;
                assert!(
                    geo::inside((i.lat, i.lon), poly),
                    "{name}: {} is not inside district {d}",
                    i.id
                );
            }
        }
    }

    #[test]
    fn cilegon_has_the_nine_services_and_about_twenty_junctions() {
        let s = Scenario::builtin("cilegon-weekday").unwrap();
        let ids: Vec<&str> = s.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "perizinan",
                "epuskesmas",
                "perpustakaan",
                "bansos",
                "ecommerce",
                "bmd",
                "jalan",
                "pajak",
                "pengaduan"
            ]
        );
        assert!(
            s.services.iter().all(|s| s.kpis[0].target.is_some()),
            "every headline KPI has a target"
        );
        assert!((18..=24).contains(&s.intersections.len()));
        assert!((12..=18).contains(&s.units.len()));
        assert_eq!(s.districts.len(), 8);
    }

    /// Tangerang's LIVE Room: over 150 services in their groups, its
    /// complaints app (LAKSA) routing to the OPDs.
    #[test]
    fn tangerang_runs_over_150_services_and_routes_complaints_to_opds() {
        let s = Scenario::builtin("tangerang-liveroom").unwrap();
        assert_eq!(s.time_zone, crate::domain::Zone::Wib);
        assert!(s.services.len() >= 150, "{}", s.services.len());
        let mut groups = BTreeMap::<&str, usize>::new();
        for sv in &s.services {
            *groups.entry(sv.category.as_deref().unwrap()).or_default() += 1;
        }
        assert!(groups.len() >= 12, "{groups:?}");
        assert!(groups.values().all(|n| *n >= 5), "{groups:?}");
        let laksa = s.services.iter().find(|sv| sv.id == "laksa").unwrap();
        let opds: BTreeSet<&str> = laksa.routes.iter().map(|r| r.opd.as_str()).collect();
        assert!(opds.len() >= 12, "{opds:?}");
        assert!(laksa.events.iter().any(|e| e.kind == "complaint.filed"));
    }

    /// Badung (WITA) adopted Tangerang's applications: the same services
    /// (its own OPDs' names), and a few of Bali's own.
    #[test]
    fn badung_keeps_wita_hours_with_tangerangs_applications() {
        let b = Scenario::builtin("badung-wita").unwrap();
        let t = Scenario::builtin("tangerang-liveroom").unwrap();
        assert_eq!(b.time_zone, crate::domain::Zone::Wita);
        let tangerang: BTreeMap<&str, &ServiceDef> =
            t.services.iter().map(|s| (s.id.as_str(), s)).collect();
        let adopted: Vec<&ServiceDef> = b
            .services
            .iter()
            .filter(|s| tangerang.contains_key(s.id.as_str()))
            .collect();
        assert!(adopted.len() >= 40, "{}", adopted.len());
        for s in &adopted {
            let there = tangerang[s.id.as_str()];
            assert_eq!((&s.title, &s.category), (&there.title, &there.category));
            let metrics =
                |s: &ServiceDef| s.kpis.iter().map(|k| k.metric.clone()).collect::<Vec<_>>();
            assert_eq!(metrics(s), metrics(there), "{}", s.id);
        }
        assert!(b.services.len() > adopted.len(), "and Bali's own");
    }

    #[test]
    fn unknown_names_and_paths_are_reported() {
        let e = Scenario::resolve("no-such-city").unwrap_err();
        assert!(matches!(e, ScenarioError::NotFound { .. }));
        assert!(e.to_string().contains("cilegon-weekday"), "{e}");
        let e = Scenario::load("/nonexistent/x.toml").unwrap_err();
        assert!(matches!(e, ScenarioError::Io { .. }));
    }

    #[test]
    fn invalid_scenarios_list_their_problems() {
        let mut s = Scenario::builtin("cirebon-atcs").unwrap();
        s.city = "Cirebon".into();
        s.demand_profile.pop();
        let dup = s.intersections[0].clone();
        s.intersections.push(dup);
        s.intersections[1].lat = 95.0;
        s.intersections[2].approaches[0].id = "bad id".into();
        s.units[0].lon = 120.0;
        s.incidents.push(IncidentDef {
            id: "x".into(),
            kind: "alien".into(),
            title: "t".into(),
            at_min: 1.0,
            duration_min: 5.0,
            intersection: "nowhere".into(),
            call_surge: 2.0,
            surge_categories: BTreeMap::new(),
            lines: default_lines(),
            congestion: 1.0,
            dispatch: BTreeMap::from([("navy".into(), 1)]),
            duplicate_prob: 0.5,
        });
        let e = s.validate().unwrap_err();
        let text = e.to_string();
        for needle in [
            "not a lowercase slug",
            "needs 24",
            "used twice",
            "not a valid latitude",
            "approach id",
            "outside the scenario bounds",
            "not a call category",
            "not in the scenario",
            "no units",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn bad_toml_is_a_parse_error_naming_the_origin() {
        let e = Scenario::from_toml("name = 3", "test.toml").unwrap_err();
        assert!(matches!(e, ScenarioError::Parse { .. }));
        assert!(e.to_string().contains("test.toml"));
        let text = include_str!("../scenarios/cirebon-atcs.toml")
            .replace("demand_profile", "demand_profil");
        assert!(Scenario::from_toml(&text, "typo").is_err());
    }

    #[test]
    fn hhmm_parsing() {
        assert_eq!(parse_hhmm("07:30"), Some(27_000.0));
        assert_eq!(parse_hhmm("24:00"), None);
        assert_eq!(parse_hhmm("7"), None);
        assert!(is_event_type("complaint.routed"));
        assert!(!is_event_type("Complaint.routed"));
        assert!(!is_event_type("complaint"));
    }
}
