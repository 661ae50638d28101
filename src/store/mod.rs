//! The store: keeps every message that matters and acknowledges QoS 1
//! messages to the broker only once the transaction that holds them has
//! committed, in arrival order.
//!
//! One task takes what the state hands it without ever waiting on the
//! database: telemetry goes to a bounded buffer (when full, new rows are
//! dropped and counted), everything else to an ordered queue with its ack.
//! One write at a time runs beside it (binary COPY + batched idempotent
//! inserts in one transaction), flushed when a batch is full or after
//! `flush_ms`. A failed write is retried with backoff; the broker holds the
//! unacknowledged QoS 1 messages meanwhile, and the screens carry on.
//! Committed telemetry is summed per minute (`minutes.rs`) and those sums are
//! written every `rollup_every_s`, beside the batches.
//!
//! At shutdown the store's input closes (the state has handed off): it
//! writes what it holds and sends those acks, retrying a failed write for at
//! most `runtime.shutdown_grace_s`; what is still unwritten then stays
//! unacknowledged, and the broker redelivers it at the next start.
//!
//! Backends: PostgreSQL/TimescaleDB (`postgres.rs`), or bounded memory
//! (`memory.rs`) when no database is configured.

pub mod history;
pub mod leader;
pub mod maps;
pub mod memory;
pub mod minutes;
pub mod postgres;
pub mod replay;
pub mod shift;
pub mod timescale;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::bus::AckToken;
use crate::config::DatabaseSettings;
use crate::contract::{IntersectionState, Message, Topic};
use crate::domain::Call;
use crate::ingest::deadletter::{DeadLetter, DeadLetters};
use crate::metrics::Metrics;
use history::{HistoryAnswer, HistoryQuery};
use memory::MemoryBackend;
use postgres::PgBackend;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement failed; the message is the server's own (tokio-postgres
    /// alone says only "db error").
    #[error("database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// Set-up steps of other crates (migrations, the pool's configuration).
    #[error("database: {0}")]
    Setup(String),
}

impl StoreError {
    /// The database refused the data itself (SQLSTATE class 22, data
    /// exception, or 23, integrity constraint), not the connection: the same
    /// rows would be refused again at every retry.
    pub fn is_data_error(&self) -> bool {
        match self {
            StoreError::Database(e) => e
                .code()
                .is_some_and(|c| matches!(&c.code()[..2], "22" | "23")),
            _ => false,
        }
    }
}

/// A database error as the server put it: severity, SQLSTATE, message and
/// detail; other failures (connection, I/O) with their cause.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                s.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            s
        }
    }
}

/// One message on its way to storage.
#[derive(Debug)]
pub enum StoreItem {
    Accepted {
        topic: Topic,
        msg: Message,
        rx: DateTime<Utc>,
        ack: Option<AckToken>,
        projection: Option<Box<Call>>,
    },
    Rejected {
        dead: DeadLetter,
        ack: Option<AckToken>,
    },
    /// Nothing to keep (a retained alert's clearing); its ack, if any.
    AckOnly { ack: Option<AckToken> },
    /// A call's projection after an event this node's view applied
    /// (`mqtt.shared_group`: another node may store the event itself).
    Projection { call: Box<Call>, rx: DateTime<Utc> },
}

/// One controller state message on its way to `atcs_state`: one table row,
/// its approaches in arrays. It keeps the decoded message the state shared
/// with the store, not a copy of its strings.
#[derive(Clone, Debug)]
pub struct TelemetryRow {
    pub city: Arc<str>,
    pub state: Arc<IntersectionState>,
    pub rx: DateTime<Utc>,
}

impl TelemetryRow {
    pub fn ts(&self) -> DateTime<Utc> {
        self.state.ts.with_timezone(&Utc)
    }

    /// Approach readings: the unit of `batch_rows`, `telemetry_buffer_rows`
    /// and `kendali_store_rows_total`.
    pub fn readings(&self) -> usize {
        self.state.approaches.len()
    }
}

