//! The `pam-ticket` admin tool, run as a process against the ServiceNow, BMC Remedy and
//! portal (PVWA) simulators over HTTPS.

use pam_ticket_testkit as support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use pam_ticket::bypass::{self, BypassHash};
use support::files::{audit_records, write_root_only};
use support::http::Handler;
use support::https::{TestServer, refusing_port};
use support::pki::{ServerCert, TestPki};
use support::portal::{PortalChain, ROOT_PASSWORD};
use support::remedy::{Endpoint, RemedySim};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const USER: &str = "svc_pam";
const PASSWORD: &str = "Adm1n-t00l-s3cret";

/// A simulator behind HTTPS with a certificate of the test PKI, in a private directory.
struct Simulated<S> {
    server: TestServer,
    sim: Arc<S>,
    pki: TestPki,
    dir: TestDir,
}

impl<S: Handler> Simulated<S> {
    fn start(label: &str, sim: S) -> Simulated<S> {
        let dir = TestDir::new(label);
        let pki = TestPki::generate(&dir.join("pki"));
        let sim = Arc::new(sim);
        let server = TestServer::start(pki.server_config(ServerCert::Good), sim.clone());
        Simulated {
            server,
            sim,
            pki,
            dir,
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        audit_records(&self.audit_path())
    }
}

/// The ServiceNow simulator.
type Setup = Simulated<ServiceNowSim>;

impl Setup {
    fn new(label: &str) -> Setup {
        Simulated::start(
            &format!("admin-{label}"),
            ServiceNowSim::new(USER, PASSWORD),
        )
    }

