//! The ticket gate through the real libpam: the built `libpam_ticket.so` is loaded by
//! `pam_start_confdir` with a scripted conversation, against a ticketing-system simulator
//! over real HTTPS with certificates made at test time.
//!
//! The case list is one table (`CASES`) that runs against every simulated system; a
//! system contributes its simulator, its configuration lines and the IDs and labels that
//! the placeholders in the table stand for. Every case asserts the PAM code, what the user
//! saw, how many ticket queries the backend received, and the audit records. Each row is a
//! test of its own per system, `table::<system>::<row>` (see `case_table_tests!`).

use pam_ticket_testkit as support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde_json::Value;

use support::files::audit_records;
use support::http::Handler;
use support::https::{Fault, TestServer, refusing_port};
use support::pam::{
    self, Login, PAM_ABORT, PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_PERM_DENIED,
    PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome, PamService,
};
use support::pki::{ServerCert, TestPki};
use support::proxy::ConnectProxy;
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const UNAVAILABLE: &str =
    "Ticket validation is unavailable right now; try again later or use a failsafe bypass code";
const UNTRUSTED: &str = "Ticket validation is unavailable: the ticketing system's certificate could not be verified; contact your administrator";
const ACCOUNT_REFUSED: &str = "Ticket validation is unavailable: the ticketing system refused this gateway's account; contact your administrator";
const MISCONFIGURED: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";

/// A simulated ticketing system, as the shared case table needs it.
pub trait SimulatedSystem: Send + Sync {
    /// `TicketingSystem` value and audit `system` name.
    fn name(&self) -> &'static str;
    /// The simulator the HTTPS server drives.
    fn handler(self: Arc<Self>) -> Arc<dyn Handler>;
    /// Ticket queries received so far (logins and log-offs not counted).
    fn queries(&self) -> usize;
    /// Every request the simulator answered (queries, and logins and log-offs where the
    /// system has them).
    fn handled(&self) -> usize {
        self.queries()
    }
    /// Makes the simulator refuse the module's account from now on.
    fn reject_account(&self);
    /// The status and server text the audit names after `reject_account`.
    fn account_refused_status(&self) -> &'static str;
    /// Values for the `{placeholders}` of the case table.
    fn placeholders(&self) -> Vec<(&'static str, &'static str)>;
    /// Configuration lines beyond TicketingSystem/SystemURL/ConnectionAccountFile.
    fn extra_config(&self, _gate: &GateFiles) -> String {
        String::new()
    }
}

/// Paths a system's configuration may need.
pub struct GateFiles {
    pub dir: PathBuf,
}

struct ServiceNow {
    sim: ServiceNowSim,
}

impl SimulatedSystem for ServiceNow {
    fn name(&self) -> &'static str {
        "ServiceNow"
    }
    fn handler(self: Arc<Self>) -> Arc<dyn Handler> {
        Arc::new(SimHandler(self))
    }
    fn queries(&self) -> usize {
        self.sim.query_count()
    }
    fn reject_account(&self) {
        self.sim
            .set_credentials(ACCOUNT_USER, "a-password-that-changed");
    }
    fn account_refused_status(&self) -> &'static str {
        "HTTP 401: User Not Authenticated: Required to provide Auth information"
    }
    fn placeholders(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("{valid_incident}", "INC0010001"),
            ("{closed_incident}", "INC0010002"),
            ("{bobs_incident}", "INC0010003"),
            ("{unknown_incident}", "INC0099999"),
            ("{valid_change}", "CHG0030001"),
            ("{unapproved_change}", "CHG0030002"),
            ("{future_change}", "CHG0030003"),
            ("{past_change}", "CHG0030004"),
            ("{bobs_change}", "CHG0030005"),
            ("{startless_change}", "CHG0030006"),
            ("{change_states}", "Implement"),
            ("{unapproved_label}", "Requested"),
        ]
    }
}

/// Lets an `Arc<ServiceNow>` serve while the test keeps a handle for counting.
struct SimHandler(Arc<ServiceNow>);

impl Handler for SimHandler {
    fn handle(&self, request: &support::http::Request) -> support::http::Response {
        self.0.sim.handle(request)
    }
}

fn servicenow_system() -> Arc<dyn SimulatedSystem> {
    servicenow()
}

/// BMC Remedy through the AR REST simulator. Its token cache lives in the test's own
/// directory; every Gate starts with an empty one.
struct Remedy {
    sim: RemedySim,
}

impl SimulatedSystem for Remedy {
    fn name(&self) -> &'static str {
        "BMCRemedy"
    }
    fn handler(self: Arc<Self>) -> Arc<dyn Handler> {
        Arc::new(RemedyHandler(self))
    }
    fn queries(&self) -> usize {
        self.sim.query_count()
    }
    fn handled(&self) -> usize {
        self.sim.request_count()
    }
    fn reject_account(&self) {
        self.sim
            .set_credentials(ACCOUNT_USER, "a-password-that-changed");
    }
    fn account_refused_status(&self) -> &'static str {
        "HTTP 401: ARERR 623 Authentication failed"
    }
    fn placeholders(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("{valid_incident}", "INC000000000001"),
            ("{closed_incident}", "INC000000000002"),
            ("{bobs_incident}", "INC000000000003"),
            ("{unknown_incident}", "INC000000099999"),
            ("{valid_change}", "CRQ000000000001"),
            ("{unapproved_change}", "CRQ000000000002"),
            ("{future_change}", "CRQ000000000003"),
            ("{past_change}", "CRQ000000000004"),
            ("{bobs_change}", "CRQ000000000005"),
            ("{startless_change}", "CRQ000000000006"),
            ("{change_states}", "Implementation In Progress"),
            ("{unapproved_label}", "Requested"),
        ]
    }
    fn extra_config(&self, gate: &GateFiles) -> String {
        format!(
            "CacheDirectory=\"{}\"\n",
            gate.dir.join("token-cache").display()
        )
    }
}

struct RemedyHandler(Arc<Remedy>);

impl Handler for RemedyHandler {
    fn handle(&self, request: &support::http::Request) -> support::http::Response {
        self.0.sim.handle(request)
    }
}

fn remedy() -> Arc<Remedy> {
    Arc::new(Remedy {
        sim: RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD),
    })
}

fn remedy_system() -> Arc<dyn SimulatedSystem> {
    remedy()
}

/// Every simulated system the case table runs against; each call makes a fresh simulator.
const SYSTEMS: &[fn() -> Arc<dyn SimulatedSystem>] = &[servicenow_system, remedy_system];

/// One test's world: a PKI, a simulator behind an HTTPS server, an account file, an audit
/// file, and PAM service files in a private directory.
struct Gate {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    system: Arc<dyn SimulatedSystem>,
}

impl Gate {
    fn new(system: Arc<dyn SimulatedSystem>) -> Gate {
        Gate::with_cert(system, ServerCert::Good)
    }

    fn with_cert(system: Arc<dyn SimulatedSystem>, cert: ServerCert) -> Gate {
        let dir = TestDir::new(&format!("gate-{}", system.name()));
        let pki = TestPki::generate(&dir.join("pki"));
        let server = TestServer::start(pki.server_config(cert), Arc::clone(&system).handler());
        let gate = Gate {
            dir,
            pki,
            server,
            system,
        };
        gate.write_secret(
            "account.conf",
            &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        );
        gate
    }

