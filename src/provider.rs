//! The `cmk` provider: its configuration and the objects it serves.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::data_sources::kms_key_policy::KmsKeyPolicy;
use crate::functions::{key_features::KeyFeatures, parse_key_arn::ParseKeyArn};
use crate::tfplugin::provider::{data_source, DynDataSource, DynResource};
use crate::tfplugin::{Diagnostics, Function, Provider};

/// The provider's type name in Terraform.
pub const TYPE_NAME: &str = "cmk";
/// The source address used in the examples, docs and `--debug`.
pub const SOURCE_ADDRESS: &str = "registry.terraform.io/databricks-cmk/cmk";

/// Customer-managed keys (CMK) for Databricks on AWS, with Databricks' rules checked at plan time.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderConfig {}

/// What operations get once the provider is configured. The pure objects of
/// this provider need nothing yet; cloud clients join here.
#[derive(Debug, Default)]
pub struct Clients {}

#[derive(Default)]
pub struct CmkProvider;

#[async_trait]
impl Provider for CmkProvider {
    type Config = ProviderConfig;
    type Client = Clients;

    async fn configure(
        &self,
        _config: ProviderConfig,
        terraform_version: &str,
        _diags: &mut Diagnostics,
    ) -> Option<Clients> {
        tracing::debug!(terraform_version, "configured");
        Some(Clients {})
    }

    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<Clients>>> {
        vec![data_source(KmsKeyPolicy)]
    }

    fn resources(&self) -> Vec<Box<dyn DynResource<Clients>>> {
        vec![]
    }

    fn functions(&self) -> Vec<Box<dyn Function>> {
        vec![Box::new(KeyFeatures), Box::new(ParseKeyArn)]
    }
}
