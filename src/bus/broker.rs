//! The embedded MQTT broker (rumqttd) for the one-command start: with no
//! external broker configured, Kendali listens on `broker_addr` itself so that
//! the simulator, `mosquitto_pub` and service apps all have a bus to talk to.
//! It is for the one-command start, demos and development: production rooms
//! run Mosquitto (`kendali broker-config`; README, "The embedded broker").

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::config::MqttSettings;

/// The Mosquitto configuration we recommend for production, for the default
/// settings; [`mosquitto_conf`] fits it to the configured ones.
pub const MOSQUITTO_PRODUCTION_CONF: &str = include_str!("mosquitto.conf");

/// The production configuration for these settings (`kendali broker-config`):
/// its `max_packet_size` is `mqtt.max_packet_bytes`, so that the broker never
/// passes Kendali a packet it cannot read.
pub fn mosquitto_conf(mqtt: &MqttSettings) -> String {
    let mut conf = String::with_capacity(MOSQUITTO_PRODUCTION_CONF.len());
    for line in MOSQUITTO_PRODUCTION_CONF.lines() {
        if line.starts_with("max_packet_size ") {
            conf.push_str(&format!("max_packet_size {}\n", mqtt.max_packet_bytes));
        } else {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    conf
}

/// The production configuration for a private local Mosquitto (the bench and
/// the tests): listening on 127.0.0.1:`port`, persisting into `dir`, anonymous
/// (loopback only), staying root. Every queueing and persistence value is kept.
pub fn mosquitto_local_conf(port: u16, dir: &std::path::Path) -> String {
    let mut conf = String::new();
    for line in mosquitto_conf(&MqttSettings::default()).lines() {
        let l = line.trim_start();
        if l.starts_with("listener ") {
            conf.push_str(&format!("listener {port} 127.0.0.1\n"));
        } else if l.starts_with("persistence_location ") {
            conf.push_str(&format!("persistence_location {}/\n", dir.display()));
        } else if !(l.starts_with("allow_anonymous ") || l.starts_with("password_file ")) {
            conf.push_str(line);
            conf.push('\n');
        }
    }
    conf.push_str("allow_anonymous true\nuser root\n");
    conf
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "the embedded MQTT broker cannot listen on {addr}. Choose another address with \
         --broker-addr (or KENDALI_BROKER_ADDR), or use an existing broker with --mqtt-url (or KENDALI_MQTT_URL)"
    )]
    AddrInUse {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded broker configuration: {0}")]
    Config(String),
    #[error("the embedded broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
}

/// The broker's compiled-in configuration.
///
/// - `max_payload_size` (the largest packet, as rumqttc counts it: the
///   remaining length) is Kendali's own `mqtt.max_packet_bytes`, so that
///   whatever the broker takes Kendali can read, and an oversize payload
///   reaches the dead-letter.
/// - Memory: rumqttd keeps each subscription filter's messages in a log of
///   `max_segment_count` segments of `max_segment_size` bytes, dropping the
///   oldest segment when full, and never trims it otherwise: its defaults
///   here were 10 x 100 MB, and after a flood the broker held about 1 GB
///   that it never gave back. Now a filter keeps at most 16 MB (4 x 4 MB),
///   the call events' 64 MB (about 200,000 of them). A subscriber that
///   falls further behind than its log loses the oldest messages: the
///   embedded broker has no persistence and is for the one-command start,
///   demos and development; production runs Mosquitto (`kendali
///   broker-config`), which queues for an absent Kendali on disk.
/// - rumqttd lets a subscriber only 100 unacknowledged QoS 1 messages (a
///   constant of its router): Kendali acknowledges call events as soon as
///   they are stored, not on the store's timer, so that window is not the
///   limit (see `store::StoreTask`).
const CONFIG_TEMPLATE: &str = r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 1000
max_segment_size = 4194304
max_segment_count = 4
    [router.custom_segment.'city/+/calls/+']
    max_segment_size = 16777216
    max_segment_count = 4

[v4.1]
name = "v4-1"
listen = "LISTEN"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = MAX_PACKET
    max_inflight_count = 10000
    dynamic_filters = true
"#;

/// Starts the broker on its own threads (rumqttd runs its own runtimes) and
/// waits until it accepts connections.
pub fn start(addr: SocketAddr, max_packet_bytes: usize) -> Result<(), BrokerError> {
    // rumqttd only logs a bind failure from inside its thread; check first so
    // the operator gets a clear message and a non-zero exit.
    drop(TcpListener::bind(addr).map_err(|source| BrokerError::AddrInUse { addr, source })?);
    let config: rumqttd::Config = toml::from_str(
        &CONFIG_TEMPLATE
            .replace("LISTEN", &addr.to_string())
            .replace("MAX_PACKET", &max_packet_bytes.to_string()),
    )
    .map_err(|e| BrokerError::Config(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            tracing::info!(%addr, "embedded MQTT broker listening");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(addr))
}
