//! The one HTTPS client every backend uses: explicit trust roots, an optional CONNECT
//! proxy from the configuration (never from the environment), one deadline for the whole
//! check, and errors that say what happened.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use ureq::tls::{RootCerts, TlsConfig};

use crate::config::ProxyUrl;
use crate::trust::CaBundle;

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
    BadProxy(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NoCaBundle => write!(
                f,
                "no CA bundle: set CAFile, or install one at {}",
                crate::trust::SYSTEM_CA_BUNDLES.join(" or ")
            ),
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

pub struct HttpClient {
    agent: ureq::Agent,
    /// The check (see `Deadline`) that has spent its one retry, whichever request of the
    /// check spent it: a log-on and a query each failing must not make two retries.
    retried_check: Cell<Option<Instant>>,
}

impl HttpClient {
    /// Builds the client: trusts exactly the certificates of `ca_bundle`, as they were
    /// read when it was checked (never a path, which could be read again after a swap),
    /// tunnels through `proxy` when given, follows no redirects, and reports HTTP errors
    /// as responses.
    pub fn new(
        ca_bundle: Option<&CaBundle>,
        proxy: Option<&ProxyUrl>,
    ) -> Result<HttpClient, SetupError> {
        let ca_bundle = ca_bundle.ok_or(SetupError::NoCaBundle)?;
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(ca_bundle.roots()))
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
                    // Both bodies may hold a password: they are built here, sent, and
                    // wiped, rather than left in a buffer the client dropped unwiped.
                    Body::Form(fields) => {
                        let mut encoded = fields
                            .iter()
                            .map(|(name, value)| {
                                format!("{}={}", percent_encode(name), percent_encode(value))
                            })
                            .collect::<Vec<_>>()
                            .join("&");
                        let sent = request
                            .header("Content-Type", "application/x-www-form-urlencoded")
                            .send(encoded.as_bytes());
                        crate::secret::wipe_string(&mut encoded);
                        sent
                    }
                    Body::Json(value) => {
                        let mut encoded = value.to_string();
                        let sent = request
                            .header("Content-Type", "application/json")
                            .send(encoded.as_bytes());
                        crate::secret::wipe_string(&mut encoded);
                        sent
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

/// Standard base64 (RFC 4648, with padding), for Basic authorization and PEM.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
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
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