    /// Writes the account file and a configuration; returns the configuration's path.
    fn config(&self, password: &str, url: &str, ca: PathBuf, extra: &str) -> PathBuf {
        let account = self.dir.join("account.conf");
        write_root_only(
            &account,
            &format!("Username=\"{USER}\"\nPassword=\"{password}\"\n"),
        );
        let path = self.dir.join("pam_ticket.conf");
        fs::write(
            &path,
            format!(
                "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{url}\"\n\
                 ConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nTimeout=\"3\"\n\
                 AuditLogFile=\"{}\"\n{extra}",
                account.display(),
                ca.display(),
                self.audit_path().display()
            ),
        )
        .expect("write the configuration");
        // It may hold bypass code hashes, which the module accepts only in a root-only file.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    fn good_config(&self, extra: &str) -> PathBuf {
        self.config(
            PASSWORD,
            &self.server.base_url(),
            self.pki.ca_pem_path(),
            extra,
        )
    }
}

fn tool(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(TOOL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pam-ticket");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for pam-ticket");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn path_arg(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// `pam-ticket check --config <config>`
fn check(config: &Path) -> (i32, String, String) {
    tool(&["check", "--config", &path_arg(config)], "")
}

/// `pam-ticket test --user <user> --config <config> <options…> <ticket>`, `stdin` on its
/// standard input.
fn run_test_with(
    config: &Path,
    user: &str,
    options: &[&str],
    ticket: &str,
    stdin: &str,
) -> (i32, String, String) {
    let config = path_arg(config);
    let mut args = vec!["test", "--user", user, "--config", &config];
    args.extend_from_slice(options);
    args.push(ticket);
    tool(&args, stdin)
}

/// Every one of `lines` is in `out`.
fn assert_has_lines(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

/// The incident-state and requester checks.
const STATE_AND_REQUESTER_CHECKS: &str = concat!(
    "ValidateIncidentTicketState=Yes\n",
    "AllowedIncidentTicketStates=\"New,In Progress\"\n",
    "ValidateRequestingUser=Yes\n",
);

#[test]
fn every_subcommand_has_help_and_refuses_unknown_options() {
    for command in ["check", "test", "hash-code"] {
        let (code, out, _) = tool(&[command, "--help"], "");
        assert_eq!(code, 0, "{command} --help");
        assert!(
            out.starts_with(&format!("usage: pam-ticket {command}")),
            "{out}"
        );
        assert!(out.contains("exit status:"), "{out}");
        let (code, _, err) = tool(&[command, "--bogus"], "");
        assert_eq!(code, 2, "{command} --bogus");
        assert!(err.contains("unknown option --bogus"), "{err}");
    }
    let (code, _, err) = tool(&["test", "INC0010001"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--user"), "{err}");
    let (code, out, _) = tool(&["--help"], "");
    assert_eq!(code, 0);
    assert!(out.contains("hash-code"), "{out}");
}

#[test]
fn check_reports_settings_masked_and_a_working_account() {
    let setup = Setup::new("check-ok");
    let config = setup.good_config(
        "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New,In Progress\"\n",
    );
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("  OK    parsed and validated"), "{out}");
    assert!(
        out.contains("ValidateIncidentTicketState    Yes: New, In Progress"),
        "{out}"
    );
    assert!(out.contains("Password=********"), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}");
    assert!(out.contains("OK    TLS"), "{out}");
    assert!(
        out.contains("OK    logged on; the probe ticket PAMTICKETCHECK0 was not found"),
        "{out}"
    );
    assert!(
        out.contains(
            "  OK    AllowedIncidentTicketStates: every entry names one of the incident states ServiceNow knows"
        ),
        "{out}"
    );
    assert!(out.ends_with("result: OK\n"), "{out}");
    // The probe, then the incident states the list is compared with.
    assert_eq!(setup.server.request_count(), 2);
    let queries = setup.sim.received();
    assert_eq!(queries[0].table, "incident");
    assert_eq!(queries[0].status, 200);
    assert_eq!(queries[1].table, "sys_choice");
    assert!(setup.audit_lines().is_empty(), "check writes no audit");
}

#[test]
fn check_names_a_rejected_account() {
    let setup = Setup::new("check-401");
    let config = setup.config(
        "wrong-password",
        &setup.server.base_url(),
        setup.pki.ca_pem_path(),
        "",
    );
    let (code, out, _) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("OK    TLS"), "{out}");
    // Who was refused, by whom, what to check, and that it is not an outage.
    let expected = format!(
        "  FAIL  the module's account {USER} was refused by {} (HTTP 401: User Not \
         Authenticated: Required to provide Auth information): check ConnectionAccountFile \
         ({}) and the account's password, lock state and roles. This is not an outage: every \
         login is denied, in both fail modes, until the account is fixed\n",
        setup.server.base_url(),
        setup.dir.join("account.conf").display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(out.ends_with("result: FAILED\n"), "{out}");
    assert_eq!(setup.server.request_count(), 1);
}

#[test]
fn check_names_an_untrusted_certificate() {
    let setup = Setup::new("check-tls");
    let config = setup.config(
        PASSWORD,
        &setup.server.base_url(),
        setup.pki.untrusted_ca_pem_path(),
        "",
    );
    let (code, out, _) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  TLS: the server's certificate did not verify"),
        "{out}"
    );
    assert!(!out.contains("OK    TLS"), "{out}");
    assert_eq!(setup.server.request_count(), 0, "no request over bad TLS");
}

#[test]
fn check_names_an_unreachable_system() {
    let setup = Setup::new("check-down");
    let url = format!("https://localhost:{}", refusing_port());
    let config = setup.config(PASSWORD, &url, setup.pki.ca_pem_path(), "");
    let (code, out, _) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  the ticketing system is unavailable: connection refused"),
        "{out}"
    );
}

#[test]
fn check_reports_configuration_errors_with_file_and_line() {
    let setup = Setup::new("check-typo");
    let config = setup.good_config("ValidateRequestngUser=Yes\n");
    let (code, out, _) = check(&config);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!(
            "ERROR {}:7: unknown key ValidateRequestngUser (did you mean ValidateRequestingUser?)",
            config.display()
        )),
        "{out}"
    );
    assert_eq!(setup.server.request_count(), 0);

    // A module argument is checked the same way the pam.d line would be.
    let config = setup.good_config("");
    let (code, out, _) = tool(
        &[
            "check",
            "--config",
            &path_arg(&config),
            "--arg",
            "FailMode=maybe",
        ],
        "",
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("argument 2"), "{out}");
}

#[test]
fn test_runs_every_check_and_writes_no_audit_by_default() {
    let setup = Setup::new("test-valid");
    let config = setup.good_config(STATE_AND_REQUESTER_CHECKS);
    let (code, out, err) =
        run_test_with(&config, "alice", &["--rhost", "10.9.8.7"], "INC0010001", "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ID rules        PASS   incident INC0010001"),
        "{out}"
    );
    assert!(
        out.contains("check state     PASS   state In Progress"),
        "{out}"
    );
    assert!(out.contains("check requester PASS"), "{out}");
    assert!(
        out.contains("decision        ALLOW  PAM_SUCCESS; exports TICKET_ID=INC0010001"),
        "{out}"
    );
    assert!(out.contains("audit           SKIP   not written"), "{out}");
    assert!(out.contains("\"rhost\":\"10.9.8.7\""), "{out}");
    assert_eq!(setup.sim.query_count(), 1);
    assert!(setup.audit_lines().is_empty());
}

