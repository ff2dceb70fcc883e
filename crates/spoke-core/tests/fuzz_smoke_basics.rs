//! Stable smoke run of the basic fuzz targets (connection strings, SAS tokens, property bags,
//! topics): every committed corpus file, then deterministic mutations and random inputs from a
//! seeded xorshift generator. Fast enough for every `cargo test`.

use std::fs;
use std::path::PathBuf;

use spoke_core::fuzzing::{fuzz_connection_string, fuzz_property_bag, fuzz_sas_token, fuzz_topic};

/// Random inputs per target, split between corpus mutations and fresh random strings.
const ITERATIONS: usize = 20_000;

/// Characters that matter to these grammars, so random inputs reach deep parser states.
const ALPHABET: &[u8] = b"=;&%/?$#+. :-_~aAzZ09fF24%3D%2F%24HostNameDeviceIdModuleIdSharedAccessKeyx509\
sr=sig=se=skn=SharedAccessSignature devices/messages/events/modules/$iothub/twin/GET/PATCH/properties/\
reported/methods/res/POST/devicebound/inputs/$rid=$version=\xff\xc3\xa9";

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
        let len = self.below(64);
        (0..len).map(|_| self.byte()).collect()
    }

    /// Applies a few byte-level edits: replace, insert, delete, or splice in a chunk of
    /// another seed.
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
    assert!(!seeds.is_empty(), "corpus {} is empty", dir.display());
    seeds
}

fn smoke(target: &str, seed: u64, fuzz: fn(&[u8])) {
    let seeds = corpus(target);
    for input in &seeds {
        fuzz(input);
    }
    let mut rng = Rng(seed);
    for i in 0..ITERATIONS {
        let input = if i % 3 == 0 {
            rng.random_input()
        } else {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            rng.mutate(a, b)
        };
        fuzz(&input);
    }
}

#[test]
fn connection_string() {
    smoke(
        "connection_string",
        0x9E37_79B9_7F4A_7C15,
        fuzz_connection_string,
    );
}

#[test]
fn sas_token() {
    smoke("sas_token", 0xD1B5_4A32_D192_ED03, fuzz_sas_token);
}

#[test]
fn property_bag() {
    smoke("property_bag", 0x8CB9_2BA7_2F3D_8DD7, fuzz_property_bag);
}

#[test]
fn topic() {
    smoke("topic", 0xABC9_8388_FB8F_AC03, fuzz_topic);
}
