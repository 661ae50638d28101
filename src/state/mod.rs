//! The live city state and the one task that owns it. Ingest hands it
//! validated messages over a bounded channel; it applies them (no shared
//! locks on the hot path), passes the resulting [`Update`]s to the hub and
//! every message, accepted or refused, to the store, in arrival order, which
//! acknowledges QoS 1 messages once they are safely kept.

pub mod city;
pub mod update;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

pub use city::CityState;
pub use update::{Tags, Update, UpdateKind};

use crate::bus::AckToken;
use crate::contract::{Message, Topic};
use crate::ingest::deadletter::{DeadLetter, DeadLetters};
use crate::metrics::Metrics;
use crate::store::StoreItem;

/// What ingest hands to the state.
#[derive(Debug)]
pub enum Input {
    Accepted {
        topic: Topic,
        msg: Message,
        rx: DateTime<Utc>,
        ack: Option<AckToken>,
    },
    Rejected {
        dead: DeadLetter,
        ack: Option<AckToken>,
    },
}

/// Capacity of the ingest -> state channel: a few milliseconds of a very busy
/// bus; when full, the MQTT poll loop waits and the broker holds the rest.
pub const INPUT_CAPACITY: usize = 8192;
/// Housekeeping period: staleness is decided at this resolution.
const TICK: Duration = Duration::from_millis(500);

pub struct StateTask {
    pub city: CityState,
    pub input: mpsc::Receiver<Input>,
    pub hub: mpsc::Sender<Update>,
    pub store: mpsc::Sender<StoreItem>,
    pub deadletters: DeadLetters,
    pub metrics: Arc<Metrics>,
}

impl StateTask {
    /// Rebuilds the live state from stored messages (at start-up, before ingest
    /// runs) and tells the hub; nothing goes back to the store.
    pub async fn replay(&mut self, messages: Vec<(Topic, Message, DateTime<Utc>)>) {
        let (mut applied, mut skipped) = (0usize, 0usize);
        for (topic, msg, rx) in messages {
            match self.city.apply(&topic, &msg, rx) {
                Ok(updates) => {
                    applied += 1;
                    for u in updates {
                        let _ = self.hub.send(u).await;
                    }
                }
                Err(_) => skipped += 1,
            }
        }
        tracing::info!(applied, skipped, "live state rebuilt from the store");
    }

    /// Runs until the input channel closes.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(256);
        loop {
            tokio::select! {
                n = self.input.recv_many(&mut batch, 256) => {
                    if n == 0 {
                        break;
                    }
                    for input in batch.drain(..) {
                        if !self.handle(input).await {
                            return;
                        }
                    }
                }
                _ = tick.tick() => {
                    for u in self.city.tick(Utc::now()) {
                        if self.hub.send(u).await.is_err() {
                            return;
                        }
                    }
                    let s = self.city.sizes();
                    for (k, v) in [
                        ("intersections", s.intersections),
                        ("calls", s.calls),
                        ("open_calls", s.open_calls),
                        ("units", s.units),
                        ("kpis", s.kpis),
                        ("feeds", s.feeds),
                        ("stale_feeds", s.stale_feeds),
                        ("commands", s.commands),
                    ] {
                        self.metrics.state_size.with_label_values(&[k]).set(v as i64);
                    }
                }
            }
        }
        tracing::info!("state task stopped");
    }

    /// Returns false when a downstream stage is gone (shutdown).
    async fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Accepted {
                topic,
                msg,
                rx,
                ack,
            } => match self.city.apply(&topic, &msg, rx) {
                Ok(updates) => {
                    self.metrics.messages_by_family[topic.family() as usize].inc();
                    if let Some(ts) = msg.ts() {
                        let lag = (rx - ts.with_timezone(&Utc))
                            .num_microseconds()
                            .unwrap_or(0) as f64
                            / 1e6;
                        self.metrics.ingest_lag.observe(lag.max(0.0));
                    }
                    for u in updates {
                        if self.hub.send(u).await.is_err() {
                            return false;
                        }
                    }
                    let projection = match &msg {
                        Message::CallEvent(m) => self
                            .city
                            .call(topic.city(), &m.call_id)
                            .cloned()
                            .map(Box::new),
                        _ => None,
                    };
                    self.store
                        .send(StoreItem::Accepted {
                            topic,
                            msg,
                            rx,
                            ack,
                            projection,
                        })
                        .await
                        .is_ok()
                }
                Err(rejection) => {
                    let payload = msg.to_json();
                    let dead =
                        DeadLetter::new(topic.to_string().as_bytes(), &payload, &rejection, rx);
                    self.deadletters.push(dead.clone());
                    self.store
                        .send(StoreItem::Rejected { dead, ack })
                        .await
                        .is_ok()
                }
            },
            Input::Rejected { dead, ack } => {
                self.deadletters.push(dead.clone());
                self.store
                    .send(StoreItem::Rejected { dead, ack })
                    .await
                    .is_ok()
            }
        }
    }
}
