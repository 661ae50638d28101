//! The MQTT bus: one client abstraction over rumqttc's MQTT 3.1.1 and 5
//! implementations, so ingest, the simulator and `kendali publish` do not care
//! which version the broker speaks, plus the embedded broker (`broker.rs`).
//!
//! A connection is split as rumqttc splits it: a cheap cloneable [`BusClient`]
//! (publish, subscribe, ack) and a [`BusEvents`] poller that must be driven by
//! exactly one task. Never publish and poll from the same task (rumqtt #263).

pub mod broker;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5;

use crate::config::{MqttProtocol, MqttSettings};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("broker url {0:?}: {1}")]
    Url(String, String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("MQTT request channel closed: {0}")]
    Client(String),
    #[error("MQTT connection: {0}")]
    Connection(String),
    /// The broker sent a packet above our `max_packet_bytes`: it cannot be
    /// read, and the connection is lost (a QoS 1 one comes back at every
    /// reconnect until the broker's limit is lowered to ours).
    #[error(
        "the broker sent a packet of {bytes} bytes, above mqtt.max_packet_bytes: set the broker's \
         max_packet_size to at most that setting (`kendali broker-config` prints it)"
    )]
    PacketTooLarge { bytes: usize },
}

/// A parsed `mqtt://` or `mqtts://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    pub fn parse(s: &str) -> Result<BrokerUrl, BusError> {
        let err = |m: &str| BusError::Url(s.to_owned(), m.to_owned());
        let u = url::Url::parse(s).map_err(|e| err(&e.to_string()))?;
        let tls = match u.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(err("scheme must be mqtt:// or mqtts://")),
        };
        let host = u.host_str().ok_or_else(|| err("no host"))?.to_owned();
        let port = u.port().unwrap_or(if tls { 8883 } else { 1883 });
        let username = (!u.username().is_empty()).then(|| u.username().to_owned());
        let password = u.password().map(str::to_owned);
        Ok(BrokerUrl {
            host,
            port,
            tls,
            username,
            password,
        })
    }
}

/// QoS as the contract uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
}

impl Qos {
    pub fn from_level(l: u8) -> Qos {
        if l == 0 {
            Qos::AtMostOnce
        } else {
            Qos::AtLeastOnce
        }
    }
    fn v4(self) -> rumqttc::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        }
    }
    fn v5(self) -> v5::mqttbytes::QoS {
        match self {
            Qos::AtMostOnce => v5::mqttbytes::QoS::AtMostOnce,
            Qos::AtLeastOnce => v5::mqttbytes::QoS::AtLeastOnce,
        }
    }
}

/// What must be acknowledged once a QoS 1 message is safely handled: the
/// message and the connection it came on (Kendali may read the bus on more
/// than one, see `mqtt.priority_families`). Hand it to [`AckToken::ack`] in
/// arrival order.
///
/// Boxed: only QoS 1 messages (the call events) carry one, and inline it
/// was more than 200 bytes (an MQTT 5 publish) copied with every message
/// on the way to the state and the store.
pub struct AckToken(Box<AckInner>);

struct AckInner {
    client: BusClient,
    packet: AckPacket,
}

enum AckPacket {
    V4(rumqttc::Publish),
    V5(v5::mqttbytes::v5::Publish),
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pkid = match &self.0.packet {
            AckPacket::V4(p) => p.pkid,
            AckPacket::V5(p) => p.pkid,
        };
        f.debug_struct("AckToken").field("pkid", &pkid).finish()
    }
}

