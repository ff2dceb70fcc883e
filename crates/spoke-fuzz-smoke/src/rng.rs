//! The seeded input generator: xorshift64* plus the byte-level edits every smoke test applies.
//!
//! Invariant: the same seed gives the same sequence of numbers and inputs on every platform
//! and every run, so a failing input is reproduced by re-running the test.

/// Deterministic pseudo-random source for fuzz smoke inputs (xorshift64*).
///
/// Tests that generate structured input (JSON documents, query text) wrap it in their own
/// generator; byte-level tests let [`crate::Smoke`] drive it.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed` (xorshift never leaves state 0, so 0 is replaced by a
    /// fixed non-zero constant).
    pub fn new(seed: u64) -> Self {
        Self {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`, or 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True one time in `one_in` (always when `one_in` is 0 or 1).
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    /// A byte from `alphabet` three times in four, else (or when `alphabet` is empty) any
    /// byte.
    pub fn byte(&mut self, alphabet: &[u8]) -> u8 {
        if alphabet.is_empty() || self.chance(4) {
            self.next_u64() as u8
        } else {
            alphabet[self.below(alphabet.len())]
        }
    }

    /// A fresh input of fewer than `max_len` bytes drawn by [`Rng::byte`].
    pub fn random_input(&mut self, alphabet: &[u8], max_len: usize) -> Vec<u8> {
        let len = self.below(max_len);
        (0..len).map(|_| self.byte(alphabet)).collect()
    }

    /// `seed` after one to four edits: flip a bit, replace, insert or delete a byte (new
    /// bytes drawn by [`Rng::byte`]), truncate, or splice in a slice of `other`.
    pub fn mutate(&mut self, seed: &[u8], other: &[u8], alphabet: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(data.len() + 1);
            match self.below(6) {
                0 if at < data.len() => data[at] ^= 1 << self.below(8),
                1 if at < data.len() => data[at] = self.byte(alphabet),
                2 => data.insert(at, self.byte(alphabet)),
                3 if at < data.len() => {
                    data.remove(at);
                }
                4 => data.truncate(at),
                _ if !other.is_empty() => {
                    let start = self.below(other.len());
                    let end = start + self.below(other.len() - start + 1);
                    data.splice(at..at, other[start..end].iter().copied());
                }
                _ => {}
            }
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn zero_seed_still_moves() {
        let mut rng = Rng::new(0);
        assert_ne!(rng.next_u64(), rng.next_u64());
    }

    #[test]
    fn below_stays_in_range_and_tolerates_zero() {
        let mut rng = Rng::new(7);
        assert_eq!(rng.below(0), 0);
        assert!((0..1000).all(|_| rng.below(5) < 5));
    }

    #[test]
    fn random_input_respects_length_and_alphabet() {
        let mut rng = Rng::new(9);
        let alphabet = b"ab";
        let mut from_alphabet = 0;
        let mut total = 0;
        for _ in 0..200 {
            let input = rng.random_input(alphabet, 16);
            assert!(input.len() < 16);
            total += input.len();
            from_alphabet += input.iter().filter(|b| alphabet.contains(b)).count();
        }
        assert!(from_alphabet * 3 >= total * 2, "{from_alphabet} of {total}");
    }

    #[test]
    fn mutate_edits_and_splices() {
        let mut rng = Rng::new(11);
        let seed = b"hello world";
        let other = b"XYZ";
        let outputs: Vec<Vec<u8>> = (0..500).map(|_| rng.mutate(seed, other, b"")).collect();
        assert!(outputs.iter().any(|o| o.as_slice() != seed));
        assert!(outputs.iter().any(|o| o.windows(2).any(|w| w == b"XY")));
        assert!(outputs.iter().any(|o| o.len() < seed.len()));
        assert!(outputs.iter().any(|o| o.len() > seed.len()));
        assert!(rng.mutate(b"", b"", b"").len() <= 4);
    }
}
