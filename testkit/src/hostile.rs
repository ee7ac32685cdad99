//! An HTTPS server that misbehaves in one named way, for the hostile-server suite
//! (`tests/hostile_server.rs`).
//!
//! A [`HostileServer`] puts a simulator (ServiceNow, Remedy, the portal) behind one
//! [`Misbehaviour`]. Misbehaviours of the connection (resets, plain HTTP, garbage, TLS
//! alerts, bad certificates, hangs before TLS) hit every connection; misbehaviours of the
//! answer hit only the requests the `targeted` predicate picks (e.g. the Remedy ticket
//! query, after a normal log-on), and every other request is answered by the simulator
//! as usual:
//!
//! ```ignore
//! let server = HostileServer::start(&pki, sim, |request| request.path.contains("/entry/"),
//!                                   Misbehaviour::EndlessChunkedBody);
//! // ... the module must deny within Timeout + 1 s ...
//! ```
//!
//! Request parsing, response encoding and the TCP reset come from `https.rs`, certificates
//! from `pki.rs`. Dropping the server stops it and closes every socket it holds, so threads
//! stuck in a hang end promptly.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::http::{Handler, Request};
use super::https::{
    SocketRegistry, encode_response, lock, read_request, reason, reset, wants_close,
};
use super::pki::{ServerCert, TestPki};

/// How often idle loops (accept, hangs) look at the shutdown flag.
const POLL: Duration = Duration::from_millis(5);
/// The body limit of the module (`http.rs` MAX_BODY_BYTES); oversized answers exceed it.
pub const MODULE_BODY_LIMIT: usize = 1 << 20;
/// What a compressed bomb inflates to: 64 times the module's body limit.
pub const BOMB_INFLATED_BYTES: usize = 1 + 258 * 260_100;

/// One way of answering badly. Each has a name the suite's table uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Answer every request through the simulator: the suite's control row.
    WellBehaved,

    // Where the server is (no connection is ever answered).
    /// Nothing listens on the port: every connection is refused.
    Refused,
    /// The host name does not resolve (`*.invalid`, RFC 6761).
    UnresolvableHost,
    /// The URL still holds the `<instance>` placeholder of the documentation as its host.
    PlaceholderHost,
    /// The URL is this server's, with this path prefix holding characters a URI may not
    /// hold (`<instance>`, a backtick, a tab).
    InvalidUrlPath(String),

    // The connection, before any HTTP.
    /// Accept the TCP connection and never say a byte.
    HangBeforeTls,
    /// Reset (RST) the connection as soon as it is accepted.
    ResetOnAccept,
    /// Read the ClientHello, then reset.
    ResetMidHandshake,
    /// A plain-HTTP server on the HTTPS port: answers the ClientHello with a 400 page.
    PlainHttp,
    /// Pseudo-random bytes instead of TLS.
    Garbage,
    /// A server that speaks only TLS 1.0: its ServerHello picks version 0x0301.
    OldTlsOnly,
    /// A fatal `handshake_failure` alert in answer to the ClientHello.
    TlsAlert,
    /// A complete TLS handshake with this certificate (expired, wrong host, unknown CA).
    Certificate(ServerCert),

    // The answer to a targeted request.
    /// Read the request, never answer.
    HangAfterRequest,
    /// Send the status line and headers (more body announced), then nothing.
    HangAfterHeaders,
    /// Read the request, then reset.
    ResetAfterRequest,
    /// Read the request, then close cleanly (TLS close_notify, FIN) without an answer.
    CloseAfterRequest,
    /// Reset in the middle of the header block.
    ResetMidHeaders,
    /// Reset after half of the real body.
    ResetMidBody,
    /// The real answer announced 4 KiB longer than sent, then a clean TLS close.
    TruncatedBody,
    /// The real answer one byte at a time, one byte per `byte_every`.
    Drip { byte_every: Duration },
    /// `100 Continue`, then nothing.
    Continue100ThenHang,
    /// `100 Continue` carrying a header (which RFC 9110 does not allow), then the answer.
    Continue100WithHeaders,
    /// `100 Continue`, `102 Processing`, `103 Early Hints`, then the real answer: legal.
    InterimResponsesThenAnswer,
    /// `101 Switching Protocols` to a GET or POST nobody asked to upgrade, then close.
    SwitchingProtocols,
    /// This status with this body (and `Retry-After` when given).
    Status {
        status: u16,
        retry_after: Option<String>,
        content_type: String,
        body: String,
    },
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// 200 with an HTML single-sign-on login page, as a misrouted proxy gives.
    HtmlLoginPage,
    /// 200 with a body that is not JSON at all.
    NotJson,
    /// 200 with `Content-Length` and a body of twice the module's body limit.
    OversizedBody,
    /// 200 with a chunked body that never ends.
    EndlessChunkedBody,
    /// The real answer with one header line of 200 KiB.
    OversizedHeaderBlock,
    /// The real answer with 500 extra header lines.
    TooManyHeaders,
    /// The real answer with two different `Content-Length` headers.
    DuplicateContentLength,
    /// 200, `Content-Encoding: gzip`: [`BOMB_INFLATED_BYTES`] of spaces, gzip-compressed.
    GzipBomb,
    /// 200, `Content-Encoding: deflate` (zlib): the same bomb.
    DeflateBomb,
    /// 200 with `depth` opening brackets.
    DeepNesting { depth: usize },
    /// The real answer with every `find` in its body replaced by `replace` (raw text, so
    /// JSON escapes such as `\u0000` may be put in).
    Rewrite { find: String, replace: String },
}

