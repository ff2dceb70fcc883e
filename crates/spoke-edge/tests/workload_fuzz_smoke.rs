//! Stable smoke run of the workload API fuzz target: every committed corpus file in
//! `fuzz/corpus/workload_request/`, then deterministic mutations of them and random inputs from
//! a seeded xorshift generator. Fast enough for every `cargo test`.

use std::fs;
use std::path::PathBuf;

use spoke_edge::workload::fuzzing::fuzz_workload_request;

/// Generated inputs, split between corpus mutations and fresh random ones.
const ITERATIONS: usize = 20_000;

/// Bytes that matter to the request grammar, so random inputs reach deep states.
const ALPHABET: &[u8] = b"GET POST PUT /modules/%24edgeHub$edgeHub/genid/1/sign/encrypt/decrypt/certificate/\
server/identity/trust-bundle/manifest-trust-bundle?api-version=2018-06-28&2022-08-03%2D\n\
{\"data\":\"plaintext\",\"ciphertext\":\"initializationVector\":\"commonName\":}[]=+AQaz09\xff\xc3\xa9";

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
        let len = self.below(96);
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

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/workload_request");
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

#[test]
fn workload_request_survives_corpus_and_random_inputs() {
    let seeds = corpus();
    for seed in &seeds {
        fuzz_workload_request(seed);
    }
    let mut rng = Rng(0x5eed_0f3d);
    for i in 0..ITERATIONS {
        let input = if i % 4 == 0 {
            rng.random_input()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            rng.mutate(seed, other)
        };
        fuzz_workload_request(&input);
    }
}
