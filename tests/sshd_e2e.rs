//! End to end with real OpenSSH: a private sshd (the system's binary, its own PAM service
//! file loading the built module), the real `ssh` client driven through a pseudo-terminal
//! by `expect`, and the ServiceNow simulator over HTTPS. Needs root; without root or
//! OpenSSH each test says why and passes without running (CI runs as root).
//!
//! sshd_config (the README's): `UsePAM yes`, `KbdInteractiveAuthentication yes`,
//! `PasswordAuthentication no`, `AuthenticationMethods publickey,keyboard-interactive:pam`,
//! `MaxAuthTries 4`; a test may change one (`Layout`). Clients offer `publickey,
//! keyboard-interactive` unless a test runs a stock client (`Client::stock`).

use pam_ticket_testkit as support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pam_ticket::bypass::BypassHash;
use serde_json::Value;
use support::files::write_root_only;
use support::https::{TestServer, refusing_port};
use support::pam::{module_path, system_module};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::sshd::{
    Client, SshRun, Sshd, TEST_GROUP, TEST_USER, ensure_test_user_in_group, report,
    unavailable_reason,
};
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam";
const ACCOUNT_PASSWORD: &str = "s3cret-e2e";
const BYPASS_CODE: &str = "break-glass-7Qz4-e2e-2026";
const CLOSED_REASON: &str = "Ticket INC0010002 is Closed; allowed states: New, In Progress";
const UNAVAILABLE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";

/// One gateway: simulator, configuration, private sshd. Fields drop in order: sshd (and
/// its /etc/pam.d file) first, the directory last.
struct Gateway {
    sshd: Sshd,
    _server: Option<TestServer>,
    sim: Arc<ServiceNowSim>,
    audit_log: PathBuf,
    /// CacheDirectory: tokens and the session records (in `sessions/`).
    cache_dir: PathBuf,
    _dir: TestDir,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Up,
    /// SystemURL points at a loopback port where nothing listens.
    Down,
}

/// What differs from the README's layout in a test.
#[derive(Default)]
struct Layout<'a> {
    /// sshd_config settings replacing the README's (see `support::sshd::README_SETTINGS`).
    sshd_changes: &'a [(&'a str, &'a str)],
    /// pam.d lines above the module's `auth` line.
    auth_above: &'a str,
    /// pam.d lines below the module's `auth` line.
    auth_below: &'a str,
    /// Portal mode (FetchCredentialsThroughPVWA) instead of ServiceNow.
    portal: bool,
    /// The module in the session stack too (for the end-of-session work note).
    session_module: bool,
}

fn gateway(label: &str, backend: Backend, extra_config: &str) -> Option<Gateway> {
    gateway_with(label, backend, extra_config, Layout::default())
}

