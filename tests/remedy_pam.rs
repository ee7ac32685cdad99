//! Remedy-only behaviour through the real libpam: the JWT shared between logins through
//! the root-only cache file, its replacement after a 401 or once its lifetime has passed,
//! cache files that must not be trusted, the file lock under a burst of logins, and what
//! goes over the wire. The case list shared with ServiceNow is in `ticket_gate.rs`.

use pam_ticket_testkit as support;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::files::{audit_records, write_root_only};
use support::http::{Handler, Request, Response};
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_AUTHINFO_UNAVAIL, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome, PamService,
    assert_code,
};
use support::pki::{ServerCert, TestPki};
use support::remedy::{Endpoint, RemedySim};
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const ACCOUNT_REFUSED: &str = "Ticket validation is unavailable: the ticketing system refused this gateway's account; contact your administrator";
const MISCONFIGURED: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";

/// A Remedy simulator behind HTTPS, a root-only account file, an audit file, a token cache
/// directory and a PAM service, all in a private directory.
struct RemedyGate {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    sim: Arc<RemedySim>,
}

impl RemedyGate {
    fn new() -> RemedyGate {
        RemedyGate::with_handler(|sim| sim)
    }

    /// A gate whose server runs `wrap(simulator)`, for faults the server has no name for.
    fn with_handler(wrap: impl FnOnce(Arc<RemedySim>) -> Arc<dyn Handler>) -> RemedyGate {
        let dir = TestDir::new("remedy-pam");
        let pki = TestPki::generate(&dir.join("pki"));
        let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        let server = TestServer::start(pki.server_config(ServerCert::Good), wrap(sim.clone()));
        write_root_only(
            &dir.join("account.conf"),
            &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        );
        RemedyGate {
            dir,
            pki,
            server,
            sim,
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.join("token-cache")
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn service(&self, extra: &str) -> PamService {
        let config_path = self.dir.join("pam_ticket.conf");
        let text = format!(
            "TicketingSystem=\"BMCRemedy\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nCacheDirectory=\"{}\"\nMaxAttempts=1\n{}{extra}",
            self.server.base_url(),
            self.dir.join("account.conf").display(),
            self.pki.ca_pem_path().display(),
            self.audit_path().display(),
            self.cache_dir().display(),
            if extra.contains("Timeout=") {
                ""
            } else {
                "Timeout=3\n"
            },
        );
        fs::write(&config_path, text).expect("write config");
        PamService::new(
            &self.dir.join("pam.d"),
            "remedy-test",
            &pam::module_path(),
            &[format!("config={}", config_path.display())],
        )
    }

    fn login(&self, service: &PamService, answer: &str) -> PamOutcome {
        pam::authenticate(
            service,
            &Login::new("alice").rhost("192.0.2.20").answer(answer),
        )
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.audit_path())
    }

    /// The newest audit record, whose reason names `cause`.
    fn newest_record_names(&self, cause: &str) -> Value {
        let record = self.audit().pop().expect("an audit record");
        let reason = record["reason"].as_str().unwrap_or("");
        assert!(reason.contains(cause), "{record}");
        record
    }

    /// Logs alice in with `ticket`, which must be allowed (see [`assert_allowed`]).
    fn log_in_allowed(&self, service: &PamService, ticket: &str) {
        let outcome = self.login(service, ticket);
        assert_allowed(self, &outcome, ticket);
    }

    /// The one token cache file (`remedy-<key>.token`).
    fn token_file(&self) -> PathBuf {
        self.only_cache_file("token")
    }

    /// The one lock file beside it (`remedy-<key>.lock`).
    fn token_file_sibling_lock(&self) -> PathBuf {
        self.only_cache_file("lock")
    }

    /// The one file in the cache directory whose name ends in `.<extension>`.
    fn only_cache_file(&self, extension: &str) -> PathBuf {
        let files: Vec<PathBuf> = fs::read_dir(self.cache_dir())
            .expect("cache directory")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == extension))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    fn cached_token(&self) -> String {
        let text = fs::read_to_string(self.token_file()).expect("cache file");
        text.lines()
            .find_map(|line| line.strip_prefix("token="))
            .expect("a token line")
            .to_string()
    }

