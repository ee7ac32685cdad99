//! The one HTTPS client every backend uses: explicit trust roots, an optional CONNECT
//! proxy from the configuration (never from the environment), one deadline for the whole
//! check, and errors that say what happened.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use zeroize::Zeroizing;

use crate::config::ProxyUrl;
use crate::secret::{SecretText, secret_text};

/// The largest response body the module reads; ticket lookups are a few hundred bytes.
const MAX_BODY_BYTES: u64 = 1 << 20;

/// The point in time by which the whole check must be over.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    end: Instant,
    /// When the check this deadline belongs to started: the key of its one retry.
    check: Instant,
}

impl Deadline {
    /// A new check that must be over within `budget`.
    pub fn after(budget: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            end: now + budget,
            check: now,
        }
    }

    /// The same check, ending `reserve` earlier (never before now): room kept back for a
    /// last request such as a log-off.
    pub fn keep_back(&self, reserve: Duration) -> Deadline {
        let earlier = self.end.checked_sub(reserve).unwrap_or(self.end);
        Deadline {
            end: earlier.max(Instant::now()),
            check: self.check,
        }
    }

    /// Time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.end
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }
}

/// Why a request got no HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    TimedOut,
    ConnectionRefused,
    ConnectionReset,
    NameResolution,
    /// The server's certificate did not verify against the trusted CAs.
    UntrustedCertificate(String),
    /// Another TLS failure (protocol version, handshake).
    Tls(String),
    Proxy(String),
    Protocol(String),
    Other(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::TimedOut => write!(f, "timed out"),
            TransportError::ConnectionRefused => write!(f, "connection refused"),
            TransportError::ConnectionReset => write!(f, "connection reset or closed"),
            TransportError::NameResolution => write!(f, "host name not found"),
            TransportError::UntrustedCertificate(detail) => {
                write!(f, "server certificate not trusted: {detail}")
            }
            TransportError::Tls(detail) => write!(f, "TLS failure: {detail}"),
            TransportError::Proxy(detail) => write!(f, "proxy failure: {detail}"),
            TransportError::Protocol(detail) => write!(f, "HTTP protocol error: {detail}"),
            TransportError::Other(detail) => write!(f, "{detail}"),
        }
    }
}

impl TransportError {
    /// Whether one retry may help (the spec allows one, for refused or reset connections).
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::ConnectionRefused | TransportError::ConnectionReset
        )
    }
}

/// Why the client could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupError {
    NoCaBundle,
    UnreadableCaFile(String),
    BadProxy(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NoCaBundle => write!(
                f,
                "no CA bundle: set CAFile, or install one at {}",
                crate::config::SYSTEM_CA_BUNDLES.join(" or ")
            ),
            SetupError::UnreadableCaFile(detail) => write!(f, "CA bundle unusable: {detail}"),
            SetupError::BadProxy(detail) => write!(f, "HTTPSProxy unusable: {detail}"),
        }
    }
}

