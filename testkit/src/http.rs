//! Plain HTTP request/response types shared by every simulator. The HTTPS server
//! (`https.rs`) parses bytes into a `Request`, hands it to a `Handler`, and writes the
//! `Response` back; simulators only ever see these types.

use std::collections::BTreeMap;

/// One parsed HTTP/1.1 request, as the simulator received it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    /// Path without the query string, percent-decoded (e.g. `/api/now/table/incident`).
    pub path: String,
    /// The raw query string after `?`, not decoded (empty when there is none).
    pub raw_query: String,
    /// Query parameters in order, percent-decoded (`+` decoded as space).
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The certificate the client presented in the TLS handshake (DER), if it sent one.
    pub client_certificate: Option<Vec<u8>>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// First query parameter with this name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The answer a simulator wants sent.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![(
                "Content-Type".to_string(),
                "application/json;charset=UTF-8".to_string(),
            )],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), "text/plain".to_string())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// What a simulator implements: turn one request into one response.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: &Request) -> Response;
}
