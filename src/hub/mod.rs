//! The hub: fans the live state out to every screen over websockets.
//!
//! One task owns everything here: the sequence counter, a mirror of the
//! current entities (for snapshots), the resume ring, the lanes (clients with
//! equal subscriptions, which share one encoded frame per tick) and each
//! client's bounded queue. It never awaits a client: frames are offered with
//! `try_send`; a client whose queue is full gets its updates conflated in a
//! backlog of its own (events kept, the latest state per entity wins) and is
//! disconnected, told to resume, when that backlog passes its bound. Each
//! websocket session is its own task (`session.rs`) that drains its queue.
//!
//! The resume ring keeps, for every sequence number, the update or a
//! tombstone once a newer update of the same entity superseded it: a resuming
//! client receives every event it missed and the latest value of every entity
//! that changed, in order, at the memory cost of the events plus the entities.

pub mod filter;
pub mod session;

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

pub use filter::Filter;

use crate::config::HubSettings;
use crate::metrics::Metrics;
use crate::state::{Update, UpdateKind};

type Key = (UpdateKind, Arc<str>);
type ClientId = u64;

/// Close codes a client can act on.
pub mod close {
    /// Fell too far behind: reconnect with `since=<last seq>`.
    pub const LAGGING: u16 = 4001;
    /// No frame from the client within the timeout.
    pub const TIMEOUT: u16 = 4002;
    /// The server is shutting down: reconnect with `since=`.
    pub const SHUTDOWN: u16 = 1001;
}

/// Why the hub closes a session.
#[derive(Debug, Clone)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

/// What a new session gets from the hub.
pub struct Connected {
    pub id: ClientId,
    pub frames: mpsc::Receiver<ByteString>,
    pub kill: oneshot::Receiver<Close>,
    /// Bytes queued for this client and not yet handed to its socket; the
    /// session subtracts what it sends.
    pub queued_bytes: Arc<AtomicUsize>,
}

enum HubCommand {
    Connect {
        filter: Filter,
        since: Option<u64>,
        epoch: Option<u64>,
        reply: oneshot::Sender<Connected>,
    },
    Shutdown,
    Resubscribe {
        id: ClientId,
        filter: Filter,
    },
    Disconnect {
        id: ClientId,
        reason: &'static str,
    },
    State {
        reply: oneshot::Sender<String>,
    },
}

/// Cheap handle to the hub task.
#[derive(Clone)]
pub struct HubHandle {
    cmd: mpsc::Sender<HubCommand>,
    pub settings: Arc<HubSettings>,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
#[error("the hub has stopped")]
pub struct HubGone;

impl HubHandle {
    /// Registers a client; `since` resumes only within the same `epoch` (one run of the hub).
    pub async fn connect(
        &self,
        filter: Filter,
        since: Option<u64>,
        epoch: Option<u64>,
    ) -> Result<Connected, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::Connect {
                filter,
                since,
                epoch,
                reply,
            })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }

    /// Closes every session with 1001 (going away: reconnect and resume).
    pub async fn shutdown(&self) {
        let _ = self.cmd.send(HubCommand::Shutdown).await;
    }

    pub async fn resubscribe(&self, id: ClientId, filter: Filter) -> Result<(), HubGone> {
        self.cmd
            .send(HubCommand::Resubscribe { id, filter })
            .await
            .map_err(|_| HubGone)
    }

    pub async fn disconnect(&self, id: ClientId, reason: &'static str) {
        let _ = self.cmd.send(HubCommand::Disconnect { id, reason }).await;
    }

    /// The whole current state as JSON: `{"seq":..,"entities":{kind:{key:value}}}`.
    pub async fn state_json(&self) -> Result<String, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::State { reply })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }
}

