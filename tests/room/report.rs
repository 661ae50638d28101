//! The shift handover report against SQL: a fixed-seed day of a city (calls
//! with their answer times, categories, prank and ghost calls, junctions'
//! saturation, officers' commands and their answers, a flood of alerts)
//! goes through the real broker into PostgreSQL; `kendali report --json`
//! computes the report's figures; the test computes the same figures with
//! SQL over the same rows and compares. The page at `/reports/shift` shows
//! them to a supervisor, and the incoming supervisor's acceptance of the
//! handover is audited with the report's digest.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::{self, Publisher};

/// The day's seed: the same calls, junctions and commands every run.
const SEED: u64 = 20261205;

fn wib(t: DateTime<Utc>) -> String {
    t.with_timezone(&kendali::domain::wib()).to_rfc3339()
}

/// Publishes the fixed-seed shift [from, from + 8 h) of `city`; answers how
/// many QoS 1 call events it published.
async fn publish_day(p: &Publisher, city: &str, from: DateTime<Utc>) -> usize {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    let at = |s: i64| from + chrono::Duration::seconds(s);
    let mut events = 0;
    let categories = ["medical", "fire", "crime", "traffic_accident", "disaster"];
    for i in 0..90 {
        let line = if rng.random_bool(0.7) { "112" } else { "119" };
        let call = format!("r-{i:03}");
        let start = rng.random_range(0..8 * 3600 - 600);
        let send = |kind: &str, s: i64, extra: Value| {
            let mut v = json!({
                "event_id": uuid::Uuid::new_v4(), "call_id": call, "ts": wib(at(s)), "line": line, "type": kind,
            });
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            (format!("city/{city}/calls/{line}"), v.to_string())
        };
        let mut batch = vec![send("received", start, json!({}))];
        if rng.random_bool(0.1) {
            batch.push(send(
                "abandoned",
                start + rng.random_range(5..40),
                json!({}),
            ));
        } else {
            let answer = start + rng.random_range(2..45);
            batch.push(send("answered", answer, json!({})));
            let roll: f64 = rng.random();
            let triage = if roll < 0.06 {
                "prank"
            } else if roll < 0.12 {
                "ghost"
            } else {
                "normal"
            };
            if triage == "normal" {
                let category = categories[rng.random_range(0..categories.len())];
                batch.push(send(
                    "classified",
                    answer + 30,
                    json!({ "category": category, "priority": rng.random_range(1..=4), "triage": "normal" }),
                ));
            } else {
                batch.push(send("classified", answer + 10, json!({ "triage": triage })));
            }
            // A few calls are still open at the end of the shift.
            if rng.random_bool(0.9) {
                batch.push(send(
                    "closed",
                    answer + 300,
                    json!({ "disposition": "resolved" }),
                ));
            }
        }
        for (topic, payload) in batch {
            p.send(&topic, 1, payload).await;
            events += 1;
        }
    }
    // Three junctions, a state every 5 minutes over the shift.
    for j in ["j-satu", "j-dua", "j-tiga"] {
        let base: f64 = rng.random_range(0.5..0.9);
        for k in 0..96 {
            let ds = |rng: &mut rand_chacha::ChaCha8Rng| {
                ((base + rng.random_range(-0.2..0.25)) * 1000.0).round() / 1000.0
            };
            let state = json!({
                "ts": wib(at(k * 300 + 7)), "intersection": j, "mode": "adaptive", "plan": "pagi", "cycle_s": 100.0,
                "phase": 1, "phase_elapsed_s": 3.0,
                "approaches": [
                    { "id": "A1", "green_s": 30.0, "flow_vph": 900.0, "queue_m": 50.0, "saturation": ds(&mut rng), "detector_ok": true },
                    { "id": "A2", "green_s": 20.0, "flow_vph": 500.0, "queue_m": 20.0, "saturation": ds(&mut rng), "detector_ok": true },
                ],
            });
            p.send(&format!("city/{city}/atcs/{j}/state"), 1, state.to_string())
                .await;
        }
    }
    // Officers' commands, most answered.
    for k in 0..12 {
        let id = uuid::Uuid::new_v4();
        let who = ["budi", "sari", "rule:auto_extend"][k % 3];
        let s = 600 + k as i64 * 1500;
        let cmd = json!({
            "command_id": id, "ts": wib(at(s)), "action": "extend_green", "approach": "A1", "seconds": 10,
            "reason": "uji", "issued_by": who,
        });
        p.send(
            &format!("city/{city}/atcs/j-satu/command"),
            1,
            cmd.to_string(),
        )
        .await;
        let status = match k % 4 {
            0 => None,
            1 => Some("rejected"),
            _ => Some("applied"),
        };
        if let Some(status) = status {
            let ack = json!({ "command_id": id, "ts": wib(at(s + 2)), "status": status, "reason": "uji" });
            p.send(
                &format!("city/{city}/atcs/j-satu/command/ack"),
                1,
                ack.to_string(),
            )
            .await;
        }
    }
    // A flood: 12 alerts raised within 6 minutes, half acknowledged.
    for k in 0..12i64 {
        let raised = at(3 * 3600 + k * 30);
        let entity = format!("call:flood-{k}");
        let alert_id = kendali::domain::alerts::alert_id(
            city,
            kendali::contract::AlertRule::CallUnanswered,
            &entity,
        );
        let mut a = json!({
            "event_id": uuid::Uuid::new_v4(), "alert_id": alert_id, "ts": wib(raised), "rule": "call_unanswered",
            "entity": entity, "group": entity, "priority": 1 + (k % 2), "state": "active_unack", "transition": "raised",
            "by": "rule:call_unanswered", "raised_at": wib(raised), "value": 25.0, "threshold": 20.0, "unit": "s",
        });
        p.send(&format!("city/{city}/alerts/{alert_id}"), 1, a.to_string())
            .await;
        if k % 2 == 0 {
            let acked = raised + chrono::Duration::seconds(10 + k * 5);
            a["event_id"] = json!(uuid::Uuid::new_v4());
            a["ts"] = json!(wib(acked));
            a["state"] = json!("active_ack");
            a["transition"] = json!("acknowledged");
            a["by"] = json!("dewi");
            a["acked_at"] = json!(wib(acked));
            a["acked_by"] = json!("dewi");
            p.send(&format!("city/{city}/alerts/{alert_id}"), 1, a.to_string())
                .await;
        }
    }
    events
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_seed_days_report_has_the_figures_sql_gives_over_the_same_rows() {
    let test = "a_fixed_seed_days_report_has_the_figures_sql_gives_over_the_same_rows";
    let Some(mosquitto) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let Some(db_url) = support::postgres(test).await else {
        return;
    };
    let mut settings = support::settings(Some(mosquitto.url.clone()));
    settings.database.url = Some(db_url.clone());
    let app = support::spawn(settings).await;
    let city = support::city("laporan");
    let p = Publisher::connect(&mosquitto.url).await;
    // Yesterday's day shift, 07:00 to 15:00 WIB.
    let today = kendali::domain::wib_day_start(Utc::now());
    let from = today - chrono::Duration::hours(17);
    let to = from + chrono::Duration::hours(8);
    let call_events = publish_day(&p, &city, from).await;

    let db = support::pg(&db_url).await;
    let one = |sql: &'static str| {
        let (db, city) = (&db, city.clone());
        async move {
            db.query_one(sql, &[&city, &from, &to])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    support::eventually(30, "every row stored", || {
        let (db, city) = (&db, city.clone());
        async move {
            let n: i64 = db
                .query_one("SELECT count(*) FROM call_events WHERE city = $1", &[&city])
                .await
                .ok()?
                .get(0);
            let acks: i64 = db
                .query_one("SELECT count(*) FROM command_acks WHERE city = $1", &[&city])
                .await
                .ok()?
                .get(0);
            let alerts: i64 = db
                .query_one(
                    "SELECT count(*) FROM alert_events WHERE city = $1 AND ts < now() - interval '1 hour'",
                    &[&city],
                )
                .await
                .ok()?
                .get(0);
            (n as usize == call_events && acks == 9 && alerts == 18).then_some(())
        }
    })
    .await;
    // The telemetry's last rows (QoS 1 here) reach the table by the buffer's flush.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kendali"))
        .args([
            "report",
            "--city",
            &city,
            "--from",
            &wib(from),
            "--to",
            &wib(to),
            "--json",
            "--database-url",
            &db_url,
        ])
        .output()
        .expect("kendali report runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("the report's figures as JSON");
    let c = &r["calls"];

    // Calls: received, by line, by category, per hour.
    let row = one("SELECT count(*), count(*) FILTER (WHERE stage = 'abandoned'),
                          count(*) FILTER (WHERE projection->>'triage' = 'prank'
                                           OR (coalesce(projection->>'triage', 'normal') = 'normal' AND category = 'prank')),
                          count(*) FILTER (WHERE projection->>'triage' = 'ghost'),
                          count(answer_s), avg(answer_s)::float8,
                          count(*) FILTER (WHERE answer_s <= 10), count(*) FILTER (WHERE answer_s <= 15),
                          count(*) FILTER (WHERE answer_s <= 20)
                   FROM calls WHERE city = $1 AND received_at >= $2 AND received_at < $3").await;
    let received: i64 = row.get(0);
    assert_eq!(received, 90, "every call of the day is in the shift");
    assert_eq!(c["received"], received);
    assert_eq!(c["abandoned"], row.get::<_, i64>(1));
    assert_eq!(c["prank"], row.get::<_, i64>(2));
    assert_eq!(c["ghost"], row.get::<_, i64>(3));
    let a = &c["answer"];
    assert_eq!(a["answered"], row.get::<_, i64>(4));
    assert!(
        close(a["mean_s"].as_f64().unwrap(), row.get::<_, f64>(5)),
        "{a}"
    );
    assert_eq!(a["within_10s"], row.get::<_, i64>(6));
    assert_eq!(a["within_15s"], row.get::<_, i64>(7));
    assert_eq!(a["within_20s"], row.get::<_, i64>(8));
    let tail = one("SELECT avg(s)::float8 FROM (SELECT answer_s::float8 AS s FROM calls
                    WHERE city = $1 AND received_at >= $2 AND received_at < $3 AND answer_s IS NOT NULL
                    ORDER BY answer_s DESC
                    LIMIT (SELECT ceil(count(answer_s) / 10.0)::bigint FROM calls
                           WHERE city = $1 AND received_at >= $2 AND received_at < $3)) slowest").await;
    assert!(close(
        a["slowest_tenth_mean_s"].as_f64().unwrap(),
        tail.get(0)
    ));
    for r in db
        .query(
            "SELECT line, count(*) FROM calls WHERE city = $1 AND received_at >= $2 AND received_at < $3 GROUP BY 1",
            &[&city, &from, &to],
        )
        .await
        .unwrap()
    {
        assert_eq!(c["by_line"][r.get::<_, String>(0)], r.get::<_, i64>(1));
    }
    let categories = db
        .query(
            "SELECT coalesce(category, 'unclassified'), count(*) FROM calls
             WHERE city = $1 AND received_at >= $2 AND received_at < $3 GROUP BY 1",
            &[&city, &from, &to],
        )
        .await
        .unwrap();
    assert_eq!(
        c["by_category"].as_object().unwrap().len(),
        categories.len()
    );
    for r in categories {
        assert_eq!(c["by_category"][r.get::<_, String>(0)], r.get::<_, i64>(1));
    }
    let hours = db
        .query(
            "SELECT date_trunc('hour', received_at), line, count(*) FROM calls
             WHERE city = $1 AND received_at >= $2 AND received_at < $3 GROUP BY 1, 2",
            &[&city, &from, &to],
        )
        .await
        .unwrap();
    let per_hour = c["per_hour"].as_array().unwrap();
    for h in &hours {
        let t: DateTime<Utc> = h.get(0);
        let got = per_hour
            .iter()
            .find(|p| {
                p["hour"]
                    .as_str()
                    .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                    == Some(t)
            })
            .unwrap_or_else(|| panic!("hour {t} in the report"));
        assert_eq!(got["by_line"][h.get::<_, String>(1)], h.get::<_, i64>(2));
    }

    // The most congested junctions: each message's worst approach, averaged.
    let junctions = db
        .query(
            "SELECT intersection, avg(ds)::float8, max(ds)::float8 FROM
               (SELECT intersection, ts, max(saturation) AS ds FROM atcs_telemetry
                WHERE city = $1 AND ts >= $2 AND ts < $3 GROUP BY 1, 2) m
             GROUP BY 1 ORDER BY 2 DESC",
            &[&city, &from, &to],
        )
        .await
        .unwrap();
    assert_eq!(junctions.len(), 3);
    let got = r["junctions"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&junctions) {
        assert_eq!(g["intersection"], w.get::<_, String>(0));
        assert!(close(g["ds_avg"].as_f64().unwrap(), w.get(1)), "{g}");
        assert!(close(g["ds_max"].as_f64().unwrap(), w.get(2)), "{g}");
    }

    // Commands, by whom, with their outcomes.
    let cmds = db
        .query(
            "SELECT c.issued_by, count(*) FILTER (WHERE a.status = 'applied'),
                    count(*) FILTER (WHERE a.status = 'rejected'), count(*) FILTER (WHERE a.status IS NULL)
             FROM commands c LEFT JOIN LATERAL (SELECT status FROM command_acks a WHERE a.command_id = c.command_id
                                                ORDER BY a.rx LIMIT 1) a ON true
             WHERE c.city = $1 AND c.ts >= $2 AND c.ts < $3 GROUP BY 1",
            &[&city, &from, &to],
        )
        .await
        .unwrap();
    assert_eq!(r["commands"]["total"], 12);
    for w in cmds {
        let o = &r["commands"]["by_issuer"][w.get::<_, String>(0)];
        assert_eq!(o["applied"], w.get::<_, i64>(1));
        assert_eq!(o["rejected"], w.get::<_, i64>(2));
        assert_eq!(o["unanswered"], w.get::<_, i64>(3));
    }

    // Alerts by priority, with the time to acknowledge; the flood.
    let alerts = db
        .query(
            "SELECT priority, count(*) FILTER (WHERE transition = 'raised'), count(*) FILTER (WHERE transition = 'acknowledged'),
                    avg(extract(epoch FROM (payload->>'acked_at')::timestamptz - (payload->>'raised_at')::timestamptz))
                        FILTER (WHERE transition = 'acknowledged')::float8
             FROM alert_events WHERE city = $1 AND ts >= $2 AND ts < $3 GROUP BY 1",
            &[&city, &from, &to],
        )
        .await
        .unwrap();
    assert_eq!(alerts.len(), 2);
    for w in alerts {
        let p = &r["alerts"]["by_priority"][w.get::<_, i16>(0).to_string()];
        assert_eq!(p["raised"], w.get::<_, i64>(1));
        assert_eq!(p["acknowledged"], w.get::<_, i64>(2));
        match w.get::<_, Option<f64>>(3) {
            Some(mean) => assert!(close(p["ack_mean_s"].as_f64().unwrap(), mean), "{p}"),
            None => assert!(p["ack_mean_s"].is_null()),
        }
    }
    let floods = r["alerts"]["floods"].as_array().unwrap();
    assert_eq!(
        floods.len(),
        1,
        "12 alerts in 6 minutes are a flood: {floods:?}"
    );
    assert_eq!(floods[0]["raised"], 12);

    // Handed over: the calls still open, and the audit's last hash of the shift.
    let open =
        one("SELECT count(*) FROM calls WHERE city = $1 AND open AND received_at < $3 AND $2::timestamptz IS NOT NULL")
            .await;
    assert_eq!(
        r["handover"]["open_calls"].as_array().unwrap().len() as i64,
        open.get::<_, i64>(0)
    );
    assert!(open.get::<_, i64>(0) > 0, "the day leaves calls open");
    let last = db
        .query_opt(
            "SELECT hash FROM audit WHERE at < $1 ORDER BY id DESC LIMIT 1",
            &[&to],
        )
        .await
        .unwrap();
    assert_eq!(
        r["audit"]["hash"].as_str(),
        last.as_ref().map(|r| r.get::<_, &str>(0))
    );

    // The page, for a supervisor only; the incoming supervisor accepts the handover.
    let q = format!(
        "/reports/shift?city={city}&from={}&to={}",
        wib(from).replace('+', "%2B"),
        wib(to).replace('+', "%2B")
    );
    let dispatcher = support::sign_in(&app, "dewi", &["dispatcher"], &[], &[]).await;
    let refused = dispatcher
        .client
        .get(support::http(&app, &q))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let boss = support::sign_in(&app, "pak-joko", &["supervisor"], &[], &[]).await;
    let page = boss
        .client
        .get(support::http(&app, &q))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("data-figure=\"received\">{received}<")),
        "the page shows the figures"
    );
    assert!(html.contains("<svg"), "with its charts");
    // Its lines link into replay: the wall a minute before, on the city.
    assert!(
        html.contains("<a class=\"replay\" href=\"/?at=")
            && html.contains(&format!("&amp;speed=4&amp;city={city}\"")),
        "the open calls link into replay"
    );
    assert!(
        html.contains("<tr data-flood><td><a class=\"replay\""),
        "so does the flood"
    );
    let accepted: Value = boss
        .client
        .post(support::http(&app, "/api/reports/handover"))
        .json(&json!({ "city": city, "from": wib(from), "to": wib(to), "note": "diterima" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accepted["accepted_by"], "pak-joko");
    let audit = boss
        .get_json(&app, "/api/admin/audit?action=handover_accepted")
        .await;
    let row = &audit["rows"][0];
    assert_eq!(row["actor"], "pak-joko");
    let detail: Value = serde_json::from_str(row["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["digest"], accepted["digest"]);
    assert_eq!(detail["open_calls"], open.get::<_, i64>(0));
    app.stop().await;
}
