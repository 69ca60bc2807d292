//! Start-up: the go-plugin handshake, the listener, TLS, and the gRPC services.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use super::proto::plugin as controller;
use super::proto::tfplugin6::provider_server::Provider as GrpcProvider;
use super::proto::tfplugin6::provider_server::ProviderServer as GrpcProviderServer;
use super::provider::Provider;
use super::server::{Guarded, ProviderServer};
use super::tls;

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The application protocol this server speaks: tfplugin6.
pub const PROTOCOL_VERSION: u32 = 6;
/// gRPC message limit, as Terraform's own SDK sets it.
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;
/// A TLS handshake not finished by then is dropped: a stalled client must
/// not hold a connection (and its task) forever.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "This binary is a plugin for Terraform and is not meant to be run directly.\n\
         Use it through `terraform` (see the README: dev_overrides in a CLI config file), \
         or run it with --debug and set TF_REATTACH_PROVIDERS as it prints."
    )]
    NotAPluginLaunch,
    #[error("Terraform speaks plugin protocol versions {0:?}; this provider speaks only version 6 (Terraform 1.0 or later)")]
    ProtocolMismatch(String),
    #[error("cannot listen on 127.0.0.1 in ports {0}..={1}: {2}")]
    Listen(u16, u16, std::io::Error),
    #[error("invalid {0}: {1}")]
    Env(&'static str, String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// How to start.
pub struct ServeOptions {
    /// `--debug`: no TLS, print TF_REATTACH_PROVIDERS instead of the handshake.
    pub debug: bool,
    /// The provider's source address, e.g. `registry.terraform.io/ns/cmk` (debug mode).
    pub address: String,
}

/// A connection: plain (debug mode) or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// go-plugin's controller: Terraform calls Shutdown when done with us.
struct Controller {
    shutdown: Arc<tokio::sync::Notify>,
}

#[tonic::async_trait]
impl controller::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _r: Request<controller::Empty>,
    ) -> Result<Response<controller::Empty>, Status> {
        tracing::debug!("GRPCController.Shutdown received");
        self.shutdown.notify_one();
        Ok(Response::new(controller::Empty {}))
    }
}

fn env_port(name: &'static str) -> Result<Option<u16>, ServeError> {
    match std::env::var(name) {
        Ok(s) if !s.is_empty() => s.parse().map(Some).map_err(|_| ServeError::Env(name, s)),
        _ => Ok(None),
    }
}

/// Binds loopback, honouring PLUGIN_MIN_PORT / PLUGIN_MAX_PORT.
pub async fn bind_loopback() -> Result<TcpListener, ServeError> {
    let min = env_port("PLUGIN_MIN_PORT")?;
    let max = env_port("PLUGIN_MAX_PORT")?;
    let (lo, hi) = match (min, max) {
        (None, None) => (0, 0),
        (lo, hi) => (lo.unwrap_or(1024), hi.unwrap_or(u16::MAX)),
    };
    if lo > hi {
        return Err(ServeError::Env(
            "PLUGIN_MIN_PORT/PLUGIN_MAX_PORT",
            format!("{lo} > {hi}"),
        ));
    }
    let mut last = None;
    for port in lo..=hi {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(ServeError::Listen(
        lo,
        hi,
        last.unwrap_or_else(|| std::io::Error::other("no port")),
    ))
}

/// Checks the launch environment: magic cookie and protocol version.
pub fn check_launch_env() -> Result<(), ServeError> {
    if std::env::var(MAGIC_COOKIE_KEY).ok().as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(ServeError::NotAPluginLaunch);
    }
    if let Ok(v) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        if !v
            .split(',')
            .any(|x| x.trim() == PROTOCOL_VERSION.to_string())
        {
            return Err(ServeError::ProtocolMismatch(v));
        }
    }
    Ok(())
}

