//! The Databricks client against stand-in services that misbehave (issue
//! 21): each case ends in a clear error within a bound it states, with no
//! panic. The cases a Terraform user sees run through terraform in
//! acceptance-tests/hostile_services.rs; these are the ones that need a
//! short retry budget (a 429 storm, a trickling body) or look at the client
//! alone (page tokens, token lifetimes, the sandbox's discovery).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmk::cloud::databricks::{
    AccountClient, DatabricksError, DatabricksSettings, Secret, StaticEnvironment,
};
use cmk::rules::ids::{KeyConfigId, WorkspaceId};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[path = "support/hostile_server.rs"]
mod hostile_server;
use hostile_server::{endless, json, redirect, trickle, Hostile, Req, Rule};

const ACCT: &str = "11111111-2222-4333-8444-555555555555";
const WS: i64 = 1001;
const KEY: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn settings(h: &Hostile) -> DatabricksSettings {
    DatabricksSettings {
        host: Some(h.url.clone()),
        account_id: Some(ACCT.into()),
        token: Some(Secret::new("dapi-hostile-test")),
        rate_limit: Some(1000.0),
        http_timeout: Some(Duration::from_secs(30)),
        retry_timeout: Some(Duration::from_secs(3)),
        retry_base_delay: Some(Duration::from_millis(20)),
        workspace_host_template: Some(format!("{}/_ws/{{deployment_name}}", h.url)),
        jitter_seed: Some(7),
        ..Default::default()
    }
}

fn client(s: DatabricksSettings) -> AccountClient {
    AccountClient::with_environment(&s, &StaticEnvironment::default()).unwrap()
}

fn rule(f: impl Fn(&Req) -> Option<axum::response::Response> + Send + Sync + 'static) -> Rule {
    Arc::new(f)
}

fn workspace(id: i64) -> serde_json::Value {
    json!({"workspace_id": id, "workspace_name": "w", "account_id": ACCT,
           "deployment_name": "dep", "aws_region": "us-east-1",
           "pricing_tier": "ENTERPRISE", "workspace_status": "RUNNING"})
}

/// A 429 storm (each answer asking to retry at once) ends at the
/// operation's deadline (3 s here), not after an unbounded number of tries.
#[tokio::test]
async fn a_429_storm_ends_at_the_operation_deadline() {
    let h = Hostile::spawn(
        None,
        rule(|_| {
            let mut r = json(
                429,
                json!({"error_code": "TOO_MANY_REQUESTS", "message": "slow down"}),
            );
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("0"));
            Some(r)
        }),
    )
    .await;
    let c = client(settings(&h));
    let t = Instant::now();
    let e = c
        .get_workspace(WorkspaceId::new(WS).unwrap(), &CancellationToken::new())
        .await
        .unwrap_err();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}: {e}");
    let m = e.to_string();
    assert!(
        matches!(
            e,
            DatabricksError::RetriesExhausted { .. } | DatabricksError::Deadline { .. }
        ),
        "{m}"
    );
    assert!(m.contains("429") || m.contains("TOO_MANY_REQUESTS"), "{m}");
    assert!(h.hits("/workspaces/") >= 2, "retried at least once");
}

/// A body that trickles a byte a second is cut at the operation's
/// deadline (3 s), well before the HTTP timeout (30 s).
#[tokio::test]
async fn a_trickling_body_ends_at_the_operation_deadline() {
    let h = Hostile::spawn(
        None,
        rule(|r| {
            r.path
                .contains("/workspaces/")
                .then(|| trickle(200, "{\"workspace_id\": 1001", Duration::from_secs(40)))
        }),
    )
    .await;
    let c = client(settings(&h));
    let t = Instant::now();
    let e = c
        .get_workspace(WorkspaceId::new(WS).unwrap(), &CancellationToken::new())
        .await
        .unwrap_err();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "took {took:?}: {e}"
    );
    assert!(matches!(e, DatabricksError::Deadline { .. }), "{e}");
    // The real time the call ran, and the call: the workspace GET.
    let m = e.to_string();
    assert!(m.contains("stopped after 3."), "{m}");
    assert!(
        m.starts_with(&format!("GET {}/api/2.0/accounts/", h.url)),
        "{m}"
    );
}

