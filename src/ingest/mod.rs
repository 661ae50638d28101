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
//!
//! Shutdown ([`Drain`]): a loop first stops taking messages and drops its
//! sender, so the state's input closes and the stages behind it drain in
//! data-flow order; it keeps polling its connection, which is what sends the
//! store's last acks, and disconnects cleanly (the persistent session kept)
//! only when told the acks are queued. What arrives after the stop is neither
//! taken nor acknowledged: the broker redelivers it at the next start.

pub mod deadletter;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use crate::bus::{BusClient, BusEvent, BusEvents, Qos};
use crate::config::MqttSettings;
use crate::contract::{decode, Family, Limits};
use crate::metrics::Metrics;
use crate::state::{Input, Route};
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
    /// This connection's client id (in the logs).
    pub client_id: String,
    /// Where what it reads goes: to the state and the store (one node), or,
    /// with `mqtt.shared_group`, to the store only (its share of the bus)
    /// or to the state only (the node's view of the whole bus, see [`view_client_id`]).
    pub route: Route,
    pub events: BusEvents,
    pub settings: MqttSettings,
    /// The families this connection reads.
    pub families: Vec<Family>,
    /// Which of `status`'s connections this is.
    pub index: usize,
    pub limits: Limits,
    pub status: Arc<IngestStatus>,
    pub metrics: Arc<Metrics>,
}

/// Where a shutdown has got to, as the ingest loops are told it (in this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drain {
    /// Taking messages.
    Running,
    /// Take no more (drop the sender to the state) but keep the connection
    /// polled: the store's acks for what it holds still go out on it.
    StopTaking,
    /// The store's acks are queued (or its grace is over): send DISCONNECT
    /// after them and stop.
    Disconnect,
}

/// What one ingest loop did in this run, for the shutdown's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Messages handed to the state.
    pub taken: u64,
    /// QoS 1 messages that arrived after the stop: not taken, not
    /// acknowledged, redelivered by the broker to the session at the next start.
    pub left_to_broker: u64,
    /// QoS 0 messages that arrived after the stop (telemetry; nobody resends them).
    pub dropped: u64,
}

/// How long the broker may take to close the connection after our
/// DISCONNECT: it reads it, and the acks before it, in a moment.
const BROKER_CLOSE_WAIT: Duration = Duration::from_millis(500);

/// Drops the loop's sender to the state (the first time: logged).
fn stop_taking(out: &mut Option<mpsc::Sender<Input>>, client_id: &str, taken: u64) {
    if out.take().is_some() {
        tracing::info!(%client_id, taken, "ingest stopped taking messages");
    }
}

/// The next phase the loop is told; never, if the sender is gone (the
/// node was dropped without a drain: run as before, until the state goes).
async fn next_phase(drain: &mut watch::Receiver<Drain>) -> Drain {
    if drain.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
    *drain.borrow_and_update()
}

/// The topic filters of `families`, shared when a group is configured.
pub fn filters(s: &MqttSettings, families: &[Family]) -> Vec<String> {
    filters_of(s.shared_group.as_deref(), families)
}

fn filters_of(group: Option<&str>, families: &[Family]) -> Vec<String> {
    let mut fs: Vec<Family> = families.to_vec();
    fs.sort();
    fs.dedup();
    fs.into_iter()
        .map(|f| match group {
            Some(g) => format!("$share/{g}/{}", f.filter()),
            None => f.filter().to_owned(),
        })
        .collect()
}

/// The client id of connection `i`'s view (`mqtt.shared_group` only): a
/// clean session on the same families, not shared, acknowledged as it
/// comes. Every node's state, and so its screens, holds the whole city from
/// it, while storage and acknowledgement stay shared (the connection
/// `client_id(s, i)`). A node that dies loses nothing on it: what it missed
/// is in the store, which it restores from when it starts again.
pub fn view_client_id(s: &MqttSettings, i: usize) -> String {
    format!("{}-view", client_id(s, i))
}

impl IngestLoop {
    fn mine(&self) -> &ConnectionStatus {
        &self.status.connections[self.index]
    }

    /// The filters this connection subscribes to: shared, unless it is a view.
    fn filters(&self, families: &[Family]) -> Vec<String> {
        match self.route {
            Route::View => filters_of(None, families),
            _ => filters(&self.settings, families),
        }
    }