impl AckToken {
    /// Acknowledges the message to the broker on its own connection. Callers
    /// keep each connection's arrival order (MQTT 5 spec 4.6.0-2).
    pub async fn ack(&self) -> Result<(), BusError> {
        let r = match (&self.0.client, &self.0.packet) {
            (BusClient::V4(c), AckPacket::V4(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            (BusClient::V5(c), AckPacket::V5(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            _ => Err("ack token from another protocol version".to_owned()),
        };
        r.map_err(BusError::Client)
    }
}

/// One incoming message.
#[derive(Debug)]
pub struct Incoming {
    pub topic: Bytes,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// Present for QoS 1 with manual acks: call [`AckToken::ack`] in arrival order.
    pub ack: Option<AckToken>,
}

/// What the poller reports.
#[derive(Debug)]
pub enum BusEvent {
    /// Connected; `session_present` false means the broker has no subscriptions of ours.
    Connected {
        session_present: bool,
    },
    Message(Incoming),
    /// The broker answered one of our subscriptions; `granted` is false when
    /// it refused any filter of it.
    SubAck {
        granted: bool,
    },
    /// The broker acknowledged one of our QoS 1 publishes.
    PubAck,
    /// One of our publishes left (for QoS 0 that is all there is).
    Sent,
    /// Our DISCONNECT left, after every request queued before it (acks
    /// included): the connection is closed cleanly and the session kept.
    DisconnectSent,
    /// Anything else of no interest to callers (pings, acks of our publishes...).
    Other,
}

/// Publish/subscribe/ack side of a connection; cheap to clone.
#[derive(Clone)]
pub enum BusClient {
    V4(rumqttc::AsyncClient),
    V5(v5::AsyncClient),
}

impl BusClient {
    pub async fn publish(
        &self,
        topic: String,
        qos: Qos,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), BusError> {
        let r = match self {
            BusClient::V4(c) => c
                .publish(topic, qos.v4(), retain, payload)
                .await
                .map_err(|e| e.to_string()),
            BusClient::V5(c) => c
                .publish(topic, qos.v5(), retain, payload)
                .await
                .map_err(|e| e.to_string()),
        };
        r.map_err(BusError::Client)
    }

    pub async fn subscribe(&self, filter: String, qos: Qos) -> Result<(), BusError> {
        let r = match self {
            BusClient::V4(c) => c
                .subscribe(filter, qos.v4())
                .await
                .map_err(|e| e.to_string()),
            BusClient::V5(c) => c
                .subscribe(filter, qos.v5())
                .await
                .map_err(|e| e.to_string()),
        };
        r.map_err(BusError::Client)
    }

    pub async fn unsubscribe(&self, filter: String) -> Result<(), BusError> {
        let r = match self {
            BusClient::V4(c) => c.unsubscribe(filter).await.map_err(|e| e.to_string()),
            BusClient::V5(c) => c.unsubscribe(filter).await.map_err(|e| e.to_string()),
        };
        r.map_err(BusError::Client)
    }

    pub async fn disconnect(&self) {
        let _ = match self {
            BusClient::V4(c) => c.disconnect().await.map_err(|e| e.to_string()),
            BusClient::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
    }
}

/// The polling side of a connection.
pub struct BusEvents {
    events: EventLoop,
    /// The same connection's client, carried by the ack tokens.
    client: BusClient,
}

enum EventLoop {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<v5::EventLoop>),
}

impl BusEvents {
    /// Next event. An error means the connection dropped; call again (after a
    /// backoff) and rumqttc reconnects.
    pub async fn poll(&mut self) -> Result<BusEvent, BusError> {
        let client = &self.client;
        let token = |packet| {
            AckToken(Box::new(AckInner {
                client: client.clone(),
                packet,
            }))
        };
        match &mut self.events {
            EventLoop::V4(el) => {
                use rumqttc::{Event, Packet};
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let qos = p.qos as u8;
                        Ok(BusEvent::Message(Incoming {
                            topic: Bytes::copy_from_slice(p.topic.as_bytes()),
                            payload: p.payload.clone(),
                            retain: p.retain,
                            qos,
                            ack: (qos > 0).then(|| token(AckPacket::V4(p))),
                        }))
                    }
                    Ok(Event::Incoming(Packet::ConnAck(c))) => Ok(BusEvent::Connected {
                        session_present: c.session_present,
                    }),
                    Ok(Event::Incoming(Packet::SubAck(a))) => Ok(BusEvent::SubAck {
                        granted: a.return_codes.iter().all(|c| {
                            matches!(c, rumqttc::mqttbytes::v4::SubscribeReasonCode::Success(_))
                        }),
                    }),
                    Ok(Event::Incoming(Packet::PubAck(_))) => Ok(BusEvent::PubAck),
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => Ok(BusEvent::Sent),
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        Ok(BusEvent::DisconnectSent)
                    }
                    Ok(_) => Ok(BusEvent::Other),
                    Err(rumqttc::ConnectionError::MqttState(
                        rumqttc::StateError::Deserialization(
                            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(bytes),
                        ),
                    )) => Err(BusError::PacketTooLarge { bytes }),
                    Err(e) => Err(BusError::Connection(e.to_string())),
                }
            }
            EventLoop::V5(el) => {
                use v5::mqttbytes::v5::Packet;
                use v5::Event;
                match el.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let qos = p.qos as u8;
                        Ok(BusEvent::Message(Incoming {
                            topic: p.topic.clone(),
                            payload: p.payload.clone(),
                            retain: p.retain,
                            qos,
                            ack: (qos > 0).then(|| token(AckPacket::V5(p))),
                        }))
                    }
                    Ok(Event::Incoming(Packet::ConnAck(c))) => Ok(BusEvent::Connected {
                        session_present: c.session_present,
                    }),
                    Ok(Event::Incoming(Packet::SubAck(a))) => Ok(BusEvent::SubAck {
                        granted: a.return_codes.iter().all(|c| {
                            matches!(c, v5::mqttbytes::v5::SubscribeReasonCode::Success(_))
                        }),
                    }),
                    Ok(Event::Incoming(Packet::PubAck(_))) => Ok(BusEvent::PubAck),
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => Ok(BusEvent::Sent),
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        Ok(BusEvent::DisconnectSent)
                    }
                    Ok(_) => Ok(BusEvent::Other),
                    Err(v5::ConnectionError::MqttState(v5::StateError::Deserialization(
                        v5::mqttbytes::Error::PayloadSizeLimitExceeded { pkt_size, .. },
                    ))) => Err(BusError::PacketTooLarge { bytes: pkt_size }),
                    Err(e) => Err(BusError::Connection(e.to_string())),
                }
            }
        }
    }
}