/// `pam-ticket test` is a dry run: with WorkNotes=Yes it writes nothing to the ticket,
/// and with AskReason=Yes it does not ask (it has one answer, the ticket).
#[test]
fn test_writes_no_work_note_and_asks_no_reason() {
    let setup = Setup::new("test-notes");
    let config = setup.good_config("WorkNotes=Yes\nAskReason=Yes\n");
    let (code, out, err) = run_test(&config, "alice", "INC0010001");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "work note       SKIP   WorkNotes=Yes: pam-ticket test writes nothing to the ticket"
        ),
        "{out}"
    );
    assert!(
        out.contains("reason          SKIP   AskReason=Yes: not asked by pam-ticket test"),
        "{out}"
    );
    assert!(out.contains("decision        ALLOW  PAM_SUCCESS"), "{out}");
    assert!(setup.sim.updates().is_empty(), "no PATCH");
}

#[test]
fn test_shows_every_failing_check_and_the_message_the_user_sees() {
    let setup = Setup::new("test-closed");
    let config = setup.good_config(STATE_AND_REQUESTER_CHECKS);
    let (code, out, _) = run_test_with(&config, "bob", &["--audit"], "INC0010002", "");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "check state     FAIL   Ticket INC0010002 is Closed; allowed states: New, In Progress"
        ),
        "{out}"
    );
    assert!(out.contains("check requester FAIL"), "{out}");
    assert!(
        out.contains(
            "user sees       ERROR  Ticket INC0010002 is Closed; allowed states: New, In Progress"
        ),
        "{out}"
    );
    assert!(out.contains("PAM_MAXTRIES"), "{out}");
    assert_eq!(setup.sim.query_count(), 1);
    let audit = setup.audit_lines();
    assert_eq!(audit.len(), 1, "--audit writes the record");
    assert_eq!(audit[0]["decision"], "deny");
    assert_eq!(audit[0]["user"], "bob");
    assert_eq!(audit[0]["ticket"], "INC0010002");
}

#[test]
fn test_refuses_hostile_ids_without_a_request() {
    let setup = Setup::new("test-hostile");
    let config = setup.good_config("");
    let (code, out, _) = run_test(&config, "alice", "INC0010001^NQnumberISNOTEMPTY");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ID rules        FAIL   A ticket ID may only contain letters"),
        "{out}"
    );
    assert_eq!(setup.server.request_count(), 0);
}

#[test]
fn test_reports_unavailable_by_fail_mode() {
    let setup = Setup::new("test-down");
    let url = format!("https://localhost:{}", refusing_port());
    let config = setup.config(PASSWORD, &url, setup.pki.ca_pem_path(), "");
    let in_mode = |mode: &str| run_test_with(&config, "alice", &["--arg", mode], "INC0010001", "");
    let (code, out, _) = in_mode("FailMode=secure");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lookup          DOWN   ServiceNow is unavailable: connection refused"),
        "{out}"
    );
    assert!(out.contains("PAM_AUTHINFO_UNAVAIL"), "{out}");
    let (code, out, _) = in_mode("FailMode=safe");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TICKET_DECISION=failsafe"), "{out}");
}

/// A refused account is no outage: `pam-ticket test` says so, and the login would be
/// refused in safe mode too.
#[test]
fn test_reports_a_refused_account_as_denied_in_both_fail_modes() {
    let setup = Setup::new("test-refused");
    let config = setup.config(
        "wrong-password",
        &setup.server.base_url(),
        setup.pki.ca_pem_path(),
        "",
    );
    for mode in ["FailMode=secure", "FailMode=safe"] {
        let (code, out, _) = run_test_with(&config, "alice", &["--arg", mode], "INC0010001", "");
        assert_eq!(code, 1, "{mode}: {out}");
        assert!(
            out.contains(&format!(
                "lookup          FAIL   ServiceNow refused the account: the module's account {USER} was \
                 refused by {} (HTTP 401",
                setup.server.base_url()
            )),
            "{mode}: {out}"
        );
        assert!(
            out.contains("(not an outage: denied in both fail modes)"),
            "{mode}: {out}"
        );
        assert!(out.contains("PAM_AUTHINFO_UNAVAIL"), "{mode}: {out}");
        assert!(!out.contains("TICKET_DECISION"), "{mode}: {out}");
    }
}

