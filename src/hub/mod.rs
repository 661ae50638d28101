//! The hub: fans the live state out to every screen over websockets.
//!
//! One task owns everything here: the sequence counter, a mirror of the
//! current entities (for snapshots), the resume ring, the lanes (clients with
//! equal subscriptions, which share one encoded frame per tick) and each
//! client's bounded queue. It never awaits a client: frames are offered with
//! `try_send`; a client whose queue is full falls behind: it keeps only a
//! cursor into the resume ring and is offered catch-up frames from there
//! (every event, the latest state per entity), and is disconnected, told to
//! resume, when what it is owed passes its bound or leaves the ring. Each
//! websocket session is its own task (`web::wall::session`) that drains its queue.
//!
//! The resume ring keeps, for every sequence number, the update or a
//! tombstone once a newer update of the same entity superseded it: a resuming
//! client receives every event it missed and the latest value of every entity
//! that changed, in order, at the memory cost of the events plus the entities.

pub mod filter;

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
pub type ClientId = u64;

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
        reply: oneshot::Sender<StateView>,
    },
    Lookup {
        kind: UpdateKind,
        city: String,
        key: String,
        reply: oneshot::Sender<Known>,
    },
    Get {
        kind: UpdateKind,
        key: String,
        reply: oneshot::Sender<Option<Arc<Update>>>,
    },
    AllOf {
        kind: UpdateKind,
        /// `None`: every city.
        city: Option<String>,
        reply: oneshot::Sender<Vec<Arc<Update>>>,
    },
}

/// What the live state knows of an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// The entity itself, and its district when it has one.
    Entity { district: Option<Arc<str>> },
    /// Not the entity, but others of its kind in its city.
    CityOnly,
    /// Nothing of its kind in its city.
    Nothing,
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

    /// Whether the live state has the entity `key` of `kind` (keys are
    /// `{city}/{id}`), or at least others of its kind in `city`.
    pub async fn lookup(&self, kind: UpdateKind, city: &str, key: &str) -> Result<Known, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::Lookup {
                kind,
                city: city.to_owned(),
                key: key.to_owned(),
                reply,
            })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }

    /// The live value of the entity `key` of `kind` (keys are `{city}/{id}`),
    /// as the screens have it; decoding it is the caller's work.
    pub async fn get(&self, kind: UpdateKind, key: &str) -> Result<Option<Arc<Update>>, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::Get {
                kind,
                key: key.to_owned(),
                reply,
            })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }

    /// Every live entity of `kind` in `city` (pointers only: the caller
    /// decodes what it needs, off the hub's task).
    pub async fn all_of(&self, kind: UpdateKind, city: &str) -> Result<Vec<Arc<Update>>, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::AllOf {
                kind,
                city: Some(city.to_owned()),
                reply,
            })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }

    /// Every live entity of `kind`, in every city.
    pub async fn all_of_every_city(&self, kind: UpdateKind) -> Result<Vec<Arc<Update>>, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::AllOf {
                kind,
                city: None,
                reply,
            })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }

    /// The whole current state, to be encoded off the hub's task
    /// ([`StateView::to_json`]): the hub only copies its pointers.
    pub async fn state_view(&self) -> Result<StateView, HubGone> {
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(HubCommand::State { reply })
            .await
            .map_err(|_| HubGone)?;
        rx.await.map_err(|_| HubGone)
    }
}

/// Every entity of the live state at one sequence number: pointers to the
/// hub's updates, encoded by whoever asked (`GET /api/state`), so that a big
/// state or many requests for it never hold the hub, and with it every
/// screen, back.
pub struct StateView {
    pub seq: u64,
    pub entities: Vec<Arc<Update>>,
}

/// Where a past state (`GET /api/state?at=`) was rebuilt from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The day's events from its start.
    Day,
    /// The state an earlier answer rebuilt at that moment (`"advanced_from"`).
    Advanced(chrono::DateTime<Utc>),
    /// The stored checkpoint of that moment (`"checkpoint"`).
    Checkpoint(chrono::DateTime<Utc>),
}

