//! The sandbox's HTTP routes: account API, OAuth, discovery, workspace
//! dashboards, and the `/_sandbox/...` admin calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

mod workspace_compute;

use super::adapter::{self, KeyUpdate, Slot};
use super::http::{bad, err, lock, url_decode_pairs};
use super::shared::{IssuedToken, Shared, TokenAudience, S};
use super::world::{
    dashboard_view, key_view, new_uuid, now_ms, now_rfc3339, Faults, KeyUpdateOutcome,
    PendingKeyUpdate, SandboxAccount, SeedDashboard, SeedKey, World,
};
use crate::cloud::databricks::{AwsKeyInfo, WorkspaceStatus};
use crate::rules::catalog::KeyFeature;
use crate::rules::ids::is_composite_key_id;
use crate::rules::RuleId;

fn account_mut<'a>(world: &'a mut World, account_id: &str) -> Option<&'a mut SandboxAccount> {
    world
        .accounts
        .iter_mut()
        .find(|a| a.account_id == account_id)
}

pub(crate) fn router(state: Arc<Shared>) -> Router {
    let api = Router::new()
        .route(
            "/api/2.0/accounts/{account_id}/customer-managed-keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/api/2.0/accounts/{account_id}/customer-managed-keys/{*id}",
            get(get_key).delete(delete_key),
        )
        .route("/api/2.0/accounts/{account_id}/workspaces", get(list_ws))
        .route(
            "/api/2.0/accounts/{account_id}/workspaces/{workspace_id}",
            get(get_ws).patch(patch_ws),
        )
        .route("/oidc/accounts/{account_id}/v1/token", post(account_token))
        .route(
            "/_ws/{deployment}/api/2.0/lakeview/dashboards",
            get(list_dashboards),
        )
        .route(
            "/_ws/{deployment}/api/2.1/clusters/list",
            get(workspace_compute::list_clusters),
        )
        .route(
            "/_ws/{deployment}/api/2.0/instance-pools/list",
            get(workspace_compute::list_pools),
        )
        .route(
            "/_ws/{deployment}/api/2.0/sql/warehouses",
            get(workspace_compute::list_warehouses),
        )
        .route("/_ws/{deployment}/oidc/v1/token", post(workspace_token))
        .route_layer(middleware::from_fn_with_state(state.clone(), faults_layer))
        // Outermost: every API request is logged, faulted or not.
        .route_layer(middleware::from_fn_with_state(
            state.recorder.clone(),
            super::recorder::record,
        ));
    let open = Router::new()
        .route("/.well-known/databricks-config", get(databricks_config))
        .route(
            "/oidc/accounts/{account_id}/.well-known/oauth-authorization-server",
            get(oauth_metadata),
        )
        // A workspace host's discovery, as the SDKs probe it.
        .route(
            "/_ws/{deployment}/.well-known/databricks-config",
            get(workspace_config),
        )
        .route(
            "/_ws/{deployment}/oidc/.well-known/oauth-authorization-server",
            get(workspace_oauth_metadata),
        );
    let admin = Router::new()
        .route(
            "/_sandbox/faults",
            get(get_faults).put(put_faults).delete(reset_faults),
        )
        .route("/_sandbox/state", get(dump_state))
        .route("/_sandbox/stats", get(get_stats))
        .route(
            "/_sandbox/customer-managed-keys/{id}",
            axum::routing::delete(admin_delete_key),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/classic-compute",
            post(admin_compute),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/dashboards",
            post(admin_add_dashboard),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/status",
            post(admin_status),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/revert-next-update",
            post(admin_revert_next),
        )
        .route(
            "/_sandbox/workspaces/{workspace_id}/key-update",
            post(admin_key_update),
        )
        .route(
            "/_sandbox/requests",
            get(list_requests).delete(clear_requests),
        );
    api.merge(open)
        .merge(admin)
        .fallback(|| async { err(404, "ENDPOINT_NOT_FOUND", "No API found for this path") })
        .layer(middleware::from_fn_with_state(state.clone(), count_all))
        .with_state(state)
}

