//! The store against the real PostgreSQL: migrations (and the upgrade of
//! schema v1's telemetry), every kind stored and read back, history on known
//! data and after a restart, the live state rebuilt at start-up; what the
//! database refuses is set aside, never retried for ever; history parameters
//! that name nothing get a 400. (Nothing lost across SIGKILLs, broker
//! restarts and database outages: `durability.rs`.)

use std::time::Duration;

use chrono::{DurationRound, Utc};
use serde_json::Value;

use crate::support::{self, Publisher};

fn wib(t: chrono::DateTime<Utc>) -> String {
    t.with_timezone(&kendali::domain::wib()).to_rfc3339()
}

async fn count(client: &tokio_postgres::Client, sql: &str, city: &str) -> i64 {
    client
        .query_one(sql, &[&city])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_of_schema_v1_reads_the_same_after_the_upgrade_to_one_row_per_message() {
    let Some(url) = support::postgres(
        "telemetry_of_schema_v1_reads_the_same_after_the_upgrade_to_one_row_per_message",
    )
    .await
    else {
        return;
    };
    kendali::store::postgres::migrate_upto(&url, Some(1))
        .await
        .expect("schema v1");
    let db = support::pg(&url).await;
    // Two messages of one junction, four approaches each, as v1 stored them.
    db.batch_execute(
        "INSERT INTO atcs_telemetry
         SELECT TIMESTAMPTZ '2026-11-23 03:00:00+00' + m * INTERVAL '20 seconds', 'kota', 'j1', a, 'adaptive', 'pagi',
                120, m, 30 + m, 1000 + m, 10 * i, i / 10.0, i <> 3, TIMESTAMPTZ '2026-11-23 03:00:01+00' + m * INTERVAL '20 seconds'
         FROM generate_series(0, 1) m, unnest(ARRAY['barat', 'selatan', 'timur', 'utara']) WITH ORDINALITY AS x(a, i)",
    )
    .await
    .unwrap();
    let read =
        "SELECT ts, approach, mode, phase, green_s, flow_vph, queue_m, saturation, detector_ok, rx
                FROM atcs_telemetry ORDER BY ts, approach";
    let rows = |r: Vec<tokio_postgres::Row>| -> Vec<String> {
        r.iter()
            .map(|r| {
                let ts: chrono::DateTime<Utc> = r.get(0);
                let rx: chrono::DateTime<Utc> = r.get(9);
                format!(
                    "{ts} {} {} {} {} {} {} {} {} {rx}",
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, i32>(3),
                    r.get::<_, f32>(4),
                    r.get::<_, f32>(5),
                    r.get::<_, f32>(6),
                    r.get::<_, f32>(7),
                    r.get::<_, bool>(8)
                )
            })
            .collect()
    };
    let before = rows(db.query(read, &[]).await.unwrap());
    assert_eq!(before.len(), 8);
    let applied = kendali::store::postgres::migrate_upto(&url, Some(2))
        .await
        .expect("v2");
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(
        rows(db.query(read, &[]).await.unwrap()),
        before,
        "the view gives back v1's rows"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM atcs_telemetry_v1 WHERE city = $1",
            "kota"
        )
        .await,
        8,
        "v1's rows stay in place, renamed (converting them would hold the start)"
    );
    // New telemetry goes in one row per message, beside them in the view.
    db.batch_execute(
        "INSERT INTO atcs_state VALUES (TIMESTAMPTZ '2026-11-23 03:01:00+00', 'kota', 'j1', 'adaptive', 'pagi', 120, 2,
             TIMESTAMPTZ '2026-11-23 03:01:01+00', ARRAY['barat', 'utara'], ARRAY[32, 33]::real[], ARRAY[1002, 1003]::real[],
             ARRAY[10, 40]::real[], ARRAY[0.1, 0.4]::real[], ARRAY[true, false])",
    )
    .await
    .unwrap();
    let after = rows(db.query(read, &[]).await.unwrap());
    assert_eq!(after.len(), 10);
    assert_eq!(after[..8], before[..], "ordered by time, v1's rows first");
    assert!(
        after[9].contains(" utara adaptive 2 33 1003 40 0.4 false "),
        "{}",
        after[9]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_to_an_empty_database_and_rerun_as_no_ops() {
    let Some(url) =
        support::postgres("migrations_apply_to_an_empty_database_and_rerun_as_no_ops").await
    else {
        return;
    };
    let applied = kendali::store::postgres::migrate(&url)
        .await
        .expect("migrations run");
    assert_eq!(
        applied.len(),
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .count()
    );
    assert!(
        kendali::store::postgres::migrate(&url)
            .await
            .expect("rerun")
            .is_empty(),
        "nothing applies twice"
    );
    let db = support::pg(&url).await;
    for table in [
        "atcs_telemetry",
        "atcs_minute",
        "intersections",
        "call_events",
        "calls",
        "unit_status",
        "kpi_samples",
        "app_events",
        "commands",
        "command_acks",
        "alert_events",
        "dead_letters",
        "audit",
    ] {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"))
            .get(0);
        assert_eq!(n, 0, "{table} exists and is empty");
    }
    // The command line does the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kendali"))
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_kind_is_stored_and_read_back() {
    let Some(mqtt) = support::mosquitto("every_message_kind_is_stored_and_read_back") else {
        return;
    };
    let Some(db_url) = support::postgres("every_message_kind_is_stored_and_read_back").await else {
        return;
    };
    let mut settings = support::settings(Some(mqtt.clone()));
    settings.database.url = Some(db_url.clone());
    let app = support::spawn(settings).await;
    let city = support::city("st");
    let p = Publisher::connect(&mqtt).await;
    let ts = Utc::now().with_timezone(&kendali::domain::wib());
    let mut sent = Vec::new();
    for kind in kendali::contract::MessageKind::ALL {
        let (topic, msg) = kendali::contract::messages::example(kind, ts);
        let topic = topic.to_string().replacen("cilegon", &city, 1);
        p.send(&topic, 1, msg.to_json()).await;
        sent.push(msg);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.send(&format!("city/{city}/kpi/perizinan"), 1, "{\"broken\":")
        .await;
    let db = support::pg(&db_url).await;
    let tables = [
        ("SELECT count(*) FROM intersections WHERE city = $1", 1),
        ("SELECT count(*) FROM atcs_telemetry WHERE city = $1", 3),
        ("SELECT count(*) FROM commands WHERE city = $1", 1),
        ("SELECT count(*) FROM command_acks WHERE city = $1", 1),
        ("SELECT count(*) FROM call_events WHERE city = $1", 1),
        ("SELECT count(*) FROM calls WHERE city = $1", 1),
        ("SELECT count(*) FROM unit_status WHERE city = $1", 1),
        ("SELECT count(*) FROM unit_assignments WHERE city = $1", 1),
        ("SELECT count(*) FROM app_events WHERE city = $1", 1),
        ("SELECT count(*) FROM kpi_samples WHERE city = $1", 1),
        ("SELECT count(*) FROM alert_events WHERE city = $1", 1),
        (
            "SELECT count(*) FROM dead_letters WHERE topic LIKE 'city/' || $1 || '/%'",
            1,
        ),
    ];
    for (sql, n) in tables {
        support::eventually(10, sql, || {
            let (db, city) = (&db, city.clone());
            async move { (count(db, sql, &city).await == n).then_some(()) }
        })
        .await;
    }
    // Read back: the stored payloads are the messages as sent.
    let payload = |sql: &'static str| {
        let (db, city) = (&db, city.clone());
        async move {
            db.query_one(sql, &[&city])
                .await
                .unwrap()
                .get::<_, Value>(0)
        }
    };
    for msg in &sent {
        let json: Value = serde_json::from_slice(&msg.to_json()).unwrap();
        use kendali::contract::Message as M;
        match msg {
            M::CallEvent(_) => assert_eq!(
                payload("SELECT payload FROM call_events WHERE city = $1").await,
                json
            ),
            M::AppEvent(_) => assert_eq!(
                payload("SELECT payload FROM app_events WHERE city = $1").await,
                json
            ),
            M::UnitStatus(_) => assert_eq!(
                payload("SELECT payload FROM unit_status WHERE city = $1").await,
                json
            ),
            M::UnitAssignment(_) => assert_eq!(
                payload("SELECT payload FROM unit_assignments WHERE city = $1").await,
                json
            ),
            M::IntersectionInfo(_) => assert_eq!(
                payload("SELECT info FROM intersections WHERE city = $1").await,
                json
            ),
            M::Command(_) => assert_eq!(
                payload("SELECT payload FROM commands WHERE city = $1").await,
                json
            ),
            M::Alert(_) => assert_eq!(
                payload("SELECT payload FROM alert_events WHERE city = $1").await,
                json
            ),
            M::CommandAck(a) => {
                let r = db
                    .query_one(
                        "SELECT status, reason FROM command_acks WHERE city = $1",
                        &[&city],
                    )
                    .await
                    .unwrap();
                assert_eq!(r.get::<_, String>(0), "applied");
                assert_eq!(r.get::<_, Option<String>>(1), a.reason);
            }
            M::KpiSample(k) => {
                let r = db
                    .query_one(
                        "SELECT value, unit, target FROM kpi_samples WHERE city = $1",
                        &[&city],
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    (
                        r.get::<_, f64>(0),
                        r.get::<_, String>(1),
                        r.get::<_, Option<f64>>(2)
                    ),
                    (k.value, k.unit.clone(), k.target)
                );
            }
            M::IntersectionState(s) => {
                let rows = db.query("SELECT approach, saturation, queue_m, detector_ok FROM atcs_telemetry WHERE city = $1 ORDER BY approach", &[&city]).await.unwrap();
                for (r, a) in rows.iter().zip({
                    let mut v = s.approaches.clone();
                    v.sort_by(|a, b| a.id.cmp(&b.id));
                    v
                }) {
                    assert_eq!(r.get::<_, String>(0), a.id);
                    assert!((r.get::<_, f32>(1) as f64 - a.saturation).abs() < 1e-6);
                    assert!((r.get::<_, f32>(2) as f64 - a.queue_m).abs() < 1e-4);
                    assert_eq!(r.get::<_, bool>(3), a.detector_ok);
                }
            }
        }
    }
    let r = db
        .query_one(
            "SELECT stage, open, received_at FROM calls WHERE city = $1",
            &[&city],
        )
        .await
        .unwrap();
    assert_eq!(
        (r.get::<_, String>(0), r.get::<_, bool>(1)),
        ("received".to_owned(), true)
    );
    assert_eq!(
        r.get::<_, chrono::DateTime<Utc>>(2),
        ts.with_timezone(&Utc)
            .duration_trunc(chrono::Duration::microseconds(1))
            .unwrap()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_on_known_data_give_known_answers_and_survive_a_restart() {
    let Some(mqtt) = support::mosquitto(
        "history_queries_on_known_data_give_known_answers_and_survive_a_restart",
    ) else {
        return;
    };
    let Some(db_url) =
        support::postgres("history_queries_on_known_data_give_known_answers_and_survive_a_restart")
            .await
    else {
        return;
    };
    let mut settings = support::settings(Some(mqtt.clone()));
    settings.database.url = Some(db_url.clone());
    settings.database.rollup_every_s = 1;
    let app = support::spawn(settings.clone()).await;
    let city = support::city("hist");
    let p = Publisher::connect(&mqtt).await;
    let base = (Utc::now() - chrono::Duration::minutes(10))
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap();
    // Two minutes of one approach: saturation .1 .2 .3 | .4 .5 .6
    for k in 0..6i64 {
        let ts = wib(base + chrono::Duration::seconds(20 * k));
        let sat = 0.1 * (k + 1) as f64;
        p.send(
            &format!("city/{city}/atcs/j1/state"),
            0,
            format!(r#"{{"ts":"{ts}","intersection":"j1","mode":"adaptive","plan":"p","cycle_s":90,"phase":1,"phase_elapsed_s":3,"approaches":[{{"id":"n","green_s":30,"flow_vph":{},"queue_m":{},"saturation":{sat},"detector_ok":true}}]}}"#, 100 * (k + 1), 10 * (k + 1)),
        )
        .await;
    }
    // Four 112 calls received at base: answered after 10, 18 and 30 s, one abandoned.
    for (i, outcome) in [Some(10), Some(18), Some(30), None].into_iter().enumerate() {
        let call = format!("h{i}");
        let ev = |kind: &str, at: i64| {
            format!(
                r#"{{"event_id":"{}","call_id":"{call}","ts":"{}","line":"112","type":"{kind}"}}"#,
                uuid::Uuid::new_v4(),
                wib(base + chrono::Duration::seconds(at))
            )
        };
        p.send(&format!("city/{city}/calls/112"), 1, ev("received", 0))
            .await;
        match outcome {
            Some(s) => {
                p.send(&format!("city/{city}/calls/112"), 1, ev("answered", s))
                    .await
            }
            None => {
                p.send(&format!("city/{city}/calls/112"), 1, ev("abandoned", 25))
                    .await
            }
        }
    }
    for (k, v) in [(0, 90.0), (30, 92.0), (70, 97.0)] {
        p.send(
            &format!("city/{city}/kpi/perizinan"),
            1,
            format!(
                r#"{{"ts":"{}","metric":"on_time_pct","value":{v},"unit":"%","target":95}}"#,
                wib(base + chrono::Duration::seconds(k))
            ),
        )
        .await;
    }
    let from = base.to_rfc3339().replace("+00:00", "Z");
    let to = (base + chrono::Duration::minutes(2))
        .to_rfc3339()
        .replace("+00:00", "Z");
    let q = |path: String| {
        let app = &app;
        async move { support::get_json(app, &path).await }
    };
    let atcs = support::eventually(15, "two rolled-up minutes", || {
        let path =
            format!("/api/history/atcs/{city}/j1?metric=saturation&from={from}&to={to}&bucket=1m");
        async move {
            let v = q(path).await;
            (v["points"].as_array().map(Vec::len) == Some(2) && v["points"][1]["n"] == 3)
                .then_some(v)
        }
    })
    .await;
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-5;
    assert!(
        close(&atcs["points"][0]["avg"], 0.2) && close(&atcs["points"][0]["max"], 0.3),
        "{atcs}"
    );
    // The rollup itself: the store sums the rows it commits, per minute.
    let db = support::pg(&db_url).await;
    let minutes = || {
        let (db, city) = (&db, &city);
        async move {
            let rows = db
                .query(
                    "SELECT samples, saturation_avg::float8, saturation_max::float8, queue_m_avg::float8
                     FROM atcs_minute WHERE city = $1 ORDER BY bucket",
                    &[city],
                )
                .await
                .unwrap();
            let got: Vec<(i32, f64, f64, f64)> = rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
            let want = [(3, 0.2, 0.3, 20.0), (3, 0.5, 0.6, 50.0)];
            (got.len() == 2
                && got.iter().zip(want).all(|(g, w)| {
                    g.0 == w.0
                        && (g.1 - w.1).abs() < 1e-5
                        && (g.2 - w.2).abs() < 1e-5
                        && (g.3 - w.3).abs() < 1e-4
                }))
            .then_some(())
        }
    };
    support::eventually(15, "two summed minutes in atcs_minute", minutes).await;
    assert!(
        close(&atcs["points"][1]["avg"], 0.5) && close(&atcs["points"][1]["max"], 0.6),
        "{atcs}"
    );
    // The same range at 20 s buckets comes from the raw rows.
    let raw = q(format!(
        "/api/history/atcs/{city}/j1?metric=queue_m&from={from}&to={to}&bucket=20s"
    ))
    .await;
    assert_eq!(raw["points"].as_array().unwrap().len(), 6);
    assert!(close(&raw["points"][5]["avg"], 60.0));
    let calls = support::eventually(10, "the call history", || {
        let path = format!("/api/history/calls/{city}?line=112&from={from}&to={to}&bucket=1h");
        async move {
            let v = q(path).await;
            (v["points"][0]["received"] == 4 && v["points"][0]["answered"] == 3).then_some(v)
        }
    })
    .await;
    let b = &calls["points"][0];
    assert_eq!(
        (
            b["answered_within_15s"].as_u64(),
            b["answered_within_20s"].as_u64(),
            b["abandoned"].as_u64()
        ),
        (Some(1), Some(2), Some(1))
    );
    assert!(close(&b["answer_s_avg"], (10.0 + 18.0 + 30.0) / 3.0));
    let kpi = q(format!(
        "/api/history/kpi/{city}/perizinan/on_time_pct?from={from}&to={to}&bucket=1m"
    ))
    .await;
    assert!(
        close(&kpi["points"][0]["avg"], 91.0) && close(&kpi["points"][1]["avg"], 97.0),
        "{kpi}"
    );
    // The same history as server-drawn SVG charts (plotters), for the wall's tiles.
    for path in [
        format!("/api/charts/kpi/{city}/perizinan/on_time_pct.svg?from={from}&to={to}&bucket=1m&target=95"),
        format!("/api/charts/atcs/{city}/j1.svg?metric=saturation&from={from}&to={to}&bucket=1m"),
        format!("/api/charts/calls/{city}.svg?line=112&from={from}&to={to}&bucket=1m"),
    ] {
        let r = reqwest::get(support::http(&app, &path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        let body = r.text().await.unwrap();
        assert!(body.starts_with("<svg") && body.contains("<text") && !body.contains("no data"), "{path}: {}", &body[..body.len().min(200)]);
    }
    let empty = reqwest::get(support::http(&app, "/api/charts/kpi/nowhere/x/y.svg"))
        .await
        .unwrap();
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap().contains("no data"));
    let bad = reqwest::get(support::http(
        &app,
        &format!("/api/charts/kpi/{city}/perizinan/on_time_pct.svg?width=5"),
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    // Bad parameters get a 400 that says why.
    for bad in [
        format!("/api/history/atcs/{city}/j1?metric=colour"),
        format!("/api/history/atcs/{city}/j1?bucket=5x"),
        format!("/api/history/calls/{city}?line=113"),
        format!("/api/history/kpi/{city}/perizinan/x?from=yesterday"),
        format!("/api/history/kpi/{city}/perizinan/x?from={to}&to={from}"),
    ] {
        let r = reqwest::get(support::http(&app, &bad)).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    // A restart rebuilds the live state from the store: the wall is not blanked.
    let before = support::get_json(&app, "/api/state").await;
    app.stop().await;
    // A node that stopped before writing its sums: the next start recomputes
    // the minutes received since the last write from the raw rows.
    db.batch_execute(&format!(
        "DELETE FROM atcs_minute WHERE city = '{city}';
         UPDATE rollup_state SET rx_watermark = now() - interval '5 minutes'"
    ))
    .await
    .unwrap();
    let mut again = settings.clone();
    again.mqtt.client_id = format!("{}-2", settings.mqtt.client_id);
    let app = support::spawn(again).await;
    let after = support::get_json(&app, "/api/state").await;
    for (kind, key) in [
        ("intersection", format!("{city}/j1")),
        ("counters", city.clone()),
        ("kpi", format!("{city}/perizinan/on_time_pct")),
    ] {
        assert!(
            after["entities"][kind].get(&key).is_some(),
            "{kind} {key} rebuilt"
        );
    }
    assert_eq!(
        after["entities"]["counters"][&city]["lines"]["112"],
        before["entities"]["counters"][&city]["lines"]["112"]
    );
    // Telemetry is stored as 32-bit floats: equal to about 7 digits.
    let worst = |s: &Value| {
        s["entities"]["intersection"][format!("{city}/j1")]["worst_saturation"]
            .as_f64()
            .unwrap()
    };
    assert!((worst(&after) - worst(&before)).abs() < 1e-6);
    support::eventually(15, "the minutes recomputed at start", minutes).await;
    app.stop().await;
}

/// A payload of raw NUL bytes is refused as invalid JSON; its dead letter
/// used to carry the NULs into PostgreSQL, which refused the whole batch at
/// every retry: the store stalled, no QoS 1 message was acknowledged again
/// and no call was stored again. Now it is stored (NULs shown as U+FFFD) and
/// acknowledged, and the call after it is stored too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_of_nul_bytes_is_dead_lettered_stored_and_acknowledged() {
    let test = "a_payload_of_nul_bytes_is_dead_lettered_stored_and_acknowledged";
    let (Some(db), Some(mosquitto)) = (
        support::postgres(test).await,
        support::PrivateMosquitto::start(test),
    ) else {
        return;
    };
    let mut settings = support::settings(Some(mosquitto.url.clone()));
    settings.database.url = Some(db.clone());
    let app = support::spawn(settings).await;
    let city = support::city("nul");
    let p = support::CountingPublisher::connect(&mosquitto.url).await;
    let topic = format!("city/{city}/calls/112");
    p.client
        .publish(
            &topic,
            rumqttc::QoS::AtLeastOnce,
            false,
            vec![0u8, b'{', 0u8],
        )
        .await
        .expect("publish queued");
    let (id, call) = support::call_event("after-nul", "received", "112");
    p.send(&topic, call).await;
    let client = support::pg(&db).await;
    support::call_stored(&client, &id, "the call after the NULs stored").await;
    let row = client
        .query_one(
            "SELECT reason, payload, payload_bytes FROM dead_letters WHERE topic = $1",
            &[&topic],
        )
        .await
        .expect("the dead letter is stored");
    assert_eq!(row.get::<_, String>(0), "invalid_json");
    assert_eq!(row.get::<_, String>(1), "\u{FFFD}{\u{FFFD}");
    assert_eq!(row.get::<_, i32>(2), 3);
    // Both messages were acknowledged (the broker holds nothing for us).
    let m = support::metrics(&app).await;
    assert_eq!(support::metric(&m, "kendali_store_degraded"), 0.0, "{m}");
    assert!(support::metric(&m, "kendali_mqtt_acks_total") >= 2.0, "{m}");
    app.stop().await;
}

/// Defence in depth, below the contract: when the database refuses a
/// message of a batch for its data (here a NUL that a message built in code
/// carries past validation), the rest of the batch is stored, and that
/// message becomes a `store_refused` dead letter instead of stopping the
/// store at every retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_is_set_aside_and_the_rest_of_its_batch_is_stored() {
    use kendali::contract::{example, Message, MessageKind};
    use kendali::store::{postgres::PgBackend, Batch, EventRow};
    let test = "a_message_the_database_refuses_is_set_aside_and_the_rest_of_its_batch_is_stored";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let backend = PgBackend::connect(&db, 2).await.expect("connects");
    let ts = Utc::now().with_timezone(&kendali::domain::wib());
    let mut events = Vec::new();
    for i in 0..7 {
        let (topic, mut msg) = example(MessageKind::CallEvent, ts);
        if let Message::CallEvent(m) = &mut msg {
            m.event_id = uuid::Uuid::new_v4();
            m.call_id = format!("iso-{i}");
            if i == 4 {
                m.note = Some("a NUL \u{0} inside".into());
            }
        }
        events.push(EventRow::Message {
            topic,
            msg,
            rx: Utc::now(),
            projection: None,
        });
    }
    let batch = Batch {
        telemetry: Vec::new(),
        events,
        writer: None,
    };
    let refused = backend.write(&batch).await.expect("the batch is written");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].reason.as_str(), "store_refused");
    assert!(refused[0].detail.contains("22P05"), "{}", refused[0].detail);
    let client = support::pg(&db).await;
    let stored: Vec<String> = client
        .query("SELECT call_id FROM call_events ORDER BY call_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        stored,
        ["iso-0", "iso-1", "iso-2", "iso-3", "iso-5", "iso-6"]
    );
    let reason: String = client
        .query_one("SELECT reason FROM dead_letters", &[])
        .await
        .expect("its dead letter is stored")
        .get(0);
    assert_eq!(reason, "store_refused");
}

/// History and chart parameters that cannot name anything get a 400 with a
/// message: a bucket whose seconds overflow (it panicked the handler, and
/// the client got an empty reply), a NUL in a name (PostgreSQL refused it and
/// the client got 503 "database: db error").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_parameters_that_name_nothing_get_a_400_that_says_why() {
    let test = "history_parameters_that_name_nothing_get_a_400_that_says_why";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let mut settings = support::settings(None);
    settings.database.url = Some(db);
    let app = support::spawn(settings).await;
    for (path, says) in [
        (
            "/api/history/atcs/kota/x1?bucket=106751991167300d",
            "bucket",
        ),
        (
            "/api/charts/atcs/kota/x1.svg?bucket=9223372036854775807s",
            "bucket",
        ),
        ("/api/history/kpi/kota/perizinan/m?bucket=400d", "bucket"),
        ("/api/history/atcs/kota/x1?approach=%00", "approach"),
        ("/api/history/units/kota?unit=a%00b", "unit"),
        ("/api/history/atcs/Kota%00/x1", "city"),
        ("/api/charts/kpi/kota/perizinan/M%20M.svg", "metric"),
    ] {
        let r = reqwest::get(support::http(&app, path)).await.expect(path);
        assert_eq!(r.status(), 400, "{path}");
        let body: Value = r.json().await.expect("a JSON error");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{path}: {body}");
    }
    // A well-formed query still answers from the database.
    let r = reqwest::get(support::http(
        &app,
        "/api/history/atcs/kota/x1?approach=utara&bucket=1m",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

/// A SCATS-style junction (a lettered phase, a numbered plan) is stored with
/// its label and shown the same after a restart; a command's outcome and its
/// lease are restored with it, not shown pending again (then timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettered_phases_and_command_outcomes_are_stored_and_survive_a_restart() {
    let test = "lettered_phases_and_command_outcomes_are_stored_and_survive_a_restart";
    let Some(mqtt) = support::mosquitto(test) else {
        return;
    };
    let Some(db_url) = support::postgres(test).await else {
        return;
    };
    let mut settings = support::settings(Some(mqtt.clone()));
    settings.database.url = Some(db_url.clone());
    let app = support::spawn(settings.clone()).await;
    let city = support::city("label");
    let p = Publisher::connect(&mqtt).await;
    let info = serde_json::json!({
        "intersection": "j1", "name": "Simpang Label", "lat": -6.0, "lon": 106.0,
        "approaches": [ { "id": "A", "name": "Jl. A" } ],
    });
    p.send_retained(&format!("city/{city}/atcs/j1/info"), info.to_string())
        .await;
    let state = serde_json::json!({
        "ts": wib(Utc::now()), "intersection": "j1", "mode": "adaptive", "plan": 5, "cycle_s": 90,
        "phase": "C", "phase_elapsed_s": 3,
        "approaches": [ { "id": "A", "green_s": 30, "flow_vph": 700, "queue_m": 40, "saturation": 0.6, "detector_ok": true } ],
    });
    p.send(&format!("city/{city}/atcs/j1/state"), 1, state.to_string())
        .await;
    let key = format!("{city}/j1");
    let j = support::junction_state(&app, &key).await;
    assert_eq!(j["state"]["phase"], "C");
    let officer = support::sign_in(&app, "petugas-label", &["traffic_officer"], &[], &[]).await;
    let r = officer
        .client
        .post(support::http(&app, &format!("/api/atcs/{city}/j1/command")))
        .json(&serde_json::json!({ "action": "set_plan", "plan": "7", "expires_in_s": 600, "reason": "uji" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["command"]["command_id"]
        .as_str()
        .unwrap()
        .to_owned();
    support::entity(&app, "command", &id, "the command back").await;
    let ack = serde_json::json!({ "command_id": id, "ts": wib(Utc::now()), "status": "applied", "reason": null });
    p.send(
        &format!("city/{city}/atcs/j1/command/ack"),
        1,
        ack.to_string(),
    )
    .await;
    let db = support::pg(&db_url).await;
    support::eventually(10, "the state and the ack stored", || {
        let (db, city) = (&db, &city);
        async move {
            let labels = count(db, "SELECT count(*) FROM atcs_state WHERE city = $1 AND phase_label = 'C' AND plan = '5'", city).await;
            let acks = count(db, "SELECT count(*) FROM command_acks WHERE city = $1 AND status = 'applied'", city).await;
            (labels == 1 && acks == 1).then_some(())
        }
    })
    .await;
    // The junction's command history, from the database.
    let history = support::get_json(&app, &format!("/api/history/commands/{city}/j1")).await;
    let history = &history["points"];
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    assert_eq!(history[0]["command"]["command_id"], id.as_str());
    assert_eq!(history[0]["status"], "applied", "{history}");
    app.stop().await;

    let mut again = settings.clone();
    again.mqtt.client_id = format!("{}-2", settings.mqtt.client_id);
    let app = support::spawn(again).await;
    let after = support::get_json(&app, "/api/state").await;
    assert_eq!(
        after["entities"]["intersection"][&key]["state"]["phase"], "C",
        "{after}"
    );
    assert_eq!(
        after["entities"]["intersection"][&key]["state"]["plan"],
        "5"
    );
    let c = &after["entities"]["command"][&id];
    assert_eq!(c["status"], "applied", "{c}");
    assert_eq!(c["lease"]["state"], "in_force", "{c}");
    // Past the ack timeout, still applied.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let c = support::get_json(&app, "/api/state").await["entities"]["command"][&id].clone();
    assert_eq!(c["status"], "applied", "{c}");
    app.stop().await;
}

/// Several nodes each write a call's projection (`mqtt.shared_group`): a
/// node that has applied fewer of the call's events, writing after one that
/// has applied more, does not take the row back; one with more replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_row_keeps_the_projection_with_the_most_events_whoever_writes_last() {
    use kendali::store::{postgres::PgBackend, Batch, EventRow};
    let test = "a_calls_row_keeps_the_projection_with_the_most_events_whoever_writes_last";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let backend = PgBackend::connect(&db, 2).await.expect("connects");
    // The call after its first event, and after its first two.
    let mut state = kendali::state::CityState::new(Default::default());
    let mut after = Vec::new();
    for (k, kind) in ["received", "answered"].into_iter().enumerate() {
        let ts = (Utc::now() + chrono::Duration::seconds(k as i64))
            .with_timezone(&kendali::domain::wib())
            .to_rfc3339();
        let payload = format!(
            r#"{{"event_id":"{}","call_id":"p1","ts":"{ts}","line":"112","type":"{kind}"}}"#,
            uuid::Uuid::new_v4()
        );
        let (topic, msg) = kendali::contract::decode(
            "city/kota/calls/112",
            payload.as_bytes(),
            &Default::default(),
            Utc::now(),
        )
        .expect("a valid call event");
        state.apply(&topic, &msg, Utc::now()).expect("applies");
        after.push(Box::new(
            state.call("kota", "p1").expect("the call").clone(),
        ));
    }
    let write = |call: &kendali::domain::Call| {
        let batch = Batch {
            telemetry: Vec::new(),
            events: vec![EventRow::Projection {
                call: Box::new(call.clone()),
                rx: Utc::now(),
            }],
            writer: None,
        };
        let backend = &backend;
        async move { backend.write(&batch).await.expect("written") }
    };
    let client = support::pg(&db).await;
    let row = || async {
        let r = client
            .query_one(
                "SELECT stage, (projection->>'events')::int FROM calls WHERE city = 'kota' AND call_id = 'p1'",
                &[],
            )
            .await
            .expect("the row");
        (r.get::<_, String>(0), r.get::<_, i32>(1))
    };
    write(&after[0]).await;
    assert_eq!(row().await, ("received".to_owned(), 1));
    write(&after[1]).await;
    assert_eq!(
        row().await,
        ("answered".to_owned(), 2),
        "the richer one replaces it"
    );
    write(&after[0]).await;
    assert_eq!(
        row().await,
        ("answered".to_owned(), 2),
        "the later, poorer write is not kept"
    );
}
