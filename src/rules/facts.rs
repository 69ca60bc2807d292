//! Plain facts the rules read: what is known about a workspace, a key
//! configuration, a KMS key and a planned change. A fact may be unknown at
//! plan time (`Fact::Unknown`); a rule that needs it answers "cannot tell
//! yet" instead of guessing.

use std::collections::BTreeSet;
use std::fmt;

use super::catalog::{DataType, KeyFeature};

/// A value that is known now, or only after apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fact<T> {
    /// Not known yet (computed at apply time, or not given to the rules).
    #[default]
    Unknown,
    Known(T),
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known(v) => Some(v),
            Fact::Unknown => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Fact::Unknown)
    }

    pub fn as_ref(&self) -> Fact<&T> {
        match self {
            Fact::Known(v) => Fact::Known(v),
            Fact::Unknown => Fact::Unknown,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Fact<U> {
        match self {
            Fact::Known(v) => Fact::Known(f(v)),
            Fact::Unknown => Fact::Unknown,
        }
    }

    pub fn and_then<U>(self, f: impl FnOnce(T) -> Fact<U>) -> Fact<U> {
        match self {
            Fact::Known(v) => f(v),
            Fact::Unknown => Fact::Unknown,
        }
    }
}

impl<T> From<Option<T>> for Fact<T> {
    /// `None` is "unknown".
    fn from(o: Option<T>) -> Self {
        match o {
            Some(v) => Fact::Known(v),
            None => Fact::Unknown,
        }
    }
}

/// Defines a string enum with the Account API spellings.
macro_rules! api_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $s)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(
    /// A workspace's pricing tier.
    PricingTier {
        CommunityEdition = "COMMUNITY_EDITION",
        Dedicated = "DEDICATED",
        Enterprise = "ENTERPRISE",
        Premium = "PREMIUM",
        Standard = "STANDARD",
        Unknown = "UNKNOWN",
    }
);

api_enum!(
    /// Whether a workspace runs classic compute too, or serverless only.
    ComputeMode {
        Hybrid = "HYBRID",
        Serverless = "SERVERLESS",
    }
);

api_enum!(
    /// Where a workspace's storage lives.
    StorageMode {
        CustomerHosted = "CUSTOMER_HOSTED",
        DefaultStorage = "DEFAULT_STORAGE",
    }
);

api_enum!(
    /// A workspace's status.
    WorkspaceStatus {
        NotProvisioned = "NOT_PROVISIONED",
        Provisioning = "PROVISIONING",
        Running = "RUNNING",
        Failed = "FAILED",
        Banned = "BANNED",
        Cancelling = "CANCELLING",
    }
);

api_enum!(
    /// A KMS key's state (AWS `KeyState`).
    KeyState {
        Creating = "Creating",
        Enabled = "Enabled",
        Disabled = "Disabled",
        PendingDeletion = "PendingDeletion",
        PendingImport = "PendingImport",
        PendingReplicaDeletion = "PendingReplicaDeletion",
        Unavailable = "Unavailable",
        Updating = "Updating",
    }
);

/// The symmetric key spec Databricks needs.
pub const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
/// The key usage Databricks needs.
pub const ENCRYPT_DECRYPT: &str = "ENCRYPT_DECRYPT";

api_enum!(
    /// A kind of classic compute that must be stopped before keys change.
    ComputeKind {
        Cluster = "cluster",
        InstancePool = "instance_pool",
        ClassicSqlWarehouse = "classic_sql_warehouse",
    }
);

/// One running piece of classic compute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RunningCompute {
    pub kind: ComputeKind,
    pub name: String,
}

impl fmt::Display for RunningCompute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind, self.name)
    }
}

/// An AI/BI (Lakeview) dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub id: String,
    pub name: String,
    /// RFC 3339, as the Lakeview API answers it.
    pub create_time: String,
}

