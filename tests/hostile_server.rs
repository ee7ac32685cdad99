//! The hostile-server suite: every way of answering badly that we know of, each named in
//! `testkit/src/hostile.rs`, against ServiceNow, BMC Remedy and the portal, in both fail
//! modes, through the real libpam.
//!
//! One table ([`table`]) gives each misbehaviour the verdict it must get. The rule: only an
//! outage (a refused, reset or timed-out connection, a name that does not resolve, a 5xx,
//! a 429) is "unavailable", which FailMode=safe lets in as failsafe; every other answer
//! that is not the API's is denied in both modes, as is a certificate that does not verify.
//! A portal Retrieve depends on the ticket, so its 5xx is a denial too.
//!
//! Each login runs in a child process of its own (`support/isolated.rs`), as sshd runs
//! each connection, and for each one the suite asserts:
//! - the PAM code, what the user saw, the audit record and the syslog line;
//! - that `pam_authenticate` returned within Timeout + 1 s;
//! - that the process was not killed by a signal and did not hang;
//! - that its peak RSS stayed under 64 MiB;
//! - that no control character or bidi control from the server reached the user, the
//!   audit file or syslog;
//! - what the server received (nothing at all when the failure comes before HTTP).
//!
//! Run with `--nocapture` to see the table with every verdict.
#![allow(clippy::disallowed_methods)] // times real logins in real processes

use pam_ticket_testkit as support;

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::files::write_root_only;
use support::hostile::{HostileServer, Misbehaviour};
use support::http::{Handler, Request};
use support::https::TestServer;
use support::isolated::{self, ChildLogin, ChildReport};
use support::pam::{
    self, Login, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, PamService,
};
use support::pki::{ServerCert, TestPki};
use support::portal::{PortalSim, TicketingLink};
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

/// Timeout= in every configuration: short, so that hangs cost little.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Every decision must be over by Timeout + 1 s.
const DECISION_LIMIT: Duration = Duration::from_secs(3);
/// A child still running this long after it started has hung; it is killed.
const HANG_LIMIT: Duration = Duration::from_secs(10);
/// Peak resident set allowed to one login process.
const RSS_LIMIT_KIB: i64 = 64 * 1024;
/// Login children running at once, across all tests of this file.
const PARALLEL_LOGINS: usize = 6;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const GATEWAY_USER: &str = "PSMPGateway01";
const GATEWAY_PASSWORD: &str = "Gw-Pass-4412";

const UNAVAILABLE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";
const UNTRUSTED: &str = "Ticket validation is unavailable: the ticketing system's certificate could not be verified; contact your administrator";
const ACCOUNT_REFUSED: &str = "Ticket validation is unavailable: the ticketing system refused this gateway's account; contact your administrator";
const MISCONFIGURED: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";
const FAILSAFE: &str =
    "Ticket validation is unavailable; access is granted under the failsafe policy and audited.";

/// Server text (inside a JSON string) that must never reach a terminal or a log as it is:
/// an ANSI colour, RLO, LRI, RLM, ALM, a zero-width space, a BOM, a line separator, BEL,
/// CR LF, NUL and the C1 CSI around a visible word.
const HOSTILE_JSON_TEXT: &str =
    r"Down\u001b[31m\u202eevil\u2066\u200f\u061c\u200b\ufeff\u2028\u0007\r\n\u0000\u009b(";
/// The visible word of [`HOSTILE_JSON_TEXT`]: where the suite expects the server's text to
/// be shown or logged, it looks for this, so the character check cannot pass by default.
const SERVER_WORD: &str = "evil";

/// What no server text may carry into what the user sees or what is logged: a control
/// character (C0, DEL, C1), any bidi formatting character (the embeddings, overrides and
/// isolates of "Trojan Source", CVE-2021-42574, and the LRM, RLM and ALM marks), a
/// zero-width character, and the Unicode line and paragraph separators, which some
/// viewers show as a new line.
fn is_hostile_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    ServiceNow,
    Remedy,
    Portal,
}

const SYSTEMS: [System; 3] = [System::ServiceNow, System::Remedy, System::Portal];

/// Which request a misbehaviour of the answer hits; the others are answered normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The first request of a check: ServiceNow's query, Remedy's log-on, the portal's Logon.
    First,
    /// The request whose answer is about the ticket: ServiceNow's and Remedy's query, the
    /// portal's Password/Retrieve.
    Ticket,
    /// The portal's account search (the ticket query elsewhere).
    AccountSearch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    ValidTicket,
    ClosedTicket,
}

