//! Stable smoke run of the runtime fuzz entry points (`spoke_edge::runtime::fuzzing`): every
//! committed corpus file under `fuzz/corpus/runtime_*`, then deterministic mutations of them
//! and random inputs from a seeded xorshift generator. Fast enough for every `cargo test`.

use std::fs;
use std::path::PathBuf;

use spoke_edge::runtime::fuzzing::{
    fuzz_docker_log_message, fuzz_proc_stat, fuzz_process_log_record,
};

/// Generated inputs per target, split between corpus mutations and fresh random ones.
const ITERATIONS: usize = 20_000;

/// Bytes that matter to the three formats, so random inputs reach deep states.
const ALPHABET: &[u8] = b"0123456789-:.TZ+ OE()SRZ\n\xff\xc3\xa9az";

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
        if self.below(4) == 0 {
            self.next() as u8
        } else {
            ALPHABET[self.below(ALPHABET.len())]
        }
    }

    fn random_input(&mut self) -> Vec<u8> {
        let len = self.below(80);
        (0..len).map(|_| self.byte()).collect()
    }

    /// A few byte-level edits: replace, insert, delete, or splice in a chunk of another seed.
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(data.len() + 1);
            match self.below(4) {
                0 if at < data.len() => data[at] = self.byte(),
                1 => data.insert(at, self.byte()),
                2 if at < data.len() => {
                    data.remove(at);
                }
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
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(f).expect("corpus file"))
        .collect();
    assert!(seeds.len() >= 5, "corpus {} is too small", dir.display());
    seeds
}

fn smoke(target: &str, seed: u64, fuzz: fn(&[u8])) {
    let seeds = corpus(target);
    for input in &seeds {
        fuzz(input);
    }
    let mut rng = Rng(seed);
    for i in 0..ITERATIONS {
        let input = if i % 2 == 0 {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            rng.mutate(a, b)
        } else {
            rng.random_input()
        };
        fuzz(&input);
    }
}

#[test]
fn process_log_records_never_panic_and_round_trip() {
    smoke("runtime_log_record", 0x5eed_0001, fuzz_process_log_record);
}

#[test]
fn proc_stat_lines_never_panic() {
    smoke("runtime_proc_stat", 0x5eed_0002, fuzz_proc_stat);
}

#[test]
fn docker_log_messages_never_panic() {
    smoke("runtime_docker_log", 0x5eed_0003, fuzz_docker_log_message);
}
