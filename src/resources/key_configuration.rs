//! Resource `cmk_key_configuration`: a Databricks key configuration
//! (`customer-managed-keys` of the Account API), checked at plan time.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cloud::databricks::{
    AwsKeyInfo, CreateCustomerManagedKey, CustomerManagedKey, DatabricksError,
};
use crate::rules::facts::KeyConfigFacts;
use crate::rules::{self, ids, KeyFeature, Subject};
use crate::support::{
    api_error, databricks, fact, fact_opt, key_config_id, report, report_deferred, Clients,
};
use crate::tfplugin::value::Refinements;
use crate::tfplugin::{
    AttributePath, Ctx, Diagnostics, PlanChange, Resource, Timeouts, Upgrader, Val, ValSet,
};

/// The AWS KMS key of a key configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AwsKeyInfoModel {
    /// The ARN of the KMS key (`arn:aws:kms:REGION:ACCOUNT:key/KEY_ID`; not an alias ARN).
    #[schemars(extend("x-tf" = ["required"]))]
    pub key_arn: Val<String>,
    /// An alias of the key, e.g. `alias/databricks`, recorded with the configuration.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub key_alias: Val<String>,
    /// The key's region. Defaults to the region in `key_arn`, which must be the workspace's region.
    #[schemars(extend("x-tf" = ["optional", "computed"]))]
    pub key_region: Val<String>,
    /// With `STORAGE`: whether the key also encrypts the EBS volumes of classic
    /// cluster nodes. Databricks treats an omitted value as true. Set `false` on a
    /// configuration bound to a SERVERLESS workspace, where EBS keys never apply (CMK007,
    /// an error); `true` without `STORAGE` is an error too (CMK006).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub reuse_key_for_cluster_volumes: Val<bool>,
}

/// A Databricks key configuration: a KMS key registered with the Databricks
/// account for the `MANAGED_SERVICES` and/or `STORAGE` use cases, ready to be bound
/// to workspaces with `cmk_workspace_binding`. Databricks cannot change a key
/// configuration, so any change replaces it. At plan time the provider checks the
/// use cases, the ARN and the region, and refuses what Databricks would refuse.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyConfigurationModel {
    /// The key configuration id (same as `customer_managed_key_id`).
    #[schemars(extend("x-tf" = ["computed"]))]
    pub id: Val<String>,
    /// The use cases: `MANAGED_SERVICES` (control-plane data), `STORAGE` (the
    /// workspace storage bucket and, optionally, cluster EBS volumes), or both.
    #[schemars(length(min = 1), extend("x-tf" = ["required", "requires_replace"]))]
    pub use_cases: ValSet<KeyFeature>,
    /// The AWS KMS key.
    #[schemars(extend("x-tf" = ["required", "requires_replace"]))]
    pub aws_key_info: Val<AwsKeyInfoModel>,
    /// The bare key configuration id to give `cmk_workspace_binding` (or the official
    /// provider's `*_customer_managed_key_id` arguments).
    #[schemars(extend("x-tf" = ["computed"]))]
    pub customer_managed_key_id: Val<String>,
    /// The Databricks account that holds the configuration.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub account_id: Val<String>,
    /// When Databricks created the configuration, in epoch milliseconds.
    #[schemars(extend("x-tf" = ["computed"]))]
    pub creation_time: Val<i64>,
    /// How long creating (`create`), refreshing (`read`) and deleting (`delete`) the
    /// configuration may take, every Account API call and retry in it, as durations
    /// such as `"30m"`, `"90s"` or `"1h30m"`. Each replaces the provider's
    /// `retry_timeout_seconds` for this configuration. Every argument replaces the
    /// configuration, so `update` bounds nothing here.
    #[serde(default)]
    #[schemars(extend("x-tf" = ["block"]))]
    pub timeouts: Val<Timeouts>,
}

pub struct KeyConfiguration;

