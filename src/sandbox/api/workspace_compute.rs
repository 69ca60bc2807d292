//! The workspace-level compute lists of a sandbox workspace, under
//! `/_ws/{deployment_name}`, in the shapes of the Databricks REST API:
//! `GET /api/2.1/clusters/list` (`page_size`, `page_token`,
//! `next_page_token`), `GET /api/2.0/instance-pools/list` (one page; `{}`
//! when there is none, as the API omits empty lists) and
//! `GET /api/2.0/sql/warehouses` (`page_size`, `page_token`,
//! `next_page_token`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::sandbox::compute::{clusters_view, pools_view, warehouses_view};
use crate::sandbox::http::{err, lock};
use crate::sandbox::shared::{Shared, S};
use crate::sandbox::world::SandboxWorkspace;

/// Default page size of the paged lists when the caller gives none.
const DEFAULT_PAGE: usize = 100;

/// The workspace behind `deployment`, if the bearer token's account owns it.
fn workspace<T>(
    s: &Shared,
    headers: &HeaderMap,
    deployment: &str,
    f: impl FnOnce(&SandboxWorkspace) -> T,
) -> Result<T, Response> {
    // The workspace's own API: only a token issued for this workspace (the
    // same rule as the dashboards list).
    s.authorize_workspace(headers, deployment)?;
    let world = lock(&s.world);
    let Some(w) = world
        .accounts
        .iter()
        .flat_map(|a| a.workspaces.iter())
        .find(|w| w.workspace.deployment_name.as_deref() == Some(deployment))
    else {
        return Err(err(
            404,
            "ENDPOINT_NOT_FOUND",
            format!("No workspace {deployment}"),
        ));
    };
    Ok(f(w))
}

/// One page of `all` under `key`, with `next_page_token` when more follow.
fn page(key: &str, all: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let size: usize = match q.get("page_size") {
        None => DEFAULT_PAGE,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return err(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    format!("page_size must be a positive integer, not {p:?}"),
                )
            }
        },
    };
    let start: usize = match q.get("page_token") {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return err(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    format!("Invalid page_token {t:?}"),
                )
            }
        },
    };
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(start).take(size).collect();
    let mut answer = json!({});
    if !items.is_empty() {
        answer[key] = Value::Array(items);
    }
    if start.saturating_add(size) < total {
        answer["next_page_token"] = json!((start + size).to_string());
    }
    Json(answer).into_response()
}

pub(super) async fn list_clusters(
    State(s): S,
    Path(deployment): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match workspace(&s, &headers, &deployment, clusters_view) {
        Ok(all) => page("clusters", all, &q),
        Err(r) => r,
    }
}

pub(super) async fn list_pools(
    State(s): S,
    Path(deployment): Path<String>,
    headers: HeaderMap,
) -> Response {
    match workspace(&s, &headers, &deployment, pools_view) {
        Ok(all) if all.is_empty() => Json(json!({})).into_response(),
        Ok(all) => Json(json!({ "instance_pools": all })).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn list_warehouses(
    State(s): S,
    Path(deployment): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    match workspace(&s, &headers, &deployment, warehouses_view) {
        Ok(all) => page("warehouses", all, &q),
        Err(r) => r,
    }
}