    fn write_secret(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).expect("write secret file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        path
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// The configuration every case starts from, for a given SystemURL.
    fn base_config(&self, system_url: &str) -> String {
        let files = GateFiles {
            dir: self.dir.path().to_path_buf(),
        };
        format!(
            "# written by tests/ticket_gate.rs\nTicketingSystem=\"{}\"\nSystemURL=\"{system_url}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\n{}",
            self.system.name(),
            self.dir.join("account.conf").display(),
            self.pki.ca_pem_path().display(),
            self.audit_path().display(),
            self.system.extra_config(&files),
        )
    }

    fn expand(&self, text: &str) -> String {
        self.system
            .placeholders()
            .iter()
            .fold(text.to_string(), |text, (key, value)| {
                text.replace(key, value)
            })
    }

    /// Writes `pam_ticket.conf` (base + `extra`) and a service file for it.
    fn service(&self, extra: &str, args: &[&str]) -> PamService {
        self.service_for_url(&self.server.base_url(), extra, args)
    }

    fn service_for_url(&self, system_url: &str, extra: &str, args: &[&str]) -> PamService {
        let config_path = self.dir.join("pam_ticket.conf");
        let text = format!("{}{}", self.base_config(system_url), self.expand(extra));
        fs::write(&config_path, text).expect("write config");
        // It may hold bypass code hashes, which the module accepts only in a root-only file.
        fs::set_permissions(&config_path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        let mut arguments = vec![format!("config={}", config_path.display())];
        arguments.extend(args.iter().map(|arg| self.expand(arg)));
        PamService::new(
            &self.dir.join("pam.d"),
            "ticket-test",
            &pam::module_path(),
            &arguments,
        )
    }

    /// The pam.d argument that names the audit file for configuration errors: a
    /// configuration that fails its checks is never used, not even for its AuditLogFile.
    fn audit_argument(&self) -> String {
        format!("AuditLogFile={}", self.audit_path().display())
    }

    /// `service`, with the audit file also named on the pam.d line, as tests of
    /// configuration errors need.
    fn error_service(&self, extra: &str, args: &[&str]) -> PamService {
        self.error_service_for_url(&self.server.base_url(), extra, args)
    }

    fn error_service_for_url(&self, system_url: &str, extra: &str, args: &[&str]) -> PamService {
        let audit_argument = self.audit_argument();
        let mut arguments = args.to_vec();
        arguments.push(&audit_argument);
        self.service_for_url(system_url, extra, &arguments)
    }

    fn login(&self, service: &PamService, user: &str, answers: &[&str]) -> PamOutcome {
        let login = answers
            .iter()
            .fold(Login::new(user).rhost("192.0.2.10"), |login, answer| {
                login.answer(&self.expand(answer))
            });
        pam::authenticate(service, &login)
    }

    fn audit(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.audit_path()).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
    }

    fn decisions(&self) -> Vec<String> {
        self.audit()
            .iter()
            .map(|record| record["decision"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

/// One row of the shared case table. Placeholders (`{valid_incident}` …) are replaced by
/// each system's own IDs and labels.
struct Case {
    name: &'static str,
    /// Extra configuration lines.
    config: &'static str,
    user: &'static str,
    answers: &'static [&'static str],
    code: i32,
    /// The PAM_ERROR_MSG texts the user saw, in order.
    errors: &'static [&'static str],
    /// Ticket queries the backend received.
    queries: usize,
    /// Audit decisions, in order.
    decisions: &'static [&'static str],
}

const ALL_CHECKS: &str = "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New, In Progress\"\nValidateChangeTicketState=Yes\nAllowedChangeTicketStates=\"{change_states}\"\nValidateApprovalStatus=Yes\nAllowedApprovalStatuses=Approved\nValidateOperationTime=Yes\nValidateRequestingUser=Yes\nMaxAttempts=1\n";

const CASES: &[Case] = &[
    Case {
        name: "valid incident",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{valid_incident}"],
        code: PAM_SUCCESS,
        errors: &[],
        queries: 1,
        decisions: &["allow"],
    },
    Case {
        name: "valid change: approved, in window, right requester",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{valid_change}"],
        code: PAM_SUCCESS,
        errors: &[],
        queries: 1,
        decisions: &["allow"],
    },
    Case {
        name: "a ticket in a state that is not allowed",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{closed_incident}"],
        code: PAM_MAXTRIES,
        errors: &["Ticket {closed_incident} is Closed; allowed states: New, In Progress"],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "an unapproved change",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{unapproved_change}"],
        code: PAM_MAXTRIES,
        errors: &[
            "Change {unapproved_change} is not approved (approval: {unapproved_label}); allowed: Approved",
        ],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "a change whose window is over",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{past_change}"],
        code: PAM_MAXTRIES,
        errors: &["Change {past_change} is outside its planned window ("],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "a change whose window has not opened",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{future_change}"],
        code: PAM_MAXTRIES,
        errors: &["Change {future_change} is outside its planned window ("],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "a change without a planned start",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{startless_change}"],
        code: PAM_MAXTRIES,
        errors: &[
            "Change {startless_change} has no planned start date, so it has no planned window to work in",
        ],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "someone else's incident (bob's, opened by alice)",
        config: ALL_CHECKS,
        user: "carol",
        answers: &["{bobs_incident}"],
        code: PAM_MAXTRIES,
        errors: &["Ticket {bobs_incident} was not requested by carol"],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "someone else's change",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{bobs_change}"],
        code: PAM_MAXTRIES,
        errors: &["Change {bobs_change} was not requested by alice"],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "the opener of an incident counts as its requester too",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{bobs_incident}"],
        code: PAM_SUCCESS,
        errors: &[],
        queries: 1,
        decisions: &["allow"],
    },
    Case {
        name: "the requester of a PSM for SSH connection string is its vault user",
        config: ALL_CHECKS,
        user: "bob@root@db01.example.com",
        answers: &["{bobs_change}"],
        code: PAM_SUCCESS,
        errors: &[],
        queries: 1,
        decisions: &["allow"],
    },
    Case {
        name: "an unknown ticket",
        config: ALL_CHECKS,
        user: "alice",
        answers: &["{unknown_incident}"],
        code: PAM_MAXTRIES,
        errors: &["Ticket {unknown_incident} was not found"],
        queries: 1,
        decisions: &["deny"],
    },
    Case {
        name: "hostile answers never reach the backend",
        config: "MaxAttempts=7\n",
        user: "alice",
        answers: &[
            "{valid_incident}^NQnumberISNOTEMPTY",
            "{valid_incident}^ORnumber=INC0010002",
            "{valid_incident}\" OR 'Status' != \"x",
            "{valid_incident} OR 1=1",
            "{valid_incident}\u{1b}[2J",
            "INC0010001INC0010001INC0010001INC0010001INC0010001INC0010001INC0010001",
            "",
        ],
        code: PAM_MAXTRIES,
        errors: &[
            "A ticket ID may only contain letters, digits, '-' and '_'",
            "A ticket ID may only contain letters, digits, '-' and '_'",
            "A ticket ID may only contain letters, digits, '-' and '_'",
            "A ticket ID may only contain letters, digits, '-' and '_'",
            "A ticket ID may only contain letters, digits, '-' and '_'",
            "A ticket ID has at most 64 characters; this answer has 70",
            "No ticket ID was entered",
        ],
        queries: 0,
        decisions: &["deny", "deny", "deny", "deny", "deny", "deny", "deny"],
    },
    Case {
        name: "an ID of neither kind, or not in TicketFormatRegex, is refused before any request",
        config: "MaxAttempts=2\nTicketFormatRegex=\"INC[0-9]{7}|CHG[0-9]{7}|INC[0-9]{12}|CRQ[0-9]{12}\"\n",
        user: "alice",
        answers: &["PRB0040001", "INC12"],
        code: PAM_MAXTRIES,
        errors: &[
            "That is not a valid ticket ID format",
            "That is not a valid ticket ID format",
        ],
        queries: 0,
        decisions: &["deny", "deny"],
    },
    Case {
        name: "a wrong answer, then a right one",
        config: "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New, In Progress\"\n",
        user: "alice",
        answers: &["{closed_incident}", "{valid_incident}"],
        code: PAM_SUCCESS,
        errors: &["Ticket {closed_incident} is Closed; allowed states: New, In Progress"],
        queries: 2,
        decisions: &["deny", "allow"],
    },
    Case {
        name: "MaxAttempts wrong answers give exactly MaxAttempts prompts and PAM_MAXTRIES",
        config: "MaxAttempts=3\n",
        user: "alice",
        answers: &[
            "{unknown_incident}",
            "{unknown_incident}",
            "{unknown_incident}",
        ],
        code: PAM_MAXTRIES,
        errors: &[
            "Ticket {unknown_incident} was not found",
            "Ticket {unknown_incident} was not found",
            "Ticket {unknown_incident} was not found",
        ],
        queries: 3,
        decisions: &["deny", "deny", "deny"],
    },
    Case {
        name: "ValidateTicketNumber=No checks the format only",
        config: "ValidateTicketNumber=No\n",
        user: "alice",
        answers: &["{unknown_incident}"],
        code: PAM_SUCCESS,
        errors: &[],
        queries: 0,
        decisions: &["allow"],
    },
];

fn run_case(system: &Arc<dyn SimulatedSystem>, case: &Case) {
    let gate = Gate::new(Arc::clone(system));
    let service = gate.service(case.config, &[]);
    let outcome = gate.login(&service, case.user, case.answers);
    let context = format!(
        "{} / {}:\n{}\naudit: {:?}",
        system.name(),
        case.name,
        outcome.transcript(),
        gate.audit()
    );
    assert_eq!(
        pam::code_name(outcome.code),
        pam::code_name(case.code),
        "{context}"
    );
    assert_eq!(outcome.prompts().len(), case.answers.len(), "{context}");
    assert!(
        outcome
            .prompts()
            .iter()
            .all(|prompt| *prompt == "Ticket ID: "),
        "{context}"
    );
    assert_eq!(outcome.unanswered, 0, "{context}");
    let errors = outcome.errors();
    assert_eq!(errors.len(), case.errors.len(), "{context}");
    for (seen, expected) in errors.iter().zip(case.errors) {
        let expected = gate.expand(expected);
        assert!(
            seen.starts_with(&expected),
            "{context}\nexpected {expected:?}, saw {seen:?}"
        );
    }
    assert_eq!(system.queries(), case.queries, "{context}");
    assert_eq!(gate.decisions(), case.decisions, "{context}");
    for record in gate.audit() {
        assert_eq!(record["user"], case.user, "{context}");
        assert_eq!(record["rhost"], "192.0.2.10", "{context}");
        assert_eq!(record["service"], "ticket-test", "{context}");
        assert_eq!(record["system"], system.name(), "{context}");
        assert!(record["elapsed_ms"].is_u64(), "{context}");
        if record["decision"] == "deny" && case.queries == 0 {
            // A refused answer may be a mistyped bypass code: only its length is logged.
            assert!(record.get("ticket").is_none(), "{context}");
            assert!(record["answer_length"].is_u64(), "{context}");
        }
    }
    if case.code == PAM_SUCCESS {
        let last = case.answers.last().map(|answer| gate.expand(answer));
        assert_eq!(outcome.env.get("TICKET_ID"), last.as_ref(), "{context}");
        assert_eq!(
            outcome.env.get("TICKETING_SYSTEM").map(String::as_str),
            Some(system.name()),
            "{context}"
        );
        assert_eq!(
            gate.audit().last().map(|r| r["ticket"].clone()),
            last.map(Value::from),
            "{context}"
        );
    } else {
        assert!(!outcome.env.contains_key("TICKET_ID"), "{context}");
    }
}

/// Runs the row of [`CASES`] called `name` against a fresh simulator (which keeps the
/// request counts exact).
fn run_named_case(make_system: fn() -> Arc<dyn SimulatedSystem>, name: &str) {
    let case = CASES
        .iter()
        .find(|case| case.name == name)
        .unwrap_or_else(|| panic!("no row {name:?} in CASES"));
    run_case(&make_system(), case);
}

/// One `#[test]` per row of [`CASES`] and per system, `table::<system>::<row>`, so that
/// every failing row shows by name and one row runs alone:
/// `cargo test --test ticket_gate -- table::remedy::an_unknown_ticket --exact`.
macro_rules! case_table_tests {
    ($($test:ident => $row:literal,)*) => {
        /// The rows that have a test, for [`every_row_of_the_case_table_is_a_test`].
        const ROWS_WITH_A_TEST: &[&str] = &[$($row),*];

        mod table {
            case_table_tests!(@system servicenow, servicenow_system; $($test => $row,)*);
            case_table_tests!(@system remedy, remedy_system; $($test => $row,)*);
        }
    };
    (@system $system:ident, $make_system:ident; $($test:ident => $row:literal,)*) => {
        mod $system {
            $(
                #[test]
                fn $test() {
                    crate::run_named_case(crate::$make_system, $row);
                }
            )*
        }
    };
}

case_table_tests! {
    valid_incident => "valid incident",
    valid_change_approved_in_window_right_requester =>
        "valid change: approved, in window, right requester",
    a_ticket_in_a_state_that_is_not_allowed => "a ticket in a state that is not allowed",
    an_unapproved_change => "an unapproved change",
    a_change_whose_window_is_over => "a change whose window is over",
    a_change_whose_window_has_not_opened => "a change whose window has not opened",
    a_change_without_a_planned_start => "a change without a planned start",
    someone_elses_incident => "someone else's incident (bob's, opened by alice)",
    someone_elses_change => "someone else's change",
    the_opener_of_an_incident_counts_as_its_requester_too =>
        "the opener of an incident counts as its requester too",
    the_requester_of_a_psm_connection_string_is_its_vault_user =>
        "the requester of a PSM for SSH connection string is its vault user",
    an_unknown_ticket => "an unknown ticket",
    hostile_answers_never_reach_the_backend => "hostile answers never reach the backend",
    an_id_of_neither_kind_or_not_in_the_regex_is_refused_before_any_request =>
        "an ID of neither kind, or not in TicketFormatRegex, is refused before any request",
    a_wrong_answer_then_a_right_one => "a wrong answer, then a right one",
    max_attempts_wrong_answers_give_max_attempts_prompts_and_maxtries =>
        "MaxAttempts wrong answers give exactly MaxAttempts prompts and PAM_MAXTRIES",
    validate_ticket_number_no_checks_the_format_only =>
        "ValidateTicketNumber=No checks the format only",
}

/// A row added to [`CASES`] without a line in `case_table_tests!` would never run.
#[test]
fn every_row_of_the_case_table_is_a_test() {
    let mut rows: Vec<&str> = CASES.iter().map(|case| case.name).collect();
    let mut tested = ROWS_WITH_A_TEST.to_vec();
    rows.sort_unstable();
    tested.sort_unstable();
    let distinct_rows = {
        let mut distinct = rows.clone();
        distinct.dedup();
        distinct.len()
    };
    assert_eq!(
        distinct_rows,
        rows.len(),
        "two rows share a name: {rows:#?}"
    );
    assert_eq!(
        rows, tested,
        "rows of CASES and the tests of case_table_tests!"
    );
}

fn servicenow() -> Arc<ServiceNow> {
    Arc::new(ServiceNow {
        sim: ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD),
    })
}

fn assert_single_audit(gate: &Gate, decision: &str, reason_part: &str) -> Value {
    let audit = gate.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["decision"], decision, "{audit:?}");
    let reason = audit[0]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains(reason_part),
        "reason {reason:?} lacks {reason_part:?}"
    );
    audit[0].clone()
}