/// How `cmk_key_configuration` is imported (the `## Import` section of its
/// page), as [`KeyConfiguration`]'s `import` does it.
pub const IMPORT: crate::support::ImportDoc = crate::support::ImportDoc {
    label: "workspace",
    ids: &[
        (
            "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "the bare key configuration id (`customer_managed_key_id`)",
        ),
        (
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "the composite `<account_id>/<customer_managed_key_id>`, as the official \
             `databricks_mws_customer_managed_keys` uses; the account must be the provider's \
             `account_id`",
        ),
    ],
    reads: "Import reads the key configuration from the Databricks Account API of the \
            provider's account: `use_cases`, `aws_key_info` (`key_arn`, `key_alias`, \
            `key_region`, or the ARN's region, and `reuse_key_for_cluster_volumes`), \
            `customer_managed_key_id`, `account_id` and `creation_time`. The state's `id` is \
            the bare id, whichever form was imported.",
};

fn path(names: &[&str]) -> AttributePath {
    AttributePath::new(names.iter().copied())
}

/// Where each fact lives on this resource.
fn path_of(s: Subject) -> Option<AttributePath> {
    Some(match s {
        Subject::KeyConfigUseCases => path(&["use_cases"]),
        Subject::KeyArn
        | Subject::KeyPolicy
        | Subject::KeyState
        | Subject::KeySpec
        | Subject::KeyUsage => path(&["aws_key_info", "key_arn"]),
        Subject::KeyRegion => path(&["aws_key_info", "key_region"]),
        Subject::ReuseKeyForClusterVolumes => {
            path(&["aws_key_info", "reuse_key_for_cluster_volumes"])
        }
        _ => return None,
    })
}

/// CMK022: the key's partition (from its ARN, a promised ARN's start, or
/// `key_region`) against the provider's Databricks deployment.
fn partition_rule(ctx: &Ctx<Clients>, c: &KeyConfigurationModel) -> Vec<rules::Outcome> {
    let arn = c.key_arn();
    let region = match &c.aws_key_info {
        Val::Known(i) => i.key_region.known().cloned(),
        _ => None,
    };
    rules::check_key_partition(
        ctx.client.deployment.deployment,
        rules::key_partition_of(
            arn.known().map(|a| a.as_str()),
            arn.prefix(),
            region.as_deref(),
        ),
    )
    .into_iter()
    .collect()
}

/// The rules the KMS key's verification decides (state, spec, usage and
/// policy), as waiting for apply: the key ARN or the use cases are not known.
fn key_verification_waits() -> Vec<rules::Outcome> {
    use rules::{Outcome, RuleId};
    let why = "the KMS key is verified once its ARN and the use cases are known";
    [
        (RuleId::SymmetricKey, Subject::KeySpec),
        (RuleId::KeyUsable, Subject::KeyState),
        (RuleId::PolicyDatabricksGrants, Subject::KeyPolicy),
        (RuleId::PolicyClusterVolumes, Subject::KeyPolicy),
    ]
    .into_iter()
    .map(|(r, s)| Outcome::cannot_tell(r, s, why))
    .collect()
}

impl KeyConfigurationModel {
    fn key_arn(&self) -> Val<&String> {
        match &self.aws_key_info {
            Val::Known(i) => i.key_arn.as_ref(),
            Val::Unknown(r) => Val::Unknown(r.clone()),
            Val::Null => Val::Null,
        }
    }

    fn facts(&self) -> KeyConfigFacts {
        let info = self.aws_key_info.known();
        KeyConfigFacts {
            id: fact(&self.customer_managed_key_id),
            use_cases: self
                .use_cases
                .wholly_known()
                .map(|s| s.iter().map(|f| f.as_str().to_string()).collect())
                .into(),
            key_arn: info.map(|i| fact(&i.key_arn)).unwrap_or_default(),
            key_arn_prefix: info.and_then(|i| i.key_arn.prefix()).map(str::to_string),
            key_region: info.map(|i| fact_opt(&i.key_region)).unwrap_or_default(),
            reuse_key_for_cluster_volumes: info
                .map(|i| fact_opt(&i.reuse_key_for_cluster_volumes))
                .unwrap_or_default(),
        }
    }