#[test]
fn test_accepts_a_bypass_code_from_stdin_without_a_request() {
    let setup = Setup::new("test-bypass");
    let code_text = "correct-horse-battery-staple-42";
    let hash = BypassHash::create(code_text.as_bytes(), b"0123456789abcdef");
    let config = setup.good_config(&format!("FailsafeBypassCode=\"{hash}\"\n"));
    let (code, out, _) = run_test_with(&config, "alice", &[], "-", &format!("{code_text}\n"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("bypass code     MATCH  FailsafeBypassCode entry 1"),
        "{out}"
    );
    assert!(out.contains("TICKET_DECISION=bypass"), "{out}");
    assert!(!out.contains(code_text), "{out}");
    assert_eq!(setup.server.request_count(), 0);
}

#[test]
fn hash_code_hashes_stdin_with_a_fresh_salt() {
    let (code, out, err) = tool(&["hash-code"], "  open-sesame-door-2026-xyz \n");
    assert_eq!(code, 0, "{err}");
    let line = out.trim_end();
    assert_eq!(out.lines().count(), 1, "{out}");
    let parts: Vec<&str> = line.split(':').collect();
    assert_eq!(parts[0], "sha256");
    assert_eq!(parts[1].len(), 32, "a 16-byte salt");
    let parsed = BypassHash::parse(line, 1).expect("a valid FailsafeBypassCode entry");
    assert_eq!(
        bypass::find_match(&[parsed], b"open-sesame-door-2026-xyz"),
        Some(1)
    );
    let (_, again, _) = tool(&["hash-code"], "open-sesame-door-2026-xyz\n");
    assert_ne!(again, out, "every run draws a new salt");

    let (code, _, err) = tool(&["hash-code"], "short\n");
    assert_eq!(code, 0);
    assert!(err.contains("warning: this code has 5 characters"), "{err}");
    let (code, _, err) = tool(&["hash-code"], "\n");
    assert_eq!(code, 1);
    assert!(err.contains("no code"), "{err}");
    let (code, _, _) = tool(&["hash-code", "on-the-command-line"], "");
    assert_eq!(code, 2);
}

/// The code is read into a buffer allocated once for the longest code accepted (so that
/// it never moves and leaves a copy behind): a longer one is refused, never hashed.
#[test]
fn hash_code_refuses_a_code_longer_than_its_buffer() {
    let (code, out, err) = tool(&["hash-code"], &format!("{}\n", "x".repeat(1024)));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("sha256:"), "{out}");
    let (code, out, err) = tool(&["hash-code"], &format!("{}\n", "x".repeat(1025)));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("longer than 1024 bytes"), "{err}");
}

#[test]
fn hash_code_generates_a_code_and_its_hash() {
    let (code, out, err) = tool(&["hash-code", "--generate"], "");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let generated = lines[0]
        .strip_prefix("bypass code: ")
        .expect("the code comes first");
    assert!(generated.len() >= 20, "{generated}");
    let parsed = BypassHash::parse(lines[1], 1).expect("hash line");
    assert_eq!(bypass::find_match(&[parsed], generated.as_bytes()), Some(1));
    let (_, other, _) = tool(&["hash-code", "--generate"], "");
    assert_ne!(other.lines().next(), Some(lines[0]));
}

// ---------------------------------------------------------------------------------------
// BMC Remedy

const REMEDY_USER: &str = "svc_pam_ticket";
const REMEDY_PASSWORD: &str = "S3rvice-Passw0rd!";

/// What `check` sends Remedy: a log-on, a query on the form of each ticket type accepted
/// (TicketTypes not set: incident and change), a log-off.
const CHECK_EXCHANGE: [Endpoint; 4] = [
    Endpoint::Login,
    Endpoint::Query,
    Endpoint::Query,
    Endpoint::Logout,
];

/// A Remedy simulator behind HTTPS, an account file, a token cache directory (not created
/// in advance: the module creates it) and an audit file, all in a private directory.
type RemedySetup = Simulated<RemedySim>;

impl RemedySetup {
    fn new(label: &str) -> RemedySetup {
        Simulated::start(
            &format!("admin-remedy-{label}"),
            RemedySim::new(REMEDY_USER, REMEDY_PASSWORD),
        )
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.join("token-cache")
    }

