//! A signed release, installed the way registry users install providers:
//! `tools/package_release.py` (what `make release` runs) packages the binary
//! this test run built and signs its SHA256SUMS with a GPG key generated here;
//! a provider registry (service discovery, versions, download) serves it on
//! loopback over TLS with a certificate from a CA generated here; the real
//! `terraform init` installs it as signed and refuses a tampered release.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::harness::{enabled, provider_bin, Workdir};

const NAME: &str = "terraform-provider-cmk";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A keyring in a temporary GNUPGHOME holding one throwaway signing key;
/// its agent is stopped when the keyring goes.
struct Keyring {
    home: PathBuf,
    /// The 16-hex-digit key id, as gpg and Terraform print it.
    key_id: String,
}

impl Keyring {
    fn generate(home: PathBuf) -> Keyring {
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&home)
            .unwrap();
        let gpg = |args: &[&str]| {
            run(Command::new("gpg")
                .arg("--batch")
                .args(args)
                .env("GNUPGHOME", &home))
        };
        gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            "cmk release test <release-test@example.invalid>",
            "rsa2048",
            "sign",
            "1d",
        ]);
        let listing = gpg(&["--with-colons", "--list-keys"]);
        let key_id = listing
            .lines()
            .find_map(|l| l.strip_prefix("pub:"))
            .and_then(|l| l.split(':').nth(3))
            .unwrap_or_else(|| panic!("no public key listed:\n{listing}"))
            .to_string();
        assert_eq!(key_id.len(), 16, "{listing}");
        Keyring { home, key_id }
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", &self.home)
            .output();
    }
}

/// A test CA (its certificate written to `ca_pem`, for SSL_CERT_FILE) and a
/// server configuration whose certificate it signed, for localhost and
/// 127.0.0.1.
fn test_ca_and_server(ca_pem: &Path) -> rustls::ServerConfig {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.distinguished_name
        .push(DnType::CommonName, "cmk release test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(ca_pem, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &issuer).unwrap();

    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap()
}

/// TLS over a loopback listener, for axum::serve.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that gives up on the handshake is skipped.
            if let Ok(s) = self.tls.accept(tcp).await {
                return (s, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// What the registry serves: per namespace, a directory in the layout
/// `make release` writes.
struct Registry {
    base: String,
    releases: BTreeMap<String, PathBuf>,
    key_id: String,
    ascii_armor: String,
    /// The paths requested, in order.
    requests: Mutex<Vec<String>>,
}

impl Registry {
    fn release(&self, namespace: &str, kind: &str) -> Option<&PathBuf> {
        (kind == "cmk")
            .then(|| self.releases.get(namespace))
            .flatten()
    }
}

type Shared = State<Arc<Registry>>;

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"errors": [what]}))).into_response()
}

async fn discovery(State(r): Shared) -> Response {
    r.requests
        .lock()
        .unwrap()
        .push("/.well-known/terraform.json".into());
    Json(json!({"providers.v1": "/v1/providers/"})).into_response()
}

async fn versions(State(r): Shared, UrlPath((ns, kind)): UrlPath<(String, String)>) -> Response {
    r.requests
        .lock()
        .unwrap()
        .push(format!("/v1/providers/{ns}/{kind}/versions"));
    let Some(dir) = r.release(&ns, &kind) else {
        return not_found(format!("no provider {ns}/{kind}"));
    };
    // The platforms are the zips of the release.
    let prefix = format!("{NAME}_{VERSION}_");
    let mut platforms = vec![];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(p) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.strip_suffix(".zip"))
        {
            let (os, arch) = p.split_once('_').unwrap();
            platforms.push(json!({"os": os, "arch": arch}));
        }
    }
    Json(json!({"versions": [{"version": VERSION, "protocols": ["6.0"], "platforms": platforms}]}))
        .into_response()
}

