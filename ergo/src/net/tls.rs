//! Mutual TLS between nodes (feature `tls`).
//!
//! A node started with [`crate::NodeBuilder::tls`] speaks TLS 1.2/1.3 (rustls) on every peer
//! connection, both ways: it presents its certificate, and it accepts only peers whose
//! certificate chains to the configured CA and is valid now. A peer with no certificate, an
//! expired one, or one from another CA is rejected during the TLS handshake, before the cookie
//! handshake (which still runs, inside TLS).
//!
//! # Node identity
//!
//! A node's certificate must name the node: a DNS subject alternative name
//! `<name>.<host>` for node `name@host` ([`identity_name`]; `a.localhost` for `a@localhost`).
//! The dialler checks the peer's certificate against the name it dials, and the acceptor checks
//! the dialler's certificate against the name it claims in the cookie handshake, so a holder
//! of another node's certificate (and the cookie) cannot pose as a third node.
//!
//! For development, [`dev::DevCa`] makes a self-signed CA and node certificates (rcgen).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ergo::prelude::*;
//! use ergo::net::tls::dev::DevCa;
//!
//! struct Echo;
//! #[actor(remote)]
//! impl Echo {
//!     #[handle]
//!     fn echo(&self, s: String) -> String { s }
//! }
//!
//! let ca = DevCa::new()?;
//! let a = Node::builder("tls-doc-a@localhost")
//!     .cookie("secret cookie")
//!     .tls(ca.node_config("tls-doc-a@localhost")?)
//!     .start()
//!     .await?;
//! a.register("echo", &a.spawn(Echo).await?)?;
//! let b = Node::builder("tls-doc-b@localhost")
//!     .cookie("secret cookie")
//!     .tls(ca.node_config("tls-doc-b@localhost")?)
//!     .route("tls-doc-a@localhost", a.listen_addr().unwrap().to_string())
//!     .start()
//!     .await?;
//! let echo = b.lookup::<Echo>("echo", "tls-doc-a@localhost").await?;
//! assert_eq!(echo.echo("over TLS".into()).await?, "over TLS");
//! # Ok(()) }
//! ```

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The DNS name a node's certificate must carry: `<name>.<host>` for node `name@host`.
///
/// ```
/// assert_eq!(ergo::net::tls::identity_name("billing-1@localhost"), "billing-1.localhost");
/// ```
pub fn identity_name(node: &str) -> String {
    match node.split_once('@') {
        Some((name, host)) => format!("{name}.{host}"),
        None => format!("{node}.localhost"),
    }
}

/// Checks that a peer's certificate (the leaf of its chain) names node `node`.
pub(crate) fn check_identity(
    certs: Option<&[CertificateDer<'_>]>,
    node: &str,
) -> Result<(), String> {
    let leaf = certs
        .and_then(|c| c.first())
        .ok_or_else(|| "no client certificate".to_string())?;
    let name = ServerName::try_from(identity_name(node))
        .map_err(|e| format!("`{node}` is not usable as a certificate name: {e}"))?;
    webpki::EndEntityCert::try_from(leaf)
        .and_then(|cert| cert.verify_is_valid_for_subject_name(&name))
        .map_err(|e| format!("its certificate does not name `{node}` ({e:?})"))
}

/// Why a TLS configuration could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no certificate or no key, or did not parse.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// rustls refused the certificates or key.
    #[error("invalid TLS configuration: {0}")]
    Config(String),
    /// Generating a development certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(String),
}

/// A node's TLS identity and trust: its certificate chain and key, and the CA its peers'
/// certificates must chain to. Cheap to clone.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig(..)")
    }
}

impl TlsConfig {
    /// From PEM text: the CA certificate(s) peers must chain to, this node's certificate chain
    /// (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`TlsError::Pem`] for unreadable or missing PEM items, [`TlsError::Config`] when rustls
    /// refuses them (a key that does not match the certificate, say).
    pub fn from_pem(ca: &[u8], chain: &[u8], key: &[u8]) -> Result<TlsConfig, TlsError> {
        let pem = |e: rustls_pki_types::pem::Error| TlsError::Pem(e.to_string());
        let ca: Vec<_> = CertificateDer::pem_slice_iter(ca)
            .collect::<Result<_, _>>()
            .map_err(pem)?;
        let chain: Vec<_> = CertificateDer::pem_slice_iter(chain)
            .collect::<Result<_, _>>()
            .map_err(pem)?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(pem)?;
        TlsConfig::from_der(ca, chain, key)
    }

