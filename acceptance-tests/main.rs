//! End-to-end tests: the real `terraform` CLI against the built provider.
//! Run with `TF_ACC=1` (`make test` sets it).

mod harness;
#[path = "../tests/support/hostile_server.rs"]
mod hostile_server;
#[path = "../tests/support/kms_lag_proxy.rs"]
mod kms_lag_proxy;
#[path = "../tests/support/moto_server.rs"]
mod moto_server;
mod sandbox;

mod databricks;
mod examples;
mod faults;
mod functions;
mod govcloud;
mod guides;
mod hostile_services;
mod key_verification;
mod kms_consistency;
mod kms_key;
mod kms_key_policy;
mod one_plan;
mod plugin_process;
mod real_plans;
mod real_services;
mod reference_shapes;
mod release;
mod schema;
mod schema_versions;
mod signed_release;
mod undecided_rules;
mod unknowns;
