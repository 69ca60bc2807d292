//! Provider functions, one file each.

pub mod key_features;
pub mod parse_key_arn;
