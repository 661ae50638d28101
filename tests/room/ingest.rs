//! Ingest against a real broker: each bad input gets its own dead-letter
//! reason, the loop keeps running, and call events arriving out of order
//! still give the right stage times; an old single-connection session
//! delivers no call twice; oversize messages (QoS 1, QoS 0, retained) are
//! dead-lettered without costing a connection; a flood of bad call events
//! does not hold a good one back.

use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Publisher};

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Dead-letter entries of one city, newest first.
async fn dead_letters(app: &kendali::app::RunningApp, city: &str) -> Vec<Value> {
    let v = support::get_json_as_supervisor(app, "/api/deadletter?limit=10000").await;
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| {
            e["topic"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("city/{city}/")))
        })
        .cloned()
        .collect()
}

/// Publishes a valid QoS 1 KPI sample and waits until the live state has it.
async fn a_good_kpi_arrives(p: &Publisher, app: &kendali::app::RunningApp, city: &str, what: &str) {
    let ts = support::now_wib();
    p.send(
        &format!("city/{city}/kpi/perizinan"),
        1,
        format!(r#"{{"ts":"{ts}","metric":"ok","value":1,"unit":"%"}}"#),
    )
    .await;
    support::entity(app, "kpi", &format!("{city}/perizinan/ok"), what).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_own_dead_letter_reason_and_ingest_keeps_running() {
    let Some(url) = support::mosquitto(
        "each_bad_input_gets_its_own_dead_letter_reason_and_ingest_keeps_running",
    ) else {
        return;
    };
    let app = support::spawn(support::settings(Some(url.clone()))).await;
    let city = support::city("bad");
    let p = Publisher::connect(&url).await;
    let ts = support::now_wib();
    let future = (chrono::Utc::now() + chrono::Duration::hours(2))
        .with_timezone(&kendali::domain::wib())
        .to_rfc3339();
    let call = |id: &str, call_id: &str, kind: &str, ts: &str| {
        format!(
            r#"{{"event_id":"{id}","call_id":"{call_id}","ts":"{ts}","line":"112","type":"{kind}"}}"#
        )
    };
    let dup = uuid();
    let earlier = (chrono::Utc::now() - chrono::Duration::seconds(30))
        .with_timezone(&kendali::domain::wib())
        .to_rfc3339();
    let kpi = format!("city/{city}/kpi/perizinan");
    let calls = format!("city/{city}/calls/112");
    let unit = format!("city/{city}/units/amb-01/status");
    // (case, topic, payload, expected reason); the two `None`s are valid messages
    // that set up the duplicate and the lifecycle cases.
    let cases: Vec<(&str, String, String, Option<&str>)> = vec![
        (
            "not JSON",
            kpi.clone(),
            "this is not json".into(),
            Some("invalid_json"),
        ),
        (
            "wrong type",
            kpi.clone(),
            format!(r#"{{"ts":"{ts}","metric":"m","value":"high","unit":"%"}}"#),
            Some("wrong_type"),
        ),
        (
            "missing field",
            kpi.clone(),
            format!(r#"{{"ts":"{ts}","metric":"m","unit":"%"}}"#),
            Some("missing_field"),
        ),
        (
            "oversize",
            kpi.clone(),
            format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 * 1024)),
            Some("payload_too_large"),
        ),
        (
            "unknown enum",
            unit.clone(),
            format!(r#"{{"ts":"{ts}","unit":"amb-01","agency":"dinkes","status":"teleporting"}}"#),
            Some("unknown_enum"),
        ),
        (
            "NaN",
            kpi.clone(),
            format!(r#"{{"ts":"{ts}","metric":"m","value":NaN,"unit":"%"}}"#),
            Some("non_finite_number"),
        ),
        (
            "far-future ts",
            kpi.clone(),
            format!(r#"{{"ts":"{future}","metric":"m","value":1,"unit":"%"}}"#),
            Some("future_timestamp"),
        ),
        (
            "bad ts",
            kpi.clone(),
            r#"{"ts":"yesterday","metric":"m","value":1,"unit":"%"}"#.into(),
            Some("bad_timestamp"),
        ),
        (
            "out of range",
            format!("city/{city}/atcs/x1/state"),
            format!(
                r#"{{"ts":"{ts}","intersection":"x1","mode":"adaptive","plan":"p","cycle_s":90,"phase":1,"phase_elapsed_s":3,"approaches":[{{"id":"n","green_s":30,"flow_vph":900,"queue_m":40,"saturation":7.5,"detector_ok":true}}]}}"#
            ),
            Some("out_of_range"),
        ),
        (
            "topic/payload mismatch",
            unit.clone(),
            format!(r#"{{"ts":"{ts}","unit":"amb-99","agency":"dinkes","status":"available"}}"#),
            Some("topic_mismatch"),
        ),
        (
            "unknown topic (inside a subscribed family)",
            format!("city/{city}/atcs/x1/weather"),
            "{}".into(),
            Some("unknown_topic"),
        ),
        (
            "first of a duplicate",
            calls.clone(),
            call(&dup, "c-dup", "received", &ts),
            None,
        ),
        (
            "duplicate event",
            calls.clone(),
            call(&dup, "c-dup", "received", &ts),
            Some("duplicate_event"),
        ),
        (
            "a call answered now",
            calls.clone(),
            call(&uuid(), "c-life", "answered", &ts),
            None,
        ),
        (
            "closed before it was answered",
            calls.clone(),
            call(&uuid(), "c-life", "closed", &earlier),
            Some("lifecycle_out_of_order"),
        ),
    ];
    let mut expected_total = 0;
    for (case, topic, payload, reason) in &cases {
        p.send(topic, 1, payload.clone()).await;
        if let Some(reason) = reason {
            expected_total += 1;
            let newest = support::eventually(10, case, || {
                let (app, city) = (&app, &city);
                async move {
                    let d = dead_letters(app, city).await;
                    (d.len() == expected_total).then(|| d[0].clone())
                }
            })
            .await;
            assert_eq!(newest["reason"], *reason, "case {case}: {newest}");
            assert!(
                !newest["detail"].as_str().unwrap_or("").is_empty(),
                "case {case} says why"
            );
            assert_eq!(newest["topic"], topic.as_str());
        } else {
            // A valid call event: wait until its call is in the state.
            let call: serde_json::Value = serde_json::from_str(payload).unwrap();
            let key = format!("{city}/{}", call["call_id"].as_str().unwrap());
            support::entity(&app, "call", &key, case).await;
        }
    }
    // Nothing else was dead-lettered, and the loop still takes good messages.
    assert_eq!(dead_letters(&app, &city).await.len(), expected_total);
    a_good_kpi_arrives(&p, &app, &city, "a good message after the bad ones").await;
    let metrics = support::metrics(&app).await;
    for (_, _, _, reason) in &cases {
        if let Some(r) = reason {
            assert!(
                metrics.contains(&format!("kendali_rejected_total{{reason=\"{r}\"}}")),
                "metric for {r}"
            );
        }
    }
    let ready = reqwest::get(support::http(&app, "/readyz")).await.unwrap();
    assert!(ready.status().is_success());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_events_arriving_out_of_order_keep_their_stage_times() {
    let Some(url) = support::mosquitto("call_events_arriving_out_of_order_keep_their_stage_times")
    else {
        return;
    };
    let app = support::spawn(support::settings(Some(url.clone()))).await;
    let city = support::city("ooo");
    let p = Publisher::connect(&url).await;
    let wib = kendali::domain::wib();
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(120);
    let at = |s: i64| {
        (t0 + chrono::Duration::seconds(s))
            .with_timezone(&wib)
            .to_rfc3339()
    };
    let topic = format!("city/{city}/calls/119");
    // Published in the order: dispatched, received, answered (as a flaky network might deliver).
    for (kind, secs, extra) in [
        ("dispatched", 40, r#","agency":"dinkes","unit":"amb-02""#),
        ("received", 0, r#","caller":{"lat":-6.01,"lon":106.05}"#),
        ("answered", 12, ""),
    ] {
        let payload = format!(
            r#"{{"event_id":"{}","call_id":"k-1","ts":"{}","line":"119","type":"{kind}"{extra}}}"#,
            uuid::Uuid::new_v4(),
            at(secs)
        );
        p.send(&topic, 1, payload).await;
    }
    let key = format!("{city}/k-1");
    let call = support::eventually(10, "the call with three stages", || {
        let (app, key) = (&app, key.clone());
        async move {
            let c = support::get_json(app, "/api/state").await["entities"]["call"]
                .get(&key)
                .cloned()?;
            (c["events"] == 3).then_some(c)
        }
    })
    .await;
    assert_eq!(call["stage"], "dispatched");
    assert_eq!(call["answer_s"], 12.0);
    assert_eq!(call["dispatch_s"], 40.0);
    assert_eq!(call["open"], true);
    assert_eq!(call["unit"], "amb-02");
    let counters =
        support::get_json(&app, "/api/state").await["entities"]["counters"][&city].clone();
    assert_eq!(counters["lines"]["119"]["answered_within_15s"], 1);
    assert_eq!(counters["waiting_calls"], 0);
    assert_eq!(counters["open_calls"], 1);
    app.stop().await;
}

/// An upgrade from one connection: the broker still holds the old session
/// under the configured client id, subscribed to every family, calls
/// included. Kendali reads calls on its priority connection now; the main
/// one drops the old calls filter when it connects, so a call event is taken
/// once, not once per connection (the second copy would be refused as
/// `duplicate_event`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_kept_from_one_connection_does_not_deliver_call_events_twice() {
    let test = "a_session_kept_from_one_connection_does_not_deliver_call_events_twice";
    let Some(url) = support::mosquitto(test) else {
        return;
    };
    let settings = support::settings(Some(url.clone()));
    // The old session, as the previous version left it: persistent, every family.
    {
        use rumqttc::v5::{mqttbytes::QoS, AsyncClient, Event, MqttOptions};
        let u = kendali::bus::BrokerUrl::parse(&url).expect("test url");
        let mut o = MqttOptions::new(settings.mqtt.client_id.clone(), u.host, u.port);
        o.set_clean_start(false)
            .set_session_expiry_interval(Some(settings.mqtt.session_expiry_s));
        let (client, mut el) = AsyncClient::new(o, 100);
        for f in kendali::ingest::filters(&settings.mqtt, &settings.mqtt.families) {
            client
                .subscribe(f, QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        let mut subacks = 0;
        while subacks < settings.mqtt.families.len() {
            match tokio::time::timeout(Duration::from_secs(10), el.poll()).await {
                Ok(Ok(Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::SubAck(_)))) => {
                    subacks += 1
                }
                Ok(Ok(_)) => {}
                other => panic!("the old session's subscriptions: {other:?}"),
            }
        }
        client.disconnect().await.expect("disconnect");
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while el.poll().await.is_ok() {}
        })
        .await;
    }
    let app = support::spawn(settings).await;
    // Kendali does not wait for the broker to confirm the unsubscribes (some
    // brokers never do); Mosquitto has them within milliseconds of the
    // connection's start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let city = support::city("upgrade");
    let p = Publisher::connect(&url).await;
    let n = 20;
    for i in 0..n {
        let (_, payload) = support::call_event(&format!("u-{i}"), "received", "112");
        p.send(&format!("city/{city}/calls/112"), 1, payload).await;
    }
    support::eventually(10, "every call on the screens' state", || {
        let (app, city) = (&app, &city);
        async move {
            let state = support::get_json(app, "/api/state").await;
            let calls = state["entities"]["call"]
                .as_object()?
                .values()
                .filter(|v| v["city"] == city.as_str())
                .count();
            (calls == n).then_some(())
        }
    })
    .await;
    // Any second copy would have arrived by now on the main connection.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dupes: Vec<Value> = dead_letters(&app, &city)
        .await
        .into_iter()
        .filter(|d| d["reason"] == "duplicate_event")
        .collect();
    assert!(dupes.is_empty(), "no call event came twice: {dupes:?}");
    // Both connections are up: the main one on the old session, with its other filters.
    let m = support::metrics(&app).await;
    assert_eq!(
        support::metric(&m, "kendali_mqtt_connects_total"),
        2.0,
        "{m}"
    );
    app.stop().await;
}

/// Oversize messages as a faulty field device sends them: each is received,
/// dead-lettered as `payload_too_large` and acknowledged, and the connection
/// it came on stays up. Kendali once refused packets above 266 KB while the
/// brokers took 1 MiB: one such QoS 1 call event dropped the call connection
/// five times a second for good, since the broker redelivered it at every
/// reconnect, and no call arrived again.
async fn oversize_messages_are_dead_lettered_and_the_next_call_arrives(
    url: String,
    app: kendali::app::RunningApp,
    city: String,
) {
    let p = Publisher::connect(&url).await;
    let calls = format!("city/{city}/calls/112");
    let pad = |n: usize| format!(r#"{{"note":"{}"}}"#, "x".repeat(n));
    let mut screen =
        support::Screen::connect(&app, &format!("cities={city}&kinds=call_event")).await;
    screen
        .until(10, "the snapshot", |s| !s.frames.is_empty())
        .await;
    // A QoS 1 call event of 300 KB, then a valid one.
    p.send(&calls, 1, pad(300 * 1024)).await;
    let (_, valid) = support::call_event("after-oversize", "received", "112");
    let sent = std::time::Instant::now();
    p.send(&calls, 1, valid).await;
    screen
        .until(
            1,
            "the valid call event on the screen within a second",
            |s| {
                s.events
                    .iter()
                    .any(|(_, _, v)| v["call_id"] == "after-oversize")
            },
        )
        .await;
    let on_screen = sent.elapsed();
    // A QoS 0 message of 800 KB on the main connection.
    p.send(&format!("city/{city}/kpi/perizinan"), 0, pad(800 * 1024))
        .await;
    let dead = support::eventually(10, "both oversize messages dead-lettered", || {
        let (app, city) = (&app, &city);
        async move {
            let d = dead_letters(app, city).await;
            (d.len() >= 2).then_some(d)
        }
    })
    .await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (d, topic, bytes) in [
        (&dead[1], calls.clone(), 300 * 1024 + 11),
        (
            &dead[0],
            format!("city/{city}/kpi/perizinan"),
            800 * 1024 + 11,
        ),
    ] {
        assert_eq!(d["reason"], "payload_too_large", "{d}");
        assert_eq!(d["topic"], topic.as_str());
        assert_eq!(d["payload_bytes"], bytes);
    }
    // Nothing cost a connection: each connected once, and both are up.
    let m = support::metrics(&app).await;
    assert_eq!(
        support::metric(&m, "kendali_mqtt_connects_total"),
        2.0,
        "{m}"
    );
    let ready = reqwest::get(support::http(&app, "/readyz")).await.unwrap();
    assert!(ready.status().is_success());
    eprintln!("valid call event on the screen {on_screen:?} after publishing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_call_event_on_the_embedded_broker_is_dead_lettered_and_the_next_call_arrives()
{
    let app = support::spawn(support::settings(None)).await;
    let url = app.mqtt_url.clone();
    oversize_messages_are_dead_lettered_and_the_next_call_arrives(url, app, support::city("big"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_call_event_on_mosquitto_is_dead_lettered_and_the_next_call_arrives() {
    let test = "an_oversize_call_event_on_mosquitto_is_dead_lettered_and_the_next_call_arrives";
    let Some(mosquitto) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let app = support::spawn(support::settings(Some(mosquitto.url.clone()))).await;
    oversize_messages_are_dead_lettered_and_the_next_call_arrives(
        mosquitto.url.clone(),
        app,
        support::city("big"),
    )
    .await;
}

/// A retained oversize `info` is delivered to every node that subscribes,
/// new ones included: it must be dead-lettered, not refused by the client.
/// (On a private broker: retained on the shared one, it would reach every
/// other test that subscribes to every intersection.) Over MQTT 5, where
/// Kendali announces its packet limit in CONNECT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_oversize_info_is_dead_lettered_and_the_node_stays_connected() {
    let test = "a_retained_oversize_info_is_dead_lettered_and_the_node_stays_connected";
    let Some(mosquitto) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let url = mosquitto.url.clone();
    let city = support::city("bigret");
    let info = format!("city/{city}/atcs/x1/info");
    let p = Publisher::connect(&url).await;
    p.send_retained(&info, format!(r#"{{"name":"{}"}}"#, "x".repeat(300 * 1024)))
        .await;
    // The broker has it before the node starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut settings = support::settings(Some(url.clone()));
    settings.mqtt.protocol = kendali::config::MqttProtocol::V5;
    let app = support::spawn(settings).await;
    let dead = support::eventually(10, "the retained info dead-lettered", || {
        let (app, city) = (&app, &city);
        async move {
            let d = dead_letters(app, city).await;
            (!d.is_empty()).then_some(d)
        }
    })
    .await;
    assert_eq!(dead[0]["reason"], "payload_too_large", "{}", dead[0]);
    assert_eq!(dead[0]["topic"], info.as_str());
    // The main connection still takes messages.
    a_good_kpi_arrives(&p, &app, &city, "a KPI after the retained info").await;
    let m = support::metrics(&app).await;
    assert_eq!(
        support::metric(&m, "kendali_mqtt_connects_total"),
        2.0,
        "{m}"
    );
    app.stop().await;
}

/// A flood of bad call events through the embedded broker: it lets a
/// subscriber only 100 unacknowledged QoS 1 messages, and Kendali used to
/// acknowledge on the store's 200 ms timer: about 500 call events a second
/// got through, and a good call waited behind 50,000 bad ones for 13-27 s.
/// Now each stored batch is acknowledged at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_call_events_on_the_embedded_broker_does_not_hold_a_good_call_back() {
    let app = support::spawn(support::settings(None)).await;
    let city = support::city("flood");
    let topic = format!("city/{city}/calls/112");
    let p = support::CountingPublisher::connect(&app.mqtt_url).await;
    let mut screen =
        support::Screen::connect(&app, &format!("cities={city}&kinds=call_event")).await;
    screen
        .until(10, "the snapshot", |s| !s.frames.is_empty())
        .await;
    let n = 5000;
    for i in 0..n {
        p.send(&topic, format!("not a call {i}")).await;
    }
    let (_, good) = support::call_event("good", "received", "112");
    let sent = std::time::Instant::now();
    p.send(&topic, good).await;
    screen
        .until(30, "the good call after the flood", |s| {
            s.events.iter().any(|(_, _, v)| v["call_id"] == "good")
        })
        .await;
    let took = sent.elapsed();
    let m = support::metrics(&app).await;
    assert_eq!(
        support::metric(&m, "kendali_rejected_total{reason=\"invalid_json\"}"),
        n as f64
    );
    eprintln!(
        "the good call was on the screen {took:?} after it was published, behind {n} bad ones"
    );
    // 5,000 at about 500 a second took 10 s.
    assert!(took < Duration::from_secs(4), "{took:?}");
    app.stop().await;
}
