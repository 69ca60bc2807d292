//! `cmk-sandbox`: a local emulator of the Databricks Account API for tests.
//! See docs/sandbox.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use cmk::sandbox::{self, Faults, SandboxConfig};

#[derive(Parser, Debug)]
#[command(
    name = "cmk-sandbox",
    version,
    about = "Local emulator of the Databricks Account API (customer-managed keys, workspaces)"
)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed file (JSON): accounts, credentials, workspaces, key configurations.
    #[arg(long)]
    seed: PathBuf,
    /// State file: every change is written here, and a restart with the same
    /// seed resumes from it. A state file made from another seed is refused
    /// (exit 2) unless --reset-state.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Discard the world saved in --state and start from --seed.
    #[arg(long, requires = "state")]
    reset_state: bool,
    /// Bearer token of the /_sandbox admin calls (overrides the seed's admin_token).
    #[arg(long)]
    admin_token: Option<String>,
    /// How long a workspace stays PROVISIONING after an update, milliseconds.
    #[arg(long, default_value_t = 2000)]
    provisioning_delay_ms: u64,
    /// Lifetime of issued OAuth tokens, seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime_seconds: u64,
    /// Added latency of every API answer, milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share (0..1) of API calls answered with a 5xx.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Status of injected 5xx answers.
    #[arg(long, default_value_t = 503)]
    error_status: u16,
    /// Share (0..1) of API calls answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Retry-After of injected 429s, seconds.
    #[arg(long, default_value_t = 1.0)]
    retry_after_seconds: f64,
    /// Requests per second accepted before answering 429.
    #[arg(long)]
    rps_limit: Option<u32>,
    /// The next N creates commit, then drop the connection without answering.
    #[arg(long, default_value_t = 0)]
    drop_after_commit: u32,
    /// Share (0..1) of creates that commit, then drop the connection without answering.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// A random extra latency of every API answer, from 0 to N milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_jitter_ms: u64,
    /// Seed of the fault randomness.
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// For local experiments only: accept what Databricks refuses about
    /// credentials (personal access tokens on the Account API, account
    /// tokens on workspace APIs).
    #[arg(long)]
    relaxed_auth: bool,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CMK_SANDBOX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let world = match sandbox::load_world(&args.seed) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("cmk-sandbox: {e}");
            std::process::exit(2);
        }
    };
    let config = SandboxConfig {
        listen: args.listen,
        world,
        state_path: args.state.clone(),
        reset_state: args.reset_state,
        admin_token: args.admin_token,
        provisioning_delay: Duration::from_millis(args.provisioning_delay_ms),
        token_lifetime: Duration::from_secs(args.token_lifetime_seconds),
        faults: Faults {
            latency_ms: args.latency_ms,
            latency_jitter_ms: args.latency_jitter_ms,
            error_rate: args.error_rate,
            error_status: args.error_status,
            fail_next: 0,
            throttle_rate: args.throttle_rate,
            retry_after_seconds: args.retry_after_seconds,
            rps_limit: args.rps_limit,
            drop_after_commit: args.drop_after_commit,
            drop_rate: args.drop_rate,
            seed: None,
            path_prefix: None,
        },
        fault_seed: args.fault_seed,
        relaxed_auth: args.relaxed_auth,
    };
    let handle = match sandbox::start(config).await {
        Ok(h) => h,
        Err(e @ sandbox::SandboxError::SeedChanged { .. }) => {
            eprintln!("cmk-sandbox: {e}");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("cmk-sandbox: {e}");
            std::process::exit(1);
        }
    };
    if let (true, Some(state)) = (handle.resumed(), &args.state) {
        eprintln!(
            "cmk-sandbox: resuming the world saved in {} (made from this seed); --reset-state starts over from {}",
            state.display(),
            args.seed.display()
        );
    }
    println!("listening on {}", handle.url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    handle.shutdown().await;
}
