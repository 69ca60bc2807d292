//! End-to-end tests: the real `terraform` CLI against the built provider.
//! Run with `TF_ACC=1` (`make test` sets it).

mod harness;

mod functions;
mod kms_key;
mod kms_key_policy;
mod plugin_process;
mod schema;
