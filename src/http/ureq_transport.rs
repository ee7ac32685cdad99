//! The transport of the module: ureq over rustls, with the trust roots of the checked CA
//! bundle, an optional CONNECT proxy from the configuration, no redirects, and every ureq
//! error mapped by variant to what happened.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use zeroize::{Zeroize, Zeroizing};

use super::{
    Body, HttpResponse, Method, Request, SetupError, Transport, TransportError, Unreachable,
    encode_form, encode_json,
};
use crate::client_cert::ClientIdentity;
use crate::trust::CaBundle;
use crate::url::ProxyUrl;

/// The largest response body the module reads; ticket lookups are a few hundred bytes.
const MAX_BODY_BYTES: u64 = 1 << 20;
/// The first buffer for a body whose length the server did not announce (chunked).
const FIRST_BODY_BUFFER_BYTES: usize = 8 * 1024;

/// ureq's agent, set up once per client.
pub struct UreqTransport {
    agent: ureq::Agent,
    /// Whether a client certificate is configured, which tells "refused ours" from
    /// "requires one" when a server ends the handshake over it.
    sends_client_certificate: bool,
}

impl UreqTransport {
    /// Trusts exactly the certificates of `ca_bundle`; presents `client_identity` to a
    /// server that asks for a certificate; tunnels through `proxy` when given.
    pub fn new(
        ca_bundle: &CaBundle,
        client_identity: Option<&ClientIdentity>,
        proxy: Option<&ProxyUrl>,
    ) -> Result<UreqTransport, SetupError> {
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(ca_bundle.roots()))
            .client_cert(client_identity.map(ClientIdentity::tls))
            // The provider the client key was checked with when the configuration loaded
            // (crate::client_cert), so that the handshake loads it the same way.
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
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
        Ok(UreqTransport {
            agent: agent_with_named_lookups(agent_config),
            sends_client_certificate: client_identity.is_some(),
        })
    }
}

