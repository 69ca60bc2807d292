//! The layer end to end over real gRPC, in process: mutual TLS, health,
//! StopProvider, shutdown, and every resource RPC against a test provider.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::{Channel, Endpoint, Uri};

use super::diagnostics::Diagnostics;
use super::model::Val;
use super::proto::plugin as ctl;
use super::proto::tfplugin6 as pb;
use super::provider::{
    data_source, resource, Ctx, DataSource, DynDataSource, DynResource, Function, PlanChange,
    Provider, Resource,
};
use super::serve::{start, Started};
use super::value::{self, Value};

/// Test provider configuration.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct Cfg {}

struct TestProvider;

#[async_trait]
impl Provider for TestProvider {
    type Config = Cfg;
    type Client = ();
    async fn configure(&self, _c: Cfg, _v: &str, _d: &mut Diagnostics) -> Option<()> {
        Some(())
    }
    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<()>>> {
        vec![data_source(Slow)]
    }
    fn resources(&self) -> Vec<Box<dyn DynResource<()>>> {
        vec![resource(Thing)]
    }
    fn functions(&self) -> Vec<Box<dyn Function>> {
        vec![]
    }
}

/// Waits, unless cancelled.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct SlowModel {
    /// Seconds to wait.
    seconds: Val<i64>,
    /// Set when the wait completed.
    #[schemars(extend("x-tf" = ["computed"]))]
    done: Val<bool>,
}

struct Slow;

#[async_trait]
impl DataSource for Slow {
    type Model = SlowModel;
    type Client = ();
    const TYPE_NAME: &'static str = "test_slow";
    async fn read(
        &self,
        ctx: &Ctx<()>,
        mut m: SlowModel,
        _d: &mut Diagnostics,
    ) -> Option<SlowModel> {
        let secs = *m.seconds.known()? as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(secs)) => {},
            _ = ctx.cancel.cancelled() => return None,
        }
        m.done = Val::Known(true);
        Some(m)
    }
}

fn default_mode() -> Val<String> {
    Val::Known("a".into())
}

/// A thing.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
struct ThingModel {
    /// Name; changing it replaces the thing.
    #[schemars(extend("x-tf" = ["required", "requires_replace"]))]
    name: Val<String>,
    /// Size.
    #[schemars(extend("x-tf" = ["optional"]))]
    size: Val<i64>,
    /// Mode.
    #[serde(default = "default_mode")]
    mode: Val<String>,
    /// Id.
    #[schemars(extend("x-tf" = ["computed"]))]
    id: Val<String>,
    /// Write-only password.
    #[schemars(extend("x-tf" = ["optional", "write_only", "sensitive"]))]
    password: Val<String>,
    /// Timeouts.
    #[serde(default)]
    #[schemars(extend("x-tf" = ["block"]))]
    timeouts: Val<super::Timeouts>,
}

struct Thing;

#[async_trait]
impl Resource for Thing {
    type Model = ThingModel;
    type Client = ();
    const TYPE_NAME: &'static str = "test_thing";
    const SCHEMA_VERSION: i64 = 1;

    async fn plan(
        &self,
        _ctx: &Ctx<()>,
        change: &mut PlanChange<ThingModel>,
        diags: &mut Diagnostics,
    ) {
        if change.config.size.known() == Some(&666) {
            panic!("test: size 666 panics");
        }
        if change.config.size.known() == Some(&13) {
            diags.error_at(
                super::AttributePath::new(["size"]),
                "Unlucky size",
                "13 is refused",
            );
        }
    }
    async fn create(
        &self,
        ctx: &Ctx<()>,
        mut m: ThingModel,
        d: &mut Diagnostics,
    ) -> Option<ThingModel> {
        if m.name.known().map(String::as_str) == Some("slow") {
            // Waits until stopped, and says it was, as resources do.
            ctx.cancel.cancelled().await;
            d.error("Stopped", "the create was stopped before it began");
            return None;
        }
        m.id = Val::Known(format!("id-{}", m.name.known()?));
        Some(m)
    }
    async fn read(
        &self,
        _ctx: &Ctx<()>,
        m: ThingModel,
        _d: &mut Diagnostics,
    ) -> Option<ThingModel> {
        (m.name.known().map(String::as_str) != Some("gone")).then_some(m)
    }
    async fn update(
        &self,
        _ctx: &Ctx<()>,
        _p: ThingModel,
        m: ThingModel,
        _d: &mut Diagnostics,
    ) -> Option<ThingModel> {
        Some(m)
    }
    async fn delete(&self, _ctx: &Ctx<()>, _m: ThingModel, _d: &mut Diagnostics) {}
    async fn import(&self, _ctx: &Ctx<()>, id: &str, _d: &mut Diagnostics) -> Option<ThingModel> {
        Some(ThingModel {
            name: Val::Known(id.trim_start_matches("id-").into()),
            size: Val::Null,
            mode: default_mode(),
            id: Val::Known(id.into()),
            password: Val::Null,
            timeouts: Val::Null,
        })
    }
    fn upgraders(&self) -> Vec<super::Upgrader> {
        vec![super::Upgrader {
            from: 0,
            change: "`title` renamed `name`",
            step: |mut state| {
                let title = state
                    .as_object_mut()
                    .and_then(|o| o.remove("title"))
                    .ok_or("no title")?;
                state["name"] = title;
                Ok(state)
            },
        }]
    }
}