/// Capacity of the state -> hub channel. The hub drains it without waiting
/// on anyone, so this only absorbs scheduling jitter.
pub const HUB_INPUT_CAPACITY: usize = 65_536;
/// Largest number of updates in one frame built from a client's backlog
/// (such frames are the client's own, not shared: keep them small; 500 made
/// frames of about 150 KB with 2,000 intersections).
const BACKLOG_FRAME_UPDATES: usize = 50;
/// A lagging client gets frames from its backlog only while less than this
/// is queued for it. Backlog frames are the client's own copies: the longer
/// updates wait in the conflating backlog the more of them collapse, and a
/// thousand slow screens hold about this much each, not a full queue each.
const BACKLOG_DRAIN_BELOW: usize = 16 * 1024;
/// A snapshot is shared by every client with the same subscription that
/// connects within this long (they catch up from the ring after it): a
/// thousand screens starting together cost one snapshot, not a thousand.
const SNAPSHOT_REUSE: Duration = Duration::from_secs(1);
/// Lagging clients are offered catch-up frames this often, not only on the
/// hub's ticks: with at most `BACKLOG_DRAIN_BELOW` plus one backlog frame per
/// offer, a screen that reads fast again catches up at up to about 3 MB/s
/// while a thousand that cannot read hold about 30 KB of private frames each.
const CATCH_UP_EVERY: Duration = Duration::from_millis(10);
/// Shortest gap between two frames when a call event asks for an early
/// flush: at most 1000 / 10 + 1000 / `tick_ms` frames per second per screen.
const EVENT_FLUSH_GAP: Duration = Duration::from_millis(10);
/// A heartbeat frame goes to idle lanes this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A client's own conflating backlog, used while its queue is full.
///
/// A thousand lagging screens hold a thousand of these, each with up to one
/// update per entity (2,000 intersections): they are kept small. An entity is
/// found by a 64-bit hash of its key, checked against the slot's update; the
/// slots are compacted once a fifth of them are tombstones; a backlog that
/// empties gives its memory back.
#[derive(Default)]
struct Backlog {
    /// 16 bytes a slot: `None` is the tombstone of a conflated update.
    items: VecDeque<Option<(u64, Arc<Update>)>>,
    /// Hash of the entity's key -> position (offset by `popped`) of its pending state update.
    index: HashMap<u64, u64>,
    popped: u64,
    live: usize,
}

fn entity_hash(u: &Update) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((u.kind, &u.key))
}

impl Backlog {
    /// Adds an update; returns true when it replaced an older one of the same entity.
    fn push(&mut self, seq: u64, u: Arc<Update>) -> bool {
        let mut conflated = false;
        if !u.kind.is_event() {
            let pos = self.popped + self.items.len() as u64;
            if let Some(old) = self.index.insert(entity_hash(&u), pos) {
                if let Some(slot) = self.items.get_mut((old - self.popped) as usize) {
                    // Another entity with the same hash keeps its slot (it is
                    // then only not conflated).
                    if matches!(slot, Some((_, o)) if o.kind == u.kind && o.key == u.key) {
                        *slot = None;
                        self.live -= 1;
                        conflated = true;
                    }
                }
            }
        }
        self.items.push_back(Some((seq, u)));
        self.live += 1;
        if self.items.len() > self.live + self.live / 4 + 256 {
            self.compact();
        }
        conflated
    }

    /// Drops the tombstones of conflated updates (a client that lags for long
    /// would otherwise keep one per update it ever missed) and renumbers.
    fn compact(&mut self) {
        self.items.retain(Option::is_some);
        self.items.shrink_to(2 * self.items.len() + 256);
        self.popped = 0;
        self.index.clear();
        for (pos, slot) in self.items.iter().enumerate() {
            if let Some((_, u)) = slot {
                if !u.kind.is_event() {
                    self.index.insert(entity_hash(u), pos as u64);
                }
            }
        }
        self.index.shrink_to(2 * self.index.len() + 64);
    }

