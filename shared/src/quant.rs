//! Quantized value types and the integer math of the rules.
//!
//! The world is stored quantized, so the numbers a client predicts with are exactly the
//! numbers the server has. Steps:
//!
//! | quantity  | type      | step                         | range                   |
//! |-----------|-----------|------------------------------|-------------------------|
//! | position  | `QVec`    | 1/16 unit (`POS_SCALE`)       | 0..=16000 (arena 1000)  |
//! | velocity  | `QVec`    | 1/4 unit per second (`VEL_SCALE`) | about ±750 at 30 Hz |
//! | aim angle | `QAngle`  | 1/1024 of a turn (`AIM_STEPS`) | 0..1024, 0 = +x, counter-clockwise toward +y |
//! | move      | `MoveVec` | 1/127 (`MOVE_SCALE`)          | -127..=127 per axis, length clamped to 1 |
//!
//! Bit-for-bit determinism across machines rules out `f32::sin`, `f64::exp` and friends at
//! run time: the sine table below is a literal, the damping factor is an integer series, and
//! square roots are integer.

use serde::{Deserialize, Serialize};

/// Position steps per world unit.
pub const POS_SCALE: i32 = 16;
/// Velocity steps per world unit per second.
pub const VEL_SCALE: i32 = 4;
/// Aim steps per full turn.
pub const AIM_STEPS: u16 = 1024;
/// Move vector steps per unit length.
pub const MOVE_SCALE: i32 = 127;
/// Fixed-point fraction bits of [`sin_q14`]/[`cos_q14`] results.
pub const TRIG_ONE: i32 = 1 << 14;

/// A quantized 2D vector (position in 1/16 units, or velocity in 1/4 units per second).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QVec {
    pub x: i32,
    pub y: i32,
}

impl QVec {
    #[must_use]
    pub const fn new(x: i32, y: i32) -> Self {
        Self { x, y }
    }

    /// Squared distance to `other`, in squared position steps (never overflows for
    /// positions inside the arena).
    #[must_use]
    pub fn dist_sq(self, other: Self) -> i64 {
        let dx = i64::from(self.x) - i64::from(other.x);
        let dy = i64::from(self.y) - i64::from(other.y);
        dx * dx + dy * dy
    }

    /// Position in world units, for rendering only (never fed back into the rules).
    #[must_use]
    pub fn pos_to_units(self) -> (f32, f32) {
        (
            self.x as f32 / POS_SCALE as f32,
            self.y as f32 / POS_SCALE as f32,
        )
    }
}

/// A quantized aim angle, `0..AIM_STEPS`.
///
/// Deserialization wraps out-of-range values, so a hostile peer cannot smuggle one in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub struct QAngle(u16);

impl From<u16> for QAngle {
    fn from(steps: u16) -> Self {
        Self::new(steps)
    }
}

impl From<QAngle> for u16 {
    fn from(a: QAngle) -> Self {
        a.0
    }
}

impl QAngle {
    /// Wraps any step count into `0..AIM_STEPS`.
    #[must_use]
    pub const fn new(steps: u16) -> Self {
        Self(steps % AIM_STEPS)
    }

    #[must_use]
    pub const fn steps(self) -> u16 {
        self.0
    }

    /// Quantizes an angle in radians (client side: mouse aim, bot steering).
    #[must_use]
    pub fn from_radians(rad: f32) -> Self {
        let turns = rad / std::f32::consts::TAU;
        let steps = (turns * f32::from(AIM_STEPS)).round() as i64;
        Self::new(steps.rem_euclid(i64::from(AIM_STEPS)) as u16)
    }

    /// The angle in radians, for rendering only.
    #[must_use]
    pub fn to_radians(self) -> f32 {
        f32::from(self.0) / f32::from(AIM_STEPS) * std::f32::consts::TAU
    }

    /// Signed shortest difference `self - other` in steps, in `-512..512`.
    #[must_use]
    pub fn diff(self, other: Self) -> i32 {
        let d = (i32::from(self.0) - i32::from(other.0)).rem_euclid(i32::from(AIM_STEPS));
        if d >= i32::from(AIM_STEPS) / 2 {
            d - i32::from(AIM_STEPS)
        } else {
            d
        }
    }

