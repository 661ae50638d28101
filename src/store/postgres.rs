//! The PostgreSQL backend (TimescaleDB-compatible): migrations, batched
//! writes (binary COPY for telemetry, `UNNEST` inserts with `ON CONFLICT DO
//! NOTHING` for events, one transaction per batch), the per-minute rollup, retention, history queries and the start-up restore.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::NoTls;
use uuid::Uuid;

use super::history::*;
use super::minutes::{MinuteRow, Sums};
use super::{Batch, EventRow, StoreError, TelemetryRow};
use crate::contract::*;
use crate::domain::Call;
use crate::ingest::deadletter::DeadLetter;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Which time-series engine the schema runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Plain PostgreSQL: BRIN/B-tree time indexes, rollups and retention kept by Kendali.
    Plain,
    /// TimescaleDB: hypertables, compression, retention policies.
    Timescale,
}

#[derive(Clone)]
pub struct PgBackend {
    pool: Pool,
    pub flavour: Flavour,
}

/// How minutes summed apart are added to `atcs_minute` (aliased `m`):
/// samples add up, averages are weighted by samples, maxima take the greater.
const ADD_MINUTES: &str = "samples = m.samples + EXCLUDED.samples,
    saturation_avg = (m.saturation_avg * m.samples + EXCLUDED.saturation_avg * EXCLUDED.samples) / (m.samples + EXCLUDED.samples),
    saturation_max = greatest(m.saturation_max, EXCLUDED.saturation_max),
    flow_vph_avg = (m.flow_vph_avg * m.samples + EXCLUDED.flow_vph_avg * EXCLUDED.samples) / (m.samples + EXCLUDED.samples),
    queue_m_avg = (m.queue_m_avg * m.samples + EXCLUDED.queue_m_avg * EXCLUDED.samples) / (m.samples + EXCLUDED.samples),
    queue_m_max = greatest(m.queue_m_max, EXCLUDED.queue_m_max),
    green_s_avg = (m.green_s_avg * m.samples + EXCLUDED.green_s_avg * EXCLUDED.samples) / (m.samples + EXCLUDED.samples)";

/// Raises the rollup watermark `name` to `upto` (never lowers it).
async fn raise_watermark(
    tx: &deadpool_postgres::Transaction<'_>,
    name: &str,
    upto: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO rollup_state (name, rx_watermark) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET rx_watermark = greatest(rollup_state.rx_watermark, EXCLUDED.rx_watermark)",
        &[&name, &upto],
    )
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

fn setup(e: impl std::fmt::Display) -> StoreError {
    StoreError::Setup(e.to_string())
}

/// Applies the migrations in migrations/ that have not run yet; returns the versions applied.
pub async fn migrate(url: &str) -> Result<Vec<String>, StoreError> {
    migrate_upto(url, None).await
}

/// Applies the migrations up to `version` (all with `None`): an upgrade
/// test starts from an older schema.
pub async fn migrate_upto(url: &str, version: Option<i32>) -> Result<Vec<String>, StoreError> {
    let config = tokio_postgres::Config::from_str(url).map_err(StoreError::from)?;
    let (mut client, conn) = config.connect(NoTls).await.map_err(StoreError::from)?;
    let conn = tokio::spawn(conn);
    let target = version.map_or(refinery::Target::Latest, refinery::Target::Version);
    let report = embedded::migrations::runner()
        .set_target(target)
        .run_async(&mut client)
        .await
        .map_err(setup)?;
    drop(client);
    let _ = conn.await;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect())
}

/// The newest schema version this binary carries (its last migration).
pub fn latest_migration() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// A pool of connections to `url` that verifies a connection before reuse;
/// nothing is migrated (`kendali doctor` looks without changing).
pub fn open_pool(url: &str, size: usize) -> Result<Pool, StoreError> {
    let config = tokio_postgres::Config::from_str(url).map_err(StoreError::from)?;
    let mgr = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Verified,
        },
    );
    Pool::builder(mgr)
        .max_size(size.max(2))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(setup)
}

impl PgBackend {
    /// Connects, migrates and picks the flavour (logged).
    pub async fn connect(url: &str, pool_size: usize) -> Result<PgBackend, StoreError> {
        let applied = migrate(url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "database migrations applied");
        }
        let pool = open_pool(url, pool_size)?;
        let flavour = super::timescale::setup(&pool).await?;
        match flavour {
            Flavour::Timescale => {
                tracing::info!("store: TimescaleDB (hypertables, compression, retention policies)")
            }
            Flavour::Plain => tracing::info!(
                "store: plain PostgreSQL (time indexes; rollups and retention kept by Kendali)"
            ),
        }
        Ok(PgBackend { pool, flavour })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Writes one batch in one transaction, and returns the messages the
    /// database refused for their data (each as a `store_refused` dead
    /// letter, written in the same transaction).
    ///
    /// A batch refused for its data (SQLSTATE class 22 or 23) would be
    /// refused again at every retry, and the QoS 1 messages in and behind it
    /// never acknowledged: one bad row would stop the store for good. It is
    /// written again in halves under savepoints, down to the single messages
    /// the database refuses; everything else commits as usual.
    pub async fn write(&self, batch: &Batch) -> Result<Vec<DeadLetter>, StoreError> {
        let mut client = self.pool.get().await?;
        let first = {
            let tx = client.transaction().await?;
            match write_parts(&tx, &batch.telemetry, &batch.events, batch.writer).await {
                Ok(()) => tx.commit().await.map_err(StoreError::from),
                Err(e) => Err(e),
            }
        };
        match first {
            Ok(()) => Ok(Vec::new()),
            Err(e) if e.is_data_error() => {
                tracing::warn!(error = %e, rows = batch.telemetry.len() + batch.events.len(), "the database refused a batch for its data: writing it in parts to set the refused messages aside");
                let mut tx = client.transaction().await?;
                let refused = isolate(&mut tx, batch).await?;
                for d in &refused {
                    insert_dead_letter(&tx, d).await?;
                }
                tx.commit().await?;
                Ok(refused)
            }
            Err(e) => Err(e),
        }
    }