#[test]
fn bypass_code_lets_in_without_any_request_and_is_never_logged() {
    let code = "break-glass-7731-ocelot";
    let hash = pam_ticket::bypass::BypassHash::create(code.as_bytes(), b"\x5a\x11\x7e\x42");
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let service = gate.service(
        &format!(
            "FailsafeBypassCode=\"sha256:00:{},{hash}\"\n",
            "00".repeat(32)
        ),
        &[],
    );
    let outcome = gate.login(&service, "alice", &[code]);
    assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
    assert_eq!(
        outcome.infos(),
        vec!["Failsafe bypass code accepted; this login is audited."]
    );
    assert_eq!(gate.server.request_count(), 0);
    let record = assert_single_audit(&gate, "bypass", "entry 2");
    assert_eq!(record["bypass_entry"], 2);
    assert_eq!(
        outcome.env.get("TICKET_DECISION").map(String::as_str),
        Some("bypass")
    );
    let audit_text = fs::read_to_string(gate.audit_path()).expect("audit file");
    assert!(!audit_text.contains(code));
}

#[test]
fn a_wrong_bypass_code_is_refused_and_not_logged() {
    let hash = pam_ticket::bypass::BypassHash::create(b"right-code-123", b"salt");
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let service = gate.service(
        &format!("FailsafeBypassCode=\"{hash}\"\nMaxAttempts=1\n"),
        &[],
    );
    let outcome = gate.login(&service, "alice", &["wrong-code-123"]);
    assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
    assert_eq!(
        outcome.errors(),
        vec!["That ticket ID is not of a ticket type this gateway accepts"]
    );
    assert_eq!(gate.server.request_count(), 0);
    let record = assert_single_audit(&gate, "deny", "matches no identification regex");
    assert_eq!(record["answer_length"], 14);
    let audit_text = fs::read_to_string(gate.audit_path()).expect("audit file");
    assert!(!audit_text.contains("wrong-code"));
}

/// Each backend failure, in both fail modes, against every system: secure denies with the
/// unavailable message, safe lets in and audits failsafe. Both are decided within
/// Timeout + 1 s. (For Remedy the failing request is the log-on, which comes first.)
#[test]
fn backend_down_in_both_fail_modes() {
    for make_system in SYSTEMS {
        backend_down_in_both_fail_modes_against(make_system);
    }
}

fn backend_down_in_both_fail_modes_against(make_system: &fn() -> Arc<dyn SimulatedSystem>) {
    for (label, fault) in [
        ("refused", None),
        ("hang after request", Some(Fault::Hang)),
        ("hang before TLS", Some(Fault::HangBeforeTls)),
        (
            "drip",
            Some(Fault::Drip {
                byte_every: Duration::from_millis(700),
            }),
        ),
        (
            "503",
            Some(Fault::Status(
                503,
                "{\"error\":{\"message\":\"Service Unavailable\"}}".to_string(),
            )),
        ),
        ("close mid-response", Some(Fault::CloseMidResponse)),
    ] {
        for (mode, code, decision) in [
            ("secure", PAM_AUTHINFO_UNAVAIL, "unavailable"),
            ("safe", PAM_SUCCESS, "failsafe"),
        ] {
            let system = make_system();
            let gate = Gate::new(system.clone());
            let url = match &fault {
                None => format!("https://localhost:{}", refusing_port()),
                Some(fault) => {
                    gate.server.set_fault(fault.clone());
                    gate.server.base_url()
                }
            };
            let service = gate.service_for_url(&url, &format!("FailMode={mode}\n"), &["Timeout=2"]);
            let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
            let context = format!("{}/{label}/{mode}: {}", system.name(), outcome.transcript());
            assert_eq!(
                pam::code_name(outcome.code),
                pam::code_name(code),
                "{context}"
            );
            assert!(
                outcome.elapsed < Duration::from_secs(3),
                "{context}: took {:?}",
                outcome.elapsed
            );
            match mode {
                "secure" => assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{context}"),
                _ => assert_eq!(
                    outcome.infos(),
                    vec![
                        "Ticket validation is unavailable; access is granted under the failsafe policy and audited."
                    ],
                    "{context}"
                ),
            }
            // Only the drip fault lets the simulator answer (one byte at a time).
            let answered = usize::from(label == "drip");
            assert_eq!(system.handled(), answered, "{context}");
            let expected_requests = match label {
                "refused" | "hang before TLS" => 0,
                // One retry is allowed for a 5xx or a dropped connection.
                "503" | "close mid-response" => 2,
                _ => 1,
            };
            assert_eq!(gate.server.request_count(), expected_requests, "{context}");
            let record = assert_single_audit(&gate, decision, "");
            let reason = record["reason"].as_str().unwrap_or("");
            let expected_reason = match label {
                "refused" => "connection refused",
                "hang after request" | "hang before TLS" | "drip" => "timed out",
                "503" => "server error HTTP 503",
                _ => "connection reset or closed",
            };
            assert!(reason.contains(expected_reason), "{context}: {reason}");
        }
    }
}

