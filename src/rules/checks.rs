//! The rules applied to facts: one entry point per kind of object.

use std::collections::BTreeSet;

use super::catalog::{DataType, KeyFeature};
use super::coverage::{coverage, Coverage, PlannedKeys, Protection};
use super::deployment::{self, Deployment};
use super::facts::{
    created_on_or_before_cutoff, BindingChange, ComputeMode, Fact, GrantFacts, KeyConfigFacts,
    KeyState, KmsKeyFacts, PricingTier, RequestedKey, Requirements, StateRead, WorkspaceFacts,
    WorkspaceStatus, DASHBOARD_CUTOFF, ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT,
};
use super::findings::{
    live_only_read_by, state_read_by, Outcome, RuleId, Severity, Subject, Verdict, NEEDS_STATE,
};
use super::iam::{cluster_volume_requests, databricks_requests_for, Decision, Policy, PolicyPart};
use super::ids::{self, Partition};

fn list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

/// Rules about one key configuration on its own: CMK017 (use cases), CMK018
/// (key ARN), CMK002 (key_region agrees with the ARN), CMK006
/// (reuse_key_for_cluster_volumes without STORAGE).
pub fn check_key_configuration(cfg: &KeyConfigFacts) -> Vec<Outcome> {
    let mut out = vec![];
    // CMK017
    let r = RuleId::UseCasesValid;
    let s = Subject::KeyConfigUseCases;
    out.push(match &cfg.use_cases {
        Fact::Unknown => Outcome::cannot_tell(r, s, "use_cases are not known until apply"),
        Fact::Known(v) if v.is_empty() => Outcome::fail(
            r,
            s,
            format!("use_cases is empty; Databricks answers \"Missing required parameters: use_cases\"; valid use cases are {}", KeyFeature::valid_names()),
        ),
        Fact::Known(v) => {
            let bad: Vec<String> = v.iter().filter(|u| KeyFeature::parse(u).is_none()).map(|u| format!("{u:?}")).collect();
            if bad.is_empty() {
                Outcome::pass(r, s, format!("use_cases {} are valid", list(v)))
            } else {
                Outcome::fail(r, s, format!("use_cases contains {}; valid use cases are {}", bad.join(", "), KeyFeature::valid_names()))
            }
        }
    });
    // CMK018 and CMK002 (ARN region vs key_region)
    let promised = cfg.key_arn_prefix.as_deref().and_then(ids::key_arn_prefix);
    let arn = match &cfg.key_arn {
        Fact::Unknown if promised.is_some() => {
            out.push(Outcome::pass(
                RuleId::KeyArnWellFormed,
                Subject::KeyArn,
                format!(
                    "the key ARN is not known until apply, but starts with {}: a key ARN",
                    cfg.key_arn_prefix.as_deref().unwrap_or_default()
                ),
            ));
            promised
        }
        Fact::Unknown => {
            out.push(Outcome::cannot_tell(
                RuleId::KeyArnWellFormed,
                Subject::KeyArn,
                "the key ARN is not known until apply",
            ));
            None
        }
        Fact::Known(a) => match ids::parse_key_arn(a) {
            Ok(k) => {
                out.push(Outcome::pass(
                    RuleId::KeyArnWellFormed,
                    Subject::KeyArn,
                    format!("{a} is a KMS key ARN"),
                ));
                Some(k)
            }
            Err(e) => {
                out.push(Outcome::fail(
                    RuleId::KeyArnWellFormed,
                    Subject::KeyArn,
                    e.0,
                ));
                None
            }
        },
    };
    let r = RuleId::KeyRegion;
    out.push(match (&cfg.key_region, &arn) {
        (Fact::Known(Some(reg)), Some(k)) if reg != &k.region => Outcome::fail(
            r,
            Subject::KeyRegion,
            format!(
                "key_region is {reg} but the key ARN {} is in {}",
                cfg.key_arn
                    .known()
                    .or(cfg.key_arn_prefix.as_ref())
                    .map(String::as_str)
                    .unwrap_or(""),
                k.region
            ),
        ),
        (Fact::Known(_), Some(k)) => Outcome::pass(
            r,
            Subject::KeyRegion,
            format!("key_region agrees with the key ARN's region {}", k.region),
        ),
        (Fact::Known(None), None) if cfg.key_arn.known().is_some() => Outcome::pass(
            r,
            Subject::KeyRegion,
            "no key_region given and the ARN is malformed (see CMK018)",
        ),
        // Databricks takes an unset key_region from the ARN: they cannot disagree.
        (Fact::Known(None), None) => Outcome::pass(
            r,
            Subject::KeyRegion,
            "no key_region is given, so Databricks takes the key ARN's region",
        ),
        _ => Outcome::cannot_tell(
            r,
            Subject::KeyRegion,
            "the key ARN or key_region is not known until apply",
        ),
    });
    // CMK006
    let r = RuleId::ReuseWithoutStorage;
    let s = Subject::ReuseKeyForClusterVolumes;
    out.push(match (&cfg.reuse_key_for_cluster_volumes, cfg.has(KeyFeature::Storage)) {
        (Fact::Known(None), _) => Outcome::pass(r, s, "reuse_key_for_cluster_volumes is not set"),
        // false asks for no cluster-volume encryption: nothing is claimed that does not happen.
        (Fact::Known(Some(false)), _) => Outcome::pass(r, s, "reuse_key_for_cluster_volumes = false asks for no cluster-volume encryption"),
        (Fact::Known(Some(true)), Fact::Known(true)) => Outcome::pass(r, s, "reuse_key_for_cluster_volumes is set on a STORAGE configuration"),
        (Fact::Known(Some(true)), Fact::Known(false)) => Outcome::fail(
            r,
            s,
            format!(
                "reuse_key_for_cluster_volumes = true but use_cases are {}; the field applies only with STORAGE, so no cluster EBS volume is encrypted with this key",
                list(cfg.use_cases.known().map(Vec::as_slice).unwrap_or(&[]))
            ),
        ),
        _ => Outcome::cannot_tell(r, s, "use_cases or reuse_key_for_cluster_volumes are not known until apply"),
    });
    out
}

/// CMK018 for a key ARN not known until apply but taken from a KMS key
/// resource's `arn` attribute (`source`, e.g. `aws_kms_key.storage.arn`, or
/// an alias's `target_key_arn`): what AWS returns there is always a key
/// ARN, never an alias ARN, so the rule decides before apply.
pub fn key_arn_from_key_resource(source: &str) -> Outcome {
    Outcome::pass(
        RuleId::KeyArnWellFormed,
        Subject::KeyArn,
        format!("the key ARN is {source}, a KMS key ARN once the key exists"),
    )
}

