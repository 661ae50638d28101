//! The live city state and the one task that owns it. Ingest hands it
//! validated messages over a bounded channel; it applies them (no shared
//! locks on the hot path), passes the resulting [`Update`]s to its fan-out
//! (the hub, the alert engine) and every message, accepted or refused, to
//! the store, in each connection's
//! arrival order (the priority connection's first when both have messages),
//! and the store acknowledges QoS 1 messages once they are safely kept.
//!
//! At shutdown its inputs close (the ingest loops stop taking): it handles
//! what they still hold, then drops its senders, so the hub's and the
//! store's inputs close in turn.

pub mod city;
pub mod fanout;
pub mod update;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

pub use city::CityState;
pub use fanout::{FanOut, Output};
pub use update::{Tags, Update, UpdateKind};

use crate::bus::AckToken;
use crate::contract::{Message, RejectReason, Topic};
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
        route: Route,
    },
    Rejected {
        dead: DeadLetter,
        ack: Option<AckToken>,
        route: Route,
    },
    /// An empty message on an alert's topic: the retained alert was cleared
    /// (it went back to normal). Nothing to apply; its ack keeps its place.
    Cleared { ack: Option<AckToken> },
}

/// Where a message read from the bus goes.
///
/// One node reads the whole bus and both keeps and applies it. Several nodes
/// (`mqtt.shared_group`) share the bus for storage and acknowledgement, and
/// each also reads all of it on a view connection for its live state: a
/// message then comes twice to every node that stores it, once to each other
/// node, and each copy does one of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Applied to the state and kept by the store (one node).
    Both,
    /// Applied to the state only: the node's view of the whole bus. A call
    /// event's projection is still written (by every node: the row with the
    /// most events wins, so it is the same whoever writes last).
    View,
    /// Kept by the store only (this node's share of the bus). It is not
    /// checked against the call's lifecycle, which the node that happens to
    /// store it may not have seen whole yet: an event the lifecycle refuses
    /// is kept with the call's events, and every node's view sets it aside
    /// as a dead letter (and does not apply it, now or at a restore).
    Store,
}

/// Capacity of the ingest -> state channel: a few milliseconds of a very busy
/// bus; when full, the main MQTT poll loop waits and the broker holds the rest.
pub const INPUT_CAPACITY: usize = 8192;
/// Housekeeping period: staleness is decided at this resolution.
const TICK: Duration = Duration::from_millis(500);

pub struct StateTask {
    pub city: CityState,
    pub input: mpsc::Receiver<Input>,
    /// The priority connection's messages (`mqtt.priority_families`), read
    /// before `input` whenever both have some.
    pub priority: Option<mpsc::Receiver<Input>>,
    /// The hub, the alert engine: whoever takes the state's updates.
    pub out: FanOut,
    pub store: mpsc::Sender<StoreItem>,
    pub deadletters: DeadLetters,
    pub metrics: Arc<Metrics>,
}

impl StateTask {
    /// Rebuilds the live state from stored messages (at start-up, before ingest
    /// runs) and tells its outputs; nothing goes back to the store.
    pub async fn replay(&mut self, messages: Vec<(Topic, Message, DateTime<Utc>)>) {
        let (mut applied, mut skipped) = (0usize, 0usize);
        for (topic, msg, rx) in messages {
            match self.city.apply(&topic, &msg, rx) {
                Ok(updates) => {
                    applied += 1;
                    for u in updates {
                        self.out.send(u).await;
                    }
                }
                Err(_) => skipped += 1,
            }
        }
        tracing::info!(applied, skipped, "live state rebuilt from the store");
    }