async fn count_all(State(s): S, req: Request, next: Next) -> Response {
    if !(req.method() == axum::http::Method::GET && req.uri().path() == "/_sandbox/stats") {
        lock(&s.stats).all_requests += 1;
        tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    }
    next.run(req).await
}

// ---- faults ----

async fn faults_layer(State(s): S, req: Request, next: Next) -> Response {
    {
        let ua = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)")
            .to_string();
        let mut st = lock(&s.stats);
        st.api_requests += 1;
        *st.user_agents.entry(ua).or_default() += 1;
    }
    let elsewhere = lock(&s.faults)
        .path_prefix
        .as_deref()
        .is_some_and(|p| !req.uri().path().starts_with(p));
    if elsewhere {
        return next.run(req).await;
    }
    let (f, fail_now) = {
        let mut g = lock(&s.faults);
        let fail_now = g.fail_next > 0;
        if fail_now {
            g.fail_next -= 1;
        }
        (g.clone(), fail_now)
    };
    if let Some(limit) = f.rps_limit {
        let mut w = lock(&s.window);
        let now = Instant::now();
        if now.duration_since(w.0) >= Duration::from_secs(1) {
            *w = (now, 0);
        }
        w.1 += 1;
        if w.1 > limit {
            let mut r = err(
                429,
                "REQUEST_LIMIT_EXCEEDED",
                format!("Too many requests: the limit is {limit} per second"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
    }
    let (throttle, fail, jitter) = {
        let mut rng = lock(&s.rng);
        (
            rng.f64() < f.throttle_rate,
            rng.f64() < f.error_rate,
            rng.u64(0..=f.latency_jitter_ms),
        )
    };
    {
        let mut st = lock(&s.stats);
        if throttle {
            st.injected_throttles += 1;
        } else if fail || fail_now {
            st.injected_errors += 1;
        }
    }
    // A real service finishes a request it received even when the client
    // goes away (issue 10: a create cancelled by Ctrl-C was committed
    // anyway): the rest runs in a task of its own, which a closed
    // connection does not abort.
    let handled = tokio::spawn(async move {
        let latency = f.latency_ms.saturating_add(jitter);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        answer(f, throttle, fail || fail_now, req, next).await
    });
    match handled.await {
        Ok(r) => r,
        // drop_after_commit unwinds to close the connection: keep doing so.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => err(500, "INTERNAL_ERROR", format!("cmk-sandbox: {e}")),
    }
}

async fn answer(f: Faults, throttle: bool, fail: bool, req: Request, next: Next) -> Response {
    if throttle {
        let mut r = err(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests (injected by cmk-sandbox)",
        );
        if let Ok(v) = header::HeaderValue::from_str(&format!("{}", f.retry_after_seconds)) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    if fail {
        return err(
            f.error_status,
            "TEMPORARILY_UNAVAILABLE",
            "The service is temporarily unavailable (injected by cmk-sandbox)",
        );
    }
    next.run(req).await
}

// ---- discovery and OAuth ----

// Discovery answers name the sandbox's own address (`Shared::base_url`),
// never the request's `Host` header: a client that sent another Host would
// otherwise be told to fetch tokens from wherever that names.

async fn databricks_config(State(s): S) -> Response {
    let host = s.base_url.clone();
    Json(json!({
        "oidc_endpoint": format!("{host}/oidc/accounts/{{account_id}}"),
        "cloud": "aws",
    }))
    .into_response()
}

async fn oauth_metadata(State(s): S, Path(account_id): Path<String>) -> Response {
    let base = format!("{}/oidc/accounts/{account_id}", s.base_url);
    Json(json!({
        "issuer": format!("{base}"),
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
    }))
    .into_response()
}

async fn workspace_config(State(s): S, Path(deployment): Path<String>) -> Response {
    let id = lock(&s.world)
        .accounts
        .iter()
        .flat_map(|a| a.workspaces.iter())
        .find(|w| w.workspace.deployment_name.as_deref() == Some(&deployment))
        .map(|w| w.workspace.workspace_id);
    let Some(id) = id else {
        return err(
            404,
            "ENDPOINT_NOT_FOUND",
            format!("No workspace {deployment}"),
        );
    };
    let base = format!("{}/_ws/{deployment}", s.base_url);
    Json(json!({
        "oidc_endpoint": format!("{base}/oidc"),
        "workspace_id": id.to_string(),
        "cloud": "aws",
    }))
    .into_response()
}

async fn workspace_oauth_metadata(State(s): S, Path(deployment): Path<String>) -> Response {
    let base = format!("{}/_ws/{deployment}/oidc", s.base_url);
    Json(json!({
        "issuer": base.clone(),
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
    }))
    .into_response()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// Client credentials from Basic auth or the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(b) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        let (id, secret) = s.split_once(':')?;
        return Some((id.to_string(), secret.to_string()));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn issue_token(
    s: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
    account_id: &str,
    audience: TokenAudience,
) -> Response {
    let form: HashMap<String, String> = serde_urlencoded_parse(body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    let Some((id, secret)) = client_credentials(headers, &form) else {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    };
    let ok = lock(&s.world)
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| a.oauth_clients.iter())
        .any(|c| c.client_id == id && c.client_secret == secret);
    if !ok {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    }
    let token = format!("sbx-oauth-{}", new_uuid());
    lock(&s.stats).tokens_issued += 1;
    lock(&s.tokens).insert(
        token.clone(),
        IssuedToken {
            audience,
            expires_at: Instant::now() + s.token_lifetime,
        },
    );
    Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": s.token_lifetime.as_secs().max(1),
        "scope": form.get("scope").cloned().unwrap_or_else(|| "all-apis".into()),
    }))
    .into_response()
}

fn serde_urlencoded_parse(body: &[u8]) -> HashMap<String, String> {
    url_decode_pairs(&String::from_utf8_lossy(body))
}

async fn account_token(
    State(s): S,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let audience = TokenAudience::Account(account_id.clone());
    issue_token(&s, &headers, &body, &account_id, audience)
}

async fn workspace_token(
    State(s): S,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let owner = lock(&s.world)
        .accounts
        .iter()
        .find(|a| {
            a.workspaces
                .iter()
                .any(|w| w.workspace.deployment_name.as_deref() == Some(&deployment))
        })
        .map(|a| a.account_id.clone());
    // The account's service principals are taken as assigned to its workspaces.
    match owner {
        Some(a) => issue_token(
            &s,
            &headers,
            &body,
            &a,
            TokenAudience::Workspace(deployment),
        ),
        None => oauth_error(404, "invalid_request", "no such workspace"),
    }
}

// ---- key configurations ----

async fn list_keys(State(s): S, Path(account_id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let world = lock(&s.world);
    let keys: Vec<_> = world
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| {
            a.customer_managed_keys
                .iter()
                .map(|k| key_view(&a.account_id, k))
        })
        .collect();
    Json(keys).into_response()
}

fn check_key_id(id: &str) -> Result<(), Response> {
    if is_composite_key_id(id) {
        return Err(bad(format!("Invalid customerManagedKeyId: {id}")));
    }
    Ok(())
}

async fn get_key(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    if let Err(r) = check_key_id(&id) {
        return r;
    }
    let world = lock(&s.world);
    world
        .accounts
        .iter()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| {
            a.customer_managed_keys
                .iter()
                .map(|k| key_view(&a.account_id, k))
        })
        .find(|k| k.customer_managed_key_id == id)
        .map(|k| Json(k).into_response())
        .unwrap_or_else(|| not_found_key(&id))
}

