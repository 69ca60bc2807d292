//! The `cmk` provider: its configuration and the objects it serves.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cloud::databricks::settings;
use crate::cloud::databricks::{DatabricksSettings, Secret};
use crate::cloud::kms::{KmsSettings, KmsTimeouts};
use crate::data_sources::{
    encryption_coverage::EncryptionCoverage, kms_key_policy::KmsKeyPolicy, workspace::Workspace,
};
use crate::functions::{
    dashboard_protected::DashboardProtected, key_features::KeyFeatures, parse_key_arn::ParseKeyArn,
};
use crate::resources::{
    key_configuration::KeyConfiguration, kms_key::KmsKey, workspace_binding::WorkspaceBinding,
};
use crate::rules::{ids, Deployment};
use crate::support::Clients;
use crate::tfplugin::provider::{data_source, resource, DynDataSource, DynResource};
use crate::tfplugin::{AttributePath, Diagnostics, Function, Provider, ReadBudget, Val};

/// The provider's type name in Terraform.
pub const TYPE_NAME: &str = "cmk";
/// The source address used in the examples, docs and `--debug`.
pub const SOURCE_ADDRESS: &str = "registry.terraform.io/databricks-cmk/cmk";
/// Seconds allowed for `workspace_update_timeout_seconds`.
const UPDATE_TIMEOUT_RANGE: (f64, f64) = (1.0, 86_400.0);
/// Seconds allowed for `retry_timeout_seconds`.
const RETRY_TIMEOUT_RANGE: (f64, f64) = (1.0, 86_400.0);
/// Seconds allowed for `kms_request_timeout_seconds`.
const KMS_REQUEST_TIMEOUT_RANGE: (f64, f64) = (1.0, 3_600.0);
/// Seconds allowed for `kms_create_timeout_seconds`, `kms_update_timeout_seconds`
/// and `kms_delete_timeout_seconds`.
const KMS_OPERATION_TIMEOUT_RANGE: (f64, f64) = (1.0, 86_400.0);

