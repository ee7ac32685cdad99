//! Just enough X.509 for the CA tool: a DER walker that finds a certificate's subject,
//! issuer and basicConstraints, and renders names for people. It never decides trust
//! (rustls/webpki does that); it only says what a certificate claims to be.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What the CA tool needs to know about one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The whole certificate, DER.
    pub der: Vec<u8>,
    /// The subject Name, DER (compared byte for byte against issuers).
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
    /// `CN=…, O=…` for messages.
    pub subject: String,
    pub issuer: String,
    /// basicConstraints cA=TRUE.
    pub is_ca: bool,
}

impl CertificateFacts {
    pub fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }
}

/// Why bytes are not a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not DER at all, or truncated.
    NotDer,
    /// A DER SEQUENCE whose first element is an INTEGER: the shape of a private key
    /// (PKCS#1, PKCS#8, SEC1) or a PKCS#12 key store, never of a certificate.
    LooksLikeKeyOrKeyStore,
    /// DER, but not shaped like a certificate.
    NotACertificate(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::NotDer => write!(f, "not a DER or PEM certificate"),
            ParseError::LooksLikeKeyOrKeyStore => write!(
                f,
                "this looks like a private key or a PKCS#12 key store, not a certificate"
            ),
            ParseError::NotACertificate(what) => write!(f, "not an X.509 certificate ({what})"),
        }
    }
}

/// One DER element.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    /// Tag, length and content together.
    whole: &'a [u8],
}

/// Reads one element off the front of `input`; `None` when it is not valid DER.
fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // Multi-byte tags never occur in the structures read here.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let mut length = 0usize;
        for &byte in &rest[..count] {
            length = (length << 8) | usize::from(byte);
        }
        rest = &rest[count..];
        length
    };
    if rest.len() < length {
        return None;
    }
    let header = input.len() - rest.len();
    Some((
        Tlv {
            tag,
            content: &rest[..length],
            whole: &input[..header + length],
        },
        &rest[length..],
    ))
}

/// The elements inside a constructed element's content.
fn children(content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (tlv, next) = read(rest)?;
        out.push(tlv);
        rest = next;
    }
    Some(out)
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const EXTENSIONS: u8 = 0xa3;
/// 2.5.29.19
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// Reads the facts of one DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertificateFacts, ParseError> {
    let (certificate, trailing) = read(der).ok_or(ParseError::NotDer)?;
    if certificate.tag != SEQUENCE || !trailing.is_empty() {
        return Err(ParseError::NotDer);
    }
    let parts = children(certificate.content).ok_or(ParseError::NotDer)?;
    let Some(first) = parts.first() else {
        return Err(ParseError::NotACertificate("empty"));
    };
    if first.tag == INTEGER {
        return Err(ParseError::LooksLikeKeyOrKeyStore);
    }
    if parts.len() != 3 || first.tag != SEQUENCE {
        return Err(ParseError::NotACertificate("no TBSCertificate"));
    }
    let tbs = children(first.content).ok_or(ParseError::NotDer)?;
    // An explicit [0] version comes first in v2/v3 certificates.
    let skip = usize::from(tbs.first().is_some_and(|tlv| tlv.tag == 0xa0));
    let field = |index: usize, tag: u8, what: &'static str| {
        tbs.get(skip + index)
            .filter(|tlv| tlv.tag == tag)
            .ok_or(ParseError::NotACertificate(what))
    };
    field(0, INTEGER, "no serial number")?;
    let issuer = field(2, SEQUENCE, "no issuer")?;
    field(3, SEQUENCE, "no validity")?;
    let subject = field(4, SEQUENCE, "no subject")?;
    field(5, SEQUENCE, "no public key")?;
    let is_ca = tbs
        .iter()
        .skip(skip + 6)
        .find(|tlv| tlv.tag == EXTENSIONS)
        .map(|extensions| basic_constraints_ca(extensions.content))
        .transpose()?
        .unwrap_or(false);
    Ok(CertificateFacts {
        der: der.to_vec(),
        subject_der: subject.whole.to_vec(),
        issuer_der: issuer.whole.to_vec(),
        subject: render_name(subject.content),
        issuer: render_name(issuer.content),
        is_ca,
    })
}

