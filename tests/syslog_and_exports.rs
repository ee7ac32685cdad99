//! What the module leaves outside the PAM conversation: its syslog lines (facility
//! authpriv, ident pam_ticket, key=value pairs), the panic log line, and the symbols the
//! shared object exports. Kept in its own test binary because the syslog test binds
//! `/dev/log` for a moment, and no other test should run meanwhile.

use pam_ticket_testkit as support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use support::devlog::{DevLogRun, run_with_private_dev_log};
use support::http::{Handler, Request, Response};
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_ABORT, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS,
    PamService,
};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

/// syslog's facility authpriv is 10; a record's priority is facility * 8 + severity.
const AUTHPRIV: u32 = 10;

/// Held by a test while it binds `/dev/log`: one at a time.
static DEV_LOG: Mutex<()> = Mutex::new(());

/// `/dev/log` bound by the test, drained by a thread of its own from the moment it is
/// bound: the other tests of this binary log through it too while it exists, and a
/// datagram socket's queue is short (10 by default), so a socket read only while waiting
/// for a line would fill up and the module would drop a line after its 500 ms send limit.
/// The socket file is removed even when the test fails.
struct BoundSyslog {
    lines: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    path: PathBuf,
}

impl Drop for BoundSyslog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = fs::remove_file(&self.path);
    }
}