    /// Takes up to `n` live updates, in order.
    fn take(&mut self, n: usize) -> Vec<(u64, Arc<Update>)> {
        let mut out = Vec::with_capacity(n.min(self.live));
        while out.len() < n {
            let Some(slot) = self.items.pop_front() else {
                break;
            };
            self.popped += 1;
            if let Some((seq, u)) = slot {
                self.live -= 1;
                if !u.kind.is_event() {
                    let h = entity_hash(&u);
                    if self.index.get(&h) == Some(&(self.popped - 1)) {
                        self.index.remove(&h);
                    }
                }
                out.push((seq, u));
            }
        }
        if self.live == 0 {
            // Caught up: give the memory back (a screen that lagged once
            // would otherwise keep its largest backlog's capacity for good).
            *self = Backlog::default();
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }
}

struct Client {
    filter: Filter,
    tx: mpsc::Sender<ByteString>,
    queued_bytes: Arc<AtomicUsize>,
    kill: Option<oneshot::Sender<Close>>,
    backlog: Backlog,
}

#[derive(Default)]
struct Lane {
    clients: Vec<ClientId>,
    /// When each entity was last sent (only for lanes with a rate cap).
    last_sent: HashMap<Key, Instant>,
    /// State updates held back by the rate cap, latest per entity.
    held: HashMap<Key, (u64, Arc<Update>)>,
    last_frame: Option<Instant>,
}

pub struct Hub {
    settings: Arc<HubSettings>,
    metrics: Arc<Metrics>,
    input: mpsc::Receiver<Update>,
    cmd: mpsc::Receiver<HubCommand>,
    seq: u64,
    /// Identifies this run of the hub: sequence numbers restart with a new process,
    /// so a resume is only honoured within the same epoch.
    epoch: u64,
    mirror: HashMap<Key, (u64, Arc<Update>)>,
    recent: HashMap<UpdateKind, VecDeque<(u64, Arc<Update>)>>,
    recent_kept: usize,
    /// Slot `i` holds sequence number `ring_base + i`; `None` once superseded.
    ring: VecDeque<Option<Arc<Update>>>,
    ring_base: u64,
    pending: Vec<(u64, Arc<Update>)>,
    lanes: HashMap<Filter, Lane>,
    clients: HashMap<ClientId, Client>,
    next_id: ClientId,
    /// Recent snapshots per (subscription, reset), with the seq they are valid at.
    snapshots: HashMap<(Filter, bool), (u64, Instant, ByteString)>,
    /// Some client has a backlog: it is offered catch-up frames every
    /// `CATCH_UP_EVERY`, between the ticks.
    lagging: bool,
}

impl Hub {
    pub fn new(
        settings: HubSettings,
        recent_kept: usize,
        metrics: Arc<Metrics>,
        input: mpsc::Receiver<Update>,
    ) -> (Hub, HubHandle) {
        let (cmd_tx, cmd) = mpsc::channel(1024);
        let settings = Arc::new(settings);
        let handle = HubHandle {
            cmd: cmd_tx,
            settings: settings.clone(),
            metrics: metrics.clone(),
        };
        let hub = Hub {
            settings,
            metrics,
            input,
            cmd,
            seq: 0,
            // Milliseconds since the epoch at start: unique per run for a node.
            epoch: Utc::now().timestamp_millis() as u64,
            mirror: HashMap::default(),
            recent: HashMap::default(),
            recent_kept: recent_kept.max(1),
            ring: VecDeque::new(),
            ring_base: 1,
            pending: Vec::new(),
            lanes: HashMap::default(),
            clients: HashMap::default(),
            next_id: 1,
            snapshots: HashMap::default(),
            lagging: false,
        };
        (hub, handle)
    }

    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.settings.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(1024);
        // A call event does not wait for the tick: its frame leaves at most
        // `EVENT_FLUSH_GAP` after the previous one (a dispatcher's second counts).
        let mut last_flush = Instant::now();
        let mut early: Option<tokio::time::Instant> = None;
        let mut catch_up = tokio::time::interval(CATCH_UP_EVERY);
        catch_up.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                Some(c) = self.cmd.recv() => self.command(c),
                n = self.input.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        break;
                    }
                    let mut urgent = false;
                    for u in batch.drain(..) {
                        urgent |= u.kind == UpdateKind::CallEvent;
                        self.ingest(u);
                    }
                    if urgent && early.is_none() {
                        early = Some(tokio::time::Instant::from_std(last_flush + EVENT_FLUSH_GAP));
                    }
                }
                _ = tokio::time::sleep_until(early.unwrap_or_else(tokio::time::Instant::now)), if early.is_some() => {
                    early = None;
                    self.flush();
                    last_flush = Instant::now();
                    tick.reset();
                }
                _ = tick.tick() => {
                    early = None;
                    self.flush();
                    last_flush = Instant::now();
                }
                _ = catch_up.tick(), if self.lagging => self.catch_up(),
            }
        }
        for (_, mut c) in self.clients.drain() {
            if let Some(k) = c.kill.take() {
                let _ = k.send(Close {
                    code: close::SHUTDOWN,
                    reason: format!("server shutting down; resume with since={}", self.seq),
                });
            }
        }
        tracing::info!("hub stopped");
    }

    /// Takes one update from the state: sequence it, mirror it, ring it.
    fn ingest(&mut self, u: Update) {
        self.seq += 1;
        let seq = self.seq;
        let u = Arc::new(u);
        if u.kind.is_event() {
            let r = self.recent.entry(u.kind).or_default();
            if r.len() == self.recent_kept {
                r.pop_front();
            }
            r.push_back((seq, u.clone()));
        } else {
            let key = (u.kind, u.key.clone());
            let previous = if u.is_removal() {
                self.mirror.remove(&key)
            } else {
                self.mirror.insert(key, (seq, u.clone()))
            };
            if let Some((old, _)) = previous {
                if old >= self.ring_base {
                    if let Some(slot) = self.ring.get_mut((old - self.ring_base) as usize) {
                        *slot = None;
                    }
                }
            }
        }
        if self.ring.len() == self.settings.ring_capacity {
            self.ring.pop_front();
            self.ring_base += 1;
        }
        self.ring.push_back(Some(u.clone()));
        self.pending.push((seq, u));
    }

    fn command(&mut self, c: HubCommand) {
        match c {
            HubCommand::Shutdown => {
                let ids: Vec<ClientId> = self.clients.keys().copied().collect();
                for id in ids {
                    let close = Close {
                        code: close::SHUTDOWN,
                        reason: "server restarting: reconnect and resume".into(),
                    };
                    self.drop_client(id, "shutdown", Some(close));
                }
            }
            HubCommand::Connect {
                filter,
                since,
                epoch,
                reply,
            } => {
                // A resume from another run of the hub gets a reset snapshot.
                let foreign = since.is_some() && epoch.is_some_and(|e| e != self.epoch);
                let since = if foreign { None } else { since };
                let (tx, frames) = mpsc::channel(self.settings.client_queue_frames.max(4));
                let (kill_tx, kill) = oneshot::channel();
                let id = self.next_id;
                self.next_id += 1;
                let queued_bytes = Arc::new(AtomicUsize::new(0));
                let mut client = Client {
                    filter: filter.clone(),
                    tx,
                    queued_bytes: queued_bytes.clone(),
                    kill: Some(kill_tx),
                    backlog: Backlog::default(),
                };
                self.start_client(&mut client, since, foreign);
                self.lagging |= !client.backlog.is_empty();
                if reply
                    .send(Connected {
                        id,
                        frames,
                        kill,
                        queued_bytes,
                    })
                    .is_ok()
                {
                    self.lanes.entry(filter).or_default().clients.push(id);
                    self.clients.insert(id, client);
                    self.metrics.ws_clients.set(self.clients.len() as i64);
                }
            }
            HubCommand::Resubscribe { id, filter } => {
                let Some(mut client) = self.clients.remove(&id) else {
                    return;
                };
                self.leave_lane(id, &client.filter);
                client.filter = filter.clone();
                client.backlog = Backlog::default();
                self.start_client(&mut client, None, false);
                self.lanes.entry(filter).or_default().clients.push(id);
                self.clients.insert(id, client);
            }
            HubCommand::Disconnect { id, reason } => self.drop_client(id, reason, None),
            HubCommand::State { reply } => {
                let _ = reply.send(self.state_json());
            }
        }
    }

    /// First frames of a client: an exact catch-up from the ring when `since`
    /// is still covered, else a snapshot (marked `reset` when a resume failed).
    fn start_client(&mut self, client: &mut Client, since: Option<u64>, reset: bool) {
        if let Some(s) = since {
            let covered = s + 1 >= self.ring_base && s <= self.seq;
            let live_missed = if covered {
                self.ring
                    .iter()
                    .skip((s + 1 - self.ring_base) as usize)
                    .flatten()
                    .filter(|u| client.filter.matches(u))
                    .count()
            } else {
                0
            };
            // A catch-up larger than the client may queue would only end in a
            // lagging disconnect: give it a reset snapshot instead.
            if covered && live_missed <= self.settings.client_max_backlog {
                let start = (s + 1 - self.ring_base) as usize;
                let missed: Vec<(u64, Arc<Update>)> = self
                    .ring
                    .iter()
                    .enumerate()
                    .skip(start)
                    .filter_map(|(i, slot)| {
                        slot.as_ref()
                            .map(|u| (self.ring_base + i as u64, u.clone()))
                    })
                    .filter(|(_, u)| client.filter.matches(u))
                    .collect();
                // Nothing committed to the pending list is in `missed` twice: pending
                // updates are also in the ring, so send only those up to the last flush.
                let flushed_upto = self
                    .pending
                    .first()
                    .map(|(s, _)| *s - 1)
                    .unwrap_or(self.seq);
                let frame = format!(
                    "{{\"type\":\"resumed\",\"seq\":{},\"since\":{s},\"epoch\":{},\"server_time\":\"{}\"}}",
                    flushed_upto.max(s),
                    self.epoch,
                    Utc::now().to_rfc3339()
                );
                let _ = offer(client, frame.into(), usize::MAX);
                for (seq, u) in missed.into_iter().filter(|(seq, _)| *seq <= flushed_upto) {
                    client.backlog.push(seq, u);
                }
                drain_backlog(client, &self.metrics, self.settings.client_queue_bytes);
                return;
            }
        }
        let reset = reset || since.is_some();
        let upto = self
            .pending
            .first()
            .map(|(s, _)| *s - 1)
            .unwrap_or(self.seq);
        let key = (client.filter.clone(), reset);
        let reusable = self
            .snapshots
            .get(&key)
            .filter(|(s, built, _)| {
                built.elapsed() < SNAPSHOT_REUSE && *s + 1 >= self.ring_base && *s <= upto
            })
            .map(|(s, _, f)| (*s, f.clone()));
        let (snap_seq, frame) = match reusable {
            Some(hit) => hit,
            None => {
                let frame: ByteString = self.snapshot_frame(&client.filter, reset).into();
                self.snapshots
                    .insert(key, (upto, Instant::now(), frame.clone()));
                (upto, frame)
            }
        };
        // A fresh queue always has room for its first frame.
        let _ = offer(client, frame, usize::MAX);
        // A shared snapshot may be a little older: catch up from the ring.
        if snap_seq < upto {
            let start = (snap_seq + 1 - self.ring_base) as usize;
            for (i, slot) in self.ring.iter().enumerate().skip(start) {
                let seq = self.ring_base + i as u64;
                if seq > upto {
                    break;
                }
                if let Some(u) = slot.as_ref().filter(|u| client.filter.matches(u)) {
                    client.backlog.push(seq, u.clone());
                }
            }
            drain_backlog(client, &self.metrics, self.settings.client_queue_bytes);
        }
    }

    /// Everything up to the last flushed sequence number: pending updates
    /// (sequenced but not yet sent) reach the client with the next tick.
    fn snapshot_frame(&self, filter: &Filter, reset: bool) -> String {
        let upto = self
            .pending
            .first()
            .map(|(s, _)| *s - 1)
            .unwrap_or(self.seq);
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            "{{\"type\":\"snapshot\",\"seq\":{upto},\"epoch\":{},\"reset\":{reset},\"server_time\":\"{}\",\"updates\":[",
            self.epoch,
            Utc::now().to_rfc3339()
        );
        let mut first = true;
        let mut entities: Vec<&(u64, Arc<Update>)> = self
            .mirror
            .values()
            .filter(|(s, u)| *s <= upto && filter.matches(u))
            .collect();
        entities.sort_unstable_by_key(|(s, _)| *s);
        for (seq, u) in entities {
            push_update(&mut out, &mut first, *seq, u, filter.summary);
        }
        out.push_str("],\"events\":[");
        first = true;
        let mut events: Vec<&(u64, Arc<Update>)> = self
            .recent
            .values()
            .flatten()
            .filter(|(s, u)| *s <= upto && filter.matches(u))
            .collect();
        events.sort_unstable_by_key(|(s, _)| *s);
        for (seq, u) in events {
            push_update(&mut out, &mut first, *seq, u, filter.summary);
        }
        out.push_str("]}");
        out
    }

    fn state_json(&self) -> String {
        let upto = self
            .pending
            .first()
            .map(|(s, _)| *s - 1)
            .unwrap_or(self.seq);
        let mut by_kind: HashMap<UpdateKind, Vec<&Arc<Update>>> = HashMap::default();
        for (s, u) in self.mirror.values() {
            if *s <= upto {
                by_kind.entry(u.kind).or_default().push(u);
            }
        }
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            "{{\"seq\":{upto},\"server_time\":\"{}\",\"entities\":{{",
            Utc::now().to_rfc3339()
        );
        let mut first_kind = true;
        for kind in UpdateKind::ALL.into_iter().filter(|k| !k.is_event()) {
            if !first_kind {
                out.push(',');
            }
            first_kind = false;
            let _ = write!(out, "\"{}\":{{", kind.as_str());
            let mut list = by_kind.remove(&kind).unwrap_or_default();
            list.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            for (i, u) in list.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{}:{}",
                    serde_json::to_string(&*u.key).unwrap_or_default(),
                    u.value_json()
                );
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    fn leave_lane(&mut self, id: ClientId, filter: &Filter) {
        if let Some(lane) = self.lanes.get_mut(filter) {
            lane.clients.retain(|c| *c != id);
            if lane.clients.is_empty() {
                self.lanes.remove(filter);
            }
        }
    }

    fn drop_client(&mut self, id: ClientId, reason: &'static str, close: Option<Close>) {
        if let Some(mut c) = self.clients.remove(&id) {
            self.leave_lane(id, &c.filter.clone());
            self.metrics
                .ws_disconnects
                .with_label_values(&[reason])
                .inc();
            self.metrics.ws_clients.set(self.clients.len() as i64);
            if let (Some(k), Some(close)) = (c.kill.take(), close) {
                let _ = k.send(close);
            }
            tracing::debug!(client = id, reason, "websocket client dropped");
        }
    }

    /// One tick: build each lane's frame once, offer it to the lane's clients.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.metrics.hub_seq.set(self.seq as i64);
        let now = Instant::now();
        let mut dead: Vec<(ClientId, &'static str, Option<Close>)> = Vec::new();
        let mut max_lag = 0usize;
        let seq = self.seq;
        let filters: Vec<Filter> = self.lanes.keys().cloned().collect();
        for filter in filters {
            let lane = self.lanes.get_mut(&filter).expect("key taken from the map");
            let updates = select_for_lane(&filter, lane, &pending, now, &self.metrics);
            let heartbeat_due = lane.last_frame.is_none_or(|t| now - t >= HEARTBEAT_EVERY);
            if updates.is_empty() && !heartbeat_due {
                continue;
            }
            lane.last_frame = Some(now);
            let frame: ByteString = if updates.is_empty() {
                format!(
                    "{{\"type\":\"heartbeat\",\"seq\":{seq},\"server_time\":\"{}\"}}",
                    Utc::now().to_rfc3339()
                )
                .into()
            } else {
                delta_frame(seq, &updates, filter.summary).into()
            };
            for id in &lane.clients {
                let Some(c) = self.clients.get_mut(id) else {
                    continue;
                };
                if !c.backlog.is_empty() {
                    for (s, u) in &updates {
                        if c.backlog.push(*s, u.clone()) {
                            self.metrics.ws_conflated.inc();
                        }
                    }
                    continue;
                }
                match offer(c, frame.clone(), self.settings.client_queue_bytes) {
                    Ok(()) => {
                        self.metrics.ws_frames.inc();
                        self.metrics.ws_bytes.inc_by(frame.len() as u64);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        for (s, u) in &updates {
                            c.backlog.push(*s, u.clone());
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        dead.push((*id, "client_gone", None))
                    }
                }
            }
        }
        let max_backlog = self.settings.client_max_backlog;
        let max_bytes = self.settings.client_queue_bytes;
        self.snapshots
            .retain(|_, (_, built, _)| built.elapsed() < SNAPSHOT_REUSE);
        let mut lagging = false;
        for (id, c) in self.clients.iter_mut() {
            if !c.backlog.is_empty() {
                drain_backlog(c, &self.metrics, max_bytes);
                if c.backlog.live > max_backlog {
                    // The client knows what it received (frames may still sit in its queue): it resumes from there.
                    let reason =
                        "lagging: reconnect with since=<the last seq you received>".to_owned();
                    dead.push((
                        *id,
                        "lagging",
                        Some(Close {
                            code: close::LAGGING,
                            reason,
                        }),
                    ));
                    continue;
                }
            }
            lagging |= !c.backlog.is_empty();
            let queued = c.tx.max_capacity() - c.tx.capacity();
            max_lag = max_lag.max(queued + c.backlog.live);
        }
        self.metrics.ws_max_lag_frames.set(max_lag as i64);
        self.lagging = lagging;
        for (id, reason, close) in dead {
            self.drop_client(id, reason, close);
        }
    }

    /// Offers every lagging client its backlog, between ticks.
    fn catch_up(&mut self) {
        let max_bytes = self.settings.client_queue_bytes;
        let mut lagging = false;
        for c in self.clients.values_mut().filter(|c| !c.backlog.is_empty()) {
            drain_backlog(c, &self.metrics, max_bytes);
            lagging |= !c.backlog.is_empty();
        }
        self.lagging = lagging;
    }
}