/// The same trickle from the OAuth token endpoint: the error names the
/// token request that ran out, not the workspace GET it was for, and the
/// real time it ran.
#[tokio::test]
async fn a_trickling_token_answer_is_named_as_the_call_that_ran_out() {
    let h = Hostile::spawn(
        None,
        rule(|r| {
            r.path
                .ends_with("/v1/token")
                .then(|| trickle(200, "{\"access_token\": ", Duration::from_secs(40)))
        }),
    )
    .await;
    let c = client(DatabricksSettings {
        token: None,
        client_id: Some("sp-hostile".into()),
        client_secret: Some(Secret::new("hostile-secret")),
        ..settings(&h)
    });
    let e = c
        .get_workspace(WorkspaceId::new(WS).unwrap(), &CancellationToken::new())
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, DatabricksError::Deadline { .. }), "{m}");
    assert!(
        m.starts_with(&format!(
            "POST {}/oidc/accounts/{ACCT}/v1/token (an OAuth token), before GET",
            h.url
        )),
        "{m}"
    );
    assert!(m.contains("stopped after 3."), "{m}");
    assert!(!m.contains("hostile-secret"), "{m}");
}

/// A dashboards list that answers a page token it answered before is
/// incomplete (it would never end), and says so.
#[tokio::test]
async fn a_repeated_page_token_ends_the_list() {
    let h = Hostile::spawn(
        None,
        rule(|r| {
            r.path.ends_with("/lakeview/dashboards").then(|| {
                json(
                    200,
                    json!({"dashboards": [], "next_page_token": if r.query.contains("page_token=b") {"a"} else {"b"}}),
                )
            })
        }),
    )
    .await;
    let c = client(settings(&h));
    let e = c
        .list_dashboards("dep", &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(e.is_incomplete_list(), "{e}");
    let m = e.to_string();
    assert!(m.contains("a token it had answered before"), "{m}");
    assert!(m.contains("AI/BI dashboards of workspace dep"), "{m}");
    assert_eq!(h.hits("/lakeview/dashboards"), 3, "{m}");
}

/// A list whose page token never ends, in small pages, stops at the page
/// cap.
#[tokio::test]
async fn endless_small_pages_stop_at_the_page_cap() {
    let n = Arc::new(AtomicU64::new(0));
    let h = Hostile::spawn(
        None,
        rule(move |r| {
            r.path.ends_with("/clusters/list").then(|| {
                let i = n.fetch_add(1, Ordering::Relaxed);
                json(
                    200,
                    json!({"clusters": [], "next_page_token": format!("t{i}")}),
                )
            })
        }),
    )
    .await;
    let mut s = settings(&h);
    s.retry_timeout = Some(Duration::from_secs(60));
    let c = client(s);
    let t = Instant::now();
    let e = c
        .running_classic_compute("dep", &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    assert!(e.is_incomplete_list(), "{e}");
    assert!(
        e.to_string().contains("did not end after 1000 pages"),
        "{e}"
    );
    assert_eq!(h.hits("/clusters/list"), 1000);
}

/// An OAuth token answer with `expires_in` 2^64-1: no overflow, the token
/// is used (and trusted for a bounded time).
#[tokio::test]
async fn a_token_lifetime_of_2_pow_64_does_not_panic() {
    let h = Hostile::spawn(
        None,
        rule(|r| {
            if r.path.ends_with("/v1/token") {
                return Some(json(
                    200,
                    json!({"access_token": "tok", "token_type": "Bearer", "expires_in": u64::MAX}),
                ));
            }
            r.path
                .contains("/workspaces/")
                .then(|| json(200, workspace(WS)))
        }),
    )
    .await;
    let mut s = settings(&h);
    s.token = None;
    s.client_id = Some("sp".into());
    s.client_secret = Some(Secret::new("secret"));
    let c = client(s);
    for _ in 0..2 {
        let w = c
            .get_workspace(WorkspaceId::new(WS).unwrap(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(w.workspace_id, WS);
    }
    assert_eq!(h.hits("/v1/token"), 1, "the token was cached");
}

/// A redirect of the token endpoint is not followed: its target is never
/// asked, and the error names where it pointed.
#[tokio::test]
async fn a_token_endpoint_redirect_is_refused() {
    let h = Hostile::spawn(
        None,
        rule(|r| {
            if r.path.ends_with("/v1/token") {
                return Some(redirect(307, "http://127.0.0.1:9/elsewhere/token"));
            }
            r.path
                .contains("/workspaces/")
                .then(|| json(200, workspace(WS)))
        }),
    )
    .await;
    let mut s = settings(&h);
    s.token = None;
    s.client_id = Some("sp".into());
    s.client_secret = Some(Secret::new("secret"));
    let e = client(s)
        .get_workspace(WorkspaceId::new(WS).unwrap(), &CancellationToken::new())
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, DatabricksError::Redirected { .. }), "{m}");
    assert!(
        m.contains("307") && m.contains("http://127.0.0.1:9/elsewhere/token"),
        "{m}"
    );
    assert_eq!(h.hits("/workspaces/"), 0, "no call without a token");
}

/// Answers about another object, or another account, are errors naming
/// both values.
#[tokio::test]
async fn answers_are_checked_against_the_question() {
    const OTHER_KEY: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    let h = Hostile::spawn(
        None,
        rule(|r| {
            if r.path.ends_with(&format!("/customer-managed-keys/{KEY}")) {
                return Some(json(200, json!({"customer_managed_key_id": OTHER_KEY, "account_id": ACCT, "use_cases": ["STORAGE"]})));
            }
            if r.path.ends_with("/customer-managed-keys") {
                return Some(json(200, json!([{"customer_managed_key_id": KEY, "account_id": "99999999-2222-4333-8444-555555555555"}])));
            }
            if r.path.ends_with("/workspaces/1001") {
                return Some(json(200, workspace(2002)));
            }
            r.path.ends_with("/workspaces/1003").then(|| {
                let mut w = workspace(1003);
                w["account_id"] = json!("99999999-2222-4333-8444-555555555555");
                json(200, w)
            })
        }),
    )
    .await;
    let c = client(settings(&h));
    let cancel = CancellationToken::new();
    let e = c
        .get_customer_managed_key(&KeyConfigId::parse(KEY).unwrap(), &cancel)
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains(KEY) && m.contains(OTHER_KEY) && m.contains("customer_managed_key_id"),
        "{m}"
    );
    let e = c
        .get_workspace(WorkspaceId::new(1001).unwrap(), &cancel)
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("asked for 1001, answered 2002"), "{m}");
    let e = c
        .get_workspace(WorkspaceId::new(1003).unwrap(), &cancel)
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("account_id") && m.contains(ACCT) && m.contains("99999999-2222"),
        "{m}"
    );
    let e = c.list_customer_managed_keys(&cancel).await.unwrap_err();
    assert!(matches!(e, DatabricksError::Mismatch { .. }), "{e}");
}

