//! Bit-level writer and reader: fixed-width fields, zig-zag signed values and Exp-Golomb
//! variable-length codes (small numbers in few bits). Bits are packed LSB-first into bytes.
//! The reader never panics on malformed input: every read is bounds-checked.

/// Why a bit stream did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BitError {
    #[error("ran past the end of the data")]
    UnexpectedEnd,
    #[error("variable-length code longer than 64 bits")]
    CodeTooLong,
}

/// Appends bits to a byte vector.
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl BitWriter {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer with room for `bytes` bytes before it grows.
    #[must_use]
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Writes the low `n` bits of `v` (`n <= 57`).
    #[inline]
    pub fn bits(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 57);
        if n == 0 {
            return;
        }
        self.acc |= (v & ((1u64 << n) - 1)) << self.nbits;
        self.nbits += n;
        if self.nbits >= 8 {
            // The whole bytes, lowest first, in one append (`nbits` is at most 64).
            // (All eight appended, the partial ones cut off again: a fixed-size copy.)
            let whole = self.nbits / 8;
            let len = self.bytes.len() + whole as usize;
            self.bytes.extend_from_slice(&self.acc.to_le_bytes());
            self.bytes.truncate(len);
            self.acc = self.acc.checked_shr(whole * 8).unwrap_or(0);
            self.nbits -= whole * 8;
        }
    }

    #[inline]
    pub fn bit(&mut self, b: bool) {
        self.bits(u64::from(b), 1);
    }

    /// Exp-Golomb code of order `k` for an unsigned value (`v + 2^k < 2^64`, which every
    /// field of the codec satisfies: they are at most 33 bits).
    pub fn exp_golomb(&mut self, v: u64, k: u32) {
        // Code v + 2^k as: (len - k - 1) zero bits, then the value's len bits.
        let x = u128::from(v) + (1u128 << k);
        let len = 128 - x.leading_zeros();
        let zeros = len - 1 - k;
        if zeros + len <= 57 {
            // The common case (every field of a normal snapshot): one write, the zeros first
            // (the low bits), then the value MSB-first.
            self.bits(reverse_bits(x as u64, len) << zeros, zeros + len);
            return;
        }
        self.bits(0, zeros);
        // Write the value MSB-first so that the leading 1 follows the zeros.
        let mut remaining = len;
        while remaining > 0 {
            let take = remaining.min(32);
            let chunk = (x >> (remaining - take)) as u64 & ((1u64 << take) - 1);
            self.bits(reverse_bits(chunk, take), take);
            remaining -= take;
        }
    }

    /// Zig-zag then Exp-Golomb: small magnitudes of either sign are short.
    pub fn signed(&mut self, v: i64, k: u32) {
        self.exp_golomb(zigzag(v), k);
    }

    /// Appends `len` bits of another writer's output, starting at bit `start` of `src`.
    pub fn append_range(&mut self, src: &[u8], start: usize, len: usize) {
        let (mut pos, end) = (start, start + len);
        while pos < end {
            let n = (end - pos).min(56) as u32;
            let at = pos / 8;
            // Eight bytes from `at` (fewer at the end of `src`: zeros after them).
            let word = match src.get(at..at + 8) {
                Some(w) => <[u8; 8]>::try_from(w).unwrap_or_default(),
                None => {
                    let mut word = [0u8; 8];
                    let avail = src.len().saturating_sub(at).min(8);
                    word[..avail].copy_from_slice(&src[at..at + avail]);
                    word
                }
            };
            let v = u64::from_le_bytes(word) >> (pos % 8);
            self.bits(v, n);
            pos += n as usize;
        }
    }

    /// The bits written since bit `start`, as one word (the first of them lowest), when
    /// there are at most 57 of them: what [`Self::bits`] takes back in one write. A writer
    /// that copies a range of this output often (the codec's shared delta) keeps the short
    /// ones as words rather than reading them out of the bytes each time.
    #[must_use]
    pub fn tail_word(&self, start: usize) -> Option<u64> {
        let len = self.bit_len().checked_sub(start)?;
        if len > 57 {
            return None;
        }
        // From the byte holding `start`: at most 8 whole bytes (`start % 8 + len <= 64`
        // bits in all), then the partial byte in the accumulator.
        let at = start / 8;
        let whole = &self.bytes[at..];
        let mut word = [0u8; 8];
        word[..whole.len()].copy_from_slice(whole);
        let acc = self.acc.checked_shl(whole.len() as u32 * 8).unwrap_or(0);
        let v = (u64::from_le_bytes(word) | acc) >> (start % 8);
        Some(v & ((1u64 << len) - 1))
    }

    /// Number of bits written so far.
    #[must_use]
    pub fn bit_len(&self) -> usize {
        self.bytes.len() * 8 + self.nbits as usize
    }

    /// Flushes the partial byte (zero-padded) and returns the bytes.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