fn gateway_with(
    label: &str,
    backend: Backend,
    extra_config: &str,
    layout: Layout,
) -> Option<Gateway> {
    if let Some(reason) = unavailable_reason() {
        report(&format!("sshd_e2e {label}: SKIPPED: {reason}"));
        return None;
    }
    let dir = TestDir::new(&format!("sshd-{label}"));
    let pki = TestPki::generate(&dir.join("pki"));
    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let (server, url) = match backend {
        Backend::Up => {
            let server = TestServer::start(pki.server_config(ServerCert::Good), sim.clone());
            let url = server.base_url();
            (Some(server), url)
        }
        Backend::Down => (None, format!("https://localhost:{}", refusing_port())),
    };

    let account = dir.join("account.conf");
    write_root_only(
        &account,
        &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
    );
    let audit_log = dir.join("audit.log");
    let bypass = BypassHash::create(BYPASS_CODE.as_bytes(), b"e2e-salt-1234567");
    let config = dir.join("pam_ticket.conf");
    let system = if layout.portal {
        format!(
            "FetchCredentialsThroughPVWA=\"Yes\"\n\
             PortalURL=\"{url}/PasswordVault\"\n\
             PortalAccountFile=\"{account}\"\n",
            account = account.display(),
        )
    } else {
        format!(
            "TicketingSystem=\"ServiceNow\"\n\
             SystemURL=\"{url}\"\n\
             ConnectionAccountFile=\"{account}\"\n\
             ValidateIncidentTicketState=\"Yes\"\n\
             AllowedIncidentTicketStates=\"New,In Progress\"\n",
            account = account.display(),
        )
    };
    write_root_only(
        &config,
        &format!(
            "{system}\
             CAFile=\"{ca}\"\n\
             FailsafeBypassCode=\"{bypass}\"\n\
             Timeout=\"5\"\n\
             AuditLogFile=\"{audit}\"\n\
             CacheDirectory=\"{cache}\"\n\
             {extra_config}",
            ca = pki.ca_pem_path().display(),
            audit = audit_log.display(),
            cache = dir.join("cache").display(),
        ),
    );
    let stack = format!(
        "# pam_ticket end-to-end test; removed when the test ends.\n\
         {above}\
         auth     required {module} config={config}\n\
         {below}\
         account  required {permit}\n\
         {session}\
         session  required {permit}\n\
         password required {deny}\n",
        module = module_path().display(),
        config = config.display(),
        permit = system_module("pam_permit.so").display(),
        deny = system_module("pam_deny.so").display(),
        above = layout.auth_above,
        below = layout.auth_below,
        session = if layout.session_module {
            format!(
                "session  optional {} config={}\n",
                module_path().display(),
                config.display()
            )
        } else {
            String::new()
        },
    );
    let sshd = Sshd::start_with(dir.path(), label, &stack, layout.sshd_changes);
    Some(Gateway {
        sshd,
        _server: server,
        sim,
        audit_log,
        cache_dir: dir.join("cache"),
        _dir: dir,
    })
}

impl Gateway {
    fn ssh(&self, client: &Client) -> SshRun {
        let run = self.sshd.ssh(client);
        report(&format!(
            "---- ssh transcript ({}) ----\n{}\n---- end ----",
            self.sshd.service(),
            run.transcript.trim_end()
        ));
        run
    }

    fn audit(&self) -> Vec<Value> {
        fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
    }

