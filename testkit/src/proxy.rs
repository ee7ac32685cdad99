//! An HTTP `CONNECT` proxy on `127.0.0.1`, to prove the module tunnels through a configured
//! proxy (and to count how often it does).
//!
//! ```ignore
//! let proxy = ConnectProxy::start();
//! // configure the module with proxy.url(), log in ...
//! assert_eq!(proxy.targets(), vec![format!("localhost:{}", server.port())]);
//! ```
//!
//! Anything but `CONNECT` gets `405`; a target that cannot be reached gets `502`; with
//! [`ConnectProxy::refuse_with`], every `CONNECT` gets the status given.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::https::lock;

const MAX_HEAD: usize = 16 * 1024;
const POLL: Duration = Duration::from_millis(5);

pub struct ConnectProxy {
    port: u16,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

struct Shared {
    shutdown: AtomicBool,
    connect_count: AtomicUsize,
    targets: Mutex<Vec<String>>,
    /// The status line (e.g. `407 Proxy Authentication Required`) every CONNECT gets
    /// instead of a tunnel.
    refusal: Mutex<Option<&'static str>>,
    /// Every socket the proxy holds, so `Drop` can unblock the splicing threads.
    sockets: Mutex<HashMap<u64, TcpStream>>,
    next_socket_id: AtomicU64,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        // Non-blocking so the accept loop can notice the shutdown flag.
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let shared = Arc::new(Shared {
            shutdown: AtomicBool::new(false),
            connect_count: AtomicUsize::new(0),
            targets: Mutex::new(Vec::new()),
            refusal: Mutex::new(None),
            sockets: Mutex::new(HashMap::new()),
            next_socket_id: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name(format!("proxy-accept-{port}"))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the proxy accept thread");
        ConnectProxy {
            port,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `CONNECT` requests received (whether or not the target could be reached).
    pub fn connect_count(&self) -> usize {
        self.shared.connect_count.load(Ordering::SeqCst)
    }

    /// From now on, answer every `CONNECT` with this status line (`407 Proxy
    /// Authentication Required`) instead of opening the tunnel; `None` tunnels again.
    pub fn refuse_with(&self, status_line: Option<&'static str>) {
        *lock(&self.shared.refusal) = status_line;
    }

    /// The `host:port` of each `CONNECT`, oldest first.
    pub fn targets(&self) -> Vec<String> {
        lock(&self.shared.targets).clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
        for socket in lock(&self.shared.sockets).values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let conn_shared = Arc::clone(&shared);
                // Out of threads: the client sees the connection close; nothing to recover.
                let _ = thread::Builder::new()
                    .name("proxy-conn".to_string())
                    .spawn(move || serve(stream, conn_shared));
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

fn register(shared: &Shared, stream: &TcpStream) -> Option<u64> {
    let clone = stream.try_clone().ok()?;
    let id = shared.next_socket_id.fetch_add(1, Ordering::SeqCst);
    lock(&shared.sockets).insert(id, clone);
    if shared.shutdown.load(Ordering::SeqCst) {
        let _ = stream.shutdown(Shutdown::Both);
    }
    Some(id)
}

fn unregister(shared: &Shared, id: u64) {
    lock(&shared.sockets).remove(&id);
}

fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    if client.set_nonblocking(false).is_err() {
        return;
    }
    let Some(client_id) = register(&shared, &client) else {
        return;
    };
    if let Err(_e) = tunnel(&mut client, &shared) {
        let _ = client.shutdown(Shutdown::Both);
    }
    unregister(&shared, client_id);
}

fn tunnel(client: &mut TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buffer.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let mut chunk = [0u8; 4096];
        let read = client.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    // Bytes the client sent after the head (a TLS ClientHello sent eagerly) go upstream.
    let early = buffer[head_end + 4..].to_vec();

    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default().to_string();
    if method != "CONNECT" {
        client.write_all(
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n",
        )?;
        return client.shutdown(Shutdown::Both);
    }
    shared.connect_count.fetch_add(1, Ordering::SeqCst);
    lock(&shared.targets).push(target.clone());
    let refusal = *lock(&shared.refusal);
    if let Some(status_line) = refusal {
        client.write_all(
            format!("HTTP/1.1 {status_line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )?;
        return client.shutdown(Shutdown::Both);
    }

    let mut upstream = match TcpStream::connect(target.as_str()) {
        Ok(upstream) => upstream,
        Err(_) => {
            client.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return client.shutdown(Shutdown::Both);
        }
    };
    let Some(upstream_id) = register(shared, &upstream) else {
        return Ok(());
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    upstream.write_all(&early)?;

    // One thread per direction; each half-closes its destination when its source ends, so
    // a close on either side propagates.
    let mut up_reader = upstream.try_clone()?;
    let mut client_writer = client.try_clone()?;
    let downstream = thread::Builder::new()
        .name("proxy-down".to_string())
        .spawn(move || {
            let _ = io::copy(&mut up_reader, &mut client_writer);
            let _ = client_writer.shutdown(Shutdown::Write);
        })?;
    let _ = io::copy(client, &mut upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = downstream.join();
    unregister(shared, upstream_id);
    Ok(())
}
