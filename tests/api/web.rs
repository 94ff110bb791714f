//! `--web.config.file` end to end: real TLS handshakes with certificates rcgen makes at test
//! time, and real bcrypt hashes at cost 10, the lowest the exporter accepts (bcrypt is built
//! optimised in dev builds, see Cargo.toml, so a check takes tens of milliseconds here too).
//! Basic auth under a password flood runs in real time: the flood and the logins are waited
//! for as events, with deadlines only as hang guards.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::app::Options;
use meta_messaging_exporter::simulator::FakeGraphApi;
use meta_messaging_exporter::web::{self, ServerSettings, WebConfig};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use reqwest::{StatusCode, Version};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";
const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

/// A CA with a server certificate for `localhost` and a client certificate, plus a client
/// certificate the CA never issued. The server's files are written next to the web config.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    client: String,
    rogue_client: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");

        let leaf = |names: Vec<String>, usage| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![usage];
            (key, params)
        };
        let (server_key, server) = leaf(
            vec!["localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let server_cert = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server certificate");
        let (client_key, client) = leaf(
            vec!["scraper.test".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let client_cert = client
            .signed_by(&client_key, &ca_cert, &ca_key)
            .expect("client certificate");
        let (rogue_key, rogue) = leaf(
            vec!["scraper.test".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let rogue_cert = rogue.self_signed(&rogue_key).expect("rogue certificate");

        let dir = tempfile::tempdir().expect("tempdir");
        for (name, pem) in [
            ("ca.crt", ca_cert.pem()),
            ("server.crt", server_cert.pem()),
            ("server.key", server_key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        }
        Pki {
            dir,
            ca: ca_cert.pem(),
            client: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
            rogue_client: format!("{}{}", rogue_cert.pem(), rogue_key.serialize_pem()),
        }
    }

    /// Writes `yaml` as `web.yml` beside the certificates and loads it as main does.
    fn web_config(&self, yaml: &str) -> WebConfig {
        let path = self.dir.path().join("web.yml");
        std::fs::write(&path, yaml).expect("write web config");
        web::load(&path).unwrap_or_else(|error| panic!("web config is invalid: {error}\n{yaml}"))
    }

    /// A client that trusts only the test CA and sends `localhost` to the exporter.
    fn client(&self, address: SocketAddr) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca.as_bytes()).expect("CA certificate"),
            )
            .resolve("localhost", address)
            .timeout(Duration::from_secs(10))
    }

    fn identity(pem: &str) -> reqwest::Identity {
        reqwest::Identity::from_pem(pem.as_bytes()).expect("client identity")
    }
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, web::auth::MIN_COST).expect("bcrypt")
}

fn users() -> String {
    format!("basic_auth_users:\n  {USER}: {}\n", hash(PASSWORD))
}

/// The exporter with one Page to poll and `web_yaml` as its web config.
async fn start(pki: &Pki, web_yaml: &str) -> (FakeGraphApi, TestExporter) {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n",
        preamble(&fake)
    );
    let options = Options {
        web: Some(pki.web_config(web_yaml)),
        shutdown_grace: Duration::from_secs(2),
        ..Options::default()
    };
    let exporter = TestExporter::start_with_options(&yaml, options).await;
    (fake, exporter)
}

fn https(exporter: &TestExporter, path: &str) -> String {
    format!("https://localhost:{}{path}", exporter.address.port())
}

