//! Fuzz target of review's plan reader (`make fuzz` runs it with many
//! cases, `make test` with a few): plans of the project's fixtures, cut,
//! spliced and with values replaced at random JSON paths. Any input either
//! reads as a plan or is refused with a message; a plan that reads is
//! analysed and rendered in every format without a panic, and every value
//! quoted in the output stays cut to a readable length.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn cases() -> u32 {
    crate::test_settings::fuzz_cases(64)
}

/// The fixtures the review tests read: real shapes to mutate.
fn fixtures() -> Vec<Value> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/acceptance-tests/fixtures/review"
    );
    let mut out: Vec<Value> = std::fs::read_dir(dir)
        .expect("the review fixtures")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    out.sort_by_key(|v| v.to_string());
    assert!(!out.is_empty(), "no review fixtures in {dir}");
    out
}

/// Every JSON pointer of a value, objects and arrays included.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(x, format!("{here}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,300}".prop_map(Value::String),
        "[a-z_.\\[\\]0-9\"]{0,40}".prop_map(Value::String),
        Just(Value::Array(vec![])),
        Just(Value::Object(Default::default())),
        Just(serde_json::json!([{"address": "x", "type": "cmk_key_configuration"}])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_plan_reader_mutated_fixtures(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), replacement()), 1..6),
    ) {
        let all = fixtures();
        let mut plan = which.get(&all).clone();
        for (at, with) in edits {
            let mut ps = Vec::new();
            pointers(&plan, String::new(), &mut ps);
            let p = at.get(&ps).clone();
            if p.is_empty() {
                plan = with;
            } else if let Some(slot) = plan.pointer_mut(&p) {
                *slot = with;
            }
        }
        check(&plan.to_string())?;
    }

    #[test]
    fn fuzz_plan_reader_cut_text(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let all = fixtures();
        let text = which.get(&all).to_string();
        let chars: Vec<char> = text.chars().collect();
        let n = cut.index(chars.len().max(1));
        let cut: String = chars[..n].iter().collect();
        check(&cut)?;
    }
}

/// Reads and, when it reads, analyses and renders; messages stay readable.
fn check(text: &str) -> Result<(), TestCaseError> {
    match review_text(text, &Requirements::default()) {
        Err(e) => {
            let m = e.to_string();
            prop_assert!(!m.is_empty());
            prop_assert!(
                m.chars().count() < 2_000,
                "message too long: {} chars",
                m.len()
            );
        }
        Ok(a) => {
            for f in [Format::Text, Format::Json, Format::Sarif] {
                let _ = render(&a, f, "plan.json");
            }
            let _ = exit_code(&a);
        }
    }
    Ok(())
}
