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
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(IdError(format!(
            "{s:?} is not an AWS account id: it must be exactly 12 digits, e.g. \"123456789012\""
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
            "{s:?} is not a Databricks account id: it must be a UUID such as \"0d26daa6-5e44-4c97-a497-ef015f91254a\" (the account console shows it)"
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
            "{s:?} is not an AWS region name such as \"us-east-1\""
        )))
    }
}

fn split_arn(s: &str) -> Result<[&str; 6], IdError> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(IdError(format!(
            "{s:?} is not an ARN: expected \"arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE\""
        )));
    }
    Ok([parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]])
}

fn partition_of(s: &str, p: &str) -> Result<Partition, IdError> {
    Partition::parse(p).ok_or_else(|| {
        IdError(format!(
            "{s:?} has partition {p:?}; valid partitions are aws, aws-us-gov and aws-cn"
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

/// Parses `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID`.
pub fn parse_key_arn(s: &str) -> Result<KeyArn, IdError> {
    let [_, partition, service, region, account, resource] = split_arn(s)?;
    let partition = partition_of(s, partition)?;
    if service != "kms" {
        return Err(IdError(format!(
            "{s:?} is an ARN of service {service:?}, not a KMS key (\"kms\")"
        )));
    }
    check_region(region).map_err(|e| IdError(format!("region of {s:?}: {e}")))?;
    check_aws_account_id(account).map_err(|e| IdError(format!("account of {s:?}: {e}")))?;
    if resource.starts_with("alias/") {
        return Err(IdError(format!(
            "{s:?} is an alias ARN; Databricks needs the key ARN (\"...:key/KEY_ID\"): use the key's arn attribute, not the alias"
        )));
    }
    let Some(key_id) = resource.strip_prefix("key/") else {
        return Err(IdError(format!(
            "{s:?} does not name a key: the resource part must be \"key/KEY_ID\""
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
            "{s:?} has key id {key_id:?}, which is neither a UUID nor a multi-Region id (\"mrk-\" and 32 hex digits)"
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
    let [_, partition, service, region, account, resource] = split_arn(s)?;
    let partition = partition_of(s, partition)?;
    if service != "iam" {
        return Err(IdError(format!(
            "{s:?} is an ARN of service {service:?}, not an IAM role (\"iam\")"
        )));
    }
    if !region.is_empty() {
        return Err(IdError(format!(
            "{s:?}: IAM ARNs have an empty region field (\"arn:aws:iam::ACCOUNT:role/NAME\")"
        )));
    }
    check_aws_account_id(account).map_err(|e| IdError(format!("account of {s:?}: {e}")))?;
    let Some(name) = resource.strip_prefix("role/") else {
        return Err(IdError(format!(
            "{s:?} is not a role ARN: the resource part must be \"role/NAME\""
        )));
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if name.is_empty() || name.ends_with('/') || !name.chars().all(valid) || name.len() > 512 {
        return Err(IdError(format!("{s:?} has an invalid role name {name:?}")));
    }
    Ok(RoleArn {
        partition,
        account_id: account.to_string(),
        name: name.to_string(),
    })
}

/// Checks an IAM principal ARN (account root, role or user).
pub fn check_principal_arn(s: &str) -> Result<Partition, IdError> {
    let [_, partition, service, _region, account, resource] = split_arn(s)?;
    let partition = partition_of(s, partition)?;
    if service != "iam" {
        return Err(IdError(format!(
            "{s:?} is not an IAM principal ARN (service must be \"iam\")"
        )));
    }
    check_aws_account_id(account).map_err(|e| IdError(format!("account of {s:?}: {e}")))?;
    if resource == "root" || resource.starts_with("role/") || resource.starts_with("user/") {
        Ok(partition)
    } else {
        Err(IdError(format!(
            "{s:?} must name an account root, a role or a user (\"...:root\", \"...:role/NAME\")"
        )))
    }
}

#[cfg(test)]
mod tests {
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
}