fn not_found_key(id: &str) -> Response {
    err(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Customer managed key configuration {id} does not exist"),
    )
}

async fn delete_key(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    if let Err(r) = check_key_id(&id) {
        return r;
    }
    let mut world = s.change();
    let Some(acct) = account_mut(&mut world, &account_id) else {
        return not_found_key(&id);
    };
    let Some(pos) = acct
        .customer_managed_keys
        .iter()
        .position(|k| k.customer_managed_key_id.as_deref() == Some(&id))
    else {
        return not_found_key(&id);
    };
    if let Some(w) = acct.workspaces.iter().find(|w| {
        w.workspace
            .managed_services_customer_managed_key_id
            .as_deref()
            == Some(&id)
            || w.workspace.storage_customer_managed_key_id.as_deref() == Some(&id)
    }) {
        return bad(format!(
            "You cannot delete a configuration that is associated with a running workspace (workspace {})",
            w.workspace.workspace_id
        ));
    }
    let removed = acct.customer_managed_keys.remove(pos);
    let view = key_view(&account_id, &removed);
    if let Err(r) = world.commit() {
        return r;
    }
    Json(view).into_response()
}

async fn create_key(
    State(s): S,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(
            400,
            "MALFORMED_REQUEST",
            "Could not parse request body as JSON",
        );
    };
    let use_cases = match v.get("use_cases") {
        None | Some(Value::Null) => {
            return err(
                400,
                "MALFORMED_REQUEST",
                "Missing required parameters: use_cases",
            )
        }
        Some(Value::Array(a)) => a,
        Some(_) => return err(400, "MALFORMED_REQUEST", "use_cases must be a list"),
    };
    // The use cases as written; a non-string is kept as its JSON text so
    // that the rules name it.
    let written: Vec<String> = use_cases
        .iter()
        .map(|u| {
            u.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| u.to_string())
        })
        .collect();
    let Some(info) = v.get("aws_key_info").filter(|i| !i.is_null()) else {
        return err(
            400,
            "MALFORMED_REQUEST",
            "Missing required parameters: aws_key_info",
        );
    };
    let mut info: AwsKeyInfo = match serde_json::from_value(info.clone()) {
        Ok(i) => i,
        Err(_) => {
            return err(
                400,
                "MALFORMED_REQUEST",
                "Missing required parameters: aws_key_info.key_arn",
            )
        }
    };
    let facts = adapter::key_config_facts(None, written.clone(), &info);
    // The deployment's principal reaches keys of its own partition only.
    let deployment = lock(&s.world).deployment();
    let partition =
        crate::rules::key_partition_of(facts.key_arn.known().map(String::as_str), None, None);
    if let Some(o) = crate::rules::check_key_partition(Some(deployment), partition) {
        if o.is_failure() {
            return err(400, "INVALID_PARAMETER_VALUE", o.message);
        }
    }
    match adapter::create_refusal(&facts) {
        // The API answers an empty list as a missing parameter.
        Some((RuleId::UseCasesValid, _)) if written.is_empty() => {
            return err(
                400,
                "MALFORMED_REQUEST",
                "Missing required parameters: use_cases",
            )
        }
        Some((_, m)) => return bad(m),
        None => {}
    }
    let mut cases = Vec::new();
    for f in written.iter().filter_map(|u| KeyFeature::parse(u)) {
        if !cases.contains(&f) {
            cases.push(f);
        }
    }
    // Databricks fills key_region from the ARN when it is not given.
    info.key_region = facts.effective_key_region().known().cloned();
    let key = SeedKey {
        customer_managed_key_id: Some(new_uuid()),
        creation_time: Some(now_ms()),
        use_cases: cases,
        aws_key_info: info,
    };
    let view = key_view(&account_id, &key);
    let drop_it = {
        let mut world = s.change();
        let Some(acct) = account_mut(&mut world, &account_id) else {
            return err(403, "PERMISSION_DENIED", "no such account");
        };
        acct.customer_managed_keys.push(key);
        if let Err(r) = world.commit() {
            return r;
        }
        lock(&s.stats).creates_committed += 1;
        let mut f = lock(&s.faults);
        let drop_it = if f.drop_after_commit > 0 {
            f.drop_after_commit -= 1;
            true
        } else {
            f.drop_rate > 0.0 && lock(&s.rng).f64() < f.drop_rate
        };
        if drop_it {
            lock(&s.stats).dropped_creates += 1;
        }
        drop_it
    };
    if drop_it {
        tracing::info!(id = %view.customer_managed_key_id, "committed the create; dropping the connection without answering (fault injection)");
        // Unwinding the connection's task closes the socket before any
        // byte of the answer is written.
        std::panic::resume_unwind(Box::new("cmk-sandbox: drop after commit"));
    }
    (StatusCode::CREATED, Json(view)).into_response()
}