impl BoundSyslog {
    fn bind(path: &Path) -> BoundSyslog {
        let socket = UnixDatagram::bind(path).expect("bind /dev/log");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (collected, stopped) = (Arc::clone(&lines), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(length) = socket.recv(&mut buffer) {
                    let line = String::from_utf8_lossy(&buffer[..length]).into_owned();
                    collected
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .push(line);
                }
            }
        });
        BoundSyslog {
            lines,
            stop,
            path: path.to_path_buf(),
        }
    }

    /// The first line received that contains every needle, waiting up to 5 s for it
    /// (real time: the module runs in another thread through libpam).
    #[allow(clippy::disallowed_methods)]
    fn wait_for(&self, needles: &[&str]) -> Option<String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .iter()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
                .cloned();
            if found.is_some() {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn priority(line: &str) -> Option<u32> {
    line.strip_prefix('<')?.split_once('>')?.0.parse().ok()
}

struct World {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
}

fn world() -> World {
    world_with(Arc::new(ServiceNowSim::new("svc", "pw")))
}

fn world_with(handler: Arc<dyn Handler>) -> World {
    let dir = TestDir::new("syslog");
    let pki = TestPki::generate(&dir.join("pki"));
    let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
    let account = dir.join("account.conf");
    fs::write(&account, "Username=\"svc\"\nPassword=\"pw\"\n").expect("account");
    fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(
        dir.join("pam_ticket.conf"),
        format!(
            "TicketingSystem=ServiceNow\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nMaxAttempts=1\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display()
        ),
    )
    .expect("config");
    World { dir, pki, server }
}

#[test]
fn decisions_and_panics_reach_syslog_as_authpriv_key_values() {
    let _one_at_a_time = DEV_LOG.lock().unwrap_or_else(|poison| poison.into_inner());
    let world = world();
    let config = world.dir.join("pam_ticket.conf");
    let service = PamService::new(
        &world.dir.join("pam.d"),
        "ticket-syslog",
        &pam::module_path(),
        &[format!("config={}", config.display())],
    );
    let log_path = Path::new("/dev/log");
    if log_path.exists() {
        // A running syslog owns the socket; the decision must not depend on it either way.
        let outcome = pam::authenticate(&service, &Login::new("syslogprobe").answer("INC0010001"));
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        eprintln!("/dev/log belongs to a running syslog daemon: its lines were not captured");
        return;
    }
    let syslog = BoundSyslog::bind(log_path);

    let outcome = pam::authenticate(
        &service,
        &Login::new("syslogprobe")
            .rhost("198.51.100.7")
            .answer("INC0010002"),
    );
    assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
    assert_eq!(world.server.request_count(), 1);
    let line = syslog
        .wait_for(&["decision=deny user=syslogprobe"])
        .expect("a syslog line for the refused login");
    assert!(line.contains("pam_ticket["), "{line}");
    assert!(
        line.contains("rhost=198.51.100.7 service=ticket-syslog ticket=INC0010002 type=incident system=ServiceNow reason=\"Ticket INC0010002 is Closed; allowed states: In Progress\""),
        "{line}"
    );
    // notice (5) for a refusal.
    assert_eq!(priority(&line), Some(AUTHPRIV * 8 + 5), "{line}");
    assert!(!line.contains("pw"), "no password in syslog: {line}");

    let outcome = pam::authenticate(&service, &Login::new("syslogprobe").answer("INC0010001"));
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    let line = syslog
        .wait_for(&["decision=allow user=syslogprobe"])
        .expect("a syslog line for the allowed login");
    // info (6) for an allow.
    assert_eq!(priority(&line), Some(AUTHPRIV * 8 + 6), "{line}");

    // A panic is logged as an internal error at err (3), and the application gets PAM_ABORT.
    let mut probe = pam::module_path();
    probe.pop();
    probe.pop();
    let probe = probe.join("panic-probe/libpam_ticket.so");
    assert!(probe.exists(), "run `make probe` first");
    let text = format!(
        "auth required {} config={} panic_probe\n",
        probe.display(),
        config.display()
    );
    let service = PamService::with_text(&world.dir.join("pam.d"), "ticket-panic", &text);
    let outcome = pam::authenticate(&service, &Login::new("syslogprobe").answer("INC0010001"));
    assert_eq!(outcome.code, PAM_ABORT);
    let line = syslog
        .wait_for(&["internal error (panic): panic probe requested by the test suite"])
        .expect("the panic is logged");
    assert_eq!(priority(&line), Some(AUTHPRIV * 8 + 3), "{line}");
    drop(world.pki);
}

/// Every bidirectional control, zero-width characters and terminal escapes.
const HIDDEN: &str = "\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}\u{2066}\u{2067}\u{2068}\u{2069}\u{200E}\u{200F}\u{061C}\u{200B}\u{2060}\u{FEFF}\u{1b}[2J\u{7}\r\n";

/// A ServiceNow simulator whose INC0010002 has `HIDDEN` in its state label and whose
/// INC0010005 is answered with a 500 that has it in its error message.
struct HiddenText(ServiceNowSim);

impl Handler for HiddenText {
    fn handle(&self, request: &Request) -> Response {
        let response = self.0.handle(request);
        match request.param("sysparm_query") {
            Some("number=INC0010002") => {
                let mut document: serde_json::Value =
                    serde_json::from_slice(&response.body).expect("JSON");
                document["result"][0]["state"]["display_value"] = json!(format!("Clo{HIDDEN}sed"));
                Response::json(200, &document)
            }
            Some("number=INC0010005") => Response::json(
                500,
                &json!({"error": {"message": format!("Maintenance{HIDDEN} window"),
                                  "detail": format!("back {HIDDEN}soon")},
                        "status": "failure"}),
            ),
            _ => response,
        }
    }
}

/// Control, bidirectional and invisible characters a server puts in its text never reach
/// syslog: not in a refusal's reason, not in a server error's message.
#[test]
fn hidden_characters_from_servers_never_reach_syslog() {
    let _one_at_a_time = DEV_LOG.lock().unwrap_or_else(|poison| poison.into_inner());
    let world = world_with(Arc::new(HiddenText(ServiceNowSim::new("svc", "pw"))));
    let config = world.dir.join("pam_ticket.conf");
    let service = PamService::new(
        &world.dir.join("pam.d"),
        "ticket-hidden",
        &pam::module_path(),
        &[format!("config={}", config.display()), "debug".to_string()],
    );
    let log_path = Path::new("/dev/log");
    if log_path.exists() {
        let outcome = pam::authenticate(&service, &Login::new("hiddenprobe").answer("INC0010002"));
        assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
        eprintln!("/dev/log belongs to a running syslog daemon: its lines were not captured");
        return;
    }
    let syslog = BoundSyslog::bind(log_path);
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    };

    let outcome = pam::authenticate(&service, &Login::new("hiddenprobe").answer("INC0010002"));
    assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
    let line = syslog
        .wait_for(&["decision=deny user=hiddenprobe", "ticket=INC0010002"])
        .expect("a syslog line for the refusal");
    assert!(!line.chars().any(hidden), "{line:?}");
    assert!(
        line.contains("reason=\"Ticket INC0010002 is Clo [2J sed (with control or invisible characters); allowed states: In Progress\""),
        "{line:?}"
    );

    let outcome = pam::authenticate(&service, &Login::new("hiddenprobe").answer("INC0010005"));
    assert_eq!(
        outcome.code,
        PAM_AUTHINFO_UNAVAIL,
        "{}",
        outcome.transcript()
    );
    let line = syslog
        .wait_for(&["decision=unavailable user=hiddenprobe", "ticket=INC0010005"])
        .expect("a syslog line for the server error");
    assert!(!line.chars().any(hidden), "{line:?}");
    assert!(
        line.contains("server error HTTP 500: Maintenance [2J window: back [2J soon"),
        "{line:?}"
    );
    assert_eq!(
        world.server.request_count(),
        3,
        "one query, then one with its retry"
    );
}