/// What the key policy must allow: from the key configurations that use the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyNeeds {
    /// Union of the use cases of the configurations using the key.
    pub use_cases: Fact<BTreeSet<KeyFeature>>,
    /// Whether any STORAGE configuration also encrypts cluster volumes.
    pub cluster_volumes: Fact<bool>,
    /// The Databricks account id (tag on Databricks' principal).
    pub databricks_account_id: Fact<String>,
    /// The workspace's cross-account IAM role (`None`: not known to exist).
    pub cross_account_role_arn: Fact<Option<String>>,
    /// The workspace region, for the EC2 `kms:ViaService` value.
    pub workspace_region: Fact<String>,
    /// An explicit Databricks principal (the policy data source's
    /// `databricks_principal`); `None`: the deployment's.
    pub databricks_principal: Option<String>,
    /// The Databricks deployment the key serves, when a setting says which
    /// (`None`: every deployment of the key's partition is a candidate).
    pub deployment: Option<Deployment>,
}

/// Rules about a KMS key used by key configurations: CMK003 (spec and
/// usage), CMK004 (enabled), CMK015 and CMK016 (key policy).
pub fn check_kms_key(key: &KmsKeyFacts, needs: &PolicyNeeds) -> Vec<Outcome> {
    let mut out = vec![];
    let name = key
        .arn
        .known()
        .cloned()
        .unwrap_or_else(|| "the KMS key".to_string());
    // CMK003
    let r = RuleId::SymmetricKey;
    out.push(match &key.spec {
        Fact::Unknown => {
            Outcome::cannot_tell(r, Subject::KeySpec, "the key spec is not known until apply")
        }
        Fact::Known(s) if s != SYMMETRIC_DEFAULT => Outcome::fail(
            r,
            Subject::KeySpec,
            format!("key {name} has key spec {s}; Databricks needs {SYMMETRIC_DEFAULT}"),
        ),
        Fact::Known(_) => Outcome::pass(
            r,
            Subject::KeySpec,
            format!("key spec is {SYMMETRIC_DEFAULT}"),
        ),
    });
    out.push(match &key.usage {
        Fact::Unknown => Outcome::cannot_tell(
            r,
            Subject::KeyUsage,
            "the key usage is not known until apply",
        ),
        Fact::Known(u) if u != ENCRYPT_DECRYPT => Outcome::fail(
            r,
            Subject::KeyUsage,
            format!("key {name} has key usage {u}; Databricks needs {ENCRYPT_DECRYPT}"),
        ),
        Fact::Known(_) => Outcome::pass(
            r,
            Subject::KeyUsage,
            format!("key usage is {ENCRYPT_DECRYPT}"),
        ),
    });
    // CMK004
    let r = RuleId::KeyUsable;
    out.push(match key.state {
        Fact::Unknown => Outcome::cannot_tell(r, Subject::KeyState, "the key state is not known until apply"),
        Fact::Known(KeyState::Enabled | KeyState::Creating | KeyState::Updating) => Outcome::pass(r, Subject::KeyState, "the key is enabled"),
        Fact::Known(st) => Outcome::fail(
            r,
            Subject::KeyState,
            format!("key {name} is {st}; data encrypted with it becomes unreadable and Databricks cannot use it"),
        ),
    });
    out.extend(check_key_policy(key, needs));
    out
}

/// A key's partition from what is known of it: its ARN, else the start of
/// an ARN promised at plan (`arn:aws-us-gov:kms:REGION:ACCOUNT:key/`), else
/// its region.
pub fn key_partition_of(
    arn: Option<&str>,
    arn_prefix: Option<&str>,
    region: Option<&str>,
) -> Option<Partition> {
    arn.and_then(|a| ids::parse_key_arn(a).ok())
        .or_else(|| arn_prefix.and_then(ids::key_arn_prefix))
        .map(|k| k.partition)
        .or_else(|| region.map(Partition::of_region))
}

/// CMK022: the key's partition ([`key_partition_of`]) against the
/// Databricks deployment it serves. `None` while no deployment is known
/// and the partition is one a deployment uses: the rule waits for a
/// setting that names the deployment, and claims nothing it cannot know.
pub fn check_key_partition(
    deployment: Option<Deployment>,
    partition: Option<Partition>,
) -> Option<Outcome> {
    let (r, s) = (RuleId::KeyPartitionDeployment, Subject::KeyArn);
    match (deployment, partition) {
        (Some(d), Some(p)) => Some(match deployment::partition_mismatch(d, p) {
            Some(why) => Outcome::fail(r, s, why),
            None => Outcome::pass(
                r,
                s,
                format!("the key is in partition {p}, the partition of {d}"),
            ),
        }),
        (Some(d), None) => Some(Outcome::cannot_tell(
            r,
            s,
            format!(
                "the key's partition is not known until apply; {d} needs {}",
                d.partition()
            ),
        )),
        (None, Some(p)) if Deployment::in_partition(p).is_empty() => Some(Outcome::fail(
            r,
            s,
            format!("the key is in partition {p}, which no Databricks on AWS deployment uses"),
        )),
        (None, _) => None,
    }
}

/// The owner account standing in, in a generated policy, for one not
/// known until apply: only the owner's own statement names it, and no rule
/// but CMK016 (a role of the owner's account) reads that statement.
pub const OWNER_NOT_KNOWN: &str = "000000000000";

/// CMK016 of a generated policy whose owner is not known (checked with
/// [`OWNER_NOT_KNOWN`]): a failure says only that the policy has no EBS
/// statement for `role`; a role of the key's own account may still reach
/// the key through the owner's statement, so it waits for the owner.
pub fn owner_decides_cluster_volumes(outcomes: &mut [Outcome], role: &str) {
    for o in outcomes.iter_mut() {
        if o.rule == RuleId::PolicyClusterVolumes && o.is_failure() {
            *o = Outcome::cannot_tell(
                o.rule,
                o.subject,
                format!(
                    "the generated policy has no EBS statement for {role}; whether the role reaches the key depends on the key's account, which is not known until apply. Set cross_account_role_arn = \"{role}\" so that the policy names it"
                ),
            );
        }
    }
}

