//! Accepting a finding on purpose: `# cmk:ignore RULE reason` in a
//! resource block (HCL mode), and a suppressions file (`.cmk-review.json`)
//! for plan and HCL input alike:
//!
//! ```json
//! {"suppressions": [
//!   {"rule": "CMK021", "address": "module.legacy.*", "reason": "dashboards migrated by hand", "expires": "2026-12-31"}
//! ]}
//! ```
//!
//! A suppressed finding is still reported, marked suppressed, and does not
//! fail the review; after its expiry date (the day itself still counts) it
//! fails like any finding and says the suppression expired. A suppression
//! without a reason, with an unknown rule or a date that is not a date is
//! refused, and so is one that expires later than the owner allows
//! ([`Policy`]: `--max-suppression-days`, default 90 days from today; with
//! the flag given, a suppression without an expiry date is refused too).

use serde::Deserialize;
use time::Date;

use crate::rules::findings::{quote, RULES};

use super::analyze::Analysis;
use super::hcl_input::{InlineIgnore, Source};
use super::plan::strip_index;

/// What the repository's owner allows of suppressions (command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The latest expiry date accepted.
    pub latest: Date,
    /// `--max-suppression-days`: the days after today that makes `latest`.
    pub days: u32,
    /// A suppression must have an expiry date.
    pub require_expiry: bool,
}

impl Policy {
    /// `days` after `today`.
    pub fn new(today: Date, days: u32, require_expiry: bool) -> Policy {
        let latest = today
            .checked_add(time::Duration::days(i64::from(days)))
            .unwrap_or(Date::MAX);
        Policy {
            latest,
            days,
            require_expiry,
        }
    }

    /// A suppression's expiry, checked: `Err` names where it is written.
    fn check(&self, expires: Option<Date>, origin: &str) -> Result<(), String> {
        match expires {
            None if self.require_expiry => Err(format!(
                "{origin}: the suppression has no expiry date; --max-suppression-days {} needs one on or before {} (\"expires\": \"YYYY-MM-DD\" in a file, exp:YYYY-MM-DD inline)",
                self.days, self.latest
            )),
            Some(d) if d > self.latest => Err(format!(
                "{origin}: the suppression expires on {d}, later than --max-suppression-days {} allows ({}); choose an earlier date",
                self.days, self.latest
            )),
            _ => Ok(()),
        }
    }
}

impl Default for Policy {
    /// No limit (for callers that do not set one).
    fn default() -> Policy {
        Policy {
            latest: Date::MAX,
            days: u32::MAX,
            require_expiry: false,
        }
    }
}

/// The suppressions file looked for when none is named.
pub const DEFAULT_FILE: &str = ".cmk-review.json";

/// One accepted finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub rule: String,
    /// Address pattern: `*` stands for any run of characters.
    pub address: String,
    pub reason: String,
    pub expires: Option<Date>,
    /// Where it is written, for messages: `main.tf:12`, `.cmk-review.json suppressions[0]`.
    pub origin: String,
    /// An inline comment of a resource block (else a suppressions file).
    pub inline: bool,
}

/// A suppression applied to an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub reason: String,
    pub origin: String,
    /// Inline comment (`inSource`) or file (`external`), as SARIF names them.
    pub in_source: bool,
    /// Set when it expired: the date.
    pub expired: Option<Date>,
}

/// What the review knows of each outcome besides the rule's verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Note {
    /// File and line of the resource (HCL mode).
    pub source: Option<Source>,
    pub suppression: Option<Applied>,
}

