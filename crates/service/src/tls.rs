//! TLS for the three roles (rustls with the `ring` provider), certificate
//! generation (rcgen), and the one place that opens sockets.
//!
//! Every link is TLS 1.3/1.2 with certificates checked against the
//! deployment's CA. Plain TCP exists only as [`Security::Plaintext`], which
//! the command line enables with an explicit `--insecure-plaintext` flag on
//! every role and logs loudly.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};

use crate::ServiceError;

/// A byte stream to a peer (TLS or, behind the explicit flag, plain TCP).
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// This party's certificate chain and key.
#[derive(Debug)]
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// From PEM text (certificate chain, then private key).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ServiceError> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServiceError::Config(format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(ServiceError::Config(
                "certificate: no certificate in the PEM data".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| ServiceError::Config(format!("private key: {e}")))?;
        Ok(Self { certs, key })
    }

    /// From PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, ServiceError> {
        Self::from_pem(&read(cert)?, &read(key)?)
    }
}

fn read(p: &Path) -> Result<Vec<u8>, ServiceError> {
    std::fs::read(p).map_err(|e| ServiceError::Config(format!("{}: {e}", p.display())))
}

/// How a role secures its links.
#[derive(Clone)]
pub enum Security {
    /// TLS with certificates checked against `ca`.
    Tls {
        /// Trusted CA certificates.
        roots: Arc<RootCertStore>,
        /// This party's certificate (required for servers; optional for the client).
        identity: Option<Identity>,
        /// Servers: refuse clients without a certificate signed by the CA.
        require_client_cert: bool,
    },
    /// Plain TCP (testing only; enabled by `--insecure-plaintext`).
    Plaintext,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::Tls {
                identity,
                require_client_cert,
                ..
            } => {
                write!(
                    f,
                    "Tls(identity: {}, require_client_cert: {require_client_cert})",
                    identity.is_some()
                )
            }
            Security::Plaintext => f.write_str("Plaintext"),
        }
    }
}

impl Security {
    /// TLS from a CA PEM and an optional identity.
    pub fn tls(
        ca_pem: &[u8],
        identity: Option<Identity>,
        require_client_cert: bool,
    ) -> Result<Self, ServiceError> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem) {
            let c = c.map_err(|e| ServiceError::Config(format!("CA certificate: {e}")))?;
            roots
                .add(c)
                .map_err(|e| ServiceError::Config(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ServiceError::Config("CA file holds no certificate".into()));
        }
        Ok(Security::Tls {
            roots: Arc::new(roots),
            identity,
            require_client_cert,
        })
    }

    /// TLS from files: CA, and optionally this party's certificate and key.
    pub fn tls_files(
        ca: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
        require_client_cert: bool,
    ) -> Result<Self, ServiceError> {
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some(Identity::from_files(c, k)?),
            (None, None) => None,
            _ => {
                return Err(ServiceError::Config(
                    "give both --cert and --key, or neither".into(),
                ));
            }
        };
        Self::tls(&read(ca)?, identity, require_client_cert)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str) -> impl FnOnce(rustls::Error) -> ServiceError + '_ {
    move |e| ServiceError::Config(format!("{what}: {e}"))
}

/// Socket timeouts: a silent peer is an error, never a hang.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting and the TLS handshake.
    pub connect: Duration,
    /// Each read and write.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            io: Duration::from_secs(60),
        }
    }
}

/// SHA-256-free identity of a certificate: BLAKE3 of its DER, in hex.
pub fn fingerprint(cert: &[u8]) -> String {
    blake3::hash(cert).to_hex().to_string()
}

/// A connected stream and what we learned about the peer.
pub struct Connected {
    /// The stream.
    pub stream: Box<dyn Stream>,
    /// Fingerprint of the peer's certificate (`"plaintext"` without TLS, `"none"` without a certificate).
    pub peer: String,
}

fn set_timeouts(tcp: &TcpStream, t: Timeouts) -> Result<(), ServiceError> {
    tcp.set_read_timeout(Some(t.io))
        .map_err(ServiceError::io("socket"))?;
    tcp.set_write_timeout(Some(t.io))
        .map_err(ServiceError::io("socket"))?;
    tcp.set_nodelay(true).map_err(ServiceError::io("socket"))?;
    Ok(())
}