/// A host name that does not resolve is an outage (the DNS server may be the part that
/// is down): FailMode decides. `.invalid` never resolves (RFC 6761).
#[test]
fn a_host_name_that_does_not_resolve_is_an_outage_in_both_fail_modes() {
    for (mode, code, decision) in [
        ("secure", PAM_AUTHINFO_UNAVAIL, "unavailable"),
        ("safe", PAM_SUCCESS, "failsafe"),
    ] {
        let system = servicenow();
        let gate = Gate::new(system.clone());
        let service = gate.service_for_url(
            "https://nonexistent-host.invalid",
            &format!("FailMode={mode}\n"),
            &[],
        );
        let outcome = gate.login(&service, "alice", &["INC0010001"]);
        assert_eq!(
            pam::code_name(outcome.code),
            pam::code_name(code),
            "{mode}: {}",
            outcome.transcript()
        );
        assert_eq!(gate.server.connection_count(), 0);
        assert_single_audit(&gate, decision, "host name not found");
    }
}

#[test]
fn a_503_then_an_answer_is_retried_once() {
    for make_system in SYSTEMS {
        let system = make_system();
        let gate = Gate::new(system.clone());
        gate.server.set_fault(Fault::FailFirst(1));
        let service = gate.service("", &[]);
        let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        // The failed request plus every request the system needs (Remedy: log-on, query).
        assert_eq!(gate.server.request_count(), 1 + system.handled());
        assert_eq!(system.queries(), 1);
        assert_single_audit(&gate, "allow", "ticket exists");
    }
}

#[test]
fn rate_limited_beyond_the_timeout_is_unavailable() {
    let system = servicenow();
    system.sim.set_rate_limited(Some(30));
    let gate = Gate::new(system.clone());
    let service = gate.service("", &[]);
    let outcome = gate.login(&service, "alice", &["INC0010001"]);
    assert_eq!(
        outcome.code,
        PAM_AUTHINFO_UNAVAIL,
        "{}",
        outcome.transcript()
    );
    assert_eq!(outcome.errors(), vec![UNAVAILABLE]);
    assert_eq!(gate.server.request_count(), 1);
    assert_single_audit(
        &gate,
        "unavailable",
        "rate limited (HTTP 429, Retry-After 30s)",
    );
}

/// A refusal of the module's own account is not an outage: whoever can lock the account
/// (systems lock it after failed logons) or let its password expire must not open a
/// safe-mode gateway to everyone. Denied in both fail modes, with what to fix in the
/// audit (and so in syslog, at err).
#[test]
fn a_refused_module_account_is_denied_in_both_fail_modes() {
    for (make_system, mode) in SYSTEMS
        .iter()
        .flat_map(|make_system| ["secure", "safe"].map(|mode| (make_system, mode)))
    {
        let system = make_system();
        system.reject_account();
        let gate = Gate::new(system.clone());
        let service = gate.service(&format!("FailMode={mode}\n"), &[]);
        let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
        let context = format!("{}/{mode}: {}", system.name(), outcome.transcript());
        assert_eq!(
            pam::code_name(outcome.code),
            "PAM_AUTHINFO_UNAVAIL",
            "{context}"
        );
        assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED], "{context}");
        assert!(outcome.infos().is_empty(), "{context}");
        assert!(!outcome.env.contains_key("TICKET_DECISION"), "{context}");
        // One request, refused and not retried. ServiceNow: the query; Remedy: the log-on,
        // so no query followed.
        assert_eq!(gate.server.request_count(), 1, "{context}");
        assert_eq!(system.handled(), 1, "{context}");
        assert_eq!(system.queries(), usize::from(system.name() == "ServiceNow"));
        let expected = format!(
            "unavailable (not an outage, so never failsafe): the module's account {ACCOUNT_USER} \
             was refused by {} ({}): check ConnectionAccountFile ({}) and the account's \
             password, lock state and roles",
            gate.server.base_url(),
            system.account_refused_status(),
            gate.dir.join("account.conf").display()
        );
        let record = assert_single_audit(&gate, "unavailable", &expected);
        assert_eq!(record["reason"], expected, "{context}");
        assert_eq!(record["ticket"], gate.expand("{valid_incident}"));
        let audit_text = fs::read_to_string(gate.audit_path()).expect("audit");
        assert!(!audit_text.contains(ACCOUNT_PASSWORD));
    }
}

/// A 403 (an account without the roles to read tickets, or one an administrator
/// disabled) is the module's account refused too, in both modes.
#[test]
fn a_403_for_the_module_account_is_denied_in_both_fail_modes() {
    for (make_system, mode) in SYSTEMS
        .iter()
        .flat_map(|make_system| ["secure", "safe"].map(|mode| (make_system, mode)))
    {
        let system = make_system();
        let gate = Gate::new(system.clone());
        gate.server.set_fault(Fault::Status(
            403,
            r#"{"error":{"message":"User Not Authorized","detail":"Failed API level ACL Validation"},"status":"failure"}"#
                .to_string(),
        ));
        let service = gate.service(&format!("FailMode={mode}\n"), &[]);
        let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
        let context = format!("{}/{mode}: {}", system.name(), outcome.transcript());
        assert_eq!(
            pam::code_name(outcome.code),
            "PAM_AUTHINFO_UNAVAIL",
            "{context}"
        );
        assert_eq!(outcome.errors(), vec![ACCOUNT_REFUSED], "{context}");
        assert_eq!(gate.server.request_count(), 1, "{context}");
        assert_eq!(system.handled(), 0, "{context}");
        assert_single_audit(
            &gate,
            "unavailable",
            &format!(
                "never failsafe): the module's account {ACCOUNT_USER} was refused by {} (HTTP 403",
                gate.server.base_url()
            ),
        );
    }
}

/// Every misbehaviour that is not an outage (something answered, but not with the API's
/// answer) is denied in both fail modes, against every system: PAM_AUTHINFO_UNAVAIL, the
/// unavailable message, an audit record that says it is never failsafe, and no retry.
/// On main each of these was let in as failsafe in safe mode. (For Remedy the failing
/// request is the log-on, which comes first.)
#[test]
fn answers_that_are_not_the_apis_are_denied_in_both_fail_modes() {
    for make_system in SYSTEMS {
        answers_that_are_not_the_apis_are_denied_against(make_system);
    }
}

