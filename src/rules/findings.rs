//! The rule registry and the outcome of applying a rule.
//!
//! Every rule has a stable id (`CMK001`, ...), a default severity, a title, a
//! remediation and a docs page. Applying a rule to facts gives an
//! [`Outcome`]: it passed, it failed (a finding that names the offending
//! values), or it cannot tell yet because a fact it needs is unknown.

use std::fmt;

use serde::Serialize;

use super::catalog::DataType;

/// How bad a failed rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fact a finding is about. Each Terraform object maps it to its own
/// attribute path (see [`Subject::attribute_hint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    WorkspacePricingTier,
    WorkspaceRegion,
    WorkspaceComputeMode,
    WorkspaceStatus,
    KeyRegion,
    KeyArn,
    KeyConfigUseCases,
    ReuseKeyForClusterVolumes,
    KeyState,
    KeySpec,
    KeyUsage,
    KeyPolicy,
    ManagedServicesBinding,
    StorageBinding,
    RunningClassicCompute,
    Dashboards,
    /// `--require` / `required_coverage` naming this data type.
    RequiredCoverage(DataType),
    /// `required_coverage` elements not known until apply.
    RequiredCoverageNotKnown,
}

impl Subject {
    /// A stable snake_case name (for JSON and SARIF).
    pub fn name(self) -> String {
        let s = match self {
            Subject::RequiredCoverage(d) => return format!("required_coverage.{d}"),
            Subject::WorkspacePricingTier => "workspace_pricing_tier",
            Subject::WorkspaceRegion => "workspace_region",
            Subject::WorkspaceComputeMode => "workspace_compute_mode",
            Subject::WorkspaceStatus => "workspace_status",
            Subject::KeyRegion => "key_region",
            Subject::KeyArn => "key_arn",
            Subject::KeyConfigUseCases => "key_config_use_cases",
            Subject::ReuseKeyForClusterVolumes => "reuse_key_for_cluster_volumes",
            Subject::KeyState => "key_state",
            Subject::KeySpec => "key_spec",
            Subject::KeyUsage => "key_usage",
            Subject::KeyPolicy => "key_policy",
            Subject::ManagedServicesBinding => "managed_services_binding",
            Subject::StorageBinding => "storage_binding",
            Subject::RunningClassicCompute => "running_classic_compute",
            Subject::Dashboards => "dashboards",
            Subject::RequiredCoverageNotKnown => "required_coverage",
        };
        s.to_string()
    }

    /// The attribute that usually holds this fact, in the Databricks
    /// Account API's spelling (objects may use other names).
    pub fn attribute_hint(self) -> &'static str {
        match self {
            Subject::WorkspacePricingTier => "pricing_tier",
            Subject::WorkspaceRegion => "aws_region",
            Subject::WorkspaceComputeMode => "compute_mode",
            Subject::WorkspaceStatus => "workspace_status",
            Subject::KeyRegion => "aws_key_info.key_region",
            Subject::KeyArn => "aws_key_info.key_arn",
            Subject::KeyConfigUseCases => "use_cases",
            Subject::ReuseKeyForClusterVolumes => "aws_key_info.reuse_key_for_cluster_volumes",
            Subject::KeyState => "is_enabled",
            Subject::KeySpec => "customer_master_key_spec",
            Subject::KeyUsage => "key_usage",
            Subject::KeyPolicy => "policy",
            Subject::ManagedServicesBinding => "managed_services_customer_managed_key_id",
            Subject::StorageBinding => "storage_customer_managed_key_id",
            Subject::RunningClassicCompute => "workspace_status",
            Subject::Dashboards => "managed_services_customer_managed_key_id",
            Subject::RequiredCoverage(_) | Subject::RequiredCoverageNotKnown => "required_coverage",
        }
    }
}

/// A rule's identity. `code()` gives the stable `CMKxxx` id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    EnterpriseTier,
    KeyRegion,
    SymmetricKey,
    KeyUsable,
    SlotUseCase,
    ReuseWithoutStorage,
    EbsKeyOnServerless,
    StorageKeyOnServerless,
    StorageKeyReplacement,
    ClassicComputeRunning,
    LegacyDashboards,
    UnprotectableDataType,
    RequiredCoverage,
    CompositeKeyId,
    PolicyDatabricksGrants,
    PolicyClusterVolumes,
    UseCasesValid,
    KeyArnWellFormed,
    StorageKeyVerify,
    WorkspaceUpdatable,
    PolicyGuideStatements,
    KeyPartitionDeployment,
}

impl RuleId {
    pub fn rule(self) -> &'static Rule {
        RULES
            .iter()
            .find(|r| r.key == self)
            .expect("every RuleId has a registry entry")
    }

    pub fn code(self) -> &'static str {
        self.rule().id
    }

    pub fn parse(code: &str) -> Option<RuleId> {
        RULES.iter().find(|r| r.id == code).map(|r| r.key)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One rule of the registry.
#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub key: RuleId,
    pub severity: Severity,
    pub title: &'static str,
    /// What the rule checks.
    pub checks: &'static str,
    /// Why: the Databricks documentation the rule follows, in our words.
    pub why: &'static str,
    /// A message as the rule would write it.
    pub example: &'static str,
    pub remediation: &'static str,
    /// The evidence for the rule's severity: what Databricks or AWS refuses
    /// (an error), or why a failure is only worth knowing (a warning).
    pub severity_why: &'static str,
    /// The Databricks documentation page the rule comes from.
    pub source: &'static str,
}