    fn decisions(&self) -> Vec<String> {
        self.audit()
            .iter()
            .map(|record| record["decision"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Whether sshd's log has `text`, waiting briefly: the pre-authentication child's
    /// lines reach the log through the monitor, after the client has already gone.
    #[allow(clippy::disallowed_methods)] // waits for a real sshd's log
    fn sshd_logged(&self, text: &str) -> bool {
        for _ in 0..50 {
            if self.sshd.log_text().contains(text) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(40));
        }
        false
    }

    fn queries(&self) -> usize {
        self.sim.query_count()
    }

    /// Context for a failed assertion: what the client saw and what sshd logged.
    fn context(&self, run: &SshRun) -> String {
        format!(
            "transcript:\n{}\ndriver:\n{}\nsshd log:\n{}\naudit:\n{}",
            run.transcript,
            run.driver_log,
            self.sshd.log_text(),
            fs::read_to_string(&self.audit_log).unwrap_or_default()
        )
    }
}

fn report_timings(case: &str, run: &SshRun) {
    let (to_prompt, to_shell) = run.timings();
    let show = |value: Option<u64>| value.map_or("-".to_string(), |ms| format!("{ms} ms"));
    report(&format!(
        "sshd_e2e timing [{case}]: connect->prompt {}, answer->shell {}, prompts {}, total {} ms",
        show(to_prompt),
        show(to_shell),
        run.prompt_at_ms.len(),
        run.total.as_millis()
    ));
}

#[test]
fn valid_ticket_logs_in_and_reaches_the_session() {
    let Some(gate) = gateway("valid", Backend::Up, "") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010001"]));
    report_timings("valid ticket", &run);
    let context = gate.context(&run);
    assert!(run.got_shell(), "no session:\n{context}");
    assert_eq!(run.exit_status, 0, "{context}");
    assert_eq!(run.prompt_at_ms.len(), 1, "{context}");
    assert_eq!(
        run.session_value("TICKET_ID").as_deref(),
        Some("INC0010001"),
        "{context}"
    );
    assert_eq!(
        run.session_value("TICKETING_SYSTEM").as_deref(),
        Some("ServiceNow")
    );
    assert_eq!(
        run.session_value("TICKET_DECISION").as_deref(),
        Some("allow")
    );
    assert_eq!(gate.queries(), 1);
    let audit = gate.audit();
    assert_eq!(gate.decisions(), vec!["allow"], "{context}");
    assert_eq!(audit[0]["ticket"], "INC0010001");
    assert_eq!(audit[0]["user"], TEST_USER);
    assert_eq!(audit[0]["rhost"], "127.0.0.1");
    assert_eq!(audit[0]["service"], gate.sshd.service());
    assert!(
        gate.sshd.log_text().contains(&format!(
            "Accepted keyboard-interactive/pam for {TEST_USER}"
        )),
        "{context}"
    );
}

/// MaxAttempts=1: the module shows the reason and returns PAM_MAXTRIES at once, so there
/// is no later prompt to carry the message (OpenSSH bug 2876). sshd still sends it: a
/// failing PAM_MAXTRIES/PAM_AUTH_ERR with pending messages is turned into one last
/// keyboard-interactive request with no prompts, whose instruction the client prints.
/// Then the client's remaining attempts (publickey again, keyboard-interactive twice) reach
/// the README's `MaxAuthTries 4` and sshd disconnects.
#[test]
fn closed_ticket_is_refused_with_the_reason() {
    let Some(gate) = gateway("closed", Backend::Up, "MaxAttempts=\"1\"\n") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010002"]));
    report_timings("closed ticket", &run);
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert_eq!(run.prompt_at_ms.len(), 1, "{context}");
    assert!(run.transcript.contains(CLOSED_REASON), "{context}");
    assert_eq!(
        after_last(&run, CLOSED_REASON),
        too_many_failures(gate.sshd.port()),
        "{context}"
    );
    assert_eq!(gate.queries(), 1);
    assert_eq!(gate.decisions(), vec!["deny"], "{context}");
    assert_eq!(gate.audit()[0]["reason"], CLOSED_REASON);
}

/// MaxAttempts=3 (the default): three refused answers, each reason shown, then
/// PAM_MAXTRIES makes sshd stop offering keyboard-interactive, so the connection ends
/// after exactly three prompts even though the client would retype forever.
#[test]
fn three_wrong_answers_end_the_connection() {
    let Some(gate) = gateway("maxtries", Backend::Up, "") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010002", "INC0099999", "INC0010004"]).repeating());
    report_timings("three wrong answers", &run);
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert_eq!(run.prompt_at_ms.len(), 3, "{context}");
    assert!(run.transcript.contains(CLOSED_REASON), "{context}");
    assert!(
        run.transcript.contains("Ticket INC0099999 was not found"),
        "{context}"
    );
    assert!(
        run.transcript
            .contains("Ticket INC0010004 is Canceled; allowed states: New, In Progress"),
        "{context}"
    );
    assert_eq!(gate.queries(), 3);
    assert_eq!(gate.decisions(), vec!["deny", "deny", "deny"], "{context}");
}

#[test]
fn bypass_code_logs_in_without_a_request() {
    let Some(gate) = gateway("bypass", Backend::Up, "") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&[BYPASS_CODE]));
    report_timings("bypass code", &run);
    let context = gate.context(&run);
    assert!(run.got_shell(), "{context}");
    assert_eq!(
        run.session_value("TICKET_DECISION").as_deref(),
        Some("bypass")
    );
    assert_eq!(run.session_value("TICKET_ID").as_deref(), Some(""));
    assert_eq!(gate.queries(), 0);
    assert_eq!(gate.decisions(), vec!["bypass"], "{context}");
    let audit_text = fs::read_to_string(&gate.audit_log).unwrap_or_default();
    assert!(
        !audit_text.contains(BYPASS_CODE),
        "the code leaked: {audit_text}"
    );
}

