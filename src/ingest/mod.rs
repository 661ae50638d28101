//! Ingest: the MQTT poll loops. Each subscribes per family (again whenever
//! the broker reports no session), decodes and validates every message, and
//! hands accepted and refused messages alike to the state task in arrival
//! order (QoS 1 acks follow each connection's order). It never waits on a
//! screen or a database; it waits only on the bounded channel to the state,
//! so the broker holds back what we cannot take yet.
//!
//! There are two loops, on two connections, when `mqtt.priority_families` is
//! set (the default: the 112/119 call events): a broker delivers a
//! connection's messages in order, so on one connection a call event waits
//! behind every telemetry message queued before it (in the broker, the
//! socket buffers and our channel). On its own connection, with its own
//! channel that the state task reads first, it does not.

pub mod deadletter;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;

use crate::bus::{BusClient, BusEvent, BusEvents, Qos};
use crate::config::MqttSettings;
use crate::contract::{decode, Family, Limits};
use crate::metrics::Metrics;
use crate::state::Input;
use deadletter::DeadLetter;

/// Readiness shared with `/readyz`: every connection up, and every
/// subscription acknowledged by the broker (before that, live messages would
/// be missed).
pub struct IngestStatus {
    connections: Vec<ConnectionStatus>,
}

#[derive(Default)]
struct ConnectionStatus {
    connected: AtomicBool,
    subscribed: AtomicBool,
    /// Why the last attempt to connect failed (cleared on connecting): what
    /// an operator needs when `/readyz` says 503 (wrong password, unknown CA).
    last_error: std::sync::Mutex<Option<String>>,
}

impl ConnectionStatus {
    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
}

impl IngestStatus {
    /// The status of `connections` connections, none of them up yet.
    pub fn new(connections: usize) -> IngestStatus {
        IngestStatus {
            connections: (0..connections.max(1))
                .map(|_| ConnectionStatus::default())
                .collect(),
        }
    }

    /// Every connection is up.
    pub fn connected(&self) -> bool {
        self.connections
            .iter()
            .all(|c| c.connected.load(Ordering::Relaxed))
    }

    /// Every connection's subscriptions are acknowledged.
    pub fn subscribed(&self) -> bool {
        self.connections
            .iter()
            .all(|c| c.subscribed.load(Ordering::Relaxed))
    }

    /// The main connection (the one operator commands are published on) is up.
    pub fn main_connected(&self) -> bool {
        self.connections[0].connected.load(Ordering::Relaxed)
    }

    /// The most recent connection error of a connection that is down.
    pub fn last_error(&self) -> Option<String> {
        self.connections
            .iter()
            .filter(|c| !c.connected.load(Ordering::Relaxed))
            .find_map(|c| {
                c.last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            })
    }

    pub fn ready(&self) -> bool {
        self.connected() && self.subscribed()
    }
}

/// The families each connection reads: the main one first, then the
/// priority one if there is one (some families are priority and some not).
pub fn connections(s: &MqttSettings) -> Vec<Vec<Family>> {
    let mut all: Vec<Family> = s.families.clone();
    all.sort();
    all.dedup();
    let (priority, main): (Vec<Family>, Vec<Family>) =
        all.iter().partition(|f| s.priority_families.contains(f));
    if priority.is_empty() || main.is_empty() {
        vec![all]
    } else {
        vec![main, priority]
    }
}

/// The client id of connection `i` (0: the configured one).
pub fn client_id(s: &MqttSettings, i: usize) -> String {
    if i == 0 {
        s.client_id.clone()
    } else {
        format!("{}-priority", s.client_id)
    }
}

pub struct IngestLoop {
    pub client: BusClient,
    pub events: BusEvents,
    pub settings: MqttSettings,
    /// The families this connection reads.
    pub families: Vec<Family>,
    /// Which of `status`'s connections this is.
    pub index: usize,
    pub limits: Limits,
    pub out: mpsc::Sender<Input>,
    pub status: Arc<IngestStatus>,
    pub metrics: Arc<Metrics>,
}

/// The topic filters of `families`, shared when a group is configured.
pub fn filters(s: &MqttSettings, families: &[Family]) -> Vec<String> {
    let mut fs: Vec<Family> = families.to_vec();
    fs.sort();
    fs.dedup();
    fs.into_iter()
        .map(|f| match &s.shared_group {
            Some(g) => format!("$share/{g}/{}", f.filter()),
            None => f.filter().to_owned(),
        })
        .collect()
}

impl IngestLoop {
    fn mine(&self) -> &ConnectionStatus {
        &self.status.connections[self.index]
    }

