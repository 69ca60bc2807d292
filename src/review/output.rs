//! The review's output formats: text, JSON, SARIF, JUnit XML and GitHub
//! workflow commands.
//!
//! Everything that came from the input or from a service (file names,
//! addresses, attributes, messages, suppression reasons and origins, live
//! errors) goes through [`esc`] ([`crate::text::escape`]) in every format,
//! and [`super::render_with`] passes the whole output through
//! [`crate::text::no_commands`]: no output line can be a CI command.

use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;

use crate::rules::findings::{readable, Verdict, RULES};
use crate::rules::Severity;

use super::analyze::{Analysis, Located};
use super::suppress::Note;

/// Version of the JSON output's shape (docs/review.md).
pub const JSON_VERSION: u32 = 1;

/// Longest text of the input a field of the output holds, in bytes.
pub const FIELD_MAX_BYTES: usize = 1000;

/// Text from the input or a service, escaped for any format.
pub(crate) fn esc(s: &str) -> String {
    crate::text::escape(s, FIELD_MAX_BYTES)
}

/// [`esc`], borrowing a text that needs nothing done.
fn esc_cow(s: &str) -> Cow<'_, str> {
    crate::text::escape_cow(s, FIELD_MAX_BYTES)
}

static NO_NOTE: Note = Note {
    source: None,
    suppression: None,
};

/// The note of outcome `i` (none when the review has no notes).
fn note(notes: &[Note], i: usize) -> &Note {
    notes.get(i).unwrap_or(&NO_NOTE)
}

fn reported(a: &Analysis) -> impl Iterator<Item = (usize, &Located)> {
    a.outcomes
        .iter()
        .enumerate()
        .filter(|(_, l)| l.outcome.verdict != Verdict::Pass)
}

struct Counts {
    errors: usize,
    warnings: usize,
    cannot_tell: usize,
    needs_state: usize,
    passed: usize,
    suppressed: usize,
}

fn counts(a: &Analysis, notes: &[Note]) -> Counts {
    let o = || {
        a.outcomes
            .iter()
            .enumerate()
            .filter(|(i, _)| !note(notes, *i).suppressed())
            .map(|(_, l)| &l.outcome)
    };
    Counts {
        errors: o().filter(|x| x.is_error()).count(),
        warnings: o()
            .filter(|x| x.is_failure() && x.severity == Severity::Warning)
            .count(),
        cannot_tell: o().filter(|x| x.verdict == Verdict::CannotTell).count(),
        needs_state: o().filter(|x| x.verdict == Verdict::NeedsState).count(),
        passed: o().filter(|x| x.verdict == Verdict::Pass).count(),
        suppressed: (0..a.outcomes.len())
            .filter(|i| note(notes, *i).suppressed())
            .count(),
    }
}

/// `main.tf:12: ` when the outcome's resource has a known place.
fn place(n: &Note) -> String {
    n.source
        .as_ref()
        .map(|s| format!("{}:{}: ", esc(&s.file), s.line))
        .unwrap_or_default()
}

/// Why an expired suppression no longer holds, for messages.
fn expired_text(n: &Note) -> String {
    match &n.suppression {
        Some(s) => match s.expired {
            Some(d) => format!(
                " [suppression expired on {d} ({}): {}]",
                esc(&s.origin),
                esc(&s.reason)
            ),
            None => String::new(),
        },
        None => String::new(),
    }
}

/// `, N not evaluated` for the summary line when something was not.
fn unevaluated_note(a: &Analysis) -> String {
    match a.unevaluated.len() {
        0 => String::new(),
        n => format!(", {n} not evaluated (see \"could not evaluate\")"),
    }
}

/// Human-readable text: failures first (errors, then warnings), then what
/// cannot be told yet.
pub fn text(a: &Analysis) -> String {
    text_with(a, &[])
}

