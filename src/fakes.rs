//! Test doubles for the unit tests: a clock that moves only when told to (or slept on), a
//! transport that answers from a script and fails the test on any request it did not
//! expect (or on an expected one that never came), and an audit sink that keeps
//! everything.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use crate::audit::{AuditRecord, AuditSink};
use crate::clock::Clock;
use crate::http::{Body, HttpClient, HttpResponse, Method, Request, Transport, TransportError};

/// A clock that stands still until [`ManualClock::advance`] or [`Clock::sleep`] moves it;
/// a sleep returns at once and is remembered. Clones share one clock.
#[derive(Clone)]
pub struct ManualClock(Rc<ClockState>);

struct ClockState {
    wall_start: DateTime<Utc>,
    monotonic_start: Instant,
    elapsed: Cell<Duration>,
    slept: RefCell<Vec<Duration>>,
}

impl ManualClock {
    /// Starts at 2026-11-30 11:00 UTC.
    pub fn new() -> ManualClock {
        ManualClock::at(
            Utc.with_ymd_and_hms(2026, 11, 30, 11, 0, 0)
                .single()
                .expect("a valid time"),
        )
    }

    pub fn at(wall_start: DateTime<Utc>) -> ManualClock {
        ManualClock(Rc::new(ClockState {
            wall_start,
            // Any instant will do as the origin: only differences from it are used.
            #[allow(clippy::disallowed_methods)]
            monotonic_start: Instant::now(),
            elapsed: Cell::new(Duration::ZERO),
            slept: RefCell::new(Vec::new()),
        }))
    }

    /// Moves both clocks on.
    pub fn advance(&self, by: Duration) {
        self.0.elapsed.set(self.0.elapsed.get() + by);
    }

    /// Every sleep so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.0.slept.borrow().clone()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.0.elapsed.get()).expect("a test's time");
        self.0.wall_start + elapsed
    }

    fn monotonic(&self) -> Instant {
        self.0.monotonic_start + self.0.elapsed.get()
    }

    fn sleep(&self, duration: Duration) {
        self.0.slept.borrow_mut().push(duration);
        self.advance(duration);
    }
}

/// An answer with a text body.
pub fn answer(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec().into(),
    }
}

/// One request as the scripted transport received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub method: Method,
    pub url: String,
    pub authorization: Option<String>,
    /// The fields of a form body, as given to the client (before encoding).
    pub form: Vec<(String, String)>,
}

/// One expected request and what comes back.
struct Step {
    method: Method,
    /// A part of the URL the request must contain (its path, usually).
    url_part: &'static str,
    /// How long the exchange takes on the clock, if the wire has one.
    takes: Duration,
    answer: Result<HttpResponse, TransportError>,
}

/// A transport that answers from a script, in order. A request that is not the next one
/// expected fails the test at once; expected requests that never came fail it when the
/// last handle is dropped. Clones share one script, so a test keeps a handle after giving
/// one to the client.
#[derive(Clone)]
pub struct Wire(Rc<WireState>);

struct WireState {
    script: RefCell<VecDeque<Step>>,
    sent: RefCell<Vec<Sent>>,
    clock: Option<ManualClock>,
}

impl Wire {
    pub fn new() -> Wire {
        Wire::with_clock(None)
    }

    /// A wire on which exchanges take time on `clock` (see [`Wire::expect_taking`]).
    pub fn on(clock: &ManualClock) -> Wire {
        Wire::with_clock(Some(clock.clone()))
    }

    fn with_clock(clock: Option<ManualClock>) -> Wire {
        Wire(Rc::new(WireState {
            script: RefCell::new(VecDeque::new()),
            sent: RefCell::new(Vec::new()),
            clock,
        }))
    }

    /// An HTTP client that sends over this wire.
    pub fn client(&self) -> HttpClient {
        HttpClient::with_transport(Box::new(self.clone()))
    }

    /// Expects a request whose URL contains `url_part`, and answers it.
    pub fn expect(
        &self,
        method: Method,
        url_part: &'static str,
        answer: Result<HttpResponse, TransportError>,
    ) -> &Wire {
        self.expect_taking(method, url_part, Duration::ZERO, answer)
    }

    /// As [`Wire::expect`], moving the wire's clock on by `takes` before answering.
    pub fn expect_taking(
        &self,
        method: Method,
        url_part: &'static str,
        takes: Duration,
        answer: Result<HttpResponse, TransportError>,
    ) -> &Wire {
        self.0.script.borrow_mut().push_back(Step {
            method,
            url_part,
            takes,
            answer,
        });
        self
    }

    /// Every request received so far, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.0.sent.borrow().clone()
    }

    /// The Authorization header of every request so far, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.sent()
            .into_iter()
            .map(|sent| sent.authorization)
            .collect()
    }
}

impl Transport for Wire {
    fn send(
        &self,
        request: &Request<'_>,
        _timeout: Duration,
    ) -> Result<HttpResponse, TransportError> {
        let form = match request.body {
            Body::Form(fields) => fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            Body::Empty | Body::Json(_) => Vec::new(),
        };
        let sent = Sent {
            method: request.method,
            url: request.url.to_string(),
            authorization: request
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("Authorization"))
                .map(|(_, value)| value.to_string()),
            form,
        };
        self.0.sent.borrow_mut().push(sent.clone());
        let step = self.0.script.borrow_mut().pop_front();
        let Some(step) = step else {
            panic!("unexpected request, the script is over: {sent:?}");
        };
        assert!(
            step.method == sent.method && sent.url.contains(step.url_part),
            "expected {:?} …{}…, got {sent:?}",
            step.method,
            step.url_part
        );
        if let Some(clock) = &self.0.clock {
            clock.advance(step.takes);
        }
        step.answer
    }
}

impl Drop for WireState {
    fn drop(&mut self) {
        let left: Vec<String> = self
            .script
            .borrow()
            .iter()
            .map(|step| format!("{:?} …{}…", step.method, step.url_part))
            .collect();
        if !left.is_empty() && !std::thread::panicking() {
            panic!("expected requests never came: {left:?}");
        }
    }
}

/// An audit sink that keeps records and warnings.
#[derive(Default)]
pub struct Notes {
    pub records: Vec<AuditRecord>,
    pub warnings: Vec<String>,
}

impl AuditSink for Notes {
    fn record(&mut self, record: &AuditRecord) {
        self.records.push(record.clone());
    }
    fn debug(&mut self, _message: &str) {}
    fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
}

/// A fresh directory under the system temp dir, removed on drop: for tests of code that
/// keeps root-only files (the token cache, the session records).
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "pam_ticket-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create scratch directory");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
