//! Audit records that log tools can use, and the admin tool's own words (issue 11, item
//! 9): counts are JSON numbers, configuration-error records carry `rhost`, `pam-ticket test
//! --audit` says where its record went (syslog not written when `/dev/log` is missing),
//! `hash-code --help` states its own exit statuses, and `test`'s report keeps its columns.
//! Debug lines are tested in `syslog_and_exports.rs`, the binary that reads syslog.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use pam_ticket::bypass::BypassHash;
use support::https::TestServer;
use support::pam::{self, Login, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, PamService};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");
const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "Aud1t-Rec-Pass";
const BYPASS_CODE: &str = "Q7RM-K2ZD-PX4N-W8TH-C3VJ-B6YL";

struct Rig {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    sim: Arc<ServiceNowSim>,
}

impl Rig {
    fn start(label: &str) -> Rig {
        let dir = TestDir::new(&format!("audit-{label}"));
        let pki = TestPki::generate(&dir.join("pki"));
        let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        let server = TestServer::start(pki.server_config(ServerCert::Good), sim.clone());
        let account = dir.join("account.conf");
        fs::write(
            &account,
            format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        )
        .expect("write");
        fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
        Rig {
            dir,
            pki,
            server,
            sim,
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// The configuration (root-only: it holds a bypass code hash); returns its path.
    fn config(&self, extra: &str) -> PathBuf {
        let path = self.dir.join("pam_ticket.conf");
        let hash = BypassHash::create(BYPASS_CODE.replace('-', "").as_bytes(), b"audit-salt");
        fs::write(
            &path,
            format!(
                "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\n\
                 CAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\nMaxAttempts=\"1\"\n\
                 ValidateIncidentTicketState=\"Yes\"\n\
                 AllowedIncidentTicketStates=\"New,In Progress\"\nValidateRequestingUser=\"Yes\"\n\
                 FailsafeBypassCode=\"{hash}\"\n{extra}",
                self.server.base_url(),
                self.dir.join("account.conf").display(),
                self.pki.ca_pem_path().display(),
                self.audit_path().display(),
            ),
        )
        .expect("write the configuration");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    fn service(&self, arguments: &[String]) -> PamService {
        PamService::new(
            &self.dir.join("pam.d"),
            "ticket-audit",
            &pam::module_path(),
            arguments,
        )
    }

    fn records(&self) -> Vec<Value> {
        fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
    }
}

/// `answer_length` and `bypass_entry` are numbers, as `elapsed_ms` is, so that a log tool
/// can compare and add them up; before, they were strings.
#[test]
fn counts_are_json_numbers() {
    let rig = Rig::start("numbers");
    let service = rig.service(&[format!("config={}", rig.config("").display())]);
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost("192.0.2.10")
            .answer("INC 0010001"),
    );
    assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost("192.0.2.10")
            .answer(&BYPASS_CODE.replace('-', "")),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    let records = rig.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["decision"], "deny");
    assert_eq!(records[0]["answer_length"], json!(11), "{}", records[0]);
    assert_eq!(records[1]["decision"], "bypass");
    assert_eq!(records[1]["bypass_entry"], json!(1), "{}", records[1]);
    assert!(records.iter().all(|record| record["elapsed_ms"].is_u64()));
    assert_eq!(rig.sim.query_count(), 0);
}

/// A configuration error's record names where the login came from, as every other record
/// does.
#[test]
fn configuration_error_records_carry_rhost() {
    let rig = Rig::start("rhost");
    let config = rig.config("FailMode=\"open\"\n");
    let service = rig.service(&[
        format!("config={}", config.display()),
        format!("AuditLogFile={}", rig.audit_path().display()),
    ]);
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost("203.0.113.9")
            .answer("INC0010001"),
    );
    assert_eq!(outcome.code, PAM_SERVICE_ERR, "{}", outcome.transcript());
    let records = rig.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "error");
    assert_eq!(records[0]["user"], "alice");
    assert_eq!(records[0]["rhost"], "203.0.113.9", "{}", records[0]);
    assert_eq!(records[0]["service"], "ticket-audit");
    assert!(
        records[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains(":12: FailMode must be secure or safe")),
        "{}",
        records[0]
    );
    assert_eq!(rig.server.request_count(), 0);
}

