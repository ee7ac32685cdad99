//! Work notes and the reason (WorkNotes, AskReason) through the real libpam, against the
//! ServiceNow and Remedy simulators over HTTPS: the exact text of both notes for each
//! ticket type, what went over the wire, the audit fields, and that no failure of a write
//! (refused, failing, hanging) changes a verdict or outlasts WorkNoteTimeout.
#![allow(clippy::disallowed_methods)] // real logins, timed and stamped with real time

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::Value;

use support::files::{audit_records, write_root_only};
use support::https::TestServer;
use support::pam::{
    self, FullOutcome, Login, PAM_MAXTRIES, PAM_SESSION_ERR, PAM_SUCCESS, PamOutcome, PamService,
    Steps,
};
use support::pki::{ServerCert, TestPki};
use support::remedy::{CHANGE_WORK_LOG_FORM, INCIDENT_WORK_LOG_FORM, RemedySim};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const RHOST: &str = "192.0.2.44";

enum Sim {
    ServiceNow(Arc<ServiceNowSim>),
    Remedy(Arc<RemedySim>),
}

/// A simulator behind HTTPS, the account file, an audit file and a PAM service.
struct Gate {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    sim: Sim,
}

impl Gate {
    fn servicenow() -> Gate {
        let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        Gate::start("notes-servicenow", Sim::ServiceNow(sim))
    }

    fn remedy() -> Gate {
        let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        Gate::start("notes-remedy", Sim::Remedy(sim))
    }

    fn start(label: &str, sim: Sim) -> Gate {
        let dir = TestDir::new(label);
        let pki = TestPki::generate(&dir.join("pki"));
        let handler: Arc<dyn support::http::Handler> = match &sim {
            Sim::ServiceNow(sim) => sim.clone(),
            Sim::Remedy(sim) => sim.clone(),
        };
        let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
        write_root_only(
            &dir.join("account.conf"),
            &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        );
        Gate {
            dir,
            pki,
            server,
            sim,
        }
    }

    fn servicenow_sim(&self) -> &ServiceNowSim {
        match &self.sim {
            Sim::ServiceNow(sim) => sim,
            Sim::Remedy(_) => panic!("not a ServiceNow gate"),
        }
    }

