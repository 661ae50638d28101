//! `kendali bench`: the room under a big city's load, measured end to end.
//!
//! Publishers -> MQTT broker (a private Mosquitto with the shipped production
//! configuration, or Kendali's embedded broker) -> a Kendali process with
//! PostgreSQL persistence -> K websocket screens. For each telemetry rate R it
//! reports the offered and achieved ingest, updates per screen, publish ->
//! screen latency of call events and telemetry, rows persisted and the store's
//! lag, call events lost or duplicated (in the database and at every screen),
//! dead letters, Kendali's CPU and peak RSS; then the limits of the machine
//! beside it (the broker's relay rate to a bare subscriber, `psql \copy` of
//! the same rows) and Kendali's figures as ratios to them.

pub mod load;
pub mod procstat;
pub mod screens;
pub mod stage;

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::sync::watch;

use crate::bus::BrokerUrl;

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// `mosquitto` (private, production config), `embedded`, or an `mqtt://` URL.
    pub broker: String,
    /// A PostgreSQL URL with the right to create databases; the bench makes its own.
    pub database_url: String,
    pub rates: Vec<f64>,
    pub intersections: usize,
    pub call_rate: f64,
    pub clients: usize,
    pub duration_s: u64,
    pub warmup_s: u64,
    /// Screens for the memory check (2,000 intersections); 0 skips it.
    pub memory_clients: usize,
    /// Rows for the baselines (relay messages, `\copy` rows).
    pub baseline_messages: usize,
    pub publisher_connections: usize,
    /// The measuring screen (no rate cap, full view) follows one intersection
    /// in this many (1: all of them). It is the bench's probe, not one of the
    /// wall's screens: following all 2,000 it had Kendali encode nearly every
    /// message in full (14.5 % of its samples at 50,000 msg/s), for a
    /// subscriber unlike any screen of the room. One in 20 still gives
    /// thousands of latency samples a second.
    pub telemetry_sample: usize,
    /// Steps added after `rates`, each halfway between the highest
    /// sustainable step and the lowest one above it that was not (each
    /// halves that gap, down to 2,000 msg/s).
    pub refine: usize,
    /// The kendali binary to measure (default: this one).
    pub kendali_exe: Option<std::path::PathBuf>,
    /// Kendali's web address (default: a free port), so that a browser can
    /// watch the wall during the run (`.ci/wall-soak`).
    pub http: Option<std::net::SocketAddr>,
    /// Kendali nodes sharing the bus (`mqtt.shared_group`) and the database;
    /// the screens watch the first. 1: one node, no group.
    pub nodes: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub n: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut v: Vec<f64>) -> Latency {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_by(f64::total_cmp);
        let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Latency {
            n: v.len(),
            p50_ms: p(0.5),
            p95_ms: p(0.95),
            p99_ms: p(0.99),
            max_ms: v[v.len() - 1],
        }
    }
}

/// One rate step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Step {
    pub offered_rate: f64,
    pub published_rate: f64,
    pub achieved_rate: f64,
    pub updates_per_client_s: f64,
    pub frames_per_client_s: f64,
    pub bytes_per_client_s: f64,
    pub call_latency: Latency,
    pub telemetry_latency: Latency,
    /// A dispatcher's action (`POST /api/calls/../actions`, a note) until
    /// its call event is on every screen: each action's slowest screen.
    pub dispatch_round_trip: Latency,
    /// Actions posted in the window that some screen never showed.
    pub dispatch_actions_missing: u64,
    /// Actions posted in the window that did not get their 202.
    pub dispatch_actions_refused: u64,
    /// `kendali_store_rows_total` per second: approach readings (four per
    /// telemetry message, one table row since schema v2) plus events.
    pub rows_persisted_s: f64,
    pub store_lag_ms_max: i64,
    pub store_buffered_rows_end: i64,
    pub store_dropped: u64,
    pub calls_published: u64,
    pub calls_stored: i64,
    pub calls_lost_db: i64,
    pub calls_duplicated_db: i64,
    pub calls_lost_at_clients: u64,
    pub calls_duplicated_at_clients: u64,
    pub clients_closed_early: usize,
    pub dead_letters: u64,
    pub cpu_pct: f64,
    /// The whole machine (every core, everything on it) during the measured
    /// window: 100 means no idle time left.
    pub machine_busy_pct: f64,
    /// How long the step waited for Kendali and the machine to be quiet
    /// before it started (60 s at most).
    pub settle_s: f64,
    pub rss_mb: f64,
    pub sustainable: bool,
    /// No call event lost or duplicated and the store kept up (nothing
    /// dropped, lag under 5 s), whatever the latency and the offered rate.
    pub kept_everything: bool,
    pub verdict: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub date: String,
    /// The commit the measured binary was built from (`-dirty`: with
    /// uncommitted changes).
    pub commit: String,
    pub machine: String,
    pub broker: String,
    pub intersections: usize,
    pub clients: usize,
    /// Kendali nodes on the bus (a shared group when more than one).
    pub nodes: usize,
    /// The measuring screen followed one intersection in this many.
    pub telemetry_sample: usize,
    pub call_rate: f64,
    pub duration_s: u64,
    pub steps: Vec<Step>,
    pub sustainable_max_rate: Option<f64>,
    /// The highest of `broker_relay_samples`: the machine's limit that minute.
    pub broker_relay_rate: f64,
    pub broker_relay_samples: Vec<f64>,
    /// In approach readings per second, as `rows_persisted_s`; the highest
    /// of `psql_copy_samples`.
    pub psql_copy_rows_s: f64,
    pub psql_copy_samples: Vec<f64>,
    pub ingest_to_relay_ratio: Option<f64>,
    /// Throughput against throughput: the highest achieved ingest of a step
    /// that kept every call event and persisted every row (no latency
    /// bound, as the relay rate has none), over the relay rate.
    pub kept_throughput_to_relay_ratio: Option<f64>,
    pub persisted_to_copy_ratio: Option<f64>,
    pub memory_check: Option<MemoryCheck>,
    pub peak_rss_mb: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MemoryCheck {
    pub intersections: usize,
    pub clients: usize,
    pub clients_connected: usize,
    pub rate: f64,
    /// Resident set when the check started (its own fresh Kendali), MB.
    pub start_rss_mb: f64,
    /// Peak resident set during the check alone, MB.
    pub peak_rss_mb: f64,
}