/// What is known about a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceFacts {
    /// `None`: the workspace does not exist yet.
    pub id: Fact<Option<String>>,
    pub name: Fact<Option<String>>,
    pub region: Fact<String>,
    pub pricing_tier: Fact<PricingTier>,
    pub compute_mode: Fact<ComputeMode>,
    pub storage_mode: Fact<Option<StorageMode>>,
    /// `None`: the workspace does not exist yet.
    pub status: Fact<Option<WorkspaceStatus>>,
    /// Key configuration ids bound now.
    pub managed_services_key_id: Fact<Option<String>>,
    pub storage_key_id: Fact<Option<String>>,
    /// Clusters, pools and classic SQL warehouses running now.
    pub running_classic_compute: Fact<Vec<RunningCompute>>,
    pub dashboards: Fact<Vec<Dashboard>>,
    /// Whether all interactive notebook results are stored in the customer's account.
    pub all_results_in_customer_account: Fact<bool>,
    /// Whether these facts hold the workspace's current state.
    pub state: StateRead,
}

/// Whether a workspace's current state (status, keys, running compute,
/// dashboards) is in its facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateRead {
    /// The facts hold what is known of it: a plan's prior state, a live
    /// reading, or a workspace the plan creates (it has none).
    #[default]
    Read,
    /// The workspace may exist, and its current state was not read (a
    /// configuration's source reviewed without `--live`): the rules that
    /// compare with it say "needs state". `settings`: its tier, compute
    /// mode and region are the existing workspace's too (a binding whose
    /// workspace the configuration does not hold).
    NotRead { settings: bool },
    /// `--live` found several workspaces the configuration's workspace
    /// could be (the text says which): its state stays unknown.
    Ambiguous(String),
}

impl WorkspaceFacts {
    /// A workspace about which nothing is known.
    pub fn unknown() -> WorkspaceFacts {
        WorkspaceFacts {
            id: Fact::Unknown,
            name: Fact::Unknown,
            region: Fact::Unknown,
            pricing_tier: Fact::Unknown,
            compute_mode: Fact::Unknown,
            storage_mode: Fact::Unknown,
            status: Fact::Unknown,
            managed_services_key_id: Fact::Unknown,
            storage_key_id: Fact::Unknown,
            running_classic_compute: Fact::Unknown,
            dashboards: Fact::Unknown,
            all_results_in_customer_account: Fact::Unknown,
            state: StateRead::Read,
        }
    }

    /// The same workspace as a reading of its current state would give it,
    /// with placeholder values for what was not read (a RUNNING workspace
    /// without keys, compute or dashboards): what these placeholders
    /// decide, the state decides.
    pub fn with_state_placeholder(&self) -> WorkspaceFacts {
        fn fill<T>(f: &mut Fact<T>, v: T) {
            if f.is_unknown() {
                *f = Fact::Known(v);
            }
        }
        let mut p = self.clone();
        let settings = matches!(self.state, StateRead::NotRead { settings: true });
        p.state = StateRead::Read;
        fill(&mut p.id, Some("0".into()));
        fill(&mut p.status, Some(WorkspaceStatus::Running));
        fill(&mut p.managed_services_key_id, None);
        fill(&mut p.storage_key_id, None);
        fill(&mut p.running_classic_compute, vec![]);
        fill(&mut p.dashboards, vec![]);
        fill(&mut p.all_results_in_customer_account, false);
        fill(&mut p.storage_mode, None);
        if settings {
            fill(&mut p.pricing_tier, PricingTier::Enterprise);
            fill(&mut p.compute_mode, ComputeMode::Hybrid);
            fill(&mut p.region, "placeholder-region-1".into());
        }
        p
    }

    /// A workspace that the plan creates: no keys, no compute, no dashboards.
    pub fn new_workspace() -> WorkspaceFacts {
        WorkspaceFacts {
            id: Fact::Known(None),
            status: Fact::Known(None),
            managed_services_key_id: Fact::Known(None),
            storage_key_id: Fact::Known(None),
            running_classic_compute: Fact::Known(vec![]),
            dashboards: Fact::Known(vec![]),
            ..WorkspaceFacts::unknown()
        }
    }

