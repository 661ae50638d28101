//! Which node runs the room's rules when several share the bus
//! (`mqtt.shared_group`): the alert engine's raising and clearing on time,
//! and the traffic desk's own commands (a lease's revert, a corridor's
//! release, an automatic green extension), and the replay checkpoints'
//! writing (`web::wall::replay`). Every node sees the whole city
//! and keeps what the rules need, but one acts on it: N nodes publishing the
//! same judgement would raise each alert, or extend each green, N times.
//!
//! The node that does holds a PostgreSQL session advisory lock on a
//! connection of its own, taken out of the pool. When that node dies, the
//! database ends its session (at once for a killed process; within TCP
//! keepalive for a lost machine) and the next node to try takes the lock
//! within [`RETRY`]. People's actions (an acknowledgement, an officer's
//! command) are published by whichever node they reach: they are not
//! judgements.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::Metrics;

/// The advisory lock's key: "kendali" in ASCII, then `1` for the rules.
const LOCK_KEY: i64 = 0x6b65_6e64_616c_6901;
/// How often a node that does not run the rules tries to take over, and
/// how often the one that does checks its connection.
pub const RETRY: Duration = Duration::from_secs(2);

/// Whether this node runs the rules, as it changes: always with one node
/// or no database (`pool` None or `shared` false); else while it holds the
/// lock (a task tries for it until `shutdown`).
/// Waits for `tick`'s next tick, or for shutdown: false once shutting down
/// (the loop of each periodic task of the rules' node, and of the lock's).
pub async fn next_tick(
    tick: &mut tokio::time::Interval,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tick.tick() => {}
        _ = shutdown.changed() => {}
    }
    !*shutdown.borrow()
}

pub fn rules_node(
    pool: Option<deadpool_postgres::Pool>,
    shared: bool,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) -> watch::Receiver<bool> {
    let Some(pool) = pool.filter(|_| shared) else {
        metrics.rules_leader.set(1);
        // The sender may go: a receiver keeps the last value.
        return watch::channel(true).1;
    };
    metrics.rules_leader.set(0);
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut held: Option<deadpool_postgres::ClientWrapper> = None;
        let mut tick = tokio::time::interval(RETRY);
        // Once shutting down: dropping the connection ends the session and frees the lock.
        while next_tick(&mut tick, &mut shutdown).await {
            if held.as_ref().is_some_and(|c| c.is_closed()) {
                tracing::warn!(
                    "lost the connection holding the rules' lock: another node may run them now"
                );
                held = None;
            }
            if held.is_none() {
                match try_lock(&pool).await {
                    Ok(Some(c)) => {
                        tracing::info!(
                            "this node runs the rules (alerts, the traffic desk's own commands)"
                        );
                        held = Some(c);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not try the rules' lock; will retry")
                    }
                }
            }
            let runs = held.is_some();
            metrics.rules_leader.set(runs as i64);
            tx.send_if_modified(|v| std::mem::replace(v, runs) != runs);
        }
    });
    rx
}

/// The lock on a connection of its own, or `None` if another session holds it.
async fn try_lock(
    pool: &deadpool_postgres::Pool,
) -> Result<Option<deadpool_postgres::ClientWrapper>, String> {
    let c = pool.get().await.map_err(|e| e.to_string())?;
    let got: bool = c
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    // Taken out of the pool when held: the pool would hand the session (and
    // the lock) to other work, and might close it.
    Ok(got.then(|| deadpool_postgres::Object::take(c)))
}
