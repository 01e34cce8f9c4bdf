//! TLS for the three roles (rustls with the `ring` provider), certificate
//! generation (rcgen), and the one place that opens sockets.
//!
//! Every link is TLS 1.3/1.2 with certificates checked against the
//! deployment's CA. Each certificate carries its role (a subject alternative
//! name `urn:cryptmed:role:ROLE`), and every link checks it: the client
//! talks only to a `provider` and a `dealer`, the provider to a `dealer`
//! and accepts only `client` certificates, the dealer accepts `provider`
//! and `client` certificates whose role matches the role they join as.
//! Plain TCP exists only as [`Security::Plaintext`], which the command line
//! enables with an explicit `--insecure-plaintext` flag on every role and
//! logs loudly.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::InconsistentKeys;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
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
    /// From PEM text (certificate chain, then private key). Refuses a key
    /// that is not the certificate's (its public key differs from the one
    /// the certificate certifies), so a misconfigured server fails at start
    /// rather than on every connection.
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
        let signing = provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| ServiceError::Config(format!("private key: {e}")))?;
        match CertifiedKey::new(certs.clone(), signing).keys_match() {
            // `Unknown`: the key type cannot tell its public key; rustls checks at use.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(ServiceError::Config(
                    "the private key does not match the certificate (its public key is not the one the certificate certifies): give the key made with this certificate".into(),
                ));
            }
            Err(e) => return Err(ServiceError::Config(format!("certificate: {e}"))),
        }
        Ok(Self { certs, key })
    }

    /// From PEM files (errors name both files).
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, ServiceError> {
        Self::from_pem(&read(cert)?, &read(key)?).map_err(|e| match e {
            ServiceError::Config(m) => {
                ServiceError::Config(format!("{} with {}: {m}", cert.display(), key.display()))
            }
            e => e,
        })
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
    /// Connecting and the TLS handshake (client side).
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

/// The three roles; each certificate made by [`generate_certs`] names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The dealer (`cryptmed dealer`).
    Dealer,
    /// The provider (`cryptmed serve`).
    Provider,
    /// The client (`cryptmed diagnose`).
    Client,
}

/// Prefix of the subject-alternative-name URI that marks a certificate's role.
pub const ROLE_URI: &str = "urn:cryptmed:role:";

impl Role {
    /// All roles, in the order certificates are made.
    pub const ALL: [Role; 3] = [Role::Dealer, Role::Provider, Role::Client];

    /// `dealer`, `provider` or `client`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::Provider => "provider",
            Role::Client => "client",
        }
    }

    /// The role called `name`.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The role a certificate (DER) names, if any.
    pub fn of_certificate(der: &[u8]) -> Option<Role> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let san = cert.subject_alternative_name().ok()??;
        san.value.general_names.iter().find_map(|n| match n {
            GeneralName::URI(u) => Role::from_name(u.strip_prefix(ROLE_URI)?),
            _ => None,
        })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
    /// Who is at the other end.
    pub peer: PeerCert,
    /// A handle on the socket, to shut it down from elsewhere (deadlines).
    pub socket: Option<TcpStream>,
}

impl Connected {
    /// A plain-TCP link (`--insecure-plaintext`): the peer has no certificate.
    fn plaintext(
        tcp: &TcpStream,
        addr: String,
        socket: Option<TcpStream>,
    ) -> Result<Self, ServiceError> {
        Ok(Connected {
            stream: Box::new(tcp.try_clone().map_err(ServiceError::io("socket"))?),
            peer: PeerCert {
                fingerprint: "plaintext".into(),
                subject: "plaintext".into(),
                role: None,
                addr,
            },
            socket,
        })
    }
}

/// What the TLS handshake told us about the peer.
#[derive(Debug, Clone)]
pub struct PeerCert {
    /// Fingerprint of the peer's certificate (`"plaintext"` without TLS, `"none"` without a certificate).
    pub fingerprint: String,
    /// The subject of the peer's certificate (`plaintext` without TLS, `none` without a certificate).
    pub subject: String,
    /// The role in the peer's certificate (`None` without TLS or without a certificate).
    pub role: Option<Role>,
    /// The peer's address.
    pub addr: String,
}

impl PeerCert {
    /// Checks the peer's certificate names one of `allowed` (skipped without
    /// TLS, and without a certificate when `optional`).
    pub fn check_role(&self, allowed: &[Role], optional: bool) -> Result<(), ServiceError> {
        let fp = self.fingerprint.as_str();
        match self.role {
            Some(r) if allowed.contains(&r) => Ok(()),
            None if fp == "plaintext" || (optional && fp == "none") => Ok(()),
            got => Err(ServiceError::Role {
                addr: self.addr.clone(),
                expected: allowed
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(" or "),
                got: match (got, fp) {
                    (Some(r), _) => r.name().into(),
                    (None, "none") => "no certificate, so no".into(),
                    (None, _) => "no cryptmed".into(),
                },
            }),
        }
    }
}

