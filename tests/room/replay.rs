//! Replay: the room as it was, rebuilt from the store (`GET /api/state?at=T`),
//! against the live state recorded at that moment during a simulated run.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{self, Publisher};
use kendali::sensors::sim::Simulation;
use kendali::sensors::Scenario;

/// Waits until the node has acknowledged `n` QoS 1 messages (each after its
/// commit), then lets the state's and the hub's last updates settle.
async fn settled(app: &kendali::app::RunningApp, n: f64) {
    support::eventually(60, "every message stored and acknowledged", || async move {
        let m = support::metrics(app).await;
        (support::metric(&m, "kendali_mqtt_acks_total") >= n).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// An entity's value with its times as the database keeps them (to the
/// microsecond, in UTC): the live state has the nanoseconds it received;
/// and its fractions to 12 significant digits: a mean summed in arrival
/// order and in source-time order may differ in its last bit.
fn comparable(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let x = n.as_f64().unwrap_or_default();
            json!(format!("{x:.11e}").parse::<f64>().unwrap_or(x))
        }
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => {
                let micros = t.timestamp_micros();
                let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
                Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            }
            Err(_) => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(comparable).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), comparable(v))).collect())
        }
        _ => v.clone(),
    }
}

/// What of an entity is compared: a feed's live entity is refreshed at most
/// every few seconds (its freshness, not each message), so of a feed its
/// identity and whether it is stale; a junction's phase clock is not kept in
/// the store; of the rest everything.
fn compared(kind: &str, v: &Value) -> Value {
    let mut v = comparable(v);
    match kind {
        "feed" => {
            json!({ "city": v["city"], "family": v["family"], "source": v["source"], "stale": v["stale"] })
        }
        "intersection" => {
            if let Some(state) = v["state"].as_object_mut() {
                state.remove("phase_elapsed_s");
            }
            v
        }
        _ => v,
    }
}