impl Misbehaviour {
    fn acts_on_connections(&self) -> bool {
        matches!(
            self,
            Misbehaviour::HangBeforeTls
                | Misbehaviour::ResetOnAccept
                | Misbehaviour::ResetMidHandshake
                | Misbehaviour::PlainHttp
                | Misbehaviour::Garbage
                | Misbehaviour::OldTlsOnly
                | Misbehaviour::TlsAlert
        )
    }
}

/// Which requests a misbehaviour of the answer applies to.
pub type Targeted = dyn Fn(&Request) -> bool + Send + Sync;

pub struct HostileServer {
    base_url: String,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    misbehaviour: Misbehaviour,
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<dyn Handler>,
    targeted: Box<Targeted>,
    shutdown: AtomicBool,
    connections: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    /// How many `find`s a `Rewrite` has replaced, so a test can tell that it took effect.
    rewritten: AtomicUsize,
    sockets: SocketRegistry,
}

impl HostileServer {
    /// Starts listening on `127.0.0.1` (unless the misbehaviour is about where the server
    /// is); the URL is known on return.
    pub fn start(
        pki: &TestPki,
        handler: Arc<dyn Handler>,
        targeted: impl Fn(&Request) -> bool + Send + Sync + 'static,
        misbehaviour: Misbehaviour,
    ) -> HostileServer {
        let certificate = match misbehaviour {
            Misbehaviour::Certificate(kind) => kind,
            _ => ServerCert::Good,
        };
        let shared = Arc::new(Shared {
            misbehaviour: misbehaviour.clone(),
            tls: pki.server_config(certificate),
            handler,
            targeted: Box::new(targeted),
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            rewritten: AtomicUsize::new(0),
            sockets: SocketRegistry::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let base_url = match &misbehaviour {
            Misbehaviour::UnresolvableHost => format!("https://pam-ticket-hostile.invalid:{port}"),
            Misbehaviour::PlaceholderHost => format!("https://<instance>.service-now.com:{port}"),
            Misbehaviour::InvalidUrlPath(path) => format!("https://localhost:{port}{path}"),
            _ => format!("https://localhost:{port}"),
        };
        let accept_thread = if misbehaviour == Misbehaviour::Refused {
            // The port was just bound and is now released: connecting is refused.
            drop(listener);
            None
        } else {
            listener
                .set_nonblocking(true)
                .expect("make the listener non-blocking");
            let accept_shared = Arc::clone(&shared);
            Some(
                thread::Builder::new()
                    .name(format!("hostile-accept-{port}"))
                    .spawn(move || accept_loop(listener, accept_shared))
                    .expect("spawn the accept thread"),
            )
        };
        HostileServer {
            base_url,
            shared,
            accept_thread,
        }
    }

    /// `https://localhost:PORT` (or the unresolvable / placeholder URL).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn misbehaviour(&self) -> &Misbehaviour {
        &self.shared.misbehaviour
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many times a `Rewrite` found its text in an answer and replaced it.
    pub fn rewrite_count(&self) -> usize {
        self.shared.rewritten.load(Ordering::SeqCst)
    }

    /// Requests fully received (targeted or not), oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        self.shared.sockets.shut_down_all();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(&shared);
                // Out of threads: the client sees the connection close; nothing to recover.
                let _ = thread::Builder::new()
                    .name("hostile-conn".to_string())
                    .spawn(move || serve_connection(stream, conn_shared));
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

fn hang_until_shutdown(shared: &Shared) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        thread::sleep(POLL);
    }
}

/// Reads whatever the client sends first (its ClientHello), for at most a second.
fn read_client_hello(tcp: &mut TcpStream) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let mut hello = [0u8; 4096];
    let _ = tcp.read(&mut hello);
}