/// Customer-managed keys (CMK) for Databricks on AWS, with Databricks' rules checked at plan time.
///
/// Databricks credentials follow Databricks' unified authentication: the
/// arguments below, then the `DATABRICKS_*` environment variables, then a profile
/// of `~/.databrickscfg`. The Account API takes OAuth only: a service principal
/// (`client_id` and `client_secret`, OAuth machine-to-machine, the usual choice
/// for Terraform) or your own login through the Databricks CLI
/// (`auth_type = "databricks-cli"`). Workspace-level calls (the AI/BI dashboards
/// list) use a token of that workspace's own OIDC endpoint. Personal access
/// tokens work for one workspace only and are refused by the Account API.
/// Nothing is fetched until an object needs the Account API, so plans of pure
/// objects (policies, functions) need no credentials.
// No Debug: the configuration holds secrets (token, client_secret).
#[derive(Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderConfig {
    /// The Databricks account console host. Defaults to `DATABRICKS_HOST`, the
    /// profile's `host`, or `https://accounts.cloud.databricks.com`. The host
    /// names the deployment: `https://accounts.cloud.databricks.us` is GovCloud
    /// civilian, `https://accounts-dod.cloud.databricks.mil` GovCloud DoD.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub host: Val<String>,

    /// The Databricks on AWS deployment: `commercial`, `govcloud-civilian` or
    /// `govcloud-dod` (`civilian` and `dod`, the shard names public modules use,
    /// work too). It chooses Databricks' principal in generated key policies
    /// (`arn:aws:iam::414351767826:root`, `arn:aws-us-gov:iam::044793339203:root`,
    /// `arn:aws-us-gov:iam::170661010020:root`), the one the policy rules check,
    /// the AWS partition keys must be in, and the default
    /// `workspace_host_template`. Defaults to the deployment the account `host`
    /// names; when set, it must agree with that host. Set it when the host names
    /// none (a proxy or private endpoint).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub deployment: Val<String>,

    /// The Databricks account id (a UUID). Defaults to `DATABRICKS_ACCOUNT_ID` or the profile's `account_id`.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub account_id: Val<String>,

    /// A personal access token (`DATABRICKS_TOKEN`). Databricks' Account API does
    /// not accept personal access tokens (each works for one workspace only):
    /// use `client_id` and `client_secret`, or `auth_type = "databricks-cli"`.
    #[schemars(extend("x-tf" = ["optional", "sensitive"]))]
    pub token: Val<String>,

    /// OAuth machine-to-machine: the service principal's client id
    /// (`DATABRICKS_CLIENT_ID`).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub client_id: Val<String>,

    /// OAuth machine-to-machine: the service principal's secret
    /// (`DATABRICKS_CLIENT_SECRET`).
    #[schemars(extend("x-tf" = ["optional", "sensitive"]))]
    pub client_secret: Val<String>,

    /// Which credential to use (`DATABRICKS_AUTH_TYPE`): `oauth-m2m` (a service
    /// principal's `client_id` and `client_secret`), `databricks-cli` (your login,
    /// through `databricks auth login`; the provider runs `databricks auth token`
    /// for a fresh token, as Databricks' SDKs do) or `pat`. By default, the one
    /// whose settings are present.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub auth_type: Val<String>,

    /// The Databricks CLI to run for `auth_type = "databricks-cli"`
    /// (`DATABRICKS_CLI_PATH`; default `databricks` on `PATH`).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub databricks_cli_path: Val<String>,

    /// The profile of the Databricks config file to use (`DATABRICKS_CONFIG_PROFILE`; default `DEFAULT`).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub profile: Val<String>,

    /// The Databricks config file (`DATABRICKS_CONFIG_FILE`; default `~/.databrickscfg`).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub config_file: Val<String>,

    /// Client-side limit of Account API requests per second (`DATABRICKS_RATE_LIMIT`; default 15).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub rate_limit: Val<f64>,

    /// How long, in seconds, Databricks calls may keep retrying (throttling with
    /// 429, 5xx answers, network errors, answers that trickle in), and how long one
    /// refresh, plan, import or data source read may take in all, every Databricks
    /// and KMS call in it together (default 300; 1 to 86400). When it runs out the
    /// operation stops with an error naming the call that was retrying, and
    /// nothing is changed. During apply each call has this budget; waiting for a
    /// workspace to take a key has `workspace_update_timeout_seconds`, and KMS
    /// writes the `kms_*_timeout_seconds` settings. Besides this budget, every
    /// request to a Databricks host (Account API, token endpoints, a workspace's
    /// own API) has 10 s to connect and 30 s to receive each next part of its
    /// answer: a host that accepts the connection and stays silent ends the call
    /// after 30 s with an error naming the host and the call, not retried.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub retry_timeout_seconds: Val<f64>,

    /// The workspace host, with `{deployment_name}` replaced, for workspace-level
    /// calls such as the AI/BI dashboards list. Default: the deployment's,
    /// `https://{deployment_name}.cloud.databricks.com` (commercial),
    /// `.cloud.databricks.us` (GovCloud civilian) or `.cloud.databricks.mil`
    /// (GovCloud DoD).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub workspace_host_template: Val<String>,

    /// Seconds between polls while a workspace applies a key change (default 10).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub workspace_poll_interval_seconds: Val<f64>,

    /// How long a key change may take, in seconds (default 1200): the workspace
    /// must be RUNNING with the requested key ids within it. A workspace with a
    /// customer-managed VPC stays RUNNING while the new id appears, minutes
    /// later; the change is reported as not applied only when the old id
    /// outlasts this bound. 1 to 86400.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub workspace_update_timeout_seconds: Val<f64>,

    // ---- AWS (KMS)
    /// The AWS region for KMS calls on new keys (keys named by ARN are reached in
    /// their own region). Defaults to `AWS_REGION` / `AWS_DEFAULT_REGION` or the
    /// profile's region.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub aws_region: Val<String>,
    /// The AWS shared-config profile to take credentials and region from. Defaults
    /// to `AWS_PROFILE`, then the default credential chain (environment, shared
    /// config, SSO, container and instance roles).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub aws_profile: Val<String>,
    /// A custom KMS endpoint URL (a VPC endpoint, or an emulator in tests). Without
    /// it, the AWS SDK's `AWS_ENDPOINT_URL_KMS` / `AWS_ENDPOINT_URL` apply.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub kms_endpoint: Val<String>,
    /// Call KMS's FIPS 140 endpoints (`kms-fips.REGION.amazonaws.com`, e.g. in
    /// `us-gov-west-1`), as hashicorp/aws's argument of the same name. Defaults to
    /// the AWS SDK's setting (`AWS_USE_FIPS_ENDPOINT`, or `use_fips_endpoint` in
    /// the AWS profile); `kms_endpoint` wins over it.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub use_fips_endpoint: Val<bool>,
    /// How long one KMS call may take, in seconds, the AWS SDK's retries included
    /// (default 60; 1 to 3600). Each attempt also has at most 10 s to connect and
    /// 30 s to answer, and a call makes at most 4 attempts. An endpoint that
    /// accepts connections and never answers fails the call with an error naming
    /// the endpoint.
    #[schemars(extend("x-tf" = ["optional"]))]
    pub kms_request_timeout_seconds: Val<f64>,
    /// How long creating a `cmk_kms_key` may take, in seconds (default 600; 1 to
    /// 86400), its waits included: KMS is eventually consistent, so after each
    /// change the provider reads until KMS shows it (the new key, its policy, alias,
    /// rotation and tags).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub kms_create_timeout_seconds: Val<f64>,
    /// How long updating a `cmk_kms_key` may take, in seconds, its waits for each
    /// change to show in KMS's reads included (default 600; 1 to 86400).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub kms_update_timeout_seconds: Val<f64>,
    /// How long destroying a `cmk_kms_key` (scheduling its deletion) may take, in
    /// seconds, its wait for the key to show as pending deletion included (default
    /// 300; 1 to 86400).
    #[schemars(extend("x-tf" = ["optional"]))]
    pub kms_delete_timeout_seconds: Val<f64>,
}