    /// The account file (with `password`) and a BMCRemedy configuration; returns its path.
    fn config(&self, password: &str, extra: &str) -> PathBuf {
        let account = self.dir.join("remedy-account.conf");
        write_root_only(
            &account,
            &format!("Username=\"{REMEDY_USER}\"\nPassword=\"{password}\"\n"),
        );
        let path = self.dir.join("pam_ticket.conf");
        fs::write(
            &path,
            format!(
                "TicketingSystem=\"BMCRemedy\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nCacheDirectory=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\n{extra}",
                self.server.base_url(),
                account.display(),
                self.pki.ca_pem_path().display(),
                self.cache_dir().display(),
                self.audit_path().display(),
            ),
        )
        .expect("write the configuration");
        path
    }

    /// Every file in the cache directory with its contents and modification time.
    fn cache_snapshot(&self) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
        let Ok(entries) = fs::read_dir(self.cache_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.expect("cache entry").path())
            .map(|path| {
                let contents = fs::read(&path).expect("read a cache file");
                let modified = fs::metadata(&path)
                    .and_then(|metadata| metadata.modified())
                    .expect("mtime");
                (path, contents, modified)
            })
            .collect();
        files.sort();
        files
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        self.sim
            .received()
            .into_iter()
            .map(|received| received.endpoint)
            .collect()
    }
}

fn run_test(config: &Path, user: &str, ticket: &str) -> (i32, String, String) {
    run_test_with(config, user, &[], ticket, "")
}

#[test]
fn check_remedy_logs_on_queries_both_forms_logs_off_and_leaves_the_cache_alone() {
    let setup = RemedySetup::new("check-ok");
    let config = setup.config(REMEDY_PASSWORD, "");
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("TicketingSystem                BMCRemedy"),
        "{out}"
    );
    assert!(
        out.contains("RemedyIncidentForm             HPD:Help Desk"),
        "{out}"
    );
    assert!(!out.contains(REMEDY_PASSWORD) && !err.contains(REMEDY_PASSWORD));
    assert!(
        out.contains(&format!(
            "connection: asking BMCRemedy at {} for PAMTICKETCHECK0",
            setup.server.base_url()
        )),
        "{out}"
    );
    for line in [
        "  OK    TLS: the server's certificate verified against the trusted CAs",
        "  OK    logged on as svc_pam_ticket (POST /api/jwt/login)",
        "  OK    form \"HPD:Help Desk\" answered a query on \"Incident Number\" (no entry PAMTICKETCHECK0, as expected)",
        "  OK    form \"CHG:Infrastructure Change\" answered a query on \"Infrastructure Change ID\" (no entry PAMTICKETCHECK0, as expected)",
        "  OK    logged off (POST /api/jwt/logout)",
    ] {
        assert!(
            out.contains(&format!("{line}\n")),
            "missing {line:?} in\n{out}"
        );
    }
    // Only the forms of the types accepted (TicketTypes, not set: incidents and changes).
    assert!(!out.contains("WOI:WorkOrder\" answered"), "{out}");
    assert!(out.ends_with("result: OK\n"), "{out}");
    assert_eq!(setup.endpoints(), CHECK_EXCHANGE);
    let queries: Vec<_> = setup
        .sim
        .received()
        .into_iter()
        .filter(|received| received.endpoint == Endpoint::Query)
        .collect();
    assert_eq!(
        queries[0].q.as_deref(),
        Some("'Incident Number' = \"PAMTICKETCHECK0\"")
    );
    assert_eq!(queries[0].status, 200);
    assert_eq!(
        queries[1].form.as_deref(),
        Some("CHG:Infrastructure Change")
    );
    assert!(
        setup.sim.live_tokens().is_empty(),
        "check logs its token off"
    );
    assert!(
        !setup.cache_dir().exists(),
        "check does not even create the cache directory"
    );
    assert!(setup.audit_lines().is_empty());

    // With a token cached by a login, check still logs on by itself and leaves the cache
    // file exactly as it was (same bytes, same mtime) and its token alive.
    let (code, out, _) = run_test(&config, "alice", "INC000000000001");
    assert_eq!(code, 0, "{out}");
    let before = setup.cache_snapshot();
    assert_eq!(before.len(), 2, "the token file and its lock: {before:?}");
    let live = setup.sim.live_tokens();
    assert_eq!(live.len(), 1);
    setup.sim.clear_received();
    let (code, out, _) = check(&config);
    assert_eq!(code, 0, "{out}");
    assert_eq!(setup.sim.login_count(), 1, "a log-on of its own");
    assert_eq!(setup.sim.logout_count(), 1);
    assert_eq!(setup.cache_snapshot(), before, "the cache is untouched");
    assert_eq!(
        setup.sim.live_tokens(),
        live,
        "the cached token is still alive"
    );
}

