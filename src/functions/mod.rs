//! Provider functions, one file each.

pub mod dashboard_protected;
pub mod key_features;
pub mod parse_key_arn;
