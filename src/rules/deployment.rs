//! Databricks on AWS deployments: commercial, GovCloud civilian and
//! GovCloud DoD. Each has its own account console host, workspace domain,
//! AWS partition and Databricks AWS account, whose root is the principal a
//! key policy must name. One table; every caller (the provider, the policy
//! generator, the rules, review, the sandbox and the docs) reads it here.
//!
//! Sources (two per fact): Databricks' GovCloud page
//! (docs.databricks.com/aws/en/security/privacy/gov-cloud), the official
//! Databricks provider's `aws/constants.go`, and Databricks' security
//! reference architecture for AWS (`databricks_gov_shard` locals).

use std::fmt;

use super::ids::Partition;

/// A Databricks on AWS deployment ("shard").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deployment {
    Commercial,
    GovCloudCivilian,
    GovCloudDod,
}

/// What a deployment is: one row of the table.
#[derive(Debug)]
pub struct DeploymentInfo {
    pub deployment: Deployment,
    /// The value of the provider's `deployment` argument and of review's
    /// `--deployment` flag.
    pub name: &'static str,
    /// For people: "GovCloud civilian".
    pub label: &'static str,
    /// The account console (Account API) host.
    pub account_host: &'static str,
    /// Workspace URLs are `https://<deployment_name>.<workspace_domain>`.
    pub workspace_domain: &'static str,
    pub partition: Partition,
    /// Databricks' AWS account: `arn:PARTITION:iam::ACCOUNT:root` is the
    /// principal key policies name.
    pub databricks_aws_account: &'static str,
}

/// The table, in [`Deployment`] order.
pub static DEPLOYMENTS: [DeploymentInfo; 3] = [
    DeploymentInfo {
        deployment: Deployment::Commercial,
        name: "commercial",
        label: "commercial",
        account_host: "https://accounts.cloud.databricks.com",
        workspace_domain: "cloud.databricks.com",
        partition: Partition::Aws,
        databricks_aws_account: "414351767826",
    },
    DeploymentInfo {
        deployment: Deployment::GovCloudCivilian,
        name: "govcloud-civilian",
        label: "GovCloud civilian",
        account_host: "https://accounts.cloud.databricks.us",
        workspace_domain: "cloud.databricks.us",
        partition: Partition::AwsUsGov,
        databricks_aws_account: "044793339203",
    },
    DeploymentInfo {
        deployment: Deployment::GovCloudDod,
        name: "govcloud-dod",
        label: "GovCloud DoD",
        account_host: "https://accounts-dod.cloud.databricks.mil",
        workspace_domain: "cloud.databricks.mil",
        partition: Partition::AwsUsGov,
        databricks_aws_account: "170661010020",
    },
];

impl Deployment {
    pub const ALL: [Deployment; 3] = [
        Deployment::Commercial,
        Deployment::GovCloudCivilian,
        Deployment::GovCloudDod,
    ];

    pub fn info(self) -> &'static DeploymentInfo {
        &DEPLOYMENTS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn partition(self) -> Partition {
        self.info().partition
    }

    /// Databricks' principal in key policies: its AWS account's root.
    pub fn principal(self) -> String {
        let i = self.info();
        format!("arn:{}:iam::{}:root", i.partition, i.databricks_aws_account)
    }

    /// The workspace host template (`{deployment_name}` replaced per workspace).
    pub fn workspace_host_template(self) -> String {
        format!(
            "https://{{deployment_name}}.{}",
            self.info().workspace_domain
        )
    }

    /// A deployment by name. Besides the table's names, the shard names
    /// public modules use (`civilian`, `dod`) and the official provider's
    /// `aws_partition` values (`aws`, `aws-us-gov`, `aws-us-gov-dod`) are
    /// accepted, case-insensitively.
    pub fn parse(s: &str) -> Option<Deployment> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "commercial" | "aws" => Some(Deployment::Commercial),
            "govcloud-civilian" | "civilian" | "aws-us-gov" => Some(Deployment::GovCloudCivilian),
            "govcloud-dod" | "dod" | "aws-us-gov-dod" => Some(Deployment::GovCloudDod),
            _ => None,
        }
    }

    /// The names the `deployment` argument takes, for messages.
    pub fn names() -> String {
        DEPLOYMENTS
            .iter()
            .map(|d| format!("\"{}\"", d.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The deployment a Databricks host belongs to (an account console or
    /// a workspace URL): `*.cloud.databricks.com` commercial,
    /// `*.cloud.databricks.us` GovCloud civilian, `*.cloud.databricks.mil`
    /// and `accounts-dod.*` GovCloud DoD. `None` for any other host (a
    /// proxy, an emulator): such a host says nothing.
    pub fn of_host(host: &str) -> Option<Deployment> {
        let h = host_name(host)?;
        if h.starts_with("accounts-dod.") && h.contains(".cloud.databricks.") {
            return Some(Deployment::GovCloudDod);
        }
        DEPLOYMENTS
            .iter()
            .find(|d| h == d.workspace_domain || h.ends_with(&format!(".{}", d.workspace_domain)))
            .map(|d| d.deployment)
    }

    /// The deployment whose Databricks AWS account this is (12 digits).
    pub fn of_databricks_account(account: &str) -> Option<Deployment> {
        DEPLOYMENTS
            .iter()
            .find(|d| d.databricks_aws_account == account)
            .map(|d| d.deployment)
    }

    /// The deployments whose keys live in a partition.
    pub fn in_partition(p: Partition) -> Vec<Deployment> {
        Deployment::ALL
            .into_iter()
            .filter(|d| d.partition() == p)
            .collect()
    }
}

impl fmt::Display for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.info().label)
    }
}

