//! terraform-provider-cmk: customer-managed keys for Databricks on AWS, with
//! Databricks' rules checked at plan time.

/// The provider's version: Cargo.toml's `version`, the one place it is set.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod cloud;
pub mod data_sources;
pub mod docs;
pub mod functions;
pub mod logging;
pub mod provider;
pub mod resources;
pub mod review;
pub mod rules;
pub mod sandbox;
pub mod support;
pub mod tfplugin;