/// Queues a frame for a client unless its queue is full, in frames or in
/// bytes (an empty queue always takes one frame, however large).
fn offer(
    c: &Client,
    frame: ByteString,
    max_bytes: usize,
) -> Result<(), mpsc::error::TrySendError<ByteString>> {
    let queued = c.queued_bytes.load(Ordering::Relaxed);
    if queued > 0 && queued + frame.len() > max_bytes {
        return Err(mpsc::error::TrySendError::Full(frame));
    }
    let len = frame.len();
    c.tx.try_send(frame)?;
    c.queued_bytes.fetch_add(len, Ordering::Relaxed);
    Ok(())
}

/// Offers a lagging client its backlog as frames while its queue has room.
fn drain_backlog(c: &mut Client, metrics: &Metrics, max_bytes: usize) {
    while !c.backlog.is_empty() {
        let queued = c.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued >= max_bytes.min(BACKLOG_DRAIN_BELOW) {
            return;
        }
        let Ok(permit) = c.tx.try_reserve() else {
            return;
        };
        let chunk = c.backlog.take(BACKLOG_FRAME_UPDATES);
        let Some(last) = chunk.last().map(|(s, _)| *s) else {
            return;
        };
        let frame: ByteString = delta_frame(last, &chunk, c.filter.summary).into();
        metrics.ws_frames.inc();
        metrics.ws_bytes.inc_by(frame.len() as u64);
        c.queued_bytes.fetch_add(frame.len(), Ordering::Relaxed);
        permit.send(frame);
    }
}

