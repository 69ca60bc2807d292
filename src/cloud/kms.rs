//! AWS KMS through `aws-sdk-kms`: the calls `cmk_kms_key` makes, and
//! [`Kms::verify_key`], which checks a key against Databricks' rules with the
//! real key's facts (DescribeKey, GetKeyPolicy) fed to the rule engine.
//!
//! Credentials come from `aws-config`'s default chain (environment, shared
//! config and profiles, SSO, container and instance roles). The provider's
//! `aws_region`, `aws_profile` and `kms_endpoint` override it; without
//! `kms_endpoint`, the SDK's own `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL`
//! keep working. A [`Kms`] is built at most once per provider configuration
//! and only when an operation needs it (see `provider::Clients::kms`).

use std::collections::{BTreeMap, BTreeSet};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::DateTimeFormat;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};

use crate::rules::facts::{KeyState, KmsKeyFacts};
use crate::rules::{check_kms_key, ids, Fact, Outcome, PolicyNeeds, RuleId, Severity, Subject};

#[cfg(test)]
#[path = "moto_server.rs"]
pub(crate) mod moto_server;

/// The only key policy name KMS knows.
pub const POLICY_NAME: &str = "default";

/// Where and as whom to call KMS: the provider's arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsSettings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
}

/// Errors of KMS calls, classified for messages and decisions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("the AWS configuration is incomplete: {0}")]
    Config(String),
    #[error("KMS key {key} was not found: {message}")]
    NotFound { key: String, message: String },
    #[error("access denied: the caller lacks {permission} on {key}: {message}")]
    AccessDenied {
        permission: &'static str,
        key: String,
        message: String,
    },
    #[error("KMS refused {action} on {key} ({code}): {message}")]
    Service {
        action: &'static str,
        key: String,
        code: String,
        message: String,
    },
    #[error("{action} on {key} failed: {message}")]
    Transport {
        action: &'static str,
        key: String,
        message: String,
    },
}

impl KmsError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, KmsError::NotFound { .. })
    }
}

fn classify<E, R>(action: &'static str, key: &str, e: SdkError<E, R>) -> KmsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let key = key.to_string();
    let message = e
        .message()
        .map(str::to_string)
        .unwrap_or_else(|| DisplayErrorContext(&e).to_string());
    match e.code() {
        Some("NotFoundException") => KmsError::NotFound { key, message },
        Some("AccessDeniedException" | "AccessDenied") => KmsError::AccessDenied {
            permission: action,
            key,
            message,
        },
        Some(code) => KmsError::Service {
            action,
            key,
            code: code.to_string(),
            message,
        },
        None => KmsError::Transport {
            action,
            key,
            message: DisplayErrorContext(&e).to_string(),
        },
    }
}

/// What DescribeKey says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub arn: String,
    pub key_id: String,
    /// The region in the key's ARN.
    pub region: String,
    /// AWS's spelling, e.g. `Enabled`, `PendingDeletion`.
    pub state: String,
    pub spec: String,
    pub usage: String,
    pub description: String,
    pub multi_region: bool,
    /// RFC 3339, when deletion is scheduled.
    pub deletion_date: Option<String>,
}

/// A KMS client for one provider configuration.
#[derive(Debug, Clone)]
pub struct Kms {
    sdk: SdkConfig,
    conf: aws_sdk_kms::Config,
    /// The caller's account, asked once (STS), when a check needs it.
    caller: std::sync::Arc<tokio::sync::OnceCell<Option<String>>>,
}