    /// A name for messages: the name, else the id, else "the workspace".
    pub fn label(&self) -> String {
        match (self.name.known(), self.id.known()) {
            (Some(Some(n)), _) => format!("workspace {n:?}"),
            (_, Some(Some(i))) => format!("workspace {i}"),
            _ => "the workspace".to_string(),
        }
    }
}

/// What is known about a key configuration (`customer_managed_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfigFacts {
    /// `customer_managed_key_id` (computed at creation).
    pub id: Fact<String>,
    /// The use cases as written (valid or not).
    pub use_cases: Fact<Vec<String>>,
    pub key_arn: Fact<String>,
    /// When `key_arn` is not known until apply: how it will start, if
    /// Terraform promises that (e.g. `arn:aws:kms:us-west-2:123456789012:key/`).
    pub key_arn_prefix: Option<String>,
    /// `None` when not given (Databricks then takes the ARN's region).
    pub key_region: Fact<Option<String>>,
    /// `None` when omitted (which means true for STORAGE configurations).
    pub reuse_key_for_cluster_volumes: Fact<Option<bool>>,
}

impl KeyConfigFacts {
    /// The valid use cases, when all of them are known.
    pub fn features(&self) -> Fact<BTreeSet<KeyFeature>> {
        self.use_cases
            .as_ref()
            .map(|v| v.iter().filter_map(|s| KeyFeature::parse(s)).collect())
    }

    /// Whether the configuration has a use case.
    pub fn has(&self, f: KeyFeature) -> Fact<bool> {
        self.features().map(|s| s.contains(&f))
    }

    /// The key's region: `key_region` when given, else the ARN's.
    pub fn effective_key_region(&self) -> Fact<String> {
        match &self.key_region {
            Fact::Known(Some(r)) => Fact::Known(r.clone()),
            Fact::Unknown => Fact::Unknown,
            Fact::Known(None) => match &self.key_arn {
                Fact::Known(arn) => match super::ids::parse_key_arn(arn) {
                    Ok(k) => Fact::Known(k.region),
                    Err(_) => Fact::Unknown,
                },
                Fact::Unknown => self
                    .key_arn_prefix
                    .as_deref()
                    .and_then(super::ids::key_arn_prefix)
                    .map_or(Fact::Unknown, |k| Fact::Known(k.region)),
            },
        }
    }

    /// Whether the key also encrypts cluster EBS volumes: STORAGE and
    /// `reuse_key_for_cluster_volumes` true or omitted.
    pub fn covers_cluster_volumes(&self) -> Fact<bool> {
        match self.has(KeyFeature::Storage) {
            Fact::Known(false) => Fact::Known(false),
            Fact::Unknown => Fact::Unknown,
            Fact::Known(true) => self
                .reuse_key_for_cluster_volumes
                .as_ref()
                .map(|r| r.unwrap_or(true)),
        }
    }
}

/// What is known about a KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeyFacts {
    pub arn: Fact<String>,
    pub state: Fact<KeyState>,
    /// `KeySpec`, e.g. `SYMMETRIC_DEFAULT`.
    pub spec: Fact<String>,
    /// `KeyUsage`, e.g. `ENCRYPT_DECRYPT`.
    pub usage: Fact<String>,
    pub region: Fact<String>,
    /// The key policy document (JSON text); `None` when the key has the
    /// default policy.
    pub policy: Fact<Option<String>>,
    /// The `aws_kms_grant`s on the key (and those whose key is not known,
    /// which may be on it).
    pub grants: Vec<GrantFacts>,
}

/// An AWS KMS grant (`aws_kms_grant`): whom it lets do what with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFacts {
    /// Where it comes from, for messages (`aws_kms_grant.databricks`).
    pub name: String,
    /// `grantee_principal`.
    pub grantee: Fact<String>,
    /// `operations`, as KMS spells them (`Encrypt`, `Decrypt`, ...).
    pub operations: Fact<Vec<String>>,
    /// Its `key_id` is not known: it may be on this key, or not.
    pub key_not_known: bool,
}