/// Where this provider's documentation is published, fixed at build time
/// by `CMK_DOCS_BASE_URL` (no trailing slash); by default the Terraform
/// Registry's documentation of `databricks-cmk/cmk`. Users do not have the
/// repository, so every message links here, never to `docs/...`. The
/// registry publishes only its own categories of `docs/` (index,
/// resources, data sources, functions, guides), so the rule pages are
/// guides (subcategory "Rules"): see [`rule_page`].
pub const DOCS_BASE_URL: &str = match option_env!("CMK_DOCS_BASE_URL") {
    Some(u) => u,
    None => "https://registry.terraform.io/providers/databricks-cmk/cmk/latest/docs",
};

/// What follows a page's name in [`DOCS_BASE_URL`]'s pages, fixed at build
/// time by `CMK_DOCS_PAGE_SUFFIX`: empty for the registry (`.../guides/cmk008`),
/// `.md` for a base that is a repository's `docs/` directory on a forge.
pub const DOCS_PAGE_SUFFIX: &str = match option_env!("CMK_DOCS_PAGE_SUFFIX") {
    Some(s) => s,
    None => "",
};

/// The page of rule `id` under `docs/` without its `.md` (`guides/cmk008`):
/// the generated file, and the registry's URL path, are both named here.
pub fn rule_page(id: &str) -> String {
    format!("guides/{}", id.to_ascii_lowercase())
}

/// The index of the rules under `docs/` without its `.md`.
pub const RULES_INDEX_PAGE: &str = "guides/rules";

/// The absolute URL of a documentation page (`guides/cmk008`).
pub fn docs_url(page: &str) -> String {
    format!(
        "{}/{page}{DOCS_PAGE_SUFFIX}",
        DOCS_BASE_URL.trim_end_matches('/')
    )
}

impl Rule {
    /// The rule's page: an absolute URL (see [`DOCS_BASE_URL`]); the
    /// generated `docs/guides/cmkxxx.md` is its source.
    pub fn docs_path(&self) -> String {
        docs_url(&rule_page(self.id))
    }
}

#[allow(clippy::too_many_arguments)]
const fn rule(
    id: &'static str,
    key: RuleId,
    severity: Severity,
    source: &'static str,
    title: &'static str,
    checks: &'static str,
    why: &'static str,
    example: &'static str,
    remediation: &'static str,
    severity_why: &'static str,
) -> Rule {
    Rule {
        id,
        key,
        severity,
        title,
        checks,
        why,
        example,
        remediation,
        severity_why,
        source,
    }
}

/// Databricks' overview of customer-managed keys (Enterprise tier, which key
/// protects which data, serverless).
const OVERVIEW: &str = "https://docs.databricks.com/aws/en/security/keys/customer-managed-keys";
/// Databricks' guide to configuring customer-managed keys on AWS (key
/// policy, region, key type, existing workspaces, the storage key).
const CONFIGURE: &str =
    "https://docs.databricks.com/aws/en/security/keys/configure-customer-managed-keys";
/// The Account API's create key configuration call (use cases, key ARN,
/// `reuse_key_for_cluster_volumes`).
const CREATE_KEY: &str = "https://docs.databricks.com/api/account/encryptionkeys/create";
/// The Account API's update workspace call (workspace status).
const UPDATE_WORKSPACE: &str = "https://docs.databricks.com/api/account/workspaces/update";
/// Databricks on AWS GovCloud (deployments).
const GOVCLOUD: &str = "https://docs.databricks.com/aws/en/security/privacy/gov-cloud";

use Severity::{Error as E, Warning as W};