fn check_key_policy(key: &KmsKeyFacts, needs: &PolicyNeeds) -> Vec<Outcome> {
    let s = Subject::KeyPolicy;
    let (r15, r16, r21) = (
        RuleId::PolicyDatabricksGrants,
        RuleId::PolicyClusterVolumes,
        RuleId::PolicyGuideStatements,
    );
    // CMK016 (the EBS statement) and CMK021 (the storage and grants
    // statements) concern STORAGE keys only: a key whose use cases are
    // known not to include STORAGE passes both, whatever its policy.
    let not_storage = match &needs.use_cases {
        Fact::Known(u) => !u.contains(&KeyFeature::Storage),
        Fact::Unknown => false,
    };
    let storage_only = |r: RuleId, or: Outcome| {
        if not_storage {
            Outcome::pass(r, s, NOT_A_STORAGE_KEY)
        } else {
            or
        }
    };
    let policy = match &key.policy {
        Fact::Unknown => {
            return vec![
                Outcome::cannot_tell(r15, s, "the key policy is not known until apply"),
                storage_only(
                    r16,
                    Outcome::cannot_tell(r16, s, "the key policy is not known until apply"),
                ),
                storage_only(
                    r21,
                    Outcome::cannot_tell(r21, s, "the key policy is not known until apply"),
                ),
            ]
        }
        Fact::Known(None) => None,
        Fact::Known(Some(text)) => match Policy::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                return vec![
                    Outcome::fail(r15, s, e.to_string()),
                    Outcome::fail(r16, s, e.to_string()),
                    Outcome::fail(r21, s, e.to_string()),
                ]
            }
        },
    };
    let arn = key.arn.known().map(String::as_str);
    let mut out = vec![];
    let candidates = principal_candidates(key, needs);
    if candidates.is_empty() {
        let why = format!(
            "no Databricks on AWS deployment uses the key's partition ({}), so no Databricks principal can be checked (CMK022)",
            key_partition(key).map(|p| p.as_str()).unwrap_or("unknown")
        );
        out.push(Outcome::cannot_tell(r15, s, why.clone()));
        out.push(storage_only(r21, Outcome::cannot_tell(r21, s, why)));
    } else {
        let per: Vec<(&Candidate, [Outcome; 2])> = candidates
            .iter()
            .map(|c| {
                (
                    c,
                    principal_rules(needs, policy.as_ref(), arn, &c.principal, &key.grants),
                )
            })
            .collect();
        for i in 0..2 {
            let each: Vec<(&Candidate, &Outcome)> = per.iter().map(|(c, o)| (*c, &o[i])).collect();
            out.push(combine_candidates(&each));
        }
    }
    // CMK016
    out.push(match (&needs.cluster_volumes, &policy, &needs.cross_account_role_arn) {
        _ if not_storage => Outcome::pass(r16, s, NOT_A_STORAGE_KEY),
        (Fact::Known(false), _, _) => Outcome::pass(r16, s, "the key does not encrypt cluster volumes"),
        (Fact::Unknown, _, _) => Outcome::cannot_tell(r16, s, "whether the key encrypts cluster volumes is not known until apply"),
        (_, _, Fact::Unknown) | (_, _, Fact::Known(None)) => Outcome::cannot_tell(
            r16,
            s,
            "the key encrypts cluster volumes, but the workspace's cross-account role is not known, so its EBS statement cannot be checked",
        ),
        (_, None, Fact::Known(Some(role))) => Outcome::fail(r16, s, format!("the key has the default key policy, which has no EBS statement for {role}")),
        (_, Some(p), Fact::Known(Some(role))) => {
            let reqs = cluster_volume_requests(role, needs.workspace_region.known().map(String::as_str), arn);
            let o = verdict_for(r16, p, reqs.iter().map(|r| ("cluster volumes", r)), &[]);
            o
        }
    });
    out
}

/// The pass of CMK016 and CMK021 on a key known to serve no STORAGE
/// configuration.
pub const NOT_A_STORAGE_KEY: &str =
    "not a STORAGE key: the key's use cases do not include STORAGE, so no EBS, storage or grants statement is needed";

/// One Databricks principal a key policy may have to name, and the
/// deployment it is for (`None`: an explicit principal).
#[derive(Debug, Clone)]
struct Candidate {
    principal: String,
    deployment: Option<Deployment>,
}

/// The partition of a key: its ARN's, or its region's.
fn key_partition(key: &KmsKeyFacts) -> Option<Partition> {
    key_partition_of(
        key.arn.known().map(String::as_str),
        None,
        key.region.known().map(String::as_str),
    )
}

/// The principals CMK015 and CMK021 check: the one given, else the
/// deployment's, else every deployment the key's partition allows (narrowed
/// to the shard whose account the policy names, when it names one).
fn principal_candidates(key: &KmsKeyFacts, needs: &PolicyNeeds) -> Vec<Candidate> {
    if let Some(p) = &needs.databricks_principal {
        return vec![Candidate {
            principal: p.clone(),
            deployment: None,
        }];
    }
    let text = match &key.policy {
        Fact::Known(Some(t)) => Some(t.as_str()),
        _ => None,
    };
    let deployments = match needs.deployment {
        Some(d) => vec![d],
        None => deployment::candidates(key_partition(key), text),
    };
    deployments
        .into_iter()
        .map(|d| Candidate {
            principal: d.principal(),
            deployment: Some(d),
        })
        .collect()
}