/// Writes, then waits (briefly) for the client to give up before closing, so that it
/// reads what was sent rather than a reset.
fn say_and_close(tcp: &mut TcpStream, bytes: &[u8]) {
    let _ = tcp.write_all(bytes);
    let _ = tcp.flush();
    let _ = tcp.shutdown(Shutdown::Write);
    let mut rest = [0u8; 4096];
    while matches!(tcp.read(&mut rest), Ok(read) if read > 0) {}
}

fn serve_connection(mut tcp: TcpStream, shared: Arc<Shared>) {
    if tcp.set_nonblocking(false).is_err() {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let Some(_registered) = shared.sockets.register(&tcp, &shared.shutdown) else {
        return;
    };
    if shared.misbehaviour.acts_on_connections() {
        misbehave_on_connection(&mut tcp, &shared);
        return;
    }

    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&shared.tls)) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buffer = Vec::new();
    while let Ok(Some(request)) = read_request(&mut tls, &mut buffer) {
        lock(&shared.requests).push(request.clone());
        let close = wants_close(&request);
        let next = if (shared.targeted)(&request) {
            misbehave_on_answer(&mut tls, &request, &shared)
        } else {
            let bytes = encode_response(&shared.handler.handle(&request), close);
            write_all(&mut tls, &bytes)
        };
        match next {
            Next::KeepServing if !close => {}
            Next::KeepServing | Next::CloseCleanly => break,
            Next::Abandon => return,
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Both);
}

fn misbehave_on_connection(tcp: &mut TcpStream, shared: &Shared) {
    match &shared.misbehaviour {
        Misbehaviour::HangBeforeTls => hang_until_shutdown(shared),
        Misbehaviour::ResetOnAccept => reset(tcp),
        Misbehaviour::ResetMidHandshake => {
            read_client_hello(tcp);
            reset(tcp);
        }
        Misbehaviour::PlainHttp => {
            read_client_hello(tcp);
            let page =
                "<html><head><title>400 Bad Request</title></head><body>Bad Request</body></html>";
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            say_and_close(tcp, answer.as_bytes());
        }
        Misbehaviour::Garbage => say_and_close(tcp, &garbage(4096)),
        Misbehaviour::OldTlsOnly => {
            read_client_hello(tcp);
            say_and_close(tcp, &tls10_server_hello());
        }
        Misbehaviour::TlsAlert => {
            read_client_hello(tcp);
            // A TLS 1.2 record holding a fatal (2) handshake_failure (40) alert.
            say_and_close(tcp, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40]);
        }
        _ => {}
    }
}