impl Kms {
    /// Loads the default credential chain with the provider's overrides.
    pub async fn connect(settings: &KmsSettings) -> Result<Kms, KmsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = &settings.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(KmsError::Config(
                "no AWS region: set the provider's aws_region, AWS_REGION, or a region in the AWS profile".into(),
            ));
        }
        Ok(Kms::from_sdk_config(sdk, settings.endpoint.as_deref()))
    }

    /// A client from an explicit SDK configuration (tests, embedding).
    pub fn from_sdk_config(sdk: SdkConfig, endpoint: Option<&str>) -> Kms {
        let mut b = aws_sdk_kms::config::Builder::from(&sdk);
        if let Some(e) = endpoint {
            b = b.endpoint_url(e);
        }
        Kms {
            sdk,
            conf: b.build(),
            caller: Default::default(),
        }
    }

    /// The configured region.
    pub fn region(&self) -> Option<String> {
        self.conf.region().map(|r| r.to_string())
    }

    fn client(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::from_conf(self.conf.clone())
    }

    /// A client for the region in `key` when it is a key ARN (KMS answers
    /// only for keys of the endpoint's region), and the key to send: always
    /// `key` as given. A key ARN stays an ARN: KMS finds a key of another AWS
    /// account only by its ARN ("To specify a KMS key in a different AWS
    /// account, you must use the key ARN or alias ARN"), and a bare id would
    /// look in the caller's own account.
    fn client_for(&self, key: &str) -> (aws_sdk_kms::Client, String) {
        match ids::parse_key_arn(key) {
            Ok(arn) if Some(arn.region.as_str()) != self.conf.region().map(|r| r.as_ref()) => {
                let conf = self
                    .conf
                    .to_builder()
                    .region(Region::new(arn.region))
                    .build();
                (aws_sdk_kms::Client::from_conf(conf), key.to_string())
            }
            _ => (self.client(), key.to_string()),
        }
    }

    /// For the calls KMS allows on a key of the caller's own account only
    /// (its "Cross-account use: No" calls that change a key's state:
    /// EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion): the
    /// client of the ARN's region and the bare key id, which KMS reads
    /// exactly as the ARN there. (moto 5.2 resolves only bare ids for these
    /// four.)
    fn own_account_client_for(&self, key: &str) -> (aws_sdk_kms::Client, String) {
        let (c, k) = self.client_for(key);
        match ids::parse_key_arn(&k) {
            Ok(arn) => (c, arn.key_id),
            Err(_) => (c, k),
        }
    }

    /// The caller's account, asked once; `None` when STS does not answer.
    async fn caller_account_cached(&self) -> Option<String> {
        self.caller
            .get_or_init(|| async { self.caller_account_id().await.ok() })
            .await
            .clone()
    }

    /// The caller's AWS account (STS GetCallerIdentity).
    pub async fn caller_account_id(&self) -> Result<String, KmsError> {
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let out = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify("sts:GetCallerIdentity", "the caller", e))?;
        out.account().map(str::to_string).ok_or_else(|| {
            KmsError::Config("STS GetCallerIdentity answered without an account".into())
        })
    }

    /// DescribeKey: accepts a key id, key ARN, alias name or alias ARN.
    pub async fn describe(&self, key: &str) -> Result<KeyInfo, KmsError> {
        let (c, id) = self.client_for(key);
        let out = c
            .describe_key()
            .key_id(id)
            .send()
            .await
            .map_err(|e| classify("kms:DescribeKey", key, e))?;
        let m = out.key_metadata().ok_or_else(|| KmsError::Service {
            action: "kms:DescribeKey",
            key: key.to_string(),
            code: "NoMetadata".into(),
            message: "DescribeKey answered without key metadata".into(),
        })?;
        let arn = m.arn().unwrap_or_default().to_string();
        let region = ids::parse_key_arn(&arn)
            .map(|a| a.region)
            .or_else(|_| arn.split(':').nth(3).map(str::to_string).ok_or(()))
            .unwrap_or_default();
        Ok(KeyInfo {
            key_id: m.key_id().to_string(),
            region,
            state: m
                .key_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            spec: m
                .key_spec()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            usage: m
                .key_usage()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            description: m.description().unwrap_or_default().to_string(),
            multi_region: m.multi_region().unwrap_or(false),
            deletion_date: m
                .deletion_date()
                .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()),
            arn,
        })
    }

    /// GetKeyPolicy with the policy name `default`.
    pub async fn get_policy(&self, key: &str) -> Result<String, KmsError> {
        let (c, id) = self.client_for(key);
        let out = c
            .get_key_policy()
            .key_id(id)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .map_err(|e| classify("kms:GetKeyPolicy", key, e))?;
        Ok(out.policy().unwrap_or_default().to_string())
    }

    pub async fn put_policy(&self, key: &str, policy: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        c.put_key_policy()
            .key_id(id)
            .policy_name(POLICY_NAME)
            .policy(policy)
            .send()
            .await
            .map_err(|e| classify("kms:PutKeyPolicy", key, e))?;
        Ok(())
    }

    /// CreateKey: always SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT.
    pub async fn create_key(
        &self,
        policy: Option<&str>,
        description: &str,
        tags: &BTreeMap<String, String>,
        multi_region: bool,
    ) -> Result<KeyInfo, KmsError> {
        let mut req = self
            .client()
            .create_key()
            .key_spec(KeySpec::SymmetricDefault)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .multi_region(multi_region)
            .description(description);
        if let Some(p) = policy {
            req = req.policy(p);
        }
        for t in to_tags(tags)? {
            req = req.tags(t);
        }
        let out = req
            .send()
            .await
            .map_err(|e| classify("kms:CreateKey", "a new key", e))?;
        let arn = out
            .key_metadata()
            .and_then(|m| m.arn())
            .unwrap_or_default()
            .to_string();
        self.describe(&arn).await
    }

    /// Alias names (`alias/...`) pointing at the key.
    pub async fn aliases(&self, key_id: &str) -> Result<Vec<String>, KmsError> {
        let mut names = vec![];
        let mut marker: Option<String> = None;
        loop {
            let (c, id) = self.client_for(key_id);
            let out = c
                .list_aliases()
                .key_id(id)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| classify("kms:ListAliases", key_id, e))?;
            names.extend(
                out.aliases()
                    .iter()
                    .filter_map(|a| a.alias_name().map(str::to_string)),
            );
            match out.next_marker() {
                Some(m) if out.truncated() => marker = Some(m.to_string()),
                _ => return Ok(names),
            }
        }
    }

    pub async fn create_alias(&self, key_arn: &str, alias: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key_arn);
        c.create_alias()
            .alias_name(alias)
            .target_key_id(id)
            .send()
            .await
            .map_err(|e| classify("kms:CreateAlias", alias, e))?;
        Ok(())
    }

    /// `key_arn` picks the region.
    pub async fn delete_alias(&self, key_arn: &str, alias: &str) -> Result<(), KmsError> {
        let (c, _) = self.client_for(key_arn);
        c.delete_alias()
            .alias_name(alias)
            .send()
            .await
            .map_err(|e| classify("kms:DeleteAlias", alias, e))?;
        Ok(())
    }

    pub async fn update_description(&self, key: &str, description: &str) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        c.update_key_description()
            .key_id(id)
            .description(description)
            .send()
            .await
            .map_err(|e| classify("kms:UpdateKeyDescription", key, e))?;
        Ok(())
    }

    pub async fn rotation_enabled(&self, key: &str) -> Result<bool, KmsError> {
        let (c, id) = self.client_for(key);
        let out = c
            .get_key_rotation_status()
            .key_id(id)
            .send()
            .await
            .map_err(|e| classify("kms:GetKeyRotationStatus", key, e))?;
        Ok(out.key_rotation_enabled())
    }

    pub async fn set_rotation(&self, key: &str, enabled: bool) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        if enabled {
            c.enable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .map_err(|e| classify("kms:EnableKeyRotation", key, e))?;
        } else {
            c.disable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .map_err(|e| classify("kms:DisableKeyRotation", key, e))?;
        }
        Ok(())
    }

    pub async fn tags(&self, key: &str) -> Result<BTreeMap<String, String>, KmsError> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let (c, id) = self.client_for(key);
            let out = c
                .list_resource_tags()
                .key_id(id)
                .set_marker(marker.clone())
                .send()
                .await
                .map_err(|e| classify("kms:ListResourceTags", key, e))?;
            for t in out.tags() {
                tags.insert(t.tag_key().to_string(), t.tag_value().to_string());
            }
            match out.next_marker() {
                Some(m) if out.truncated() => marker = Some(m.to_string()),
                _ => return Ok(tags),
            }
        }
    }

    /// Makes the key's tags exactly `want` (tags first, then untags).
    pub async fn set_tags(
        &self,
        key: &str,
        have: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
    ) -> Result<(), KmsError> {
        let (c, id) = self.client_for(key);
        let changed: BTreeMap<String, String> = want
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !changed.is_empty() {
            c.tag_resource()
                .key_id(&id)
                .set_tags(Some(to_tags(&changed)?))
                .send()
                .await
                .map_err(|e| classify("kms:TagResource", key, e))?;
        }
        let removed: Vec<String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        if !removed.is_empty() {
            c.untag_resource()
                .key_id(&id)
                .set_tag_keys(Some(removed))
                .send()
                .await
                .map_err(|e| classify("kms:UntagResource", key, e))?;
        }
        Ok(())
    }

    pub async fn enable(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.own_account_client_for(key);
        c.enable_key()
            .key_id(id)
            .send()
            .await
            .map_err(|e| classify("kms:EnableKey", key, e))?;
        Ok(())
    }

    pub async fn disable(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.own_account_client_for(key);
        c.disable_key()
            .key_id(id)
            .send()
            .await
            .map_err(|e| classify("kms:DisableKey", key, e))?;
        Ok(())
    }

    /// Cancels a scheduled deletion; the key is then Disabled.
    pub async fn cancel_deletion(&self, key: &str) -> Result<(), KmsError> {
        let (c, id) = self.own_account_client_for(key);
        c.cancel_key_deletion()
            .key_id(id)
            .send()
            .await
            .map_err(|e| classify("kms:CancelKeyDeletion", key, e))?;
        Ok(())
    }

    /// Schedules deletion after `window_days` (checked here: 7 to 30, since
    /// some KMS emulators accept anything). Returns the deletion date.
    pub async fn schedule_deletion(&self, key: &str, window_days: i64) -> Result<String, KmsError> {
        check_deletion_window(window_days).map_err(KmsError::Config)?;
        let (c, id) = self.own_account_client_for(key);
        let out = c
            .schedule_key_deletion()
            .key_id(id)
            .pending_window_in_days(window_days as i32)
            .send()
            .await
            .map_err(|e| classify("kms:ScheduleKeyDeletion", key, e))?;
        Ok(out
            .deletion_date()
            .and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
            .unwrap_or_else(|| format!("in {window_days} days")))
    }

    /// Verifies a key for the use cases in `needs`: it exists and is
    /// reachable, is Enabled, SYMMETRIC_DEFAULT with ENCRYPT_DECRYPT, is in
    /// the region its ARN names (and the workspace's, when `needs` knows it),
    /// and its real policy (GetKeyPolicy, policy `default`) grants what the
    /// use cases need. The result is the rule engine's outcomes, plus:
    /// - AccessDenied on DescribeKey / GetKeyPolicy: a **warning** naming the
    ///   missing permission (`kms:DescribeKey`, `kms:GetKeyPolicy`);
    /// - a key that does not exist: an error (CMK004);
    /// - KMS unreachable: a warning (the check could not run).
    pub async fn verify_key(&self, key_arn: &str, needs: &PolicyNeeds) -> Vec<Outcome> {
        let parsed = match ids::parse_key_arn(key_arn) {
            Ok(a) => a,
            Err(e) => {
                return vec![Outcome::fail(
                    RuleId::KeyArnWellFormed,
                    Subject::KeyArn,
                    e.0,
                )]
            }
        };
        let mut out = vec![];
        let mut facts = KmsKeyFacts::unknown();
        facts.arn = Fact::Known(key_arn.to_string());
        match self.describe(key_arn).await {
            Ok(k) => {
                facts.arn = Fact::Known(k.arn.clone());
                facts.state = KeyState::parse(&k.state).map_or(Fact::Unknown, Fact::Known);
                // An answer without spec or usage (moto omits KeyUsage when
                // CreateKey did not name it) is "cannot tell", not a failure.
                let known = |s: &String| {
                    if s.is_empty() {
                        Fact::Unknown
                    } else {
                        Fact::Known(s.clone())
                    }
                };
                facts.spec = known(&k.spec);
                facts.usage = known(&k.usage);
                facts.region = Fact::Known(k.region.clone());
                out.push(region_outcome(key_arn, &parsed.region, &k.region, needs));
            }
            Err(KmsError::NotFound { message, .. }) => {
                out.push(Outcome::fail(
                    RuleId::KeyUsable,
                    Subject::KeyArn,
                    format!(
                        "key {key_arn} does not exist in {} (or is not visible to this AWS account): {message}",
                        parsed.region
                    ),
                ));
                return out;
            }
            Err(e @ KmsError::AccessDenied { .. }) => {
                out.push(permission_warning("kms:DescribeKey", key_arn, &e));
            }
            Err(e) => {
                out.push(
                    Outcome::fail(
                        RuleId::KeyUsable,
                        Subject::KeyArn,
                        format!("could not verify key {key_arn}: {e}"),
                    )
                    .with_severity(Severity::Warning),
                );
                return out;
            }
        }
        let mut policy_denied = None;
        match self.get_policy(key_arn).await {
            Ok(p) => facts.policy = Fact::Known(Some(p)),
            // KMS never returns the policy of another account's key
            // (GetKeyPolicy does not work across accounts): say so, as a
            // warning, instead of blaming a permission or the key.
            Err(e @ (KmsError::AccessDenied { .. } | KmsError::NotFound { .. }))
                if self
                    .caller_account_cached()
                    .await
                    .is_some_and(|c| c != parsed.account_id) =>
            {
                policy_denied = Some(
                    Outcome::fail(
                        RuleId::PolicyDatabricksGrants,
                        Subject::KeyPolicy,
                        format!(
                            "the key policy of {key_arn} could not be read across accounts: the key is in AWS account {}, Terraform runs as account {}, and KMS returns a key policy only to its own account, so the policy was not checked; check it in account {} (the cmk_kms_key_policy data source gives the statements Databricks needs) ({e})",
                            parsed.account_id,
                            self.caller_account_cached().await.unwrap_or_default(),
                            parsed.account_id
                        ),
                    )
                    .with_severity(Severity::Warning),
                );
            }
            Err(e @ KmsError::AccessDenied { .. }) => {
                policy_denied = Some(permission_warning("kms:GetKeyPolicy", key_arn, &e));
            }
            Err(e) => {
                policy_denied = Some(
                    Outcome::fail(
                        RuleId::PolicyDatabricksGrants,
                        Subject::KeyPolicy,
                        format!("could not read the key policy of {key_arn}: {e}"),
                    )
                    .with_severity(Severity::Warning),
                );
            }
        }
        let engine = check_kms_key(&facts, needs);
        for o in engine {
            // A fact we could not read is reported once, as the warning above.
            if o.verdict == crate::rules::Verdict::CannotTell
                && ((o.subject == Subject::KeyPolicy && policy_denied.is_some())
                    || (matches!(
                        o.subject,
                        Subject::KeySpec | Subject::KeyUsage | Subject::KeyState
                    ) && facts.state.is_unknown()))
            {
                continue;
            }
            out.push(o);
        }
        out.extend(policy_denied);
        out
    }
}