    /// The tokens the queries carried, in order.
    fn query_tokens(&self) -> Vec<String> {
        self.sim
            .received()
            .into_iter()
            .filter(|received| received.endpoint == Endpoint::Query)
            .map(|received| received.token.unwrap_or_default())
            .collect()
    }
}

fn assert_allowed(gate: &RemedyGate, outcome: &PamOutcome, ticket: &str) {
    assert_code(outcome, PAM_SUCCESS);
    assert!(outcome.errors().is_empty(), "{}", outcome.transcript());
    assert_eq!(
        outcome.env.get("TICKET_ID").map(String::as_str),
        Some(ticket)
    );
    assert_eq!(
        outcome.env.get("TICKETING_SYSTEM").map(String::as_str),
        Some("BMCRemedy")
    );
    let last = gate.audit().pop().expect("an audit record");
    assert_eq!(last["decision"], "allow", "{last}");
    assert_eq!(last["system"], "BMCRemedy", "{last}");
    assert_eq!(last["ticket"], ticket, "{last}");
}

/// The account was refused: PAM_AUTHINFO_UNAVAIL in either fail `mode`, said so, and no
/// failsafe.
fn assert_account_refused(outcome: &PamOutcome, mode: &str) {
    assert_eq!(
        outcome.code,
        PAM_AUTHINFO_UNAVAIL,
        "{mode}: {}",
        outcome.transcript()
    );
    assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED]);
    assert!(!outcome.env.contains_key("TICKET_DECISION"));
}

fn mode(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").mode() & 0o7777
}

