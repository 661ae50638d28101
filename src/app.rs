//! Start-up: wires the stages in data-flow order and binds the ports.
//!
//! ```text
//! MQTT broker --> ingest (poll, decode, validate) --> state (owns the city)
//!    (calls) ---> ingest, own connection -----------> (read first)
//!                                                       |--> hub --> ws sessions (one task each)
//!                                                       '--> store --> QoS 1 acks, each on its connection
//! ```
//! Channels between stages are bounded. The hub runs beside the store, not
//! after it: a slow database never freezes a screen, and a slow screen never
//! slows ingest.
//!
//! Shutdown ([`Pipeline::drain`]) goes the same way: ingest stops taking,
//! the state hands off what it holds and its channels close, the store
//! writes its last batch and acks it on the connections that are still
//! polled, then those disconnect, the hub closes the screens (1001) and the
//! web server stops. Bounded by `runtime.shutdown_grace_s`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::bus::{self, BrokerUrl, BusEvent, ConnectOptions, Qos};
use crate::config::{MqttSettings, Settings};
use crate::contract::{Limits, Message, Topic};
use crate::hub::Hub;
use crate::ingest::deadletter::DeadLetters;
use crate::ingest::{Drain, IngestLoop, IngestReport, IngestStatus};
use crate::metrics::Metrics;
use crate::sensors::{runner, scenario::Scenario, sim::Simulation};
use crate::state::{self, CityState, Route, StateTask};
use crate::store::{self as store, StoreReport, StoreTask, STORE_CAPACITY};
use crate::web::WebContext;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Broker(#[from] bus::broker::BrokerError),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(
        "the web server cannot listen on {addr}. Choose another address with --http (or KENDALI_HTTP_ADDR)"
    )]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("scenario: {0}")]
    Scenario(String),
    #[error("https: {0}")]
    Tls(String),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

/// A running Kendali node.
pub struct Application {
    http_addr: SocketAddr,
    mqtt_url: String,
    server: actix_web::dev::Server,
    shutdown: watch::Sender<bool>,
    hub: crate::hub::HubHandle,
    directory: crate::identity::directory::Directory,
    pipeline: Pipeline,
}

