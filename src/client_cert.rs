//! The client certificate the module presents for mutual TLS (ClientCertificateFile and
//! ClientKeyFile): both read once, when the configuration loads, through
//! [`crate::secure_file`] (the checks run on the opened file), and checked against each
//! other before anything is sent. The HTTPS client takes the identity as it was read and
//! never a path, like the CA bundle (see [`crate::trust`]).
//!
//! The certificate file gets the CA bundle's rules (a regular file nobody but root can
//! change; a link is followed). The key file gets the account file's: owned by root, mode
//! 0600 or stricter, never a symbolic link. An encrypted key is refused: the module has
//! nobody to ask for its passphrase at login, and a passphrase written beside it would
//! protect nothing.
//!
//! The key is a secret: the file's bytes are held in a buffer that is wiped on drop, and no
//! message ever quotes them. The DER key that ureq decodes from them (through
//! rustls-pki-types), and what rustls and ring keep for the handshakes, cannot be wiped
//! (README, "What cannot be wiped").

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use ureq::tls::{Certificate, ClientCert, PrivateKey};
use zeroize::Zeroizing;

use crate::secure_file::{self, Readers};
use crate::trust::parse_pem_certificates;

/// A client certificate chain and the private key that matches its first certificate,
/// ready for the TLS client. `Debug` shows the paths only.
#[derive(Clone)]
pub struct ClientIdentity {
    certificate_path: PathBuf,
    key_path: PathBuf,
    /// The end-entity certificate, DER (for `pam-ticket check`, which names it).
    certificate: Arc<Vec<u8>>,
    tls: ClientCert,
}

impl ClientIdentity {
    /// Where the certificate was read from (for messages only: it is never read again).
    pub fn certificate_path(&self) -> &Path {
        &self.certificate_path
    }

    /// Where the key was read from (for messages only).
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The certificate presented to servers, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// The chain and key as ureq takes them (shared, not copied).
    pub fn tls(&self) -> ClientCert {
        self.tls.clone()
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificate_path", &self.certificate_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Why a client certificate or key cannot be used. No variant holds any of the key's
/// text: messages name the file and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCertError {
    /// The certificate file failed the checks of [`crate::secure_file`] or could not be
    /// read.
    CertificateUnusable(String),
    /// The certificate file holds no PEM certificate.
    NoCertificate(PathBuf),
    /// The certificate file holds a private key, and others may read it.
    KeyInReadableCertificateFile(PathBuf),
    /// The key file failed the checks of [`crate::secure_file`] (owner, mode, a link) or
    /// could not be read.
    KeyUnusable(String),
    /// The key is encrypted with a passphrase.
    KeyEncrypted(PathBuf),
    /// The key file holds no unencrypted PEM private key.
    NoKey(PathBuf),
    /// The key file holds more than one private key.
    SeveralKeys(PathBuf),
    /// A PEM private key section that is not closed, or whose text does not decode.
    KeyNotPem(PathBuf),
    /// A key the TLS library cannot sign with (`why` is its word; never key material).
    KeyUnsupported { path: PathBuf, why: String },
    /// The first certificate cannot be parsed.
    BadCertificate { path: PathBuf, why: String },
    /// The key is not the one the certificate was issued for.
    KeyMismatch { certificate: PathBuf, key: PathBuf },
}

impl fmt::Display for ClientCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCertError::CertificateUnusable(problem) => {
                write!(f, "cannot use the client certificate: {problem}")
            }
            ClientCertError::NoCertificate(path) => write!(
                f,
                "ClientCertificateFile {} holds no PEM certificate",
                path.display()
            ),
            ClientCertError::KeyInReadableCertificateFile(path) => write!(
                f,
                "ClientCertificateFile {} holds a private key and others may read it: keep \
                 the key in ClientKeyFile (owned by root, mode 0600) and only certificates \
                 here",
                path.display()
            ),
            ClientCertError::KeyUnusable(problem) => {
                write!(f, "cannot use the client key: {problem}")
            }
            ClientCertError::KeyEncrypted(path) => write!(
                f,
                "ClientKeyFile {} is encrypted with a passphrase, which the module cannot \
                 be given at login: write it out unencrypted with `openssl pkey -in {} -out \
                 NEW.key` into a file owned by root with mode 0600, and name that file",
                path.display(),
                path.display()
            ),
            ClientCertError::NoKey(path) => write!(
                f,
                "ClientKeyFile {} holds no PEM private key (BEGIN PRIVATE KEY, BEGIN RSA \
                 PRIVATE KEY or BEGIN EC PRIVATE KEY)",
                path.display()
            ),
            ClientCertError::SeveralKeys(path) => write!(
                f,
                "ClientKeyFile {} holds more than one private key; keep only the one that \
                 belongs to ClientCertificateFile",
                path.display()
            ),
            ClientCertError::KeyNotPem(path) => write!(
                f,
                "ClientKeyFile {}: the private key's PEM text is damaged (not base64, or \
                 no END line)",
                path.display()
            ),
            ClientCertError::KeyUnsupported { path, why } => write!(
                f,
                "ClientKeyFile {} holds a key that cannot be used for TLS ({why}); use an \
                 RSA key of 2048 to 8192 bits, an ECDSA P-256 or P-384 key, or Ed25519",
                path.display()
            ),
            ClientCertError::BadCertificate { path, why } => write!(
                f,
                "ClientCertificateFile {}: the first certificate cannot be read ({why})",
                path.display()
            ),
            ClientCertError::KeyMismatch { certificate, key } => write!(
                f,
                "ClientKeyFile {} does not match the certificate in ClientCertificateFile \
                 {}: name the key the certificate was issued for",
                key.display(),
                certificate.display()
            ),
        }
    }
}

