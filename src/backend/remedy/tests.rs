//! Remedy's session logic without sockets: token reuse, renewal after a 401, the log-off
//! of retired and uncached tokens, the cache's problems as warnings, and the one retry a
//! check shares between log-on and query. A scripted transport answers and fails the test
//! on any request it did not expect; a manual clock ages tokens and runs the lock wait.
//! The same behaviour over real HTTPS against the simulator is in tests/remedy_pam.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use super::wire::tests::{ar_body, settings};
use super::*;
use crate::backend::Outage;
use crate::clock::Clock;
use crate::config::parse_https_url;
use crate::fakes::{ManualClock, Notes, Wire, answer};
use crate::http::TransportError;

const LOGIN: &str = "/api/jwt/login";
const LOGOUT: &str = "/api/jwt/logout";
const ENTRY: &str = "/api/arsys/v1/entry/";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A Remedy client over a scripted wire, with its cache in a scratch directory (removed
/// on drop) and its own clock and audit sink.
struct Rig {
    wire: Wire,
    clock: ManualClock,
    notes: Notes,
    remedy: Remedy,
    scratch: PathBuf,
}

impl Rig {
    fn new(label: &str) -> Rig {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let scratch = std::env::temp_dir().join(format!(
            "pam_ticket-remedy-session-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&scratch).expect("scratch directory");
        let wire = Wire::new();
        let account = Credentials {
            username: "svc_pam".to_string(),
            password: Secret::from_string("s3cret&pw".to_string()),
            source: PathBuf::from("/etc/security/pam_ticket.account"),
        };
        let remedy = Remedy::new(
            wire.client(),
            parse_https_url("https://remedy.example.com:8443/").expect("a URL"),
            account,
            settings(),
            scratch.join("cache"),
        );
        Rig {
            wire,
            clock: ManualClock::new(),
            notes: Notes::default(),
            remedy,
            scratch,
        }
    }

    fn lookup(&mut self) -> Result<Lookup, LookupError> {
        let id = TicketId {
            text: "INC000000000001".to_string(),
            kind: TicketKind::Incident,
        };
        let login = Login::new("alice", None, Some("sshd".to_string()));
        let deadline = Deadline::new(&self.clock, TIMEOUT);
        self.remedy.lookup(&id, &login, deadline, &mut self.notes)
    }

    /// The token in the cache file, if the cache gives one.
    fn cached(&self) -> Option<String> {
        self.remedy
            .cache
            .read()
            .ok()
            .and_then(|cached| cached.token.as_str().map(str::to_string))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

fn token(text: &str) -> Result<HttpResponse, TransportError> {
    Ok(answer(200, text))
}

fn entry() -> Result<HttpResponse, TransportError> {
    let body = json!({"entries": [{"values": {
        "Incident Number": "INC000000000001", "Status": "In Progress",
        "Customer Login ID": "alice"
    }}]});
    Ok(answer(200, &body.to_string()))
}

fn expired() -> Result<HttpResponse, TransportError> {
    Ok(answer(
        401,
        &ar_body(623, "Authentication failed").to_string(),
    ))
}

fn logged_off() -> Result<HttpResponse, TransportError> {
    Ok(answer(204, ""))
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("AR-JWT {token}"))
}

fn found(result: &Result<Lookup, LookupError>) -> bool {
    matches!(result, Ok(Lookup::Found(ticket)) if ticket.id == "INC000000000001")
}

/// One log-on serves every lookup while the token is young; once it has aged out, a new
/// log-on replaces it and the old one, probably still alive on the server, is logged off
/// after the query.
#[test]
fn a_cached_token_is_reused_until_it_ages_out_then_retired_and_logged_off() {
    let mut rig = Rig::new("reuse");
    rig.wire
        .expect(Method::Post, LOGIN, token("tok-1"))
        .expect(Method::Get, ENTRY, entry());
    assert!(found(&rig.lookup()));
    rig.wire.expect(Method::Get, ENTRY, entry());
    rig.clock.advance(Duration::from_secs(3299));
    assert!(found(&rig.lookup()));
    assert_eq!(rig.cached().as_deref(), Some("tok-1"));

    rig.clock.advance(Duration::from_secs(1));
    rig.wire
        .expect(Method::Post, LOGIN, token("tok-2"))
        .expect(Method::Get, ENTRY, entry())
        .expect(Method::Post, LOGOUT, logged_off());
    assert!(found(&rig.lookup()));
    assert_eq!(
        rig.wire.authorizations(),
        vec![
            None,
            bearer("tok-1"),
            bearer("tok-1"),
            None,
            bearer("tok-2"),
            bearer("tok-1"),
        ]
    );
    let log_on = &rig.wire.sent()[0];
    assert_eq!(
        log_on.form,
        vec![
            ("username".to_string(), "svc_pam".to_string()),
            ("password".to_string(), "s3cret&pw".to_string()),
        ]
    );
    assert_eq!(rig.cached().as_deref(), Some("tok-2"));
    assert!(rig.notes.warnings.is_empty(), "{:?}", rig.notes.warnings);
}

/// A 401 on the query means the server dropped the token: one new log-on, one more
/// query. The refused token is not logged off (the server has already dropped it).
#[test]
fn a_401_renews_the_token_once_without_logging_off_the_refused_one() {
    let mut rig = Rig::new("renew");
    rig.wire
        .expect(Method::Post, LOGIN, token("tok-1"))
        .expect(Method::Get, ENTRY, entry());
    assert!(found(&rig.lookup()));
    rig.wire
        .expect(Method::Get, ENTRY, expired())
        .expect(Method::Post, LOGIN, token("tok-2"))
        .expect(Method::Get, ENTRY, entry());
    assert!(found(&rig.lookup()));
    assert_eq!(
        rig.wire.authorizations()[2..],
        [bearer("tok-1"), None, bearer("tok-2")]
    );
    assert_eq!(rig.cached().as_deref(), Some("tok-2"));
}

/// A 401 right after a fresh log-on is the account refused (denied in both fail modes),
/// and there is no third log-on.
#[test]
fn a_second_401_is_the_account_refused() {
    let mut rig = Rig::new("refused");
    rig.wire
        .expect(Method::Post, LOGIN, token("tok-1"))
        .expect(Method::Get, ENTRY, expired())
        .expect(Method::Post, LOGIN, token("tok-2"))
        .expect(Method::Get, ENTRY, expired());
    assert!(matches!(
        rig.lookup(),
        Err(LookupError::AccountRefused { status: 401, detail })
            if detail == "ARERR 623 Authentication failed"
    ));
    assert_eq!(rig.wire.sent().len(), 4);
}

/// A cache directory that cannot be trusted is not used: the problem is a warning through
/// the audit sink, and the token, which no other process will see, is logged off.
#[test]
fn an_unusable_cache_is_a_warning_and_its_token_is_logged_off() {
    let mut rig = Rig::new("unusable");
    fs::create_dir(rig.scratch.join("cache")).expect("mkdir");
    fs::set_permissions(rig.scratch.join("cache"), fs::Permissions::from_mode(0o755))
        .expect("chmod");
    for round in 1..=2 {
        rig.wire
            .expect(Method::Post, LOGIN, token("tok"))
            .expect(Method::Get, ENTRY, entry())
            .expect(Method::Post, LOGOUT, logged_off());
        assert!(found(&rig.lookup()), "round {round}");
        assert_eq!(rig.notes.warnings.len(), round);
    }
    assert!(
        rig.notes.warnings[0].starts_with("Remedy token cache unusable, going on without it: ")
            && rig.notes.warnings[0].contains("mode 0755"),
        "{:?}",
        rig.notes.warnings
    );
    assert_eq!(rig.wire.authorizations()[2], bearer("tok"));
    assert!(rig.notes.records.is_empty(), "warnings are not records");
}

/// A cache file that could have been planted is ignored with a warning and replaced; its
/// token is neither sent nor logged off.
#[test]
fn a_planted_cache_file_is_a_warning_and_is_replaced() {
    let mut rig = Rig::new("planted");
    rig.remedy.cache.prepare_directory().expect("directory");
    let now = rig.clock.unix_seconds();
    rig.remedy
        .cache
        .write(&Secret::from_string("planted".to_string()), now)
        .expect("write");
    fs::set_permissions(
        rig.remedy.cache.token_path(),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    rig.wire
        .expect(Method::Post, LOGIN, token("tok-1"))
        .expect(Method::Get, ENTRY, entry());
    assert!(found(&rig.lookup()));
    assert!(!rig.wire.authorizations().contains(&bearer("planted")));
    assert_eq!(rig.notes.warnings.len(), 1, "{:?}", rig.notes.warnings);
    assert!(
        rig.notes.warnings[0].starts_with("Remedy token cache ignored and rebuilt: "),
        "{:?}",
        rig.notes.warnings
    );
    assert_eq!(rig.cached().as_deref(), Some("tok-1"));
}

/// Another process holding the lock (a stopped `pam-ticket test`): the wait ends after half
/// of the time left, and the login logs on without the cache, gets a real verdict, and
/// logs its token off, since no other login will ever use it. The cache stays as it was,
/// and the problem is a warning.
#[test]
fn a_held_lock_is_waited_for_half_the_time_then_the_login_goes_on_without_the_cache() {
    let mut rig = Rig::new("lock");
    rig.remedy.cache.prepare_directory().expect("directory");
    let holder_clock = ManualClock::new();
    let Ok(held) = rig.remedy.cache.lock(Deadline::new(&holder_clock, TIMEOUT)) else {
        panic!("the lock is free");
    };
    rig.wire
        .expect(Method::Post, LOGIN, token("tok-own"))
        .expect(Method::Get, ENTRY, entry())
        .expect(Method::Post, LOGOUT, logged_off());
    let started = rig.clock.monotonic();
    assert!(found(&rig.lookup()));
    assert_eq!(
        rig.clock.since(started),
        TIMEOUT / 2,
        "half of the time left"
    );
    assert_eq!(rig.wire.authorizations()[1], bearer("tok-own"));
    assert_eq!(rig.wire.authorizations()[2], bearer("tok-own"));
    assert_eq!(rig.cached(), None, "not written without the lock");
    assert_eq!(rig.notes.warnings.len(), 1, "{:?}", rig.notes.warnings);
    assert!(
        rig.notes.warnings[0].contains("held by another process"),
        "{:?}",
        rig.notes.warnings
    );
    drop(held);
}

/// The log-on spends the check's one retry on a 503; the query's 503 that follows is then
/// the answer: an outage, not a second retry.
#[test]
fn log_on_and_query_share_one_retry() {
    let mut rig = Rig::new("budget");
    rig.wire
        .expect(Method::Post, LOGIN, Ok(answer(503, "")))
        .expect(Method::Post, LOGIN, token("tok-1"))
        .expect(Method::Get, ENTRY, Ok(answer(503, "")));
    assert!(matches!(
        rig.lookup(),
        Err(LookupError::Unavailable(Outage::ServerError {
            status: 503,
            ..
        }))
    ));
    // The next login is a new check, with a retry of its own.
    rig.wire
        .expect(Method::Get, ENTRY, Ok(answer(503, "")))
        .expect(Method::Get, ENTRY, entry());
    assert!(found(&rig.lookup()));
}

/// `pam-ticket check` logs on afresh, queries the form of each accepted type and logs
/// off; a token cached by logins is neither sent nor replaced.
#[test]
fn the_probe_logs_on_afresh_and_leaves_the_cache_alone() {
    let mut rig = Rig::new("probe");
    rig.remedy.ticket_types = vec![
        TicketKind::Incident,
        TicketKind::Change,
        TicketKind::WorkOrder,
        TicketKind::ProblemInvestigation,
    ];
    rig.remedy.cache.prepare_directory().expect("directory");
    let now = rig.clock.unix_seconds();
    rig.remedy
        .cache
        .write(&Secret::from_string("cached".to_string()), now)
        .expect("write");
    let no_entry = || {
        Ok(answer(
            404,
            &ar_body(302, "Entry does not exist in database").to_string(),
        ))
    };
    rig.wire
        .expect(Method::Post, LOGIN, token("probe-token"))
        .expect(Method::Get, "HPD%3AHelp%20Desk", no_entry())
        .expect(Method::Get, "CHG%3AInfrastructure%20Change", no_entry())
        .expect(Method::Get, "WOI%3AWorkOrder", no_entry())
        .expect(Method::Get, "PBM%3AProblem%20Investigation", no_entry())
        .expect(Method::Post, LOGOUT, logged_off());
    let deadline = Deadline::new(&rig.clock, TIMEOUT);
    let lines = rig.remedy.probe(deadline).expect("probe");
    assert!(lines.contains(&ProbeLine::Ok(
        "logged off (POST /api/jwt/logout)".to_string()
    )));
    assert!(!rig.wire.authorizations().contains(&bearer("cached")));
    assert_eq!(rig.cached().as_deref(), Some("cached"));
}

/// Unless TicketTypes adds them, the work order and problem investigation forms are not
/// asked for: a site without those modules checks clean.
#[test]
fn the_probe_queries_only_the_forms_of_the_accepted_types() {
    let mut rig = Rig::new("probe-types");
    let no_entry = || {
        Ok(answer(
            404,
            &ar_body(302, "Entry does not exist in database").to_string(),
        ))
    };
    rig.wire
        .expect(Method::Post, LOGIN, token("probe-token"))
        .expect(Method::Get, "HPD%3AHelp%20Desk", no_entry())
        .expect(Method::Get, "CHG%3AInfrastructure%20Change", no_entry())
        .expect(Method::Post, LOGOUT, logged_off());
    let deadline = Deadline::new(&rig.clock, TIMEOUT);
    rig.remedy.probe(deadline).expect("probe");
    rig.remedy.ticket_types = vec![TicketKind::Change];
    rig.wire
        .expect(Method::Post, LOGIN, token("probe-token-2"))
        .expect(Method::Get, "CHG%3AInfrastructure%20Change", no_entry())
        .expect(Method::Post, LOGOUT, logged_off());
    let lines = rig.remedy.probe(deadline).expect("probe");
    assert!(
        !lines
            .iter()
            .any(|line| format!("{line:?}").contains("HPD:Help Desk")),
        "{lines:?}"
    );
}

/// A refused log-on is the account refused whatever the status (a 5xx is retried once
/// first, as any 5xx); nothing is cached and nothing is logged off.
#[test]
fn a_refused_log_on_caches_nothing() {
    let mut rig = Rig::new("logon-refused");
    let refused = || {
        Ok(answer(
            500,
            &ar_body(623, "Authentication failed").to_string(),
        ))
    };
    rig.wire
        .expect(Method::Post, LOGIN, refused())
        .expect(Method::Post, LOGIN, refused());
    assert!(matches!(
        rig.lookup(),
        Err(LookupError::AccountRefused { status: 500, .. })
    ));
    assert_eq!(rig.cached(), None);
}