/// The subject of a certificate (DER) as a distinguished name (`CN=...`).
fn subject_of(der: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "unreadable".into())
}

fn peer_cert(certs: Option<&[CertificateDer<'_>]>, addr: String) -> PeerCert {
    match certs.and_then(|c| c.first()) {
        Some(c) => PeerCert {
            fingerprint: fingerprint(c),
            subject: subject_of(c),
            role: Role::of_certificate(c),
            addr,
        },
        None => PeerCert {
            fingerprint: "none".into(),
            subject: "none".into(),
            role: None,
            addr,
        },
    }
}

fn set_timeouts(tcp: &TcpStream, io: Duration) -> Result<(), ServiceError> {
    tcp.set_read_timeout(Some(io))
        .map_err(ServiceError::io("socket"))?;
    tcp.set_write_timeout(Some(io))
        .map_err(ServiceError::io("socket"))?;
    tcp.set_nodelay(true).map_err(ServiceError::io("socket"))?;
    Ok(())
}

/// The reason of a handshake the peer closed without a word.
pub(crate) const CLOSED_IN_HANDSHAKE: &str = "the peer closed the connection during the handshake";

/// Says what a failed TLS handshake means, in words.
fn explain(e: &std::io::Error) -> String {
    use rustls::{CertificateError, Error as E, InvalidMessage};
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let hint = match inner {
        Some(E::InvalidMessage(InvalidMessage::InvalidContentType))
        | Some(E::InvalidMessage(InvalidMessage::UnknownProtocolVersion)) => {
            "the peer does not speak TLS (plain TCP, --insecure-plaintext on one side only, or garbage)"
        }
        Some(E::InvalidCertificate(CertificateError::Expired))
        | Some(E::InvalidCertificate(CertificateError::ExpiredContext { .. })) => {
            "the peer's certificate has expired"
        }
        Some(E::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => "the peer's certificate is not signed by our CA",
        Some(E::InvalidCertificate(CertificateError::NotValidForName))
        | Some(E::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
            "the peer's certificate is not valid for the name we connected to"
        }
        Some(E::NoCertificatesPresented) => {
            "the peer presented no certificate, and one is required"
        }
        Some(E::AlertReceived(a)) => {
            return format!(
                "the peer rejected the handshake (TLS alert {a:?}: it probably does not accept our certificate)"
            );
        }
        _ => "",
    };
    match (hint, e.kind()) {
        ("", std::io::ErrorKind::UnexpectedEof) => CLOSED_IN_HANDSHAKE.into(),
        ("", std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            "the peer did not complete the handshake in time".into()
        }
        ("", _) => e.to_string(),
        (h, _) => format!("{h} ({e})"),
    }
}

/// Drives a TLS handshake to its end.
fn handshake<C, D>(conn: &mut C, tcp: &mut TcpStream, addr: &str) -> Result<(), ServiceError>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<D>>,
    D: rustls::SideData,
{
    while conn.is_handshaking() {
        conn.complete_io(tcp).map_err(|e| ServiceError::Handshake {
            addr: addr.into(),
            reason: explain(&e),
        })?;
    }
    Ok(())
}

/// Connects to `addr` (`host:port`) as the client of `expect` and completes
/// the TLS handshake; the server must present an `expect` certificate.
pub fn connect(
    addr: &str,
    expect: Role,
    security: &Security,
    t: Timeouts,
) -> Result<Connected, ServiceError> {
    let peer = expect.name();
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| ServiceError::Connect {
            peer,
            addr: addr.into(),
            reason: e.to_string(),
        })?
        .collect();
    // Try every address the name resolves to (`localhost` may give ::1 before 127.0.0.1).
    let mut last = "the name resolves to no address".to_string();
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
    let mut tcp = tcp.ok_or_else(|| ServiceError::Connect {
        peer,
        addr: addr.into(),
        reason: last,
    })?;
    set_timeouts(&tcp, t.connect)?;
    let socket = tcp.try_clone().ok();
    let connected = match security {
        Security::Plaintext => Connected::plaintext(&tcp, addr.into(), socket)?,
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
            handshake(&mut conn, &mut tcp, addr)?;
            let peer = peer_cert(conn.peer_certificates(), addr.into());
            Connected {
                stream: Box::new(StreamOwned::new(
                    conn,
                    tcp.try_clone().map_err(ServiceError::io("socket"))?,
                )),
                peer,
                socket,
            }
        }
    };
    connected.peer.check_role(&[expect], false)?;
    set_timeouts(&tcp, t.io)?;
    Ok(connected)
}