impl Application {
    /// Starts every stage and binds the ports (port 0 picks a free one).
    pub async fn build(mut settings: Settings) -> Result<Application, StartError> {
        let metrics = Arc::new(Metrics::new());
        metrics
            .runtime_workers
            .set(tokio::runtime::Handle::current().metrics().num_workers() as i64);
        let deadletters = DeadLetters::new(settings.ingest.deadletter_capacity, metrics.clone());
        // The store first: the live state is rebuilt from it before ingest starts.
        let store_handle = store::open(&settings.database).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        // The simulated city, and each city's time zone: the settings', else
        // its scenario's or its city file's (`kendali city import`).
        let scenario = if settings.sim.enabled {
            let s = Scenario::resolve(&settings.sim.scenario)
                .map_err(|e| StartError::Scenario(e.to_string()))?;
            settings
                .cities
                .time_zones
                .entry(s.city.clone())
                .or_insert(s.time_zone);
            Some(s)
        } else {
            None
        };
        if let Some(pool) = store_handle.pool() {
            match crate::store::maps::zones(&pool).await {
                Ok(zones) => {
                    for (city, zone) in zones {
                        settings.cities.time_zones.entry(city).or_insert(zone);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the imported cities' time zones could not be read")
                }
            }
        }

        // The bus: an external broker, or the embedded one.
        let mqtt_url = match &settings.mqtt.url {
            Some(u) => u.clone(),
            None => {
                bus::broker::start(settings.mqtt.broker_addr, settings.mqtt.max_packet_bytes)?;
                format!("mqtt://{}", settings.mqtt.broker_addr)
            }
        };
        let url = BrokerUrl::parse(&mqtt_url)?;
        let limits = Limits {
            max_payload: settings.ingest.max_payload_bytes,
            max_future: chrono::Duration::seconds(settings.ingest.max_future_s),
        };
        // One connection per group of families (`mqtt.priority_families`).
        // With `mqtt.shared_group`, each group also gets a view connection
        // (not shared, a clean session): the node's state holds the whole city.
        let groups = crate::ingest::connections(&settings.mqtt);
        let shared = settings.mqtt.shared_group.is_some();
        let mut connections = Vec::new();
        for (i, families) in groups.iter().enumerate() {
            let route = if shared { Route::Store } else { Route::Both };
            let client_id = crate::ingest::client_id(&settings.mqtt, i);
            connections.push((i, families.clone(), route, client_id));
        }
        if shared {
            for (i, families) in groups.iter().enumerate() {
                let client_id = crate::ingest::view_client_id(&settings.mqtt, i);
                connections.push((i, families.clone(), Route::View, client_id));
            }
        }
        let mut buses = Vec::new();
        for (group, families, route, client_id) in connections {
            let view = route == Route::View;
            let (client, events) = bus::connect(
                &url,
                &settings.mqtt,
                &ConnectOptions {
                    client_id: client_id.clone(),
                    persistent: !view,
                    manual_acks: !view,
                    // As large as the broker lets through (the embedded one takes
                    // the same setting): an oversize message is read, dead-lettered
                    // and acknowledged instead of costing the connection.
                    max_packet_bytes: settings.mqtt.max_packet_bytes,
                    // Above any broker's in-flight window, so acks never wait on the poll loop.
                    request_capacity: 65_536,
                },
            )?;
            tracing::info!(broker = %mqtt_url, %client_id, ?families, ?route, protocol = ?settings.mqtt.protocol, "bus configured");
            buses.push((client, events, families, group, route, client_id));
        }

        // Operator actions are published on the main connection.
        let client = buses[0].0.clone();
        let status = Arc::new(IngestStatus::new(buses.len()));
        let (state_tx, state_rx) = mpsc::channel(state::INPUT_CAPACITY);
        // The priority connection's channel: a few seconds of a very busy call centre.
        let (priority_tx, priority_rx) = mpsc::channel(1024);
        let (hub_tx, hub_rx) = mpsc::channel(crate::hub::HUB_INPUT_CAPACITY);
        let (store_tx, store_rx) = mpsc::channel(STORE_CAPACITY);
        let (hub, hub_handle) = Hub::new(
            settings.hub.clone(),
            settings.state.recent_events_kept,
            metrics.clone(),
            hub_rx,
        );
        let grace = Duration::from_secs(settings.runtime.shutdown_grace_s);
        let hub_task = tokio::spawn(hub.run());
        let store_task = tokio::spawn(
            StoreTask {
                handle: store_handle.clone(),
                settings: settings.database.clone(),
                input: store_rx,
                metrics: metrics.clone(),
                deadletters: deadletters.clone(),
                writer: shared.then(|| settings.mqtt.client_id.clone()),
            }
            .run(grace),
        );
        // The alert engine, fed by the state's fan-out (started before the
        // state's restore, which it reads as it comes). It publishes on the
        // main connection, as operator actions are.
        let mut out = crate::state::FanOut::hub(hub_tx);
        // Whether this node runs the rules (alerts, the traffic desk's own
        // commands): always alone; one node of a shared group.
        let rules = crate::store::leader::rules_node(
            store_handle.pool(),
            shared,
            metrics.clone(),
            shutdown_rx.clone(),
        );
        let (alerts, alert_requests) = crate::alerts::AlertEngine::handle();
        if settings.alerts.enabled {
            let (tx, rx) = mpsc::channel(crate::alerts::INPUT_CAPACITY);
            out = out.with(crate::state::Output {
                name: "alerts",
                tx,
                wants: crate::state::fanout::rule_inputs,
                required: false,
            });
            let engine = crate::alerts::AlertEngine::new(
                settings.alerts.clone(),
                settings.dispatch.clone(),
                settings.traffic.congestion_saturation,
                crate::traffic::Outbox {
                    bus: client.clone(),
                    ingest: status.clone(),
                    directory: crate::identity::directory::Directory::beside(&store_handle),
                    limits: limits.clone(),
                },
                store_handle.clone(),
                rules.clone(),
            );
            tokio::spawn(engine.run(rx, alert_requests, shutdown_rx.clone()));
        }
        let mut state_task = StateTask {
            city: CityState::new(settings.state.clone())
                .with_traffic(settings.traffic.clone())
                .with_zones(settings.cities.zones()),
            input: state_rx,
            priority: buses.iter().any(|b| b.3 > 0).then_some(priority_rx),
            out,
            store: store_tx,
            deadletters: deadletters.clone(),
            metrics: metrics.clone(),
        };
        let day_start = settings.cities.zones().earliest_day_start(Utc::now());
        state_task
            .replay(store_handle.restore(day_start).await?)
            .await;
        let state_task = tokio::spawn(state_task.run());
        let (drain, drain_rx) = watch::channel(Drain::Running);
        let mut ingest_tasks = Vec::new();
        for (index, (client, events, families, group, route, client_id)) in
            buses.into_iter().enumerate()
        {
            let out = if group == 0 {
                state_tx.clone()
            } else {
                priority_tx.clone()
            };
            ingest_tasks.push(tokio::spawn(
                IngestLoop {
                    client,
                    client_id,
                    route,
                    events,
                    settings: settings.mqtt.clone(),
                    families,
                    index,
                    limits: limits.clone(),
                    status: status.clone(),
                    metrics: metrics.clone(),
                }
                .run(out, drain_rx.clone()),
            ));
        }
        drop((state_tx, priority_tx));
        let pipeline = Pipeline {
            drain,
            ingest: ingest_tasks,
            state: state_task,
            store: store_task,
            hub: hub_task,
            grace,
        };

        // The simulated city, publishing through the same bus as real sources.
        let mut scenario_json = None;
        if let Some(scenario) = scenario {
            scenario_json = serde_json::to_value(&scenario).ok();
            let mut sim_mqtt = settings.mqtt.clone();
            sim_mqtt.shared_group = None;
            let seed = settings.sim.seed.unwrap_or(scenario.seed);
            let human = settings.sim.human_dispatch || scenario.human_dispatch;
            let accel = settings
                .sim
                .accel
                .unwrap_or(crate::sensors::sim::default_accel(&scenario, human));
            tracing::info!(scenario = %scenario.name, seed, accel, human, "simulated city starting");
            let city = scenario.city.clone();
            let mut sim = Simulation::new(scenario, seed, accel);
            sim.set_human_dispatch(human);
            let tick = Duration::from_millis(settings.sim.tick_ms);
            let client_id = format!("{}-sim", settings.mqtt.client_id);
            tokio::spawn(run_simulation(
                url.clone(),
                sim_mqtt,
                client_id,
                city,
                sim,
                tick,
                shutdown_rx.clone(),
            ));
        }

        // Real cities' maps (`kendali city import`): each city's for its
        // screens (`/api/scenario?city=`) and the unit router; the most
        // recent one is the default when no simulated city brings one.
        let mut city_maps = std::collections::BTreeMap::new();
        if let Some(pool) = store_handle.pool() {
            match crate::store::maps::all(&pool).await {
                Ok(maps) => {
                    for map in maps {
                        let Some(city) = map["city"].as_str().map(str::to_owned) else {
                            continue;
                        };
                        tracing::info!(%city, "an imported city map");
                        if scenario_json.is_none() {
                            scenario_json = Some(map.clone());
                        }
                        city_maps.entry(city).or_insert(map);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the imported city maps could not be read"),
            }
        }
        // The simulated city's geometry is its scenario's.
        if let Some(s) = scenario_json.as_ref() {
            if let Some(city) = s["city"].as_str() {
                city_maps.insert(city.to_owned(), s.clone());
            }
        }

        // The web server.
        let listener =
            std::net::TcpListener::bind(settings.http.addr).map_err(|source| StartError::Http {
                addr: settings.http.addr,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Http {
            addr: settings.http.addr,
            source,
        })?;
        let hub_for_shutdown = hub_handle.clone();
        let directory = crate::identity::directory::Directory::beside(&store_handle);
        let road_net = Arc::new(crate::domain::route::CityRoads::from_maps(
            city_maps.values(),
        ));
        let traffic = Arc::new(crate::traffic::TrafficDesk::new(
            settings.traffic.clone(),
            road_net.clone(),
        ));
        let outbox = crate::traffic::Outbox {
            bus: client,
            ingest: status.clone(),
            directory: directory.clone(),
            limits: limits.clone(),
        };
        tokio::spawn(crate::web::wall::replay::write_checkpoints(
            crate::web::wall::replay::CheckpointWriter {
                store: store_handle.clone(),
                state: settings.state.clone(),
                traffic: settings.traffic.clone(),
                zones: settings.cities.zones(),
                every: Duration::from_secs(settings.database.checkpoint_every_s),
                writer: settings.mqtt.client_id.clone(),
            },
            rules.clone(),
            shutdown_rx.clone(),
        ));
        tokio::spawn(crate::traffic::run(
            traffic.clone(),
            hub_handle.clone(),
            outbox.clone(),
            shutdown_rx.clone(),
            rules,
        ));
        let ctx = web::Data::new(WebContext {
            alerts,
            traffic,
            outbox,
            access: crate::web::gate::AccessSettings::new(&settings.http),
            timeouts: crate::identity::directory::Timeouts {
                idle: chrono::Duration::minutes(settings.auth.idle_timeout_min as i64),
                absolute: chrono::Duration::hours(settings.auth.absolute_timeout_h as i64),
                display: chrono::Duration::days(settings.auth.display_session_days as i64),
            },
            actions: crate::identity::throttle::ActionLimit::new(
                settings.auth.actions_per_minute,
                settings.auth.actions_burst,
            ),
            app_messages: crate::identity::throttle::ActionLimit::new(
                settings.ingest.http_per_minute,
                settings.ingest.http_burst,
            ),
            login_throttle: Default::default(),
            replay: Default::default(),
            desk: Default::default(),
            road_net,
            routes: Default::default(),
            directory: directory.clone(),
            settings: settings.clone(),
            hub: hub_handle,
            deadletters,
            metrics,
            ingest: status,
            limits,
            scenario: scenario_json,
            city_maps,
            store: store_handle,
            state_cache: Default::default(),
        });
        let head_timeout = Duration::from_secs(settings.http.head_timeout_s);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::web::deadline::body_deadline,
                ))
                // Outermost: nothing runs for a request the gate refuses.
                .wrap(actix_web::middleware::from_fn(crate::web::gate::gate))
                .app_data(ctx.clone())
                .configure(crate::web::json_error_handlers)
                .configure(crate::web::ops::configure)
                .configure(crate::web::auth::configure)
                .configure(crate::web::wall::configure)
                .configure(crate::web::api::configure)
                .configure(crate::web::ingest::configure)
                .configure(crate::web::openapi::configure)
                .configure(crate::web::alerts::configure)
                .configure(crate::web::traffic::configure)
                .configure(crate::web::dispatch::configure)
                .configure(crate::web::reports::configure)
                .configure(crate::web::admin::configure)
                .configure(crate::web::assets::configure)
        })
        .workers(2)
        .client_request_timeout(head_timeout)
        // Screens get small frames (one call event) between big ones: with
        // Nagle's algorithm on (the OS default, which actix keeps) such a frame
        // can wait for the screen's delayed ACK, up to 40 ms on Linux.
        .tcp_nodelay(true)
        .disable_signals();
        let server = match (&settings.http.tls_cert, &settings.http.tls_key) {
            (Some(cert), Some(key)) => server.listen_rustls_0_23(listener, tls_config(cert, key)?),
            _ => server.listen(listener),
        }
        .map_err(|source| StartError::Http {
            addr: http_addr,
            source,
        })?
        .run();
        tracing::info!(addr = %http_addr, "web server listening: open http://{http_addr}");
        Ok(Application {
            http_addr,
            mqtt_url,
            server,
            shutdown,
            hub: hub_for_shutdown,
            directory,
            pipeline,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn port(&self) -> u16 {
        self.http_addr.port()
    }

    pub fn mqtt_url(&self) -> &str {
        &self.mqtt_url
    }

    /// Serves until Ctrl-C (or SIGTERM), then stops the simulator, drains
    /// the pipeline (the store's last batch written and acknowledged) and
    /// stops the web server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown_signal().await;
        tracing::info!("shutting down: draining the pipeline");
        let _ = self.shutdown.send(true);
        self.pipeline.drain().await;
        // The hub closed the screens with 1001 (going away) when the state
        // handed off; this reaches them only if it did not stop in time.
        self.hub.shutdown().await;
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)?
    }

    /// Runs the server in the background (for tests): returns at once.
    pub fn spawn(self) -> RunningApp {
        let handle = self.server.handle();
        tokio::spawn(self.server);
        RunningApp {
            http_addr: self.http_addr,
            mqtt_url: self.mqtt_url,
            handle,
            shutdown: self.shutdown,
            hub: self.hub,
            directory: self.directory,
            pipeline: self.pipeline,
        }
    }
}

/// A server running in the background.
pub struct RunningApp {
    pub http_addr: SocketAddr,
    pub mqtt_url: String,
    handle: actix_web::dev::ServerHandle,
    shutdown: watch::Sender<bool>,
    hub: crate::hub::HubHandle,
    /// Users, displays, sessions and the audit (tests add users here).
    pub directory: crate::identity::directory::Directory,
    pipeline: Pipeline,
}

impl RunningApp {
    /// Stops as SIGTERM does: the pipeline drains, then the web server stops.
    pub async fn stop(self) -> DrainReport {
        let _ = self.shutdown.send(true);
        let report = self.pipeline.drain().await;
        self.hub.shutdown().await;
        self.handle.stop(false).await;
        report
    }
}

/// The pipeline's tasks, stopped in data-flow order by [`Pipeline::drain`].
struct Pipeline {
    /// Tells the ingest loops where the shutdown has got to.
    drain: watch::Sender<Drain>,
    ingest: Vec<JoinHandle<IngestReport>>,
    state: JoinHandle<()>,
    store: JoinHandle<StoreReport>,
    hub: JoinHandle<()>,
    /// `runtime.shutdown_grace_s`: the store's time for its last batch.
    grace: Duration,
}

/// What a drain did, stage by stage (also logged, stage by stage).
#[derive(Clone, Debug, Default)]
pub struct DrainReport {
    /// Messages the ingest loops handed to the state in this run.
    pub taken: u64,
    /// QoS 1 messages that arrived after the stop, left to the broker.
    pub left_to_broker: u64,
    /// What the store wrote and acknowledged, in the run and at the end.
    pub store: StoreReport,
    /// Stages that did not stop in time and were aborted.
    pub aborted: Vec<&'static str>,
    pub elapsed: Duration,
}

/// Time for the acks and DISCONNECT to leave once queued, and for the hub
/// to close the screens: both are writes to sockets, done in milliseconds
/// unless a peer is gone.
const STOP_STEP: Duration = Duration::from_secs(1);

impl Pipeline {
    /// Stops the stages in data-flow order; at most `grace` plus 3 steps.
    async fn drain(self) -> DrainReport {
        let started = tokio::time::Instant::now();
        let mut report = DrainReport::default();
        // 1. Ingest stops taking: its channels to the state close, and the
        //    connections stay polled for the acks to come.
        let _ = self.drain.send(Drain::StopTaking);
        // 2. The state hands off what it holds; its channels to the hub and
        //    the store close. 3. The store writes its last batch and queues
        //    its acks (it gives up by itself `grace` after its input closed).
        let (mut state, mut store) = (self.state, self.store);
        let deadline = started + self.grace + STOP_STEP;
        if tokio::time::timeout_at(deadline, &mut state).await.is_err() {
            state.abort();
            report.aborted.push("state");
        }
        match tokio::time::timeout_at(deadline, &mut store).await {
            Ok(Ok(r)) => report.store = r,
            Ok(Err(_)) => report.aborted.push("store"),
            Err(_) => {
                store.abort();
                report.aborted.push("store");
            }
        }
        // 4. The acks are queued: DISCONNECT after them, the session kept.
        let _ = self.drain.send(Drain::Disconnect);
        let deadline = tokio::time::Instant::now() + STOP_STEP;
        for mut task in self.ingest {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(r)) => {
                    report.taken += r.taken;
                    report.left_to_broker += r.left_to_broker;
                }
                Ok(Err(_)) => report.aborted.push("ingest"),
                Err(_) => {
                    task.abort();
                    report.aborted.push("ingest");
                }
            }
        }
        // 5. The hub's input closed with the state: it flushed and closed
        //    the screens with 1001.
        let mut hub = self.hub;
        if tokio::time::timeout(STOP_STEP, &mut hub).await.is_err() {
            hub.abort();
            report.aborted.push("hub");
        }
        report.elapsed = started.elapsed();
        let s = &report.store;
        if report.aborted.is_empty() && s.unacked == 0 {
            tracing::info!(
                elapsed_ms = report.elapsed.as_millis() as u64,
                taken = report.taken,
                stored_last = s.last_rows,
                acked_last = s.last_acks,
                acked = s.acks,
                left_to_broker = report.left_to_broker,
                "pipeline drained: everything taken is stored and acknowledged"
            );
        } else {
            tracing::warn!(
                elapsed_ms = report.elapsed.as_millis() as u64,
                taken = report.taken,
                acked = s.acks,
                unacked = s.unacked,
                left_to_broker = report.left_to_broker,
                aborted = ?report.aborted,
                "pipeline drained in part: the broker redelivers what was not acknowledged at the next start"
            );
        }
        report
    }
}