impl Note {
    /// Suppressed and the suppression still holds.
    pub fn suppressed(&self) -> bool {
        self.suppression
            .as_ref()
            .is_some_and(|s| s.expired.is_none())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    suppressions: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    rule: String,
    #[serde(default = "any_address")]
    address: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    expires: Option<String>,
}

fn any_address() -> String {
    "*".into()
}

fn parse_date(s: &str) -> Option<Date> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

fn check_rule(rule: &str, origin: &str) -> Result<(), String> {
    if RULES.iter().any(|r| r.id == rule) {
        Ok(())
    } else {
        Err(format!(
            "{origin}: no rule {} (rule ids are CMK001 to CMK{:03}; see {})",
            quote(rule),
            RULES.len(),
            crate::rules::findings::docs_url(crate::rules::findings::RULES_INDEX_PAGE)
        ))
    }
}

/// Reads a suppressions file; any entry that cannot be used is an error
/// naming it.
pub fn parse_file(name: &str, text: &str, policy: &Policy) -> Result<Vec<Suppression>, String> {
    let doc: FileDoc = serde_json::from_str(text).map_err(|e| {
        format!(
            "{name}: not a suppressions file ({e}); expected {{\"suppressions\": [{{\"rule\": \"CMK021\", \"address\": \"...\", \"reason\": \"...\", \"expires\": \"YYYY-MM-DD\"}}]}}"
        )
    })?;
    let mut out = vec![];
    for (i, e) in doc.suppressions.into_iter().enumerate() {
        let origin = format!("{name} suppressions[{i}]");
        check_rule(&e.rule, &origin)?;
        let reason = e.reason.unwrap_or_default().trim().to_string();
        if reason.is_empty() {
            return Err(format!(
                "{origin}: the suppression of {} has no reason; say why the finding is accepted (\"reason\": \"...\")",
                e.rule
            ));
        }
        let expires = match e.expires {
            None => None,
            Some(s) => Some(parse_date(&s).ok_or_else(|| {
                format!(
                    "{origin}: expires {} is not a date (write YYYY-MM-DD)",
                    quote(&s)
                )
            })?),
        };
        policy.check(expires, &origin)?;
        out.push(Suppression {
            rule: e.rule,
            address: e.address,
            reason,
            expires,
            origin,
            inline: false,
        });
    }
    Ok(out)
}

/// Inline `# cmk:ignore RULE [exp:YYYY-MM-DD] reason` comments as
/// suppressions of their resource (every instance of it).
pub fn from_inline(ignores: &[InlineIgnore], policy: &Policy) -> Result<Vec<Suppression>, String> {
    let mut out = vec![];
    for i in ignores {
        let origin = format!("{}:{}", i.at.file, i.at.line);
        if i.rule.is_empty() {
            return Err(format!(
                "{origin}: cmk:ignore needs a rule id and a reason, e.g. `# cmk:ignore CMK021 dashboards migrated by hand`"
            ));
        }
        check_rule(&i.rule, &origin)?;
        let mut reason = i.reason.as_str();
        let mut expires = None;
        if let Some(rest) = reason.strip_prefix("exp:") {
            let (d, why) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            expires = Some(parse_date(d).ok_or_else(|| {
                format!(
                    "{origin}: exp:{} is not a date (write exp:YYYY-MM-DD)",
                    crate::text::escape(d, 40)
                )
            })?);
            reason = why.trim();
        }
        policy.check(expires, &origin)?;
        if reason.is_empty() {
            return Err(format!(
                "{origin}: cmk:ignore {} has no reason; write why after the rule id",
                i.rule
            ));
        }
        out.push(Suppression {
            rule: i.rule.clone(),
            address: format!("{}*", i.config_address),
            reason: reason.to_string(),
            expires,
            origin,
            inline: true,
        });
    }
    Ok(out)
}

/// `*` matches any run of characters; everything else itself.
pub fn matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// An inline suppression names its resource block; it matches the block's
/// address and its instances (`x.y`, `x.y[0]`, `x.y["a"]`), not `x.yz`.
fn matches_address(s: &Suppression, address: &str) -> bool {
    if s.inline {
        let block = s.address.trim_end_matches('*');
        return strip_index(address) == block;
    }
    matches(&s.address, address)
}

/// The notes of an analysis' outcomes: location (when known) and the first
/// suppression that matches (inline ones first).
pub fn notes(
    a: &Analysis,
    suppressions: &[Suppression],
    locations: &std::collections::HashMap<String, Source>,
    today: Date,
) -> Vec<Note> {
    a.outcomes
        .iter()
        .map(|l| {
            let source = locations.get(&strip_index(&l.address)).cloned();
            let reported = l.outcome.verdict != crate::rules::findings::Verdict::Pass;
            let suppression = suppressions
                .iter()
                .filter(|_| reported)
                .find(|s| s.rule == l.outcome.rule.code() && matches_address(s, &l.address))
                .map(|s| Applied {
                    reason: s.reason.clone(),
                    origin: s.origin.clone(),
                    in_source: s.inline,
                    expired: s.expires.filter(|d| *d < today),
                });
            Note {
                source,
                suppression,
            }
        })
        .collect()
}