    /// Reads the connection until told to disconnect (or, without a drain,
    /// until the state is gone), handing messages to `out` until told to stop taking.
    pub async fn run(
        mut self,
        out: mpsc::Sender<Input>,
        mut drain: watch::Receiver<Drain>,
    ) -> IngestReport {
        // Dropped at the stop: the state's input closes once every loop has let go.
        let mut out = Some(out);
        let mut report = IngestReport::default();
        let mut disconnecting = false;
        // Set once our DISCONNECT has left: until then, or until the broker
        // closes the connection, the socket is still read (see below).
        let mut close_by: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(self.settings.reconnect_min_ms);
        let max_backoff = Duration::from_millis(
            self.settings
                .reconnect_max_ms
                .max(self.settings.reconnect_min_ms),
        );
        // Subscriptions sent on this connection and not yet acknowledged.
        let mut awaiting_subacks = 0usize;
        'run: loop {
            // The poll is not cancelled when told of a phase (a request it
            // had taken, an ack, could be lost): it goes on being awaited.
            let event = {
                let poll = self.events.poll();
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        e = &mut poll => break e,
                        _ = tokio::time::sleep_until(close_by.unwrap_or_else(tokio::time::Instant::now)), if close_by.is_some() => {
                            break 'run;
                        }
                        phase = next_phase(&mut drain) => {
                            if phase >= Drain::StopTaking {
                                stop_taking(&mut out, &self.client_id, report.taken);
                            }
                            if phase == Drain::Disconnect && !disconnecting {
                                disconnecting = true;
                                // Through the request channel this loop drains, behind the acks.
                                let client = self.client.clone();
                                tokio::spawn(async move { client.disconnect().await });
                            }
                        }
                    }
                }
            };
            match event {
                Ok(BusEvent::Message(m)) => {
                    let Some(out) = &out else {
                        // Stopped: the broker keeps it for the next start
                        // (a view's: acknowledged, left to the shared connections).
                        if m.ack.is_some() && self.route != Route::View {
                            report.left_to_broker += 1;
                        } else {
                            report.dropped += 1;
                        }
                        continue;
                    };
                    let rx = Utc::now();
                    let topic = std::str::from_utf8(&m.topic).unwrap_or("<non-UTF-8 topic>");
                    // A view's messages are acknowledged by the client as
                    // they come (another connection's acks store them).
                    let ack = if self.route == Route::View {
                        None
                    } else {
                        m.ack
                    };
                    let route = self.route;
                    let input = if m.payload.is_empty() && is_alert_topic(topic) {
                        Input::Cleared { ack }
                    } else {
                        match decode(topic, &m.payload, &self.limits, rx) {
                            Ok((topic, msg)) => Input::Accepted {
                                topic,
                                msg,
                                rx,
                                ack,
                                route,
                            },
                            Err(rejection) => Input::Rejected {
                                dead: DeadLetter::new(&m.topic, &m.payload, &rejection, rx),
                                ack,
                                route,
                            },
                        }
                    };
                    if out.send(input).await.is_err() {
                        break;
                    }
                    report.taken += 1;
                }
                // Closing the socket now, with the broker's next messages
                // unread in it, would send a reset, and a reset makes the
                // broker's side drop what it has not read yet: our last acks
                // and the DISCONNECT (8 calls came back so in a test). The
                // broker closes the connection once it has read DISCONNECT:
                // read (and leave) what comes until then.
                Ok(BusEvent::DisconnectSent) if disconnecting => {
                    close_by = Some(tokio::time::Instant::now() + BROKER_CLOSE_WAIT);
                }
                Ok(BusEvent::Connected { session_present }) => {
                    backoff = Duration::from_millis(self.settings.reconnect_min_ms);
                    self.mine().set_error(None);
                    self.mine().connected.store(true, Ordering::Relaxed);
                    self.metrics
                        .mqtt_connected
                        .set(self.status.connected() as i64);
                    self.metrics.mqtt_reconnects.inc();
                    tracing::info!(session_present, client_id = %self.client_id, "connected to the MQTT broker");
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
                        let stale = self.filters(&others);
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
                        let filters = self.filters(&self.families);
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
                Err(_) if disconnecting => break,
                Err(e) => {
                    self.mine().subscribed.store(false, Ordering::Relaxed);
                    self.mine().set_error(Some(e.to_string()));
                    awaiting_subacks = 0;
                    if let crate::bus::BusError::PacketTooLarge { .. } = e {
                        // Not a passing fault: say it every time, at error level.
                        self.mine().connected.store(false, Ordering::Relaxed);
                        tracing::error!(error = %e, client_id = %self.client_id, "lost the MQTT broker");
                    } else if self.mine().connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, client_id = %self.client_id, "lost the MQTT broker; reconnecting");
                    } else {
                        tracing::debug!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT broker unreachable");
                    }
                    self.metrics.mqtt_connected.set(0);
                    let sleep = tokio::time::sleep(backoff);
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            _ = &mut sleep => break,
                            phase = next_phase(&mut drain) => {
                                if phase >= Drain::StopTaking {
                                    stop_taking(&mut out, &self.client_id, report.taken);
                                }
                                // No connection to send acks or DISCONNECT on.
                                disconnecting |= phase == Drain::Disconnect;
                                if disconnecting {
                                    break;
                                }
                            }
                        }
                    }
                    if disconnecting {
                        break;
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        }
        tracing::info!(
            client_id = %self.client_id,
            taken = report.taken,
            left_to_broker = report.left_to_broker,
            dropped = report.dropped,
            "ingest disconnected"
        );
        report
    }
}

/// An alert's topic: an empty message there clears its retained alert.
fn is_alert_topic(topic: &str) -> bool {
    crate::contract::Topic::parse(topic).is_ok_and(|t| t.family() == Family::Alerts)
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
                vec![
                    Family::Atcs,
                    Family::Units,
                    Family::Apps,
                    Family::Kpi,
                    Family::Alerts
                ],
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