fn answers_that_are_not_the_apis_are_denied_against(
    make_system: &fn() -> Arc<dyn SimulatedSystem>,
) {
    // (label, fault, what the audit reason names, requests the server parsed, of which
    // the simulator answered)
    let faults: [(&str, Fault, &str, usize, usize); 8] = [
        (
            "body over the size limit",
            Fault::OversizedBody,
            "response body larger than 1048576 bytes",
            1,
            0,
        ),
        (
            "header block over the limit",
            Fault::OversizedHeader,
            "response header larger than 65536 bytes",
            1,
            0,
        ),
        (
            "too many headers",
            Fault::TooManyHeaders,
            "HTTP protocol error: http parse resulted in too many headers",
            1,
            0,
        ),
        (
            "duplicate Content-Length",
            Fault::DuplicateContentLength,
            "HTTP protocol error: conflicting content-length headers",
            1,
            1,
        ),
        (
            "plain HTTP on the TLS port",
            Fault::PlainHttp,
            "TLS failure: received corrupt message of type InvalidContentType",
            0,
            0,
        ),
        (
            "garbage on the TLS port",
            Fault::Garbage,
            "TLS failure: received corrupt message of type InvalidContentType",
            0,
            0,
        ),
        (
            "TLS 1.0 only",
            Fault::OldTlsVersion,
            "TLS failure: peer is incompatible: ServerDoesNotSupportTls12Or13",
            0,
            0,
        ),
        (
            "TLS alert",
            Fault::TlsAlert,
            "TLS failure: received fatal alert: HandshakeFailure",
            0,
            0,
        ),
    ];
    for (label, fault, reason_part, requests, handled) in faults {
        for mode in ["secure", "safe"] {
            let system = make_system();
            let gate = Gate::new(system.clone());
            gate.server.set_fault(fault.clone());
            let service = gate.service(&format!("FailMode={mode}\n"), &["Timeout=2"]);
            let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
            let context = format!("{}/{label}/{mode}: {}", system.name(), outcome.transcript());
            assert_eq!(
                pam::code_name(outcome.code),
                "PAM_AUTHINFO_UNAVAIL",
                "{context}"
            );
            assert!(
                outcome.elapsed < Duration::from_secs(3),
                "{context}: took {:?}",
                outcome.elapsed
            );
            assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{context}");
            assert!(outcome.infos().is_empty(), "{context}");
            assert!(!outcome.env.contains_key("TICKET_DECISION"), "{context}");
            // Not an outage, so not retried: one connection, at most one request.
            assert_eq!(gate.server.connection_count(), 1, "{context}");
            assert_eq!(gate.server.request_count(), requests, "{context}");
            assert_eq!(system.handled(), handled, "{context}");
            // ServiceNow's one request is the query; Remedy's is the log-on.
            let queries = if system.name() == "ServiceNow" {
                handled
            } else {
                0
            };
            assert_eq!(system.queries(), queries, "{context}");
            let record = assert_single_audit(
                &gate,
                "unavailable",
                "unavailable (not an outage, so never failsafe): ",
            );
            let reason = record["reason"].as_str().unwrap_or("");
            assert!(reason.contains(reason_part), "{context}: {reason}");
            assert_eq!(record["ticket"], gate.expand("{valid_incident}"));
        }
    }
}

/// A SystemURL with a character that a URL cannot hold (here a leftover `<instance>`
/// placeholder) never sends a request and is never failsafe. On main it let every login
/// in as failsafe with zero requests sent. The configuration may refuse it when it loads
/// (PAM_SERVICE_ERR), or the HTTP client when it is used (denied): either way nothing is
/// sent and nobody is let in.
#[test]
fn a_url_that_cannot_be_sent_is_never_failsafe() {
    for make_system in SYSTEMS {
        for mode in ["secure", "safe"] {
            let system = make_system();
            let gate = Gate::new(system.clone());
            let url = format!("{}/<instance>", gate.server.base_url());
            let service = gate.service_for_url(&url, &format!("FailMode={mode}\n"), &[]);
            let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
            let context = format!("{}/{mode}: {}", system.name(), outcome.transcript());
            assert!(!outcome.env.contains_key("TICKET_DECISION"), "{context}");
            assert_eq!(gate.server.connection_count(), 0, "{context}");
            match pam::code_name(outcome.code) {
                "PAM_AUTHINFO_UNAVAIL" => {
                    assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{context}");
                    assert_single_audit(
                        &gate,
                        "unavailable",
                        "unavailable (not an outage, so never failsafe): request not sent, it is invalid: ",
                    );
                }
                "PAM_SERVICE_ERR" => {
                    assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
                }
                other => panic!("{context}: {other}"),
            }
        }
    }
}

/// A certificate that does not verify may be an attack: denied in both fail modes, and
/// never a failsafe login.
#[test]
fn untrusted_certificates_are_denied_in_both_fail_modes() {
    for (make_system, cert) in SYSTEMS.iter().flat_map(|make_system| {
        [
            ServerCert::UntrustedCa,
            ServerCert::WrongHost,
            ServerCert::Expired,
        ]
        .map(|cert| (make_system, cert))
    }) {
        for mode in ["secure", "safe"] {
            let system = make_system();
            let gate = Gate::with_cert(system.clone(), cert);
            let service = gate.service(&format!("FailMode={mode}\n"), &[]);
            let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
            let context = format!(
                "{}/{cert:?}/{mode}: {}",
                system.name(),
                outcome.transcript()
            );
            assert_eq!(
                pam::code_name(outcome.code),
                "PAM_AUTHINFO_UNAVAIL",
                "{context}"
            );
            assert_eq!(outcome.errors(), vec![UNTRUSTED], "{context}");
            assert_eq!(gate.server.request_count(), 0, "{context}");
            assert!(!outcome.env.contains_key("TICKET_ID"));
            assert_single_audit(&gate, "unavailable", "server certificate not trusted");
        }
    }
}

#[test]
fn a_check_through_a_connect_proxy() {
    for make_system in SYSTEMS {
        let system = make_system();
        let gate = Gate::new(system.clone());
        let proxy = ConnectProxy::start();
        let service = gate.service(&format!("HTTPSProxy=\"{}\"\n", proxy.url()), &[]);
        let outcome = gate.login(&service, "alice", &["{valid_incident}"]);
        assert_eq!(outcome.code, PAM_SUCCESS, "{}", outcome.transcript());
        // Every connection the server saw came through the proxy (Remedy's log-on and
        // query share one kept-alive tunnel).
        assert_eq!(proxy.connect_count(), 1);
        assert_eq!(gate.server.connection_count(), 1);
        assert_eq!(
            proxy.targets(),
            vec![format!("localhost:{}", gate.server.port())]
        );
        assert_eq!(system.queries(), 1);
        assert_single_audit(&gate, "allow", "ticket exists");
    }
}

/// A proxy that cannot be reached is an outage like the system itself: FailMode decides.
#[test]
fn a_dead_proxy_is_an_outage_in_both_fail_modes() {
    for (mode, code, decision) in [
        ("secure", PAM_AUTHINFO_UNAVAIL, "unavailable"),
        ("safe", PAM_SUCCESS, "failsafe"),
    ] {
        let system = servicenow();
        let gate = Gate::new(system.clone());
        let service = gate.service(
            &format!(
                "HTTPSProxy=\"http://127.0.0.1:{}\"\nFailMode={mode}\n",
                refusing_port()
            ),
            &[],
        );
        let outcome = gate.login(&service, "alice", &["INC0010001"]);
        assert_eq!(
            pam::code_name(outcome.code),
            pam::code_name(code),
            "{}",
            outcome.transcript()
        );
        assert_eq!(gate.server.request_count(), 0);
        assert_single_audit(&gate, decision, "connection refused");
    }
}

/// A proxy that answers but does not open the tunnel (407 for credentials it wants, 403
/// for a target it does not allow, 502 for a target it cannot reach) is not an outage:
/// ureq reports only the proxy's words, not the reason, so it is denied in both modes.
#[test]
fn a_proxy_that_refuses_the_tunnel_is_denied_in_both_fail_modes() {
    for (label, refusal) in [
        ("407", Some("407 Proxy Authentication Required")),
        ("403", Some("403 Forbidden")),
        ("502 for an unreachable target", None),
    ] {
        for mode in ["secure", "safe"] {
            let system = servicenow();
            let gate = Gate::new(system.clone());
            let proxy = ConnectProxy::start();
            proxy.refuse_with(refusal);
            let url = match refusal {
                Some(_) => gate.server.base_url(),
                None => format!("https://localhost:{}", refusing_port()),
            };
            let service = gate.service_for_url(
                &url,
                &format!("HTTPSProxy=\"{}\"\nFailMode={mode}\n", proxy.url()),
                &[],
            );
            let outcome = gate.login(&service, "alice", &["INC0010001"]);
            let context = format!("{label}/{mode}: {}", outcome.transcript());
            assert_eq!(
                pam::code_name(outcome.code),
                "PAM_AUTHINFO_UNAVAIL",
                "{context}"
            );
            assert_eq!(outcome.errors(), vec![UNAVAILABLE], "{context}");
            assert_eq!(proxy.connect_count(), 1, "{context}");
            assert_eq!(gate.server.request_count(), 0, "{context}");
            let expected_status = label.split(' ').next().unwrap_or(label);
            assert_single_audit(
                &gate,
                "unavailable",
                &format!(
                    "unavailable (not an outage, so never failsafe): proxy refused: proxy server responded {expected_status}"
                ),
            );
        }
    }
}

/// "Does not apply" is PAM_IGNORE, never PAM_SUCCESS: under `sufficient` a SUCCESS would
/// skip the rest of the stack (the pam_duo / google-authenticator bug).
#[test]
fn enter_ticketing_info_no_is_ignored_without_a_prompt() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let alone = gate.service("EnterTicketingInfo=No\n", &[]);
    let outcome = gate.login(&alone, "alice", &[]);
    // A stack whose only module ignores the request fails: libpam's "no decision".
    assert_eq!(outcome.code, PAM_PERM_DENIED, "{}", outcome.transcript());
    assert!(outcome.events.is_empty(), "{}", outcome.transcript());

    let stacked_text = format!(
        "auth sufficient {}\nauth required pam_deny.so\n",
        pam::module_line(
            &pam::module_path(),
            &[format!(
                "config={}",
                gate.dir.join("pam_ticket.conf").display()
            )]
        )
    );
    let stacked = PamService::with_text(&gate.dir.join("pam.d"), "ticket-stacked", &stacked_text);
    let outcome = gate.login(&stacked, "alice", &[]);
    assert_eq!(
        outcome.code,
        PAM_AUTH_ERR,
        "pam_deny must decide: {}",
        outcome.transcript()
    );
    assert!(outcome.events.is_empty());
    assert_eq!(gate.server.request_count(), 0);
    assert!(gate.audit().is_empty());
}

