//! Runs the query-language behaviour table in `fixtures/query_cases.json` (STYLE.md §12).
//!
//! Each case has one input (`query`, `condition` or `target`) and one expectation (`ids`,
//! `items` or `error`); see the fixture's own `comment` for the conventions.

use serde::Deserialize;
use serde_json::Value;
use spoke_core::query::{Collection, Condition, ItemType, Query, TargetCondition};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    #[allow(dead_code, reason = "documentation inside the fixture")]
    comment: String,
    devices: Vec<Value>,
    modules: Vec<Value>,
    jobs: Vec<Value>,
    cases: Vec<Case>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Case {
    query: Option<String>,
    condition: Option<String>,
    target: Option<String>,
    ids: Option<Vec<String>>,
    items: Option<Vec<Value>>,
    item_type: Option<String>,
    error: Option<String>,
    #[allow(dead_code, reason = "documentation inside the fixture")]
    comment: Option<String>,
}

/// What a case produced, in the fixture's terms.
enum Outcome {
    Docs {
        item_type: Option<ItemType>,
        docs: Vec<Value>,
    },
    Rows(Vec<Value>),
}

fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/query_cases.json"
    );
    let text = std::fs::read_to_string(path).expect("read fixture");
    serde_json::from_str(&text).expect("fixture is valid")
}

fn id(doc: &Value) -> String {
    let field = |k: &str| doc.get(k).and_then(Value::as_str);
    let mut id = field("deviceId").unwrap_or_default().to_owned();
    if let Some(module) = field("moduleId") {
        id = format!("{id}/{module}");
    }
    if let Some(job) = field("jobId") {
        id = format!("{id}#{job}");
    }
    id
}

impl Fixture {
    fn docs(&self, collection: Collection) -> &[Value] {
        match collection {
            Collection::Devices => &self.devices,
            Collection::Modules => &self.modules,
            Collection::Jobs => &self.jobs,
        }
    }

    fn matching(&self, collection: Collection, condition: &Condition) -> Outcome {
        let docs = self
            .docs(collection)
            .iter()
            .filter(|d| condition.matches(d))
            .cloned()
            .collect();
        Outcome::Docs {
            item_type: None,
            docs,
        }
    }

    fn run(&self, case: &Case) -> Result<Outcome, String> {
        let inputs = [&case.query, &case.condition, &case.target];
        assert_eq!(
            inputs.iter().filter(|i| i.is_some()).count(),
            1,
            "one input: {case:?}"
        );
        if let Some(text) = &case.query {
            let query = Query::parse(text).map_err(|e| e.to_string())?;
            let output = query
                .execute(self.docs(query.from()))
                .map_err(|e| e.to_string())?;
            return Ok(match output.item_type {
                ItemType::Raw => Outcome::Rows(output.items),
                other => Outcome::Docs {
                    item_type: Some(other),
                    docs: output.items,
                },
            });
        }
        if let Some(text) = &case.condition {
            let condition = Condition::parse(text).map_err(|e| e.to_string())?;
            return Ok(self.matching(Collection::Devices, &condition));
        }
        let text = case.target.as_deref().unwrap_or_default();
        let target = TargetCondition::parse(text).map_err(|e| e.to_string())?;
        Ok(self.matching(target.from, &target.condition))
    }
}

#[test]
fn query_cases() {
    let fixture = load();
    let mut failures = Vec::new();
    for case in &fixture.cases {
        let expectations = [
            case.ids.is_some(),
            case.items.is_some(),
            case.error.is_some(),
        ];
        assert_eq!(
            expectations.iter().filter(|e| **e).count(),
            1,
            "one expectation: {case:?}"
        );
        let label = [&case.query, &case.condition, &case.target]
            .into_iter()
            .find_map(Option::as_deref)
            .unwrap_or_default();
        let problem = match (fixture.run(case), case) {
            (
                Err(message),
                Case {
                    error: Some(expected),
                    ..
                },
            ) => (!message.contains(expected.as_str()))
                .then(|| format!("error {message:?} does not contain {expected:?}")),
            (Err(message), _) => Some(format!("unexpected error {message:?}")),
            (
                Ok(_),
                Case {
                    error: Some(expected),
                    ..
                },
            ) => Some(format!("succeeded, expected error {expected:?}")),
            (Ok(Outcome::Docs { item_type, docs }), Case { ids: Some(ids), .. }) => {
                let got: Vec<String> = docs.iter().map(id).collect();
                let type_ok = case
                    .item_type
                    .as_deref()
                    .is_none_or(|t| item_type.is_some_and(|it| it.as_str() == t));
                (got != *ids || !type_ok)
                    .then(|| format!("got ids {got:?} (item type {item_type:?})"))
            }
            (
                Ok(Outcome::Rows(rows)),
                Case {
                    items: Some(items), ..
                },
            ) => {
                let type_ok = case.item_type.as_deref().is_none_or(|t| t == "raw");
                (rows != *items || !type_ok).then(|| format!("got rows {}", Value::from(rows)))
            }
            (Ok(Outcome::Docs { docs, .. }), _) => Some(format!(
                "got documents {:?}, expected rows",
                docs.iter().map(id).collect::<Vec<_>>()
            )),
            (Ok(Outcome::Rows(rows)), _) => Some(format!(
                "got rows {}, expected documents",
                Value::from(rows)
            )),
        };
        if let Some(problem) = problem {
            failures.push(format!("{label}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn parsed_cases_print_as_text_that_parses_back_equal() {
    let fixture = load();
    for case in &fixture.cases {
        if let Some(Ok(query)) = case.query.as_deref().map(Query::parse) {
            assert_eq!(
                Query::parse(&query.to_string()).as_ref(),
                Ok(&query),
                "{query}"
            );
        }
        if let Some(Ok(condition)) = case.condition.as_deref().map(Condition::parse) {
            assert_eq!(
                Condition::parse(&condition.to_string()).as_ref(),
                Ok(&condition)
            );
        }
        if let Some(Ok(target)) = case.target.as_deref().map(TargetCondition::parse) {
            assert_eq!(
                TargetCondition::parse(&target.to_string()).as_ref(),
                Ok(&target)
            );
        }
    }
}