    /// Adds summed minutes to `atcs_minute` (samples add up, averages are
    /// weighted, maxima take the greater) and raises the watermark to
    /// `complete_upto`, in one transaction.
    pub async fn merge_minutes(
        &self,
        rows: &[MinuteRow],
        complete_upto: Option<DateTime<Utc>>,
        watermark: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(StoreError::from)?;
        let tx = client.transaction().await.map_err(StoreError::from)?;
        let max = |f: fn(&Sums) -> f32| rows.iter().map(|r| f(&r.sums)).collect::<Vec<f32>>();
        let avg = |f: fn(&Sums) -> f64| {
            rows.iter()
                .map(|r| (f(&r.sums) / r.sums.samples.max(1) as f64) as f32)
                .collect::<Vec<f32>>()
        };
        let bucket: Vec<DateTime<Utc>> = rows.iter().map(|r| r.bucket).collect();
        let city: Vec<&str> = rows.iter().map(|r| &*r.city).collect();
        let intersection: Vec<&str> = rows.iter().map(|r| &*r.intersection).collect();
        let approach: Vec<&str> = rows.iter().map(|r| r.approach.as_str()).collect();
        let samples: Vec<i32> = rows.iter().map(|r| r.sums.samples as i32).collect();
        tx.execute(
            &format!(r#"INSERT INTO atcs_minute AS m (bucket, city, intersection, approach, samples, saturation_avg, saturation_max,
                 flow_vph_avg, queue_m_avg, queue_m_max, green_s_avg)
             SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::int[], $6::real[], $7::real[],
                 $8::real[], $9::real[], $10::real[], $11::real[])
             ON CONFLICT (city, intersection, approach, bucket) DO UPDATE SET {}"#,
                ADD_MINUTES
            ),
            &[
                &bucket,
                &city,
                &intersection,
                &approach,
                &samples,
                &avg(|s| s.saturation),
                &max(|s| s.saturation_max),
                &avg(|s| s.flow_vph),
                &avg(|s| s.queue_m),
                &max(|s| s.queue_m_max),
                &avg(|s| s.green_s),
            ],
        )
        .await
        .map_err(StoreError::from)?;
        if let Some(upto) = complete_upto {
            raise_watermark(&tx, watermark, upto).await?;
        }
        tx.commit().await.map_err(StoreError::from)
    }

    /// Recomputes from the raw rows every minute touched by telemetry
    /// received in `[rx_from, rx_to)`, counting only rows received before
    /// `rx_to`, and records `rx_to` as the watermark, in one transaction. A
    /// node runs it when it starts, for what it had summed but not written
    /// before it stopped; what it commits afterwards (received after `rx_to`)
    /// it adds with `merge_minutes`.
    pub async fn rollup(
        &self,
        rx_from: DateTime<Utc>,
        rx_to: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut client = self.pool.get().await.map_err(StoreError::from)?;
        // A BRIN index only knows the page ranges summarised so far, and
        // summarising is VACUUM's job: with autovacuum off (as on some
        // servers) every page written since start-up matched every window.
        // This reads only the pages added since the last call. (A hypertable
        // has its indexes per chunk, and chunks by time instead.)
        if self.flavour == Flavour::Plain {
            client
                .batch_execute(
                    "SELECT brin_summarize_new_values('atcs_state_rx_brin'::regclass);
                     SELECT brin_summarize_new_values('atcs_state_ts_brin'::regclass)",
                )
                .await
                .map_err(StoreError::from)?;
        }
        let tx = client.transaction().await.map_err(StoreError::from)?;
        // The window is a recent slice of an append-only table: its BRIN on
        // `rx` and the entity index are always right. Without statistics
        // (autovacuum off, as on some servers, or a young table) the planner
        // scanned the whole table instead, once per run. JIT only adds
        // compile time to a query this size.
        tx.batch_execute("SET LOCAL enable_seqscan = off; SET LOCAL jit = off")
            .await
            .map_err(StoreError::from)?;
        let n = tx
            .execute(
                // LATERAL: each touched minute reads its own rows through the
                // (city, intersection, ts) index. A plain join let the planner
                // sort the whole table on every run: minutes per run after an
                // hour at 20,000 rows/s, growing with the table.
                // (Rows written before schema v2 are in atcs_telemetry_v1.)
                "WITH touched AS (
                     SELECT city, intersection, date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b
                     FROM atcs_state WHERE rx >= $1 AND rx < $2
                     UNION
                     SELECT city, intersection, date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')
                     FROM atcs_telemetry_v1 WHERE rx >= $1 AND rx < $2)
                 INSERT INTO atcs_minute AS m (bucket, city, intersection, approach, samples, saturation_avg, saturation_max,
                     flow_vph_avg, queue_m_avg, queue_m_max, green_s_avg)
                 SELECT touched.b, touched.city, touched.intersection, a.approach, a.samples, a.saturation_avg, a.saturation_max,
                     a.flow_vph_avg, a.queue_m_avg, a.queue_m_max, a.green_s_avg
                 FROM touched CROSS JOIN LATERAL (
                     SELECT t.approach, count(*) AS samples, avg(t.saturation) AS saturation_avg, max(t.saturation) AS saturation_max,
                         avg(t.flow_vph) AS flow_vph_avg, avg(t.queue_m) AS queue_m_avg, max(t.queue_m) AS queue_m_max,
                         avg(t.green_s) AS green_s_avg
                     FROM atcs_telemetry t
                     WHERE t.city = touched.city AND t.intersection = touched.intersection
                         AND t.ts >= touched.b AND t.ts < touched.b + INTERVAL '1 minute' AND t.rx < $2
                     GROUP BY t.approach) a
                 ON CONFLICT (city, intersection, approach, bucket) DO UPDATE SET
                     samples = EXCLUDED.samples, saturation_avg = EXCLUDED.saturation_avg, saturation_max = EXCLUDED.saturation_max,
                     flow_vph_avg = EXCLUDED.flow_vph_avg, queue_m_avg = EXCLUDED.queue_m_avg, queue_m_max = EXCLUDED.queue_m_max,
                     green_s_avg = EXCLUDED.green_s_avg",
                &[&rx_from, &rx_to],
            )
            .await
            .map_err(StoreError::from)?;
        tx.execute(
            "INSERT INTO rollup_state (name, rx_watermark) VALUES ('atcs_minute', $1)
             ON CONFLICT (name) DO UPDATE SET rx_watermark = EXCLUDED.rx_watermark",
            &[&rx_to],
        )
        .await
        .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(n)
    }

    /// Receive time up to which the rollup is complete: `name` is
    /// `atcs_minute` for one node, `atcs_minute@{client_id}` for one of several.
    pub async fn rollup_watermark(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let row = client
            .query_opt(
                "SELECT rx_watermark FROM rollup_state WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(StoreError::from)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// With several nodes: the receive time up to which every node has
    /// added its rows to the rollup (the least of their watermarks). A node
    /// that is gone for good holds it back (history then reads raw rows past
    /// it) until it is retired ([`PgBackend::retire_writer`]).
    pub async fn rollup_watermark_of_all_writers(
        &self,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let row = client
            .query_one(
                "SELECT min(r.rx_watermark) FROM rollup_state r
                 WHERE r.name LIKE 'atcs_minute@%' AND NOT EXISTS (
                     SELECT 1 FROM store_writers w
                     WHERE r.name = 'atcs_minute@' || w.client_id AND w.retired_at IS NOT NULL)",
                &[],
            )
            .await
            .map_err(StoreError::from)?;
        Ok(row.get(0))
    }

    /// This node's id among the writers of the database (several nodes);
    /// a retired node that starts again counts again.
    pub async fn register_writer(&self, client_id: &str) -> Result<i16, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let row = client
            .query_one(
                "INSERT INTO store_writers (client_id) VALUES ($1)
                 ON CONFLICT (client_id) DO UPDATE SET retired_at = NULL RETURNING id",
                &[&client_id],
            )
            .await
            .map_err(StoreError::from)?;
        Ok(row.get(0))
    }

    /// The nodes that have stored telemetry (several nodes), by client id:
    /// their rollup watermark, and since when they are retired.
    pub async fn writers(&self) -> Result<Vec<Writer>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let rows = client
            .query(
                "SELECT w.client_id, r.rx_watermark, w.retired_at FROM store_writers w
                 LEFT JOIN rollup_state r ON r.name = 'atcs_minute@' || w.client_id
                 ORDER BY w.client_id",
                &[],
            )
            .await
            .map_err(StoreError::from)?;
        Ok(rows
            .iter()
            .map(|r| Writer {
                client_id: r.get(0),
                watermark: r.get(1),
                retired_at: r.get(2),
            })
            .collect())
    }

    /// Takes a node out of the rollup's count for good: adds the rows it
    /// stored past its watermark (as it would at its next start), then marks
    /// it retired so that its watermark no longer holds history back. Its
    /// watermark stays: started again, it counts again from there. `None`
    /// when no node of that client id ever stored telemetry.
    pub async fn retire_writer(&self, client_id: &str) -> Result<Option<u64>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let Some(row) = client
            .query_opt(
                "SELECT id FROM store_writers WHERE client_id = $1",
                &[&client_id],
            )
            .await
            .map_err(StoreError::from)?
        else {
            return Ok(None);
        };
        drop(client);
        let id: i16 = row.get(0);
        let name = format!("atcs_minute@{client_id}");
        let from = self
            .rollup_watermark(&name)
            .await?
            .unwrap_or(DateTime::UNIX_EPOCH);
        let n = self.rollup_writer(id, from, Utc::now(), &name).await?;
        self.pool
            .get()
            .await
            .map_err(StoreError::from)?
            .execute(
                "UPDATE store_writers SET retired_at = now() WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(StoreError::from)?;
        Ok(Some(n))
    }

    /// With several nodes, at a node's start: adds to the rollup the rows
    /// this node (`writer`) stored in `[rx_from, rx_to)` (after its
    /// watermark: stored, not yet added when it stopped), and raises its
    /// watermark `name` to `rx_to`, in one transaction. Other nodes' rows are
    /// theirs to add; nothing is recomputed, so nothing they added is undone.
    pub async fn rollup_writer(
        &self,
        writer: i16,
        rx_from: DateTime<Utc>,
        rx_to: DateTime<Utc>,
        name: &str,
    ) -> Result<u64, StoreError> {
        let mut client = self.pool.get().await.map_err(StoreError::from)?;
        let tx = client.transaction().await.map_err(StoreError::from)?;
        tx.batch_execute("SET LOCAL jit = off")
            .await
            .map_err(StoreError::from)?;
        let n = tx
            .execute(
                &format!(
                    r#"INSERT INTO atcs_minute AS m (bucket, city, intersection, approach, samples, saturation_avg, saturation_max,
                         flow_vph_avg, queue_m_avg, queue_m_max, green_s_avg)
                     SELECT date_bin('1 minute', s.ts, TIMESTAMPTZ '2000-01-01 00:00:00+00'), s.city, s.intersection, a.approach,
                         count(*), avg(a.saturation), max(a.saturation), avg(a.flow_vph), avg(a.queue_m), max(a.queue_m), avg(a.green_s)
                     FROM atcs_state s
                     CROSS JOIN LATERAL unnest(s.approach, s.green_s, s.flow_vph, s.queue_m, s.saturation)
                         AS a (approach, green_s, flow_vph, queue_m, saturation)
                     WHERE s.writer = $1 AND s.rx >= $2 AND s.rx < $3
                     GROUP BY 1, 2, 3, 4
                     ON CONFLICT (city, intersection, approach, bucket) DO UPDATE SET {}"#,
                    ADD_MINUTES
                ),
                &[&writer, &rx_from, &rx_to],
            )
            .await
            .map_err(StoreError::from)?;
        raise_watermark(&tx, name, rx_to).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(n)
    }

    /// Deletes what is older than the retention. On TimescaleDB, policies
    /// keep the hypertables; the other tables (the rollup, alerts, dead
    /// letters) are Kendali's on both flavours.
    pub async fn retention(
        &self,
        telemetry_days: i64,
        other_days: i64,
        checkpoint_days: i64,
    ) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let t = Utc::now() - chrono::Duration::days(telemetry_days);
        let o = Utc::now() - chrono::Duration::days(other_days);
        let mut n = client
            .execute("DELETE FROM atcs_minute WHERE bucket < $1", &[&o])
            .await
            .map_err(StoreError::from)?;
        n += client
            .execute("DELETE FROM alert_events WHERE ts < $1", &[&o])
            .await
            .map_err(StoreError::from)?;
        n += client
            .execute("DELETE FROM dead_letters WHERE rx < $1", &[&o])
            .await
            .map_err(StoreError::from)?;
        let c = Utc::now() - chrono::Duration::days(checkpoint_days);
        n += client
            .execute("DELETE FROM replay_checkpoints WHERE at < $1", &[&c])
            .await
            .map_err(StoreError::from)?;
        if self.flavour == Flavour::Timescale {
            return Ok(n);
        }
        // Rows written before schema v2 age out of their own table.
        for table in ["atcs_state", "atcs_telemetry_v1"] {
            n += client
                .execute(&format!("DELETE FROM {table} WHERE ts < $1"), &[&t])
                .await
                .map_err(StoreError::from)?;
        }
        for table in [
            "unit_status",
            "kpi_samples",
            "app_events",
            "call_events",
            "command_acks",
        ] {
            n += client
                .execute(&format!("DELETE FROM {table} WHERE ts < $1"), &[&o])
                .await
                .map_err(StoreError::from)?;
        }
        Ok(n)
    }

    pub async fn query(
        &self,
        q: &HistoryQuery,
        rollup_upto: Option<DateTime<Utc>>,
    ) -> Result<HistoryAnswer, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let secs = |r: &Range| r.bucket.num_seconds() as f64;
        match q {
            HistoryQuery::Atcs {
                city,
                intersection,
                approach,
                metric,
                range,
            } => {
                let col = metric.column();
                // Whole-minute buckets are answered from the rollup up to its watermark, raw rows after it.
                let split = match rollup_upto {
                    Some(w) if range.bucket.num_seconds() % 60 == 0 && range.from < w => {
                        Some(w.min(range.to))
                    }
                    _ => None,
                };
                let mut points = Vec::new();
                if let Some(split) = split {
                    let (avg, max) = match metric {
                        AtcsMetric::Saturation => ("saturation_avg", "saturation_max"),
                        AtcsMetric::FlowVph => ("flow_vph_avg", "flow_vph_avg"),
                        AtcsMetric::QueueM => ("queue_m_avg", "queue_m_max"),
                        AtcsMetric::GreenS => ("green_s_avg", "green_s_avg"),
                    };
                    let sql = format!(
                        "SELECT to_timestamp(floor(extract(epoch FROM bucket)::float8 / $5::float8) * $5::float8) AS t, sum(samples)::bigint,
                                (sum({avg} * samples) / sum(samples))::float8, max({max})::float8
                         FROM atcs_minute WHERE city = $1 AND intersection = $2 AND ($3::text IS NULL OR approach = $3)
                           AND bucket >= $4 AND bucket < $6 GROUP BY 1 ORDER BY 1"
                    );
                    let rows = client
                        .query(
                            &sql,
                            &[
                                city,
                                intersection,
                                approach,
                                &range.from,
                                &secs(range),
                                &split,
                            ],
                        )
                        .await
                        .map_err(StoreError::from)?;
                    points.extend(rows.iter().map(|r| Point {
                        t: r.get(0),
                        n: r.get::<_, i64>(1) as u64,
                        avg: r.get(2),
                        max: r.get(3),
                    }));
                    if split >= range.to {
                        return Ok(HistoryAnswer::Series(points));
                    }
                }
                let from = split.unwrap_or(range.from);
                let sql = format!(
                    "SELECT to_timestamp(floor(extract(epoch FROM ts)::float8 / $5::float8) * $5::float8) AS t, count(*), avg({col})::float8, max({col})::float8
                     FROM atcs_telemetry WHERE city = $1 AND intersection = $2 AND ($3::text IS NULL OR approach = $3)
                       AND ts >= $4 AND ts < $6 GROUP BY 1 ORDER BY 1"
                );
                let rows = client
                    .query(
                        &sql,
                        &[city, intersection, approach, &from, &secs(range), &range.to],
                    )
                    .await
                    .map_err(StoreError::from)?;
                for r in rows {
                    let p = Point {
                        t: r.get(0),
                        n: r.get::<_, i64>(1) as u64,
                        avg: r.get(2),
                        max: r.get(3),
                    };
                    // A bucket split across the watermark is merged.
                    match points.last_mut() {
                        Some(last) if last.t == p.t => {
                            let n = last.n + p.n;
                            last.avg = (last.avg * last.n as f64 + p.avg * p.n as f64) / n as f64;
                            last.max = last.max.max(p.max);
                            last.n = n;
                        }
                        _ => points.push(p),
                    }
                }
                Ok(HistoryAnswer::Series(points))
            }
            HistoryQuery::Kpi {
                city,
                service,
                metric,
                range,
            } => {
                let rows = client
                    .query(
                        "SELECT to_timestamp(floor(extract(epoch FROM ts)::float8 / $4::float8) * $4::float8) AS t, count(*), avg(value), max(value)
                         FROM kpi_samples WHERE city = $1 AND service = $2 AND metric = $3 AND ts >= $5 AND ts < $6
                         GROUP BY 1 ORDER BY 1",
                        &[city, service, metric, &secs(range), &range.from, &range.to],
                    )
                    .await
                    .map_err(StoreError::from)?;
                Ok(HistoryAnswer::Series(
                    rows.iter()
                        .map(|r| Point {
                            t: r.get(0),
                            n: r.get::<_, i64>(1) as u64,
                            avg: r.get(2),
                            max: r.get(3),
                        })
                        .collect(),
                ))
            }
            HistoryQuery::Commands {
                city,
                intersection,
                range,
            } => {
                let rows = client
                    .query(
                        "SELECT c.payload, c.rx, a.status, a.reason, a.ts
                         FROM commands c
                         LEFT JOIN LATERAL (SELECT status, reason, ts FROM command_acks a
                                            WHERE a.command_id = c.command_id ORDER BY a.rx LIMIT 1) a ON true
                         WHERE c.city = $1 AND c.intersection = $2 AND c.ts >= $3 AND c.ts < $4
                         ORDER BY c.ts DESC LIMIT $5",
                        &[city, intersection, &range.from, &range.to, &(super::history::COMMANDS_MAX as i64)],
                    )
                    .await
                    .map_err(StoreError::from)?;
                Ok(HistoryAnswer::Commands(
                    rows.iter()
                        .filter_map(|r| {
                            Some(super::history::CommandRecord {
                                command: serde_json::from_value(r.get::<_, serde_json::Value>(0))
                                    .ok()?,
                                rx: r.get(1),
                                status: r.get(2),
                                reason: r.get(3),
                                ack_ts: r.get(4),
                            })
                        })
                        .collect(),
                ))
            }
            HistoryQuery::Alerts { city, range } => {
                let rows = client
                    .query(
                        "SELECT payload FROM alert_events WHERE city = $1 AND ts >= $2 AND ts < $3
                         ORDER BY ts, rx LIMIT $4",
                        &[
                            city,
                            &range.from,
                            &range.to,
                            &(super::history::ALERTS_MAX as i64),
                        ],
                    )
                    .await
                    .map_err(StoreError::from)?;
                Ok(HistoryAnswer::Alerts(
                    rows.iter()
                        .filter_map(|r| {
                            serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()
                        })
                        .collect(),
                ))
            }
            HistoryQuery::CallTimeline { city, call_id } => {
                let rows = client
                    .query(
                        "SELECT payload FROM call_events WHERE city = $1 AND call_id = $2 ORDER BY ts, rx LIMIT $3",
                        &[city, call_id, &(super::history::CALL_TIMELINE_MAX as i64)],
                    )
                    .await
                    .map_err(StoreError::from)?;
                // Rows were validated before they were written; one that no
                // longer reads as a call event (a newer contract) is skipped.
                Ok(HistoryAnswer::CallEvents(
                    rows.iter()
                        .filter_map(|r| {
                            serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()
                        })
                        .collect(),
                ))
            }
            HistoryQuery::Units { city, unit, range } => {
                let rows = client
                    .query(
                        "SELECT ts, unit, agency, status, lat, lon, call_id FROM unit_status
                         WHERE city = $1 AND ($2::text IS NULL OR unit = $2) AND ts >= $3 AND ts < $4 ORDER BY ts LIMIT 10000",
                        &[city, unit, &range.from, &range.to],
                    )
                    .await
                    .map_err(StoreError::from)?;
                Ok(HistoryAnswer::Units(
                    rows.iter()
                        .map(|r| UnitRecord {
                            ts: r.get(0),
                            unit: r.get(1),
                            agency: r.get(2),
                            status: r.get(3),
                            lat: r.get(4),
                            lon: r.get(5),
                            call_id: r.get(6),
                        })
                        .collect(),
                ))
            }
            HistoryQuery::Calls {
                city,
                line,
                category,
                range,
            } => {
                let line = line.map(|l| l.as_str().to_owned());
                let category = category.map(|c| c.as_str().to_owned());
                let rows = client
                    .query(
                        "SELECT to_timestamp(floor(extract(epoch FROM received_at)::float8 / $4::float8) * $4::float8) AS t, count(*),
                                count(answer_s), count(*) FILTER (WHERE answer_s <= 15), count(*) FILTER (WHERE answer_s <= 20),
                                count(abandoned_at), avg(answer_s)::float8
                         FROM calls WHERE city = $1 AND ($2::text IS NULL OR line = $2) AND ($3::text IS NULL OR category = $3)
                           AND received_at >= $5 AND received_at < $6 GROUP BY 1 ORDER BY 1",
                        &[city, &line, &category, &secs(range), &range.from, &range.to],
                    )
                    .await
                    .map_err(StoreError::from)?;
                let n = |r: &tokio_postgres::Row, i| r.get::<_, i64>(i) as u64;
                Ok(HistoryAnswer::Calls(
                    rows.iter()
                        .map(|r| CallBucket {
                            t: r.get(0),
                            received: n(r, 1),
                            answered: n(r, 2),
                            answered_within_15s: n(r, 3),
                            answered_within_20s: n(r, 4),
                            abandoned: n(r, 5),
                            answer_s_avg: r.get(6),
                        })
                        .collect(),
                ))
            }
        }
    }

    /// Messages to replay into a fresh live state: intersection info and latest
    /// state, latest unit and KPI values, today's and all open calls' events,
    /// today's app events, recent commands. In source-time order per kind.
    /// Without `events`, not the call and app events (a replay starting
    /// from a checkpoint has them to its moment).
    pub async fn restore(
        &self,
        day_start: DateTime<Utc>,
        at: Option<DateTime<Utc>>,
        events: bool,
    ) -> Result<Vec<(Topic, Message, DateTime<Utc>)>, StoreError> {
        let client = self.pool.get().await.map_err(StoreError::from)?;
        let mut out = Vec::new();
        let parse = stored_topic;
        for r in client
            .query(
                // At `at`: the junctions known by then (an info re-sent since
                // replaced the row's time, so also those with telemetry).
                "SELECT i.city, i.intersection, i.info, i.rx FROM intersections i
                 WHERE $1::timestamptz IS NULL OR i.rx <= $1
                    OR EXISTS (SELECT 1 FROM atcs_state s WHERE s.city = i.city AND s.intersection = i.intersection
                               AND s.ts <= $1 AND s.ts > $1 - interval '1 day')",
                &[&at],
            )
            .await
            .map_err(StoreError::from)?
        {
            let (city, i): (String, String) = (r.get(0), r.get(1));
            if let Ok(info) = serde_json::from_value::<IntersectionInfo>(r.get(2)) {
                out.push((
                    parse(&format!("city/{city}/atcs/{i}/info"))?,
                    Message::IntersectionInfo(Box::new(info)),
                    r.get(3),
                ));
            }
        }
        // The last state of each junction, if it is of the last 15 minutes:
        // the junctions by a walk of the (city, intersection, ts) index, then
        // one probe each (90 ms over a month of 2,000 junctions; joining the
        // per-approach view to the window's newest times read every row of
        // the table: 51 s). Rows of the v1 table (before one row per
        // message) are not read: they are older than any restart's window.
        let rows = client
            .query(
                "WITH RECURSIVE j AS (
                     (SELECT city, intersection FROM atcs_state ORDER BY city, intersection LIMIT 1)
                     UNION ALL
                     SELECT n.city, n.intersection FROM j
                     CROSS JOIN LATERAL (SELECT city, intersection FROM atcs_state t
                                         WHERE (t.city, t.intersection) > (j.city, j.intersection)
                                         ORDER BY city, intersection LIMIT 1) n)
                 SELECT s.ts, j.city, j.intersection, s.mode, s.plan, s.cycle_s, s.phase, s.rx, s.phase_label,
                        s.approach, s.green_s, s.flow_vph, s.queue_m, s.saturation, s.detector_ok
                 FROM j
                 CROSS JOIN LATERAL (
                     SELECT * FROM atcs_state s
                     WHERE s.city = j.city AND s.intersection = j.intersection
                       AND s.ts > coalesce($1, now()) - interval '15 minutes' AND ($1 IS NULL OR s.ts <= $1)
                     ORDER BY s.ts DESC LIMIT 1) s",
                &[&at],
            )
            .await
            .map_err(StoreError::from)?;
        for r in rows {
            out.push(junction_state(&r)?);
        }
        // Each unit's latest status and latest order.
        for (table, leaf) in [
            ("unit_status", "status"),
            ("unit_assignments", "assignment"),
        ] {
            // Every unit by a walk of the (city, unit, ts) index, then its
            // newest row: a month of statuses is not read (DISTINCT ON was).
            let sql = format!(
                "WITH RECURSIVE units AS (
                     (SELECT city, unit FROM {table} ORDER BY city, unit LIMIT 1)
                     UNION ALL
                     SELECT n.city, n.unit FROM units u
                     CROSS JOIN LATERAL (SELECT city, unit FROM {table} t WHERE (t.city, t.unit) > (u.city, u.unit)
                                         ORDER BY city, unit LIMIT 1) n)
                 SELECT u.city, u.unit, l.payload, l.rx FROM units u
                 CROSS JOIN LATERAL (SELECT payload, rx FROM {table} t
                                     WHERE t.city = u.city AND t.unit = u.unit AND ($1::timestamptz IS NULL OR t.ts <= $1)
                                     ORDER BY t.ts DESC LIMIT 1) l"
            );
            for r in client.query(&sql, &[&at]).await.map_err(StoreError::from)? {
                let (city, unit): (String, String) = (r.get(0), r.get(1));
                if let Some((topic, msg)) = unit_message(&city, &unit, leaf, r.get(2))? {
                    out.push((topic, msg, r.get(3)));
                }
            }
        }
        for r in client
            .query(
                // Each KPI by a walk of the primary key, then its newest sample.
                "WITH RECURSIVE kpis AS (
                     (SELECT city, service, metric FROM kpi_samples ORDER BY city, service, metric LIMIT 1)
                     UNION ALL
                     SELECT n.city, n.service, n.metric FROM kpis k
                     CROSS JOIN LATERAL (SELECT city, service, metric FROM kpi_samples s
                                         WHERE (s.city, s.service, s.metric) > (k.city, k.service, k.metric)
                                         ORDER BY city, service, metric LIMIT 1) n)
                 SELECT k.city, k.service, l.ts, k.metric, l.value, l.unit, l.target, l.window_s, l.rx FROM kpis k
                 CROSS JOIN LATERAL (SELECT ts, value, unit, target, window_s, rx FROM kpi_samples s
                                     WHERE s.city = k.city AND s.service = k.service AND s.metric = k.metric
                                       AND ($1::timestamptz IS NULL OR s.ts <= $1)
                                     ORDER BY s.ts DESC LIMIT 1) l",
                &[&at],
            )
            .await
            .map_err(StoreError::from)?
        {
            out.push(kpi_sample(&r)?);
        }
        if events {
            for r in client
                .query(
                    // The day's, and those of calls still open (at `at`: not
                    // closed, abandoned or transferred by then).
                    "SELECT e.city, e.payload, e.rx FROM call_events e
                     WHERE ($2::timestamptz IS NULL OR e.ts <= $2)
                       AND (e.ts >= $1 OR EXISTS (SELECT 1 FROM calls c WHERE c.city = e.city AND c.call_id = e.call_id
                              AND CASE WHEN $2 IS NULL THEN c.open
                                       ELSE c.received_at <= $2
                                            AND coalesce(least(c.closed_at, c.abandoned_at, c.transferred_at), 'infinity') > $2 END))
                     ORDER BY e.ts",
                    &[&day_start, &at],
                )
                .await
                .map_err(StoreError::from)?
            {
                let city: String = r.get(0);
                if let Ok(m) = serde_json::from_value::<CallEvent>(r.get(1)) {
                    out.push((parse(&format!("city/{city}/calls/{}", m.line.as_str()))?, Message::CallEvent(Box::new(m)), r.get(2)));
                }
            }
            for r in client
                .query(
                    "SELECT city, service, payload, rx FROM app_events
                     WHERE ts >= $1 AND ($2::timestamptz IS NULL OR ts <= $2) ORDER BY ts",
                    &[&day_start, &at],
                )
                .await
                .map_err(StoreError::from)?
            {
                let (city, service): (String, String) = (r.get(0), r.get(1));
                if let Ok(m) = serde_json::from_value::<AppEvent>(r.get(2)) {
                    out.push((
                        parse(&format!("city/{city}/apps/{service}/events"))?,
                        Message::AppEvent(Box::new(m)),
                        r.get(3),
                    ));
                }
            }
        }
        for r in client
            .query(
                "SELECT city, intersection, payload, rx FROM commands
                 WHERE $1::timestamptz IS NULL OR ts <= $1 ORDER BY ts DESC LIMIT 500",
                &[&at],
            )
            .await
            .map_err(StoreError::from)?
            .into_iter()
            .rev()
        {
            let (city, i): (String, String) = (r.get(0), r.get(1));
            if let Ok(m) = serde_json::from_value::<Command>(r.get(2)) {
                out.push((
                    parse(&format!("city/{city}/atcs/{i}/command"))?,
                    Message::Command(Box::new(m)),
                    r.get(3),
                ));
            }
        }
        // Their controllers' answers: without them every restored command
        // would be shown pending, then timed out.
        for r in client
            .query(
                "SELECT a.city, a.intersection, a.command_id, a.ts, a.status, a.reason, a.rx
                 FROM command_acks a
                 JOIN (SELECT command_id FROM commands WHERE $1::timestamptz IS NULL OR ts <= $1
                       ORDER BY ts DESC LIMIT 500) c USING (command_id)
                 WHERE $1 IS NULL OR a.ts <= $1
                 ORDER BY a.rx",
                &[&at],
            )
            .await
            .map_err(StoreError::from)?
        {
            out.push(command_ack(&r)?);
        }
        // Alerts not back to normal: the newest transition of each.
        for r in client
            .query(
                "SELECT DISTINCT ON (alert_id) city, alert_id, payload, rx, state
                 FROM alert_events WHERE $1::timestamptz IS NULL OR ts <= $1
                 ORDER BY alert_id, ts DESC, rx DESC",
                &[&at],
            )
            .await
            .map_err(StoreError::from)?
        {
            let city: String = r.get(0);
            let id: uuid::Uuid = r.get(1);
            if let Ok(m) = serde_json::from_value::<crate::contract::Alert>(r.get(2)) {
                if m.is_live() {
                    out.push((
                        parse(&format!("city/{city}/alerts/{id}"))?,
                        Message::Alert(Box::new(m)),
                        r.get(3),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A node that stored telemetry ([`PgBackend::writers`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Writer {
    pub client_id: String,
    /// Receive time up to which its rows are in the rollup.
    pub watermark: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A topic the store wrote itself, parsed back.
pub(super) fn stored_topic(s: &str) -> Result<Topic, StoreError> {
    Topic::parse(s).map_err(|e| StoreError::Setup(e.to_string()))
}

/// A message rebuilt from a row of `atcs_state` read as `ts, city,
/// intersection, mode, plan, cycle_s, phase, rx, phase_label, approach,
/// green_s, flow_vph, queue_m, saturation, detector_ok`.
pub(super) fn junction_state(
    r: &tokio_postgres::Row,
) -> Result<(Topic, Message, DateTime<Utc>), StoreError> {
    let ts: DateTime<Utc> = r.get(0);
    let (city, intersection): (String, String) = (r.get(1), r.get(2));
    let ids: Vec<String> = r.get(9);
    let reals = |i: usize| -> Vec<f32> { r.get(i) };
    let (green, flow, queue, ds) = (reals(10), reals(11), reals(12), reals(13));
    let ok: Vec<bool> = r.get(14);
    let approaches = ids
        .into_iter()
        .enumerate()
        .map(|(k, id)| ApproachState {
            id,
            green_s: green.get(k).copied().map_or(0.0, real),
            flow_vph: flow.get(k).copied().map_or(0.0, real),
            queue_m: queue.get(k).copied().map_or(0.0, real),
            saturation: ds.get(k).copied().map_or(0.0, real),
            detector_ok: ok.get(k).copied().unwrap_or(false),
        })
        .collect();
    let mode: String = r.get(3);
    let state = IntersectionState {
        ts: ts.with_timezone(&crate::domain::wib()),
        intersection: intersection.clone(),
        mode: serde_json::from_value(serde_json::Value::String(mode))
            .unwrap_or(ControllerMode::Off),
        plan: r.get(4),
        cycle_s: real(r.get(5)),
        phase: match r.get::<_, Option<String>>(8) {
            Some(label) => PhaseLabel::new(label),
            None => PhaseLabel::number(r.get::<_, i32>(6).max(0) as u32),
        },
        phase_elapsed_s: 0.0,
        approaches,
    };
    Ok((
        stored_topic(&format!("city/{city}/atcs/{intersection}/state"))?,
        Message::IntersectionState(state.into()),
        r.get(7),
    ))
}

/// A unit's status (`leaf` "status") or order ("assignment") from its
/// stored payload; `None` if it no longer reads as one.
pub(super) fn unit_message(
    city: &str,
    unit: &str,
    leaf: &str,
    payload: serde_json::Value,
) -> Result<Option<(Topic, Message)>, StoreError> {
    let msg = match leaf {
        "status" => serde_json::from_value(payload).map(|m| Message::UnitStatus(Box::new(m))),
        _ => serde_json::from_value(payload).map(|m| Message::UnitAssignment(Box::new(m))),
    };
    match msg {
        Ok(msg) => Ok(Some((
            stored_topic(&format!("city/{city}/units/{unit}/{leaf}"))?,
            msg,
        ))),
        Err(_) => Ok(None),
    }
}

/// A KPI sample from a row read as `city, service, ts, metric, value, unit,
/// target, window_s, rx`.
pub(super) fn kpi_sample(
    r: &tokio_postgres::Row,
) -> Result<(Topic, Message, DateTime<Utc>), StoreError> {
    let (city, service): (String, String) = (r.get(0), r.get(1));
    let ts: DateTime<Utc> = r.get(2);
    let m = KpiSample {
        ts: ts.with_timezone(&crate::domain::wib()),
        metric: r.get(3),
        value: r.get(4),
        unit: r.get(5),
        target: r.get(6),
        window_s: r.get(7),
    };
    Ok((
        stored_topic(&format!("city/{city}/kpi/{service}"))?,
        Message::KpiSample(Box::new(m)),
        r.get(8),
    ))
}

/// A command's answer from a row read as `city, intersection, command_id,
/// ts, status, reason, rx`.
pub(super) fn command_ack(
    r: &tokio_postgres::Row,
) -> Result<(Topic, Message, DateTime<Utc>), StoreError> {
    let (city, i): (String, String) = (r.get(0), r.get(1));
    let status = match r.get::<_, &str>(4) {
        "applied" => AckStatus::Applied,
        _ => AckStatus::Rejected,
    };
    let ts: DateTime<Utc> = r.get(3);
    Ok((
        stored_topic(&format!("city/{city}/atcs/{i}/command/ack"))?,
        Message::CommandAck(Box::new(CommandAck {
            command_id: r.get(2),
            ts: ts.with_timezone(&crate::domain::wib()),
            status,
            reason: r.get(5),
        })),
        r.get(6),
    ))
}

/// A `real` column's value as the message had it: 31.7 stored as a 32-bit
/// float reads back as 31.700000762939453 when merely widened; its shortest
/// decimal form is the figure the controller sent.
fn real(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Binary COPY into `atcs_state`: one row per message, its approaches in arrays.
async fn write_parts(
    tx: &deadpool_postgres::Transaction<'_>,
    telemetry: &[TelemetryRow],
    events: &[EventRow],
    writer: Option<i16>,
) -> Result<(), StoreError> {
    if !telemetry.is_empty() {
        copy_telemetry(tx, telemetry, writer).await?;
    }
    if !events.is_empty() {
        write_events(tx, events).await?;
    }
    Ok(())
}

/// A part of a batch written on its own while isolating refused messages.
#[derive(Clone)]
enum Part {
    Telemetry(std::ops::Range<usize>),
    Events(std::ops::Range<usize>),
}

impl Part {
    fn len(&self) -> usize {
        match self {
            Part::Telemetry(r) | Part::Events(r) => r.len(),
        }
    }

    fn halves(self) -> [Part; 2] {
        match self {
            Part::Telemetry(r) => {
                let mid = r.start + r.len() / 2;
                [Part::Telemetry(r.start..mid), Part::Telemetry(mid..r.end)]
            }
            Part::Events(r) => {
                let mid = r.start + r.len() / 2;
                [Part::Events(r.start..mid), Part::Events(mid..r.end)]
            }
        }
    }
}

/// Writes `batch` in ever smaller parts, each under a savepoint, and returns
/// a dead letter for each single message the database refuses for its data.
/// Halving keeps it to about 2 log2(n) writes per refused message.
async fn isolate(
    tx: &mut deadpool_postgres::Transaction<'_>,
    batch: &Batch,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut refused = Vec::new();
    // Last first: the telemetry, then the events, each in order.
    let mut todo = vec![
        Part::Events(0..batch.events.len()),
        Part::Telemetry(0..batch.telemetry.len()),
    ];
    while let Some(part) = todo.pop() {
        if part.len() == 0 {
            continue;
        }
        let (telemetry, events) = match &part {
            Part::Telemetry(r) => (&batch.telemetry[r.clone()], &[][..]),
            Part::Events(r) => (&[][..], &batch.events[r.clone()]),
        };
        let savepoint = tx.savepoint("isolate").await?;
        match write_parts(&savepoint, telemetry, events, batch.writer).await {
            Ok(()) => savepoint.commit().await?,
            Err(e) if e.is_data_error() => {
                savepoint.rollback().await?;
                if part.len() > 1 {
                    let [first, second] = part.halves();
                    todo.push(second);
                    todo.push(first);
                    continue;
                }
                let why = Rejection::new(
                    RejectReason::StoreRefused,
                    format!("the database refused it: {e}"),
                );
                let dead = match (telemetry.first(), events.first()) {
                    (Some(t), _) => Some(DeadLetter::new(
                        format!("city/{}/atcs/{}/state", t.city, t.state.intersection).as_bytes(),
                        &Message::IntersectionState(t.state.clone()).to_json(),
                        &why,
                        t.rx,
                    )),
                    (_, Some(EventRow::Message { topic, msg, rx, .. })) => Some(DeadLetter::new(
                        topic.to_string().as_bytes(),
                        &msg.to_json(),
                        &why,
                        *rx,
                    )),
                    // A dead letter is made storable (no NUL) when it is made.
                    (_, Some(EventRow::Dead(d))) => {
                        tracing::error!(error = %e, topic = %d.topic, "the database refused a dead letter; it is kept in memory only");
                        None
                    }
                    _ => None,
                };
                refused.extend(dead);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(refused)
}

async fn insert_dead_letter(
    tx: &deadpool_postgres::Transaction<'_>,
    d: &DeadLetter,
) -> Result<(), StoreError> {
    let s = tx
        .prepare_cached(
            "INSERT INTO dead_letters (rx, topic, reason, detail, payload, payload_bytes) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &d.rx,
            &d.topic,
            &d.reason.as_str(),
            &d.detail,
            &d.payload,
            &(d.payload_bytes as i32),
        ],
    )
    .await?;
    Ok(())
}

async fn copy_telemetry(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[TelemetryRow],
    writer: Option<i16>,
) -> Result<(), StoreError> {
    let sink = tx
        .copy_in(
            "COPY atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx,
                              approach, green_s, flow_vph, queue_m, saturation, detector_ok, phase_label, writer) FROM STDIN BINARY",
        )
        .await
        .map_err(StoreError::from)?;
    let types = [
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::FLOAT4,
        Type::INT4,
        Type::TIMESTAMPTZ,
        Type::TEXT_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::BOOL_ARRAY,
        Type::TEXT,
        Type::INT2,
    ];
    let node = writer;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    let (mut green, mut flow, mut queue, mut saturation) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut detector = Vec::new();
    // In the order of `atcs_state_entity`: consecutive index insertions land
    // on the same leaf pages, and an intersection's rows of a batch sit
    // together in the table. Measured with `COPY` of a million bench rows into
    // the same table: 6.7-7.2 s sorted in 10,000-row batches, 7.1-8.9 s in
    // arrival order; 2.9 s without the index.
    let mut messages: Vec<&TelemetryRow> = rows.iter().collect();
    messages.sort_unstable_by(|a, b| {
        (&*a.city, a.state.intersection.as_str(), a.state.ts).cmp(&(
            &*b.city,
            b.state.intersection.as_str(),
            b.state.ts,
        ))
    });
    for r in messages {
        let s = &*r.state;
        let approach: Vec<&str> = s.approaches.iter().map(|a| a.id.as_str()).collect();
        green.clear();
        green.extend(s.approaches.iter().map(|a| a.green_s as f32));
        flow.clear();
        flow.extend(s.approaches.iter().map(|a| a.flow_vph as f32));
        queue.clear();
        queue.extend(s.approaches.iter().map(|a| a.queue_m as f32));
        saturation.clear();
        saturation.extend(s.approaches.iter().map(|a| a.saturation as f32));
        detector.clear();
        detector.extend(s.approaches.iter().map(|a| a.detector_ok));
        let (ts, city, mode) = (r.ts(), &*r.city, s.mode.as_str());
        let cycle_s = s.cycle_s as f32;
        // A numbered phase in `phase`; a lettered one in `phase_label`.
        let (phase, phase_label) = match s.phase.as_number() {
            Some(n) => (n as i32, None),
            None => (0, Some(s.phase.as_str())),
        };
        writer
            .as_mut()
            .write(&[
                &ts,
                &city,
                &s.intersection,
                &mode,
                &s.plan,
                &cycle_s,
                &phase,
                &r.rx,
                &approach,
                &green,
                &flow,
                &queue,
                &saturation,
                &detector,
                &phase_label,
                &node,
            ])
            .await
            .map_err(StoreError::from)?;
    }
    writer.finish().await.map_err(StoreError::from)?;
    Ok(())
}

/// Column vectors for one `INSERT ... SELECT * FROM UNNEST(...)`.
#[derive(Default)]
struct CallCols {
    id: Vec<Uuid>,
    ts: Vec<DateTime<Utc>>,
    city: Vec<String>,
    call: Vec<String>,
    line: Vec<String>,
    kind: Vec<String>,
    category: Vec<Option<String>>,
    priority: Vec<Option<i16>>,
    agency: Vec<Option<String>>,
    unit: Vec<Option<String>>,
    payload: Vec<serde_json::Value>,
    rx: Vec<DateTime<Utc>>,
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    json(v).as_str().unwrap_or_default().to_owned()
}

async fn write_events(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[EventRow],
) -> Result<(), StoreError> {
    let mut calls = CallCols::default();
    let mut projections: std::collections::HashMap<(String, String), (&Call, DateTime<Utc>)> =
        Default::default();
    for e in events {
        match e {
            EventRow::Message {
                topic,
                msg,
                rx,
                projection,
            } => match msg {
                Message::CallEvent(m) => {
                    calls.id.push(m.event_id);
                    calls.ts.push(m.ts.with_timezone(&Utc));
                    calls.city.push(topic.city().to_owned());
                    calls.call.push(m.call_id.clone());
                    calls.line.push(m.line.as_str().to_owned());
                    calls.kind.push(m.kind.as_str().to_owned());
                    calls
                        .category
                        .push(m.category.map(|c| c.as_str().to_owned()));
                    calls.priority.push(m.priority.map(i16::from));
                    calls.agency.push(m.agency.clone());
                    calls.unit.push(m.unit.clone());
                    calls.payload.push(json(m));
                    calls.rx.push(*rx);
                    if let Some(p) = projection {
                        projections.insert((p.city.clone(), p.call_id.clone()), (p, *rx));
                    }
                }
                Message::UnitStatus(m) => {
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO unit_status (ts, city, unit, agency, status, lat, lon, call_id, payload, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    let p: [&(dyn ToSql + Sync); 10] = [
                        &m.ts.with_timezone(&Utc),
                        &topic.city(),
                        &m.unit,
                        &m.agency,
                        &enum_str(&m.status),
                        &m.lat,
                        &m.lon,
                        &m.call_id,
                        &json(m),
                        rx,
                    ];
                    tx.execute(&s, &p).await.map_err(StoreError::from)?;
                }
                Message::KpiSample(m) => {
                    let Topic::Kpi { service, .. } = topic else {
                        continue;
                    };
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO kpi_samples (ts, city, service, metric, value, unit, target, window_s, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    tx.execute(
                        &s,
                        &[
                            &m.ts.with_timezone(&Utc),
                            &topic.city(),
                            service,
                            &m.metric,
                            &m.value,
                            &m.unit,
                            &m.target,
                            &m.window_s,
                            rx,
                        ],
                    )
                    .await
                    .map_err(StoreError::from)?;
                }
                Message::AppEvent(m) => {
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO app_events (event_id, ts, city, service, type, ref, opd, payload, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    tx.execute(
                        &s,
                        &[
                            &m.event_id,
                            &m.ts.with_timezone(&Utc),
                            &topic.city(),
                            &m.service,
                            &m.kind,
                            &m.reference,
                            &m.opd,
                            &json(m),
                            rx,
                        ],
                    )
                    .await
                    .map_err(StoreError::from)?;
                }
                Message::IntersectionInfo(m) => {
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO intersections (city, intersection, info, rx) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (city, intersection) DO UPDATE SET info = EXCLUDED.info, rx = EXCLUDED.rx",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    tx.execute(&s, &[&topic.city(), &m.intersection, &json(m), rx])
                        .await
                        .map_err(StoreError::from)?;
                }
                Message::UnitAssignment(m) => {
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO unit_assignments (assignment_id, ts, city, unit, action, call_id, issued_by, payload, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    let p: [&(dyn ToSql + Sync); 9] = [
                        &m.assignment_id,
                        &m.ts.with_timezone(&Utc),
                        &topic.city(),
                        &m.unit,
                        &enum_str(&m.action),
                        &m.call_id,
                        &m.issued_by,
                        &json(m),
                        rx,
                    ];
                    tx.execute(&s, &p).await.map_err(StoreError::from)?;
                }
                Message::Command(m) => {
                    let Topic::Command { intersection, .. } = topic else {
                        continue;
                    };
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO commands (command_id, ts, city, intersection, action, issued_by, payload, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    tx.execute(
                        &s,
                        &[
                            &m.command_id,
                            &m.ts.with_timezone(&Utc),
                            &topic.city(),
                            intersection,
                            &enum_str(&m.action),
                            &m.issued_by,
                            &json(m),
                            rx,
                        ],
                    )
                    .await
                    .map_err(StoreError::from)?;
                }
                Message::CommandAck(m) => {
                    let Topic::CommandAck { intersection, .. } = topic else {
                        continue;
                    };
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO command_acks (command_id, ts, city, intersection, status, reason, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    tx.execute(
                        &s,
                        &[
                            &m.command_id,
                            &m.ts.with_timezone(&Utc),
                            &topic.city(),
                            intersection,
                            &enum_str(&m.status),
                            &m.reason,
                            rx,
                        ],
                    )
                    .await
                    .map_err(StoreError::from)?;
                }
                Message::Alert(m) => {
                    let s = tx
                        .prepare_cached(
                            "INSERT INTO alert_events (event_id, ts, city, alert_id, rule, entity, priority, state,
                                                       transition, by_whom, reason, payload, rx)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
                        )
                        .await
                        .map_err(StoreError::from)?;
                    let p: [&(dyn ToSql + Sync); 13] = [
                        &m.event_id,
                        &m.ts.with_timezone(&Utc),
                        &topic.city(),
                        &m.alert_id,
                        &m.rule.as_str(),
                        &m.entity,
                        &(m.priority as i16),
                        &m.state.as_str(),
                        &m.transition.as_str(),
                        &m.by,
                        &m.reason,
                        &json(m),
                        rx,
                    ];
                    tx.execute(&s, &p).await.map_err(StoreError::from)?;
                }
                // Telemetry goes through COPY, never here.
                Message::IntersectionState(_) => {}
            },
            EventRow::AckOnly => {}
            EventRow::Projection { call, rx } => {
                projections.insert((call.city.clone(), call.call_id.clone()), (&**call, *rx));
            }
            EventRow::Dead(d) => insert_dead_letter(tx, d).await?,
        }
    }
    if !calls.id.is_empty() {
        let s = tx
            .prepare_cached(
                "INSERT INTO call_events (event_id, ts, city, call_id, line, type, category, priority, agency, unit, payload, rx)
                 SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                      $8::int2[], $9::text[], $10::text[], $11::jsonb[], $12::timestamptz[])
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(StoreError::from)?;
        tx.execute(
            &s,
            &[
                &calls.id,
                &calls.ts,
                &calls.city,
                &calls.call,
                &calls.line,
                &calls.kind,
                &calls.category,
                &calls.priority,
                &calls.agency,
                &calls.unit,
                &calls.payload,
                &calls.rx,
            ],
        )
        .await
        .map_err(StoreError::from)?;
    }
    if !projections.is_empty() {
        let s = tx
            .prepare_cached(
                "INSERT INTO calls (city, call_id, line, stage, open, category, priority, agency, unit, received_at, answered_at,
                                    classified_at, dispatched_at, en_route_at, on_scene_at, closed_at, abandoned_at, transferred_at,
                                    answer_s, dispatch_s, projection, rx)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
                 ON CONFLICT (city, call_id) DO UPDATE SET line = EXCLUDED.line, stage = EXCLUDED.stage, open = EXCLUDED.open,
                     category = EXCLUDED.category, priority = EXCLUDED.priority, agency = EXCLUDED.agency, unit = EXCLUDED.unit,
                     received_at = EXCLUDED.received_at, answered_at = EXCLUDED.answered_at, classified_at = EXCLUDED.classified_at,
                     dispatched_at = EXCLUDED.dispatched_at, en_route_at = EXCLUDED.en_route_at, on_scene_at = EXCLUDED.on_scene_at,
                     closed_at = EXCLUDED.closed_at, abandoned_at = EXCLUDED.abandoned_at, transferred_at = EXCLUDED.transferred_at,
                     answer_s = EXCLUDED.answer_s, dispatch_s = EXCLUDED.dispatch_s, projection = EXCLUDED.projection, rx = EXCLUDED.rx
                 -- The projection that holds the most events stays, whoever writes it and
                 -- in whatever order: with several nodes each writes its own (the same one
                 -- once all have applied the same events), and a late writer that has
                 -- seen fewer of the call's events does not take the row back.
                 WHERE (EXCLUDED.projection->>'events')::int >= coalesce((calls.projection->>'events')::int, 0)",
            )
            .await
            .map_err(StoreError::from)?;
        // In key order: with several nodes, two writers' transactions update
        // the same calls rows, and in each its own hash order they could
        // wait on each other (a deadlock: one batch refused, retried late).
        let mut projections: Vec<_> = projections.into_iter().collect();
        projections.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, (p, rx)) in &projections {
            let at = |k: CallEventType| p.stages.get(&k).map(|t| t.with_timezone(&Utc));
            // The columns received_at .. transferred_at, in `CallEventType::ALL` order.
            let stages: Vec<Option<DateTime<Utc>>> =
                CallEventType::ALL.into_iter().map(at).collect();
            let category = p.category.map(|c| c.as_str().to_owned());
            let priority = p.priority.map(i16::from);
            let (answer_s, dispatch_s) =
                (p.answer_s.map(|v| v as f32), p.dispatch_s.map(|v| v as f32));
            let projection = json(*p);
            tx.execute(
                &s,
                &[
                    &p.city,
                    &p.call_id,
                    &p.line.as_str(),
                    &p.stage.as_str(),
                    &p.open,
                    &category,
                    &priority,
                    &p.agency,
                    &p.unit,
                    &stages[0],
                    &stages[1],
                    &stages[2],
                    &stages[3],
                    &stages[4],
                    &stages[5],
                    &stages[6],
                    &stages[7],
                    &stages[8],
                    &answer_s,
                    &dispatch_s,
                    &projection,
                    rx,
                ],
            )
            .await
            .map_err(StoreError::from)?;
        }
    }
    Ok(())
}
