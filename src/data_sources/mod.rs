//! Data sources, one file each.

pub mod kms_key_policy;