    /// `self + d` steps, wrapping.
    #[must_use]
    pub fn offset(self, d: i32) -> Self {
        Self((i32::from(self.0) + d).rem_euclid(i32::from(AIM_STEPS)) as u16)
    }
}

/// A quantized move vector, each axis `-MOVE_SCALE..=MOVE_SCALE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MoveVec {
    pub x: i8,
    pub y: i8,
}

impl MoveVec {
    /// Quantizes a float direction (client side); the length is clamped to 1 by the rules.
    #[must_use]
    pub fn from_f32(x: f32, y: f32) -> Self {
        let q = |v: f32| (v.clamp(-1.0, 1.0) * MOVE_SCALE as f32).round() as i8;
        Self { x: q(x), y: q(y) }
    }

    /// The vector with `-128` folded to `-127` and its length clamped to `MOVE_SCALE`,
    /// as `(x, y)` in move steps. This is what the rules accelerate by.
    #[must_use]
    pub fn clamped(self) -> (i32, i32) {
        let x = i32::from(self.x).max(-MOVE_SCALE);
        let y = i32::from(self.y).max(-MOVE_SCALE);
        let len_sq = (x * x + y * y) as u32;
        let max_sq = (MOVE_SCALE * MOVE_SCALE) as u32;
        if len_sq <= max_sq {
            return (x, y);
        }
        let len = len_sq.isqrt() as i32;
        (x * MOVE_SCALE / len, y * MOVE_SCALE / len)
    }
}

/// Division rounding half away from zero (`d > 0`).
#[must_use]
pub fn div_round(n: i64, d: i64) -> i64 {
    debug_assert!(d > 0);
    if n >= 0 {
        (n + d / 2) / d
    } else {
        -((-n + d / 2) / d)
    }
}

/// Quarter-wave sine table: `SIN_Q14[i] = round(sin(i / 1024 turn) * 16384)` for
/// `i in 0..=256`. Written as literals so every machine uses the same numbers.
#[rustfmt::skip]
const SIN_Q14: [i16; 257] = [
    0, 101, 201, 302, 402, 503, 603, 704, 804, 904, 1005, 1105,
    1205, 1306, 1406, 1506, 1606, 1706, 1806, 1906, 2006, 2105, 2205, 2305,
    2404, 2503, 2603, 2702, 2801, 2900, 2999, 3098, 3196, 3295, 3393, 3492,
    3590, 3688, 3786, 3883, 3981, 4078, 4176, 4273, 4370, 4467, 4563, 4660,
    4756, 4852, 4948, 5044, 5139, 5235, 5330, 5425, 5520, 5614, 5708, 5803,
    5897, 5990, 6084, 6177, 6270, 6363, 6455, 6547, 6639, 6731, 6823, 6914,
    7005, 7096, 7186, 7276, 7366, 7456, 7545, 7635, 7723, 7812, 7900, 7988,
    8076, 8163, 8250, 8337, 8423, 8509, 8595, 8680, 8765, 8850, 8935, 9019,
    9102, 9186, 9269, 9352, 9434, 9516, 9598, 9679, 9760, 9841, 9921, 10001,
    10080, 10159, 10238, 10316, 10394, 10471, 10549, 10625, 10702, 10778, 10853, 10928,
    11003, 11077, 11151, 11224, 11297, 11370, 11442, 11514, 11585, 11656, 11727, 11797,
    11866, 11935, 12004, 12072, 12140, 12207, 12274, 12340, 12406, 12472, 12537, 12601,
    12665, 12729, 12792, 12854, 12916, 12978, 13039, 13100, 13160, 13219, 13279, 13337,
    13395, 13453, 13510, 13567, 13623, 13678, 13733, 13788, 13842, 13896, 13949, 14001,
    14053, 14104, 14155, 14206, 14256, 14305, 14354, 14402, 14449, 14497, 14543, 14589,
    14635, 14680, 14724, 14768, 14811, 14854, 14896, 14937, 14978, 15019, 15059, 15098,
    15137, 15175, 15213, 15250, 15286, 15322, 15357, 15392, 15426, 15460, 15493, 15525,
    15557, 15588, 15619, 15649, 15679, 15707, 15736, 15763, 15791, 15817, 15843, 15868,
    15893, 15917, 15941, 15964, 15986, 16008, 16029, 16049, 16069, 16088, 16107, 16125,
    16143, 16160, 16176, 16192, 16207, 16221, 16235, 16248, 16261, 16273, 16284, 16295,
    16305, 16315, 16324, 16332, 16340, 16347, 16353, 16359, 16364, 16369, 16373, 16376,
    16379, 16381, 16383, 16384, 16384,];

