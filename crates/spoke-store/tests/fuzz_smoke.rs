//! Stable smoke run of the log's fuzz target: every committed corpus file, then deterministic
//! mutations of them and random inputs from a seeded xorshift generator.
//!
//! Each input opens a real log (a scratch directory, the writer thread, a runtime, an
//! `fdatasync` for the append after recovery), so this target runs fewer generated inputs than
//! the pure parsers' smoke tests to stay within a few seconds.

use std::fs;
use std::path::PathBuf;

use spoke_store::log::fuzzing::fuzz_segment_recovery;

/// Generated inputs.
const ITERATIONS: usize = 4_000;

/// xorshift64*: tiny, deterministic, good enough for input generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Mostly bytes that matter to the frame header: zero, small lengths, all-ones.
    fn byte(&mut self) -> u8 {
        const INTERESTING: &[u8] = &[0x00, 0x01, 0x02, 0x05, 0x18, 0x7f, 0x80, 0xfe, 0xff];
        if self.below(2) == 0 {
            self.next() as u8
        } else {
            INTERESTING[self.below(INTERESTING.len())]
        }
    }

    fn random_input(&mut self) -> Vec<u8> {
        let len = self.below(96);
        (0..len).map(|_| self.byte()).collect()
    }

    /// A few edits: flip a bit, replace, insert, delete, truncate, or splice in part of
    /// another seed.
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..=self.below(3) {
            let at = self.below(data.len() + 1);
            match self.below(6) {
                0 if at < data.len() => data[at] ^= 1 << self.below(8),
                1 if at < data.len() => data[at] = self.byte(),
                2 => data.insert(at, self.byte()),
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

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .iter()
        .map(|f| fs::read(f).expect("corpus file"))
        .collect()
}

#[test]
fn segment_recovery_smoke() {
    let seeds = corpus("log_segment");
    for input in &seeds {
        fuzz_segment_recovery(input);
    }
    let mut rng = Rng(0x5eed_0106);
    for i in 0..ITERATIONS {
        let input = if i % 8 == 0 {
            rng.random_input()
        } else {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            rng.mutate(a, b)
        };
        fuzz_segment_recovery(&input);
    }
}
