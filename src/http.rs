//! The one HTTPS client every backend uses: explicit trust roots, an optional CONNECT
//! proxy from the configuration (never from the environment), one deadline for the whole
//! check, and errors that say what happened.

use std::fmt;
use std::io;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::{Zeroize, Zeroizing};

use crate::client_cert::ClientIdentity;
use crate::secret::{Secret, SecretText, secret_text};
use crate::trust::CaBundle;
use crate::url::ProxyUrl;

mod ureq_transport;

pub use self::ureq_transport::{UreqTransport, read_wiped_body};
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

    /// A budget with no retry left: for the request that is itself the one retry.
    pub fn spent() -> RetryBudget {
        RetryBudget { left: 0 }
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
    /// The server asked for a client certificate and ended the handshake with an alert
    /// about it (certificate_required, bad_certificate, unknown_ca …): it refused the one
    /// the module sent, or it requires one and none is configured (`sent` says which).
    /// Not an outage: it lasts as long as the configuration does.
    ClientCertificateRefused { sent: bool, alert: String },
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
            TransportError::ClientCertificateRefused { sent: true, alert } => write!(
                f,
                "the server refused the client certificate (TLS alert {alert})"
            ),
            TransportError::ClientCertificateRefused { sent: false, alert } => write!(
                f,
                "the server requires a client certificate and none is configured (TLS \
                 alert {alert})"
            ),
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
    /// Writing a work note back to a ServiceNow record.
    Patch,
}

/// A request body.
pub enum Body<'a> {
    Empty,
    Form(&'a [(&'a str, &'a str)]),
    Json(&'a serde_json::Value),
}

/// What came back. The body may be a token or a retrieved password, so it is wiped when
/// the response is dropped (see [`read_wiped_body`] for how it is read).
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Zeroizing<Vec<u8>>,
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

/// One request, as a [`Transport`] sends it.
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a Body<'a>,
}

/// What carries one request to the server and its answer back: ureq over TLS in the
/// module ([`UreqTransport`]), a script in unit tests. It neither retries nor waits; the
/// [`HttpClient`] above it does both, inside the check's deadline and on its clock.
pub trait Transport {
    /// Sends `request` and reads the whole answer, giving up after `timeout`. An HTTP
    /// error status is an answer, not an error.
    fn send(
        &self,
        request: &Request<'_>,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError>;
}

/// The HTTPS client every backend uses: deadlines and the retry rule, over a
/// [`Transport`].
pub struct HttpClient {
    transport: Box<dyn Transport>,
    /// Requests handed to the transport so far, retries included (`pam-ticket test`
    /// reports it per login).
    requests_sent: std::sync::atomic::AtomicU64,
}

impl HttpClient {
    /// Builds the client over ureq: trusts exactly the certificates of `ca_bundle`, as
    /// they were read when it was checked (never a path, which could be read again after
    /// a swap), presents `client_identity` to servers that ask for a certificate, tunnels
    /// through `proxy` when given, follows no redirects, and reports HTTP errors as
    /// responses. For a configuration, `backend::http_client` builds it: every connection
    /// the module makes goes through that one place.
    pub fn new(
        ca_bundle: Option<&CaBundle>,
        client_identity: Option<&ClientIdentity>,
        proxy: Option<&ProxyUrl>,
    ) -> Result<HttpClient, SetupError> {
        let ca_bundle = ca_bundle.ok_or(SetupError::NoCaBundle)?;
        Ok(HttpClient::with_transport(Box::new(UreqTransport::new(
            ca_bundle,
            client_identity,
            proxy,
        )?)))
    }

