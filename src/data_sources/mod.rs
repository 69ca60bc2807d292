//! Data sources, one file each.

pub mod encryption_coverage;
pub mod kms_key_policy;
pub mod workspace;