/// Text with each outcome's note (place, suppression).
pub fn text_with(a: &Analysis, notes: &[Note]) -> String {
    let mut out = String::new();
    let mut failures: Vec<(usize, &Located)> = a
        .outcomes
        .iter()
        .enumerate()
        .filter(|(i, l)| l.outcome.is_failure() && !note(notes, *i).suppressed())
        .collect();
    failures.sort_by_key(|(_, l)| std::cmp::Reverse(l.outcome.severity));
    for (i, l) in failures {
        let o = &l.outcome;
        let n = note(notes, i);
        out.push_str(&format!(
            "{}{} {} {} ({}): {}{}\n  remediation: {}\n  docs: {}\n",
            place(n),
            o.severity,
            o.rule,
            esc(&readable(&l.address)),
            esc(&l.attribute),
            esc(&o.message),
            expired_text(n),
            o.remediation(),
            o.docs()
        ));
    }
    for (i, l) in a.outcomes.iter().enumerate() {
        let n = note(notes, i);
        if let (true, Some(s)) = (n.suppressed(), &n.suppression) {
            let o = &l.outcome;
            out.push_str(&format!(
                "{}suppressed {} {} {} ({}): {}\n  accepted by {}: {}\n",
                place(n),
                o.severity,
                o.rule,
                esc(&readable(&l.address)),
                esc(&l.attribute),
                esc(&o.message),
                esc(&s.origin),
                esc(&s.reason)
            ));
        }
    }
    for (i, l) in
        a.outcomes.iter().enumerate().filter(|(i, l)| {
            l.outcome.verdict == Verdict::CannotTell && !note(notes, *i).suppressed()
        })
    {
        let o = &l.outcome;
        out.push_str(&format!(
            "{}cannot tell yet {} {} ({}): {}{}\n",
            place(note(notes, i)),
            o.rule,
            esc(&readable(&l.address)),
            esc(&l.attribute),
            esc(&o.message),
            if l.live_decides {
                " [review --live decides this]"
            } else {
                ""
            }
        ));
    }
    for (i, l) in
        a.outcomes.iter().enumerate().filter(|(i, l)| {
            l.outcome.verdict == Verdict::NeedsState && !note(notes, *i).suppressed()
        })
    {
        let o = &l.outcome;
        out.push_str(&format!(
            "{}needs state {} {} ({}): {}{}\n",
            place(note(notes, i)),
            o.rule,
            esc(&readable(&l.address)),
            esc(&l.attribute),
            // The line says "needs state" already.
            esc(o
                .message
                .strip_prefix(crate::rules::findings::NEEDS_STATE)
                .map_or(o.message.as_str(), |m| m.trim_start_matches(": "))),
            if l.live_decides {
                " [review --live decides this]"
            } else {
                ""
            }
        ));
    }
    for u in &a.unevaluated {
        out.push_str(&format!("could not evaluate: {}\n", esc(u)));
    }
    for n in &a.live_notes {
        out.push_str(&format!("live: {}\n", esc(n)));
    }
    let c = counts(a, notes);
    match &a.live {
        Some(errors) if errors.is_empty() => {
            out.push_str("live: the workspaces' current facts were read from Databricks\n")
        }
        Some(errors) => {
            for e in errors {
                out.push_str(&format!("live: could not read: {}\n", esc(e)));
            }
        }
        None => {
            let n = a.outcomes.iter().filter(|l| l.live_decides).count();
            if n > 0 {
                out.push_str(&format!(
                    "{n} of the \"cannot tell yet\" and \"needs state\" outcomes need facts only Databricks has (current keys, tier, running classic compute, dashboards): run `review --live` to decide them\n"
                ));
            }
        }
    }
    if c.needs_state > 0 {
        out.push_str(&format!(
            "{} finding(s) need state: not checked without a plan or --live (a workspace of the configuration may exist already; review a plan of it, or pass --live, which also reads running classic compute and dashboards); never counted as passed\n",
            c.needs_state
        ));
    }
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} cannot tell yet, {} needs state, {} passed{}{}\n",
        c.errors,
        c.warnings,
        c.cannot_tell,
        c.needs_state,
        c.passed,
        if c.suppressed > 0 {
            format!(", {} suppressed", c.suppressed)
        } else {
            String::new()
        },
        unevaluated_note(a)
    ));
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format: &'static str,
    version: u32,
    plan: String,
    summary: JsonSummary,
    findings: Vec<JsonFinding<'a>>,
    coverage: Vec<JsonCoverage<'a>>,
    live: JsonLive,
    /// What the review could not evaluate in the source (HCL mode).
    unevaluated: Vec<String>,
}

#[derive(Serialize)]
struct JsonLive {
    /// Facts were read from Databricks (`--live`).
    read: bool,
    /// Reads that failed.
    errors: Vec<String>,
    /// Offline: how many `cannot_tell` and `needs_state` outcomes `--live`
    /// would decide.
    would_decide: usize,
    /// What `--live` found out about the configuration's workspaces (a
    /// workspace not in the account is reviewed as a new one).
    notes: Vec<String>,
}