fn permission_warning(permission: &str, key_arn: &str, e: &KmsError) -> Outcome {
    let (rule, subject) = if permission == "kms:GetKeyPolicy" {
        (RuleId::PolicyDatabricksGrants, Subject::KeyPolicy)
    } else {
        (RuleId::KeyUsable, Subject::KeyState)
    };
    Outcome::fail(
        rule,
        subject,
        format!(
            "could not verify key {key_arn}: the caller lacks {permission} on it, so this check was skipped; grant {permission} to the identity Terraform runs as ({e})"
        ),
    )
    .with_severity(Severity::Warning)
}

fn region_outcome(
    key_arn: &str,
    arn_region: &str,
    key_region: &str,
    needs: &PolicyNeeds,
) -> Outcome {
    let (r, s) = (RuleId::KeyRegion, Subject::KeyRegion);
    if arn_region != key_region {
        return Outcome::fail(
            r,
            s,
            format!(
                "key {key_arn} names region {arn_region}, but KMS reports the key in {key_region}"
            ),
        );
    }
    match &needs.workspace_region {
        Fact::Known(w) if w != key_region => Outcome::fail(
            r,
            s,
            format!("key {key_arn} is in {key_region} but the workspace is in {w}"),
        ),
        Fact::Known(_) => Outcome::pass(
            r,
            s,
            format!("the key is in the workspace's region {key_region}"),
        ),
        Fact::Unknown => Outcome::pass(
            r,
            s,
            format!("the key is in {key_region}, the region its ARN names"),
        ),
    }
}

