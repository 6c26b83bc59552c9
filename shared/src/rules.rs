//! The game's constants (they are also the benchmark workload) and the per-tick-rate
//! parameters derived from them with integer math.

use crate::quant::{POS_SCALE, damping_q30};

/// Arena side length, world units. The arena is `0..=ARENA_SIZE` on both axes.
pub const ARENA_SIZE: i32 = 1000;
/// Player circle radius, world units.
pub const PLAYER_RADIUS: i32 = 15;
/// Acceleration at full input, world units per second squared.
pub const PLAYER_ACCEL: i32 = 800;
/// Velocity damping rate: `v *= exp(-DAMPING_PER_S * dt)` every step.
pub const DAMPING_PER_S: i32 = 4;
/// Number of orbs in a match.
pub const ORB_COUNT: usize = 48;
/// Orb circle radius, world units.
pub const ORB_RADIUS: i32 = 5;
/// Score for collecting an orb.
pub const ORB_SCORE: u32 = 1;
/// Projectile speed, world units per second.
pub const PROJECTILE_SPEED: i32 = 600;
/// Projectile radius, world units.
pub const PROJECTILE_RADIUS: i32 = 4;
/// Projectile lifetime, milliseconds.
pub const PROJECTILE_LIFETIME_MS: u32 = 1000;
/// Minimum time between two shots of one player, milliseconds.
pub const FIRE_COOLDOWN_MS: u32 = 500;
/// Score for tagging another player with a projectile.
pub const HIT_SCORE: u32 = 5;
/// Default simulation rate.
pub const DEFAULT_TICK_HZ: u32 = 30;
/// Allowed simulation rates.
pub const TICK_HZ_RANGE: std::ops::RangeInclusive<u32> = 10..=128;
/// Default players per match (the benchmark's match size).
pub const DEFAULT_MATCH_SIZE: usize = 16;
/// Hard upper bound on players per match (the codec's limit too).
pub const MAX_PLAYERS: usize = 256;
/// Longest player name, bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 16;

/// How far back the server may judge a shot by default (lag compensation), milliseconds.
pub const DEFAULT_MAX_REWIND_MS: u32 = 200;
/// The most a server may be set to rewind, milliseconds.
pub const MAX_REWIND_LIMIT_MS: u32 = 1000;

/// Input button bit: fire.
pub const BUTTON_FIRE: u8 = 1;

/// Largest position coordinate, position steps.
pub const ARENA_MAX_Q: i32 = ARENA_SIZE * POS_SCALE;

/// Everything the rules need that depends on the tick rate, computed once per match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub tick_hz: u32,
    /// `exp(-4 / tick_hz)`, Q30.
    pub damping_q30: i64,
    /// Projectile lifetime in ticks.
    pub projectile_lifetime_ticks: u32,
    /// Fire cooldown in ticks.
    pub fire_cooldown_ticks: u16,
    /// Lag compensation: the most ticks a shot is judged in the past (0: off). At most
    /// 128 (`MAX_REWIND_LIMIT_MS` at 128 Hz).
    pub max_rewind_ticks: u8,
}

impl Params {
    /// Parameters for `tick_hz` (clamped into [`TICK_HZ_RANGE`]), with the default rewind
    /// ([`DEFAULT_MAX_REWIND_MS`]).
    #[must_use]
    pub fn new(tick_hz: u32) -> Self {
        let tick_hz = tick_hz.clamp(*TICK_HZ_RANGE.start(), *TICK_HZ_RANGE.end());
        Self {
            tick_hz,
            damping_q30: damping_q30(DAMPING_PER_S, tick_hz),
            projectile_lifetime_ticks: (PROJECTILE_LIFETIME_MS * tick_hz).div_ceil(1000),
            fire_cooldown_ticks: (FIRE_COOLDOWN_MS * tick_hz).div_ceil(1000) as u16,
            max_rewind_ticks: 0,
        }
        .with_max_rewind_ms(DEFAULT_MAX_REWIND_MS)
    }

    /// The same rules with lag compensation up to `ms` milliseconds (rounded to whole ticks,
    /// at most [`MAX_REWIND_LIMIT_MS`]; 0 turns it off).
    #[must_use]
    pub fn with_max_rewind_ms(self, ms: u32) -> Self {
        let ticks = (ms.min(MAX_REWIND_LIMIT_MS) * self.tick_hz + 500) / 1000;
        Self {
            max_rewind_ticks: ticks.min(u32::from(u8::MAX)) as u8,
            ..self
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Self::new(DEFAULT_TICK_HZ)
    }
}

/// The longest prefix of `s` that fits in `max_bytes` without splitting a character.
#[must_use]
pub fn truncate_utf8(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether `c` may appear in a name or a chat line: not a control character, not a Unicode
/// format character (bidi overrides and isolates, zero-width spaces and joiners, the BOM, tag
/// characters: they let one name pose as another on the scoreboard), not a line or paragraph
/// separator. The list is Unicode's general category Cf, by hand to avoid a tables crate.
#[must_use]
pub fn is_printable(c: char) -> bool {
    !c.is_control()
        && !matches!(c,
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

/// A chat line as the server relays it: only [`is_printable`] characters.
#[must_use]
pub fn clean_text(raw: &str) -> String {
    raw.chars().filter(|c| is_printable(*c)).collect()
}

/// A player name as the server stores it: only [`is_printable`] characters, other white
/// space as plain spaces, surrounding white space trimmed, at most [`MAX_NAME_BYTES`], and
/// `"player"` when nothing is left.
#[must_use]
pub fn clean_name(raw: &str) -> crate::world::Name {
    let no_controls: String = raw
        .chars()
        .filter(|c| is_printable(*c))
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let name = truncate_utf8(no_controls.trim(), MAX_NAME_BYTES).trim();
    crate::world::Name::new(if name.is_empty() { "player" } else { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_and_truncated_on_char_boundaries() {
        assert_eq!(&*clean_name("  alice\n "), "alice");
        assert_eq!(&*clean_name(""), "player");
        assert_eq!(&*clean_name("ééééééééé"), "éééééééé"); // 9 x 2 bytes -> 8 fit in 16
        assert_eq!(clean_name(&"x".repeat(40)).len(), MAX_NAME_BYTES);
    }

    #[test]
    fn names_lose_bidi_overrides_and_invisible_characters() {
        // "alice" written right-to-left over "ecila", and zero-width padding.
        assert_eq!(&*clean_name("\u{202E}ecila\u{202C}"), "ecila");
        assert_eq!(&*clean_name("bo\u{200B}b\u{2066}\u{FEFF}"), "bob");
        assert_eq!(&*clean_name("\u{E0041}\u{200D}"), "player");
        assert_eq!(&*clean_name("a\u{3000}b"), "a b");
        assert_eq!(&*clean_name("zoë 🙂"), "zoë 🙂");
        assert_eq!(clean_text("gg\u{202E}wp"), "ggwp");
    }

    #[test]
    fn params_follow_the_tick_rate() {
        let p = Params::new(30);
        assert_eq!(p.projectile_lifetime_ticks, 30);
        assert_eq!(p.fire_cooldown_ticks, 15);
        assert_eq!(p.max_rewind_ticks, 6, "200 ms at 30 Hz");
        assert_eq!(p.with_max_rewind_ms(0).max_rewind_ticks, 0);
        assert_eq!(
            Params::new(128).with_max_rewind_ms(5000).max_rewind_ticks,
            128
        );
        assert_eq!(Params::new(60).max_rewind_ticks, 12);
        assert_eq!(Params::new(1000).tick_hz, 128);
        assert_eq!(Params::new(1).tick_hz, 10);
    }
}