    /// [`TlsConfig::from_pem`] from DER items.
    ///
    /// # Errors
    ///
    /// As [`TlsConfig::from_pem`].
    pub fn from_der(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsConfig, TlsError> {
        if ca.is_empty() {
            return Err(TlsError::Pem("no CA certificate".into()));
        }
        if chain.is_empty() {
            return Err(TlsError::Pem("no node certificate".into()));
        }
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(config)?;
        }
        let roots = Arc::new(roots);
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config)?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config)?;
        Ok(TlsConfig {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// Runs the client side of TLS on a dialled connection to node `peer` (`name@host`); the
    /// peer's certificate must name it ([`identity_name`]).
    pub(crate) async fn connect(
        &self,
        peer: &str,
        stream: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
        let name =
            ServerName::try_from(identity_name(peer)).map_err(|e| format!("server name: {e}"))?;
        TlsConnector::from(self.client.clone())
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))
    }

    /// Runs the server side of TLS on an accepted connection.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
        TlsAcceptor::from(self.server.clone())
            .accept(stream)
            .await
            .map_err(|e| format!("TLS: {e}"))
    }
}

/// Development certificates: a throwaway CA and node certificates signed by it.
pub mod dev {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use std::time::{Duration, SystemTime};

    use time::OffsetDateTime;

    use super::{TlsConfig, TlsError};

    /// A self-signed certificate authority for development and tests. Not for production:
    /// its key lives in memory and is lost with it.
    ///
    /// ```
    /// use ergo::net::tls::dev::DevCa;
    /// let ca = DevCa::new()?;
    /// let cert = ca.issue("a@localhost")?;
    /// assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    /// let _config = ca.node_config("a@localhost")?;
    /// # Ok::<(), ergo::net::tls::TlsError>(())
    /// ```
    pub struct DevCa {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl std::fmt::Debug for DevCa {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("DevCa(..)")
        }
    }

    /// A node's certificate and key, in PEM.
    #[derive(Clone, Debug)]
    pub struct NodeCert {
        /// The certificate.
        pub cert_pem: String,
        /// The private key (PKCS#8).
        pub key_pem: String,
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn generate(e: rcgen::Error) -> TlsError {
        TlsError::Generate(e.to_string())
    }

    impl DevCa {
        /// A new CA, valid from yesterday for ten years.
        ///
        /// # Errors
        ///
        /// [`TlsError::Generate`] if key generation fails.
        pub fn new() -> Result<DevCa, TlsError> {
            let key = KeyPair::generate().map_err(generate)?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "ergo development CA");
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - DAY;
            params.not_after = now + 3650 * DAY;
            let cert = params.self_signed(&key).map_err(generate)?;
            Ok(DevCa { cert, key })
        }

        /// The CA certificate, in PEM (what peers trust).
        pub fn ca_pem(&self) -> String {
            self.cert.pem()
        }

        /// A certificate for node `node` (`name@host`), naming the node ([`identity_name`](super::identity_name)) and
        /// its host, valid for a year.
        ///
        /// # Errors
        ///
        /// [`TlsError::Generate`] if generation fails.
        pub fn issue(&self, node: &str) -> Result<NodeCert, TlsError> {
            let now = SystemTime::now();
            self.issue_valid(node, now - DAY, now + 365 * DAY)
        }

        /// A certificate for `node` valid only between `not_before` and `not_after` (an
        /// expired one, to test that it is refused).
        ///
        /// # Errors
        ///
        /// [`TlsError::Generate`] if generation fails.
        pub fn issue_valid(
            &self,
            node: &str,
            not_before: SystemTime,
            not_after: SystemTime,
        ) -> Result<NodeCert, TlsError> {
            let host = node.split_once('@').map_or(node, |(_, h)| h);
            let key = KeyPair::generate().map_err(generate)?;
            let names = vec![super::identity_name(node), host.to_string()];
            let mut params = CertificateParams::new(names).map_err(generate)?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, node);
            params.distinguished_name = dn;
            params.not_before = OffsetDateTime::from(not_before);
            params.not_after = OffsetDateTime::from(not_after);
            let cert = params
                .signed_by(&key, &self.cert, &self.key)
                .map_err(generate)?;
            Ok(NodeCert {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        }

        /// A [`TlsConfig`] for node `node`: a fresh certificate from this CA, trusting this
        /// CA.
        ///
        /// # Errors
        ///
        /// As [`DevCa::issue`] and [`TlsConfig::from_pem`].
        pub fn node_config(&self, node: &str) -> Result<TlsConfig, TlsError> {
            self.config_for(&self.issue(node)?)
        }

        /// A [`TlsConfig`] from a certificate of this CA (trusting this CA).
        ///
        /// # Errors
        ///
        /// As [`TlsConfig::from_pem`].
        pub fn config_for(&self, cert: &NodeCert) -> Result<TlsConfig, TlsError> {
            TlsConfig::from_pem(
                self.ca_pem().as_bytes(),
                cert.cert_pem.as_bytes(),
                cert.key_pem.as_bytes(),
            )
        }
    }
}