// ---- workspaces ----

fn ws_json(w: &super::world::SandboxWorkspace) -> Value {
    serde_json::to_value(&w.workspace).unwrap_or_default()
}

/// One read of a workspace while a key update is pending behind a RUNNING
/// status (customer-managed VPC): after `key_update_reads` reads the new
/// ids appear, or, for a reverted update, the old ones stay and the status
/// message says so. Answers whether the workspace changed.
fn advance_pending_update(w: &mut super::world::SandboxWorkspace) -> bool {
    let Some(p) = w.pending_update.as_mut() else {
        return false;
    };
    p.reads_left = p.reads_left.saturating_sub(1);
    if p.reads_left > 0 {
        return false;
    }
    let Some(p) = w.pending_update.take() else {
        return false;
    };
    match p.outcome {
        KeyUpdateOutcome::Applied => {
            if let Some(id) = p.managed_services_customer_managed_key_id {
                w.workspace.managed_services_customer_managed_key_id = Some(id);
            }
            if let Some(id) = p.storage_customer_managed_key_id {
                w.workspace.storage_customer_managed_key_id = Some(id);
            }
            w.workspace.workspace_status_message = Some("Workspace is running.".into());
        }
        KeyUpdateOutcome::Reverted => {
            w.workspace.workspace_status_message = Some(
                "Workspace is running. The key update could not be applied and was rolled back."
                    .into(),
            );
        }
    }
    true
}