/// Completes the server side of the TLS handshake on an accepted socket
/// within `handshake`, then sets the `io` timeout. The caller checks the
/// peer's role ([`Connected::check_role`]).
pub fn accept(
    mut tcp: TcpStream,
    security: &Security,
    handshake_limit: Duration,
    io: Duration,
) -> Result<Connected, ServiceError> {
    let addr = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    set_timeouts(&tcp, handshake_limit)?;
    let socket = tcp.try_clone().ok();
    let connected = match security {
        Security::Plaintext => Connected::plaintext(&tcp, addr, socket)?,
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
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err("TLS"))?
                .with_client_cert_verifier(verifier)
                .with_single_cert(id.certs.clone(), id.key.clone_key())
                .map_err(tls_err("server certificate"))?;
            // No session resumption: every connection authenticates afresh.
            config.send_tls13_tickets = 0;
            let mut conn = ServerConnection::new(Arc::new(config)).map_err(tls_err("TLS"))?;
            handshake(&mut conn, &mut tcp, &addr)?;
            let peer = peer_cert(conn.peer_certificates(), addr);
            Connected {
                stream: Box::new(StreamOwned::new(
                    conn,
                    tcp.try_clone().map_err(ServiceError::io("socket"))?,
                )),
                peer,
                socket,
            }
        }
    };
    set_timeouts(&tcp, io)?;
    Ok(connected)
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

/// Host names (or IP addresses) each role's certificate is valid for.
#[derive(Debug, Clone, Default)]
pub struct RoleNames {
    /// The dealer's names.
    pub dealer: Vec<String>,
    /// The provider's names.
    pub provider: Vec<String>,
    /// The client's names (a client certificate is checked by CA and role, not by name).
    pub client: Vec<String>,
}

impl RoleNames {
    /// The same names for every role (one machine, or tests).
    pub fn all(names: &[String]) -> Self {
        Self {
            dealer: names.to_vec(),
            provider: names.to_vec(),
            client: names.to_vec(),
        }
    }

    /// The names of `role`.
    pub fn of(&self, role: Role) -> &[String] {
        match role {
            Role::Dealer => &self.dealer,
            Role::Provider => &self.provider,
            Role::Client => &self.client,
        }
    }
}

/// Makes a CA and one certificate per role: each is valid for its role's
/// names and carries its role (`urn:cryptmed:role:ROLE` and the common name
/// `cryptmed ROLE`). `expired` makes certificates whose validity ended in
/// the past (for tests).
pub fn generate_certs(names: &RoleNames, expired: bool) -> Result<CertSet, ServiceError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
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
    for role in Role::ALL {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(names.of(role).to_vec()).map_err(gen_err)?;
        params.subject_alt_names.push(SanType::URI(
            format!("{ROLE_URI}{role}").try_into().map_err(gen_err)?,
        ));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("cryptmed {role}"));
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
        roles.push((role.name().to_string(), cert.pem(), key.serialize_pem()));
    }
    Ok(CertSet {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_carry_their_role_and_names() {
        let names = RoleNames {
            dealer: vec!["dealer.example".into()],
            provider: vec!["provider.example".into(), "10.0.0.5".into()],
            client: vec![],
        };
        let set = generate_certs(&names, false).unwrap();
        for role in Role::ALL {
            let (pem, _) = set.role(role.name()).unwrap();
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            assert_eq!(Role::of_certificate(&der), Some(role));
        }
        let ca = CertificateDer::from_pem_slice(set.ca_pem.as_bytes()).unwrap();
        assert_eq!(Role::of_certificate(&ca), None);
        let (pem, _) = set.role("provider").unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let text = String::from_utf8_lossy(&der);
        assert!(text.contains("provider.example") && !text.contains("dealer.example"));
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let set = generate_certs(&RoleNames::all(&["localhost".into()]), false).unwrap();
        let other = generate_certs(&RoleNames::all(&["localhost".into()]), false).unwrap();
        for role in ["dealer", "provider", "client"] {
            let (cert, key) = set.role(role).unwrap();
            Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
            // Another role's key of the same set, and the same role's key of another set.
            let wrong = [
                set.role(if role == "client" {
                    "provider"
                } else {
                    "client"
                })
                .unwrap()
                .1,
                other.role(role).unwrap().1,
            ];
            for key in wrong {
                let e = Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap_err();
                assert!(
                    matches!(&e, ServiceError::Config(m) if m.contains("the private key does not match the certificate")),
                    "{role}: {e}"
                );
            }
        }
        // From files: the message names both.
        let dir = std::env::temp_dir().join(format!("cryptmed-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, p) = (dir.join("provider.pem"), dir.join("client.key"));
        std::fs::write(&c, set.role("provider").unwrap().0).unwrap();
        std::fs::write(&p, set.role("client").unwrap().1).unwrap();
        let e = Identity::from_files(&c, &p).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            e.contains("provider.pem with")
                && e.contains("client.key: the private key does not match"),
            "{e}"
        );
    }
}
