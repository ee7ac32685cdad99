//! Certificates made at test time, one fixture per TLS failure the module must tell apart.
//!
//! `TestPki::generate` writes every certificate as PEM into a directory (so the module can be
//! pointed at `ca.pem` through its configuration) and keeps a ready rustls `ServerConfig` for
//! each kind of server certificate, so a test only picks the failure it wants:
//!
//! ```ignore
//! let pki = TestPki::generate(dir.path());
//! let server = TestServer::start(pki.server_config(ServerCert::WrongHost), handler);
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Common name of the CA written to `ca.pem`, the one tests trust.
pub const TRUSTED_CA_NAME: &str = "pam_ticket Test Root CA";
/// Common name of the CA written to `untrusted_ca.pem`, never part of `ca.pem`.
pub const UNTRUSTED_CA_NAME: &str = "pam_ticket Untrusted CA";
/// The only name in the `WrongHost` certificate.
pub const WRONG_HOST_NAME: &str = "wrong-host.example.test";

/// The common name of the client certificates (`ClientCert::Good` and `OtherCa`).
pub const CLIENT_COMMON_NAME: &str = "pam-ticket-gateway.example.test";

/// Which client certificate (and key) the module is given for mutual TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientCert {
    /// Issued by the trusted CA (the one a `server_config_requiring_client_certificates`
    /// server accepts), with its own key.
    Good,
    /// The same subject, issued by the untrusted CA: a server that requires client
    /// certificates refuses it.
    OtherCa,
    /// The `Good` certificate with a key of its own that does not belong to it.
    MismatchedKey,
}

/// A client certificate and a key file for the module: PEM, the key root-only (0600).
#[derive(Clone, Debug)]
pub struct ClientFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The certificate, DER (what the server sees).
    pub cert_der: Vec<u8>,
    /// The key file's PEM text (to look for in logs).
    pub key_pem: String,
}

/// Which certificate a test server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerCert {
    /// `localhost` + `127.0.0.1`, signed by the trusted CA: verification succeeds.
    Good,
    /// Only `wrong-host.example.test`, signed by the trusted CA: name mismatch.
    WrongHost,
    /// `localhost` + `127.0.0.1`, signed by a CA that is not in `ca.pem`.
    UntrustedCa,
    /// `localhost` + `127.0.0.1`, signed by the trusted CA, expired in 2001.
    Expired,
}

impl ServerCert {
    pub const ALL: [ServerCert; 4] = [
        ServerCert::Good,
        ServerCert::WrongHost,
        ServerCert::UntrustedCa,
        ServerCert::Expired,
    ];

    fn file_stem(self) -> &'static str {
        match self {
            ServerCert::Good => "good",
            ServerCert::WrongHost => "wrong_host",
            ServerCert::UntrustedCa => "untrusted_ca_leaf",
            ServerCert::Expired => "expired",
        }
    }
}

/// A certificate with its private key, in every encoding a test may need.
#[derive(Clone, Debug)]
pub struct CertKey {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    /// PKCS#8 DER of the private key.
    pub key_der: Vec<u8>,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// Where `cert_pem` was written.
    pub cert_path: PathBuf,
    /// Where `key_pem` was written.
    pub key_path: PathBuf,
}

/// Every certificate of one test run, plus a `ServerConfig` per `ServerCert`.
pub struct TestPki {
    dir: PathBuf,
    pub ca: CertKey,
    pub untrusted_ca: CertKey,
    pub good: CertKey,
    pub wrong_host: CertKey,
    pub untrusted_leaf: CertKey,
    pub expired: CertKey,
    /// Client certificates, by [`ClientCert`].
    pub clients: Vec<(ClientCert, ClientFiles)>,
    configs: Vec<(ServerCert, Arc<rustls::ServerConfig>)>,
}

