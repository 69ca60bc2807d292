//! terraform-provider-cmk: customer-managed keys for Databricks on AWS, with
//! Databricks' rules checked at plan time.

pub mod cloud;
pub mod data_sources;
pub mod docs;
pub mod functions;
pub mod provider;
pub mod resources;
pub mod rules;
pub mod tfplugin;