/// The host name of a URL or a bare host, lower-cased, without scheme,
/// port, path, user or a trailing dot.
fn host_name(s: &str) -> Option<String> {
    let s = s.trim();
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if authority.starts_with('[') {
        return None; // an IP v6 literal names no deployment
    } else {
        authority.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Every Databricks AWS account of the table that a policy document's text
/// names, as the deployments they belong to.
pub fn named_in(text: &str) -> Vec<Deployment> {
    Deployment::ALL
        .into_iter()
        .filter(|d| text.contains(d.info().databricks_aws_account))
        .collect()
}

/// The deployments a key may be for, when no setting says which: those of
/// its partition (all when the partition is not known), narrowed to the one
/// whose Databricks account the policy names when exactly one of them is
/// named (a policy written for a shard decides it).
pub fn candidates(partition: Option<Partition>, policy_text: Option<&str>) -> Vec<Deployment> {
    let all = match partition {
        Some(p) => Deployment::in_partition(p),
        None => Deployment::ALL.to_vec(),
    };
    if let Some(text) = policy_text {
        let named: Vec<Deployment> = named_in(text)
            .into_iter()
            .filter(|d| all.contains(d))
            .collect();
        if named.len() == 1 {
            return named;
        }
    }
    all
}

/// Why a key's partition cannot serve a deployment (CMK022), when it cannot.
pub fn partition_mismatch(deployment: Deployment, key_partition: Partition) -> Option<String> {
    (deployment.partition() != key_partition).then(|| {
        let fits: Vec<&str> = DEPLOYMENTS
            .iter()
            .filter(|d| d.partition == key_partition)
            .map(|d| d.label)
            .collect();
        format!(
            "the key is in partition {key_partition}, but the Databricks deployment is {deployment} (partition {}){}",
            deployment.partition(),
            if fits.is_empty() {
                "; no Databricks on AWS deployment uses that partition".to_string()
            } else {
                format!(
                    "; a key in {key_partition} serves only {}",
                    fits.join(" or ")
                )
            }
        )
    })
}

/// The table as markdown (for the docs and the GovCloud guide).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| deployment | `deployment` | account console host | workspace URLs | partition | Databricks AWS account | principal |\n|---|---|---|---|---|---|---|\n",
    );
    for d in &DEPLOYMENTS {
        s.push_str(&format!(
            "| {} | `{}` | `{}` | `*.{}` | `{}` | `{}` | `{}` |\n",
            d.label,
            d.name,
            d.account_host,
            d.workspace_domain,
            d.partition,
            d.databricks_aws_account,
            d.deployment.principal()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order() {
        for (i, d) in Deployment::ALL.iter().enumerate() {
            assert_eq!(DEPLOYMENTS[i].deployment, *d);
        }
    }

    /// The table against its source: the facts note's table, as copied
    /// into `tests/fixtures/databricks-deployments.md` (and against the
    /// shared note itself where it sits beside the repository).
    #[test]
    fn the_table_matches_the_facts_note() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let copy = root.join("tests/fixtures/databricks-deployments.md");
        let text = std::fs::read_to_string(&copy).expect("the committed copy of the facts table");
        check_note(&text);
        let shared = root.join("../shared/notes/databricks-cmk-facts.md");
        if let Ok(note) = std::fs::read_to_string(&shared) {
            check_note(&note);
        }
    }

    fn check_note(text: &str) {
        let rows: Vec<Vec<String>> = text
            .lines()
            .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().trim_matches('`').to_string())
                    .collect()
            })
            .filter(|r: &Vec<String>| {
                r.len() >= 5
                    && ["commercial", "GovCloud civilian", "GovCloud DoD"].contains(&r[0].as_str())
            })
            .collect();
        assert_eq!(rows.len(), 3, "the note's table has the three deployments");
        for r in rows {
            let d = DEPLOYMENTS
                .iter()
                .find(|d| d.label == r[0])
                .unwrap_or_else(|| panic!("{} is in the table", r[0]));
            assert_eq!(d.account_host, r[1], "{}: account host", d.label);
            assert_eq!(format!("*.{}", d.workspace_domain), r[2], "{}", d.label);
            assert_eq!(d.partition.as_str(), r[3], "{}: partition", d.label);
            assert!(
                r[4].starts_with(d.databricks_aws_account),
                "{}: account {} vs {}",
                d.label,
                d.databricks_aws_account,
                r[4]
            );
        }
    }

    /// The GovCloud guide shows the table as the code has it.
    #[test]
    fn the_govcloud_guide_shows_this_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let guide = std::fs::read_to_string(root.join("docs/guides/govcloud.md")).unwrap();
        assert!(
            guide.contains(&markdown_table()),
            "docs/guides/govcloud.md: update its table to:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn hosts_name_their_deployment() {
        use Deployment::*;
        for (h, d) in [
            ("https://accounts.cloud.databricks.com", Some(Commercial)),
            ("https://accounts.cloud.databricks.com/", Some(Commercial)),
            ("accounts.cloud.databricks.com", Some(Commercial)),
            ("https://dbc-1234.cloud.databricks.com", Some(Commercial)),
            (
                "https://ACCOUNTS.CLOUD.DATABRICKS.US:443/",
                Some(GovCloudCivilian),
            ),
            ("https://my-ws.cloud.databricks.us", Some(GovCloudCivilian)),
            (
                "https://accounts-dod.cloud.databricks.mil",
                Some(GovCloudDod),
            ),
            (
                "https://accounts-dod.cloud.databricks.us/",
                Some(GovCloudDod),
            ),
            ("https://ws.cloud.databricks.mil", Some(GovCloudDod)),
            ("http://127.0.0.1:8080", None),
            ("https://accounts.cloud.databricks.com.evil.example", None),
            ("https://notcloud.databricks.com", None),
            ("https://accounts.azuredatabricks.net", None),
            ("", None),
        ] {
            assert_eq!(Deployment::of_host(h), d, "{h}");
        }
    }

    #[test]
    fn principals_are_the_deployments_accounts_in_their_partition() {
        assert_eq!(
            Deployment::Commercial.principal(),
            "arn:aws:iam::414351767826:root"
        );
        assert_eq!(
            Deployment::GovCloudCivilian.principal(),
            "arn:aws-us-gov:iam::044793339203:root"
        );
        assert_eq!(
            Deployment::GovCloudDod.principal(),
            "arn:aws-us-gov:iam::170661010020:root"
        );
        assert_eq!(
            Deployment::GovCloudDod.workspace_host_template(),
            "https://{deployment_name}.cloud.databricks.mil"
        );
    }

    #[test]
    fn names_parse_in_every_spelling_users_write() {
        for d in Deployment::ALL {
            assert_eq!(Deployment::parse(d.name()), Some(d));
        }
        assert_eq!(Deployment::parse("dod"), Some(Deployment::GovCloudDod));
        assert_eq!(
            Deployment::parse("Civilian"),
            Some(Deployment::GovCloudCivilian)
        );
        assert_eq!(
            Deployment::parse("aws-us-gov-dod"),
            Some(Deployment::GovCloudDod)
        );
        assert_eq!(Deployment::parse("govcloud"), None);
    }

    #[test]
    fn a_policy_naming_one_shard_decides_it() {
        let civ = r#"{"Principal":{"AWS":"arn:aws-us-gov:iam::044793339203:root"}}"#;
        assert_eq!(
            candidates(Some(Partition::AwsUsGov), Some(civ)),
            vec![Deployment::GovCloudCivilian]
        );
        // The commercial account in a GovCloud key decides nothing.
        let com = r#"{"Principal":{"AWS":"arn:aws-us-gov:iam::414351767826:root"}}"#;
        assert_eq!(
            candidates(Some(Partition::AwsUsGov), Some(com)),
            vec![Deployment::GovCloudCivilian, Deployment::GovCloudDod]
        );
        assert_eq!(
            candidates(Some(Partition::Aws), None),
            vec![Deployment::Commercial]
        );
        assert_eq!(candidates(None, None).len(), 3);
        assert!(candidates(Some(Partition::AwsCn), None).is_empty());
    }

    #[test]
    fn a_key_of_another_partition_is_named_with_what_it_serves() {
        let m = partition_mismatch(Deployment::GovCloudCivilian, Partition::Aws).unwrap();
        assert!(
            m.contains("partition aws") && m.contains("GovCloud civilian"),
            "{m}"
        );
        assert!(m.contains("serves only commercial"), "{m}");
        assert!(partition_mismatch(Deployment::GovCloudDod, Partition::AwsUsGov).is_none());
        let cn = partition_mismatch(Deployment::Commercial, Partition::AwsCn).unwrap();
        assert!(cn.contains("no Databricks on AWS deployment"), "{cn}");
    }
}