#[test]
fn check_remedy_names_a_rejected_account_even_with_a_live_cached_token() {
    let setup = RemedySetup::new("check-401");
    let config = setup.config(REMEDY_PASSWORD, "");
    // A login caches a token; then the account's password is changed on the server but
    // not in the account file. Logins go on working on the cached token for a while;
    // check must say at once that the next log-on will fail.
    let (code, out, _) = run_test(&config, "alice", "INC000000000001");
    assert_eq!(code, 0, "{out}");
    let before = setup.cache_snapshot();
    setup
        .sim
        .set_credentials(REMEDY_USER, "rotated-on-the-server");
    setup.sim.clear_received();
    let (code, out, _) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("  OK    TLS"), "{out}");
    let expected = format!(
        "  FAIL  the module's account {REMEDY_USER} was refused by {} (HTTP 401: ARERR 623 \
         Authentication failed): check ConnectionAccountFile ({}) and the account's password, \
         lock state and roles. This is not an outage: every login is denied, in both fail \
         modes, until the account is fixed\n",
        setup.server.base_url(),
        setup.dir.join("remedy-account.conf").display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(out.ends_with("result: FAILED\n"), "{out}");
    assert_eq!(
        setup.endpoints(),
        vec![Endpoint::Login],
        "no query without a token"
    );
    assert_eq!(setup.cache_snapshot(), before, "the cache is untouched");
}

#[test]
fn test_remedy_allows_a_valid_incident_through_the_token_cache() {
    let setup = RemedySetup::new("test-valid");
    let config = setup.config(REMEDY_PASSWORD, STATE_AND_REQUESTER_CHECKS);
    let (code, out, err) = run_test(&config, "alice", "INC000000000001");
    assert_eq!(code, 0, "{out}{err}");
    assert_has_lines(
        &out,
        &[
            "login                  user alice",
            "ID rules        PASS   incident INC000000000001",
            "lookup          FOUND  BMCRemedy: incident INC000000000001, state In Progress, requesters alice/carol",
            "check state     PASS   state In Progress",
            "decision        ALLOW  PAM_SUCCESS; exports TICKET_ID=INC000000000001",
        ],
    );
    assert!(out.contains("check requester PASS"), "{out}");
    assert!(out.contains("TICKETING_SYSTEM=BMCRemedy"), "{out}");
    // As the module does: one log-on, the token kept in the cache (not logged off).
    assert_eq!(setup.endpoints(), vec![Endpoint::Login, Endpoint::Query]);
    assert_eq!(setup.sim.live_tokens().len(), 1);
    assert!(setup.cache_snapshot().iter().any(|(path, contents, _)| {
        path.extension().is_some_and(|ext| ext == "token")
            && String::from_utf8_lossy(contents).contains(&setup.sim.live_tokens()[0])
    }));
    assert!(setup.audit_lines().is_empty());

    // A second run uses the cached token: no new log-on.
    let (code, out, _) = run_test(&config, "alice", "INC000000000001");
    assert_eq!(code, 0, "{out}");
    assert_eq!(setup.sim.login_count(), 1);
    assert_eq!(setup.sim.query_count(), 2);
}

#[test]
fn test_remedy_refuses_a_closed_incident() {
    let setup = RemedySetup::new("test-closed");
    let config = setup.config(
        REMEDY_PASSWORD,
        "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New,In Progress\"\n",
    );
    let (code, out, _) = run_test(&config, "alice", "INC000000000002");
    assert_eq!(code, 1, "{out}");
    assert_has_lines(
        &out,
        &[
            "lookup          FOUND  BMCRemedy: incident INC000000000002, state Closed",
            "check state     FAIL   Ticket INC000000000002 is Closed; allowed states: New, In Progress",
            "user sees       ERROR  Ticket INC000000000002 is Closed; allowed states: New, In Progress",
            "decision        DENY   answer refused",
        ],
    );
    assert!(out.contains("PAM_MAXTRIES"), "{out}");
    assert!(out.contains("\"decision\":\"deny\""), "{out}");
    assert_eq!(setup.endpoints(), vec![Endpoint::Login, Endpoint::Query]);
}

