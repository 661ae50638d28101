//! What a replay reads to go on from a state it rebuilt: every message of
//! a short span of source time, `(from, to]`, so that a replay's state at
//! `from` (its checkpoint) becomes its state at `to` without reading the
//! day again (`GET /api/state?at=`, `web::wall::replay`).
//!
//! It also keeps the replay checkpoints (`replay_checkpoints`, schema v11)
//! and reads the events after one.
//!
//! A restore reads each entity's newest message; this reads all of them,
//! in source-time order per kind, the kinds in the restore's order, and the
//! alerts' transitions to normal too (the state drops those alerts).

use chrono::{DateTime, Utc};

use super::postgres::{
    command_ack, junction_state, kpi_sample, stored_topic as topic, unit_message, PgBackend,
};
use super::StoreError;
use crate::contract::{AppEvent, CallEvent, Command, IntersectionInfo, Message, Topic};

type Stored = (Topic, Message, DateTime<Utc>);

impl PgBackend {
    /// Every message with its source time in `(from, to]`.
    pub async fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Stored>, StoreError> {
        let client = self.pool().get().await.map_err(StoreError::from)?;
        let q = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .query(sql, &[&from, &to])
                    .await
                    .map_err(StoreError::from)
            }
        };
        let mut out = Vec::new();
        // A junction's info row holds its newest info, timed by its receipt.
        for r in q("SELECT city, intersection, info, rx FROM intersections
                    WHERE rx > $1 AND rx <= $2 ORDER BY rx")
        .await?
        {
            let (city, i): (String, String) = (r.get(0), r.get(1));
            if let Ok(info) = serde_json::from_value::<IntersectionInfo>(r.get(2)) {
                let t = topic(&format!("city/{city}/atcs/{i}/info"))?;
                out.push((t, Message::IntersectionInfo(Box::new(info)), r.get(3)));
            }
        }
        for r in q(
            "SELECT ts, city, intersection, mode, plan, cycle_s, phase, rx, phase_label,
                    approach, green_s, flow_vph, queue_m, saturation, detector_ok
             FROM atcs_state WHERE ts > $1 AND ts <= $2 ORDER BY ts",
        )
        .await?
        {
            out.push(junction_state(&r)?);
        }
        for (rows, leaf) in [
            (
                q("SELECT city, unit, payload, rx FROM unit_status
                   WHERE ts > $1 AND ts <= $2 ORDER BY ts")
                .await?,
                "status",
            ),
            (
                q("SELECT city, unit, payload, rx FROM unit_assignments
                   WHERE ts > $1 AND ts <= $2 ORDER BY ts")
                .await?,
                "assignment",
            ),
        ] {
            for r in rows {
                let (city, unit): (String, String) = (r.get(0), r.get(1));
                if let Some((t, msg)) = unit_message(&city, &unit, leaf, r.get(2))? {
                    out.push((t, msg, r.get(3)));
                }
            }
        }
        for r in q(
            "SELECT city, service, ts, metric, value, unit, target, window_s, rx FROM kpi_samples
             WHERE ts > $1 AND ts <= $2 ORDER BY ts",
        )
        .await?
        {
            out.push(kpi_sample(&r)?);
        }
        events(&client, from, to, &mut out).await?;
        for r in q("SELECT city, intersection, payload, rx FROM commands
                    WHERE ts > $1 AND ts <= $2 ORDER BY ts")
        .await?
        {
            let (city, i): (String, String) = (r.get(0), r.get(1));
            if let Ok(m) = serde_json::from_value::<Command>(r.get(2)) {
                let t = topic(&format!("city/{city}/atcs/{i}/command"))?;
                out.push((t, Message::Command(Box::new(m)), r.get(3)));
            }
        }
        for r in q(
            "SELECT city, intersection, command_id, ts, status, reason, rx FROM command_acks
             WHERE ts > $1 AND ts <= $2 ORDER BY rx",
        )
        .await?
        {
            out.push(command_ack(&r)?);
        }
        for r in q("SELECT city, alert_id, payload, rx FROM alert_events
                    WHERE ts > $1 AND ts <= $2 ORDER BY ts, rx")
        .await?
        {
            let (city, id): (String, uuid::Uuid) = (r.get(0), r.get(1));
            if let Ok(m) = serde_json::from_value::<crate::contract::Alert>(r.get(2)) {
                let t = topic(&format!("city/{city}/alerts/{id}"))?;
                out.push((t, Message::Alert(Box::new(m)), r.get(3)));
            }
        }
        Ok(out)
    }

    /// Stores a replay checkpoint: the state's day part at `at` (JSON), of
    /// the day from `day_start`. A second one of the same moment is ignored.
    pub async fn save_checkpoint(
        &self,
        day_start: DateTime<Utc>,
        at: DateTime<Utc>,
        writer: &str,
        calls: usize,
        state: &[u8],
    ) -> Result<(), StoreError> {
        let client = self.pool().get().await.map_err(StoreError::from)?;
        client
            .execute(
                "INSERT INTO replay_checkpoints (day_start, at, writer, calls, state)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&day_start, &at, &writer, &(calls as i32), &state],
            )
            .await?;
        Ok(())
    }

    /// The newest checkpoint of the day from `day_start` at or before `at`:
    /// its moment and its state.
    pub async fn checkpoint_before(
        &self,
        day_start: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, Vec<u8>)>, StoreError> {
        let client = self.pool().get().await.map_err(StoreError::from)?;
        let row = client
            .query_opt(
                "SELECT at, state FROM replay_checkpoints WHERE day_start = $1 AND at <= $2
                 ORDER BY at DESC LIMIT 1",
                &[&day_start, &at],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The call and app events with their source time in `(from, to]`:
    /// what a replay checkpoint is advanced by.
    pub async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Stored>, StoreError> {
        let client = self.pool().get().await.map_err(StoreError::from)?;
        let mut out = Vec::new();
        events(&client, from, to, &mut out).await?;
        Ok(out)
    }
}

/// The call events, then the app events, of `(from, to]` into `out`.
async fn events(
    client: &tokio_postgres::Client,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut Vec<Stored>,
) -> Result<(), StoreError> {
    for r in client
        .query(
            "SELECT city, payload, rx FROM call_events WHERE ts > $1 AND ts <= $2 ORDER BY ts",
            &[&from, &to],
        )
        .await?
    {
        let city: String = r.get(0);
        if let Ok(m) = serde_json::from_value::<CallEvent>(r.get(1)) {
            let t = topic(&format!("city/{city}/calls/{}", m.line.as_str()))?;
            out.push((t, Message::CallEvent(Box::new(m)), r.get(2)));
        }
    }
    for r in client
            .query(
                "SELECT city, service, payload, rx FROM app_events WHERE ts > $1 AND ts <= $2 ORDER BY ts",
                &[&from, &to],
            )
            .await?
        {
            let (city, service): (String, String) = (r.get(0), r.get(1));
            if let Ok(m) = serde_json::from_value::<AppEvent>(r.get(2)) {
                let t = topic(&format!("city/{city}/apps/{service}/events"))?;
                out.push((t, Message::AppEvent(Box::new(m)), r.get(3)));
            }
        }
    Ok(())
}
