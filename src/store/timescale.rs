//! The TimescaleDB path, small and guarded: when the `timescaledb` extension
//! is available, the time-series tables of the shared schema become
//! hypertables with compression and retention policies. Every step is
//! idempotent (`if_not_exists`), so it runs at every start. On plain
//! PostgreSQL nothing here runs and Kendali keeps the retention itself.
//! Kendali keeps the per-minute rollup on both: since schema v2 the
//! telemetry's approaches are arrays, which a continuous aggregate cannot
//! unnest.
//!
//! TimescaleDB is not installed on the development machine: this path is
//! reviewed, not tested; the plain path is the tested one.

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
                format!(
                    "SELECT add_retention_policy('{t}', INTERVAL '{}', if_not_exists => true)",
                    if *t == "atcs_state" { "30 days" } else { "400 days" }
                ),
            ]
        }))
        .collect();
    for step in steps {
        if let Err(e) = client.batch_execute(&step).await {
            // A half-converted schema still works as plain PostgreSQL: say so and carry on.
            tracing::error!(error = %e, step = %step, "TimescaleDB setup step failed; continuing on plain PostgreSQL");
            return Ok(Flavour::Plain);
        }
    }
    Ok(Flavour::Timescale)
}