#[test]
fn the_query_on_the_wire() {
    let gate = RemedyGate::new();
    let service = gate.service("");
    gate.log_in_allowed(&service, "CRQ000000000001");
    let requests = gate.server.requests();
    assert_eq!(requests.len(), 2);
    let login = &requests[0];
    assert_eq!(
        (login.method.as_str(), login.path.as_str()),
        ("POST", "/api/jwt/login")
    );
    assert_eq!(
        login.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let query = &requests[1];
    assert_eq!(query.method, "GET");
    assert_eq!(query.path, "/api/arsys/v1/entry/CHG:Infrastructure Change");
    assert_eq!(
        query.param("q"),
        Some(r#"'Infrastructure Change ID' = "CRQ000000000001""#)
    );
    assert_eq!(
        query.param("fields"),
        Some(
            "values(Infrastructure Change ID,Change Request Status,Approval Status,Scheduled Start Date,Scheduled End Date,Requested By,Submitter)"
        )
    );
    assert_eq!(query.param("limit"), Some("2"));
    let token = gate.cached_token();
    assert_eq!(
        query.header("authorization"),
        Some(format!("AR-JWT {token}").as_str())
    );
    // The token never reaches the audit.
    let audit_text = fs::read_to_string(gate.audit_path()).expect("audit");
    assert!(!audit_text.contains(&token));
    assert!(!audit_text.contains(ACCOUNT_PASSWORD));
}

#[test]
fn a_second_login_reuses_the_cached_token() {
    let gate = RemedyGate::new();
    let service = gate.service("");
    gate.log_in_allowed(&service, "INC000000000001");
    gate.log_in_allowed(&service, "CRQ000000000001");
    assert_eq!(gate.sim.login_count(), 1);
    assert_eq!(gate.sim.query_count(), 2);
    assert_eq!(
        gate.sim.logout_count(),
        0,
        "a cached token is never logged off"
    );
    let tokens = gate.query_tokens();
    assert_eq!(tokens[0], tokens[1]);
    // The cache: a 0700 directory holding a 0600 file, both root's.
    assert_eq!(mode(&gate.cache_dir()), 0o700);
    let file = gate.token_file();
    assert_eq!(mode(&file), 0o600);
    assert_eq!(fs::metadata(&file).expect("stat").uid(), 0);
    assert_eq!(gate.cached_token(), tokens[0]);
    assert_eq!(gate.audit().len(), 2);
}

#[test]
fn an_expired_token_is_replaced_after_one_401() {
    let gate = RemedyGate::new();
    let service = gate.service("");
    gate.log_in_allowed(&service, "INC000000000001");
    let old = gate.cached_token();
    gate.sim.expire_tokens();
    gate.log_in_allowed(&service, "INC000000000001");
    assert_eq!(gate.sim.login_count(), 2);
    // First login's query, the refused one, and its one retry.
    assert_eq!(gate.sim.query_count(), 3);
    let statuses: Vec<u16> = gate
        .sim
        .received()
        .iter()
        .filter(|received| received.endpoint == Endpoint::Query)
        .map(|received| received.status)
        .collect();
    assert_eq!(statuses, vec![200, 401, 200]);
    // The server already dropped the refused token: no log-off for it.
    assert_eq!(gate.sim.logout_count(), 0);
    let new = gate.cached_token();
    assert_ne!(new, old);
    assert_eq!(gate.query_tokens(), vec![old.clone(), old, new]);
    assert_eq!(gate.audit().len(), 2);
}

/// A query refused with a token from a fresh log-on is the account refused (its roles,
/// or its lock state), not an outage: denied in both fail modes, after one log-on and
/// one retry, never more.
#[test]
fn a_token_refused_twice_is_the_account_refused_in_both_fail_modes() {
    for mode in ["secure", "safe"] {
        let gate = RemedyGate::new();
        let service = gate.service(&format!("FailMode={mode}\n"));
        gate.log_in_allowed(&service, "INC000000000001");
        // Every token dies at once, so the retry is refused as well.
        gate.sim.set_token_lifetime(Some(Duration::ZERO));
        let outcome = gate.login(&service, "INC000000000001");
        assert_account_refused(&outcome, mode);
        assert_eq!(gate.sim.login_count(), 2, "log on again once, not more");
        assert_eq!(gate.sim.query_count(), 3, "retry the query once, not more");
        let last = gate.newest_record_names(&format!(
            "unavailable (not an outage, so never failsafe): the module's account \
                 {ACCOUNT_USER} was refused by {} (HTTP 401: ARERR 623 Authentication failed): \
                 check ConnectionAccountFile",
            gate.server.base_url()
        ));
        assert_eq!(last["decision"], "unavailable");
    }
}

/// A cached token that the server dropped still means one new log-on and one retry; when
/// that log-on is refused (the password was changed on the server, the account locked),
/// the account is refused: denied in both fail modes, never failsafe.
#[test]
fn a_refused_log_on_after_a_dropped_token_is_the_account_refused_in_both_fail_modes() {
    for mode in ["secure", "safe"] {
        let gate = RemedyGate::new();
        let service = gate.service(&format!("FailMode={mode}\n"));
        gate.log_in_allowed(&service, "INC000000000001");
        gate.sim.expire_tokens();
        gate.sim
            .set_credentials(ACCOUNT_USER, "changed-on-the-server");
        let outcome = gate.login(&service, "INC000000000001");
        assert_account_refused(&outcome, mode);
        // The refused query on the cached token, then one log-on, refused.
        assert_eq!(gate.sim.query_count(), 2);
        assert_eq!(gate.sim.login_count(), 2);
        let last = gate.newest_record_names(&format!(
            "the module's account {ACCOUNT_USER} was refused by {} (HTTP 401: ARERR 623 \
                 Authentication failed): check ConnectionAccountFile ({}) and the account's \
                 password, lock state and roles",
            gate.server.base_url(),
            gate.dir.join("account.conf").display()
        ));
        assert_eq!(last["decision"], "unavailable");
    }
}

#[test]
fn a_token_past_its_lifetime_is_replaced_and_the_old_one_logged_off() {
    let gate = RemedyGate::new();
    let service = gate.service("RemedyTokenLifetime=600\n");
    gate.log_in_allowed(&service, "INC000000000001");
    let old = gate.cached_token();
    // Age the cache file by more than the lifetime (root edits a root-only file).
    let file = gate.token_file();
    let text = fs::read_to_string(&file).expect("read");
    let obtained: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("obtained="))
        .and_then(|value| value.parse().ok())
        .expect("obtained line");
    fs::write(
        &file,
        text.replace(
            &format!("obtained={obtained}"),
            &format!("obtained={}", obtained - 601),
        ),
    )
    .expect("write");
    gate.log_in_allowed(&service, "INC000000000001");
    assert_eq!(gate.sim.login_count(), 2);
    assert_eq!(gate.sim.query_count(), 2);
    assert_eq!(gate.sim.logout_count(), 1);
    let logout = gate
        .sim
        .received()
        .into_iter()
        .find(|received| received.endpoint == Endpoint::Logout)
        .expect("a logout");
    assert_eq!(logout.token.as_deref(), Some(old.as_str()));
    assert_eq!(logout.status, 204);
    assert_eq!(gate.sim.live_tokens(), vec![gate.cached_token()]);
}

/// A cache file that could have been planted (wrong owner, open mode) is not trusted even
/// when its token is one the server accepts; a corrupt one is not used either. Each is
/// replaced by a root-only file after a fresh log-on.
#[test]
fn untrusted_or_corrupt_cache_files_are_ignored_and_rebuilt() {
    type Spoil = fn(&std::path::Path);
    let spoilers: &[(&str, Spoil)] = &[
        ("owned by nobody", |path| {
            std::os::unix::fs::chown(path, Some(65534), Some(65534)).expect("chown");
        }),
        ("mode 0644", |path| {
            fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
        }),
        ("mode 0640", |path| {
            fs::set_permissions(path, fs::Permissions::from_mode(0o640)).expect("chmod");
        }),
        ("corrupt", |path| {
            fs::write(path, b"\x00\x01garbage\n").expect("write");
        }),
        ("truncated", |path| {
            let text = fs::read_to_string(path).expect("read");
            fs::write(path, &text[..text.len() / 2]).expect("write");
        }),
        ("a symlink", |path| {
            let target = path.with_extension("elsewhere");
            fs::rename(path, &target).expect("move");
            std::os::unix::fs::symlink(&target, path).expect("symlink");
        }),
    ];
    for (label, spoil) in spoilers {
        let gate = RemedyGate::new();
        let service = gate.service("");
        gate.log_in_allowed(&service, "INC000000000001");
        let planted = gate.cached_token();
        spoil(&gate.token_file());
        gate.log_in_allowed(&service, "INC000000000001");
        assert_eq!(
            gate.sim.login_count(),
            2,
            "{label}: the file must not be trusted"
        );
        let tokens = gate.query_tokens();
        assert_eq!(tokens.len(), 2, "{label}");
        assert_ne!(tokens[1], planted, "{label}: the planted token was used");
        // Rebuilt: a regular root-only file holding the new token.
        let file = gate.token_file();
        let metadata = fs::symlink_metadata(&file).expect("stat");
        assert!(metadata.file_type().is_file(), "{label}");
        assert_eq!(
            (metadata.uid(), metadata.mode() & 0o7777),
            (0, 0o600),
            "{label}"
        );
        assert_eq!(gate.cached_token(), tokens[1], "{label}");
        // An untrusted token is neither used nor logged off.
        assert_eq!(gate.sim.logout_count(), 0, "{label}");
    }
}

/// A cache directory others could write to is not used at all: the module logs on, checks
/// the ticket, and logs the token it could not cache off again.
#[test]
fn an_open_cache_directory_is_not_used() {
    let gate = RemedyGate::new();
    fs::create_dir(gate.cache_dir()).expect("mkdir");
    fs::set_permissions(gate.cache_dir(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let service = gate.service("");
    for _ in 0..2 {
        gate.log_in_allowed(&service, "INC000000000001");
    }
    assert_eq!(gate.sim.login_count(), 2);
    assert_eq!(gate.sim.query_count(), 2);
    assert_eq!(gate.sim.logout_count(), 2);
    assert!(gate.sim.live_tokens().is_empty());
    assert_eq!(fs::read_dir(gate.cache_dir()).expect("list").count(), 0);
}

/// 50 PAM logins at once: one log-on request, every query with the same token.
#[test]
#[allow(clippy::disallowed_methods)] // real time, for the report line
fn fifty_concurrent_logins_cause_one_log_on() {
    let gate = Arc::new(RemedyGate::new());
    let service = gate.service("Timeout=20\n");
    let started = Instant::now();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let gate = Arc::clone(&gate);
            let service = service.clone();
            std::thread::spawn(move || gate.login(&service, "INC000000000001"))
        })
        .collect();
    let outcomes: Vec<PamOutcome> = threads
        .into_iter()
        .map(|thread| thread.join().expect("login thread"))
        .collect();
    let elapsed = started.elapsed();
    for outcome in &outcomes {
        assert_code(outcome, PAM_SUCCESS);
        assert!(outcome.errors().is_empty());
    }
    assert_eq!(gate.sim.login_count(), 1);
    assert_eq!(gate.sim.query_count(), 50);
    assert_eq!(gate.sim.logout_count(), 0);
    let tokens = gate.query_tokens();
    assert!(tokens.iter().all(|token| *token == tokens[0]));
    let audit = gate.audit();
    assert_eq!(audit.len(), 50);
    assert!(audit.iter().all(|record| record["decision"] == "allow"));
    eprintln!("50 concurrent Remedy logins took {elapsed:?}");
}

/// Another process holding the cache lock (a stopped `pam-ticket test`, say): the login
/// waits for it at most half of the time it has left, then logs on without the cache and
/// gets a real verdict within Timeout, never a time-out that FailMode=safe would let in
/// unasked. Its token is not written to the cache (the lock was never taken) and so is
/// logged off after the query. On main the wait ran to the deadline and the login was
/// let in as failsafe.
#[test]
fn a_held_lock_still_gets_a_real_verdict_within_the_timeout() {
    let gate = RemedyGate::new();
    let service = gate.service("Timeout=2\nFailMode=safe\n");
    // A first login creates the directory and the lock file; then the cache is emptied.
    gate.log_in_allowed(&service, "INC000000000001");
    fs::remove_file(gate.token_file()).expect("remove the token file");
    let lock_path = gate.token_file_sibling_lock();
    let holder = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lock_path)
        .expect("open the lock file");
    // SAFETY: a valid descriptor, held for the rest of the test.
    assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX) }, 0);
    let outcome = gate.login(&service, "INC000000000001");
    assert_allowed(&gate, &outcome, "INC000000000001");
    assert_eq!(
        outcome.env.get("TICKET_DECISION").map(String::as_str),
        Some("allow"),
        "a real verdict, not a failsafe"
    );
    assert!(outcome.infos().is_empty(), "{}", outcome.transcript());
    assert!(
        outcome.elapsed >= Duration::from_millis(900) && outcome.elapsed < Duration::from_secs(2),
        "about half of Timeout=2 waiting for the lock, then the check: {:?}",
        outcome.elapsed
    );
    assert_eq!(gate.sim.login_count(), 2, "one log-on of its own");
    assert_eq!(gate.sim.query_count(), 2);
    assert_eq!(
        gate.sim.logout_count(),
        1,
        "its uncached token is logged off"
    );
    let received = gate.sim.received();
    let own_token = received
        .iter()
        .rev()
        .find(|seen| seen.endpoint == Endpoint::Query)
        .and_then(|seen| seen.token.clone());
    let logged_off = received
        .iter()
        .find(|seen| seen.endpoint == Endpoint::Logout)
        .and_then(|seen| seen.token.clone());
    assert!(own_token.is_some());
    assert_eq!(
        logged_off, own_token,
        "the token it used is the one logged off"
    );
    assert!(
        !fs::read_dir(gate.cache_dir())
            .expect("cache directory")
            .any(|entry| entry
                .expect("entry")
                .path()
                .extension()
                .is_some_and(|ext| ext == "token")),
        "nothing cached without the lock"
    );
    // Released: the next login takes the lock and caches its token again.
    drop(holder);
    assert_allowed(
        &gate,
        &gate.login(&service, "INC000000000001"),
        "INC000000000001",
    );
    assert_eq!(gate.sim.login_count(), 3);
    assert_eq!(gate.sim.logout_count(), 1);
    assert!(gate.token_file().exists());
}

