//! Databricks Account API client: key configurations, workspaces and the
//! workspace-level AI/BI dashboard list, with Databricks' unified
//! authentication, typed errors, retries, a request-rate limit and
//! cancellation.

mod auth;
mod client;
mod error;
mod facts;
mod models;
mod settings;
mod workspace_api;

pub use client::AccountClient;
pub use error::DatabricksError;
pub use models::{
    AwsKeyInfo, ComputeMode, CreateCustomerManagedKey, CustomerManagedKey, Dashboard, GcpKeyInfo,
    PricingTier, StorageMode, Workspace, WorkspaceKeyUpdate, WorkspaceStatus,
};
pub use settings::{
    AuthKind, DatabricksSettings, Environment, ProcessEnvironment, ResolvedConfig, Secret,
    StaticEnvironment, AUTH_TYPES, DEFAULT_ACCOUNT_HOST, DEFAULT_WORKSPACE_HOST_TEMPLATE,
};