/// Enabling the check per service with a module argument, the way the portal enables it
/// per platform.
#[test]
fn module_arguments_override_the_file() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let service = gate.service(
        "EnterTicketingInfo=No\n",
        &[
            "EnterTicketingInfo=Yes",
            "ValidateIncidentTicketState=Yes",
            "AllowedIncidentTicketStates=New,In Progress",
            "MaxAttempts=1",
        ],
    );
    let outcome = gate.login(&service, "alice", &["INC0010002"]);
    assert_eq!(outcome.code, PAM_MAXTRIES, "{}", outcome.transcript());
    assert_eq!(
        outcome.errors(),
        vec!["Ticket INC0010002 is Closed; allowed states: New, In Progress"]
    );
    assert_eq!(system.queries(), 1);
    assert_single_audit(&gate, "deny", "is Closed");
}

#[test]
fn configuration_errors_are_service_errors_with_file_and_line() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "ValidateRequestngUser=Yes\n",
            &[],
            "pam_ticket.conf:8: unknown key ValidateRequestngUser (did you mean ValidateRequestingUser?)",
        ),
        (
            "Timeout=5\n",
            &[],
            "pam_ticket.conf:8: Timeout is set twice (first at ",
        ),
        (
            "FailMode=open\n",
            &[],
            "pam_ticket.conf:8: FailMode must be secure or safe",
        ),
        (
            "TicketFormatRegex=\"INC[0-9\"\n",
            &[],
            "pam_ticket.conf:8: TicketFormatRegex is not a valid regex",
        ),
        (
            "ValidateChangeTicketState=Yes\n",
            &[],
            "pam_ticket.conf:8: ValidateChangeTicketState is Yes but AllowedChangeTicketStates is empty",
        ),
        (
            "FailsafeBypassCode=\"letmein\"\n",
            &[],
            "pam_ticket.conf:8: FailsafeBypassCode entry 1 is not a hash",
        ),
        (
            "",
            &["MaxAtempts=2"],
            "pam.d/ticket-test argument 2: unknown key MaxAtempts",
        ),
        (
            "",
            &["nodebug"],
            "pam.d/ticket-test argument 2: unknown module argument \"nodebug\"",
        ),
    ];
    for (extra, args, expected) in cases {
        let system = servicenow();
        let gate = Gate::new(system.clone());
        let service = gate.error_service(extra, args);
        let outcome = gate.login(&service, "alice", &[]);
        let context = format!("{extra}{args:?}: {}", outcome.transcript());
        assert_eq!(pam::code_name(outcome.code), "PAM_SERVICE_ERR", "{context}");
        assert!(outcome.prompts().is_empty(), "{context}");
        assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
        assert_eq!(gate.server.request_count(), 0);
        let record = assert_single_audit(&gate, "error", expected);
        assert!(record.get("ticket").is_none());
        if extra.contains("letmein") {
            let audit_text = fs::read_to_string(gate.audit_path()).expect("audit");
            assert!(
                !audit_text.contains("letmein"),
                "a plain bypass code must not be logged"
            );
        }
    }
}

#[test]
fn an_http_system_url_is_a_configuration_error() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let plain = gate.server.base_url().replace("https://", "http://");
    let service = gate.error_service_for_url(&plain, "", &[]);
    let outcome = gate.login(&service, "alice", &[]);
    assert_eq!(outcome.code, PAM_SERVICE_ERR, "{}", outcome.transcript());
    assert_eq!(gate.server.request_count(), 0);
    assert_single_audit(&gate, "error", "pam_ticket.conf:3: SystemURL: \"http://");
}

#[test]
fn loosely_permissioned_or_missing_account_files_are_configuration_errors() {
    for (mode, expected) in [
        (
            0o640,
            "must not be readable or writable by group or others (mode is 0640",
        ),
        (0o604, "mode is 0604"),
    ] {
        let system = servicenow();
        let gate = Gate::new(system.clone());
        let account = gate.dir.join("account.conf");
        fs::set_permissions(&account, fs::Permissions::from_mode(mode)).expect("chmod");
        let service = gate.error_service("", &[]);
        let outcome = gate.login(&service, "alice", &[]);
        assert_eq!(outcome.code, PAM_SERVICE_ERR, "{}", outcome.transcript());
        assert_eq!(gate.server.request_count(), 0);
        assert_single_audit(&gate, "error", expected);
    }
    let system = servicenow();
    let gate = Gate::new(system.clone());
    fs::remove_file(gate.dir.join("account.conf")).expect("remove");
    let service = gate.error_service("", &[]);
    let outcome = gate.login(&service, "alice", &[]);
    assert_eq!(outcome.code, PAM_SERVICE_ERR);
    assert_single_audit(&gate, "error", "pam_ticket.conf:4: cannot open");
}

/// The simulator must really widen the match for an injected `^NQ`, or the hostile-input
/// cases above would prove nothing. This asks it directly, as an unguarded module would.
#[test]
fn the_simulator_really_widens_an_injected_query() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let bundle = pam_ticket::trust::load(&gate.pki.ca_pem_path()).expect("CA bundle");
    let client = pam_ticket::http::HttpClient::new(Some(&bundle), None, None).expect("client");
    let account = pam_ticket::config::Credentials {
        username: ACCOUNT_USER.to_string(),
        password: pam_ticket::secret::Secret::from_string(ACCOUNT_PASSWORD.to_string()),
        source: PathBuf::from("/dev/null"),
    };
    let authorization = pam_ticket::backend::servicenow::basic_authorization(&account);
    let count = |query: &str| {
        let url = format!(
            "{}/api/now/table/incident?sysparm_query={}&sysparm_fields=number",
            gate.server.base_url(),
            pam_ticket::http::percent_encode(query)
        );
        let response = client
            .send(
                pam_ticket::http::Method::Get,
                &url,
                &[("Authorization", &authorization)],
                &pam_ticket::http::Body::Empty,
                pam_ticket::http::Deadline::new(
                    &pam_ticket::clock::SystemClock,
                    Duration::from_secs(5),
                ),
            )
            .expect("answer");
        let document: Value = serde_json::from_slice(&response.body).expect("json");
        document["result"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(count("number=INC0010001"), 1);
    assert_eq!(count("number=INC0010001^NQnumberISNOTEMPTY"), 5);
    assert_eq!(count("number=INC0010001^ORnumber=INC0010002"), 2);
}

/// A panic inside the module becomes PAM_ABORT and never unwinds into the application.
/// Uses the module built with the `panic-probe` feature (`make probe`).
#[test]
fn a_panic_never_crosses_into_the_application() {
    let probe = std::env::var("PAM_TICKET_PANIC_SO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let mut path = pam::module_path();
            path.pop();
            path.pop();
            path.join("panic-probe/libpam_ticket.so")
        });
    assert!(
        probe.exists(),
        "{} is missing: run `make probe` (make test does) before cargo test",
        probe.display()
    );
    let system = servicenow();
    let gate = Gate::new(system.clone());
    gate.service("", &[]);
    let text = format!(
        "auth required {} config={} panic_probe\n",
        probe.display(),
        gate.dir.join("pam_ticket.conf").display()
    );
    let service = PamService::with_text(&gate.dir.join("pam.d"), "ticket-panic", &text);
    let outcome = gate.login(&service, "alice", &["INC0010001"]);
    assert_eq!(outcome.code, PAM_ABORT, "{}", outcome.transcript());
    assert!(outcome.events.is_empty());
    assert_eq!(gate.server.request_count(), 0);
    // The panic happens before the audit file is known to the flow.
    assert!(gate.audit().is_empty());
    // And the released module has no such switch: the same argument is refused.
    let text = format!(
        "{} {}\n",
        text.trim_end().replace(
            &probe.display().to_string(),
            &pam::module_path().display().to_string(),
        ),
        gate.audit_argument()
    );
    let service = PamService::with_text(&gate.dir.join("pam.d"), "ticket-noprobe", &text);
    let outcome = gate.login(&service, "alice", &[]);
    assert_eq!(outcome.code, PAM_SERVICE_ERR);
    assert_single_audit(&gate, "error", "unknown module argument \"panic_probe\"");
}