/// Runs `pam-ticket test --audit` in a private mount namespace whose /dev has no `log`, or
/// has `devlog` (a socket this test reads) bound there; returns its output and the lines
/// the socket got.
fn test_with_audit(rig: &Rig, devlog: Option<&str>) -> (String, Vec<String>) {
    let real_dev = rig
        .dir
        .join(&format!("real-dev-{}", devlog.unwrap_or("none")));
    fs::create_dir(&real_dev).expect("mount point");
    let socket = devlog.map(|name| {
        let path = rig.dir.join(name);
        let socket = UnixDatagram::bind(&path).expect("bind the child's /dev/log");
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("time-out");
        (path, socket)
    });
    let script = r#"set -e
mount --bind /dev "$REAL_DEV"
mount -t tmpfs tmpfs /dev
for node in null zero random urandom; do
    touch "/dev/$node"
    mount --bind "$REAL_DEV/$node" "/dev/$node"
done
if [ -n "$SOCK" ]; then
    touch /dev/log
    mount --bind "$SOCK" /dev/log
fi
exec "$TOOL" test --user alice --rhost 192.0.2.10 --config "$CONFIG" --audit INC0010001
"#;
    let config = rig.config("");
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("REAL_DEV", &real_dev)
        .env(
            "SOCK",
            socket
                .as_ref()
                .map(|(path, _)| path.display().to_string())
                .unwrap_or_default(),
        )
        .env("TOOL", TOOL)
        .env("CONFIG", &config)
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = Vec::new();
    if let Some((_, socket)) = socket {
        let mut buffer = vec![0u8; 65536];
        while let Ok(length) = socket.recv(&mut buffer) {
            lines.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
    }
    (stdout, lines)
}

/// With no /dev/log, `test --audit` says that syslog was not written and why, and that the
/// audit file was; it never claims "written" for a record syslog did not get. With a
/// syslog socket it says written, and the line is there.
#[test]
fn test_audit_says_when_syslog_was_not_written() {
    let rig = Rig::start("devlog");
    let (out, _) = test_with_audit(&rig, None);
    assert!(
        out.contains(
            "audit syslog    FAIL   not written: no syslog socket to write to (/dev/log does not \
             exist); is a syslog daemon or journald listening on /dev/log?\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "audit file      OK     appended to {}\n",
            rig.audit_path().display()
        )),
        "{out}"
    );
    assert!(!out.contains("audit (written)"), "{out}");
    assert!(!out.contains("syslog    OK"), "{out}");
    assert_eq!(rig.records().len(), 1);
    assert_eq!(rig.records()[0]["rhost"], "192.0.2.10");

    let (out, lines) = test_with_audit(&rig, Some("devlog.sock"));
    assert!(
        out.contains("audit syslog    OK     written (facility authpriv, ident pam_ticket)\n"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.contains("decision=allow user=alice rhost=192.0.2.10")),
        "{lines:#?}"
    );
    assert_eq!(rig.records().len(), 2);
    assert_eq!(rig.sim.query_count(), 2);
}

/// Every line of `test`'s report has its label, verdict and text in three columns: the
/// verdict at column 16 and the text at column 23, whatever the label (`check requester`
/// is the longest) or the verdict (`MATCH`, `FOUND`, `ALLOW`).
#[test]
fn test_report_columns_line_up() {
    let rig = Rig::start("columns");
    let config = rig.config("").display().to_string();
    let run = |answer: &str| {
        let output = Command::new(TOOL)
            .args(["test", "--user", "alice", "--config", &config, answer])
            .output()
            .expect("run pam-ticket test");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let verdicts = [
        "OK", "PASS", "FAIL", "FOUND", "MATCH", "NO", "SKIP", "ALLOW", "DENY", "ERROR", "INFO",
    ];
    let mut labels = Vec::new();
    let bypass = BYPASS_CODE.replace('-', "");
    for answer in ["INC0010001", "INC0010003", bypass.as_str()] {
        let out = run(answer);
        for line in out.lines() {
            let (label, rest) = line.split_at(16.min(line.len()));
            assert!(
                label.ends_with(' ') && !label.starts_with(' '),
                "label column: {line:?}\n{out}"
            );
            let (verdict, text) = rest.split_at(7.min(rest.len()));
            let verdict = verdict.trim_end();
            assert!(
                verdict.is_empty() || verdicts.contains(&verdict),
                "verdict column: {line:?}\n{out}"
            );
            assert!(
                !text.starts_with(' ') && !text.is_empty(),
                "text column: {line:?}\n{out}"
            );
            labels.push(label.trim_end().to_string());
        }
    }
    for label in [
        "configuration",
        "login",
        "prompt",
        "bypass code",
        "ID rules",
        "lookup",
        "check state",
        "check requester",
        "user sees",
        "decision",
        "audit record",
        "audit",
    ] {
        assert!(
            labels.iter().any(|seen| seen == label),
            "{label}: {labels:?}"
        );
    }
}

/// `hash-code --help` states hash-code's own exit statuses: it reads no configuration and
/// tests no login, so the shared text about both was wrong there.
#[test]
fn hash_code_help_states_its_own_exit_statuses() {
    let output = Command::new(TOOL)
        .args(["hash-code", "--help"])
        .output()
        .expect("run pam-ticket hash-code --help");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    let statuses = help
        .split_once("exit status:\n")
        .map(|(_, statuses)| statuses)
        .unwrap_or_default();
    assert_eq!(
        statuses,
        "  0  the hash line was printed\n  \
         1  no hash: no code on standard input, a code longer than 1024 bytes or of nothing\n     \
         but dashes and spaces, or /dev/urandom could not be read\n  \
         2  usage error\n",
        "{help}"
    );
    assert!(!help.contains("configuration error"), "{help}");
    assert!(!help.contains("for `test`"), "{help}");
}