    fn remedy_sim(&self) -> &RemedySim {
        match &self.sim {
            Sim::Remedy(sim) => sim,
            Sim::ServiceNow(_) => panic!("not a Remedy gate"),
        }
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.dir.join("audit.jsonl"))
    }

    /// CacheDirectory: the token cache (Remedy) and the session records.
    fn cache_dir(&self) -> PathBuf {
        self.dir.join("token-cache")
    }

    /// Where the session records are kept.
    fn sessions_dir(&self) -> PathBuf {
        self.cache_dir().join("sessions")
    }

    /// The record files there.
    fn session_files(&self) -> Vec<String> {
        fs::read_dir(self.sessions_dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn service(&self, extra: &str) -> PamService {
        let config_path = self.dir.join("pam_ticket.conf");
        let system = match self.sim {
            Sim::ServiceNow(_) => "TicketingSystem=\"ServiceNow\"\n".to_string(),
            Sim::Remedy(_) => "TicketingSystem=\"BMCRemedy\"\n".to_string(),
        };
        let text = format!(
            "{system}CacheDirectory=\"{}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nMaxAttempts=1\nTimeout=5\n{extra}",
            self.cache_dir().display(),
            self.server.base_url(),
            self.dir.join("account.conf").display(),
            self.pki.ca_pem_path().display(),
            self.dir.join("audit.jsonl").display(),
        );
        write_root_only(&config_path, &text);
        stack(&self.dir.join(""), &config_path)
    }

    /// The work notes that landed on the ticket, oldest first.
    fn notes(&self, ticket: &str) -> Vec<String> {
        match &self.sim {
            Sim::ServiceNow(sim) => sim.work_notes(ticket),
            Sim::Remedy(sim) => {
                let mut notes = Vec::new();
                for form in [INCIDENT_WORK_LOG_FORM, CHANGE_WORK_LOG_FORM] {
                    for entry in sim.entries(form) {
                        let names_ticket = entry.values().any(|value| value == ticket)
                            || ticket.starts_with("CRQ");
                        let is_incident_log = form == INCIDENT_WORK_LOG_FORM;
                        if names_ticket && (is_incident_log == ticket.starts_with("INC")) {
                            notes.push(
                                entry["Detailed Description"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                            );
                        }
                    }
                }
                notes
            }
        }
    }

    /// Write attempts that reached the simulator (PATCH or work-log POST), refused or not.
    fn write_attempts(&self) -> usize {
        match &self.sim {
            Sim::ServiceNow(sim) => sim
                .received()
                .iter()
                .filter(|query| query.method == "PATCH")
                .count(),
            Sim::Remedy(sim) => sim
                .received()
                .iter()
                .filter(|received| {
                    received.method == "POST"
                        && received
                            .form
                            .as_deref()
                            .is_some_and(|form| form.contains("WorkLog"))
                })
                .count(),
        }
    }
}

/// A stack that lets anyone in (`pam_permit`) and has the module alone in the session
/// stack, on the configuration `gate.service` wrote: a session whose handle comes from
/// the PAM environment as the application or a module above left it
/// (`Login::preset_env`), the way sshd hands the environment of its authentication child
/// to the process that opens and closes the session.
fn session_only(gate: &Gate, name: &str) -> PamService {
    let line = pam::module_line(
        &pam::module_path(),
        &[format!(
            "config={}",
            gate.dir.join("pam_ticket.conf").display()
        )],
    );
    PamService::with_text(
        &gate.dir.join("pam.d"),
        name,
        &format!(
            "auth required {}\nsession required {line}\n",
            pam::system_module("pam_permit.so").display()
        ),
    )
}

/// Alice's granted login on INC0010001 with WorkNotes=Yes, its session opened and still
/// running: the handle its authentication left.
fn alices_open_session(gate: &Gate) -> String {
    let service = gate.service("WorkNotes=Yes\n");
    let opened = open_only(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
    );
    assert_eq!(
        opened.auth.code,
        PAM_SUCCESS,
        "{}",
        opened.auth.transcript()
    );
    handle_of(&opened.auth)
}

/// Authentication and `pam_open_session`, no close: the session is still running.
fn open_only(service: &PamService, login: &Login) -> FullOutcome {
    pam::run(
        service,
        login,
        Steps {
            acct_mgmt: false,
            open_session: true,
            tty_ssh: true,
            close_session_after: None,
        },
    )
}

/// The session's `TICKET_SESSION`, checked to be `v2.` and 32 lowercase hex digits.
fn handle_of(outcome: &PamOutcome) -> String {
    let value = outcome
        .env
        .get("TICKET_SESSION")
        .cloned()
        .unwrap_or_else(|| panic!("no TICKET_SESSION in {:?}", outcome.env));
    let hex = value.strip_prefix("v2.").unwrap_or_default();
    assert!(
        hex.len() == 32
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
        "not a bare handle: {value}"
    );
    value
}

/// The module alone in the auth and session stacks, as the README's sshd stack has it.
fn stack(dir: &std::path::Path, config_path: &std::path::Path) -> PamService {
    let line = pam::module_line(
        &pam::module_path(),
        &[format!("config={}", config_path.display())],
    );
    PamService::with_text(
        &dir.join("pam.d"),
        "notes-test",
        &format!("auth required {line}\nsession required {line}\n"),
    )
}

/// What libpam answers when the only module of a stack returned PAM_IGNORE: no module
/// decided, so the call fails with PAM_PERM_DENIED (Linux-PAM's PAM_MUST_FAIL_CODE).
const MODULE_IGNORED: i32 = pam::PAM_PERM_DENIED;

fn session(service: &PamService, login: &Login, length: Duration) -> FullOutcome {
    pam::run(
        service,
        login,
        Steps {
            acct_mgmt: false,
            open_session: true,
            tty_ssh: true,
            close_session_after: Some(length),
        },
    )
}

/// The note with its `Time:` line's value checked (UTC, ISO 8601, between `before` and
/// `after`) and replaced by `<time>`, so that the rest is compared exactly.
fn with_time_checked(note: &str, before: DateTime<Utc>, after: DateTime<Utc>) -> String {
    note.lines()
        .map(|line| match line.strip_prefix("Time: ") {
            Some(rest) => {
                let stamp = rest.strip_suffix(" (UTC)").expect("the time says UTC");
                assert!(stamp.ends_with('Z'), "{stamp}");
                let time = DateTime::parse_from_rfc3339(stamp)
                    .expect("ISO 8601")
                    .with_timezone(&Utc);
                let floor = before - chrono::Duration::seconds(1);
                assert!(
                    floor <= time && time <= after,
                    "{time} not in {before}..{after}"
                );
                "Time: <time> (UTC)".to_string()
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn host() -> String {
    pam_ticket::notes::host_name(Duration::from_secs(2))
}

/// The number in a note's `ended after HH:MM:SS (N s)` line.
fn ended_seconds(note: &str) -> u64 {
    let (_, rest) = note.split_once(" (").expect("a duration");
    rest.split_once(" s)")
        .and_then(|(seconds, _)| seconds.parse().ok())
        .expect("seconds")
}

fn body(user: &str, target: &str, ticket: &str, checks: &str, reason: &str) -> String {
    // The identity the ticket was matched against: the person (a connection string's
    // vault user), as no UserMapFile maps it.
    let identity = user.split('@').next().unwrap_or(user);
    format!(
        "User: {user} (identity {identity})\nFrom: {RHOST}\nOnto: {}, PAM service notes-test, target {target}\nTime: <time> (UTC)\nTicket: {ticket}\nChecks passed: {checks}\nReason: {reason}",
        host()
    )
}

const STARTED: &str = "pam_ticket: SSH access granted on this ticket; session started.";

/// Logs in with `ticket` (and a reason), holds the session `length`, closes it; asserts the
/// verdict and both notes' exact text, and returns the end note's line and the audit.
fn both_notes(gate: &Gate, user: &str, ticket: &str, checks: &str, config: &str, target: &str) {
    let service = gate.service(&format!("WorkNotes=Yes\nAskReason=Yes\n{config}"));
    let before = Utc::now();
    let outcome = session(
        &service,
        &Login::new(user)
            .rhost(RHOST)
            .answer(ticket)
            .answer("patch the \u{202e}kernel\u{1b}[2J"),
        Duration::from_millis(1100),
    );
    let after = Utc::now();
    assert_eq!(
        outcome.auth.code,
        PAM_SUCCESS,
        "{}",
        outcome.auth.transcript()
    );
    assert_eq!(outcome.auth.prompts(), ["Ticket ID: ", "Reason: "]);
    // PAM_SUCCESS: a session record is there to be closed (see `sm_open_session`).
    assert_eq!(outcome.open_session_code, Some(PAM_SUCCESS));
    assert_eq!(outcome.close_session_code, Some(PAM_SUCCESS));
    // Used: gone from the environment and from the disk.
    assert!(!outcome.auth.env.contains_key("TICKET_SESSION"));
    assert!(
        gate.session_files().is_empty(),
        "{:?}",
        gate.session_files()
    );

    let notes = gate.notes(ticket);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    let reason = "patch the kernel [2J";
    assert_eq!(
        with_time_checked(&notes[0], before, after),
        format!("{STARTED}\n{}", body(user, target, ticket, checks, reason))
    );
    let (headline, rest) = notes[1].split_once('\n').expect("two parts");
    assert!(
        headline.starts_with("pam_ticket: SSH session ended after 00:00:0"),
        "{headline}"
    );
    assert!(ended_seconds(headline) >= 1, "{headline}");
    assert_eq!(
        with_time_checked(rest, before, after),
        body(user, target, ticket, checks, reason)
    );

    let audit = gate.audit();
    let allow = audit
        .iter()
        .find(|record| record["decision"] == "allow")
        .expect("an allow record");
    assert_eq!(allow["work_note"], "written", "{allow}");
    assert_eq!(allow["access_reason"], reason);
    assert!(allow["work_note_ms"].as_u64().is_some(), "{allow}");
    let end = audit.last().expect("an end record");
    assert_eq!(end["decision"], "session_end", "{end}");
    assert_eq!(end["ticket"], ticket);
    assert_eq!(end["work_note"], "written");
    assert_eq!(end["session_record"], "pam_data");
    assert!(
        end["duration_s"]
            .as_u64()
            .is_some_and(|seconds| seconds >= 1)
    );
}

#[test]
fn servicenow_incident_start_and_end_notes() {
    let gate = Gate::servicenow();
    both_notes(
        &gate,
        "alice",
        "INC0010001",
        "state In Progress; requested by alice",
        "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\nValidateRequestingUser=Yes\n",
        "-",
    );
    let sim = gate.servicenow_sim();
    let updates = sim.updates();
    assert_eq!(updates.len(), 2);
    for update in &updates {
        assert_eq!(update.table, "incident");
        assert_eq!(update.sysparm_fields.as_deref(), Some("sys_id"));
        let fields: Vec<&str> = update
            .fields
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(fields, ["work_notes"], "only the note is written");
    }
    // One lookup, with the sys_id the PATCH used: no second query.
    let queries: Vec<_> = sim
        .received()
        .into_iter()
        .filter(|query| query.method == "GET")
        .collect();
    assert_eq!(queries.len(), 1);
    assert!(
        queries[0]
            .fields
            .as_deref()
            .is_some_and(|fields| fields.starts_with("sys_id,"))
    );
}

#[test]
fn servicenow_change_notes_name_the_psm_target() {
    let gate = Gate::servicenow();
    both_notes(
        &gate,
        "alice@root#corp@db01.example.com#2222",
        "CHG0030001",
        "state Implement; approval Approved; requested by alice",
        "ValidateChangeTicketState=Yes\nAllowedChangeTicketStates=\"Implement\"\nValidateApprovalStatus=Yes\nAllowedApprovalStatuses=\"Approved\"\nValidateRequestingUser=Yes\n",
        "root#corp@db01.example.com#2222",
    );
    assert!(
        gate.servicenow_sim()
            .updates()
            .iter()
            .all(|update| update.table == "change_request")
    );
}

#[test]
fn remedy_incident_notes_are_hpd_work_log_entries() {
    let gate = Gate::remedy();
    both_notes(&gate, "alice", "INC000000000001", "ticket exists", "", "-");
    let sim = gate.remedy_sim();
    let entries = sim.entries(INCIDENT_WORK_LOG_FORM);
    assert_eq!(entries.len(), 2);
    let entry = &entries[0];
    assert_eq!(entry["Incident Number"], "INC000000000001");
    assert_eq!(entry["Work Log Type"], "General Information");
    assert_eq!(entry["View Access"], "Internal");
    assert_eq!(entry["Secure Work Log"], "No");
    assert_eq!(entry["Description"], STARTED);
    // The token the lookup logged on with is reused for both notes.
    assert_eq!(sim.login_count(), 1);
}

#[test]
fn remedy_change_notes_name_the_change_by_its_entry_id() {
    let gate = Gate::remedy();
    both_notes(&gate, "alice", "CRQ000000000001", "ticket exists", "", "-");
    let sim = gate.remedy_sim();
    let entries = sim.entries(CHANGE_WORK_LOG_FORM);
    assert_eq!(entries.len(), 2);
    // CRQ000000000001 is the fixture's first change: its Request ID.
    let change_entry_id = support::remedy::default_fixture(Utc::now())
        .into_iter()
        .find(|(_, entry)| {
            entry.get("Infrastructure Change ID") == Some(&Value::from("CRQ000000000001"))
        })
        .and_then(|(_, entry)| entry["Request ID"].as_str().map(str::to_string))
        .expect("the fixture's change");
    for entry in &entries {
        assert_eq!(entry["Infra. Change Entry ID"], change_entry_id.as_str());
        assert_eq!(entry["Work Log Type"], "General Information");
        assert!(entry.get("Incident Number").is_none());
    }
    let query = sim
        .received()
        .into_iter()
        .find(|received| received.method == "GET")
        .expect("the lookup");
    assert!(
        query
            .fields
            .as_deref()
            .is_some_and(|fields| fields.ends_with(",Request ID)"))
    );
    assert_eq!(sim.login_count(), 1);
}

/// An account without write access: the login goes through, nothing lands, the audit and
/// the warning say what to fix.
#[test]
fn a_refused_write_changes_no_verdict_and_says_what_to_fix() {
    for (gate, ticket) in [
        (Gate::servicenow(), "INC0010001"),
        (Gate::remedy(), "INC000000000001"),
    ] {
        match &gate.sim {
            Sim::ServiceNow(sim) => sim.set_read_only(true),
            Sim::Remedy(sim) => sim.set_read_only(true),
        }
        let service = gate.service("WorkNotes=Yes\n");
        let outcome = pam::authenticate(&service, &Login::new("alice").rhost(RHOST).answer(ticket));
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        assert!(
            outcome.errors().is_empty(),
            "the user is not bothered: {:?}",
            outcome.errors()
        );
        assert!(gate.notes(ticket).is_empty());
        assert_eq!(gate.write_attempts(), 1, "a refusal is not retried");
        let allow = gate.audit().pop().expect("a record");
        assert_eq!(allow["decision"], "allow");
        assert_eq!(allow["work_note"], "failed");
        let why = allow["work_note_reason"].as_str().unwrap_or_default();
        assert!(
            why.contains("svc_pam_ticket may not write to the ticket (HTTP 403")
                && why.contains("give it write access"),
            "{why}"
        );
    }
}

/// A write that fails with a 5xx is retried once, and the verdict stands.
#[test]
fn a_failing_write_is_retried_once_and_changes_no_verdict() {
    for (gate, ticket) in [
        (Gate::servicenow(), "CHG0030001"),
        (Gate::remedy(), "CRQ000000000001"),
    ] {
        match &gate.sim {
            Sim::ServiceNow(sim) => sim.set_write_failure(Some(503)),
            Sim::Remedy(sim) => sim.set_write_failure(Some(503)),
        }
        let service = gate.service("WorkNotes=Yes\n");
        let outcome = pam::authenticate(&service, &Login::new("alice").rhost(RHOST).answer(ticket));
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        assert_eq!(gate.write_attempts(), 2, "one retry, no more");
        let allow = gate.audit().pop().expect("a record");
        assert_eq!(allow["work_note"], "failed");
        assert!(
            allow["work_note_reason"]
                .as_str()
                .is_some_and(|why| why.contains("server error HTTP 503")),
            "{allow}"
        );
    }
}

/// A write that hangs is cut off at WorkNoteTimeout (1 s here; the check's Timeout is 5 s),
/// its retry included, and the verdict stands.
#[test]
fn a_hanging_write_is_cut_off_at_work_note_timeout() {
    for (gate, ticket) in [
        (Gate::servicenow(), "INC0010001"),
        (Gate::remedy(), "INC000000000001"),
    ] {
        match &gate.sim {
            Sim::ServiceNow(sim) => sim.set_write_delay(Duration::from_secs(8)),
            Sim::Remedy(sim) => sim.set_write_delay(Duration::from_secs(8)),
        }
        let service = gate.service("WorkNotes=Yes\nWorkNoteTimeout=1\n");
        let started = Instant::now();
        let outcome = pam::authenticate(&service, &Login::new("alice").rhost(RHOST).answer(ticket));
        let took = started.elapsed();
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        assert!(took < Duration::from_millis(3500), "took {took:?}");
        let allow = gate.audit().pop().expect("a record");
        assert_eq!(allow["work_note"], "failed");
        let note_ms = allow["work_note_ms"].as_u64().expect("work_note_ms");
        assert!(
            (900..=1600).contains(&note_ms),
            "the write took {note_ms} ms"
        );
        assert!(
            allow["work_note_reason"].as_str().is_some_and(
                |why| why.contains("timed out") && why.contains("WorkNoteTimeout (1 s)")
            ),
            "{allow}"
        );
    }
}

/// Bypass, failsafe and refused logins write nothing, and their records say so; a session
/// without a verified ticket ends without a note or a request.
#[test]
fn nothing_is_written_for_bypass_failsafe_or_refused_logins() {
    let gate = Gate::servicenow();
    let hash = pam_ticket::bypass::BypassHash::create(b"letmein-2026", b"notes");
    let service = gate.service(&format!(
        "WorkNotes=Yes\nFailMode=safe\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\nFailsafeBypassCode=\"{hash}\"\n"
    ));
    let sim = gate.servicenow_sim();

    let bypass = session(
        &service,
        &Login::new("alice").rhost(RHOST).answer("letmein-2026"),
        Duration::ZERO,
    );
    assert_eq!(
        bypass.auth.code,
        PAM_SUCCESS,
        "{}",
        bypass.auth.transcript()
    );
    assert_eq!(bypass.close_session_code, Some(MODULE_IGNORED));

    let refused = pam::authenticate(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010002"),
    );
    assert_eq!(refused.code, PAM_MAXTRIES);

    sim.set_rate_limited(Some(600));
    let failsafe = session(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
        Duration::ZERO,
    );
    sim.set_rate_limited(None);
    assert_eq!(
        failsafe.auth.code,
        PAM_SUCCESS,
        "{}",
        failsafe.auth.transcript()
    );
    assert_eq!(failsafe.close_session_code, Some(MODULE_IGNORED));

    assert_eq!(gate.write_attempts(), 0);
    let records = gate.audit();
    let summary: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|record| {
            (
                record["decision"].as_str().unwrap_or_default(),
                record["work_note"].as_str().unwrap_or_default(),
                record["work_note_reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("bypass", "skipped", "bypass login: no verified ticket"),
            ("deny", "skipped", "login refused"),
            (
                "failsafe",
                "skipped",
                "failsafe login: the ticket was not verified"
            ),
        ]
    );
    assert!(!bypass.auth.env.contains_key("TICKET_SESSION"));
}

/// AskReason: the reason is exported, sanitised and audited; an empty answer is asked
/// again once, and a second bad answer ends the login with PAM_MAXTRIES.
#[test]
fn the_reason_is_asked_once_more_then_refused() {
    let gate = Gate::servicenow();
    let service = gate.service("AskReason=Yes\nReasonPrompt=\"Why: \"\n");
    let given = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("INC0010001")
            .answer("  ")
            .answer("disk full on /var"),
    );
    assert_eq!(given.code, PAM_SUCCESS, "{}", given.transcript());
    assert_eq!(given.prompts(), ["Ticket ID: ", "Why: ", "Why: "]);
    assert_eq!(
        given.errors(),
        ["A reason is required: say why you need this access"]
    );
    assert_eq!(
        given.env.get("TICKET_REASON").map(String::as_str),
        Some("disk full on /var")
    );
    assert_eq!(
        gate.audit().pop().expect("record")["access_reason"],
        "disk full on /var"
    );

    let long = "x".repeat(201);
    let refused = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("INC0010001")
            .answer(&long)
            .answer(""),
    );
    assert_eq!(refused.code, PAM_MAXTRIES, "{}", refused.transcript());
    assert_eq!(
        refused.errors(),
        [
            "A reason has at most 200 characters; this one has 201",
            "A reason is required: say why you need this access"
        ]
    );
    let record = gate.audit().pop().expect("record");
    assert_eq!(record["decision"], "deny");
    assert!(
        record["reason"]
            .as_str()
            .is_some_and(|why| why.starts_with("no acceptable reason given"))
    );
    // The reason never went into a query.
    assert!(
        gate.servicenow_sim()
            .received()
            .iter()
            .all(|query| !format!("{query:?}").contains("disk full"))
    );
}

/// Without WorkNotes, open and close return PAM_IGNORE and send nothing.
#[test]
fn sessions_without_notes_do_nothing() {
    let gate = Gate::servicenow();
    let service = gate.service("");
    let outcome = session(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
        Duration::ZERO,
    );
    assert_eq!(outcome.auth.code, PAM_SUCCESS);
    assert_eq!(outcome.open_session_code, Some(MODULE_IGNORED));
    assert_eq!(outcome.close_session_code, Some(MODULE_IGNORED));
    assert_eq!(gate.servicenow_sim().query_count(), 1);
    // Without notes the lookup is what it always was: no sys_id is read.
    let query = gate.servicenow_sim().received().remove(0);
    assert!(
        query
            .fields
            .as_deref()
            .is_some_and(|fields| fields.starts_with("number,state")),
        "{query:?}"
    );
    assert_eq!(gate.audit().len(), 1, "no session record");
    assert!(
        !gate.audit()[0]
            .as_object()
            .is_some_and(|record| record.contains_key("work_note"))
    );
}

/// What the start note adds to a granted login, measured in one run: logins with and
/// without WorkNotes, alternated, against the same simulator. The note is one request on
/// the connection the lookup opened, so it costs at most what the lookup's whole login
/// costs; that is the rule that keeps it in `pam_sm_authenticate` (the README reports the
/// figures).
#[test]
fn the_start_note_costs_at_most_one_request() {
    let gate = Gate::servicenow();
    let plain = gate.service("");
    let plain_config = fs::read_to_string(gate.dir.join("pam_ticket.conf")).expect("config");
    let with_notes_dir = gate.dir.join("with-notes");
    fs::create_dir_all(&with_notes_dir).expect("dir");
    let notes_config = with_notes_dir.join("pam_ticket.conf");
    write_root_only(&notes_config, &format!("{plain_config}WorkNotes=Yes\n"));
    let noted = stack(&with_notes_dir, &notes_config);
    let login = Login::new("alice").rhost(RHOST).answer("INC0010001");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        without.push(pam::authenticate(&plain, &login).elapsed);
        with.push(pam::authenticate(&noted, &login).elapsed);
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (without, with) = (median(&mut without), median(&mut with));
    let mut note_ms: Vec<u64> = gate
        .audit()
        .iter()
        .filter_map(|record| record["work_note_ms"].as_u64())
        .collect();
    note_ms.sort_unstable();
    let note = Duration::from_millis(note_ms[note_ms.len() / 2]);
    println!(
        "granted login, median of 15: without notes {without:?}, with notes {with:?} (ratio {:.2}); the note itself {note:?}",
        with.as_secs_f64() / without.as_secs_f64()
    );
    assert_eq!(gate.servicenow_sim().updates().len(), 15);
    assert!(
        note <= without,
        "the note ({note:?}) costs more than a whole login ({without:?})"
    );
}

/// Remedy: a token the server dropped between the lookup and the note (here while the
/// reason is asked) gets one new log-on and one more try: the write's one retry.
#[test]
fn remedy_renews_a_dropped_token_once_for_the_note() {
    let gate = Gate::remedy();
    let service = gate.service("WorkNotes=Yes\nAskReason=Yes\n");
    let sim = match &gate.sim {
        Sim::Remedy(sim) => sim.clone(),
        Sim::ServiceNow(_) => unreachable!("a Remedy gate"),
    };
    let expire = sim.clone();
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("INC000000000001")
            .answer("rotate the logs")
            .on_prompt(move |prompt| {
                if prompt == "Reason: " {
                    expire.expire_tokens();
                }
            }),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(gate.notes("INC000000000001").len(), 1);
    assert_eq!(sim.login_count(), 2, "one new log-on for the note");
    assert_eq!(
        gate.write_attempts(),
        2,
        "the refused try and the one retry"
    );
    assert_eq!(gate.audit().pop().expect("record")["work_note"], "written");
}

/// The session's environment (which sshd copies into the user's session) gets a random
/// handle and nothing else: no account material to guess a password against, nothing
/// about the login. The record stays on the gateway: 0600, root's, in a 0700 folder of
/// root's under CacheDirectory; files of sessions that never closed are removed after 30
/// days when a new record is kept.
#[test]
fn the_session_gets_only_a_handle_and_the_record_stays_root_only() {
    let gate = Gate::servicenow();
    let service = gate.service("WorkNotes=Yes\n");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(gate.sessions_dir())
        .expect("sessions folder");
    let stale = gate.sessions_dir().join("0123456789abcdef0123456789abcdef");
    let recent = gate.sessions_dir().join("fedcba9876543210fedcba9876543210");
    for (file, age_days) in [(&stale, 31), (&recent, 1)] {
        write_root_only(file, "{}");
        fs::File::options()
            .write(true)
            .open(file)
            .and_then(|opened| {
                opened.set_modified(SystemTime::now() - Duration::from_secs(age_days * 24 * 3600))
            })
            .expect("date the file");
    }

    let outcome = pam::authenticate(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(outcome.prompts(), ["Ticket ID: "]);
    assert!(outcome.errors().is_empty(), "{:?}", outcome.errors());
    let value = handle_of(&outcome);
    for material in [
        ACCOUNT_USER,
        ACCOUNT_PASSWORD,
        "alice",
        "INC0010001",
        "ServiceNow",
    ] {
        assert!(!value.contains(material), "{value} holds {material}");
    }

    let record_path = gate.sessions_dir().join(&value[3..]);
    let file = fs::symlink_metadata(&record_path).expect("the record file");
    assert!(file.is_file());
    assert_eq!((file.uid(), file.mode() & 0o7777), (0, 0o600));
    for folder in [gate.sessions_dir(), gate.cache_dir()] {
        let folder = fs::symlink_metadata(&folder).expect("folder");
        assert!(folder.is_dir());
        assert_eq!((folder.uid(), folder.mode() & 0o7777), (0, 0o700));
    }
    let text = fs::read_to_string(&record_path).expect("read the record");
    assert!(!text.contains(ACCOUNT_PASSWORD));
    let record: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(record["user"], "alice");
    assert_eq!(record["ticket"], "INC0010001");
    assert_eq!(record["system"], "ServiceNow");
    assert!(!stale.exists(), "a 31-day-old record is pruned");
    assert!(recent.exists(), "a day-old record is kept");

    assert_eq!(gate.notes("INC0010001").len(), 1, "the start note");
    let allow = gate.audit().pop().expect("a record");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["work_note"], "written");
}

/// A handle the module did not give out (a made-up one, the sealed record of older
/// versions, a path) stands for nothing: `pam_open_session` answers PAM_IGNORE, the
/// session's end writes no note and asks nothing, and the audit says why.
#[test]
fn a_forged_or_unknown_handle_opens_nothing_and_writes_no_note() {
    let gate = Gate::servicenow();
    gate.service("WorkNotes=Yes\n");
    let resume = session_only(&gate, "notes-forged");
    for (value, why) in [
        (
            "v2.00112233445566778899aabbccddeeff",
            "no session record for this handle",
        ),
        (
            "v1.eyJ0aWNrZXQiOiJJTkMwMDEwMDAxIiwidXNlciI6ImFsaWNlIn0.c2VhbA",
            "the session handle is not one of this module",
        ),
        (
            "v2.../../../token-cache/sessions/x",
            "the session handle is not one of this module",
        ),
    ] {
        let outcome = session(
            &resume,
            &Login::new("alice")
                .rhost(RHOST)
                .preset_env("TICKET_SESSION", value),
            Duration::ZERO,
        );
        assert_eq!(outcome.auth.code, PAM_SUCCESS, "pam_permit");
        assert_eq!(outcome.open_session_code, Some(MODULE_IGNORED), "{value}");
        assert_eq!(outcome.close_session_code, Some(MODULE_IGNORED), "{value}");
        assert!(outcome.auth.events.is_empty(), "{:?}", outcome.auth.events);
        let end = gate.audit().pop().expect("a record of the session's end");
        assert_eq!(end["decision"], "session_end", "{end}");
        assert_eq!(end["user"], "alice");
        assert_eq!(end["session_record"], "environment");
        assert_eq!(end["work_note"], "skipped");
        assert!(
            end["work_note_reason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with(why)),
            "{end}"
        );
        assert!(end.get("ticket").is_none_or(Value::is_null), "{end}");
    }
    assert_eq!(gate.write_attempts(), 0, "nothing written");
    assert_eq!(gate.servicenow_sim().query_count(), 0, "nothing asked");
}

/// The review's case: a handle planted by pam_env (as `user_readenv` would let a user do)
/// above a `[success=1 default=ignore]` line of the module. The module answers
/// PAM_IGNORE, so the line below it (here pam_deny) is not skipped.
#[test]
fn a_planted_handle_skips_no_session_module() {
    let gate = Gate::servicenow();
    gate.service("WorkNotes=Yes\n");
    let config_path = gate.dir.join("pam_ticket.conf");
    let env_conf = gate.dir.join("pam_env.conf");
    fs::write(
        &env_conf,
        "TICKET_SESSION DEFAULT=v2.00112233445566778899aabbccddeeff\n",
    )
    .expect("pam_env.conf");
    let line = pam::module_line(
        &pam::module_path(),
        &[format!("config={}", config_path.display())],
    );
    let service = PamService::with_text(
        &gate.dir.join("pam.d"),
        "notes-planted",
        &format!(
            "auth required {permit}\nsession required {env} readenv=0 conffile={conf}\nsession [success=1 default=ignore] {line}\nsession requisite {deny}\nsession required {permit}\n",
            permit = pam::system_module("pam_permit.so").display(),
            env = pam::system_module("pam_env.so").display(),
            conf = env_conf.display(),
            deny = pam::system_module("pam_deny.so").display(),
        ),
    );
    let outcome = session(&service, &Login::new("alice").rhost(RHOST), Duration::ZERO);
    assert_eq!(outcome.auth.code, PAM_SUCCESS);
    assert_eq!(
        outcome.open_session_code,
        Some(PAM_SESSION_ERR),
        "pam_deny below the module ran"
    );
    assert_eq!(gate.write_attempts(), 0, "nothing written");
    let end = gate.audit().pop().expect("a record of the session's end");
    assert_eq!(end["decision"], "session_end", "{end}");
    assert_eq!(end["work_note"], "skipped");
}

/// A record is used once: the session's end removes it, so the same handle in a later
/// session (replayed through the environment) finds nothing, writes nothing and opens
/// nothing.
#[test]
fn a_handle_is_used_once() {
    let gate = Gate::servicenow();
    let service = gate.service("WorkNotes=Yes\n");
    let opened = open_only(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
    );
    assert_eq!(
        opened.auth.code,
        PAM_SUCCESS,
        "{}",
        opened.auth.transcript()
    );
    assert_eq!(opened.open_session_code, Some(PAM_SUCCESS));
    let value = handle_of(&opened.auth);
    assert_eq!(gate.session_files(), [value[3..].to_string()]);

    let resume = session_only(&gate, "notes-test");
    let login = Login::new("alice")
        .rhost(RHOST)
        .preset_env("TICKET_SESSION", &value);
    let first = session(&resume, &login, Duration::ZERO);
    assert_eq!(first.open_session_code, Some(PAM_SUCCESS));
    assert_eq!(first.close_session_code, Some(PAM_SUCCESS));
    let notes = gate.notes("INC0010001");
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(notes[1].starts_with("pam_ticket: SSH session ended after "));
    let end = gate.audit().pop().expect("the end record");
    assert_eq!(end["decision"], "session_end");
    assert_eq!(end["ticket"], "INC0010001");
    assert_eq!(end["work_note"], "written");
    assert!(
        gate.session_files().is_empty(),
        "{:?}",
        gate.session_files()
    );

    let again = session(&resume, &login, Duration::ZERO);
    assert_eq!(again.open_session_code, Some(MODULE_IGNORED));
    assert_eq!(again.close_session_code, Some(MODULE_IGNORED));
    assert_eq!(gate.notes("INC0010001").len(), 2, "no third note");
    assert_eq!(gate.write_attempts(), 2);
    let replayed = gate.audit().pop().expect("the second end record");
    assert_eq!(replayed["decision"], "session_end");
    assert_eq!(replayed["work_note"], "skipped");
    assert!(
        replayed["work_note_reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("no session record for this handle")),
        "{replayed}"
    );
}

/// A handle of alice's session in bob's: refused (nothing opened, nothing written, the
/// audit names whose record it is), and left for alice's own session's end.
#[test]
fn a_record_of_another_user_is_refused_and_left_for_its_own() {
    let gate = Gate::servicenow();
    let value = alices_open_session(&gate);
    let resume = session_only(&gate, "notes-test");

    let bob = session(
        &resume,
        &Login::new("bob")
            .rhost(RHOST)
            .preset_env("TICKET_SESSION", &value),
        Duration::ZERO,
    );
    assert_eq!(bob.open_session_code, Some(MODULE_IGNORED));
    assert_eq!(bob.close_session_code, Some(MODULE_IGNORED));
    assert_eq!(gate.write_attempts(), 1, "the start note only");
    let end = gate.audit().pop().expect("bob's end record");
    assert_eq!(end["decision"], "session_end");
    assert_eq!(end["user"], "bob");
    assert_eq!(end["work_note"], "skipped");
    assert_eq!(
        end["work_note_reason"],
        "the session record names another user (alice)"
    );

    let alice = session(
        &resume,
        &Login::new("alice")
            .rhost(RHOST)
            .preset_env("TICKET_SESSION", &value),
        Duration::ZERO,
    );
    assert_eq!(alice.open_session_code, Some(PAM_SUCCESS));
    assert_eq!(alice.close_session_code, Some(PAM_SUCCESS));
    assert_eq!(gate.notes("INC0010001").len(), 2);
    assert_eq!(
        gate.audit().pop().expect("alice's end")["work_note"],
        "written"
    );
}

/// A handle already in the PAM environment when authentication starts (left by an earlier
/// module, the application, or pam_env) does not survive a login that kept no record of
/// its own: refused, bypassed, exempt. A granted login puts its own in its place.
#[test]
fn a_handle_set_before_authentication_does_not_outlive_a_login_that_kept_none() {
    let gate = Gate::servicenow();
    let hash = pam_ticket::bypass::BypassHash::create(b"letmein-2026", b"notes");
    let service = gate.service(&format!(
        "WorkNotes=Yes\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\nFailsafeBypassCode=\"{hash}\"\nExemptUsers=\"carol\"\n"
    ));
    // A real handle: alice's earlier session, still running.
    let earlier = open_only(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
    );
    let value = handle_of(&earlier.auth);

    for (user, answer, code, decision) in [
        ("alice", Some("INC0010002"), PAM_MAXTRIES, "deny"),
        ("alice", Some("letmein-2026"), PAM_SUCCESS, "bypass"),
        ("carol", None, pam::PAM_IGNORE, "exempt"),
    ] {
        let mut login = Login::new(user)
            .rhost(RHOST)
            .preset_env("TICKET_SESSION", &value);
        if let Some(answer) = answer {
            login = login.answer(answer);
        }
        let outcome = pam::authenticate(&service, &login);
        let expected = if code == pam::PAM_IGNORE {
            MODULE_IGNORED
        } else {
            code
        };
        assert_eq!(
            outcome.code,
            expected,
            "{decision}: {}",
            outcome.transcript()
        );
        assert!(
            !outcome.env.contains_key("TICKET_SESSION"),
            "{decision}: {:?}",
            outcome.env
        );
        if decision == "deny" {
            assert_eq!(outcome.errors().len(), 1, "{}", outcome.transcript());
        }
        assert_eq!(gate.audit().pop().expect("a record")["decision"], decision);
    }

    let granted = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("INC0010001")
            .preset_env("TICKET_SESSION", &value),
    );
    assert_eq!(granted.code, PAM_SUCCESS, "{}", granted.transcript());
    assert_ne!(handle_of(&granted), value);
    // The earlier session's record is untouched: its own end still finds it.
    assert_eq!(gate.session_files().len(), 2);
    assert_eq!(gate.write_attempts(), 2, "two start notes");
}

/// A NoteTemplate of one's own: placeholders, literal braces, a line break; the duration
/// is `-` in the start note.
#[test]
fn a_note_template_of_ones_own() {
    let gate = Gate::servicenow();
    let service = gate.service(
        "WorkNotes=Yes\nNoteTemplate=\"{ticket} by {user} from {rhost} for {duration}\\n{{no placeholder}} {reason}\"\n",
    );
    let outcome = session(
        &service,
        &Login::new("alice").rhost(RHOST).answer("CHG0030001"),
        Duration::from_millis(1100),
    );
    assert_eq!(
        outcome.close_session_code,
        Some(PAM_SUCCESS),
        "{}",
        outcome.auth.transcript()
    );
    let notes = gate.notes("CHG0030001");
    assert_eq!(notes.len(), 2);
    assert_eq!(
        notes[0],
        format!("{STARTED}\nCHG0030001 by alice from {RHOST} for -\n{{no placeholder}} -")
    );
    let (headline, body) = notes[1].split_once('\n').expect("two parts");
    let seconds = ended_seconds(headline);
    assert!(seconds >= 1, "{headline}");
    assert_eq!(
        body,
        format!(
            "CHG0030001 by alice from {RHOST} for 00:00:0{seconds} ({seconds} s)\n{{no placeholder}} -"
        )
    );
}

/// The end note is bounded like the start note: a hanging write holds the session's end
/// for WorkNoteTimeout at most, and the end record says it failed.
#[test]
fn a_hanging_end_note_is_cut_off_too() {
    let gate = Gate::servicenow();
    gate.servicenow_sim()
        .set_write_delay(Duration::from_secs(8));
    let service = gate.service("WorkNotes=Yes\nWorkNoteTimeout=1\n");
    let started = Instant::now();
    let outcome = session(
        &service,
        &Login::new("alice").rhost(RHOST).answer("INC0010001"),
        Duration::ZERO,
    );
    let took = started.elapsed();
    assert_eq!(outcome.auth.code, PAM_SUCCESS);
    assert_eq!(outcome.close_session_code, Some(PAM_SUCCESS));
    assert!(
        took < Duration::from_millis(4500),
        "took {took:?} for two notes of 1 s each"
    );
    let end = gate.audit().pop().expect("the end record");
    assert_eq!(end["decision"], "session_end");
    assert_eq!(end["work_note"], "failed");
    let elapsed = end["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!(
        (900..=1700).contains(&elapsed),
        "the end note took {elapsed} ms"
    );
}

/// AskReason after a bypass code: the reason is asked, exported and audited; no note.
#[test]
fn a_bypass_login_is_asked_for_its_reason_too() {
    let gate = Gate::servicenow();
    let hash = pam_ticket::bypass::BypassHash::create(b"letmein-2026", b"notes");
    let service = gate.service(&format!(
        "AskReason=Yes\nWorkNotes=Yes\nFailsafeBypassCode=\"{hash}\"\n"
    ));
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("letmein-2026")
            .answer("ticketing is down"),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(outcome.prompts(), ["Ticket ID: ", "Reason: "]);
    assert_eq!(
        outcome.env.get("TICKET_REASON").map(String::as_str),
        Some("ticketing is down")
    );
    let record = gate.audit().pop().expect("record");
    assert_eq!(record["decision"], "bypass");
    assert_eq!(record["access_reason"], "ticketing is down");
    assert_eq!(record["work_note"], "skipped");
    assert_eq!(gate.write_attempts(), 0);
}

/// Every ServiceNow ticket type gets its note on the table its lookup used (all extend
/// `task`, which has `work_notes`): a requested item's on sc_req_item.
#[test]
fn servicenow_notes_go_to_the_table_the_lookup_used() {
    let gate = Gate::servicenow();
    let service = gate.service("WorkNotes=Yes\nTicketTypes=\"Incident, Change, RequestItem\"\n");
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice").rhost(RHOST).answer("RITM0010001"),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    let updates = gate.servicenow_sim().updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].table, "sc_req_item");
    assert_eq!(updates[0].number, "RITM0010001");
    assert!(
        updates[0]
            .work_notes()
            .is_some_and(|note| note.starts_with(STARTED) && note.contains("Ticket: RITM0010001\n")),
        "{updates:?}"
    );
    let query = gate
        .servicenow_sim()
        .received()
        .into_iter()
        .find(|query| query.method == "GET")
        .expect("the lookup");
    assert_eq!(query.table, "sc_req_item");
}

/// Remedy work orders and problem investigations have no work-log mapping yet: the login
/// is let in, nothing is written, and the audit says why.
#[test]
fn remedy_work_orders_get_no_note_and_the_audit_says_why() {
    let gate = Gate::remedy();
    let service = gate.service("WorkNotes=Yes\nTicketTypes=\"Incident, Change, WorkOrder\"\n");
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice").rhost(RHOST).answer("WO0000000000001"),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(gate.write_attempts(), 0);
    let allow = gate.audit().pop().expect("a record");
    assert_eq!(allow["work_note"], "failed");
    assert_eq!(
        allow["work_note_reason"],
        "work notes are written to incidents and changes only, not to work order tickets"
    );
}

/// ServiceNow renders `[code]…[/code]` in a journal entry as HTML (its
/// glide.ui.security.allow_codetag is true by default): a reason that holds the tags
/// reaches the note with their brackets defused, so no markup lands in the ticket; the
/// session and the audit keep the reason as it was typed.
#[test]
fn a_reason_cannot_plant_markup_in_the_ticket() {
    let gate = Gate::servicenow();
    let service = gate.service("WorkNotes=Yes\nAskReason=Yes\nNoteTemplate=\"{reason}\"\n");
    let typed = "[code]<img src=x onerror=alert(1)>[/CODE] fix";
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("INC0010001")
            .answer(typed),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(outcome.prompts(), ["Ticket ID: ", "Reason: "]);
    assert_eq!(
        gate.notes("INC0010001"),
        [format!(
            "{STARTED}\n(code]<img src=x onerror=alert(1)>(/CODE] fix"
        )]
    );
    assert_eq!(
        outcome.env.get("TICKET_REASON").map(String::as_str),
        Some(typed)
    );
    let record = gate.audit().pop().expect("record");
    assert_eq!(record["access_reason"], typed);
    assert_eq!(record["work_note"], "written");
}

/// A tag cannot form where a value meets the template's own text either.
#[test]
fn a_code_tag_cannot_form_across_the_template_and_a_value() {
    let gate = Gate::servicenow();
    let service =
        gate.service("WorkNotes=Yes\nAskReason=Yes\nNoteTemplate=\"[{reason}] [{user}\"\n");
    let outcome = pam::authenticate(
        &service,
        &Login::new("alice")
            .rhost(RHOST)
            .answer("INC0010001")
            .answer("code]<img src=x onerror=alert(1)>"),
    );
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(
        gate.notes("INC0010001"),
        [format!(
            "{STARTED}\n(code]<img src=x onerror=alert(1)>] [alice"
        )]
    );
    assert_eq!(gate.audit().pop().expect("record")["work_note"], "written");
}

/// A value that is no handle of this module opens nothing, even while the configuration
/// is broken: no configuration is read for it, so a planted value cannot turn a broken
/// configuration into a failed session. A well-formed handle does read it, and a broken
/// configuration is then a service error, as everywhere.
#[test]
fn a_value_that_is_no_handle_reads_no_configuration() {
    let gate = Gate::servicenow();
    gate.service("WorkNotes=Yes\n");
    write_root_only(
        &gate.dir.join("pam_ticket.conf"),
        "TicketingSystem=\"ServiceNow\"\nNoSuchKey=1\n",
    );
    let resume = session_only(&gate, "notes-broken");
    for (value, open_code) in [
        ("v1.eyJ0aWNrZXQiOiJJTkMwMDEwMDAxIn0.c2VhbA", MODULE_IGNORED),
        ("v2.00112233445566778899aabbccddeeff", pam::PAM_SERVICE_ERR),
    ] {
        let outcome = open_only(
            &resume,
            &Login::new("alice")
                .rhost(RHOST)
                .preset_env("TICKET_SESSION", value),
        );
        assert_eq!(outcome.auth.code, PAM_SUCCESS, "pam_permit");
        assert_eq!(outcome.open_session_code, Some(open_code), "{value}");
    }
    assert_eq!(gate.write_attempts(), 0, "nothing written");
}

/// A handle of alice's is this login's only: the same user's handle in a session of
/// another service, or from another client address, opens nothing and ends nothing (the
/// record stays for its own session, which still gets its end note).
#[test]
fn a_handle_of_another_login_of_the_same_user_is_refused() {
    let gate = Gate::servicenow();
    let value = alices_open_session(&gate);
    for (name, rhost, differs) in [
        ("notes-other-service", RHOST, "service"),
        ("notes-test", "203.0.113.99", "remote host"),
    ] {
        let resume = session_only(&gate, name);
        let other = session(
            &resume,
            &Login::new("alice")
                .rhost(rhost)
                .preset_env("TICKET_SESSION", &value),
            Duration::ZERO,
        );
        assert_eq!(other.open_session_code, Some(MODULE_IGNORED), "{name}");
        assert_eq!(other.close_session_code, Some(MODULE_IGNORED), "{name}");
        let end = gate.audit().pop().expect("the end record");
        assert_eq!(end["work_note"], "skipped", "{end}");
        assert_eq!(
            end["work_note_reason"],
            format!("the session record is of another login of this user (its {differs} differs)")
        );
        assert_eq!(gate.write_attempts(), 1, "the start note only");
    }
    let own = session(
        &session_only(&gate, "notes-test"),
        &Login::new("alice")
            .rhost(RHOST)
            .preset_env("TICKET_SESSION", &value),
        Duration::ZERO,
    );
    assert_eq!(own.open_session_code, Some(PAM_SUCCESS));
    assert_eq!(own.close_session_code, Some(PAM_SUCCESS));
    assert_eq!(gate.notes("INC0010001").len(), 2);
}