/// What a login must come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The ticket is fit: let in.
    Allowed,
    /// The ticket is not fit (or the portal refused it): denied, the person may retry.
    Refused,
    /// The system could not be asked: FailMode decides.
    Outage,
    /// Not the API's answer: denied in both modes.
    Denied,
    /// The system refused the module's own account (401/403): denied in both modes, and
    /// the user is told that the gateway's account is the problem.
    AccountRefused,
    /// The server's certificate did not verify: denied in both modes.
    Untrusted,
    /// The configuration cannot work: a service error, nothing sent.
    ConfigError,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Secure,
    Safe,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Secure => "secure",
            Mode::Safe => "safe",
        }
    }
}

/// What one login is expected to end in.
struct Expected {
    code: i32,
    decision: &'static str,
    /// What the user is shown, exactly (`None`: checked by the verdict's own rule).
    errors: Option<Vec<String>>,
    infos: Vec<String>,
    exported_decision: Option<&'static str>,
}

impl Verdict {
    fn expected(self, mode: Mode) -> Expected {
        let shown = |message: &str| Some(vec![message.to_string()]);
        let (code, decision, errors, infos, exported) = match (self, mode) {
            (Verdict::Allowed, _) => (PAM_SUCCESS, "allow", Some(vec![]), vec![], Some("allow")),
            (Verdict::Refused, _) => (PAM_MAXTRIES, "deny", None, vec![], None),
            (Verdict::Outage, Mode::Secure) => (
                PAM_AUTHINFO_UNAVAIL,
                "unavailable",
                shown(UNAVAILABLE),
                vec![],
                None,
            ),
            (Verdict::Outage, Mode::Safe) => (
                PAM_SUCCESS,
                "failsafe",
                Some(vec![]),
                vec![FAILSAFE.to_string()],
                Some("failsafe"),
            ),
            (Verdict::Denied, _) => (
                PAM_AUTHINFO_UNAVAIL,
                "unavailable",
                shown(UNAVAILABLE),
                vec![],
                None,
            ),
            (Verdict::AccountRefused, _) => (
                PAM_AUTHINFO_UNAVAIL,
                "unavailable",
                shown(ACCOUNT_REFUSED),
                vec![],
                None,
            ),
            (Verdict::Untrusted, _) => (
                PAM_AUTHINFO_UNAVAIL,
                "unavailable",
                shown(UNTRUSTED),
                vec![],
                None,
            ),
            (Verdict::ConfigError, _) => {
                (PAM_SERVICE_ERR, "error", shown(MISCONFIGURED), vec![], None)
            }
        };
        Expected {
            code,
            decision,
            errors,
            infos,
            exported_decision: exported,
        }
    }
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::ServiceNow => "ServiceNow",
            System::Remedy => "Remedy",
            System::Portal => "portal",
        }
    }

    fn ticket(self, answer: Answer) -> &'static str {
        match (self, answer) {
            (System::Remedy, Answer::ValidTicket) => "INC000000000001",
            (System::Remedy, Answer::ClosedTicket) => "INC000000000002",
            (_, Answer::ValidTicket) => "INC0010001",
            (_, Answer::ClosedTicket) => "INC0010002",
        }
    }

    fn user(self) -> &'static str {
        match self {
            System::Portal => "alice@root@db01.example.com",
            _ => "alice",
        }
    }

    /// The predicate that picks the requests a misbehaviour of the answer hits.
    fn targeted(self, target: Target) -> impl Fn(&Request) -> bool + Send + Sync + 'static {
        move |request: &Request| {
            let path = request.path.to_ascii_lowercase();
            match (self, target) {
                (System::ServiceNow, _) => true,
                (System::Remedy, Target::First) => path.ends_with("/api/jwt/login"),
                (System::Remedy, _) => path.contains("/api/arsys/v1/entry/"),
                (System::Portal, Target::First) => {
                    path.ends_with("/logon/") || path.ends_with("/logon")
                }
                (System::Portal, Target::Ticket) => path.contains("/password/retrieve"),
                (System::Portal, Target::AccountSearch) => path.ends_with("/api/accounts"),
            }
        }
    }

    /// An error body of this system's own shape, its texts holding [`HOSTILE_JSON_TEXT`].
    fn error_body(self, code: &str) -> String {
        let text = HOSTILE_JSON_TEXT;
        match self {
            System::ServiceNow => format!(
                r#"{{"error":{{"message":"{text}","detail":"{code} {text}"}},"status":"failure"}}"#
            ),
            System::Remedy => format!(
                r#"[{{"messageType":"ERROR","messageText":"{text}","messageNumber":{code},"messageAppendedText":"{text}"}}]"#
            ),
            System::Portal => format!(r#"{{"ErrorCode":"{code}","ErrorMessage":"{text}"}}"#),
        }
    }
}

/// One row of the table: a misbehaviour, where it strikes, and the verdict it must get.
struct Row {
    name: &'static str,
    target: Target,
    answer: Answer,
    misbehaviour: Misbehaviour,
    /// Per-system replacements; `None` means the row does not apply to that system.
    instead: Vec<(System, Option<Misbehaviour>)>,
    verdict: Verdict,
    verdict_instead: Vec<(System, Verdict)>,
    /// The server's text must be seen (sanitised) in the audit record, and, for a refusal,
    /// by the user and in syslog too.
    shows_server_text: bool,
}

