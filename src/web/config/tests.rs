//! The loader: what loads, and that every refusal names its key.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use super::*;

/// A CA, a server certificate it signed, and an unrelated key, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server
            .signed_by(&server_key, &ca_cert, &ca_key)
            .expect("server certificate");
        let other_key = KeyPair::generate().expect("other key");
        for (name, pem) in [
            ("ca.crt", ca_cert.pem()),
            ("server.crt", server_cert.pem()),
            ("server.key", server_key.serialize_pem()),
            ("other.key", other_key.serialize_pem()),
            ("garbage.crt", "this is not PEM\n".to_owned()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write PEM");
        }
        Pki { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).expect("read PEM")
    }

    fn load(&self, yaml: &str) -> Result<WebConfig, ConfigError> {
        from_yaml(yaml, "web.yml", self.path())
    }

    /// The problems of an invalid config, as `key: message` lines.
    fn problems(&self, yaml: &str) -> Vec<String> {
        match self.load(yaml) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(other) => panic!("expected rule problems, got: {other}\n{yaml}"),
            Ok(config) => panic!("expected problems, loaded: {config:?}\n{yaml}"),
        }
    }

    /// The single problem of an invalid config; asserts it is about `key`.
    fn problem(&self, yaml: &str, key: &str) -> String {
        let problems = self.problems(yaml);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let problem = problems.into_iter().next().unwrap_or_default();
        assert!(
            problem.starts_with(&format!("{key}: ")),
            "expected a problem at {key}, got: {problem}"
        );
        problem
    }
}

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

fn hash(password: &str) -> String {
    bcrypt::hash(password, super::super::auth::MIN_COST).expect("bcrypt")
}

#[test]
fn a_full_config_loads_with_paths_relative_to_its_directory() {
    let pki = Pki::new();
    let yaml = format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n    Content-Security-Policy: \"\"\nbasic_auth_users:\n  alice: {}\n  bob: {}\n",
        hash("a"),
        hash("b")
    );
    // Loaded from another working directory: the paths are found next to the file.
    let config = pki.load(&yaml).expect("valid config");
    let tls = config.tls.expect("TLS configured");
    assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(!tls.ignore_client_order);
    assert_eq!(config.headers.len(), 2, "blank headers are left out");
    assert_eq!(config.headers["x-frame-options"], "deny");
    let auth = config.basic_auth.expect("basic auth");
    let mut users: Vec<&str> = auth.users().collect();
    users.sort_unstable();
    assert_eq!(users, ["alice", "bob"]);
}

#[test]
fn load_reads_the_file_and_names_it_when_it_cannot() {
    let pki = Pki::new();
    let path = pki.path().join("web.yml");
    std::fs::write(&path, TLS).expect("write");
    let config = load(&path).expect("loads");
    assert!(config.tls.is_some());
    assert_eq!(config.tls.expect("tls").alpn_protocols.len(), 2);

    let missing = pki.path().join("missing.yml");
    let error = load(&missing).expect_err("missing file");
    assert!(error.to_string().contains("missing.yml"), "{error}");
}

#[test]
fn inline_certificate_and_key_work_like_files() {
    let pki = Pki::new();
    let indent = |pem: String| pem.replace('\n', "\n    ");
    let yaml = format!(
        "tls_server_config:\n  cert: |\n    {}\n  key: |\n    {}\n",
        indent(pki.read("server.crt")),
        indent(pki.read("server.key"))
    );
    assert!(pki.load(&yaml).expect("valid").tls.is_some());
}

#[test]
fn an_empty_file_or_section_means_plain_http_without_auth() {
    let pki = Pki::new();
    for yaml in [
        "",
        "\n",
        "tls_server_config:\n",
        "tls_server_config: {}\nbasic_auth_users: {}\n",
    ] {
        let config = pki.load(yaml).expect(yaml);
        assert!(
            config.tls.is_none() && config.basic_auth.is_none(),
            "{yaml:?}"
        );
        assert!(config.headers.is_empty());
    }
}

#[test]
fn an_unknown_key_is_a_parse_error_naming_it_and_its_line() {
    let pki = Pki::new();
    for (yaml, expected) in [
        ("tls_server_config:\n  cert_fil: server.crt\n", "cert_fil"),
        ("basic_auth:\n  alice: x\n", "basic_auth"),
        ("http_server_config:\n  header: {}\n", "header"),
    ] {
        match pki.load(yaml) {
            Err(ConfigError::Parse { message, .. }) => {
                assert!(message.contains(expected), "{message}");
                assert!(message.contains("line"), "{message}");
            }
            other => panic!("expected a parse error for {yaml:?}, got {other:?}"),
        }
    }
}