async fn list_ws(State(s): S, Path(account_id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let mut world = s.change();
    let mut changed = false;
    let all: Vec<Value> = world
        .accounts
        .iter_mut()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| a.workspaces.iter_mut())
        .map(|w| {
            changed |= advance_pending_update(w);
            ws_json(w)
        })
        .collect();
    if changed {
        if let Err(r) = world.commit() {
            return r;
        }
    }
    Json(all).into_response()
}

fn parse_ws_id(id: &str) -> Result<i64, Response> {
    id.parse()
        .map_err(|_| bad(format!("Invalid workspace_id: {id} is not an integer")))
}

fn ws_not_found(id: i64) -> Response {
    err(
        404,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Workspace {id} does not exist"),
    )
}

async fn get_ws(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let id = match parse_ws_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut world = s.change();
    let Some(w) = world
        .accounts
        .iter_mut()
        .filter(|a| a.account_id == account_id)
        .flat_map(|a| a.workspaces.iter_mut())
        .find(|w| w.workspace.workspace_id == id)
    else {
        return ws_not_found(id);
    };
    let changed = advance_pending_update(w);
    let answer = ws_json(w);
    if changed {
        if let Err(r) = world.commit() {
            return r;
        }
    }
    Json(answer).into_response()
}

async fn patch_ws(
    State(s): S,
    Path((account_id, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = s.authorize(&headers, &account_id) {
        return r;
    }
    let id = match parse_ws_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return err(
            400,
            "MALFORMED_REQUEST",
            "Could not parse request body as a JSON object",
        );
    };
    let slots = [Slot::ManagedServices, Slot::Storage];
    let mask: Vec<String> = match q.get("update_mask") {
        Some(m) if m.trim() == "*" => slots.iter().map(|s| s.field().to_string()).collect(),
        Some(m) => m
            .split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        None => body
            .keys()
            .filter(|k| slots.iter().any(|s| s.field() == k.as_str()))
            .cloned()
            .collect(),
    };
    for f in &mask {
        if !slots.iter().any(|s| s.field() == f) && f != "workspace_name" {
            return bad(format!("Field {f} cannot be updated in cmk-sandbox"));
        }
    }
    let mut world = s.change();
    let Some(acct) = account_mut(&mut world, &account_id) else {
        return ws_not_found(id);
    };
    let keys: Vec<SeedKey> = acct.customer_managed_keys.clone();
    let Some(w) = acct
        .workspaces
        .iter_mut()
        .find(|w| w.workspace.workspace_id == id)
    else {
        return ws_not_found(id);
    };
    let mut changes: Vec<(Slot, String)> = Vec::new();
    for slot in slots {
        if !mask.iter().any(|f| f == slot.field()) {
            continue;
        }
        let Some(new) = body
            .get(slot.field())
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        else {
            return bad(format!(
                "{} cannot be removed from a workspace; give a key configuration id",
                slot.field()
            ));
        };
        if slot.current(&w.workspace) != Some(new) {
            changes.push((slot, new.to_string()));
        }
    }
    let rename = if mask.iter().any(|f| f == "workspace_name") {
        body.get("workspace_name")
            .and_then(Value::as_str)
            .map(str::to_string)
    } else {
        None
    };
    if !changes.is_empty() {
        // The Databricks rules come from the engine; the sandbox answers the
        // failed ones the Account API enforces, in the order it checks them.
        let update = KeyUpdate {
            workspace: w,
            changes: &changes,
            keys: &keys,
        };
        let outcomes = update.check();
        if let Some(m) =
            update.refusal(&outcomes, &[RuleId::CompositeKeyId, RuleId::EnterpriseTier])
        {
            return bad(m);
        }
        for (_, new) in &changes {
            if !keys
                .iter()
                .any(|k| k.customer_managed_key_id.as_deref() == Some(new.as_str()))
            {
                return bad(format!(
                    "Customer managed key configuration {new} does not exist in account {account_id}"
                ));
            }
        }
        if let Some(m) = update.refusal(
            &outcomes,
            &[
                RuleId::SlotUseCase,
                RuleId::KeyRegion,
                RuleId::StorageKeyReplacement,
            ],
        ) {
            return bad(m);
        }
        // Only RUNNING and FAILED workspaces (a FAILED one that ran: not
        // its storage key) accept key updates: CMK020.
        if let Some(m) = update.refusal(&outcomes, &[RuleId::WorkspaceUpdatable]) {
            return bad(m);
        }
        if let Some(m) = update.refusal(&outcomes, &[RuleId::ClassicComputeRunning]) {
            return bad(m);
        }
    }
    if let Some(n) = rename {
        w.workspace.workspace_name = n;
    }
    // A customer-managed VPC keeps a RUNNING workspace RUNNING during a key
    // update; the new ids appear after some reads (SDKs' documentation of
    // the workspace update). A FAILED workspace is deployed again
    // (PROVISIONING) either way.
    let behind_running = !changes.is_empty()
        && w.workspace.network_id.is_some()
        && w.workspace.workspace_status == Some(WorkspaceStatus::Running);
    if behind_running {
        let mut pending = PendingKeyUpdate {
            managed_services_customer_managed_key_id: None,
            storage_customer_managed_key_id: None,
            reads_left: w.key_update_reads.max(1),
            outcome: if std::mem::take(&mut w.revert_next_update) {
                KeyUpdateOutcome::Reverted
            } else {
                w.key_update_outcome
            },
        };
        for (slot, new) in &changes {
            match slot {
                Slot::ManagedServices => {
                    pending.managed_services_customer_managed_key_id = Some(new.clone())
                }
                Slot::Storage => pending.storage_customer_managed_key_id = Some(new.clone()),
            }
        }
        w.workspace.workspace_status_message = Some("Updating the workspace's keys".into());
        w.pending_update = Some(pending);
    } else if !changes.is_empty() {
        w.pending_update = None;
        let before = (
            w.workspace.managed_services_customer_managed_key_id.clone(),
            w.workspace.storage_customer_managed_key_id.clone(),
        );
        for (slot, new) in &changes {
            match slot {
                Slot::ManagedServices => {
                    w.workspace.managed_services_customer_managed_key_id = Some(new.clone())
                }
                Slot::Storage => w.workspace.storage_customer_managed_key_id = Some(new.clone()),
            }
        }
        w.workspace.workspace_status = Some(WorkspaceStatus::Provisioning);
        w.workspace.workspace_status_message = Some("Updating the workspace's keys".into());
        let revert = std::mem::take(&mut w.revert_next_update)
            || w.key_update_outcome == KeyUpdateOutcome::Reverted;
        let s2 = s.clone();
        let aid = account_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(s2.provisioning_delay).await;
            let mut world = s2.change();
            if let Some(w) = account_mut(&mut world, &aid).and_then(|a| {
                a.workspaces
                    .iter_mut()
                    .find(|w| w.workspace.workspace_id == id)
            }) {
                if w.workspace.workspace_status == Some(WorkspaceStatus::Provisioning) {
                    w.workspace.workspace_status = Some(WorkspaceStatus::Running);
                    w.ever_running = Some(true);
                    w.workspace.workspace_status_message = Some("Workspace is running.".into());
                    if revert {
                        w.workspace.managed_services_customer_managed_key_id = before.0;
                        w.workspace.storage_customer_managed_key_id = before.1;
                        w.workspace.workspace_status_message = Some(
                            "Workspace is running. The key update could not be applied and was rolled back.".into(),
                        );
                    }
                }
            }
            // A failed write undoes the change (and is logged).
            let _ = world.commit();
        });
    }
    let answer = ws_json(w);
    if let Err(r) = world.commit() {
        return r;
    }
    Json(answer).into_response()
}

