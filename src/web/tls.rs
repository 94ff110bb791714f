//! TLS with rustls: exporter-toolkit's names mapped onto rustls, the server config built from
//! checked settings, and a listener that hands axum finished handshakes.
//!
//! Why these crates: `rustls` (with the *ring* provider reqwest already links, so no second
//! crypto library and no OpenSSL) implements the protocol and client-certificate verification;
//! `tokio-rustls` runs its handshake on a tokio socket. The listener implements
//! [`axum::serve::Listener`] over another listener (the connection-capped TCP listener of
//! [`super::connections`]), so the server's accept loop serves TLS exactly as it serves plain
//! HTTP, and a connection counts against the cap from before its handshake.
//!
//! exporter-toolkit is written against Go's crypto/tls; where the two differ this module says
//! what it does instead. rustls implements TLS 1.2 and 1.3 only, and only AEAD cipher suites
//! with ECDHE key exchange; the *ring* provider has no P-521.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::crypto::{SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, VerifierBuilderError, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme, SupportedCipherSuite,
    SupportedProtocolVersion,
};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// `client_auth_type`: whether the server asks for a client certificate, requires one, and
/// verifies it against `client_ca_file`. Same names and meanings as Go's `tls.ClientAuthType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never ask for a certificate (the default).
    NoClientCert,
    /// Ask for a certificate but accept none, and do not verify one that is sent.
    RequestClientCert,
    /// Require a certificate but do not verify who issued it.
    RequireAnyClientCert,
    /// Accept no certificate, but verify one that is sent.
    VerifyClientCertIfGiven,
    /// Require a certificate issued by `client_ca_file`: the only type that authenticates.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Every accepted spelling, for error messages.
    pub const NAMES: &'static str = "NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert";

    /// Parses the toolkit's spelling. `RequireClientCert` is the old name of
    /// `RequireAnyClientCert`, which the toolkit still accepts.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NoClientCert" => Some(Self::NoClientCert),
            "RequestClientCert" => Some(Self::RequestClientCert),
            "RequireAnyClientCert" | "RequireClientCert" => Some(Self::RequireAnyClientCert),
            "VerifyClientCertIfGiven" => Some(Self::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Some(Self::RequireAndVerifyClientCert),
            _ => None,
        }
    }

    /// True for the types that check certificates against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            Self::VerifyClientCertIfGiven | Self::RequireAndVerifyClientCert
        )
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A `min_version` or `max_version` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLS12`
    Tls12,
    /// `TLS13`
    Tls13,
}

impl TlsVersion {
    /// Parses `TLS12` or `TLS13`. `TLS10` and `TLS11`, which the toolkit accepts, are errors:
    /// rustls does not implement them.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "TLS12" => Ok(Self::Tls12),
            "TLS13" => Ok(Self::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{text} is not supported: rustls implements TLS 1.2 and 1.3 only; use TLS12 or TLS13"
            )),
            other => Err(format!("unknown TLS version {other:?}; expected TLS12 or TLS13")),
        }
    }

    /// The versions from `min` to `max`, for rustls.
    pub fn range(min: Self, max: Self) -> Vec<&'static SupportedProtocolVersion> {
        [
            (Self::Tls12, &rustls::version::TLS12),
            (Self::Tls13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(version, _)| (min..=max).contains(version))
        .map(|(_, supported)| supported)
        .collect()
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tls12 => "TLS12",
            Self::Tls13 => "TLS13",
        })
    }
}

/// The TLS 1.2 suites Go's names can select, in rustls's preference order. These are all the
/// TLS 1.2 suites rustls has; Go's CBC, RSA-key-exchange and 3DES suites are not among them.
const TLS12_CIPHER_SUITES: &[(&str, SupportedCipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Go's names of the TLS 1.3 suites. Go accepts them in `cipher_suites` and ignores them
/// there (TLS 1.3 suites are not configurable in Go); rustls keeps all three enabled too.
const TLS13_CIPHER_SUITE_NAMES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Looks up a `cipher_suites` entry: `Ok(Some(suite))` for a TLS 1.2 suite, `Ok(None)` for a
/// TLS 1.3 suite (accepted, no effect, as in Go), an error naming the alternatives otherwise.
pub fn tls12_cipher_suite(name: &str) -> Result<Option<SupportedCipherSuite>, String> {
    if let Some((_, suite)) = TLS12_CIPHER_SUITES.iter().find(|(known, _)| *known == name) {
        return Ok(Some(*suite));
    }
    if TLS13_CIPHER_SUITE_NAMES.contains(&name) {
        return Ok(None);
    }
    let names: Vec<&str> = TLS12_CIPHER_SUITES.iter().map(|(name, _)| *name).collect();
    Err(format!(
        "cipher suite {name:?} is not supported by rustls; supported TLS 1.2 suites: {}",
        names.join(", ")
    ))
}

/// Looks up a `curve_preferences` entry by Go's name.
pub fn kx_group(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        "CurveP521" => Err(
            "CurveP521 is not supported by rustls's ring provider; use X25519, CurveP256 or CurveP384"
                .to_owned(),
        ),
        other => Err(format!(
            "unknown curve {other:?}; expected X25519, CurveP256 or CurveP384"
        )),
    }
}

/// Checked TLS settings, ready to become a rustls [`ServerConfig`].
pub struct TlsSettings {
    /// The server's certificate first, then any intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
    /// Whether and how client certificates are checked.
    pub client_auth: ClientAuth,
    /// The CAs client certificates must chain to (required when `client_auth` verifies).
    pub client_cas: Option<RootCertStore>,
    /// Protocol versions, from `min_version` to `max_version`.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// TLS 1.2 suites in preference order; `None` keeps rustls's defaults.
    pub tls12_cipher_suites: Option<Vec<SupportedCipherSuite>>,
    /// Key exchange groups in preference order; `None` keeps rustls's defaults.
    pub kx_groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    /// Choose by the server's order rather than the client's.
    pub prefer_server_cipher_suites: bool,
    /// Offer HTTP/2 by ALPN.
    pub http2: bool,
}

/// Which part of the settings rustls rejected.
#[derive(Debug)]
pub enum BuildError {
    /// The protocol versions do not fit the cipher suites (for example TLS 1.2 only, with no
    /// TLS 1.2 suite left).
    Versions(rustls::Error),
    /// The client CA set cannot verify anything (for example, it is empty).
    ClientCas(VerifierBuilderError),
    /// The key is unusable or does not belong to the certificate.
    CertifiedKey(rustls::Error),
}

/// Builds the rustls server config. A key that does not match the certificate is an error
/// here, at start-up, rather than a failed handshake later.
pub fn server_config(settings: TlsSettings) -> Result<Arc<ServerConfig>, BuildError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = settings.tls12_cipher_suites {
        provider
            .cipher_suites
            .retain(|suite| matches!(suite, SupportedCipherSuite::Tls13(_)));
        provider.cipher_suites.extend(suites);
    }
    if let Some(groups) = settings.kx_groups {
        provider.kx_groups = groups;
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.versions)
        .map_err(BuildError::Versions)?;
    let hints = settings
        .client_cas
        .as_ref()
        .map(RootCertStore::subjects)
        .unwrap_or_default();
    let verifier: Arc<dyn ClientCertVerifier> = match (settings.client_auth, settings.client_cas) {
        (ClientAuth::NoClientCert, _) => WebPkiClientVerifier::no_client_auth(),
        (ClientAuth::RequestClientCert, _) => Arc::new(UnverifiedClientCert {
            mandatory: false,
            hints,
            algorithms: provider.signature_verification_algorithms,
        }),
        (ClientAuth::RequireAnyClientCert, _) => Arc::new(UnverifiedClientCert {
            mandatory: true,
            hints,
            algorithms: provider.signature_verification_algorithms,
        }),
        (verifying, roots) => {
            // Validation requires client_ca_file for these; an empty store makes rustls's
            // builder fail with a clear "no root trust anchors" error if it ever gets here.
            let roots = Arc::new(roots.unwrap_or_else(RootCertStore::empty));
            let builder = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
            let builder = if verifying == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(BuildError::ClientCas)?
        }
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(settings.cert_chain, settings.key)
        .map_err(BuildError::CertifiedKey)?;
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    config.alpn_protocols = if settings.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// `RequestClientCert` and `RequireAnyClientCert`: asks for a certificate and checks that the
/// client holds its private key, but not who issued it, as Go does for these types. Nothing
/// downstream looks at the certificate, so these types authenticate nobody; they exist so
/// that a web config written for another exporter loads unchanged.
#[derive(Debug)]
struct UnverifiedClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for UnverifiedClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A listener that yields TLS streams whose handshake has completed.
///
/// Handshakes run in their own tasks, so a slow or silent client never holds up the accept
/// loop, and each gets the handshake timeout: without one a client that connects and says
/// nothing would hold a socket and a task for ever. A failed handshake (a plain HTTP request,
/// an untrusted client certificate, a version or suite mismatch) closes that connection and is
/// logged at debug level, since scanners make them routinely. Dropping the listener, as the
/// server does when shutdown begins, abandons the handshakes still in progress.
pub struct TlsListener<L: Listener> {
    inner: L,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    handshakes: JoinSet<Option<(TlsStream<L::Io>, SocketAddr)>>,
}

impl<L: Listener<Addr = SocketAddr>> TlsListener<L> {
    /// Serves TLS with `config` on the connections `inner` accepts, giving each handshake
    /// `handshake_timeout`.
    pub fn new(inner: L, config: Arc<ServerConfig>, handshake_timeout: Duration) -> Self {
        Self {
            inner,
            acceptor: TlsAcceptor::from(config),
            handshake_timeout,
            handshakes: JoinSet::new(),
        }
    }
}

impl<L: Listener<Addr = SocketAddr>> Listener for TlsListener<L> {
    type Io = TlsStream<L::Io>;
    type Addr = SocketAddr;

    // Cancel-safe, as the accept loop's `select!` requires, provided `inner.accept` is: both
    // branches are, and nothing is held between them except what `self` owns.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                (stream, peer) = self.inner.accept() => {
                    self.handshakes.spawn(handshake(
                        self.acceptor.clone(),
                        stream,
                        peer,
                        self.handshake_timeout,
                    ));
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl<T> super::connections::Tracked for TlsStream<T>
where
    T: super::connections::Tracked,
{
    fn connection(&self) -> &Arc<super::connections::Connection> {
        self.get_ref().0.connection()
    }
}

async fn handshake<S>(
    acceptor: TlsAcceptor,
    stream: S,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<(TlsStream<S>, SocketAddr)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some((stream, peer)),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, ?timeout, "TLS handshake timed out");
            None
        }
    }
}
