//! Nothing is lost: QoS 1 call events survive Kendali being killed with
//! SIGKILL mid-stream, a restart of the broker under it, and an outage of the
//! database longer than Mosquitto's default queue (1,000 messages) would
//! hold, with none duplicated.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{self, CountingPublisher, PrivateMosquitto, Screen, ThrowawayPostgres};

/// `n` call events for `city`: calls of two events each (received, answered).
fn call_events(city: &str, n: usize) -> Vec<(String, String)> {
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(60);
    (0..n)
        .map(|i| {
            let (call, stage, at) = (i / 2, if i % 2 == 0 { "received" } else { "answered" }, (i % 2) as i64 * 7);
            let ts = (t0 + chrono::Duration::milliseconds(i as i64) + chrono::Duration::seconds(at)).with_timezone(&kendali::domain::wib()).to_rfc3339();
            let line = if call % 3 == 0 { "119" } else { "112" };
            let payload = format!(
                r#"{{"event_id":"{}","call_id":"d{call}","ts":"{ts}","line":"{line}","type":"{stage}"}}"#,
                uuid::Uuid::new_v4()
            );
            (format!("city/{city}/calls/{line}"), payload)
        })
        .collect()
}

async fn stored(db: &tokio_postgres::Client, city: &str) -> (i64, i64) {
    let r = db
        .query_one(
            "SELECT count(*), count(DISTINCT event_id) FROM call_events WHERE city = $1",
            &[&city],
        )
        .await
        .expect("count");
    (r.get(0), r.get(1))
}