/// A form name the server does not know is the module's configuration, not the ticket,
/// and not an outage either: PAM_SERVICE_ERR, never failsafe.
#[test]
fn an_unknown_form_is_a_misconfiguration() {
    let gate = RemedyGate::new();
    let service = gate.service("RemedyIncidentForm=\"HPD:Help Desk Typo\"\nFailMode=safe\n");
    let outcome = gate.login(&service, "INC000000000001");
    assert_code(&outcome, PAM_SERVICE_ERR);
    assert_eq!(outcome.errors(), vec![MISCONFIGURED]);
    assert_eq!(gate.sim.query_count(), 1);
    let last = gate.newest_record_names(
        "\"HPD:Help Desk Typo\" does not exist (ARERR 303 Form does not exist on server)",
    );
    assert_eq!(last["decision"], "error");
}

/// Sites rename fields: the overrides reach the wire, and the answer is read through them.
#[test]
fn customised_field_names_are_used() {
    let gate = RemedyGate::new();
    for serial in 1..=5 {
        let id = format!("INC{serial:012}");
        let owner = if serial == 3 { "bob" } else { "alice" };
        gate.sim.set_field(
            support::remedy::INCIDENT_FORM,
            "Incident Number",
            &id,
            "Corporate ID",
            Value::from(owner),
        );
    }
    let service = gate
        .service("RemedyIncidentRequesterFields=\"Corporate ID\"\nValidateRequestingUser=Yes\n");
    let outcome = gate.login(&service, "INC000000000003");
    assert_eq!(
        outcome.errors(),
        vec!["Ticket INC000000000003 was not requested by alice"]
    );
    let query = gate.server.requests().pop().expect("query");
    assert_eq!(
        query.param("fields"),
        Some("values(Incident Number,Status,Corporate ID)")
    );
    gate.log_in_allowed(&service, "INC000000000001");
}

