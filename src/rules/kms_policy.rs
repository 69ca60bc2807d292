//! The KMS key policy Databricks needs, generated from the use cases.
//!
//! One generator serves the `cmk_kms_key_policy` data source and (later) the
//! `cmk_kms_key` resource. Output is canonical: fixed key order, fixed
//! statement order, sorted lists, so the same input gives the same bytes.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::catalog::KeyFeature;
use super::deployment::{self, Deployment};
use super::ids::Partition;

/// Statement ids, stable across versions (the evaluator and docs refer to them).
pub mod sid {
    pub const KEY_ADMIN: &str = "EnableKeyOwnerAdministration";
    pub const MANAGED_SERVICES: &str = "AllowDatabricksManagedServices";
    pub const STORAGE: &str = "AllowDatabricksWorkspaceStorage";
    pub const STORAGE_GRANTS: &str = "AllowDatabricksStorageGrants";
    pub const CLUSTER_VOLUMES: &str = "AllowCrossAccountRoleClusterVolumes";
}

/// What the policy is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInput {
    pub use_cases: BTreeSet<KeyFeature>,
    /// The key owner's account (gets `kms:*`).
    pub aws_account_id: String,
    /// Adds `aws:PrincipalTag/DatabricksAccountId` conditions.
    pub databricks_account_id: Option<String>,
    /// The workspace's cross-account role, for the EBS statement.
    pub cross_account_role_arn: Option<String>,
    pub reuse_key_for_cluster_volumes: bool,
    pub partition: Partition,
    /// An explicit principal for Databricks; `None`: the deployment's.
    pub databricks_principal: Option<String>,
    /// The Databricks deployment the key serves (`None`: not named; then
    /// only a partition with one deployment, `aws`, decides it).
    pub deployment: Option<Deployment>,
}

/// Databricks' principal for a policy: the one given, else the
/// deployment's (which must be of the key's partition), else the only
/// deployment of the key's partition. An error says why none can be
/// chosen and how to name it.
pub fn databricks_principal(input: &PolicyInput) -> Result<String, String> {
    if let Some(p) = &input.databricks_principal {
        return Ok(p.clone());
    }
    let p = input.partition;
    match input.deployment {
        Some(d) => match deployment::partition_mismatch(d, p) {
            Some(why) => Err(format!("{why}. Create the key in {}'s partition, or name the deployment the key is for.", d)),
            None => Ok(d.principal()),
        },
        None => match Deployment::in_partition(p).as_slice() {
            [d] => Ok(d.principal()),
            [] => Err(format!("no Databricks on AWS deployment uses partition {p}, so the policy has no Databricks principal to name")),
            several => Err(format!(
                "a key in partition {p} may serve {}, and each has its own Databricks principal; name the deployment: the provider's deployment argument ({}) or its host",
                several
                    .iter()
                    .map(|d| format!("{d} ({})", d.principal()))
                    .collect::<Vec<_>>()
                    .join(" or "),
                several.iter().map(|d| format!("\"{}\"", d.name())).collect::<Vec<_>>().join(" or ")
            )),
        },
    }
}

/// Actions each statement grants (sorted as they appear in the document).
pub const MANAGED_SERVICES_ACTIONS: [&str; 2] = ["kms:Decrypt", "kms:Encrypt"];
pub const STORAGE_ACTIONS: [&str; 5] = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
];
pub const STORAGE_GRANT_ACTIONS: [&str; 3] =
    ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"];
/// Of those, what Databricks' services cannot work without (CMK015, an
/// error); the rest of the statements above is what Databricks' guide adds
/// (CMK021, a warning: Databricks' security reference architecture runs
/// without the grants statement).
pub const MANAGED_SERVICES_REQUIRED: [&str; 2] = ["kms:Decrypt", "kms:Encrypt"];
pub const STORAGE_REQUIRED: [&str; 3] = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"];
pub const CLUSTER_VOLUME_ACTIONS: [&str; 4] = [
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKey*",
];