impl StateView {
    /// `{"seq":..,"server_time":..,"entities":{kind:{key:value}}}`, keys
    /// sorted; callers' personal data only if `personal`.
    pub fn to_json(&self, personal: bool) -> String {
        self.encode(personal, None)
    }

    /// The same, of the room as it was at `at` (a replay from the store):
    /// `"at"` follows `server_time`.
    /// As a replay answers it: the state at `at`, gone on from the state
    /// at `advanced_from` if it was (`GET /api/state?at=`).
    pub fn to_json_at(&self, personal: bool, at: chrono::DateTime<Utc>, from: Origin) -> String {
        self.encode(personal, Some((at, from)))
    }

    fn encode(&self, personal: bool, at: Option<(chrono::DateTime<Utc>, Origin)>) -> String {
        let mut by_kind: HashMap<UpdateKind, Vec<&Arc<Update>>> = HashMap::default();
        for u in &self.entities {
            by_kind.entry(u.kind).or_default().push(u);
        }
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            "{{\"seq\":{},\"server_time\":\"{}\",",
            self.seq,
            Utc::now().to_rfc3339()
        );
        if let Some((at, from)) = at {
            let _ = write!(out, "\"at\":\"{}\",", at.to_rfc3339());
            match from {
                Origin::Day => {}
                Origin::Advanced(t) => {
                    let _ = write!(out, "\"advanced_from\":\"{}\",", t.to_rfc3339());
                }
                Origin::Checkpoint(t) => {
                    let _ = write!(out, "\"checkpoint\":\"{}\",", t.to_rfc3339());
                }
            }
        }
        out.push_str("\"entities\":{");
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
                    u.value_json_for(personal)
                );
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }
}

/// A ring of recent events, with their sequence numbers.
type Events = VecDeque<(u64, Arc<Update>)>;

/// Rings of recent events kept (one per event kind and city).
const RECENT_RINGS: usize = 256;

/// Capacity of the state -> hub channel. The hub drains it without waiting
/// on anyone, so this only absorbs scheduling jitter.
pub const HUB_INPUT_CAPACITY: usize = 65_536;
/// Largest number of updates in one catch-up frame of a lagging client
/// (such frames are the client's own, not shared: keep them small; 500 made
/// frames of about 150 KB with 2,000 intersections).
const CATCH_UP_FRAME_UPDATES: usize = 50;
/// A lagging client gets catch-up frames only while less than this is
/// queued for it. Catch-up frames are the client's own copies: the longer
/// updates wait in the ring the more of them are superseded, and a thousand
/// slow screens hold about this much each, not a full queue each.
const CATCH_UP_BELOW: usize = 16 * 1024;
/// A snapshot is shared by every client with the same subscription that
/// connects within this long (they catch up from the ring after it): a
/// thousand screens starting together cost one snapshot, not a thousand.
const SNAPSHOT_REUSE: Duration = Duration::from_secs(1);
/// Lagging clients are offered catch-up frames this often, not only on the
/// hub's ticks: with at most `CATCH_UP_BELOW` plus one catch-up frame per
/// offer, a screen that reads fast again catches up at up to about 3 MB/s
/// while a thousand that cannot read hold about 30 KB of private frames each.
const CATCH_UP_EVERY: Duration = Duration::from_millis(10);
/// Shortest gap between two frames when a call event asks for an early
/// flush: at most 1000 / 10 + 1000 / `tick_ms` frames per second per screen.
const EVENT_FLUSH_GAP: Duration = Duration::from_millis(10);
/// A heartbeat frame goes to idle lanes this often.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A lagging client's place in the resume ring, used while its queue is full.
///
/// The ring already keeps every event and, for each entity, only its latest
/// update (older ones are tombstones): walking it from a sequence number
/// yields exactly the conflated catch-up a lagging screen needs. So a lagging
/// client holds a cursor, not a copy: a thousand slow screens of 2,000
/// intersections cost a thousand cursors, not a thousand backlogs of about
/// 100 KB each (the bench's memory check).
struct Behind {
    /// Everything matching up to this sequence number is queued for the client.
    cursor: u64,
    /// State updates of a rate-capped lane released in the frame that did
    /// not fit, older than `cursor` (the ring walk starts after it): sent first.
    carry: Vec<(u64, Arc<Update>)>,
    /// Upper bound on the updates still owed to the client (counted exactly
    /// from the ring only when this passes `client_max_backlog`).
    owed: usize,
}

