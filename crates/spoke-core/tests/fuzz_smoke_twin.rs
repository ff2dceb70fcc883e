//! Stable smoke run of `twin::fuzzing::fuzz_twin_patch`: every committed corpus file, then
//! byte-level mutations of the seeds and random structured JSON documents from a seeded
//! xorshift generator (keys include the forbidden characters, values the boundary numbers).

use std::fs;
use std::path::PathBuf;

use serde_json::{Map, Value, json};
use spoke_core::twin::fuzzing::fuzz_twin_patch;

const MUTATIONS: usize = 14_000;
const STRUCTURED: usize = 6_000;

/// Valid keys; [`BAD_KEYS`] are mixed in rarely so that most documents are accepted.
const KEYS: &[&str] = &["a", "b", "k", "nested", "", "é", "desired", "tags"];
const BAD_KEYS: &[&str] = &["a.b", "$version", "sp ace", "tab\t"];

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

    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        const BYTES: &[u8] = b"{}[]\":,nul0123456789.-e$ a";
        let mut data = seed.to_vec();
        for _ in 0..=self.below(3) {
            let at = self.below(data.len() + 1);
            let byte = BYTES[self.below(BYTES.len())];
            match self.below(3) {
                0 if at < data.len() => data[at] = byte,
                1 => data.insert(at, byte),
                _ if at < data.len() => {
                    data.remove(at);
                }
                _ => {}
            }
        }
        data
    }

    fn value(&mut self, depth: usize) -> Value {
        let leaf = depth >= 12 || self.below(2) == 0;
        match self.below(if leaf { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => match self.below(20) {
                0 => json!(-4_503_599_627_370_497_i64),
                1 => json!(self.next()),
                2 => json!(4_503_599_627_370_495_i64),
                _ => json!(0.5),
            },
            3 => Value::String("s".repeat(if self.below(50) == 0 {
                4097
            } else {
                self.below(8)
            })),
            4 => json!(self.below(100)),
            5 => Value::String(String::new()),
            6 => Value::Array((0..self.below(3)).map(|_| self.value(depth + 1)).collect()),
            _ => Value::Object(self.object(depth + 1)),
        }
    }

    fn key(&mut self) -> &'static str {
        if self.below(40) == 0 {
            BAD_KEYS[self.below(BAD_KEYS.len())]
        } else {
            KEYS[self.below(KEYS.len())]
        }
    }

    fn object(&mut self, depth: usize) -> Map<String, Value> {
        (0..self.below(3))
            .map(|_| (self.key().to_owned(), self.value(depth)))
            .collect()
    }

    fn document(&mut self) -> Value {
        match self.below(8) {
            0 => Value::Object(self.object(0)),
            1 | 2 => json!({"tags": self.object(0), "properties": {"desired": self.object(0)}}),
            3 | 4 => Value::Array((0..self.below(5)).map(|_| self.document_flat()).collect()),
            5 => json!({"properties": {"desired": self.value(0)}}),
            _ => json!({"properties": {"desired": self.object(0)}}),
        }
    }

    fn document_flat(&mut self) -> Value {
        if self.below(2) == 0 {
            json!({"properties": {"desired": self.object(0)}})
        } else {
            Value::Object(self.object(0))
        }
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/twin_patch");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(f).expect("corpus file"))
        .collect();
    assert!(!seeds.is_empty(), "empty corpus {}", dir.display());
    seeds
}

#[test]
fn twin_patch_corpus_and_random_inputs() {
    let seeds = corpus();
    for seed in &seeds {
        fuzz_twin_patch(seed);
    }
    let mut rng = Rng(0x7717_2024_0BAD_F00D);
    for _ in 0..MUTATIONS {
        let seed = &seeds[rng.below(seeds.len())];
        fuzz_twin_patch(&rng.mutate(seed));
    }
    for _ in 0..STRUCTURED {
        let doc = rng.document();
        fuzz_twin_patch(doc.to_string().as_bytes());
    }
}
