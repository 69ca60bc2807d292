//! `terraform-provider-cmk`: the Terraform plugin, and tools around it.

use std::process::ExitCode;

use cmk::provider::{CmkProvider, SOURCE_ADDRESS};
use cmk::tfplugin::serve::{serve, ServeError, ServeOptions};

/// The allocator (mimalloc), counting what is held, so that `review` can bound
/// the memory a hostile configuration makes it use (src/review/limits.rs).
#[global_allocator]
static ALLOC: cmk::review::limits::Counting = cmk::review::limits::Counting;

const USAGE: &str =
    "terraform-provider-cmk: Terraform provider for Databricks customer-managed keys on AWS

Usage:
  terraform-provider-cmk                 (run by Terraform; not by hand)
  terraform-provider-cmk --debug [--address SOURCE]
                                         serve without TLS and print TF_REATTACH_PROVIDERS
  terraform-provider-cmk review PLAN_JSON|DIR|FILE.tf... [--format text|json|sarif|junit|github]
        [--fail-on error|warning|cannot-tell|never] [--suppressions FILE] [--no-inline-suppressions]
        [--max-suppression-days N] [-var NAME=VALUE] [-var-file FILE] [--root DIR]
        [--require DATA_TYPE...] [--max-input-mib N] [--max-instances N] [--max-module-calls N]
        [--max-value-mib N] [--max-seconds N]
        [--live [--profile NAME] [--workspace-host-template URL]]
                                         apply the CMK rules to `terraform show -json PLANFILE`
                                         output, or to a configuration's .tf source (no plan,
                                         no credentials); `review --help` says more
  terraform-provider-cmk docs [--out DIR]  write the registry-layout docs (default: docs)
  terraform-provider-cmk schema          print the schemas as `terraform providers schema -json`
                                         shows them, normalized (tests/fixtures/schema/README.md)
  terraform-provider-cmk --version | -V
  terraform-provider-cmk --help | -h
";

/// Logs go to stderr only (stdout carries the handshake). Run by Terraform,
/// the lines are hclog JSON, which Terraform logs at their own level; with
/// `--debug` a person reads them, in plain text.
fn init_logging(debug: bool) {
    if !debug {
        cmk::logging::init();
        return;
    }
    let level = cmk::logging::level_from_env(|k| std::env::var(k).ok());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(cmk::logging::filter(level))
        .try_init();
}

fn docs(args: &[String]) -> ExitCode {
    let out = match args {
        [] => std::path::PathBuf::from("docs"),
        [flag, dir] if flag == "--out" => std::path::PathBuf::from(dir),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("usage: terraform-provider-cmk docs [--out DIR]\n  writes the registry-layout reference pages (default: docs)");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("usage: terraform-provider-cmk docs [--out DIR]");
            return ExitCode::from(2);
        }
    };
    match cmk::docs::write(std::path::Path::new("."), &out) {
        Ok(pages) => {
            for p in pages {
                println!("{}", out.join(p).display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write docs to {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("docs") => return docs(&args[1..]),
        Some("schema") if args.len() == 1 => {
            let server = cmk::tfplugin::server::ProviderServer::new(CmkProvider);
            let j =
                cmk::tfplugin::compat::normalize(&cmk::tfplugin::compat::provider_json(&server));
            // Keys sorted by normalize: the output is stable.
            match serde_json::to_string_pretty(&j) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("cannot render the schema: {e}");
                    return ExitCode::FAILURE;
                }
            }
            return ExitCode::SUCCESS;
        }
        Some("review") => {
            let code = cmk::review::main(&args[1..]);
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
        _ => {}
    }
    let mut debug = false;
    let mut address = SOURCE_ADDRESS.to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--debug" => debug = true,
            "--address" => match it.next() {
                Some(v) => address = v.clone(),
                None => {
                    eprintln!("--address needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--version" | "-V" | "-v" => {
                println!("terraform-provider-cmk {}", cmk::VERSION);
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    init_logging(debug);
    cmk::tfplugin::install_crypto_provider();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(CmkProvider, ServeOptions { debug, address })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ServeError::NotAPluginLaunch) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("terraform-provider-cmk: {e}");
            ExitCode::FAILURE
        }
    }
}