/// Sine of `a` scaled by [`TRIG_ONE`].
#[must_use]
pub fn sin_q14(a: QAngle) -> i32 {
    let s = usize::from(a.steps());
    let quarter = usize::from(AIM_STEPS / 4);
    let v = match s / quarter {
        0 => SIN_Q14[s],
        1 => SIN_Q14[2 * quarter - s],
        2 => -SIN_Q14[s - 2 * quarter],
        _ => -SIN_Q14[4 * quarter - s],
    };
    i32::from(v)
}

/// Cosine of `a` scaled by [`TRIG_ONE`].
#[must_use]
pub fn cos_q14(a: QAngle) -> i32 {
    sin_q14(a.offset(i32::from(AIM_STEPS / 4)))
}

/// Fraction bits of [`damping_q30`].
pub const DAMPING_SHIFT: u32 = 30;

/// `exp(-rate_per_s / tick_hz)` as a Q30 fixed-point number, by an integer Taylor series
/// (exact integer arithmetic, so identical everywhere). `tick_hz` must be at least 1.
#[must_use]
pub fn damping_q30(rate_per_s: i32, tick_hz: u32) -> i64 {
    // Work in Q48 to keep rounding error far below the Q30 result's last bit.
    const ONE: i128 = 1 << 48;
    let hz = i128::from(tick_hz.max(1));
    let mut term = ONE;
    let mut sum = ONE;
    for k in 1..=24i128 {
        // term_k = term_{k-1} * (-rate / hz) / k
        term = -(term * i128::from(rate_per_s)) / (hz * k);
        if term == 0 {
            break;
        }
        sum += term;
    }
    ((sum + (1 << 17)) >> 18) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_table_matches_libm_within_one_step() {
        for s in 0..AIM_STEPS {
            let rad = f64::from(s) / f64::from(AIM_STEPS) * std::f64::consts::TAU;
            let a = QAngle::new(s);
            assert!(
                (f64::from(sin_q14(a)) - rad.sin() * 16384.0).abs() <= 1.0,
                "sin {s}"
            );
            assert!(
                (f64::from(cos_q14(a)) - rad.cos() * 16384.0).abs() <= 1.0,
                "cos {s}"
            );
        }
    }

    #[test]
    fn damping_matches_exp() {
        for hz in 10..=128u32 {
            let want = (-4.0 / f64::from(hz)).exp() * f64::from(1u32 << 30);
            let got = damping_q30(4, hz) as f64;
            assert!((got - want).abs() <= 1.0, "hz {hz}: {got} vs {want}");
        }
    }

    #[test]
    fn move_vector_is_clamped_to_unit_length() {
        let (x, y) = MoveVec { x: 127, y: 127 }.clamped();
        assert!(x * x + y * y <= MOVE_SCALE * MOVE_SCALE + 2 * MOVE_SCALE);
        assert!(x > 85 && y > 85);
        assert_eq!(MoveVec { x: -128, y: 0 }.clamped(), (-127, 0));
        assert_eq!(MoveVec { x: 30, y: -40 }.clamped(), (30, -40));
    }

    #[test]
    fn angle_diff_and_offset_wrap() {
        let a = QAngle::new(1020);
        let b = QAngle::new(4);
        assert_eq!(b.diff(a), 8);
        assert_eq!(a.diff(b), -8);
        assert_eq!(a.offset(8), b);
        assert_eq!(QAngle::from_radians(std::f32::consts::PI).steps(), 512);
        assert_eq!(
            QAngle::from_radians(-std::f32::consts::FRAC_PI_2).steps(),
            768
        );
    }

    #[test]
    fn div_round_is_symmetric() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(-4, 3), -1);
    }
}