/// The registry, in id order.
pub static RULES: [Rule; 22] = [
    rule("CMK001", RuleId::EnterpriseTier, E, OVERVIEW,
        "Workspace is on the Enterprise pricing tier",
        "A workspace that gets a customer-managed key (either slot) must have `pricing_tier = ENTERPRISE`.",
        "Databricks' overview of customer-managed keys for encryption states that the feature requires the Enterprise pricing tier; on any other tier the Account API rejects the key binding.",
        "workspace \"analytics\" has pricing tier PREMIUM; customer-managed keys need ENTERPRISE",
        "Set the workspace's pricing_tier to ENTERPRISE (an account admin may need to upgrade the subscription first), or remove the key bindings.",
        "Error: the Account API refuses to bind a key configuration to a workspace that is not on ENTERPRISE (400 INVALID_PARAMETER_VALUE), so the apply would fail half-way."),
    rule("CMK002", RuleId::KeyRegion, E, CONFIGURE,
        "Key is in the workspace's AWS region",
        "The KMS key of every bound key configuration is in the same AWS region as the workspace; a configuration's `key_region`, when given, matches the region in its key ARN.",
        "Databricks' guide to configuring customer-managed keys says the KMS key must be in the same AWS region as the workspace that uses it; a key elsewhere cannot be used and the update fails.",
        "key arn:aws:kms:us-west-2:123456789012:key/... is in us-west-2 but workspace \"analytics\" is in us-east-1",
        "Create (or replicate, for multi-Region keys) the key in the workspace's region and point the key configuration at that key.",
        "Error: Databricks cannot use a KMS key from another region; the key update is refused (400) and a new workspace fails to deploy."),
    rule("CMK003", RuleId::SymmetricKey, E, CONFIGURE,
        "Key is symmetric and for encryption",
        "The KMS key has key spec `SYMMETRIC_DEFAULT` and key usage `ENCRYPT_DECRYPT`.",
        "Databricks' guide requires a symmetric KMS key; asymmetric, HMAC or signing keys cannot wrap Databricks' data keys.",
        "key arn:aws:kms:...:key/... has key spec RSA_2048 and usage SIGN_VERIFY; Databricks needs SYMMETRIC_DEFAULT and ENCRYPT_DECRYPT",
        "Create a new key with customer_master_key_spec = SYMMETRIC_DEFAULT and key_usage = ENCRYPT_DECRYPT (both are the AWS defaults); a key's spec cannot be changed.",
        "Error: KMS itself refuses Encrypt, Decrypt and GenerateDataKey on asymmetric and HMAC keys, so nothing Databricks does with the key can work."),
    rule("CMK004", RuleId::KeyUsable, E, CONFIGURE,
        "Key is enabled",
        "The KMS key used by a key configuration is enabled: not Disabled, PendingDeletion, PendingImport, PendingReplicaDeletion or Unavailable, and the plan does not destroy it.",
        "Databricks' documentation warns that disabling or deleting the key makes the data it protects unreadable once the cached data key expires: destroying the key destroys the data.",
        "key arn:aws:kms:...:key/... is PendingDeletion; data encrypted with it becomes unreadable",
        "Enable the key (or cancel its scheduled deletion) before Databricks uses it; never destroy a key that a workspace still uses.",
        "Error: KMS refuses every cryptographic call on a disabled key or one pending deletion; data written with it becomes unreadable once Databricks' cached data key expires."),
    rule("CMK005", RuleId::SlotUseCase, E, CREATE_KEY,
        "Key configuration's use cases match its slot",
        "The key configuration bound to a workspace's managed-services slot has the `MANAGED_SERVICES` use case; the one bound to the storage slot has `STORAGE`.",
        "Databricks' Account API accepts a key configuration for a slot only when the configuration was created for that use case; otherwise the workspace update fails.",
        "storage slot of workspace \"analytics\" is bound to key configuration 9f3c... whose use_cases are [MANAGED_SERVICES]; it needs STORAGE",
        "Add the missing use case to the key configuration (which replaces it), or bind a configuration made for that slot.",
        "Error: the Account API refuses a key configuration in a slot it was not created for (400), so the apply would fail."),
    rule("CMK006", RuleId::ReuseWithoutStorage, E, CREATE_KEY,
        "reuse_key_for_cluster_volumes only with STORAGE",
        "`aws_key_info.reuse_key_for_cluster_volumes = true` is set only on key configurations that have the `STORAGE` use case (`false`, which asks for nothing, passes).",
        "The Account API reference says the field applies only when the use cases include STORAGE; elsewhere it does nothing, so cluster volumes you meant to protect are not.",
        "reuse_key_for_cluster_volumes = true but use_cases are [MANAGED_SERVICES]; the field applies only with STORAGE, so no cluster EBS volume is encrypted with this key",
        "Add STORAGE to use_cases, or remove reuse_key_for_cluster_volumes (or set it to false).",
        "Error, although the Account API accepts the request: it ignores the field without STORAGE, so the configuration states an encryption of cluster EBS volumes that never happens, and a reviewer reading the plan believes those volumes are encrypted with the customer's key. This provider is built to reject EBS keys that cannot take effect at plan, so a configuration that cannot do what it states fails instead of passing with a note."),
    rule("CMK007", RuleId::EbsKeyOnServerless, E, OVERVIEW,
        "No cluster-volume key on a serverless workspace",
        "A storage key configuration that also encrypts cluster EBS volumes (`reuse_key_for_cluster_volumes` true, or omitted: Databricks' default is true) is not bound to, or planned for, a workspace with `compute_mode = SERVERLESS`.",
        "Databricks: \"Customer-managed keys for EBS storage, which is an optional part of the customer-managed workspace storage feature, does not apply to serverless compute resources.\" Serverless compute uses short-lived disks that customer-managed keys never cover, so the configuration asks for an encryption that cannot happen.",
        "key configuration 9f3c... has reuse_key_for_cluster_volumes = true (omitted: Databricks' default) but workspace \"analytics\" is SERVERLESS: customer-managed keys for EBS storage do not apply to serverless compute, so the cluster-volume encryption it asks for never happens",
        "Remove the storage key binding (storage_key or storage_key_id) from the serverless workspace and bind a managed-services key, the only key a serverless workspace needs (the same fix as CMK008); a storage key configuration meant for cluster volumes belongs on a HYBRID (classic compute) workspace.",
        "Error, although the Account API accepts the binding: the request succeeds and the EBS encryption it asks for never takes effect (Databricks: \"Customer-managed keys for EBS storage ... does not apply to serverless compute resources\"), so a reviewer reading the plan would believe volumes are encrypted with the customer's key when they are not. Rejecting EBS keys for serverless at plan is what this provider is built for; the storage bucket part alone is CMK008, a warning."),
    rule("CMK008", RuleId::StorageKeyOnServerless, W, OVERVIEW,
        "Storage key on a serverless workspace",
        "A storage key configuration is bound to a workspace with `compute_mode = SERVERLESS`.",
        "Databricks documents that serverless workspaces need only the managed-services key, which also covers their default storage; a storage key adds nothing there.",
        "workspace \"analytics\" is SERVERLESS: only the managed-services key applies, the storage key (key configuration 9f3c...) is not needed",
        "Remove the storage key binding (storage_key or storage_key_id) from the serverless workspace and bind a managed-services key, the only key a serverless workspace needs.",
        "Warning: the binding is accepted and harmless; it only adds a key that serverless workspaces do not need."),
    rule("CMK009", RuleId::StorageKeyReplacement, E, CONFIGURE,
        "Existing storage key is never replaced",
        "The plan does not change or remove a workspace's existing storage key configuration. Adding one where none exists, and rotating the managed-services key, are allowed.",
        "Databricks' guide says you cannot replace an existing key configuration for workspace storage; it can be set once on a workspace that has none. The managed-services key, by contrast, can be rotated.",
        "workspace \"analytics\" already has storage key configuration 1111...; Databricks cannot replace it with 2222...",
        "Keep the current storage key configuration (rotate the KMS key material inside AWS instead), or create a new workspace.",
        "Error: the Account API refuses to replace or remove a workspace's storage key configuration (\"You cannot replace an existing key configuration for workspace storage\")."),
    rule("CMK010", RuleId::ClassicComputeRunning, E, CONFIGURE,
        "Classic compute stopped before keys change",
        "When the keys of a RUNNING workspace change, no classic compute (clusters, pools, classic SQL warehouses) is running.",
        "Databricks' guide says all classic compute must be stopped before a running workspace's keys are updated, or the request fails.",
        "workspace \"analytics\" is RUNNING with classic compute: cluster \"etl\", classic_sql_warehouse \"bi\"; stop them before changing keys",
        "Stop (terminate) the listed clusters, pools and classic SQL warehouses, apply, then start them again.",
        "Error: the Account API refuses a key update on a running workspace while classic compute runs."),
    rule("CMK011", RuleId::LegacyDashboards, W, OVERVIEW,
        "AI/BI dashboards created before the cutoff",
        "No AI/BI dashboard of a workspace that gets a managed-services key was created on or before 2024-11-01. A warning; an error when `ai_bi_dashboards` coverage is required.",
        "Databricks notes that only AI/BI dashboards created after November 1, 2024 are encrypted with, and compatible with, customer-managed keys.",
        "2 AI/BI dashboards were created on or before 2024-11-01 and are not encrypted with the key: 01ef..., 01f0...",
        "Re-create (clone) the listed dashboards, then delete the old ones.",
        "Warning: the key is bound and works; only the listed dashboards stay encrypted with Databricks-managed keys. It becomes an error when ai_bi_dashboards coverage is required, because then the requirement is not met."),
    rule("CMK012", RuleId::UnprotectableDataType, E, OVERVIEW,
        "Required data type that no key can protect",
        "A required data type is one that no customer-managed key configuration can protect here: `dbfs_mounts`, `model_serving_image`, `serverless_compute_disks`, and `ebs_volumes` on a serverless workspace.",
        "Databricks documents that DBFS mounts are outside workspace storage, that the model image and ephemeral serverless storage use Databricks-managed keys only, and that serverless compute disks never use customer-managed keys.",
        "ebs_volumes is required but workspace \"analytics\" is SERVERLESS: no customer-managed key protects it",
        "Drop the requirement, or protect the data another way (S3 bucket encryption for mounts, classic compute for EBS).",
        "Error: the data type was required (`required_coverage` or `--require`) and no key configuration can ever protect it here, so the requirement cannot be met."),
    rule("CMK013", RuleId::RequiredCoverage, E, OVERVIEW,
        "Required data type not protected",
        "Each required data type is protected by the keys the plan binds (for instance `secrets` needs a managed-services key, `dbfs_root` a storage key, `ebs_volumes` a storage key that also encrypts cluster volumes).",
        "Databricks' table of which key feature protects which data: managed services for control-plane data, workspace storage for the storage bucket and, optionally, cluster EBS volumes.",
        "secrets is required but is not protected: it needs a MANAGED_SERVICES key and workspace \"analytics\" has none",
        "Bind a key configuration with the missing use case, or drop the requirement.",
        "Error: the data type was required (`required_coverage` or `--require`) and the planned keys leave it unprotected."),
    rule("CMK014", RuleId::CompositeKeyId, E, CREATE_KEY,
        "Bare key configuration id, not the composite id",
        "Key bindings receive a bare `customer_managed_key_id` (a UUID), not the composite `<account_id>/<customer_managed_key_id>` that the official provider's `databricks_mws_customer_managed_keys.*.id` holds.",
        "The Account API rejects a composite id with `Invalid customerManagedKeyId: <acct>/<id>`; the official provider learns it only at apply time.",
        "storage_customer_managed_key_id comes from databricks_mws_customer_managed_keys.storage.id, the composite <account_id>/<id>; use .customer_managed_key_id",
        "Reference `customer_managed_key_id` instead of `id`.",
        "Error: the Account API refuses the composite id (\"Invalid customerManagedKeyId: <acct>/<id>\")."),
    rule("CMK015", RuleId::PolicyDatabricksGrants, E, CONFIGURE,
        "Key policy grants Databricks what the use cases need",
        "The key policy allows Databricks' principal (with its account tag) the actions its services cannot work without: Encrypt and Decrypt for MANAGED_SERVICES; Encrypt, Decrypt and GenerateDataKey for STORAGE. Evaluated as IAM does: wildcards, NotAction, Deny over Allow, conditions. An `aws_kms_grant` on the key to Databricks' principal counts for the operations it lists (a key with the default policy and such a grant passes; a grant whose key, grantee or operations are not known is \"cannot tell yet\", naming it); an explicit Deny of the policy still wins. The further statements of Databricks' guide are CMK021.",
        "Databricks' guide lists the key policy statements each use case needs; without them Databricks cannot use the key and the workspace fails.",
        "the key policy does not allow arn:aws:iam::414351767826:root kms:GenerateDataKey (needed for STORAGE)",
        "Use the cmk_kms_key_policy data source (or the statements in Databricks' guide) for the key policy.",
        "Error, for the actions without which Databricks' services refuse to work: Encrypt and Decrypt for MANAGED_SERVICES; Encrypt, Decrypt and GenerateDataKey for STORAGE. Without them Databricks cannot wrap or unwrap its data keys and the workspace fails. The other statements of Databricks' guide are checked by CMK021, as a warning, because Databricks' security reference architecture runs in production without them."),
    rule("CMK016", RuleId::PolicyClusterVolumes, E, CONFIGURE,
        "Key policy lets the cross-account role encrypt cluster volumes",
        "When the key also encrypts cluster EBS volumes, the key policy allows the workspace's cross-account IAM role Decrypt, GenerateDataKey*, CreateGrant and DescribeKey through EC2 (`kms:ViaService = ec2.<region>.amazonaws.com`).",
        "Databricks' guide adds a statement for the cross-account role when the storage key also encrypts EBS volumes; without it classic clusters cannot attach encrypted volumes and fail to start.",
        "the key policy does not allow arn:aws:iam::123456789012:role/dbx kms:CreateGrant via ec2.us-east-1.amazonaws.com (needed for cluster volumes)",
        "Pass cross_account_role_arn to the cmk_kms_key_policy data source, or add the EBS statement from Databricks' guide; or set reuse_key_for_cluster_volumes = false.",
        "Error: without the EBS statement for the cross-account role, EC2 cannot create or attach the encrypted volumes and classic clusters fail to start."),
    rule("CMK017", RuleId::UseCasesValid, E, CREATE_KEY,
        "use_cases are valid",
        "A key configuration has at least one use case and every use case is `MANAGED_SERVICES` or `STORAGE`.",
        "The Account API answers `Missing required parameters: use_cases` for an empty list and rejects unknown values; the official provider does not check them.",
        "use_cases contains \"STORAGES\"; valid use cases are MANAGED_SERVICES, STORAGE",
        "Fix the spelling; use MANAGED_SERVICES, STORAGE or both.",
        "Error: the Account API refuses an empty or unknown use case (\"Missing required parameters: use_cases\", 400)."),
    rule("CMK018", RuleId::KeyArnWellFormed, E, CREATE_KEY,
        "Key ARN is a KMS key ARN",
        "`aws_key_info.key_arn` is a well-formed KMS key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID`), not an alias ARN or another service's ARN.",
        "Databricks' Account API needs the key ARN; an alias ARN or a malformed one fails at apply time.",
        "\"arn:aws:kms:us-east-1:123456789012:alias/dbx\" is an alias ARN; Databricks needs the key ARN",
        "Reference the key's `arn` attribute (aws_kms_key.*.arn), not the alias.",
        "Error: the Account API refuses an alias ARN or a malformed ARN when the key configuration is created."),
    rule("CMK019", RuleId::StorageKeyVerify, W, CONFIGURE,
        "Check that a storage key change took",
        "A storage key is being set on an existing, RUNNING workspace.",
        "Databricks' guide says a storage-key update can take minutes and, if it fails, the workspace may silently revert; the change must be checked afterwards.",
        "the storage key (key configuration 2222...) is being set on running workspace \"analytics\": check afterwards that storage_customer_managed_key_id took",
        "After apply, read the workspace back (terraform refresh or the Account API) and check its storage_customer_managed_key_id and workspace_status.",
        "Warning: nothing is refused; a storage-key change may revert silently, so the advice is to check it took (the provider's binding checks it itself)."),
    rule("CMK020", RuleId::WorkspaceUpdatable, E, UPDATE_WORKSPACE,
        "Workspace status lets its keys change",
        "The keys of an existing workspace change only while it is RUNNING or FAILED; on a FAILED workspace a storage key is added only if the workspace never ran.",
        "Databricks' guide \"Update a running or failed workspace\" and the Account API's workspace update documentation allow updates of RUNNING and FAILED workspaces only; for a FAILED workspace that was ever RUNNING, even briefly, a key configuration for workspace storage cannot be added.",
        "workspace \"analytics\" is PROVISIONING; Databricks changes keys only on a RUNNING or FAILED workspace",
        "Wait until the workspace is RUNNING (or, for a failed deployment, FAILED) and plan again; for a FAILED workspace that once ran, bind only the managed-services key or create a new workspace.",
        "Error: the Account API refuses key updates on a workspace that is neither RUNNING nor FAILED, and a storage key on a FAILED workspace that once ran."),
    rule("CMK021", RuleId::PolicyGuideStatements, W, CONFIGURE,
        "Key policy has the statements Databricks' guide adds",
        "For a STORAGE key, the key policy also allows Databricks' principal what Databricks' configuration guide adds beyond what the services need: ReEncrypt*, GenerateDataKeyWithoutPlaintext and DescribeKey in the storage statement, and the grants statement (CreateGrant, ListGrants and RevokeGrant under `Bool kms:GrantIsForAWSResource = true`). Evaluated as IAM does. An `aws_kms_grant` to Databricks' principal counts for the operations it lists, as in CMK015.",
        "Databricks' guide to configuring customer-managed keys shows these statements; Databricks' security reference architecture for AWS omits the grants statement and runs without it.",
        "the key policy does not allow arn:aws:iam::414351767826:root kms:CreateGrant (needed for STORAGE); ...; Databricks' configuration guide adds the statement AllowDatabricksStorageGrants (kms:CreateGrant, kms:ListGrants, kms:RevokeGrant for arn:aws:iam::414351767826:root under Bool kms:GrantIsForAWSResource = true, ...)",
        "Add the grants statement from Databricks' guide (the cmk_kms_key_policy data source generates it), or keep the reference architecture's policy knowingly.",
        "Warning: Databricks' security reference architecture for AWS, which Databricks runs in production and publishes, has no grants statement for Databricks' principal in its storage key policy, so the services work without it; Databricks' configuration guide adds it, so its absence is worth knowing."),
    rule("CMK022", RuleId::KeyPartitionDeployment, E, GOVCLOUD,
        "Key is in the partition of the Databricks deployment",
        "The KMS key (its ARN, or the region a new key is made in) is in the AWS partition of the Databricks deployment it serves: `aws` for commercial, `aws-us-gov` for GovCloud civilian and GovCloud DoD. The deployment comes from the provider's `deployment` argument or its account `host` (in review: `--deployment`, or the Databricks provider block's `host`); while neither says which, the rule waits.",
        "Databricks on AWS runs in separate deployments: commercial (accounts.cloud.databricks.com), GovCloud civilian (accounts.cloud.databricks.us) and GovCloud DoD (accounts-dod.cloud.databricks.mil), each with its own AWS account in its own partition. A GovCloud workspace runs in us-gov-west-1 and its keys must be there; Databricks' commercial control plane cannot reach a key in aws-us-gov, nor GovCloud's a key in aws.",
        "the key is in partition aws, but the Databricks deployment is GovCloud civilian (partition aws-us-gov); a key in aws serves only commercial",
        "Create the key in the deployment's partition (us-gov-west-1 for GovCloud), or point the provider at the deployment the key is for (`host`, or `deployment`).",
        "Error: Databricks' principal of one deployment has no access to a key in another partition (IAM principals never cross partitions), so the key configuration is refused or the workspace cannot use its key."),
];

