//! `kendali doctor` against the real things: a fresh database and a private
//! Mosquitto. Each problem is named with its fix (a schema not made, a
//! broker configured to drop queued messages, a database that does not
//! answer, publishers whose clocks are off) and the exit code says whether
//! anything failed; a ready room passes.

use std::time::Duration;

use crate::support::{self, kendali, Publisher};

fn contains_all(out: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(out.contains(w), "missing {w:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_each_problem_with_its_fix_and_passes_a_ready_room() {
    let test = "the_doctor_names_each_problem_with_its_fix_and_passes_a_ready_room";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let Some(broker) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let http = support::free_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let bad_conf = dir.path().join("mosquitto.conf");
    std::fs::write(&bad_conf, "listener 1883\nmax_queued_messages 1000\n").unwrap();
    let bad_conf = bad_conf.to_str().unwrap();
    let doctor = |db: String, conf: String, listen: &'static str| {
        let (url, http) = (broker.url.clone(), http.clone());
        async move {
            kendali(
                &[
                    "doctor",
                    "--database-url",
                    &db,
                    "--mqtt-url",
                    &url,
                    "--http",
                    &http,
                    "--mosquitto-conf",
                    &conf,
                    "--listen-s",
                    listen,
                ],
                None,
            )
            .await
        }
    };

    // Not ready: no schema yet, a broker that would drop Kendali's queue.
    let (code, out) = doctor(db.clone(), bad_conf.into(), "1").await;
    assert_eq!(code, 1, "{out}");
    contains_all(
        &out,
        &[
            "ok   ports     http.addr",
            "ok   broker    connected to mqtt://",
            "ok   broker    subscribed to city/+/atcs/#",
            "FAIL broker    max_queued_messages is 1000",
            "fix: max_queued_messages 1000000",
            "FAIL broker    persistence is off",
            "FAIL database  no schema yet",
            "fix: run `kendali migrate --database-url URL`",
        ],
    );
    // A database that does not answer.
    let (code, out) = doctor(
        "postgres://postgres@127.0.0.1:1/kendali".into(),
        bad_conf.into(),
        "0",
    )
    .await;
    assert_eq!(code, 1, "{out}");
    contains_all(
        &out,
        &[
            "FAIL database  cannot connect",
            "fix: is PostgreSQL running",
        ],
    );

    // Ready: migrated, the broker as `kendali broker-config` sets it up; a
    // publisher whose clock is 30 s behind is named, but fails nothing.
    let (code, out) = kendali(&["migrate", "--database-url", &db], None).await;
    assert_eq!(code, 0, "{out}");
    let p = Publisher::connect(&broker.url).await;
    let city = support::city("doctor");
    let late = tokio::spawn(async move {
        for i in 0..40 {
            let ts = (chrono::Utc::now() - chrono::Duration::seconds(30))
                .with_timezone(&kendali::domain::wib())
                .to_rfc3339();
            let body = format!(
                r#"{{"event_id":"{}","call_id":"late-{i}","ts":"{ts}","line":"112","type":"received"}}"#,
                uuid::Uuid::new_v4()
            );
            p.send(&format!("city/{city}/calls/112"), 1, body).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let conf = broker.conf.to_str().unwrap().to_owned();
    let (code, out) = doctor(db.clone(), conf, "3").await;
    late.abort();
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    contains_all(
        &out,
        &[
            "ok   broker    max_queued_messages 1000000",
            "ok   broker    persistence true",
            "ok   database  PostgreSQL 1",
            &format!(
                "ok   database  schema at version {}, this binary's",
                kendali::store::postgres::latest_migration()
            ),
            "ok   database  the audit is append-only",
            "WARN clock     calls: messages arrive +3",
            "fix: a clock is off",
        ],
    );
}
