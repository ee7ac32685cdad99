//! Work notes and the reason (WorkNotes, AskReason) through the real libpam, against the
//! ServiceNow and Remedy simulators over HTTPS: the exact text of both notes for each
//! ticket type, what went over the wire, the audit fields, and that no failure of a write
//! (refused, failing, hanging) changes a verdict or outlasts WorkNoteTimeout.
#![allow(clippy::disallowed_methods)] // real logins, timed and stamped with real time

use pam_ticket_testkit as support;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use support::files::{audit_records, write_root_only};
use support::https::TestServer;
use support::pam::{self, FullOutcome, Login, PAM_MAXTRIES, PAM_SUCCESS, PamService, Steps};
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

    fn service(&self, extra: &str) -> PamService {
        let config_path = self.dir.join("pam_ticket.conf");
        let system = match self.sim {
            Sim::ServiceNow(_) => "TicketingSystem=\"ServiceNow\"\n".to_string(),
            Sim::Remedy(_) => format!(
                "TicketingSystem=\"BMCRemedy\"\nCacheDirectory=\"{}\"\n",
                self.dir.join("token-cache").display()
            ),
        };
        let text = format!(
            "{system}SystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nMaxAttempts=1\nTimeout=5\n{extra}",
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

/// A session record the module did not seal (here planted by pam_env in the session
/// stack, as `user_readenv` would let a user do) writes nothing at the session's end and
/// is audited; one sealed with another account's password is no better.
#[test]
fn a_planted_session_record_writes_no_end_note() {
    let gate = Gate::servicenow();
    let hash = pam_ticket::bypass::BypassHash::create(b"letmein-2026", b"notes");
    gate.service(&format!("WorkNotes=Yes\nFailsafeBypassCode=\"{hash}\"\n"));
    let config_path = gate.dir.join("pam_ticket.conf");

    // A record for INC0010001, sealed with a password that is not the account's.
    let path = std::path::Path::new("/etc/other.conf");
    let mut other = pam_ticket::config::from_entries(
        path,
        pam_ticket::config::parse_entries(
            "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n",
            path,
        )
        .expect("entries"),
        Vec::new(),
    )
    .expect("config");
    other.connection_account = Some(
        pam_ticket::config::parse_account_text(
            &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"guessed\"\n"),
            path,
        )
        .expect("account"),
    );
    let facts = pam_ticket::notes::SessionFacts {
        ticket: "INC0010001".to_string(),
        kind: pam_ticket::ticket::TicketKind::Incident,
        record_id: Some("0000".to_string()),
        system: "ServiceNow".to_string(),
        user: "alice".to_string(),
        identity: "alice".to_string(),
        rhost: None,
        host: "gw".to_string(),
        service: None,
        target: None,
        checks: Vec::new(),
        reason: None,
        started: 0,
    };
    let forged = pam_ticket::notes::carrier::seal(&other, &facts).expect("sealed");
    let env_conf = gate.dir.join("pam_env.conf");
    fs::write(&env_conf, format!("TICKET_SESSION DEFAULT={forged}\n")).expect("pam_env.conf");
    let line = pam::module_line(
        &pam::module_path(),
        &[format!("config={}", config_path.display())],
    );
    let service = PamService::with_text(
        &gate.dir.join("pam.d"),
        "notes-planted",
        &format!(
            "auth required {line}\nsession required {} readenv=0 conffile={}\nsession optional {line}\n",
            pam::system_module("pam_env.so").display(),
            env_conf.display()
        ),
    );
    let outcome = session(
        &service,
        &Login::new("alice").rhost(RHOST).answer("letmein-2026"),
        Duration::ZERO,
    );
    assert_eq!(
        outcome.auth.code,
        PAM_SUCCESS,
        "{}",
        outcome.auth.transcript()
    );
    assert_eq!(gate.write_attempts(), 0, "nothing written");
    let end = gate.audit().pop().expect("a record of the session's end");
    assert_eq!(end["decision"], "session_end", "{end}");
    assert_eq!(end["session_record"], "environment");
    assert_eq!(end["work_note"], "skipped");
    assert!(
        end["work_note_reason"]
            .as_str()
            .is_some_and(|why| why.starts_with("the session record's seal does not verify")),
        "{end}"
    );
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