impl Transport for UreqTransport {
    fn send(
        &self,
        request: &Request<'_>,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let Request {
            method,
            url,
            headers,
            body,
        } = *request;
        let result = match method {
            Method::Get => {
                let mut request = self
                    .agent
                    .get(url)
                    .config()
                    .timeout_global(Some(timeout))
                    .build();
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            Method::Post | Method::Patch => {
                let builder = if method == Method::Post {
                    self.agent.post(url)
                } else {
                    self.agent.patch(url)
                };
                let mut request = builder.config().timeout_global(Some(timeout)).build();
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
        let sent = self.sends_client_certificate;
        let mut response = result.map_err(|error| classify(error, sent))?;
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
        let announced = response.body().content_length();
        // The same reader as `as_reader()`, with the limit set: ureq's own read_to_vec would
        // grow a Vec and leave unwiped partial copies of a token or password behind.
        let mut reader = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .reader();
        let body = read_wiped_body(&mut reader, announced, MAX_BODY_BYTES)
            .map_err(|error| classify(ureq::Error::from(error), sent))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Reads a response body of at most `limit` bytes into memory that is wiped whenever it is
/// given back: the body may be a Remedy JWT, a portal session token or a retrieved
/// password.
///
/// The buffer is allocated once for the length the server announced (up to `limit`), or
/// for [`FIRST_BODY_BUFFER_BYTES`] when it announced none. When a body outgrows it, a
/// larger buffer (twice the size, up to `limit`) is allocated, what was read is copied
/// over and the old buffer is wiped as it is dropped, so that no growing buffer leaves a
/// copy behind and no request allocates the whole limit up front. A body longer than
/// `limit` fails as ureq's own limit does ([`ureq::Error::BodyExceedsLimit`]). Public for
/// tests/secret_wipe.rs, which watches every freed block for a secret.
pub fn read_wiped_body(
    reader: &mut impl Read,
    announced: Option<u64>,
    limit: u64,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let first = announced
        .map_or(FIRST_BODY_BUFFER_BYTES, |length| {
            usize::try_from(length).unwrap_or(usize::MAX)
        })
        .min(limit);
    // Zero-filled up front, so that reads go straight into it (it is never grown in place).
    let mut buffer = Zeroizing::new(vec![0u8; first]);
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            // Full: one more byte says whether the body ends here, before anything larger
            // is allocated (a body of exactly the announced length needs no second buffer).
            let mut probe = [0u8; 1];
            let more = read_some(reader, &mut probe)?;
            if more == 0 {
                break;
            }
            if filled >= limit {
                probe.zeroize();
                return Err(ureq::Error::BodyExceedsLimit(limit as u64).into_io());
            }
            let larger = filled
                .saturating_mul(2)
                .max(FIRST_BODY_BUFFER_BYTES)
                .min(limit);
            let mut grown = Zeroizing::new(vec![0u8; larger]);
            grown[..filled].copy_from_slice(&buffer[..filled]);
            grown[filled] = probe[0];
            probe.zeroize();
            filled += 1;
            // The old buffer is wiped as it is dropped here.
            buffer = grown;
            continue;
        }
        match read_some(reader, &mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    // Truncating keeps the allocation, which is wiped in full when the body is dropped.
    buffer.truncate(filled);
    Ok(buffer)
}

/// One `read`, repeated when a signal interrupted it.
fn read_some(reader: &mut impl Read, into: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(into) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Maps ureq's error to what happened. Only a refused, reset or timed-out connection and
/// a failed name lookup are `Unreachable`; a certificate that does not verify is kept
/// apart from every other TLS failure, for the message. Each ureq variant is named, so
/// that a new one is a compile-time decision rather than a silent outage.
/// `sent_client_certificate` says whether the module presents a client certificate.
fn classify(error: ureq::Error, sent_client_certificate: bool) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => TransportError::TIMED_OUT,
        ureq::Error::HostNotFound => TransportError::Unreachable(Unreachable::NameResolution),
        ureq::Error::Io(io_error) => classify_io(&io_error, sent_client_certificate),
        ureq::Error::Rustls(tls_error) => classify_tls(&tls_error, sent_client_certificate),
        ureq::Error::Tls(detail) => TransportError::Tls(bounded(detail)),
        ureq::Error::TlsRequired => TransportError::Tls("the connection is not TLS".to_string()),
        ureq::Error::ConnectProxyFailed(detail) => TransportError::ProxyRefused(bounded(detail)),
        ureq::Error::Protocol(protocol) => TransportError::Protocol(bounded(protocol)),
        ureq::Error::RedirectFailed | ureq::Error::TooManyRedirects => {
            TransportError::Protocol("the server redirected the request".to_string())
        }
        ureq::Error::LargeResponseHeader(_, limit) => TransportError::HeaderTooLarge { limit },
        ureq::Error::BodyExceedsLimit(limit) => TransportError::BodyTooLarge { limit },
        ureq::Error::Http(detail) => TransportError::InvalidRequest(bounded(detail)),
        ureq::Error::BadUri(detail) | ureq::Error::RequireHttpsOnly(detail) => {
            TransportError::InvalidRequest(bounded(detail))
        }
        ureq::Error::InvalidProxyUrl => {
            TransportError::InvalidRequest("invalid proxy URL".to_string())
        }
        // No connector took the connection: a fault of the client's set-up, not of the
        // network, so not an outage.
        ureq::Error::ConnectionFailed => {
            TransportError::Other("no connection could be set up".to_string())
        }
        other => TransportError::Other(bounded(other)),
    }
}

/// The text of an error for the audit, syslog and the person's administrator: what a
/// server or a man in the middle put into it (a certificate's names, a proxy's status
/// line) is cleaned and cut at 300 characters like every other server text, so that a
/// certificate with thousands of names cannot flood syslog or the audit file.
fn bounded(detail: impl std::fmt::Display) -> String {
    crate::sanitise::sanitise(&detail.to_string())
}

fn classify_io(io_error: &io::Error, sent_client_certificate: bool) -> TransportError {
    if let Some(tls_error) = io_error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_tls(tls_error, sent_client_certificate);
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
        _ => return TransportError::Other(bounded(io_error)),
    };
    TransportError::Unreachable(unreachable)
}

fn classify_tls(tls_error: &rustls::Error, sent_client_certificate: bool) -> TransportError {
    match tls_error {
        // A server sends these only about the certificate its peer sent, or failed to
        // send: ours (TLS 1.3 reports a refused client certificate after the client's
        // side of the handshake, when the request is on its way).
        rustls::Error::AlertReceived(
            alert @ (rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnsupportedCertificate
            | rustls::AlertDescription::CertificateRevoked
            | rustls::AlertDescription::CertificateExpired
            | rustls::AlertDescription::CertificateUnknown
            | rustls::AlertDescription::UnknownCA),
        ) => TransportError::ClientCertificateRefused {
            sent: sent_client_certificate,
            alert: format!("{alert:?}"),
        },
        // The Debug form names the reason (`UnknownIssuer`, `NotValidForNameContext { … }`
        // with every name the certificate presents), so it is bounded.
        rustls::Error::InvalidCertificate(reason) => {
            TransportError::UntrustedCertificate(bounded(format_args!("{reason:?}")))
        }
        rustls::Error::NoCertificatesPresented => {
            TransportError::UntrustedCertificate("no certificate presented".to_string())
        }
        other => TransportError::Tls(bounded(other)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let classified = classify(ureq::Error::Http(ureq::http::Error::from(invalid)), false);
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
            assert_eq!(
                classify(error, false),
                TransportError::Unreachable(expected)
            );
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
            let classified = classify(error, false);
            assert!(
                !matches!(classified, TransportError::Unreachable(_)),
                "{shown} must not be an outage: {classified:?}"
            );
        }
    }

    /// The alerts a server sends about the client's certificate are named, with whether
    /// one was sent, and are never an outage; any other alert stays a TLS failure.
    #[test]
    fn a_refused_client_certificate_is_named_and_never_an_outage() {
        use rustls::AlertDescription;
        let alert = |description: AlertDescription| {
            ureq::Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::AlertReceived(description),
            ))
        };
        for (description, sent) in [
            (AlertDescription::UnknownCA, true),
            (AlertDescription::BadCertificate, true),
            (AlertDescription::CertificateExpired, true),
            (AlertDescription::CertificateRequired, false),
        ] {
            let classified = classify(alert(description), sent);
            assert_eq!(
                classified,
                TransportError::ClientCertificateRefused {
                    sent,
                    alert: format!("{description:?}"),
                }
            );
            assert!(matches!(
                crate::backend::LookupError::from(classified),
                crate::backend::LookupError::BadAnswer(_)
            ));
        }
        let refused = classify(alert(AlertDescription::UnknownCA), true).to_string();
        assert_eq!(
            refused,
            "the server refused the client certificate (TLS alert UnknownCA)"
        );
        assert!(matches!(
            classify(alert(AlertDescription::HandshakeFailure), true),
            TransportError::Tls(_)
        ));
    }