/// FailMode=secure with the ticketing system down: the unavailable message, no login.
/// PAM_AUTHINFO_UNAVAIL is not PAM_MAXTRIES, so a stock client starts keyboard-interactive
/// again (NumberOfPasswordPrompts, 3 by default): the test retypes and counts the rounds.
#[test]
fn system_down_in_secure_mode_shows_unavailable_and_denies() {
    let Some(gate) = gateway("down-secure", Backend::Down, "FailMode=\"secure\"\n") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010001"]).repeating());
    report_timings("system down, secure", &run);
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert!(run.transcript.contains(UNAVAILABLE), "{context}");
    let rounds = run.prompt_at_ms.len();
    assert!((1..=3).contains(&rounds), "{rounds} prompts\n{context}");
    assert_eq!(gate.decisions(), vec!["unavailable"; rounds], "{context}");
    report(&format!(
        "sshd_e2e: system down, secure mode: {rounds} keyboard-interactive round(s) before ssh gave up"
    ));
}

#[test]
fn system_down_in_safe_mode_logs_in_as_failsafe() {
    let Some(gate) = gateway("down-safe", Backend::Down, "FailMode=\"safe\"\n") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010001"]));
    report_timings("system down, safe", &run);
    let context = gate.context(&run);
    assert!(run.got_shell(), "{context}");
    assert_eq!(
        run.session_value("TICKET_DECISION").as_deref(),
        Some("failsafe")
    );
    assert_eq!(
        run.session_value("TICKET_ID").as_deref(),
        Some("INC0010001")
    );
    assert_eq!(gate.decisions(), vec!["failsafe"], "{context}");
}

/// The key alone is not enough, and keyboard-interactive is not even offered before it.
#[test]
fn publickey_alone_is_not_let_through() {
    let Some(gate) = gateway("pubkey-only", Backend::Up, "") else {
        return;
    };
    let run = gate.ssh(&Client::answering(&[]).methods("publickey"));
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert!(run.prompt_at_ms.is_empty(), "{context}");
    assert!(
        run.transcript
            .contains("Permission denied (keyboard-interactive)"),
        "{context}"
    );
    assert!(
        gate.sshd
            .log_text()
            .contains("Partial publickey for pamticket-e2e"),
        "{context}"
    );

    let run = gate.ssh(&Client::answering(&["INC0010001"]).methods("keyboard-interactive"));
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert!(run.prompt_at_ms.is_empty(), "{context}");
    assert!(
        run.transcript.contains("Permission denied (publickey)"),
        "{context}"
    );
    assert_eq!(gate.queries(), 0);
    assert!(gate.audit().is_empty(), "{context}");
}

/// What the terminal shows after the last `last_message`: the client's lines, with the
/// carriage returns (which move the cursor, and show nothing) taken out.
fn after_last(run: &SshRun, last_message: &str) -> String {
    let screen = run.transcript.replace('\r', "");
    match screen.rfind(last_message) {
        Some(at) => screen[at + last_message.len()..].to_string(),
        None => String::new(),
    }
}

/// sshd's disconnect as the client prints it.
fn too_many_failures(port: u16) -> String {
    format!(
        "\n\nReceived disconnect from 127.0.0.1 port {port}:2: Too many authentication failures\n\
         Disconnected from 127.0.0.1 port {port}\n"
    )
}

const CANCELED_REASON: &str = "Ticket INC0010004 is Canceled; allowed states: New, In Progress";