/// Anything that is not telemetry.
#[derive(Clone, Debug)]
pub enum EventRow {
    Message {
        topic: Topic,
        msg: Message,
        rx: DateTime<Utc>,
        projection: Option<Box<Call>>,
    },
    Dead(DeadLetter),
    /// Nothing to write: carries the ack of a QoS 1 telemetry message, whose
    /// rows went to the telemetry buffer, so that acks keep arrival order.
    AckOnly,
    /// A call's projection only (see [`StoreItem::Projection`]).
    Projection {
        call: Box<Call>,
        rx: DateTime<Utc>,
    },
}

/// What one write carries.
#[derive(Default, Debug)]
pub struct Batch {
    pub telemetry: Vec<TelemetryRow>,
    pub events: Vec<EventRow>,
    /// The node that stores it, with several nodes (`store_writers.id`):
    /// its telemetry rows are tagged with it.
    pub writer: Option<i16>,
}

/// The store's health, for `/readyz` and `/metrics`.
#[derive(Default)]
pub struct StoreStatus {
    pub persistent: AtomicBool,
    pub degraded: AtomicBool,
    /// Milliseconds from receiving the newest message of the last committed batch to its commit.
    pub lag_ms: AtomicI64,
    /// TimescaleDB's background jobs whose last run failed, as last checked
    /// (empty on plain PostgreSQL).
    pub failed_jobs: std::sync::Mutex<Vec<timescale::FailedJob>>,
}

#[derive(Clone)]
enum Backend {
    Memory(MemoryBackend),
    Postgres(PgBackend),
}

/// Capacity of the state -> store channel. The store drains it without
/// waiting on the database, so this only absorbs scheduling jitter.
pub const STORE_CAPACITY: usize = 8192;
/// Non-telemetry rows queued while the database is away that carry no ack
/// (QoS 0 KPIs, dead letters of QoS 0 messages): beyond this they are dropped and counted.
const UNACKED_EVENTS_KEPT: usize = 100_000;

/// Cheap handle for history queries and status.
#[derive(Clone)]
pub struct StoreHandle {
    backend: Backend,
    pub status: Arc<StoreStatus>,
    rollup_upto: Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
}

impl StoreHandle {
    /// History answers whole minutes before the one `rx` falls in from the rollup.
    fn set_rollup_upto(&self, rx: DateTime<Utc>) {
        *self.rollup_upto.lock().unwrap_or_else(|e| e.into_inner()) = Some(minutes::minute_of(rx));
    }

