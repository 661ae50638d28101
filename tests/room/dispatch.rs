//! The dispatcher's actions (`POST /api/calls/{city}/{call_id}/actions`)
//! against a running node and its embedded broker: every action comes back
//! through ingest with the session's user as `operator`; a retried
//! `action_id` publishes once; two people racing for a call or a unit get
//! one 202 and one 409; bad input gets a 4xx and publishes nothing.

use serde_json::{json, Value};

use kendali::app::RunningApp;

use crate::support::{self, Publisher, SignedIn};

/// A node on its embedded broker, and a publisher standing in for the call
/// centre's switch and the field units.
async fn room() -> (RunningApp, Publisher, String) {
    let settings = support::settings(None);
    let url = format!("mqtt://{}", settings.mqtt.broker_addr);
    let app = support::spawn(settings).await;
    let field = Publisher::connect(&url).await;
    (app, field, support::city("dispatch"))
}

/// What the field units hear: every order on `city/{city}/units/+/assignment`.
struct Orders(support::Listener);

impl Orders {
    async fn listen(url: &str, city: &str) -> Orders {
        Orders(support::Listener::listen(url, &format!("city/{city}/units/+/assignment")).await)
    }

    fn all(&self) -> Vec<Value> {
        self.0.payloads()
    }
}

/// The switch rings a call on `line`; waits until the live state has it.
async fn ring(app: &RunningApp, field: &Publisher, city: &str, call: &str, line: &str) {
    let payload = json!({
        "event_id": uuid::Uuid::new_v4(),
        "call_id": call,
        "ts": support::now_wib(),
        "line": line,
        "type": "received",
        "callback": "+62 812-3456-7890",
        "caller": { "lat": -6.0, "lon": 106.05 },
    });
    field
        .send(&format!("city/{city}/calls/{line}"), 1, payload.to_string())
        .await;
    support::entity(app, "call", &format!("{city}/{call}"), "the ringing call").await;
}

/// A field unit reports itself available.
async fn unit(app: &RunningApp, field: &Publisher, city: &str, unit: &str) {
    let payload = json!({
        "ts": support::now_wib(),
        "unit": unit,
        "agency": "dinkes",
        "status": "available",
        "kind": "ambulance",
        "lat": -6.01,
        "lon": 106.04,
    });
    field
        .send_retained(
            &format!("city/{city}/units/{unit}/status"),
            payload.to_string(),
        )
        .await;
    support::entity(app, "unit", &format!("{city}/{unit}"), "the unit").await;
}

/// Sends an action with a fresh `action_id`; the status and the body.
async fn act(
    who: &SignedIn,
    app: &RunningApp,
    city: &str,
    call: &str,
    body: Value,
) -> (u16, Value) {
    let mut body = body;
    if body.get("action_id").is_none() {
        body["action_id"] = uuid::Uuid::new_v4().to_string().into();
    }
    send(who, app, city, call, &body).await
}

