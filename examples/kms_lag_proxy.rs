//! An eventually consistent KMS for benchmarks: the test proxy of
//! `tests/support/kms_lag_proxy.rs` in front of a KMS endpoint (moto's).
//!
//! ```sh
//! cargo run --release --example kms_lag_proxy -- http://127.0.0.1:5000 2000
//! # first line: listening on http://127.0.0.1:PORT
//! # GET /_proxy/stats: {"total": N, "by_action": {...}}
//! ```

#[path = "../tests/support/kms_lag_proxy.rs"]
mod kms_lag_proxy;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(upstream), Some(lag_ms)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: kms_lag_proxy UPSTREAM_URL LAG_MS");
        std::process::exit(2);
    };
    let Ok(lag_ms) = lag_ms.parse::<u64>() else {
        eprintln!("LAG_MS must be a whole number of milliseconds, got {lag_ms}");
        std::process::exit(2);
    };
    let proxy = kms_lag_proxy::LagProxy::start(upstream, std::time::Duration::from_millis(lag_ms));
    println!("listening on {}", proxy.endpoint);
    // Serve until stdin closes (the caller ends it) or the process is killed.
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        sink.clear();
    }
    drop(proxy);
}