/// Whether the extensions carry basicConstraints with cA=TRUE.
fn basic_constraints_ca(explicit: &[u8]) -> Result<bool, ParseError> {
    let bad = ParseError::NotACertificate("unreadable extensions");
    let (list, _) = read(explicit).ok_or(bad.clone())?;
    for extension in children(list.content).ok_or(bad.clone())? {
        let parts = children(extension.content).ok_or(bad.clone())?;
        let Some(oid) = parts.first().filter(|tlv| tlv.tag == OID) else {
            return Err(bad);
        };
        if oid.content != BASIC_CONSTRAINTS {
            continue;
        }
        let Some(value) = parts.last().filter(|tlv| tlv.tag == OCTET_STRING) else {
            return Err(bad);
        };
        let (constraints, _) = read(value.content).ok_or(bad.clone())?;
        let fields = children(constraints.content).ok_or(bad.clone())?;
        // cA is a BOOLEAN DEFAULT FALSE: absent means not a CA.
        return Ok(fields.first().is_some_and(|tlv| {
            tlv.tag == BOOLEAN && tlv.content.first().is_some_and(|b| *b != 0)
        }));
    }
    Ok(false)
}

/// `CN=…, O=…` in the order the certificate lists them.
fn render_name(name: &[u8]) -> String {
    let mut parts = Vec::new();
    for set in children(name).unwrap_or_default() {
        for attribute in children(set.content).unwrap_or_default() {
            let fields = children(attribute.content).unwrap_or_default();
            let (Some(oid), Some(value)) = (fields.first(), fields.get(1)) else {
                continue;
            };
            let label = match oid.content {
                [0x55, 0x04, 0x03] => "CN".to_string(),
                [0x55, 0x04, 0x06] => "C".to_string(),
                [0x55, 0x04, 0x07] => "L".to_string(),
                [0x55, 0x04, 0x08] => "ST".to_string(),
                [0x55, 0x04, 0x0a] => "O".to_string(),
                [0x55, 0x04, 0x0b] => "OU".to_string(),
                [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".to_string(),
                [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => {
                    "emailAddress".to_string()
                }
                other => format!("OID({})", hex(other)),
            };
            // UTF8String, PrintableString, IA5String, T61String read as text; a BMPString
            // (UTF-16) is decoded too; anything else is shown as hex.
            let text = match value.tag {
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(value.content).into_owned(),
                0x1e => {
                    let units: Vec<u16> = value
                        .content
                        .chunks(2)
                        .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => format!("#{}", hex(value.content)),
            };
            parts.push(format!("{label}={}", crate::backend::sanitise(&text)));
        }
    }
    if parts.is_empty() {
        "(empty name)".to_string()
    } else {
        parts.join(", ")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// PEM text for one DER certificate, 64 characters a line.
pub fn to_pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_keys_are_not_certificates() {
        assert_eq!(parse_certificate(b"hello"), Err(ParseError::NotDer));
        // SEQUENCE { INTEGER 0, SEQUENCE {}, OCTET STRING {} }: the PKCS#8 shape.
        let key = [0x30, 0x07, 0x02, 0x01, 0x00, 0x30, 0x00, 0x04, 0x00];
        assert_eq!(
            parse_certificate(&key),
            Err(ParseError::LooksLikeKeyOrKeyStore)
        );
        assert_eq!(
            parse_certificate(&[0x30, 0x00]),
            Err(ParseError::NotACertificate("empty"))
        );
    }

    #[test]
    fn pem_lines_are_64_wide() {
        let pem = to_pem(&[0u8; 100]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64));
        assert_eq!(
            crate::trust::parse_pem_certificates(pem.as_bytes())
                .first()
                .map(|cert| cert.der().to_vec()),
            Some(vec![0u8; 100])
        );
    }
}