/// A running server.
pub struct Started {
    pub addr: std::net::SocketAddr,
    /// Our certificate, when serving TLS.
    pub server_cert_der: Option<Vec<u8>>,
    pub task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

/// Starts serving a provider on a bound listener. With `client_cert_pem`,
/// serves mutual TLS pinned to that certificate; otherwise plain (debug mode
/// and tests). Stops gracefully when Terraform calls GRPCController.Shutdown
/// or when `stop` completes.
pub async fn start<P: Provider>(
    provider: P,
    listener: TcpListener,
    client_cert_pem: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, ServeError> {
    start_service(
        Guarded(ProviderServer::new(provider)),
        listener,
        client_cert_pem,
        stop,
    )
    .await
}

/// As [`start`], for any implementation of the generated tfplugin6 service
/// (a provider written against the protocol directly rather than the
/// [`Provider`] trait, e.g. a plan-only test double).
pub async fn start_service<S: GrpcProvider>(
    service: S,
    listener: TcpListener,
    client_cert_pem: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Started, ServeError> {
    let addr = listener.local_addr()?;
    let tls_config = match client_cert_pem {
        Some(pem) => {
            let identity = tls::ServerIdentity::generate()?;
            let cfg = tls::server_config(&identity, pem)?;
            Some((
                identity.cert_der,
                tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            ))
        }
        None => None,
    };

    let (tx, rx) = mpsc::channel::<std::io::Result<Conn>>(16);
    let acceptor = tls_config.as_ref().map(|(_, a)| a.clone());
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            // Without this every small RPC waits ~40 ms for delayed ACKs.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!("TCP_NODELAY: {e}");
            }
            if tx.is_closed() {
                break;
            }
            let tx = tx.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let conn = match acceptor {
                    None => Conn::Plain(stream),
                    Some(a) => {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, a.accept(stream)).await {
                            Ok(Ok(s)) => Conn::Tls(Box::new(s)),
                            Ok(Err(e)) => {
                                tracing::warn!("TLS handshake with {peer} refused: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::warn!(
                                    "TLS handshake with {peer} not finished after {}s: dropped",
                                    TLS_HANDSHAKE_TIMEOUT.as_secs()
                                );
                                return;
                            }
                        }
                    }
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let provider_service = GrpcProviderServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let controller_service =
        controller::grpc_controller_server::GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        });
    let signal = async move {
        tokio::select! {
            _ = shutdown.notified() => tracing::debug!("shutting down on Terraform's request"),
            _ = stop => tracing::debug!("stop requested"),
        }
    };
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(controller_service)
        .add_service(provider_service);
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(ReceiverStream::new(rx), signal)
            .await?;
        Ok(())
    });
    Ok(Started {
        addr,
        server_cert_der: tls_config.map(|(c, _)| c),
        task,
    })
}

/// Replaces SIGINT's default action (exit) with a log line, for the life of
/// the process.
fn ignore_interrupts() -> Result<(), ServeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigint = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let mut seen = 0u64;
            while sigint.recv().await.is_some() {
                seen += 1;
                tracing::info!(
                    seen,
                    "SIGINT ignored: Terraform stops the provider with StopProvider and Shutdown"
                );
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(
                "Ctrl-C ignored: Terraform stops the provider with StopProvider and Shutdown"
            );
        }
    });
    Ok(())
}

/// Serves a provider until Terraform shuts it down (or, with --debug, until Ctrl-C).
pub async fn serve<P: Provider>(provider: P, opts: ServeOptions) -> Result<(), ServeError> {
    serve_service(Guarded(ProviderServer::new(provider)), opts).await
}

/// As [`serve`], for any implementation of the generated tfplugin6 service.
pub async fn serve_service<S: GrpcProvider>(
    service: S,
    opts: ServeOptions,
) -> Result<(), ServeError> {
    tls::install_crypto_provider();
    if !opts.debug {
        check_launch_env()?;
    }
    let listener = bind_loopback().await?;
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|pem| !opts.debug && !pem.trim().is_empty());
    // Under Terraform, Ctrl-C reaches the whole process group, often before
    // Terraform's StopProvider: as go-plugin servers do, the provider ignores
    // SIGINT and acts on StopProvider (cancel) and Shutdown (exit). Stopping
    // on SIGINT would refuse Terraform's StopProvider and let an interrupted
    // apply run to its end. With --debug (no Terraform in charge), Ctrl-C
    // stops the provider.
    let interrupt: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = if opts.debug {
        Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    } else {
        ignore_interrupts()?;
        Box::pin(std::future::pending())
    };
    let started = start_service(service, listener, client_cert.as_deref(), interrupt).await?;
    let addr = started.addr;
    if opts.debug {
        let reattach = serde_json::json!({
            opts.address.clone(): {
                "Protocol": "grpc",
                "ProtocolVersion": PROTOCOL_VERSION,
                "Pid": std::process::id(),
                "Test": true,
                "Addr": {"Network": "tcp", "String": addr.to_string()},
            }
        });
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Provider started in debug mode (no TLS). To attach Terraform, set in the shell that runs it:\n\n    TF_REATTACH_PROVIDERS='{reattach}'\n\nCtrl-C stops the provider."
        )?;
        out.flush()?;
    } else {
        use base64::Engine;
        // The one line go-plugin reads; nothing else may reach stdout.
        let cert = started
            .server_cert_der
            .as_ref()
            .map(|c| base64::engine::general_purpose::STANDARD_NO_PAD.encode(c))
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        writeln!(out, "1|{PROTOCOL_VERSION}|tcp|{addr}|grpc|{cert}")?;
        out.flush()?;
    }
    tracing::info!(%addr, tls = started.server_cert_der.is_some(), "serving tfplugin6");
    match started.task.await {
        Ok(r) => r,
        Err(e) => Err(ServeError::Io(std::io::Error::other(e))),
    }
}
