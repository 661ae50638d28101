//! Ingest: the MQTT poll loop. It subscribes per family (again whenever the
//! broker reports no session), decodes and validates every message, and hands
//! accepted and refused messages alike to the state task in arrival order
//! (QoS 1 acks follow that order). It never waits on a screen or a database;
//! it waits only on the bounded channel to the state, so the broker holds
//! back what we cannot take yet.

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

/// Readiness shared with `/readyz`: connected, and every subscription
/// acknowledged by the broker (before that, live messages would be missed).
#[derive(Default)]
pub struct IngestStatus {
    pub connected: AtomicBool,
    pub subscribed: AtomicBool,
}

impl IngestStatus {
    pub fn ready(&self) -> bool {
        self.connected.load(Ordering::Relaxed) && self.subscribed.load(Ordering::Relaxed)
    }
}

pub struct IngestLoop {
    pub client: BusClient,
    pub events: BusEvents,
    pub settings: MqttSettings,
    pub limits: Limits,
    pub out: mpsc::Sender<Input>,
    pub status: Arc<IngestStatus>,
    pub metrics: Arc<Metrics>,
}

/// The topic filters for our families, shared when a group is configured.
pub fn filters(s: &MqttSettings) -> Vec<String> {
    let mut fs: Vec<Family> = s.families.clone();
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
                    self.status.connected.store(true, Ordering::Relaxed);
                    self.metrics.mqtt_connected.set(1);
                    self.metrics.mqtt_reconnects.inc();
                    tracing::info!(session_present, "connected to the MQTT broker");
                    if session_present {
                        self.status.subscribed.store(true, Ordering::Relaxed);
                    } else {
                        self.status.subscribed.store(false, Ordering::Relaxed);
                        let filters = filters(&self.settings);
                        awaiting_subacks = filters.len();
                        // Subscribing goes through the request channel the poll loop drains:
                        // do it from another task (rumqtt #263).
                        let client = self.client.clone();
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
                            self.status.subscribed.store(true, Ordering::Relaxed);
                            tracing::info!("subscribed to every family");
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.status.subscribed.store(false, Ordering::Relaxed);
                    awaiting_subacks = 0;
                    if self.status.connected.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "lost the MQTT broker; reconnecting");
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
