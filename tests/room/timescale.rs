//! The TimescaleDB path against the real extension, in a throwaway cluster
//! that preloads it: the time-series tables become hypertables and take the
//! bus's writes; retention policies follow `database.*retention_days` and are
//! replaced when the settings change; the tables Kendali keeps itself (alerts,
//! dead letters) are pruned on TimescaleDB too; a background job that fails
//! shows in `/readyz` and `/metrics`.

use crate::support::{self, Publisher, ThrowawayPostgres};

/// Each hypertable's retention, in days, as TimescaleDB's jobs hold it.
async fn retention_days(db: &tokio_postgres::Client) -> Vec<(String, i32, i64)> {
    db.query(
        "SELECT hypertable_name::text, extract(day FROM (config->>'drop_after')::interval)::int, \
                count(*) OVER (PARTITION BY hypertable_name) \
           FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' \
          ORDER BY hypertable_name",
        &[],
    )
    .await
    .expect("retention jobs")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn expected(telemetry: i32, other: i32) -> Vec<(String, i32, i64)> {
    let mut v: Vec<(String, i32, i64)> = [
        "app_events",
        "atcs_state",
        "call_events",
        "command_acks",
        "kpi_samples",
        "unit_status",
    ]
    .iter()
    .map(|t| {
        let days = if *t == "atcs_state" { telemetry } else { other };
        (t.to_string(), days, 1)
    })
    .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_timescaledb_retention_follows_the_settings_old_rows_are_pruned_and_a_failed_job_is_reported(
) {
    let test = "on_timescaledb_retention_follows_the_settings_old_rows_are_pruned_and_a_failed_job_is_reported";
    let Some(pg) = ThrowawayPostgres::start_timescale(test) else {
        return;
    };
    let mut settings = support::settings(None);
    settings.database.url = Some(pg.url.clone());
    settings.database.telemetry_retention_days = 7;
    settings.database.retention_days = 90;
    settings.database.maintenance_every_s = 1;
    settings.database.checkpoint_retention_days = 14;
    let app = support::spawn(settings.clone()).await;
    let ready = support::get_json(&app, "/readyz").await;
    assert_eq!(ready["store"], "timescaledb", "{ready}");
    let db = support::pg(&pg.url).await;
    let hypertables: i64 = db
        .query_one(
            "SELECT count(*) FROM timescaledb_information.hypertables",
            &[],
        )
        .await
        .expect("hypertables")
        .get(0);
    assert_eq!(hypertables, 6);
    assert_eq!(retention_days(&db).await, expected(7, 90));

    // The bus's writes land in the hypertables.
    let city = support::city("ts");
    let p = Publisher::connect(&app.mqtt_url).await;
    let (id, payload) = support::call_event("t1", "received", "112");
    p.send(&format!("city/{city}/calls/112"), 1, payload).await;
    support::call_stored(&db, &id, "the call event in its hypertable").await;

    // Alerts, dead letters and replay checkpoints (after
    // `checkpoint_retention_days`) are plain tables: Kendali prunes them itself.
    for days in [20, 10] {
        db.execute(
            "INSERT INTO replay_checkpoints (day_start, at, writer, calls, state) \
             VALUES (now() - make_interval(days => $1 + 1), now() - make_interval(days => $1), 'uji', 0, '{}')",
            &[&days],
        )
        .await
        .expect("replay checkpoint");
    }
    for days in [200, 10] {
        db.execute(
            "INSERT INTO dead_letters (rx, topic, reason, detail, payload, payload_bytes) \
             VALUES (now() - make_interval(days => $1), 'city/x/calls/112', 'invalid_json', 'test', '{', 1)",
            &[&days],
        )
        .await
        .expect("dead letter");
        db.execute(
            "INSERT INTO alert_events (event_id, ts, city, alert_id, rule, entity, priority, state, \
                                       transition, by_whom, payload, rx) \
             VALUES (gen_random_uuid(), now() - make_interval(days => $1), 'x', gen_random_uuid(), \
                     'feed_stale', 'feed:x', 3, 'normal', 'cleared', 'rule:feed_stale', '{}', now())",
            &[&days],
        )
        .await
        .expect("alert event");
    }
    support::eventually(10, "the rows older than 90 days (checkpoints: 14) pruned", || {
        let db = &db;
        async move {
            let r = db
                .query_one(
                    "SELECT (SELECT count(*) FROM dead_letters WHERE topic = 'city/x/calls/112' AND rx < now() - interval '90 days'), \
                            (SELECT count(*) FROM dead_letters WHERE topic = 'city/x/calls/112' AND rx > now() - interval '90 days'), \
                            (SELECT count(*) FROM alert_events WHERE city = 'x' AND ts < now() - interval '90 days'), \
                            (SELECT count(*) FROM alert_events WHERE city = 'x' AND ts > now() - interval '90 days'), \
                            (SELECT count(*) FROM replay_checkpoints WHERE writer = 'uji' AND at < now() - interval '14 days'), \
                            (SELECT count(*) FROM replay_checkpoints WHERE writer = 'uji' AND at > now() - interval '14 days')",
                    &[],
                )
                .await
                .ok()?;
            let (old_dl, new_dl, old_al, new_al): (i64, i64, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let (old_cp, new_cp): (i64, i64) = (r.get(4), r.get(5));
            assert_eq!((new_dl, new_al, new_cp), (1, 1, 1), "the recent rows are kept");
            (old_dl == 0 && old_al == 0 && old_cp == 0).then_some(())
        }
    })
    .await;

    // The retention policy drops the old chunks. TimescaleDB's background
    // workers fail every job on this PostgreSQL (see its README), so the job
    // is run from a session, as an operator would after seeing it failed.
    for days in [200, 1] {
        db.execute(
            "INSERT INTO app_events (event_id, ts, city, service, type, payload, rx) \
             VALUES (gen_random_uuid(), now() - make_interval(days => $1), 'x', 'perizinan', \
                     'submitted', '{}', now())",
            &[&days],
        )
        .await
        .expect("app event");
    }
    let retention_job: i32 = db
        .query_one(
            "SELECT job_id FROM timescaledb_information.jobs \
              WHERE proc_name = 'policy_retention' AND hypertable_name = 'app_events'",
            &[],
        )
        .await
        .expect("retention job")
        .get(0);
    db.execute("CALL run_job($1)", &[&retention_job])
        .await
        .expect("run the retention job");
    let (old, recent): (i64, i64) = {
        let r = db
            .query_one(
                "SELECT count(*) FILTER (WHERE ts < now() - interval '90 days'), \
                        count(*) FILTER (WHERE ts > now() - interval '90 days' AND city = 'x') \
                   FROM app_events",
                &[],
            )
            .await
            .expect("app events");
        (r.get(0), r.get(1))
    };
    assert_eq!(
        (old, recent),
        (0, 1),
        "the 90-day policy drops only the old chunk"
    );

    // A background job that fails is reported, with its error.
    db.batch_execute(
        "CREATE PROCEDURE kendali_test_fails(job_id int, config jsonb) LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'kendali test: this job fails'; END $$",
    )
    .await
    .expect("procedure");
    let job: i32 = db
        .query_one(
            "SELECT add_job('kendali_test_fails', '1 hour', initial_start => now())",
            &[],
        )
        .await
        .expect("add_job")
        .get(0);
    let failed = support::eventually(30, "the failed job in /readyz", || {
        let app = &app;
        async move {
            let ready = support::get_json(app, "/readyz").await;
            ready["timescaledb_failed_jobs"]
                .as_array()?
                .iter()
                .find(|j| j["job_id"] == job)
                .cloned()
        }
    })
    .await;
    assert_eq!(failed["proc_name"], "kendali_test_fails", "{failed}");
    let metrics = support::metrics(&app).await;
    assert!(
        support::metric(&metrics, "kendali_timescaledb_jobs_failed") >= 1.0,
        "{metrics}"
    );
    // And `kendali doctor` names it, with how to run it again.
    let (code, out) = support::kendali(
        &[
            "doctor",
            "--database-url",
            &pg.url,
            "--http",
            &support::free_addr().to_string(),
            "--broker-addr",
            &support::free_addr().to_string(),
            "--listen-s",
            "0",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "warnings, no failure: {out}");
    assert!(out.contains("ok   database  TimescaleDB 2."), "{out}");
    assert!(
        out.contains(&format!(
            "WARN database  TimescaleDB job {job} (kendali_test_fails)"
        )),
        "{out}"
    );
    assert!(out.contains(&format!("CALL run_job({job})")), "{out}");
    drop(p);
    app.stop().await;

    // Other settings at the next start: the policies are replaced, one per table.
    settings.database.telemetry_retention_days = 10;
    settings.database.retention_days = 120;
    // The embedded broker's port is not free again at once.
    settings.mqtt.broker_addr = support::free_addr();
    let app = support::spawn(settings).await;
    assert_eq!(retention_days(&db).await, expected(10, 120));
    app.stop().await;
}

/// Schema v10 (`atcs_state.writer`, for several nodes' rollup) applies to a
/// room already on TimescaleDB, whose telemetry hypertable has compression
/// on and a compressed chunk: the old rows read back (writer NULL) and new
/// rows take a writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_v10_applies_to_a_compressed_telemetry_hypertable() {
    let test = "schema_v10_applies_to_a_compressed_telemetry_hypertable";
    let Some(pg) = ThrowawayPostgres::start_timescale(test) else {
        return;
    };
    kendali::store::postgres::migrate_upto(&pg.url, Some(9))
        .await
        .expect("schema v9");
    let db = support::pg(&pg.url).await;
    db.batch_execute(
        "CREATE EXTENSION IF NOT EXISTS timescaledb;
         SELECT create_hypertable('atcs_state', by_range('ts', INTERVAL '1 day'), migrate_data => true);
         ALTER TABLE atcs_state SET (timescaledb.compress);
         INSERT INTO atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s,
                                 flow_vph, queue_m, saturation, detector_ok)
         VALUES (now() - interval '3 days', 'kota', 'j1', 'adaptive', 'pagi', 120, 1, now() - interval '3 days',
                 '{utara}', '{40}', '{1200}', '{60}', '{0.5}', '{true}');
         SELECT compress_chunk(c) FROM show_chunks('atcs_state') c;",
    )
    .await
    .expect("a v9 room on TimescaleDB with a compressed chunk");
    let applied = kendali::store::postgres::migrate(&pg.url)
        .await
        .expect("schema v10 applies");
    assert!(
        applied.iter().any(|v| v.contains("10")),
        "v10 applied: {applied:?}"
    );
    db.batch_execute(
        "INSERT INTO atcs_state (ts, city, intersection, mode, plan, cycle_s, phase, rx, approach, green_s,
                                 flow_vph, queue_m, saturation, detector_ok, writer)
         VALUES (now(), 'kota', 'j1', 'adaptive', 'pagi', 120, 1, now(),
                 '{utara}', '{40}', '{1200}', '{60}', '{0.6}', '{true}', 3)",
    )
    .await
    .expect("a row with its writer");
    let rows: Vec<(f32, Option<i16>)> = db
        .query(
            "SELECT saturation[1], writer FROM atcs_state WHERE city = 'kota' ORDER BY ts",
            &[],
        )
        .await
        .expect("read back")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(0.5, None), (0.6, Some(3))]);
}