/// A body over its kind's cap is refused once the cap is read (1 MiB for
/// one object), not read whole; an error message with terminal escapes and
/// 2 MB is shown escaped and cut.
#[tokio::test]
async fn huge_bodies_stop_at_the_cap_and_messages_are_printable() {
    let h = Hostile::spawn(
        None,
        rule(|r| {
            if r.path.ends_with("/workspaces/1001") {
                return Some(endless(200, "{\"workspace_id\": 1001, \"x\": \"", 2 << 30));
            }
            r.path.ends_with("/workspaces/1002").then(|| {
                let msg = format!(
                    "\u{1b}]8;;http://evil\u{7}click\u{1b}[2J{}",
                    "A".repeat(2_000_000)
                );
                json(400, json!({"error_code": "BAD\u{1b}[31m", "message": msg}))
            })
        }),
    )
    .await;
    let c = client(settings(&h));
    let cancel = CancellationToken::new();
    let t = Instant::now();
    let e = c
        .get_workspace(WorkspaceId::new(1001).unwrap(), &cancel)
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(matches!(e, DatabricksError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
    let e = c
        .get_workspace(WorkspaceId::new(1002).unwrap(), &cancel)
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(
        !m.chars().any(|c| c.is_control()),
        "control characters in {m:.200}"
    );
    assert!(m.contains("\\u{1b}]8;;http://evil\\u{7}click"), "{m:.300}");
    assert!(
        m.contains("more bytes)"),
        "{}",
        &m[m.len().saturating_sub(100)..]
    );
    assert!(m.len() < 2000, "{} bytes", m.len());
}

/// A connection refused is tried twice, quickly, and the error names the
/// host and, for a workspace host, the setting that built it.
#[tokio::test]
async fn an_unreachable_host_fails_fast_naming_it() {
    // A port nothing listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = format!("http://127.0.0.1:{port}");
    let h = Hostile::spawn(
        None,
        rule(|r| {
            r.path
                .contains("/workspaces/")
                .then(|| json(200, workspace(WS)))
        }),
    )
    .await;
    let mut s = settings(&h);
    s.retry_timeout = Some(Duration::from_secs(300));
    s.workspace_host_template = Some(format!("{dead}/_ws/{{deployment_name}}"));
    let c = client(s.clone());
    let t = Instant::now();
    let e = c
        .running_classic_compute("dep", &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{:?}: {e}",
        t.elapsed()
    );
    let m = e.to_string();
    assert!(e.is_unreachable(), "{m}");
    assert!(m.contains(&dead) && m.contains("refused"), "{m}");
    assert!(
        m.contains("workspace_host_template") && m.contains("/_ws/{deployment_name}"),
        "{m}"
    );

    s.host = Some(dead.clone());
    let t = Instant::now();
    let e = client(s)
        .get_workspace(WorkspaceId::new(WS).unwrap(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "{:?}: {e}",
        t.elapsed()
    );
    let m = e.to_string();
    assert!(m.contains(&dead) && m.contains("Account API host"), "{m}");

    // A name that does not resolve.
    let mut s = settings(&h);
    s.workspace_host_template = Some("http://{deployment_name}.invalid".into());
    let t = Instant::now();
    let e = client(s)
        .list_dashboards("dep", &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "{:?}: {e}",
        t.elapsed()
    );
    let m = e.to_string();
    assert!(
        m.contains("http://dep.invalid") && m.contains("does not resolve"),
        "{m}"
    );
}

/// The sandbox's discovery answers name its own address, whatever Host the
/// request carried.
#[tokio::test]
async fn sandbox_discovery_ignores_the_host_header() {
    cmk::tfplugin::install_crypto_provider();
    let world = serde_json::from_value(json!({
        "admin_token": "admin",
        "accounts": [{"account_id": ACCT, "tokens": ["t"],
            "workspaces": [{"workspace_id": WS, "workspace_name": "w", "deployment_name": "dep",
                            "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE"}]}]
    }))
    .unwrap();
    let sb = cmk::sandbox::start(cmk::sandbox::SandboxConfig::new(world))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for path in [
        "/.well-known/databricks-config".to_string(),
        format!("/oidc/accounts/{ACCT}/.well-known/oauth-authorization-server"),
        "/_ws/dep/.well-known/databricks-config".to_string(),
        "/_ws/dep/oidc/.well-known/oauth-authorization-server".to_string(),
    ] {
        let body = http
            .get(format!("{}{path}", sb.url()))
            .header("host", "evil.example:80")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains("evil.example"), "{path}: {body}");
        assert!(body.contains(&sb.url()), "{path}: {body}");
    }
    sb.shutdown().await;
}
