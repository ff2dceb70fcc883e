//! Stable smoke run of the MQTT fuzz targets: every committed corpus file, then deterministic
//! mutations of them and random inputs from a seeded xorshift generator. Fast enough for every
//! `cargo test`.

use std::fs;
use std::path::PathBuf;

use spoke_mqtt::fuzzing::{fuzz_decode, fuzz_topic_match};

/// Generated inputs per target.
const ITERATIONS: usize = 20_000;

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

    /// Bytes that matter to MQTT: packet type bytes, small lengths, wildcards, separators.
    fn byte(&mut self) -> u8 {
        const INTERESTING: &[u8] = &[
            0x00, 0x01, 0x02, 0x04, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x30, 0x32, 0x34, 0x3b, 0x40,
            0x62, 0x82, 0x90, 0xa2, 0xb0, 0xc0, 0xd0, 0xe0, b'/', b'+', b'#', b'$', b'M', b'Q',
            b'T', b'a',
        ];
        if self.below(2) == 0 {
            self.next() as u8
        } else {
            INTERESTING[self.below(INTERESTING.len())]
        }
    }

    fn random_input(&mut self) -> Vec<u8> {
        let len = self.below(48);
        (0..len).map(|_| self.byte()).collect()
    }

    /// A few edits: replace, insert, delete, truncate, or splice in part of another seed.
    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(data.len() + 1);
            match self.below(5) {
                0 if at < data.len() => data[at] = self.byte(),
                1 => data.insert(at, self.byte()),
                2 if at < data.len() => {
                    data.remove(at);
                }
                3 => data.truncate(at),
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

fn smoke(target: &str, seed: u64, run: fn(&[u8])) {
    let seeds = corpus(target);
    for input in &seeds {
        run(input);
    }
    let mut rng = Rng(seed);
    for i in 0..ITERATIONS {
        let input = if i % 4 == 0 {
            rng.random_input()
        } else {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            rng.mutate(a, b)
        };
        run(&input);
    }
}

#[test]
fn decode_smoke() {
    smoke("mqtt_codec", 0x5eed_0001, fuzz_decode);
}

#[test]
fn topic_match_smoke() {
    smoke("mqtt_topic", 0x5eed_0002, fuzz_topic_match);
}