    fn from_api(
        k: &CustomerManagedKey,
        previous: Option<&KeyConfigurationModel>,
    ) -> KeyConfigurationModel {
        let prev_info = previous.and_then(|p| p.aws_key_info.known());
        let info = k.aws_key_info.as_ref().map(|i| AwsKeyInfoModel {
            key_arn: Val::Known(i.key_arn.clone()),
            key_alias: i.key_alias.clone().into(),
            key_region: i
                .key_region
                .clone()
                .or_else(|| ids::parse_key_arn(&i.key_arn).ok().map(|a| a.region))
                .into(),
            // Keep "omitted" as omitted when Databricks answers the default back.
            reuse_key_for_cluster_volumes: match (
                i.reuse_key_for_cluster_volumes,
                prev_info.map(|p| &p.reuse_key_for_cluster_volumes),
            ) {
                (Some(true), Some(Val::Null)) => Val::Null,
                (v, _) => v.into(),
            },
        });
        KeyConfigurationModel {
            id: Val::Known(k.customer_managed_key_id.clone()),
            use_cases: Val::set_of(k.use_cases.iter().copied()),
            aws_key_info: info.into(),
            customer_managed_key_id: Val::Known(k.customer_managed_key_id.clone()),
            account_id: Val::Known(k.account_id.clone()),
            creation_time: Val::Known(k.creation_time),
            // Not Databricks': the configuration's (or the state's) block.
            timeouts: previous.map(|p| p.timeouts.clone()).unwrap_or_default(),
        }
    }
}

/// Verifies the KMS key for the use cases through AWS (state, spec, usage,
/// region, and the policy through the rule engine), when AWS is configured.
async fn verify_kms_key(ctx: &Ctx<Clients>, c: &KeyConfigurationModel, diags: &mut Diagnostics) {
    let (Some(info), Some(use_cases)) = (c.aws_key_info.known(), c.use_cases.wholly_known()) else {
        return;
    };
    let Some(arn) = info.key_arn.known() else {
        return;
    };
    if !ctx.client.aws_configured() {
        diags.warning_at(
            path(&["aws_key_info", "key_arn"]),
            "KMS key not verified",
            "No AWS credentials are configured for the provider (aws_region, aws_profile, kms_endpoint or the AWS_* variables), so the key's state, type, region and policy were not checked at plan time.",
        );
        return;
    }
    let kms = match ctx.client.kms().await {
        Ok(k) => k,
        Err(e) => {
            diags.warning_at(
                path(&["aws_key_info", "key_arn"]),
                "KMS key not verified",
                format!("The KMS client could not be built: {e}"),
            );
            return;
        }
    };
    let cluster_volumes = use_cases.contains(&KeyFeature::Storage)
        && info
            .reuse_key_for_cluster_volumes
            .known()
            .copied()
            .unwrap_or(true);
    let mut needs =
        crate::cloud::kms::needs_for(use_cases.clone(), cluster_volumes, None, None, None);
    needs.deployment = ctx.client.deployment.deployment;
    let outcomes = tokio::select! {
        o = kms.verify_key(arn, &needs) => o,
        _ = ctx.cancel.cancelled() => return,
    };
    report(&outcomes, path_of, diags);
}

/// The pauses (ms) before each new GET of a key configuration created
/// moments ago that reads as missing (7.5 s in all), before it is taken as
/// deleted outside Terraform.
const GONE_AFTER_CREATE_RETRIES: [u64; 4] = [500, 1000, 2000, 4000];
/// What "moments ago" is, by its `creation_time`: two minutes.
const JUST_CREATED_MS: i64 = 2 * 60 * 1000;

/// Whether the configuration was created within [`JUST_CREATED_MS`].
fn just_created(state: &KeyConfigurationModel) -> bool {
    let Some(created) = state.creation_time.known() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (now - created).abs() < JUST_CREATED_MS
}

#[async_trait]
impl Resource for KeyConfiguration {
    type Model = KeyConfigurationModel;
    type Client = Clients;
    const TYPE_NAME: &'static str = "cmk_key_configuration";
    /// 1: the `timeouts` block.
    const SCHEMA_VERSION: i64 = 1;

    fn upgraders(&self) -> Vec<Upgrader> {
        vec![crate::support::timeouts_upgrader(0)]
    }

    fn validate(&self, c: &KeyConfigurationModel, diags: &mut Diagnostics) {
        report(&rules::check_key_configuration(&c.facts()), path_of, diags);
    }