/// The shared object exports the six PAM hooks and nothing else.
#[test]
fn the_module_exports_only_the_pam_hooks() {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(pam::module_path())
        .output()
        .expect("nm (binutils) runs");
    assert!(output.status.success());
    let mut symbols: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last().map(str::to_string))
        .collect();
    symbols.sort();
    assert_eq!(
        symbols,
        [
            "pam_sm_acct_mgmt",
            "pam_sm_authenticate",
            "pam_sm_chauthtok",
            "pam_sm_close_session",
            "pam_sm_open_session",
            "pam_sm_setcred"
        ]
    );
}

/// Runs one login in a child process whose /dev/log, in a private mount namespace, is a
/// socket this test reads; returns the PAM code and every syslog line of the login. The
/// machine's own /dev/log is left alone, so this never disturbs (or is disturbed by) a
/// syslog daemon or another test. The child is `syslog_login_child`, run by `unshare`.
fn login_with_syslog(
    dir: &Path,
    service: &PamService,
    user: &str,
    answers: &[&str],
) -> (i32, Vec<String>) {
    let answers = answers.join("\n");
    let DevLogRun { output, lines } = run_with_private_dev_log(
        dir,
        "syslog_login_child",
        &[
            ("SYSLOG_CHILD_PAMD", service.dir().as_os_str()),
            ("SYSLOG_CHILD_SERVICE", OsStr::new(service.name())),
            ("SYSLOG_CHILD_USER", OsStr::new(user)),
            ("SYSLOG_CHILD_ANSWERS", OsStr::new(&answers)),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let code = stdout
        .lines()
        // libtest prints `test syslog_login_child ... ` on the same line.
        .find_map(|line| line.split_once("CHILD_CODE=").map(|(_, code)| code))
        .and_then(|code| code.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "child failed: {}\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    (code, lines)
}

/// The login of `login_with_syslog`, run in its child process.
#[test]
#[ignore = "run by login_with_syslog inside its own mount namespace"]
fn syslog_login_child() {
    let (Some(dir), Some(name)) = (
        std::env::var_os("SYSLOG_CHILD_PAMD"),
        std::env::var("SYSLOG_CHILD_SERVICE").ok(),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let text = fs::read_to_string(dir.join(&name)).expect("the service file");
    let service = PamService::with_text(&dir, &name, &text);
    let user = std::env::var("SYSLOG_CHILD_USER").unwrap_or_default();
    let answers = std::env::var("SYSLOG_CHILD_ANSWERS").unwrap_or_default();
    let login = answers
        .lines()
        .fold(Login::new(&user), |login, answer| login.answer(answer));
    let outcome = pam::authenticate(&service, &login);
    println!("CHILD_CODE={}", outcome.code);
    println!("{}", outcome.transcript());
}

fn lines_with<'a>(lines: &'a [String], needles: &[&str]) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|line| needles.iter().all(|needle| line.contains(needle)))
        .collect()
}

/// A configuration that fails its checks names an audit file: nothing is written there.
/// The error reaches syslog (at err), and the audit file only when the pam.d line names
/// one.
#[test]
fn a_refused_configuration_is_reported_to_syslog_and_never_to_the_file_it_names() {
    let world = world();
    let config = world.dir.join("pam_ticket.conf");
    let named = world.dir.join("named-by-the-refused-configuration.jsonl");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(
        &config,
        format!("{text}AuditLogFile=\"{}\"\n", named.display()),
    )
    .expect("config");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o664)).expect("chmod");
    let pam_d_audit = world.dir.join("pam-d-audit.jsonl");
    for with_argument in [false, true] {
        let mut arguments = vec![format!("config={}", config.display())];
        if with_argument {
            arguments.push(format!("AuditLogFile={}", pam_d_audit.display()));
        }
        let service = PamService::new(
            &world.dir.join("pam.d"),
            "ticket-refused",
            &pam::module_path(),
            &arguments,
        );
        let (code, lines) =
            login_with_syslog(world.dir.path(), &service, "mallory", &["INC0010001"]);
        assert_eq!(code, PAM_SERVICE_ERR, "{lines:#?}");
        let errors = lines_with(
            &lines,
            &[
                "decision=error user=mallory",
                "cannot use the configuration",
                "(mode is 0664; run chmod go-w)",
            ],
        );
        assert_eq!(errors.len(), 1, "{lines:#?}");
        assert_eq!(priority(errors[0]), Some(AUTHPRIV * 8 + 3), "{}", errors[0]);
        assert!(
            !named.exists(),
            "the refused configuration chose where root writes"
        );
        let records = fs::read_to_string(&pam_d_audit).unwrap_or_default();
        if with_argument {
            assert_eq!(records.lines().count(), 1, "{records}");
            assert!(
                records.contains("cannot use the configuration"),
                "{records}"
            );
        } else {
            assert!(records.is_empty(), "{records}");
        }
    }
    assert_eq!(world.server.request_count(), 0);
}