/// Reads bits from a byte slice.
#[derive(Debug)]
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Reads `n` bits (`n <= 57`).
    pub fn bits(&mut self, n: u32) -> Result<u64, BitError> {
        debug_assert!(n <= 57);
        if self.pos + n as usize > self.bytes.len() * 8 {
            return Err(BitError::UnexpectedEnd);
        }
        let mut v = 0u64;
        let mut got = 0u32;
        while got < n {
            let byte = self.bytes[self.pos / 8];
            let off = (self.pos % 8) as u32;
            let take = (8 - off).min(n - got);
            let chunk = (u64::from(byte) >> off) & ((1u64 << take) - 1);
            v |= chunk << got;
            got += take;
            self.pos += take as usize;
        }
        Ok(v)
    }

    pub fn bit(&mut self) -> Result<bool, BitError> {
        Ok(self.bits(1)? == 1)
    }

    /// Reads an Exp-Golomb code of order `k`.
    pub fn exp_golomb(&mut self, k: u32) -> Result<u64, BitError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros + k >= 64 {
                return Err(BitError::CodeTooLong);
            }
        }
        let rest = zeros + k;
        let mut x: u64 = 1;
        let mut remaining = rest;
        while remaining > 0 {
            let take = remaining.min(32);
            let chunk = reverse_bits(self.bits(take)?, take);
            x = (x << take) | chunk;
            remaining -= take;
        }
        Ok(x - (1u64 << k))
    }

    pub fn signed(&mut self, k: u32) -> Result<i64, BitError> {
        Ok(unzigzag(self.exp_golomb(k)?))
    }

    /// Bits not read yet.
    #[must_use]
    pub fn remaining_bits(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }

    /// True when no whole byte is left unread (only zero padding may remain).
    #[must_use]
    pub fn at_end(&self) -> bool {
        self.bytes.len() * 8 - self.pos < 8
    }
}

/// Where bits go: a [`BitWriter`], or a [`BitCount`] that only measures (so the codec can
/// price an entity with the very code that writes it).
pub trait BitSink {
    /// The low `n` bits of `v`.
    fn put_bits(&mut self, v: u64, n: u32);
    /// An Exp-Golomb code of order `k`.
    fn put_exp_golomb(&mut self, v: u64, k: u32);
    #[inline]
    fn put_bit(&mut self, b: bool) {
        self.put_bits(u64::from(b), 1);
    }
    /// Zig-zag then Exp-Golomb.
    fn put_signed(&mut self, v: i64, k: u32) {
        self.put_exp_golomb(zigzag(v), k);
    }
}

impl BitSink for BitWriter {
    #[inline]
    fn put_bits(&mut self, v: u64, n: u32) {
        self.bits(v, n);
    }
    fn put_exp_golomb(&mut self, v: u64, k: u32) {
        self.exp_golomb(v, k);
    }
}

/// Counts the bits that would be written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BitCount(pub usize);

impl BitSink for BitCount {
    fn put_bits(&mut self, _v: u64, n: u32) {
        self.0 += n as usize;
    }
    fn put_exp_golomb(&mut self, v: u64, k: u32) {
        self.0 += exp_golomb_len(v, k) as usize;
    }
}

