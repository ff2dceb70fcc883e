//! Stable smoke run of the agent fuzz entry points (`spoke_edge::agent::fuzzing`): every
//! committed corpus file under `fuzz/corpus/agent_state`, then deterministic mutations of
//! them and random inputs from a seeded xorshift generator. Fast enough for every
//! `cargo test`.

use std::fs;
use std::path::PathBuf;

use spoke_edge::agent::fuzzing::fuzz_agent_state;

/// Generated inputs: corpus mutations and fresh random ones.
const ITERATIONS: usize = 20_000;

/// Bytes that matter to the stored-state JSON, so random inputs reach deep states.
const ALPHABET: &[u8] = b"{}[]\":,0123456789-.TZ trueflsn\\format";

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

    fn byte(&mut self) -> u8 {
        if self.below(8) == 0 {
            self.next() as u8
        } else {
            ALPHABET[self.below(ALPHABET.len())]
        }
    }

    /// A few byte-level edits: replace, insert, delete, or splice in a chunk of another seed.
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..=self.below(3) {
            let at = self.below(data.len() + 1);
            match self.below(4) {
                0 if at < data.len() => data[at] = self.byte(),
                1 => data.insert(at, self.byte()),
                2 if at < data.len() => {
                    data.remove(at);
                }
                _ if !other.is_empty() => {
                    let start = self.below(other.len());
                    let end = start + self.below((other.len() - start).min(64) + 1);
                    data.splice(at..at, other[start..end].iter().copied());
                }
                _ => {}
            }
        }
        data
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/agent_state");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(f).expect("corpus file"))
        .collect();
    assert!(seeds.len() >= 3, "corpus agent_state has too few seeds");
    seeds
}

#[test]
fn agent_state_smoke() {
    let seeds = corpus();
    for seed in &seeds {
        fuzz_agent_state(seed);
    }
    let mut rng = Rng(0x5EED_A6E7);
    for i in 0..ITERATIONS {
        let input = if i % 5 == 0 {
            (0..rng.below(64)).map(|_| rng.byte()).collect()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            rng.mutate(seed, other)
        };
        fuzz_agent_state(&input);
    }
}