/// The shipped example configuration parses as it stands, once its paths point at files
/// that exist here.
#[test]
fn the_example_configuration_is_valid() {
    let system = servicenow();
    let gate = Gate::new(system);
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conf/pam_ticket.conf");
    let overrides = [
        format!(
            "ConnectionAccountFile={}",
            gate.dir.join("account.conf").display()
        ),
        format!("AuditLogFile={}", gate.audit_path().display()),
        format!("CAFile={}", gate.pki.ca_pem_path().display()),
    ];
    let mut arguments = vec![format!("config={}", example.display())];
    arguments.extend(overrides);
    let parsed = pam_ticket::config::parse_module_arguments(&arguments, "sshd").expect("arguments");
    let config = pam_ticket::config::load(&parsed).expect("conf/pam_ticket.conf is valid");
    assert_eq!(
        config.ticketing_system,
        Some(pam_ticket::config::TicketingSystem::ServiceNow)
    );
    assert_eq!(
        config.allowed_states(pam_ticket::ticket::TicketKind::Incident),
        Some(&["New".to_string(), "In Progress".to_string()][..])
    );
    assert!(config.validate_requesting_user && config.validate_operation_time);
    assert!(config.portal.is_none());
}

/// Files that decide security must not be changeable by anyone but root: the
/// configuration, the CA bundle; and a configuration holding bypass code hashes must not
/// be readable by others either. A configuration refused for any of these is used for
/// nothing: the AuditLogFile it names gets nothing (whoever could change the file would
/// otherwise choose where root writes), and the error goes to the audit file named on the
/// pam.d line (and to syslog: tests/syslog_and_exports.rs).
#[test]
fn files_others_could_change_or_read_are_configuration_errors() {
    let hash = pam_ticket::bypass::BypassHash::create(b"right-code-123", b"salt");
    let cases: [(&str, &str, u32, &str); 3] = [
        (
            "pam_ticket.conf",
            "",
            0o664,
            "cannot use the configuration: ",
        ),
        (
            "pki/ca.pem",
            "",
            0o666,
            "pam_ticket.conf:5: cannot use the CA bundle: ",
        ),
        (
            "pam_ticket.conf",
            "with bypass",
            0o644,
            "pam_ticket.conf:8: FailsafeBypassCode is set here, so ",
        ),
    ];
    for (file, variant, mode, expected) in cases {
        let system = servicenow();
        let gate = Gate::new(system.clone());
        let extra = if variant.is_empty() {
            String::new()
        } else {
            format!("FailsafeBypassCode=\"{hash}\"\n")
        };
        // The configuration names gate.audit_path(); the pam.d line names none, then
        // another file.
        let argument_audit = gate.dir.join("pam-d-audit.jsonl");
        let argument = format!("AuditLogFile={}", argument_audit.display());
        for arguments in [vec![], vec![argument.as_str()]] {
            let service = gate.service(&extra, &arguments);
            fs::set_permissions(gate.dir.join(file), fs::Permissions::from_mode(mode))
                .expect("chmod");
            let outcome = gate.login(&service, "alice", &["right-code-123"]);
            let context = format!("{file} {mode:o} {arguments:?}: {}", outcome.transcript());
            assert_eq!(pam::code_name(outcome.code), "PAM_SERVICE_ERR", "{context}");
            assert!(outcome.prompts().is_empty(), "{context}");
            assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
            assert_eq!(gate.server.request_count(), 0, "{context}");
            assert!(
                !gate.audit_path().exists(),
                "{context}: the refused configuration's AuditLogFile was written: {:?}",
                fs::read_to_string(gate.audit_path())
            );
        }
        let context = format!("{file} {mode:o}");
        let records = audit_records(&argument_audit);
        assert_eq!(records.len(), 1, "{context}: {records:?}");
        assert_eq!(records[0]["decision"], "error", "{context}");
        let reason = records[0]["reason"].as_str().unwrap_or("");
        assert!(reason.contains(expected), "{context}: {reason}");
        assert!(
            reason.contains(&format!("(mode is {mode:04o}")),
            "{context}: {reason}"
        );
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Runs a login on a thread of its own and waits at most `limit` for it: a module that
/// blocks (on a FIFO, say) fails the test instead of hanging it.
fn login_within(limit: Duration, service: &PamService, login: Login) -> PamOutcome {
    let (sender, receiver) = mpsc::channel();
    let service = service.clone();
    std::thread::spawn(move || {
        let _ = sender.send(pam::authenticate(&service, &login));
    });
    receiver
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the login was still running after {limit:?}"))
}

/// Whatever a FIFO's reader end holds (nothing, when no writer ever wrote).
fn drain(reader: &mut fs::File) -> Vec<u8> {
    let mut bytes = Vec::new();
    match reader.read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(error) => panic!("reading the FIFO: {error}"),
    }
    bytes
}

/// The refused configuration names a file root must never create (the issue's example
/// was /etc/ld.so.preload). Without `AuditLogFile=` on the pam.d line the error goes to
/// syslog alone, and the named file is not created.
#[test]
fn a_refused_configuration_never_chooses_where_root_writes() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let target = gate.dir.join("ld.so.preload");
    let config = gate.dir.join("pam_ticket.conf");
    for mode in [0o664, 0o646] {
        fs::write(
            &config,
            format!(
                "TicketingSystem=ServiceNow\nValidateTicketNumber=No\nAuditLogFile=\"{}\"\n",
                target.display()
            ),
        )
        .expect("write config");
        fs::set_permissions(&config, fs::Permissions::from_mode(mode)).expect("chmod");
        let service = PamService::new(
            &gate.dir.join("pam.d"),
            "ticket-refused",
            &pam::module_path(),
            &[format!("config={}", config.display())],
        );
        let outcome = gate.login(&service, "alice", &["INC0010001"]);
        let context = format!("{mode:o}: {}", outcome.transcript());
        assert_eq!(outcome.code, PAM_SERVICE_ERR, "{context}");
        assert!(outcome.prompts().is_empty(), "{context}");
        assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
        assert_eq!(gate.server.request_count(), 0, "{context}");
        assert!(
            !target.exists(),
            "{context}: root wrote where a refused configuration said: {:?}",
            fs::read_to_string(&target)
        );
        assert!(gate.audit().is_empty(), "{context}");
    }
}

/// A configuration path that is a FIFO is refused at once: it is opened without blocking,
/// found not to be a regular file, and never read again (a second, plain read would wait
/// for a writer for ever). Only the pam.d line's audit file, when there is one, gets the
/// error.
#[test]
fn a_configuration_that_is_a_fifo_is_refused_at_once() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let fifo = gate.dir.join("pam_ticket.conf.fifo");
    mkfifo(&fifo);
    let config_argument = format!("config={}", fifo.display());
    for with_audit_argument in [false, true] {
        let mut arguments = vec![config_argument.clone()];
        if with_audit_argument {
            arguments.push(gate.audit_argument());
        }
        let service = PamService::new(
            &gate.dir.join("pam.d"),
            "ticket-fifo",
            &pam::module_path(),
            &arguments,
        );
        let outcome = login_within(
            Duration::from_secs(10),
            &service,
            Login::new("alice").answer("INC0010001"),
        );
        let context = format!("{arguments:?}: {}", outcome.transcript());
        assert_eq!(outcome.code, PAM_SERVICE_ERR, "{context}");
        assert!(outcome.elapsed < Duration::from_secs(2), "{context}");
        assert!(outcome.prompts().is_empty(), "{context}");
        assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
        assert_eq!(gate.server.request_count(), 0, "{context}");
        if with_audit_argument {
            assert_single_audit(&gate, "error", "is not a regular file");
        } else {
            assert!(gate.audit().is_empty(), "{context}");
        }
    }
}

/// An audit file that is a FIFO never stalls a login and never receives a record, with or
/// without a process reading it, whether the login is decided or its configuration is
/// refused.
#[test]
fn an_audit_fifo_gets_nothing_and_never_stalls_the_login() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let fifo = gate.dir.join("audit.fifo");
    mkfifo(&fifo);
    let argument = format!("AuditLogFile={}", fifo.display());
    let good = gate.service("", &[&argument]);
    for with_reader in [true, false] {
        let mut reader = with_reader.then(|| {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .expect("open the FIFO's reader end")
        });
        let outcome = login_within(
            Duration::from_secs(10),
            &good,
            Login::new("alice").rhost("192.0.2.10").answer("INC0010001"),
        );
        let context = format!("reader {with_reader}: {}", outcome.transcript());
        assert_eq!(outcome.code, PAM_SUCCESS, "{context}");
        // Timeout is 3 s in the gate's configuration.
        assert!(outcome.elapsed < Duration::from_secs(4), "{context}");
        if let Some(reader) = reader.as_mut() {
            assert!(drain(reader).is_empty(), "{context}");
        }
    }
    assert_eq!(system.queries(), 2);

    // A configuration error, with the FIFO as the pam.d line's audit file.
    let reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO's reader end");
    let broken = gate.service("FailMode=open\n", &[&argument]);
    let outcome = login_within(Duration::from_secs(10), &broken, Login::new("alice"));
    assert_eq!(outcome.code, PAM_SERVICE_ERR, "{}", outcome.transcript());
    assert!(
        outcome.elapsed < Duration::from_secs(2),
        "{:?}",
        outcome.elapsed
    );
    let mut reader = reader;
    assert!(drain(&mut reader).is_empty());
    assert_eq!(system.queries(), 2);
}