/// How one connection should behave.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub client_id: String,
    /// Keep the session (and our queued QoS 1 messages) across reconnects.
    pub persistent: bool,
    /// Hold QoS 1 acks until [`BusClient::ack`] is called.
    pub manual_acks: bool,
    /// Largest packet either way (`mqtt.max_packet_bytes` for ingest; over
    /// MQTT 5 announced to the broker in CONNECT). At least the broker's own
    /// limit, so that an oversize message reaches validation (and the
    /// dead-letter) instead of killing the connection (rumqtt #884).
    pub max_packet_bytes: usize,
    /// Capacity of the request channel to the event loop. Must exceed the
    /// broker's in-flight window so that acks never wait on it.
    pub request_capacity: usize,
}

/// Opens a connection (lazily: the first `poll` connects).
pub fn connect(
    url: &BrokerUrl,
    s: &MqttSettings,
    o: &ConnectOptions,
) -> Result<(BusClient, BusEvents), BusError> {
    let username = s.username.clone().or_else(|| url.username.clone());
    let password = s
        .password
        .clone()
        .or_else(|| url.password.clone())
        .unwrap_or_default();
    let transport = if url.tls {
        Some(tls_transport(s)?)
    } else {
        None
    };
    let keep_alive = Duration::from_secs(s.keep_alive_s.max(5));
    match s.protocol {
        MqttProtocol::V311 => {
            let mut m = rumqttc::MqttOptions::new(&o.client_id, &url.host, url.port);
            m.set_keep_alive(keep_alive)
                .set_clean_session(!o.persistent)
                .set_manual_acks(o.manual_acks)
                .set_max_packet_size(o.max_packet_bytes, o.max_packet_bytes)
                .set_inflight(s.inflight);
            if let Some(u) = username {
                m.set_credentials(u, password);
            }
            if let Some(t) = transport {
                m.set_transport(t);
            }
            let (c, mut el) = rumqttc::AsyncClient::new(m, o.request_capacity);
            el.network_options.set_tcp_nodelay(true);
            let client = BusClient::V4(c);
            let events = BusEvents {
                events: EventLoop::V4(Box::new(el)),
                client: client.clone(),
            };
            Ok((client, events))
        }
        MqttProtocol::V5 => {
            let mut m = v5::MqttOptions::new(&o.client_id, &url.host, url.port);
            m.set_keep_alive(keep_alive)
                .set_clean_start(!o.persistent)
                .set_manual_acks(o.manual_acks)
                .set_max_packet_size(Some(o.max_packet_bytes as u32));
            if o.persistent {
                m.set_session_expiry_interval(Some(s.session_expiry_s.max(1)));
            }
            if let Some(u) = username {
                m.set_credentials(u, password);
            }
            if let Some(t) = transport {
                m.set_transport(t);
            }
            // Small packets (a call event, an ack) must not wait on Nagle's algorithm.
            let mut net = rumqttc::NetworkOptions::new();
            net.set_tcp_nodelay(true);
            m.set_network_options(net);
            let (c, el) = v5::AsyncClient::new(m, o.request_capacity);
            let client = BusClient::V5(c);
            let events = BusEvents {
                events: EventLoop::V5(Box::new(el)),
                client: client.clone(),
            };
            Ok((client, events))
        }
    }
}

fn tls_transport(s: &MqttSettings) -> Result<rumqttc::Transport, BusError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls = |m: String| BusError::Tls(m);
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|e| tls(format!("{}: {e}", p.display())));
    let ca_path = s
        .tls_ca
        .as_deref()
        .ok_or_else(|| tls("mqtts:// needs mqtt.tls_ca (a PEM CA bundle)".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut read(ca_path)?.as_slice()) {
        let cert: CertificateDer<'static> = cert.map_err(|e| tls(e.to_string()))?;
        roots.add(cert).map_err(|e| tls(e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&s.tls_client_cert, &s.tls_client_key) {
        (Some(c), Some(k)) => {
            let certs = rustls_pemfile::certs(&mut read(c)?.as_slice())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls(e.to_string()))?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut read(k)?.as_slice())
                .map_err(|e| tls(e.to_string()))?
                .ok_or_else(|| tls(format!("{}: no private key", k.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls(e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(tls(
                "tls_client_cert and tls_client_key come together".into()
            ))
        }
    };
    Ok(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
        Arc::new(config),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse() {
        let u = BrokerUrl::parse("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 1884, false));
        let u = BrokerUrl::parse("mqtts://ops:rahasia@broker.kota.go.id").unwrap();
        assert_eq!(
            (u.port, u.tls, u.username.as_deref(), u.password.as_deref()),
            (8883, true, Some("ops"), Some("rahasia"))
        );
        assert!(BrokerUrl::parse("http://x").is_err());
    }
}
