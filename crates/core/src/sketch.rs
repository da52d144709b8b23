//! A log-linear histogram of durations, for percentiles in bounded memory.
//!
//! Values (microseconds) below 128 each have a bucket of their own. Above,
//! every power of two `[2^e, 2^(e+1))` is cut into 128 buckets of equal
//! width `2^(e-7)`. A percentile is the middle of the bucket that holds the
//! nearest-rank value, clamped to the smallest and largest values seen: it
//! is within 1/256 (0.4%) of the exact nearest-rank percentile, whatever
//! the values. The largest index is below 7,424, so a sketch holds at most
//! that many counts however many values it is given (about 25 KiB for
//! durations up to an hour).

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

/// The largest relative error of [`Sketch::percentile`] against the exact
/// nearest-rank percentile: 1/256.
pub const SKETCH_RELATIVE_ERROR: f64 = 1.0 / 256.0;

/// A histogram of `u64` values (durations in microseconds) from which
/// nearest-rank percentiles are read within [`SKETCH_RELATIVE_ERROR`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    counts: Vec<u64>,
    n: u64,
    min: u64,
    max: u64,
}

/// The bucket of `v`.
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let e = 63 - v.leading_zeros();
    let shift = e - SUB_BITS;
    let sub = (v >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + sub) as usize
}

/// The smallest value of bucket `i` and the bucket's width.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, 1);
    }
    let shift = (i - SUB) / SUB;
    let sub = (i - SUB) % SUB;
    ((SUB + sub) << shift, 1 << shift)
}

impl Sketch {
    /// An empty sketch.
    pub fn new() -> Sketch {
        Sketch::default()
    }

    /// Counts one value.
    pub fn add(&mut self, v: u64) {
        let i = index(v);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        if self.n == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.n += 1;
    }

    /// How many values it was given.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether it was given none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The largest value (exact); 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The nearest-rank `p`th percentile (0 to 100), within
    /// [`SKETCH_RELATIVE_ERROR`] of the exact one; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.n as f64).ceil() as u64;
        let rank = rank.clamp(1, self.n);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bounds(i);
                return (lo + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::percentile;
    use proptest::prelude::*;

    #[test]
    fn small_values_are_exact_and_buckets_tile_the_line() {
        let mut s = Sketch::new();
        for v in 1..=100 {
            s.add(v);
        }
        assert_eq!((s.percentile(50.0), s.percentile(95.0)), (50, 95));
        assert_eq!(s.max(), 100);
        assert_eq!(Sketch::new().percentile(50.0), 0);
        for v in [0, 1, 127, 128, 129, 255, 256, 1 << 20, u64::MAX] {
            let (lo, w) = bounds(index(v));
            assert!(lo <= v && v - lo < w, "{v}: bucket [{lo}, +{w})");
        }
        assert!(index(u64::MAX) < 7424);
    }

    proptest! {
        #[test]
        fn percentiles_are_within_the_stated_error(
            values in prop::collection::vec(
                prop_oneof![0u64..200, 0u64..100_000, 0u64..u64::MAX / 2],
                1..400,
            ),
            p in 0.0f64..=100.0,
        ) {
            let mut s = Sketch::new();
            for &v in &values {
                s.add(v);
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let exact = percentile(&sorted, p);
            let got = s.percentile(p);
            let allowed = exact / 256;
            prop_assert_eq!(SKETCH_RELATIVE_ERROR, 1.0 / 256.0);
            prop_assert!(got.abs_diff(exact) <= allowed,
                "p{p}: sketch {got}, exact {exact}, allowed ±{allowed}");
            prop_assert_eq!(s.max(), *sorted.last().unwrap());
        }
    }
}
