//! What a client gets first when its view does not fit its byte budget: every candidate's
//! priority accumulates each tick it waits (by its weight: nearer, or aimed at the client,
//! weighs more), the highest accumulated go out first until the budget is spent, and what
//! went out starts again from zero. Nothing starves: a waiting entity's priority grows until
//! it is the highest.

use std::collections::HashMap;
use std::hash::Hash;

/// One client's accumulated priorities, by entity key.
#[derive(Debug, Clone)]
pub struct Priority<K> {
    acc: HashMap<K, f64>,
}

impl<K> Default for Priority<K> {
    fn default() -> Self {
        Self {
            acc: HashMap::new(),
        }
    }
}

/// An entity the client could be sent this tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate<K> {
    pub key: K,
    /// How much it matters now (> 0): added to its priority every tick it waits.
    pub weight: f64,
    /// Bytes it would take in the snapshot.
    pub bytes: usize,
}

impl<K: Copy + Eq + Hash + Ord> Priority<K> {
    /// This tick's choice within `budget` bytes (at least one candidate, so a client always
    /// moves). Candidates not offered (out of view) are forgotten: they start from zero when
    /// they come back, and go out in full anyway.
    pub fn select(&mut self, candidates: &[Candidate<K>], budget: usize) -> Vec<K> {
        let mut offered: Vec<(f64, Candidate<K>)> = candidates
            .iter()
            .map(|c| {
                let acc = self.acc.entry(c.key).or_insert(0.0);
                *acc += c.weight.max(f64::MIN_POSITIVE);
                (*acc, *c)
            })
            .collect();
        let keep: std::collections::HashSet<K> = candidates.iter().map(|c| c.key).collect();
        self.acc.retain(|k, _| keep.contains(k));
        // Highest first; ties by key so the order is deterministic.
        offered.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.key.cmp(&b.1.key)));
        let mut used = 0;
        let mut chosen = Vec::new();
        for (_, c) in offered {
            if !chosen.is_empty() && used + c.bytes > budget {
                continue; // a smaller one further down may still fit
            }
            used += c.bytes;
            chosen.push(c.key);
            self.acc.insert(c.key, 0.0);
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidates(weights: &[f64], bytes: usize) -> Vec<Candidate<u32>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Candidate {
                key: i as u32,
                weight: *w,
                bytes,
            })
            .collect()
    }

    #[test]
    fn everything_fits_everything_goes() {
        let mut p = Priority::default();
        let c = candidates(&[1.0, 2.0, 3.0], 10);
        let mut got = p.select(&c, 1000);
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    }

    #[test]
    fn the_nearest_go_first_and_the_far_ones_still_go() {
        let mut p = Priority::default();
        // One near entity (weight 8), seven far ones (weight 1); room for two a tick.
        let mut weights = vec![8.0];
        weights.extend([1.0; 7]);
        let c = candidates(&weights, 100);
        let mut last_sent = [0u32; 8];
        for tick in 1..=200u32 {
            let got = p.select(&c, 200);
            assert_eq!(got.len(), 2);
            for k in got {
                last_sent[k as usize] = tick;
            }
            if tick > 20 {
                for (k, t) in last_sent.iter().enumerate() {
                    let limit = if k == 0 { 2 } else { 8 };
                    assert!(tick - t < limit, "entity {k} waited {} ticks", tick - t);
                }
            }
        }
    }

    proptest! {
        /// With room for k of n equal candidates, none waits longer than the weights allow:
        /// about (n / k) times the ratio of the heaviest weight to its own.
        #[test]
        fn nothing_starves(
            weights in proptest::collection::vec(1u32..=4, 1..40),
            room in 1usize..8,
        ) {
            let weights: Vec<f64> = weights.into_iter().map(f64::from).collect();
            let n = weights.len();
            let c = candidates(&weights, 10);
            let mut p = Priority::default();
            let mut last = vec![0usize; n];
            let heaviest = weights.iter().copied().fold(0.0, f64::max);
            for tick in 1..=400usize {
                for k in p.select(&c, room * 10) {
                    last[k as usize] = tick;
                }
                if tick > 100 {
                    for (k, t) in last.iter().enumerate() {
                        let bound = (n.div_ceil(room) as f64 * heaviest / weights[k]).ceil() as usize + 2;
                        prop_assert!(tick - t <= bound, "entity {} waited {} > {}", k, tick - t, bound);
                    }
                }
            }
        }
    }
}