/// Issue 11, item 1. After PAM_MAXTRIES sshd turns keyboard-interactive and password off
/// and answers with an empty list of methods that can continue; a stock client then falls
/// back to its own order (publickey, keyboard-interactive, password). Each of those
/// attempts is a failure for sshd, and with the README's `MaxAuthTries 4` the fourth
/// (publickey again, keyboard-interactive twice) ends the connection before the client
/// gets to `password:`.
#[test]
fn stock_client_after_the_last_refused_ticket_is_disconnected_without_a_password_prompt() {
    let Some(gate) = gateway("stock-end", Backend::Up, "") else {
        return;
    };
    let client = Client::answering(&["INC0010002", "INC0099999", "INC0010004"]).stock();
    let run = gate.ssh(&client.repeating());
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert_eq!(run.prompt_at_ms.len(), 3, "{context}");
    assert_eq!(run.password_prompts, 0, "{context}");
    assert_eq!(
        after_last(&run, CANCELED_REASON),
        too_many_failures(gate.sshd.port()),
        "{context}"
    );
    assert_eq!(gate.queries(), 3);
    assert_eq!(gate.decisions(), vec!["deny", "deny", "deny"], "{context}");
    assert!(
        gate.sshd_logged("maximum authentication attempts exceeded"),
        "{context}"
    );
}

/// The same stock client against sshd's default `MaxAuthTries 6`: what the issue saw, and
/// what `pam-ticket doctor` warns about. The two failures left after keyboard-interactive
/// are spent on `password:` prompts that can never succeed.
#[test]
fn stock_client_is_asked_for_a_password_when_max_auth_tries_is_the_default() {
    let layout = Layout {
        sshd_changes: &[("MaxAuthTries", "6")],
        ..Layout::default()
    };
    let Some(gate) = gateway_with("stock-6", Backend::Up, "", layout) else {
        return;
    };
    let client = Client::answering(&["INC0010002", "INC0099999", "INC0010004"]).stock();
    let run = gate.ssh(&client.repeating());
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert_eq!(run.prompt_at_ms.len(), 3, "{context}");
    assert_eq!(run.password_prompts, 2, "{context}");
    let port = gate.sshd.port();
    assert_eq!(
        after_last(&run, CANCELED_REASON),
        format!(
            "\n\n{TEST_USER}@127.0.0.1's password: \n\
             Permission denied, please try again.\n\
             {TEST_USER}@127.0.0.1's password: \n\
             Received disconnect from 127.0.0.1 port {port}:2: Too many authentication failures\n\
             Disconnected from 127.0.0.1 port {port}\n"
        ),
        "{context}"
    );
    assert_eq!(gate.queries(), 3);
}

/// The client-side setting the README documents: with `PasswordAuthentication no` the
/// client has nothing left to try and says so, whatever the server's MaxAuthTries.
#[test]
fn client_without_password_authentication_ends_with_permission_denied() {
    let layout = Layout {
        sshd_changes: &[("MaxAuthTries", "6")],
        ..Layout::default()
    };
    let Some(gate) = gateway_with("client-nopw", Backend::Up, "MaxAttempts=\"1\"\n", layout) else {
        return;
    };
    let client = Client::answering(&["INC0010002"])
        .stock()
        .option("PasswordAuthentication=no");
    let run = gate.ssh(&client.repeating());
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert_eq!(run.prompt_at_ms.len(), 1, "{context}");
    assert_eq!(run.password_prompts, 0, "{context}");
    assert_eq!(
        after_last(&run, CLOSED_REASON),
        format!("\n\n{TEST_USER}@127.0.0.1: Permission denied ().\n"),
        "{context}"
    );
}