    /// A reader that hands out its bytes `chunk` at a time, like a socket.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, into: &mut [u8]) -> io::Result<usize> {
            let length = self.chunk.min(into.len()).min(self.bytes.len());
            into[..length].copy_from_slice(&self.bytes[..length]);
            self.bytes = &self.bytes[length..];
            Ok(length)
        }
    }

    #[test]
    fn bodies_are_read_whole_into_buffers_sized_up_front() {
        let body: Vec<u8> = (0..70_000u32).map(|n| (n % 251) as u8).collect();
        for (announced, chunk) in [
            (Some(body.len() as u64), 1500),
            (None, 1500),
            (None, 1),
            (None, 100_000),
        ] {
            let mut reader = Trickle {
                bytes: &body,
                chunk,
            };
            let read = read_wiped_body(&mut reader, announced, MAX_BODY_BYTES).expect("read");
            assert_eq!(read.as_slice(), body.as_slice(), "{announced:?}/{chunk}");
        }
        // An announced length is the one allocation: nothing larger, nothing grown.
        let mut reader = Trickle {
            bytes: &body[..300],
            chunk: 64,
        };
        let read = read_wiped_body(&mut reader, Some(300), MAX_BODY_BYTES).expect("read");
        assert_eq!(read.capacity(), 300);
        // Unknown length: a small first buffer, not the limit.
        let mut reader = Trickle {
            bytes: &body[..300],
            chunk: 64,
        };
        let read = read_wiped_body(&mut reader, None, MAX_BODY_BYTES).expect("read");
        assert_eq!(read.capacity(), FIRST_BODY_BUFFER_BYTES);
        assert_eq!(read.as_slice(), &body[..300]);
        // Empty bodies.
        let mut reader = Trickle {
            bytes: &[],
            chunk: 64,
        };
        assert!(
            read_wiped_body(&mut reader, Some(0), MAX_BODY_BYTES)
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn a_body_over_the_limit_is_too_large() {
        let body = vec![b'x'; 5000];
        for (limit, announced) in [(4096, None), (4999, Some(4000)), (10, Some(10))] {
            let mut reader = Trickle {
                bytes: &body,
                chunk: 700,
            };
            let error = read_wiped_body(&mut reader, announced, limit).expect_err("too large");
            assert_eq!(
                classify(ureq::Error::from(error), false),
                TransportError::BodyTooLarge { limit },
                "{limit}"
            );
        }
        let mut reader = Trickle {
            bytes: &body,
            chunk: 700,
        };
        assert_eq!(
            read_wiped_body(&mut reader, None, 5000)
                .expect("exactly the limit")
                .len(),
            5000
        );
    }

    /// A certificate presented by a man in the middle can carry thousands of names, all of
    /// which rustls lists in its reason: the detail that reaches syslog and the audit is
    /// cut at 300 characters all the same.
    #[test]
    fn certificate_reasons_are_bounded() {
        let presented: Vec<String> = (0..2000)
            .map(|n| format!("host-{n:04}.attacker.example"))
            .collect();
        let reason = rustls::CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("portal.example.com")
                .expect("a name")
                .to_owned(),
            presented,
        };
        assert!(format!("{reason:?}").len() > 50_000);
        let classified = classify(
            ureq::Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(reason),
            )),
            false,
        );
        let TransportError::UntrustedCertificate(detail) = &classified else {
            panic!("{classified:?}");
        };
        assert!(detail.starts_with("NotValidForNameContext"), "{detail}");
        assert!(detail.chars().count() <= 301, "{}", detail.chars().count());
        assert!(classified.to_string().chars().count() < 400);
        // Every other detail too, e.g. a proxy's status line.
        let proxy = classify(
            ureq::Error::ConnectProxyFailed(format!(
                "proxy server responded 407/{}",
                "x".repeat(10_000)
            )),
            false,
        );
        assert!(proxy.to_string().chars().count() < 400, "{proxy}");
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
