//! `Tick` and `Seq`: 32-bit counters that wrap, with comparisons that survive the wrap.
//!
//! A match at 128 Hz wraps a `u32` tick after about a year; input sequence numbers are
//! client-chosen and may start anywhere. Comparisons use the serial-number arithmetic of
//! RFC 1982: `a` is after `b` when `a - b` (wrapping) is in `1..2^31`.

use serde::{Deserialize, Serialize};

macro_rules! wrapping_counter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The next value, wrapping at `u32::MAX`.
            #[must_use]
            pub fn next(self) -> Self {
                Self(self.0.wrapping_add(1))
            }

            /// `self + n`, wrapping.
            #[must_use]
            pub fn plus(self, n: u32) -> Self {
                Self(self.0.wrapping_add(n))
            }

            /// `self - n`, wrapping.
            #[must_use]
            pub fn minus(self, n: u32) -> Self {
                Self(self.0.wrapping_sub(n))
            }

            /// Signed distance from `other` to `self` (`self - other`), valid while the two
            /// are less than 2^31 apart.
            #[must_use]
            pub fn diff(self, other: Self) -> i32 {
                self.0.wrapping_sub(other.0) as i32
            }

            /// True when `self` comes strictly after `other`.
            #[must_use]
            pub fn is_after(self, other: Self) -> bool {
                self.diff(other) > 0
            }

            /// True when `self` is `other` or comes after it.
            #[must_use]
            pub fn is_at_or_after(self, other: Self) -> bool {
                self.diff(other) >= 0
            }
        }
    };
}

wrapping_counter!(
    /// A simulation tick number. The world at tick `t` is the state after `t` steps.
    Tick
);
wrapping_counter!(
    /// An input sequence number, chosen by the client, one per input frame.
    Seq
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_survive_wrap_around() {
        let last = Tick(u32::MAX);
        let first = last.next();
        assert_eq!(first, Tick(0));
        assert!(first.is_after(last));
        assert!(!last.is_after(first));
        assert_eq!(first.diff(last), 1);
        assert_eq!(last.diff(first), -1);
        assert_eq!(Tick(3).minus(5), Tick(u32::MAX - 1));
        assert!(Seq(2).is_after(Seq(u32::MAX - 2)));
        assert!(Seq(7).is_at_or_after(Seq(7)));
    }
}