/// An audit file that is unsafe to write is skipped (the login is decided as usual), and
/// syslog says why: a folder others can write to, a symbolic link, a FIFO.
#[test]
fn an_unsafe_audit_file_is_skipped_and_syslog_says_why() {
    let world = world();
    let config = world.dir.join("pam_ticket.conf");
    let open_folder = world.dir.join("open-folder");
    fs::create_dir(&open_folder).expect("mkdir");
    fs::set_permissions(&open_folder, fs::Permissions::from_mode(0o777)).expect("chmod");
    let target = world.dir.join("target.jsonl");
    fs::write(&target, "").expect("target");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = world.dir.join("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let fifo = world.dir.join("audit.fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let cases = [
        (
            open_folder.join("audit.jsonl"),
            "must be writable by root alone: group or others may write to it (mode is 0777",
        ),
        (link.clone(), "(a symbolic link, which is never followed)"),
        (fifo.clone(), "(a FIFO, which is never written to)"),
    ];
    for (audit, why) in &cases {
        let service = PamService::new(
            &world.dir.join("pam.d"),
            "ticket-audit",
            &pam::module_path(),
            &[
                format!("config={}", config.display()),
                format!("AuditLogFile={}", audit.display()),
            ],
        );
        let (code, lines) = login_with_syslog(world.dir.path(), &service, "alice", &["INC0010001"]);
        assert_eq!(code, PAM_SUCCESS, "{why}: {lines:#?}");
        assert_eq!(
            lines_with(&lines, &["decision=allow user=alice"]).len(),
            1,
            "{lines:#?}"
        );
        let skipped = lines_with(&lines, &["audit file not written: ", why]);
        assert_eq!(skipped.len(), 1, "{why}: {lines:#?}");
        assert_eq!(
            priority(skipped[0]),
            Some(AUTHPRIV * 8 + 3),
            "{}",
            skipped[0]
        );
    }
    assert!(!open_folder.join("audit.jsonl").exists());
    assert_eq!(fs::read_to_string(&target).expect("target"), "");
    assert_eq!(world.server.request_count(), cases.len());
}

/// A SystemURL the HTTP client would refuse (a leftover `<instance>` placeholder) is a
/// configuration error that names its line, in FailMode=safe too (where a request failure
/// taken for an outage would let everyone in), and no request is sent.
#[test]
fn a_url_the_client_would_refuse_is_reported_with_its_line() {
    let world = world();
    let config = world.dir.join("pam_ticket.conf");
    let text = fs::read_to_string(&config).expect("config").replace(
        &world.server.base_url(),
        &format!("{}/<instance>", world.server.base_url()),
    );
    fs::write(&config, format!("{text}FailMode=safe\n")).expect("config");
    let service = PamService::new(
        &world.dir.join("pam.d"),
        "ticket-url",
        &pam::module_path(),
        &[format!("config={}", config.display())],
    );
    let (code, lines) = login_with_syslog(world.dir.path(), &service, "alice", &["INC0010001"]);
    assert_eq!(code, PAM_SERVICE_ERR, "{lines:#?}");
    let errors = lines_with(
        &lines,
        &[
            "decision=error user=alice",
            "pam_ticket.conf:2: SystemURL: ",
            "invalid uri character",
        ],
    );
    assert_eq!(errors.len(), 1, "{lines:#?}");
    assert_eq!(world.server.request_count(), 0);
}

/// Debug lines (the `debug` argument) speak the domain: what was asked of which system and
/// what it answered, never a Rust value such as `Ok("a ticket")` or `Err(NotFound)`.
#[test]
fn debug_lines_speak_the_domain() {
    let world = world();
    let config = world.dir.join("pam_ticket.conf");
    let service = PamService::new(
        &world.dir.join("pam.d"),
        "ticket-debug",
        &pam::module_path(),
        &[format!("config={}", config.display()), "debug".to_string()],
    );
    // This world's configuration has MaxAttempts=1: one answer per login.
    for (answer, expected) in [
        (
            "INC0099999",
            "lookup of incident INC0099999 at ServiceNow: not found",
        ),
        (
            "INC0010002",
            "lookup of incident INC0010002 at ServiceNow: found, state Closed",
        ),
    ] {
        let (code, lines) = login_with_syslog(world.dir.path(), &service, "alice", &[answer]);
        assert_eq!(code, PAM_MAXTRIES, "{lines:#?}");
        let debug: Vec<&String> = lines
            .iter()
            .filter(|line| priority(line) == Some(AUTHPRIV * 8 + 7))
            .collect();
        for needle in ["attempt 1 of 1", expected] {
            assert_eq!(
                lines_with(&lines, &[needle])
                    .iter()
                    .filter(|line| debug.contains(line))
                    .count(),
                1,
                "{needle}: {lines:#?}"
            );
        }
        for line in &lines {
            assert!(
                !line.contains("Ok(") && !line.contains("Err(") && !line.contains("Some("),
                "a Rust value in syslog: {line}"
            );
        }
    }
    assert_eq!(world.server.request_count(), 2);
}

/// WorkNotes=Yes with an account that may not write: the login goes through (info), and
/// the failed note is one line at warning (4) that says what to fix.
#[test]
fn a_failed_work_note_is_logged_at_warning_with_what_to_fix() {
    let _one_at_a_time = DEV_LOG.lock().unwrap_or_else(|poison| poison.into_inner());
    let sim = Arc::new(ServiceNowSim::new("svc", "pw"));
    sim.set_read_only(true);
    let world = world_with(sim.clone());
    let config = world.dir.join("pam_ticket.conf");
    let text = fs::read_to_string(&config).expect("config");
    fs::write(&config, format!("{text}WorkNotes=Yes\n")).expect("config");
    let service = PamService::new(
        &world.dir.join("pam.d"),
        "ticket-syslog-notes",
        &pam::module_path(),
        &[format!("config={}", config.display())],
    );
    let log_path = Path::new("/dev/log");
    if log_path.exists() {
        let outcome = pam::authenticate(&service, &Login::new("syslogprobe").answer("INC0010001"));
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        eprintln!("/dev/log belongs to a running syslog daemon: its lines were not captured");
        return;
    }
    let syslog = BoundSyslog::bind(log_path);
    let outcome = pam::authenticate(&service, &Login::new("syslogprobe").answer("INC0010001"));
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    let line = syslog
        .wait_for(&["work note on incident INC0010001 not written"])
        .expect("the failed note is logged");
    assert!(
        line.contains("the module's account svc may not write to the ticket (HTTP 403: Operation Failed: ACL Exception Update Failed due to security constraints); give it write access"),
        "{line}"
    );
    assert_eq!(priority(&line), Some(AUTHPRIV * 8 + 4), "{line}");
    let line = syslog
        .wait_for(&["decision=allow user=syslogprobe"])
        .expect("the allow record");
    assert!(line.contains("work_note=failed"), "{line}");
    assert_eq!(priority(&line), Some(AUTHPRIV * 8 + 6), "{line}");
}