#[derive(Serialize)]
struct JsonSummary {
    errors: usize,
    warnings: usize,
    cannot_tell: usize,
    /// Not checked without a plan or `--live`; never counted as passed.
    needs_state: usize,
    passed: usize,
    suppressed: usize,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    address: Cow<'a, str>,
    resource_type: Cow<'a, str>,
    attribute: Cow<'a, str>,
    rule: &'static str,
    title: &'static str,
    verdict: &'static str,
    severity: &'static str,
    subject: String,
    message: Cow<'a, str>,
    remediation: &'static str,
    docs: String,
    live_decides: bool,
    /// File and line of the resource block (HCL mode), else null.
    file: Option<String>,
    line: Option<usize>,
    suppression: Option<JsonSuppression>,
}

#[derive(Serialize)]
struct JsonSuppression {
    reason: String,
    origin: String,
    kind: &'static str,
    /// The expiry date when it has passed (the finding then counts).
    expired: Option<String>,
}

#[derive(Serialize)]
struct JsonCoverage<'a> {
    address: Cow<'a, str>,
    data_type: &'static str,
    protection: &'a crate::rules::Protection,
    reason: Cow<'a, str>,
    rule: &'static str,
}

/// The documented JSON shape (docs/review.md), serialized straight from
/// the analysis (no intermediate JSON tree).
pub fn json(a: &Analysis, source: &str) -> String {
    json_with(a, &[], source)
}

/// JSON with each outcome's note.
pub fn json_with(a: &Analysis, notes: &[Note], source: &str) -> String {
    let c = counts(a, notes);
    let doc = JsonReport {
        format: "terraform-provider-cmk-review",
        version: JSON_VERSION,
        plan: esc(source),
        summary: JsonSummary {
            errors: c.errors,
            warnings: c.warnings,
            cannot_tell: c.cannot_tell,
            needs_state: c.needs_state,
            passed: c.passed,
            suppressed: c.suppressed,
        },
        findings: reported(a)
            .map(|(i, l)| {
                let n = note(notes, i);
                let o = &l.outcome;
                let r = o.rule.rule();
                JsonFinding {
                    address: esc_cow(&l.address),
                    resource_type: esc_cow(&l.resource_type),
                    attribute: esc_cow(&l.attribute),
                    rule: r.id,
                    title: r.title,
                    verdict: o.verdict.as_str(),
                    severity: o.severity.as_str(),
                    subject: o.subject.name(),
                    message: esc_cow(&o.message),
                    remediation: r.remediation,
                    docs: r.docs_path(),
                    live_decides: l.live_decides,
                    file: n.source.as_ref().map(|s| esc(&s.file)),
                    line: n.source.as_ref().map(|s| s.line),
                    suppression: n.suppression.as_ref().map(|s| JsonSuppression {
                        reason: esc(&s.reason),
                        origin: esc(&s.origin),
                        kind: if s.in_source { "inline" } else { "file" },
                        expired: s.expired.map(|d| d.to_string()),
                    }),
                }
            })
            .collect(),
        coverage: a
            .coverage
            .iter()
            .flat_map(|w| {
                w.coverage.iter().map(move |c| JsonCoverage {
                    address: esc_cow(&w.address),
                    data_type: c.data_type.name(),
                    protection: &c.protection,
                    reason: esc_cow(&c.reason),
                    rule: c.rule.code(),
                })
            })
            .collect(),
        unevaluated: a.unevaluated.iter().map(|u| esc(u)).collect(),
        live: JsonLive {
            read: a.live.is_some(),
            errors: a
                .live
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|e| esc(e))
                .collect(),
            would_decide: a.outcomes.iter().filter(|l| l.live_decides).count(),
            notes: a.live_notes.iter().map(|n| esc(n)).collect(),
        },
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// SARIF 2.1.0: one run, the rule registry as the driver's rules.
pub fn sarif(a: &Analysis, source: &str) -> String {
    sarif_with(a, &[], source)
}

/// SARIF with each outcome's note: the resource's file and line as its
/// physical location, a suppression as the result's `suppressions`.
pub fn sarif_with(a: &Analysis, notes: &[Note], source: &str) -> String {
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
        .map(|(i, l)| {
            let n = note(notes, i);
            let o = &l.outcome;
            let index = RULES.iter().position(|r| r.key == o.rule).unwrap_or(0);
            let (kind, level) = match o.verdict {
                Verdict::CannotTell => ("review", "none"),
                // Not checked: a note, never a pass.
                Verdict::NeedsState => ("review", "note"),
                _ => ("fail", o.severity.as_str()),
            };
            let physical = match &n.source {
                Some(s) => json!({
                    "artifactLocation": { "uri": crate::text::uri_path(&s.file) },
                    "region": { "startLine": s.line },
                }),
                None => json!({ "artifactLocation": { "uri": crate::text::uri_path(source) } }),
            };
            let mut r = json!({
                "ruleId": o.rule.code(),
                "ruleIndex": index,
                "kind": kind,
                "level": level,
                "message": { "text": esc(&o.message) },
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{
                        "name": esc(&l.attribute),
                        "fullyQualifiedName": esc(&format!("{}.{}", l.address, l.attribute)),
                        "kind": "member",
                    }, {
                        "fullyQualifiedName": esc(&l.address),
                        "kind": "resource",
                    }],
                }],
                "properties": { "subject": o.subject.name(), "remediation": o.remediation(), "live_decides": l.live_decides, "verdict": o.verdict.as_str(), "needs_state": o.verdict == Verdict::NeedsState },
            });
            if let Some(s) = &n.suppression {
                match s.expired {
                    None => {
                        r["suppressions"] = json!([{
                            "kind": if s.in_source { "inSource" } else { "external" },
                            "status": "accepted",
                            "justification": esc(&s.reason),
                            "location": { "physicalLocation": { "artifactLocation": { "uri": crate::text::uri_path(&s.origin) } } },
                        }]);
                    }
                    Some(d) => {
                        r["properties"]["suppression_expired"] = json!(d.to_string());
                        r["message"]["text"] = json!(format!("{}{}", esc(&o.message), expired_text(n)));
                    }
                }
            }
            r
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
            "properties": { "unevaluated": a.unevaluated.iter().map(|u| esc(u)).collect::<Vec<_>>() },
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// `--fail-on`: the least severe finding that makes the exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Error,
    Warning,
    Never,
    /// Errors, and every "cannot tell yet", every "needs state" and every
    /// expression the review could not evaluate: a strict gate.
    CannotTell,
    /// Errors, and every "needs state": a configuration's source reviewed
    /// without `--live` fails while a rule that compares with what exists
    /// is not checked.
    NeedsState,
}

