//! A small threaded HTTPS/1.1 server for simulators, with named network faults.
//!
//! It listens on `127.0.0.1` with an ephemeral port, runs one thread per connection, parses
//! each request into a [`Request`], asks the [`Handler`] for a [`Response`] and writes it back
//! with a `Content-Length`. Connections are kept alive until the client closes them or asks
//! for `Connection: close`.
//!
//! Every failure the module must survive is a [`Fault`] that can be switched on at any time:
//!
//! ```ignore
//! let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
//! server.set_fault(Fault::Hang);
//! // ... the module must give up within its deadline ...
//! assert_eq!(server.request_count(), 1);
//! ```
//!
//! Dropping the server stops the accept loop and closes every socket it holds, so threads
//! stuck in a fault exit promptly and never keep the test process busy.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http::{Handler, Request, Response};
use super::pki::{ServerCert, TestPki};

/// How the server misbehaves. Per-request faults are read when a request has been received,
/// `HangBeforeTls` when a TCP connection is accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally through the handler.
    #[default]
    None,
    /// Finish the TLS handshake, read and count the request, then neither answer nor close
    /// until the server is dropped.
    Hang,
    /// Accept the TCP connection and never say a byte (the TLS handshake never completes).
    HangBeforeTls,
    /// Send the handler's (valid) response one byte at a time, sleeping between bytes.
    Drip { byte_every: Duration },
    /// Send the status line and headers announcing more body than is sent, a few body bytes,
    /// then close the TCP connection without a TLS close_notify.
    CloseMidResponse,
    /// Answer every request with this status and this JSON body, without calling the handler.
    Status(u16, String),
    /// Read the request, then close with `SO_LINGER` 0 so the client sees a TCP reset.
    ResetConnection,
    /// The first n requests after `set_fault` get a 503 with a JSON error body; later ones
    /// are handled normally.
    FailFirst(usize),
    /// Answer 200 with a well-formed JSON body of [`OVERSIZED_BODY_BYTES`], larger than
    /// any client should read.
    OversizedBody,
    /// Answer 200 with one header line of [`OVERSIZED_HEADER_BYTES`].
    OversizedHeader,
    /// Answer 200 with [`TOO_MANY_HEADERS`] header lines.
    TooManyHeaders,
    /// Answer with the handler's response, framed by two Content-Length headers that
    /// disagree (the real length and 5 more).
    DuplicateContentLength,
    /// Speak plain HTTP on the TLS port: read the ClientHello, answer `400 Bad Request`
    /// in clear text, close (what an HTTP server on the wrong port does).
    PlainHttp,
    /// Read the ClientHello, answer bytes that are neither TLS nor HTTP, close.
    Garbage,
    /// Read the ClientHello, answer a ServerHello for TLS 1.0 (a server that speaks
    /// nothing newer), then wait for the client to give up.
    OldTlsVersion,
    /// Read the ClientHello, answer a fatal `handshake_failure` alert, close.
    TlsAlert,
}

/// The body size of `Fault::OversizedBody`: 2 MiB, twice what the module reads.
pub const OVERSIZED_BODY_BYTES: usize = 2 << 20;
/// The header line size of `Fault::OversizedHeader`, over ureq's 64 KiB head limit.
pub const OVERSIZED_HEADER_BYTES: usize = 70_000;
/// The header count of `Fault::TooManyHeaders`, over ureq's 128.
pub const TOO_MANY_HEADERS: usize = 200;

/// The JSON body sent by `FailFirst`, shaped like a ServiceNow error.
pub const FAIL_FIRST_BODY: &str =
    r#"{"error":{"message":"Service Unavailable","detail":"simulated outage"},"status":"failure"}"#;

/// Largest request head accepted; a test client never comes close.
const MAX_HEAD: usize = 64 * 1024;
/// How often idle loops (accept, hangs) look at the shutdown flag.
const POLL: Duration = Duration::from_millis(5);

