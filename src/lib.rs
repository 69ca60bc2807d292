//! terraform-provider-cmk: customer-managed keys for Databricks on AWS, with
//! Databricks' rules checked at plan time.

/// The provider's version: Cargo.toml's `version`, the one place it is set.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod budget;
pub mod cloud;
pub mod data_sources;
pub mod docs;
pub mod functions;
pub mod logging;
pub mod provider;
pub mod resources;
pub mod review;
pub mod rules;
pub mod sandbox;
pub mod support;
pub mod text;
pub mod tfplugin;

/// Settings of the test suites (compiled for tests only).
#[cfg(test)]
pub(crate) mod test_settings {
    /// Cases per fuzz target: `CMK_FUZZ_CASES` (`make fuzz` sets it), else
    /// `default` (the few cases `make test` runs).
    pub(crate) fn fuzz_cases(default: u32) -> u32 {
        std::env::var("CMK_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}
