//! Data source `cmk_kms_key_policy`: the KMS key policy Databricks needs.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::rules::ids::{self, Partition};
use crate::rules::kms_policy::{self, PolicyInput};
use crate::rules::{Deployment, KeyFeature};
use crate::support::Clients;
use crate::tfplugin::{AttributePath, Ctx, DataSource, Diagnostics, Val, ValSet};

fn default_true() -> Val<bool> {
    Val::Known(true)
}

/// Generates the KMS key policy that Databricks needs to use a customer-managed key
/// for the given use cases: an administration statement for the key owner, the
/// statements for Databricks' principal, and (for cluster EBS volumes) the statement
/// for the workspace's cross-account role. The result is canonical JSON: the same
/// input gives byte-identical output, so plans stay quiet.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KmsKeyPolicyModel {
    /// The use cases the key serves: `MANAGED_SERVICES` (control-plane data such as
    /// notebooks, secrets and SQL queries), `STORAGE` (the workspace storage bucket and,
    /// optionally, cluster EBS volumes), or both.
    #[schemars(length(min = 1))]
    pub use_cases: ValSet<KeyFeature>,

    /// The 12-digit AWS account that owns the key; its root gets `kms:*` so the key
    /// stays manageable.
    pub aws_account_id: Val<String>,

    /// Your Databricks account id (a UUID). When set, every statement for Databricks'
    /// principal requires `aws:PrincipalTag/DatabricksAccountId` to match it, as
    /// Databricks' security reference architecture recommends.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub databricks_account_id: Val<String>,

    /// The ARN of the workspace's cross-account IAM role. With `STORAGE` and
    /// `reuse_key_for_cluster_volumes`, adds the statement that lets EC2 use the key
    /// for cluster EBS volumes.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub cross_account_role_arn: Val<String>,

    /// Whether the storage key also encrypts the EBS volumes of classic cluster nodes
    /// (only with `STORAGE`).
    #[serde(default = "default_true")]
    pub reuse_key_for_cluster_volumes: Val<bool>,

    /// The AWS partition of the key. Defaults to the partition of the provider's
    /// Databricks deployment (`aws` for commercial, `aws-us-gov` for GovCloud).
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub partition: Val<Partition>,

    /// The principal Databricks uses to reach the key. Defaults to the root of
    /// Databricks' AWS account of the provider's deployment (its `deployment`
    /// argument, or the one its account `host` names): commercial
    /// `arn:aws:iam::414351767826:root`, GovCloud civilian
    /// `arn:aws-us-gov:iam::044793339203:root`, GovCloud DoD
    /// `arn:aws-us-gov:iam::170661010020:root`. A host alone is enough: no
    /// credentials are needed.
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub databricks_principal: Val<String>,

    /// The policy document, as canonical JSON (compact, stable key and statement order).
    #[schemars(extend("x-tf" = ["computed"]))]
    pub json: Val<String>,
}

pub struct KmsKeyPolicy;

fn path(name: &str) -> AttributePath {
    AttributePath::new([name])
}

impl KmsKeyPolicyModel {
    /// The generator's input when every argument is known; an unset
    /// `partition` is the deployment's.
    fn input(&self, deployment: Option<Deployment>) -> Option<PolicyInput> {
        let partition = match &self.partition {
            Val::Known(p) => *p,
            Val::Null => deployment.map_or(Partition::Aws, Deployment::partition),
            Val::Unknown(_) => return None,
        };
        Some(PolicyInput {
            use_cases: self.use_cases.wholly_known()?,
            aws_account_id: self.aws_account_id.known()?.clone(),
            databricks_account_id: known_opt(&self.databricks_account_id)?,
            cross_account_role_arn: known_opt(&self.cross_account_role_arn)?,
            reuse_key_for_cluster_volumes: *self.reuse_key_for_cluster_volumes.known()?,
            partition,
            databricks_principal: known_opt(&self.databricks_principal)?,
            deployment,
        })
    }
}

/// `Some(None)` for null, `Some(Some(v))` for known, `None` for unknown.
fn known_opt<T: Clone>(v: &Val<T>) -> Option<Option<T>> {
    match v {
        Val::Null => Some(None),
        Val::Unknown(_) => None,
        Val::Known(x) => Some(Some(x.clone())),
    }
}

