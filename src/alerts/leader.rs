//! Which node judges the alert rules when several share the bus
//! (`mqtt.shared_group`). Every node sees the whole city and keeps its
//! engine's view of every rule, but only one raises and clears on time:
//! N engines publishing the same transition N times would raise each alert
//! N times. The one that does holds a PostgreSQL session advisory lock on a
//! connection of its own; when that node dies, the database ends its
//! session (at once for a killed process, within TCP keepalive for a lost
//! machine) and the next node to try takes the lock within
//! [`RETRY`]. Operators' acknowledgements and shelvings are published by
//! whichever node they reach: they are actions, not judgements.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Metrics;

/// The advisory lock's key: "kendali" in ASCII, with `1` for the alert rules.
const LOCK_KEY: i64 = 0x6b65_6e64_616c_6901;
/// How often a node that does not judge tries to take over.
pub const RETRY: Duration = Duration::from_secs(2);

enum Mode {
    /// One node, or no database to agree through: always this node.
    Alone,
    /// Several nodes: the holder of the lock.
    Shared {
        pool: deadpool_postgres::Pool,
        /// The connection the lock is held on (taken out of the pool).
        held: Option<deadpool_postgres::ClientWrapper>,
        next_try: Instant,
    },
}

pub struct Leadership {
    mode: Mode,
    metrics: Arc<Metrics>,
}

impl Leadership {
    /// This node always judges (one node on the bus, or no database).
    pub fn alone(metrics: Arc<Metrics>) -> Leadership {
        metrics.alerts_leader.set(1);
        Leadership {
            mode: Mode::Alone,
            metrics,
        }
    }

    /// The node holding the lock in `pool`'s database judges.
    pub fn shared(pool: deadpool_postgres::Pool, metrics: Arc<Metrics>) -> Leadership {
        metrics.alerts_leader.set(0);
        Leadership {
            mode: Mode::Shared {
                pool,
                held: None,
                next_try: Instant::now(),
            },
            metrics,
        }
    }

    /// Whether this node judges the rules now (trying to take over when due).
    pub async fn judges(&mut self) -> bool {
        let Mode::Shared {
            pool,
            held,
            next_try,
        } = &mut self.mode
        else {
            return true;
        };
        if let Some(c) = held {
            if !c.is_closed() {
                return true;
            }
            tracing::warn!("lost the connection holding the alert rules' lock: another node may judge them now");
            *held = None;
            self.metrics.alerts_leader.set(0);
        }
        if Instant::now() < *next_try {
            return false;
        }
        *next_try = Instant::now() + RETRY;
        match try_lock(pool).await {
            Ok(Some(c)) => {
                tracing::info!("this node judges the alert rules (it holds their lock)");
                *held = Some(c);
                self.metrics.alerts_leader.set(1);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not try the alert rules' lock; will retry");
                false
            }
        }
    }
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
    // Taken out of the pool either way when held: the pool would hand the
    // session (and the lock) to other work and might close it.
    Ok(got.then(|| deadpool_postgres::Object::take(c)))
}