/// A symbolic link planted as the audit file is never followed: its target stays empty.
#[test]
fn a_symlinked_audit_file_is_not_followed() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let target = gate.write_secret("target.jsonl", "");
    let link = gate.dir.join("audit-link.jsonl");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let argument = format!("AuditLogFile={}", link.display());
    for (extra, code) in [("", PAM_SUCCESS), ("FailMode=open\n", PAM_SERVICE_ERR)] {
        let service = gate.service(extra, &[&argument]);
        let outcome = gate.login(&service, "alice", &["INC0010001"]);
        assert_eq!(outcome.code, code, "{extra}: {}", outcome.transcript());
        assert_eq!(
            fs::read_to_string(&target).expect("target"),
            "",
            "{extra}: the link was followed"
        );
        assert!(
            fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink()
        );
    }
    assert_eq!(system.queries(), 1);
    assert!(gate.audit().is_empty());
}

/// The audit file's folder must be writable by root alone: a folder group or others may
/// write to (a sticky /tmp-like one included), or one owned by another user, gets no audit
/// file. The login itself is decided as usual.
#[test]
fn an_audit_folder_others_can_write_to_gets_no_audit_file() {
    for (mode, owner) in [
        (0o770, 0),
        (0o707, 0),
        (0o1777, 0),
        (0o755, 65534),
        (0o700, 0),
    ] {
        let system = servicenow();
        let gate = Gate::new(system.clone());
        let folder = gate.dir.join("audit-folder");
        fs::create_dir(&folder).expect("mkdir");
        fs::set_permissions(&folder, fs::Permissions::from_mode(mode)).expect("chmod");
        std::os::unix::fs::chown(&folder, Some(owner), None).expect("chown");
        let audit = folder.join("audit.jsonl");
        let argument = format!("AuditLogFile={}", audit.display());
        let trusted = mode & 0o022 == 0 && owner == 0;
        for (extra, code) in [("", PAM_SUCCESS), ("FailMode=open\n", PAM_SERVICE_ERR)] {
            let service = gate.service(extra, &[&argument]);
            let outcome = gate.login(&service, "alice", &["INC0010001"]);
            let context = format!("{mode:o} uid {owner} {extra}: {}", outcome.transcript());
            assert_eq!(outcome.code, code, "{context}");
        }
        let records = audit_records(&audit);
        if trusted {
            let decisions: Vec<&str> = records
                .iter()
                .map(|record| record["decision"].as_str().unwrap_or("?"))
                .collect();
            assert_eq!(decisions, ["allow", "error"], "{mode:o}");
            let file_mode = fs::metadata(&audit).expect("audit").permissions().mode();
            assert_eq!(file_mode & 0o777, 0o600);
        } else {
            assert!(
                !audit.exists(),
                "{mode:o} uid {owner}: written to {records:?}"
            );
        }
        assert_eq!(system.queries(), 1);
    }
}

/// A SystemURL the HTTP client would refuse (`invalid uri character`: a leftover
/// `<instance>` placeholder, a backtick, a tab …) is a configuration error with file:line
/// in both fail modes, and no request is sent. It must never pass for an outage, which
/// FailMode=safe would let in.
#[test]
fn a_system_url_the_client_would_refuse_is_a_configuration_error() {
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let base = gate.server.base_url();
    // `invalid uri character` is the HTTP client's own parser speaking; the rest are
    // characters it would send as they are, which RFC 3986 forbids unencoded.
    let client_refuses = "invalid uri character";
    let unencoded = "which a URL must not hold unencoded";
    let urls = [
        (format!("{base}/<instance>/"), client_refuses),
        (format!("{base}/api`"), client_refuses),
        (format!("{base}/a\tb"), client_refuses),
        (
            "https://<instance>.service-now.com".to_string(),
            client_refuses,
        ),
        (format!("{base}/{{x}}"), unencoded),
        (format!("{base}/a|b"), unencoded),
        (format!("{base}/a^b"), unencoded),
        (format!("{base}/caf\u{e9}"), unencoded),
        (format!("{base}/a\\\"b"), unencoded),
    ];
    for (url, expected) in &urls {
        for fail_mode in ["secure", "safe"] {
            let before = fs::read_to_string(gate.audit_path()).unwrap_or_default();
            let service = gate.error_service_for_url(url, &format!("FailMode={fail_mode}\n"), &[]);
            let outcome = gate.login(&service, "alice", &["INC0010001"]);
            let context = format!("{url:?} {fail_mode}: {}", outcome.transcript());
            assert_eq!(pam::code_name(outcome.code), "PAM_SERVICE_ERR", "{context}");
            assert!(outcome.prompts().is_empty(), "{context}");
            assert_eq!(outcome.errors(), vec![MISCONFIGURED], "{context}");
            assert_eq!(gate.server.request_count(), 0, "{context}");
            let after = fs::read_to_string(gate.audit_path()).unwrap_or_default();
            let new: Vec<Value> = after[before.len()..]
                .lines()
                .map(|line| serde_json::from_str(line).expect("JSON"))
                .collect();
            assert_eq!(new.len(), 1, "{context}: {new:?}");
            assert_eq!(new[0]["decision"], "error", "{context}");
            let reason = new[0]["reason"].as_str().unwrap_or("");
            assert!(
                reason.contains("pam_ticket.conf:3: SystemURL: ") && reason.contains(expected),
                "{context}: {reason}"
            );
        }
    }
}

/// Bypass code hashes on the pam.d line would be readable by every local user (pam.d files
/// are world-readable), open to offline guessing: a configuration error naming the
/// argument, and the hash is not repeated in the audit.
#[test]
fn a_bypass_code_as_a_module_argument_is_a_configuration_error() {
    let code = "right-code-123";
    let hash = pam_ticket::bypass::BypassHash::create(code.as_bytes(), b"salt");
    let system = servicenow();
    let gate = Gate::new(system.clone());
    let argument = format!("FailsafeBypassCode={hash}");
    let service = gate.error_service("", &[&argument]);
    let outcome = gate.login(&service, "alice", &[code]);
    assert_eq!(outcome.code, PAM_SERVICE_ERR, "{}", outcome.transcript());
    assert!(outcome.prompts().is_empty());
    assert_eq!(outcome.errors(), vec![MISCONFIGURED]);
    assert_eq!(gate.server.request_count(), 0);
    let record = assert_single_audit(
        &gate,
        "error",
        "pam.d/ticket-test argument 2: FailsafeBypassCode must not be a module argument",
    );
    let hash_hex = hash.rsplit(':').next().unwrap_or("");
    assert!(
        !record.to_string().contains(hash_hex),
        "the hash must not be repeated: {record}"
    );
}

/// The CA bundle is read once, when it is checked, and the HTTPS client trusts what that
/// read returned, never the path again. Here the bundle is swapped between the check and
/// the first request (at libpam's `login:` prompt, which comes after the configuration has
/// loaded and before the client is built) for another CA's, left world-writable as an
/// attacker's file would be, and the server presents a certificate from that other CA.
/// Reading the path again would trust the swapped file and let the login in.
#[test]
fn the_ca_bundle_trusted_is_the_one_that_was_checked() {
    let system = servicenow();
    let gate = Gate::with_cert(system.clone(), ServerCert::UntrustedCa);
    let service = gate.service("", &[]);
    let bundle = gate.pki.ca_pem_path();
    let other_ca = fs::read(gate.pki.untrusted_ca_pem_path()).expect("the other CA");
    let swaps = Arc::new(AtomicUsize::new(0));
    let login = Login::new("alice")
        .rhost("192.0.2.10")
        .answer("INC0010001")
        .user_from_prompt()
        .on_prompt({
            let bundle = bundle.clone();
            let swaps = Arc::clone(&swaps);
            move |prompt| {
                if prompt.starts_with("login") && swaps.fetch_add(1, Ordering::SeqCst) == 0 {
                    fs::write(&bundle, &other_ca).expect("swap the bundle");
                    fs::set_permissions(&bundle, fs::Permissions::from_mode(0o666)).expect("chmod");
                }
            }
        });
    let outcome = pam::authenticate(&service, &login);
    assert_eq!(swaps.load(Ordering::SeqCst), 1, "{}", outcome.transcript());
    assert_eq!(
        outcome.prompts()[0].trim_end(),
        "login:",
        "{}",
        outcome.transcript()
    );
    assert_eq!(
        pam::code_name(outcome.code),
        "PAM_AUTHINFO_UNAVAIL",
        "{}",
        outcome.transcript()
    );
    assert_eq!(outcome.errors(), vec![UNTRUSTED]);
    assert_eq!(gate.server.request_count(), 0);
    assert!(!outcome.env.contains_key("TICKET_ID"));
    assert_single_audit(&gate, "unavailable", "server certificate not trusted");
}
