//! The call-taking indicators of a day, as the EU's 112 reports and NENA
//! count them: how many calls were answered, their mean answer time, the
//! share answered within 10, 15 and 20 s, and the mean of the slowest 10 %.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// The most answer times one day keeps exactly; beyond, the mean still
/// counts every call and the slowest 10 % are those of the times kept.
pub const ANSWER_TIMES_KEPT: usize = 200_000;

/// A day's answer times (seconds from `received` to `answered`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnswerTimes {
    /// Kept in ascending order: the slowest 10 % are the tail.
    sorted: Vec<f32>,
    n: u64,
    sum: f64,
    within_10s: u64,
}

impl AnswerTimes {
    pub fn add(&mut self, seconds: f64) {
        let s = seconds.max(0.0);
        self.n += 1;
        self.sum += s;
        self.within_10s += (s <= 10.0) as u64;
        if self.sorted.len() < ANSWER_TIMES_KEPT {
            let v = s as f32;
            let at = self.sorted.partition_point(|x| *x <= v);
            self.sorted.insert(at, v);
        }
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn within_10s(&self) -> u64 {
        self.within_10s
    }

    pub fn mean_s(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The mean of the slowest tenth (at least one call).
    pub fn slowest_tenth_mean_s(&self) -> Option<f64> {
        let k = self.sorted.len().div_ceil(10);
        (k > 0).then(|| {
            self.sorted[self.sorted.len() - k..]
                .iter()
                .map(|v| *v as f64)
                .sum::<f64>()
                / k as f64
        })
    }
}

/// Everything an [`AnswerTimes`] holds, for a replay checkpoint (the
/// screens' form, [`AnswerTimes`]'s `Serialize`, is its three figures).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnswerTimesParts {
    sorted: Vec<f32>,
    n: u64,
    sum: f64,
    within_10s: u64,
}

impl AnswerTimes {
    pub fn parts(&self) -> AnswerTimesParts {
        AnswerTimesParts {
            sorted: self.sorted.clone(),
            n: self.n,
            sum: self.sum,
            within_10s: self.within_10s,
        }
    }

    pub fn from_parts(p: AnswerTimesParts) -> AnswerTimes {
        AnswerTimes {
            sorted: p.sorted,
            n: p.n,
            sum: p.sum,
            within_10s: p.within_10s,
        }
    }
}

impl Serialize for AnswerTimes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AnswerTimes", 3)?;
        st.serialize_field("n", &self.n)?;
        st.serialize_field("mean_s", &self.mean_s())?;
        st.serialize_field("slowest_10pct_mean_s", &self.slowest_tenth_mean_s())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_tenth_is_the_mean_of_the_top_tenth_rounded_up() {
        let mut a = AnswerTimes::default();
        assert_eq!(a.mean_s(), None);
        assert_eq!(a.slowest_tenth_mean_s(), None);
        for s in [12.0, 3.0, 30.0, 5.0, 9.0, 11.0, 4.0, 6.0, 7.0, 8.0, 40.0] {
            a.add(s);
        }
        // 11 calls: the slowest 10 % is 2 calls, 40 and 30.
        assert_eq!(a.slowest_tenth_mean_s(), Some(35.0));
        assert_eq!(a.count(), 11);
        assert_eq!(a.within_10s(), 7);
        assert!((a.mean_s().unwrap() - 135.0 / 11.0).abs() < 1e-9);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["n"], 11);
        assert_eq!(json["slowest_10pct_mean_s"], 35.0);
    }
}