/// How a rule applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// A fact the rule needs is unknown until apply.
    CannotTell,
    /// The rule compares with what exists (a workspace's current keys,
    /// status, compute or dashboards), and the review was given neither a
    /// plan (whose prior state says it) nor `--live` (which reads it): not
    /// checked, never counted as passed.
    NeedsState,
}

impl Verdict {
    /// The spelling of JSON, SARIF properties and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::CannotTell => "cannot_tell",
            Verdict::NeedsState => "needs_state",
        }
    }
}

/// How a "needs state" outcome reads, before what the rule would need.
pub const NEEDS_STATE: &str = "needs state: not checked without a plan or --live";

/// The rules that compare with what exists, and what of it each reads: a
/// configuration reviewed without a plan or `--live` leaves them "needs
/// state" for a workspace that may exist. The last five read only what a
/// workspace resource of the configuration does not set itself (a binding's
/// workspace, not in the configuration).
pub const STATE_RULES: [(RuleId, &str); 11] = [
    (RuleId::StorageKeyReplacement, "the workspace's current storage key"),
    (RuleId::ClassicComputeRunning, "the workspace's status, current keys and running classic compute"),
    (RuleId::LegacyDashboards, "the workspace's AI/BI dashboards and their creation times"),
    (RuleId::StorageKeyVerify, "the workspace's status and current storage key"),
    (RuleId::WorkspaceUpdatable, "the workspace's status and current keys"),
    (RuleId::RequiredCoverage, "the workspace's current keys (a slot left as it is keeps them) and dashboards"),
    (RuleId::EnterpriseTier, "an existing workspace's pricing tier, when no workspace resource of the configuration sets it"),
    (RuleId::KeyRegion, "an existing workspace's region, when no workspace resource of the configuration sets it"),
    (RuleId::EbsKeyOnServerless, "an existing workspace's compute mode, when no workspace resource of the configuration sets it"),
    (RuleId::StorageKeyOnServerless, "an existing workspace's compute mode, when no workspace resource of the configuration sets it"),
    (RuleId::UnprotectableDataType, "an existing workspace's compute mode, when no workspace resource of the configuration sets it"),
];

