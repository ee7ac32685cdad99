//! The CA bundle the module trusts: found (CAFile, or else the first system bundle that
//! exists), read once through [`crate::secure_file`] (the checks run on the opened file),
//! and parsed into trust roots. The HTTPS client takes those roots as they are and never a
//! path, so the certificates that passed the checks are the ones trusted: a bundle swapped
//! after the check is never read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem};

use crate::secure_file::{self, Readers};

/// The system CA bundles tried in order when CAFile is not set.
pub const SYSTEM_CA_BUNDLES: [&str; 3] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
];

/// The first system bundle that exists, when CAFile does not name one.
pub fn system_bundle() -> Option<PathBuf> {
    SYSTEM_CA_BUNDLES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// A CA bundle that passed the file checks, with the certificates read from it in that
/// one read. Never empty.
#[derive(Clone, Debug)]
pub struct CaBundle {
    path: PathBuf,
    roots: Arc<Vec<Certificate<'static>>>,
}

impl CaBundle {
    /// Where the bundle was read from (for messages only: it is never read again).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trusted certificates, shared without copying.
    pub fn roots(&self) -> Arc<Vec<Certificate<'static>>> {
        Arc::clone(&self.roots)
    }
}

/// Why a CA bundle cannot be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustError {
    /// The file failed the checks of [`crate::secure_file`] or could not be read.
    Unusable(String),
    /// The file holds no PEM certificate (and is not DER either).
    NoCertificate(PathBuf),
    /// The file is one DER element, as a `.cer` exported from Windows is, but not a
    /// certificate a TLS client can trust (`why` is the parser's word).
    BadDerCertificate { path: PathBuf, why: String },
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustError::Unusable(problem) => write!(f, "cannot use the CA bundle: {problem}"),
            TrustError::NoCertificate(path) => {
                write!(f, "CA bundle {} holds no PEM certificate", path.display())
            }
            TrustError::BadDerCertificate { path, why } => write!(
                f,
                "CA bundle {} is DER but not a certificate that can be trusted ({why}); \
                 if it is a certificate, convert it to PEM with `openssl x509 -inform DER \
                 -in {} -out CA.pem` and name CA.pem",
                path.display(),
                path.display()
            ),
        }
    }
}

impl std::error::Error for TrustError {}

/// Reads the bundle at `path` once, after checking the opened file: a regular file that
/// nobody but root can change (whoever can add a CA to it can impersonate the ticketing
/// system). A link is followed, because system bundles are links on RHEL; the checks then
/// apply to the file it points at.
///
/// A PEM bundle gives every certificate in it. A file that is one DER element (a `.cer`
/// exported from Windows) is read as one DER certificate, from the same bytes: it must
/// parse as a trust anchor, the way the TLS client will use it.
pub fn load(path: &Path) -> Result<CaBundle, TrustError> {
    let bytes = secure_file::read(path, Readers::Anyone, true).map_err(TrustError::Unusable)?;
    let mut roots = parse_pem_certificates(&bytes);
    if roots.is_empty() && is_one_der_element(&bytes) {
        let certificate = Certificate::from_der(&bytes).to_owned();
        let mut store = rustls::RootCertStore::empty();
        store
            .add(rustls::pki_types::CertificateDer::from(certificate.der()))
            .map_err(|why| TrustError::BadDerCertificate {
                path: path.to_path_buf(),
                why: why.to_string(),
            })?;
        roots.push(certificate);
    }
    if roots.is_empty() {
        return Err(TrustError::NoCertificate(path.to_path_buf()));
    }
    Ok(CaBundle {
        path: path.to_path_buf(),
        roots: Arc::new(roots),
    })
}

/// Whether `bytes` are exactly one DER SEQUENCE (tag 0x30, definite length), the outer
/// shape of a certificate: no PEM text is, since a PEM file starts with `-----BEGIN`.
fn is_one_der_element(bytes: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = bytes else {
        return false;
    };
    let (length, header) = if *first < 0x80 {
        (usize::from(*first), 2)
    } else {
        let count = usize::from(*first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return false;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, 2 + count)
    };
    header.checked_add(length) == Some(bytes.len())
}

/// Parses every certificate in a PEM bundle; other PEM items are skipped.
pub fn parse_pem_certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(certificate)) => Some(certificate),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_trust_{label}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn a_bundle_others_can_change_or_without_certificates_is_refused() {
        let dir = temp_dir("refused");
        let path = dir.join("bundle.pem");
        fs::write(&path, "not a certificate\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(
            load(&path).err(),
            Some(TrustError::NoCertificate(path.clone()))
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).expect("chmod");
        match load(&path) {
            Err(TrustError::Unusable(problem)) => {
                assert!(problem.contains("mode is 0664"), "{problem}")
            }
            other => panic!("a group-writable bundle was accepted: {other:?}"),
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_one_whole_der_sequence_counts_as_der() {
        assert!(is_one_der_element(&[0x30, 0x03, 1, 2, 3]));
        assert!(is_one_der_element(
            &[&[0x30, 0x81, 0x80][..], &[0; 0x80]].concat()
        ));
        assert!(!is_one_der_element(&[0x30, 0x03, 1, 2]), "truncated");
        assert!(
            !is_one_der_element(&[0x30, 0x03, 1, 2, 3, 4]),
            "trailing bytes"
        );
        assert!(!is_one_der_element(b"-----BEGIN CERTIFICATE-----\n"));
        assert!(!is_one_der_element(&[0x02, 0x01, 0x00]), "not a SEQUENCE");
    }

    #[test]
    fn a_der_sequence_that_is_no_certificate_says_how_to_convert() {
        let dir = temp_dir("der");
        let path = dir.join("ca.cer");
        fs::write(&path, [0x30, 0x03, 0x02, 0x01, 0x00]).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let problem = load(&path).expect_err("not a certificate");
        assert!(
            matches!(problem, TrustError::BadDerCertificate { .. }),
            "{problem:?}"
        );
        assert!(
            problem.to_string().contains("openssl x509 -inform DER"),
            "{problem}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