impl std::error::Error for ClientCertError {}

/// Reads the certificate chain at `certificate_path` and the key at `key_path`, once
/// each, after the file checks, and checks that the key belongs to the first certificate.
pub fn load(certificate_path: &Path, key_path: &Path) -> Result<ClientIdentity, ClientCertError> {
    let (certificate_bytes, metadata) =
        secure_file::read_with_metadata(certificate_path, Readers::Anyone, true)
            .map_err(ClientCertError::CertificateUnusable)?;
    // Wiped too: an administrator may have put the key into this file as well.
    let certificate_bytes = Zeroizing::new(certificate_bytes);
    if metadata.mode() & 0o077 != 0 && !find_keys(&certificate_bytes).is_empty() {
        return Err(ClientCertError::KeyInReadableCertificateFile(
            certificate_path.to_path_buf(),
        ));
    }
    let chain = parse_pem_certificates(&certificate_bytes);
    let Some(end_entity) = chain.first() else {
        return Err(ClientCertError::NoCertificate(
            certificate_path.to_path_buf(),
        ));
    };
    let end_entity = end_entity.der().to_vec();

    let key_bytes = Zeroizing::new(
        secure_file::read(key_path, Readers::OwnerOnly, false)
            .map_err(ClientCertError::KeyUnusable)?,
    );
    let format = one_key_format(&key_bytes, key_path)?;
    // ureq's copy of the key, the one the handshakes use; it cannot be wiped.
    let key = PrivateKey::from_pem(&key_bytes)
        .map_err(|_| ClientCertError::KeyNotPem(key_path.to_path_buf()))?;
    check_pair(&chain, format, key.der(), certificate_path, key_path)?;
    Ok(ClientIdentity {
        certificate_path: certificate_path.to_path_buf(),
        key_path: key_path.to_path_buf(),
        certificate: Arc::new(end_entity),
        tls: ClientCert::new_with_certs(&chain, key),
    })
}

/// The key must be one the TLS library can sign with, and its public half must be the
/// first certificate's: rustls would otherwise fail every handshake (and ureq panics on
/// it). The check borrows the wiped DER; nothing is copied.
fn check_pair(
    chain: &[Certificate<'static>],
    format: KeyFormat,
    key_der: &[u8],
    certificate_path: &Path,
    key_path: &Path,
) -> Result<(), ClientCertError> {
    let borrowed = match format {
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(key_der)),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(key_der)),
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
    };
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&borrowed).map_err(|why| {
        ClientCertError::KeyUnsupported {
            path: key_path.to_path_buf(),
            why: crate::sanitise::sanitise(&why.to_string()),
        }
    })?;
    let certificates = chain
        .iter()
        .map(|certificate| CertificateDer::from(certificate.der().to_vec()))
        .collect();
    let pair = rustls::sign::CertifiedKey::new(certificates, signing_key);
    match pair.keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(ClientCertError::KeyMismatch {
                certificate: certificate_path.to_path_buf(),
                key: key_path.to_path_buf(),
            })
        }
        // Every key the ring provider loads knows its public half, so "unknown" does not
        // happen; were it to, the pair is refused rather than used unchecked.
        Err(rustls::Error::InconsistentKeys(_)) => Err(ClientCertError::KeyUnsupported {
            path: key_path.to_path_buf(),
            why: "its public key cannot be compared with the certificate's".to_string(),
        }),
        Err(why) => Err(ClientCertError::BadCertificate {
            path: certificate_path.to_path_buf(),
            why: crate::sanitise::sanitise(&why.to_string()),
        }),
    }
}

/// How a PEM private key is encoded, by its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyFormat {
    /// `PRIVATE KEY`
    Pkcs8,
    /// `RSA PRIVATE KEY`
    Pkcs1,
    /// `EC PRIVATE KEY`
    Sec1,
}

/// The PEM labels of the private keys the module takes.
const KEY_LABELS: [(&str, KeyFormat); 3] = [
    ("PRIVATE KEY", KeyFormat::Pkcs8),
    ("RSA PRIVATE KEY", KeyFormat::Pkcs1),
    ("EC PRIVATE KEY", KeyFormat::Sec1),
];