impl KmsKeyFacts {
    pub fn unknown() -> KmsKeyFacts {
        KmsKeyFacts {
            arn: Fact::Unknown,
            state: Fact::Unknown,
            spec: Fact::Unknown,
            usage: Fact::Unknown,
            region: Fact::Unknown,
            policy: Fact::Unknown,
            grants: vec![],
        }
    }
}

/// A key configuration id as requested for a slot, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedKey {
    /// `None`: the slot is left empty.
    pub id: Fact<Option<String>>,
    /// When the id comes from an attribute known to yield the composite
    /// `<account_id>/<customer_managed_key_id>` (such as the official
    /// provider's `.id`), that attribute's address.
    pub composite_source: Option<String>,
    /// When the id comes from an attribute known to hold the bare id (such
    /// as `customer_managed_key_id`), that attribute's address.
    pub bare_source: Option<String>,
    /// The id names a key configuration that this plan creates: it differs
    /// from every id that exists now, and a key is being set.
    pub created_in_plan: bool,
    /// How an id not known yet will start (Terraform's string-prefix
    /// refinement, e.g. `"<account_id>/"` from `"${a}/${b}"`).
    pub id_prefix: Option<String>,
    /// How messages name the key configuration while its id is not known:
    /// review gives its address (`key configuration
    /// cmk_key_configuration.storage, created in this plan`), the provider
    /// the argument that names it (Terraform does not tell a provider the
    /// address of another resource).
    pub config_name: Option<String>,
}

impl RequestedKey {
    pub fn none() -> RequestedKey {
        RequestedKey {
            id: Fact::Known(None),
            ..RequestedKey::unknown()
        }
    }

    pub fn id(id: &str) -> RequestedKey {
        RequestedKey {
            id: Fact::Known(Some(id.to_string())),
            ..RequestedKey::unknown()
        }
    }

    /// Nothing is known: not even whether a key is requested (a slot left
    /// as it is on a workspace whose keys are not read).
    pub fn unknown() -> RequestedKey {
        RequestedKey {
            id: Fact::Unknown,
            composite_source: None,
            bare_source: None,
            created_in_plan: false,
            id_prefix: None,
            config_name: None,
        }
    }

    /// A key is being set whose id is not known until apply (a key
    /// configuration created in the same plan), optionally with the prefix
    /// Terraform promises for it.
    pub fn being_set(id_prefix: Option<String>) -> RequestedKey {
        RequestedKey {
            created_in_plan: true,
            id_prefix: id_prefix.filter(|p| !p.is_empty()),
            ..RequestedKey::unknown()
        }
    }

    /// The key configuration, named for a message: `key configuration
    /// <id>` when the id is known, else [`Self::config_name`], else the
    /// attribute the id comes from.
    pub fn config_phrase(&self) -> String {
        if let Fact::Known(Some(id)) = &self.id {
            return format!("key configuration {id}");
        }
        if let Some(n) = &self.config_name {
            return n.clone();
        }
        match (&self.composite_source, &self.bare_source) {
            (Some(src), _) | (None, Some(src)) => format!("the key configuration {src} names"),
            (None, None) if self.created_in_plan => {
                "a key configuration created in this plan".to_string()
            }
            (None, None) => "a key configuration not known until apply".to_string(),
        }
    }

    /// Whether a key is requested at all (even if its id is not known yet).
    pub fn is_set(&self) -> Fact<bool> {
        if self.composite_source.is_some() || self.bare_source.is_some() || self.created_in_plan {
            return Fact::Known(true);
        }
        self.id.as_ref().map(|o| o.is_some())
    }
}

/// A planned change of a workspace's key bindings: the current bindings are
/// in [`WorkspaceFacts`], the requested ones here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingChange {
    pub managed_services: RequestedKey,
    pub storage: RequestedKey,
}