/// Checks the identifiers a generated key policy is built from, each on its
/// argument; shared by `cmk_kms_key_policy` and `cmk_kms_key`. With a known
/// `partition`, the role must be in it.
pub fn check_policy_arguments(
    aws_account_id: &Val<String>,
    databricks_account_id: &Val<String>,
    cross_account_role_arn: &Val<String>,
    partition: Option<Partition>,
    diags: &mut Diagnostics,
) {
    if let Val::Known(a) = aws_account_id {
        if let Err(e) = ids::check_aws_account_id(a) {
            diags.error_at(path("aws_account_id"), "Invalid aws_account_id", e.0);
        }
    }
    if let Val::Known(a) = databricks_account_id {
        if let Err(e) = ids::check_databricks_account_id(a) {
            diags.error_at(
                path("databricks_account_id"),
                "Invalid databricks_account_id",
                e.0,
            );
        }
    }
    if let Val::Known(r) = cross_account_role_arn {
        match ids::parse_role_arn(r) {
            Err(e) => diags.error_at(path("cross_account_role_arn"), "Invalid cross_account_role_arn", e.0),
            Ok(role) if partition.is_some_and(|p| p != role.partition) => diags.error_at(
                path("cross_account_role_arn"),
                "Partition mismatch",
                format!(
                    "The role is in partition {}, the key in {}. Use a role of the key's partition, or set partition = \"{}\".",
                    role.partition,
                    partition.map(|p| p.as_str()).unwrap_or_default(),
                    role.partition
                ),
            ),
            Ok(_) => {}
        }
    }
}

#[async_trait]
impl DataSource for KmsKeyPolicy {
    type Model = KmsKeyPolicyModel;
    type Client = Clients;
    const TYPE_NAME: &'static str = "cmk_kms_key_policy";

    fn validate(&self, c: &KmsKeyPolicyModel, diags: &mut Diagnostics) {
        let partition = c.partition.known().copied();
        check_policy_arguments(
            &c.aws_account_id,
            &c.databricks_account_id,
            &c.cross_account_role_arn,
            partition,
            diags,
        );
        if let Val::Known(p) = &c.databricks_principal {
            match ids::check_principal_arn(p) {
                Err(e) => diags.error_at(
                    path("databricks_principal"),
                    "Invalid databricks_principal",
                    e.0,
                ),
                Ok(pp) if partition.is_some_and(|x| x != pp) => diags.error_at(
                    path("databricks_principal"),
                    "Partition mismatch",
                    format!(
                        "{p:?} is in partition {pp}, but partition is {}.",
                        partition.map(|p| p.as_str()).unwrap_or_default()
                    ),
                ),
                Ok(_) => {}
            }
        }
        if let Some(input) = c.input(None) {
            for a in kms_policy::advice(&input) {
                diags.warning_at(path(a.argument()), a.summary(), a.detail());
            }
        }
    }

    async fn read(
        &self,
        ctx: &Ctx<Clients>,
        mut c: KmsKeyPolicyModel,
        diags: &mut Diagnostics,
    ) -> Option<KmsKeyPolicyModel> {
        let deployment = &ctx.client.deployment;
        let Some(input) = c.input(deployment.deployment) else {
            diags.error(
                "Configuration not known",
                "cmk_kms_key_policy needs every argument known to build the policy.",
            );
            return None;
        };
        let principal = match kms_policy::databricks_principal(&input) {
            Ok(p) => p,
            Err(why) => {
                diags.error_at(
                    path("partition"),
                    "No Databricks principal for this key policy",
                    format!(
                        "{why}. The provider's deployment comes from {}. Set the provider's deployment ({}) or host, or give databricks_principal.\nSee {}.",
                        deployment.source,
                        Deployment::names(),
                        crate::rules::RuleId::KeyPartitionDeployment.rule().docs_path()
                    ),
                );
                return None;
            }
        };
        // The role's partition against the key's, now that an unset
        // partition is the deployment's.
        if let Some(role) = input
            .cross_account_role_arn
            .as_deref()
            .and_then(|r| ids::parse_role_arn(r).ok())
        {
            if role.partition != input.partition {
                diags.error_at(
                    path("cross_account_role_arn"),
                    "Partition mismatch",
                    format!(
                        "The role is in partition {}, the key in {} (the partition of {}). Use a role of the key's partition, or set partition.",
                        role.partition,
                        input.partition,
                        deployment.source
                    ),
                );
                return None;
            }
        }
        let doc = match kms_policy::generate(&input) {
            Ok(d) => d,
            Err(why) => {
                diags.error_at(
                    path("partition"),
                    "No Databricks principal for this key policy",
                    why,
                );
                return None;
            }
        };
        c.partition = Val::Known(input.partition);
        c.databricks_principal = Val::Known(principal);
        c.json = Val::Known(kms_policy::to_canonical_json(&doc));
        Some(c)
    }
}
