//! The `cmk` provider: its configuration and the objects it serves.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cloud::kms::{Kms, KmsError, KmsSettings};
use crate::data_sources::kms_key_policy::KmsKeyPolicy;
use crate::functions::{key_features::KeyFeatures, parse_key_arn::ParseKeyArn};
use crate::resources::kms_key::KmsKey;
use crate::tfplugin::provider::{data_source, resource, DynDataSource, DynResource};
use crate::tfplugin::Val;
use crate::tfplugin::{Diagnostics, Function, Provider};

/// The provider's type name in Terraform.
pub const TYPE_NAME: &str = "cmk";
/// The source address used in the examples, docs and `--debug`.
pub const SOURCE_ADDRESS: &str = "registry.terraform.io/databricks-cmk/cmk";

/// Customer-managed keys (CMK) for Databricks on AWS, with Databricks' rules checked at plan time.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderConfig {
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
}

/// What operations get once the provider is configured. Cloud clients are
/// built lazily, on first use, so a plan that needs none never waits for
/// credentials.
#[derive(Debug, Default)]
pub struct Clients {
    pub aws: KmsSettings,
    kms: tokio::sync::OnceCell<Result<Kms, KmsError>>,
    caller_account: tokio::sync::OnceCell<Result<String, KmsError>>,
}

impl Clients {
    pub fn new(aws: KmsSettings) -> Clients {
        Clients {
            aws,
            ..Clients::default()
        }
    }

    /// The KMS client, built on first use.
    pub async fn kms(&self) -> Result<&Kms, KmsError> {
        self.kms
            .get_or_init(|| Kms::connect(&self.aws))
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The caller's AWS account (STS), asked once.
    pub async fn caller_account_id(&self) -> Result<String, KmsError> {
        self.caller_account
            .get_or_init(|| async { self.kms().await?.caller_account_id().await })
            .await
            .clone()
    }
}

#[derive(Default)]
pub struct CmkProvider;

#[async_trait]
impl Provider for CmkProvider {
    type Config = ProviderConfig;
    type Client = Clients;

    async fn configure(
        &self,
        config: ProviderConfig,
        terraform_version: &str,
        _diags: &mut Diagnostics,
    ) -> Option<Clients> {
        tracing::debug!(terraform_version, "configured");
        Some(Clients::new(KmsSettings {
            region: config.aws_region.into_known(),
            profile: config.aws_profile.into_known(),
            endpoint: config.kms_endpoint.into_known(),
        }))
    }

    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<Clients>>> {
        vec![data_source(KmsKeyPolicy)]
    }

    fn resources(&self) -> Vec<Box<dyn DynResource<Clients>>> {
        vec![resource(KmsKey)]
    }

    fn functions(&self) -> Vec<Box<dyn Function>> {
        vec![Box::new(KeyFeatures), Box::new(ParseKeyArn)]
    }
}