/// What of an existing workspace a rule reads, when it compares with what
/// exists ([`STATE_RULES`]).
pub fn state_read_by(rule: RuleId) -> Option<&'static str> {
    STATE_RULES
        .iter()
        .find(|(r, _)| *r == rule)
        .map(|(_, what)| *what)
}

/// Of the [`STATE_RULES`], those that read what a plan does not hold: a
/// plan's prior state says whether the workspace exists and how its keys
/// change, but only `--live` reads these (the workspace's own APIs). A plan
/// decides such a rule only where that is enough (a workspace it creates,
/// keys left as they are).
pub const LIVE_ONLY_READS: [(RuleId, &str); 3] = [
    (RuleId::ClassicComputeRunning, "its running classic compute"),
    (RuleId::LegacyDashboards, "its dashboards"),
    (
        RuleId::RequiredCoverage,
        "its dashboards, where a required data type depends on them",
    ),
];

/// What of an existing workspace a rule reads that only `--live` reads
/// ([`LIVE_ONLY_READS`]).
pub fn live_only_read_by(rule: RuleId) -> Option<&'static str> {
    LIVE_ONLY_READS
        .iter()
        .find(|(r, _)| *r == rule)
        .map(|(_, what)| *what)
}

/// Longest value quoted whole in a message; longer ones keep their head and
/// tail and say how long they were.
pub const QUOTE_MAX_CHARS: usize = 120;
/// Longest message; the rest is cut with a note.
pub const MESSAGE_MAX_CHARS: usize = 2000;
const HEAD: usize = 80;
const TAIL: usize = 24;

