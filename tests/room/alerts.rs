//! Alerts through the real broker (a Mosquitto of the test's own): each
//! rule raises on scripted input and clears when the input says so; every
//! transition is published on `city/{city}/alerts/{id}` (retained while the
//! alert is live, the retained copy cleared at normal) and stored; operators
//! acknowledge and shelve with their session's name, audited, and a
//! shelving runs out by itself.

use std::time::Duration;

use serde_json::{json, Value};

use kendali::app::RunningApp;
use kendali::contract::AlertRule;

use crate::support::{self, Listener, Publisher};
use crate::traffic::{junction, post, state};

/// A node on a Mosquitto of the test's own with the rules made quick, a
/// city of its own, and a publisher.
struct Room {
    mosquitto: support::PrivateMosquitto,
    app: RunningApp,
    city: String,
    p: Publisher,
}

async fn room(test: &str, tune: impl FnOnce(&mut kendali::config::Settings)) -> Option<Room> {
    let mosquitto = support::PrivateMosquitto::start(test)?;
    let mut s = support::settings(Some(mosquitto.url.clone()));
    // Nothing waits: each rule raises as soon as its condition holds.
    for r in s.alerts.rules.values_mut() {
        r.for_s = 0;
    }
    tune(&mut s);
    let app = support::spawn(s).await;
    let p = Publisher::connect(&mosquitto.url).await;
    Some(Room {
        mosquitto,
        app,
        city: support::city("alerts"),
        p,
    })
}

