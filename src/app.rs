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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use chrono::Utc;
use tokio::sync::{mpsc, watch};

use crate::bus::{self, BrokerUrl, BusEvent, ConnectOptions, Qos};
use crate::config::{MqttSettings, Settings};
use crate::contract::{Limits, Message, Topic};
use crate::hub::Hub;
use crate::ingest::deadletter::DeadLetters;
use crate::ingest::{IngestLoop, IngestStatus};
use crate::metrics::Metrics;
use crate::sensors::{runner, scenario::Scenario, sim::Simulation};
use crate::state::{self, CityState, StateTask};
use crate::store::{self as store, StoreTask, STORE_CAPACITY};
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
}

impl Application {
    /// Starts every stage and binds the ports (port 0 picks a free one).
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        let metrics = Arc::new(Metrics::new());
        metrics
            .runtime_workers
            .set(tokio::runtime::Handle::current().metrics().num_workers() as i64);
        let deadletters = DeadLetters::new(settings.ingest.deadletter_capacity, metrics.clone());
        // The store first: the live state is rebuilt from it before ingest starts.
        let store_handle = store::open(&settings.database).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);

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
        let groups = crate::ingest::connections(&settings.mqtt);
        let mut buses = Vec::new();
        for (i, families) in groups.into_iter().enumerate() {
            let client_id = crate::ingest::client_id(&settings.mqtt, i);
            let (client, events) = bus::connect(
                &url,
                &settings.mqtt,
                &ConnectOptions {
                    client_id: client_id.clone(),
                    persistent: true,
                    manual_acks: true,
                    // As large as the broker lets through (the embedded one takes
                    // the same setting): an oversize message is read, dead-lettered
                    // and acknowledged instead of costing the connection.
                    max_packet_bytes: settings.mqtt.max_packet_bytes,
                    // Above any broker's in-flight window, so acks never wait on the poll loop.
                    request_capacity: 65_536,
                },
            )?;
            tracing::info!(broker = %mqtt_url, %client_id, ?families, protocol = ?settings.mqtt.protocol, "bus configured");
            buses.push((client, events, families));
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
        tokio::spawn(hub.run());
        tokio::spawn(
            StoreTask {
                handle: store_handle.clone(),
                settings: settings.database.clone(),
                input: store_rx,
                metrics: metrics.clone(),
                deadletters: deadletters.clone(),
            }
            .run(),
        );
        let mut state_task = StateTask {
            city: CityState::new(settings.state.clone()),
            input: state_rx,
            priority: (buses.len() > 1).then_some(priority_rx),
            hub: hub_tx,
            store: store_tx,
            deadletters: deadletters.clone(),
            metrics: metrics.clone(),
        };
        state_task.replay(store_handle.restore().await?).await;
        tokio::spawn(state_task.run());
        for (index, (client, events, families)) in buses.into_iter().enumerate() {
            tokio::spawn(
                IngestLoop {
                    client,
                    events,
                    settings: settings.mqtt.clone(),
                    families,
                    index,
                    limits: limits.clone(),
                    out: if index == 0 {
                        state_tx.clone()
                    } else {
                        priority_tx.clone()
                    },
                    status: status.clone(),
                    metrics: metrics.clone(),
                }
                .run(),
            );
        }
        drop((state_tx, priority_tx));

        // The simulated city, publishing through the same bus as real sources.
        let mut scenario_json = None;
        if settings.sim.enabled {
            let scenario = Scenario::resolve(&settings.sim.scenario)
                .map_err(|e| StartError::Scenario(e.to_string()))?;
            scenario_json = serde_json::to_value(&scenario).ok();
            let mut sim_mqtt = settings.mqtt.clone();
            sim_mqtt.shared_group = None;
            let seed = settings.sim.seed.unwrap_or(scenario.seed);
            let accel = settings.sim.accel.unwrap_or(scenario.accel);
            tracing::info!(scenario = %scenario.name, seed, accel, "simulated city starting");
            let city = scenario.city.clone();
            let sim = Simulation::new(scenario, seed, accel);
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
        let ctx = web::Data::new(WebContext {
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
            login_throttle: Default::default(),
            routes: Default::default(),
            directory: directory.clone(),
            settings: settings.clone(),
            hub: hub_handle,
            deadletters,
            metrics,
            ingest: status,
            bus: client,
            limits,
            scenario: scenario_json,
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
                .configure(crate::web::traffic::configure)
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

    /// Serves until Ctrl-C (or SIGTERM), then stops the web server and the simulator.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = self.shutdown.send(true);
        // Screens get 1001 (going away) and resume against the next run.
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
}

impl RunningApp {
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.hub.shutdown().await;
        self.handle.stop(false).await;
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
/// it the operator commands addressed to its controllers. Returns its stats
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
    // The poll loop: receives commands for our controllers, keeps the connection alive.
    let poll_client = client.clone();
    let limits = Limits::default();
    let poller = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(BusEvent::Connected { .. }) => {
                    let c = poll_client.clone();
                    let filter = format!("city/{city}/atcs/+/command");
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe(filter, Qos::AtLeastOnce).await {
                            tracing::warn!(error = %e, "simulator could not subscribe to commands");
                        }
                    });
                }
                Ok(BusEvent::Message(m)) => {
                    let topic = String::from_utf8_lossy(&m.topic).into_owned();
                    match crate::contract::decode(&topic, &m.payload, &limits, Utc::now()) {
                        Ok((t, Message::Command(c))) => {
                            if cmd_tx.send((t, *c)).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(%topic, error = %e, "simulator ignored a bad command")
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
