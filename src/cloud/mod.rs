//! Clients of the cloud APIs the provider talks to.

pub mod databricks;
pub mod kms;