/// Length in bits of the Exp-Golomb code of order `k` for `v`.
#[must_use]
pub fn exp_golomb_len(v: u64, k: u32) -> u32 {
    let x = u128::from(v) + (1u128 << k);
    let len = 128 - x.leading_zeros();
    2 * len - 1 - k
}

fn reverse_bits(v: u64, n: u32) -> u64 {
    if n == 0 {
        0
    } else {
        v.reverse_bits() >> (64 - n)
    }
}

#[must_use]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[must_use]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exp_golomb_lengths() {
        let len = |v, k| {
            let mut w = BitWriter::new();
            w.exp_golomb(v, k);
            w.bit_len()
        };
        assert_eq!(len(0, 0), 1);
        assert_eq!(len(1, 0), 3);
        assert_eq!(len(0, 3), 4);
        assert_eq!(len(7, 3), 4);
        assert_eq!(len(8, 3), 6);
        for (v, k) in [
            (0, 0),
            (1, 0),
            (0, 3),
            (7, 3),
            (8, 3),
            (123_456, 13),
            (u64::from(u32::MAX), 2),
        ] {
            assert_eq!(len(v, k), exp_golomb_len(v, k) as usize, "v {v} k {k}");
            let mut c = BitCount::default();
            c.put_exp_golomb(v, k);
            assert_eq!(c.0, len(v, k));
        }
    }

    proptest! {
        #[test]
        fn a_range_appended_reads_back(
            before in proptest::collection::vec((any::<u64>(), 1u32..57), 0..20),
            fields in proptest::collection::vec((any::<u64>(), 1u32..57), 1..20),
            skip in 0u32..57,
        ) {
            let mut src = BitWriter::new();
            src.bits(0, skip);
            for (v, n) in &before { src.bits(*v, *n); }
            let start = src.bit_len();
            for (v, n) in &fields { src.bits(*v, *n); }
            let len = src.bit_len() - start;
            let src = src.finish();
            let mut w = BitWriter::new();
            w.bits(1, 3);
            w.append_range(&src, start, len);
            let out = w.finish();
            let mut r = BitReader::new(&out);
            prop_assert_eq!(r.bits(3).expect("lead"), 1);
            for (v, n) in &fields {
                prop_assert_eq!(r.bits(*n).expect("field"), v & ((1u64 << n) - 1));
            }
        }

        #[test]
        fn a_short_tail_reads_back_as_one_word(
            before in proptest::collection::vec((any::<u64>(), 1u32..57), 0..20),
            fields in proptest::collection::vec((any::<u64>(), 1u32..20), 0..6),
            skip in 0u32..57,
        ) {
            let mut src = BitWriter::new();
            src.bits(0, skip);
            for (v, n) in &before { src.bits(*v, *n); }
            let start = src.bit_len();
            let (mut want, mut len) = (0u64, 0u32);
            for (v, n) in &fields {
                src.bits(*v, *n);
                if len + n <= 64 {
                    want |= (v & ((1u64 << n) - 1)) << len;
                }
                len += n;
            }
            let got = src.tail_word(start);
            if len <= 57 {
                prop_assert_eq!(got, Some(want));
            } else {
                prop_assert_eq!(got, None);
            }
        }

        #[test]
        fn round_trip(values in proptest::collection::vec((any::<i32>().prop_map(i64::from), 0u32..14, 0u32..40, any::<u64>()), 0..50)) {
            let mut w = BitWriter::new();
            for (s, k, n, raw) in &values {
                w.signed(*s, *k);
                w.bits(*raw, *n);
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for (s, k, n, raw) in &values {
                prop_assert_eq!(r.signed(*k).expect("signed"), *s);
                let mask = if *n == 0 { 0 } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.bits(*n).expect("bits"), raw & mask);
            }
            prop_assert!(r.at_end());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), k in 0u32..16) {
            let mut r = BitReader::new(&bytes);
            while r.exp_golomb(k).is_ok() {}
        }
    }
}
