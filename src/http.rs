//! The one HTTPS client every backend uses: explicit trust roots, an optional CONNECT
//! proxy from the configuration (never from the environment), one deadline for the whole
//! check, and errors that say what happened.

use std::fmt;
use std::io;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::{Zeroize, Zeroizing};

use crate::config::ProxyUrl;
use crate::secret::{SecretText, secret_text};
use crate::trust::CaBundle;

/// The largest response body the module reads; ticket lookups are a few hundred bytes.
const MAX_BODY_BYTES: u64 = 1 << 20;

pub use crate::clock::Deadline;

/// The one retry a check may make, whichever of its requests spends it: a log-on and a
/// query that each fail once must not make two retries. The check (one lookup, one probe)
/// owns it and lends it to every [`HttpClient::send_with_retry`] it makes.
#[derive(Debug, PartialEq, Eq)]
pub struct RetryBudget {
    left: u8,
}

impl RetryBudget {
    /// The budget of one check: a single retry.
    pub fn for_check() -> RetryBudget {
        RetryBudget { left: 1 }
    }

    /// Whether a retry is left.
    pub fn is_spent(&self) -> bool {
        self.left == 0
    }

    /// Takes the retry if one is left.
    fn spend(&mut self) -> bool {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                true
            }
            None => false,
        }
    }
}

/// Why a request got no HTTP answer.
///
/// Only [`TransportError::Unreachable`] is an outage; every other variant means that
/// something answered, but not with the API's answer, or that nothing could be sent at
/// all. The backends turn these into a `LookupError` with a `match`, never by reading a
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The server could not be reached, or the connection broke: an outage.
    Unreachable(Unreachable),
    /// The server's certificate did not verify against the trusted CAs.
    UntrustedCertificate(String),
    /// Another TLS failure: an alert, a protocol version below TLS 1.2, or bytes that are
    /// not TLS at all (plain HTTP or garbage on the HTTPS port).
    Tls(String),
    /// An answer that is not well-formed HTTP/1.1: an unparsable status line or header,
    /// more header lines than the client reads, conflicting Content-Length headers, broken
    /// chunking, a redirect.
    Protocol(String),
    /// A header block larger than the client reads.
    HeaderTooLarge { limit: usize },
    /// A body larger than the module reads.
    BodyTooLarge { limit: u64 },
    /// The CONNECT proxy answered, but did not open the tunnel (407, 403, 502 …). Only
    /// its words are known, not the reason, so this is not read as an outage.
    ProxyRefused(String),
    /// The request could not be made, so nothing was sent: a URL with a character that a
    /// URL cannot hold (`<`, a backtick, a tab), or a header value the client refuses.
    InvalidRequest(String),
    /// Anything else the HTTP client reports.
    Other(String),
}

/// The ways a server can be unreachable: the only transport failures that are outages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    TimedOut,
    ConnectionRefused,
    /// Reset, aborted, or closed before the answer was complete.
    ConnectionReset,
    /// The host name did not resolve (including a DNS server that did not answer).
    NameResolution,
    /// No route to the host or its network.
    NoRoute,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unreachable::TimedOut => "timed out",
            Unreachable::ConnectionRefused => "connection refused",
            Unreachable::ConnectionReset => "connection reset or closed",
            Unreachable::NameResolution => "host name not found",
            Unreachable::NoRoute => "no route to the host",
        })
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Unreachable(why) => write!(f, "{why}"),
            TransportError::UntrustedCertificate(detail) => {
                write!(f, "server certificate not trusted: {detail}")
            }
            TransportError::Tls(detail) => write!(f, "TLS failure: {detail}"),
            TransportError::Protocol(detail) => write!(f, "HTTP protocol error: {detail}"),
            TransportError::HeaderTooLarge { limit } => {
                write!(f, "response header larger than {limit} bytes")
            }
            TransportError::BodyTooLarge { limit } => {
                write!(f, "response body larger than {limit} bytes")
            }
            TransportError::ProxyRefused(detail) => write!(f, "proxy refused: {detail}"),
            TransportError::InvalidRequest(detail) => {
                write!(f, "request not sent, it is invalid: {detail}")
            }
            TransportError::Other(detail) => write!(f, "{detail}"),
        }
    }
}

impl TransportError {
    /// A shorthand for the outage kinds.
    pub const TIMED_OUT: TransportError = TransportError::Unreachable(Unreachable::TimedOut);

