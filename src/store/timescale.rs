//! The TimescaleDB path, small and guarded: when the `timescaledb` extension
//! is available, the time-series tables of the shared schema become
//! hypertables with compression and retention policies. Every step is
//! idempotent (`if_not_exists`), so it runs at every start. On plain
//! PostgreSQL nothing here runs and Kendali keeps the retention itself.
//! Kendali keeps the per-minute rollup on both: since schema v2 the
//! telemetry's approaches are arrays, which a continuous aggregate cannot
//! unnest.
//!
//! Retention follows `database.telemetry_retention_days` (the ATCS
//! telemetry) and `database.retention_days` (the other hypertables): a
//! policy whose interval differs from the settings is replaced at start.
//! The tables that are not hypertables (alerts, dead letters, the rollup)
//! Kendali prunes itself on both flavours. TimescaleDB's background jobs can
//! fail unseen: [`failed_jobs`] reads their last runs for `/readyz`,
//! `/metrics` and the log. Tested in a throwaway cluster that preloads the
//! extension (`tests/room/timescale.rs`).

use deadpool_postgres::Pool;

use super::postgres::Flavour;
use super::StoreError;

/// Time-series tables and their time column.
const HYPERTABLES: [(&str, &str); 6] = [
    ("atcs_state", "ts"),
    ("call_events", "ts"),
    ("unit_status", "ts"),
    ("kpi_samples", "ts"),
    ("app_events", "ts"),
    ("command_acks", "ts"),
];

pub async fn setup(pool: &Pool) -> Result<Flavour, StoreError> {
    let client = pool.get().await?;
    let available = client
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
            &[],
        )
        .await?
        .is_some();
    if !available {
        return Ok(Flavour::Plain);
    }
    let steps: Vec<String> = std::iter::once("CREATE EXTENSION IF NOT EXISTS timescaledb".to_owned())
        .chain(HYPERTABLES.iter().flat_map(|(t, c)| {
            [
                // migrate_data: the tables may already hold rows from a plain start.
                format!("SELECT create_hypertable('{t}', by_range('{c}', INTERVAL '1 day'), if_not_exists => true, migrate_data => true)"),
                format!("ALTER TABLE {t} SET (timescaledb.compress)"),
                format!("SELECT add_compression_policy('{t}', INTERVAL '2 days', if_not_exists => true)"),
            ]
        }))
        .collect();
    for step in steps {
        if let Err(e) = client.batch_execute(&step).await {
            // A half-converted schema still works as plain PostgreSQL: say so
            // and carry on, with the server's own message (the extension must
            // be preloaded, a unique index without the time column...).
            let error = StoreError::from(e);
            tracing::error!(%error, step = %step, "TimescaleDB setup step failed; continuing on plain PostgreSQL");
            return Ok(Flavour::Plain);
        }
    }
    Ok(Flavour::Timescale)
}

/// Sets each hypertable's retention policy to the settings' days, replacing
/// a policy whose interval differs (the settings changed since it was made).
/// Returns how many policies were made or replaced.
pub async fn retention_policies(
    pool: &Pool,
    telemetry_days: i64,
    other_days: i64,
) -> Result<usize, StoreError> {
    let client = pool.get().await?;
    let mut changed = 0;
    for (t, _) in HYPERTABLES {
        let days = if t == "atcs_state" {
            telemetry_days
        } else {
            other_days
        };
        let current = client
            .query_opt(
                "SELECT (config->>'drop_after')::interval = make_interval(days => $2::int) \
                 FROM timescaledb_information.jobs \
                 WHERE proc_name = 'policy_retention' AND hypertable_name = $1",
                &[&t, &(days as i32)],
            )
            .await?
            .map(|r| r.get::<_, Option<bool>>(0).unwrap_or(false));
        if current == Some(true) {
            continue;
        }
        if current.is_some() {
            client
                .execute("SELECT remove_retention_policy($1::text::regclass)", &[&t])
                .await?;
        }
        client
            .execute(
                "SELECT add_retention_policy($1::text::regclass, make_interval(days => $2::int))",
                &[&t, &(days as i32)],
            )
            .await?;
        tracing::info!(
            table = t,
            days,
            replaced = current.is_some(),
            "TimescaleDB retention policy set"
        );
        changed += 1;
    }
    Ok(changed)
}

/// A TimescaleDB background job whose last run failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailedJob {
    pub job_id: i32,
    pub proc_name: String,
    pub hypertable: Option<String>,
    pub failures: i64,
    /// The last error's message, when TimescaleDB kept it.
    pub error: Option<String>,
}

/// The background jobs whose last run failed (TimescaleDB's job statistics
/// and error log).
pub async fn failed_jobs(pool: &Pool) -> Result<Vec<FailedJob>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT s.job_id, j.proc_name::text, s.hypertable_name::text, s.total_failures, \
                    (SELECT e.err_message FROM timescaledb_information.job_errors e \
                      WHERE e.job_id = s.job_id ORDER BY e.start_time DESC LIMIT 1) \
               FROM timescaledb_information.job_stats s \
               JOIN timescaledb_information.jobs j ON j.job_id = s.job_id \
              WHERE s.last_run_status = 'Failed' ORDER BY s.job_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FailedJob {
            job_id: r.get(0),
            proc_name: r.get(1),
            hypertable: r.get(2),
            failures: r.get(3),
            error: r.get(4),
        })
        .collect())
}