/// The HTTP methods the APIs we talk to need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request body.
pub enum Body<'a> {
    Empty,
    Form(&'a [(&'a str, &'a str)]),
    Json(&'a serde_json::Value),
}

/// What came back.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
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

pub struct HttpClient {
    agent: ureq::Agent,
    /// The check (see `Deadline`) that has spent its one retry, whichever request of the
    /// check spent it: a log-on and a query each failing must not make two retries.
    retried_check: Cell<Option<Instant>>,
}

impl HttpClient {
    /// Builds the client: trusts exactly the certificates in `ca_file`, tunnels through
    /// `proxy` when given, follows no redirects, and reports HTTP errors as responses.
    pub fn new(ca_file: Option<&Path>, proxy: Option<&ProxyUrl>) -> Result<HttpClient, SetupError> {
        let ca_file = ca_file.ok_or(SetupError::NoCaBundle)?;
        let pem = std::fs::read(ca_file).map_err(|io_error| {
            SetupError::UnreadableCaFile(format!("{}: {io_error}", ca_file.display()))
        })?;
        let roots = parse_pem_certificates(&pem);
        if roots.is_empty() {
            return Err(SetupError::UnreadableCaFile(format!(
                "{} holds no PEM certificate",
                ca_file.display()
            )));
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let proxy = proxy
            .map(|proxy| {
                ureq::Proxy::new(&proxy.to_string())
                    .map_err(|error| SetupError::BadProxy(error.to_string()))
            })
            .transpose()?;
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // Set explicitly: ureq would otherwise read https_proxy from the environment,
            // which under su or sudo belongs to the very user being checked.
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("pam_ticket/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(HttpClient {
            agent,
            retried_check: Cell::new(None),
        })
    }

    /// Sends one request, finishing before `deadline` or failing with `TimedOut`.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        deadline: Deadline,
    ) -> Result<HttpResponse, TransportError> {
        let budget = deadline.remaining().ok_or(TransportError::TimedOut)?;
        let result = match method {
            Method::Get => {
                let mut request = self
                    .agent
                    .get(url)
                    .config()
                    .timeout_global(Some(budget))
                    .build();
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            Method::Post => {
                let mut request = self
                    .agent
                    .post(url)
                    .config()
                    .timeout_global(Some(budget))
                    .build();
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                match body {
                    Body::Empty => request.send_empty(),
                    // Both bodies may hold a password: they are built here into buffers
                    // sized up front and wiped on drop. ureq and rustls keep copies of
                    // their own that cannot be wiped (see the README).
                    Body::Form(fields) => {
                        let encoded = encode_form(fields);
                        request
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .send(encoded.as_bytes())
                    }
                    Body::Json(value) => {
                        let encoded = encode_json(value);
                        request
                            .header("Content-Type", "application/json")
                            .send(encoded.as_slice())
                    }
                }
            }
        };
        let mut response = result.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .map_err(classify)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends a request, retrying at most once per check, and only inside the deadline:
    /// after a refused or reset connection or a 5xx, or after a 429 whose Retry-After fits
    /// in the time left.
    pub fn send_with_retry(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        deadline: Deadline,
    ) -> Result<HttpResponse, TransportError> {
        let first = self.send(method, url, headers, body, deadline);
        let wait = match &first {
            Err(error) if error.is_retryable() => Duration::ZERO,
            Ok(response) if response.status >= 500 => Duration::ZERO,
            Ok(response) if response.status == 429 => match retry_after(response) {
                Some(seconds) => Duration::from_secs(seconds),
                None => return first,
            },
            _ => return first,
        };
        if self.retried_check.get() == Some(deadline.check) {
            return first;
        }
        match deadline.remaining() {
            Some(left) if left > wait => {
                self.retried_check.set(Some(deadline.check));
                std::thread::sleep(wait);
                self.send(method, url, headers, body, deadline)
            }
            _ => first,
        }
    }
}

/// The Retry-After of a response, in seconds (the HTTP-date form is not used by the APIs
/// we talk to, and is treated as absent).
pub fn retry_after(response: &HttpResponse) -> Option<u64> {
    response.header("Retry-After")?.trim().parse().ok()
}

/// Maps ureq's error to what happened. A certificate that does not verify is kept apart
/// from every other failure, because it is denied even in FailMode=safe.
fn classify(error: ureq::Error) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => TransportError::TimedOut,
        ureq::Error::HostNotFound => TransportError::NameResolution,
        ureq::Error::Io(io_error) => classify_io(&io_error),
        ureq::Error::Rustls(tls_error) => classify_tls(&tls_error),
        ureq::Error::Tls(detail) => TransportError::Tls(detail.to_string()),
        ureq::Error::ConnectProxyFailed(detail) => TransportError::Proxy(detail),
        ureq::Error::InvalidProxyUrl => TransportError::Proxy("invalid proxy URL".to_string()),
        ureq::Error::Protocol(protocol) => TransportError::Protocol(protocol.to_string()),
        ureq::Error::ConnectionFailed => TransportError::ConnectionRefused,
        ureq::Error::BodyExceedsLimit(limit) => {
            TransportError::Protocol(format!("response body larger than {limit} bytes"))
        }
        other => TransportError::Other(other.to_string()),
    }
}

fn classify_io(io_error: &io::Error) -> TransportError {
    if let Some(tls_error) = io_error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_tls(tls_error);
    }
    match io_error.kind() {
        io::ErrorKind::ConnectionRefused => TransportError::ConnectionRefused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => TransportError::ConnectionReset,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportError::TimedOut,
        _ => TransportError::Other(io_error.to_string()),
    }
}

