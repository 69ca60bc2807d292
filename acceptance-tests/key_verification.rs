//! cmk_key_configuration checks the real KMS key at plan time: the sandbox
//! stands in for Databricks, moto for KMS.

use crate::harness::{enabled, Workdir, CMK_HEADER};
use crate::sandbox::{oauth_env, Sandbox};

use crate::moto_server::MotoServer;

fn key(m: &MotoServer, args: &str, after: &str) -> String {
    m.boto3(
        "us-east-1",
        &format!("k = kms.create_key({args})['KeyMetadata']\n{after}\nprint(k['Arn'])"),
    )
}

#[test]
fn key_configuration_plan_checks_the_real_kms_key() {
    if !enabled("key_configuration_plan_checks_the_real_kms_key") {
        return;
    }
    let m = MotoServer::start();
    let sb = Sandbox::start();
    let open_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#;
    let disabled = key(
        &m,
        &format!("Policy={open_policy:?}"),
        "kms.disable_key(KeyId=k['KeyId'])",
    );
    let asymmetric = key(
        &m,
        &format!("Policy={open_policy:?}, KeySpec='RSA_2048', KeyUsage='SIGN_VERIFY'"),
        "",
    );
    let good = key(&m, &format!("Policy={open_policy:?}"), "");
    let body = |name: &str, arn: &str| {
        format!("resource \"cmk_key_configuration\" \"{name}\" {{\n  use_cases    = [\"MANAGED_SERVICES\"]\n  aws_key_info = {{ key_arn = \"{arn}\" }}\n}}\n")
    };
    let provider = sb.provider_block().replace(
        "provider \"cmk\" {\n",
        &format!(
            "provider \"cmk\" {{\n  aws_region   = \"us-east-1\"\n  kms_endpoint = \"{}\"\n",
            m.endpoint
        ),
    );
    let mut w = Workdir::new(&format!(
        "{CMK_HEADER}\n{provider}\n{}{}{}",
        body("disabled", &disabled),
        body("asymmetric", &asymmetric),
        body("good", &good)
    ));
    w.env.extend(oauth_env());
    for (k, v) in m.env() {
        w.env.push((k.into(), v));
    }
    w.env
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));

    let (code, diags) = crate::harness::plan_diagnostics(&w);
    assert_ne!(code, 0, "{diags:?}");
    let find = |rule: &str, address: &str| {
        diags
            .iter()
            .find(|d| {
                d["severity"] == "error"
                    && d["summary"].as_str().unwrap_or_default().starts_with(rule)
                    && d["address"] == address
            })
            .unwrap_or_else(|| panic!("no {rule} on {address}: {diags:?}"))
            .clone()
    };
    let d = find("CMK004", "cmk_key_configuration.disabled");
    assert!(d["detail"].as_str().unwrap().contains("Disabled"), "{d}");
    assert_eq!(
        d["range"]["start"]["line"].as_u64(),
        Some(w.line_of(&format!("key_arn = \"{disabled}\"")))
    );
    find("CMK003", "cmk_key_configuration.asymmetric");
    assert!(
        !diags
            .iter()
            .any(|d| d["severity"] == "error" && d["address"] == "cmk_key_configuration.good"),
        "the good key passes: {diags:?}"
    );

    // Only the good key: the plan applies.
    w.write(
        "main.tf",
        &format!("{CMK_HEADER}\n{provider}\n{}", body("good", &good)),
    );
    let out = w.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    out.ok();
}
