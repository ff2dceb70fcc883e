//! Stable smoke run of the query fuzz target: the committed corpus, pathological inputs, and
//! ~20k deterministic mutations (the seeded `spoke_fuzz_smoke::Rng`) of corpus entries spliced
//! with grammar tokens.

use spoke_core::query::fuzzing::fuzz_query;
use spoke_fuzz_smoke::Rng;

const TOKENS: &[&str] = &[
    "SELECT ",
    "TOP 2 ",
    "* ",
    " FROM devices",
    " FROM devices.modules",
    " FROM devices.jobs",
    " WHERE ",
    " GROUP BY ",
    " AS x",
    ", ",
    "COUNT()",
    "AVG(a)",
    "MAX(tags.env)",
    " AND ",
    " OR ",
    "NOT ",
    " IN ",
    " NIN ",
    " = ",
    " != ",
    " <> ",
    " < ",
    " >= ",
    " + ",
    " - ",
    " * ",
    " / ",
    " % ",
    "(",
    ")",
    "[",
    "]",
    "[[",
    "]]",
    ".",
    "'",
    "\"",
    "\\",
    "\\u00e9",
    "tags.env",
    "deviceId",
    "$version",
    "properties.reported.temp",
    "configurations.[[c-1]].status",
    "1",
    "0x1F",
    "2.5e3",
    "-",
    "true",
    "null",
    "undefined",
    "IS_DEFINED(",
    "STARTSWITH(a, 'b')",
    "é",
    "\u{0}",
    "\n",
];

fn corpus() -> Vec<Vec<u8>> {
    let seeds = spoke_fuzz_smoke::corpus(env!("CARGO_MANIFEST_DIR"), "query");
    assert!(seeds.len() >= 10, "corpus has {} seeds", seeds.len());
    seeds
}

/// One token-aware edit: flip a bit, insert a byte, delete a run, splice in a grammar token,
/// duplicate a run, or truncate.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    let at = rng.below(input.len() + 1);
    match rng.below(6) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 => input.insert(at, rng.next_u64() as u8),
        2 if at < input.len() => {
            let end = (at + 1 + rng.below(8)).min(input.len());
            input.drain(at..end);
        }
        3 => {
            let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
            input.splice(at..at, token.iter().copied());
        }
        4 if at < input.len() => {
            let end = (at + 1 + rng.below(16)).min(input.len());
            let slice = input[at..end].to_vec();
            input.splice(at..at, slice);
        }
        _ => input.truncate(at),
    }
}

#[test]
fn corpus_and_pathological_inputs() {
    for seed in corpus() {
        fuzz_query(&seed);
    }
    for input in [
        format!(
            "SELECT * FROM devices WHERE {}x{}",
            "(".repeat(20_000),
            ")".repeat(20_000)
        ),
        format!("{}x", "NOT ".repeat(2_000)),
        format!("{}1", "-".repeat(8_000)),
        format!("x{}", " + x".repeat(2_000)),
        format!("{}x{}", "is_null(".repeat(1_000), ")".repeat(1_000)),
        format!("{}x{}", "[ ".repeat(4_000), "]".repeat(4_000)),
        format!("x = 0{}", " OR x = 1".repeat(900)),
        format!("'{}'", "\\".repeat(9_000)),
        "[[".repeat(5_000),
    ] {
        fuzz_query(input.as_bytes());
    }
    fuzz_query(&[0xff, 0xfe, b'*']);
}

#[test]
fn mutated_inputs() {
    let seeds = corpus();
    let mut rng = Rng::new(0x5eed_f5b0_e5ee);
    for _ in 0..20_000 {
        let mut input = if rng.below(8) == 0 {
            Vec::new()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..=rng.below(6) {
            mutate(&mut rng, &mut input);
        }
        fuzz_query(&input);
    }
}