/// A value for a message: Rust-quoted (control characters escaped) and cut
/// to a readable length.
pub fn quote(value: &str) -> String {
    readable(&format!("{value:?}"))
}

/// A run of text cut to head and tail when longer than
/// [`QUOTE_MAX_CHARS`]; the note to append (after a closing quote) when cut.
fn cut(run: &str, out: &mut String) -> Option<String> {
    let n = run.chars().count();
    if n <= QUOTE_MAX_CHARS {
        out.push_str(run);
        return None;
    }
    out.extend(run.chars().take(HEAD));
    out.push('…');
    out.extend(run.chars().skip(n - TAIL));
    Some(format!(" ({n} characters)"))
}

/// A message made readable: control and invisible characters
/// ([`crate::text::is_hidden`]) escaped, every quoted
/// value and every long unbroken run (an id, an ARN, a pasted blob) cut to
/// [`QUOTE_MAX_CHARS`], the whole cut to [`MESSAGE_MAX_CHARS`]. Applied to
/// every outcome's message, so values from a plan or an API answer never
/// flood a terminal or a log.
pub fn readable(message: &str) -> String {
    // Values not known until apply read as `${origin}`.
    let message: &str = &super::unknown::readable_cow(message);
    let hidden = if message.is_ascii() {
        message.bytes().any(|b| b.is_ascii_control())
    } else {
        message.chars().any(crate::text::is_hidden)
    };
    let escaped: std::borrow::Cow<str> = if hidden {
        message
            .chars()
            .flat_map(|c| {
                let esc: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else if crate::text::is_hidden(c) {
                    format!("\\u{{{:x}}}", c as u32).chars().collect()
                } else {
                    vec![c]
                };
                esc
            })
            .collect::<String>()
            .into()
    } else {
        message.into()
    };
    let m: &str = &escaped;
    if fits(m) {
        // Nothing in it is too long.
        return m.to_string();
    }
    let mut out = String::with_capacity(m.len().min(MESSAGE_MAX_CHARS + 64));
    for p in pieces(m) {
        match p {
            Piece::Quoted { inner, closed } => {
                out.push('"');
                let note = cut(&m[inner], &mut out);
                if closed {
                    out.push('"');
                }
                out.extend(note);
            }
            Piece::Blank(c) => out.push(c),
            Piece::Run(r) => {
                let note = cut(&m[r], &mut out);
                out.extend(note);
            }
        }
    }
    let n = out.chars().count();
    if n > MESSAGE_MAX_CHARS {
        let kept: String = out.chars().take(MESSAGE_MAX_CHARS).collect();
        return format!("{kept}… (message cut, {n} characters)");
    }
    out
}

