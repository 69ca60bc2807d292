//! A minimal provider on the tfplugin layer, as an example of its API and as
//! the acceptance tests' fixture for interrupted applies: the resource
//! `sleep_wait` waits `seconds` on create and stops early, leaving nothing
//! behind, when Terraform sends StopProvider (Ctrl-C).
//!
//! Build: `cargo build --release --example sleep_provider`; Terraform finds it
//! as `terraform-provider-sleep` through dev_overrides.

use std::time::Duration;

use async_trait::async_trait;
use cmk::tfplugin::provider::{resource, DynDataSource, DynResource};
use cmk::tfplugin::serve::{serve, ServeOptions};
use cmk::tfplugin::{Ctx, Diagnostics, Function, Provider, Resource, Val};
use serde::{Deserialize, Serialize};

/// The sleep provider takes no configuration.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct Config {}

struct SleepProvider;

#[async_trait]
impl Provider for SleepProvider {
    type Config = Config;
    type Client = ();
    async fn configure(&self, _c: Config, _v: &str, _d: &mut Diagnostics) -> Option<()> {
        Some(())
    }
    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<()>>> {
        vec![]
    }
    fn resources(&self) -> Vec<Box<dyn DynResource<()>>> {
        vec![resource(Wait)]
    }
    fn functions(&self) -> Vec<Box<dyn Function>> {
        vec![]
    }
}

/// Waits on create.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct WaitModel {
    /// How long to wait, in seconds.
    #[schemars(extend("x-tf" = ["required", "requires_replace"]))]
    seconds: Val<i64>,
    /// Set once the wait completed.
    #[schemars(extend("x-tf" = ["computed"]))]
    id: Val<String>,
}

struct Wait;

#[async_trait]
impl Resource for Wait {
    type Model = WaitModel;
    type Client = ();
    const TYPE_NAME: &'static str = "sleep_wait";

    async fn create(
        &self,
        ctx: &Ctx<()>,
        mut m: WaitModel,
        diags: &mut Diagnostics,
    ) -> Option<WaitModel> {
        let secs = (*m.seconds.known()?).max(0) as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
            _ = ctx.cancel.cancelled() => {
                diags.error("Wait interrupted", "Terraform asked the provider to stop; nothing was created.");
                return None;
            }
        }
        m.id = Val::Known(format!("waited-{secs}s"));
        Some(m)
    }
    async fn read(&self, _ctx: &Ctx<()>, m: WaitModel, _d: &mut Diagnostics) -> Option<WaitModel> {
        Some(m)
    }
    async fn update(
        &self,
        _ctx: &Ctx<()>,
        _p: WaitModel,
        m: WaitModel,
        _d: &mut Diagnostics,
    ) -> Option<WaitModel> {
        Some(m)
    }
    async fn delete(&self, _ctx: &Ctx<()>, _m: WaitModel, _d: &mut Diagnostics) {}
}

fn main() -> std::process::ExitCode {
    cmk::tfplugin::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let opts = ServeOptions {
        debug: false,
        address: "registry.terraform.io/example/sleep".into(),
    };
    match rt.block_on(serve(SleepProvider, opts)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