    pub async fn run(mut self) {
        let mut backoff = Duration::from_millis(self.settings.reconnect_min_ms);
        let max_backoff = Duration::from_millis(
            self.settings
                .reconnect_max_ms
                .max(self.settings.reconnect_min_ms),
        );
        // Subscriptions sent on this connection and not yet acknowledged.
        let mut awaiting_subacks = 0usize;
        loop {
            match self.events.poll().await {
                Ok(BusEvent::Message(m)) => {
                    let rx = Utc::now();
                    let topic = std::str::from_utf8(&m.topic).unwrap_or("<non-UTF-8 topic>");
                    let input = match decode(topic, &m.payload, &self.limits, rx) {
                        Ok((topic, msg)) => Input::Accepted {
                            topic,
                            msg,
                            rx,
                            ack: m.ack,
                        },
                        Err(rejection) => Input::Rejected {
                            dead: DeadLetter::new(&m.topic, &m.payload, &rejection, rx),
                            ack: m.ack,
                        },
                    };
                    if self.out.send(input).await.is_err() {
                        break;
                    }
                }
                Ok(BusEvent::Connected { session_present }) => {
                    backoff = Duration::from_millis(self.settings.reconnect_min_ms);
                    self.mine().set_error(None);
                    self.mine().connected.store(true, Ordering::Relaxed);
                    self.metrics
                        .mqtt_connected
                        .set(self.status.connected() as i64);
                    self.metrics.mqtt_reconnects.inc();
                    tracing::info!(session_present, client_id = %client_id(&self.settings, self.index), "connected to the MQTT broker");
                    let client = self.client.clone();
                    if session_present {
                        self.mine().subscribed.store(true, Ordering::Relaxed);
                        // A session kept from before the families were split
                        // between connections may still hold the other
                        // connection's filters: drop them (a no-op otherwise).
                        // Readiness does not wait for the broker's answers:
                        // rumqttd 0.20 sends no UNSUBACK for a filter the
                        // session does not hold. Until the broker has them, a
                        // call event may come on both connections; the second
                        // copy is refused as `duplicate_event`.
                        let others: Vec<Family> = (self.settings.families.iter())
                            .filter(|f| !self.families.contains(f))
                            .copied()
                            .collect();
                        let stale = filters(&self.settings, &others);
                        if !stale.is_empty() {
                            tokio::spawn(async move {
                                for f in stale {
                                    if let Err(e) = client.unsubscribe(f.clone()).await {
                                        tracing::warn!(filter = %f, error = %e, "unsubscribe failed");
                                    }
                                }
                            });
                        }
                    } else {
                        self.mine().subscribed.store(false, Ordering::Relaxed);
                        let filters = filters(&self.settings, &self.families);
                        awaiting_subacks = filters.len();
                        // Subscribing goes through the request channel the poll loop drains:
                        // do it from another task (rumqtt #263).
                        tokio::spawn(async move {
                            for f in filters {
                                if let Err(e) = client.subscribe(f.clone(), Qos::AtLeastOnce).await
                                {
                                    tracing::error!(filter = %f, error = %e, "subscribe failed");
                                }
                            }
                        });
                    }
                }
                Ok(BusEvent::SubAck { granted }) => {
                    if !granted {
                        tracing::error!(
                            "the broker refused a subscription (check its ACL); not ready"
                        );
                    } else if awaiting_subacks > 0 {
                        awaiting_subacks -= 1;
                        if awaiting_subacks == 0 {
                            self.mine().subscribed.store(true, Ordering::Relaxed);
                            tracing::info!(families = ?self.families, "subscribed to every family");
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.mine().subscribed.store(false, Ordering::Relaxed);
                    self.mine().set_error(Some(e.to_string()));
                    awaiting_subacks = 0;
                    if let crate::bus::BusError::PacketTooLarge { .. } = e {
                        // Not a passing fault: say it every time, at error level.
                        self.mine().connected.store(false, Ordering::Relaxed);
                        tracing::error!(error = %e, client_id = %client_id(&self.settings, self.index), "lost the MQTT broker");
                    } else if self.mine().connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, client_id = %client_id(&self.settings, self.index), "lost the MQTT broker; reconnecting");
                    } else {
                        tracing::debug!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT broker unreachable");
                    }
                    self.metrics.mqtt_connected.set(0);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        }
        tracing::info!("ingest loop stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_events_get_a_connection_of_their_own_unless_nothing_else_is_read() {
        let mut s = MqttSettings::default();
        assert_eq!(
            connections(&s),
            [
                vec![Family::Atcs, Family::Units, Family::Apps, Family::Kpi],
                vec![Family::Calls]
            ]
        );
        assert_eq!(client_id(&s, 0), "kendali-1");
        assert_eq!(client_id(&s, 1), "kendali-1-priority");
        assert_eq!(
            filters(&s, &connections(&s)[1]),
            ["city/+/calls/+".to_owned()]
        );
        // A node that reads only calls, or only telemetry: one connection.
        s.families = vec![Family::Calls];
        assert_eq!(connections(&s), [vec![Family::Calls]]);
        s.families = vec![Family::Atcs, Family::Atcs];
        assert_eq!(connections(&s), [vec![Family::Atcs]]);
        // No priority families: one connection for everything, as before.
        s.families = Family::ALL.to_vec();
        s.priority_families.clear();
        assert_eq!(connections(&s), [Family::ALL.to_vec()]);
        // Shared subscriptions apply to both connections.
        s.priority_families = vec![Family::Calls];
        s.shared_group = Some("kendali".into());
        assert_eq!(
            filters(&s, &connections(&s)[1]),
            ["$share/kendali/city/+/calls/+".to_owned()]
        );
    }
}
