//! The review's three output formats.

use serde::Serialize;
use serde_json::{json, Value};

use crate::rules::findings::{readable, Verdict, RULES};
use crate::rules::Severity;

use super::analyze::{Analysis, Located};

/// Version of the JSON output's shape (docs/review.md).
pub const JSON_VERSION: u32 = 1;

fn reported(a: &Analysis) -> impl Iterator<Item = &Located> {
    a.outcomes
        .iter()
        .filter(|l| l.outcome.verdict != Verdict::Pass)
}

struct Counts {
    errors: usize,
    warnings: usize,
    cannot_tell: usize,
    passed: usize,
}

fn counts(a: &Analysis) -> Counts {
    let o = || a.outcomes.iter().map(|l| &l.outcome);
    Counts {
        errors: o().filter(|x| x.is_error()).count(),
        warnings: o()
            .filter(|x| x.is_failure() && x.severity == Severity::Warning)
            .count(),
        cannot_tell: o().filter(|x| x.verdict == Verdict::CannotTell).count(),
        passed: o().filter(|x| x.verdict == Verdict::Pass).count(),
    }
}

/// Human-readable text: failures first (errors, then warnings), then what
/// cannot be told yet.
pub fn text(a: &Analysis) -> String {
    let mut out = String::new();
    let mut failures: Vec<&Located> = a
        .outcomes
        .iter()
        .filter(|l| l.outcome.is_failure())
        .collect();
    failures.sort_by_key(|l| std::cmp::Reverse(l.outcome.severity));
    for l in failures {
        let o = &l.outcome;
        out.push_str(&format!(
            "{} {} {} ({}): {}\n  remediation: {}\n  docs: {}\n",
            o.severity,
            o.rule,
            readable(&l.address),
            l.attribute,
            o.message,
            o.remediation(),
            o.docs()
        ));
    }
    for l in a
        .outcomes
        .iter()
        .filter(|l| l.outcome.verdict == Verdict::CannotTell)
    {
        let o = &l.outcome;
        out.push_str(&format!(
            "cannot tell yet {} {} ({}): {}{}\n",
            o.rule,
            readable(&l.address),
            l.attribute,
            o.message,
            if l.live_decides {
                " [review --live decides this]"
            } else {
                ""
            }
        ));
    }
    let c = counts(a);
    match &a.live {
        Some(errors) if errors.is_empty() => {
            out.push_str("live: the workspaces' current facts were read from Databricks\n")
        }
        Some(errors) => {
            for e in errors {
                out.push_str(&format!("live: could not read: {e}\n"));
            }
        }
        None => {
            let n = a.outcomes.iter().filter(|l| l.live_decides).count();
            if n > 0 {
                out.push_str(&format!(
                    "{n} of the \"cannot tell yet\" outcomes need facts only Databricks has (current keys, tier, running classic compute, dashboards): run `review --live` to decide them\n"
                ));
            }
        }
    }
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} cannot tell yet, {} passed\n",
        c.errors, c.warnings, c.cannot_tell, c.passed
    ));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    version: u32,
    plan: &'a str,
    summary: JsonSummary,
    findings: Vec<JsonFinding<'a>>,
    coverage: Vec<JsonCoverage<'a>>,
    live: JsonLive<'a>,
}

#[derive(Serialize)]
struct JsonLive<'a> {
    /// Facts were read from Databricks (`--live`).
    read: bool,
    /// Reads that failed.
    errors: &'a [String],
    /// Offline: how many `cannot_tell` outcomes `--live` would decide.
    would_decide: usize,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
    cannot_tell: usize,
    passed: usize,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    address: &'a str,
    resource_type: &'a str,
    attribute: &'a str,
    rule: &'static str,
    title: &'static str,
    verdict: &'static str,
    severity: &'static str,
    subject: String,
    message: &'a str,
    remediation: &'static str,
    docs: String,
    live_decides: bool,
}

#[derive(Serialize)]
struct JsonCoverage<'a> {
    address: &'a str,
    data_type: &'static str,
    protection: &'a crate::rules::Protection,
    reason: &'a str,
    rule: &'static str,
}

/// The documented JSON shape (docs/review.md), serialized straight from
/// the analysis (no intermediate JSON tree).
pub fn json(a: &Analysis, source: &str) -> String {
    let c = counts(a);
    let doc = JsonReport {
        format: "terraform-provider-cmk-review",
        version: JSON_VERSION,
        plan: source,
        summary: JsonSummary {
            errors: c.errors,
            warnings: c.warnings,
            cannot_tell: c.cannot_tell,
            passed: c.passed,
        },
        findings: reported(a)
            .map(|l| {
                let o = &l.outcome;
                let r = o.rule.rule();
                JsonFinding {
                    address: &l.address,
                    resource_type: &l.resource_type,
                    attribute: &l.attribute,
                    rule: r.id,
                    title: r.title,
                    verdict: match o.verdict {
                        Verdict::Fail => "fail",
                        Verdict::CannotTell => "cannot_tell",
                        Verdict::Pass => "pass",
                    },
                    severity: o.severity.as_str(),
                    subject: o.subject.name(),
                    message: &o.message,
                    remediation: r.remediation,
                    docs: r.docs_path(),
                    live_decides: l.live_decides,
                }
            })
            .collect(),
        coverage: a
            .coverage
            .iter()
            .flat_map(|w| {
                w.coverage.iter().map(move |c| JsonCoverage {
                    address: &w.address,
                    data_type: c.data_type.name(),
                    protection: &c.protection,
                    reason: &c.reason,
                    rule: c.rule.code(),
                })
            })
            .collect(),
        live: JsonLive {
            read: a.live.is_some(),
            errors: a.live.as_deref().unwrap_or_default(),
            would_decide: a.outcomes.iter().filter(|l| l.live_decides).count(),
        },
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// SARIF 2.1.0: one run, the rule registry as the driver's rules.
pub fn sarif(a: &Analysis, source: &str) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.checks },
                "help": { "text": r.remediation },
                "helpUri": r.docs_path(),
                "defaultConfiguration": { "level": r.severity.as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = reported(a)
        .map(|l| {
            let o = &l.outcome;
            let index = RULES.iter().position(|r| r.key == o.rule).unwrap_or(0);
            let (kind, level) = match o.verdict {
                Verdict::CannotTell => ("review", "none"),
                _ => ("fail", o.severity.as_str()),
            };
            json!({
                "ruleId": o.rule.code(),
                "ruleIndex": index,
                "kind": kind,
                "level": level,
                "message": { "text": o.message },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": source } },
                    "logicalLocations": [{
                        "name": l.attribute,
                        "fullyQualifiedName": format!("{}.{}", l.address, l.attribute),
                        "kind": "member",
                    }, {
                        "fullyQualifiedName": l.address,
                        "kind": "resource",
                    }],
                }],
                "properties": { "subject": o.subject.name(), "remediation": o.remediation(), "live_decides": l.live_decides },
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "terraform-provider-cmk review",
                "version": crate::VERSION,
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