/// Connects to `addr` (`host:port`) and completes the TLS handshake.
pub fn connect(addr: &str, security: &Security, t: Timeouts) -> Result<Connected, ServiceError> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| ServiceError::Connect {
            addr: addr.into(),
            reason: e.to_string(),
        })?
        .collect();
    // Try every address the name resolves to (`localhost` may give ::1 before 127.0.0.1).
    let mut last = "no address".to_string();
    let mut tcp = None;
    for sock in &addrs {
        match TcpStream::connect_timeout(sock, t.connect) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let tcp = tcp.ok_or_else(|| ServiceError::Connect {
        addr: addr.into(),
        reason: last,
    })?;
    set_timeouts(&tcp, Timeouts { io: t.connect, ..t })?;
    match security {
        Security::Plaintext => {
            set_timeouts(&tcp, t)?;
            Ok(Connected {
                stream: Box::new(tcp),
                peer: "plaintext".into(),
            })
        }
        Security::Tls {
            roots, identity, ..
        } => {
            let b = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err("TLS"))?
                .with_root_certificates(roots.clone());
            let config = match identity {
                Some(id) => b
                    .with_client_auth_cert(id.certs.clone(), id.key.clone_key())
                    .map_err(tls_err("client certificate"))?,
                None => b.with_no_client_auth(),
            };
            let host = addr
                .rsplit_once(':')
                .map_or(addr, |(h, _)| h)
                .trim_matches(|c| c == '[' || c == ']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| ServiceError::Config(format!("server name {host}: {e}")))?;
            let mut conn = ClientConnection::new(Arc::new(config), name).map_err(tls_err("TLS"))?;
            let mut tcp = tcp;
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)
                    .map_err(|e| ServiceError::Handshake {
                        addr: addr.into(),
                        reason: e.to_string(),
                    })?;
            }
            let peer = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map_or("none".into(), |c| fingerprint(c));
            set_timeouts(&tcp, t)?;
            Ok(Connected {
                stream: Box::new(StreamOwned::new(conn, tcp)),
                peer,
            })
        }
    }
}

/// Completes the server side of the TLS handshake on an accepted socket.
pub fn accept(tcp: TcpStream, security: &Security, t: Timeouts) -> Result<Connected, ServiceError> {
    let from = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    set_timeouts(&tcp, Timeouts { io: t.connect, ..t })?;
    match security {
        Security::Plaintext => {
            set_timeouts(&tcp, t)?;
            Ok(Connected {
                stream: Box::new(tcp),
                peer: "plaintext".into(),
            })
        }
        Security::Tls {
            roots,
            identity,
            require_client_cert,
        } => {
            let id = identity
                .as_ref()
                .ok_or_else(|| ServiceError::Config("a server needs --cert and --key".into()))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            let verifier = if *require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| ServiceError::Config(format!("client verifier: {e}")))?;
            let config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err("TLS"))?
                .with_client_cert_verifier(verifier)
                .with_single_cert(id.certs.clone(), id.key.clone_key())
                .map_err(tls_err("server certificate"))?;
            let mut conn = ServerConnection::new(Arc::new(config)).map_err(tls_err("TLS"))?;
            let mut tcp = tcp;
            while conn.is_handshaking() {
                conn.complete_io(&mut tcp)
                    .map_err(|e| ServiceError::Handshake {
                        addr: from.clone(),
                        reason: e.to_string(),
                    })?;
            }
            let peer = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map_or("none".into(), |c| fingerprint(c));
            set_timeouts(&tcp, t)?;
            Ok(Connected {
                stream: Box::new(StreamOwned::new(conn, tcp)),
                peer,
            })
        }
    }
}

/// A CA and one certificate per role, in PEM.
#[derive(Debug, Clone)]
pub struct CertSet {
    /// The CA certificate.
    pub ca_pem: String,
    /// The CA's private key (keep it offline).
    pub ca_key_pem: String,
    /// `(role, certificate, key)` for `dealer`, `provider`, `client`.
    pub roles: Vec<(String, String, String)>,
}

impl CertSet {
    /// The PEM certificate and key of `role`.
    pub fn role(&self, role: &str) -> Option<(&str, &str)> {
        self.roles
            .iter()
            .find(|r| r.0 == role)
            .map(|r| (r.1.as_str(), r.2.as_str()))
    }
}

/// Makes a CA and certificates for the three roles valid for `names`
/// (host names or IP addresses). `expired` makes certificates whose validity
/// ended in the past (for tests).
pub fn generate_certs(names: &[String], expired: bool) -> Result<CertSet, ServiceError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let gen_err = |e: rcgen::Error| ServiceError::Config(format!("certificate generation: {e}"));
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "CryptMed deployment CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let mut roles = Vec::new();
    for role in ["dealer", "provider", "client"] {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("cryptmed {role}"));
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
        roles.push((role.to_string(), cert.pem(), key.serialize_pem()));
    }
    Ok(CertSet {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        roles,
    })
}
