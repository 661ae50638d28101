//! Shutdown drains: on SIGTERM the stages stop in data-flow order (ingest
//! stops taking, the state hands off, the store writes its last batch and
//! acknowledges it, the connections disconnect), so nothing Kendali took is
//! left unwritten, nothing it wrote comes back, and what it did not take
//! comes at the next start. With the database away, the stop still ends
//! within `runtime.shutdown_grace_s` and loses nothing.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{self, CountingPublisher, PrivateMosquitto, ThrowawayPostgres};

/// `n` QoS 1 call events for `city`: calls of two events each (received, answered).
fn call_events(city: &str, n: usize) -> Vec<(String, String)> {
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(60);
    (0..n)
        .map(|i| {
            let (call, stage) = (i / 2, if i % 2 == 0 { "received" } else { "answered" });
            let ts = (t0 + chrono::Duration::milliseconds(i as i64 * 3 + (i % 2) as i64))
                .with_timezone(&kendali::domain::wib())
                .to_rfc3339();
            let line = if call % 3 == 0 { "119" } else { "112" };
            let payload = format!(
                r#"{{"event_id":"{}","call_id":"s{call}","ts":"{ts}","line":"{line}","type":"{stage}"}}"#,
                uuid::Uuid::new_v4()
            );
            (format!("city/{city}/calls/{line}"), payload)
        })
        .collect()
}

/// (rows, distinct event ids) of `city`'s call events in the database.
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