    pub async fn query(&self, q: &HistoryQuery) -> Result<HistoryAnswer, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.query(q)),
            Backend::Postgres(p) => {
                let upto = *self.rollup_upto.lock().unwrap_or_else(|e| e.into_inner());
                p.query(q, upto).await
            }
        }
    }

    /// The rows a shift report of `city` over [from, to) is computed from.
    pub async fn shift_rows(
        &self,
        city: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<shift::ShiftRows, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.shift_rows(city, from, to)),
            Backend::Postgres(p) => shift::postgres(p.pool(), city, from, to).await,
        }
    }

    /// Messages to rebuild the live state from, today's since `day_start`
    /// (the earliest midnight of the cities' zones; empty for the memory store).
    pub async fn restore(
        &self,
        day_start: DateTime<Utc>,
    ) -> Result<Vec<(Topic, Message, DateTime<Utc>)>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(Vec::new()),
            Backend::Postgres(p) => p.restore(day_start, None, true).await,
        }
    }

    /// What the room held at `at`, as [`StoreHandle::restore`] reads it for
    /// now: the messages that rebuild its state (the day's events from
    /// `day_start`, the latest of everything else up to `at`). `None`
    /// without a database: bounded memory keeps no past to replay.
    pub async fn restore_at(
        &self,
        day_start: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<(Topic, Message, DateTime<Utc>)>>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(None),
            Backend::Postgres(p) => p.restore(day_start, Some(at), true).await.map(Some),
        }
    }

    /// Every message with its source time in `(from, to]`, to advance a
    /// state rebuilt at `from` to `to` (a replay going on from its
    /// checkpoint). `None` without a database.
    pub async fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<Vec<(Topic, Message, DateTime<Utc>)>>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(None),
            Backend::Postgres(p) => p.between(from, to).await.map(Some),
        }
    }

    /// What rebuilds the state at `at` from a checkpoint of the day from
    /// `day_start` taken at `from`: the newest of everything but the call
    /// and app events up to `at`, then those events of `(from, at]`.
    /// `None` without a database.
    pub async fn after_checkpoint(
        &self,
        day_start: DateTime<Utc>,
        from: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<(Topic, Message, DateTime<Utc>)>>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(None),
            Backend::Postgres(p) => {
                let mut out = p.restore(day_start, Some(at), false).await?;
                out.extend(p.events_between(from, at).await?);
                Ok(Some(out))
            }
        }
    }

    /// The call and app events of `(from, to]` (a checkpoint advanced).
    /// `None` without a database.
    pub async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<Vec<(Topic, Message, DateTime<Utc>)>>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(None),
            Backend::Postgres(p) => p.events_between(from, to).await.map(Some),
        }
    }

    /// Stores a replay checkpoint (nothing without a database).
    pub async fn save_checkpoint(
        &self,
        day_start: DateTime<Utc>,
        at: DateTime<Utc>,
        writer: &str,
        calls: usize,
        state: &[u8],
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Postgres(p) => p.save_checkpoint(day_start, at, writer, calls, state).await,
        }
    }

    /// The newest stored replay checkpoint of the day from `day_start` at
    /// or before `at`.
    pub async fn checkpoint_before(
        &self,
        day_start: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Memory(_) => Ok(None),
            Backend::Postgres(p) => p.checkpoint_before(day_start, at).await,
        }
    }

    /// The database's pool, when there is a database (the identity
    /// directory keeps its tables beside the history).
    pub fn pool(&self) -> Option<deadpool_postgres::Pool> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Postgres(p) => Some(p.pool().clone()),
        }
    }

    pub fn describe(&self) -> &'static str {
        match &self.backend {
            Backend::Memory(_) => "memory (not persisted)",
            Backend::Postgres(p) => match p.flavour {
                postgres::Flavour::Plain => "postgresql",
                postgres::Flavour::Timescale => "timescaledb",
            },
        }
    }
}

/// Opens the configured backend.
pub async fn open(settings: &DatabaseSettings) -> Result<StoreHandle, StoreError> {
    let status = Arc::new(StoreStatus::default());
    let backend = match &settings.url {
        None => {
            tracing::warn!("no database configured: history is kept in bounded memory only and is NOT persisted");
            Backend::Memory(MemoryBackend::default())
        }
        Some(url) => {
            status.persistent.store(true, Ordering::Relaxed);
            let pg = PgBackend::connect(url, settings.pool_size).await?;
            if pg.flavour == postgres::Flavour::Timescale {
                timescale::retention_policies(
                    pg.pool(),
                    settings.telemetry_retention_days,
                    settings.retention_days,
                )
                .await?;
            }
            Backend::Postgres(pg)
        }
    };
    Ok(StoreHandle {
        backend,
        status,
        rollup_upto: Arc::new(std::sync::Mutex::new(None)),
    })
}

/// Telemetry waiting for a write, counted in approach readings.
#[derive(Default)]
struct Backlog {
    rows: VecDeque<TelemetryRow>,
    readings: usize,
}

impl Backlog {
    fn push_back(&mut self, row: TelemetryRow) {
        self.readings += row.readings();
        self.rows.push_back(row);
    }