    /// Whether one retry may help (the spec allows one, for refused or reset connections).
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable(
                Unreachable::ConnectionRefused | Unreachable::ConnectionReset
            )
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
        let agent_config = ureq::Agent::config_builder()
            .tls_config(tls)
            // Set explicitly: ureq would otherwise read https_proxy from the environment,
            // which under su or sudo belongs to the very user being checked.
            .proxy(proxy)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("pam_ticket/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = agent_with_named_lookups(agent_config);
        Ok(HttpClient { agent })
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
        let budget = deadline.remaining().ok_or(TransportError::TIMED_OUT)?;
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

    /// Sends a request, retrying only while `retries` has one left, and only inside the
    /// deadline: after a refused or reset connection or a 5xx, or after a 429 whose
    /// Retry-After fits in the time left (waited for on the deadline's clock).
    pub fn send_with_retry(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
        deadline: Deadline,
        retries: &mut RetryBudget,
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
        match deadline.remaining() {
            Some(left) if left > wait && retries.spend() => {
                deadline.clock().sleep(wait);
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

/// Maps ureq's error to what happened. Only a refused, reset or timed-out connection and
/// a failed name lookup are `Unreachable`; a certificate that does not verify is kept
/// apart from every other TLS failure, for the message. Each ureq variant is named, so
/// that a new one is a compile-time decision rather than a silent outage.
fn classify(error: ureq::Error) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => TransportError::TIMED_OUT,
        ureq::Error::HostNotFound => TransportError::Unreachable(Unreachable::NameResolution),
        ureq::Error::Io(io_error) => classify_io(&io_error),
        ureq::Error::Rustls(tls_error) => classify_tls(&tls_error),
        ureq::Error::Tls(detail) => TransportError::Tls(detail.to_string()),
        ureq::Error::TlsRequired => TransportError::Tls("the connection is not TLS".to_string()),
        ureq::Error::ConnectProxyFailed(detail) => TransportError::ProxyRefused(detail),
        ureq::Error::Protocol(protocol) => TransportError::Protocol(protocol.to_string()),
        ureq::Error::RedirectFailed | ureq::Error::TooManyRedirects => {
            TransportError::Protocol("the server redirected the request".to_string())
        }
        ureq::Error::LargeResponseHeader(_, limit) => TransportError::HeaderTooLarge { limit },
        ureq::Error::BodyExceedsLimit(limit) => TransportError::BodyTooLarge { limit },
        ureq::Error::Http(detail) => TransportError::InvalidRequest(detail.to_string()),
        ureq::Error::BadUri(detail) | ureq::Error::RequireHttpsOnly(detail) => {
            TransportError::InvalidRequest(detail)
        }
        ureq::Error::InvalidProxyUrl => {
            TransportError::InvalidRequest("invalid proxy URL".to_string())
        }
        // No connector took the connection: a fault of the client's set-up, not of the
        // network, so not an outage.
        ureq::Error::ConnectionFailed => {
            TransportError::Other("no connection could be set up".to_string())
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
    let unreachable = match io_error.kind() {
        io::ErrorKind::ConnectionRefused => Unreachable::ConnectionRefused,
        // UnexpectedEof: the peer closed before the answer was complete (a crash, a cut
        // link). Bytes that are not HTTP or not TLS are reported otherwise (Protocol,
        // rustls), so this stays an outage only for a connection that just ended.
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Unreachable::ConnectionReset,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Unreachable::TimedOut,
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::NetworkDown => Unreachable::NoRoute,
        _ => return TransportError::Other(io_error.to_string()),
    };
    TransportError::Unreachable(unreachable)
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

/// The system's name resolver, with every failure reported as `HostNotFound`. The
/// standard library reports a failed `getaddrinfo` as an uncategorised I/O error, which
/// could not be told from any other; a failed lookup is an outage, so it must be named.
#[derive(Debug, Default)]
struct NameLookup(DefaultResolver);

impl Resolver for NameLookup {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.0
            .resolve(uri, config, timeout)
            .map_err(|error| match error {
                ureq::Error::Io(_) => ureq::Error::HostNotFound,
                other => other,
            })
    }
}

/// The agent for a configuration: ureq's own connectors, the resolver above.
fn agent_with_named_lookups(config: ureq::config::Config) -> ureq::Agent {
    ureq::Agent::with_parts(config, DefaultConnector::default(), NameLookup::default())
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
        // The encoder yields slices of its input and of a static table; pushed one by one
        // into the buffer sized above, so no other buffer ever holds the password.
        encoded.extend(utf8_percent_encode(name, NOT_UNRESERVED));
        encoded.push('=');
        encoded.extend(utf8_percent_encode(value, NOT_UNRESERVED));
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

/// `prefix` followed by the standard base64 (RFC 4648, padded) of `bytes`, in a buffer of
/// exactly that size, wiped on drop: `bytes` may hold a password (Basic authorization).
///
/// base64's `encode_slice` writes straight into the buffer; `encode_string` would pass the
/// text through a 1 KiB buffer on the stack first, which nothing wipes.
pub fn prefixed_base64(prefix: &str, bytes: &[u8]) -> SecretText {
    // `None` only for an input near usize::MAX bytes, which no password in memory is.
    let Some(encoded_length) = base64::encoded_len(bytes.len(), true) else {
        return secret_text(0);
    };
    let mut buffer = Zeroizing::new(vec![0u8; prefix.len() + encoded_length]);
    buffer[..prefix.len()].copy_from_slice(prefix.as_bytes());
    if STANDARD
        .encode_slice(bytes, &mut buffer[prefix.len()..])
        .is_err()
    {
        // Cannot happen: the slice was sized by the function encode_slice checks against.
        return secret_text(0);
    }
    // The buffer becomes the text without a copy: the Vec is taken out of its wrapper (an
    // empty one stays behind) and checked as UTF-8 in place.
    match String::from_utf8(std::mem::take(&mut *buffer)) {
        Ok(text) => Zeroizing::new(text),
        Err(refused) => {
            // Cannot happen either (a &str and base64 are UTF-8); wiped all the same.
            refused.into_bytes().zeroize();
            secret_text(0)
        }
    }
}

/// The bytes RFC 3986 calls unreserved (`A-Z a-z 0-9 - _ . ~`) are the only ones left as
/// they are; every other byte, non-ASCII ones included, is percent-encoded.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// The length of `percent_encode(text)`, without encoding it into a buffer.
fn percent_encoded_len(text: &str) -> usize {
    utf8_percent_encode(text, NOT_UNRESERVED)
        .map(str::len)
        .sum()
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
    fn base64_fills_a_buffer_of_exactly_its_size() {
        let out = prefixed_base64("Basic ", b"foobar");
        assert_eq!(out.as_str(), "Basic Zm9vYmFy");
        assert_eq!(out.capacity(), out.len());
        for (input, expected) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v")] {
            assert_eq!(prefixed_base64("", input.as_bytes()).as_str(), expected);
        }
    }

    /// A URL with a character a URL cannot hold (a leftover `<instance>` placeholder, a
    /// backtick, a tab) is a request that was never sent, not an outage.
    #[test]
    fn an_invalid_url_is_an_invalid_request_not_an_outage() {
        for url in [
            "https://<instance>.service-now.com/api",
            "https://localhost/a`b",
            "https://localhost/a\tb",
        ] {
            let invalid = url
                .parse::<ureq::http::Uri>()
                .expect_err("the URL is invalid");
            let classified = classify(ureq::Error::Http(ureq::http::Error::from(invalid)));
            assert!(
                matches!(classified, TransportError::InvalidRequest(_)),
                "{url:?}: {classified:?}"
            );
        }
    }

    /// What ureq reports for each misbehaving server (see tests/ticket_gate.rs for the
    /// same through libpam), mapped by variant. ureq's `Protocol` errors come from a crate
    /// of its own and are covered there.
    #[test]
    fn only_unreachable_servers_are_outages() {
        let io = |kind: io::ErrorKind| ureq::Error::Io(io::Error::from(kind));
        let tls = |error: rustls::Error| {
            ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, error))
        };
        let outages = [
            (
                io(io::ErrorKind::ConnectionRefused),
                Unreachable::ConnectionRefused,
            ),
            (
                io(io::ErrorKind::ConnectionReset),
                Unreachable::ConnectionReset,
            ),
            (
                io(io::ErrorKind::UnexpectedEof),
                Unreachable::ConnectionReset,
            ),
            (io(io::ErrorKind::TimedOut), Unreachable::TimedOut),
            (io(io::ErrorKind::HostUnreachable), Unreachable::NoRoute),
            (ureq::Error::HostNotFound, Unreachable::NameResolution),
            (
                ureq::Error::Timeout(ureq::Timeout::Global),
                Unreachable::TimedOut,
            ),
        ];
        for (error, expected) in outages {
            assert_eq!(classify(error), TransportError::Unreachable(expected));
        }
        let not_outages = [
            ureq::Error::BodyExceedsLimit(1 << 20),
            ureq::Error::LargeResponseHeader(70_000, 65_536),
            tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure,
            )),
            tls(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType,
            )),
            tls(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::ServerDoesNotSupportTls12Or13,
            )),
            ureq::Error::ConnectProxyFailed("proxy server responded 407/407".to_string()),
            ureq::Error::ConnectionFailed,
            io(io::ErrorKind::InvalidData),
            io(io::ErrorKind::PermissionDenied),
        ];
        for error in not_outages {
            let shown = format!("{error:?}");
            let classified = classify(error);
            assert!(
                !matches!(classified, TransportError::Unreachable(_)),
                "{shown} must not be an outage: {classified:?}"
            );
        }
    }

    /// std reports a failed getaddrinfo as an uncategorised I/O error; the resolver names it.
    #[test]
    fn a_failed_name_lookup_is_named() {
        let uri: ureq::http::Uri = "https://nonexistent-host.invalid/"
            .parse()
            .expect("a valid URI");
        let config = ureq::Agent::config_builder().build();
        let result = NameLookup::default().resolve(&uri, &config, NextTimeout::default());
        assert!(
            matches!(result, Err(ureq::Error::HostNotFound)),
            "{result:?}"
        );
    }
}
