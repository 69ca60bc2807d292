//! Identifiers of the AWS and Databricks worlds: what a well-formed one looks
//! like, and what is wrong with one that is not.

use std::fmt;

/// An AWS partition.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Partition {
    #[serde(rename = "aws")]
    Aws,
    #[serde(rename = "aws-us-gov")]
    AwsUsGov,
    #[serde(rename = "aws-cn")]
    AwsCn,
}

impl Partition {
    pub const ALL: [Partition; 3] = [Partition::Aws, Partition::AwsUsGov, Partition::AwsCn];

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsCn => "aws-cn",
        }
    }

    pub fn parse(s: &str) -> Option<Partition> {
        Partition::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The partition of a region: `us-gov-*` GovCloud, `cn-*` China.
    pub fn of_region(region: &str) -> Partition {
        if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else if region.starts_with("cn-") {
            Partition::AwsCn
        } else {
            Partition::Aws
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Databricks' AWS account, whose root is the principal in key policies.
pub const DATABRICKS_AWS_ACCOUNT: &str = "414351767826";

/// Why an identifier is malformed; the message says what a good one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(pub String);

/// Checks a 12-digit AWS account id.
pub fn check_aws_account_id(s: &str) -> Result<(), IdError> {
    let q = || quoted(s);
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(IdError(format!(
            "{} is not an AWS account id: it must be exactly 12 digits, e.g. \"123456789012\"",
            q()
        )))
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks a Databricks account id (a UUID).
pub fn check_databricks_account_id(s: &str) -> Result<(), IdError> {
    if is_uuid(s) {
        Ok(())
    } else {
        Err(IdError(format!(
            "{} is not a Databricks account id: it must be a UUID such as \"0d26daa6-5e44-4c97-a497-ef015f91254a\" (the account console shows it)",
            quoted(s)
        )))
    }
}

/// A value quoted in a message: escaped, and cut to a readable length (a
/// hostile configuration may hold megabytes where an id is expected).
pub fn quoted(s: &str) -> String {
    // Bytes of the escaped text, quotes excluded.
    const MAX: usize = 100;
    let mut out = String::from("\"");
    let mut cut = false;
    for c in s.chars() {
        let e: String = c.escape_debug().collect();
        if out.len() - 1 + e.len() > MAX {
            cut = true;
            break;
        }
        out.push_str(&e);
    }
    out.push('"');
    if cut {
        out.push_str(&format!("... ({} characters)", s.chars().count()));
    }
    out
}

/// A bare key configuration id (`customer_managed_key_id`): a UUID. Only
/// this type reaches the Account API client, so an id can never carry a
/// path, a query or a fragment into a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyConfigId(String);

impl KeyConfigId {
    /// Parses a bare id. A composite `<account_id>/<id>` is refused with a
    /// message saying which part to use (rule CMK014).
    pub fn parse(s: &str) -> Result<KeyConfigId, IdError> {
        if is_uuid(s) {
            return Ok(KeyConfigId(s.to_string()));
        }
        if let Some((acct, id)) = s.split_once('/') {
            if is_uuid(acct) && is_uuid(id) {
                return Err(IdError(format!(
                    "{} is the composite <account_id>/<customer_managed_key_id>; give only the part after '/' ({id:?})",
                    quoted(s)
                )));
            }
        }
        Err(IdError(format!(
            "{} is not a key configuration id: a customer_managed_key_id is a UUID such as \"0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98\"",
            quoted(s)
        )))
    }

    /// Parses an import id: the bare id, or the official provider's
    /// composite `<account_id>/<customer_managed_key_id>`. Returns the
    /// account id of a composite too, so the caller can check it.
    pub fn parse_import(s: &str) -> Result<(Option<AccountId>, KeyConfigId), IdError> {
        let s = s.trim();
        if let Some((acct, id)) = s.split_once('/') {
            let acct = AccountId::parse(acct).map_err(|e| {
                IdError(format!(
                    "{} is not <account_id>/<customer_managed_key_id>: {e}",
                    quoted(s)
                ))
            })?;
            let id = KeyConfigId::parse(id).map_err(|e| {
                IdError(format!(
                    "{} is not <account_id>/<customer_managed_key_id>: {e}",
                    quoted(s)
                ))
            })?;
            return Ok((Some(acct), id));
        }
        Ok((None, KeyConfigId::parse(s)?))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Databricks workspace id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkspaceId(i64);

impl WorkspaceId {
    pub fn new(id: i64) -> Result<WorkspaceId, IdError> {
        if id > 0 {
            Ok(WorkspaceId(id))
        } else {
            Err(IdError(format!(
                "{id} is not a workspace id: workspace ids are positive integers such as 1234567890123456"
            )))
        }
    }

    /// Parses the decimal digits of a workspace id (an import id, a path).
    pub fn parse(s: &str) -> Result<WorkspaceId, IdError> {
        let t = s.trim();
        let bad = || {
            IdError(format!(
                "{} is not a workspace id: workspace ids are positive integers such as 1234567890123456",
                quoted(s)
            ))
        };
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>()
            .map_err(|_| bad())
            .and_then(WorkspaceId::new)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Databricks account id: a UUID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<AccountId, IdError> {
        check_databricks_account_id(s)?;
        Ok(AccountId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for AccountId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for AccountId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Checks a workspace's deployment name, which becomes the first label of
/// the workspace's host name: a DNS label (lowercase letters, digits and
/// inner hyphens, at most 63 characters).
pub fn check_deployment_name(s: &str) -> Result<(), IdError> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(())
    } else {
        Err(IdError(format!(
            "{} is not a deployment name: it must be a DNS label (lowercase letters, digits and inner hyphens)",
            quoted(s)
        )))
    }
}

/// Whether a key configuration id is the composite
/// `<account_id>/<customer_managed_key_id>` (what the official provider's
/// `databricks_mws_customer_managed_keys.*.id` holds) rather than the bare
/// id. The Account API refuses it with `Invalid customerManagedKeyId: <id>`
/// (rule CMK014).
pub fn is_composite_key_id(id: &str) -> bool {
    id.contains('/')
}

/// Checks an AWS region name such as `us-east-1` or `us-gov-west-1`.
pub fn check_region(s: &str) -> Result<(), IdError> {
    let q = || quoted(s);
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts
            .iter()
            .take(parts.len() - 1)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if ok {
        Ok(())
    } else {
        Err(IdError(format!(
            "{} is not an AWS region name such as \"us-east-1\"",
            q()
        )))
    }
}

fn split_arn(s: &str) -> Result<[&str; 6], IdError> {
    let q = || quoted(s);
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(IdError(format!(
            "{} is not an ARN: expected \"arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE\"",
            q()
        )));
    }
    Ok([parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]])
}

fn partition_of(s: &str, p: &str) -> Result<Partition, IdError> {
    let q = || quoted(s);
    Partition::parse(p).ok_or_else(|| {
        IdError(format!(
            "{} has partition {}; valid partitions are aws, aws-us-gov and aws-cn",
            q(),
            quoted(p)
        ))
    })
}

/// A parsed KMS key ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyArn {
    pub partition: Partition,
    pub region: String,
    pub account_id: String,
    pub key_id: String,
    /// Multi-Region keys have ids that start with `mrk-`.
    pub multi_region: bool,
}

/// What a key ARN not known until apply is promised to start with
/// (Terraform's string-prefix refinement, as `cmk_kms_key` plans its `arn`),
/// when that start already names a key: `arn:PARTITION:kms:REGION:ACCOUNT:key/`.
/// The answer's `key_id` is empty.
pub fn key_arn_prefix(prefix: &str) -> Option<KeyArn> {
    if !prefix.ends_with(":key/") {
        return None;
    }
    let mut k = parse_key_arn(&format!("{prefix}00000000-0000-4000-8000-000000000000")).ok()?;
    k.key_id = String::new();
    Some(k)
}

/// The start of the ARN of a key to be made in `region` and `account`
/// (partition from the region), when both are valid: what `cmk_kms_key`
/// promises at plan and what review reads from a plan.
pub fn new_key_arn_prefix(region: &str, account: &str) -> Option<String> {
    let prefix = format!(
        "arn:{}:kms:{region}:{account}:key/",
        Partition::of_region(region).as_str()
    );
    key_arn_prefix(&prefix).map(|_| prefix)
}

/// Parses `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID`.
pub fn parse_key_arn(s: &str) -> Result<KeyArn, IdError> {
    let q = || quoted(s);
    let [_, partition, service, region, account, resource] = split_arn(s)?;
    let partition = partition_of(s, partition)?;
    if service != "kms" {
        return Err(IdError(format!(
            "{} is an ARN of service {}, not a KMS key (\"kms\")",
            q(),
            quoted(service)
        )));
    }
    check_region(region).map_err(|e| IdError(format!("region of {}: {e}", q())))?;
    check_aws_account_id(account).map_err(|e| IdError(format!("account of {}: {e}", q())))?;
    if resource.starts_with("alias/") {
        return Err(IdError(format!(
            "{} is an alias ARN; Databricks needs the key ARN (\"...:key/KEY_ID\"): use the key's arn attribute, not the alias", q()
        )));
    }
    let Some(key_id) = resource.strip_prefix("key/") else {
        return Err(IdError(format!(
            "{} does not name a key: the resource part must be \"key/KEY_ID\"",
            q()
        )));
    };
    let multi_region = key_id.starts_with("mrk-");
    let ok = if multi_region {
        key_id.len() == 36 && key_id[4..].bytes().all(|b| b.is_ascii_hexdigit())
    } else {
        is_uuid(key_id)
    };
    if !ok {
        return Err(IdError(format!(
            "{} has key id {}, which is neither a UUID nor a multi-Region id (\"mrk-\" and 32 hex digits)", q(), quoted(key_id)
        )));
    }
    Ok(KeyArn {
        partition,
        region: region.to_string(),
        account_id: account.to_string(),
        key_id: key_id.to_string(),
        multi_region,
    })
}

/// A parsed IAM role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: Partition,
    pub account_id: String,
    /// Path and name after `role/`.
    pub name: String,
}

/// Parses `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`.
pub fn parse_role_arn(s: &str) -> Result<RoleArn, IdError> {
    let q = || quoted(s);
    let [_, partition, service, region, account, resource] = split_arn(s)?;
    let partition = partition_of(s, partition)?;
    if service != "iam" {
        return Err(IdError(format!(
            "{} is an ARN of service {}, not an IAM role (\"iam\")",
            q(),
            quoted(service)
        )));
    }
    if !region.is_empty() {
        return Err(IdError(format!(
            "{}: IAM ARNs have an empty region field (\"arn:aws:iam::ACCOUNT:role/NAME\")",
            q()
        )));
    }
    check_aws_account_id(account).map_err(|e| IdError(format!("account of {}: {e}", q())))?;
    let Some(name) = resource.strip_prefix("role/") else {
        return Err(IdError(format!(
            "{} is not a role ARN: the resource part must be \"role/NAME\"",
            q()
        )));
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if name.is_empty() || name.ends_with('/') || !name.chars().all(valid) || name.len() > 512 {
        return Err(IdError(format!(
            "{} has an invalid role name {}",
            q(),
            quoted(name)
        )));
    }
    Ok(RoleArn {
        partition,
        account_id: account.to_string(),
        name: name.to_string(),
    })
}

/// Checks an IAM principal ARN (account root, role or user).
pub fn check_principal_arn(s: &str) -> Result<Partition, IdError> {
    let q = || quoted(s);
    let [_, partition, service, _region, account, resource] = split_arn(s)?;
    let partition = partition_of(s, partition)?;
    if service != "iam" {
        return Err(IdError(format!(
            "{} is not an IAM principal ARN (service must be \"iam\")",
            q()
        )));
    }
    check_aws_account_id(account).map_err(|e| IdError(format!("account of {}: {e}", q())))?;
    if resource == "root" || resource.starts_with("role/") || resource.starts_with("user/") {
        Ok(partition)
    } else {
        Err(IdError(format!(
            "{} must name an account root, a role or a user (\"...:root\", \"...:role/NAME\")",
            q()
        )))
    }
}

#[cfg(test)]
#[path = "ids_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {

    #[test]
    fn a_promised_key_arn_start_names_its_region_and_nothing_less_counts() {
        let k = key_arn_prefix("arn:aws:kms:us-west-2:123456789012:key/").unwrap();
        assert_eq!(
            (k.region.as_str(), k.account_id.as_str()),
            ("us-west-2", "123456789012")
        );
        assert_eq!(
            key_arn_prefix("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/")
                .unwrap()
                .partition,
            Partition::AwsUsGov
        );
        for not_yet in [
            "arn:aws:kms:us-west-2:123456789012:",
            "arn:aws:kms:us-west-2:123456789012:alias/",
            "arn:aws:kms:",
            "",
            "arn:aws:s3:us-west-2:123456789012:key/",
        ] {
            assert!(key_arn_prefix(not_yet).is_none(), "{not_yet}");
        }
        assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
        assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
    }

    #[test]
    fn a_new_keys_arn_start_takes_its_partition_from_the_region() {
        assert_eq!(
            new_key_arn_prefix("us-gov-west-1", "123456789012").as_deref(),
            Some("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/")
        );
        assert_eq!(
            new_key_arn_prefix("eu-west-1", "123456789012").as_deref(),
            Some("arn:aws:kms:eu-west-1:123456789012:key/")
        );
        assert_eq!(new_key_arn_prefix("eu-west-1", "12345"), None);
        assert_eq!(new_key_arn_prefix("", "123456789012"), None);
    }

    use super::*;

    #[test]
    fn composite_key_ids_are_told_from_bare_ones() {
        assert!(is_composite_key_id(
            "11111111-2222-4333-8444-555555555555/aaaaaaaa-0000-4000-8000-000000000001"
        ));
        assert!(!is_composite_key_id("aaaaaaaa-0000-4000-8000-000000000001"));
    }

    #[test]
    fn key_arns_parse_with_their_parts() {
        let k = parse_key_arn(
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .unwrap();
        assert_eq!(k.partition, Partition::Aws);
        assert_eq!(k.region, "us-east-1");
        assert_eq!(k.account_id, "123456789012");
        assert!(!k.multi_region);
        let m = parse_key_arn("arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab").unwrap();
        assert!(m.multi_region);
        assert_eq!(m.partition, Partition::AwsUsGov);
    }

    #[test]
    fn malformed_key_arns_say_what_is_wrong() {
        let cases = [
            ("not-an-arn", "is not an ARN"),
            (
                "arn:aws:s3:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "not a KMS key",
            ),
            (
                "arn:aws:kms:us-east-1:123456789012:alias/my-key",
                "alias ARN",
            ),
            (
                "arn:aws:kms:us-east-1:12345:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "12 digits",
            ),
            (
                "arn:aws:kms:useast1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "region",
            ),
            (
                "arn:aws:kms:us-east-1:123456789012:key/nope",
                "neither a UUID",
            ),
            (
                "arn:azure:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "valid partitions",
            ),
        ];
        for (arn, want) in cases {
            let e = parse_key_arn(arn).unwrap_err();
            assert!(e.0.contains(want), "{arn}: {e}");
        }
    }

    #[test]
    fn role_arns_and_ids() {
        assert!(parse_role_arn("arn:aws:iam::123456789012:role/databricks/cross-account").is_ok());
        assert!(parse_role_arn("arn:aws:iam::123456789012:user/bob").is_err());
        assert!(parse_role_arn("arn:aws:iam:us-east-1:123456789012:role/x").is_err());
        assert!(check_databricks_account_id("0d26daa6-5e44-4c97-a497-ef015f91254a").is_ok());
        assert!(check_databricks_account_id("acct-1").is_err());
        assert!(check_aws_account_id("12345678901a").is_err());
        assert_eq!(
            check_principal_arn("arn:aws-cn:iam::414351767826:root"),
            Ok(Partition::AwsCn)
        );
    }

    /// Hostile ids from issue 10: none is a key configuration id, a
    /// workspace id or an account id, and each message says what one is.
    #[test]
    fn traversal_and_query_ids_are_not_ids() {
        let hostile = [
            "\\..\\..\\..\\..\\..\\..\\_sandbox\\state",
            "..",
            ".",
            "%2e%2e",
            "?x=1",
            "#frag",
            "",
            "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98/..",
            "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98?x=1",
            "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98#frag",
            " 0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f9%",
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/workspaces/2234567890123456?",
        ];
        for h in hostile {
            let e = KeyConfigId::parse(h).unwrap_err();
            assert!(
                e.0.contains("UUID") || e.0.contains("composite"),
                "{h}: {e}"
            );
            assert!(AccountId::parse(h).is_err(), "{h}");
            assert!(WorkspaceId::parse(h).is_err(), "{h}");
        }
        assert!(KeyConfigId::parse("0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98").is_ok());
        let e = KeyConfigId::parse(
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
        )
        .unwrap_err();
        assert!(e.0.contains("part after '/'"), "{e}");
    }

    #[test]
    fn import_ids_are_bare_or_composite_with_an_account_uuid() {
        let (a, k) = KeyConfigId::parse_import(
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
        )
        .unwrap();
        assert_eq!(a.unwrap().as_str(), "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13");
        assert_eq!(k.as_str(), "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98");
        let (a, _) = KeyConfigId::parse_import("0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98").unwrap();
        assert!(a.is_none());
        for bad in [
            "acct/0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/..",
            "../0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98",
            "a/b/c",
        ] {
            assert!(KeyConfigId::parse_import(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn workspace_ids_are_positive_integers() {
        assert_eq!(
            WorkspaceId::parse("1234567890123456").unwrap().get(),
            1234567890123456
        );
        assert_eq!(WorkspaceId::parse(" 42 ").unwrap().get(), 42);
        for bad in ["0", "-1", "+1", "1e3", "12a", "99999999999999999999", "1/2"] {
            let e = WorkspaceId::parse(bad).unwrap_err();
            assert!(e.0.contains("positive integers"), "{bad}: {e}");
        }
        assert!(WorkspaceId::new(0).is_err());
        assert!(WorkspaceId::new(-5).is_err());
    }

    #[test]
    fn deployment_names_are_dns_labels() {
        assert!(check_deployment_name("analytics-prod").is_ok());
        for bad in [
            "",
            "-a",
            "a-",
            "Ab",
            "a.b",
            "a/b",
            "evil.com#",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(check_deployment_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let huge = "x".repeat(1_000_000);
        let e = KeyConfigId::parse(&huge).unwrap_err();
        assert!(e.0.len() < 400, "{}", e.0.len());
        assert!(e.0.contains("1000000 characters"));
        let e = parse_key_arn(&huge).unwrap_err();
        assert!(e.0.len() < 400);
    }
}
