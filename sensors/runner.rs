//! The real-time driver of a [`Simulation`]: publishes the initial retained
//! messages, then steps the simulation on a tokio interval with the real
//! elapsed time, forwards every message to a channel (the caller wires that
//! to MQTT), applies operator commands as they arrive and answers them, and
//! stops on shutdown or when nobody listens any more.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::contract::messages::Message;
use crate::contract::Topic;

use super::sim::{SimStats, Simulation};
use crate::domain::{wib, Zone};

/// Shortest tick accepted; a smaller one would only burn CPU.
const MIN_TICK: Duration = Duration::from_millis(10);

/// The wall clock in WIB (+07:00).
pub fn now_wib() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&wib())
}

/// The wall clock in the city's zone, the stamp of every simulated message.
fn now_in(zone: Zone) -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&zone.offset())
}

/// Sends `msgs` in order; false when the receiver is gone or shutdown was
/// requested while waiting for room in the channel.
async fn send_all(
    out: &mpsc::Sender<(Topic, Message)>,
    msgs: Vec<(Topic, Message)>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    for m in msgs {
        tokio::select! {
            sent = out.send(m) => if sent.is_err() { return false },
            _ = shutdown.changed() => return false,
        }
    }
    true
}

/// Runs `sim` in real time until `shutdown` turns true (or its sender is
/// dropped) or `out` is closed; returns the final statistics.
pub async fn run(
    mut sim: Simulation,
    tick: Duration,
    out: mpsc::Sender<(Topic, Message)>,
    mut commands: mpsc::Receiver<(Topic, Message)>,
    mut shutdown: watch::Receiver<bool>,
) -> SimStats {
    let tick = tick.max(MIN_TICK);
    let zone = sim.scenario().time_zone;
    tracing::info!(
        scenario = %sim.scenario().name,
        city = %sim.scenario().city,
        accel = sim.accel(),
        tick_ms = tick.as_millis() as u64,
        "simulator started"
    );
    if *shutdown.borrow() || !send_all(&out, sim.initial(now_in(zone)), &mut shutdown).await {
        return sim.stats().clone();
    }
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last = Instant::now();
    let mut commands_open = true;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = tokio::select! {
            biased;
            changed = shutdown.changed() => {
                // A dropped sender can never ask again: treat it as a shutdown.
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
            cmd = commands.recv(), if commands_open => match cmd {
                Some((topic, msg)) => sim.incoming(&topic, &msg, now_in(zone)),
                None => {
                    commands_open = false;
                    continue;
                }
            },
            _ = interval.tick() => {
                let now = Instant::now();
                let elapsed = now - last;
                last = now;
                sim.step(now_in(zone), elapsed)
            }
        };
        if !send_all(&out, batch, &mut shutdown).await {
            break;
        }
    }
    let stats = sim.stats().clone();
    tracing::info!(
        messages = stats.messages,
        sim_seconds = stats.sim_seconds,
        "simulator stopped"
    );
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::messages::{AckStatus, Command, CommandAction};
    use crate::sensors::Scenario;

    #[tokio::test]
    async fn runs_answers_commands_and_stops_on_shutdown() {
        let sim = Simulation::new(Scenario::builtin("cirebon-atcs").unwrap(), 1, 60.0);
        let (out_tx, mut out_rx) = mpsc::channel(10_000);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(sim, Duration::from_millis(20), out_tx, cmd_rx, stop_rx));

        let topic = Topic::Command {
            city: "cirebon".into(),
            intersection: "simpang-pemuda".into(),
        };
        let cmd = Command {
            approach: Some("utara".into()),
            seconds: Some(10.0),
            ..Command::new(
                uuid::Uuid::from_u128(42),
                now_wib(),
                CommandAction::ExtendGreen,
                "petugas.lalin".into(),
            )
        };
        cmd_tx
            .send((topic, Message::Command(Box::new(cmd))))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1300)).await;
        stop_tx.send(true).unwrap();
        let stats = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();

        let mut got = Vec::new();
        while let Ok(m) = out_rx.try_recv() {
            got.push(m);
        }
        assert!(
            matches!(got[0].1, Message::IntersectionInfo(_)),
            "info comes first"
        );
        let ack = got.iter().find_map(|(_, m)| match m {
            Message::CommandAck(a) => Some(a),
            _ => None,
        });
        assert_eq!(ack.map(|a| a.status), Some(AckStatus::Applied));
        assert_eq!(stats.info_messages, 8);
        assert!(stats.state_messages >= 8, "{stats:?}");
        assert_eq!(stats.messages as usize, got.len());
    }

    #[tokio::test]
    async fn stops_when_the_receiver_is_gone() {
        let sim = Simulation::new(Scenario::builtin("cirebon-atcs").unwrap(), 1, 1.0);
        let (out_tx, out_rx) = mpsc::channel(1);
        drop(out_rx);
        let (_cmd_tx, cmd_rx) = mpsc::channel(1);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let stats = tokio::time::timeout(
            Duration::from_secs(5),
            run(sim, Duration::from_millis(20), out_tx, cmd_rx, stop_rx),
        )
        .await
        .unwrap();
        assert_eq!(stats.state_messages, 0);
    }
}