#[test]
fn a_missing_key_file_is_named() {
    let pki = Pki::new();
    let problem = pki.problem(
        "tls_server_config:\n  cert_file: server.crt\n",
        "tls_server_config.key_file",
    );
    assert!(problem.contains("required"), "{problem}");
    pki.problem(
        "tls_server_config:\n  key_file: server.key\n",
        "tls_server_config.cert_file",
    );
    // Any TLS key asks for TLS, so a certificate is then required: no silent plain HTTP.
    let problems = pki.problems("tls_server_config:\n  min_version: TLS13\n");
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn an_unknown_client_auth_type_is_named_with_the_accepted_ones() {
    let pki = Pki::new();
    let problem = pki.problem(
        &format!("{TLS}  client_auth_type: RequireSomething\n"),
        "tls_server_config.client_auth_type",
    );
    assert!(problem.contains("RequireAndVerifyClientCert"), "{problem}");
}

#[test]
fn every_client_auth_type_loads_with_what_it_needs() {
    let pki = Pki::new();
    for auth in [
        "NoClientCert",
        "RequestClientCert",
        "RequireAnyClientCert",
        "RequireClientCert",
    ] {
        let yaml = format!("{TLS}  client_auth_type: {auth}\n");
        assert!(pki.load(&yaml).expect(auth).tls.is_some());
    }
    for auth in ["VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] {
        let yaml = format!("{TLS}  client_auth_type: {auth}\n  client_ca_file: ca.crt\n");
        assert!(pki.load(&yaml).expect(auth).tls.is_some());
        let problem = pki.problem(
            &format!("{TLS}  client_auth_type: {auth}\n"),
            "tls_server_config.client_ca_file",
        );
        assert!(problem.contains(auth), "{problem}");
    }
    let problem = pki.problem(
        &format!("{TLS}  client_ca_file: ca.crt\n"),
        "tls_server_config.client_ca_file",
    );
    assert!(problem.contains("NoClientCert"), "{problem}");
}

#[test]
fn bad_tls_versions_are_named() {
    let pki = Pki::new();
    let problem = pki.problem(
        &format!("{TLS}  min_version: TLS14\n"),
        "tls_server_config.min_version",
    );
    assert!(problem.contains("TLS12 or TLS13"), "{problem}");
    let problem = pki.problem(
        &format!("{TLS}  min_version: TLS10\n"),
        "tls_server_config.min_version",
    );
    assert!(problem.contains("not supported"), "{problem}");
    pki.problem(
        &format!("{TLS}  max_version: tls13\n"),
        "tls_server_config.max_version",
    );
    let problem = pki.problem(
        &format!("{TLS}  min_version: TLS13\n  max_version: TLS12\n"),
        "tls_server_config.max_version",
    );
    assert!(problem.contains("below min_version"), "{problem}");
}

#[test]
fn unreadable_or_invalid_pem_files_are_named_with_their_path() {
    let pki = Pki::new();
    let problem = pki.problem(
        "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n",
        "tls_server_config.cert_file",
    );
    assert!(problem.contains("cannot read"), "{problem}");
    assert!(
        problem.contains(&pki.path().join("nowhere.crt").display().to_string()),
        "{problem}"
    );
    let problem = pki.problem(
        "tls_server_config:\n  cert_file: garbage.crt\n  key_file: server.key\n",
        "tls_server_config.cert_file",
    );
    assert!(
        problem.contains("garbage.crt") && problem.contains("no PEM certificate"),
        "{problem}"
    );
    // A key where the certificate should be, and the other way round.
    pki.problem(
        "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n",
        "tls_server_config.cert_file",
    );
    let problem = pki.problem(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n",
        "tls_server_config.key_file",
    );
    assert!(problem.contains("no PEM private key"), "{problem}");
    let problem = pki.problem(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: \"\"\n",
        "tls_server_config.key_file",
    );
    assert!(problem.contains("empty"), "{problem}");
    pki.problem(
        &format!(
            "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: garbage.crt\n"
        ),
        "tls_server_config.client_ca_file",
    );
}

#[test]
fn a_key_that_does_not_belong_to_the_certificate_is_refused_at_load() {
    let pki = Pki::new();
    let problem = pki.problem(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
        "tls_server_config.key_file",
    );
    assert!(problem.contains("does not belong"), "{problem}");
}

#[test]
fn a_file_and_an_inline_value_for_the_same_thing_conflict() {
    let pki = Pki::new();
    let problem = pki.problem(&format!("{TLS}  cert: x\n"), "tls_server_config.cert_file");
    assert!(problem.contains("not both"), "{problem}");
}

#[test]
fn cipher_suites_and_curves_rustls_lacks_are_named() {
    let pki = Pki::new();
    let problem = pki.problem(
        &format!("{TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA]\n"),
        "tls_server_config.cipher_suites[1]",
    );
    assert!(
        problem.contains("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        "{problem}"
    );
    pki.problem(
        &format!("{TLS}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
        "tls_server_config.cipher_suites",
    );
    // Only TLS 1.3 names are fine when TLS 1.2 is off.
    let yaml = format!("{TLS}  min_version: TLS13\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n");
    assert!(pki.load(&yaml).expect("TLS 1.3 only").tls.is_some());
    let problem = pki.problem(
        &format!("{TLS}  curve_preferences: [X25519, CurveP521]\n"),
        "tls_server_config.curve_preferences[1]",
    );
    assert!(problem.contains("not supported"), "{problem}");
    pki.problem(
        &format!("{TLS}  curve_preferences: [P256]\n"),
        "tls_server_config.curve_preferences[0]",
    );
}

#[test]
fn keys_the_exporter_does_not_implement_are_refused_by_name() {
    let pki = Pki::new();
    pki.problem(
        &format!("{TLS}  client_allowed_sans: [client.example]\n"),
        "tls_server_config.client_allowed_sans",
    );
    let problem = pki.problem("rate_limit:\n  interval: 1s\n  burst: 5\n", "rate_limit");
    assert!(problem.contains("not supported"), "{problem}");
}

#[test]
fn headers_are_limited_to_the_toolkit_set_and_values() {
    let pki = Pki::new();
    let problem = pki.problem(
        "http_server_config:\n  headers:\n    X-Powered-By: rust\n",
        "http_server_config.headers.X-Powered-By",
    );
    assert!(problem.contains("X-Frame-Options"), "{problem}");
    pki.problem(
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        "http_server_config.headers.X-Frame-Options",
    );
    pki.problem(
        "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
        "http_server_config.headers.X-Content-Type-Options",
    );
    let config = pki
        .load("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
        .expect("valid");
    assert_eq!(config.headers["x-content-type-options"], "nosniff");
    assert!(config.tls.is_none());
}

#[test]
fn an_invalid_bcrypt_hash_is_named_by_user_and_never_echoed() {
    let pki = Pki::new();
    let secret_looking = "$2y$10$notreallyahashatallnotreallyahashatallnotreallyaha";
    let problem = pki.problem(
        &format!(
            "basic_auth_users:\n  alice: {}\n  bob: \"{secret_looking}\"\n",
            hash("a")
        ),
        "basic_auth_users.bob",
    );
    assert!(problem.contains("bcrypt"), "{problem}");
    assert!(!problem.contains("notreally"), "{problem}");
    let problem = pki.problem(
        "basic_auth_users:\n  carol: hunter2\n",
        "basic_auth_users.carol",
    );
    assert!(!problem.contains("hunter2"), "{problem}");
    pki.problem(
        &format!("basic_auth_users:\n  \"a:b\": {}\n", hash("x")),
        "basic_auth_users.a:b",
    );
}

#[test]
fn a_bcrypt_cost_outside_10_to_14_is_refused_naming_the_user() {
    let pki = Pki::new();
    // Made by hand from a real hash: hashing at cost 31 would take days.
    let real = hash("a");
    for cost in ["04", "09", "15", "31"] {
        let problem = pki.problem(
            &format!(
                "basic_auth_users:\n  alice: {real}\n  mallory: \"$2b${cost}${}\"\n",
                &real[7..]
            ),
            "basic_auth_users.mallory",
        );
        assert!(
            problem.contains(&format!("bcrypt cost {}", cost.trim_start_matches('0'))),
            "{problem}"
        );
        assert!(problem.contains("10 to 14"), "{problem}");
    }
}

#[test]
fn every_problem_is_reported_together() {
    let pki = Pki::new();
    let problems = pki.problems(
        "tls_server_config:\n  cert_file: nowhere.crt\n  client_auth_type: Maybe\n  min_version: TLS9\nbasic_auth_users:\n  alice: nope\nrate_limit: {}\n",
    );
    let keys: Vec<&str> = problems
        .iter()
        .filter_map(|problem| problem.split(": ").next())
        .collect();
    assert_eq!(
        keys,
        [
            "tls_server_config.cert_file",
            "tls_server_config.key_file",
            "tls_server_config.client_auth_type",
            "tls_server_config.min_version",
            "basic_auth_users.alice",
            "rate_limit",
        ],
        "{problems:#?}"
    );
    let error = pki
        .load("basic_auth_users:\n  alice: nope\n")
        .expect_err("invalid");
    assert!(
        error.to_string().starts_with("web.yml: 1 problem:"),
        "{error}"
    );
}