/// How to start the Kendali under measurement.
struct KendaliCmd {
    exe: std::path::PathBuf,
    /// Broker arguments.
    args: Vec<String>,
    client_id: String,
    /// `mqtt.shared_group`, with several nodes.
    group: Option<String>,
}

impl KendaliCmd {
    /// Starts `kendali serve` on `http` and waits until it is ready.
    async fn start(
        &self,
        db_url: &str,
        http: std::net::SocketAddr,
        client_suffix: &str,
    ) -> anyhow::Result<Proc> {
        let mut cmd = Command::new(&self.exe);
        if let Some(g) = &self.group {
            cmd.env("KENDALI__MQTT__SHARED_GROUP", g);
        }
        let child = Proc(
            cmd.args(["serve", "--no-sim", "--database-url", db_url])
                .args(["--http", &http.to_string()])
                .args(&self.args)
                .env(
                    "KENDALI__MQTT__CLIENT_ID",
                    format!("{}{client_suffix}", self.client_id),
                )
                .env("RUST_LOG", "warn")
                // The bench's dispatcher posts a few actions a second.
                .env("KENDALI__AUTH__ACTIONS_PER_MINUTE", "6000")
                .env("KENDALI__AUTH__ACTIONS_BURST", "100")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting kendali")?,
        );
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("http://{http}/readyz")).await {
                if r.status().is_success() {
                    break;
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("kendali did not become ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(child)
    }
}

/// The commit the measured binary was built from (`kendali --version` says
/// `0.1.0 (<commit>)`); empty if it does not answer so.
fn commit_of(exe: &std::path::Path) -> String {
    if exe == std::env::current_exe().unwrap_or_default() {
        return env!("KENDALI_COMMIT").to_owned();
    }
    Command::new(exe)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let v = String::from_utf8_lossy(&o.stdout).into_owned();
            let (_, rest) = v.split_once('(')?;
            Some(rest.split_once(')')?.0.to_owned())
        })
        .unwrap_or_default()
}

/// A child process killed on drop.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn wait_port(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not start listening on {addr}")
}

/// Starts a private Mosquitto with the production configuration we ship.
fn start_mosquitto(dir: &std::path::Path) -> anyhow::Result<(Proc, String)> {
    let addr = free_addr()?;
    let conf = crate::bus::broker::mosquitto_local_conf(addr.port(), dir);
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf)?;
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto (apt-get install mosquitto)")?;
    let p = Proc(child);
    wait_port(addr, "mosquitto")?;
    Ok((p, format!("mqtt://{addr}")))
}

