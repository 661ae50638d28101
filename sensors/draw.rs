//! Random draws for the simulator. Everything random comes from one seeded
//! ChaCha stream passed in by the caller, so a run can be replayed exactly;
//! these helpers keep the common shapes (Poisson counts, weighted picks,
//! ranges, uuids) in one place and never panic on odd parameters.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};
use uuid::Uuid;

/// The simulator's one random stream.
pub type SimRng = ChaCha8Rng;

/// Cap on the arrivals drawn for one stream in one step, so a pathological
/// rate or step cannot stall the simulator.
pub const MAX_ARRIVALS_PER_STEP: u64 = 10_000;

pub fn rng_from_seed(seed: u64) -> SimRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A version-4 uuid drawn from the seeded stream (never from the OS).
pub fn uuid(rng: &mut SimRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// A Poisson count with mean `lambda`; 0 for non-positive or non-finite means.
pub fn poisson(rng: &mut SimRng, lambda: f64) -> u64 {
    if !(lambda.is_finite() && lambda > 0.0) {
        return 0;
    }
    match Poisson::new(lambda.min(1e9)) {
        Ok(d) => {
            let k: f64 = d.sample(rng);
            (k as u64).min(MAX_ARRIVALS_PER_STEP)
        }
        Err(_) => 0,
    }
}

/// Uniform in `[lo, hi]`; tolerates `lo == hi` and a reversed range.
pub fn uniform(rng: &mut SimRng, range: [f64; 2]) -> f64 {
    let (lo, hi) = if range[0] <= range[1] {
        (range[0], range[1])
    } else {
        (range[1], range[0])
    };
    if !(lo.is_finite() && hi.is_finite()) {
        return 0.0;
    }
    lo + (hi - lo) * rng.random::<f64>()
}

/// Like [`uniform`] but skewed towards the low end (most calls are answered
/// quickly, a few take long).
pub fn skewed(rng: &mut SimRng, range: [f64; 2]) -> f64 {
    let u: f64 = rng.random();
    uniform_at(range, u * u)
}

fn uniform_at(range: [f64; 2], u: f64) -> f64 {
    let (lo, hi) = (range[0].min(range[1]), range[0].max(range[1]));
    if !(lo.is_finite() && hi.is_finite()) {
        return 0.0;
    }
    lo + (hi - lo) * u
}

/// True with probability `p` (clamped to 0..=1).
pub fn chance(rng: &mut SimRng, p: f64) -> bool {
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    rng.random::<f64>() < p
}

/// A standard normal draw.
pub fn normal(rng: &mut SimRng) -> f64 {
    StandardNormal.sample(rng)
}

/// Index picked with probability proportional to its weight; `None` when no
/// weight is positive.
pub fn weighted(rng: &mut SimRng, weights: impl Iterator<Item = f64> + Clone) -> Option<usize> {
    let clean = |w: f64| if w.is_finite() && w > 0.0 { w } else { 0.0 };
    let total: f64 = weights.clone().map(clean).sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rng.random::<f64>() * total;
    let mut last = None;
    for (i, w) in weights.map(clean).enumerate() {
        if w <= 0.0 {
            continue;
        }
        last = Some(i);
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    // Rounding can leave x a hair above the last weight: that is the last item.
    last
}

/// One element of a slice, uniformly; `None` when empty.
pub fn one_of<'a, T>(rng: &mut SimRng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.random_range(0..items.len()))
    }
}

/// One step of an Ornstein-Uhlenbeck process (mean 0, stationary deviation
/// `sigma`, relaxation time `tau_s`) over `dt_s`, exact for any step length,
/// so a drill at 1440x gives the same statistics as real time.
pub fn ou_step(rng: &mut SimRng, x: f64, sigma: f64, tau_s: f64, dt_s: f64) -> f64 {
    if !(dt_s > 0.0 && tau_s > 0.0 && sigma.is_finite()) {
        return x;
    }
    let a = (-dt_s / tau_s).exp();
    x * a + sigma * (1.0 - a * a).sqrt() * normal(rng)
}

/// Rounds to `decimals` places (for stable, readable payloads).
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_tolerate_degenerate_parameters() {
        let mut rng = rng_from_seed(1);
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
        assert_eq!(poisson(&mut rng, -3.0), 0);
        assert!(poisson(&mut rng, 1e30) <= MAX_ARRIVALS_PER_STEP);
        assert_eq!(uniform(&mut rng, [5.0, 5.0]), 5.0);
        let x = uniform(&mut rng, [9.0, 3.0]);
        assert!((3.0..=9.0).contains(&x));
        assert_eq!(weighted(&mut rng, [0.0, f64::NAN, -1.0].into_iter()), None);
        assert_eq!(weighted(&mut rng, [0.0, 2.0, 0.0].into_iter()), Some(1));
        assert!(one_of::<u8>(&mut rng, &[]).is_none());
    }

    #[test]
    fn uuids_are_version_4_and_reproducible() {
        let a = uuid(&mut rng_from_seed(7));
        let b = uuid(&mut rng_from_seed(7));
        assert_eq!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }
}
