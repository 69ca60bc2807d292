//! SANDBOX-LOCAL RULES. Small private checks the sandbox needs while the
//! rule engine is being built on another branch (`src/rules/`). When the
//! branches merge, the lead switches each of these to the engine; each one
//! says which Databricks rule it stands for.

use crate::cloud::databricks::{CustomerManagedKey, PricingTier};
use crate::rules::catalog::KeyFeature;
use crate::rules::ids::parse_key_arn;

/// Which slot of a workspace a key configuration is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    ManagedServices,
    Storage,
}

impl Slot {
    pub fn field(self) -> &'static str {
        match self {
            Slot::ManagedServices => "managed_services_customer_managed_key_id",
            Slot::Storage => "storage_customer_managed_key_id",
        }
    }
    pub fn feature(self) -> KeyFeature {
        match self {
            Slot::ManagedServices => KeyFeature::ManagedServices,
            Slot::Storage => KeyFeature::Storage,
        }
    }
}

/// SANDBOX-LOCAL RULE (Databricks: "requires the Enterprise pricing tier").
pub(crate) fn tier_allows_keys(tier: Option<PricingTier>) -> Result<(), String> {
    match tier {
        Some(PricingTier::Enterprise) => Ok(()),
        other => Err(format!(
            "Customer-managed keys require the ENTERPRISE pricing tier; this workspace is {}",
            other.map(|t| t.as_str()).unwrap_or("of unknown tier")
        )),
    }
}

/// SANDBOX-LOCAL RULE (a slot's configuration must include the slot's use case).
pub(crate) fn slot_accepts(slot: Slot, key: &CustomerManagedKey) -> Result<(), String> {
    if key.use_cases.contains(&slot.feature()) {
        Ok(())
    } else {
        Err(format!(
            "Customer managed key configuration {} has use cases [{}] and cannot be used for {}: it needs the use case {}",
            key.customer_managed_key_id,
            key.use_cases
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            slot.field(),
            slot.feature()
        ))
    }
}

/// SANDBOX-LOCAL RULE (the KMS key must be in the workspace's region). The
/// key's region comes from its ARN through `rules::ids::parse_key_arn`.
pub(crate) fn region_matches(
    key: &CustomerManagedKey,
    workspace_region: Option<&str>,
) -> Result<(), String> {
    let Some(info) = &key.aws_key_info else {
        return Err("the key configuration has no AWS key".into());
    };
    let key_region = match parse_key_arn(&info.key_arn) {
        Ok(a) => a.region,
        Err(e) => return Err(e.0),
    };
    match workspace_region {
        Some(r) if r == key_region => Ok(()),
        Some(r) => Err(format!(
            "The KMS key {} is in region {key_region} but the workspace is in {r}: the key must be in the workspace's region",
            info.key_arn
        )),
        None => Ok(()),
    }
}