/// The part of the resume ring a lagging client may be sent: up to the last
/// flushed sequence number (pending updates reach lanes with the next tick).
struct RingView<'a> {
    ring: &'a VecDeque<Option<Arc<Update>>>,
    base: u64,
    upto: u64,
}

impl RingView<'_> {
    /// The live updates after `cursor` that match `filter`, in order.
    fn after<'a>(
        &'a self,
        cursor: u64,
        filter: &'a Filter,
    ) -> impl Iterator<Item = (u64, &'a Arc<Update>)> + 'a {
        let start = ((cursor + 1).saturating_sub(self.base) as usize).min(self.ring.len());
        let end = ((self.upto + 1).saturating_sub(self.base) as usize)
            .min(self.ring.len())
            .max(start);
        self.ring
            .range(start..end)
            .enumerate()
            .filter_map(move |(i, slot)| {
                let u = slot.as_ref().filter(|u| filter.matches(u))?;
                Some((self.base + (start + i) as u64, u))
            })
    }
}

/// What a drain left of a client's lag.
#[derive(PartialEq, Eq, Debug)]
enum Lag {
    /// Nothing owed: the client takes the lanes' frames again.
    None,
    /// Still behind; its queue is full for now.
    Behind,
    /// The ring dropped updates the client was owed: it must resume.
    Lost,
}

struct Client {
    filter: Filter,
    tx: mpsc::Sender<ByteString>,
    queued_bytes: Arc<AtomicUsize>,
    kill: Option<oneshot::Sender<Close>>,
    /// `Some` while the client lags: it is fed from the ring, not the lanes.
    behind: Option<Behind>,
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
    input: mpsc::Receiver<Arc<Update>>,
    cmd: mpsc::Receiver<HubCommand>,
    seq: u64,
    /// Identifies this run of the hub: sequence numbers restart with a new process,
    /// so a resume is only honoured within the same epoch.
    epoch: u64,
    mirror: HashMap<Key, (u64, Arc<Update>)>,
    /// The newest events of each kind and city (`recent_kept` each): a
    /// screen's snapshot carries its own city's newest, however busy the
    /// other cities of a province are (a failed-over screen then holds what
    /// it held before, as it keeps fewer).
    recent: HashMap<(UpdateKind, Arc<str>), Events>,
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
    /// Some client lags: it is offered catch-up frames every
    /// `CATCH_UP_EVERY`, between the ticks.
    lagging: bool,
}

impl Hub {
    pub fn new(
        settings: HubSettings,
        recent_kept: usize,
        metrics: Arc<Metrics>,
        input: mpsc::Receiver<Arc<Update>>,
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
        // The state has handed off (shutdown): its last updates go out
        // before the screens are told to resume elsewhere.
        self.flush();
        let screens = self.clients.len();
        for (_, mut c) in self.clients.drain() {
            if let Some(k) = c.kill.take() {
                let _ = k.send(Close {
                    code: close::SHUTDOWN,
                    reason: format!("server shutting down; resume with since={}", self.seq),
                });
            }
        }
        tracing::info!(
            screens,
            seq = self.seq,
            "hub stopped: screens closed with 1001"
        );
    }