/// Portal mode, and the login names no target (PAM_USER is a plain user): no ticket can
/// fix that, so the module ends the exchange as the last refused ticket does. With
/// PAM_AUTH_ERR the stock client started keyboard-interactive again and showed the same
/// message three times.
#[test]
fn portal_login_without_target_is_refused_once_and_disconnected() {
    let layout = Layout {
        portal: true,
        ..Layout::default()
    };
    let Some(gate) = gateway_with("portal-notarget", Backend::Down, "", layout) else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010001"]).stock().repeating());
    let context = gate.context(&run);
    let message = format!(
        "This gateway needs a target: connect as <you>@<target user>[#domain]@<target address>[#port] (got {TEST_USER})"
    );
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert!(run.prompt_at_ms.is_empty(), "{context}");
    assert_eq!(run.password_prompts, 0, "{context}");
    assert_eq!(run.transcript.matches(&message).count(), 1, "{context}");
    assert_eq!(
        after_last(&run, &message),
        too_many_failures(gate.sshd.port()),
        "{context}"
    );
    assert_eq!(gate.decisions(), vec!["deny"], "{context}");
}

/// Runs `pam-ticket doctor` on a gateway's own sshd_config and PAM service.
fn doctor(gate: &Gateway) -> (i32, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pam-ticket"))
        .arg("doctor")
        .arg("--sshd-config")
        .arg(gate.sshd.config_path())
        .arg("--pam-service")
        .arg(gate.sshd.service())
        .output()
        .expect("run pam-ticket doctor");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    report(&format!("---- pam-ticket doctor ----\n{out}---- end ----"));
    (output.status.code().unwrap_or(-1), out)
}

/// Issue 11, items 2 and 3, on a real sshd. The README's layout passes doctor. Debian's
/// `@include common-auth` kept above the ticket: a stock client is asked `Password:` in
/// each of its three keyboard-interactive rounds and never sees the ticket prompt; doctor
/// names the line and says to remove it.
#[test]
fn doctor_passes_the_readme_layout_and_names_common_auth_kept_above_the_ticket() {
    let Some(gate) = gateway("doctor-ok", Backend::Up, "") else {
        return;
    };
    let (code, out) = doctor(&gate);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("result: OK, 0 warning(s)\n"), "{out}");
    drop(gate);

    if !Path::new("/etc/pam.d/common-auth").is_file() {
        report("sshd_e2e common-auth: SKIPPED: no /etc/pam.d/common-auth (not Debian)");
        return;
    }
    let layout = Layout {
        auth_above: "@include common-auth\n",
        ..Layout::default()
    };
    let Some(gate) = gateway_with("doctor-common-auth", Backend::Up, "", layout) else {
        return;
    };
    let run = gate.ssh(&Client::answering(&["INC0010001"]).stock().repeating());
    let context = gate.context(&run);
    assert!(!run.got_shell(), "{context}");
    assert_eq!(run.exit_status, 255, "{context}");
    assert!(
        run.prompt_at_ms.is_empty(),
        "never a ticket prompt:\n{context}"
    );
    assert_eq!(run.pam_password_prompts, 3, "{context}");
    assert_eq!(run.password_prompts, 0, "{context}");
    assert!(
        run.transcript.replace('\r', "").ends_with(&format!(
            "{TEST_USER}@127.0.0.1: Permission denied (keyboard-interactive).\n"
        )),
        "{context}"
    );
    assert_eq!(gate.queries(), 0);
    assert!(gate.audit().is_empty(), "{context}");

    let (code, out) = doctor(&gate);
    let pam_file = format!("/etc/pam.d/{}", gate.sshd.service());
    let expected = format!(
        "ERROR {pam_file}:2: `@include common-auth` brings pam_unix.so \
         (/etc/pam.d/common-auth:{}) into the auth stack: people are asked `Password:` before \
         the ticket, and without the right password the stack ends there: they never see the \
         ticket prompt",
        fs::read_to_string("/etc/pam.d/common-auth")
            .unwrap_or_default()
            .lines()
            .position(|line| !line.starts_with('#') && line.contains("pam_unix.so"))
            .map_or(0, |index| index + 1)
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.lines()
            .filter(|line| line.starts_with("ERROR") || line.starts_with("WARN"))
            .collect::<Vec<_>>(),
        vec![expected.as_str()],
        "{out}"
    );
}