/// What the connection does after a misbehaving answer.
enum Next {
    KeepServing,
    CloseCleanly,
    /// Leave without a close_notify (after a reset or a hang).
    Abandon,
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

fn write_all(tls: &mut Tls, bytes: &[u8]) -> Next {
    if tls.write_all(bytes).is_err() || tls.flush().is_err() {
        Next::Abandon
    } else {
        Next::KeepServing
    }
}

/// A status line and header block, ending with the empty line.
fn head(status: u16, headers: &[(&str, String)]) -> String {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out
}

fn with_body(head: String, body: &[u8]) -> Vec<u8> {
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn misbehave_on_answer(tls: &mut Tls, request: &Request, shared: &Shared) -> Next {
    let real = || shared.handler.handle(request);
    let json = || ("Content-Type", "application/json;charset=UTF-8".to_string());
    match &shared.misbehaviour {
        Misbehaviour::HangAfterRequest => {
            hang_until_shutdown(shared);
            Next::Abandon
        }
        Misbehaviour::HangAfterHeaders => {
            let _ = write_all(
                tls,
                head(200, &[json(), ("Content-Length", "512".to_string())]).as_bytes(),
            );
            hang_until_shutdown(shared);
            Next::Abandon
        }
        Misbehaviour::ResetAfterRequest => {
            reset(&tls.sock);
            Next::Abandon
        }
        Misbehaviour::CloseAfterRequest => Next::CloseCleanly,
        Misbehaviour::ResetMidHeaders => {
            let _ = write_all(tls, b"HTTP/1.1 200 OK\r\nContent-Type: applica");
            reset(&tls.sock);
            Next::Abandon
        }
        Misbehaviour::ResetMidBody => {
            let response = real();
            let bytes = encode_response(&response, false);
            let cut = bytes.len() - response.body.len().div_ceil(2);
            let _ = write_all(tls, &bytes[..cut]);
            reset(&tls.sock);
            Next::Abandon
        }
        Misbehaviour::TruncatedBody => {
            let response = real();
            let announced = response.body.len() + 4096;
            let head = head(
                response.status,
                &[json(), ("Content-Length", announced.to_string())],
            );
            let _ = write_all(tls, &with_body(head, &response.body));
            Next::CloseCleanly
        }
        Misbehaviour::Drip { byte_every } => {
            for byte in encode_response(&real(), false) {
                if shared.shutdown.load(Ordering::SeqCst)
                    || matches!(write_all(tls, &[byte]), Next::Abandon)
                {
                    return Next::Abandon;
                }
                thread::sleep(*byte_every);
            }
            Next::KeepServing
        }
        Misbehaviour::Continue100ThenHang => {
            let _ = write_all(tls, b"HTTP/1.1 100 Continue\r\n\r\n");
            hang_until_shutdown(shared);
            Next::Abandon
        }
        Misbehaviour::Continue100WithHeaders => {
            let mut bytes = b"HTTP/1.1 100 Continue\r\nX-Interim: surprise\r\n\r\n".to_vec();
            bytes.extend(encode_response(&real(), false));
            write_all(tls, &bytes)
        }
        Misbehaviour::InterimResponsesThenAnswer => {
            let mut bytes = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
                HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
                .to_vec();
            bytes.extend(encode_response(&real(), false));
            write_all(tls, &bytes)
        }
        Misbehaviour::SwitchingProtocols => {
            let _ = write_all(
                tls,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            );
            Next::CloseCleanly
        }
        Misbehaviour::Status {
            status,
            retry_after,
            content_type,
            body,
        } => {
            let mut headers = vec![
                ("Content-Type", content_type.clone()),
                ("Content-Length", body.len().to_string()),
            ];
            if let Some(seconds) = retry_after {
                headers.push(("Retry-After", seconds.clone()));
            }
            write_all(tls, &with_body(head(*status, &headers), body.as_bytes()))
        }
        Misbehaviour::Redirect { status, location } => {
            let body =
                format!("<html><body>Moved to <a href=\"{location}\">here</a></body></html>");
            let headers = [
                ("Location", location.clone()),
                ("Content-Type", "text/html".to_string()),
                ("Content-Length", body.len().to_string()),
            ];
            write_all(tls, &with_body(head(*status, &headers), body.as_bytes()))
        }
        Misbehaviour::HtmlLoginPage => {
            canned(tls, "text/html; charset=utf-8", None, SSO_PAGE.as_bytes())
        }
        Misbehaviour::NotJson => canned(tls, "application/json", None, &garbage(300)),
        Misbehaviour::OversizedBody => {
            let size = 2 * MODULE_BODY_LIMIT;
            let _ = write_all(
                tls,
                head(200, &[json(), ("Content-Length", size.to_string())]).as_bytes(),
            );
            let block = vec![b' '; 64 * 1024];
            for _ in 0..size / block.len() {
                if shared.shutdown.load(Ordering::SeqCst)
                    || matches!(write_all(tls, &block), Next::Abandon)
                {
                    return Next::Abandon;
                }
            }
            Next::CloseCleanly
        }
        Misbehaviour::EndlessChunkedBody => {
            let _ = write_all(
                tls,
                head(200, &[json(), ("Transfer-Encoding", "chunked".to_string())]).as_bytes(),
            );
            let mut chunk = b"4000\r\n".to_vec();
            chunk.extend(std::iter::repeat_n(b' ', 0x4000));
            chunk.extend_from_slice(b"\r\n");
            while !shared.shutdown.load(Ordering::SeqCst) {
                if matches!(write_all(tls, &chunk), Next::Abandon) {
                    break;
                }
            }
            Next::Abandon
        }
        Misbehaviour::OversizedHeaderBlock => {
            let response = real();
            let headers = [
                json(),
                ("X-Padding", "a".repeat(200 * 1024)),
                ("Content-Length", response.body.len().to_string()),
            ];
            write_all(
                tls,
                &with_body(head(response.status, &headers), &response.body),
            )
        }
        Misbehaviour::TooManyHeaders => {
            let response = real();
            let mut headers = vec![json(), ("Content-Length", response.body.len().to_string())];
            headers.extend((0..500).map(|n| ("X-Filler", n.to_string())));
            write_all(
                tls,
                &with_body(head(response.status, &headers), &response.body),
            )
        }
        Misbehaviour::DuplicateContentLength => {
            let response = real();
            let headers = [
                json(),
                ("Content-Length", response.body.len().to_string()),
                ("Content-Length", (response.body.len() + 7).to_string()),
            ];
            write_all(
                tls,
                &with_body(head(response.status, &headers), &response.body),
            )
        }
        Misbehaviour::GzipBomb => canned(tls, "application/json", Some("gzip"), gzip_bomb()),
        Misbehaviour::DeflateBomb => canned(tls, "application/json", Some("deflate"), zlib_bomb()),
        Misbehaviour::DeepNesting { depth } => {
            canned(tls, "application/json", None, "[".repeat(*depth).as_bytes())
        }
        Misbehaviour::Rewrite { find, replace } => {
            let mut response = real();
            let text = String::from_utf8_lossy(&response.body).into_owned();
            shared
                .rewritten
                .fetch_add(text.matches(find.as_str()).count(), Ordering::SeqCst);
            let text = text.replace(find.as_str(), replace);
            response.body = text.into_bytes();
            write_all(tls, &encode_response(&response, false))
        }
        // Misbehaviours of the connection never reach an answer; these answer normally.
        _ => write_all(tls, &encode_response(&real(), false)),
    }
}

/// 200 with this body, `Content-Encoding` when given.
fn canned(tls: &mut Tls, content_type: &str, encoding: Option<&str>, body: &[u8]) -> Next {
    let mut headers = vec![
        ("Content-Type", content_type.to_string()),
        ("Content-Length", body.len().to_string()),
    ];
    if let Some(encoding) = encoding {
        headers.push(("Content-Encoding", encoding.to_string()));
    }
    write_all(tls, &with_body(head(200, &headers), body))
}

const SSO_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>\
<form method=\"post\" action=\"/login.do\"><input name=\"user_name\"><input type=\"password\" \
name=\"user_password\"><button>Log in</button></form></body></html>\n";

/// Deterministic pseudo-random bytes (xorshift), so a failure can be replayed.
fn garbage(length: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A ServerHello record that negotiates TLS 1.0 (0x0301) with TLS_RSA_WITH_AES_128_CBC_SHA,
/// as a server that supports nothing newer answers a modern ClientHello.
fn tls10_server_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x01];
    hello.extend_from_slice(&garbage(32));
    hello.push(0); // no session id
    hello.extend_from_slice(&[0x00, 0x2f]); // cipher suite
    hello.push(0); // no compression
    let mut handshake = vec![0x02, 0x00, 0x00, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// Raw DEFLATE (RFC 1951) of [`BOMB_INFLATED_BYTES`] spaces: one fixed-Huffman block, a
/// literal space, then copies of 258 bytes at distance 1. About 13 bits per 258 bytes.
fn deflate_spaces() -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        pending: u64,
        count: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first (DEFLATE's header fields).
        fn put(&mut self, value: u64, count: u32) {
            self.pending |= value << self.count;
            self.count += count;
            while self.count >= 8 {
                self.out.push(self.pending as u8);
                self.pending >>= 8;
                self.count -= 8;
            }
        }
        /// A Huffman code, which DEFLATE packs most significant bit first.
        fn code(&mut self, code: u64, length: u32) {
            let reversed = code.reverse_bits() >> (64 - length);
            self.put(reversed, length);
        }
    }
    let copies = (BOMB_INFLATED_BYTES - 1) / 258;
    let mut bits = Bits {
        out: Vec::with_capacity(copies * 13 / 8 + 16),
        pending: 0,
        count: 0,
    };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman codes
    bits.code(0x30 + u64::from(b' '), 8); // literal ' '
    for _ in 0..copies {
        bits.code(0b1100_0101, 8); // length symbol 285: 258 bytes
        bits.code(0, 5); // distance symbol 0: distance 1
    }
    bits.code(0, 7); // end of block (256)
    bits.put(0, 7); // flush the last byte
    bits.out
}

/// The gzip (RFC 1952) bomb, built once.
pub fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        out.extend(deflate_spaces());
        out.extend_from_slice(&crc32_of_spaces(BOMB_INFLATED_BYTES).to_le_bytes());
        out.extend_from_slice(&(BOMB_INFLATED_BYTES as u32).to_le_bytes());
        out
    })
}

