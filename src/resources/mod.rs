//! Resources, one file each.

pub mod key_configuration;
pub mod kms_key;
pub mod workspace_binding;
