//! Cloud clients.

pub mod kms;