/// The simulator must really widen the match for an unquoted injection, or the quoting
/// tests prove nothing. This asks it directly over HTTPS, as an unguarded module would.
#[test]
fn the_simulator_really_widens_an_injected_qualification() {
    let gate = RemedyGate::new();
    let bundle = pam_ticket::trust::load(&gate.pki.ca_pem_path()).expect("CA bundle");
    let client = pam_ticket::http::HttpClient::new(Some(&bundle), None, None).expect("client");
    let deadline =
        || pam_ticket::http::Deadline::new(&pam_ticket::clock::SystemClock, Duration::from_secs(5));
    let login = client
        .send(
            pam_ticket::http::Method::Post,
            &format!("{}/api/jwt/login", gate.server.base_url()),
            &[],
            &pam_ticket::http::Body::Form(&[
                ("username", ACCOUNT_USER),
                ("password", ACCOUNT_PASSWORD),
            ]),
            deadline(),
        )
        .expect("login");
    let authorization = format!("AR-JWT {}", login.body_text());
    let count = |q: &str| {
        let url = format!(
            "{}/api/arsys/v1/entry/HPD%3AHelp%20Desk?q={}&fields=values(Incident%20Number)",
            gate.server.base_url(),
            pam_ticket::http::percent_encode(q)
        );
        let response = client
            .send(
                pam_ticket::http::Method::Get,
                &url,
                &[("Authorization", &authorization)],
                &pam_ticket::http::Body::Empty,
                deadline(),
            )
            .expect("answer");
        let document: Value = serde_json::from_slice(&response.body).expect("json");
        document["entries"].as_array().map_or(0, Vec::len)
    };
    let hostile = r#"INC000000000001" OR 'Status' != "x"#;
    let naive = format!("'Incident Number' = \"{hostile}\"");
    assert_eq!(count(&naive), 5, "an unquoted injection widens the match");
    let quoted = pam_ticket::backend::remedy::qualification("Incident Number", hostile);
    assert_eq!(count(&quoted), 0, "the module's quoting keeps it one value");
    assert_eq!(
        count(&pam_ticket::backend::remedy::qualification(
            "Incident Number",
            "INC000000000001"
        )),
        1
    );
}

