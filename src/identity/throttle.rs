//! Throttles, kept in memory per node: failed logins per address and per
//! user (a growing delay, answered `429`), and operator actions per user (a
//! token bucket). Both forget quiet keys and hold a bounded number of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed for one user before the delay starts.
pub const USER_FREE_FAILURES: u32 = 5;
/// Failed logins allowed from one address before the delay starts: more,
/// as one console (or one office's NAT) serves a whole shift.
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// The delay doubles per further failure up to this.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A key with no failure for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Keys kept at most; beyond, the quietest are forgotten first.
const MAX_KEYS: usize = 100_000;

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

/// Failed logins per key (`addr:1.2.3.4`, `user:budi`).
#[derive(Default)]
pub struct LoginThrottle {
    keys: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    /// How long the key must still wait, if it is blocked.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(key)
            .and_then(|f| f.blocked_until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Counts a failure; returns the delay it now imposes, if any (after
    /// `free` failures, 1 s, then doubling).
    pub fn failed(&self, key: &str, free: u32) -> Option<Duration> {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_KEYS {
            keys.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if keys.len() >= MAX_KEYS {
                // Still full under a spray of addresses: forget the quietest half.
                let mut lasts: Vec<Instant> = keys.values().map(|f| f.last).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                keys.retain(|_, f| f.last > cut);
            }
        }
        let f = keys.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: now,
        });
        if now.duration_since(f.last) > FORGET_AFTER {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count < free {
            return None;
        }
        let doubling = (f.count - free).min(20);
        let delay = Duration::from_secs(1u64 << doubling).min(MAX_DELAY);
        f.blocked_until = now + delay;
        Some(delay)
    }

    /// A successful login clears the key.
    pub fn succeeded(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Operator actions per user: `burst` at once, then `per_minute`.
pub struct ActionLimit {
    per_minute: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl ActionLimit {
    pub fn new(per_minute: u32, burst: u32) -> ActionLimit {
        ActionLimit {
            per_minute: per_minute.max(1) as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one action for `user`; `Err(wait)` when none is left.
    pub fn take(&self, user: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS {
            let burst = self.burst;
            let rate = self.per_minute / 60.0;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let rate = self.per_minute / 60.0;
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_free_ones_block_with_a_growing_delay() {
        let t = LoginThrottle::default();
        for _ in 0..USER_FREE_FAILURES - 1 {
            assert_eq!(t.failed("user:a", USER_FREE_FAILURES), None);
        }
        assert_eq!(
            t.failed("user:a", USER_FREE_FAILURES),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            t.failed("user:a", USER_FREE_FAILURES),
            Some(Duration::from_secs(2))
        );
        assert!(t.blocked("user:a").is_some());
        assert!(t.blocked("user:b").is_none());
        t.succeeded("user:a");
        assert!(t.blocked("user:a").is_none());
    }

    #[test]
    fn actions_stop_after_the_burst() {
        let l = ActionLimit::new(60, 3);
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_ok());
        assert!(l.take("a").is_err());
        assert!(l.take("b").is_ok());
    }
}