// ---------------------------------------------------------------------------------------
// Portal mode (FetchCredentialsThroughPVWA=Yes)

const GATEWAY_USER: &str = "PSMPGateway01";
const GATEWAY_PASSWORD: &str = "Gw-Pass-4412";

/// The portal simulator, which validates tickets by asking the ServiceNow simulator.
struct PortalSetup(PortalChain);

impl std::ops::Deref for PortalSetup {
    type Target = PortalChain;
    fn deref(&self) -> &PortalChain {
        &self.0
    }
}

impl PortalSetup {
    fn new(label: &str) -> PortalSetup {
        PortalSetup(PortalChain::start(
            &format!("admin-portal-{label}"),
            GATEWAY_USER,
            GATEWAY_PASSWORD,
        ))
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        audit_records(&self.audit_path())
    }

    fn config(&self, password: &str, extra: &str) -> PathBuf {
        let account = self.dir.join("portal-account");
        write_root_only(
            &account,
            &format!("Username=\"{GATEWAY_USER}\"\nPassword=\"{password}\"\n"),
        );
        let path = self.dir.join("pam_ticket.conf");
        fs::write(
            &path,
            format!(
                "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}\"\nPortalAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\n{extra}",
                self.portal_url(),
                account.display(),
                self.pki.ca_pem_path().display(),
                self.audit_path().display(),
            ),
        )
        .expect("write the configuration");
        path
    }

    /// Every session opened was logged off again.
    fn assert_logged_off(&self) {
        assert_eq!(self.portal.sessions_opened(), self.portal.sessions_closed());
        assert_eq!(self.portal.open_sessions(), 0);
    }
}

#[test]
fn check_portal_logs_on_lists_accounts_and_logs_off_without_retrieving() {
    let setup = PortalSetup::new("check-ok");
    let config = setup.config(GATEWAY_PASSWORD, "");
    let (code, out, err) = check(&config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("FetchCredentialsThroughPVWA    Yes"), "{out}");
    assert!(
        out.contains(&format!(
            "PortalAccountFile              {} (Username={GATEWAY_USER}, Password=********)",
            setup.dir.join("portal-account").display()
        )),
        "{out}"
    );
    assert!(!out.contains(GATEWAY_PASSWORD) && !err.contains(GATEWAY_PASSWORD));
    assert!(
        out.contains(&format!(
            "connection: logging on to the portal at {}",
            setup.portal_url()
        )),
        "{out}"
    );
    assert_has_lines(
        &out,
        &[
            "  OK    TLS: the server's certificate verified against the trusted CAs",
            "  OK    logged on to the portal as PSMPGateway01 (CyberArk authentication)",
            "  OK    the account list answered: 7 vault account(s) visible to this gateway user (no password retrieved)",
            "  OK    logged off (POST /API/Auth/Logoff/)",
            "  not checked: PortalTicketingSystemName \"ServiceNow\"",
        ],
    );
    assert!(out.ends_with("result: OK\n"), "{out}");
    assert_eq!(setup.portal.counts(), (1, 1, 0, 1), "logon, list, logoff");
    setup.assert_logged_off();
    let listing: Vec<_> = setup
        .server
        .requests()
        .into_iter()
        .filter(|request| request.method == "GET")
        .map(|request| (request.path, request.query))
        .collect();
    assert_eq!(
        listing,
        vec![(
            "/PasswordVault/API/Accounts".to_string(),
            vec![("limit".to_string(), "1".to_string())]
        )],
        "one account listing, with no search"
    );
    assert_eq!(
        setup.servicenow_server.request_count(),
        0,
        "no ticket check"
    );
    assert!(setup.audit_lines().is_empty());
}

#[test]
fn check_portal_names_a_rejected_gateway_user() {
    let setup = PortalSetup::new("check-403");
    let config = setup.config("wrong-password", "");
    let (code, out, _) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("  OK    TLS"), "{out}");
    let expected = format!(
        "  FAIL  the module's account {GATEWAY_USER} was refused by {} (HTTP 403: PASWS013E: \
         Authentication failure for User [PSMPGateway01].): check PortalAccountFile ({}) and \
         the account's password, lock state and roles, and PortalAuthMethod. This is not an \
         outage: every login is denied, in both fail modes, until the account is fixed\n",
        setup.portal_url(),
        setup.dir.join("portal-account").display()
    );
    assert!(out.contains(&expected), "{out}");
    assert!(out.ends_with("result: FAILED\n"), "{out}");
    assert_eq!(
        setup.portal.counts(),
        (1, 0, 0, 0),
        "nothing after a refused logon"
    );
    assert_eq!(setup.portal.sessions_opened(), 0);
}