fn classify_tls(tls_error: &rustls::Error) -> TransportError {
    match tls_error {
        rustls::Error::InvalidCertificate(reason) => {
            TransportError::UntrustedCertificate(format!("{reason:?}"))
        }
        rustls::Error::NoCertificatesPresented => {
            TransportError::UntrustedCertificate("no certificate presented".to_string())
        }
        other => TransportError::Tls(other.to_string()),
    }
}

/// `name=value&…`, every name and value percent-encoded, in a buffer sized before anything
/// is written to it and wiped on drop: the form may carry a password.
pub fn encode_form(fields: &[(&str, &str)]) -> SecretText {
    let length = fields
        .iter()
        .map(|(name, value)| percent_encoded_len(name) + 1 + percent_encoded_len(value))
        .sum::<usize>()
        + fields.len().saturating_sub(1);
    let mut encoded = secret_text(length);
    for (index, (name, value)) in fields.iter().enumerate() {
        if index > 0 {
            encoded.push('&');
        }
        percent_encode_into(name, &mut encoded);
        encoded.push('=');
        percent_encode_into(value, &mut encoded);
    }
    encoded
}

/// A JSON body in a buffer that is wiped on drop. It is measured first and then written
/// into a buffer of exactly that size, so that no growing buffer leaves a copy behind.
pub fn encode_json(value: &serde_json::Value) -> Zeroizing<Vec<u8>> {
    /// Counts what would be written.
    struct Measure(usize);
    impl io::Write for Measure {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut measure = Measure(0);
    // Serialising a Value into memory cannot fail (its keys are strings); should it ever,
    // the body is empty and the server refuses it.
    let _ = serde_json::to_writer(&mut measure, value);
    let mut encoded = Zeroizing::new(Vec::with_capacity(measure.0));
    let _ = serde_json::to_writer(&mut *encoded, value);
    encoded
}

/// Standard base64 (RFC 4648, with padding), for Basic authorization and PEM.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(base64_len(bytes.len()));
    base64_into(bytes, &mut out);
    out
}

/// The length of the base64 text of `length` bytes.
pub fn base64_len(length: usize) -> usize {
    length.div_ceil(3) * 4
}

/// Appends the base64 text of `bytes` to `out`, which grows only if it has no room.
pub fn base64_into(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let triple = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (triple >> (18 - 6 * position)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(percent_encoded_len(text));
    percent_encode_into(text, &mut out);
    out
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

/// The length of `percent_encode(text)`.
fn percent_encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|byte| if is_unreserved(byte) { 1 } else { 3 })
        .sum()
}

/// Appends `percent_encode(text)` to `out` without a buffer of its own.
fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_matches_the_rfc_3986_unreserved_set() {
        assert_eq!(percent_encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(percent_encode("a b/&=%é"), "a%20b%2F%26%3D%25%C3%A9");
        assert_eq!(
            percent_encoded_len("a b/&=%é"),
            "a%20b%2F%26%3D%25%C3%A9".len()
        );
    }

    #[test]
    fn form_bodies_are_encoded_in_a_buffer_of_exactly_their_size() {
        let form = encode_form(&[("username", "svc pam"), ("password", "p&ss=wörd")]);
        assert_eq!(
            form.as_str(),
            "username=svc%20pam&password=p%26ss%3Dw%C3%B6rd"
        );
        assert_eq!(form.capacity(), form.len());
        assert_eq!(encode_form(&[]).as_str(), "");
    }

    #[test]
    fn json_bodies_are_encoded_in_a_buffer_of_exactly_their_size() {
        let value = serde_json::json!({"username": "gw", "password": "p\"w\u{1}", "n": true});
        let body = encode_json(&value);
        assert_eq!(body.as_slice(), value.to_string().as_bytes());
        assert_eq!(body.capacity(), body.len());
    }

    #[test]
    fn base64_into_fills_a_sized_buffer() {
        let mut out = String::with_capacity(base64_len(6));
        let before = out.as_ptr();
        base64_into(b"foobar", &mut out);
        assert_eq!(out, "Zm9vYmFy");
        assert_eq!(out.as_ptr(), before);
    }
}