async fn download(
    State(r): Shared,
    UrlPath((ns, kind, version, os, arch)): UrlPath<(String, String, String, String, String)>,
) -> Response {
    r.requests.lock().unwrap().push(format!(
        "/v1/providers/{ns}/{kind}/{version}/download/{os}/{arch}"
    ));
    let Some(dir) = r.release(&ns, &kind) else {
        return not_found(format!("no provider {ns}/{kind}"));
    };
    let filename = format!("{NAME}_{version}_{os}_{arch}.zip");
    let sums_name = format!("{NAME}_{version}_SHA256SUMS");
    // The shasum the release recorded (as a registry keeps what was published).
    let sums = std::fs::read_to_string(dir.join(&sums_name)).unwrap_or_default();
    let Some(shasum) = sums.lines().find_map(|l| {
        l.split_once("  ")
            .filter(|(_, n)| *n == filename)
            .map(|(h, _)| h.to_string())
    }) else {
        return not_found(format!("no {filename} in version {version}"));
    };
    let files = format!("{}/files/{ns}", r.base);
    Json(json!({
        "protocols": ["6.0"],
        "os": os,
        "arch": arch,
        "filename": filename,
        "download_url": format!("{files}/{filename}"),
        "shasums_url": format!("{files}/{sums_name}"),
        "shasums_signature_url": format!("{files}/{sums_name}.sig"),
        "shasum": shasum,
        "signing_keys": {"gpg_public_keys": [{
            "key_id": r.key_id,
            "ascii_armor": r.ascii_armor,
            "trust_signature": "",
            "source": "cmk release test",
            "source_url": null,
        }]},
    }))
    .into_response()
}

async fn file(State(r): Shared, UrlPath((ns, name)): UrlPath<(String, String)>) -> Response {
    r.requests
        .lock()
        .unwrap()
        .push(format!("/files/{ns}/{name}"));
    match r.releases.get(&ns) {
        Some(dir) if !name.contains('/') && !name.starts_with('.') => {
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) => bytes.into_response(),
                Err(_) => not_found(format!("no file {name}")),
            }
        }
        _ => not_found(format!("no namespace {ns}")),
    }
}

/// The registry on 127.0.0.1 over TLS, until dropped.
struct RegistryServer {
    port: u16,
    state: Arc<Registry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RegistryServer {
    fn start(
        tls: rustls::ServerConfig,
        releases: BTreeMap<String, PathBuf>,
        key_id: &str,
        ascii_armor: String,
    ) -> RegistryServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let state = Arc::new(Registry {
            base: format!("https://localhost:{port}"),
            releases,
            key_id: key_id.to_string(),
            ascii_armor,
            requests: Mutex::new(vec![]),
        });
        let app = Router::new()
            .route("/.well-known/terraform.json", get(discovery))
            .route("/v1/providers/{ns}/{kind}/versions", get(versions))
            .route(
                "/v1/providers/{ns}/{kind}/{version}/download/{os}/{arch}",
                get(download),
            )
            .route("/files/{ns}/{name}", get(file))
            .with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TlsListener {
                    tcp: tokio::net::TcpListener::from_std(std_listener).unwrap(),
                    tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        RegistryServer {
            port,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `make release` with no key builds nothing and says how to give one; a
/// binary packaged under another platform's name is refused (a release
/// names no platform it does not hold).
#[test]
fn make_release_asks_for_a_key_and_refuses_a_mislabelled_binary() {
    let o = Command::new("make")
        .args(["-s", "release", "GPG_KEY_ID=", "DIST_DIR=/nonexistent/dist"])
        .current_dir(repo())
        .output()
        .expect("make is needed for make release");
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{text}");
    for needle in [
        "make release GPG_KEY_ID=<key id>",
        "GNUPGHOME=/path/to/keyring",
        "gpg --list-secret-keys --keyid-format long",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }

    let out = tempfile::tempdir().unwrap();
    let wrong = match platform().as_str() {
        "linux_arm64" => "linux_amd64",
        _ => "linux_arm64",
    };
    let o = Command::new(python())
        .arg(repo().join("tools/package_release.py"))
        .arg(out.path())
        .arg("--binary")
        .arg(format!("{wrong}={}", provider_bin().display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_ne!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("is a binary for {}, not {wrong}", platform())),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "files were written"
    );
}

fn sha256_hex(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().unwrap().to_string()
}

/// Terraform's `<os>_<arch>` for this machine.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no Terraform platform name for {other}"),
    };
    format!("{}_{arch}", std::env::consts::OS)
}

/// A configuration needing our provider from the test registry, with a CLI
/// configuration that installs only directly (no mirror, no dev_overrides,
/// no implied local directories) and a home of its own.
fn workdir(port: u16, namespace: &str, ca_pem: &Path) -> Workdir {
    let mut w = Workdir::with_providers(
        &format!(
            r#"terraform {{
  required_providers {{
    cmk = {{ source = "localhost:{port}/{namespace}/cmk", version = "~> {VERSION}" }}
  }}
}}
output "protected" {{ value = provider::cmk::dashboard_protected("2025-01-01T00:00:00Z") }}
"#
        ),
        &[],
    );
    w.write("cli.tfrc", "provider_installation {\n  direct {}\n}\n");
    let home = w.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    w.env.extend([
        ("HOME".to_string(), home.display().to_string()),
        ("SSL_CERT_FILE".to_string(), ca_pem.display().to_string()),
        ("XDG_DATA_HOME".to_string(), home.display().to_string()),
        ("XDG_DATA_DIRS".to_string(), home.display().to_string()),
    ]);
    w
}