    /// Runs until both inputs have closed and what they held is handled.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(256);
        let mut urgent = Vec::with_capacity(16);
        let mut main_open = true;
        let mut handled = 0u64;
        loop {
            tokio::select! {
                // The priority connection first, whenever it has messages.
                biased;
                n = async {
                    match self.priority.as_mut() {
                        Some(p) => p.recv_many(&mut urgent, 64).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if n == 0 {
                        // Its ingest loop stopped: shutting down.
                        self.priority = None;
                        if !main_open {
                            break;
                        }
                        continue;
                    }
                    handled += n as u64;
                    for input in urgent.drain(..) {
                        if !self.handle(input).await {
                            return;
                        }
                    }
                }
                // Second: due twice a second, and in biased order it would
                // never come up under a flood on the main connection (stale
                // feeds must still be shown stale then).
                _ = tick.tick() => {
                    for u in self.city.tick(Utc::now()) {
                        if !self.out.send(u).await {
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
                        ("alerts", s.alerts),
                    ] {
                        self.metrics.state_size.with_label_values(&[k]).set(v as i64);
                    }
                }
                n = self.input.recv_many(&mut batch, 256), if main_open => {
                    if n == 0 {
                        // The priority connection's messages may still be queued.
                        main_open = false;
                        if self.priority.is_none() {
                            break;
                        }
                        continue;
                    }
                    handled += n as u64;
                    for input in batch.drain(..) {
                        if !self.handle(input).await {
                            return;
                        }
                    }
                }
            }
        }
        tracing::info!(
            handled,
            "state task stopped: handed off to the hub and the store"
        );
    }

    /// Returns false when a downstream stage is gone (shutdown).
    async fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Accepted {
                topic,
                msg,
                rx,
                ack,
                route,
            } => {
                // A stored-only copy is applied when it is an event this
                // state has not had from its view: the node's own share that
                // waited at the broker while it was down, or one that came
                // on the shared connection before the view's copy did.
                let apply = match route {
                    Route::Store => msg.event_id().is_some_and(|id| !self.city.has_seen(id)),
                    Route::Both | Route::View => true,
                };
                let mut projection = None;
                if apply {
                    match self.city.apply(&topic, &msg, rx) {
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
                                if !self.out.send(u).await {
                                    return false;
                                }
                            }
                            projection = match &msg {
                                Message::CallEvent(m) => self
                                    .city
                                    .call(topic.city(), &m.call_id)
                                    .cloned()
                                    .map(Box::new),
                                _ => None,
                            };
                        }
                        // The view's second copy of an event the shared
                        // connection brought first: nothing to say.
                        Err(r)
                            if route == Route::View && r.reason == RejectReason::DuplicateEvent =>
                        {
                            return true;
                        }
                        Err(rejection) => {
                            let payload = msg.to_json();
                            let dead = DeadLetter::new(
                                topic.to_string().as_bytes(),
                                &payload,
                                &rejection,
                                rx,
                            );
                            match route {
                                // Kept with the call's events all the same (see `Route::Store`).
                                Route::Store => {}
                                Route::View => {
                                    self.deadletters.push(dead);
                                    return true;
                                }
                                Route::Both => {
                                    self.deadletters.push(dead.clone());
                                    return self
                                        .store
                                        .send(StoreItem::Rejected { dead, ack })
                                        .await
                                        .is_ok();
                                }
                            }
                        }
                    }
                }
                if route == Route::View {
                    return match projection {
                        Some(call) => self
                            .store
                            .send(StoreItem::Projection { call, rx })
                            .await
                            .is_ok(),
                        None => true,
                    };
                }
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
            Input::Cleared { ack } => self.store.send(StoreItem::AckOnly { ack }).await.is_ok(),
            Input::Rejected { dead, ack, route } => {
                // Every node's view sees a refused message and lists it; the
                // node that stores it does not list it twice.
                if route != Route::Store {
                    self.deadletters.push(dead.clone());
                }
                if route == Route::View {
                    return true;
                }
                self.store
                    .send(StoreItem::Rejected { dead, ack })
                    .await
                    .is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{decode, Limits};

    fn accepted(topic: &str, payload: &str) -> Input {
        let rx = Utc::now();
        let (topic, msg) =
            decode(topic, payload.as_bytes(), &Limits::default(), rx).expect("a valid message");
        Input::Accepted {
            topic,
            msg,
            rx,
            ack: None,
            route: Route::Both,
        }
    }

    /// Every message is moved through the ingest and store channels and a few
    /// buffers: with the largest message and an MQTT 5 ack token inline, each
    /// move copied about 500 bytes.
    #[test]
    fn a_message_on_its_way_through_the_channels_stays_small() {
        use std::mem::size_of;
        assert!(size_of::<Message>() <= 16, "{}", size_of::<Message>());
        assert!(size_of::<Input>() <= 128, "{}", size_of::<Input>());
        assert!(size_of::<StoreItem>() <= 128, "{}", size_of::<StoreItem>());
        assert!(
            size_of::<crate::bus::BusEvent>() <= 96,
            "{}",
            size_of::<crate::bus::BusEvent>()
        );
    }

    /// The state task takes the priority connection's messages before the
    /// main connection's backlog: a call event does not wait behind a
    /// thousand telemetry messages that were there first.
    #[tokio::test]
    async fn a_call_event_on_the_priority_connection_overtakes_a_telemetry_backlog() {
        let metrics = Arc::new(Metrics::new());
        let (main_tx, main_rx) = mpsc::channel(INPUT_CAPACITY);
        let (priority_tx, priority_rx) = mpsc::channel(16);
        let (hub_tx, mut hub_rx) = mpsc::channel(1 << 16);
        let (store_tx, mut store_rx) = mpsc::channel(1 << 16);
        let ts = Utc::now().with_timezone(&crate::domain::wib()).to_rfc3339();
        for k in 0..1000u64 {
            let id = crate::bench::load::intersection_id(k as usize % 50);
            let payload = crate::bench::load::state_payload(&id, &ts, k);
            main_tx
                .try_send(accepted(&format!("city/kota/atcs/{id}/state"), &payload))
                .expect("room in the channel");
        }
        let call = format!(
            r#"{{"event_id":"{}","call_id":"c1","ts":"{ts}","line":"112","type":"received"}}"#,
            uuid::Uuid::new_v4()
        );
        priority_tx
            .try_send(accepted("city/kota/calls/112", &call))
            .expect("room in the channel");
        drop((main_tx, priority_tx));
        let task = StateTask {
            city: CityState::new(Default::default()),
            input: main_rx,
            priority: Some(priority_rx),
            out: FanOut::hub(hub_tx),
            store: store_tx,
            deadletters: DeadLetters::new(10, metrics.clone()),
            metrics,
        };
        task.run().await;

        let mut kinds = Vec::new();
        while let Ok(u) = hub_rx.try_recv() {
            kinds.push(u.kind);
        }
        let first_intersection = kinds.iter().position(|k| *k == UpdateKind::Intersection);
        let call = kinds.iter().position(|k| *k == UpdateKind::CallEvent);
        assert!(call.is_some(), "the call event reached the hub: {kinds:?}");
        assert!(
            call < first_intersection,
            "the call event went first ({call:?}), before any telemetry ({first_intersection:?})"
        );
        // Every message still reaches the store, each connection's in its order.
        let mut stored = 0;
        while store_rx.try_recv().is_ok() {
            stored += 1;
        }
        assert_eq!(stored, 1001);
    }
}