/// The live alert of `rule` on `entity`, once `done` holds of it.
async fn alert_until(
    app: &RunningApp,
    city: &str,
    rule: &str,
    entity: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    support::eventually(secs, what, || {
        let done = &done;
        async move {
            let all = support::get_json(app, &format!("/api/alerts?city={city}")).await;
            let a = all["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["rule"] == rule && a["entity"] == entity)
                .cloned()?;
            done(&a).then_some(a)
        }
    })
    .await
}

/// Waits until no live alert of `rule` on `entity` is left (back to normal).
async fn gone(app: &RunningApp, city: &str, rule: &str, entity: &str, secs: u64, what: &str) {
    support::eventually(secs, what, || async move {
        let all = support::get_json(app, &format!("/api/alerts?city={city}")).await;
        let left = all["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["rule"] == rule && a["entity"] == entity);
        (!left).then_some(())
    })
    .await
}

/// Every stored transition of the city's alerts today (the store's history).
async fn stored(app: &RunningApp, city: &str) -> Vec<Value> {
    let from = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let path = format!("/api/alerts?city={city}&from={}", url_escape(&from));
    support::get_json(app, &path).await["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn url_escape(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

fn transitions(all: &[Value], entity: &str) -> Vec<String> {
    all.iter()
        .filter(|a| a["entity"] == entity)
        .map(|a| a["transition"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn call(call_id: &str, kind: &str, line: &str, ts: &str) -> String {
    json!({
        "event_id": uuid::Uuid::new_v4(), "call_id": call_id, "ts": ts, "line": line, "type": kind,
    })
    .to_string()
}

fn ago(secs: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(secs))
        .with_timezone(&kendali::domain::wib())
        .to_rfc3339()
}

/// The surge rule clears too: the calls that made the surge leave its
/// one-hour window (they rang 59 min 50 s ago), and the alert waits,
/// cleared, for its acknowledgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_surge_clears_when_its_calls_leave_the_hour() {
    let test = "a_call_surge_clears_when_its_calls_leave_the_hour";
    let Some(r) = room(test, |s| {
        let mut surge = s.alerts.rules[&AlertRule::CallSurge].clone();
        surge.min_count = 4;
        s.alerts.rules.insert(AlertRule::CallSurge, surge);
    })
    .await
    else {
        return;
    };
    let (app, city, p) = (&r.app, &r.city, &r.p);
    let calls = format!("city/{city}/calls/119");
    // The baseline: one call at this hour a week ago.
    p.send(
        &calls,
        1,
        call("w-lastweek", "received", "119", &ago(7 * 86400 + 120)),
    )
    .await;
    p.send(
        &calls,
        1,
        call("w-lastweek", "answered", "119", &ago(7 * 86400 + 115)),
    )
    .await;
    // Four calls within the hour, at its very start: four times the baseline.
    for i in 0..4 {
        let id = format!("w-surge{i}");
        p.send(&calls, 1, call(&id, "received", "119", &ago(3590)))
            .await;
        p.send(&calls, 1, call(&id, "answered", "119", &ago(3589)))
            .await;
    }
    let a = alert_until(
        app,
        city,
        "call_surge",
        "line:119",
        10,
        "the surge alert",
        |a| a["state"] == "active_unack",
    )
    .await;
    assert!(a["value"].as_f64().unwrap() >= 2.0, "{a}");
    // Ten seconds on they are more than an hour old: the surge is over.
    alert_until(
        app,
        city,
        "call_surge",
        "line:119",
        20,
        "the surge alert cleared",
        |a| a["state"] == "cleared_unack",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_unit_rules_raise_and_clear_on_scripted_input_through_the_broker() {
    let test = "call_and_unit_rules_raise_and_clear_on_scripted_input_through_the_broker";
    let Some(r) = room(test, |s| {
        let rule = |s: &mut kendali::config::Settings, rule: AlertRule| {
            s.alerts
                .rules
                .get_mut(&rule)
                .expect("every rule has settings")
                .clone()
        };
        let mut unanswered = rule(s, AlertRule::CallUnanswered);
        unanswered.threshold = Some(2.0);
        s.alerts.rules.insert(AlertRule::CallUnanswered, unanswered);
        let mut answer = rule(s, AlertRule::AnswerTarget);
        answer.min_count = 2;
        answer.threshold = Some(50.0);
        s.alerts.rules.insert(AlertRule::AnswerTarget, answer);
        let mut surge = rule(s, AlertRule::CallSurge);
        surge.min_count = 4;
        s.alerts.rules.insert(AlertRule::CallSurge, surge);
        s.dispatch.unit_dispatched_s = 2;
    })
    .await
    else {
        return;
    };
    let (app, city, p) = (&r.app, &r.city, &r.p);
    let calls = format!("city/{city}/calls/112");
    let bus = Listener::listen(&r.mosquitto.url, &format!("city/{city}/alerts/+")).await;

    // A week ago at this hour, one call (the surge rule's baseline, below).
    p.send(
        &calls,
        1,
        call("c-lastweek", "received", "112", &ago(7 * 86400 + 120)),
    )
    .await;
    p.send(
        &calls,
        1,
        call("c-lastweek", "answered", "112", &ago(7 * 86400 + 115)),
    )
    .await;

    // A call ringing past 2 s is a priority-1 alert; once answered it has
    // cleared, and waits for an acknowledgement.
    p.send(&calls, 1, call("c-ring", "received", "112", &ago(0)))
        .await;
    let a = alert_until(
        app,
        city,
        "call_unanswered",
        "call:c-ring",
        10,
        "the ringing call's alert",
        |a| a["state"] == "active_unack",
    )
    .await;
    assert_eq!(a["priority"], 1, "{a}");
    assert!(a["value"].as_f64().unwrap() >= 2.0, "seconds ringing: {a}");
    assert_eq!(a["threshold"], 2.0);
    p.send(&calls, 1, call("c-ring", "answered", "112", &ago(0)))
        .await;
    alert_until(
        app,
        city,
        "call_unanswered",
        "call:c-ring",
        10,
        "the call's alert cleared",
        |a| a["state"] == "cleared_unack",
    )
    .await;

    // Answers slower than the target (15 s): with the ringing call's, one
    // of three within it, below 50 %: the target is missed over the window.
    for (id, waited) in [("c-slow1", 40), ("c-slow2", 35)] {
        p.send(&calls, 1, call(id, "received", "112", &ago(waited)))
            .await;
        p.send(&calls, 1, call(id, "answered", "112", &ago(0)))
            .await;
    }
    let a = alert_until(
        app,
        city,
        "answer_target",
        "line:112",
        10,
        "the answer-target alert",
        |_| true,
    )
    .await;
    assert!(a["value"].as_f64().unwrap() < 90.0, "{a}");
    assert_eq!(a["unit"], "%");

    // A surge: a week ago at this hour one call came; now five have, more
    // than twice that (the ones above count too).
    for i in 0..2 {
        let id = format!("c-surge{i}");
        p.send(&calls, 1, call(&id, "received", "112", &ago(1)))
            .await;
        p.send(&calls, 1, call(&id, "answered", "112", &ago(0)))
            .await;
    }
    let a = alert_until(
        app,
        city,
        "call_surge",
        "line:112",
        10,
        "the surge alert",
        |_| true,
    )
    .await;
    assert!(a["value"].as_f64().unwrap() >= 2.0, "{a}");
    // Those two were answered at once: 3 of 5 within the target, above 50 %.
    alert_until(
        app,
        city,
        "answer_target",
        "line:112",
        10,
        "the answer target met again",
        |a| a["state"] == "cleared_unack",
    )
    .await;

    // A unit dispatched for longer than its 2-s target; available again: cleared.
    let unit = format!("city/{city}/units/amb-09/status");
    let status = |s: &str| {
        json!({ "ts": support::now_wib(), "unit": "amb-09", "agency": "dinkes", "status": s, "call_id": "c-ring" })
            .to_string()
    };
    p.send_retained(&unit, status("dispatched")).await;
    let a = alert_until(
        app,
        city,
        "unit_stage",
        "unit:amb-09",
        10,
        "the unit's stage alert",
        |_| true,
    )
    .await;
    assert_eq!(a["group"], "call:c-ring", "grouped with its call: {a}");
    // En route (a 15-min target): a new stage counts again, and the alert clears.
    p.send_retained(&unit, status("en_route")).await;
    alert_until(
        app,
        city,
        "unit_stage",
        "unit:amb-09",
        10,
        "the unit's alert cleared by its next stage",
        |a| a["state"] == "cleared_unack",
    )
    .await;
    p.send_retained(&unit, status("available")).await;

    // Every transition is on the bus, the live ones retained; and stored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_bus = bus.payloads();
    let raised = on_bus
        .iter()
        .filter(|a| a["transition"] == "raised")
        .count();
    assert!(raised >= 4, "raised transitions on the bus: {on_bus:?}");
    let kept = stored(app, city).await;
    assert_eq!(
        transitions(&kept, "call:c-ring"),
        ["raised", "cleared"],
        "stored: {kept:?}"
    );
    assert_eq!(transitions(&kept, "unit:amb-09"), ["raised", "cleared"]);
    let late = Listener::listen(&r.mosquitto.url, &format!("city/{city}/alerts/+")).await;
    support::eventually(5, "the live alerts, retained", || async {
        let got = late.payloads();
        (got.len() >= 4).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junction_rules_raise_clear_and_a_dark_controllers_detector_fault_is_suppressed() {
    let test = "junction_rules_raise_clear_and_a_dark_controllers_detector_fault_is_suppressed";
    let Some(r) = room(test, |s| {
        s.state.stale_atcs_s = 2;
        s.traffic.congestion_cycles = 1;
        s.traffic.ack_timeout_s = 1;
    })
    .await
    else {
        return;
    };
    let (app, city, p) = (&r.app, &r.city, &r.p);
    let at = |id: &str| format!("city/{city}/atcs/{id}/state");

    // Congested for a whole cycle.
    let congested = |ts: String| {
        let mut s = state("j-macet", "adaptive", json!("pagi"), 60.0, json!(1), 0.99);
        s["ts"] = json!(ts);
        s
    };
    junction(p, city, "j-macet", "Cibeber", congested(ago(61))).await;
    p.send(&at("j-macet"), 0, congested(ago(0)).to_string())
        .await;
    let a = alert_until(
        app,
        city,
        "junction_congested",
        "intersection:j-macet",
        10,
        "congestion",
        |_| true,
    )
    .await;
    assert_eq!(a["district"], "Cibeber");
    assert_eq!(a["value"], 0.99);
    let calm = state("j-macet", "adaptive", json!("pagi"), 60.0, json!(1), 0.5);
    p.send(&at("j-macet"), 0, calm.to_string()).await;
    alert_until(
        app,
        city,
        "junction_congested",
        "intersection:j-macet",
        10,
        "congestion over",
        |a| a["state"] == "cleared_unack",
    )
    .await;

    // Flashing, with a detector fault: the flashing is news, the detector
    // is not (suppressed by design); signalling again: cleared, and then
    // the detector fault is raised.
    let mut dark = state("j-kedip", "flashing", json!("-"), 0.0, json!(0), 0.0);
    dark["approaches"][0]["detector_ok"] = json!(false);
    junction(p, city, "j-kedip", "Cibeber", dark.clone()).await;
    alert_until(
        app,
        city,
        "controller_flashing",
        "intersection:j-kedip",
        10,
        "flashing",
        |_| true,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let live = support::get_json(app, &format!("/api/alerts?city={city}")).await;
    assert!(
        !live["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "detector_fault"),
        "a flashing controller's detector fault is not raised: {live}"
    );
    let mut back = state("j-kedip", "fixed", json!("pagi"), 90.0, json!(1), 0.5);
    back["approaches"][0]["detector_ok"] = json!(false);
    p.send(&at("j-kedip"), 0, back.to_string()).await;
    alert_until(
        app,
        city,
        "controller_flashing",
        "intersection:j-kedip",
        10,
        "flashing over",
        |a| a["state"] == "cleared_unack",
    )
    .await;
    alert_until(
        app,
        city,
        "detector_fault",
        "intersection:j-kedip",
        10,
        "the detector fault",
        |a| a["priority"] == 4 && a["suppressed"] == false,
    )
    .await;
    let mut mended = back.clone();
    mended["approaches"][0]["detector_ok"] = json!(true);
    p.send(&at("j-kedip"), 0, mended.to_string()).await;
    alert_until(
        app,
        city,
        "detector_fault",
        "intersection:j-kedip",
        10,
        "the detector mended",
        |a| a["state"] == "cleared_unack",
    )
    .await;

    // Silent past 2 s: out of contact; heard again: cleared.
    alert_until(
        app,
        city,
        "controller_offline",
        "intersection:j-macet",
        15,
        "the silent controller",
        |_| true,
    )
    .await;
    p.send(&at("j-macet"), 0, calm.to_string()).await;
    alert_until(
        app,
        city,
        "controller_offline",
        "intersection:j-macet",
        10,
        "the controller heard again",
        |a| a["state"] == "cleared_unack",
    )
    .await;

    // A command nobody answers times out: an alert that acknowledging ends.
    let cmd = json!({
        "command_id": uuid::Uuid::new_v4(), "ts": support::now_wib(), "action": "extend_green",
        "approach": "A1", "seconds": 10, "reason": "uji", "issued_by": "budi",
    });
    p.send(
        &format!("city/{city}/atcs/j-macet/command"),
        1,
        cmd.to_string(),
    )
    .await;
    let entity = format!("command:{}", cmd["command_id"].as_str().unwrap());
    let a = alert_until(
        app,
        city,
        "command_timed_out",
        &entity,
        10,
        "the timed-out command",
        |_| true,
    )
    .await;
    assert_eq!(a["group"], "intersection:j-macet");
    let officer =
        support::sign_in(app, "petugas", &["traffic_officer"], &[city], &["Cibeber"]).await;
    let id = a["alert_id"].as_str().unwrap();
    let (status, body) = post(&officer, app, &format!("/api/alerts/{id}/ack"), json!({})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "pending");
    gone(
        app,
        city,
        "command_timed_out",
        &entity,
        10,
        "the acknowledged command alert",
    )
    .await;
    // The command stays timed out; its acknowledged alert does not come back.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let all = support::get_json(app, &format!("/api/alerts?city={city}")).await;
    let back = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["entity"] == entity.as_str());
    assert!(!back, "an acknowledged latching alert came back: {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_and_kpi_rules_raise_and_clear_on_scripted_input_through_the_broker() {
    let test = "feed_and_kpi_rules_raise_and_clear_on_scripted_input_through_the_broker";
    let Some(r) = room(test, |s| s.state.stale_kpi_s = 2).await else {
        return;
    };
    let (app, city, p) = (&r.app, &r.city, &r.p);
    let kpi = format!("city/{city}/kpi/perizinan");
    let sample = |v: f64| {
        json!({ "ts": support::now_wib(), "metric": "permits_on_time_pct", "value": v, "unit": "%", "target": 95.0 })
            .to_string()
    };
    p.send(&kpi, 1, sample(80.0)).await;
    let a = alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/permits_on_time_pct",
        10,
        "the KPI below target",
        |_| true,
    )
    .await;
    assert_eq!(
        (a["value"].clone(), a["threshold"].clone()),
        (json!(80.0), json!(95.0))
    );
    assert_eq!(a["group"], "service:perizinan");
    p.send(&kpi, 1, sample(97.0)).await;
    alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/permits_on_time_pct",
        10,
        "the KPI on target",
        |a| a["state"] == "cleared_unack",
    )
    .await;
    // Then the feed falls silent past its 2 s, and speaks again.
    alert_until(
        app,
        city,
        "feed_stale",
        "feed:kpi/perizinan",
        15,
        "the silent feed",
        |_| true,
    )
    .await;
    p.send(&kpi, 1, sample(97.0)).await;
    alert_until(
        app,
        city,
        "feed_stale",
        "feed:kpi/perizinan",
        10,
        "the feed back",
        |a| a["state"] == "cleared_unack",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_acknowledge_and_shelve_with_their_session_audited_and_a_shelving_runs_out() {
    let test =
        "operators_acknowledge_and_shelve_with_their_session_audited_and_a_shelving_runs_out";
    let Some(r) = room(test, |s| {
        // The shelving's minute must not make the KPI feed stale.
        s.state.stale_kpi_s = 3600;
        let mut k = s.alerts.rules[&AlertRule::KpiBelowTarget].clone();
        k.priority = 2;
        s.alerts.rules.insert(AlertRule::KpiBelowTarget, k);
    })
    .await
    else {
        return;
    };
    let (app, city, p) = (&r.app, &r.city, &r.p);
    let bus = Listener::listen(&r.mosquitto.url, &format!("city/{city}/alerts/+")).await;
    let sample = |metric: &str, v: f64| {
        json!({ "ts": support::now_wib(), "metric": metric, "value": v, "unit": "%", "target": 95.0 })
            .to_string()
    };
    let kpi = format!("city/{city}/kpi/perizinan");
    p.send(&kpi, 1, sample("a_pct", 50.0)).await;
    p.send(&kpi, 1, sample("b_pct", 50.0)).await;
    let a = alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/a_pct",
        10,
        "alert a",
        |_| true,
    )
    .await;
    let b = alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/b_pct",
        10,
        "alert b",
        |_| true,
    )
    .await;
    let (a_id, b_id) = (
        a["alert_id"].as_str().unwrap(),
        b["alert_id"].as_str().unwrap(),
    );

    // The wall watches; it does not acknowledge.
    let wall = support::sign_in(app, "layar", &["wall"], &[], &[]).await;
    let (status, _) = post(&wall, app, &format!("/api/alerts/{a_id}/ack"), json!({})).await;
    assert_eq!(status, 403);
    // An operator does, as themself whatever the body says.
    let op = support::sign_in(app, "sari", &["operator"], &[], &[]).await;
    let (status, body) = post(
        &op,
        app,
        &format!("/api/alerts/{a_id}/ack"),
        json!({ "reason": "dicek" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(
        &op,
        app,
        &format!("/api/alerts/{a_id}/ack"),
        json!({ "by": "bukan-sari" }),
    )
    .await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    let acked = alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/a_pct",
        10,
        "a acknowledged",
        |a| a["state"] == "active_ack",
    )
    .await;
    assert_eq!(acked["acked_by"], "sari");
    assert_eq!(acked["by"], "sari");
    let (status, body) = post(&op, app, &format!("/api/alerts/{a_id}/ack"), json!({})).await;
    assert_eq!(status, 409, "already acknowledged: {body}");

    // Shelving needs a reason and 1..=480 minutes.
    let path = format!("/api/alerts/{b_id}/shelve");
    for bad in [
        json!({ "minutes": 1 }),
        json!({ "reason": "x", "minutes": 0 }),
        json!({ "reason": "x", "minutes": 481 }),
    ] {
        let (status, body) = post(&op, app, &path, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let (status, _) = post(&op, app, "/api/alerts/not-an-id/ack", json!({})).await;
    assert_eq!(status, 400);
    let unknown = uuid::Uuid::new_v4();
    let (status, _) = post(&op, app, &format!("/api/alerts/{unknown}/ack"), json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = post(
        &op,
        app,
        &path,
        json!({ "reason": "pemeliharaan server", "minutes": 1 }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let shelved = alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/b_pct",
        10,
        "b shelved",
        |a| a["shelved_until"].is_string(),
    )
    .await;
    assert_eq!(shelved["shelved_by"], "sari");
    assert_eq!(shelved["reason"], "pemeliharaan server");

    // a: cleared while acknowledged is normal: gone from the live alerts,
    // and its retained message gone from the bus.
    p.send(&kpi, 1, sample("a_pct", 99.0)).await;
    gone(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/a_pct",
        10,
        "a back to normal",
    )
    .await;

    // The shelving runs out after its minute: b comes back by itself, unacknowledged.
    let back = alert_until(
        app,
        city,
        "kpi_below_target",
        "kpi:perizinan/b_pct",
        75,
        "b unshelved",
        |a| a["transition"] == "unshelved",
    )
    .await;
    assert_eq!(back["by"], "rule:shelving");
    assert_eq!(back["state"], "active_unack");
    assert!(back["shelved_until"].is_null(), "{back}");

    // Stored and published, every transition, with who made it.
    let kept = stored(app, city).await;
    assert_eq!(
        transitions(&kept, "kpi:perizinan/a_pct"),
        ["raised", "acknowledged", "normal"]
    );
    assert_eq!(
        transitions(&kept, "kpi:perizinan/b_pct"),
        ["raised", "shelved", "unshelved"]
    );
    let published: Vec<String> = bus
        .payloads()
        .iter()
        .filter(|a| a["entity"] == "kpi:perizinan/a_pct")
        .map(|a| a["transition"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        published,
        ["raised", "acknowledged", "normal"],
        "on the bus"
    );
    let late = Listener::listen(&r.mosquitto.url, &format!("city/{city}/alerts/+")).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let retained = late.payloads();
    assert_eq!(retained.len(), 1, "only b is still retained: {retained:?}");
    assert_eq!(retained[0]["entity"], "kpi:perizinan/b_pct");

    // The operators' requests are in the audit, as themselves.
    let audit = support::get_json_as_supervisor(app, "/api/admin/audit?action=alert_ack").await;
    let rows = audit["rows"].as_array().cloned().unwrap_or_default();
    assert!(
        rows.iter()
            .any(|r| r["actor"] == "sari" && r["outcome"] == "requested"),
        "{audit}"
    );
    let refused =
        support::get_json_as_supervisor(app, "/api/admin/audit?action=refused_role").await;
    assert!(
        refused["rows"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["actor"] == "layar")),
        "{refused}"
    );
}