impl FailOn {
    /// Whether a finding fails the review at this threshold.
    pub fn fails(self, o: &crate::rules::Outcome) -> bool {
        match self {
            FailOn::Error => o.is_error(),
            FailOn::Warning => o.is_failure(),
            FailOn::Never => false,
            FailOn::CannotTell => {
                o.is_error() || matches!(o.verdict, Verdict::CannotTell | Verdict::NeedsState)
            }
            FailOn::NeedsState => o.is_error() || o.verdict == Verdict::NeedsState,
        }
    }
}

/// The findings that fail the review at a threshold (not suppressed).
fn fails_at(l: &Located, n: &Note, fail_on: FailOn) -> bool {
    !n.suppressed() && fail_on.fails(&l.outcome)
}

/// XML character data and attribute values: `&`, `<`, `>`, quotes, and
/// the characters XML 1.0 cannot hold (controls, U+FFFE, U+FFFF) dropped.
/// Input text reaches it escaped ([`esc`]); this is the last guard.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML (`testsuites` / `testsuite` / `testcase`, with the attributes
/// Jenkins' junit-10.xsd allows: `skipped` on `testsuite` only): one test case per
/// rule applied to an object. A finding that fails at `fail_on` is a
/// `failure`; a suppressed one and one that cannot tell yet are `skipped`
/// with the reason; a finding below the threshold passes, with the finding
/// in `system-out`.
pub fn junit(a: &Analysis, notes: &[Note], source: &str, fail_on: FailOn) -> String {
    let mut cases = String::new();
    let (mut failures, mut skipped) = (0, 0);
    for (i, l) in a.outcomes.iter().enumerate() {
        let n = note(notes, i);
        let o = &l.outcome;
        let classname = match &n.source {
            Some(s) => format!("{}:{}", esc(&s.file), s.line),
            None => esc(source),
        };
        cases.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
            xml(&format!(
                "{} {} ({})",
                o.rule,
                esc(&l.address),
                esc(&l.attribute)
            )),
            xml(&classname)
        ));
        let detail = format!(
            "{}: {}{}\nremediation: {}\ndocs: {}",
            esc(&readable(&l.address)),
            esc(&o.message),
            expired_text(n),
            o.remediation(),
            o.docs()
        );
        if fails_at(l, n, fail_on) {
            failures += 1;
            cases.push_str(&format!(
                ">\n      <failure message=\"{}\" type=\"{} {}\">{}</failure>\n    </testcase>\n",
                xml(&format!("{}{}", esc(&o.message), expired_text(n))),
                o.rule,
                o.severity,
                xml(&detail)
            ));
        } else if let (true, Some(s)) = (n.suppressed(), &n.suppression) {
            skipped += 1;
            cases.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml(&format!(
                    "suppressed by {}: {}",
                    esc(&s.origin),
                    esc(&s.reason)
                ))
            ));
        } else if o.verdict == Verdict::CannotTell {
            skipped += 1;
            cases.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml(&format!("cannot tell yet: {}", esc(&o.message)))
            ));
        } else if o.verdict == Verdict::NeedsState {
            // The message starts with "needs state: ...".
            skipped += 1;
            cases.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml(&esc(&o.message))
            ));
        } else if o.is_failure() {
            cases.push_str(&format!(
                ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                xml(&format!("{} (below --fail-on): {detail}", o.severity))
            ));
        } else {
            cases.push_str("/>\n");
        }
    }
    for u in &a.unevaluated {
        cases.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\">\n",
            xml(&format!("could not evaluate: {}", esc(u))),
            xml(&esc(source))
        ));
        if fail_on == FailOn::CannotTell {
            failures += 1;
            cases.push_str(&format!(
                "      <failure message=\"{}\" type=\"unevaluated\"/>\n    </testcase>\n",
                xml(&format!("could not evaluate: {}", esc(u)))
            ));
        } else {
            skipped += 1;
            cases.push_str(&format!(
                "      <skipped message=\"{}\"/>\n    </testcase>\n",
                xml(&format!("could not evaluate: {}", esc(u)))
            ));
        }
    }
    let tests = a.outcomes.len() + a.unevaluated.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"terraform-provider-cmk review\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"0\">\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml(&esc(source))
    )
}