/// `conf/pam_ticket.remedy.conf`, pointed at the simulator, is a working configuration.
#[test]
fn the_example_configuration_works() {
    let gate = RemedyGate::new();
    let example = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/pam_ticket.remedy.conf"
    ))
    .expect("the example configuration");
    let text = example
        .replace(
            "SystemURL=\"https://remedy.example.com:8443\"",
            &format!("SystemURL=\"{}\"", gate.server.base_url()),
        )
        .replace(
            "/etc/security/pam_ticket.account",
            &gate.dir.join("account.conf").display().to_string(),
        )
        .replace(
            "/var/log/pam_ticket/audit.jsonl",
            &gate.audit_path().display().to_string(),
        )
        .replace(
            "#CAFile=\"/etc/pki/tls/certs/ca-bundle.crt\"",
            &format!("CAFile=\"{}\"", gate.pki.ca_pem_path().display()),
        )
        .replace(
            "#CacheDirectory=\"/run/pam_ticket\"",
            &format!("CacheDirectory=\"{}\"", gate.cache_dir().display()),
        );
    let config_path = gate.dir.join("example.conf");
    fs::write(&config_path, text).expect("write");
    let service = PamService::new(
        &gate.dir.join("pam.d"),
        "remedy-example",
        &pam::module_path(),
        &[format!("config={}", config_path.display())],
    );
    for ticket in ["INC000000000001", "CRQ000000000001"] {
        gate.log_in_allowed(&service, ticket);
    }
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .answer("CRQ000000000007")
            .answer("CRQ000000000002")
            .answer("INC0010001"),
    );
    assert_eq!(
        outcome.errors(),
        vec![
            "Change CRQ000000000007 is Closed; allowed states: Scheduled, Implementation In Progress",
            "Change CRQ000000000002 is not approved (approval: Requested); allowed: Approved",
            "That ticket ID is not of a ticket type this gateway accepts",
        ]
    );
    assert_eq!(pam::code_name(outcome.code), "PAM_MAXTRIES");
    assert_eq!(gate.sim.login_count(), 1);
    assert_eq!(gate.sim.query_count(), 4);
}