fn row(name: &'static str, target: Target, misbehaviour: Misbehaviour, verdict: Verdict) -> Row {
    Row {
        name,
        target,
        answer: Answer::ValidTicket,
        misbehaviour,
        instead: Vec::new(),
        verdict,
        verdict_instead: Vec::new(),
        shows_server_text: false,
    }
}

impl Row {
    fn closed_ticket(mut self) -> Row {
        self.answer = Answer::ClosedTicket;
        self
    }

    fn on(mut self, system: System, misbehaviour: Misbehaviour) -> Row {
        self.instead.push((system, Some(misbehaviour)));
        self
    }

    fn not_on(mut self, system: System) -> Row {
        self.instead.push((system, None));
        self
    }

    fn verdict_on(mut self, system: System, verdict: Verdict) -> Row {
        self.verdict_instead.push((system, verdict));
        self
    }

    fn shows_server_text(mut self) -> Row {
        self.shows_server_text = true;
        self
    }

    fn misbehaviour_for(&self, system: System) -> Option<Misbehaviour> {
        match self.instead.iter().find(|(which, _)| *which == system) {
            Some((_, instead)) => instead.clone(),
            None => Some(self.misbehaviour.clone()),
        }
    }

    fn verdict_for(&self, system: System) -> Verdict {
        self.verdict_instead
            .iter()
            .find(|(which, _)| *which == system)
            .map_or(self.verdict, |(_, verdict)| *verdict)
    }
}

/// A status answer with this system's error body (holding hostile text), on every system.
fn status_row(
    name: &'static str,
    target: Target,
    status: u16,
    retry_after: Option<&str>,
    verdict: Verdict,
) -> Row {
    let status_for = |system: System| Misbehaviour::Status {
        status,
        retry_after: retry_after.map(str::to_string),
        content_type: "application/json;charset=UTF-8".to_string(),
        body: system.error_body(match system {
            System::Remedy => "9093",
            System::Portal if status == 403 => "PASWS013E",
            _ => "E42",
        }),
    };
    let mut row = row(name, target, status_for(System::ServiceNow), verdict);
    for system in SYSTEMS {
        row = row.on(system, status_for(system));
    }
    // A 429 is audited as rate limiting, without the body's text.
    if status == 429 {
        row
    } else {
        row.shows_server_text()
    }
}

fn rewrite(find: &str, replace: &str) -> Misbehaviour {
    Misbehaviour::Rewrite {
        find: find.to_string(),
        replace: replace.to_string(),
    }
}