/// The web server's TLS configuration from PEM files (ring, as for the bus).
fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, StartError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StartError::Tls(format!("reading {}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| StartError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| StartError::Tls(format!("{}: no private key in it", key.display())))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Drives a simulation against a broker: publishes what it produces and feeds
/// it the operator commands addressed to its controllers and, with human
/// dispatch, the call events and unit orders of its city. Returns its stats
/// when `shutdown` turns true.
pub async fn run_simulation(
    url: BrokerUrl,
    mqtt: MqttSettings,
    client_id: String,
    city: String,
    sim: Simulation,
    tick: Duration,
    shutdown: watch::Receiver<bool>,
) -> Result<crate::sensors::sim::SimStats, bus::BusError> {
    let (client, mut events) = bus::connect(
        &url,
        &mqtt,
        &ConnectOptions {
            client_id,
            persistent: false,
            manual_acks: false,
            max_packet_bytes: mqtt.max_packet_bytes,
            request_capacity: 4096,
        },
    )?;
    let (out_tx, mut out_rx) = mpsc::channel::<(Topic, Message)>(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel(256);
    // The poll loop: receives what the city obeys, keeps the connection alive.
    let poll_client = client.clone();
    let limits = Limits::default();
    let mut filters = vec![format!("city/{city}/atcs/+/command")];
    if sim.human_dispatch() {
        filters.push(format!("city/{city}/calls/+"));
        filters.push(format!("city/{city}/units/+/assignment"));
    }
    let poller = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(BusEvent::Connected { .. }) => {
                    let c = poll_client.clone();
                    let filters = filters.clone();
                    tokio::spawn(async move {
                        for f in filters {
                            if let Err(e) = c.subscribe(f.clone(), Qos::AtLeastOnce).await {
                                tracing::warn!(filter = %f, error = %e, "simulator could not subscribe");
                            }
                        }
                    });
                }
                Ok(BusEvent::Message(m)) => {
                    let topic = String::from_utf8_lossy(&m.topic).into_owned();
                    match crate::contract::decode(&topic, &m.payload, &limits, Utc::now()) {
                        Ok((
                            t,
                            msg @ (Message::Command(_)
                            | Message::CallEvent(_)
                            | Message::UnitAssignment(_)),
                        )) => {
                            if cmd_tx.send((t, msg)).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(%topic, error = %e, "simulator ignored a bad message")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "simulator lost the broker; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    let publisher = tokio::spawn(async move {
        while let Some((topic, msg)) = out_rx.recv().await {
            let qos = Qos::from_level(topic.qos());
            if let Err(e) = client
                .publish(topic.to_string(), qos, topic.retained(), msg.to_json())
                .await
            {
                tracing::warn!(error = %e, "simulator publish failed");
                break;
            }
        }
        client
    });
    let stats = runner::run(sim, tick, out_tx, cmd_rx, shutdown).await;
    if let Ok(client) = publisher.await {
        // Let the last QoS 1 publishes leave before disconnecting.
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.disconnect().await;
    }
    poller.abort();
    Ok(stats)
}
