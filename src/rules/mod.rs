//! The domain brain: Databricks' customer-managed key rules as pure functions
//! over plain data. No I/O, no async, no Terraform types. Plan diagnostics,
//! data sources, functions, the review command and the docs all read the
//! rules here.

pub mod catalog;
pub mod ids;
pub mod kms_policy;

pub use catalog::{DataType, KeyFeature};