/// Answers 503 to the requests whose 1-based numbers are listed, and passes the rest on.
struct FailOn {
    inner: Arc<RemedySim>,
    numbers: &'static [usize],
    seen: std::sync::atomic::AtomicUsize,
}

impl Handler for FailOn {
    fn handle(&self, request: &Request) -> Response {
        let number = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.numbers.contains(&number) {
            return Response::json(
                503,
                &serde_json::json!([{"messageType": "ERROR", "messageText": "busy", "messageNumber": 9999}]),
            );
        }
        self.inner.handle(request)
    }
}

/// One retry per check, whichever request spends it: the log-on fails once and is retried,
/// then the query fails once and is not retried again.
#[test]
fn one_retry_per_check_across_log_on_and_query() {
    let gate = RemedyGate::with_handler(|sim| {
        Arc::new(FailOn {
            inner: sim,
            numbers: &[1, 3],
            seen: std::sync::atomic::AtomicUsize::new(0),
        })
    });
    let service = gate.service("");
    let outcome = gate.login(&service, "INC000000000001");
    assert_code(&outcome, PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        gate.server.request_count(),
        3,
        "log-on, its retry, the query: no fourth"
    );
    assert_eq!(gate.sim.login_count(), 1);
    assert_eq!(gate.audit().len(), 1);
    let record = gate.newest_record_names("server error HTTP 503");
    assert_eq!(record["decision"], "unavailable");
}
