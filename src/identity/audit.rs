//! The audit: one append-only row per login, failed login, logout, revoked
//! session, user or display change and operator action. Each row's `hash` is
//! the SHA-256 of the previous row's hash and the row's own canonical
//! content, so a row changed, removed or inserted afterwards breaks the chain
//! at that row ([`verify`], `kendali audit verify`).

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Who acted (`anonymous`, or the user or display name).
    pub actor: String,
    /// Their roles, comma-separated.
    pub role: String,
    /// The client's address.
    pub addr: String,
    /// `login`, `login_failed`, `logout`, `session_revoked`, `user_added`,
    /// `traffic_command`, ...
    pub action: String,
    /// What it acted on (`user:budi`, `atcs:cilegon/simpang-ramayana`), or empty.
    pub entity: String,
    /// `ok`, `refused`, `throttled`, `error`...
    pub outcome: String,
    /// Further facts, as JSON text (never a password).
    pub detail: String,
}

impl Entry {
    pub fn new(actor: &str, role: &str, addr: &str, action: &str) -> Entry {
        Entry {
            actor: actor.to_owned(),
            role: role.to_owned(),
            addr: addr.to_owned(),
            action: action.to_owned(),
            entity: String::new(),
            outcome: "ok".to_owned(),
            detail: "{}".to_owned(),
        }
    }

    pub fn entity(mut self, e: impl Into<String>) -> Entry {
        self.entity = e.into();
        self
    }

    pub fn outcome(mut self, o: impl Into<String>) -> Entry {
        self.outcome = o.into();
        self
    }

    pub fn detail(mut self, d: serde_json::Value) -> Entry {
        self.detail = d.to_string();
        self
    }
}

/// A chained row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: i64,
    #[serde(serialize_with = "crate::contract::rfc3339::chrono_serde")]
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

/// The time as stored (PostgreSQL keeps microseconds).
pub fn stored_time(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The hash of a row: SHA-256 over the previous hash and the row's canonical
/// content (a JSON array in a fixed order; the id is not part of it, so a
/// row cannot be moved without breaking the next one).
pub fn chain(prev_hash: &str, at: DateTime<Utc>, e: &Entry) -> String {
    let canonical = serde_json::json!([
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.actor,
        e.role,
        e.addr,
        e.action,
        e.entity,
        e.outcome,
        e.detail,
    ])
    .to_string();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    super::hex(&h.finalize())
}

/// The first row that does not match the chain.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit row {id} does not match the chain: {why}")]
pub struct Broken {
    pub id: i64,
    pub why: String,
}

/// Recomputes the chain over rows in id order, starting from `prev` (the
/// hash of the row before the first, or [`GENESIS`]). Returns how many rows
/// were checked.
pub fn verify<'a>(prev: &str, rows: impl IntoIterator<Item = &'a Row>) -> Result<u64, Broken> {
    let mut prev = prev.to_owned();
    let mut n = 0;
    for r in rows {
        if r.prev_hash != prev {
            return Err(Broken {
                id: r.id,
                why: "its prev_hash is not the previous row's hash (a row was removed, inserted or re-chained)".into(),
            });
        }
        let expected = chain(&prev, r.at, &r.entry);
        if r.hash != expected {
            return Err(Broken {
                id: r.id,
                why: "its content does not hash to its hash (the row was changed)".into(),
            });
        }
        prev = expected;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        let mut prev = GENESIS.to_owned();
        (1..=3)
            .map(|id| {
                let at = stored_time(Utc::now());
                let entry = Entry::new("budi", "traffic_officer", "127.0.0.1", "login");
                let hash = chain(&prev, at, &entry);
                let row = Row {
                    id,
                    at,
                    entry,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn a_changed_row_is_named() {
        let mut r = rows();
        assert_eq!(verify(GENESIS, &r), Ok(3));
        r[1].entry.outcome = "refused".into();
        assert_eq!(verify(GENESIS, &r).unwrap_err().id, 2);
        let mut r = rows();
        r.remove(1);
        assert_eq!(verify(GENESIS, &r).unwrap_err().id, 3);
    }
}