impl TestPki {
    /// Generates two CAs and four leaves (ECDSA P-256, so this takes milliseconds) and writes
    /// them into `dir`: `ca.pem`, `ca-key.pem`, `untrusted_ca.pem`, `untrusted_ca-key.pem`,
    /// and `<leaf>.pem` / `<leaf>-key.pem` for each `ServerCert`.
    pub fn generate(dir: &Path) -> TestPki {
        fs::create_dir_all(dir).expect("create the PKI directory");

        let (ca, ca_issuer) = make_ca(dir, "ca", TRUSTED_CA_NAME);
        let (untrusted_ca, untrusted_issuer) = make_ca(dir, "untrusted_ca", UNTRUSTED_CA_NAME);

        let local_names = ["localhost", "127.0.0.1"];
        let good = make_leaf(dir, ServerCert::Good, &local_names, &ca_issuer, false);
        let wrong_host = make_leaf(
            dir,
            ServerCert::WrongHost,
            &[WRONG_HOST_NAME],
            &ca_issuer,
            false,
        );
        let untrusted_leaf = make_leaf(
            dir,
            ServerCert::UntrustedCa,
            &local_names,
            &untrusted_issuer,
            false,
        );
        let expired = make_leaf(dir, ServerCert::Expired, &local_names, &ca_issuer, true);
        let good_client = make_client(dir, "client", &ca_issuer);
        let other_ca_client = make_client(dir, "client_other_ca", &untrusted_issuer);
        let stray_key = KeyPair::generate().expect("generate a stray key");
        let stray_key_path = dir.join("client_stray-key.pem");
        write_key_file(&stray_key_path, &stray_key.serialize_pem());
        let mismatched = ClientFiles {
            key_path: stray_key_path,
            key_pem: stray_key.serialize_pem(),
            ..good_client.clone()
        };
        let clients = vec![
            (ClientCert::Good, good_client),
            (ClientCert::OtherCa, other_ca_client),
            (ClientCert::MismatchedKey, mismatched),
        ];

        let mut pki = TestPki {
            dir: dir.to_path_buf(),
            ca,
            untrusted_ca,
            good,
            wrong_host,
            untrusted_leaf,
            expired,
            clients,
            configs: Vec::new(),
        };
        pki.configs = ServerCert::ALL
            .iter()
            .map(|&kind| (kind, pki.build_server_config(kind)))
            .collect();
        pki
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`: the only CA the module should trust in tests.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.ca.cert_path.clone()
    }

    /// `untrusted_ca.pem`: the CA behind `ServerCert::UntrustedCa`.
    pub fn untrusted_ca_pem_path(&self) -> PathBuf {
        self.untrusted_ca.cert_path.clone()
    }

    /// The leaf (with key) a server of this kind presents.
    pub fn leaf(&self, kind: ServerCert) -> &CertKey {
        match kind {
            ServerCert::Good => &self.good,
            ServerCert::WrongHost => &self.wrong_host,
            ServerCert::UntrustedCa => &self.untrusted_leaf,
            ServerCert::Expired => &self.expired,
        }
    }

    /// The CA that signed this kind of leaf.
    pub fn issuer_of(&self, kind: ServerCert) -> &CertKey {
        match kind {
            ServerCert::UntrustedCa => &self.untrusted_ca,
            _ => &self.ca,
        }
    }

    pub fn server_config(&self, kind: ServerCert) -> Arc<rustls::ServerConfig> {
        self.configs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, config)| Arc::clone(config))
            .expect("a config is built for every ServerCert")
    }

    /// The files of a client certificate for the module.
    pub fn client(&self, kind: ClientCert) -> &ClientFiles {
        self.clients
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, files)| files)
            .expect("files are made for every ClientCert")
    }

    /// A server config like `server_config(kind)` that requires a client certificate
    /// issued by the trusted CA (`ca.pem`), verified by rustls' `WebPkiClientVerifier`: a
    /// client without one, or with one of another CA, fails the handshake with an alert.
    pub fn server_config_requiring_client_certificates(
        &self,
        kind: ServerCert,
    ) -> Arc<rustls::ServerConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.cert_der.clone()))
            .expect("the generated CA is a valid trust anchor");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(provider()),
        )
        .build()
        .expect("a client verifier over the test CA");
        let leaf = self.leaf(kind);
        let chain = vec![
            CertificateDer::from(leaf.cert_der.clone()),
            CertificateDer::from(self.issuer_of(kind).cert_der.clone()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("the generated leaf and key match");
        Arc::new(config)
    }

    /// A client config trusting only `ca.pem`, for tests that talk TLS to a server directly.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca.cert_der.clone()))
            .expect("the generated CA is a valid trust anchor");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    fn build_server_config(&self, kind: ServerCert) -> Arc<rustls::ServerConfig> {
        let leaf = self.leaf(kind);
        // Send the issuing CA too, as real servers often do; a client must still reject it
        // when that CA is not one of its trust anchors.
        let chain = vec![
            CertificateDer::from(leaf.cert_der.clone()),
            CertificateDer::from(self.issuer_of(kind).cert_der.clone()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the generated leaf and key match");
        Arc::new(config)
    }
}

/// The ring provider, named explicitly so no test depends on a process-wide default.
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn make_ca(dir: &Path, stem: &str, common_name: &str) -> (CertKey, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("generate a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs is valid");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "pam_ticket tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("self-sign the CA");
    let cert_key = write_pair(dir, stem, cert.der().to_vec(), cert.pem(), &key);
    (cert_key, Issuer::new(params, key))
}

fn make_leaf(
    dir: &Path,
    kind: ServerCert,
    names: &[&str],
    issuer: &Issuer<'static, KeyPair>,
    expired: bool,
) -> CertKey {
    let key = KeyPair::generate().expect("generate a leaf key");
    // `CertificateParams::new` turns strings that parse as IP addresses into IP SANs, which
    // is what makes `https://127.0.0.1` verify; everything else becomes a DNS name.
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
    )
    .expect("valid subject alternative names");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).expect("sign the leaf");
    write_pair(dir, kind.file_stem(), cert.der().to_vec(), cert.pem(), &key)
}

/// A client certificate (`CLIENT_COMMON_NAME`, clientAuth) issued by `issuer`, written as
/// `<stem>.pem` and a root-only `<stem>-key.pem`.
fn make_client(dir: &Path, stem: &str, issuer: &Issuer<'static, KeyPair>) -> ClientFiles {
    let key = KeyPair::generate().expect("generate a client key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs is valid");
    params
        .distinguished_name
        .push(DnType::CommonName, CLIENT_COMMON_NAME);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "pam_ticket tests");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, issuer)
        .expect("sign the client certificate");
    let cert_path = dir.join(format!("{stem}.pem"));
    fs::write(&cert_path, cert.pem()).expect("write a client certificate");
    let key_path = dir.join(format!("{stem}-key.pem"));
    write_key_file(&key_path, &key.serialize_pem());
    ClientFiles {
        cert_path,
        key_path,
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
    }
}

/// Writes a key file the module accepts: mode 0600, owned by whoever runs the tests.
fn write_key_file(path: &Path, pem: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, pem).expect("write a client key");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

fn write_pair(
    dir: &Path,
    stem: &str,
    cert_der: Vec<u8>,
    cert_pem: String,
    key: &KeyPair,
) -> CertKey {
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    let key_pem = key.serialize_pem();
    fs::write(&cert_path, &cert_pem).expect("write a certificate PEM");
    fs::write(&key_path, &key_pem).expect("write a private key PEM");
    CertKey {
        cert_der,
        cert_pem,
        key_der: key.serialize_der(),
        key_pem,
        cert_path,
        key_path,
    }
}