#[test]
fn test_portal_allows_a_valid_ticket_for_a_connection_string_user() {
    let setup = PortalSetup::new("test-valid");
    let config = setup.config(GATEWAY_PASSWORD, "");
    let (code, out, err) = run_test_with(
        &config,
        "alice@root@db01.example.com",
        &["--rhost", "192.0.2.7"],
        "INC0010001",
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_has_lines(
        &out,
        &[
            "login                  user alice@root@db01.example.com (person alice), target root@db01.example.com, rhost 192.0.2.7",
            "ID rules        PASS   incident INC0010001",
            "lookup          PASS   portal accepted the ticket: accepted by the portal (account id 12_1, root@db01.example.com, ticketing system ServiceNow)",
            "decision        ALLOW  PAM_SUCCESS; exports TICKET_ID=INC0010001",
        ],
    );
    assert!(!out.contains(ROOT_PASSWORD) && !err.contains(ROOT_PASSWORD));
    assert_eq!(setup.portal.counts(), (1, 1, 1, 1));
    setup.assert_logged_off();
    assert_eq!(
        setup.servicenow.query_count(),
        1,
        "the portal asked ServiceNow"
    );
    let retrieve = &setup.portal.retrieve_calls()[0];
    assert_eq!(retrieve.account_id, "12_1");
    assert_eq!(retrieve.body["TicketId"], "INC0010001");
    assert_eq!(retrieve.status, 200);
}

#[test]
fn test_portal_shows_the_portals_refusal() {
    let setup = PortalSetup::new("test-closed");
    let config = setup.config(GATEWAY_PASSWORD, "");
    let (code, out, _) = run_test(&config, "alice@root@db01.example.com", "INC0010002");
    assert_eq!(code, 1, "{out}");
    assert_has_lines(
        &out,
        &[
            "lookup          FAIL   portal: refused (ITATS542E): Ticket INC0010002 is not valid: incident state Closed is not allowed",
            "user sees       ERROR  Ticket INC0010002 was refused: Ticket INC0010002 is not valid: incident state Closed is not allowed",
            "decision        DENY   answer refused",
        ],
    );
    assert_eq!(setup.portal.counts(), (1, 1, 1, 1));
    setup.assert_logged_off();
}

#[test]
fn test_portal_asks_for_a_connection_string() {
    let setup = PortalSetup::new("test-no-target");
    let config = setup.config(GATEWAY_PASSWORD, "");
    let (code, out, _) = run_test(&config, "alice", "INC0010001");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "target          FAIL   portal mode needs a PSM for SSH connection string: \
             --user <you>@<target user>[#domain]@<target address>[#port], \
             e.g. --user alice@root@db01.example.com"
        ),
        "{out}"
    );
    assert!(
        !out.contains("prompt "),
        "the module would not prompt: {out}"
    );
    assert!(
        out.contains("user sees       ERROR  This gateway needs a target"),
        "{out}"
    );
    assert!(
        out.contains(
            "decision        DENY   no ticket can make this login pass; the module returns \
             PAM_MAXTRIES, so sshd does not ask again"
        ),
        "{out}"
    );
    assert_eq!(setup.portal.counts(), (0, 0, 0, 0));
}

#[test]
fn check_remedy_names_a_missing_form_and_still_logs_off() {
    let setup = RemedySetup::new("check-form");
    setup.sim.remove_form("CHG:Infrastructure Change");
    let config = setup.config(REMEDY_PASSWORD, "");
    let (code, out, _) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "  FAIL  setup: Remedy form \"CHG:Infrastructure Change\" does not exist (ARERR 303"
        ),
        "{out}"
    );
    assert!(out.ends_with("result: FAILED\n"), "{out}");
    // The probe stops at the missing form (the incident's, then the change's), and logs off.
    assert_eq!(
        setup.endpoints(),
        [
            Endpoint::Login,
            Endpoint::Query,
            Endpoint::Query,
            Endpoint::Logout
        ]
    );
    assert!(setup.sim.live_tokens().is_empty());
}