/// Exemptions through a real login, with the README's stack for them: `auth optional
/// pam_permit.so` below the ticket decides only when the module ignored the login. An
/// exempt user (ExemptUsers, or a member of ExemptGroups by a supplementary group) gets
/// the session with the key alone and is never asked; with the user's group in Groups
/// instead, the user is asked, and gets in only with a valid ticket.
#[test]
fn an_exempt_user_is_not_asked_and_a_member_of_groups_is() {
    if unavailable_reason().is_none() {
        ensure_test_user_in_group();
    }
    let permit_below = format!(
        "auth     optional {}\n",
        system_module("pam_permit.so").display()
    );
    let layout = || Layout {
        auth_below: &permit_below,
        ..Layout::default()
    };
    for (label, exemption, reason) in [
        (
            "exempt-user",
            format!("ExemptUsers=\"{TEST_USER}\"\n"),
            format!("{TEST_USER} is listed in ExemptUsers"),
        ),
        (
            "exempt-group",
            format!("Groups=\"{TEST_USER}\"\nExemptGroups=\"{TEST_GROUP}\"\n"),
            format!("{TEST_USER} is a member of {TEST_GROUP}, listed in ExemptGroups"),
        ),
    ] {
        let Some(gate) = gateway_with(label, Backend::Up, &exemption, layout()) else {
            return;
        };
        let run = gate.ssh(&Client::answering(&[]));
        let context = gate.context(&run);
        assert!(run.got_shell(), "no session:\n{context}");
        assert_eq!(run.exit_status, 0, "{context}");
        assert!(run.prompt_at_ms.is_empty(), "asked:\n{context}");
        // Nothing exported: the session prints the variable empty.
        assert_eq!(
            run.session_value("TICKET_ID").as_deref(),
            Some(""),
            "{context}"
        );
        assert_eq!(gate.queries(), 0, "{context}");
        let audit = gate.audit();
        assert_eq!(gate.decisions(), vec!["exempt"], "{context}");
        assert_eq!(audit[0]["user"], TEST_USER);
        assert_eq!(audit[0]["reason"], reason);
        assert!(
            gate.sshd_logged(&format!(
                "Accepted keyboard-interactive/pam for {TEST_USER}"
            )),
            "{context}"
        );
    }

    let Some(gate) = gateway_with(
        "member",
        Backend::Up,
        &format!("Groups=\"{TEST_GROUP}\"\nMaxAttempts=\"1\"\n"),
        layout(),
    ) else {
        return;
    };
    // Asked, and a closed ticket is refused even with pam_permit below.
    let refused = gate.ssh(&Client::answering(&["INC0010002"]));
    let context = gate.context(&refused);
    assert!(!refused.got_shell(), "let in:\n{context}");
    assert_eq!(refused.prompt_at_ms.len(), 1, "{context}");
    assert!(refused.transcript.contains(CLOSED_REASON), "{context}");
    let granted = gate.ssh(&Client::answering(&["INC0010001"]));
    let context = gate.context(&granted);
    assert!(granted.got_shell(), "no session:\n{context}");
    assert_eq!(granted.prompt_at_ms.len(), 1, "{context}");
    assert_eq!(
        granted.session_value("TICKET_ID").as_deref(),
        Some("INC0010001")
    );
    assert_eq!(gate.queries(), 2);
    assert_eq!(gate.decisions(), vec!["deny", "allow"], "{context}");
}