/// The KMS timeout settings: name, allowed range, and where the value goes.
type KmsTimeoutSetting = (
    &'static str,
    (f64, f64),
    fn(&mut KmsTimeouts) -> &mut std::time::Duration,
);

const KMS_TIMEOUT_SETTINGS: [KmsTimeoutSetting; 4] = [
    (
        "kms_request_timeout_seconds",
        KMS_REQUEST_TIMEOUT_RANGE,
        |t| &mut t.request,
    ),
    (
        "kms_create_timeout_seconds",
        KMS_OPERATION_TIMEOUT_RANGE,
        |t| &mut t.create,
    ),
    (
        "kms_update_timeout_seconds",
        KMS_OPERATION_TIMEOUT_RANGE,
        |t| &mut t.update,
    ),
    (
        "kms_delete_timeout_seconds",
        KMS_OPERATION_TIMEOUT_RANGE,
        |t| &mut t.delete,
    ),
];

#[derive(Default)]
pub struct CmkProvider;

fn known(v: &Val<String>) -> Option<String> {
    v.known().filter(|s| !s.is_empty()).cloned()
}

impl ProviderConfig {
    fn kms_timeout_values(&self) -> [&Val<f64>; 4] {
        [
            &self.kms_request_timeout_seconds,
            &self.kms_create_timeout_seconds,
            &self.kms_update_timeout_seconds,
            &self.kms_delete_timeout_seconds,
        ]
    }

    /// The KMS timeouts: defaults, with each setting in range (one out of
    /// range is refused by validate and keeps its default here).
    fn kms_timeouts(&self) -> KmsTimeouts {
        let mut t = KmsTimeouts::default();
        for ((name, range, slot), v) in KMS_TIMEOUT_SETTINGS.iter().zip(self.kms_timeout_values()) {
            if let Some(d) = v
                .known()
                .and_then(|s| settings::check_seconds(*s, *range, name).ok())
            {
                *slot(&mut t) = d;
            }
        }
        t
    }

