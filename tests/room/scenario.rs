//! The simulated city through the real chain: a fixed-seed run of the
//! default scenario, published through Mosquitto, gives Kendali exactly the
//! counts the simulator made (and the same seed makes the same run); the
//! default start runs the simulated city on the embedded broker.

use std::time::Duration;

use kendali::sensors::{scenario::Scenario, sim::Simulation};

use crate::support::{self, Publisher};

/// The default scenario for `city`, from 08:00, at seed 42 and 60x: one
/// simulated hour in 240 steps of 250 ms.
fn fixed_run(city: &str) -> Simulation {
    let mut scenario = Scenario::resolve("cilegon-weekday").expect("the default scenario loads");
    scenario.city = city.to_owned();
    scenario.start_time = Some("08:00".into());
    Simulation::new(scenario, 42, 60.0)
}

/// The same run again, with nothing published: its stats.
fn again(city: &str) -> kendali::sensors::sim::SimStats {
    let mut sim = fixed_run(city);
    sim.initial(kendali::sensors::runner::now_wib());
    for _ in 0..240 {
        sim.step(
            kendali::sensors::runner::now_wib(),
            Duration::from_millis(250),
        );
    }
    sim.stats().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_seed_scenario_run_gives_kendali_the_counts_the_simulator_made() {
    let Some(url) =
        support::mosquitto("a_fixed_seed_scenario_run_gives_kendali_the_expected_counts")
    else {
        return;
    };
    let app = support::spawn(support::settings(Some(url.clone()))).await;
    // Its own city on the shared broker, a fixed start of day: a reproducible run.
    let city = support::city("sim");
    let scenario = Scenario::resolve("cilegon-weekday").expect("the default scenario loads");
    let (intersections, units) = (scenario.intersections.len(), scenario.units.len());
    let mut sim = fixed_run(&city);
    let p = Publisher::connect(&url).await;
    let publish = |batch: Vec<(kendali::contract::Topic, kendali::contract::Message)>| {
        let p = &p;
        async move {
            for (topic, msg) in batch {
                p.send(&topic.to_string(), topic.qos(), msg.to_json()).await;
            }
        }
    };
    publish(sim.initial(kendali::sensors::runner::now_wib())).await;
    // One simulated hour: 240 steps of 250 ms at 60x.
    for _ in 0..240 {
        let batch = sim.step(
            kendali::sensors::runner::now_wib(),
            Duration::from_millis(250),
        );
        publish(batch).await;
    }
    let stats = sim.stats().clone();
    // The run made something of each kind (so the comparison below is not
    // of zeros), and the same seed makes the same run (Kendali's figures are
    // compared with the simulator's, not with pinned numbers: those would
    // test the simulator's random numbers, not Kendali).
    let counts = |s: &kendali::sensors::sim::SimStats| {
        serde_json::json!({
            "calls_started": s.calls_started,
            "call_events": s.call_events.values().sum::<u64>(),
            "app_events": s.app_events.values().sum::<u64>(),
            "kpi_samples": s.kpi_samples,
            "state_messages": s.state_messages,
        })
    };
    eprintln!("fixed-seed run: {}", counts(&stats));
    assert!(
        stats.calls_started.values().sum::<u64>() > 0,
        "{}",
        counts(&stats)
    );
    assert!(stats.app_events.values().sum::<u64>() > 0 && stats.state_messages > 0);
    assert_eq!(
        counts(&again(&city)),
        counts(&stats),
        "the same seed, the same run"
    );
    // Kendali counted the same.
    let state = support::eventually(
        20,
        "Kendali's counters, junctions and units to match the simulator's",
        || {
            let (app, city, stats) = (&app, city.clone(), stats.clone());
            async move {
                let s = support::get_json(app, "/api/state").await;
                let c = &s["entities"]["counters"][&city];
                let received_ok = stats
                    .calls_started
                    .iter()
                    .all(|(line, n)| c["lines"][line]["received"] == *n);
                let apps_ok = stats.app_events.iter().all(|(svc, n)| {
                    c["app_events"][svc]
                        .as_object()
                        .map(|m| m.values().filter_map(|v| v.as_u64()).sum::<u64>())
                        == Some(*n)
                });
                // Every junction and unit too: the call events come on a
                // connection of their own and may be counted before the last
                // telemetry of the main one is taken.
                let of_city = |kind: &str| {
                    s["entities"][kind].as_object().map_or(0, |m| {
                        m.values().filter(|v| v["city"] == city.as_str()).count()
                    })
                };
                let entities_ok =
                    of_city("intersection") == intersections && of_city("unit") == units;
                (received_ok && apps_ok && entities_ok).then_some(s)
            }
        },
    )
    .await;
    let abandoned: u64 = ["112", "119"]
        .iter()
        .filter_map(|l| state["entities"]["counters"][&city]["lines"][l]["abandoned"].as_u64())
        .sum();
    assert_eq!(abandoned, stats.calls_abandoned);
    let dead = support::get_json_as_supervisor(&app, "/api/deadletter?limit=10000").await;
    let mine = dead["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["topic"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("city/{city}/"))
        })
        .count();
    assert_eq!(mine, 0, "the simulator only publishes valid messages");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_start_runs_the_simulated_city_on_the_embedded_broker_without_a_reconnect() {
    // What `cargo run` does, on free ports: embedded broker, simulator, memory store.
    let mut settings = support::settings(None);
    settings.sim.enabled = true;
    settings.sim.accel = Some(60.0);
    let app = support::spawn(settings).await;
    let m = support::eventually(
        30,
        "telemetry, KPIs and acknowledged QoS 1 messages",
        || {
            let app = &app;
            async move {
                let m = support::metrics(app).await;
                let ok = support::metric(&m, "kendali_messages_total{family=\"atcs\"}") > 100.0
                    && support::metric(&m, "kendali_messages_total{family=\"kpi\"}") > 0.0
                    && support::metric(&m, "kendali_mqtt_acks_total") > 100.0;
                ok.then_some(m)
            }
        },
    )
    .await;
    // Acks in arrival order keep the broker's sessions: two connections (the
    // main one and the call events' own), each connected once, never dropped.
    assert_eq!(
        support::metric(&m, "kendali_mqtt_connects_total"),
        2.0,
        "{m}"
    );
    assert_eq!(support::metric(&m, "kendali_mqtt_connected"), 1.0, "{m}");
    // Every intersection of the scenario shows up (each sends its state about
    // once a second; on a loaded machine the first ones come in over seconds).
    support::eventually(30, "the scenario's 21 intersections", || {
        let app = &app;
        async move {
            let state = support::get_json(app, "/api/state").await;
            let n = state["entities"]["intersection"]
                .as_object()?
                .values()
                .filter(|v| v["city"] == "cilegon")
                .count();
            assert!(n <= 21, "no intersection beyond the scenario's: {n}");
            (n == 21).then_some(())
        }
    })
    .await;
    let scenario = support::get_json(&app, "/api/scenario").await;
    assert_eq!(scenario["city"], "cilegon");
    app.stop().await;
}