fn statement(sid: &str, principal: &str, actions: &[&str], condition: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("Sid".into(), json!(sid));
    m.insert("Effect".into(), json!("Allow"));
    m.insert("Principal".into(), json!({ "AWS": principal }));
    m.insert("Action".into(), json!(actions));
    m.insert("Resource".into(), json!("*"));
    if let Some(c) = condition {
        m.insert("Condition".into(), c);
    }
    Value::Object(m)
}

/// The condition block for the Databricks principal, merged with `extra`.
fn databricks_condition(input: &PolicyInput, extra: Option<(&str, &str, Value)>) -> Option<Value> {
    let mut cond = Map::new();
    if let Some((op, key, v)) = extra {
        cond.insert(op.to_string(), json!({ key: v }));
    }
    if let Some(acct) = &input.databricks_account_id {
        cond.insert(
            "StringEquals".into(),
            json!({ "aws:PrincipalTag/DatabricksAccountId": [acct] }),
        );
    }
    // Condition operators in a fixed (sorted) order.
    let sorted: Map<String, Value> = {
        let mut keys: Vec<_> = cond.keys().cloned().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| (k.clone(), cond[&k].clone()))
            .collect()
    };
    (!sorted.is_empty()).then_some(Value::Object(sorted))
}

/// Whether the policy for this input includes the EBS statement.
pub fn covers_cluster_volumes(input: &PolicyInput) -> bool {
    input.use_cases.contains(&KeyFeature::Storage)
        && input.reuse_key_for_cluster_volumes
        && input.cross_account_role_arn.is_some()
}

/// Generates the policy document; an error when Databricks' principal
/// cannot be chosen ([`databricks_principal`]).
pub fn generate(input: &PolicyInput) -> Result<Value, String> {
    let p = input.partition;
    let principal = databricks_principal(input)?;
    let mut statements = vec![statement(
        sid::KEY_ADMIN,
        &format!("arn:{p}:iam::{}:root", input.aws_account_id),
        &["kms:*"],
        None,
    )];
    if input.use_cases.contains(&KeyFeature::ManagedServices) {
        statements.push(statement(
            sid::MANAGED_SERVICES,
            &principal,
            &MANAGED_SERVICES_ACTIONS,
            databricks_condition(input, None),
        ));
    }
    if input.use_cases.contains(&KeyFeature::Storage) {
        statements.push(statement(
            sid::STORAGE,
            &principal,
            &STORAGE_ACTIONS,
            databricks_condition(input, None),
        ));
        statements.push(statement(
            sid::STORAGE_GRANTS,
            &principal,
            &STORAGE_GRANT_ACTIONS,
            databricks_condition(
                input,
                Some(("Bool", "kms:GrantIsForAWSResource", json!("true"))),
            ),
        ));
        if let (true, Some(role)) = (covers_cluster_volumes(input), &input.cross_account_role_arn) {
            statements.push(statement(
                sid::CLUSTER_VOLUMES,
                role,
                &CLUSTER_VOLUME_ACTIONS,
                Some(json!({ "ForAnyValue:StringLike": { "kms:ViaService": "ec2.*.amazonaws.com" } })),
            ));
        }
    }
    let mut doc = Map::new();
    doc.insert("Version".into(), json!("2012-10-17"));
    doc.insert("Id".into(), json!("databricks-customer-managed-key"));
    doc.insert("Statement".into(), Value::Array(statements));
    Ok(Value::Object(doc))
}

/// The document as text: compact, stable key order. Compact keeps state and
/// plans small (Terraform stores one copy per data source instance); format it
/// with `jsonencode(jsondecode(...))` or any JSON tool to read it.
pub fn to_canonical_json(doc: &Value) -> String {
    serde_json::to_string(doc).expect("a JSON value serializes")
}

/// Advice about an input that is valid but probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAdvice {
    /// Cluster volumes will use the key, but no cross-account role was given:
    /// the EBS statement is missing and classic clusters cannot start.
    ClusterVolumesWithoutRole,
    /// A cross-account role was given, but no statement uses it.
    RoleUnused { reason: &'static str },
}