/// WorkNotes through real OpenSSH: log in with a valid ticket, run a command that sleeps,
/// log out. The simulator then holds two notes on the ticket: the start note, and the end
/// note with a duration of at least the sleep.
///
/// It also shows how the session record reached `pam_sm_close_session`: sshd runs
/// keyboard-interactive authentication in a child process of its own (auth-pam.c's
/// "thread" is a fork without POSIX threads), so what `pam_set_data` kept there is gone;
/// the PAM environment is sent back to the process that closes the session. The end
/// record's `session_record` says which carrier delivered the handle. The session's
/// environment holds only that handle (`TICKET_SESSION=v2.<32 hex digits>`).
#[test]
#[allow(clippy::disallowed_methods)] // waits for a real sshd to close the session
fn work_notes_land_at_the_start_and_the_end_of_a_real_session() {
    let Some(gate) = gateway_with(
        "notes",
        Backend::Up,
        "WorkNotes=\"Yes\"\nAskReason=\"Yes\"\n",
        Layout {
            session_module: true,
            ..Layout::default()
        },
    ) else {
        return;
    };
    let mut client = Client::answering(&["INC0010001", "rotate the certificates"]);
    client.command = format!(
        "echo {}; echo \"TICKET_REASON=$TICKET_REASON\"; echo \"TICKET_SESSION=$TICKET_SESSION\"; sleep 2",
        support::sshd::SESSION_MARKER
    );
    let run = gate.ssh(&client);
    let context = gate.context(&run);
    assert!(run.got_shell(), "no session:\n{context}");
    assert_eq!(run.exit_status, 0, "{context}");
    // sshd closes the PAM session after the client has gone: wait for the end note.
    let mut notes = Vec::new();
    for _ in 0..100 {
        notes = gate.sim.work_notes("INC0010001");
        if notes.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let context = gate.context(&run);
    assert_eq!(notes.len(), 2, "{notes:#?}\n{context}");
    assert!(
        notes[0].starts_with(&format!(
            "pam_ticket: SSH access granted on this ticket; session started.\nUser: {TEST_USER} (identity {TEST_USER})\nFrom: 127.0.0.1\n"
        )),
        "{}",
        notes[0]
    );
    assert!(notes[0].contains(&format!("PAM service {}, target -\n", gate.sshd.service())));
    assert!(
        notes[0].ends_with("\nReason: rotate the certificates"),
        "{}",
        notes[0]
    );
    assert_eq!(
        run.session_value("TICKET_REASON").as_deref(),
        Some("rotate the certificates"),
        "{context}"
    );
    // The user's session sees the record's handle and nothing else: the facts (and no
    // account material) stay in the gateway's root-only file, which the session's end used
    // and removed.
    let handle = run.session_value("TICKET_SESSION").unwrap_or_default();
    let hex = handle.strip_prefix("v2.").unwrap_or_default();
    assert!(
        hex.len() == 32
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
        "TICKET_SESSION is not a bare handle: {handle:?}\n{context}"
    );
    let left: Vec<_> = fs::read_dir(gate.cache_dir.join("sessions"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "records left after the session's end: {left:?}"
    );
    let (headline, rest) = notes[1].split_once('\n').expect("two parts");
    let seconds: u64 = headline
        .split_once(" (")
        .and_then(|(_, rest)| rest.split_once(" s)"))
        .and_then(|(seconds, _)| seconds.parse().ok())
        .expect("the duration in seconds");
    assert!(seconds >= 2, "{headline}");
    assert!(rest.starts_with(&format!("User: {TEST_USER}")), "{rest}");
    let audit = gate.audit();
    assert_eq!(gate.decisions(), ["allow", "session_end"], "{context}");
    assert_eq!(audit[0]["work_note"], "written");
    assert_eq!(audit[1]["work_note"], "written");
    assert!(
        audit[1]["duration_s"]
            .as_u64()
            .is_some_and(|duration| duration >= 2)
    );
    report(&format!(
        "sshd_e2e notes: the session record reached pam_sm_close_session through the {}",
        audit[1]["session_record"]
    ));
    assert_eq!(
        audit[1]["session_record"], "environment",
        "sshd keeps no pam_set_data across its authentication child: {context}"
    );
}