/// A workflow command's message: `%`, CR and LF escaped as GitHub documents.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: also `:` and `,`.
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands: `::error file=F,line=L,title=T::message`
/// for each finding that fails at `fail_on`, `::warning` for the other
/// failures, `::notice` for what cannot be told yet; suppressed findings
/// are not annotated. A last plain line counts them.
pub fn github(a: &Analysis, notes: &[Note], source: &str, fail_on: FailOn) -> String {
    let mut out = String::new();
    for (i, l) in a.outcomes.iter().enumerate() {
        let n = note(notes, i);
        let o = &l.outcome;
        if o.verdict == Verdict::Pass || n.suppressed() {
            continue;
        }
        let command = if fails_at(l, n, fail_on) {
            "error"
        } else if o.is_failure() {
            "warning"
        } else {
            "notice"
        };
        let mut props = vec![];
        match &n.source {
            Some(s) => {
                props.push(format!("file={}", gh_property(&esc(&s.file))));
                props.push(format!("line={}", s.line));
            }
            None if source != "-" => props.push(format!("file={}", gh_property(&esc(source)))),
            None => {}
        }
        let title = if o.verdict == Verdict::CannotTell {
            format!("{} cannot tell yet: {}", o.rule, o.rule.rule().title)
        } else if o.verdict == Verdict::NeedsState {
            format!("{} needs state: {}", o.rule, o.rule.rule().title)
        } else {
            format!("{} {}", o.rule, o.rule.rule().title)
        };
        props.push(format!("title={}", gh_property(&title)));
        let message = format!(
            "{} ({}): {}{}\nremediation: {}\ndocs: {}",
            esc(&readable(&l.address)),
            esc(&l.attribute),
            esc(&o.message),
            expired_text(n),
            o.remediation(),
            o.docs()
        );
        out.push_str(&format!(
            "::{command} {}::{}\n",
            props.join(","),
            gh_data(&message)
        ));
    }
    for u in &a.unevaluated {
        let command = if fail_on == FailOn::CannotTell {
            "error"
        } else {
            "warning"
        };
        let mut props = vec![];
        if source != "-" {
            props.push(format!("file={}", gh_property(&esc(source))));
        }
        props.push(format!("title={}", gh_property("could not evaluate")));
        out.push_str(&format!(
            "::{command} {}::{}\n",
            props.join(","),
            gh_data(&esc(u))
        ));
    }
    let c = counts(a, notes);
    out.push_str(&format!(
        "review: {} error(s), {} warning(s), {} cannot tell yet, {} needs state, {} passed, {} suppressed{}\n",
        c.errors,
        c.warnings,
        c.cannot_tell,
        c.needs_state,
        c.passed,
        c.suppressed,
        unevaluated_note(a)
    ));
    out
}