impl PolicyAdvice {
    /// The argument the advice is about (the same name on the policy data
    /// source and on `cmk_kms_key`).
    pub fn argument(&self) -> &'static str {
        match self {
            PolicyAdvice::ClusterVolumesWithoutRole => "reuse_key_for_cluster_volumes",
            PolicyAdvice::RoleUnused { .. } => "cross_account_role_arn",
        }
    }

    /// The rule a warning is about, when one is: the EBS statement is
    /// CMK016's.
    pub fn rule(&self) -> Option<super::RuleId> {
        match self {
            PolicyAdvice::ClusterVolumesWithoutRole => Some(super::RuleId::PolicyClusterVolumes),
            PolicyAdvice::RoleUnused { .. } => None,
        }
    }

    /// The warning's summary line.
    pub fn summary(&self) -> String {
        match self.rule() {
            Some(r) => format!("{}: key policy may not be what you meant", r.code()),
            None => "Key policy may not be what you meant".to_string(),
        }
    }

    /// The warning's detail: the message, and the rule's page when one is
    /// about it.
    pub fn detail(&self) -> String {
        match self.rule() {
            Some(r) => format!("{}\nSee {}.", self.message(), r.rule().docs_path()),
            None => self.message(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            PolicyAdvice::ClusterVolumesWithoutRole => "The key will also encrypt cluster EBS volumes (STORAGE with reuse_key_for_cluster_volumes = true), but no cross_account_role_arn was given, so the policy has no statement for the workspace's cross-account role and classic clusters cannot attach encrypted volumes. Set cross_account_role_arn, or set reuse_key_for_cluster_volumes = false.".to_string(),
            PolicyAdvice::RoleUnused { reason } => format!("cross_account_role_arn is not used: {reason}."),
        }
    }
}