// ---------------------------------------------------------------- helpers

fn p521_cert() -> (String, Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec(), key.serialize_der())
}

#[derive(Debug)]
struct PinServer(Vec<u8>);

impl ServerCertVerifier for PinServer {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        _i: &[CertificateDer<'_>],
        _n: &ServerName<'_>,
        _o: &[u8],
        _t: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if ee.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn serve_test(tls: Option<&str>) -> (Started, tokio::sync::oneshot::Sender<()>) {
    super::install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let started = start(TestProvider, listener, tls, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    (started, tx)
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    server_der: Vec<u8>,
    client: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<Channel, tonic::transport::Error> {
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(PinServer(server_der)));
    let mut cfg = match client {
        Some((der, key)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from(der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        }))
        .await
}

async fn plain_client(addr: std::net::SocketAddr) -> pb::provider_client::ProviderClient<Channel> {
    let ch = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::provider_client::ProviderClient::new(ch)
}

fn dv(v: &Value, ty: &super::Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: value::to_msgpack(v, ty).unwrap(),
        json: vec![],
    })
}

async fn configure(c: &mut pb::provider_client::ProviderClient<Channel>) {
    let empty = super::Type::Object(Default::default());
    let r = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.11.4".into(),
            config: dv(&Value::object::<[(&str, Value); 0], &str>([]), &empty),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty());
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn mtls_accepts_only_the_pinned_p521_client_certificate() {
    let (pem, der, key) = p521_cert();
    let (started, _stop) = serve_test(Some(&pem)).await;
    let server_der = started.server_cert_der.clone().unwrap();

    let ch = tls_channel(started.addr, server_der.clone(), Some((der, key)))
        .await
        .unwrap();
    let mut c = pb::provider_client::ProviderClient::new(ch);
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.data_source_schemas.contains_key("test_slow"));