async fn metric(http: &str, name: &str) -> f64 {
    let Ok(r) = reqwest::get(format!("{http}/metrics")).await else {
        return 0.0;
    };
    let Ok(text) = r.text().await else { return 0.0 };
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l.len() == name.len() || matches!(l.as_bytes()[name.len()], b' ' | b'{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A metric summed over the nodes.
async fn sum_metric(https: &[String], name: &str) -> f64 {
    let mut sum = 0.0;
    for h in https {
        sum += metric(h, name).await;
    }
    sum
}

/// A metric of each node.
async fn each_metric(https: &[String], name: &str) -> Vec<f64> {
    let mut out = Vec::with_capacity(https.len());
    for h in https {
        out.push(metric(h, name).await);
    }
    out
}

async fn pg(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(conn);
    Ok(client)
}

fn with_db(url: &str, db: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(url)?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

/// Creates and migrates database `name` next to `admin_url`; returns its URL.
async fn create_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    pg(admin_url)
        .await?
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = with_db(admin_url, name)?;
    crate::store::postgres::migrate(&url).await?;
    Ok(url)
}

/// Runs the whole bench.
pub async fn run(o: BenchOptions) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let mut report = Report {
        date: chrono::Utc::now().to_rfc3339(),
        machine: format!(
            "{} cores, {:.0} GiB",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| m
                    .lines()
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<f64>()
                    .ok())
                .unwrap_or(0.0)
                / 1048576.0
        ),
        broker: o.broker.clone(),
        intersections: o.intersections,
        clients: o.clients,
        nodes: o.nodes.max(1),
        telemetry_sample: o.telemetry_sample.max(1),
        call_rate: o.call_rate,
        duration_s: o.duration_s,
        ..Default::default()
    };

    // The database: a fresh one of the bench's own.
    let db_name = format!(
        "kendali_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let db_url = create_database(&o.database_url, &db_name).await?;

    // The broker and Kendali.
    let http_addr = match o.http {
        Some(a) => a,
        None => free_addr()?,
    };
    let exe = match &o.kendali_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    report.commit = commit_of(&exe);
    let mut args: Vec<String> = Vec::new();
    let mut _mosquitto = None;
    let mqtt_url = match o.broker.as_str() {
        "mosquitto" => {
            let (p, url) = start_mosquitto(dir.path())?;
            _mosquitto = Some(p);
            args.extend(["--mqtt-url".into(), url.clone()]);
            url
        }
        "embedded" => {
            let addr = free_addr()?;
            args.extend(["--broker-addr".into(), addr.to_string()]);
            format!("mqtt://{addr}")
        }
        url => {
            args.extend(["--mqtt-url".into(), url.into()]);
            url.to_owned()
        }
    };
    let mut kendali = KendaliCmd {
        exe,
        args,
        client_id: format!("kendali-bench-{}", &db_name[15..]),
        group: (o.nodes > 1).then(|| format!("kendali-bench-{}", &db_name[15..])),
    };
    let http = format!("http://{http_addr}");
    let dispatcher_ok = add_dispatcher(&kendali.exe, &db_url);
    let child = kendali.start(&db_url, http_addr, "").await?;
    // The other nodes of the group: each stores its share, and holds the whole city.
    let mut others = Vec::new();
    let mut https = vec![http.clone()];
    for n in 2..=o.nodes.max(1) {
        let addr = free_addr()?;
        others.push(kendali.start(&db_url, addr, &format!("-n{n}")).await?);
        https.push(format!("http://{addr}"));
    }
    let pids: Vec<u32> = std::iter::once(child.0.id())
        .chain(others.iter().map(|p| p.0.id()))
        .collect();
    let dispatcher = match dispatcher_ok {
        Ok(()) => sign_in_dispatcher(&http).await.ok(),
        Err(e) => {
            eprintln!("no dispatcher round trip: {e:#}");
            None
        }
    };
    let url = BrokerUrl::parse(&mqtt_url)?;
    let db = pg(&db_url).await?;

    let mut plan = Plan::new(&o.rates, o.refine);
    let mut i = 0;
    while let Some(rate) = plan.next(&report.steps) {
        let step = step(
            &o,
            &url,
            &https,
            &db,
            &pids,
            &format!("bench{i}"),
            rate,
            dispatcher.as_ref(),
        )
        .await?;
        eprintln!(
            "R={:>7.0}/s achieved {:>7.0}/s, calls p99 {:>6.1} ms, telemetry p99 {:>6.1} ms, dispatch round trip p99 {:>6.1} ms ({} actions, {} missing, {} refused), rows/s {:>8.0}, lost {} dup {}, cpu {:.0} % (machine {:.0} % busy): {}",
            rate, step.achieved_rate, step.call_latency.p99_ms, step.telemetry_latency.p99_ms, step.dispatch_round_trip.p99_ms, step.dispatch_round_trip.n, step.dispatch_actions_missing, step.dispatch_actions_refused, step.rows_persisted_s,
            step.calls_lost_db + step.calls_lost_at_clients as i64, step.calls_duplicated_db + step.calls_duplicated_at_clients as i64, step.cpu_pct, step.machine_busy_pct, step.verdict
        );
        report.steps.push(step);
        i += 1;
    }
    report
        .steps
        .sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
    report.sustainable_max_rate = report
        .steps
        .iter()
        .filter(|s| s.sustainable)
        .map(|s| s.offered_rate)
        .fold(None, |m, r| Some(m.map_or(r, |m: f64| m.max(r))));

    report.peak_rss_mb = pids
        .iter()
        .map(|p| procstat::peak_rss_bytes(*p).unwrap_or(0) as f64 / 1048576.0)
        .sum();
    drop(child);
    drop(others);
    // The memory check is one node's.
    kendali.group = None;
    if o.memory_clients > 0 {
        // A fresh Kendali on a fresh database: the overloaded steps leave
        // buffers (the store's telemetry backlog, retained allocator pages)
        // and a database to restore from, which are not the memory of 1,000
        // screens.
        let mem_db_url = create_database(&o.database_url, &format!("{db_name}_mem")).await?;
        let http_addr = free_addr()?;
        let child = kendali.start(&mem_db_url, http_addr, "-mem").await?;
        let check = memory_check(&o, &url, &format!("http://{http_addr}"), child.0.id()).await?;
        drop(child);
        report.peak_rss_mb = report.peak_rss_mb.max(check.peak_rss_mb);
        report.memory_check = Some(check);
    }

    // The machine's limits beside Kendali, with the same payloads. One
    // measurement takes a few seconds, and three in one run differed by up
    // to 15 %: the best of them is the limit.
    for _ in 0..BASELINE_RUNS {
        let relay = relay_rate(&url, o.baseline_messages, o.publisher_connections).await?;
        report.broker_relay_samples.push(relay);
        let copy = copy_rate(&db_url, dir.path(), o.baseline_messages).await?;
        report.psql_copy_samples.push(copy);
    }
    report.broker_relay_rate = report
        .broker_relay_samples
        .iter()
        .copied()
        .fold(0.0, f64::max);
    report.psql_copy_rows_s = report.psql_copy_samples.iter().copied().fold(0.0, f64::max);
    let best = report
        .steps
        .iter()
        .filter(|s| s.sustainable)
        .max_by(|a, b| a.achieved_rate.total_cmp(&b.achieved_rate));
    if let Some(b) = best {
        report.ingest_to_relay_ratio = Some(b.achieved_rate / report.broker_relay_rate.max(1.0));
    }
    report.kept_throughput_to_relay_ratio = report
        .steps
        .iter()
        .filter(|s| s.kept_everything)
        .map(|s| s.achieved_rate)
        .max_by(f64::total_cmp)
        .map(|r| r / report.broker_relay_rate.max(1.0));
    let best_rows = report
        .steps
        .iter()
        .map(|s| s.rows_persisted_s)
        .fold(0.0, f64::max);
    report.persisted_to_copy_ratio = Some(best_rows / report.psql_copy_rows_s.max(1.0));
    let admin = pg(&o.database_url).await?;
    // One statement each: DROP DATABASE cannot run in a multi-statement query.
    for db in [db_name.clone(), format!("{db_name}_mem")] {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await;
    }
    Ok(report)
}

/// Measurements of each baseline (relay, `\copy`); the report keeps the highest.
const BASELINE_RUNS: usize = 3;

/// The order of the steps: the listed rates from the lowest up, except that
/// once a step above the highest sustainable one has failed, up to `refine`
/// refinement steps between them come first. The higher listed rates come
/// after them: their overload would otherwise precede the refinement (steps
/// right after an overloaded one measured worse than the same rate before
/// it). A listed step that is sustainable above a refined gap (the
/// failure below it was the machine's minute) gives its own gap a fresh
/// `refine` steps.
struct Plan {
    listed: VecDeque<f64>,
    refine: usize,
    left: usize,
    /// The failed step whose gap is being refined.
    refining_below: Option<f64>,
}

impl Plan {
    fn new(rates: &[f64], refine: usize) -> Plan {
        let mut listed = rates.to_vec();
        listed.sort_by(f64::total_cmp);
        Plan {
            listed: listed.into(),
            refine,
            left: refine,
            refining_below: None,
        }
    }

    fn next(&mut self, steps: &[Step]) -> Option<f64> {
        if let Some(hi) = self.refining_below {
            if highest_sustainable(steps).is_some_and(|lo| lo > hi) {
                self.left = self.refine;
                self.refining_below = None;
            }
        }
        if self.left > 0 {
            if let Some((hi, r)) = refine_rate(steps) {
                self.refining_below.get_or_insert(hi);
                self.left -= 1;
                return Some(r);
            }
        }
        self.listed.pop_front()
    }
}

fn highest_sustainable(steps: &[Step]) -> Option<f64> {
    steps
        .iter()
        .filter(|s| s.sustainable)
        .map(|s| s.offered_rate)
        .max_by(f64::total_cmp)
}

/// Where the bench looks next for the sustainable maximum: halfway (to
/// 500 msg/s) between the highest sustainable step and the lowest step above
/// it that was not, while they are more than 2,000 msg/s apart; with that
/// step's rate.
fn refine_rate(steps: &[Step]) -> Option<(f64, f64)> {
    let lo = highest_sustainable(steps)?;
    let hi = steps
        .iter()
        .filter(|s| !s.sustainable && s.offered_rate > lo)
        .map(|s| s.offered_rate)
        .min_by(f64::total_cmp)?;
    (hi - lo > 2000.0).then(|| (hi, ((lo + hi) / 2.0 / 500.0).round() * 500.0))
}

/// The `&intersections=` part of the measuring screen's query: one
/// intersection in `every` (nothing when it follows them all).
fn sampled_intersections(intersections: usize, every: usize) -> String {
    if every <= 1 {
        return String::new();
    }
    let ids: Vec<String> = (0..intersections)
        .step_by(every)
        .map(load::intersection_id)
        .collect();
    format!("&intersections={}", ids.join(","))
}

// One step's whole setting; a struct for it would be built once per call.
#[allow(clippy::too_many_arguments)]
async fn step(
    o: &BenchOptions,
    url: &BrokerUrl,
    https: &[String],
    db: &tokio_postgres::Client,
    pids: &[u32],
    city: &str,
    rate: f64,
    dispatcher: Option<&reqwest::Client>,
) -> anyhow::Result<Step> {
    // A step after an overloaded one starts once Kendali has finished what
    // that step left it (its store's backlog, lagging screens), and the
    // machine has too (the database's checkpoint and autovacuum after a
    // million rows, the broker's queues), bounded: that work is not this
    // step's load. A step after an overloaded one was measured at call p99
    // 130 ms where the same rate alone gave 57-61 ms. The machine gets 15 s
    // at most (Kendali 60): on a machine that is never quiet, eleven steps
    // must still fit in the run's 10 minutes.
    // The screens watch the first node; CPU, memory and the store's figures
    // are every node's.
    let http = https[0].as_str();
    let cpu = || -> f64 {
        pids.iter()
            .map(|p| procstat::cpu_seconds(*p).unwrap_or(0.0))
            .sum()
    };
    let settling = Instant::now();
    let settle = settling + Duration::from_secs(60);
    while Instant::now() < settle {
        let cpu0 = cpu();
        let machine0 = procstat::machine_ticks();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = (cpu() - cpu0) / 0.5;
        let machine_quiet = procstat::busy_pct(machine0, procstat::machine_ticks()) < 20.0
            || settling.elapsed() > Duration::from_secs(15);
        if busy < 0.1
            && machine_quiet
            && sum_metric(https, "kendali_store_buffered_rows").await < 1000.0
        {
            break;
        }
    }
    let settle_s = settling.elapsed().as_secs_f64();
    let (stop_tx, stop_rx) = watch::channel(false);
    // Screens stop after the publishers, once every call event had its chance to arrive.
    let (screens_stop_tx, screens_stop_rx) = watch::channel(false);
    let measuring = Arc::new(AtomicBool::new(false));
    let ws = http.replace("http://", "ws://");
    let mut screens = Vec::new();
    let mut seen = Vec::new();
    for i in 0..=o.clients {
        // The first screen has no rate cap and the full view: it measures telemetry
        // latency. The others subscribe as the wall does.
        let q = if i == 0 {
            format!(
                "{ws}/ws?cities={city}&families=atcs,calls{}",
                sampled_intersections(o.intersections, o.telemetry_sample)
            )
        } else {
            format!("{ws}/ws?cities={city}&view=summary&max_rate=1")
        };
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        seen.push(counter.clone());
        screens.push(tokio::spawn(screens::screen(
            q,
            i == 0,
            screens_stop_rx.clone(),
            measuring.clone(),
            counter,
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = Arc::new(load::Published::default());
    let total = o.warmup_s + o.duration_s;
    let n_calls = (o.call_rate * total as f64) as usize;
    let ids: Arc<Vec<uuid::Uuid>> = Arc::new((0..n_calls).map(|_| uuid::Uuid::new_v4()).collect());
    let tele = tokio::spawn(load::telemetry(
        url.clone(),
        city.to_owned(),
        o.intersections,
        rate,
        o.publisher_connections,
        published.clone(),
        stop_rx.clone(),
    ));
    let calls = tokio::spawn(load::calls(
        url.clone(),
        city.to_owned(),
        ids.clone(),
        o.call_rate,
        published.clone(),
    ));
    // The dispatcher's round trip: notes on the step's first call, a few a
    // second through the measured window.
    let posted: Posted = Default::default();
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let round_trips = dispatcher.map(|client| {
        tokio::spawn(dispatch_actions(
            client.clone(),
            http.to_owned(),
            city.to_owned(),
            measuring.clone(),
            (posted.clone(), accepted.clone()),
            stop_rx.clone(),
        ))
    });
    tokio::time::sleep(Duration::from_secs(o.warmup_s)).await;

    // The measured window.
    // Every node applies every message (its view): ingest is each node's,
    // and the slowest one's counts. Storage is shared: rows add up.
    let m0 = (
        each_metric(https, "kendali_messages_total").await,
        sum_metric(https, "kendali_store_rows_total").await,
        metric(http, "kendali_rejected_total").await,
    );
    // Cumulative over the run: a step counts what it dropped itself.
    let dropped0 = sum_metric(https, "kendali_store_dropped_total").await as u64;
    let p0 = published.telemetry.load(Ordering::Relaxed);
    let cpu0 = cpu();
    let machine0 = procstat::machine_ticks();
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    let mut lag_max = 0i64;
    while t0.elapsed() < Duration::from_secs(o.duration_s) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        for h in https {
            lag_max = lag_max.max(metric(h, "kendali_store_lag_ms").await as i64);
        }
    }
    measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let m1 = (
        each_metric(https, "kendali_messages_total").await,
        sum_metric(https, "kendali_store_rows_total").await,
        metric(http, "kendali_rejected_total").await,
    );
    let p1 = published.telemetry.load(Ordering::Relaxed);
    let cpu1 = cpu();
    let machine_busy_pct = procstat::busy_pct(machine0, procstat::machine_ticks());
    let buffered_end = sum_metric(https, "kendali_store_buffered_rows").await as i64;
    let dropped =
        (sum_metric(https, "kendali_store_dropped_total").await as u64).saturating_sub(dropped0);
    // The slowest node's ingest.
    let achieved = (m1.0.iter().zip(&m0.0))
        .map(|(b, a)| b - a)
        .fold(f64::INFINITY, f64::min);

    // Stop the telemetry, let the call events finish and drain everywhere.
    let _ = stop_tx.send(true);
    if let Some(t) = round_trips {
        let _ = t.await;
    }
    let _ = tele.await;
    let _ = calls.await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut stored, mut distinct) = (0i64, 0i64);
    while Instant::now() < deadline {
        let r = db
            .query_one(
                // The bench's own events (each call rings and is answered);
                // the dispatcher's actions add events of their own.
                "SELECT count(*), count(DISTINCT event_id) FROM call_events WHERE city = $1 AND event_id = ANY($2)",
                &[&city, &ids.as_slice()],
            )
            .await?;
        (stored, distinct) = (r.get(0), r.get(1));
        if distinct as usize >= ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And until every screen has had every call event, the dispatcher's
    // included (or a bounded wait).
    let events = ids.len() as u64 + accepted.load(Ordering::Relaxed);
    while Instant::now() < deadline + Duration::from_secs(15)
        && seen.iter().any(|c| c.load(Ordering::Relaxed) < events)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = screens_stop_tx.send(true);
    let mut stats = Vec::new();
    for s in screens {
        stats.push(s.await?);
    }
    let mut st = Step {
        offered_rate: rate,
        published_rate: (p1 - p0) as f64 / secs,
        achieved_rate: achieved / secs,
        rows_persisted_s: (m1.1 - m0.1) / secs,
        dead_letters: (m1.2 - m0.2) as u64,
        store_lag_ms_max: lag_max,
        store_buffered_rows_end: buffered_end,
        store_dropped: dropped,
        calls_published: published.calls.load(Ordering::Relaxed),
        calls_stored: stored,
        calls_lost_db: ids.len() as i64 - distinct,
        calls_duplicated_db: stored - distinct,
        cpu_pct: (cpu1 - cpu0) / secs * 100.0,
        machine_busy_pct,
        settle_s,
        rss_mb: pids
            .iter()
            .map(|p| procstat::rss_bytes(*p).unwrap_or(0) as f64 / 1048576.0)
            .sum(),
        ..Default::default()
    };
    let walls = &stats[1..];
    let n = walls.len().max(1) as f64;
    st.updates_per_client_s = walls.iter().map(|s| s.updates as f64).sum::<f64>() / n / secs;
    st.frames_per_client_s = walls.iter().map(|s| s.frames as f64).sum::<f64>() / n / secs;
    st.bytes_per_client_s = walls.iter().map(|s| s.bytes as f64).sum::<f64>() / n / secs;
    st.clients_closed_early = stats.iter().filter(|s| s.closed_early).count();
    for s in &stats {
        st.calls_lost_at_clients += ids
            .iter()
            .filter(|id| !s.call_events.contains_key(id))
            .count() as u64;
        st.calls_duplicated_at_clients += s
            .call_events
            .values()
            .map(|n| (*n as u64).saturating_sub(1))
            .sum::<u64>();
    }
    st.call_latency = Latency::of(
        stats
            .iter()
            .flat_map(|s| s.call_latency_ms.iter().copied())
            .collect(),
    );
    st.telemetry_latency = Latency::of(stats[0].telemetry_latency_ms.clone());
    (
        st.dispatch_round_trip,
        st.dispatch_actions_missing,
        st.dispatch_actions_refused,
    ) = round_trip(
        &posted.lock().unwrap_or_else(|e| e.into_inner()),
        &stats[1..],
    );
    let lossless = st.calls_lost_db == 0
        && st.calls_duplicated_db == 0
        && st.calls_lost_at_clients == 0
        && st.calls_duplicated_at_clients == 0;
    let ingest_keeps_up = st.achieved_rate >= 0.97 * st.published_rate;
    let offered = st.published_rate >= 0.97 * rate;
    let keeps_up = ingest_keeps_up && offered;
    let store_ok = st.store_dropped == 0 && st.store_lag_ms_max < 5_000;
    let fast = st.call_latency.p99_ms <= 100.0;
    st.sustainable = lossless && keeps_up && store_ok && fast;
    st.kept_everything = lossless && store_ok;
    st.verdict = if st.sustainable {
        "sustainable".into()
    } else {
        let mut why = Vec::new();
        if !lossless {
            why.push("call events lost or duplicated");
        }
        if !ingest_keeps_up {
            why.push("ingest falls behind the published rate");
        }
        if !offered {
            // Kendali may have taken every message published: the load itself
            // fell short, on a machine with no idle time left.
            why.push("the publishers fell short of the offered rate");
        }
        if st.store_dropped > 0 {
            why.push("the store dropped telemetry");
        }
        if st.store_lag_ms_max >= 5_000 {
            why.push("store lag unbounded");
        }
        if !fast {
            why.push("call p99 over 100 ms");
        }
        why.join(", ")
    };
    Ok(st)
}

/// The bench's dispatcher in the database before Kendali starts (`kendali
/// users add`); an older binary without users gives no round trip.
fn add_dispatcher(exe: &std::path::Path, db_url: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new(exe)
        .args(["users", "add", BENCH_DISPATCHER, "--role", "dispatcher"])
        .args(["--password-stdin", "--database-url", db_url])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("kendali users add")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{BENCH_DISPATCHER}-sandi-rahasia\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "kendali users add: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

const BENCH_DISPATCHER: &str = "bench-dispatcher";

/// A client carrying the bench dispatcher's session.
async fn sign_in_dispatcher(http: &str) -> anyhow::Result<reqwest::Client> {
    let r = reqwest::Client::new()
        .post(format!("{http}/api/login"))
        .json(&serde_json::json!({ "username": BENCH_DISPATCHER, "password": format!("{BENCH_DISPATCHER}-sandi-rahasia") }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("the bench dispatcher could not sign in: {}", r.status());
    }
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(crate::web::SESSION_COOKIE))
        .and_then(|c| c.split(';').next())
        .context("no session cookie")?
        .to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse()?);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// The dispatcher's actions in the measured window: id, when its POST
/// started, whether it got its 202.
type Posted = Arc<std::sync::Mutex<Vec<(uuid::Uuid, Instant, bool)>>>;

/// Actions a second the bench's dispatcher posts.
const ACTIONS_PER_S: f64 = 4.0;

/// Posts a note on the step's first call `ACTIONS_PER_S` times a second
/// until `stop`, recording each action posted in the measured window (id,
/// when the POST started, accepted or not) and counting all accepted.
async fn dispatch_actions(
    client: reqwest::Client,
    http: String,
    city: String,
    measuring: Arc<AtomicBool>,
    (posted, accepted): (Posted, Arc<std::sync::atomic::AtomicU64>),
    mut stop: watch::Receiver<bool>,
) {
    // The load's first call (`b0`) must be in the live state first.
    let call = format!("{http}/api/calls/{city}/b0");
    while !*stop.borrow() {
        if client
            .get(&call)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / ACTIONS_PER_S));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let measure = measuring.load(Ordering::Relaxed);
        let id = uuid::Uuid::new_v4();
        let t0 = Instant::now();
        let ok = client
            .post(format!("{call}/actions"))
            .json(&serde_json::json!({ "action": "note", "action_id": id, "text": "bench round trip" }))
            .send()
            .await
            .is_ok_and(|r| r.status() == reqwest::StatusCode::ACCEPTED);
        if ok {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        if measure {
            posted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id, t0, ok));
        }
    }
}

/// Each accepted action's slowest screen, how many accepted actions some
/// screen never showed, and how many were not accepted.
fn round_trip(
    posted: &[(uuid::Uuid, Instant, bool)],
    screens: &[screens::ScreenStats],
) -> (Latency, u64, u64) {
    let seen: Vec<std::collections::HashMap<uuid::Uuid, Instant>> = screens
        .iter()
        .map(|s| s.actions_seen.iter().copied().collect())
        .collect();
    let mut slowest = Vec::new();
    let (mut missing, mut refused) = (0, 0);
    for (id, t0, ok) in posted {
        if !ok {
            refused += 1;
            continue;
        }
        let at: Option<Vec<Instant>> = seen.iter().map(|s| s.get(id).copied()).collect();
        match at {
            Some(at) => slowest.push(
                at.iter()
                    .map(|t| t.saturating_duration_since(*t0).as_secs_f64() * 1000.0)
                    .fold(0.0, f64::max),
            ),
            None => missing += 1,
        }
    }
    (Latency::of(slowest), missing, refused)
}

async fn memory_check(
    o: &BenchOptions,
    url: &BrokerUrl,
    http: &str,
    pid: u32,
) -> anyhow::Result<MemoryCheck> {
    let start_rss_mb = procstat::rss_bytes(pid).unwrap_or(0) as f64 / 1048576.0;
    let (stop_tx, stop_rx) = watch::channel(false);
    let measuring = Arc::new(AtomicBool::new(true));
    let ws = http.replace("http://", "ws://");
    let city = "benchmem";
    let mut screens = Vec::new();
    for _ in 0..o.memory_clients {
        screens.push(tokio::spawn(screens::screen(
            format!("{ws}/ws?cities={city}&view=summary&max_rate=1"),
            false,
            stop_rx.clone(),
            measuring.clone(),
            Arc::new(std::sync::atomic::AtomicU64::new(0)),
        )));
    }
    let published = Arc::new(load::Published::default());
    let rate = 10_000.0;
    let tele = tokio::spawn(load::telemetry(
        url.clone(),
        city.into(),
        2000,
        rate,
        o.publisher_connections,
        published,
        stop_rx.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(o.duration_s.min(20))).await;
    let connected = metric(http, "kendali_ws_clients").await as usize;
    let _ = stop_tx.send(true);
    let _ = tele.await;
    for s in screens {
        let _ = s.await;
    }
    Ok(MemoryCheck {
        intersections: 2000,
        clients: o.memory_clients,
        clients_connected: connected,
        rate,
        start_rss_mb,
        peak_rss_mb: procstat::peak_rss_bytes(pid).unwrap_or(0) as f64 / 1048576.0,
    })
}

/// The broker's relay rate to a bare subscriber that only counts.
async fn relay_rate(url: &BrokerUrl, messages: usize, connections: usize) -> anyhow::Result<f64> {
    let id = format!(
        "bench-relay-sub-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut opts = rumqttc::MqttOptions::new(id, url.host.clone(), url.port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (sub, mut el) = rumqttc::AsyncClient::new(opts, 1000);
    sub.subscribe("city/relay/#", rumqttc::QoS::AtMostOnce)
        .await?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let counter = tokio::spawn(async move {
        let (mut n, mut first, mut last) = (0usize, None, Instant::now());
        let mut done_tx = Some(done_tx);
        loop {
            match tokio::time::timeout(Duration::from_secs(5), el.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => {
                    if let Some(tx) = done_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)))) => {
                    n += 1;
                    last = Instant::now();
                    first.get_or_insert(last);
                    if n >= messages {
                        break;
                    }
                }
                Ok(Ok(_)) => {}
                _ => break,
            }
        }
        (
            n,
            first
                .map(|f| last.duration_since(f).as_secs_f64())
                .unwrap_or(0.0),
        )
    });
    let _ = done_rx.await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let published = Arc::new(load::Published::default());
    // Offer far more than any broker relays here; the subscriber counts what arrives.
    let tele = tokio::spawn(load::telemetry(
        url.clone(),
        "relay".into(),
        2000,
        400_000.0,
        connections,
        published.clone(),
        stop_rx,
    ));
    let (n, secs) = counter.await?;
    let _ = stop_tx.send(true);
    let _ = tele.await;
    Ok(if secs > 0.0 { n as f64 / secs } else { 0.0 })
}

/// `psql \copy` of the same telemetry into the same table, one row per
/// message as Kendali writes it; counted in approach readings (four per
/// message), the unit of `kendali_store_rows_total`.
async fn copy_rate(db_url: &str, dir: &std::path::Path, messages: usize) -> anyhow::Result<f64> {
    let path = dir.join("telemetry.csv");
    let mut csv = String::with_capacity(messages * 200);
    let now = chrono::Utc::now();
    for i in 0..messages {
        let ts = (now + chrono::Duration::microseconds(i as i64)).to_rfc3339();
        csv.push_str(&format!(
            "{ts},copy,j{:04},adaptive,pagi,120,1,{ts},\"{{utara,selatan,timur,barat}}\",\"{{40,40,40,40}}\",\"{{1200,1200,1200,1200}}\",\"{{60,60,60,60}}\",\"{{0.8,0.7,0.5,0.4}}\",\"{{t,t,t,t}}\"\n",
            i % 2000
        ));
    }
    std::fs::write(&path, csv)?;
    let readings = messages * 4;
    let t = Instant::now();
    let out = Command::new("psql")
        .arg(db_url)
        .arg("-qc")
        .arg(format!(
            "\\copy atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s, flow_vph, queue_m, saturation, detector_ok) FROM '{}' CSV",
            path.display()
        ))
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql \\copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(readings as f64 / t.elapsed().as_secs_f64())
}

/// The report as a markdown table.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Bench of {} (commit {}), {}; broker: {}; {}; {} intersections, {} wall screens (+1 measuring telemetry on 1 intersection in {}), {} call events/s, {} s per step.\n\n",
        r.date, r.commit, r.machine, r.broker,
        if r.nodes > 1 { format!("{} Kendali nodes in a shared group (ingest: the slowest node's; CPU, RSS and rows: all nodes')", r.nodes) } else { "one Kendali node".to_owned() },
        r.intersections, r.clients, r.telemetry_sample, r.call_rate, r.duration_s
    ));
    s.push_str("| offered R (msg/s) | published | achieved ingest | updates/screen/s (KB/s) | call p50 / p95 / p99 / max (ms) | telemetry p50 / p99 (ms) | dispatch round trip p50 / p99 / max (ms), actions (missing, refused) | rows persisted/s | store lag max (ms) | calls lost / dup (db, screens) | dead letters | Kendali CPU | machine busy | RSS | verdict |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for st in &r.steps {
        s.push_str(&format!(
            "| {:.0} | {:.0} | {:.0} | {:.0} ({:.0}) | {:.1} / {:.1} / {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} / {:.1}, {} ({}, {}) | {:.0} | {} | {} / {}, {} / {} | {} | {:.0} % | {:.0} % | {:.0} MB | {} |\n",
            st.offered_rate, st.published_rate, st.achieved_rate, st.updates_per_client_s, st.bytes_per_client_s / 1024.0, st.call_latency.p50_ms, st.call_latency.p95_ms, st.call_latency.p99_ms,
            st.call_latency.max_ms, st.telemetry_latency.p50_ms, st.telemetry_latency.p99_ms,
            st.dispatch_round_trip.p50_ms, st.dispatch_round_trip.p99_ms, st.dispatch_round_trip.max_ms, st.dispatch_round_trip.n, st.dispatch_actions_missing, st.dispatch_actions_refused, st.rows_persisted_s, st.store_lag_ms_max, st.calls_lost_db,
            st.calls_duplicated_db, st.calls_lost_at_clients, st.calls_duplicated_at_clients, st.dead_letters, st.cpu_pct, st.machine_busy_pct, st.rss_mb, st.verdict
        ));
    }
    s.push_str(&format!(
        "\n| figure | value |\n|---|---|\n| sustainable maximum R | {} |\n| broker relay rate to a bare subscriber (best of {}) | {:.0} msg/s |\n| achieved ingest / relay (at the sustainable maximum) | {} |\n| highest achieved ingest that kept every call and row / relay (no latency bound) | {} |\n| `psql \\copy` of the same rows (best of {}) | {:.0} rows/s |\n| persisted rows/s / `\\copy` | {} |\n| peak RSS (whole run) | {:.0} MB |\n",
        r.sustainable_max_rate.map(|v| format!("{v:.0} msg/s")).unwrap_or_else(|| "none of the steps".into()),
        samples(&r.broker_relay_samples),
        r.broker_relay_rate,
        r.ingest_to_relay_ratio.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
        r.kept_throughput_to_relay_ratio.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
        samples(&r.psql_copy_samples),
        r.psql_copy_rows_s,
        r.persisted_to_copy_ratio.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into()),
        r.peak_rss_mb
    ));
    if let Some(m) = &r.memory_check {
        s.push_str(&format!(
            "| memory check: {} intersections, {} screens ({} connected), {:.0} msg/s | peak RSS {:.0} MB (from {:.0} MB at its start) |\n",
            m.intersections, m.clients, m.clients_connected, m.rate, m.peak_rss_mb, m.start_rss_mb
        ));
    }
    s
}