/// Whether [`readable`] leaves a message without hidden characters as it
/// is: short enough, and no quoted value or unbroken run (the pieces it
/// cuts, found as it finds them) longer than [`QUOTE_MAX_CHARS`] bytes,
/// so not longer in characters either.
fn fits(m: &str) -> bool {
    if m.len() <= QUOTE_MAX_CHARS {
        return true;
    }
    m.len() <= MESSAGE_MAX_CHARS
        && pieces(m).all(|p| match p {
            Piece::Quoted { inner: r, .. } | Piece::Run(r) => r.len() <= QUOTE_MAX_CHARS,
            Piece::Blank(_) => true,
        })
}

/// A piece of a message as [`readable`] reads it.
enum Piece {
    /// A quoted value: the byte range inside the quotes, and whether the
    /// closing quote is there.
    Quoted {
        inner: std::ops::Range<usize>,
        closed: bool,
    },
    /// One ASCII blank.
    Blank(char),
    /// An unbroken run: up to a blank or a quote.
    Run(std::ops::Range<usize>),
}

/// The pieces of a message, in order. Only ASCII bytes are compared: a
/// UTF-8 continuation byte never equals '"', '\\' or ASCII whitespace, so
/// every range ends on a character boundary.
fn pieces(m: &str) -> impl Iterator<Item = Piece> + '_ {
    let b = m.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= b.len() {
            return None;
        }
        Some(if b[i] == b'"' {
            // Up to the closing quote not escaped by a backslash.
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = j.min(b.len());
            let p = Piece::Quoted {
                inner: i + 1..end,
                closed: end < b.len(),
            };
            i = end + 1;
            p
        } else if b[i].is_ascii_whitespace() {
            i += 1;
            Piece::Blank(b[i - 1] as char)
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'"' {
                i += 1;
            }
            Piece::Run(start..i)
        })
    })
}

/// [`readable`] of a message already owned: an ASCII message without
/// control characters (so without unknowns' markers) that [`fits`] is
/// kept as it is.
fn readable_owned(message: String) -> String {
    if message
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_control())
        && fits(&message)
    {
        return message;
    }
    readable(&message)
}

/// The result of applying one rule to one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub rule: RuleId,
    pub subject: Subject,
    pub verdict: Verdict,
    /// The rule's severity, or an escalation (e.g. CMK011 when required).
    pub severity: Severity,
    /// One line naming the values involved.
    pub message: String,
}