    // another P-521 certificate: refused
    let (_pem2, der2, key2) = p521_cert();
    let refused = match tls_channel(started.addr, server_der.clone(), Some((der2, key2))).await {
        Err(_) => true,
        Ok(ch) => pb::provider_client::ProviderClient::new(ch)
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(refused, "a client with another certificate must be refused");

    // no certificate: refused
    let refused = match tls_channel(started.addr, server_der, None).await {
        Err(_) => true,
        Ok(ch) => pb::provider_client::ProviderClient::new(ch)
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
}

#[tokio::test]
async fn health_says_plugin_is_serving_and_shutdown_stops_the_server() {
    let (started, _stop) = serve_test(None).await;
    let ch = Endpoint::from_shared(format!("http://{}", started.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut ctl = ctl::grpc_controller_client::GrpcControllerClient::new(ch);
    ctl.shutdown(ctl::Empty {}).await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), started.task)
        .await
        .expect("server stops after Shutdown");
    res.unwrap().unwrap();
}

#[tokio::test]
async fn stop_provider_cancels_in_flight_work_and_the_server_keeps_answering() {
    let (started, _stop) = serve_test(None).await;
    let mut c = plain_client(started.addr).await;
    configure(&mut c).await;
    let ty = super::schema::Schema::of::<SlowModel>(0)
        .unwrap()
        .value_type()
        .clone();
    let cfg = Value::object([
        ("seconds", Value::Number(value::Number::Int(60))),
        ("done", Value::Null),
    ]);
    let mut c2 = c.clone();
    let req = pb::read_data_source::Request {
        type_name: "test_slow".into(),
        config: dv(&cfg, &ty),
        provider_meta: None,
        client_capabilities: None,
    };
    let t0 = std::time::Instant::now();
    let read = tokio::spawn(async move { c2.read_data_source(req).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap();
    let r = read.await.unwrap().unwrap().into_inner();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "cancellation must be prompt"
    );
    assert!(r.state.is_none());
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.summary == "Operation cancelled"),
        "{:?}",
        r.diagnostics
    );

    // The server still answers, and new work is not cancelled by the old stop.
    c.get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap();
    let quick = Value::object([
        ("seconds", Value::Number(value::Number::Int(0))),
        ("done", Value::Null),
    ]);
    let r = c
        .read_data_source(pb::read_data_source::Request {
            type_name: "test_slow".into(),
            config: dv(&quick, &ty),
            provider_meta: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    let state = value::from_msgpack(&r.state.unwrap().msgpack, &ty).unwrap();
    assert_eq!(state.get("done"), Some(&Value::Bool(true)));
}

#[tokio::test]
async fn resource_lifecycle_over_grpc() {
    let (started, _stop) = serve_test(None).await;
    let mut c = plain_client(started.addr).await;
    configure(&mut c).await;
    let schema = super::schema::Schema::of::<ThingModel>(1).unwrap();
    let ty = schema.value_type();
    let s = |name: &str| Value::string(name);
    let config = Value::object([
        ("name", s("a")),
        ("size", Value::Null),
        ("mode", Value::Null),
        ("id", Value::Null),
        ("password", s("pw")),
    ]);

    // create plan: default filled, computed unknown, write-only never planned
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&Value::Null, ty),
            proposed_new_state: dv(&config, ty),
            config: dv(&config, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);
    let planned = value::from_msgpack(&plan.planned_state.unwrap().msgpack, ty).unwrap();
    assert_eq!(planned.get("mode"), Some(&s("a")));
    assert_eq!(planned.get("id"), Some(&Value::unknown()));
    assert_eq!(planned.get("password"), Some(&Value::Null));

    let applied = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&Value::Null, ty),
            planned_state: dv(&planned, ty),
            config: dv(&config, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(applied.diagnostics.is_empty(), "{:?}", applied.diagnostics);
    let state = value::from_msgpack(&applied.new_state.unwrap().msgpack, ty).unwrap();
    assert_eq!(state.get("id"), Some(&s("id-a")));

    // rename: requires replace on name; plan diagnostics land on the attribute
    let mut renamed = config.clone();
    *renamed.get_mut("name").unwrap() = s("b");
    *renamed.get_mut("size").unwrap() = Value::Number(value::Number::Int(13));
    let mut proposed = state.clone();
    *proposed.get_mut("name").unwrap() = s("b");
    *proposed.get_mut("size").unwrap() = Value::Number(value::Number::Int(13));
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&state, ty),
            proposed_new_state: dv(&proposed, ty),
            config: dv(&renamed, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let d = &plan.diagnostics[0];
    assert_eq!(d.summary, "Unlucky size");
    assert_eq!(
        super::AttributePath::from_proto(d.attribute.as_ref().unwrap()).to_string(),
        "size"
    );
    *proposed.get_mut("size").unwrap() = Value::Null;
    *renamed.get_mut("size").unwrap() = Value::Null;
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&state, ty),
            proposed_new_state: dv(&proposed, ty),
            config: dv(&renamed, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.requires_replace.len(), 1);
    assert_eq!(
        super::AttributePath::from_proto(&plan.requires_replace[0]).to_string(),
        "name"
    );

    // a default is planned when the configuration leaves the attribute unset,
    // even if the prior state drifted from it
    let mut drifted = state.clone();
    *drifted.get_mut("mode").unwrap() = s("z");
    let plan = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&drifted, ty),
            proposed_new_state: dv(&drifted, ty),
            config: dv(&config, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let planned = value::from_msgpack(&plan.planned_state.unwrap().msgpack, ty).unwrap();
    assert_eq!(planned.get("mode"), Some(&s("a")));

    // read: gone means null state
    let mut gone = state.clone();
    *gone.get_mut("name").unwrap() = s("gone");
    let r = c
        .read_resource(pb::read_resource::Request {
            type_name: "test_thing".into(),
            current_state: dv(&gone, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        value::from_msgpack(&r.new_state.unwrap().msgpack, ty).unwrap(),
        Value::Null
    );

    // import
    let r = c
        .import_resource_state(pb::import_resource_state::Request {
            type_name: "test_thing".into(),
            id: "id-z".into(),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    let imported =
        value::from_msgpack(&r.imported_resources[0].state.as_ref().unwrap().msgpack, ty).unwrap();
    assert_eq!(imported.get("name"), Some(&s("z")));

    // upgrade from schema version 0 (raw JSON in the old schema)
    let r = c
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: "test_thing".into(),
            version: 0,
            raw_state: Some(pb::RawState {
                json: br#"{"title":"old","id":"id-old","size":2}"#.to_vec(),
                flatmap: Default::default(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let up = value::from_msgpack(&r.upgraded_state.unwrap().msgpack, ty).unwrap();
    assert_eq!(up.get("name"), Some(&s("old")));
    assert_eq!(up.get("size"), Some(&Value::Number(value::Number::Int(2))));

    // the current version passes through: an attribute the schema does not
    // know is dropped, a missing one is null
    let upgrade = |version: i64, json: &'static [u8]| {
        let mut c = c.clone();
        async move {
            c.upgrade_resource_state(pb::upgrade_resource_state::Request {
                type_name: "test_thing".into(),
                version,
                raw_state: Some(pb::RawState {
                    json: json.to_vec(),
                    flatmap: Default::default(),
                }),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let r = upgrade(1, br#"{"name":"n","id":"id-n","gone":true}"#).await;
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let up = value::from_msgpack(&r.upgraded_state.unwrap().msgpack, ty).unwrap();
    assert_eq!(up.get("name"), Some(&s("n")));
    assert_eq!(up.get("size"), Some(&Value::Null));
    assert!(up.get("gone").is_none());

    // a newer version than the provider knows: refused, saying why
    let r = upgrade(2, br#"{"name":"n"}"#).await;
    assert!(r.upgraded_state.is_none());
    assert_eq!(
        r.diagnostics[0].summary,
        "State written by a newer provider"
    );
    assert!(
        r.diagnostics[0].detail.contains("schema version 2")
            && r.diagnostics[0].detail.contains("Upgrade the provider"),
        "{}",
        r.diagnostics[0].detail
    );

    // a step that cannot upgrade what it got says which step failed
    let r = upgrade(0, br#"{"name":"no title"}"#).await;
    assert!(r.upgraded_state.is_none());
    assert_eq!(r.diagnostics[0].summary, "State upgrade failed");
    assert!(
        r.diagnostics[0]
            .detail
            .contains("from schema version 0 to 1")
            && r.diagnostics[0].detail.contains("`title` renamed `name`"),
        "{}",
        r.diagnostics[0].detail
    );

    // move from another type: refused by default, with a diagnostic
    let r = c
        .move_resource_state(pb::move_resource_state::Request {
            source_provider_address: "registry.terraform.io/hashicorp/null".into(),
            source_type_name: "null_resource".into(),
            source_state: Some(pb::RawState {
                json: b"{}".to_vec(),
                flatmap: Default::default(),
            }),
            target_type_name: "test_thing".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.target_state.is_none());
    assert_eq!(r.diagnostics[0].summary, "Move not supported");

    // destroy
    let r = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&state, ty),
            planned_state: dv(&Value::Null, ty),
            config: dv(&Value::Null, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        value::from_msgpack(&r.new_state.unwrap().msgpack, ty).unwrap(),
        Value::Null
    );

    // a create under `timeouts { create = "1s" }` that would wait forever:
    // stopped a moment after its time, naming the setting
    let ty_obj = |name: &str, create: &str| {
        let mut v = state.clone();
        *v.get_mut("name").unwrap() = s(name);
        *v.get_mut("id").unwrap() = Value::Null;
        *v.get_mut("timeouts").unwrap() = Value::Map(
            [
                ("create".to_string(), s(create)),
                ("read".to_string(), Value::Null),
                ("update".to_string(), Value::Null),
                ("delete".to_string(), Value::Null),
            ]
            .into(),
        );
        v
    };
    let slow = ty_obj("slow", "1s");
    let t0 = std::time::Instant::now();
    let r = c
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "test_thing".into(),
            prior_state: dv(&Value::Null, ty),
            planned_state: dv(&slow, ty),
            config: dv(&slow, ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "{took:?}"
    );
    let ran_out = r
        .diagnostics
        .iter()
        .find(|d| d.summary == "test_thing create ran out of time")
        .unwrap_or_else(|| panic!("{:?}", r.diagnostics));
    assert!(
        ran_out
            .detail
            .contains("within 1s, the resource's `timeouts.create`"),
        "{}",
        ran_out.detail
    );
    assert!(
        !r.diagnostics
            .iter()
            .any(|d| d.summary == "Operation cancelled"),
        "not Terraform's stop: {:?}",
        r.diagnostics
    );

    // a duration that is not one: refused at validate, on its argument
    let r = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "test_thing".into(),
            config: dv(&ty_obj("x", "soon"), ty),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.diagnostics[0].summary, "Invalid duration for timeouts.create",
        "{:?}",
        r.diagnostics
    );
    assert!(r.diagnostics[0].detail.contains("\"1h30m\""));
    let steps = &r.diagnostics[0].attribute.as_ref().unwrap().steps;
    assert_eq!(steps.len(), 2, "{steps:?}");

    // metadata and unknown type names
    let m = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.resources[0].type_name, "test_thing");
    assert!(m.server_capabilities.unwrap().plan_destroy);
    let r = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "nope".into(),
            config: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.diagnostics[0].summary, "Unknown resource type");
}

/// Issue 10: a panic inside an RPC (`rate_limit = 1e-30` did it) dropped
/// the connection, and Terraform showed only "Request cancelled". Now the
/// RPC answers an error diagnostic and the plugin keeps serving.
#[tokio::test]
async fn a_panic_in_an_rpc_is_an_error_diagnostic_and_the_plugin_keeps_serving() {
    let (started, _stop) = serve_test(None).await;
    let mut c = plain_client(started.addr).await;
    configure(&mut c).await;
    let schema = super::schema::Schema::of::<ThingModel>(1).unwrap();
    let ty = schema.value_type();
    let config = |size: i64| {
        Value::object([
            ("name", Value::string("a")),
            ("size", Value::Number(value::Number::Int(size))),
            ("mode", Value::Null),
            ("id", Value::Null),
            ("password", Value::Null),
        ])
    };
    let plan = |size: i64| pb::plan_resource_change::Request {
        type_name: "test_thing".into(),
        prior_state: dv(&Value::Null, ty),
        proposed_new_state: dv(&config(size), ty),
        config: dv(&config(size), ty),
        ..Default::default()
    };
    for _ in 0..3 {
        let r = c
            .plan_resource_change(plan(666))
            .await
            .expect("an answer, not a dropped connection")
            .into_inner();
        assert!(r.planned_state.is_none());
        let d = &r.diagnostics[0];
        assert_eq!(d.severity, pb::diagnostic::Severity::Error as i32);
        assert_eq!(d.summary, "Provider bug: internal error");
        assert!(
            d.detail.contains("plan_resource_change") && d.detail.contains("size 666 panics"),
            "{}",
            d.detail
        );
    }
    // The same connection keeps serving: another plan, the schema, StopProvider.
    let r = c.plan_resource_change(plan(1)).await.unwrap().into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    assert!(r.planned_state.is_some());
    c.get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap();
    let s = c
        .stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(s.error.is_empty());
}

/// Issue 10: without a handshake timeout, 500 stalled TLS handshakes stayed
/// open 22 s and more. A client that connects and sends nothing is dropped
/// after the handshake timeout, and the server keeps serving the pinned
/// client.
#[tokio::test]
async fn stalled_tls_handshakes_are_dropped() {
    use tokio::io::AsyncReadExt;
    let (pem, der, key) = p521_cert();
    let (started, _stop) = serve_test(Some(&pem)).await;
    let server_der = started.server_cert_der.clone().unwrap();
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(TcpStream::connect(started.addr).await.unwrap());
    }
    // A hang guard far above the timeout (not a timing goal).
    let guard = super::serve::TLS_HANDSHAKE_TIMEOUT * 6;
    let reads = stalled.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 64];
        tokio::time::timeout(guard, s.read(&mut buf)).await
    });
    for r in futures_join(reads).await {
        match r {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("the server sent {n} bytes to a client that sent nothing"),
            Err(_) => panic!("a stalled handshake was still open after {guard:?}"),
        }
    }
    let ch = tls_channel(started.addr, server_der, Some((der, key)))
        .await
        .unwrap();
    pb::provider_client::ProviderClient::new(ch)
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap();
}

/// Awaits every future (they run concurrently on the test runtime).
async fn futures_join<F>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
