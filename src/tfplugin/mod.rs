//! Our own Terraform plugin protocol 6 layer over tonic. It knows nothing
//! about Databricks: a provider implements the traits of [`provider`] over
//! model structs, and [`serve`] does the rest.

pub mod compat;
pub mod diagnostics;
pub mod model;
pub mod path;
pub mod provider;
pub mod schema;
pub mod serve;
pub mod server;
pub mod timeouts;
pub mod tls;
pub mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod value_fuzz;

/// Generated protocol types.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}

pub use diagnostics::Diagnostics;
pub use model::{Elements, Val, ValMap, ValSet};
pub use path::AttributePath;
pub use provider::{
    Ctx, DataSource, Function, FunctionDef, FunctionError, Param, PlanChange, Provider, ReadBudget,
    Resource, Upgrader,
};
pub use schema::Schema;
pub use timeouts::Timeouts;
pub use tls::install_crypto_provider;
pub use value::{Type, Value};
