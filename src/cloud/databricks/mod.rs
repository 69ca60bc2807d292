//! Databricks Account API client: key configurations, workspaces and the
//! workspace-level AI/BI dashboard list, with Databricks' unified
//! authentication, typed errors, retries, a request-rate limit and
//! cancellation.

mod auth;
mod client;
mod error;
mod facts;
mod http;
mod models;
pub mod settings;
mod snapshot;
mod workspace_api;

pub use client::{user_agent, AccountClient};
pub use error::{Budget, DatabricksError};
pub use models::{
    AwsKeyInfo, ComputeMode, CreateCustomerManagedKey, CustomerManagedKey, Dashboard, GcpKeyInfo,
    PricingTier, StorageMode, Workspace, WorkspaceKeyUpdate, WorkspaceStatus,
};
pub use settings::{
    AuthKind, DatabricksSettings, DeploymentChoice, Environment, ProcessEnvironment,
    ResolvedConfig, Secret, StaticEnvironment, AUTH_TYPES, DEFAULT_ACCOUNT_HOST,
    DEFAULT_WORKSPACE_HOST_TEMPLATE,
};
pub use snapshot::DEFAULT_MAX_AGE as SNAPSHOT_MAX_AGE;
