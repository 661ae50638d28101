//! The traffic officer's commands through the real broker (a Mosquitto of
//! the test's own): a command from `POST /api/atcs/.../command` reaches a
//! simulated controller and comes back applied, or rejected with the
//! controller's reason; a controller that never answers is shown timed out
//! at 10 s; a lease's end publishes its revert; the automatic mode keeps to
//! its hourly limit; bad input gets a 4xx and publishes nothing; a
//! SCATS-style feed (lettered phases, numbered plans, flashing with cycle 0)
//! is accepted and shown.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use kendali::app::RunningApp;

use crate::support::{self, Listener, Publisher, SignedIn};

/// A node on a Mosquitto of the test's own, a city of its own, and a publisher.
struct Room {
    mosquitto: support::PrivateMosquitto,
    app: RunningApp,
    city: String,
    p: Publisher,
}

/// The room for `test`, its settings tuned by `tune`; None when Mosquitto is missing (see support).
async fn room(
    test: &str,
    city: &str,
    tune: impl FnOnce(&mut kendali::config::Settings),
) -> Option<Room> {
    let mosquitto = support::PrivateMosquitto::start(test)?;
    let mut settings = support::settings(Some(mosquitto.url.clone()));
    tune(&mut settings);
    let app = support::spawn(settings).await;
    let p = Publisher::connect(&mosquitto.url).await;
    Some(Room {
        mosquitto,
        app,
        city: support::city(city),
        p,
    })
}

/// A command's entry in the live state, once `done` says so.
async fn command_until(
    app: &RunningApp,
    id: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    support::eventually(secs, what, || {
        let done = &done;
        async move {
            let c = support::get_json(app, "/api/state").await["entities"]["command"]
                .get(id)
                .cloned()?;
            done(&c).then_some(c)
        }
    })
    .await
}