    fn databricks_settings(&self) -> DatabricksSettings {
        DatabricksSettings {
            host: known(&self.host),
            account_id: known(&self.account_id),
            token: known(&self.token).map(Secret::new),
            client_id: known(&self.client_id),
            client_secret: known(&self.client_secret).map(Secret::new),
            auth_type: known(&self.auth_type),
            databricks_cli_path: known(&self.databricks_cli_path),
            profile: known(&self.profile),
            config_file: known(&self.config_file).map(Into::into),
            rate_limit: self.rate_limit.known().copied(),
            // Out of range (refused by validate): the default.
            retry_timeout: self
                .retry_timeout_seconds
                .known()
                .and_then(|s| settings::check_seconds(*s, RETRY_TIMEOUT_RANGE, "").ok()),
            workspace_host_template: known(&self.workspace_host_template),
            // Not a known name (refused by validate): as if unset.
            deployment: known(&self.deployment).and_then(|d| Deployment::parse(&d)),
            // Out of range (refused by validate): the largest allowed value,
            // so that nothing can overflow.
            workspace_poll_interval: self.workspace_poll_interval_seconds.known().map(|s| {
                std::time::Duration::try_from_secs_f64(s.max(0.05))
                    .unwrap_or(std::time::Duration::from_secs(3600))
            }),
            workspace_wait_timeout: self
                .workspace_update_timeout_seconds
                .known()
                .filter(|s| settings::check_seconds(**s, UPDATE_TIMEOUT_RANGE, "").is_ok())
                .map(|s| std::time::Duration::from_secs_f64(*s)),
            ..DatabricksSettings::default()
        }
    }
}

#[async_trait]
impl Provider for CmkProvider {
    type Config = ProviderConfig;
    type Client = Clients;

    fn validate(&self, c: &ProviderConfig, diags: &mut Diagnostics) {
        if let Val::Known(a) = &c.account_id {
            if let Err(e) = ids::check_databricks_account_id(a) {
                diags.error_at(
                    AttributePath::new(["account_id"]),
                    "Invalid account_id",
                    e.0,
                );
            }
        }
        if let Val::Known(d) = &c.deployment {
            if Deployment::parse(d).is_none() {
                diags.error_at(
                    AttributePath::new(["deployment"]),
                    "Invalid deployment",
                    format!(
                        "deployment {} is not a Databricks on AWS deployment; use one of {}.",
                        ids::quoted(d),
                        Deployment::names()
                    ),
                );
            }
        }
        if let Val::Known(t) = &c.auth_type {
            use crate::cloud::databricks::AUTH_TYPES;
            if !AUTH_TYPES.contains(&t.trim().to_ascii_lowercase().as_str()) {
                diags.error_at(
                    AttributePath::new(["auth_type"]),
                    "Invalid auth_type",
                    format!(
                        "auth_type {t:?} is not supported; use one of {}.",
                        AUTH_TYPES.join(", ")
                    ),
                );
            }
        }
        if c.auth_type.is_null()
            && c.token.known().is_some()
            && (c.client_id.known().is_some() || c.client_secret.known().is_some())
        {
            diags.error_at(
                AttributePath::new(["token"]),
                "Contradictory Databricks credentials",
                "Both a token and OAuth client credentials are set. Set either `token` or `client_id` with `client_secret`.",
            );
        }
        if c.client_id.known().is_some() != c.client_secret.known().is_some()
            && !c.client_id.is_unknown()
            && !c.client_secret.is_unknown()
        {
            let missing = if c.client_id.known().is_some() {
                "client_secret"
            } else {
                "client_id"
            };
            diags.error_at(
                AttributePath::new([missing]),
                "Incomplete OAuth credentials",
                format!("OAuth machine-to-machine needs both client_id and client_secret; set `{missing}` (or DATABRICKS_{}).", missing.to_uppercase()),
            );
        }
        if let Val::Known(r) = &c.rate_limit {
            if let Err(e) = settings::check_rate_limit(*r, "rate_limit") {
                diags.error_at(
                    AttributePath::new(["rate_limit"]),
                    "Invalid rate_limit",
                    e.to_string(),
                );
            }
        }
        for (name, range, v) in [
            (
                "workspace_update_timeout_seconds",
                UPDATE_TIMEOUT_RANGE,
                &c.workspace_update_timeout_seconds,
            ),
            (
                "retry_timeout_seconds",
                RETRY_TIMEOUT_RANGE,
                &c.retry_timeout_seconds,
            ),
        ] {
            if let Val::Known(s) = v {
                if let Err(e) = settings::check_seconds(*s, range, name) {
                    diags.error_at(
                        AttributePath::new([name]),
                        format!("Invalid {name}"),
                        e.to_string(),
                    );
                }
            }
        }
        for ((name, range, _), v) in KMS_TIMEOUT_SETTINGS.iter().zip(c.kms_timeout_values()) {
            if let Val::Known(s) = v {
                if let Err(e) = settings::check_seconds(*s, *range, name) {
                    diags.error_at(
                        AttributePath::new([*name]),
                        format!("Invalid {name}"),
                        e.to_string(),
                    );
                }
            }
        }
        if let Val::Known(s) = &c.workspace_poll_interval_seconds {
            if let Err(e) = settings::check_seconds(
                *s,
                settings::POLL_INTERVAL_RANGE,
                "workspace_poll_interval_seconds",
            ) {
                diags.error_at(
                    AttributePath::new(["workspace_poll_interval_seconds"]),
                    "Invalid workspace_poll_interval_seconds",
                    e.to_string(),
                );
            }
        }
    }

