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
    /// Use cases this client knows; a value of a newer API is dropped (as
    /// Databricks' SDKs do), so one unknown value never fails the answer.
    #[serde(default, deserialize_with = "lenient_list")]
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

/// Reads a list of enumeration values leniently: values this client does not
/// know are dropped (with a debug log), `null` is an empty list.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let values = Option::<Vec<serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(values
        .into_iter()
        .filter_map(|v| match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(_) => {
                tracing::debug!(value = %v, "dropping an unrecognized enumeration value from the Account API");
                None
            }
        })
        .collect())
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
    /// Set when the workspace runs in a customer-managed VPC: then its status
    /// stays RUNNING while a key update is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_enumeration_values_are_dropped_not_fatal() {
        let k: CustomerManagedKey = serde_json::from_value(json!({
            "customer_managed_key_id": "k", "account_id": "a", "creation_time": 1,
            "use_cases": ["MANAGED_SERVICES", "QUANTUM_STORAGE", 7, "STORAGE"],
            "aws_key_info": {"key_arn": "arn", "key_region": "us-east-1"}
        }))
        .unwrap();
        assert_eq!(
            k.use_cases,
            [KeyFeature::ManagedServices, KeyFeature::Storage]
        );
        let k: CustomerManagedKey = serde_json::from_value(json!({
            "customer_managed_key_id": "k", "use_cases": null
        }))
        .unwrap();
        assert!(k.use_cases.is_empty());
        let all: Vec<CustomerManagedKey> = serde_json::from_value(json!([
            {"customer_managed_key_id": "k1", "use_cases": ["SOMETHING_NEW"]},
            {"customer_managed_key_id": "k2", "use_cases": ["STORAGE"]}
        ]))
        .unwrap();
        assert_eq!(all.len(), 2);
        let w: Workspace = serde_json::from_value(json!({
            "workspace_id": 1, "pricing_tier": "PLATINUM", "compute_mode": "QUANTUM",
            "storage_mode": 3, "workspace_status": "HIBERNATING", "aws_region": "us-east-1",
            "some_new_field": {"nested": true}
        }))
        .unwrap();
        assert_eq!(
            (
                w.pricing_tier,
                w.compute_mode,
                w.storage_mode,
                w.workspace_status
            ),
            (None, None, None, None)
        );
        assert_eq!(w.aws_region.as_deref(), Some("us-east-1"));
    }
}
