//! `pam-ticket ca check URL [--config PATH]`: connects with the module's trust settings and
//! says whether the server's chain verifies, and if not, which issuer is missing.

use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::ca::{Parsed, parse_args};
use super::x509::{CertificateFacts, parse_certificate};
use crate::config::DEFAULT_CONFIG_PATH;
use crate::trust::SYSTEM_CA_BUNDLES;

const CHECK_HELP: &str = "usage: pam-ticket ca check URL [--config PATH]

Connects to URL (https://host[:port]) the way the module does, trusting CAFile from the
configuration (default /etc/security/pam_ticket.conf, when it exists and sets one) or
else the system bundle, and says whether the server's certificate chain verifies. When
it does not, names the issuer that no trusted CA vouches for.
Exit status: 0 verifies, 1 does not verify, 2 usage error or no TLS answer at all.";

pub(super) fn check(args: &[String]) -> i32 {
    let (url, config) = match parse_args(args, "--config") {
        Parsed::Help => {
            println!("{CHECK_HELP}");
            return 0;
        }
        Parsed::Bad(problem) => {
            eprintln!("pam-ticket ca check: {problem}\n\n{CHECK_HELP}");
            return 2;
        }
        Parsed::Run { positional, option } => (positional, option),
    };
    let url = match crate::config::parse_https_url(&url) {
        Ok(url) => url,
        Err(problem) => {
            eprintln!("pam-ticket ca check: {problem}");
            return 2;
        }
    };
    let bundle = match trust_bundle(config.as_deref()) {
        Ok(bundle) => bundle,
        Err(problem) => {
            eprintln!("pam-ticket ca check: {problem}");
            return 2;
        }
    };
    println!("Trusting: {}", bundle.display());
    match check_chain(&url.host, url.port, &bundle, Duration::from_secs(10)) {
        Ok(verdict) => {
            print!("{}", verdict.report);
            if verdict.verified { 0 } else { 1 }
        }
        Err(problem) => {
            eprintln!("pam-ticket ca check: {problem}");
            2
        }
    }
}

/// The bundle the module would trust: CAFile from the configuration, else the system's.
///
/// The configuration is loaded exactly as the module loads it, so the answer is the
/// module's. During set-up it may not load yet (no account file, say): then CAFile is
/// taken as written, with a warning that a login would fail on the configuration first.
fn trust_bundle(config: Option<&str>) -> Result<PathBuf, String> {
    let path = match config {
        Some(path) => Some(PathBuf::from(path)),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|path| path.is_file()),
    };
    if let Some(path) = path {
        let arguments = crate::config::ModuleArguments {
            config_path: Some(path.clone()),
            ..crate::config::ModuleArguments::default()
        };
        match crate::config::load(&arguments) {
            Ok(loaded) => {
                return loaded
                    .ca_bundle
                    .map(|bundle| bundle.path().to_path_buf())
                    .ok_or_else(|| {
                        format!(
                            "no CAFile set and no system bundle ({})",
                            SYSTEM_CA_BUNDLES.join(", ")
                        )
                    });
            }
            Err(problem) => {
                eprintln!(
                    "warning: the configuration does not load, so a login would fail before TLS: {problem}"
                );
                let text = fs::read_to_string(&path)
                    .map_err(|io_error| format!("cannot read {}: {io_error}", path.display()))?;
                let entries =
                    crate::config::parse_entries(&text, &path).map_err(|e| e.to_string())?;
                if let Some(entry) = entries.iter().find(|entry| entry.key == "CAFile") {
                    return Ok(PathBuf::from(entry.value.trim()));
                }
            }
        }
    }
    SYSTEM_CA_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "no CAFile set and no system bundle ({})",
                SYSTEM_CA_BUNDLES.join(", ")
            )
        })
}

/// What `ca check` found.
pub struct Verdict {
    pub verified: bool,
    pub report: String,
}