/// The lane's updates of this tick: matching, conflated per entity (latest
/// wins), rate-capped per entity where asked; events always, in order.
fn select_for_lane(
    filter: &Filter,
    lane: &mut Lane,
    pending: &[(u64, Arc<Update>)],
    now: Instant,
    metrics: &Metrics,
) -> Vec<(u64, Arc<Update>)> {
    let mut latest: HashMap<Key, usize> = HashMap::default();
    let mut out: Vec<Option<(u64, Arc<Update>)>> = Vec::new();
    let cap = Duration::from_millis(filter.min_interval_ms as u64);
    for (seq, u) in pending.iter().filter(|(_, u)| filter.matches(u)) {
        if u.kind.is_event() {
            out.push(Some((*seq, u.clone())));
            continue;
        }
        let key = (u.kind, u.key.clone());
        if !cap.is_zero() {
            lane.held.insert(key, (*seq, u.clone()));
            continue;
        }
        if let Some(i) = latest.insert(key, out.len()) {
            out[i] = None;
            metrics.ws_conflated.inc();
        }
        out.push(Some((*seq, u.clone())));
    }
    if !cap.is_zero() && !lane.held.is_empty() {
        let due: Vec<Key> = lane
            .held
            .keys()
            .filter(|k| {
                lane.last_sent
                    .get(*k)
                    .is_none_or(|t| now.duration_since(*t) >= cap)
            })
            .cloned()
            .collect();
        for k in due {
            if let Some(v) = lane.held.remove(&k) {
                lane.last_sent.insert(k, now);
                out.push(Some(v));
            }
        }
        out.sort_by_key(|o| o.as_ref().map(|(s, _)| *s));
    }
    out.into_iter().flatten().collect()
}