/// What to warn about for a given input.
pub fn advice(input: &PolicyInput) -> Vec<PolicyAdvice> {
    let storage = input.use_cases.contains(&KeyFeature::Storage);
    let mut out = vec![];
    if storage && input.reuse_key_for_cluster_volumes && input.cross_account_role_arn.is_none() {
        out.push(PolicyAdvice::ClusterVolumesWithoutRole);
    }
    if input.cross_account_role_arn.is_some() {
        if !storage {
            out.push(PolicyAdvice::RoleUnused {
                reason: "the EBS statement needs the STORAGE use case",
            });
        } else if !input.reuse_key_for_cluster_volumes {
            out.push(PolicyAdvice::RoleUnused {
                reason: "reuse_key_for_cluster_volumes is false",
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(use_cases: &[KeyFeature]) -> PolicyInput {
        PolicyInput {
            use_cases: use_cases.iter().copied().collect(),
            aws_account_id: "123456789012".into(),
            databricks_account_id: None,
            cross_account_role_arn: None,
            reuse_key_for_cluster_volumes: true,
            partition: Partition::Aws,
            databricks_principal: None,
            deployment: None,
        }
    }

    fn sids(doc: &Value) -> Vec<String> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn managed_services_only() {
        let doc = generate(&input(&[KeyFeature::ManagedServices])).unwrap();
        assert_eq!(sids(&doc), [sid::KEY_ADMIN, sid::MANAGED_SERVICES]);
        assert_eq!(
            doc["Statement"][1]["Principal"]["AWS"],
            "arn:aws:iam::414351767826:root"
        );
        assert_eq!(
            doc["Statement"][1]["Action"],
            json!(["kms:Decrypt", "kms:Encrypt"])
        );
        assert!(doc["Statement"][1].get("Condition").is_none());
        assert_eq!(
            doc["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:root"
        );
    }

    #[test]
    fn storage_with_role_tags_and_gov_partition() {
        let mut i = input(&[KeyFeature::Storage, KeyFeature::ManagedServices]);
        i.partition = Partition::AwsUsGov;
        i.deployment = Some(Deployment::GovCloudCivilian);
        i.databricks_account_id = Some("0d26daa6-5e44-4c97-a497-ef015f91254a".into());
        i.cross_account_role_arn = Some("arn:aws-us-gov:iam::123456789012:role/dbx".into());
        let doc = generate(&i).unwrap();
        assert_eq!(
            sids(&doc),
            [
                sid::KEY_ADMIN,
                sid::MANAGED_SERVICES,
                sid::STORAGE,
                sid::STORAGE_GRANTS,
                sid::CLUSTER_VOLUMES
            ]
        );
        assert_eq!(
            doc["Statement"][2]["Principal"]["AWS"],
            "arn:aws-us-gov:iam::044793339203:root"
        );
        assert!(
            !to_canonical_json(&doc).contains("414351767826"),
            "nothing of Databricks' commercial account in a GovCloud key"
        );
        let grants = &doc["Statement"][3]["Condition"];
        assert_eq!(grants["Bool"]["kms:GrantIsForAWSResource"], "true");
        assert_eq!(
            grants["StringEquals"]["aws:PrincipalTag/DatabricksAccountId"],
            json!(["0d26daa6-5e44-4c97-a497-ef015f91254a"])
        );
        let ebs = &doc["Statement"][4];
        assert_eq!(
            ebs["Principal"]["AWS"],
            "arn:aws-us-gov:iam::123456789012:role/dbx"
        );
        assert_eq!(
            ebs["Condition"]["ForAnyValue:StringLike"]["kms:ViaService"],
            "ec2.*.amazonaws.com"
        );
        assert!(
            ebs["Condition"].get("StringEquals").is_none(),
            "the role is not the Databricks principal"
        );
    }

    #[test]
    fn no_ebs_statement_without_reuse_and_advice_says_why() {
        let mut i = input(&[KeyFeature::Storage]);
        i.cross_account_role_arn = Some("arn:aws:iam::123456789012:role/dbx".into());
        i.reuse_key_for_cluster_volumes = false;
        assert!(!sids(&generate(&i).unwrap()).contains(&sid::CLUSTER_VOLUMES.to_string()));
        assert_eq!(
            advice(&i),
            [PolicyAdvice::RoleUnused {
                reason: "reuse_key_for_cluster_volumes is false"
            }]
        );
        let j = input(&[KeyFeature::Storage]);
        assert_eq!(advice(&j), [PolicyAdvice::ClusterVolumesWithoutRole]);
    }

    #[test]
    fn output_is_byte_identical_for_the_same_input() {
        let mut i = input(&[KeyFeature::Storage, KeyFeature::ManagedServices]);
        i.databricks_account_id = Some("0d26daa6-5e44-4c97-a497-ef015f91254a".into());
        let a = to_canonical_json(&generate(&i).unwrap());
        let b = to_canonical_json(&generate(&i.clone()).unwrap());
        assert_eq!(a, b);
        assert!(a.starts_with("{\"Version\":\"2012-10-17\",\"Id\":"), "{a}");
    }

    #[test]
    fn each_govcloud_shard_gets_its_own_principal_and_none_is_guessed() {
        let mut i = input(&[KeyFeature::ManagedServices, KeyFeature::Storage]);
        i.partition = Partition::AwsUsGov;
        // GovCloud without a named shard: refused, naming both principals.
        let e = generate(&i).unwrap_err();
        assert!(
            e.contains("arn:aws-us-gov:iam::044793339203:root")
                && e.contains("arn:aws-us-gov:iam::170661010020:root")
                && e.contains("\"govcloud-dod\""),
            "{e}"
        );
        for (d, acct) in [
            (Deployment::GovCloudCivilian, "044793339203"),
            (Deployment::GovCloudDod, "170661010020"),
        ] {
            i.deployment = Some(d);
            let text = to_canonical_json(&generate(&i).unwrap());
            assert!(
                text.contains(&format!("arn:aws-us-gov:iam::{acct}:root")),
                "{text}"
            );
            for other in crate::rules::deployment::DEPLOYMENTS.iter() {
                if other.databricks_aws_account != acct {
                    assert!(!text.contains(other.databricks_aws_account), "{d}: {text}");
                }
            }
        }
        // A commercial deployment with a GovCloud key: refused.
        i.deployment = Some(Deployment::Commercial);
        let e = generate(&i).unwrap_err();
        assert!(
            e.contains("partition aws-us-gov") && e.contains("commercial"),
            "{e}"
        );
        // The explicit principal still wins.
        i.databricks_principal = Some("arn:aws-us-gov:iam::111122223333:root".into());
        assert!(to_canonical_json(&generate(&i).unwrap()).contains("111122223333"));
    }
}