    fn push_front(&mut self, row: TelemetryRow) {
        self.readings += row.readings();
        self.rows.push_front(row);
    }

    /// Whole messages from the front, up to `readings` readings (at least one message).
    fn take(&mut self, readings: usize) -> Vec<TelemetryRow> {
        let mut n = 0;
        let mut taken = 0;
        for r in &self.rows {
            if n > 0 && taken + r.readings() > readings {
                break;
            }
            taken += r.readings();
            n += 1;
        }
        self.readings -= taken;
        self.rows.drain(..n).collect()
    }
}

pub struct StoreTask {
    pub handle: StoreHandle,
    pub settings: DatabaseSettings,
    pub input: mpsc::Receiver<StoreItem>,
    pub metrics: Arc<Metrics>,
    /// Where messages the database refuses are shown (`/api/deadletter`).
    pub deadletters: DeadLetters,
    /// With several nodes on the database (`mqtt.shared_group`), this node's
    /// client id: its telemetry rows are tagged with it, and its part of the
    /// per-minute rollup has its own watermark (see `migrations/V10`).
    pub writer: Option<String>,
}

/// A write's batch, acks, result (the messages the database refused, set
/// aside as dead letters), the receive time of its newest message, and the
/// receive time before which every telemetry row is in it or in an earlier
/// batch.
type Written = (
    Batch,
    Vec<Option<AckToken>>,
    Result<Vec<DeadLetter>, StoreError>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// A write of summed minutes: the rows (put back if it failed) and the
/// receive time they are complete up to.
type MinutesWritten = (
    Vec<minutes::MinuteRow>,
    Option<DateTime<Utc>>,
    Result<(), StoreError>,
);

/// What the store did in this run, for the shutdown's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreReport {
    /// Rows (telemetry readings and events) of the writes that completed
    /// after the input closed: the last batch, in one write or more.
    pub last_rows: u64,
    /// QoS 1 acks sent after the input closed.
    pub last_acks: u64,
    /// QoS 1 acks sent in the whole run.
    pub acks: u64,
    /// QoS 1 messages still unwritten when the grace ran out (the database
    /// was away): not acknowledged, redelivered by the broker at the next start.
    pub unacked: u64,
    /// Telemetry readings still unwritten when the grace ran out (QoS 0: lost).
    pub telemetry_dropped: u64,
}