fn init(w: &Workdir) -> crate::harness::Out {
    let o = w
        .command(&["init", "-input=false", "-no-color"])
        .env_remove("TF_PLUGIN_CACHE_DIR")
        .output()
        .unwrap();
    crate::harness::Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Terraform wraps its error text; one line for `contains`.
fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_signed_release_installs_through_the_registry_protocol_and_a_tampered_one_is_refused() {
    if !enabled(
        "a_signed_release_installs_through_the_registry_protocol_and_a_tampered_one_is_refused",
    ) {
        return;
    }
    let t0 = std::time::Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("cmk-signed-")
        .tempdir()
        .unwrap();
    let keyring = Keyring::generate(tmp.path().join("gnupg"));

    // What `make release` runs, on the binary this test run built, signed
    // with the throwaway key.
    let dist = tmp.path().join("dist");
    let packaged = run(Command::new(python())
        .arg(repo().join("tools/package_release.py"))
        .arg(&dist)
        .arg("--binary")
        .arg(format!("{}={}", platform(), provider_bin().display()))
        .arg("--gpg-key")
        .arg(&keyring.key_id)
        .env("GNUPGHOME", &keyring.home));
    assert!(
        packaged.contains(&format!("signed by GPG key {}", keyring.key_id)),
        "{packaged}"
    );
    let plat = platform();
    let zip_name = format!("{NAME}_{VERSION}_{plat}.zip");
    let sums_name = format!("{NAME}_{VERSION}_SHA256SUMS");
    let sig_name = format!("{sums_name}.sig");
    // The registry expects a binary (not ASCII-armored) detached signature
    // and an ASCII-armored public key.
    let sig = std::fs::read(dist.join(&sig_name)).unwrap();
    assert!(
        sig[0] & 0x80 != 0 && !sig.starts_with(b"-----"),
        "SHA256SUMS.sig is not a binary OpenPGP packet"
    );
    let armor =
        std::fs::read_to_string(dist.join(format!("{NAME}_{VERSION}_signing-key.asc"))).unwrap();
    assert!(
        armor.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
        "{armor}"
    );
    assert!(!armor.contains("PRIVATE KEY"), "a secret key was exported");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dist.join(format!("{NAME}_{VERSION}_manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["metadata"]["protocol_versions"], json!(["6.0"]));
    let zip_sha = sha256_hex(&dist.join(&zip_name));
    let sums = std::fs::read_to_string(dist.join(&sums_name)).unwrap();
    assert!(
        sums.lines().any(|l| l == format!("{zip_sha}  {zip_name}")),
        "{sums}"
    );

    // Two tampered copies. The zip: other bytes, the signed SHA256SUMS
    // unchanged. The sums: the same other zip, and a SHA256SUMS rewritten to
    // match it after signing (the signature is the original one).
    let tampered_zip = tmp.path().join("tampered-zip");
    let tampered_sums = tmp.path().join("tampered-sums");
    for d in [&tampered_zip, &tampered_sums] {
        std::fs::create_dir_all(d).unwrap();
        for n in [&zip_name, &sums_name, &sig_name] {
            std::fs::copy(dist.join(n), d.join(n)).unwrap();
        }
        let mut bytes = std::fs::read(d.join(&zip_name)).unwrap();
        bytes.extend_from_slice(b"not what was signed");
        std::fs::write(d.join(&zip_name), bytes).unwrap();
    }
    let other_sha = sha256_hex(&tampered_sums.join(&zip_name));
    std::fs::write(
        tampered_sums.join(&sums_name),
        sums.replace(&zip_sha, &other_sha),
    )
    .unwrap();

    let ca_pem = tmp.path().join("test-ca.pem");
    let tls = test_ca_and_server(&ca_pem);
    let registry = RegistryServer::start(
        tls,
        BTreeMap::from([
            ("databricks-cmk".to_string(), dist.clone()),
            ("tampered-zip".to_string(), tampered_zip),
            ("tampered-sums".to_string(), tampered_sums),
        ]),
        &keyring.key_id,
        armor,
    );
    let port = registry.port;

    // The signed release installs, and Terraform says it checked the signature.
    let w = workdir(port, "databricks-cmk", &ca_pem);
    let o = init(&w);
    o.ok();
    let installed = format!(
        "- Installed localhost:{port}/databricks-cmk/cmk v{VERSION} (self-signed, key ID {})",
        keyring.key_id
    );
    assert!(o.stdout.lines().any(|l| l == installed), "{}", o.all());
    let req = registry.requests();
    for path in [
        "/.well-known/terraform.json".to_string(),
        "/v1/providers/databricks-cmk/cmk/versions".to_string(),
        format!(
            "/v1/providers/databricks-cmk/cmk/{VERSION}/download/{}",
            plat.replace('_', "/")
        ),
        format!("/files/databricks-cmk/{sums_name}"),
        format!("/files/databricks-cmk/{sig_name}"),
        format!("/files/databricks-cmk/{zip_name}"),
    ] {
        assert!(req.contains(&path), "{path} was not requested: {req:?}");
    }
    // The lock file holds the zip's zh: hash from the signed SHA256SUMS,
    // and the h1: hash of what was installed.
    let lock = std::fs::read_to_string(w.path().join(".terraform.lock.hcl")).unwrap();
    let block = &lock[lock
        .find(&format!("provider \"localhost:{port}/databricks-cmk/cmk\""))
        .unwrap_or_else(|| panic!("our provider is not locked:\n{lock}"))..];
    assert!(
        block.contains(&format!("version     = \"{VERSION}\"")),
        "{lock}"
    );
    assert!(block.contains(&format!("\"zh:{zip_sha}\"")), "{lock}");
    assert!(block.contains("\"h1:"), "{lock}");
    // The installed provider runs.
    let plan = w.run(&["plan", "-input=false", "-no-color"]);
    plan.ok();
    assert!(plan.stdout.contains("protected = true"), "{}", plan.stdout);

    // A zip that is not the one signed for: refused, nothing installed.
    let w = workdir(port, "tampered-zip", &ca_pem);
    let o = init(&w);
    assert_ne!(o.code, 0, "a tampered zip was installed:\n{}", o.all());
    let text = flat(&o.all());
    assert!(
        text.contains(&format!(
            "archive has incorrect checksum zh:{other_sha} (expected zh:{zip_sha})"
        )),
        "{text}"
    );
    assert!(!w.path().join(".terraform.lock.hcl").exists());

    // A SHA256SUMS altered after signing (to match the other zip): the
    // signature no longer verifies, refused.
    let w = workdir(port, "tampered-sums", &ca_pem);
    let o = init(&w);
    assert_ne!(
        o.code,
        0,
        "a release with altered sums was installed:\n{}",
        o.all()
    );
    let text = flat(&o.all());
    assert!(
        text.contains("error checking signature: openpgp: invalid signature"),
        "{text}"
    );
    assert!(!w.path().join(".terraform.lock.hcl").exists());
    assert!(!text.contains("Installed localhost"), "{text}");
    eprintln!("signed release test took {:?}", t0.elapsed());
}
