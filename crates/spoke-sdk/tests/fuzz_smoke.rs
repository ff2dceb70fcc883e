//! Stable smoke run of the `sdk_hub_topic` fuzz target: every committed corpus file, then
//! deterministic mutations and random inputs from a seeded xorshift generator.

use std::fs;
use std::path::PathBuf;

use spoke_sdk::fuzzing::fuzz_hub_topic;

/// Random inputs, split between corpus mutations and fresh random strings.
const ITERATIONS: usize = 20_000;

/// Characters that matter to the topic grammar, so random inputs reach deep parser states.
const ALPHABET: &[u8] = b"/?&=%$+#.-_~ 0129aAfF%24%2F%20$rid=$version=devices/dev1/mod1/modules/\
inputs/messages/devicebound/$iothub/twin/res/PATCH/properties/desired/methods/POST/\xff\xc3\xa9";

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

    /// A few byte-level edits: replace, insert, delete, or splice in part of another seed.
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

#[test]
fn hub_topic() {
    let seeds = corpus("sdk_hub_topic");
    for input in &seeds {
        fuzz_hub_topic(input);
    }
    let mut rng = Rng(0x51_7CC1_B727_220A);
    for i in 0..ITERATIONS {
        let input = if i % 3 == 0 {
            let len = rng.below(64);
            (0..len).map(|_| rng.byte()).collect()
        } else {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            rng.mutate(a, b)
        };
        fuzz_hub_topic(&input);
    }
}