impl StoreTask {
    /// Runs until its input has closed and what it held is written and
    /// acknowledged, or until `shutdown_grace` after the input closed.
    pub async fn run(mut self, shutdown_grace: Duration) -> StoreReport {
        let pg = match &self.handle.backend {
            Backend::Postgres(pg) => Some(pg.clone()),
            Backend::Memory(_) => None,
        };
        // Rows received before this are the previous run's: what it had not
        // added to the rollup is added from the raw rows (`repair`); later
        // ones are summed here.
        let start = Utc::now();
        let mut minutes = minutes::Minutes::since(start);
        let mut repair: Option<tokio::task::JoinHandle<Result<u64, StoreError>>> = None;
        let mut repaired = pg.is_none();
        let mut minutes_inflight: Option<tokio::task::JoinHandle<MinutesWritten>> = None;
        let mut rollup_tick =
            tokio::time::interval(Duration::from_secs(self.settings.rollup_every_s.max(1)));
        rollup_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // With several nodes: this node's writer id (registered now if the
        // database answers, else by the rollup's repair) and its watermark's name.
        let writer_id = Arc::new(std::sync::atomic::AtomicI32::new(-1));
        let rollup_name = match &self.writer {
            Some(client) => format!("atcs_minute@{client}"),
            None => "atcs_minute".to_owned(),
        };
        if let (Some(pg), Some(client)) = (&pg, &self.writer) {
            match tokio::time::timeout(Duration::from_secs(2), pg.register_writer(client)).await {
                Ok(Ok(id)) => writer_id.store(id as i32, Ordering::Relaxed),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not register this node as a writer yet; will retry")
                }
                Err(_) => {
                    tracing::warn!("registering this node as a writer takes long; will retry")
                }
            }
        }
        if let Some(pg) = &pg {
            tokio::spawn(maintenance(
                pg.clone(),
                self.settings.clone(),
                self.handle.status.clone(),
                self.metrics.clone(),
            ));
        }
        let mut telemetry = Backlog::default();
        let mut events: VecDeque<(EventRow, Option<AckToken>)> = VecDeque::new();
        let mut unacked_events = 0usize;
        let mut inflight: Option<tokio::task::JoinHandle<Written>> = None;
        let flush_every = Duration::from_millis(self.settings.flush_ms.max(1));
        let mut last_flush = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        let mut tick = tokio::time::interval(flush_every.min(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closed = false;
        let mut closed_at = Instant::now();
        let mut report = StoreReport::default();
        // QoS 1 messages in the write in flight.
        let mut inflight_acks = 0u64;
        let mut newest_rx: Option<DateTime<Utc>> = None;
        let mut incoming = Vec::with_capacity(256);
        loop {
            tokio::select! {
                biased;
                done = async { inflight.as_mut().expect("guarded by the condition").await }, if inflight.is_some() => {
                    inflight = None;
                    let Ok((batch, acks, result, upto, complete)) = done else {
                        tracing::error!("store write task panicked; its batch will be retried");
                        continue;
                    };
                    match result {
                        Ok(refused) => {
                            // Kept and acknowledged with the rest, never retried.
                            for d in refused {
                                self.deadletters.push(d);
                            }
                            backoff = Duration::from_millis(100);
                            if self.handle.status.degraded.swap(false, Ordering::Relaxed) {
                                tracing::info!("database writes resumed");
                            }
                            self.metrics.store_degraded.set(0);
                            let readings: usize = batch.telemetry.iter().map(TelemetryRow::readings).sum();
                            // A call's projection written beside its event (several nodes) is not a row of its own.
                            let events = batch.events.iter().filter(|e| !matches!(e, EventRow::Projection { .. })).count();
                            self.metrics.store_rows.inc_by((readings + events) as u64);
                            if pg.is_some() {
                                minutes.add(&batch.telemetry, complete);
                            }
                            if let Some(upto) = upto {
                                let lag = (Utc::now() - upto).num_milliseconds().max(0);
                                self.handle.status.lag_ms.store(lag, Ordering::Relaxed);
                                self.metrics.store_lag_ms.set(lag);
                            }
                            let mut sent = 0u64;
                            for token in acks.iter().flatten() {
                                if let Err(e) = token.ack().await {
                                    tracing::warn!(error = %e, "ack failed (the broker will redeliver)");
                                } else {
                                    self.metrics.acks.inc();
                                    sent += 1;
                                }
                            }
                            report.acks += sent;
                            if closed {
                                report.last_rows += (readings + batch.events.len()) as u64;
                                report.last_acks += sent;
                            }
                        }
                        Err(e) => {
                            if !self.handle.status.degraded.swap(true, Ordering::Relaxed) {
                                tracing::error!(error = %e, "database write failed: store degraded, retrying with backoff");
                            }
                            self.metrics.store_degraded.set(1);
                            self.metrics.store_failures.inc();
                            // Put the batch back in front, in order.
                            for (row, ack) in batch.events.into_iter().zip(acks).rev() {
                                if ack.is_none() {
                                    unacked_events += 1;
                                }
                                events.push_front((row, ack));
                            }
                            for row in batch.telemetry.into_iter().rev() {
                                if telemetry.readings + row.readings() <= self.settings.telemetry_buffer_rows {
                                    telemetry.push_front(row);
                                } else {
                                    self.metrics.store_dropped.with_label_values(&["telemetry"]).inc_by(row.readings() as u64);
                                }
                            }
                            retry_at = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                // Up to 256 items per turn of the loop: one item per turn
                // re-armed every branch 50,000 times a second at 50,000 msg/s.
                n = self.input.recv_many(&mut incoming, 256), if !closed => {
                    if n == 0 {
                        closed = true;
                        closed_at = Instant::now();
                    } else {
                        newest_rx = Some(Utc::now());
                        for item in incoming.drain(..) {
                            self.buffer(item, &mut telemetry, &mut events, &mut unacked_events);
                        }
                    }
                }
                _ = tick.tick() => {}
                _ = rollup_tick.tick(), if pg.is_some() => {
                    let pg = pg.clone().expect("guarded by the condition");
                    if !repaired && repair.is_none() {
                        let handle = self.handle.clone();
                        let (writer, writer_id, name) = (self.writer.clone(), writer_id.clone(), rollup_name.clone());
                        repair = Some(tokio::spawn(async move {
                            let Some(client) = writer else {
                                // One node: recompute the minutes touched since the watermark.
                                let from = pg.rollup_watermark(&name).await?.unwrap_or(start - chrono::Duration::days(1));
                                let n = pg.rollup(from, start).await?;
                                handle.set_rollup_upto(start);
                                return Ok(n);
                            };
                            // Several: add this node's own rows it had not added.
                            let mut id = writer_id.load(Ordering::Relaxed);
                            if id < 0 {
                                id = pg.register_writer(&client).await? as i32;
                                writer_id.store(id, Ordering::Relaxed);
                            }
                            let from = pg.rollup_watermark(&name).await?.unwrap_or(start - chrono::Duration::days(1));
                            let n = pg.rollup_writer(id as i16, from, start, &name).await?;
                            handle.set_rollup_upto(pg.rollup_watermark_of_all_writers().await?.unwrap_or(start));
                            Ok(n)
                        }));
                    } else if repaired && minutes_inflight.is_none() && !minutes.is_empty() {
                        let rows = minutes.take();
                        let upto = minutes.complete_upto;
                        let (name, shared) = (rollup_name.clone(), self.writer.is_some());
                        minutes_inflight = Some(tokio::spawn(async move {
                            let r = pg.merge_minutes(&rows, upto, &name).await;
                            // The rollup is whole only up to every node's
                            // watermark (if that cannot be read: as it was).
                            let mut whole = upto;
                            if shared && r.is_ok() {
                                whole = match pg.rollup_watermark_of_all_writers().await {
                                    Ok(w) => w.min(upto),
                                    Err(_) => None,
                                };
                            }
                            (rows, whole, r)
                        }));
                    }
                }
                done = async { repair.as_mut().expect("guarded by the condition").await }, if repair.is_some() => {
                    repair = None;
                    match done {
                        Ok(Ok(n)) => {
                            repaired = true;
                            tracing::info!(minutes = n, "rollup: rows received before this start and not yet summed added from the raw rows");
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "rollup repair failed; will retry"),
                        Err(_) => tracing::error!("rollup repair panicked; will retry"),
                    }
                }
                done = async { minutes_inflight.as_mut().expect("guarded by the condition").await }, if minutes_inflight.is_some() => {
                    minutes_inflight = None;
                    match done {
                        Ok((_, upto, Ok(()))) => {
                            if let Some(upto) = upto {
                                self.handle.set_rollup_upto(upto);
                            }
                        }
                        Ok((rows, _, Err(e))) => {
                            tracing::warn!(error = %e, "writing the per-minute rollup failed; will retry");
                            minutes.put_back(rows);
                        }
                        Err(_) => tracing::error!("per-minute rollup write panicked; its minutes are lost"),
                    }
                }
            }
            self.metrics
                .store_buffered
                .set((telemetry.readings + events.len()) as i64);
            let ready = telemetry.readings >= self.settings.batch_rows
                || events.len() >= self.settings.batch_rows
                || last_flush.elapsed() >= flush_every;
            // A message the broker waits for an ack of goes out at once, not
            // after `flush_ms`: a broker lets a connection only so many
            // unacknowledged messages (the embedded one 100), so waiting for
            // the timer capped QoS 1 at about 500 messages a second there,
            // and a flood of bad call events held good ones back for
            // seconds. Telemetry keeps its large batches: such a write takes
            // only the events (one write at a time, so the next batch of
            // events gathers while this one is written).
            let acks_waiting = events.len() > unacked_events;
            let may = inflight.is_none()
                && retry_at.is_none_or(|t| Instant::now() >= t)
                && (!telemetry.rows.is_empty() || !events.is_empty());
            if may && (ready || closed || acks_waiting) {
                retry_at = None;
                let with_telemetry = ready || closed;
                if with_telemetry {
                    last_flush = Instant::now();
                }
                let mut batch = Batch {
                    telemetry: if with_telemetry {
                        telemetry.take(self.settings.batch_rows)
                    } else {
                        Vec::new()
                    },
                    events: Vec::new(),
                    writer: i16::try_from(writer_id.load(Ordering::Relaxed))
                        .ok()
                        .filter(|id| *id >= 0),
                };
                let complete = telemetry.rows.front().map(|r| r.rx).or(newest_rx);
                let n = events.len().min(self.settings.batch_rows);
                let mut acks = Vec::with_capacity(n);
                for (row, ack) in events.drain(..n) {
                    if ack.is_none() {
                        unacked_events = unacked_events.saturating_sub(1);
                    }
                    batch.events.push(row);
                    acks.push(ack);
                }
                inflight_acks = acks.iter().flatten().count() as u64;
                let backend = self.handle.backend.clone();
                let upto = newest_rx;
                inflight = Some(tokio::spawn(async move {
                    let r = match &backend {
                        Backend::Memory(m) => {
                            m.write(std::mem::take(&mut batch));
                            Ok(Vec::new())
                        }
                        Backend::Postgres(p) => p.write(&batch).await,
                    };
                    (batch, acks, r, upto, complete)
                }));
            }
            if closed && inflight.is_none() && telemetry.rows.is_empty() && events.is_empty() {
                tracing::info!(
                    rows = report.last_rows,
                    acks = report.last_acks,
                    elapsed_ms = closed_at.elapsed().as_millis() as u64,
                    "store flushed the last batch"
                );
                break;
            }
            if closed && closed_at.elapsed() >= shutdown_grace {
                // The database is away (or too slow): give up rather than
                // hold the shutdown. A write still in flight may yet commit;
                // its messages come back too, and are stored once.
                let queued = events.iter().filter(|(_, a)| a.is_some()).count() as u64;
                report.unacked = queued + if inflight.is_some() { inflight_acks } else { 0 };
                report.telemetry_dropped = telemetry.readings as u64;
                tracing::warn!(
                    unacked = report.unacked,
                    telemetry_dropped = report.telemetry_dropped,
                    grace_s = shutdown_grace.as_secs(),
                    "store gave up at shutdown: the database did not take the last batch within the grace; the broker redelivers the unacknowledged messages at the next start"
                );
                break;
            }
        }
        // What was summed goes out before the process does (a write in
        // flight finishes first). If it cannot, within 5 s (or what is left
        // of the grace), the next start recomputes those minutes from the raw rows.
        let within = shutdown_grace
            .saturating_sub(closed_at.elapsed())
            .min(Duration::from_secs(5));
        if let Some(pg) = pg.filter(|_| repaired && !within.is_zero()) {
            let last = async {
                if let Some(w) = minutes_inflight.take() {
                    if let Ok((rows, _, Err(_))) = w.await {
                        minutes.put_back(rows);
                    }
                }
                if minutes.is_empty() {
                    return Ok(());
                }
                let rows = minutes.take();
                pg.merge_minutes(&rows, minutes.complete_upto, &rollup_name)
                    .await
            };
            match tokio::time::timeout(within, last).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the last per-minute sums were not written; the next start recomputes them"),
                Err(_) => tracing::warn!(within_ms = within.as_millis() as u64, "the last per-minute sums were not written in time; the next start recomputes them"),
            }
        }
        tracing::info!(acks = report.acks, "store stopped");
        report
    }

    fn buffer(
        &self,
        item: StoreItem,
        telemetry: &mut Backlog,
        events: &mut VecDeque<(EventRow, Option<AckToken>)>,
        unacked: &mut usize,
    ) {
        let (row, ack) = match item {
            StoreItem::Accepted {
                topic,
                msg: Message::IntersectionState(s),
                rx,
                ack,
                ..
            } => {
                let free = self
                    .settings
                    .telemetry_buffer_rows
                    .saturating_sub(telemetry.readings);
                if free < s.approaches.len() {
                    self.metrics
                        .store_dropped
                        .with_label_values(&["telemetry"])
                        .inc_by(s.approaches.len() as u64);
                } else {
                    // A bus has a city or a few: the row shares the last one's name.
                    let city = match telemetry.rows.back() {
                        Some(last) if *last.city == *topic.city() => last.city.clone(),
                        _ => topic.city().into(),
                    };
                    telemetry.push_back(TelemetryRow { city, state: s, rx });
                }
                // Telemetry is QoS 0 by contract, but a broker may deliver it at the
                // subscription's QoS 1: its ack joins the ordered queue (brokers drop
                // a client that acknowledges out of order), behind the events before it.
                match ack {
                    Some(token) => (EventRow::AckOnly, Some(token)),
                    None => return,
                }
            }
            StoreItem::Accepted {
                topic,
                msg,
                rx,
                ack,
                projection,
            } => (
                EventRow::Message {
                    topic,
                    msg,
                    rx,
                    projection,
                },
                ack,
            ),
            StoreItem::Rejected { dead, ack } => (EventRow::Dead(dead), ack),
            StoreItem::AckOnly { ack: Some(token) } => (EventRow::AckOnly, Some(token)),
            StoreItem::AckOnly { ack: None } => return,
            StoreItem::Projection { call, rx } => (EventRow::Projection { call, rx }, None),
        };
        if ack.is_none() {
            if *unacked >= UNACKED_EVENTS_KEPT {
                self.metrics
                    .store_dropped
                    .with_label_values(&["unacked_event"])
                    .inc();
                return;
            }
            *unacked += 1;
        }
        events.push_back((row, ack));
    }
}

/// Retention, every `database.maintenance_every_s` (on TimescaleDB, policies
/// keep the hypertables), and TimescaleDB's failed background jobs.
async fn maintenance(
    pg: PgBackend,
    settings: DatabaseSettings,
    status: Arc<StoreStatus>,
    metrics: Arc<Metrics>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(settings.maintenance_every_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match pg
            .retention(
                settings.telemetry_retention_days,
                settings.retention_days,
                settings.checkpoint_retention_days,
            )
            .await
        {
            Ok(n) if n > 0 => tracing::info!(rows = n, "retention removed old rows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
        }
        if pg.flavour != postgres::Flavour::Timescale {
            continue;
        }
        match timescale::failed_jobs(pg.pool()).await {
            Ok(failed) => {
                for j in &failed {
                    tracing::warn!(job = j.job_id, proc = %j.proc_name, table = ?j.hypertable,
                        failures = j.failures, error = ?j.error, "a TimescaleDB background job failed");
                }
                metrics.timescaledb_jobs_failed.set(failed.len() as i64);
                *status.failed_jobs.lock().unwrap_or_else(|e| e.into_inner()) = failed;
            }
            Err(e) => tracing::warn!(error = %e, "TimescaleDB's job statistics could not be read"),
        }
    }
}
