//! Typed shapes of the Account API and of the workspace dashboards list.

use serde::{Deserialize, Serialize};

use crate::rules::catalog::KeyFeature;

/// AWS part of a key configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AwsKeyInfo {
    pub key_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_region: Option<String>,
    /// Only meaningful with `STORAGE`; true or absent means the key also
    /// encrypts cluster EBS volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_key_for_cluster_volumes: Option<bool>,
}

/// GCP part of a key configuration (answers may carry it; this provider does not create it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpKeyInfo {
    pub kms_key_id: String,
}

/// A key configuration as the Account API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerManagedKey {
    pub customer_managed_key_id: String,
    #[serde(default)]
    pub account_id: String,
    /// Epoch milliseconds.
    #[serde(default)]
    pub creation_time: i64,
    #[serde(default)]
    pub use_cases: Vec<KeyFeature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_key_info: Option<AwsKeyInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_key_info: Option<GcpKeyInfo>,
}

/// Body of `POST /customer-managed-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCustomerManagedKey {
    pub use_cases: Vec<KeyFeature>,
    pub aws_key_info: AwsKeyInfo,
}

// The Account API's enumerations are the rule engine's: one definition each.
pub use crate::rules::facts::{ComputeMode, PricingTier, StorageMode, WorkspaceStatus};

/// Reads an optional enumeration leniently: a value this client does not know
/// (a newer API) becomes `None` instead of failing the whole answer.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(
        v.and_then(|v| match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(_) => {
                tracing::debug!(value = %v, "unrecognized enumeration value from the Account API");
                None
            }
        }),
    )
}

/// A workspace as the Account API answers it (the fields that matter here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub workspace_id: i64,
    #[serde(default)]
    pub workspace_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub pricing_tier: Option<PricingTier>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub compute_mode: Option<ComputeMode>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub storage_mode: Option<StorageMode>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub workspace_status: Option<WorkspaceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_services_customer_managed_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_customer_managed_key_id: Option<String>,
    /// Epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
}

/// The key bindings to change on a workspace; `None` leaves a slot alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceKeyUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_services_customer_managed_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_customer_managed_key_id: Option<String>,
}

impl WorkspaceKeyUpdate {
    /// The `update_mask` fields, in API spelling.
    pub fn mask(&self) -> Vec<&'static str> {
        let mut m = Vec::new();
        if self.managed_services_customer_managed_key_id.is_some() {
            m.push("managed_services_customer_managed_key_id");
        }
        if self.storage_customer_managed_key_id.is_some() {
            m.push("storage_customer_managed_key_id");
        }
        m
    }
}

/// An AI/BI dashboard of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub dashboard_id: String,
    #[serde(default)]
    pub display_name: String,
    /// RFC 3339.
    #[serde(default)]
    pub create_time: String,
}

/// `GET /api/2.0/lakeview/dashboards` answer page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DashboardPage {
    #[serde(default)]
    pub dashboards: Vec<Dashboard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}