    /// The client over another transport (a scripted one in unit tests).
    pub fn with_transport(transport: Box<dyn Transport>) -> HttpClient {
        HttpClient {
            transport,
            requests_sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many requests this client has sent (handed to the transport), retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests_sent
            .load(std::sync::atomic::Ordering::Relaxed)
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
        let timeout = deadline.remaining().ok_or(TransportError::TIMED_OUT)?;
        let request = Request {
            method,
            url,
            headers,
            body,
        };
        self.requests_sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.transport.send(&request, timeout)
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

/// `<scheme><token>` (`Bearer `, `AR-JWT `, or no scheme for a PVWA session token), the
/// value of an Authorization header in a buffer sized before the token goes in and wiped
/// on drop; `None` when the token is not text.
pub fn prefixed_token(scheme: &str, token: &Secret) -> Option<SecretText> {
    let token = token.as_str()?;
    let mut header = secret_text(scheme.len() + token.len());
    header.push_str(scheme);
    header.push_str(token);
    Some(header)
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

    mod retries {
        use super::*;
        use crate::fakes::{ManualClock, Wire, answer};

        const URL: &str = "https://ticketing.example.com/api";

        fn with_retry_after(status: u16, seconds: &str) -> HttpResponse {
            HttpResponse {
                headers: vec![("Retry-After".to_string(), seconds.to_string())],
                ..answer(status, "")
            }
        }

        fn get(
            client: &HttpClient,
            deadline: Deadline,
            retries: &mut RetryBudget,
        ) -> Result<HttpResponse, TransportError> {
            client.send_with_retry(Method::Get, URL, &[], &Body::Empty, deadline, retries)
        }

        const REFUSED: TransportError = TransportError::Unreachable(Unreachable::ConnectionRefused);

        #[test]
        fn a_5xx_or_a_broken_connection_is_retried_at_once() {
            for first in [
                Ok(answer(503, "")),
                Ok(answer(500, "")),
                Err(REFUSED),
                Err(TransportError::Unreachable(Unreachable::ConnectionReset)),
            ] {
                let clock = ManualClock::new();
                let wire = Wire::new();
                wire.expect(Method::Get, "/api", first).expect(
                    Method::Get,
                    "/api",
                    Ok(answer(200, "ok")),
                );
                let mut retries = RetryBudget::for_check();
                let deadline = Deadline::new(&clock, Duration::from_secs(10));
                let result = get(&wire.client(), deadline, &mut retries);
                assert_eq!(result.map(|response| response.status), Ok(200));
                assert!(retries.is_spent());
                assert_eq!(wire.sent().len(), 2);
                assert!(clock.slept().iter().all(Duration::is_zero), "no pause");
            }
        }

        /// The budget belongs to the check, not to a request: once a log-on has used the
        /// retry, the query that follows gets none.
        #[test]
        fn one_retry_per_check_whichever_request_spends_it() {
            let clock = ManualClock::new();
            let wire = Wire::new();
            wire.expect(Method::Get, "/api", Ok(answer(503, "")))
                .expect(Method::Get, "/api", Ok(answer(200, "token")))
                .expect(Method::Get, "/api", Err(REFUSED));
            let client = wire.client();
            let deadline = Deadline::new(&clock, Duration::from_secs(10));
            let mut retries = RetryBudget::for_check();
            assert_eq!(
                get(&client, deadline, &mut retries).map(|response| response.status),
                Ok(200)
            );
            assert_eq!(
                get(&client, deadline, &mut retries).map(|response| response.status),
                Err(REFUSED)
            );
            assert_eq!(wire.sent().len(), 3);
            // A new check has its own retry.
            wire.expect(Method::Get, "/api", Err(REFUSED)).expect(
                Method::Get,
                "/api",
                Ok(answer(200, "")),
            );
            let mut next_check = RetryBudget::for_check();
            assert!(get(&client, deadline, &mut next_check).is_ok());
        }

        #[test]
        fn a_429_waits_for_retry_after_only_when_it_fits() {
            let clock = ManualClock::new();
            let wire = Wire::new();
            wire.expect(Method::Get, "/api", Ok(with_retry_after(429, "3")))
                .expect(Method::Get, "/api", Ok(answer(200, "")));
            let deadline = Deadline::new(&clock, Duration::from_secs(10));
            let mut retries = RetryBudget::for_check();
            assert!(get(&wire.client(), deadline, &mut retries).is_ok());
            assert_eq!(clock.slept(), vec![Duration::from_secs(3)]);

            // Retry-After past the deadline, or absent: the 429 is the answer.
            for too_late in [with_retry_after(429, "30"), answer(429, "")] {
                let clock = ManualClock::new();
                let wire = Wire::new();
                wire.expect(Method::Get, "/api", Ok(too_late));
                let deadline = Deadline::new(&clock, Duration::from_secs(10));
                let mut retries = RetryBudget::for_check();
                let result = get(&wire.client(), deadline, &mut retries);
                assert_eq!(result.map(|response| response.status), Ok(429));
                assert!(!retries.is_spent());
                assert!(clock.slept().is_empty());
            }
        }

        #[test]
        fn other_answers_and_failures_are_not_retried() {
            for only in [
                Ok(answer(404, "")),
                Ok(answer(401, "")),
                Err(TransportError::TIMED_OUT),
                Err(TransportError::Tls("alert".to_string())),
                Err(TransportError::Unreachable(Unreachable::NameResolution)),
            ] {
                let clock = ManualClock::new();
                let wire = Wire::new();
                wire.expect(Method::Get, "/api", only.clone());
                let deadline = Deadline::new(&clock, Duration::from_secs(10));
                let mut retries = RetryBudget::for_check();
                assert_eq!(
                    get(&wire.client(), deadline, &mut retries).map(|response| response.status),
                    only.map(|response| response.status)
                );
                assert!(!retries.is_spent());
            }
        }

        /// A first attempt that used up the deadline is not repeated, and nothing is sent
        /// once the deadline has passed.
        #[test]
        fn nothing_is_sent_after_the_deadline() {
            let clock = ManualClock::new();
            let wire = Wire::on(&clock);
            wire.expect_taking(Method::Get, "/api", Duration::from_secs(10), Err(REFUSED));
            let deadline = Deadline::new(&clock, Duration::from_secs(10));
            let mut retries = RetryBudget::for_check();
            let status = |result: Result<HttpResponse, TransportError>| result.map(|r| r.status);
            assert_eq!(
                status(get(&wire.client(), deadline, &mut retries)),
                Err(REFUSED)
            );
            assert!(!retries.is_spent());
            assert_eq!(
                status(get(&wire.client(), deadline, &mut retries)),
                Err(TransportError::TIMED_OUT)
            );
            assert_eq!(wire.sent().len(), 1);
        }
    }
}
