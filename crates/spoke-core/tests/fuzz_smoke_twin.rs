//! Stable smoke run of `twin::fuzzing::fuzz_twin_patch`: every committed corpus file, then
//! byte-level mutations of the seeds and random byte strings (`spoke-fuzz-smoke`), then random
//! structured JSON documents built on its seeded `Rng` (keys include the forbidden characters,
//! values the boundary numbers).

use serde_json::{Map, Value, json};
use spoke_core::twin::fuzzing::fuzz_twin_patch;
use spoke_fuzz_smoke::{Rng, Smoke};

const MUTATIONS: usize = 14_000;
const STRUCTURED: usize = 6_000;
const SEED: u64 = 0x7717_2024_0BAD_F00D;

/// Valid keys; [`BAD_KEYS`] are mixed in rarely so that most documents are accepted.
const KEYS: &[&str] = &["a", "b", "k", "nested", "", "é", "desired", "tags"];
const BAD_KEYS: &[&str] = &["a.b", "$version", "sp ace", "tab\t"];

/// Bytes that matter to JSON, for the byte-level mutations of the seeds.
const JSON_BYTES: &[u8] = b"{}[]\":,nul0123456789.-e$ a";

/// Random structured twin documents.
struct Documents(Rng);

impl Documents {
    fn value(&mut self, depth: usize) -> Value {
        let leaf = depth >= 12 || self.0.below(2) == 0;
        match self.0.below(if leaf { 6 } else { 8 }) {
            0 => Value::Null,
            1 => Value::Bool(self.0.below(2) == 0),
            2 => match self.0.below(20) {
                0 => json!(-4_503_599_627_370_497_i64),
                1 => json!(self.0.next_u64()),
                2 => json!(4_503_599_627_370_495_i64),
                _ => json!(0.5),
            },
            3 => Value::String("s".repeat(if self.0.below(50) == 0 {
                4097
            } else {
                self.0.below(8)
            })),
            4 => json!(self.0.below(100)),
            5 => Value::String(String::new()),
            6 => Value::Array(
                (0..self.0.below(3))
                    .map(|_| self.value(depth + 1))
                    .collect(),
            ),
            _ => Value::Object(self.object(depth + 1)),
        }
    }

    fn key(&mut self) -> &'static str {
        if self.0.below(40) == 0 {
            BAD_KEYS[self.0.below(BAD_KEYS.len())]
        } else {
            KEYS[self.0.below(KEYS.len())]
        }
    }

    fn object(&mut self, depth: usize) -> Map<String, Value> {
        (0..self.0.below(3))
            .map(|_| (self.key().to_owned(), self.value(depth)))
            .collect()
    }

    fn document(&mut self) -> Value {
        match self.0.below(8) {
            0 => Value::Object(self.object(0)),
            1 | 2 => json!({"tags": self.object(0), "properties": {"desired": self.object(0)}}),
            3 | 4 => Value::Array((0..self.0.below(5)).map(|_| self.document_flat()).collect()),
            5 => json!({"properties": {"desired": self.value(0)}}),
            _ => json!({"properties": {"desired": self.object(0)}}),
        }
    }

    fn document_flat(&mut self) -> Value {
        if self.0.below(2) == 0 {
            json!({"properties": {"desired": self.object(0)}})
        } else {
            Value::Object(self.object(0))
        }
    }
}

#[test]
fn twin_patch_corpus_and_random_inputs() {
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "twin_patch")
        .alphabet(JSON_BYTES)
        .iterations(MUTATIONS)
        .run(SEED, fuzz_twin_patch);
    let mut documents = Documents(Rng::new(SEED));
    for _ in 0..STRUCTURED {
        let doc = documents.document();
        fuzz_twin_patch(doc.to_string().as_bytes());
    }
}