/// POSTs `body` as `officer`: the status and the JSON answer (null when none).
pub(crate) async fn post(
    officer: &SignedIn,
    app: &RunningApp,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = officer
        .client
        .post(support::http(app, path))
        .json(&body)
        .send()
        .await
        .expect("POST answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A junction of our own (no simulated controller behind it): its info and
/// one state, `phase` and `plan` as given.
pub(crate) async fn junction(p: &Publisher, city: &str, id: &str, district: &str, state: Value) {
    let info = json!({
        "intersection": id, "name": format!("Simpang {id}"), "lat": -6.0, "lon": 106.0, "district": district,
        "approaches": [ { "id": "A1", "name": "Jl. Satu" }, { "id": "A2", "name": "Jl. Dua" } ],
    });
    p.send_retained(&format!("city/{city}/atcs/{id}/info"), info.to_string())
        .await;
    p.send(
        &format!("city/{city}/atcs/{id}/state"),
        0,
        state.to_string(),
    )
    .await;
}

pub(crate) fn state(
    id: &str,
    mode: &str,
    plan: Value,
    cycle: f64,
    phase: Value,
    saturation: f64,
) -> Value {
    json!({
        "ts": support::now_wib(), "intersection": id, "mode": mode, "plan": plan, "cycle_s": cycle,
        "phase": phase, "phase_elapsed_s": 0.0,
        "approaches": [
            { "id": "A1", "green_s": 30.0, "flow_vph": 900.0, "queue_m": 200.0, "saturation": saturation, "detector_ok": true },
            { "id": "A2", "green_s": 20.0, "flow_vph": 400.0, "queue_m": 20.0, "saturation": 0.4, "detector_ok": true },
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_reaches_a_simulated_controller_and_comes_back_applied_rejected_or_reverted_when_its_lease_ends(
) {
    let test = "a_command_reaches_a_simulated_controller_and_comes_back_applied_rejected_or_reverted_when_its_lease_ends";
    let Some(mosquitto) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let mut settings = support::settings(Some(mosquitto.url.clone()));
    settings.sim.enabled = true;
    settings.sim.scenario = "cirebon-atcs".into();
    let app = support::spawn(settings).await;
    let on_bus = Listener::listen(&mosquitto.url, "city/cirebon/atcs/+/command").await;
    let here = "/api/atcs/cirebon/simpang-gunungsari/command";
    support::entity(
        &app,
        "intersection",
        "cirebon/simpang-gunungsari",
        "the simulated junction",
    )
    .await;
    let officer = support::sign_in(
        &app,
        "petugas-kesambi",
        &["traffic_officer"],
        &["cirebon"],
        &["Kesambi"],
    )
    .await;

    // Applied, with its lease counting down.
    let (status, body) = post(&officer, &app, here, json!({ "action": "extend_green", "approach": "timur", "seconds": 20, "reason": "antrean timur panjang" })).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["command"]["issued_by"], "petugas-kesambi");
    let id = body["command"]["command_id"].as_str().unwrap().to_owned();
    let c = command_until(&app, &id, 10, "the extension applied", |c| {
        c["status"] != "pending"
    })
    .await;
    assert_eq!(c["status"], "applied", "{c}");
    assert_eq!(c["command"]["reason"], "antrean timur panjang");
    assert_eq!(c["lease"]["state"], "in_force", "{c}");
    assert_eq!(
        c["lease"]["revert"], false,
        "an extension ends by itself: {c}"
    );

    // Rejected, with the controller's reason.
    let (status, body) = post(
        &officer,
        &app,
        here,
        json!({ "action": "set_plan", "plan": "tidak-ada", "expires_in_s": 60, "reason": "uji" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["command"]["command_id"].as_str().unwrap().to_owned();
    let c = command_until(&app, &id, 10, "the unknown plan answered", |c| {
        c["status"] != "pending"
    })
    .await;
    assert_eq!(c["status"], "rejected", "{c}");
    assert!(
        c["reason"].as_str().unwrap().contains("unknown plan"),
        "{c}"
    );

    // A loudspeaker announcement from a template.
    let (status, body) = post(&officer, &app, here, json!({ "action": "announce", "template": "keep_box_clear", "reason": "kendaraan berhenti di tengah simpang" })).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body["command"]["message"]
            .as_str()
            .unwrap()
            .contains("Simpang Gunungsari"),
        "{body}"
    );
    let id = body["command"]["command_id"].as_str().unwrap().to_owned();
    let c = command_until(&app, &id, 10, "the announcement played", |c| {
        c["status"] != "pending"
    })
    .await;
    assert_eq!(c["status"], "applied", "{c}");

    // A plan leased for 10 s: applied, then reverted by Kendali itself.
    let (status, body) = post(&officer, &app, here, json!({ "action": "set_plan", "plan": "malam", "expires_in_s": 10, "reason": "acara malam" })).await;
    assert_eq!(status, 202, "{body}");
    let id = body["command"]["command_id"].as_str().unwrap().to_owned();
    let c = command_until(&app, &id, 10, "the plan applied", |c| {
        c["status"] != "pending"
    })
    .await;
    assert_eq!(c["status"], "applied", "{c}");
    assert_eq!(c["lease"]["revert"], true, "{c}");
    let c = command_until(&app, &id, 20, "the lease reverted", |c| {
        c["lease"]["state"] == "reverted"
    })
    .await;
    let revert = c["lease"]["reverted_by"].as_str().unwrap().to_owned();
    let r = command_until(&app, &revert, 10, "the revert applied", |c| {
        c["status"] != "pending"
    })
    .await;
    assert_eq!(r["status"], "applied", "{r}");
    assert_eq!(r["command"]["issued_by"], "rule:lease");
    assert_eq!(r["command"]["reverts"], id.as_str());
    assert_eq!(r["command"]["action"], "set_plan");
    let published: Vec<Value> = on_bus.payloads();
    assert_eq!(
        published
            .iter()
            .filter(|m| m["reverts"] == id.as_str())
            .count(),
        1,
        "one revert on the bus: {published:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_never_answers_gives_a_timeout_at_ten_seconds_and_a_late_answer_still_counts(
) {
    let test = "a_controller_that_never_answers_gives_a_timeout_at_ten_seconds_and_a_late_answer_still_counts";
    let Some(Room {
        mosquitto: _mosquitto,
        app,
        city,
        p,
    }) = room(test, "bisu", |_| {}).await
    else {
        return;
    };
    junction(
        &p,
        &city,
        "simpang-bisu",
        "Kota",
        state("simpang-bisu", "fixed", json!("pagi"), 90.0, json!(1), 0.5),
    )
    .await;
    support::entity(
        &app,
        "intersection",
        &format!("{city}/simpang-bisu"),
        "the junction known",
    )
    .await;
    let officer = support::sign_in(&app, "petugas-bisu", &["traffic_officer"], &[], &[]).await;
    let (status, body) = post(
        &officer,
        &app,
        &format!("/api/atcs/{city}/simpang-bisu/command"),
        json!({ "action": "extend_green", "approach": "A1", "seconds": 10, "reason": "uji" }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sent = Instant::now();
    let id = body["command"]["command_id"].as_str().unwrap().to_owned();
    let c = command_until(&app, &id, 5, "the command back through ingest", |c| {
        c["command"].is_object()
    })
    .await;
    assert_eq!(c["status"], "pending", "{c}");
    let c = command_until(&app, &id, 15, "the command timed out", |c| {
        c["status"] != "pending"
    })
    .await;
    let after = sent.elapsed();
    assert_eq!(c["status"], "timed_out", "{c}");
    assert!(c["reason"].as_str().unwrap().contains("10 s"), "{c}");
    assert!(
        after >= Duration::from_millis(9_500) && after <= Duration::from_millis(12_000),
        "timed out after {after:?}, not at 10 s"
    );
    // The controller wakes up: its answer is kept, marked late.
    let ack =
        json!({ "command_id": id, "ts": support::now_wib(), "status": "applied", "reason": null });
    p.send(
        &format!("city/{city}/atcs/simpang-bisu/command/ack"),
        1,
        ack.to_string(),
    )
    .await;
    let c = command_until(&app, &id, 10, "the late answer", |c| {
        c["status"] == "applied"
    })
    .await;
    assert_eq!(c["late"], true, "{c}");
    // The junction's history (from the node's memory: no database here).
    let history =
        support::get_json(&app, &format!("/api/history/commands/{city}/simpang-bisu")).await;
    let history = &history["points"];
    assert_eq!(history.as_array().map(Vec::len), Some(1), "{history}");
    assert_eq!(history[0]["status"], "applied", "{history}");
    assert_eq!(history[0]["command"]["reason"], "uji");
}

/// Junction simpang-padat of `city`, congested (approach A1 above 0.95
/// for more than one 2 s cycle), its state published every 500 ms until
/// the returned task is aborted.
async fn congested_junction(p: &Publisher, url: &str, city: &str) -> tokio::task::JoinHandle<()> {
    let congested = || {
        state(
            "simpang-padat",
            "adaptive",
            json!("pagi"),
            2.0,
            json!(1),
            1.3,
        )
    };
    junction(p, city, "simpang-padat", "Kota", congested()).await;
    let topic = format!("city/{city}/atcs/simpang-padat/state");
    let p = Publisher::connect(url).await;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            p.send(&topic, 0, congested().to_string()).await;
        }
    })
}

/// Waits until `app` flags junction `key` congested, proposing an
/// extension of approach A1.
async fn flagged_congested(app: &RunningApp, key: &str) {
    support::eventually(
        10,
        "the congestion flagged, with a suggestion",
        || async move {
            let j = support::get_json(app, "/api/state").await["entities"]["intersection"]
                .get(key)
                .cloned()?;
            (j["suggestions"].as_array()?.first()?["approach"] == "A1").then_some(())
        },
    )
    .await;
}

/// Puts simpang-padat of `city` in automatic mode as `officer` through `app`.
async fn auto_on(officer: &SignedIn, app: &RunningApp, city: &str) -> (u16, Value) {
    post(
        officer,
        app,
        &format!("/api/atcs/{city}/simpang-padat/auto"),
        json!({ "enabled": true, "reason": "jam sibuk" }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_extension_respects_its_hourly_limit_and_is_audited_as_the_rule() {
    let test = "an_automatic_extension_respects_its_hourly_limit_and_is_audited_as_the_rule";
    let Some(Room {
        mosquitto,
        app,
        city,
        p,
    }) = room(test, "otomatis", |s| {
        s.traffic.auto_max_s_per_hour = 30;
        s.traffic.auto_min_gap_s = 1;
        s.traffic.congestion_cycles = 1;
    })
    .await
    else {
        return;
    };
    let on_bus = Listener::listen(&mosquitto.url, &format!("city/{city}/atcs/+/command")).await;
    let feeder = congested_junction(&p, &mosquitto.url, &city).await;
    flagged_congested(&app, &format!("{city}/simpang-padat")).await;
    let officer = support::sign_in(&app, "petugas-otomatis", &["traffic_officer"], &[], &[]).await;
    let (status, body) = auto_on(&officer, &app, &city).await;
    assert_eq!(status, 200, "{body}");
    // Several ticks of the desk: the budget is spent, then nothing more.
    tokio::time::sleep(Duration::from_secs(8)).await;
    feeder.abort();
    let given: Vec<Value> = on_bus.payloads();
    assert!(given.len() >= 2, "extensions until the limit: {given:?}");
    for g in &given {
        assert_eq!(g["issued_by"], "rule:auto_extend", "{g}");
        assert_eq!(g["action"], "extend_green", "{g}");
        assert_eq!(g["approach"], "A1", "{g}");
    }
    let total: f64 = given.iter().map(|g| g["seconds"].as_f64().unwrap()).sum();
    assert_eq!(
        total, 30.0,
        "at most 30 s an hour, all of it given: {given:?}"
    );
    let admin = support::sign_in(&app, "admin-otomatis", &["admin"], &[], &[]).await;
    let audit = admin.get_json(&app, "/api/admin/audit?limit=1000").await;
    let by_rule = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == "rule:auto_extend" && r["outcome"] == "published")
        .count();
    assert_eq!(by_rule, given.len(), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_get_a_4xx_with_a_message_are_audited_and_publish_nothing() {
    let test = "bad_commands_get_a_4xx_with_a_message_are_audited_and_publish_nothing";
    let Some(Room {
        mosquitto,
        app,
        city,
        p,
    }) = room(test, "buruk", |_| {}).await
    else {
        return;
    };
    junction(
        &p,
        &city,
        "simpang-utara",
        "Utara",
        state("simpang-utara", "fixed", json!("pagi"), 90.0, json!(1), 0.5),
    )
    .await;
    junction(
        &p,
        &city,
        "simpang-selatan",
        "Selatan",
        state(
            "simpang-selatan",
            "fixed",
            json!("pagi"),
            90.0,
            json!(1),
            0.5,
        ),
    )
    .await;
    support::entity(
        &app,
        "intersection",
        &format!("{city}/simpang-selatan"),
        "the junction known",
    )
    .await;
    support::entity(
        &app,
        "intersection",
        &format!("{city}/simpang-utara"),
        "the junction known",
    )
    .await;
    let on_bus = Listener::listen(&mosquitto.url, &format!("city/{city}/atcs/+/command")).await;
    let officer = support::sign_in(
        &app,
        "petugas-utara",
        &["traffic_officer"],
        &[city.as_str()],
        &["Utara"],
    )
    .await;
    let dispatcher = support::sign_in(&app, "dispatcher-buruk", &["dispatcher"], &[], &[]).await;
    let here = format!("/api/atcs/{city}/simpang-utara/command");
    let there = format!("/api/atcs/{city}/simpang-selatan/command");
    for (case, who, path, body, status, says) in [
        (
            "unknown approach",
            &officer,
            &here,
            json!({ "action": "extend_green", "approach": "barat", "seconds": 10, "reason": "uji" }),
            400,
            "unknown approach \"barat\"",
        ),
        (
            "seconds out of range",
            &officer,
            &here,
            json!({ "action": "extend_green", "approach": "A1", "seconds": 90, "reason": "uji" }),
            400,
            "1..=60",
        ),
        (
            "no reason",
            &officer,
            &here,
            json!({ "action": "extend_green", "approach": "A1", "seconds": 10 }),
            400,
            "reason is required",
        ),
        (
            "flashing without confirmation",
            &officer,
            &here,
            json!({ "action": "set_mode", "mode": "flashing", "reason": "uji" }),
            400,
            "confirm",
        ),
        (
            "lease too long",
            &officer,
            &here,
            json!({ "action": "set_plan", "plan": "malam", "expires_in_s": 999999, "reason": "uji" }),
            400,
            "expires_in_s",
        ),
        (
            "unknown template",
            &officer,
            &here,
            json!({ "action": "announce", "template": "nyanyi", "reason": "uji" }),
            400,
            "unknown template",
        ),
        (
            "outside the officer's districts",
            &officer,
            &there,
            json!({ "action": "extend_green", "approach": "A1", "seconds": 10, "reason": "uji" }),
            403,
            "outside your cities and districts",
        ),
        (
            "a dispatcher",
            &dispatcher,
            &here,
            json!({ "action": "extend_green", "approach": "A1", "seconds": 10, "reason": "uji" }),
            403,
            "",
        ),
    ] {
        let (got, body) = post(who, &app, path, body).await;
        assert_eq!(got, status, "{case}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(says),
            "{case}: {body}"
        );
    }
    // Confirmed by typing the junction's id, the same command goes.
    let (status, body) = post(&officer, &app, &here, json!({ "action": "set_mode", "mode": "flashing", "reason": "uji", "confirm": "simpang-utara", "expires_in_s": 60 })).await;
    assert_eq!(status, 202, "{body}");
    support::eventually(5, "the confirmed command on the bus", || {
        let on_bus = &on_bus;
        async move { (on_bus.payloads().len() == 1).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = on_bus.payloads();
    assert_eq!(
        published.len(),
        1,
        "only the confirmed command: {published:?}"
    );
    assert_eq!(published[0]["mode"], "flashing");
    // The refusals are audited, each with its message.
    let admin = support::sign_in(&app, "admin-buruk", &["admin"], &[], &[]).await;
    let audit = admin.get_json(&app, "/api/admin/audit?limit=1000").await;
    let refused: Vec<&Value> = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "traffic_command"
                && r["outcome"].as_str().unwrap_or("").starts_with("refused")
        })
        .collect();
    assert_eq!(refused.len(), 7, "{audit}");
    // The dispatcher, refused at the gate for the role, is audited too.
    let by_role = audit["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "refused_role"
                && r["actor"] == "dispatcher-buruk"
                && r["entity"].as_str().unwrap_or("").ends_with("/command")
        })
        .count();
    assert_eq!(by_role, 1, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scats_style_feed_with_lettered_phases_and_numbered_plans_is_accepted_and_shown() {
    let test = "a_scats_style_feed_with_lettered_phases_and_numbered_plans_is_accepted_and_shown";
    let Some(Room {
        mosquitto: _mosquitto,
        app,
        city,
        p,
    }) = room(test, "scats", |_| {}).await
    else {
        return;
    };
    junction(
        &p,
        &city,
        "scats-1",
        "Kota",
        state("scats-1", "adaptive", json!(3), 96.0, json!("B"), 0.7),
    )
    .await;
    let key = format!("{city}/scats-1");
    let j = support::junction_state(&app, &key).await;
    assert_eq!(j["state"]["phase"], "B", "{j}");
    assert_eq!(j["state"]["plan"], "3", "{j}");
    // Flashing: cycle 0 and phase 0, as real controllers report it.
    p.send(
        &format!("city/{city}/atcs/scats-1/state"),
        0,
        state("scats-1", "flashing", json!(3), 0.0, json!(0), 0.0).to_string(),
    )
    .await;
    let j = support::eventually(10, "the flashing state", || {
        let (app, key) = (&app, &key);
        async move {
            let j = support::get_json(app, "/api/state").await["entities"]["intersection"]
                .get(key)
                .cloned()?;
            (j["state"]["mode"] == "flashing").then_some(j)
        }
    })
    .await;
    assert_eq!(j["state"]["phase"], 0);
    assert_eq!(j["conditions"][0]["kind"], "flashing", "{j}");
    // Still refused: a cycle of 0 or a phase 0 while signalling, a label that is no label.
    for (bad, says) in [
        (
            state("scats-1", "adaptive", json!(3), 0.0, json!("B"), 0.7),
            "cycle_s = 0",
        ),
        (
            state("scats-1", "adaptive", json!(3), 96.0, json!("B C"), 0.7),
            "\"B C\"",
        ),
        (
            state("scats-1", "adaptive", json!(3), 96.0, json!(0), 0.7),
            "0 only while flashing",
        ),
    ] {
        p.send(
            &format!("city/{city}/atcs/scats-1/state"),
            0,
            bad.to_string(),
        )
        .await;
        support::eventually(10, says, || {
            let app = &app;
            async move {
                let d = support::get_json_as_supervisor(app, "/api/deadletter?limit=10000").await;
                d["entries"]
                    .as_array()?
                    .iter()
                    .find(|e| e["detail"].as_str().unwrap_or("").contains(says))
                    .map(|_| ())
            }
        })
        .await;
    }
}

/// Answers every command of `city` as a controller would (applied), from a
/// task of its own; stops when dropped.
pub(crate) struct Controllers {
    task: tokio::task::JoinHandle<()>,
}

impl Controllers {
    pub(crate) async fn answer(url: &str, city: &str) -> Controllers {
        Controllers::answer_after(url, city, Duration::ZERO).await
    }

    /// The same, each answer `delay` after its command.
    pub(crate) async fn answer_after(url: &str, city: &str, delay: Duration) -> Controllers {
        let heard = Listener::listen(url, &format!("city/{city}/atcs/+/command")).await;
        let p = Publisher::connect(url).await;
        let task = tokio::spawn(async move {
            let mut answered = 0;
            loop {
                let all = heard.all();
                if all.len() > answered {
                    tokio::time::sleep(delay).await;
                }
                for (topic, cmd) in &all[answered..] {
                    let ack = json!({ "command_id": cmd["command_id"], "ts": support::now_wib(), "status": "applied", "reason": null });
                    p.send(&format!("{topic}/ack"), 1, ack.to_string()).await;
                }
                answered = all.len();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Controllers { task }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two junctions on a street running north (j-a, then j-b), a third off it.
async fn street(app: &RunningApp, p: &Publisher, city: &str) {
    for (id, lat, lon) in [
        ("j-a", -6.010, 106.0),
        ("j-b", -6.000, 106.0),
        ("j-off", -6.005, 106.01),
    ] {
        let info = json!({
            "intersection": id, "name": format!("Simpang {id}"), "lat": lat, "lon": lon, "district": "Kota",
            "approaches": [ { "id": "utara", "name": "Jl. Lurus (utara)" }, { "id": "selatan", "name": "Jl. Lurus (selatan)" } ],
        });
        p.send_retained(&format!("city/{city}/atcs/{id}/info"), info.to_string())
            .await;
        let s = json!({
            "ts": support::now_wib(), "intersection": id, "mode": "adaptive", "plan": "pagi", "cycle_s": 90, "phase": 1, "phase_elapsed_s": 0,
            "approaches": [ { "id": "utara", "green_s": 40, "flow_vph": 800, "queue_m": 40, "saturation": 0.7, "detector_ok": true },
                            { "id": "selatan", "green_s": 40, "flow_vph": 800, "queue_m": 40, "saturation": 0.7, "detector_ok": true } ],
        });
        p.send(&format!("city/{city}/atcs/{id}/state"), 1, s.to_string())
            .await;
        support::entity(app, "intersection", &format!("{city}/{id}"), "the junction").await;
    }
}

/// A unit's status on the street, en route.
fn unit_at(unit: &str, lat: f64) -> String {
    json!({ "ts": support::now_wib(), "unit": unit, "agency": "dinkes", "status": "en_route", "kind": "ambulance", "lat": lat, "lon": 106.0, "call_id": "119-koridor" }).to_string()
}

/// An ambulance south of the street, sent north to a call of `priority`.
async fn send_north(app: &RunningApp, p: &Publisher, city: &str, unit: &str, priority: u8) {
    p.send_retained(
        &format!("city/{city}/units/{unit}/status"),
        unit_at(unit, -6.020),
    )
    .await;
    let order = json!({
        "assignment_id": uuid::Uuid::new_v4(), "ts": support::now_wib(), "unit": unit, "action": "assign",
        "call_id": "119-koridor", "line": "119", "priority": priority, "destination": { "lat": -5.990, "lon": 106.0 }, "issued_by": "dispatcher-1",
    });
    p.send_retained(
        &format!("city/{city}/units/{unit}/assignment"),
        order.to_string(),
    )
    .await;
    support::eventually(10, "the unit and its order", || {
        let key = format!("{city}/{unit}");
        async move {
            let u = support::get_json_as_supervisor(app, "/api/state").await["entities"]["unit"]
                .get(&key)
                .cloned()?;
            (!u["assignment"].is_null()).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_sent_to_a_priority_1_call_gets_its_corridor_by_policy_and_a_priority_2_one_does_not(
) {
    let test = "a_unit_sent_to_a_priority_1_call_gets_its_corridor_by_policy_and_a_priority_2_one_does_not";
    let Some(Room {
        mosquitto,
        app,
        city,
        p,
    }) = room(test, "kebijakan", |s| {
        s.traffic.corridor_priority = 1;
    })
    .await
    else {
        return;
    };
    let _controllers = Controllers::answer(&mosquitto.url, &city).await;
    let on_bus = Listener::listen(&mosquitto.url, &format!("city/{city}/atcs/+/command")).await;
    street(&app, &p, &city).await;
    send_north(&app, &p, &city, "AMB-2", 2).await;
    send_north(&app, &p, &city, "AMB-1", 1).await;
    support::eventually(10, "the corridor by policy", || {
        let on_bus = &on_bus;
        async move { (on_bus.payloads().len() >= 2).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = on_bus.payloads();
    let held: Vec<(&str, &str, &str)> = sent
        .iter()
        .map(|c| {
            (
                c["unit"].as_str().unwrap_or(""),
                c["approach"].as_str().unwrap_or(""),
                c["issued_by"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            ("AMB-1", "selatan", "rule:corridor"),
            ("AMB-1", "selatan", "rule:corridor")
        ],
        "once, for the priority 1 unit only: {sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_corridor_holds_each_junction_on_the_units_way_and_releases_it_once_the_unit_has_passed(
) {
    let test = "a_green_corridor_holds_each_junction_on_the_units_way_and_releases_it_once_the_unit_has_passed";
    let Some(Room {
        mosquitto,
        app,
        city,
        p,
    }) = room(test, "koridor", |_| {}).await
    else {
        return;
    };
    let _controllers = Controllers::answer(&mosquitto.url, &city).await;
    street(&app, &p, &city).await;
    let at = |lat: f64| unit_at("AMB-9", lat);
    send_north(&app, &p, &city, "AMB-9", 2).await;
    let officer = support::sign_in(&app, "petugas-koridor", &["traffic_officer"], &[], &[]).await;
    let (status, body) = post(
        &officer,
        &app,
        &format!("/api/traffic/{city}/corridor"),
        json!({ "unit": "AMB-9", "reason": "P1 henti jantung", "expires_in_s": 120 }),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let held: Vec<(String, String, String)> = body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["intersection"].as_str().unwrap().to_owned(),
                c["approach"].as_str().unwrap().to_owned(),
                c["command_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let order_of: Vec<(&str, &str)> = held
        .iter()
        .map(|(i, a, _)| (i.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        order_of,
        [("j-a", "selatan"), ("j-b", "selatan")],
        "in the order met, on the approach it comes on: {body}"
    );
    for (_, _, id) in &held {
        let c = command_until(&app, id, 10, "the hold applied", |c| {
            c["status"] != "pending"
        })
        .await;
        assert_eq!(c["status"], "applied", "{c}");
        assert_eq!(c["command"]["action"], "priority");
        assert_eq!(c["command"]["unit"], "AMB-9");
        assert_eq!(c["lease"]["state"], "in_force", "{c}");
    }
    // The ambulance drives through j-a and on.
    for lat in [-6.0125, -6.0102, -6.0095, -6.0090, -6.0080] {
        p.send_retained(&format!("city/{city}/units/AMB-9/status"), at(lat))
            .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let c = command_until(&app, &held[0].2, 10, "j-a released once passed", |c| {
        c["lease"]["state"] == "reverted"
    })
    .await;
    let r = command_until(
        &app,
        c["lease"]["reverted_by"].as_str().unwrap(),
        10,
        "the release applied",
        |c| c["status"] != "pending",
    )
    .await;
    assert_eq!(r["command"]["issued_by"], "rule:corridor", "{r}");
    assert_eq!(r["command"]["approach"], "selatan");
    let b = support::get_json(&app, "/api/state").await["entities"]["command"][&held[1].2].clone();
    assert_eq!(
        b["lease"]["state"], "in_force",
        "j-b still held, not yet reached: {b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_mode_survives_a_restart_as_the_officers_left_it() {
    let test = "automatic_mode_survives_a_restart_as_the_officers_left_it";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let Some(Room {
        mosquitto,
        app,
        city,
        p,
    }) = room(test, "ingat", |s| {
        s.database.url = Some(db.clone());
    })
    .await
    else {
        return;
    };
    for id in ["simpang-on", "simpang-off"] {
        junction(
            &p,
            &city,
            id,
            "Kota",
            state(id, "adaptive", json!("pagi"), 90.0, json!(1), 0.5),
        )
        .await;
        support::entity(
            &app,
            "intersection",
            &format!("{city}/{id}"),
            "the junction",
        )
        .await;
    }
    let officer = support::sign_in(&app, "petugas-ingat", &["traffic_officer"], &[], &[]).await;
    for (id, on) in [
        ("simpang-on", true),
        ("simpang-off", true),
        ("simpang-off", false),
    ] {
        let (status, body) = post(
            &officer,
            &app,
            &format!("/api/atcs/{city}/{id}/auto"),
            json!({ "enabled": on, "reason": "uji" }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    app.stop().await;
    let mut settings = support::settings(Some(mosquitto.url.clone()));
    settings.database.url = Some(db.clone());
    let app = support::spawn(settings).await;
    let officer = support::sign_in(&app, "petugas-ingat-2", &["traffic_officer"], &[], &[]).await;
    let desk = support::eventually(10, "automatic mode restored", || {
        let (app, officer, city) = (&app, &officer, &city);
        async move {
            let d = officer
                .get_json(app, &format!("/api/traffic/{city}/desk"))
                .await;
            (!d["auto"].as_array()?.is_empty()).then_some(d)
        }
    })
    .await;
    let auto: Vec<(&str, &str)> = desk["auto"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["intersection"].as_str().unwrap(),
                a["enabled_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(auto, [("simpang-on", "petugas-ingat")], "{desk}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junction_takes_at_most_its_commands_a_minute_from_all_officers_together() {
    let test = "a_junction_takes_at_most_its_commands_a_minute_from_all_officers_together";
    let Some(Room {
        mosquitto,
        app,
        city,
        p,
    }) = room(test, "batas", |_| {}).await
    else {
        return;
    };
    junction(
        &p,
        &city,
        "simpang-ramai",
        "Kota",
        state("simpang-ramai", "fixed", json!("pagi"), 90.0, json!(1), 0.5),
    )
    .await;
    support::entity(
        &app,
        "intersection",
        &format!("{city}/simpang-ramai"),
        "the junction",
    )
    .await;
    let on_bus = Listener::listen(&mosquitto.url, &format!("city/{city}/atcs/+/command")).await;
    let (a, b) = (
        support::sign_in(&app, "petugas-batas-a", &["traffic_officer"], &[], &[]).await,
        support::sign_in(&app, "petugas-batas-b", &["traffic_officer"], &[], &[]).await,
    );
    let path = format!("/api/atcs/{city}/simpang-ramai/command");
    let body = json!({ "action": "announce", "template": "stop_line", "reason": "uji" });
    // Six between the two officers (the default limit), then the seventh is refused.
    for who in [&a, &b, &a, &b, &a, &b] {
        let (status, answer) = post(who, &app, &path, body.clone()).await;
        assert_eq!(status, 202, "{answer}");
    }
    let (status, answer) = post(&a, &app, &path, body.clone()).await;
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("simpang-ramai has had 6 commands"),
        "{answer}"
    );
    support::eventually(5, "the six on the bus", || {
        let on_bus = &on_bus;
        async move { (on_bus.payloads().len() == 6).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        on_bus.payloads().len(),
        6,
        "the refused one is not published"
    );
}

/// Two nodes of a shared group on one database: an officer puts a junction
/// in automatic mode through the node that does not run the rules; the node
/// that does extends its green, once per extension (not once per node),
/// until the hour's budget is spent. When that node stops, the other takes
/// the rules over and goes on with the budget spent before: no second
/// hour's worth. Both consoles list the junction in automatic mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_the_one_running_the_rules_extends_a_junction_put_in_automatic_mode_through_the_other(
) {
    let test = "of_two_nodes_the_one_running_the_rules_extends_a_junction_put_in_automatic_mode_through_the_other";
    let Some(mosquitto) = support::PrivateMosquitto::start(test) else {
        return;
    };
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let city = support::city("berdua");
    let group = support::shared_group();
    let node = |name: &str| {
        let mut s = support::settings(Some(mosquitto.url.clone()));
        s.database.url = Some(db.clone());
        s.mqtt.shared_group = Some(group.clone());
        s.mqtt.client_id = format!("{group}-{name}");
        s.traffic.auto_max_s_per_hour = 30;
        s.traffic.auto_min_gap_s = 1;
        s.traffic.congestion_cycles = 1;
        s
    };
    let mut apps = [
        Some(support::spawn(node("a")).await),
        Some(support::spawn(node("b")).await),
    ];
    let https = [0, 1].map(|i| apps[i].as_ref().unwrap().http_addr);
    let leader = support::rules_node(https).await;
    let other = 1 - leader;
    let on_bus = Listener::listen(&mosquitto.url, &format!("city/{city}/atcs/+/command")).await;
    let p = Publisher::connect(&mosquitto.url).await;
    let feeder = congested_junction(&p, &mosquitto.url, &city).await;
    for app in apps.iter().flatten() {
        flagged_congested(app, &format!("{city}/simpang-padat")).await;
    }
    let via = apps[other].as_ref().unwrap();
    let officer = support::sign_in(via, "petugas-berdua", &["traffic_officer"], &[], &[]).await;
    let (status, body) = auto_on(&officer, via, &city).await;
    assert_eq!(status, 200, "{body}");
    let total =
        |given: &[Value]| -> f64 { given.iter().map(|g| g["seconds"].as_f64().unwrap()).sum() };
    support::eventually(20, "the hour's budget given", || {
        let given = on_bus.payloads();
        async move { (total(&given) >= 30.0).then_some(()) }
    })
    .await;
    // The console of each node lists the junction, with what it has used.
    let desk = format!("/api/traffic/{city}/desk");
    for app in apps.iter().flatten() {
        support::eventually(10, "automatic mode and its budget on each node", || {
            let (officer, desk) = (&officer, &desk);
            async move {
                let d = officer.get_json(app, desk).await;
                let a = d["auto"].as_array()?.first()?.clone();
                (a["intersection"] == "simpang-padat" && a["used_s"] == 30).then_some(())
            }
        })
        .await;
    }
    // The node running the rules stops; the other takes them over.
    apps[leader].take().unwrap().stop().await;
    let survivor = apps[other].as_ref().unwrap();
    support::eventually(10, "the other node runs the rules", || async {
        support::runs_rules(survivor.http_addr).await.then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    feeder.abort();
    let given = on_bus.payloads();
    for g in &given {
        assert_eq!(g["issued_by"], "rule:auto_extend", "{g}");
        assert_eq!(g["approach"], "A1", "{g}");
    }
    assert_eq!(
        total(&given),
        30.0,
        "one node extends, and the one taking over spends no second budget: {given:?}"
    );
}