/// One PEM section of a private key, as its BEGIN and END lines and headers tell.
#[derive(Debug)]
enum KeySection {
    Plain(KeyFormat),
    /// `ENCRYPTED PRIVATE KEY` (PKCS#8), or OpenSSL's traditional `Proc-Type: 4,ENCRYPTED`.
    Encrypted,
    /// A BEGIN line without its END line.
    Unterminated,
}

/// Every private key section in `pem`, by its BEGIN and END lines; other sections (a
/// certificate, OpenSSL's `EC PARAMETERS`) are skipped. Only labels and headers are looked
/// at: the base64 text is left to the decoder.
fn find_keys(pem: &[u8]) -> Vec<KeySection> {
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some(start) = find(&pem[offset..], b"-----BEGIN ") {
        let label_start = offset + start + b"-----BEGIN ".len();
        let Some(label_length) = find(&pem[label_start..], b"-----") else {
            break;
        };
        let label = &pem[label_start..label_start + label_length];
        let body_start = label_start + label_length + b"-----".len();
        let format = KEY_LABELS
            .iter()
            .find(|(name, _)| name.as_bytes() == label)
            .map(|(_, format)| *format);
        let is_key = format.is_some() || label == b"ENCRYPTED PRIVATE KEY";
        let end_line = [b"-----END ", label, b"-----"].concat();
        let Some(body_length) = find(&pem[body_start..], &end_line) else {
            if is_key {
                found.push(KeySection::Unterminated);
            }
            break;
        };
        let body = &pem[body_start..body_start + body_length];
        offset = body_start + body_length + end_line.len();
        match format {
            Some(_) if find(body, b"Proc-Type:").is_some() => found.push(KeySection::Encrypted),
            Some(format) => found.push(KeySection::Plain(format)),
            None if is_key => found.push(KeySection::Encrypted),
            None => {}
        }
    }
    found
}

/// The format of the one unencrypted private key in `pem`, or what is wrong.
fn one_key_format(pem: &[u8], path: &Path) -> Result<KeyFormat, ClientCertError> {
    let mut sections = find_keys(pem).into_iter();
    match (sections.next(), sections.next()) {
        (None, _) => Err(ClientCertError::NoKey(path.to_path_buf())),
        (Some(_), Some(_)) => Err(ClientCertError::SeveralKeys(path.to_path_buf())),
        (Some(KeySection::Encrypted), None) => {
            Err(ClientCertError::KeyEncrypted(path.to_path_buf()))
        }
        (Some(KeySection::Unterminated), None) => {
            Err(ClientCertError::KeyNotPem(path.to_path_buf()))
        }
        (Some(KeySection::Plain(format)), None) => Ok(format),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "pam_ticket_client_cert_{label}_{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    fn write(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).expect("write");
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// One file holding the certificate and its key serves as both, when only root may
    /// read it; a key in a certificate file others may read is refused.
    #[test]
    fn a_key_may_share_the_certificate_file_only_when_nobody_else_can_read_it() {
        let dir = temp_dir("combined");
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = rcgen::CertificateParams::new(vec!["gateway.example".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let combined = dir.join("gateway.pem");
        let text = format!("{}{}", certificate.pem(), key.serialize_pem());
        write(&combined, &text, 0o600);
        let identity = load(&combined, &combined).expect("a root-only combined file");
        assert_eq!(identity.certificate_der(), certificate.der().as_ref());
        let shown = format!("{identity:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        fs::set_permissions(&combined, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            load(&combined, &combined).map(|_| ()),
            Err(ClientCertError::KeyInReadableCertificateFile(
                combined.clone()
            ))
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_one_key_section_is_found_by_its_label() {
        let pem = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAEC\nAwQF\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(one_key_format(pem, Path::new("/k")), Ok(KeyFormat::Sec1));
        let pkcs8 = b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n";
        assert_eq!(one_key_format(pkcs8, Path::new("/k")), Ok(KeyFormat::Pkcs8));
    }

    #[test]
    fn encrypted_missing_several_and_damaged_keys_are_named() {
        let path = Path::new("/etc/pam_ticket/client.key");
        let cases: [(&[u8], ClientCertError); 5] = [
            (
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAEC\n-----END ENCRYPTED PRIVATE KEY-----\n",
                ClientCertError::KeyEncrypted(path.to_path_buf()),
            ),
            (
                b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n",
                ClientCertError::KeyEncrypted(path.to_path_buf()),
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n",
                ClientCertError::NoKey(path.to_path_buf()),
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n\
                  -----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n",
                ClientCertError::SeveralKeys(path.to_path_buf()),
            ),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAEC\n",
                ClientCertError::KeyNotPem(path.to_path_buf()),
            ),
        ];
        for (pem, expected) in cases {
            let refused = one_key_format(pem, path).expect_err("refused");
            assert_eq!(refused, expected, "{}", String::from_utf8_lossy(pem));
            assert!(refused.to_string().contains(&path.display().to_string()));
        }
    }
}