    /// Takes one update from the state: sequence it, mirror it, ring it.
    fn ingest(&mut self, u: Arc<Update>) {
        self.seq += 1;
        let seq = self.seq;
        if u.kind.is_event() {
            let ring = (u.kind, u.city.clone());
            if !self.recent.contains_key(&ring) && self.recent.len() >= RECENT_RINGS {
                // Bounded whatever cities the bus names: the quietest ring goes.
                let quietest = self
                    .recent
                    .iter()
                    .min_by_key(|(_, r)| r.back().map_or(0, |(s, _)| *s))
                    .map(|(k, _)| k.clone());
                if let Some(k) = quietest {
                    self.recent.remove(&k);
                }
            }
            let r = self.recent.entry(ring).or_default();
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
                    behind: None,
                };
                self.start_client(&mut client, since, foreign);
                self.lagging |= client.behind.is_some();
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
                client.behind = None;
                self.start_client(&mut client, None, false);
                self.lagging |= client.behind.is_some();
                self.lanes.entry(filter).or_default().clients.push(id);
                self.clients.insert(id, client);
            }
            HubCommand::Disconnect { id, reason } => self.drop_client(id, reason, None),
            HubCommand::Lookup {
                kind,
                city,
                key,
                reply,
            } => {
                let known = if let Some((_, u)) = self.mirror.get(&(kind, Arc::from(key.as_str())))
                {
                    Known::Entity {
                        district: u.tags.district.clone(),
                    }
                } else if self
                    .mirror
                    .values()
                    .any(|(_, u)| u.kind == kind && *u.city == *city)
                {
                    Known::CityOnly
                } else {
                    Known::Nothing
                };
                let _ = reply.send(known);
            }
            HubCommand::Get { kind, key, reply } => {
                let found = self
                    .mirror
                    .get(&(kind, Arc::from(key.as_str())))
                    .map(|(_, u)| u.clone());
                let _ = reply.send(found);
            }
            HubCommand::AllOf { kind, city, reply } => {
                let found = self
                    .mirror
                    .values()
                    .filter(|(_, u)| {
                        u.kind == kind
                            && city.as_deref().is_none_or(|c| *u.city == *c)
                            && !u.is_removal()
                    })
                    .map(|(_, u)| u.clone())
                    .collect();
                let _ = reply.send(found);
            }
            HubCommand::State { reply } => {
                // Every entity's latest value, sent to the screens or about
                // to be with the next tick. (Up to the last flush only, an
                // entity that changed within the tick was missing from the
                // answer: every junction, now and then, at one a second.)
                let entities = self.mirror.values().map(|(_, u)| u.clone()).collect();
                let _ = reply.send(StateView {
                    seq: self.seq,
                    entities,
                });
            }
        }
    }

    /// First frames of a client: an exact catch-up from the ring when `since`
    /// is still covered, else a snapshot (marked `reset` when a resume failed).
    fn start_client(&mut self, client: &mut Client, since: Option<u64>, reset: bool) {
        if let Some(s) = since {
            let covered = s + 1 >= self.ring_base && s <= self.seq;
            // Only up to the last flush: the pending updates reach the client
            // with the next tick's lane frame, and must not arrive twice.
            let live_missed = if covered {
                self.ring_view().after(s, &client.filter).count()
            } else {
                0
            };
            // A catch-up larger than the client may queue would only end in a
            // lagging disconnect: give it a reset snapshot instead.
            if covered && live_missed <= self.settings.client_max_backlog {
                let flushed_upto = self.flushed();
                let frame = format!(
                    "{{\"type\":\"resumed\",\"seq\":{},\"since\":{s},\"epoch\":{},\"server_time\":\"{}\"}}",
                    flushed_upto.max(s),
                    self.epoch,
                    Utc::now().to_rfc3339()
                );
                let _ = offer(client, frame.into(), usize::MAX);
                client.behind = Some(Behind {
                    cursor: s,
                    carry: Vec::new(),
                    owed: live_missed,
                });
                drain(client, &self.ring_view(), &self.metrics, &self.settings);
                return;
            }
        }
        let reset = reset || since.is_some();
        let upto = self.flushed();
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
            client.behind = Some(Behind {
                cursor: snap_seq,
                carry: Vec::new(),
                owed: (upto - snap_seq) as usize,
            });
            drain(client, &self.ring_view(), &self.metrics, &self.settings);
        }
    }

    /// The ring up to the last flushed sequence number.
    fn ring_view(&self) -> RingView<'_> {
        RingView {
            ring: &self.ring,
            base: self.ring_base,
            upto: self.flushed(),
        }
    }

    /// The last sequence number handed to the lanes: pending updates are
    /// sequenced (and in the ring) but go out with the next flush.
    fn flushed(&self) -> u64 {
        self.pending
            .first()
            .map(|(s, _)| *s - 1)
            .unwrap_or(self.seq)
    }

    /// Everything up to the last flushed sequence number: pending updates
    /// (sequenced but not yet sent) reach the client with the next tick.
    fn snapshot_frame(&self, filter: &Filter, reset: bool) -> String {
        let upto = self.flushed();
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
            push_update(
                &mut out,
                &mut first,
                *seq,
                u,
                filter.summary,
                filter.personal,
            );
        }
        out.push_str("],\"events\":[");
        first = true;
        let mut events: Vec<&(u64, Arc<Update>)> = self
            .recent
            .values()
            .flatten()
            .filter(|(s, u)| *s <= upto && filter.matches(u))
            .collect();
        // The newest `recent_kept` of each kind over the cities it matches.
        events.sort_unstable_by_key(|(s, _)| std::cmp::Reverse(*s));
        let mut per_kind: HashMap<UpdateKind, usize> = HashMap::default();
        events.retain(|(_, u)| {
            let n = per_kind.entry(u.kind).or_default();
            *n += 1;
            *n <= self.recent_kept
        });
        events.reverse();
        for (seq, u) in events {
            push_update(
                &mut out,
                &mut first,
                *seq,
                u,
                filter.summary,
                filter.personal,
            );
        }
        out.push_str("]}");
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
        // Everything up to here has gone to the lanes before this tick.
        let before = self.flushed();
        let pending = std::mem::take(&mut self.pending);
        self.metrics.hub_seq.set(self.seq as i64);
        let now = Instant::now();
        let mut dead: Vec<(ClientId, &'static str, Option<Close>)> = Vec::new();
        let mut max_lag = 0usize;
        let seq = self.seq;
        let filters: Vec<Filter> = self.lanes.keys().cloned().collect();
        for filter in filters {
            let lane = self.lanes.get_mut(&filter).expect("key taken from the map");
            let (updates, matched) = select_for_lane(&filter, lane, &pending, now, &self.metrics);
            let heartbeat_due = lane.last_frame.is_none_or(|t| now - t >= HEARTBEAT_EVERY);
            if updates.is_empty() && !heartbeat_due {
                // Lagging clients of the lane may be owed this tick's updates.
                for id in &lane.clients {
                    if let Some(b) = self.clients.get_mut(id).and_then(|c| c.behind.as_mut()) {
                        b.owed += matched;
                    }
                }
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
                delta_frame(seq, &updates, filter.summary, filter.personal).into()
            };
            for id in &lane.clients {
                let Some(c) = self.clients.get_mut(id) else {
                    continue;
                };
                if let Some(b) = c.behind.as_mut() {
                    // This tick's updates are in the ring, after its cursor.
                    b.owed += matched;
                    continue;
                }
                match offer(c, frame.clone(), self.settings.client_queue_bytes) {
                    Ok(()) => {
                        self.metrics.ws_frames.inc();
                        self.metrics.ws_bytes.inc_by(frame.len() as u64);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // The ring holds everything after `before`; a rate-capped
                        // lane may also release older updates, carried separately.
                        let carry: Vec<(u64, Arc<Update>)> = updates
                            .iter()
                            .filter(|(s, _)| *s <= before)
                            .cloned()
                            .collect();
                        c.behind = Some(Behind {
                            cursor: before,
                            owed: matched + carry.len(),
                            carry,
                        });
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        dead.push((*id, "client_gone", None))
                    }
                }
            }
        }
        self.snapshots
            .retain(|_, (_, built, _)| built.elapsed() < SNAPSHOT_REUSE);
        let view = RingView {
            ring: &self.ring,
            base: self.ring_base,
            upto: self.seq,
        };
        let mut lagging = false;
        for (id, c) in self.clients.iter_mut() {
            if c.behind.is_some() {
                if let Some(close) = catch_up_one(c, &view, &self.metrics, &self.settings) {
                    dead.push((*id, "lagging", Some(close)));
                    continue;
                }
            }
            let owed = c.behind.as_ref().map_or(0, |b| b.owed);
            lagging |= c.behind.is_some();
            let queued = c.tx.max_capacity() - c.tx.capacity();
            max_lag = max_lag.max(queued + owed);
        }
        self.metrics.ws_max_lag_frames.set(max_lag as i64);
        self.lagging = lagging;
        for (id, reason, close) in dead {
            self.drop_client(id, reason, close);
        }
    }

    /// Offers every lagging client catch-up frames, between ticks.
    fn catch_up(&mut self) {
        let view = RingView {
            ring: &self.ring,
            base: self.ring_base,
            upto: self.flushed(),
        };
        let mut lagging = false;
        let mut dead = Vec::new();
        for (id, c) in self.clients.iter_mut().filter(|(_, c)| c.behind.is_some()) {
            if let Some(close) = catch_up_one(c, &view, &self.metrics, &self.settings) {
                dead.push((*id, close));
            }
            lagging |= c.behind.is_some();
        }
        self.lagging = lagging;
        for (id, close) in dead {
            self.drop_client(id, "lagging", Some(close));
        }
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

/// Drains a lagging client and checks its bounds: the close to send when it
/// must reconnect and resume (it knows what it received, and frames may still
/// sit in its queue).
fn catch_up_one(
    c: &mut Client,
    view: &RingView,
    metrics: &Metrics,
    settings: &HubSettings,
) -> Option<Close> {
    let lost = || Close {
        code: close::LAGGING,
        reason: "lagging: reconnect with since=<the last seq you received>".to_owned(),
    };
    if drain(c, view, metrics, settings) == Lag::Lost {
        return Some(lost());
    }
    let b = c.behind.as_mut()?;
    if b.owed > settings.client_max_backlog {
        // `owed` only ever overestimates (superseded updates are not
        // subtracted): count exactly, which is rare since the bound then
        // needs as many new updates again to be passed.
        b.owed = b.carry.len() + view.after(b.cursor, &c.filter).count();
        if b.owed > settings.client_max_backlog {
            return Some(lost());
        }
    }
    None
}

/// Offers a lagging client catch-up frames from the ring while its queue has
/// room: every event and the latest value of each entity after its cursor,
/// in order. Returns `Lag::None` once it is level with the lanes again.
fn drain(c: &mut Client, view: &RingView, metrics: &Metrics, settings: &HubSettings) -> Lag {
    loop {
        let Some(b) = c.behind.as_mut() else {
            return Lag::None;
        };
        if b.carry.is_empty() && b.cursor >= view.upto {
            c.behind = None;
            return Lag::None;
        }
        if b.cursor + 1 < view.base {
            return Lag::Lost;
        }
        let queued = c.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued >= settings.client_queue_bytes.min(CATCH_UP_BELOW) {
            return Lag::Behind;
        }
        let Ok(permit) = c.tx.try_reserve() else {
            return Lag::Behind;
        };
        let mut chunk = std::mem::take(&mut b.carry);
        let mut cursor = view.upto.max(b.cursor);
        for (seq, u) in view.after(b.cursor, &c.filter) {
            chunk.push((seq, u.clone()));
            if chunk.len() >= CATCH_UP_FRAME_UPDATES {
                cursor = seq;
                break;
            }
        }
        b.cursor = cursor;
        b.owed = b.owed.saturating_sub(chunk.len());
        if chunk.is_empty() {
            continue;
        }
        // The frame's seq is the cursor: everything matching up to it is sent.
        let frame: ByteString =
            delta_frame(cursor, &chunk, c.filter.summary, c.filter.personal).into();
        metrics.ws_frames.inc();
        metrics.ws_bytes.inc_by(frame.len() as u64);
        c.queued_bytes.fetch_add(frame.len(), Ordering::Relaxed);
        permit.send(frame);
    }
}

/// The lane's updates of this tick: matching, conflated per entity (latest
/// wins), rate-capped per entity where asked; events always, in order. Also
/// how many of `pending` matched (what a lagging client of the lane may be owed).
fn select_for_lane(
    filter: &Filter,
    lane: &mut Lane,
    pending: &[(u64, Arc<Update>)],
    now: Instant,
    metrics: &Metrics,
) -> (Vec<(u64, Arc<Update>)>, usize) {
    let mut latest: HashMap<Key, usize> = HashMap::default();
    let mut out: Vec<Option<(u64, Arc<Update>)>> = Vec::new();
    let cap = Duration::from_millis(filter.min_interval_ms as u64);
    let mut matched = 0;
    for (seq, u) in pending.iter().filter(|(_, u)| filter.matches(u)) {
        matched += 1;
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
    (out.into_iter().flatten().collect(), matched)
}

fn push_update(
    out: &mut String,
    first: &mut bool,
    seq: u64,
    u: &Update,
    summary: bool,
    personal: bool,
) {
    if !*first {
        out.push(',');
    }
    *first = false;
    // The wire form is an object: splice the sequence number in as its first field.
    let _ = write!(
        out,
        "{{\"seq\":{seq},{}",
        &u.wire_for(summary, personal)[1..]
    );
}

fn delta_frame(seq: u64, updates: &[(u64, Arc<Update>)], summary: bool, personal: bool) -> String {
    let mut out = String::with_capacity(
        64 + updates
            .iter()
            .map(|(_, u)| u.wire_for(summary, personal).len() + 16)
            .sum::<usize>(),
    );
    let _ = write!(out, "{{\"type\":\"delta\",\"seq\":{seq},\"updates\":[");
    let mut first = true;
    for (s, u) in updates {
        push_update(&mut out, &mut first, *s, u, summary, personal);
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

    /// A hub with one client that does not read, its queue four frames deep.
    fn hub_with_a_client(ring_capacity: usize) -> (Hub, Connected) {
        let settings = HubSettings {
            ring_capacity,
            client_queue_frames: 4,
            client_queue_bytes: 4096,
            ..HubSettings::default()
        };
        let (_tx, input) = mpsc::channel(16);
        let (mut hub, _) = Hub::new(settings, 100, Arc::new(Metrics::new()), input);
        let (reply, mut rx) = oneshot::channel();
        hub.command(HubCommand::Connect {
            filter: Filter::default(),
            since: None,
            epoch: None,
            reply,
        });
        let connected = rx.try_recv().expect("connected at once");
        (hub, connected)
    }

    /// Reads what is queued, as the session would; returns every update of every frame.
    fn read(c: &mut Connected, out: &mut Vec<serde_json::Value>) {
        while let Ok(frame) = c.frames.try_recv() {
            c.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
            let v: serde_json::Value = serde_json::from_str(&frame).expect("frame is JSON");
            for key in ["updates", "events"] {
                if let Some(list) = v[key].as_array() {
                    out.extend(list.iter().cloned());
                }
            }
        }
    }

    /// A snapshot carries the newest events of the screen's own city
    /// (`recent_kept`, 100 here), however many another city had since; a
    /// screen of every city gets the newest over all of them.
    #[test]
    fn a_snapshot_carries_its_own_citys_newest_events_whatever_another_city_had() {
        let (mut hub, _client) = hub_with_a_client(1 << 20);
        let event = |city: &str, i: u64| {
            Arc::new(Update::new(
                UpdateKind::CallEvent,
                city,
                format!("{city}-{i}"),
                Tags::default(),
                Utc::now(),
                Some(&i),
            ))
        };
        for i in 0..50 {
            hub.ingest(event("sepi", i));
        }
        for i in 0..300 {
            hub.ingest(event("ramai", i));
        }
        hub.flush();
        let keys = |cities: &[&str]| -> Vec<String> {
            let filter = Filter {
                cities: cities.iter().map(|c| c.to_string()).collect(),
                ..Filter::default()
            };
            let frame: serde_json::Value =
                serde_json::from_str(&hub.snapshot_frame(&filter, false)).unwrap();
            frame["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["key"].as_str().unwrap().to_owned())
                .collect()
        };
        let quiet = keys(&["sepi"]);
        assert_eq!(quiet.len(), 50, "every one of the quiet city's");
        assert_eq!(
            (quiet[0].as_str(), quiet[49].as_str()),
            ("sepi-0", "sepi-49")
        );
        let busy = keys(&["ramai"]);
        assert_eq!(busy.len(), 100);
        assert_eq!(
            (busy[0].as_str(), busy[99].as_str()),
            ("ramai-200", "ramai-299")
        );
        let all = keys(&[]);
        assert_eq!(all, busy, "the newest 100 over both, in order");
    }

    #[test]
    fn a_lagging_client_holds_a_cursor_and_catches_up_with_every_event_and_the_latest_state() {
        let (mut hub, mut client) = hub_with_a_client(4 << 20);
        let mut got = Vec::new();
        // 100,000 updates of 10 intersections, an event every 1,000, a tick
        // every 500, and the client reads nothing.
        for i in 0..100_000u64 {
            hub.ingest(update(UpdateKind::Intersection, &format!("j{}", i % 10), i));
            if i % 1000 == 0 {
                hub.ingest(update(UpdateKind::CallEvent, &format!("e{i}"), i));
            }
            if i % 500 == 499 {
                hub.flush();
            }
        }
        let c = &hub.clients[&client.id];
        let behind = c.behind.as_ref().expect("the client lags");
        assert!(behind.carry.is_empty(), "a lagging client keeps no copies");
        // `owed` (+500 a tick) passed `client_max_backlog` (50,000) on the
        // way and was then counted exactly: the client was not dropped for it.
        assert!(behind.owed < 50_000, "{}", behind.owed);
        assert!(hub.lagging);
        // Now it reads, and the hub offers catch-up frames between the ticks.
        for _ in 0..10_000 {
            read(&mut client, &mut got);
            if hub.clients[&client.id].behind.is_none() {
                break;
            }
            hub.catch_up();
        }
        assert!(hub.clients[&client.id].behind.is_none(), "caught up");
        hub.catch_up();
        assert!(!hub.lagging, "no catch-up timer once nobody lags");
        // Live again: the next tick reaches it through its lane.
        hub.ingest(update(UpdateKind::CallEvent, "last", 0));
        hub.flush();
        read(&mut client, &mut got);
        let seqs: Vec<u64> = got.iter().map(|u| u["seq"].as_u64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "in order, nothing twice"
        );
        let events: Vec<&str> = got
            .iter()
            .filter(|u| u["kind"] == "call_event")
            .map(|u| u["key"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..100)
            .map(|i| format!("e{}", i * 1000))
            .chain(["last".to_owned()])
            .collect();
        assert_eq!(events, want, "every event once, in order");
        let mut latest = HashMap::default();
        for u in got.iter().filter(|u| u["kind"] == "intersection") {
            latest.insert(
                u["key"].as_str().unwrap().to_owned(),
                u["value"].as_u64().unwrap(),
            );
        }
        assert_eq!(latest.len(), 10);
        for (key, value) in latest {
            let j: u64 = key[1..].parse().unwrap();
            assert_eq!(value, 99_990 + j, "latest wins for {key}");
        }
    }

    #[test]
    fn a_lagging_client_whose_updates_left_the_ring_is_told_to_resume() {
        let (mut hub, mut client) = hub_with_a_client(1024);
        for i in 0..5_000u64 {
            hub.ingest(update(UpdateKind::CallEvent, &format!("e{i}"), i));
            if i % 100 == 99 {
                hub.flush();
            }
        }
        assert!(!hub.clients.contains_key(&client.id), "dropped");
        let close = client.kill.try_recv().expect("a close for the client");
        assert_eq!(close.code, close::LAGGING);
        assert!(close.reason.contains("since="), "{}", close.reason);
    }
}