/// `a, b, c` of a baseline's measurements.
fn samples(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, sustainable: bool) -> Step {
        Step {
            offered_rate: rate,
            sustainable,
            ..Step::default()
        }
    }

    #[test]
    fn the_measuring_screen_follows_one_intersection_in_n() {
        assert_eq!(
            sampled_intersections(50, 20),
            "&intersections=j0000,j0020,j0040"
        );
        let (q, _) = crate::hub::Filter::from_query(&sampled_intersections(2000, 20)[1..])
            .expect("a valid subscription");
        assert_eq!(q.intersections.len(), 100);
        assert_eq!(sampled_intersections(2000, 1), "", "1 follows them all");
    }

    #[test]
    fn the_bench_refines_between_the_highest_sustainable_step_and_the_next() {
        let mut steps = vec![
            step(10_000.0, true),
            step(50_000.0, true),
            step(60_000.0, true),
            step(75_000.0, false),
        ];
        assert_eq!(refine_rate(&steps).map(|(_, r)| r), Some(67_500.0));
        steps.push(step(67_500.0, false));
        assert_eq!(
            refine_rate(&steps).map(|(_, r)| r),
            Some(64_000.0),
            "63,750 to 500"
        );
        steps.push(step(64_000.0, true));
        assert_eq!(
            refine_rate(&steps).map(|(_, r)| r),
            Some(66_000.0),
            "65,750 to 500"
        );
        steps.push(step(66_000.0, true));
        assert_eq!(refine_rate(&steps), None, "1,500 apart: close enough");
        assert_eq!(refine_rate(&[step(10_000.0, false)]), None);
        assert_eq!(refine_rate(&[step(10_000.0, true)]), None);
    }

    /// The rates a plan runs when the steps come out as `outcome` says, in order.
    fn run(plan: &mut Plan, outcome: impl Fn(f64) -> bool) -> Vec<f64> {
        let mut steps = Vec::new();
        while let Some(r) = plan.next(&steps) {
            steps.push(step(r, outcome(r)));
        }
        steps.iter().map(|s| s.offered_rate).collect()
    }

    #[test]
    fn refinement_comes_before_the_higher_listed_rates() {
        let listed = [90_000.0, 50_000.0, 70_000.0, 80_000.0];
        assert_eq!(
            run(&mut Plan::new(&listed, 2), |r| r <= 76_000.0),
            [50_000.0, 70_000.0, 80_000.0, 75_000.0, 77_500.0, 90_000.0]
        );
        // A failure at 60,000 that 70,000 contradicts: 60,000's gap is
        // refined, then 80,000's gets its own steps.
        assert_eq!(
            run(
                &mut Plan::new(&[50_000.0, 60_000.0, 70_000.0, 80_000.0], 2),
                |r| r != 60_000.0 && r <= 76_000.0
            ),
            [50_000.0, 60_000.0, 55_000.0, 57_500.0, 70_000.0, 80_000.0, 75_000.0, 77_500.0]
        );
        assert_eq!(
            run(&mut Plan::new(&listed, 0), |_| false),
            [50_000.0, 70_000.0, 80_000.0, 90_000.0]
        );
    }
}