/// What the user requires to be protected (`--require`, `required_coverage`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    pub data_types: BTreeSet<DataType>,
    /// How many required data types are not known until apply (an element
    /// of `required_coverage` from a value computed at apply).
    pub not_known: usize,
}

impl Requirements {
    pub fn requires(&self, d: DataType) -> bool {
        self.data_types.contains(&d)
    }
}

/// Dashboards created on or before this day (UTC) are not encrypted with
/// the customer-managed key.
pub const DASHBOARD_CUTOFF: &str = "2024-11-01";

/// Why a timestamp is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 timestamp such as \"2024-11-05T10:00:00Z\"")]
pub struct TimestampError(pub String);

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses an RFC 3339 timestamp into seconds since the Unix epoch (UTC).
pub fn parse_rfc3339(s: &str) -> Result<i64, TimestampError> {
    let err = || TimestampError(s.to_string());
    if !s.is_ascii() || s.len() < 20 {
        return Err(err());
    }
    let b = s.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let y = digits(&s[0..4]).ok_or_else(err)?;
    let mo = digits(&s[5..7]).ok_or_else(err)?;
    let d = digits(&s[8..10]).ok_or_else(err)?;
    let h = digits(&s[11..13]).ok_or_else(err)?;
    let mi = digits(&s[14..16]).ok_or_else(err)?;
    let se = digits(&s[17..19]).ok_or_else(err)?;
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60
    {
        return Err(err());
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(err());
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let oh = digits(&rest[1..3]).ok_or_else(err)?;
            let om = digits(&rest[4..6]).ok_or_else(err)?;
            if oh > 23 || om > 59 {
                return Err(err());
            }
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return Err(err()),
    };
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Whether a dashboard created at `create_time` predates customer-managed
/// key support (created on or before 2024-11-01, UTC).
pub fn created_on_or_before_cutoff(create_time: &str) -> Result<bool, TimestampError> {
    let t = parse_rfc3339(create_time)?;
    // First second after the cutoff day.
    let after = days_from_civil(2024, 11, 2) * 86_400;
    Ok(t < after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_and_compares_with_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-02T01:00:00+01:00"), Ok(86_400));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00.123Z"), Ok(951_868_800));
        let cases = [
            ("2024-11-01T23:59:59Z", true),
            ("2024-11-02T00:00:00Z", false),
            ("2024-11-02T00:30:00+01:00", true),
            ("2024-11-01T20:00:00-05:00", false),
            ("2023-01-01T00:00:00Z", true),
            ("2025-06-30T12:00:00.5Z", false),
        ];
        for (t, want) in cases {
            assert_eq!(created_on_or_before_cutoff(t), Ok(want), "{t}");
        }
        for bad in [
            "",
            "2024-11-01",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-11-01T00:00:00",
            "2024-11-01T00:00:00+0100",
            "2024-11-01T00:00:00.Z",
            "2024-11-01T00:00:00Zé",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_config_derivations() {
        let mut c = KeyConfigFacts {
            id: Fact::Unknown,
            use_cases: Fact::Known(vec!["STORAGE".into()]),
            key_arn: Fact::Known(
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into(),
            ),
            key_arn_prefix: None,
            key_region: Fact::Known(None),
            reuse_key_for_cluster_volumes: Fact::Known(None),
        };
        assert_eq!(c.effective_key_region(), Fact::Known("eu-west-1".into()));
        assert_eq!(c.covers_cluster_volumes(), Fact::Known(true));
        c.reuse_key_for_cluster_volumes = Fact::Known(Some(false));
        assert_eq!(c.covers_cluster_volumes(), Fact::Known(false));
        c.use_cases = Fact::Unknown;
        assert_eq!(c.covers_cluster_volumes(), Fact::Unknown);
        assert_eq!(
            PricingTier::parse("ENTERPRISE"),
            Some(PricingTier::Enterprise)
        );
        assert_eq!(
            KeyState::parse("PendingDeletion"),
            Some(KeyState::PendingDeletion)
        );
    }
}