fn to_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, KmsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| KmsError::Config(format!("tag {k:?}: {e}")))
        })
        .collect()
}

/// KMS's bounds for a deletion waiting period.
pub fn check_deletion_window(days: i64) -> Result<(), String> {
    if (7..=30).contains(&days) {
        Ok(())
    } else {
        Err(format!(
            "the deletion waiting period must be 7 to 30 days, got {days}"
        ))
    }
}

/// Policy needs for a key that serves `use_cases` (helper for callers).
pub fn needs_for(
    use_cases: BTreeSet<crate::rules::KeyFeature>,
    cluster_volumes: bool,
    databricks_account_id: Option<String>,
    cross_account_role_arn: Option<String>,
    workspace_region: Option<String>,
) -> PolicyNeeds {
    PolicyNeeds {
        cluster_volumes: Fact::Known(
            cluster_volumes && use_cases.contains(&crate::rules::KeyFeature::Storage),
        ),
        use_cases: Fact::Known(use_cases),
        databricks_account_id: databricks_account_id.map_or(Fact::Unknown, Fact::Known),
        cross_account_role_arn: Fact::Known(cross_account_role_arn),
        workspace_region: workspace_region.map_or(Fact::Unknown, Fact::Known),
        databricks_principal: None,
    }
}

/// Normalizes a policy for semantic comparison: object key order is
/// ignored, arrays become sorted sets, and a one-element array equals its
/// element (as IAM reads them).
pub fn normalize_policy(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> = m
                .iter()
                .map(|(k, v)| (k.clone(), normalize_policy(v)))
                .collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => {
            let mut n: Vec<Value> = items.iter().map(normalize_policy).collect();
            n.sort_by_cached_key(|x| x.to_string());
            n.dedup();
            if n.len() == 1 {
                n.pop().unwrap_or(Value::Null)
            } else {
                Value::Array(n)
            }
        }
        other => other.clone(),
    }
}

/// Whether two policy documents mean the same (see [`normalize_policy`]);
/// text that is not JSON compares as text.
pub fn policies_equivalent(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => normalize_policy(&x) == normalize_policy(&y),
        _ => a.trim() == b.trim(),
    }
}

#[cfg(test)]
mod tests;