/// Waits until `n` distinct call events of `city` are stored, then checks
/// that none is stored twice, then or a little later.
async fn each_stored_once(db: &tokio_postgres::Client, city: &str, n: i64) {
    let (total, distinct) = support::eventually(60, &format!("{n} distinct events stored"), || {
        let city = city.to_owned();
        async move {
            let (t, d) = stored(db, &city).await;
            (d >= n).then_some((t, d))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((total, distinct), (n, n), "0 lost, 0 duplicated");
    assert_eq!(stored(db, city).await, (n, n), "and nothing twice later");
}

/// A Kendali process killed (and reaped) when the test ends, passing or
/// failing: a failed assertion must not leave it running.
struct Node(Child);

impl Node {
    /// SIGKILL (std's `kill()` on Unix), and reap.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The event ids of `events`, in publishing order.
fn event_ids(events: &[(String, String)]) -> Vec<String> {
    events
        .iter()
        .map(|(_, p)| {
            serde_json::from_str::<serde_json::Value>(p).expect("JSON")["event_id"]
                .as_str()
                .expect("an event id")
                .to_owned()
        })
        .collect()
}

fn kendali(mqtt: &str, db: &str, client_id: &str, http: std::net::SocketAddr) -> Node {
    node(mqtt, db, client_id, http, None)
}

/// A Kendali process, in a shared group (`mqtt.shared_group`) if given.
fn node(
    mqtt: &str,
    db: &str,
    client_id: &str,
    http: std::net::SocketAddr,
    group: Option<&str>,
) -> Node {
    node_with(mqtt, db, client_id, http, group, &[])
}

/// [`node`] with more settings in its environment.
fn node_with(
    mqtt: &str,
    db: &str,
    client_id: &str,
    http: std::net::SocketAddr,
    group: Option<&str>,
    env: &[(&str, &str)],
) -> Node {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kendali"));
    cmd.args([
        "serve",
        "--no-sim",
        "--mqtt-url",
        mqtt,
        "--database-url",
        db,
        "--http",
        &http.to_string(),
    ])
    .env("KENDALI__MQTT__CLIENT_ID", client_id)
    .env("RUST_LOG", "error")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    if let Some(g) = group {
        cmd.env("KENDALI__MQTT__SHARED_GROUP", g);
    }
    cmd.envs(env.iter().copied());
    Node(cmd.spawn().expect("start kendali"))
}

/// A private Mosquitto and a migrated database (its URL and a client), or
/// None after a loud skip notice.
async fn broker_and_database(
    test: &str,
) -> Option<(PrivateMosquitto, String, tokio_postgres::Client)> {
    let broker = PrivateMosquitto::start(test)?;
    let db_url = support::postgres(test).await?;
    kendali::store::postgres::migrate(&db_url)
        .await
        .expect("migrate");
    let db = support::pg(&db_url).await;
    Some((broker, db_url, db))
}

/// Waits until the node on `http` answers `/readyz`.
async fn ready(http: std::net::SocketAddr) {
    support::eventually(30, "kendali ready", || async move {
        reqwest::get(format!("http://{http}/readyz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_call_events_survive_two_sigkills_with_none_lost_or_duplicated() {
    let test = "five_thousand_call_events_survive_two_sigkills_with_none_lost_or_duplicated";
    let Some((broker, db_url, db)) = broker_and_database(test).await else {
        return;
    };
    let city = support::city("kill");
    let client_id = format!(
        "kendali-kill-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let http = support::free_addr();
    let mut child = kendali(&broker.url, &db_url, &client_id, http);
    ready(http).await;
    let publisher = CountingPublisher::connect(&broker.url).await;
    let events = call_events(&city, 5000);
    let mut kills = 0;
    for (i, chunk) in events.chunks(250).enumerate() {
        for (topic, payload) in chunk {
            publisher.send(topic, payload.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        if i == 5 || i == 12 {
            child.kill();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
            child = kendali(&broker.url, &db_url, &client_id, http);
        }
    }
    assert_eq!(kills, 2);
    support::eventually(30, "the broker's acks for all 5,000", || {
        let n = publisher.acked();
        async move { (n >= 5000).then_some(()) }
    })
    .await;
    let (total, distinct) = support::eventually(60, "5,000 distinct events stored", || {
        let (db, city) = (&db, city.clone());
        async move {
            let (t, d) = stored(db, &city).await;
            (d >= 5000).then_some((t, d))
        }
    })
    .await;
    // Give any straggler (a redelivery) the time to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (total2, distinct2) = stored(&db, &city).await;
    assert_eq!((total, distinct), (5000, 5000), "0 lost, 0 duplicated");
    assert_eq!(
        (total2, distinct2),
        (5000, 5000),
        "and nothing arrived twice later"
    );
    let calls: i64 = db
        .query_one(
            "SELECT count(*) FROM calls WHERE city = $1 AND answered_at IS NOT NULL",
            &[&city],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(calls, 2500, "every call's projection has its answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_no_call_and_the_screens_keep_working() {
    let test = "a_database_outage_loses_no_call_and_the_screens_keep_working";
    let Some(broker) = PrivateMosquitto::start(test) else {
        return;
    };
    let Some(pg) = ThrowawayPostgres::start(test) else {
        return;
    };
    let mut settings = support::settings(Some(broker.url.clone()));
    settings.database.url = Some(pg.url.clone());
    let app = support::spawn(settings).await;
    let city = support::city("out");
    let mut screen = Screen::connect(&app, &format!("cities={city}&families=calls")).await;
    screen.step(Duration::from_secs(5)).await.expect("snapshot");
    let publisher = CountingPublisher::connect(&broker.url).await;
    let events = call_events(&city, 3500);
    let (before, during) = events.split_at(500);
    for (t, p) in before {
        publisher.send(t, p.clone()).await;
    }
    let db = support::pg(&pg.url).await;
    support::eventually(20, "the first 500 stored", || {
        let (db, city) = (&db, city.clone());
        async move { (stored(db, &city).await.1 == 500).then_some(()) }
    })
    .await;
    drop(db);
    pg.pg_stop();
    // 3,000 more while the database is away: three times Mosquitto's default queue.
    for (t, p) in during {
        publisher.send(t, p.clone()).await;
    }
    // The screens keep working: every call event reaches the live state and
    // the screen, once each and in the order published.
    screen
        .until(
            30,
            "all 3,500 events on the screen during the outage",
            |s| s.events.len() >= 3500,
        )
        .await;
    let on_screen: Vec<String> = screen
        .events
        .iter()
        .map(|(_, _, v)| v["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        on_screen,
        event_ids(&events),
        "every event on the screen once, in order"
    );
    // The store says so once a write has failed (a release build can get
    // every event to the screen before the store's next flush tries).
    support::eventually(10, "the store reporting itself degraded", || {
        let app = &app;
        async move {
            let ready = support::get_json(app, "/readyz").await;
            let metrics = support::metrics(app).await;
            (ready["store_degraded"] == true && metrics.contains("kendali_store_degraded 1"))
                .then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.pg_start();
    let db = support::pg(&pg.url).await;
    let (total, distinct) = support::eventually(60, "3,500 events stored after the outage", || {
        let (db, city) = (&db, city.clone());
        async move {
            let (t, d) = stored(db, &city).await;
            (d >= 3500).then_some((t, d))
        }
    })
    .await;
    assert_eq!((total, distinct), (3500, 3500), "0 lost, 0 duplicated");
    support::eventually(10, "the store no longer degraded", || {
        let app = &app;
        async move { (support::get_json(app, "/readyz").await["store_degraded"] == false).then_some(()) }
    })
    .await;
    assert_eq!(publisher.acked(), 3500);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_no_call_and_duplicates_none() {
    let test = "a_broker_restart_mid_stream_loses_no_call_and_duplicates_none";
    let Some(mut broker) = PrivateMosquitto::start(test) else {
        return;
    };
    let Some(db_url) = support::postgres(test).await else {
        return;
    };
    // Kendali as it runs in production: MQTT 3.1.1, persistent session, acks after commit.
    let mut settings = support::settings(Some(broker.url.clone()));
    settings.database.url = Some(db_url.clone());
    settings.mqtt.reconnect_max_ms = 500;
    let app = support::spawn(settings).await;
    let db = support::pg(&db_url).await;
    let city = support::city("restart");
    let publisher = CountingPublisher::connect_persistent(&broker.url).await;
    let events = call_events(&city, 2000);
    for (topic, payload) in &events[..1000] {
        publisher.send(topic, payload.clone()).await;
    }
    // The broker goes down while Kendali is still taking the first half.
    broker.restart();
    for (topic, payload) in &events[1000..] {
        publisher.send(topic, payload.clone()).await;
    }
    support::eventually(60, "the broker's acks for all 2,000", || {
        let n = publisher.acked();
        async move { (n >= 2000).then_some(()) }
    })
    .await;
    support::eventually(60, "2,000 distinct events stored", || {
        let (db, city) = (&db, city.clone());
        async move { (stored(db, &city).await.1 >= 2000).then_some(()) }
    })
    .await;
    // Give any straggler (a redelivery) the time to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored(&db, &city).await,
        (2000, 2000),
        "0 lost, 0 duplicated"
    );
    let m = support::metrics(&app).await;
    let connects = support::metric(&m, "kendali_mqtt_connects_total");
    assert!(
        connects >= 2.0,
        "Kendali reconnected after the restart: {connects}"
    );
    app.stop().await;
}

/// Two nodes share the bus (`mqtt.shared_group`) on the Mosquitto we ship;
/// one is killed with SIGKILL mid-stream. Mosquitto keeps the dead member's
/// share queued for its persistent session (it does not hand it to the
/// other member: mosquitto #1747), so the survivor stores only its own
/// share; the node restarted with its client id drains the rest: every call
/// event stored once, none lost (README, "Several nodes").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_two_killed_mid_stream_loses_nothing_once_it_returns_with_its_client_id() {
    let test = "a_node_of_two_killed_mid_stream_loses_nothing_once_it_returns_with_its_client_id";
    let Some((broker, db_url, db)) = broker_and_database(test).await else {
        return;
    };
    let city = support::city("share");
    let group = support::shared_group();
    let start = |id: &str, http| node(&broker.url, &db_url, id, http, Some(&group));
    let (a_id, b_id) = (format!("{group}-a"), format!("{group}-b"));
    let (a_http, b_http) = (support::free_addr(), support::free_addr());
    let _a = start(&a_id, a_http);
    let mut b = start(&b_id, b_http);
    ready(a_http).await;
    ready(b_http).await;
    let publisher = CountingPublisher::connect(&broker.url).await;
    let events = call_events(&city, 3000);
    for (i, chunk) in events.chunks(250).enumerate() {
        for (topic, payload) in chunk {
            publisher.send(topic, payload.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        if i == 3 {
            b.kill();
        }
    }
    support::eventually(30, "the broker's acks for all 3,000", || {
        let n = publisher.acked();
        async move { (n >= 3000).then_some(()) }
    })
    .await;
    // The survivor has stored its share; the dead member's waits at the broker.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, held) = stored(&db, &city).await;
    println!("with one of two members dead: {held} of 3,000 stored");
    assert!(
        (1000..3000).contains(&held),
        "with one member dead, Mosquitto holds its share for it: {held} of 3,000 stored"
    );
    // The node returns with its client id: its session's queue drains.
    b = start(&b_id, b_http);
    ready(b_http).await;
    each_stored_once(&db, &city, 3000).await;
    drop(b);
}

/// A wall on the node at `http` (the anonymous loopback wall), once its
/// first snapshot is in.
async fn wall_on(http: std::net::SocketAddr) -> Screen {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws"))
        .await
        .expect("ws connects");
    let mut s = Screen::new(ws);
    s.until(10, "the first snapshot", |s| !s.frames.is_empty())
        .await;
    s
}

/// The calls of `city` in a node's live state: call id -> (stage, events).
async fn live_calls(
    http: std::net::SocketAddr,
    city: &str,
) -> std::collections::BTreeMap<String, (String, u64)> {
    let state: serde_json::Value = reqwest::get(format!("http://{http}/api/state"))
        .await
        .expect("GET /api/state")
        .json()
        .await
        .expect("JSON");
    state["entities"]["call"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, c)| c["city"] == city)
        .map(|(_, c)| {
            (
                c["call_id"].as_str().unwrap_or_default().to_owned(),
                (
                    c["stage"].as_str().unwrap_or_default().to_owned(),
                    c["events"].as_u64().unwrap_or_default(),
                ),
            )
        })
        .collect()
}

/// The calls of `city` in the database's `calls` table, as [`live_calls`].
async fn stored_calls(
    db: &tokio_postgres::Client,
    city: &str,
) -> std::collections::BTreeMap<String, (String, u64)> {
    db.query(
        "SELECT call_id, stage, (projection->>'events')::bigint FROM calls WHERE city = $1",
        &[&city],
    )
    .await
    .expect("calls")
    .into_iter()
    .map(|r| (r.get(0), (r.get(1), r.get::<_, i64>(2) as u64)))
    .collect()
}

/// Three nodes share the bus (`mqtt.shared_group`), each with a view of all
/// of it; one is killed with SIGKILL in the middle of a surge of calls and
/// telemetry. Its wall reconnects to another node and has the whole city
/// within 2 s, with every call event of the surge and none twice; while it
/// is down the two others hold every call, as the database's `calls` rows
/// do (their views write the projections); its own share of the call events
/// waits at the broker (mosquitto #1747) and is stored, once, when it
/// returns with its client id, after which all three nodes agree with the
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_each_hold_the_whole_city_and_a_wall_survives_its_node_killed_mid_surge() {
    let test = "three_nodes_each_hold_the_whole_city_and_a_wall_survives_its_node_killed_mid_surge";
    let Some((broker, db_url, db)) = broker_and_database(test).await else {
        return;
    };
    let city = support::city("three");
    let group = support::shared_group();
    let start = |id: &str, http| node(&broker.url, &db_url, id, http, Some(&group));
    let ids: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("{group}-{n}"))
        .collect();
    let https: Vec<std::net::SocketAddr> = (0..3).map(|_| support::free_addr()).collect();
    let (_a, _b) = (start(&ids[0], https[0]), start(&ids[1], https[1]));
    let mut c = start(&ids[2], https[2]);
    for h in &https {
        ready(*h).await;
    }

    // The wall on node C, read in the background; when its socket ends it
    // reconnects to node A (what a load balancer in front of the nodes does).
    let events = call_events(&city, 3000);
    let wall = {
        let (c_http, a_http) = (https[2], https[0]);
        let expected: std::collections::HashSet<String> = event_ids(&events).into_iter().collect();
        tokio::spawn(async move {
            let mut on_c = wall_on(c_http).await;
            while on_c.step(Duration::from_secs(60)).await.is_some() {}
            let lost = std::time::Instant::now();
            let mut on_a = wall_on(a_http).await;
            let whole_after = lost.elapsed();
            // Until it has had every call event, from one node or the
            // other, or for 30 s.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let had = |on_c: &Screen, on_a: &Screen| {
                let seen: std::collections::HashSet<&str> = (on_c.events.iter())
                    .chain(on_a.events.iter())
                    .filter_map(|(_, _, v)| v["event_id"].as_str())
                    .collect();
                expected.iter().all(|id| seen.contains(id.as_str()))
            };
            while !had(&on_c, &on_a) && tokio::time::Instant::now() < deadline {
                on_a.step(Duration::from_secs(1)).await;
            }
            (on_c, on_a, whole_after)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The surge: 3,000 call events (1,500 calls) in about 3 s, with telemetry
    // of 100 junctions at 2,000 messages a second beside them.
    let publisher = CountingPublisher::connect(&broker.url).await;
    let telemetry = CountingPublisher::connect(&broker.url).await;
    let stop_telemetry = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let telemetry_task = {
        let (stop, city) = (stop_telemetry.clone(), city.clone());
        tokio::spawn(async move {
            let mut k = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ts = chrono::Utc::now()
                    .with_timezone(&kendali::domain::wib())
                    .to_rfc3339();
                for _ in 0..20 {
                    let id = kendali::bench::load::intersection_id(k as usize % 100);
                    let payload = kendali::bench::load::state_payload(&id, &ts, k);
                    telemetry
                        .client
                        .publish(
                            format!("city/{city}/atcs/{id}/state"),
                            rumqttc::QoS::AtMostOnce,
                            false,
                            payload,
                        )
                        .await
                        .expect("publish queued");
                    k += 1;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            k
        })
    };
    for (i, chunk) in events.chunks(100).enumerate() {
        for (topic, payload) in chunk {
            publisher.send(topic, payload.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if i == 12 {
            c.kill();
        }
    }
    stop_telemetry.store(true, std::sync::atomic::Ordering::Relaxed);
    let junction_messages = telemetry_task.await.expect("telemetry publisher");
    support::eventually(30, "the broker's acks for all 3,000", || {
        let n = publisher.acked();
        async move { (n >= 3000).then_some(()) }
    })
    .await;
    println!("published 3,000 call events and {junction_messages} junction messages");

    // With C down: A and B each hold every call at its last stage, and so
    // does the database's calls table; C's share of the events waits.
    let everything: std::collections::BTreeMap<String, (String, u64)> = (0..1500)
        .map(|k| (format!("d{k}"), ("answered".to_owned(), 2)))
        .collect();
    for (name, http) in [("A", https[0]), ("B", https[1])] {
        let city = city.clone();
        let calls = support::eventually(30, &format!("node {name} holds all 1,500 calls"), || {
            let city = city.clone();
            async move {
                let calls = live_calls(http, &city).await;
                (calls.len() >= 1500).then_some(calls)
            }
        })
        .await;
        assert_eq!(calls, everything, "node {name}'s state is the whole city");
    }
    let rows = support::eventually(30, "every call's row", || {
        let (db, city) = (&db, city.clone());
        async move {
            let rows = stored_calls(db, &city).await;
            (rows.values().filter(|(s, _)| s == "answered").count() >= 1500).then_some(rows)
        }
    })
    .await;
    assert_eq!(rows, everything, "the calls table has every call");
    // A's and B's shares stored (the count holds still for a second).
    let mut held = stored(&db, &city).await.0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stored(&db, &city).await.0;
        if now == held {
            break;
        }
        held = now;
    }
    println!("with C down: {held} of 3,000 call events stored, every call's row written");
    assert!(held < 3000, "C's share waits at the broker: {held} stored");

    // The wall: C's socket ended with C, A's snapshot came within 2 s, and
    // between them it saw every call event of the surge, none twice from A.
    let (on_c, on_a, whole_after) = wall.await.expect("the wall's task");
    println!(
        "the wall had {} call events from C, then A's whole city after {whole_after:?} and {} from A",
        on_c.events.len(),
        on_a.events.len()
    );
    assert!(
        whole_after < Duration::from_secs(2),
        "the wall had the whole city again within 2 s: {whole_after:?}"
    );
    let event_id = |v: &serde_json::Value| v["event_id"].as_str().unwrap_or_default().to_owned();
    let from_a: Vec<String> = on_a
        .events
        .iter()
        .filter(|(_, k, v)| k == "call_event" && v["call_id"].as_str().is_some())
        .map(|(_, _, v)| event_id(v))
        .collect();
    let distinct_a: std::collections::HashSet<&String> = from_a.iter().collect();
    assert_eq!(distinct_a.len(), from_a.len(), "no call event twice from A");
    let seen: std::collections::HashSet<String> = on_c
        .events
        .iter()
        .map(|(_, _, v)| event_id(v))
        .chain(from_a.iter().cloned())
        .collect();
    let missed: Vec<String> = event_ids(&events)
        .into_iter()
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(
        missed.is_empty(),
        "the wall missed {} call events, e.g. {:?}",
        missed.len(),
        missed.first()
    );
    assert!(
        !on_a.entities.is_empty() && on_a.frames[0]["type"] == "snapshot",
        "A's first frame is the whole city"
    );

    // C returns with its client id: its share is stored, once, and all
    // three nodes agree with the database.
    c = start(&ids[2], https[2]);
    ready(https[2]).await;
    each_stored_once(&db, &city, 3000).await;
    let rows = stored_calls(&db, &city).await;
    assert_eq!(rows, everything, "the calls table, once C wrote its share");
    for (name, http) in [("A", https[0]), ("B", https[1]), ("C", https[2])] {
        assert_eq!(
            live_calls(http, &city).await,
            rows,
            "node {name}'s state agrees with the database"
        );
    }
    drop(c);
}

/// The `raised` transitions stored for the call_unanswered alert of `call_id`.
async fn raised(db: &tokio_postgres::Client, city: &str, call_id: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM alert_events WHERE city = $1 AND rule = 'call_unanswered'
             AND entity LIKE '%' || $2 AND transition = 'raised'",
        &[&city, &call_id],
    )
    .await
    .expect("count")
    .get(0)
}

/// Several nodes each see the whole city, but one runs the rules (it holds
/// a PostgreSQL advisory lock): a call ringing too long is raised
/// once, not once per node. When that node is killed, another takes over
/// within seconds and the next ringing call is raised, once, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_several_nodes_one_raises_each_alert_and_another_takes_over_when_it_dies() {
    let test = "of_several_nodes_one_raises_each_alert_and_another_takes_over_when_it_dies";
    let Some((broker, db_url, db)) = broker_and_database(test).await else {
        return;
    };
    let city = support::city("lead");
    let group = support::shared_group();
    let start = |id: &str, http| node(&broker.url, &db_url, id, http, Some(&group));
    let https = [support::free_addr(), support::free_addr()];
    let mut nodes = [
        start(&format!("{group}-a"), https[0]),
        start(&format!("{group}-b"), https[1]),
    ];
    for h in https {
        ready(h).await;
    }
    let leader = support::rules_node(https).await;
    let publisher = CountingPublisher::connect(&broker.url).await;
    let ringing = |call_id: &str| {
        let ts = (chrono::Utc::now() - chrono::Duration::seconds(90))
            .with_timezone(&kendali::domain::wib())
            .to_rfc3339();
        format!(
            r#"{{"event_id":"{}","call_id":"{call_id}","ts":"{ts}","line":"112","type":"received"}}"#,
            uuid::Uuid::new_v4()
        )
    };
    let topic = format!("city/{city}/calls/112");
    publisher.send(&topic, ringing("r1")).await;
    support::eventually(15, "r1's alert raised", || {
        let (db, city) = (&db, city.clone());
        async move { (raised(db, &city, "r1").await > 0).then_some(()) }
    })
    .await;
    // Both nodes judge once a second: long enough for a second one to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        raised(&db, &city, "r1").await,
        1,
        "raised once, by one node"
    );

    nodes[leader].kill();
    let other = https[1 - leader];
    support::eventually(
        10,
        "the other node takes over the alert rules",
        || async move { support::runs_rules(other).await.then_some(()) },
    )
    .await;
    publisher.send(&topic, ringing("r2")).await;
    // The transition comes back through every node's view at once; the
    // dead node's share of the bus waits at Mosquitto for its session
    // (that may be r2's transition), so the row is checked after it returns.
    support::eventually(15, "r2's alert raised by the node that took over", || {
        let city = city.clone();
        async move { live_alert(other, &city, "r2").await.then_some(()) }
    })
    .await;
    let ids = [format!("{group}-a"), format!("{group}-b")];
    nodes[leader] = start(&ids[leader], https[leader]);
    ready(https[leader]).await;
    support::eventually(15, "r2's alert stored", || {
        let (db, city) = (&db, city.clone());
        async move { (raised(db, &city, "r2").await > 0).then_some(()) }
    })
    .await;
    // The returned node does not take the rules back while the other holds them.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !support::runs_rules(https[leader]).await,
        "the returned node waits its turn"
    );
    assert_eq!(raised(&db, &city, "r2").await, 1, "raised once");
    assert_eq!(raised(&db, &city, "r1").await, 1, "r1 not raised again");
}

/// Whether the node at `http` holds a `call_unanswered` alert on `call_id`
/// of `city` in its live state.
async fn live_alert(http: std::net::SocketAddr, city: &str, call_id: &str) -> bool {
    let state: serde_json::Value = reqwest::get(format!("http://{http}/api/state"))
        .await
        .expect("GET /api/state")
        .json()
        .await
        .expect("JSON");
    state["entities"]["alert"]
        .as_object()
        .into_iter()
        .flatten()
        .any(|(k, a)| {
            k.starts_with(&format!("{city}/"))
                && a["rule"] == "call_unanswered"
                && a["entity"].as_str().is_some_and(|e| e.ends_with(call_id))
        })
}

/// The per-minute rollup of `city` against its raw rows: (samples in
/// `atcs_minute`, samples in the raw rows, the largest difference of a
/// minute's average saturation).
async fn rollup_against_raw(db: &tokio_postgres::Client, city: &str) -> (i64, i64, f64) {
    let r = db
        .query_one(
            "WITH raw AS (
                 SELECT date_bin('1 minute', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, intersection, approach,
                        count(*) AS samples, avg(saturation) AS sat
                 FROM atcs_telemetry WHERE city = $1 GROUP BY 1, 2, 3)
             SELECT coalesce((SELECT sum(samples) FROM atcs_minute WHERE city = $1), 0)::bigint,
                    coalesce((SELECT sum(samples) FROM raw), 0)::bigint,
                    coalesce((SELECT max(abs(m.saturation_avg - raw.sat)) FROM raw JOIN atcs_minute m
                        ON m.city = $1 AND m.bucket = raw.bucket AND m.intersection = raw.intersection
                        AND m.approach = raw.approach), 1)::float8",
            &[&city],
        )
        .await
        .expect("rollup against raw rows");
    (r.get(0), r.get(1), r.get(2))
}

/// Two nodes of a shared group on a private broker and a fresh database:
/// A adds to the per-minute rollup every second, B once an hour (killed, it
/// has added none of its share). `n` controller messages of `junctions`
/// junctions over the last 10 minutes are published QoS 1, so that the two
/// share them.
struct RollupPair {
    broker: PrivateMosquitto,
    db_url: String,
    db: tokio_postgres::Client,
    city: String,
    group: String,
    ids: [String; 2],
    https: [std::net::SocketAddr; 2],
    _a: Node,
    b: Node,
    /// Held: its messages may still be on their way.
    _publisher: CountingPublisher,
}

const FAST_ROLLUP: [(&str, &str); 1] = [("KENDALI__DATABASE__ROLLUP_EVERY_S", "1")];

async fn rollup_pair(test: &str, prefix: &str, n: u64, junctions: u64) -> Option<RollupPair> {
    let (broker, db_url, db) = broker_and_database(test).await?;
    let city = support::city(prefix);
    let group = support::shared_group();
    let ids = [format!("{group}-a"), format!("{group}-b")];
    let https = [support::free_addr(), support::free_addr()];
    let slow = [("KENDALI__DATABASE__ROLLUP_EVERY_S", "3600")];
    let start = |i: usize, env: &[(&str, &str)]| {
        node_with(&broker.url, &db_url, &ids[i], https[i], Some(&group), env)
    };
    let (a, b) = (start(0, &FAST_ROLLUP), start(1, &slow));
    for h in https {
        ready(h).await;
    }
    let publisher = CountingPublisher::connect(&broker.url).await;
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    for k in 0..n {
        let ts = (base + chrono::Duration::seconds(k as i64))
            .with_timezone(&kendali::domain::wib())
            .to_rfc3339();
        let id = format!("j{}", k % junctions);
        let payload = kendali::bench::load::state_payload(&id, &ts, k);
        publisher
            .send(&format!("city/{city}/atcs/{id}/state"), payload)
            .await;
    }
    Some(RollupPair {
        broker,
        db_url,
        db,
        city,
        group,
        ids,
        https,
        _a: a,
        b,
        _publisher: publisher,
    })
}

impl RollupPair {
    /// Restarts B with its client id, adding every second.
    async fn restart_b(&mut self) {
        self.b = node_with(
            &self.broker.url,
            &self.db_url,
            &self.ids[1],
            self.https[1],
            Some(&self.group),
            &FAST_ROLLUP,
        );
        ready(self.https[1]).await;
    }
}

/// Two nodes share the bus and the database; one has stored its share of
/// the telemetry but not yet added it to the per-minute rollup when it is
/// killed. Restarted with its client id, it adds its own rows (the other
/// node's it leaves alone, and the other node's later additions are not
/// undone): the rollup equals the raw rows, sample for sample. A
/// recomputation from the shared watermark left the killed node's rows out
/// (the other node had raised the watermark past them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollup_of_two_nodes_is_exact_after_one_is_killed_with_its_sums_unwritten() {
    let test = "the_rollup_of_two_nodes_is_exact_after_one_is_killed_with_its_sums_unwritten";
    // 600 controller messages of 5 junctions.
    let Some(mut pair) = rollup_pair(test, "roll", 600, 5).await else {
        return;
    };
    let (db, city) = (&pair.db, pair.city.clone());
    support::eventually(30, "600 messages stored", || {
        let (db, city) = (&db, city.clone());
        async move {
            let n: i64 = db
                .query_one("SELECT count(*) FROM atcs_state WHERE city = $1", &[&city])
                .await
                .expect("count")
                .get(0);
            (n >= 600).then_some(())
        }
    })
    .await;
    // A's share is added; B's is not.
    let (summed, raw, _) = support::eventually(15, "A's share in the rollup", || {
        let (db, city) = (&db, city.clone());
        async move {
            let r = rollup_against_raw(db, &city).await;
            (r.0 > 0).then_some(r)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("before the kill: {summed} of {raw} readings in the rollup");
    assert_eq!(raw, 2400, "600 messages of 4 approaches");
    assert!(
        summed < raw,
        "B's share is not added yet: {summed} of {raw}"
    );
    pair.b.kill();
    pair.restart_b().await;
    let (db, city) = (&pair.db, pair.city.clone());
    let (summed, raw, worst) = support::eventually(20, "every reading in the rollup", || {
        let (db, city) = (&db, city.clone());
        async move {
            let r = rollup_against_raw(db, &city).await;
            (r.0 >= r.1).then_some(r)
        }
    })
    .await;
    // Long enough for either node to add anything twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollup_against_raw(db, &city).await.0,
        raw,
        "nothing added twice later"
    );
    assert_eq!(summed, raw, "the rollup has every reading once");
    assert!(
        worst < 1e-5,
        "each minute's average as the raw rows': {worst}"
    );
}

/// A node taken out of a shared group for good (`kendali nodes forget`):
/// refused while it looks alive; with `--force` the rows it stored but had
/// not added are added to the rollup (exact again, sample for sample) and
/// it is listed as retired. Started again with its client id, it counts
/// again and adds nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_gone_for_good_is_forgotten_its_rows_rolled_up_and_it_counts_again_on_return() {
    let test = "a_node_gone_for_good_is_forgotten_its_rows_rolled_up_and_it_counts_again_on_return";
    let Some(mut pair) = rollup_pair(test, "forget", 400, 4).await else {
        return;
    };
    let (db_url, a_id, b_id) = (
        pair.db_url.clone(),
        pair.ids[0].clone(),
        pair.ids[1].clone(),
    );
    let (db, city) = (&pair.db, pair.city.clone());
    let (summed, raw, _) = support::eventually(30, "A's share in the rollup", || {
        let (db, city) = (&db, city.clone());
        async move {
            let r = rollup_against_raw(db, &city).await;
            (r.1 == 1600 && r.0 > 0).then_some(r)
        }
    })
    .await;
    assert!(summed < raw, "B's share is not added: {summed} of {raw}");
    pair.b.kill();
    let cli = |args: &[&str]| {
        let mut all = vec!["nodes"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--database-url", &db_url]);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        support::kendali(&refs, None).await
    };
    let (code, out) = run(cli(&["forget", &b_id])).await;
    assert_ne!(code, 0, "refused while it looks alive: {out}");
    assert!(out.contains("looks alive"), "{out}");
    let (code, out) = run(cli(&["forget", "no-such-node"])).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("kendali nodes list"), "{out}");
    let (code, out) = run(cli(&["forget", &b_id, "--force"])).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        rollup_against_raw(db, &city).await.0,
        raw,
        "B's rows added: {out}"
    );
    let (code, out) = run(cli(&["list"])).await;
    assert_eq!(code, 0, "{out}");
    let line = |out: &str, id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} listed: {out}"))
            .to_owned()
    };
    assert!(line(&out, &b_id).contains("retired"), "{out}");
    assert!(!line(&out, &a_id).contains("retired"), "{out}");
    let audited: i64 = db
        .query_one(
            "SELECT count(*) FROM audit WHERE action = 'node_retired' AND entity = $1",
            &[&format!("node:{b_id}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 1, "the retirement is audited");
    // B returns: it counts again, and adds nothing twice.
    pair.restart_b().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, out) = run(cli(&["list"])).await;
    assert!(!line(&out, &b_id).contains("retired"), "{out}");
    let (summed, raw, worst) = rollup_against_raw(&pair.db, &city).await;
    assert_eq!(summed, raw, "nothing added twice");
    assert!(worst < 1e-5, "{worst}");
}
