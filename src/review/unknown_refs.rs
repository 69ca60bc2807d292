//! Plan mode without the source: a "cannot tell yet" about a value the plan
//! leaves unknown until apply names the references the plan's
//! `configuration` records for it, and how to decide it (`--source`).
//!
//! The references say where a value comes from, not what it is:
//! `replace(aws_iam_role.r.arn, ...)` records the same ones as
//! `aws_iam_role.r.arn`. So they name the unknown; they never decide a
//! rule (only the source's expression does, with `--source`).

use super::analyze::Analysis;
use super::plan::Plan;
use crate::rules::findings::Verdict;
use crate::rules::Fact;

/// References named in one message at most.
const SHOWN: usize = 3;

/// Appends to each "cannot tell yet" on an unknown planned value the
/// references it comes from.
pub fn name_references(plan: &Plan, analysis: &mut Analysis) {
    for l in &mut analysis.outcomes {
        // What only Databricks knows (dashboards, running compute) waits
        // for --live, not for the expression.
        if l.outcome.verdict != Verdict::CannotTell || l.attribute.is_empty() || l.live_decides {
            continue;
        }
        let Some(res) = plan.get(&l.address) else {
            continue;
        };
        if res.origin(&l.attribute).is_some() || !matches!(res.get(&l.attribute), Fact::Unknown) {
            continue;
        }
        let refs = most_specific(plan.refs(res, &l.attribute));
        if refs.is_empty() {
            continue;
        }
        let mut named: Vec<String> = refs
            .iter()
            .take(SHOWN)
            .map(|r| crate::rules::findings::quote(r))
            .collect();
        if refs.len() > SHOWN {
            named.push(format!("{} more", refs.len() - SHOWN));
        }
        l.outcome.message.push_str(&format!(
            "; in the plan its expression refers to {} (--source DIR evaluates the expression from the configuration the plan was made from)",
            named.join(", ")
        ));
    }
}

/// The references without those another one extends: Terraform records
/// `aws_iam_role.r[0].arn` with `aws_iam_role.r[0]` and `aws_iam_role.r`.
fn most_specific(refs: Vec<String>) -> Vec<String> {
    let extends = |a: &str, b: &str| {
        a.len() > b.len() && a.starts_with(b) && matches!(a.as_bytes()[b.len()], b'.' | b'[')
    };
    let mut out: Vec<String> = vec![];
    for r in &refs {
        if refs.iter().any(|o| extends(o, r)) || out.contains(r) {
            continue;
        }
        out.push(r.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_reference_of_each_chain_is_named() {
        let refs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            most_specific(refs(&[
                "aws_iam_role.r[0].arn",
                "aws_iam_role.r[0]",
                "aws_iam_role.r",
                "each.key",
                "aws_kms_key.ws",
            ])),
            refs(&["aws_iam_role.r[0].arn", "each.key", "aws_kms_key.ws"])
        );
        // `aws_kms_key.wsx` does not extend `aws_kms_key.ws`.
        assert_eq!(
            most_specific(refs(&["aws_kms_key.wsx", "aws_kms_key.ws"])),
            refs(&["aws_kms_key.wsx", "aws_kms_key.ws"])
        );
    }
}