#[tokio::test]
async fn a_scrape_over_tls_with_the_right_password_gets_the_metrics() {
    let pki = Pki::new();
    let (_fake, exporter) = start(&pki, &format!("{TLS}{}", users())).await;
    let client = pki.client(exporter.address).build().expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = client
            .get(https(&exporter, "/metrics"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("scrape over TLS");
        assert_eq!(response.status(), StatusCode::OK);
        // HTTP/2 is offered by ALPN unless the web config turns it off.
        assert_eq!(response.version(), Version::HTTP_2);
        let scrape = Scrape::parse(response.text().await.expect("body"));
        let up = [("kind", "page"), ("target_id", "PAGE1")];
        if scrape.value("meta_messaging_exporter_target_up", &up) == Some(1.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "PAGE1 never came up:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The client still holds an idle TLS connection: shutdown must not wait for it.
    exporter.stop().await;
}

#[tokio::test]
async fn every_route_refuses_missing_or_wrong_credentials_with_401_and_a_challenge() {
    let pki = Pki::new();
    let (_fake, exporter) = start(&pki, &format!("{TLS}{}", users())).await;
    let client = pki.client(exporter.address).build().expect("client");
    let wrong: [(&str, Option<(&str, &str)>); 4] = [
        ("no credentials", None),
        (
            "wrong password",
            Some((USER, "Correct horse battery staple")),
        ),
        ("unknown user", Some(("grafana", PASSWORD))),
        ("empty password", Some((USER, ""))),
    ];
    for path in ["/metrics", "/", "/-/healthy", "/-/ready", "/no-such-page"] {
        for (case, credentials) in &wrong {
            let mut request = client.get(https(&exporter, path));
            if let Some((user, password)) = credentials {
                request = request.basic_auth(user, Some(password));
            }
            let response = request.send().await.expect("request");
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{path}, {case}"
            );
            let challenge = response.headers()[reqwest::header::WWW_AUTHENTICATE]
                .to_str()
                .expect("ascii");
            assert!(challenge.starts_with("Basic realm="), "{challenge}");
        }
    }
    for (path, expected) in [
        ("/-/healthy", StatusCode::OK),
        ("/", StatusCode::OK),
        ("/no-such-page", StatusCode::NOT_FOUND),
    ] {
        let response = client
            .get(https(&exporter, path))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), expected, "{path}");
    }
    exporter.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails_instead_of_being_served() {
    let pki = Pki::new();
    let (_fake, exporter) = start(&pki, TLS).await;
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let result = plain
        .get(format!("http://{}/metrics", exporter.address))
        .send()
        .await;
    assert!(result.is_err(), "plain HTTP was answered: {result:?}");
    // The failed handshake cost that connection only.
    let client = pki.client(exporter.address).build().expect("client");
    let response = client
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .expect("TLS still served");
    assert_eq!(response.status(), StatusCode::OK);
    exporter.stop().await;
}

#[tokio::test]
async fn a_client_certificate_from_the_configured_ca_is_required_when_configured() {
    let pki = Pki::new();
    let (_fake, exporter) = start(
        &pki,
        &format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"),
    )
    .await;
    let without = pki.client(exporter.address).build().expect("client");
    let result = without.get(https(&exporter, "/-/healthy")).send().await;
    assert!(
        result.is_err(),
        "served without a client certificate: {result:?}"
    );

    let rogue = pki
        .client(exporter.address)
        .identity(Pki::identity(&pki.rogue_client))
        .build()
        .expect("client");
    let result = rogue.get(https(&exporter, "/-/healthy")).send().await;
    assert!(
        result.is_err(),
        "served a certificate the CA never issued: {result:?}"
    );

    let with = pki
        .client(exporter.address)
        .identity(Pki::identity(&pki.client))
        .build()
        .expect("client");
    let response = with
        .get(https(&exporter, "/metrics"))
        .send()
        .await
        .expect("request with a client certificate");
    assert_eq!(response.status(), StatusCode::OK);
    exporter.stop().await;
}

#[tokio::test]
async fn verify_client_cert_if_given_admits_no_certificate_but_not_a_bad_one() {
    let pki = Pki::new();
    let (_fake, exporter) = start(
        &pki,
        &format!("{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n"),
    )
    .await;
    let without = pki.client(exporter.address).build().expect("client");
    let response = without
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .expect("no certificate is allowed");
    assert_eq!(response.status(), StatusCode::OK);
    let rogue = pki
        .client(exporter.address)
        .identity(Pki::identity(&pki.rogue_client))
        .build()
        .expect("client");
    assert!(rogue
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .is_err());
    exporter.stop().await;
}

#[tokio::test]
async fn require_any_client_cert_requires_a_certificate_but_does_not_verify_it() {
    let pki = Pki::new();
    let (_fake, exporter) = start(
        &pki,
        &format!("{TLS}  client_auth_type: RequireAnyClientCert\n"),
    )
    .await;
    let without = pki.client(exporter.address).build().expect("client");
    assert!(without
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .is_err());
    // As in exporter-toolkit: any certificate whose key the client holds will do.
    let rogue = pki
        .client(exporter.address)
        .identity(Pki::identity(&pki.rogue_client))
        .build()
        .expect("client");
    let response = rogue
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .expect("an unverified certificate is accepted");
    assert_eq!(response.status(), StatusCode::OK);
    exporter.stop().await;
}

#[tokio::test]
async fn min_version_tls13_refuses_a_tls12_only_client() {
    let pki = Pki::new();
    let (_fake, exporter) = start(&pki, &format!("{TLS}  min_version: TLS13\n")).await;
    let tls12_only = pki
        .client(exporter.address)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .expect("client");
    let result = tls12_only.get(https(&exporter, "/-/healthy")).send().await;
    assert!(result.is_err(), "a TLS 1.2 client was served: {result:?}");
    let modern = pki.client(exporter.address).build().expect("client");
    let response = modern
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .expect("TLS 1.3 client");
    assert_eq!(response.status(), StatusCode::OK);
    exporter.stop().await;
}

#[tokio::test]
async fn max_version_tls12_refuses_a_tls13_only_client() {
    let pki = Pki::new();
    let (_fake, exporter) = start(&pki, &format!("{TLS}  max_version: TLS12\n")).await;
    let tls13_only = pki
        .client(exporter.address)
        .min_tls_version(reqwest::tls::Version::TLS_1_3)
        .build()
        .expect("client");
    assert!(tls13_only
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .is_err());
    let tls12 = pki
        .client(exporter.address)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .expect("client");
    let response = tls12
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .expect("TLS 1.2 client");
    assert_eq!(response.status(), StatusCode::OK);
    exporter.stop().await;
}

#[tokio::test]
async fn http2_false_offers_only_http1() {
    let pki = Pki::new();
    let (_fake, exporter) =
        start(&pki, &format!("{TLS}http_server_config:\n  http2: false\n")).await;
    let client = pki.client(exporter.address).build().expect("client");
    let response = client
        .get(https(&exporter, "/-/healthy"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.version(), Version::HTTP_11);
    exporter.stop().await;
}

#[tokio::test]
async fn basic_auth_and_headers_work_without_tls_and_headers_are_on_401s_too() {
    let pki = Pki::new();
    let yaml = format!(
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n{}",
        users()
    );
    let (_fake, exporter) = start(&pki, &yaml).await;
    let (status, _) = exporter.get("/metrics").await;
    assert_eq!(status, 401);
    let client = reqwest::Client::new();
    for credentials in [None, Some(PASSWORD)] {
        let mut request = client.get(format!("http://{}/-/healthy", exporter.address));
        if let Some(password) = credentials {
            request = request.basic_auth(USER, Some(password));
        }
        let response = request.send().await.expect("request");
        let expected = if credentials.is_some() {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(response.status(), expected);
        assert_eq!(response.headers()["x-frame-options"], "deny");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    exporter.stop().await;
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_client_that_never_finishes_its_handshake() {
    let pki = Pki::new();
    let fake = FakeGraphApi::start().await.expect("fake");
    // A grace period far beyond the 10 s that `stop` waits: if the silent handshake held
    // shutdown up, `stop` would fail instead of returning.
    let options = Options {
        web: Some(pki.web_config(TLS)),
        shutdown_grace: Duration::from_secs(120),
        ..Options::default()
    };
    let exporter = TestExporter::start_with_options(&preamble(&fake), options).await;
    let silent = tokio::net::TcpStream::connect(exporter.address)
        .await
        .expect("connect");
    exporter.stop().await;
    drop(silent);
}

#[tokio::test]
async fn tls_connections_that_never_handshake_count_against_the_cap_and_a_fresh_scrape_gets_through(
) {
    let pki = Pki::new();
    let fake = FakeGraphApi::start().await.expect("fake");
    let cap = 8;
    let options = Options {
        web: Some(pki.web_config(TLS)),
        server: ServerSettings {
            max_connections: cap,
            read_header_timeout: Duration::from_secs(60),
            ..ServerSettings::default()
        },
        shutdown_grace: Duration::from_secs(2),
        ..Options::default()
    };
    let exporter = TestExporter::start_with_options(&preamble(&fake), options).await;
    // Three times the cap in sockets that connect and never send a ClientHello: only the
    // accept-time count can hold them back, since no handshake ever completes.
    let mut silent = Vec::new();
    for _ in 0..cap * 3 {
        silent.push(
            tokio::net::TcpStream::connect(exporter.address)
                .await
                .expect("connect"),
        );
    }
    let client = pki.client(exporter.address).build().expect("client");
    let response = client
        .get(https(&exporter, "/metrics"))
        .send()
        .await
        .expect("a fresh scrape over TLS during the flood");
    assert_eq!(response.status(), StatusCode::OK);
    let scrape = Scrape::parse(response.text().await.expect("body"));
    let open = scrape
        .value("meta_messaging_exporter_http_connections_open", &[])
        .expect("open connections gauge");
    assert!(open <= cap as f64, "{open} open with a cap of {cap}");
    let closed: f64 = scrape
        .series(
            "meta_messaging_exporter_http_connections_rejected_total",
            &[],
        )
        .iter()
        .map(|(_, value)| value)
        .sum();
    assert!(
        closed >= (cap * 2) as f64,
        "{closed} connections closed by the cap:\n{}",
        scrape.text
    );
    drop(silent);
    exporter.stop().await;
}

const AUTH_REFUSED: &str = "meta_messaging_exporter_http_auth_refused_total";

/// The exporter over plain HTTP with `USER` and `grafana` (password `GRAFANA_PASSWORD`), and a
/// per-client connection share above `clients`, so that only basic auth stands between a
/// flood from one address and the password checks.
async fn start_with_two_users(pki: &Pki, clients: usize) -> (FakeGraphApi, TestExporter) {
    let fake = FakeGraphApi::start().await.expect("fake");
    let yaml = format!("{}  grafana: {}\n", users(), hash(GRAFANA_PASSWORD));
    let options = Options {
        web: Some(pki.web_config(&yaml)),
        server: ServerSettings {
            max_connections_per_client: clients + 16,
            ..ServerSettings::default()
        },
        shutdown_grace: Duration::from_secs(2),
        ..Options::default()
    };
    let exporter = TestExporter::start_with_options(&preamble(&fake), options).await;
    (fake, exporter)
}

const GRAFANA_PASSWORD: &str = "a different password";

/// A plain HTTP client whose connections come from `source` (127.0.0.0/8 is all loopback on
/// Linux, so each address is another client to the exporter).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `/metrics` with the right password, read through the cache.
async fn auth_refusals(exporter: &TestExporter, prometheus: &reqwest::Client) -> Scrape {
    let response = prometheus
        .get(format!("http://{}/metrics", exporter.address))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), StatusCode::OK);
    Scrape::parse(response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_login_answers_while_250_clients_flood_wrong_passwords() {
    const FLOODERS: usize = 250;
    let pki = Pki::new();
    let (_fake, exporter) = start_with_two_users(&pki, FLOODERS).await;
    let url = format!("http://{}/metrics", exporter.address);
    // Prometheus scrapes from its own address; its first scrape verifies and is cached.
    let prometheus = client_from("127.0.0.3");
    auth_refusals(&exporter, &prometheus).await;

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..FLOODERS)
        .map(|index| {
            let (url, stop, refused) = (url.clone(), stop.clone(), refused.clone());
            tokio::spawn(async move {
                let client = client_from("127.0.0.1");
                while !stop.load(Ordering::Relaxed) {
                    let guess = format!("guess {index}");
                    let response = client
                        .get(&url)
                        .basic_auth(USER, Some(guess))
                        .send()
                        .await
                        .expect("a flood request is answered");
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let under_way = async {
        while refused.load(Ordering::Relaxed) < FLOODERS * 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), under_way)
        .await
        .expect("the flood got going");

    // The deadlines only guard against a hang; what is asserted is that each login is let in.
    let cached = tokio::time::timeout(
        Duration::from_secs(10),
        prometheus.get(&url).basic_auth(USER, Some(PASSWORD)).send(),
    )
    .await
    .expect("the cached login answered during the flood")
    .expect("request");
    assert_eq!(cached.status(), StatusCode::OK);
    // Grafana has not logged in before: its check runs bcrypt beside the flood's share.
    let uncached = tokio::time::timeout(
        Duration::from_secs(10),
        client_from("127.0.0.2")
            .get(&url)
            .basic_auth("grafana", Some(GRAFANA_PASSWORD))
            .send(),
    )
    .await
    .expect("the uncached login answered during the flood")
    .expect("request");
    assert_eq!(uncached.status(), StatusCode::OK);

    stop.store(true, Ordering::Relaxed);
    for flooder in flood {
        flooder
            .await
            .expect("every flood request was refused with 401");
    }
    let scrape = auth_refusals(&exporter, &prometheus).await;
    assert!(
        scrape
            .value(AUTH_REFUSED, &[("reason", "client_busy")])
            .is_some_and(|busy| busy > 0.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(AUTH_REFUSED, &[("reason", "saturated")]),
        Some(0.0),
        "one address never fills the queue"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_flood_from_one_address_beyond_its_share_of_checks_is_refused_with_401_without_a_check() {
    const REQUESTS: usize = 50;
    let pki = Pki::new();
    let (_fake, exporter) = start_with_two_users(&pki, REQUESTS).await;
    let url = format!("http://{}/metrics", exporter.address);
    let prometheus = client_from("127.0.0.3");
    auth_refusals(&exporter, &prometheus).await;

    let attacker = client_from("127.0.0.1");
    let attempts = (0..REQUESTS).map(|index| {
        attacker
            .get(&url)
            .basic_auth(USER, Some(format!("guess {index}")))
            .send()
    });
    for response in futures::future::join_all(attempts).await {
        let response = response.expect("answered");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response
            .headers()
            .contains_key(reqwest::header::WWW_AUTHENTICATE));
    }
    let scrape = auth_refusals(&exporter, &prometheus).await;
    let busy = scrape
        .value(AUTH_REFUSED, &[("reason", "client_busy")])
        .expect("client_busy");
    let checked = scrape
        .value(AUTH_REFUSED, &[("reason", "credentials")])
        .expect("credentials");
    // Fifty at once from one address: at most two run bcrypt at a time, so most are refused
    // before any check; each request is counted once, one way or the other.
    assert!(busy > 0.0, "{}", scrape.text);
    assert_eq!(busy + checked, REQUESTS as f64, "{}", scrape.text);
    assert_eq!(
        scrape.value(AUTH_REFUSED, &[("reason", "saturated")]),
        Some(0.0)
    );
    exporter.stop().await;
}

#[test]
fn a_cost_31_hash_is_refused_at_start_naming_the_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = hash("x");
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        format!(
            "basic_auth_users:\n  {USER}: {real}\n  mallory: \"$2b$31${}\"\n",
            &real[7..]
        ),
    )
    .expect("write web config");
    // `--config.check` validates the web config as a start does, before any port is bound.
    for check in [true, false] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_meta-messaging-exporter"));
        command.args([
            "--demo",
            "--web.listen-address=127.0.0.1:0",
            "--web.config.file",
        ]);
        command.arg(&path);
        if check {
            command.arg("--config.check");
        }
        let output = output_within(command, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "check {check}: {stderr}");
        assert!(
            stderr.contains("basic_auth_users.mallory") && stderr.contains("bcrypt cost 31"),
            "check {check}: {stderr}"
        );
        assert!(!stderr.contains(&real[7..]), "{stderr}");
    }
}

/// Runs `command` to its end; a hang guard kills it after `limit` and fails the test.
fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run binary");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}