/// Every entity of `live` equals its replay, and the replay has no other.
fn assert_same(live: &Value, replay: &Value, moment: &str) {
    let (l, r) = (&live["entities"], &replay["entities"]);
    let kinds: Vec<&String> = l.as_object().unwrap().keys().collect();
    let mut differences = Vec::new();
    for kind in kinds {
        let (lk, rk) = (l[kind].as_object().unwrap(), r[kind].as_object().unwrap());
        for (key, lv) in lk {
            match rk.get(key) {
                None => differences.push(format!("{kind} {key}: not in the replay")),
                Some(rv) if compared(kind, lv) != compared(kind, rv) => {
                    differences.push(format!("{kind} {key}:\n  live   {lv}\n  replay {rv}"))
                }
                Some(_) => {}
            }
        }
        for key in rk.keys().filter(|k| !lk.contains_key(*k)) {
            differences.push(format!("{kind} {key}: only in the replay"));
        }
    }
    assert!(
        differences.is_empty(),
        "{moment}: {} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// A simulated Cilegon published in three bursts, the live state recorded
/// after each; then the state rebuilt at each moment from the store equals
/// what was live then (calls, units, junctions, KPIs, the day's counters,
/// feeds), a moment before anything is empty, and a future one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_rebuilt_at_a_past_moment_equals_the_live_state_then() {
    let test = "the_state_rebuilt_at_a_past_moment_equals_the_live_state_then";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let mut settings = support::settings(None);
    settings.database.url = Some(db);
    let app = support::spawn(settings).await;
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut scenario = Scenario::builtin("cilegon-weekday").unwrap();
    scenario.start_time = Some("09:00".into());
    let mut sim = Simulation::new(scenario, 7, 60.0);
    let p = Publisher::connect(&app.mqtt_url).await;
    let mut published = 0.0;
    let mut moments = Vec::new();
    for burst in 0..3 {
        // Source times 5 ms apart, the last well before the moment recorded.
        let start = chrono::Utc::now().with_timezone(&kendali::domain::wib());
        let mut out = if burst == 0 {
            sim.initial(start)
        } else {
            Vec::new()
        };
        for step in 1..=40 {
            let now = start + chrono::Duration::milliseconds(5 * step);
            out.extend(sim.step(now, Duration::from_millis(250)));
        }
        for (topic, msg) in &out {
            p.send(&topic.to_string(), 1, msg.to_json()).await;
        }
        published += out.len() as f64;
        settled(&app, published).await;
        let live = support::get_json(&app, "/api/state").await;
        moments.push(live);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let calls = moments[2]["entities"]["call"].as_object().unwrap().len();
    assert!(calls >= 3, "the bursts rang calls: {calls}");

    for (i, live) in moments.iter().enumerate() {
        let at = live["server_time"].as_str().unwrap();
        let replay = support::get_json(&app, &format!("/api/state?at={}", urlencoding(at))).await;
        assert_eq!(replay["at"].as_str().unwrap()[..19], at[..19], "{i}");
        assert_same(live, &replay, &format!("moment {i} ({at})"));
    }
    // Before anything: an empty room. In the future: refused.
    let empty = support::get_json(
        &app,
        &format!("/api/state?at={}", urlencoding(&before.to_rfc3339())),
    )
    .await;
    for kind in ["call", "unit", "intersection", "kpi"] {
        assert_eq!(empty["entities"][kind], json!({}), "{kind}: {empty}");
    }
    // Played forward, as a replaying screen asks: once the moments are
    // settled, each answer goes on from the one before (a checkpoint) with
    // the messages in between, and still equals what was live then.
    let last: chrono::DateTime<chrono::Utc> =
        moments[2]["server_time"].as_str().unwrap().parse().unwrap();
    let settled_at = last
        + chrono::Duration::seconds(kendali::web::wall::replay::SETTLED_S)
        + chrono::Duration::milliseconds(500);
    if let Ok(wait) = (settled_at - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let mut previous = before.to_rfc3339();
    support::get_json(&app, &format!("/api/state?at={}", urlencoding(&previous))).await;
    for (i, live) in moments.iter().enumerate() {
        let at = live["server_time"].as_str().unwrap();
        let replay = support::get_json(&app, &format!("/api/state?at={}", urlencoding(at))).await;
        let from = replay["advanced_from"]
            .as_str()
            .unwrap_or_else(|| panic!("moment {i} went on from a checkpoint"));
        // The nearest checkpoint: the answer before, or this moment's own
        // from the first pass if it was settled by then.
        let (from_t, previous_t, at_t) = (
            from.parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
            previous.parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
            at.parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
        );
        assert!(
            previous_t <= from_t && from_t <= at_t,
            "moment {i} went on from {from}, between the answer before ({previous}) and itself"
        );
        assert_same(
            live,
            &replay,
            &format!("moment {i} ({at}), gone on from {from}"),
        );
        previous = at.to_owned();
    }
    let future = reqwest::get(support::http(
        &app,
        &format!(
            "/api/state?at={}",
            urlencoding(&(chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339())
        ),
    ))
    .await
    .unwrap();
    assert_eq!(future.status(), 400);
    assert!(future.text().await.unwrap().contains("in the future"));
    drop(p);
    app.stop().await;
}

/// Publishes `steps` quarter-seconds of the simulation with source times
/// from `start` (and its first state when `first`); returns how many.
async fn publish_sim(
    p: &Publisher,
    sim: &mut Simulation,
    start: chrono::DateTime<chrono::Utc>,
    first: bool,
    steps: i64,
) -> usize {
    let start = start.with_timezone(&kendali::domain::wib());
    let mut out = if first {
        sim.initial(start)
    } else {
        Vec::new()
    };
    for step in 1..=steps {
        let now = start + chrono::Duration::milliseconds(5 * step);
        out.extend(sim.step(now, Duration::from_millis(250)));
    }
    for (topic, msg) in &out {
        p.send(&topic.to_string(), 1, msg.to_json()).await;
    }
    out.len()
}

/// The node that runs the rules stores a checkpoint of what the day's
/// events built every `database.checkpoint_every_s`; a replay's first
/// moment starts from the newest one before it (the answer says
/// `"checkpoint"`), adds only the events after it, and still equals the
/// live state recorded at that moment: the calls, the day's counters with
/// their answer times, the feeds, the junctions, the units.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_starts_from_the_stored_checkpoint_and_equals_the_live_state() {
    let test = "a_replay_starts_from_the_stored_checkpoint_and_equals_the_live_state";
    let Some(url) = support::postgres(test).await else {
        return;
    };
    let mut settings = support::settings(None);
    settings.database.url = Some(url.clone());
    settings.database.checkpoint_every_s = 1;
    let app = support::spawn(settings).await;
    let db = support::pg(&url).await;
    let mut scenario = Scenario::builtin("cilegon-weekday").unwrap();
    scenario.start_time = Some("09:00".into());
    let mut sim = Simulation::new(scenario, 11, 60.0);
    let p = Publisher::connect(&app.mqtt_url).await;
    // Source times two minutes back: a checkpoint (taken 30 s in the past)
    // holds this burst within a second or two.
    let first = chrono::Utc::now() - chrono::Duration::seconds(120);
    let mut published = publish_sim(&p, &mut sim, first, true, 60).await as f64;
    settled(&app, published).await;
    let stored = chrono::Utc::now();
    let checkpoint: chrono::DateTime<chrono::Utc> =
        support::eventually(30, "a checkpoint of the first burst", || {
            let db = &db;
            async move {
                let r = db
                    .query_one(
                        "SELECT max(at), max(calls) FROM replay_checkpoints WHERE written > $1",
                        &[&stored],
                    )
                    .await
                    .expect("checkpoints");
                let (at, calls): (Option<chrono::DateTime<chrono::Utc>>, Option<i32>) =
                    (r.get(0), r.get(1));
                at.filter(|_| calls.unwrap_or(0) > 0)
            }
        })
        .await;
    // A second burst at the present, and a call answered: what the replay
    // reads beyond the newest checkpoint (30 s in the past).
    published += publish_sim(&p, &mut sim, chrono::Utc::now(), false, 60).await as f64;
    for kind in ["received", "answered"] {
        let (_, payload) = support::call_event("after-checkpoint", kind, "112");
        p.send("city/cilegon/calls/112", 1, payload).await;
        published += 1.0;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settled(&app, published).await;
    let live = support::get_json(&app, "/api/state").await;
    let calls = live["entities"]["call"].as_object().unwrap().len();
    assert!(calls >= 3, "the bursts rang calls: {calls}");
    let at = live["server_time"].as_str().unwrap();
    let replay = support::get_json(&app, &format!("/api/state?at={}", urlencoding(at))).await;
    let from: chrono::DateTime<chrono::Utc> = replay["checkpoint"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "started from a stored checkpoint: {}",
                &replay.to_string()[..200]
            )
        })
        .parse()
        .unwrap();
    assert!(
        from >= checkpoint,
        "the newest checkpoint before the moment: {from} (one after the first burst: {checkpoint})"
    );
    let after: i64 = db
        .query_one("SELECT count(*) FROM call_events WHERE ts > $1", &[&from])
        .await
        .unwrap()
        .get(0);
    println!("replayed from the checkpoint of {from} with {after} call events after it");
    assert!(
        after >= 2,
        "the answered call came after the checkpoint: {after}"
    );
    assert_same(
        &live,
        &replay,
        &format!("{at}, from the checkpoint of {from}"),
    );
    drop(p);
    app.stop().await;
}

/// A `+` written unescaped in a query string reads as a space.
fn urlencoding(t: &str) -> String {
    t.replace('+', "%2B")
}