// ---- workspace level ----

async fn list_dashboards(
    State(s): S,
    Path(deployment): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = s.authorize_workspace(&headers, &deployment) {
        return r;
    }
    let world = lock(&s.world);
    let Some(w) = world
        .accounts
        .iter()
        .flat_map(|a| a.workspaces.iter())
        .find(|w| w.workspace.deployment_name.as_deref() == Some(&deployment))
    else {
        return err(
            404,
            "ENDPOINT_NOT_FOUND",
            format!("No workspace {deployment}"),
        );
    };
    let size: usize = q
        .get("page_size")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .unwrap_or(100);
    let start: usize = q
        .get("page_token")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let all: Vec<_> = w.dashboards.iter().map(dashboard_view).collect();
    let page: Vec<_> = all.iter().skip(start).take(size).cloned().collect();
    let mut answer = json!({ "dashboards": page });
    if start + size < all.len() {
        answer["next_page_token"] = json!((start + size).to_string());
    }
    Json(answer).into_response()
}

// ---- admin ----

async fn get_faults(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    Json(lock(&s.faults).clone()).into_response()
}

async fn put_faults(State(s): S, headers: HeaderMap, Json(patch): Json<Value>) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let mut f = lock(&s.faults);
    let mut cur = serde_json::to_value(&*f).unwrap_or_default();
    if let (Value::Object(c), Value::Object(p)) = (&mut cur, patch) {
        for (k, v) in p {
            c.insert(k, v);
        }
    }
    match serde_json::from_value::<Faults>(cur) {
        Ok(mut new) => {
            if let Some(seed) = new.seed.take() {
                *lock(&s.rng) = fastrand::Rng::with_seed(seed);
            }
            *f = new;
            Json(f.clone()).into_response()
        }
        Err(e) => bad(format!("invalid faults: {e}")),
    }
}

