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
    let group = format!(
        "kendali-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
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
    let (total, distinct) = support::eventually(60, "3,000 distinct events stored", || {
        let (db, city) = (&db, city.clone());
        async move {
            let (t, d) = stored(db, &city).await;
            (d >= 3000).then_some((t, d))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((total, distinct), (3000, 3000), "0 lost, 0 duplicated");
    assert_eq!(
        stored(&db, &city).await,
        (3000, 3000),
        "and nothing twice later"
    );
    drop(b);
}
