//! Managed resources.

pub mod kms_key;
