//! The `pam-ticket` admin tool, run as a process against the ServiceNow simulator.

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use pam_ticket::bypass::{self, BypassHash};
use support::https::{TestServer, refusing_port};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const USER: &str = "svc_pam";
const PASSWORD: &str = "Adm1n-t00l-s3cret";

struct Setup {
    server: TestServer,
    sim: Arc<ServiceNowSim>,
    pki: TestPki,
    dir: TestDir,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let dir = TestDir::new(&format!("admin-{label}"));
        let pki = TestPki::generate(&dir.join("pki"));
        let sim = Arc::new(ServiceNowSim::new(USER, PASSWORD));
        let server = TestServer::start(pki.server_config(ServerCert::Good), sim.clone());
        Setup {
            server,
            sim,
            pki,
            dir,
        }
    }

    /// Writes the account file and a configuration; returns the configuration's path.
    fn config(&self, password: &str, url: &str, ca: PathBuf, extra: &str) -> PathBuf {
        let account = self.dir.join("account.conf");
        fs::write(
            &account,
            format!("Username=\"{USER}\"\nPassword=\"{password}\"\n"),
        )
        .expect("write the account file");
        fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
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

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON audit line"))
            .collect()
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
    let (code, out, err) = tool(&["check", "--config", &path_arg(&config)], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("  OK    parsed and validated"), "{out}");
    assert!(
        out.contains("ValidateIncidentTicketState    Yes: New, In Progress"),
        "{out}"
    );
    assert!(out.contains("Password=********"), "{out}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}");
    assert!(out.contains("OK    TLS"), "{out}");
    assert!(out.contains("OK    account: logged on"), "{out}");
    assert!(out.ends_with("result: OK\n"), "{out}");
    assert_eq!(setup.server.request_count(), 1);
    let queries = setup.sim.received();
    assert_eq!(queries[0].table, "incident");
    assert_eq!(queries[0].status, 200);
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
    let (code, out, _) = tool(&["check", "--config", &path_arg(&config)], "");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("OK    TLS"), "{out}");
    assert!(
        out.contains(
            "FAIL  the ticketing system is unavailable: the module's account was rejected (HTTP 401"
        ),
        "{out}"
    );
    assert!(out.contains("check Username and Password"), "{out}");
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
    let (code, out, _) = tool(&["check", "--config", &path_arg(&config)], "");
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
    let (code, out, _) = tool(&["check", "--config", &path_arg(&config)], "");
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
    let (code, out, _) = tool(&["check", "--config", &path_arg(&config)], "");
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
    let config = setup.good_config(
        "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New,In Progress\"\n\
         ValidateRequestingUser=Yes\n",
    );
    let (code, out, err) = tool(
        &[
            "test",
            "--user",
            "alice",
            "--rhost",
            "10.9.8.7",
            "--config",
            &path_arg(&config),
            "INC0010001",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("ID rules       PASS  incident INC0010001"),
        "{out}"
    );
    assert!(
        out.contains("check state    PASS  state In Progress"),
        "{out}"
    );
    assert!(out.contains("check requester PASS"), "{out}");
    assert!(
        out.contains("decision       ALLOW (PAM_SUCCESS); exports TICKET_ID=INC0010001"),
        "{out}"
    );
    assert!(out.contains("audit (not written"), "{out}");
    assert!(out.contains("\"rhost\":\"10.9.8.7\""), "{out}");
    assert_eq!(setup.sim.query_count(), 1);
    assert!(setup.audit_lines().is_empty());
}

#[test]
fn test_shows_every_failing_check_and_the_message_the_user_sees() {
    let setup = Setup::new("test-closed");
    let config = setup.good_config(
        "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New,In Progress\"\n\
         ValidateRequestingUser=Yes\n",
    );
    let (code, out, _) = tool(
        &[
            "test",
            "--user",
            "bob",
            "--config",
            &path_arg(&config),
            "--audit",
            "INC0010002",
        ],
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "check state    FAIL  Ticket INC0010002 is Closed; allowed states: New, In Progress"
        ),
        "{out}"
    );
    assert!(out.contains("check requester FAIL"), "{out}");
    assert!(
        out.contains(
            "user sees      error: Ticket INC0010002 is Closed; allowed states: New, In Progress"
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
    let (code, out, _) = tool(
        &[
            "test",
            "--user",
            "alice",
            "--config",
            &path_arg(&config),
            "INC0010001^NQnumberISNOTEMPTY",
        ],
        "",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ID rules       FAIL  A ticket ID may only contain letters"),
        "{out}"
    );
    assert_eq!(setup.server.request_count(), 0);
}

#[test]
fn test_reports_unavailable_by_fail_mode() {
    let setup = Setup::new("test-down");
    let url = format!("https://localhost:{}", refusing_port());
    let config = setup.config(PASSWORD, &url, setup.pki.ca_pem_path(), "");
    let args = |extra: &'static str| {
        vec![
            "test".to_string(),
            "--user".to_string(),
            "alice".to_string(),
            "--config".to_string(),
            path_arg(&config),
            "--arg".to_string(),
            extra.to_string(),
            "INC0010001".to_string(),
        ]
    };
    let secure = args("FailMode=secure");
    let secure: Vec<&str> = secure.iter().map(String::as_str).collect();
    let (code, out, _) = tool(&secure, "");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("lookup         UNAVAILABLE ServiceNow: connection refused"),
        "{out}"
    );
    assert!(out.contains("PAM_AUTHINFO_UNAVAIL"), "{out}");
    let safe = args("FailMode=safe");
    let safe: Vec<&str> = safe.iter().map(String::as_str).collect();
    let (code, out, _) = tool(&safe, "");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TICKET_DECISION=failsafe"), "{out}");
}

#[test]
fn test_accepts_a_bypass_code_from_stdin_without_a_request() {
    let setup = Setup::new("test-bypass");
    let code_text = "correct-horse-battery-staple-42";
    let hash = BypassHash::create(code_text.as_bytes(), b"0123456789abcdef");
    let config = setup.good_config(&format!("FailsafeBypassCode=\"{hash}\"\n"));
    let (code, out, _) = tool(
        &[
            "test",
            "--user",
            "alice",
            "--config",
            &path_arg(&config),
            "-",
        ],
        &format!("{code_text}\n"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("bypass code    MATCH FailsafeBypassCode entry 1"),
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