pub struct TestServer {
    port: u16,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<dyn Handler>,
    shutdown: AtomicBool,
    fault: Mutex<Fault>,
    /// How many requests `FailFirst` has failed since the fault was set.
    failed_so_far: AtomicUsize,
    request_count: AtomicUsize,
    connection_count: AtomicUsize,
    requests: Mutex<Vec<Request>>,
    /// A clone of every open socket, so `Drop` can shut them down and unblock their threads.
    sockets: SocketRegistry,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts accepting at once; the port is known on return.
    pub fn start(tls: Arc<rustls::ServerConfig>, handler: Arc<dyn Handler>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        // Non-blocking so the accept loop can notice the shutdown flag.
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let shared = Arc::new(Shared {
            tls,
            handler,
            shutdown: AtomicBool::new(false),
            fault: Mutex::new(Fault::None),
            failed_so_far: AtomicUsize::new(0),
            request_count: AtomicUsize::new(0),
            connection_count: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            sockets: SocketRegistry::default(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("https-accept-{port}"))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the accept thread");
        TestServer {
            port,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A server that presents the `kind` certificate and requires a client certificate
    /// issued by the trusted CA (see
    /// [`TestPki::server_config_requiring_client_certificates`]); each request records the
    /// certificate the client presented ([`Request::client_certificate`]).
    pub fn start_requiring_client_certificates(
        pki: &TestPki,
        kind: ServerCert,
        handler: Arc<dyn Handler>,
    ) -> TestServer {
        TestServer::start(
            pki.server_config_requiring_client_certificates(kind),
            handler,
        )
    }

    /// `https://localhost:PORT`, the name the `Good` certificate carries.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// `https://127.0.0.1:PORT`; the `Good` certificate carries this IP too.
    pub fn ip_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `base_url()` followed by `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// Requests fully received, whether the handler answered them or a fault did.
    pub fn request_count(&self) -> usize {
        self.shared.request_count.load(Ordering::SeqCst)
    }

    /// Every request counted by `request_count`, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> usize {
        self.shared.connection_count.load(Ordering::SeqCst)
    }

    /// Zeroes both counters and empties the request log (the fault stays as it is).
    pub fn reset_counters(&self) {
        self.shared.request_count.store(0, Ordering::SeqCst);
        self.shared.connection_count.store(0, Ordering::SeqCst);
        lock(&self.shared.requests).clear();
    }

    /// Switches the fault for requests and connections from now on. Setting `FailFirst(n)`
    /// restarts its count.
    pub fn set_fault(&self, fault: Fault) {
        let mut current = lock(&self.shared.fault);
        self.shared.failed_so_far.store(0, Ordering::SeqCst);
        *current = fault;
    }

    pub fn fault(&self) -> Fault {
        lock(&self.shared.fault).clone()
    }

    /// Waits until at least `count` requests have been received; false on time-out. For
    /// faults where the client gives up before the server has logged anything.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.request_count() < count {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
        true
    }

    /// Waits until at least `count` TCP connections have been accepted; false on time-out.
    pub fn wait_for_connections(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.connection_count() < count {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
        true
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accept_thread.take() {
            // The accept loop polls the flag every few milliseconds.
            let _ = thread.join();
        }
        // Unblocks every connection thread stuck in a read; hung ones see the flag.
        self.shared.sockets.shut_down_all();
    }
}

/// A loopback port where nothing listens, so connecting is refused at once. The port was
/// free a moment ago; another process could take it, which on a test machine is unlikely.
pub fn refusing_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("bound address").port()
}

/// Locks a mutex even if a panicking handler thread poisoned it: the data (counters, logs)
/// stays meaningful and the test should report the panic, not a poison error.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connection_count.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name("https-conn".to_string())
                    .spawn(move || serve_connection(stream, conn_shared));
                if spawned.is_err() {
                    // Out of threads: the client sees the connection close, as with a full
                    // server; nothing here to recover.
                    continue;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// The open connections of a test server, so that dropping the server can unblock every
/// connection thread stuck in a read. Shared by the HTTPS and the hostile server.
#[derive(Default)]
pub(crate) struct SocketRegistry {
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

impl SocketRegistry {
    /// Registers an accepted connection until the returned guard is dropped. `shutdown` is
    /// the server's flag: a connection accepted while the server was being dropped is shut
    /// down at once, since the sweep in `shut_down_all` may have missed it.
    pub(crate) fn register(
        &self,
        stream: &TcpStream,
        shutdown: &AtomicBool,
    ) -> Option<Registered<'_>> {
        let clone = stream.try_clone().ok()?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        lock(&self.sockets).insert(id, clone);
        if shutdown.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        Some(Registered { registry: self, id })
    }

    /// Shuts every registered connection down (both directions).
    pub(crate) fn shut_down_all(&self) {
        for socket in lock(&self.sockets).values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Removes a socket from the registry when its connection thread ends.
pub(crate) struct Registered<'a> {
    registry: &'a SocketRegistry,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.registry.sockets).remove(&self.id);
    }
}

fn serve_connection(tcp: TcpStream, shared: Arc<Shared>) {
    // Accepted sockets must block; only the listener polls.
    if tcp.set_nonblocking(false).is_err() {
        return;
    }
    let _ = tcp.set_nodelay(true);
    let Some(_registered) = shared.sockets.register(&tcp, &shared.shutdown) else {
        return;
    };

    let connection_fault = lock(&shared.fault).clone();
    match connection_fault {
        Fault::HangBeforeTls => {
            hang_until_shutdown(&shared);
            return;
        }
        Fault::PlainHttp => {
            answer_before_tls(
                tcp,
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: 31\r\n\
                  Connection: close\r\n\r\n<html>Plain HTTP only</html>\r\n",
            );
            return;
        }
        Fault::Garbage => {
            answer_before_tls(tcp, &[0x9f; 512]);
            return;
        }
        Fault::TlsAlert => {
            // Record type alert, TLS 1.2, length 2: level fatal, handshake_failure.
            answer_before_tls(tcp, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
            return;
        }
        Fault::OldTlsVersion => {
            answer_before_tls(tcp, &tls10_server_hello());
            return;
        }
        _ => {}
    }

    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&shared.tls)) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buffer = Vec::new();

    // The loop ends on a clean close between requests, a TLS failure (e.g. the client
    // rejected our certificate), or garbage: in every case the connection is over.
    while let Ok(Some(mut request)) = read_request(&mut tls, &mut buffer) {
        request.client_certificate = tls
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|certificate| certificate.to_vec());
        let wants_close = wants_close(&request);
        shared.request_count.fetch_add(1, Ordering::SeqCst);
        lock(&shared.requests).push(request.clone());

        let fault = lock(&shared.fault).clone();
        let response = match fault {
            Fault::None | Fault::HangBeforeTls => call_handler(&shared, &request),
            Fault::Hang => {
                hang_until_shutdown(&shared);
                return;
            }
            Fault::ResetConnection => {
                reset(&tls.sock);
                return;
            }
            Fault::CloseMidResponse => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n\
                            Content-Length: 4096\r\n\r\n{\"result\":[{\"num";
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.flush();
                // Abrupt close, as a crashing server or a cut link would leave it.
                let _ = tls.sock.shutdown(Shutdown::Both);
                return;
            }
            Fault::Status(status, body) => json_response(status, body),
            Fault::OversizedBody
            | Fault::OversizedHeader
            | Fault::TooManyHeaders
            | Fault::DuplicateContentLength => {
                let bytes =
                    malformed_response(&fault, &call_handler_if_framed(&shared, &request, &fault));
                if tls.write_all(&bytes).is_err() || tls.flush().is_err() {
                    return;
                }
                // The framing cannot be trusted, so the connection cannot be reused.
                break;
            }
            // Connection-level faults, set after this connection's handshake: answer
            // normally.
            Fault::PlainHttp | Fault::Garbage | Fault::OldTlsVersion | Fault::TlsAlert => {
                call_handler(&shared, &request)
            }
            Fault::FailFirst(n) => {
                let failed = shared
                    .failed_so_far
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |done| {
                        (done < n).then_some(done + 1)
                    })
                    .is_ok();
                if failed {
                    json_response(503, FAIL_FIRST_BODY.to_string())
                } else {
                    call_handler(&shared, &request)
                }
            }
            Fault::Drip { byte_every } => {
                let bytes = encode_response(&call_handler(&shared, &request), wants_close);
                for byte in bytes {
                    if shared.shutdown.load(Ordering::SeqCst)
                        || tls.write_all(&[byte]).is_err()
                        || tls.flush().is_err()
                    {
                        return;
                    }
                    thread::sleep(byte_every);
                }
                if wants_close {
                    break;
                }
                continue;
            }
        };

        let bytes = encode_response(&response, wants_close);
        if tls.write_all(&bytes).is_err() || tls.flush().is_err() {
            return;
        }
        if wants_close {
            break;
        }
    }

    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Both);
}

/// Reads what the client sends first (its ClientHello), writes `bytes` in clear, and
/// closes, letting the client read them before it sees the close.
fn answer_before_tls(mut tcp: TcpStream, bytes: &[u8]) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let mut hello = [0u8; 4096];
    let _ = tcp.read(&mut hello);
    let _ = tcp.write_all(bytes);
    let _ = tcp.flush();
    let _ = tcp.shutdown(Shutdown::Write);
    // Wait for the client to close (it gives up at once), so that our close comes after
    // it read the bytes, never as a reset that would hide them.
    let _ = tcp.read(&mut hello);
}

/// A ServerHello record for TLS 1.0 with TLS_RSA_WITH_AES_128_CBC_SHA, no extensions: what
/// a server that speaks nothing newer answers to any ClientHello.
fn tls10_server_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x01];
    hello.extend([0x5a; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x2f]); // cipher suite
    hello.push(0); // no compression
    let mut handshake = vec![0x02, 0x00, 0x00, hello.len() as u8];
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, handshake.len() as u8];
    record.extend(handshake);
    record
}

/// The handler's answer for `DuplicateContentLength` (a real answer in a broken frame);
/// none for the faults that send a body of their own.
fn call_handler_if_framed(shared: &Shared, request: &Request, fault: &Fault) -> Response {
    match fault {
        Fault::DuplicateContentLength => call_handler(shared, request),
        _ => Response::text(200, ""),
    }
}

/// The bytes of a response that breaks HTTP framing or a client's limits, per `fault`.
fn malformed_response(fault: &Fault, handled: &Response) -> Vec<u8> {
    let mut head =
        String::from("HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n");
    let body = match fault {
        Fault::OversizedBody => {
            let mut body = br#"{"result":[],"padding":""#.to_vec();
            let close = br#""}"#;
            body.resize(OVERSIZED_BODY_BYTES - close.len(), b'x');
            body.extend_from_slice(close);
            body
        }
        Fault::OversizedHeader => {
            head.push_str(&format!(
                "X-Padding: {}\r\n",
                "x".repeat(OVERSIZED_HEADER_BYTES)
            ));
            br#"{"result":[]}"#.to_vec()
        }
        Fault::TooManyHeaders => {
            for index in 0..TOO_MANY_HEADERS {
                head.push_str(&format!("X-Header-{index}: {index}\r\n"));
            }
            br#"{"result":[]}"#.to_vec()
        }
        _ => {
            head = format!("HTTP/1.1 {} {}\r\n", handled.status, reason(handled.status));
            for (name, value) in &handled.headers {
                if !name.eq_ignore_ascii_case("content-length") {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            // Two lengths that disagree: a request-smuggling frame, which no client may
            // read one way or the other.
            head.push_str(&format!("Content-Length: {}\r\n", handled.body.len() + 5));
            handled.body.clone()
        }
    };
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

fn hang_until_shutdown(shared: &Shared) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        thread::sleep(POLL);
    }
}

/// Closes with `SO_LINGER` {on, 0}: the kernel discards unsent data and sends RST.
pub fn reset(tcp: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open (owned by `tcp`, alive for this call) and `linger` is a valid
    // `struct linger` whose size is passed alongside it.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // No shutdown(): that would send a FIN first. The RST goes out when the last fd of the
    // socket closes: the connection's own stream and the registry's clone, both dropped as
    // the connection thread returns right after this.
}

fn call_handler(shared: &Shared, request: &Request) -> Response {
    // A panicking simulator should fail the test with its message, not as a mysterious
    // connection reset.
    match catch_unwind(AssertUnwindSafe(|| shared.handler.handle(request))) {
        Ok(response) => response,
        Err(_) => Response::text(500, "simulator handler panicked"),
    }
}

fn json_response(status: u16, body: String) -> Response {
    Response {
        status,
        headers: vec![(
            "Content-Type".to_string(),
            "application/json;charset=UTF-8".to_string(),
        )],
        body: body.into_bytes(),
    }
}

pub fn wants_close(request: &Request) -> bool {
    request
        .header("connection")
        .is_some_and(|value| value.eq_ignore_ascii_case("close"))
}

/// The bytes of `response` on the wire: status line, the handler's headers (framing
/// headers left out), `Content-Length`, and `Connection: close` when `close`.
pub fn encode_response(response: &Response, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        // The server owns framing; a handler's own values would contradict it.
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("connection")
        {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&response.body);
    bytes
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Reads one request. `buffer` carries bytes already read past the previous request
/// (pipelining). `Ok(None)` means the peer closed cleanly before a new request started.
pub fn read_request(stream: &mut impl Read, buffer: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(pos) = find(buffer, b"\r\n\r\n") {
            break pos;
        }
        if buffer.len() > MAX_HEAD {
            return Err(invalid("request head too large"));
        }
        if fill(stream, buffer)? == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(invalid("connection closed inside a request head"))
            };
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);

    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("malformed request line"));
    };
    let mut request = Request {
        method: method.to_string(),
        ..Request::default()
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid("malformed header line"));
        };
        request
            .headers
            .insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }

    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    request.path = percent_decode(raw_path, false);
    request.raw_query = raw_query.to_string();
    request.query = parse_query(raw_query);

    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    request.body = if chunked {
        read_chunked(stream, buffer)?
    } else {
        let length = match request.header("content-length") {
            Some(value) => value
                .parse::<usize>()
                .map_err(|_| invalid("bad Content-Length"))?,
            None => 0,
        };
        read_exact_buffered(stream, buffer, length)?
    };
    Ok(Some(request))
}

fn read_chunked(stream: &mut impl Read, buffer: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buffer)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| invalid("bad chunk size line"))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            while !read_line(stream, buffer)?.is_empty() {}
            return Ok(body);
        }
        body.extend(read_exact_buffered(stream, buffer, size)?);
        if !read_line(stream, buffer)?.is_empty() {
            return Err(invalid("chunk not followed by CRLF"));
        }
    }
}

fn read_line(stream: &mut impl Read, buffer: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(pos) = find(buffer, b"\r\n") {
            let line = String::from_utf8_lossy(&buffer[..pos]).into_owned();
            buffer.drain(..pos + 2);
            return Ok(line);
        }
        if buffer.len() > MAX_HEAD {
            return Err(invalid("line too long"));
        }
        if fill(stream, buffer)? == 0 {
            return Err(invalid("connection closed inside a chunked body"));
        }
    }
}

fn read_exact_buffered(
    stream: &mut impl Read,
    buffer: &mut Vec<u8>,
    length: usize,
) -> io::Result<Vec<u8>> {
    while buffer.len() < length {
        if fill(stream, buffer)? == 0 {
            return Err(invalid("connection closed inside a body"));
        }
    }
    Ok(buffer.drain(..length).collect())
}

fn fill(stream: &mut impl Read, buffer: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let read = match stream.read(&mut chunk) {
        Ok(read) => read,
        // A peer that closes without close_notify ends the connection all the same.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
        Err(e) => return Err(e),
    };
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Splits `a=1&b=x+y` into decoded pairs; a key without `=` gets an empty value.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true), percent_decode(value, true))
        })
        .collect()
}

/// Decodes `%XX` escapes (invalid ones are kept as they are) and, in a query, `+` as space.
/// Bytes that do not form UTF-8 become U+FFFD, which a test would notice.
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}