    fn read_budget(&self, clients: &Clients) -> Option<ReadBudget> {
        Some(ReadBudget {
            limit: clients.read_budget(),
            hint: "Set retry_timeout_seconds in the provider block to allow more (default 300) when the Databricks or AWS APIs are slow or throttling, or try again later.".to_string(),
            setting: None,
        })
    }

    async fn configure(
        &self,
        config: ProviderConfig,
        terraform_version: &str,
        diags: &mut Diagnostics,
    ) -> Option<Clients> {
        tracing::debug!(terraform_version, "configured");
        let databricks = config.databricks_settings();
        // A personal access token cannot work against the Account API: say
        // so now, with the two alternatives, instead of at the first 401.
        // Resolving reads only settings, variables and the config file.
        let clients = Clients::new(databricks.clone(), KmsSettings::default());
        if clients.databricks_configured() {
            if let Ok(resolved) = databricks.resolve(&crate::cloud::databricks::ProcessEnvironment)
            {
                if let Some(why) = resolved.auth.account_api_warning() {
                    diags.warning(
                        "Personal access tokens do not work with the Account API",
                        why,
                    );
                }
            }
        }
        let aws = KmsSettings {
            region: config.aws_region.known().cloned(),
            profile: config.aws_profile.known().cloned(),
            endpoint: config.kms_endpoint.known().cloned(),
            use_fips: config.use_fips_endpoint.known().copied(),
            timeouts: config.kms_timeouts(),
        };
        // The deployment: the argument (which must agree with the host), or
        // the one the host names. Read from settings, variables and the
        // config file only.
        let deployment = match databricks.deployment(&crate::cloud::databricks::ProcessEnvironment)
        {
            Ok(d) => d,
            Err(e) => {
                diags.error_at(
                    AttributePath::new(["deployment"]),
                    "Databricks deployment and host disagree",
                    e.to_string(),
                );
                return None;
            }
        };
        tracing::debug!(deployment = ?deployment.deployment, source = %deployment.source, "deployment");
        let mut databricks = databricks;
        databricks.terraform_version = Some(terraform_version.to_string());
        // One process serves one plan or apply: its reads come from lists.
        databricks.snapshot_max_age = Some(crate::cloud::databricks::SNAPSHOT_MAX_AGE);
        let mut clients = Clients::new(databricks, aws);
        clients.deployment = deployment;
        Some(clients)
    }

    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<Clients>>> {
        vec![
            data_source(EncryptionCoverage),
            data_source(KmsKeyPolicy),
            data_source(Workspace),
        ]
    }

    fn resources(&self) -> Vec<Box<dyn DynResource<Clients>>> {
        vec![
            resource(KeyConfiguration),
            resource(KmsKey),
            resource(WorkspaceBinding),
        ]
    }

    fn functions(&self) -> Vec<Box<dyn Function>> {
        vec![
            Box::new(DashboardProtected),
            Box::new(KeyFeatures),
            Box::new(ParseKeyArn),
        ]
    }
}

#[cfg(test)]
#[path = "provider_unknowns.rs"]
mod unknowns;

#[cfg(test)]
#[path = "provider_schema_compat.rs"]
mod schema_compat;