/// Connects, runs the TLS handshake with webpki verification against `bundle`, and
/// explains the result.
pub fn check_chain(
    host: &str,
    port: u16,
    bundle: &Path,
    timeout: Duration,
) -> Result<Verdict, String> {
    let pem = fs::read(bundle)
        .map_err(|io_error| format!("cannot read {}: {io_error}", bundle.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let mut trusted = Vec::new();
    for certificate in crate::trust::parse_pem_certificates(&pem) {
        if let Ok(facts) = parse_certificate(certificate.der()) {
            trusted.push(facts);
        }
        // A certificate webpki cannot use as an anchor is skipped, as the module does.
        let _ = roots.add(CertificateDer::from(certificate.der().to_vec()));
    }
    if roots.is_empty() {
        return Err(format!(
            "{} holds no usable CA certificate",
            bundle.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|problem| format!("cannot build the verifier: {problem}"))?;
    let recorder = Arc::new(Recorder {
        inner,
        chain: Mutex::new(Vec::new()),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|problem| problem.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host} is not a valid host name"))?;
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|io_error| format!("cannot resolve {host}: {io_error}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut socket = TcpStream::connect_timeout(&address, timeout)
        .map_err(|io_error| format!("cannot connect to {host}:{port}: {io_error}"))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    socket
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|problem| problem.to_string())?;
    let mut outcome = Ok(());
    while connection.is_handshaking() {
        if let Err(io_error) = connection.complete_io(&mut socket) {
            outcome = Err(io_error);
            break;
        }
    }
    let chain: Vec<CertificateFacts> = recorder
        .chain
        .lock()
        .map(|chain| chain.clone())
        .unwrap_or_default()
        .iter()
        .filter_map(|der| parse_certificate(der).ok())
        .collect();
    let mut report = String::new();
    if let Some(leaf) = chain.first() {
        report.push_str(&format!(
            "Server certificate: {}\n  issued by {}\n",
            leaf.subject, leaf.issuer
        ));
        for extra in &chain[1..] {
            report.push_str(&format!(
                "Also sent: {}\n  issued by {}\n",
                extra.subject, extra.issuer
            ));
        }
    }
    match outcome {
        Ok(()) => {
            report.push_str(&format!(
                "OK: the chain of {host}:{port} verifies against {}\n",
                bundle.display()
            ));
            Ok(Verdict {
                verified: true,
                report,
            })
        }
        Err(io_error) => {
            let tls_error = io_error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned();
            let Some(rustls::Error::InvalidCertificate(reason)) = tls_error else {
                if chain.is_empty() {
                    return Err(format!("no TLS answer from {host}:{port}: {io_error}"));
                }
                report.push_str(&format!("NOT VERIFIED: {io_error}\n"));
                return Ok(Verdict {
                    verified: false,
                    report,
                });
            };
            report.push_str(&format!("NOT VERIFIED: {reason:?}\n"));
            if let Some(missing) = missing_issuer(&chain, &trusted) {
                // The system bundle is rebuilt by the trust store tool: add the CA there,
                // not by appending.
                let add = if SYSTEM_CA_BUNDLES
                    .iter()
                    .any(|system| Path::new(system) == bundle)
                {
                    "pam-ticket ca add CA-CERT".to_string()
                } else {
                    format!("pam-ticket ca add CA-CERT --bundle {}", bundle.display())
                };
                report.push_str(&format!(
                    "Missing issuer: {missing}\n  No CA in {} vouches for it. Get that CA's certificate from the server's administrators and add it with:\n  {add}\n",
                    bundle.display()
                ));
            }
            Ok(Verdict {
                verified: false,
                report,
            })
        }
    }
}

/// Walks up from the leaf through the certificates the server sent; the first issuer that
/// is neither trusted nor sent (or a sent self-signed root that is not trusted) is missing.
/// `None` when the chain reaches a trusted CA (then the failure is something else: the
/// name, the dates, the key usage).
fn missing_issuer(chain: &[CertificateFacts], trusted: &[CertificateFacts]) -> Option<String> {
    let mut current = chain.first()?;
    for _ in 0..chain.len() + 1 {
        if trusted
            .iter()
            .any(|ca| ca.subject_der == current.issuer_der)
        {
            return None;
        }
        if current.is_self_issued() {
            return Some(format!(
                "{} (a self-signed root the server sent, not trusted here)",
                current.subject
            ));
        }
        match chain
            .iter()
            .find(|next| next.subject_der == current.issuer_der && next.der != current.der)
        {
            Some(next) => current = next,
            None => return Some(current.issuer.clone()),
        }
    }
    None
}

/// Delegates to webpki and keeps the chain the server presented, so that a failure can be
/// explained by name.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    chain: Mutex<Vec<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            chain.clear();
            chain.push(end_entity.as_ref().to_vec());
            chain.extend(intermediates.iter().map(|der| der.as_ref().to_vec()));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