/// CMK015 and CMK021 for one principal.
fn principal_rules(
    needs: &PolicyNeeds,
    policy: Option<&Policy>,
    arn: Option<&str>,
    principal: &str,
    grants: &[GrantFacts],
) -> [Outcome; 2] {
    // The default key policy (the key owner's account root only) with
    // grants: the grants decide what Databricks' principal may do.
    let default_policy = (policy.is_none() && !grants.is_empty())
        .then(|| Policy::parse(DEFAULT_POLICY).ok())
        .flatten();
    let policy = policy.or(default_policy.as_ref());
    let s = Subject::KeyPolicy;
    let (r15, r21) = (
        RuleId::PolicyDatabricksGrants,
        RuleId::PolicyGuideStatements,
    );
    // CMK015
    let r15_outcome = match (&needs.use_cases, policy) {
        (Fact::Unknown, _) => Outcome::cannot_tell(
            r15,
            s,
            "the use cases of the key configurations using this key are not known until apply",
        ),
        (Fact::Known(u), _) if u.is_empty() => {
            Outcome::pass(r15, s, "no use case needs Databricks' principal")
        }
        (Fact::Known(_), None) => Outcome::fail(
            r15,
            s,
            format!(
                "the key has the default key policy, which does not allow {principal} anything"
            ),
        ),
        (Fact::Known(u), Some(p)) => {
            let reqs = databricks_requests_for(
                u,
                principal,
                needs.databricks_account_id.known().map(String::as_str),
                arn,
                PolicyPart::Required,
            );
            verdict_for(r15, p, reqs.iter().map(|(f, r)| (f.as_str(), r)), grants)
        }
    };
    // CMK021: what Databricks' guide adds beyond what the services need.
    let r21_outcome = match (&needs.use_cases, policy) {
        (Fact::Unknown, _) => Outcome::cannot_tell(
            r21,
            s,
            "the use cases of the key configurations using this key are not known until apply",
        ),
        (Fact::Known(u), _) if !u.contains(&KeyFeature::Storage) => {
            Outcome::pass(r21, s, NOT_A_STORAGE_KEY)
        }
        (Fact::Known(_), None) => Outcome::fail(
            r21,
            s,
            format!("the key has the default key policy, without the storage and grants statements Databricks' guide gives {principal}"),
        ),
        (Fact::Known(u), Some(p)) => {
            let reqs = databricks_requests_for(
                u,
                principal,
                needs.databricks_account_id.known().map(String::as_str),
                arn,
                PolicyPart::GuideAdds,
            );
            let o = verdict_for(
                r21,
                p,
                reqs.iter().map(|(f, r)| (f.as_str(), r)),
                grants,
            );
            if o.verdict == super::findings::Verdict::Fail {
                let grants = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
                    .iter()
                    .any(|a| o.message.contains(a));
                let storage = ["kms:ReEncrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
                    .iter()
                    .any(|a| o.message.contains(a));
                let mut names = vec![];
                if storage {
                    names.push(format!("{} (kms:ReEncrypt*, kms:GenerateDataKey*, kms:DescribeKey besides Encrypt and Decrypt)", super::kms_policy::sid::STORAGE));
                }
                if grants {
                    names.push(format!("{} (kms:CreateGrant, kms:ListGrants, kms:RevokeGrant for {principal} under Bool kms:GrantIsForAWSResource = true, so that Databricks can give the AWS services working for the workspace's storage use of the key through grants)", super::kms_policy::sid::STORAGE_GRANTS));
                }
                let message = format!(
                    "{}; Databricks' configuration guide adds the statement {}. Databricks' security reference architecture runs without the grants statement, so this is a warning",
                    o.message,
                    names.join(" and the statement ")
                );
                Outcome { message: super::findings::readable(&message), ..o }
            } else {
                o
            }
        }
    };
    [r15_outcome, r21_outcome]
}

/// One outcome from a rule's outcomes for each deployment the key may be
/// for: the same verdict for all stands; different verdicts wait for the
/// deployment to be known.
fn combine_candidates(each: &[(&Candidate, &Outcome)]) -> Outcome {
    let (_, first) = each[0];
    if each.len() == 1 {
        return first.clone();
    }
    let named = |c: &Candidate| match c.deployment {
        Some(d) => format!("{d} ({})", c.principal),
        None => c.principal.clone(),
    };
    let same = each.iter().all(|(_, o)| o.verdict == first.verdict);
    let detail = each
        .iter()
        .map(|(c, o)| format!("for {}: {}", named(c), o.message))
        .collect::<Vec<_>>()
        .join("; ");
    let mut o = (*first).clone();
    o.message = if same {
        format!(
            "the Databricks deployment is not known, and the verdict is the same for every deployment the key's partition allows: {detail}"
        )
    } else {
        o.verdict = super::findings::Verdict::CannotTell;
        format!(
            "the verdict depends on the Databricks deployment, which is not known: {detail}. Name the deployment: the provider's host or deployment argument (review: the Databricks provider block's host, or --deployment {})",
            each.iter()
                .filter_map(|(c, _)| c.deployment.map(|d| d.name()))
                .collect::<Vec<_>>()
                .join("|")
        )
    };
    o.message = super::findings::readable(&o.message);
    o
}

/// A key's default policy (what KMS gives a key created without one): the
/// owner's account root may do everything, nobody else anything. The
/// owner's account stands as a placeholder: no Databricks principal is in it.
const DEFAULT_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*"}]}"#;

/// What the grants on a key say of a request the key policy does not allow:
/// `Ok(Some(grant))` a grant allows it, `Ok(None)` none does, `Err(why)` a
/// grant whose key, grantee or operations are not known might.
fn grant_allows(grants: &[GrantFacts], r: &super::iam::Request) -> Result<Option<String>, String> {
    let op = r.action.strip_prefix("kms:").unwrap_or(&r.action);
    let mut unsure = vec![];
    for g in grants {
        let covers = match (&g.grantee, &g.operations) {
            (Fact::Known(p), _) if *p != r.principal => continue,
            (_, Fact::Known(ops)) if !ops.iter().any(|o| o == op) => continue,
            (Fact::Known(_), Fact::Known(_)) => true,
            _ => false,
        };
        if covers && !g.key_not_known {
            return Ok(Some(g.name.clone()));
        }
        let what = match (&g.grantee, &g.operations, g.key_not_known) {
            (Fact::Unknown, _, _) => "grantee_principal",
            (_, Fact::Unknown, _) => "operations",
            _ => "key_id",
        };
        unsure.push(format!(
            "grant {} (its {what} is not known until apply)",
            g.name
        ));
    }
    if unsure.is_empty() {
        Ok(None)
    } else {
        Err(unsure.join(", "))
    }
}

fn verdict_for<'a>(
    rule: RuleId,
    p: &Policy,
    reqs: impl Iterator<Item = (&'a str, &'a super::iam::Request)>,
    grants: &[GrantFacts],
) -> Outcome {
    let s = Subject::KeyPolicy;
    let mut denied = vec![];
    let mut via_root = vec![];
    let mut unsure = vec![];
    for (why, r) in reqs {
        // The request as a message names it (built only for one that is
        // not simply allowed).
        let what = || {
            let via = r
                .context
                .get("kms:viaservice")
                .and_then(|v| match v {
                    super::iam::CtxValue::Values(v) => v.first(),
                    _ => None,
                })
                .map(|v| format!(" via {v}"))
                .unwrap_or_default();
            format!("{} {}{via} (needed for {why})", r.principal, r.action)
        };
        match p.evaluate(r) {
            Decision::Allow {
                via_account_root: false,
            } => {}
            Decision::Allow {
                via_account_root: true,
            } => via_root.push(what()),
            Decision::ExplicitDeny { sid } => denied.push(format!(
                "{}: denied by statement {}",
                what(),
                sid.unwrap_or_else(|| "without Sid".into())
            )),
            // A grant allows what the key policy does not (an explicit
            // deny still wins).
            Decision::ImplicitDeny => match grant_allows(grants, r) {
                Ok(Some(_)) => {}
                Ok(None) => denied.push(what()),
                Err(why) => unsure.push(format!(
                    "{}: the key policy does not allow it, and {why} may",
                    what()
                )),
            },
            Decision::CannotTell(why) => unsure.push(format!("{}: {why}", what())),
        }
    }
    if !denied.is_empty() {
        let grants_named = if grants.is_empty() {
            String::new()
        } else {
            format!(
                ", nor does any grant ({})",
                grants
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Outcome::fail(
            rule,
            s,
            format!(
                "the key policy does not allow {}{grants_named}",
                denied.join("; ")
            ),
        );
    }
    if !unsure.is_empty() {
        return Outcome::cannot_tell(
            rule,
            s,
            format!(
                "cannot tell whether the key policy allows {}",
                unsure.join("; ")
            ),
        );
    }
    if !via_root.is_empty() {
        return Outcome::fail(
            rule,
            s,
            format!(
                "the key policy allows {} only through the account root, so it works only if the role's own IAM policy allows it; add an explicit statement",
                via_root.join("; ")
            ),
        )
        .with_severity(Severity::Warning);
    }
    Outcome::pass(
        rule,
        s,
        if grants.is_empty() {
            "the key policy allows every action the use cases need"
        } else {
            "the key policy and its grants allow every action the use cases need"
        },
    )
}

/// How a storage configuration's cluster-volume setting reads in a message:
/// omitted is Databricks' default, true.
fn reuse_shown(cfg: Option<&KeyConfigFacts>) -> &'static str {
    match cfg.map(|c| &c.reuse_key_for_cluster_volumes) {
        Some(Fact::Known(None)) => "true (omitted: Databricks' default)",
        _ => "true",
    }
}

/// Whether a slot's binding changes: current id vs requested.
fn slot_changes(current: &Fact<Option<String>>, req: &RequestedKey) -> Fact<bool> {
    match (current, &req.id) {
        (Fact::Known(c), Fact::Known(r)) => Fact::Known(c != r),
        (Fact::Known(None), Fact::Unknown) => req.is_set(),
        (Fact::Known(Some(_)), Fact::Unknown) if req.created_in_plan => Fact::Known(true),
        _ => Fact::Unknown,
    }
}

/// Rules about binding key configurations to a workspace: CMK001, CMK002,
/// CMK005, CMK007, CMK008, CMK009, CMK010, CMK011, CMK012, CMK013, CMK014,
/// CMK019. `managed_services` / `storage`: the facts of the configurations
/// the requested ids name, when the caller could resolve them.
///
/// For a workspace whose current state was not read (a configuration's
/// source reviewed without `--live`: [`StateRead::NotRead`]), what only that
/// state would decide is "needs state" ([`Verdict::NeedsState`]), never a
/// pass; for one that `--live` could not tell apart from another
/// ([`StateRead::Ambiguous`]), "cannot tell yet", saying why.
pub fn check_binding(
    ws: &WorkspaceFacts,
    change: &BindingChange,
    managed_services: Option<&KeyConfigFacts>,
    storage: Option<&KeyConfigFacts>,
    required: &Requirements,
) -> Vec<Outcome> {
    let mut out = binding_outcomes(ws, change, managed_services, storage, required);
    if ws.state != StateRead::Read {
        let probe = binding_outcomes(
            &ws.with_state_placeholder(),
            change,
            managed_services,
            storage,
            required,
        );
        mark_needs_state(ws, &mut out, &probe);
    }
    out
}

/// The outcomes that cannot tell yet, but that the workspace's current
/// state decides (`probe`: the same rules on [`WorkspaceFacts::with_state_placeholder`]),
/// become "needs state" (or, for an ambiguous live match, say why they
/// cannot tell).
pub fn mark_needs_state(ws: &WorkspaceFacts, out: &mut [Outcome], probe: &[Outcome]) {
    for o in out.iter_mut() {
        let decided = probe.iter().any(|p| {
            p.rule == o.rule && p.subject == o.subject && p.verdict != Verdict::CannotTell
        });
        if o.verdict != Verdict::CannotTell || !decided {
            continue;
        }
        let what = state_read_by(o.rule).unwrap_or("the workspace's current state");
        let severity = o.severity;
        *o = match &ws.state {
            StateRead::Read => continue,
            StateRead::NotRead { .. } => Outcome::needs_state(
                o.rule,
                o.subject,
                format!(
                    "{} may exist already, and this rule reads {what}; {}",
                    ws.label(),
                    match live_only_read_by(o.rule) {
                        None => "review a plan of it, or pass --live".to_string(),
                        Some(live) => format!("pass --live (a plan would tell whether it exists and how its keys change, but not {live})"),
                    }
                ),
            ),
            StateRead::Ambiguous(why) => {
                Outcome::cannot_tell(o.rule, o.subject, format!("{why}; this rule reads {what}"))
            }
        }
        .with_severity(severity);
    }
}

fn binding_outcomes(
    ws: &WorkspaceFacts,
    change: &BindingChange,
    managed_services: Option<&KeyConfigFacts>,
    storage: Option<&KeyConfigFacts>,
    required: &Requirements,
) -> Vec<Outcome> {
    let mut out = vec![];
    let label = ws.label();
    let ms_set = change.managed_services.is_set();
    let st_set = change.storage.is_set();
    let any_set = match (&ms_set, &st_set) {
        (Fact::Known(true), _) | (_, Fact::Known(true)) => Fact::Known(true),
        (Fact::Known(false), Fact::Known(false)) => Fact::Known(false),
        _ => Fact::Unknown,
    };
    // CMK001
    let r = RuleId::EnterpriseTier;
    let s = Subject::WorkspacePricingTier;
    out.push(match (&any_set, ws.pricing_tier) {
        (Fact::Known(false), _) => Outcome::pass(r, s, "no key is bound"),
        (_, Fact::Known(PricingTier::Enterprise)) => {
            Outcome::pass(r, s, format!("{label} is on ENTERPRISE"))
        }
        (Fact::Known(true), Fact::Known(t)) => Outcome::fail(
            r,
            s,
            format!("{label} has pricing tier {t}; customer-managed keys need ENTERPRISE"),
        ),
        _ => Outcome::cannot_tell(
            r,
            s,
            "the pricing tier, or whether a key is bound, is not known until apply",
        ),
    });
    // Per slot: CMK014, CMK005, CMK002.
    for (slot, req, cfg, feature, subject) in [
        (
            "managed-services",
            &change.managed_services,
            managed_services,
            KeyFeature::ManagedServices,
            Subject::ManagedServicesBinding,
        ),
        (
            "storage",
            &change.storage,
            storage,
            KeyFeature::Storage,
            Subject::StorageBinding,
        ),
    ] {
        out.extend(check_slot(ws, slot, req, cfg, feature, subject));
    }
    // CMK007 / CMK008: serverless.
    let (r7, r8) = (RuleId::EbsKeyOnServerless, RuleId::StorageKeyOnServerless);
    let s = Subject::StorageBinding;
    let st_name = storage_label(&change.storage);
    match (&st_set, ws.compute_mode) {
        (Fact::Known(false), _) => {
            out.push(Outcome::pass(r7, s, "no storage key is bound"));
            out.push(Outcome::pass(r8, s, "no storage key is bound"));
        }
        (_, Fact::Known(ComputeMode::Hybrid)) => {
            out.push(Outcome::pass(
                r7,
                s,
                format!("{label} runs classic compute (HYBRID)"),
            ));
            out.push(Outcome::pass(
                r8,
                s,
                format!("{label} runs classic compute (HYBRID)"),
            ));
        }
        (Fact::Known(true), Fact::Known(ComputeMode::Serverless)) => {
            let ebs = storage
                .map(KeyConfigFacts::covers_cluster_volumes)
                .unwrap_or(Fact::Unknown);
            out.push(match ebs {
                Fact::Known(true) => Outcome::fail(r7, s, format!("{st_name} has reuse_key_for_cluster_volumes = {} but {label} is SERVERLESS: customer-managed keys for EBS storage do not apply to serverless compute, so the cluster-volume encryption it asks for never happens", reuse_shown(storage))),
                Fact::Known(false) => Outcome::pass(r7, s, format!("{st_name} does not encrypt cluster volumes")),
                Fact::Unknown => Outcome::cannot_tell(r7, s, format!("whether {st_name} encrypts cluster volumes is not known")),
            });
            out.push(Outcome::fail(r8, s, format!("{label} is SERVERLESS: only the managed-services key applies, the storage key ({st_name}) is not needed")));
        }
        _ => {
            out.push(Outcome::cannot_tell(
                r7,
                s,
                "the compute mode, or whether a storage key is bound, is not known until apply",
            ));
            out.push(Outcome::cannot_tell(
                r8,
                s,
                "the compute mode, or whether a storage key is bound, is not known until apply",
            ));
        }
    }
    // CMK009: replacing the storage key.
    let r = RuleId::StorageKeyReplacement;
    out.push(match (&ws.storage_key_id, &change.storage.id) {
        (Fact::Known(None), _) => Outcome::pass(r, s, format!("{label} has no storage key yet; one may be set")),
        (Fact::Known(Some(cur)), Fact::Known(Some(new))) if cur == new => Outcome::pass(r, s, "the storage key is unchanged"),
        (Fact::Known(Some(cur)), Fact::Known(Some(new))) => Outcome::fail(r, s, format!("{label} already has storage key configuration {cur}; Databricks cannot replace it with {new}")),
        (Fact::Known(Some(cur)), Fact::Known(None)) => Outcome::fail(r, s, format!("{label} already has storage key configuration {cur}; Databricks cannot remove or replace it")),
        (Fact::Known(Some(cur)), Fact::Unknown) if change.storage.created_in_plan => Outcome::fail(r, s, format!("{label} already has storage key configuration {cur}; Databricks cannot replace it with {}", if st_name.contains("created in this plan") { st_name.clone() } else { format!("{st_name}, which this plan creates") })),
        (Fact::Known(Some(cur)), Fact::Unknown) => Outcome::cannot_tell(r, s, format!("{label} has storage key configuration {cur}; the requested one is not known until apply, and if it differs Databricks cannot replace it")),
        (Fact::Unknown, _) => Outcome::cannot_tell(r, s, "the workspace's current storage key is not known"),
    });
    // CMK010: running classic compute.
    let r = RuleId::ClassicComputeRunning;
    let s = Subject::RunningClassicCompute;
    let changes = match (
        slot_changes(&ws.managed_services_key_id, &change.managed_services),
        slot_changes(&ws.storage_key_id, &change.storage),
    ) {
        (Fact::Known(true), _) | (_, Fact::Known(true)) => Fact::Known(true),
        (Fact::Known(false), Fact::Known(false)) => Fact::Known(false),
        _ => Fact::Unknown,
    };
    out.push(match (&changes, &ws.status, &ws.compute_mode, &ws.running_classic_compute) {
        (Fact::Known(false), _, _, _) => Outcome::pass(r, s, "the keys do not change"),
        (_, Fact::Known(st), _, _) if *st != Some(WorkspaceStatus::Running) => Outcome::pass(r, s, format!("{label} is not running")),
        (_, _, Fact::Known(ComputeMode::Serverless), _) => Outcome::pass(r, s, format!("{label} is SERVERLESS: no classic compute")),
        (_, _, _, Fact::Known(v)) if v.is_empty() => Outcome::pass(r, s, "no classic compute is running"),
        (_, Fact::Known(_), _, Fact::Known(v)) => {
            let names: Vec<String> = v.iter().map(ToString::to_string).collect();
            let o = Outcome::fail(r, s, format!("{label} is RUNNING with classic compute: {}; stop them before changing keys", names.join(", ")));
            if changes == Fact::Unknown { Outcome { verdict: super::findings::Verdict::CannotTell, message: format!("if the keys change, {}", o.message), ..o } } else { o }
        }
        _ => Outcome::cannot_tell(r, s, format!("whether {label} runs classic compute (clusters, pools, classic SQL warehouses) is not known at plan time; stop all of it before the keys change")),
    });
    // CMK019: verify a storage key change took.
    let r = RuleId::StorageKeyVerify;
    let s = Subject::StorageBinding;
    out.push(match (slot_changes(&ws.storage_key_id, &change.storage), &ws.status) {
        (Fact::Known(false), _) => Outcome::pass(r, s, "the storage key does not change"),
        (_, Fact::Known(Some(WorkspaceStatus::Running))) => Outcome::fail(r, s, format!("the storage key ({st_name}) is being set on running {label}: check afterwards that storage_customer_managed_key_id took")),
        (_, Fact::Known(_)) => Outcome::pass(r, s, format!("{label} is not running")),
        _ => Outcome::cannot_tell(r, s, "the workspace status is not known"),
    });
    // CMK020: the status lets the keys change (whether a FAILED workspace
    // ever ran is not in the Account API's answer: callers that know it use
    // `check_workspace_updatable` directly).
    out.push(check_workspace_updatable(ws, change, Fact::Unknown));
    // Coverage-based rules: CMK011, CMK012, CMK013.
    // (The coverage table only for the data types required.)
    let cov = if required.data_types.is_empty() {
        vec![]
    } else {
        coverage(ws, &PlannedKeys::from_binding(change, storage))
    };
    out.extend(dashboard_rule(ws, &ms_set, required));
    out.extend(requirement_rules(ws, &cov, required));
    out
}

/// CMK020: Databricks updates the keys of a RUNNING or FAILED workspace
/// only ("Update a running or failed workspace"); on a FAILED workspace that
/// was ever RUNNING, a storage key configuration cannot be added (the Account
/// API's documentation of the workspace update). `ever_running`: whether the
/// workspace was ever RUNNING, when the caller knows.
pub fn check_workspace_updatable(
    ws: &WorkspaceFacts,
    change: &BindingChange,
    ever_running: Fact<bool>,
) -> Outcome {
    let r = RuleId::WorkspaceUpdatable;
    let s = Subject::WorkspaceStatus;
    let label = ws.label();
    let any = |a: Fact<bool>, b: Fact<bool>| match (a, b) {
        (Fact::Known(true), _) | (_, Fact::Known(true)) => Fact::Known(true),
        (Fact::Known(false), Fact::Known(false)) => Fact::Known(false),
        _ => Fact::Unknown,
    };
    let storage_changes = slot_changes(&ws.storage_key_id, &change.storage);
    let changes = any(
        slot_changes(&ws.managed_services_key_id, &change.managed_services),
        storage_changes,
    );
    match (&changes, &ws.status) {
        (Fact::Known(false), _) => Outcome::pass(r, s, "the keys do not change"),
        (_, Fact::Known(None)) => Outcome::pass(r, s, "a new workspace gets its keys when it is created"),
        (_, Fact::Known(Some(WorkspaceStatus::Running))) => Outcome::pass(r, s, format!("{label} is RUNNING")),
        (_, Fact::Known(Some(WorkspaceStatus::Failed))) => match (storage_changes, ever_running) {
            (Fact::Known(false), _) => Outcome::pass(r, s, format!("{label} is FAILED; Databricks accepts a managed-services key on a failed workspace")),
            (_, Fact::Known(false)) => Outcome::pass(r, s, format!("{label} is FAILED and never ran; Databricks accepts its keys")),
            (Fact::Known(true), Fact::Known(true)) => Outcome::fail(r, s, format!("{label} is FAILED after having run; Databricks adds a storage key to a failed workspace only if it never ran")),
            _ => Outcome::cannot_tell(r, s, format!("{label} is FAILED; Databricks adds a storage key to a failed workspace only if it never ran, and whether it ran is not known")),
        },
        (_, Fact::Known(Some(st))) => {
            let o = Outcome::fail(r, s, format!("{label} is {st}; Databricks changes keys only on a RUNNING or FAILED workspace"));
            if changes == Fact::Unknown {
                Outcome { verdict: super::findings::Verdict::CannotTell, message: format!("if the keys change, {}", o.message), ..o }
            } else {
                o
            }
        }
        (_, Fact::Unknown) => Outcome::cannot_tell(r, s, "the workspace status is not known"),
    }
}

/// The storage slot's key configuration, named for a message (its id, its
/// address in a review, or the argument that names it).
fn storage_label(req: &RequestedKey) -> String {
    req.config_phrase()
}

fn check_slot(
    ws: &WorkspaceFacts,
    slot: &str,
    req: &RequestedKey,
    cfg: Option<&KeyConfigFacts>,
    feature: KeyFeature,
    subject: Subject,
) -> Vec<Outcome> {
    let mut out = vec![];
    let label = ws.label();
    let set = req.is_set();
    // CMK014
    let r = RuleId::CompositeKeyId;
    out.push(match (&req.composite_source, &req.id) {
        (Some(src), _) => Outcome::fail(r, subject, format!("the {slot} key id comes from {src}, the composite <account_id>/<customer_managed_key_id>; use .customer_managed_key_id")),
        (None, Fact::Known(Some(id))) if ids::is_composite_key_id(id) => Outcome::fail(r, subject, format!("the {slot} key id {id:?} is a composite <account_id>/<id>; Databricks answers \"Invalid customerManagedKeyId: {id}\"; pass only the part after '/'")),
        // Anything else that is not a UUID is not an id either (and never reaches a request path).
        (None, Fact::Known(Some(id))) if ids::KeyConfigId::parse(id).is_err() => Outcome::fail(r, subject, format!("the {slot} key id {} is not a bare key configuration id (a UUID such as \"0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98\"); use cmk_key_configuration.<name>.customer_managed_key_id", ids::quoted(id))),
        (None, Fact::Known(_)) => Outcome::pass(r, subject, format!("the {slot} key id is a bare id")),
        (None, Fact::Unknown) if req.id_prefix.as_deref().is_some_and(ids::is_composite_key_id) => Outcome::fail(r, subject, format!("the {slot} key id is not known until apply, but it will start with {:?}: a composite <account_id>/<customer_managed_key_id>, which Databricks refuses as \"Invalid customerManagedKeyId\"; pass only the key configuration's customer_managed_key_id", req.id_prefix.as_deref().unwrap_or_default())),
        (None, Fact::Unknown) if req.bare_source.is_some() => Outcome::pass(r, subject, format!("the {slot} key id comes from {}, a bare id", req.bare_source.as_deref().unwrap_or_default())),
        (None, Fact::Unknown) => Outcome::cannot_tell(r, subject, format!("the {slot} key id is not known until apply, and where it comes from is not known")),
    });
    if set == Fact::Known(false) {
        out.push(Outcome::pass(
            RuleId::SlotUseCase,
            subject,
            format!("no {slot} key is bound"),
        ));
        out.push(Outcome::pass(
            RuleId::KeyRegion,
            subject,
            format!("no {slot} key is bound"),
        ));
        return out;
    }
    let Some(cfg) = cfg else {
        out.push(Outcome::cannot_tell(RuleId::SlotUseCase, subject, format!("the {slot} key configuration is not part of the plan, so its use cases are not known")));
        out.push(Outcome::cannot_tell(RuleId::KeyRegion, subject, format!("the {slot} key configuration is not part of the plan, so its key region is not known")));
        return out;
    };
    let name = match cfg.id.known() {
        Some(id) => format!("key configuration {id}"),
        None => req.config_phrase(),
    };
    // CMK005
    let r = RuleId::SlotUseCase;
    out.push(match cfg.has(feature) {
        Fact::Known(true) => Outcome::pass(r, subject, format!("the {slot} key configuration has {feature}")),
        Fact::Known(false) => Outcome::fail(
            r,
            subject,
            format!("{slot} slot of {label} is bound to {name} whose use_cases are {}; it needs {feature}", list(cfg.use_cases.known().map(Vec::as_slice).unwrap_or(&[]))),
        ),
        Fact::Unknown => Outcome::cannot_tell(r, subject, format!("the use cases of the {slot} key configuration are not known until apply")),
    });
    // CMK002
    let r = RuleId::KeyRegion;
    out.push(match (cfg.effective_key_region(), &ws.region) {
        (Fact::Known(k), Fact::Known(w)) if &k == w => Outcome::pass(
            r,
            subject,
            format!("the {slot} key is in {w}, like the workspace"),
        ),
        (Fact::Known(k), Fact::Known(w)) => Outcome::fail(
            r,
            subject,
            match cfg.key_arn.known() {
                Some(arn) => format!("{slot} key {arn} is in {k} but {label} is in {w}"),
                None => format!("the {slot} key of {name} is in {k} but {label} is in {w}"),
            },
        ),
        _ => Outcome::cannot_tell(
            r,
            subject,
            format!("the {slot} key's region or the workspace's region is not known until apply"),
        ),
    });
    out
}

fn dashboard_rule(
    ws: &WorkspaceFacts,
    ms_set: &Fact<bool>,
    required: &Requirements,
) -> Vec<Outcome> {
    let r = RuleId::LegacyDashboards;
    let s = Subject::Dashboards;
    let escalate = |o: Outcome| {
        if required.requires(DataType::AiBiDashboards) {
            o.with_severity(Severity::Error)
        } else {
            o
        }
    };
    let o = match (ms_set, &ws.dashboards) {
        (Fact::Known(false), _) => Outcome::pass(r, s, "no managed-services key is bound"),
        (_, Fact::Unknown) => Outcome::cannot_tell(r, s, format!("the AI/BI dashboards of {} are not known at plan time; those created on or before {DASHBOARD_CUTOFF} are not encrypted with the key", ws.label())),
        (_, Fact::Known(ds)) => {
            let mut old = vec![];
            let mut bad_time = vec![];
            for d in ds {
                match created_on_or_before_cutoff(&d.create_time) {
                    // Ids, not names: a name is the workspace's content, and
                    // the configuration may name a workspace its author cannot see.
                    Ok(true) => old.push(crate::text::escape(&d.id, 100)),
                    Ok(false) => {}
                    Err(_) => bad_time.push(format!(
                        "{} (create_time {})",
                        crate::text::escape(&d.id, 100),
                        crate::rules::findings::quote(&d.create_time)
                    )),
                }
            }
            if !old.is_empty() {
                Outcome::fail(r, s, format!("{} AI/BI dashboards were created on or before {DASHBOARD_CUTOFF} and are not encrypted with the key: {}", old.len(), old.join(", ")))
            } else if !bad_time.is_empty() {
                Outcome::cannot_tell(r, s, format!("cannot read the creation time of AI/BI dashboards {}", bad_time.join(", ")))
            } else {
                Outcome::pass(r, s, format!("every AI/BI dashboard was created after {DASHBOARD_CUTOFF}"))
            }
        }
    };
    vec![escalate(o)]
}

fn requirement_rules(
    ws: &WorkspaceFacts,
    cov: &[Coverage],
    required: &Requirements,
) -> Vec<Outcome> {
    let mut out = vec![];
    if required.not_known > 0 {
        let s = Subject::RequiredCoverageNotKnown;
        let n = required.not_known;
        let what = if n == 1 {
            "1 required data type is".to_string()
        } else {
            format!("{n} required data types are")
        };
        for r in [RuleId::UnprotectableDataType, RuleId::RequiredCoverage] {
            out.push(Outcome::cannot_tell(
                r,
                s,
                format!("{what} not known until apply"),
            ));
        }
    }
    for d in &required.data_types {
        let Some(c) = cov.iter().find(|c| c.data_type == *d) else {
            continue;
        };
        let s = Subject::RequiredCoverage(*d);
        let never = c.rule == RuleId::UnprotectableDataType;
        let r = RuleId::UnprotectableDataType;
        out.push(match (never, c.protection) {
            (false, _) => Outcome::pass(
                r,
                s,
                format!("{d} can be protected by a customer-managed key"),
            ),
            (true, Protection::NotProtected) => Outcome::fail(
                r,
                s,
                format!(
                    "{d} is required but no customer-managed key can protect it on {}: {}",
                    ws.label(),
                    c.reason
                ),
            ),
            (true, _) => Outcome::cannot_tell(r, s, format!("{d} is required: {}", c.reason)),
        });
        if never {
            continue;
        }
        let r = RuleId::RequiredCoverage;
        let o = match c.protection {
            Protection::Protected => {
                Outcome::pass(r, s, format!("{d} is required and protected: {}", c.reason))
            }
            Protection::CannotTellYet => {
                Outcome::cannot_tell(r, s, format!("{d} is required: {}", c.reason))
            }
            Protection::NeedsState => Outcome::needs_state(
                r,
                s,
                format!(
                    "{d} is required: {}",
                    c.reason
                        .trim_start_matches(NEEDS_STATE)
                        .trim_start_matches(": ")
                ),
            ),
            Protection::NotProtected => Outcome::fail(
                r,
                s,
                format!("{d} is required but is not protected: {}", c.reason),
            ),
            Protection::PartlyProtected if c.rule == RuleId::LegacyDashboards => continue, // CMK011 reports it
            Protection::PartlyProtected => Outcome::fail(
                r,
                s,
                format!("{d} is required but only partly protected: {}", c.reason),
            ),
        };
        out.push(o);
    }
    out
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