/// The zlib (RFC 1950) bomb that `Content-Encoding: deflate` means, built once.
pub fn zlib_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        // CMF 0x78 (deflate, 32 KiB window), FLG 0x01: 0x7801 is a multiple of 31.
        let mut out = vec![0x78, 0x01];
        out.extend(deflate_spaces());
        // Adler-32 of n spaces in closed form: a = 1 + 32n, b = n + 32 n (n + 1) / 2.
        let n = BOMB_INFLATED_BYTES as u128;
        let a = (1 + 32 * n) % 65521;
        let b = (n + 32 * n * (n + 1) / 2) % 65521;
        out.extend_from_slice(&(((b << 16) | a) as u32).to_be_bytes());
        out
    })
}

/// CRC-32 (IEEE) of `length` spaces, by squaring the "append one space" map: the CRC
/// update for a fixed byte is affine over GF(2), so it composes in O(log length).
fn crc32_of_spaces(length: usize) -> u32 {
    /// An affine map on 32-bit states: x -> M x + c, M given by its 32 columns.
    #[derive(Clone, Copy)]
    struct Affine {
        columns: [u32; 32],
        constant: u32,
    }
    impl Affine {
        fn apply(&self, x: u32) -> u32 {
            let mut out = self.constant;
            for (bit, column) in self.columns.iter().enumerate() {
                if x >> bit & 1 == 1 {
                    out ^= column;
                }
            }
            out
        }
        /// `self` after `first`.
        fn after(&self, first: &Affine) -> Affine {
            let mut columns = [0u32; 32];
            for (bit, column) in columns.iter_mut().enumerate() {
                // The linear part only: M_self (M_first e_bit).
                *column = self.apply(first.columns[bit]) ^ self.constant;
            }
            Affine {
                columns,
                constant: self.apply(first.constant),
            }
        }
    }
    fn step(state: u32) -> u32 {
        let mut crc = state ^ u32::from(b' ');
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
        crc
    }
    let constant = step(0);
    let mut one_space = Affine {
        columns: [0; 32],
        constant,
    };
    for (bit, column) in one_space.columns.iter_mut().enumerate() {
        *column = step(1 << bit) ^ constant;
    }
    let mut total = Affine {
        columns: std::array::from_fn(|bit| 1 << bit),
        constant: 0,
    };
    let mut remaining = length;
    let mut power = one_space;
    while remaining > 0 {
        if remaining & 1 == 1 {
            total = power.after(&total);
        }
        power = power.after(&power);
        remaining >>= 1;
    }
    // CRC-32 starts from all ones and inverts at the end.
    !total.apply(0xFFFF_FFFF)
}