/// The table, one row per misbehaviour. Rows that need a system's own wire format say so
/// with `on`; `verdict_on` is where a system's rule differs. Kept as a table by hand.
#[rustfmt::skip]
fn table() -> Vec<Row> {
    use Misbehaviour as M;
    use Target::{AccountSearch, First, Ticket};
    use Verdict::{AccountRefused, Allowed, ConfigError, Denied, Outage, Refused, Untrusted};
    let drip = Duration::from_millis(100);
    let path = |text: &str| M::InvalidUrlPath(text.to_string());
    let redirect = |status, location: &str| M::Redirect { status, location: location.to_string() };
    vec![
        // The control rows: the rig itself works.
        row("well-behaved, valid ticket", Ticket, M::WellBehaved, Allowed),
        row("well-behaved, closed ticket", Ticket, M::WellBehaved, Refused).closed_ticket(),
        // Where the server is.
        row("connection refused", First, M::Refused, Outage),
        row("host name does not resolve", First, M::UnresolvableHost, Outage),
        row("<instance> placeholder as the URL's host", First, M::PlaceholderHost, ConfigError),
        row("<instance> placeholder in the URL's path", First, path("/<instance>"), ConfigError),
        row("backtick in the URL's path", First, path("/api`"), ConfigError),
        row("tab in the URL's path", First, path("/a\tpi"), ConfigError),
        // The connection, before HTTP.
        row("hang before TLS", First, M::HangBeforeTls, Outage),
        row("reset on accept", First, M::ResetOnAccept, Outage),
        row("reset mid-TLS-handshake", First, M::ResetMidHandshake, Outage),
        row("plain HTTP on the HTTPS port", First, M::PlainHttp, Denied),
        row("garbage instead of TLS", First, M::Garbage, Denied),
        row("server speaks only TLS 1.0", First, M::OldTlsOnly, Denied),
        row("TLS alert handshake_failure", First, M::TlsAlert, Denied),
        row("expired certificate", First, M::Certificate(ServerCert::Expired), Untrusted),
        row("wrong-host certificate", First, M::Certificate(ServerCert::WrongHost), Untrusted),
        row("certificate from an unknown CA", First, M::Certificate(ServerCert::UntrustedCa), Untrusted),
        // The answer to the first request.
        row("hang after the request", First, M::HangAfterRequest, Outage),
        row("hang after the headers", First, M::HangAfterHeaders, Outage),
        row("reset after the request", First, M::ResetAfterRequest, Outage),
        row("clean close after the request, no answer", First, M::CloseAfterRequest, Outage),
        row("reset mid-headers", First, M::ResetMidHeaders, Outage),
        row("reset mid-body", First, M::ResetMidBody, Outage),
        row("truncated body (Content-Length larger than sent)", First, M::TruncatedBody, Outage),
        row("drip feed, one byte per 100 ms", First, M::Drip { byte_every: drip }, Outage),
        row("100 Continue, then hang", First, M::Continue100ThenHang, Outage),
        row("100 Continue carrying headers", First, M::Continue100WithHeaders, Denied),
        row("100, 102, 103, then the answer", First, M::InterimResponsesThenAnswer, Allowed),
        row("101 Switching Protocols", First, M::SwitchingProtocols, Denied),
        status_row("500 with hostile text", First, 500, None, Outage),
        status_row("503 with hostile text", First, 503, None, Outage),
        status_row("429 with Retry-After: 1", First, 429, Some("1"), Outage),
        status_row("429 without Retry-After", First, 429, None, Outage),
        status_row("401 for the module's account", First, 401, None, AccountRefused),
        status_row("403 for the module's account", First, 403, None, AccountRefused),
        row("302 redirect", First, redirect(302, "https://sso.example.test/login?next=/api"), Denied),
        row("307 redirect, bidi control in Location", First, redirect(307, "https://evil.example.test/\u{202e}gpj.exe"), Denied),
        row("oversized header block (200 KiB)", First, M::OversizedHeaderBlock, Denied),
        row("too many headers (500)", First, M::TooManyHeaders, Denied),
        row("duplicate Content-Length", First, M::DuplicateContentLength, Denied),
        // The answer about the ticket.
        row("HTML login page with 200", Ticket, M::HtmlLoginPage, Denied),
        row("200 that is not JSON", Ticket, M::NotJson, Denied),
        row("oversized body (2 MiB)", Ticket, M::OversizedBody, Denied),
        row("endless chunked body", Ticket, M::EndlessChunkedBody, Denied),
        row("gzip bomb (Content-Encoding: gzip)", Ticket, M::GzipBomb, Denied),
        row("deflate bomb (Content-Encoding: deflate)", Ticket, M::DeflateBomb, Denied),
        row("deep nesting (100 000 [)", Ticket, M::DeepNesting { depth: 100_000 }, Denied),
        row("hang after the ticket request", Ticket, M::HangAfterRequest, Outage)
            .verdict_on(System::Portal, Denied),
        status_row("503 for the ticket request", Ticket, 503, None, Outage)
            .verdict_on(System::Portal, Denied),
        status_row("401 for the ticket request", Ticket, 401, None, AccountRefused)
            .verdict_on(System::Portal, Denied),
        row("duplicate key: an empty list, then the real one", AccountSearch,
            rewrite(r#"{"result":["#, r#"{"result":[],"result":["#), Denied)
            .on(System::Remedy, rewrite(r#"{"entries":["#, r#"{"entries":[],"entries":["#))
            .on(System::Portal, rewrite(r#"{"value":["#, r#"{"value":[],"value":["#)),
        row("duplicate key: Closed, then the real state", AccountSearch,
            rewrite(r#""state":{"#, r#""state":{"display_value":"Closed","value":"7"},"state":{"#), Denied)
            .on(System::Remedy, rewrite(r#""Status":"#, r#""Status":"Closed","Status":"#))
            .on(System::Portal, rewrite(r#""userName":"#, r#""userName":"nobody","userName":"#)),
        row("NUL inside the state (In\\0Progress)", Ticket,
            rewrite("In Progress", r"In\u0000Progress"), Refused)
            .not_on(System::Portal),
        row("bidi override inside the state", Ticket,
            rewrite("In Progress", r"In \u202eProgress"), Refused)
            .not_on(System::Portal),
        row("hostile text in the refusal", Ticket,
            rewrite("Closed", &format!("Closed {HOSTILE_JSON_TEXT}")), Refused)
            .closed_ticket()
            .shows_server_text(),
    ]
}

/// The files, PKI and servers one system's rows share.
struct World {
    system: System,
    dir: TestDir,
    pki: TestPki,
    account: PathBuf,
    /// Portal mode: the ServiceNow simulator the portal validates tickets with.
    portal_backend: Option<TestServer>,
}

impl World {
    fn new(system: System) -> World {
        let dir = TestDir::new(&format!("hostile-{}", system.name()));
        let pki = TestPki::generate(&dir.join("pki"));
        let account = dir.join("account");
        let (user, password) = match system {
            System::Portal => (GATEWAY_USER, GATEWAY_PASSWORD),
            _ => (ACCOUNT_USER, ACCOUNT_PASSWORD),
        };
        write_root_only(
            &account,
            &format!("Username=\"{user}\"\nPassword=\"{password}\"\n"),
        );
        let portal_backend = (system == System::Portal).then(|| {
            TestServer::start(
                pki.server_config(ServerCert::Good),
                Arc::new(ServiceNowSim::new("portal.integration", "Sn-Int-Pass")),
            )
        });
        World {
            system,
            dir,
            pki,
            account,
            portal_backend,
        }
    }

    /// A fresh simulator for one login.
    fn simulator(&self) -> Arc<dyn Handler> {
        match (self.system, &self.portal_backend) {
            (System::ServiceNow, _) => Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD)),
            (System::Remedy, _) => Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD)),
            (System::Portal, Some(backend)) => {
                let link = TicketingLink {
                    url: backend.base_url(),
                    ca_file: self.pki.ca_pem_path(),
                    username: "portal.integration".to_string(),
                    password: "Sn-Int-Pass".to_string(),
                };
                Arc::new(PortalSim::new(GATEWAY_USER, GATEWAY_PASSWORD, link))
            }
            (System::Portal, None) => unreachable!("a portal world has its backend"),
        }
    }

    /// The configuration for one login, and the PAM service that runs the module with it.
    /// The audit file is a module argument, so that a configuration error is audited too.
    fn service(&self, dir: &Path, url: &str, mode: Mode) -> PamService {
        let ca = self.pki.ca_pem_path();
        let common = format!(
            "CAFile=\"{}\"\nTimeout=\"{}\"\nMaxAttempts=\"1\"\nFailMode=\"{}\"\n",
            ca.display(),
            TIMEOUT.as_secs(),
            mode.name()
        );
        let text = match self.system {
            System::ServiceNow => format!(
                "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{url}\"\nConnectionAccountFile=\"{}\"\n{common}ValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"In Progress\"\n",
                self.account.display()
            ),
            System::Remedy => format!(
                "TicketingSystem=\"BMCRemedy\"\nSystemURL=\"{url}\"\nConnectionAccountFile=\"{}\"\nCacheDirectory=\"{}\"\n{common}ValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"In Progress\"\n",
                self.account.display(),
                dir.join("token-cache").display()
            ),
            System::Portal => format!(
                "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{url}/PasswordVault\"\nPortalAccountFile=\"{}\"\n{common}",
                self.account.display()
            ),
        };
        let config = dir.join("pam_ticket.conf");
        write_root_only(&config, &text);
        PamService::new(
            &dir.join("pam.d"),
            "hostile",
            &pam::module_path(),
            &[
                format!("config={}", config.display()),
                format!("AuditLogFile={}", dir.join("audit.jsonl").display()),
            ],
        )
    }
}

/// One login of the table, run and judged.
struct Cell {
    row: usize,
    mode: Mode,
    expected: Verdict,
    /// The PAM code the module returned (`None`: the child died or hung).
    code: Option<i32>,
    elapsed: Option<Duration>,
    /// The login process's own peak resident set, KiB (0: not reported).
    peak_rss_kib: i64,
    /// Why the login's syslog lines could not be captured, if they could not.
    syslog_missing: Option<String>,
    problems: Vec<String>,
}

/// Caps the login children running at once across every test of this file.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    free: Mutex::new(PARALLEL_LOGINS),
    freed: Condvar::new(),
};

fn with_slot<T>(work: impl FnOnce() -> T) -> T {
    {
        let mut free = SLOTS
            .free
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        while *free == 0 {
            free = SLOTS
                .freed
                .wait(free)
                .unwrap_or_else(|poison| poison.into_inner());
        }
        *free -= 1;
    }
    let result = work();
    *SLOTS
        .free
        .lock()
        .unwrap_or_else(|poison| poison.into_inner()) += 1;
    SLOTS.freed.notify_one();
    result
}

fn run_table(system: System, test_name: &str) {
    let started = Instant::now();
    let world = World::new(system);
    let rows = table();
    let jobs: VecDeque<(usize, Mode, Misbehaviour)> = rows
        .iter()
        .enumerate()
        .filter_map(|(index, row)| Some((index, row.misbehaviour_for(system)?)))
        .flat_map(|(index, misbehaviour)| {
            [Mode::Secure, Mode::Safe].map(|mode| (index, mode, misbehaviour.clone()))
        })
        .collect();
    let jobs = Mutex::new(jobs);
    let cells = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..PARALLEL_LOGINS {
            scope.spawn(|| {
                loop {
                    let job = jobs
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .pop_front();
                    let Some((index, mode, misbehaviour)) = job else {
                        break;
                    };
                    let cell = with_slot(|| {
                        one_login(&world, test_name, index, &rows[index], mode, misbehaviour)
                    });
                    cells
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .push(cell);
                }
            });
        }
    });
    let mut cells = cells
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    cells.sort_by_key(|cell| (cell.row, cell.mode == Mode::Safe));

    let report = render(system, &rows, &cells, started.elapsed());
    println!("{report}");
    let failures: Vec<String> = cells
        .iter()
        .flat_map(|cell| {
            cell.problems.iter().map(|problem| {
                format!(
                    "{} / {} / {}: {problem}",
                    system.name(),
                    rows[cell.row].name,
                    cell.mode.name()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{report}\n{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn render(system: System, rows: &[Row], cells: &[Cell], took: Duration) -> String {
    let mut out = format!(
        "\n{} against {} misbehaviours ({} logins, {:.1} s); expected -> got, [ms, peak RSS MiB]\n",
        system.name(),
        cells.len() / 2,
        cells.len(),
        took.as_secs_f64()
    );
    if let Some(why) = cells.iter().find_map(|cell| cell.syslog_missing.as_ref()) {
        let _ = writeln!(out, "  syslog NOT captured, so not checked: {why}");
    }
    for (index, row) in rows.iter().enumerate() {
        let mine: Vec<&Cell> = cells.iter().filter(|cell| cell.row == index).collect();
        if mine.is_empty() {
            let _ = writeln!(out, "  {:<52} n/a", row.name);
            continue;
        }
        let _ = write!(out, "  {:<52}", row.name);
        for cell in mine {
            let expected = cell.expected.expected(cell.mode).code;
            let got = cell.code.map_or("died", pam::code_name);
            let _ = write!(
                out,
                " {}: {:?} {} -> {} [{}, {:.1}]{}",
                cell.mode.name(),
                cell.expected,
                pam::code_name(expected),
                got,
                cell.elapsed.map_or(0, |elapsed| elapsed.as_millis()),
                cell.peak_rss_kib as f64 / 1024.0,
                if cell.problems.is_empty() {
                    " ok"
                } else {
                    " FAIL"
                }
            );
        }
        out.push('\n');
    }
    out
}

/// Runs one login of the table in a child process and checks everything about it.
fn one_login(
    world: &World,
    test_name: &str,
    index: usize,
    row: &Row,
    mode: Mode,
    misbehaviour: Misbehaviour,
) -> Cell {
    let system = world.system;
    let verdict = row.verdict_for(system);
    let expected = verdict.expected(mode);
    let dir = world.dir.join(&format!("row{index:02}-{}", mode.name()));
    fs::create_dir_all(&dir).expect("create the login's directory");
    let handler = world.simulator();
    let server = HostileServer::start(
        &world.pki,
        handler,
        system.targeted(row.target),
        misbehaviour.clone(),
    );
    let service = world.service(&dir, &server.base_url(), mode);
    let ticket = system.ticket(row.answer);
    let login = Login::new(system.user()).rhost("192.0.2.66").answer(ticket);
    let report = isolated::run(
        test_name,
        &ChildLogin {
            service: &service,
            login: &login,
            capture_syslog: true,
            dir: &dir,
        },
        HANG_LIMIT,
    );
    let mut problems = Vec::new();
    check_process(&report, &mut problems);
    if let Some(outcome) = &report.outcome {
        let outcome = outcome.as_pam_outcome();
        check_user_saw(&outcome, &expected, verdict, ticket, row, &mut problems);
        check_audit(&dir.join("audit.jsonl"), &expected, row, &mut problems);
    }
    if let Some(outcome) = &report.outcome {
        check_syslog(&outcome.syslog, &expected, row, verdict, &mut problems);
    }
    check_server(&server, system, row, &misbehaviour, &mut problems);
    if system == System::Portal {
        check_portal_logoffs(&server, &mut problems);
    }
    if !problems.is_empty()
        && let Some(outcome) = &report.outcome
    {
        problems.push(format!(
            "transcript:\n{}",
            outcome.as_pam_outcome().transcript()
        ));
    }
    Cell {
        row: index,
        mode,
        expected: verdict,
        code: report.outcome.as_ref().map(|outcome| outcome.code),
        elapsed: report.outcome.as_ref().map(|outcome| outcome.elapsed),
        peak_rss_kib: report
            .outcome
            .as_ref()
            .and_then(|outcome| outcome.peak_rss_kib)
            .unwrap_or(0),
        syslog_missing: report
            .outcome
            .as_ref()
            .and_then(|outcome| outcome.syslog.as_ref().err().cloned()),
        problems,
    }
}

/// No signal, no hang, a clean exit, a result, time and memory within bounds.
fn check_process(report: &ChildReport, problems: &mut Vec<String>) {
    if let Some(signal) = report.signal {
        problems.push(format!("the login process was killed by signal {signal}"));
    }
    if report.hung {
        problems.push(format!(
            "the login process hung for {:?} and was killed",
            report.wall
        ));
    }
    if report.exit_code != Some(0) && report.signal.is_none() {
        problems.push(format!(
            "the login process exited with {:?}: {}",
            report.exit_code, report.output
        ));
    }
    match report
        .outcome
        .as_ref()
        .and_then(|outcome| outcome.peak_rss_kib)
    {
        Some(peak) if peak >= RSS_LIMIT_KIB => {
            problems.push(format!("peak RSS {peak} KiB, limit {RSS_LIMIT_KIB} KiB"));
        }
        Some(_) => {}
        None if report.outcome.is_some() => problems.push("no peak RSS reported".to_string()),
        None => {}
    }
    match &report.outcome {
        None => problems.push(format!(
            "no result from the login process: {}",
            report.output
        )),
        Some(outcome) if outcome.elapsed > DECISION_LIMIT => problems.push(format!(
            "pam_authenticate took {:?}, more than Timeout + 1 s",
            outcome.elapsed
        )),
        Some(_) => {}
    }
}

fn check_user_saw(
    outcome: &pam::PamOutcome,
    expected: &Expected,
    verdict: Verdict,
    ticket: &str,
    row: &Row,
    problems: &mut Vec<String>,
) {
    if outcome.code != expected.code {
        problems.push(format!(
            "PAM code {} where {} was due",
            outcome.code_name,
            pam::code_name(expected.code)
        ));
    }
    let prompts = if verdict == Verdict::ConfigError {
        vec![]
    } else {
        vec!["Ticket ID: "]
    };
    if outcome.prompts() != prompts {
        problems.push(format!(
            "prompts {:?}, expected {prompts:?}",
            outcome.prompts()
        ));
    }
    match &expected.errors {
        Some(errors) if outcome.errors() != *errors => {
            problems.push(format!(
                "errors shown {:?}, expected {errors:?}",
                outcome.errors()
            ));
        }
        Some(_) => {}
        // A refusal names the ticket, once.
        None => {
            let errors = outcome.errors();
            if errors.len() != 1 || !errors[0].contains(ticket) {
                problems.push(format!(
                    "refusal shown {errors:?}, expected one naming {ticket}"
                ));
            }
        }
    }
    if outcome.infos() != expected.infos {
        problems.push(format!(
            "infos shown {:?}, expected {:?}",
            outcome.infos(),
            expected.infos
        ));
    }
    let exported = outcome.env.get("TICKET_DECISION").map(String::as_str);
    if exported != expected.exported_decision {
        problems.push(format!(
            "TICKET_DECISION {exported:?}, expected {:?}",
            expected.exported_decision
        ));
    }
    for event in &outcome.events {
        let text = match event {
            pam::Event::Prompt { text, .. } | pam::Event::Error(text) | pam::Event::Info(text) => {
                text
            }
        };
        if text.chars().any(is_hostile_char) {
            problems.push(format!(
                "the user was shown a control or bidi character: {text:?}"
            ));
        }
    }
    if row.shows_server_text
        && verdict == Verdict::Refused
        && !outcome.transcript().contains(SERVER_WORD)
    {
        problems.push(format!(
            "the refusal does not show the server's text ({SERVER_WORD:?})"
        ));
    }
}

fn check_audit(path: &Path, expected: &Expected, row: &Row, problems: &mut Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut records = Vec::new();
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(record) => records.push(record),
            Err(error) => problems.push(format!("an audit line is not JSON ({error}): {line:?}")),
        }
    }
    if records.len() != 1 {
        problems.push(format!(
            "{} audit records, expected 1: {text}",
            records.len()
        ));
        return;
    }
    let record = &records[0];
    if record["decision"] != expected.decision {
        problems.push(format!(
            "audit decision {}, expected {}",
            record["decision"], expected.decision
        ));
    }
    let mut strings = Vec::new();
    collect_strings(record, &mut strings);
    if let Some(bad) = strings
        .iter()
        .find(|text| text.chars().any(is_hostile_char))
    {
        problems.push(format!(
            "the audit record holds a control or bidi character: {bad:?}"
        ));
    }
    let reason = record["reason"].as_str().unwrap_or_default();
    if row.shows_server_text && !reason.contains(SERVER_WORD) {
        problems.push(format!(
            "the audit reason lacks the server's text: {reason:?}"
        ));
    }
}

fn collect_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(text) => into.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, into)),
        Value::Object(fields) => fields.iter().for_each(|(key, item)| {
            into.push(key.clone());
            collect_strings(item, into);
        }),
        _ => {}
    }
}

fn check_syslog(
    syslog: &Result<Vec<String>, String>,
    expected: &Expected,
    row: &Row,
    verdict: Verdict,
    problems: &mut Vec<String>,
) {
    // Not captured (no private mount namespace): said once, in the table's heading.
    let Ok(lines) = syslog else {
        return;
    };
    let decision = format!("decision={} ", expected.decision);
    let Some(line) = lines.iter().find(|line| line.contains(&decision)) else {
        problems.push(format!("no syslog line with {decision:?}: {lines:?}"));
        return;
    };
    for line in lines {
        if line.chars().any(is_hostile_char) {
            problems.push(format!("syslog got a control or bidi character: {line:?}"));
        }
    }
    if row.shows_server_text && verdict == Verdict::Refused && !line.contains(SERVER_WORD) {
        problems.push(format!("the syslog line lacks the server's text: {line:?}"));
    }
}

/// What the server received: nothing when the failure comes before HTTP, else the request
/// that was answered badly; a rewrite that found nothing to rewrite tests nothing.
fn check_server(
    server: &HostileServer,
    system: System,
    row: &Row,
    misbehaviour: &Misbehaviour,
    problems: &mut Vec<String>,
) {
    let requests = server.requests();
    let before_http = matches!(
        misbehaviour,
        Misbehaviour::Refused
            | Misbehaviour::UnresolvableHost
            | Misbehaviour::PlaceholderHost
            | Misbehaviour::InvalidUrlPath(_)
            | Misbehaviour::HangBeforeTls
            | Misbehaviour::ResetOnAccept
            | Misbehaviour::ResetMidHandshake
            | Misbehaviour::PlainHttp
            | Misbehaviour::Garbage
            | Misbehaviour::OldTlsOnly
            | Misbehaviour::TlsAlert
            | Misbehaviour::Certificate(_)
    );
    if before_http {
        if !requests.is_empty() {
            problems.push(format!(
                "{} request(s) got through, expected none",
                requests.len()
            ));
        }
        let expected_connections = !matches!(
            misbehaviour,
            Misbehaviour::Refused
                | Misbehaviour::UnresolvableHost
                | Misbehaviour::PlaceholderHost
                | Misbehaviour::InvalidUrlPath(_)
        );
        if expected_connections != (server.connection_count() > 0) {
            problems.push(format!(
                "{} connection(s) accepted",
                server.connection_count()
            ));
        }
        return;
    }
    let targeted = system.targeted(row.target);
    if !requests.iter().any(&targeted) {
        problems.push(format!(
            "the targeted request never came: {:?}",
            requests
                .iter()
                .map(|request| &request.path)
                .collect::<Vec<_>>()
        ));
    }
    if matches!(misbehaviour, Misbehaviour::Rewrite { .. }) && server.rewrite_count() == 0 {
        problems.push("the rewrite found nothing to rewrite".to_string());
    }
    // ureq is built without decompression: the module must not ask for compressed bodies.
    for request in &requests {
        if let Some(encoding) = request.header("accept-encoding")
            && (encoding.contains("gzip")
                || encoding.contains("deflate")
                || encoding.contains("br"))
        {
            problems.push(format!(
                "the module asked for compressed bodies: {encoding}"
            ));
        }
    }
}

/// Portal mode: every session token the module used (in a search or a Retrieve) was logged
/// off. A token whose Logon answer never arrived intact cannot be, and is not counted.
fn check_portal_logoffs(server: &HostileServer, problems: &mut Vec<String>) {
    let requests = server.requests();
    let token = |request: &Request| {
        request
            .header("authorization")
            .unwrap_or_default()
            .to_string()
    };
    let is_call = |request: &Request, call: &str| {
        request
            .path
            .to_ascii_lowercase()
            .trim_end_matches('/')
            .ends_with(call)
    };
    let logged_off: BTreeSet<String> = requests
        .iter()
        .filter(|request| is_call(request, "/logoff"))
        .map(token)
        .collect();
    let left_open: BTreeSet<String> = requests
        .iter()
        .filter(|request| !is_call(request, "/logon") && !is_call(request, "/logoff"))
        .map(token)
        .filter(|used| !used.is_empty() && !logged_off.contains(used))
        .collect();
    if !left_open.is_empty() {
        problems.push(format!(
            "{} portal session(s) used and never logged off",
            left_open.len()
        ));
    }
}

#[test]
fn servicenow_against_every_misbehaviour() {
    if isolated::serve_if_child() {
        return;
    }
    run_table(System::ServiceNow, "servicenow_against_every_misbehaviour");
}

#[test]
fn remedy_against_every_misbehaviour() {
    if isolated::serve_if_child() {
        return;
    }
    run_table(System::Remedy, "remedy_against_every_misbehaviour");
}

#[test]
fn portal_against_every_misbehaviour() {
    if isolated::serve_if_child() {
        return;
    }
    run_table(System::Portal, "portal_against_every_misbehaviour");
}