async fn send(
    who: &SignedIn,
    app: &RunningApp,
    city: &str,
    call: &str,
    body: &Value,
) -> (u16, Value) {
    let r = who
        .client
        .post(support::http(
            app,
            &format!("/api/calls/{city}/{call}/actions"),
        ))
        .json(body)
        .send()
        .await
        .expect("the action endpoint answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the call's live projection lists the action: its events came
/// back through ingest. Returns the projection.
async fn echoed(app: &RunningApp, city: &str, call: &str, answer: &Value) -> Value {
    let id = answer["action_id"]
        .as_str()
        .expect("an action_id")
        .to_owned();
    let key = format!("{city}/{call}");
    support::eventually(10, &format!("action {id} back through ingest"), || {
        let (key, id) = (key.clone(), id.clone());
        async move {
            let state = support::get_json(app, "/api/state").await;
            let c = state["entities"]["call"].get(&key)?.clone();
            c["actions"]
                .as_array()?
                .iter()
                .any(|a| a == id.as_str())
                .then_some(c)
        }
    })
    .await
}

async fn timeline(who: &SignedIn, app: &RunningApp, city: &str, call: &str) -> Vec<Value> {
    who.get_json(app, &format!("/api/calls/{city}/{call}"))
        .await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_goes_from_ring_to_close_with_the_session_user_on_every_event() {
    let (app, field, city) = room().await;
    let dewi = support::sign_in(&app, "dewi", &["dispatcher"], &[&city], &[]).await;
    ring(&app, &field, &city, "c-100", "112").await;
    unit(&app, &field, &city, "AMB-01").await;
    unit(&app, &field, &city, "AMB-02").await;

    let steps = [
        json!({ "action": "answer" }),
        json!({ "action": "classify", "category": "medical", "priority": 1, "triage": "normal", "protocol": "10-D-1" }),
        json!({ "action": "locate", "lat": -6.02, "lon": 106.06, "address": "Jl. Ahmad Yani 12" }),
        json!({ "action": "note", "text": "pasien sesak napas, sadar" }),
        json!({ "action": "dispatch", "units": ["AMB-01"] }),
        json!({ "action": "cancel_unit", "unit": "AMB-01", "note": "ban bocor" }),
        json!({ "action": "dispatch", "units": ["AMB-02"] }),
        json!({ "action": "close", "disposition": "transported", "note": "ke RSUD" }),
    ];
    let mut last = Value::Null;
    for step in steps {
        let (status, answer) = act(&dewi, &app, &city, "c-100", step.clone()).await;
        assert_eq!(status, 202, "{step}: {answer}");
        assert_eq!(answer["repeat"], false);
        assert!(!answer["events"].as_array().unwrap().is_empty(), "{answer}");
        last = echoed(&app, &city, "c-100", &answer).await;
    }
    assert_eq!(last["stage"], "closed", "{last}");
    assert_eq!(last["open"], false);
    assert_eq!(last["operator"], "dewi");
    assert_eq!(last["category"], "medical");
    assert_eq!(last["priority"], 1);
    assert_eq!(last["triage"], "normal");
    assert_eq!(last["protocol"], "10-D-1");
    assert_eq!(last["disposition"], "transported");
    let units: Vec<&str> = last["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["unit"].as_str().unwrap())
        .collect();
    assert_eq!(
        units,
        ["AMB-02"],
        "the cancelled unit left the call: {last}"
    );

    // The detail: every event, in order, each with who did it; the
    // dispatcher sees the caller's callback number and position.
    let detail = dewi
        .get_json(&app, &format!("/api/calls/{city}/c-100"))
        .await;
    assert_eq!(detail["call"]["callback"], "+62 812-3456-7890");
    assert_eq!(detail["call"]["caller"]["address"], "Jl. Ahmad Yani 12");
    let events = timeline(&dewi, &app, &city, "c-100").await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "received",
            "answered",
            "classified",
            "located",
            "noted",
            "dispatched",
            "unit_cancelled",
            "dispatched",
            "closed"
        ]
    );
    for e in &events[1..] {
        assert_eq!(e["operator"], "dewi", "{e}");
        assert!(e["action_id"].is_string(), "{e}");
    }

    // The targets the console holds the call to: NENA by default.
    let targets = dewi.get_json(&app, "/api/dispatch/targets").await;
    assert_eq!(targets["answer_standard"], "nena");
    assert_eq!(
        targets["answer"],
        json!([{ "within_s": 15, "share": 0.9 }, { "within_s": 20, "share": 0.95 }])
    );
    assert_eq!(targets["dispatch_s"]["1"], 60);

    // Every action is in the audit, with its outcome.
    let boss = support::sign_in(&app, "kepala", &["supervisor"], &[], &[]).await;
    let audit = boss
        .get_json(&app, &format!("/api/admin/audit?entity=call:{city}/c-100"))
        .await;
    let rows = audit["rows"]
        .as_array()
        .or(audit.as_array())
        .cloned()
        .unwrap_or_default();
    let published = rows
        .iter()
        .filter(|r| r["outcome"] == "published" && r["actor"] == "dewi")
        .count();
    assert_eq!(published, 8, "one audit row per action: {audit}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_action_publishes_once_and_racers_for_a_call_or_a_unit_get_one_409() {
    let (app, field, city) = room().await;
    let orders = Orders::listen(&app.mqtt_url, &city).await;
    let dewi = support::sign_in(&app, "dewi", &["dispatcher"], &[&city], &[]).await;
    let rina = support::sign_in(&app, "rina", &["dispatcher"], &[&city], &[]).await;
    ring(&app, &field, &city, "c-1", "112").await;
    ring(&app, &field, &city, "c-2", "119").await;
    unit(&app, &field, &city, "AMB-01").await;

    // Two call takers press answer on the same ringing call at once.
    let (a, b) = tokio::join!(
        act(&dewi, &app, &city, "c-1", json!({ "action": "answer" })),
        act(&rina, &app, &city, "c-1", json!({ "action": "answer" })),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    let (winner, loser) = if a.0 == 202 {
        ("dewi", &b.1)
    } else {
        ("rina", &a.1)
    };
    assert!(
        loser["error"].as_str().unwrap().contains(winner),
        "the refusal names who has the call: {loser}"
    );
    let won = if a.0 == 202 { &a.1 } else { &b.1 };
    echoed(&app, &city, "c-1", won).await;
    let winner_client = if winner == "dewi" { &dewi } else { &rina };
    let other_client = if winner == "dewi" { &rina } else { &dewi };

    // A dropped connection retries with the same action_id: one answer, the same event ids.
    let (s, first) = act(
        other_client,
        &app,
        &city,
        "c-2",
        json!({ "action": "answer" }),
    )
    .await;
    assert_eq!(s, 202, "{first}");
    let again = json!({ "action": "answer", "action_id": first["action_id"] });
    let (s, second) = send(other_client, &app, &city, "c-2", &again).await;
    assert_eq!(s, 202, "{second}");
    assert_eq!(second["repeat"], true);
    assert_eq!(second["events"], first["events"]);
    echoed(&app, &city, "c-2", &first).await;
    // The same action_id for something else is a client bug, not a retry.
    let reuse = json!({ "action": "note", "text": "x", "action_id": first["action_id"] });
    let (s, v) = send(other_client, &app, &city, "c-2", &reuse).await;
    assert_eq!(s, 409, "{v}");

    // Both dispatchers send the one free ambulance, each to their own call.
    let (a, b) = tokio::join!(
        act(
            winner_client,
            &app,
            &city,
            "c-1",
            json!({ "action": "dispatch", "units": ["AMB-01"] })
        ),
        act(
            other_client,
            &app,
            &city,
            "c-2",
            json!({ "action": "dispatch", "units": ["AMB-01"] })
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    let (won_call, loser) = if a.0 == 202 {
        ("c-1", &b.1)
    } else {
        ("c-2", &a.1)
    };
    assert!(
        loser["error"]
            .as_str()
            .unwrap()
            .contains(&format!("call {won_call}")),
        "the refusal names the unit's call: {loser}"
    );
    let won = if a.0 == 202 { &a.1 } else { &b.1 };
    echoed(&app, &city, won_call, won).await;
    // One order on the bus, to the winner's call.
    let heard = support::eventually(10, "the unit's order", || async {
        let o = orders.all();
        (!o.is_empty()).then_some(o)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let heard_now = orders.all();
    assert_eq!(heard_now.len(), 1, "exactly one assignment: {heard_now:?}");
    assert_eq!(heard[0]["action"], "assign");
    assert_eq!(heard[0]["unit"], "AMB-01");
    assert_eq!(heard[0]["call_id"], won_call);
    assert_eq!(
        heard[0]["assignment_id"],
        won["assignments"][0]["assignment_id"]
    );

    // Reassigning moves it: cancelled on the first call, dispatched on the second.
    let lost_call = if won_call == "c-1" { "c-2" } else { "c-1" };
    let (s, moved) = act(
        &dewi,
        &app,
        &city,
        lost_call,
        json!({ "action": "reassign", "units": ["AMB-01"] }),
    )
    .await;
    assert_eq!(s, 202, "{moved}");
    let kinds: Vec<&str> = moved["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unit_cancelled", "dispatched"], "{moved}");
    let now_on = echoed(&app, &city, lost_call, &moved).await;
    assert_eq!(now_on["units"][0]["unit"], "AMB-01");
    let before = echoed(&app, &city, won_call, &moved).await;
    assert_eq!(before["units"], json!([]), "{before}");

    // Each call's timeline holds each answer once.
    for call in ["c-1", "c-2"] {
        let answered = timeline(&dewi, &app, &city, call)
            .await
            .iter()
            .filter(|e| e["type"] == "answered")
            .count();
        assert_eq!(answered, 1, "{call}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_actions_get_a_clear_4xx_and_publish_nothing() {
    let (app, field, city) = room().await;
    let dewi = support::sign_in(&app, "dewi", &["dispatcher"], &[&city], &[]).await;
    let elsewhere = support::sign_in(&app, "budi", &["dispatcher"], &["kota-lain"], &[]).await;
    let officer = support::sign_in(&app, "petugas", &["traffic_officer"], &[&city], &[]).await;
    ring(&app, &field, &city, "c-7", "112").await;
    ring(&app, &field, &city, "c-8", "119").await;
    unit(&app, &field, &city, "AMB-01").await;

    let id = || uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "c-7",
            "who acted from the body",
            json!({ "action": "answer", "action_id": id(), "operator": "palsu" }),
            400,
            "session",
        ),
        (
            "c-7",
            "no action_id",
            json!({ "action": "answer" }),
            400,
            "action_id",
        ),
        (
            "c-7",
            "action_id not a uuid",
            json!({ "action": "answer", "action_id": "satu" }),
            400,
            "uuid",
        ),
        (
            "c-7",
            "no action",
            json!({ "action_id": id() }),
            400,
            "action is missing",
        ),
        (
            "c-7",
            "unknown action",
            json!({ "action": "teleport", "action_id": id() }),
            400,
            "teleport",
        ),
        (
            "c-7",
            "unknown field",
            json!({ "action": "answer", "action_id": id(), "urgent": true }),
            400,
            "urgent",
        ),
        (
            "c-7",
            "close before answer",
            json!({ "action": "close", "action_id": id(), "disposition": "resolved" }),
            409,
            "not answered",
        ),
        (
            "c-7",
            "callback on a ringing call",
            json!({ "action": "callback", "action_id": id() }),
            409,
            "abandoned",
        ),
        (
            "c-404",
            "unknown call",
            json!({ "action": "answer", "action_id": id() }),
            404,
            "c-404",
        ),
    ];
    for (call, what, body, status, says) in cases {
        let (s, v) = send(&dewi, &app, &city, call, &body).await;
        assert_eq!(s, status, "{what}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{what}: {msg:?} should say {says:?}");
    }

    let (s, answered) = act(&dewi, &app, &city, "c-7", json!({ "action": "answer" })).await;
    assert_eq!(s, 202, "{answered}");
    echoed(&app, &city, "c-7", &answered).await;
    let after_answer: Vec<(&str, Value, u16, &str)> = vec![
        (
            "priority out of range",
            json!({ "action": "classify", "category": "fire", "priority": 9 }),
            400,
            "priority",
        ),
        (
            "unknown category",
            json!({ "action": "classify", "category": "ufo", "priority": 2 }),
            400,
            "ufo",
        ),
        (
            "close without disposition",
            json!({ "action": "close" }),
            400,
            "disposition",
        ),
        (
            "unknown disposition",
            json!({ "action": "close", "disposition": "vanished" }),
            400,
            "vanished",
        ),
        (
            "unknown unit",
            json!({ "action": "dispatch", "units": ["AMB-99"] }),
            404,
            "AMB-99",
        ),
        (
            "no units",
            json!({ "action": "dispatch", "units": [] }),
            400,
            "units",
        ),
        (
            "unit twice",
            json!({ "action": "dispatch", "units": ["AMB-01", "AMB-01"] }),
            400,
            "twice",
        ),
        (
            "cancel a unit not on it",
            json!({ "action": "cancel_unit", "unit": "AMB-01" }),
            409,
            "not on call",
        ),
        (
            "reassign a free unit",
            json!({ "action": "reassign", "units": ["AMB-01"] }),
            409,
            "dispatch it instead",
        ),
        (
            "empty note",
            json!({ "action": "note", "text": "  " }),
            400,
            "empty",
        ),
        (
            "merge into itself",
            json!({ "action": "merge", "into": "c-7" }),
            400,
            "itself",
        ),
        (
            "transfer to a bad id",
            json!({ "action": "transfer", "to": "PSC 119!" }),
            400,
            "identifier",
        ),
        (
            "a position off the earth",
            json!({ "action": "locate", "lat": 123.0, "lon": 106.0 }),
            400,
            "lat",
        ),
    ];
    for (what, body, status, says) in after_answer {
        let (s, v) = act(&dewi, &app, &city, "c-7", body).await;
        assert_eq!(s, status, "{what}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{what}: {msg:?} should say {says:?}");
    }
    let (s, v) = act(
        &elsewhere,
        &app,
        &city,
        "c-8",
        json!({ "action": "answer" }),
    )
    .await;
    assert_eq!(s, 403, "a dispatcher of another city: {v}");
    let (s, v) = act(&officer, &app, &city, "c-8", json!({ "action": "answer" })).await;
    assert_eq!(s, 403, "a traffic officer: {v}");

    // Closed calls take no more actions; a note on c-7's timeline proves the
    // refused ones published nothing.
    let (s, closed) = act(
        &dewi,
        &app,
        &city,
        "c-7",
        json!({ "action": "close", "disposition": "prank" }),
    )
    .await;
    assert_eq!(s, 202, "{closed}");
    echoed(&app, &city, "c-7", &closed).await;
    let (s, v) = act(&dewi, &app, &city, "c-7", json!({ "action": "answer" })).await;
    assert_eq!(s, 409, "{v}");
    let kinds: Vec<String> = timeline(&dewi, &app, &city, "c-7")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["received", "answered", "closed"]);
    let untouched = timeline(&dewi, &app, &city, "c-8").await;
    assert_eq!(untouched.len(), 1, "{untouched:?}");
    app.stop().await;
}

/// With PostgreSQL: the call acted on comes back after a restart whole (its
/// units, its action ids, every event with who did it), and a unit still on
/// it is refused to another call though its own status says `available`
/// and the restarted node remembers no dispatch of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_acted_on_comes_back_whole_after_a_restart_from_postgresql() {
    let test = "a_call_acted_on_comes_back_whole_after_a_restart_from_postgresql";
    let Some(db) = support::postgres(test).await else {
        return;
    };
    let mut settings = support::settings(None);
    settings.database.url = Some(db.clone());
    let url = format!("mqtt://{}", settings.mqtt.broker_addr);
    let app = support::spawn(settings).await;
    let field = Publisher::connect(&url).await;
    let city = support::city("pulih");
    let dewi = support::sign_in(&app, "dewi", &["dispatcher"], &[&city], &[]).await;
    ring(&app, &field, &city, "c-9", "112").await;
    ring(&app, &field, &city, "c-10", "112").await;
    unit(&app, &field, &city, "AMB-01").await;
    let mut ids = Vec::new();
    for (call, step) in [
        ("c-9", json!({ "action": "answer" })),
        (
            "c-9",
            json!({ "action": "classify", "category": "fire", "priority": 2, "triage": "normal" }),
        ),
        ("c-9", json!({ "action": "dispatch", "units": ["AMB-01"] })),
        ("c-10", json!({ "action": "answer" })),
        (
            "c-9",
            json!({ "action": "note", "text": "asap hitam dari lantai dua" }),
        ),
    ] {
        let (s, answer) = act(&dewi, &app, &city, call, step).await;
        assert_eq!(s, 202, "{answer}");
        echoed(&app, &city, call, &answer).await;
        ids.push(answer["action_id"].clone());
    }
    // Written before the stop: the store's last batch drains on shutdown.
    app.stop().await;
    drop(field);

    let mut settings = support::settings(None);
    settings.database.url = Some(db);
    let app = support::spawn(settings).await;
    let rina = support::sign_in(&app, "rina", &["dispatcher"], &[&city], &[]).await;
    let detail = support::eventually(20, "c-9 restored", || async {
        let d = rina.get_json(&app, &format!("/api/calls/{city}/c-9")).await;
        (d["call"]["units"][0]["unit"] == "AMB-01").then_some(d)
    })
    .await;
    let call = &detail["call"];
    assert_eq!(call["operator"], "dewi", "{call}");
    assert_eq!(call["category"], "fire");
    assert_eq!(call["triage"], "normal");
    assert_eq!(call["callback"], "+62 812-3456-7890");
    for id in &ids[..3] {
        assert!(
            call["actions"].as_array().unwrap().contains(id),
            "{id} in {call}"
        );
    }
    let kinds: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["received", "answered", "classified", "dispatched", "noted"]
    );
    // A console that retries its note after the restart (this node no longer
    // remembers the action) publishes the same event id: the restored state
    // knows it, and the store keeps one note.
    let retry =
        json!({ "action": "note", "text": "asap hitam dari lantai dua", "action_id": ids[4] });
    let (s, v) = send(&rina, &app, &city, "c-9", &retry).await;
    assert_eq!(s, 202, "{v}");
    let (s, marker) = act(
        &rina,
        &app,
        &city,
        "c-9",
        json!({ "action": "note", "text": "penanda" }),
    )
    .await;
    assert_eq!(s, 202, "{marker}");
    echoed(&app, &city, "c-9", &marker).await;
    let notes = support::eventually(10, "the marker stored", || async {
        let t = timeline(&rina, &app, &city, "c-9").await;
        let notes: Vec<String> = t
            .iter()
            .filter(|e| e["type"] == "noted")
            .map(|e| e["note"].as_str().unwrap_or_default().to_owned())
            .collect();
        notes.iter().any(|n| n == "penanda").then_some(notes)
    })
    .await;
    assert_eq!(
        notes,
        ["asap hitam dari lantai dua", "penanda"],
        "the retried note is stored once"
    );

    // The unit's retained status still says available (no field unit
    // answered); the restored call holds it.
    support::entity(&app, "unit", &format!("{city}/AMB-01"), "the unit restored").await;
    let (s, v) = act(
        &rina,
        &app,
        &city,
        "c-10",
        json!({ "action": "dispatch", "units": ["AMB-01"] }),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("call c-9"), "{v}");
    // And a second answer to c-9 after the restart is refused by the state's record.
    let (s, v) = act(&rina, &app, &city, "c-9", json!({ "action": "answer" })).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("dewi"), "{v}");
    app.stop().await;
}

/// The simulated city under human dispatch, end to end through Kendali: a
/// simulated call rings and waits; the dispatcher answers, classifies and
/// dispatches an available ambulance; the simulated unit obeys its order on
/// the bus, drives there and reports en route and on scene on the call; the
/// dispatcher closes it, and the unit, stood down, drives home. The stored
/// timeline has every stage, each with who did it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_call_under_human_dispatch_goes_from_ring_to_close_with_a_unit_that_obeys() {
    let mut settings = support::settings(None);
    settings.sim.enabled = true;
    settings.sim.scenario = support::daytime_scenario();
    settings.sim.accel = Some(30.0);
    settings.sim.human_dispatch = true;
    let app = support::spawn(settings).await;
    let city = "cilegon";
    let dewi = support::sign_in(&app, "dewi", &["dispatcher"], &[city], &[]).await;
    let state = || support::get_json(&app, "/api/state");
    // A call rings and waits for a person (callers wait up to two real minutes).
    let (key, call) = support::eventually(60, "a ringing call", || async {
        let s = state().await;
        s["entities"]["call"]
            .as_object()?
            .iter()
            .find(|(_, c)| c["stage"] == "received" && c["open"] == true)
            .map(|(k, c)| (k.clone(), c.clone()))
    })
    .await;
    assert!(
        call["operator"].is_null(),
        "nobody but a person answers: {call}"
    );
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    for step in [
        json!({ "action": "answer" }),
        json!({ "action": "classify", "category": "medical", "priority": 1, "triage": "normal" }),
    ] {
        let (s, answer) = act(&dewi, &app, city, &call_id, step.clone()).await;
        assert_eq!(s, 202, "{step}: {answer}");
        echoed(&app, city, &call_id, &answer).await;
    }
    // The recommendation: the health office's free units, quickest first, by road.
    let rec = dewi
        .get_json(&app, &format!("/api/calls/{city}/{call_id}/recommend"))
        .await;
    assert_eq!(rec["agency"], "dinkes", "{rec}");
    let units = rec["units"].as_array().expect("units").clone();
    assert!(!units.is_empty() && units.len() <= 3, "{rec}");
    let etas: Vec<f64> = units.iter().map(|u| u["eta_s"].as_f64().unwrap()).collect();
    assert!(
        etas.windows(2).all(|w| w[0] <= w[1]),
        "quickest first: {etas:?}"
    );
    for u in &units {
        assert_eq!(u["agency"], "dinkes", "{u}");
        assert_eq!(u["basis"], "roads", "{u}");
        assert!(u["route"].as_array().unwrap().len() >= 3, "{u}");
    }
    let unit_id = units[0]["unit"].as_str().unwrap().to_owned();
    let (s, answer) = act(
        &dewi,
        &app,
        city,
        &call_id,
        json!({ "action": "dispatch", "units": [unit_id] }),
    )
    .await;
    assert_eq!(s, 202, "{answer}");
    echoed(&app, city, &call_id, &answer).await;
    // The unit sent is no longer proposed.
    let rec = dewi
        .get_json(&app, &format!("/api/calls/{city}/{call_id}/recommend"))
        .await;
    assert!(
        rec["units"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["unit"] != unit_id.as_str()),
        "{rec}"
    );
    // The unit obeys and the field reports its stages on the call.
    let on_scene = support::eventually(60, "the unit on scene", || async {
        let s = state().await;
        let c = s["entities"]["call"].get(&key)?.clone();
        (c["units"][0]["stage"] == "on_scene").then_some(c)
    })
    .await;
    assert_eq!(on_scene["units"][0]["unit"], unit_id.as_str());
    assert_eq!(on_scene["operator"], "dewi", "{on_scene}");
    let (s, closed) = act(
        &dewi,
        &app,
        city,
        &call_id,
        json!({ "action": "close", "disposition": "treated_on_scene" }),
    )
    .await;
    assert_eq!(s, 202, "{closed}");
    assert_eq!(closed["assignments"][0]["action"], "cancel", "{closed}");
    echoed(&app, city, &call_id, &closed).await;
    // Stood down: the unit leaves the scene.
    support::eventually(20, "the unit stood down", || async {
        let s = state().await;
        let u = s["entities"]["unit"]
            .get(format!("{city}/{unit_id}"))?
            .clone();
        (u["status"] == "returning" || u["status"] == "available").then_some(())
    })
    .await;
    let events = timeline(&dewi, &app, city, &call_id).await;
    let steps: Vec<(String, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["operator"].clone(),
                e["unit"].clone(),
            )
        })
        .collect();
    let u = json!(unit_id);
    assert_eq!(
        steps,
        [
            ("received".to_owned(), Value::Null, Value::Null),
            ("answered".to_owned(), json!("dewi"), Value::Null),
            ("classified".to_owned(), json!("dewi"), Value::Null),
            ("dispatched".to_owned(), json!("dewi"), u.clone()),
            ("en_route".to_owned(), Value::Null, u.clone()),
            ("on_scene".to_owned(), Value::Null, u.clone()),
            ("closed".to_owned(), json!("dewi"), Value::Null),
        ]
    );
    app.stop().await;
}