fn push_update(out: &mut String, first: &mut bool, seq: u64, u: &Update, summary: bool) {
    if !*first {
        out.push(',');
    }
    *first = false;
    // `u.json` is an object: splice the sequence number in as its first field.
    let _ = write!(out, "{{\"seq\":{seq},{}", &u.wire(summary)[1..]);
}

fn delta_frame(seq: u64, updates: &[(u64, Arc<Update>)], summary: bool) -> String {
    let mut out = String::with_capacity(
        64 + updates
            .iter()
            .map(|(_, u)| u.json.len() + 16)
            .sum::<usize>(),
    );
    let _ = write!(out, "{{\"type\":\"delta\",\"seq\":{seq},\"updates\":[");
    let mut first = true;
    for (s, u) in updates {
        push_update(&mut out, &mut first, *s, u, summary);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Tags;

    fn update(kind: UpdateKind, key: &str, v: u64) -> Arc<Update> {
        Arc::new(Update::new(
            kind,
            "kota",
            key.to_owned(),
            Tags::default(),
            Utc::now(),
            Some(&v),
        ))
    }

    #[test]
    fn a_backlog_of_two_thousand_intersections_holds_about_one_slot_each() {
        let mut b = Backlog::default();
        for i in 0..200_000u64 {
            b.push(
                i + 1,
                update(UpdateKind::Intersection, &format!("j{}", i % 2000), i),
            );
        }
        assert_eq!(b.live, 2000);
        // 16 bytes a slot, 16 an index entry (plus hashbrown's control bytes):
        // about 100 KB for a lagging screen, not the 330 KB of a slot per
        // update kept for twice the entities.
        assert!(b.items.capacity() <= 4096, "{}", b.items.capacity());
        assert!(b.index.capacity() <= 4096, "{}", b.index.capacity());
        assert_eq!(std::mem::size_of::<Option<(u64, Arc<Update>)>>(), 16);
        let out = b.take(500);
        assert!(out.iter().all(|(_, u)| u.json.contains("\"value\":19")));
    }

    #[test]
    fn a_long_lagging_backlog_stays_small_and_keeps_the_latest_state_and_every_event() {
        let mut b = Backlog::default();
        let mut seq = 0;
        // 100,000 updates of 10 intersections, with an event every 1,000.
        for i in 0..100_000u64 {
            seq += 1;
            b.push(
                seq,
                update(UpdateKind::Intersection, &format!("j{}", i % 10), i),
            );
            if i % 1000 == 0 {
                seq += 1;
                b.push(seq, update(UpdateKind::CallEvent, &format!("e{i}"), i));
            }
            assert!(
                b.items.len() <= b.live + b.live / 4 + 257,
                "tombstones are dropped"
            );
        }
        assert_eq!(b.live, 10 + 100);
        let out = b.take(usize::MAX);
        assert!(b.is_empty());
        assert_eq!(
            (b.items.capacity(), b.index.capacity()),
            (0, 0),
            "a drained backlog gives its memory back"
        );
        let seqs: Vec<u64> = out.iter().map(|(s, _)| *s).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
        let events = out.iter().filter(|(_, u)| u.kind.is_event()).count();
        assert_eq!(events, 100, "no event conflated");
        let state: Vec<&str> = out
            .iter()
            .filter(|(_, u)| !u.kind.is_event())
            .map(|(_, u)| u.json.as_str())
            .collect();
        assert_eq!(state.len(), 10);
        for (i, j) in state.iter().enumerate() {
            assert!(
                j.contains(&format!("\"value\":{}", 99_990 + i)),
                "latest wins: {j}"
            );
        }
    }
}
