//! The match's deterministic random number generator (SplitMix64): integer-only, so the same
//! seed gives the same orb and respawn positions on every machine.

/// SplitMix64 state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The generator's state: `Rng::new(state)` continues exactly where this one is.
    #[must_use]
    pub fn state(&self) -> u64 {
        self.0
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `lo..=hi` (multiply-shift; the bias is below 2^-32 for our ranges).
    pub fn range_i32(&mut self, lo: i32, hi: i32) -> i32 {
        debug_assert!(lo <= hi);
        let span = (i64::from(hi) - i64::from(lo) + 1) as u64;
        let r = ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as i64;
        (i64::from(lo) + r) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_in_range() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..1000 {
            let x = a.range_i32(-3, 7);
            assert_eq!(x, b.range_i32(-3, 7));
            assert!((-3..=7).contains(&x));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