/// Possible duplicates: calls from the same number, or close in time and
/// place, are flagged both ways; merging links them into one incident,
/// keeping apart settles the pair for good; a call far away from another
/// number is never flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_calls_are_flagged_and_the_dispatcher_merges_or_keeps_them_apart() {
    let (app, field, city) = room().await;
    let dewi = support::sign_in(&app, "dewi", &["dispatcher"], &[&city], &[]).await;
    let ring_at = |call: &str, number: &str, lat: f64, lon: f64| {
        json!({
            "event_id": uuid::Uuid::new_v4(),
            "call_id": call,
            "ts": support::now_wib(),
            "line": "112",
            "type": "received",
            "callback": number,
            "caller": { "lat": lat, "lon": lon },
        })
    };
    // c-1 at a crash; c-2 the same caller calling again from elsewhere;
    // c-3 another caller 100 m away; c-4 another caller across town.
    for (call, number, lat, lon) in [
        ("c-1", "0812-1111-2222", -6.0000, 106.0500),
        ("c-2", "0812 1111 2222", -6.0500, 106.1000),
        ("c-3", "0813-3333-4444", -6.0009, 106.0500),
        ("c-4", "0814-5555-6666", -6.0900, 106.1500),
    ] {
        field
            .send(
                &format!("city/{city}/calls/112"),
                1,
                ring_at(call, number, lat, lon).to_string(),
            )
            .await;
        support::entity(&app, "call", &format!("{city}/{call}"), call).await;
    }
    let flags = |call: &'static str| {
        let (app, city) = (&app, city.clone());
        async move {
            let s = support::get_json(app, "/api/state").await;
            let mut v: Vec<String> = s["entities"]["call"][format!("{city}/{call}")]
                ["possible_duplicates"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            v.sort();
            v
        }
    };
    support::eventually(10, "the flags", || async {
        (flags("c-1").await == ["c-2", "c-3"]).then_some(())
    })
    .await;
    assert_eq!(flags("c-2").await, ["c-1"]);
    assert_eq!(flags("c-3").await, ["c-1"]);
    assert!(flags("c-4").await.is_empty());

    // The same caller again: merged into c-1's incident.
    let (s, merged) = act(
        &dewi,
        &app,
        &city,
        "c-2",
        json!({ "action": "merge", "into": "c-1" }),
    )
    .await;
    assert_eq!(s, 202, "{merged}");
    let c2 = echoed(&app, &city, "c-2", &merged).await;
    assert_eq!(c2["incident_id"], "inc-c-1", "{c2}");
    let c1 = echoed(&app, &city, "c-1", &merged).await;
    assert_eq!(c1["incident_id"], "inc-c-1", "{c1}");
    assert_eq!(flags("c-1").await, ["c-3"]);
    assert!(flags("c-2").await.is_empty());

    // The neighbour's call is another emergency: kept apart, for good.
    let (s, apart) = act(
        &dewi,
        &app,
        &city,
        "c-3",
        json!({ "action": "keep_apart", "other": "c-1" }),
    )
    .await;
    assert_eq!(s, 202, "{apart}");
    echoed(&app, &city, "c-3", &apart).await;
    assert!(flags("c-1").await.is_empty());
    assert!(flags("c-3").await.is_empty());
    let (s, moved) = act(
        &dewi,
        &app,
        &city,
        "c-3",
        json!({ "action": "locate", "lat": -6.0005, "lon": 106.0501 }),
    )
    .await;
    assert_eq!(s, 202, "{moved}");
    echoed(&app, &city, "c-3", &moved).await;
    assert!(
        flags("c-3").await.is_empty(),
        "a pair kept apart is not flagged again"
    );

    let kinds: Vec<(String, Value, Value)> = timeline(&dewi, &app, &city, "c-2")
        .await
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["incident_id"].clone(),
                e["related_call"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("received".to_owned(), Value::Null, Value::Null),
            ("merged".to_owned(), json!("inc-c-1"), json!("c-1")),
        ]
    );
    let (s, v) = act(
        &dewi,
        &app,
        &city,
        "c-3",
        json!({ "action": "keep_apart", "other": "c-404" }),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    app.stop().await;
}
