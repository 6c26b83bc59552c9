//! The phase rules of a match (waiting, countdown, running, ended) as a pure function of the
//! tick and the number of players: no clock, no tokio, so every rule is a plain unit test.
//! Scores count only while the phase is `Running` (the match task sets `Game::scoring` from
//! the phase it is told to enter).

use std::time::Duration;

use skirmish_shared::tick::Tick;
use skirmish_shared::world::Phase;

/// How long each phase lasts, in ticks, and who starts a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Players needed to start the countdown.
    pub min_players: usize,
    /// Waiting this long starts the countdown with whoever is there (at least one player).
    pub waiting: u32,
    pub countdown: u32,
    pub running: u32,
}

impl Timings {
    /// From the settings' durations at `tick_hz`.
    #[must_use]
    pub fn new(
        tick_hz: u32,
        min_players: usize,
        waiting: Duration,
        countdown: Duration,
        running: Duration,
    ) -> Self {
        Self {
            min_players: min_players.max(1),
            waiting: ticks(waiting, tick_hz).max(1),
            countdown: ticks(countdown, tick_hz),
            running: ticks(running, tick_hz).max(1),
        }
    }
}

/// Whole ticks in `d` at `hz`, rounded up, bounded so tick arithmetic cannot wrap.
#[must_use]
pub fn ticks(d: Duration, hz: u32) -> u32 {
    (d.as_millis() * u128::from(hz))
        .div_ceil(1000)
        .min(u128::from(u32::MAX / 2)) as u32
}

/// A match's phase and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseClock {
    pub phase: Phase,
    pub ends_at: Tick,
}

impl PhaseClock {
    /// A new match: waiting, for `timings.waiting` ticks from tick 0.
    #[must_use]
    pub fn start(timings: &Timings) -> Self {
        Self {
            phase: Phase::Waiting,
            ends_at: Tick(timings.waiting),
        }
    }

    /// Moves through the phases as far as tick `now` with `players` in the match allows;
    /// returns each phase entered, in order, with the tick it ends at. Waiting that runs out
    /// with nobody there starts another round of waiting (not a change).
    pub fn advance(&mut self, now: Tick, players: usize, t: &Timings) -> Vec<PhaseClock> {
        let mut entered = Vec::new();
        loop {
            let over = now.is_at_or_after(self.ends_at);
            let next = match self.phase {
                Phase::Waiting if players >= t.min_players || (over && players > 0) => {
                    Some((Phase::Countdown, t.countdown))
                }
                Phase::Waiting if over => {
                    self.ends_at = now.plus(t.waiting);
                    None
                }
                Phase::Countdown if over => Some((Phase::Running, t.running)),
                Phase::Running if over => Some((Phase::Ended, 0)),
                _ => None,
            };
            let Some((phase, len)) = next else {
                return entered;
            };
            *self = Self {
                phase,
                ends_at: now.plus(len),
            };
            entered.push(*self);
            if phase == Phase::Ended {
                return entered;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings() -> Timings {
        Timings {
            min_players: 2,
            waiting: 100,
            countdown: 10,
            running: 50,
        }
    }

    fn phases(changes: &[PhaseClock]) -> Vec<Phase> {
        changes.iter().map(|c| c.phase).collect()
    }

    #[test]
    fn enough_players_count_down_then_run_then_end() {
        let t = timings();
        let mut c = PhaseClock::start(&t);
        assert!(c.advance(Tick(1), 1, &t).is_empty(), "one player waits");
        let e = c.advance(Tick(5), 2, &t);
        assert_eq!(
            e,
            [PhaseClock {
                phase: Phase::Countdown,
                ends_at: Tick(15)
            }]
        );
        assert!(c.advance(Tick(14), 2, &t).is_empty());
        assert_eq!(phases(&c.advance(Tick(15), 2, &t)), [Phase::Running]);
        assert_eq!(c.ends_at, Tick(65));
        assert_eq!(phases(&c.advance(Tick(65), 1, &t)), [Phase::Ended]);
        assert!(c.advance(Tick(1000), 5, &t).is_empty(), "ended is final");
    }

    #[test]
    fn waiting_runs_out_with_one_player_or_starts_over_with_none() {
        let t = timings();
        let mut c = PhaseClock::start(&t);
        assert!(c.advance(Tick(100), 0, &t).is_empty());
        assert_eq!(
            c,
            PhaseClock {
                phase: Phase::Waiting,
                ends_at: Tick(200)
            },
            "another round"
        );
        assert_eq!(phases(&c.advance(Tick(200), 1, &t)), [Phase::Countdown]);
    }

    #[test]
    fn a_zero_countdown_goes_straight_to_running_in_one_tick() {
        let t = Timings {
            countdown: 0,
            ..timings()
        };
        let mut c = PhaseClock::start(&t);
        assert_eq!(
            phases(&c.advance(Tick(3), 2, &t)),
            [Phase::Countdown, Phase::Running]
        );
    }

    #[test]
    fn durations_become_ticks_rounded_up() {
        assert_eq!(ticks(Duration::from_secs(3), 30), 90);
        assert_eq!(ticks(Duration::from_millis(1), 30), 1);
        assert_eq!(
            ticks(Duration::from_secs(u64::MAX / 1000), 128),
            u32::MAX / 2
        );
        let t = Timings::new(30, 0, Duration::ZERO, Duration::ZERO, Duration::ZERO);
        assert_eq!((t.min_players, t.waiting, t.running), (1, 1, 1));
    }
}
