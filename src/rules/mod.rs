//! The domain brain: Databricks' customer-managed key rules as pure functions
//! over plain data. No I/O, no async, no Terraform types. Plan diagnostics,
//! data sources, functions, the review command and the docs all read the
//! rules here.
//!
//! # Entry points
//!
//! Callers build facts ([`facts`]) from what they know (unknown values are
//! [`Fact::Unknown`]) and call one function per kind of object. Each returns
//! one [`Outcome`] per rule and subject: `Pass`, `Fail` (with a severity and
//! a message naming the values) or `CannotTell` (a needed fact is unknown:
//! never an error, never a pass).
//!
//! - [`check_key_configuration`]`(&KeyConfigFacts) -> Vec<Outcome>`:
//!   CMK002 (key_region vs ARN), CMK006, CMK017, CMK018.
//! - [`check_kms_key`]`(&KmsKeyFacts, &PolicyNeeds) -> Vec<Outcome>`:
//!   CMK003, CMK004, CMK015, CMK016 (the key policy through [`iam`]).
//! - [`check_binding`]`(&WorkspaceFacts, &BindingChange, Option<&KeyConfigFacts>
//!   /* managed services */, Option<&KeyConfigFacts> /* storage */,
//!   &Requirements) -> Vec<Outcome>`: CMK001, CMK002, CMK005, CMK007–CMK014, CMK019.
//! - [`check_key_partition`]`(Option<Deployment>, Option<Partition>) ->
//!   Option<Outcome>`: CMK022 (the key's partition, [`key_partition_of`],
//!   against the Databricks deployment, [`deployment`]).
//! - [`coverage::coverage`]`(&WorkspaceFacts, &PlannedKeys) -> Vec<Coverage>`:
//!   every catalog data type as Protected / PartlyProtected / NotProtected /
//!   CannotTellYet with the reason and the rule behind it.
//! - [`docs::rule_pages`]`() -> Vec<(String, String)>`: the rule pages (`docs/guides/cmkxxx.md`, `docs/guides/rules.md`).
//!
//! A finding's [`Subject`] names the fact it is about; each Terraform object
//! maps it to its own attribute path.

pub mod catalog;
pub mod checks;
pub mod compute;
pub mod coverage;
pub mod deployment;
pub mod docs;
pub mod facts;
pub mod findings;
pub mod iam;
pub mod ids;
pub mod kms_policy;
pub mod unknown;

#[cfg(test)]
mod iam_fuzz;

pub use catalog::{DataType, KeyFeature};
pub use checks::{
    check_binding, check_key_configuration, check_key_partition, check_kms_key, key_partition_of,
    PolicyNeeds,
};
pub use coverage::{coverage, Coverage, PlannedKeys, Protection};
pub use deployment::Deployment;
pub use facts::Fact;
pub use findings::{Outcome, RuleId, Severity, Subject, Verdict, RULES};
