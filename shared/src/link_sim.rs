//! A simulated network link for clients and bots, per packet (or per message over
//! WebSocket): one-way latency, random jitter (which reorders packets when it exceeds their
//! spacing), loss and duplication. Sans-IO: the caller pushes what it would send or what it
//! received with the time, and pops what is due.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rng::Rng;

/// What the link does to each packet.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkConfig {
    /// One-way delay added to every packet.
    pub latency: Duration,
    /// Extra delay, uniform in `0..=jitter`, drawn per packet.
    pub jitter: Duration,
    /// Probability a packet is lost, 0..1.
    pub loss: f64,
    /// Probability a packet arrives twice, 0..1.
    pub duplicate: f64,
}

impl LinkConfig {
    /// Whether the link changes anything.
    #[must_use]
    pub fn is_active(&self) -> bool {
        !self.latency.is_zero() || !self.jitter.is_zero() || self.loss > 0.0 || self.duplicate > 0.0
    }
}

/// The link simulation's command-line flags (feature `client`), shared by the bots and the
/// game.
#[cfg(feature = "client")]
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LinkArgs {
    /// Simulated one-way latency added to both directions, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub sim_latency_ms: u64,
    /// Simulated jitter: extra random delay up to this, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub sim_jitter_ms: u64,
    /// Simulated loss, 0..1: every packet in both directions over UDP (over WebSocket the
    /// game drops whole snapshots; the bots simulate UDP only).
    #[arg(long, default_value_t = 0.0)]
    pub sim_loss: f64,
    /// Simulated duplication, 0..1: every packet in both directions (UDP only).
    #[arg(long, default_value_t = 0.0)]
    pub sim_duplicate: f64,
}

#[cfg(feature = "client")]
impl LinkArgs {
    /// The link these flags describe (probabilities clamped to 0..1).
    #[must_use]
    pub fn config(&self) -> LinkConfig {
        LinkConfig {
            latency: Duration::from_millis(self.sim_latency_ms),
            jitter: Duration::from_millis(self.sim_jitter_ms),
            loss: self.sim_loss.clamp(0.0, 1.0),
            duplicate: self.sim_duplicate.clamp(0.0, 1.0),
        }
    }
}

/// One direction of a simulated link.
#[derive(Debug)]
pub struct DelayLine<T> {
    config: LinkConfig,
    rng: Rng,
    /// In delivery order.
    queue: VecDeque<(Instant, T)>,
    /// Packets lost so far.
    pub lost: u64,
}

impl<T: Clone> DelayLine<T> {
    #[must_use]
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            lost: 0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn delay(&mut self) -> Duration {
        let j = self.config.jitter.as_micros() as u64;
        let extra = if j == 0 {
            0
        } else {
            self.rng.next_u64() % (j + 1)
        };
        self.config.latency + Duration::from_micros(extra)
    }

    fn insert(&mut self, at: Instant, item: T) {
        let i = self.queue.partition_point(|(t, _)| *t <= at);
        self.queue.insert(i, (at, item));
    }

    /// A packet enters the link at `now`: lost, delivered once, or twice.
    pub fn push(&mut self, item: T, now: Instant) {
        if self.chance(self.config.loss) {
            self.lost += 1;
            return;
        }
        if self.chance(self.config.duplicate) {
            let at = now + self.delay();
            self.insert(at, item.clone());
        }
        let at = now + self.delay();
        self.insert(at, item);
    }

    /// The next packet due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        self.pop_due_at(now).map(|(_, x)| x)
    }

    /// The next packet due by `now`, with the time it was due.
    pub fn pop_due_at(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.queue.front().is_some_and(|(t, _)| *t <= now) {
            return self.queue.pop_front();
        }
        None
    }

    /// When the next packet is due.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_reorders_loses_and_duplicates_about_as_configured() {
        let config = LinkConfig {
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(40),
            loss: 0.1,
            duplicate: 0.05,
        };
        let mut line = DelayLine::new(config, 9);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            line.push(i, t0 + Duration::from_millis(u64::from(i)));
        }
        assert!(
            line.pop_due(t0 + Duration::from_millis(49)).is_none(),
            "nothing before the latency"
        );
        let mut got = Vec::new();
        while let Some(x) = line.pop_due(t0 + Duration::from_secs(60)) {
            got.push(x);
        }
        let lost = 10_000 - got.iter().collect::<std::collections::HashSet<_>>().len();
        assert!((800..1200).contains(&lost), "about 10 % lost: {lost}");
        let dups = got.len() - (10_000 - lost);
        assert!((300..700).contains(&dups), "about 5 % duplicated: {dups}");
        assert!(got.windows(2).any(|w| w[1] < w[0]), "jitter reorders");
        assert_eq!(line.lost as usize, lost);
    }

    #[test]
    fn an_inactive_link_delivers_everything_at_once_in_order() {
        let mut line = DelayLine::new(LinkConfig::default(), 1);
        let now = Instant::now();
        for i in 0..100 {
            line.push(i, now);
        }
        let got: Vec<i32> = std::iter::from_fn(|| line.pop_due(now)).collect();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(!LinkConfig::default().is_active());
    }
}