/// `DELETE /_sandbox/faults`: every fault off (the settings of a sandbox
/// started without fault flags), in one call; `PUT` changes only the
/// fields it names. The fault randomness keeps its state.
async fn reset_faults(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let mut f = lock(&s.faults);
    *f = Faults::default();
    Json(f.clone()).into_response()
}

async fn get_stats(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    Json(lock(&s.stats).clone()).into_response()
}

async fn dump_state(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    Json(lock(&s.world).clone()).into_response()
}

async fn admin_delete_key(State(s): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let mut world = s.change();
    let mut found = false;
    for a in &mut world.accounts {
        let n = a.customer_managed_keys.len();
        a.customer_managed_keys
            .retain(|k| k.customer_managed_key_id.as_deref() != Some(&id));
        found |= a.customer_managed_keys.len() != n;
    }
    if !found {
        return not_found_key(&id);
    }
    if let Err(r) = world.commit() {
        return r;
    }
    StatusCode::NO_CONTENT.into_response()
}

fn with_ws<F>(s: &Shared, id: &str, f: F) -> Response
where
    F: FnOnce(&mut super::world::SandboxWorkspace) -> Result<Value, Response>,
{
    let id = match parse_ws_id(id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let mut world = s.change();
    let Some(w) = world
        .accounts
        .iter_mut()
        .flat_map(|a| a.workspaces.iter_mut())
        .find(|w| w.workspace.workspace_id == id)
    else {
        return ws_not_found(id);
    };
    match f(w) {
        Ok(v) => match world.commit() {
            Ok(()) => Json(v).into_response(),
            Err(r) => r,
        },
        Err(r) => r,
    }
}

async fn admin_compute(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let Some(running) = b.get("running").and_then(Value::as_bool) else {
        return bad("body must be {\"running\": true|false}");
    };
    with_ws(&s, &id, |w| {
        // Stopping stops every cluster, pool and classic warehouse too.
        if running {
            w.classic_compute_running = true;
        } else {
            super::compute::stop_all(w);
        }
        Ok(json!({"classic_compute_running": running}))
    })
}

async fn admin_add_dashboard(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(d): Json<SeedDashboard>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    with_ws(&s, &id, |w| {
        let mut d = d;
        d.dashboard_id
            .get_or_insert_with(|| new_uuid().replace('-', ""));
        d.create_time.get_or_insert_with(now_rfc3339);
        let view = dashboard_view(&d);
        w.dashboards.push(d);
        Ok(serde_json::to_value(view).unwrap_or_default())
    })
}

async fn admin_status(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let Some(status) = b
        .get("workspace_status")
        .cloned()
        .and_then(|v| serde_json::from_value::<WorkspaceStatus>(v).ok())
    else {
        return bad("body must be {\"workspace_status\": \"RUNNING\"|\"PROVISIONING\"|\"FAILED\"|..., \"workspace_status_message\"?: \"...\"}");
    };
    let msg = b
        .get("workspace_status_message")
        .and_then(Value::as_str)
        .map(str::to_string);
    with_ws(&s, &id, |w| {
        w.workspace.workspace_status = Some(status);
        if msg.is_some() {
            w.workspace.workspace_status_message = msg;
        }
        Ok(ws_json(w))
    })
}

async fn admin_revert_next(State(s): S, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    with_ws(&s, &id, |w| {
        w.revert_next_update = true;
        Ok(json!({"revert_next_update": true}))
    })
}

/// `POST /_sandbox/workspaces/{id}/key-update`: how the workspace's key
/// updates behave: `network_id` (a customer-managed VPC: the status stays
/// RUNNING; `null` for a Databricks-managed VPC), `key_update_reads`,
/// `key_update_outcome` (`applied` or `reverted`), `ever_running`.
async fn admin_key_update(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    if let Err(r) = s.admin(&headers) {
        return r;
    }
    let Value::Object(b) = b else {
        return bad("body must be a JSON object");
    };
    let network_id = match b.get("network_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(n)) => Some(Some(n.clone())),
        Some(_) => return bad("network_id must be a string or null"),
    };
    let reads = match b.get("key_update_reads") {
        None => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => Some(n),
            _ => return bad("key_update_reads must be a whole number, 1 or more"),
        },
    };
    let outcome = match b.get("key_update_outcome") {
        None => None,
        Some(v) => match serde_json::from_value::<KeyUpdateOutcome>(v.clone()) {
            Ok(o) => Some(o),
            Err(_) => return bad("key_update_outcome must be \"applied\" or \"reverted\""),
        },
    };
    let ever_running = match b.get("ever_running") {
        None => None,
        Some(Value::Bool(v)) => Some(*v),
        Some(_) => return bad("ever_running must be true or false"),
    };
    with_ws(&s, &id, |w| {
        if let Some(n) = network_id {
            w.workspace.network_id = n;
        }
        if let Some(r) = reads {
            w.key_update_reads = r;
        }
        if let Some(o) = outcome {
            w.key_update_outcome = o;
        }
        if let Some(e) = ever_running {
            w.ever_running = Some(e);
        }
        Ok(json!({
            "network_id": w.workspace.network_id,
            "key_update_reads": w.key_update_reads,
            "key_update_outcome": w.key_update_outcome,
            "ever_running": w.ever_ran(),
        }))
    })
}

/// `GET /_sandbox/requests`: the request log, oldest first.
async fn list_requests(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin_check(&headers) {
        return r;
    }
    Json(s.recorder.entries()).into_response()
}

/// `DELETE /_sandbox/requests`: empties the request log.
async fn clear_requests(State(s): S, headers: HeaderMap) -> Response {
    if let Err(r) = s.admin_check(&headers) {
        return r;
    }
    s.recorder.clear();
    StatusCode::NO_CONTENT.into_response()
}