impl Outcome {
    pub fn pass(rule: RuleId, subject: Subject, message: impl Into<String>) -> Outcome {
        Outcome {
            rule,
            subject,
            verdict: Verdict::Pass,
            severity: rule.rule().severity,
            message: readable_owned(message.into()),
        }
    }

    pub fn fail(rule: RuleId, subject: Subject, message: impl Into<String>) -> Outcome {
        Outcome {
            rule,
            subject,
            verdict: Verdict::Fail,
            severity: rule.rule().severity,
            message: readable_owned(message.into()),
        }
    }

    pub fn cannot_tell(rule: RuleId, subject: Subject, message: impl Into<String>) -> Outcome {
        Outcome {
            rule,
            subject,
            verdict: Verdict::CannotTell,
            severity: rule.rule().severity,
            message: readable_owned(message.into()),
        }
    }

    /// A rule that compares with what exists, not checked: `why` says what
    /// it would read.
    pub fn needs_state(rule: RuleId, subject: Subject, why: impl Into<String>) -> Outcome {
        Outcome {
            rule,
            subject,
            verdict: Verdict::NeedsState,
            severity: rule.rule().severity,
            message: readable_owned(format!("{NEEDS_STATE}: {}", why.into())),
        }
    }

    pub fn with_severity(mut self, severity: Severity) -> Outcome {
        self.severity = severity;
        self
    }

    pub fn is_failure(&self) -> bool {
        self.verdict == Verdict::Fail
    }

    pub fn is_error(&self) -> bool {
        self.verdict == Verdict::Fail && self.severity == Severity::Error
    }

    pub fn remediation(&self) -> &'static str {
        self.rule.rule().remediation
    }

    pub fn docs(&self) -> String {
        self.rule.rule().docs_path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Users do not have the repository: every rule links an absolute URL.
    #[test]
    fn every_rule_links_an_absolute_page() {
        for r in RULES.iter() {
            let u = r.docs_path();
            let parsed = reqwest::Url::parse(&u).unwrap_or_else(|e| panic!("{u}: {e}"));
            assert!(matches!(parsed.scheme(), "https" | "http"), "{u}");
            assert!(
                u.ends_with(&format!(
                    "/guides/{}{DOCS_PAGE_SUFFIX}",
                    r.id.to_ascii_lowercase()
                )),
                "{u}"
            );
        }
    }

    #[test]
    fn registry_ids_are_sequential_and_unique() {
        for (i, r) in RULES.iter().enumerate() {
            assert_eq!(r.id, format!("CMK{:03}", i + 1));
            assert_eq!(r.key.code(), r.id);
            assert_eq!(RuleId::parse(r.id), Some(r.key));
            assert!(!r.title.is_empty() && !r.remediation.is_empty());
        }
        assert_eq!(RuleId::parse("CMK999"), None);
    }

    #[test]
    fn subjects_have_stable_names() {
        assert_eq!(Subject::KeyPolicy.name(), "key_policy");
        assert_eq!(Subject::StorageBinding.name(), "storage_binding");
        assert_eq!(
            Subject::RequiredCoverage(DataType::EbsVolumes).name(),
            "required_coverage.ebs_volumes"
        );
    }
}

#[cfg(test)]
mod readable_tests {
    use super::*;

    #[test]
    fn short_messages_are_unchanged() {
        let m = "workspace \"a\" has pricing tier PREMIUM; customer-managed keys need ENTERPRISE";
        assert_eq!(readable(m), m);
    }

    #[test]
    fn long_quoted_values_and_runs_keep_head_and_tail() {
        let v = format!("{}TAIL", "x".repeat(5000));
        let m = readable(&format!("key {v} and name {:?} end", v));
        assert!(m.starts_with("key xxxx"), "{m}");
        assert_eq!(m.matches("(5004 characters)").count(), 2, "{m}");
        assert!(m.contains("TAIL\" (5004"), "{m}");
        assert!(m.ends_with(" end"), "{m}");
        assert!(m.chars().count() < 2 * QUOTE_MAX_CHARS + 100, "{m}");
    }

    #[test]
    fn control_characters_are_escaped_and_the_whole_is_bounded() {
        let m = readable("a\u{1b}[31mred\nnext");
        assert_eq!(m, "a\\u{1b}[31mred\\nnext");
        // Bidirectional overrides and noncharacters too (a dashboard's name).
        let m = readable("dashboard \"ab\u{202e}cd\u{ffff}\"");
        assert_eq!(m, "dashboard \"ab\\u{202e}cd\\u{ffff}\"");
        let many = "word ".repeat(2000);
        let m = readable(&many);
        assert!(m.ends_with("(message cut, 10000 characters)"), "{m}");
        // An unterminated quote and escaped quotes do not lose text.
        assert_eq!(readable("say \"hi \\\" there"), "say \"hi \\\" there");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }

    proptest::proptest! {
        /// What [`fits`] keeps is what the full reading gives.
        #[test]
        fn a_message_that_fits_reads_as_it_is(
            words in proptest::collection::vec("[a-z\"\\\\ ]{0,8}|[a-z]{100,140}|\"[a-z ]{100,140}\"", 0..40)
        ) {
            let m = words.join(" ");
            if fits(&m) {
                proptest::prop_assert_eq!(readable(&m), m.clone());
                proptest::prop_assert_eq!(readable_owned(m.clone()), m);
            } else {
                proptest::prop_assert_eq!(readable_owned(m.clone()), readable(&m));
            }
        }
    }
}