/// A `kendali serve` process whose log lines (stdout) are kept; killed and reaped
/// when the test ends, passing or failing.
struct Node {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn start(mqtt: &str, db: &str, client_id: &str, http: std::net::SocketAddr) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kendali"))
            .args([
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
            // Only call events are counted here: no alert of its own on the bus
            // (a call ringing past 20 s would raise one, and its retained
            // message would come back at the next start).
            .env("KENDALI__ALERTS__ENABLED", "false")
            .env("RUST_LOG", "info,rumqttc=warn,actix_server=warn")
            .env("NO_COLOR", "1")
            // The log goes to stdout.
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kendali");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stdout, lines) = (child.stdout.take().expect("piped"), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(strip_ansi(&line));
            }
        });
        Node { child, log }
    }

    async fn wait_ready(http: std::net::SocketAddr) {
        support::eventually(30, "kendali ready", || async move {
            reqwest::get(format!("http://{http}/readyz"))
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    /// SIGTERM, as a supervisor stops it; returns its exit status and how
    /// long it took, or panics after `secs`.
    fn terminate(&mut self, secs: u64) -> (std::process::ExitStatus, Duration) {
        let t0 = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM")
            .success();
        assert!(ok, "kill -TERM");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, t0.elapsed());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "kendali did not exit within {secs} s of SIGTERM; its log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> Vec<String> {
        // The reader thread sees the pipe close shortly after the exit.
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The index of the first log line containing `what` at or after `from`.
fn line_of(log: &[String], what: &str, from: usize) -> usize {
    log.iter()
        .skip(from)
        .position(|l| l.contains(what))
        .map(|i| i + from)
        .unwrap_or_else(|| {
            panic!(
                "no log line {what:?} after line {from}:\n{}",
                log.join("\n")
            )
        })
}

/// The value of `field=` on `line`.
fn field(line: &str, name: &str) -> u64 {
    let key = format!(" {name}=");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}= is not a number in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_stores_every_call_event_taken_and_the_next_start_the_rest_once() {
    let test = "sigterm_mid_stream_stores_every_call_event_taken_and_the_next_start_the_rest_once";
    let Some(broker) = PrivateMosquitto::start(test) else {
        return;
    };
    let Some(db_url) = support::postgres(test).await else {
        return;
    };
    kendali::store::postgres::migrate(&db_url)
        .await
        .expect("migrate");
    let db = support::pg(&db_url).await;
    let city = support::city("term");
    let client_id = format!(
        "kendali-term-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let http = support::free_addr();
    let mut node = Node::start(&broker.url, &db_url, &client_id, http);
    Node::wait_ready(http).await;

    // 4,000 call events at about 2,000 a second, published on through the
    // stop and the restart: the broker queues them for Kendali's session.
    const TOTAL: usize = 4000;
    let publisher = Arc::new(CountingPublisher::connect(&broker.url).await);
    let events = call_events(&city, TOTAL);
    let feed = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for chunk in events.chunks(10) {
                for (topic, payload) in chunk {
                    publisher.send(topic, payload.clone()).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    support::eventually(30, "the first 500 stored", || {
        let (db, city) = (&db, city.clone());
        async move { (stored(db, &city).await.1 >= 500).then_some(()) }
    })
    .await;

    // SIGTERM mid-stream: exit 0, within the grace (8 s) and its 2 s of steps.
    let (status, took) = node.terminate(12);
    assert!(status.success(), "kendali exits 0 on SIGTERM: {status}");
    let log = node.log();
    let drained = &log[line_of(&log, "pipeline drained: everything taken", 0)];
    let taken = field(drained, "taken");
    let (rows, distinct) = stored(&db, &city).await;
    eprintln!(
        "drain: exit after {} ms (the pipeline's {} ms); taken {taken}, last batch {} rows / {} acks, {} left to the broker; {rows} stored",
        took.as_millis(),
        field(drained, "elapsed_ms"),
        field(drained, "stored_last"),
        field(drained, "acked_last"),
        field(drained, "left_to_broker"),
    );
    assert!(
        (500..TOTAL as u64).contains(&taken),
        "stopped mid-stream: {taken}"
    );
    // No batch left unwritten, and every row of it acknowledged.
    assert_eq!(
        (rows, distinct),
        (taken as i64, taken as i64),
        "every call event taken is stored, once, when the process has exited"
    );
    assert_eq!(field(drained, "acked"), taken, "and acknowledged");
    // The stages stopped in data-flow order.
    let stop1 = line_of(&log, "ingest stopped taking messages", 0);
    let stop2 = line_of(&log, "ingest stopped taking messages", stop1 + 1);
    let state = line_of(&log, "state task stopped", stop2);
    let store = line_of(&log, "store flushed the last batch", state);
    let disc = line_of(&log, "ingest disconnected", store);
    line_of(&log, "ingest disconnected", disc + 1);
    line_of(&log, "hub stopped", state);
    line_of(&log, "pipeline drained", disc);
    eprintln!("{}", log[stop1..].join("\n"));

    // The next start gets the rest from the broker's session, and nothing
    // the first one acknowledged: every event stored exactly once.
    feed.await.expect("publishing");
    support::eventually(30, "the broker's acks for all 4,000", || {
        let n = publisher.acked();
        async move { (n >= TOTAL).then_some(()) }
    })
    .await;
    let mut node = Node::start(&broker.url, &db_url, &client_id, http);
    Node::wait_ready(http).await;
    support::eventually(60, "4,000 distinct events stored", || {
        let (db, city) = (&db, city.clone());
        async move { (stored(db, &city).await.1 >= TOTAL as i64).then_some(()) }
    })
    .await;
    // Give any straggler (a redelivery) the time to show up before judging.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored(&db, &city).await,
        (TOTAL as i64, TOTAL as i64),
        "0 lost, 0 duplicated"
    );
    let (status, _) = node.terminate(12);
    assert!(status.success());
    let log = node.log();
    let taken2 = field(&log[line_of(&log, "pipeline drained", 0)], "taken");
    assert_eq!(
        taken + taken2,
        TOTAL as u64,
        "the second run was redelivered exactly what the first did not acknowledge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_the_database_away_ends_within_the_grace_and_loses_nothing() {
    let test = "a_stop_with_the_database_away_ends_within_the_grace_and_loses_nothing";
    let Some(broker) = PrivateMosquitto::start(test) else {
        return;
    };
    let Some(pg) = ThrowawayPostgres::start(test) else {
        return;
    };
    let mut settings = support::settings(Some(broker.url.clone()));
    settings.database.url = Some(pg.url.clone());
    settings.runtime.shutdown_grace_s = 2;
    let app = support::spawn(settings.clone()).await;
    let city = support::city("away");
    let publisher = CountingPublisher::connect(&broker.url).await;
    let events = call_events(&city, 500);
    let (before, during) = events.split_at(200);
    for (t, p) in before {
        publisher.send(t, p.clone()).await;
    }
    let db = support::pg(&pg.url).await;
    support::eventually(20, "the first 200 stored", || {
        let (db, city) = (&db, city.clone());
        async move { (stored(db, &city).await.1 == 200).then_some(()) }
    })
    .await;
    drop(db);
    pg.pg_stop();
    for (t, p) in during {
        publisher.send(t, p.clone()).await;
    }
    support::eventually(20, "all 500 taken by the live state", || {
        let app = &app;
        async move {
            let m = support::metrics(app).await;
            (support::metric(&m, "kendali_messages_total{family=\"calls\"}") >= 500.0).then_some(())
        }
    })
    .await;

    let t0 = Instant::now();
    let report = app.stop().await;
    let took = t0.elapsed();
    eprintln!(
        "drain with the database away: {} ms, {report:?}",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(2 + 3),
        "the stop is bounded by the grace (2 s) and its steps: {took:?}"
    );
    assert_eq!(report.taken, 500);
    assert_eq!(report.store.acks, 200, "acknowledged: what was stored");
    assert_eq!(
        report.store.unacked, 300,
        "left to the broker: what the database did not take"
    );
    assert!(report.aborted.is_empty(), "{:?}", report.aborted);

    // The next start, with the database back: the 300 come again, once.
    pg.pg_start();
    let app = support::spawn(settings).await;
    let db = support::pg(&pg.url).await;
    support::eventually(30, "500 distinct events stored", || {
        let (db, city) = (&db, city.clone());
        async move { (stored(db, &city).await.1 >= 500).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stored(&db, &city).await, (500, 500), "0 lost, 0 duplicated");
    let report = app.stop().await;
    assert_eq!(
        report.taken, 300,
        "exactly the unacknowledged ones came back"
    );
    assert_eq!(report.store.unacked, 0);
}