    async fn plan(
        &self,
        ctx: &Ctx<Clients>,
        change: &mut PlanChange<KeyConfigurationModel>,
        diags: &mut Diagnostics,
    ) {
        // A new configuration (they never change in place): check the real key.
        if change.prior.is_none() {
            // The rules a value unknown until apply keeps from deciding now
            // (validate has reported what failed).
            let c = &change.config;
            let mut waiting = rules::check_key_configuration(&c.facts());
            let partition = partition_rule(ctx, c);
            report(&partition, path_of, diags);
            waiting.extend(partition);
            // A key ARN promised to start as a key's (`cmk_kms_key` plans its
            // `arn` so) names a key this plan creates: its own plan checked
            // its type and policy; apply verifies it again.
            let promised = c.key_arn().prefix().and_then(ids::key_arn_prefix).is_some();
            let key_waits =
                (c.key_arn().is_unknown() && !promised) || c.use_cases.wholly_known().is_none();
            if key_waits && ctx.client.aws_configured() {
                waiting.extend(key_verification_waits());
            }
            report_deferred(&waiting, path_of, |_| None, diags);
            verify_kms_key(ctx, c, diags).await;
            // Known at plan: the provider's account. A binding in the same plan
            // then sees `"${account_id}/${customer_managed_key_id}"` start with
            // a known "<account_id>/" (CMK014 at plan).
            if let Ok(client) = ctx.client.databricks().await {
                change.planned.account_id = Val::Known(client.config().account_id.to_string());
            }
            // Promised to Terraform: the new id is never null.
            let promise = Refinements {
                not_null: true,
                string_prefix: None,
            };
            change.planned.id = Val::Unknown(promise.clone());
            change.planned.customer_managed_key_id = Val::Unknown(promise);
        }
        // Databricks takes the key region from the ARN: say so in the plan
        // (from the ARN's promised start when the ARN itself is not known).
        if let Val::Known(info) = &mut change.planned.aws_key_info {
            if info.key_region.is_unknown() || info.key_region.is_null() {
                let arn = match info.key_arn.known() {
                    Some(a) => ids::parse_key_arn(a).ok(),
                    None => info.key_arn.prefix().and_then(ids::key_arn_prefix),
                };
                if let Some(arn) = arn {
                    info.key_region = Val::Known(arn.region);
                }
            }
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<Clients>,
        planned: KeyConfigurationModel,
        diags: &mut Diagnostics,
    ) -> Option<KeyConfigurationModel> {
        // What the plan could not decide is decided now, before anything
        // is created: the values are known.
        report(
            &rules::check_key_configuration(&planned.facts()),
            path_of,
            diags,
        );
        report(&partition_rule(ctx, &planned), path_of, diags);
        if ctx.client.aws_configured() {
            verify_kms_key(ctx, &planned, diags).await;
        }
        if diags.has_errors() {
            return None;
        }
        let client = databricks(ctx, diags).await?;
        let info = planned.aws_key_info.known()?;
        let req = CreateCustomerManagedKey {
            use_cases: planned.use_cases.wholly_known()?.into_iter().collect(),
            aws_key_info: AwsKeyInfo {
                key_arn: info.key_arn.known()?.clone(),
                key_alias: info.key_alias.known().cloned(),
                key_region: info.key_region.known().cloned(),
                reuse_key_for_cluster_volumes: info.reuse_key_for_cluster_volumes.known().copied(),
            },
        };
        match client.create_customer_managed_key(&req, &ctx.cancel).await {
            Ok(k) => Some(KeyConfigurationModel::from_api(&k, Some(&planned))),
            Err(e) => {
                api_error(diags, "creating the key configuration", &e);
                None
            }
        }
    }

    async fn read(
        &self,
        ctx: &Ctx<Clients>,
        state: KeyConfigurationModel,
        diags: &mut Diagnostics,
    ) -> Option<KeyConfigurationModel> {
        let Some(client) = databricks(ctx, diags).await else {
            return Some(state);
        };
        let Some(id) = key_config_id(
            state.customer_managed_key_id.known()?,
            "customer_managed_key_id",
            diags,
        ) else {
            return Some(state);
        };
        let mut answer = client.get_customer_managed_key(&id, &ctx.cancel).await;
        // A key configuration created moments ago can read as missing for a
        // while: the read is retried (bounded) before it is dropped.
        if answer.as_ref().is_err_and(|e| e.is_gone()) && just_created(&state) {
            for pause in GONE_AFTER_CREATE_RETRIES {
                if ctx.is_cancelled() || !answer.as_ref().is_err_and(|e| e.is_gone()) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                answer = client.get_customer_managed_key(&id, &ctx.cancel).await;
            }
        }
        match answer {
            Ok(k) => Some(KeyConfigurationModel::from_api(&k, Some(&state))),
            Err(e) if e.is_gone() => {
                diags.warning(
                    "Key configuration deleted outside Terraform",
                    format!("Databricks no longer has key configuration {id}; Terraform will plan to create it again."),
                );
                None
            }
            Err(e) => {
                api_error(diags, "reading the key configuration", &e);
                Some(state)
            }
        }
    }

    async fn update(
        &self,
        _ctx: &Ctx<Clients>,
        _prior: KeyConfigurationModel,
        planned: KeyConfigurationModel,
        _diags: &mut Diagnostics,
    ) -> Option<KeyConfigurationModel> {
        // Every argument replaces; nothing changes in place.
        Some(planned)
    }

    async fn delete(
        &self,
        ctx: &Ctx<Clients>,
        prior: KeyConfigurationModel,
        diags: &mut Diagnostics,
    ) {
        let Some(id) = prior.customer_managed_key_id.known() else {
            return;
        };
        let Some(id) = key_config_id(id, "customer_managed_key_id", diags) else {
            return;
        };
        let Some(client) = databricks(ctx, diags).await else {
            return;
        };
        match client.delete_customer_managed_key(&id, &ctx.cancel).await {
            Ok(()) => {}
            Err(e) if e.is_gone() => {}
            Err(e) => {
                let hint = if matches!(e, DatabricksError::Api { .. }) {
                    "\n\nA key configuration bound to a workspace cannot be deleted; Databricks cannot unbind a storage key."
                } else {
                    ""
                };
                diags.error(
                    "Databricks Account API: deleting the key configuration failed",
                    format!("{e}{hint}"),
                );
            }
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<Clients>,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<KeyConfigurationModel> {
        let (account, key_id) = match ids::KeyConfigId::parse_import(id) {
            Ok(x) => x,
            Err(e) => {
                diags.error(
                    "Invalid import id",
                    format!("{e}. Import with the customer_managed_key_id, or <account_id>/<customer_managed_key_id>."),
                );
                return None;
            }
        };
        let client = databricks(ctx, diags).await?;
        if let Some(a) = account.filter(|a| *a != client.config().account_id) {
            diags.error(
                "Invalid import id",
                format!(
                    "The import id names account {a}, but the provider manages account {}.",
                    client.config().account_id
                ),
            );
            return None;
        }
        match client.get_customer_managed_key(&key_id, &ctx.cancel).await {
            Ok(k) => Some(KeyConfigurationModel::from_api(&k, None)),
            Err(e) => {
                api_error(diags, &format!("importing key configuration {id:?}"), &e);
                None
            }
        }
    }

    /// `moved { from = databricks_mws_customer_managed_keys.x  to = cmk_key_configuration.x }`
    fn move_from(
        &self,
        source_provider: &str,
        source_type: &str,
        _source_version: i64,
        s: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<KeyConfigurationModel> {
        if source_type != "databricks_mws_customer_managed_keys"
            || !source_provider.ends_with("databricks/databricks")
        {
            diags.error(
                "Move not supported",
                format!("cmk_key_configuration takes state moved from databricks_mws_customer_managed_keys of databricks/databricks, not {source_type} of {source_provider}."),
            );
            return None;
        }
        let str_of =
            |v: &serde_json::Value| v.as_str().filter(|x| !x.is_empty()).map(str::to_string);
        let info = s["aws_key_info"]
            .get(0)
            .or(Some(&s["aws_key_info"]))
            .filter(|i| i.is_object());
        let Some(info) = info else {
            diags.error(
                "Move not supported",
                "Only AWS key configurations (aws_key_info) can move to cmk_key_configuration.",
            );
            return None;
        };
        let Some(raw) = str_of(&s["customer_managed_key_id"]).or_else(|| str_of(&s["id"])) else {
            diags.error(
                "Move not supported",
                "The moved state has no customer_managed_key_id.",
            );
            return None;
        };
        let id = match ids::KeyConfigId::parse_import(&raw) {
            Ok((_, k)) => k.as_str().to_string(),
            Err(e) => {
                diags.error(
                    "Move not supported",
                    format!("customer_managed_key_id: {e}"),
                );
                return None;
            }
        };
        let use_cases: BTreeSet<KeyFeature> = s["use_cases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().and_then(KeyFeature::parse))
            .collect();
        Some(KeyConfigurationModel {
            id: Val::Known(id.clone()),
            use_cases: Val::set_of(use_cases),
            aws_key_info: Val::Known(AwsKeyInfoModel {
                key_arn: str_of(&info["key_arn"]).into(),
                key_alias: str_of(&info["key_alias"]).into(),
                key_region: str_of(&info["key_region"]).into(),
                reuse_key_for_cluster_volumes: Val::Null,
            }),
            customer_managed_key_id: Val::Known(id),
            account_id: str_of(&s["account_id"]).into(),
            creation_time: s["creation_time"].as_i64().into(),
            timeouts: Val::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `moved` from the official provider: its state (aws_key_info as a list
    /// block, composite id) becomes this resource's state.
    #[test]
    fn moves_from_the_official_providers_key_configuration() {
        let state = serde_json::json!({
            "account_id": "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13",
            "aws_key_info": [{
                "key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
                "key_alias": "alias/db",
                "key_region": "us-east-1"
            }],
            "creation_time": 1730000000000_i64,
            "customer_managed_key_id": "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "gcp_key_info": [],
            "id": "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "use_cases": ["MANAGED_SERVICES", "STORAGE"]
        });
        let mut d = Diagnostics::default();
        let m = KeyConfiguration
            .move_from(
                "registry.terraform.io/databricks/databricks",
                "databricks_mws_customer_managed_keys",
                0,
                &state,
                &mut d,
            )
            .expect("moved");
        assert!(d.is_empty());
        assert_eq!(
            m.id.known().unwrap(),
            "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98"
        );
        assert_eq!(m.use_cases.wholly_known().unwrap().len(), 2);
        let info = m.aws_key_info.known().unwrap();
        assert_eq!(info.key_alias.known().unwrap(), "alias/db");
        assert_eq!(m.creation_time.known(), Some(&1730000000000));

        let mut d = Diagnostics::default();
        assert!(KeyConfiguration
            .move_from(
                "registry.terraform.io/hashicorp/aws",
                "aws_kms_key",
                0,
                &state,
                &mut d
            )
            .is_none());
        assert!(d.has_errors());
    }

    #[test]
    fn moved_state_with_a_hostile_id_is_refused() {
        let state = serde_json::json!({
            "aws_key_info": [{"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"}],
            "customer_managed_key_id": "../../_sandbox/state",
            "use_cases": ["MANAGED_SERVICES"]
        });
        let mut d = Diagnostics::default();
        assert!(KeyConfiguration
            .move_from(
                "registry.terraform.io/databricks/databricks",
                "databricks_mws_customer_managed_keys",
                0,
                &state,
                &mut d,
            )
            .is_none());
        assert!(d.has_errors());
    }

    /// The Databricks side of "no orphan" (issue 19): a configuration
    /// created moments ago that reads as missing is read again, with the
    /// pauses of GONE_AFTER_CREATE_RETRIES, before it is dropped from the
    /// state; an older one is dropped at once. The 404s come from the
    /// sandbox's fault hook (`fail_next` with `error_status` 404).
    #[tokio::test]
    async fn a_configuration_read_as_missing_right_after_create_is_read_again() {
        use crate::cloud::databricks::{DatabricksSettings, Secret};
        use crate::cloud::kms::KmsSettings;
        use crate::sandbox::{SandboxConfig, World};
        use std::time::{Duration, Instant};

        const ACCT: &str = "11111111-2222-4333-8444-555555555555";
        const ID: &str = "aaaaaaaa-0000-4000-8000-000000000001";
        const ARN: &str =
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        crate::tfplugin::install_crypto_provider();
        let world: World = serde_json::from_value(serde_json::json!({
            "admin_token": "admin-token",
            "accounts": [{
                "account_id": ACCT,
                "oauth_clients": [{"client_id": "sp", "client_secret": "secret-cccccccccccc"}],
                "customer_managed_keys": [{
                    "customer_managed_key_id": ID,
                    "use_cases": ["MANAGED_SERVICES"],
                    "aws_key_info": {"key_arn": ARN}
                }],
                "workspaces": []
            }]
        }))
        .unwrap();
        let h = crate::sandbox::start(SandboxConfig::new(world))
            .await
            .unwrap();
        let admin = |path: &'static str, body: Option<serde_json::Value>| {
            let url = format!("{}{path}", h.url());
            async move {
                let c = reqwest::Client::new();
                let r = match body {
                    Some(b) => c.put(url).json(&b),
                    None => c.get(url),
                };
                let r = r.bearer_auth("admin-token").send().await.unwrap();
                assert!(r.status().is_success(), "admin {path}: {}", r.status());
                r.json::<serde_json::Value>().await.unwrap_or_default()
            }
        };
        let settings = DatabricksSettings {
            host: Some(h.url()),
            account_id: Some(ACCT.into()),
            client_id: Some("sp".into()),
            client_secret: Some(Secret::new("secret-cccccccccccc")),
            retry_base_delay: Some(Duration::from_millis(20)),
            ..Default::default()
        };
        let ctx = Ctx {
            client: std::sync::Arc::new(Clients::new(settings, KmsSettings::default())),
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let state = |creation_time: i64| KeyConfigurationModel {
            id: Val::Known(ID.into()),
            use_cases: Val::set_of([KeyFeature::ManagedServices]),
            aws_key_info: Val::Known(AwsKeyInfoModel {
                key_arn: Val::Known(ARN.into()),
                key_alias: Val::Null,
                key_region: Val::Known("us-east-1".into()),
                reuse_key_for_cluster_volumes: Val::Null,
            }),
            customer_managed_key_id: Val::Known(ID.into()),
            account_id: Val::Known(ACCT.into()),
            creation_time: Val::Known(creation_time),
            timeouts: Val::Null,
        };
        let injected = || async {
            admin("/_sandbox/stats", None).await["injected_errors"]
                .as_u64()
                .unwrap()
        };
        // A first read fetches the OAuth token (not faulted below).
        let mut d = Diagnostics::default();
        assert!(KeyConfiguration
            .read(&ctx, state(now_ms), &mut d)
            .await
            .is_some());
        assert!(d.0.is_empty(), "{:?}", d.0);

        // Just created, and the next two GETs answer 404: read again after
        // 0.5 s and 1 s, found, kept, no warning.
        admin(
            "/_sandbox/faults",
            Some(serde_json::json!({"fail_next": 2, "error_status": 404})),
        )
        .await;
        let started = Instant::now();
        let mut d = Diagnostics::default();
        let read = KeyConfiguration.read(&ctx, state(now_ms), &mut d).await;
        let took = started.elapsed();
        assert_eq!(injected().await, 2);
        let read = read.expect("kept in the state");
        assert_eq!(
            read.customer_managed_key_id.known().map(String::as_str),
            Some(ID)
        );
        assert!(d.0.is_empty(), "{:?}", d.0);
        assert!(took >= Duration::from_millis(1500), "{took:?}");

        // Missing for longer than the retries (the first GET and 4 more,
        // 7.5 s of pauses): dropped, with the warning.
        admin(
            "/_sandbox/faults",
            Some(serde_json::json!({"fail_next": 5, "error_status": 404})),
        )
        .await;
        let started = Instant::now();
        let mut d = Diagnostics::default();
        let read = KeyConfiguration.read(&ctx, state(now_ms), &mut d).await;
        let took = started.elapsed();
        assert_eq!(injected().await, 7);
        assert!(read.is_none(), "dropped after the bounded retries");
        assert!(
            d.0.iter()
                .any(|x| x.summary == "Key configuration deleted outside Terraform"),
            "{:?}",
            d.0
        );
        assert!(
            took >= Duration::from_millis(7500) && took < Duration::from_secs(15),
            "{took:?}"
        );

        // Created long ago: one 404 drops it at once, no retry.
        admin(
            "/_sandbox/faults",
            Some(serde_json::json!({"fail_next": 2, "error_status": 404})),
        )
        .await;
        let started = Instant::now();
        let mut d = Diagnostics::default();
        let read = KeyConfiguration
            .read(&ctx, state(now_ms - 10 * 60 * 1000), &mut d)
            .await;
        assert!(read.is_none());
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(injected().await, 8, "one GET, not retried");
    }
}
