//! Issue 13, items 4 to 6, through the real libpam against the simulators over HTTPS:
//! the ticket types beyond incidents and changes (ServiceNow requested items, catalog
//! tasks and problems; Remedy work orders and problem investigations), the check that a
//! ticket names this machine (ValidateConfigurationItem, TargetName, CIMatchShortName),
//! and what each costs in requests. Every test asserts the PAM code, what the user saw,
//! what the backend received, and what was audited.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use pam_ticket::clock::{Clock, SystemClock};
use serde_json::Value;

use support::http::Handler;
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_AUTHINFO_UNAVAIL, PAM_MAXTRIES, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome,
    PamService,
};
use support::pki::{ServerCert, TestPki};
use support::remedy::{self as remedy_sim, Endpoint, RemedySim};
use support::servicenow::{self as sn_sim, ReceivedQuery, ServiceNowSim};
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const TOOL: &str = env!("CARGO_BIN_EXE_pam-ticket");

enum Sim {
    ServiceNow(Arc<ServiceNowSim>),
    Remedy(Arc<RemedySim>),
}

/// One test's world: a simulator behind HTTPS, an account file, an audit file, PAM
/// service files, all in a private directory.
struct Rig {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    sim: Sim,
}

impl Rig {
    fn new(sim: Sim) -> Rig {
        let dir = TestDir::new("types-and-cis");
        let pki = TestPki::generate(&dir.join("pki"));
        let handler: Arc<dyn Handler> = match &sim {
            Sim::ServiceNow(sim) => Arc::clone(sim) as Arc<dyn Handler>,
            Sim::Remedy(sim) => Arc::clone(sim) as Arc<dyn Handler>,
        };
        let server = TestServer::start(pki.server_config(ServerCert::Good), handler);
        let rig = Rig {
            dir,
            pki,
            server,
            sim,
        };
        let account = rig.dir.join("account.conf");
        fs::write(
            &account,
            format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
        )
        .expect("account file");
        fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
        rig
    }

    /// ServiceNow with the default fixture and the tickets that name CIs.
    fn servicenow() -> Rig {
        let sim = ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD);
        for (table, record) in sn_sim::ci_tickets(SystemClock.now()) {
            sim.insert(table, record);
        }
        Rig::new(Sim::ServiceNow(Arc::new(sim)))
    }

    /// Remedy with the default fixture and the entries that name CIs.
    fn remedy() -> Rig {
        let sim = RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD);
        for (form, entry) in remedy_sim::ci_entries(SystemClock.now()) {
            sim.insert(form, entry);
        }
        Rig::new(Sim::Remedy(Arc::new(sim)))
    }

    fn sn(&self) -> &ServiceNowSim {
        match &self.sim {
            Sim::ServiceNow(sim) => sim,
            Sim::Remedy(_) => panic!("not a ServiceNow rig"),
        }
    }

    fn rm(&self) -> &RemedySim {
        match &self.sim {
            Sim::Remedy(sim) => sim,
            Sim::ServiceNow(_) => panic!("not a Remedy rig"),
        }
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    fn config_text(&self, extra: &str) -> String {
        let (system, more) = match self.sim {
            Sim::ServiceNow(_) => ("ServiceNow", String::new()),
            Sim::Remedy(_) => (
                "BMCRemedy",
                format!(
                    "CacheDirectory=\"{}\"\n",
                    self.dir.join("token-cache").display()
                ),
            ),
        };
        format!(
            "TicketingSystem=\"{system}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"5\"\nMaxAttempts=1\n{more}{extra}",
            self.server.base_url(),
            self.dir.join("account.conf").display(),
            self.pki.ca_pem_path().display(),
            self.audit_path().display(),
        )
    }

    fn config_path(&self, extra: &str) -> PathBuf {
        let path = self.dir.join("pam_ticket.conf");
        fs::write(&path, self.config_text(extra)).expect("config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    /// A service whose configuration is the base plus `extra`; the audit file is named on
    /// the pam.d line too, so that a configuration error is audited.
    fn service(&self, extra: &str) -> PamService {
        let path = self.config_path(extra);
        PamService::new(
            &self.dir.join("pam.d"),
            "types-test",
            &pam::module_path(),
            &[
                format!("config={}", path.display()),
                format!("AuditLogFile={}", self.audit_path().display()),
            ],
        )
    }

    /// One login with one answer; the audit file and the simulator's records start empty.
    fn login(&self, service: &PamService, user: &str, answer: &str) -> PamOutcome {
        let _ = fs::remove_file(self.audit_path());
        match &self.sim {
            Sim::ServiceNow(sim) => sim.clear_received(),
            Sim::Remedy(sim) => sim.clear_received(),
        }
        pam::authenticate(
            service,
            &Login::new(user).rhost("192.0.2.10").answer(answer),
        )
    }

    fn audit(&self) -> Vec<Value> {
        fs::read_to_string(self.audit_path())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect()
    }

    /// The one audit record of the last login.
    fn record(&self) -> Value {
        let audit = self.audit();
        assert_eq!(audit.len(), 1, "{audit:?}");
        audit[0].clone()
    }

    /// Entry queries (not logins or log-offs) the Remedy simulator received.
    fn remedy_queries(&self) -> Vec<remedy_sim::Received> {
        self.rm()
            .received()
            .into_iter()
            .filter(|received| received.endpoint == Endpoint::Query)
            .collect()
    }
}

/// `pam-ticket check --config <config>`: its exit code and what it printed.
fn pam_ticket_check(config: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(TOOL)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("run pam-ticket check");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("utf-8"),
    )
}

/// Asserts an allowed login: PAM_SUCCESS, nothing shown as an error, one `allow` record
/// of the ticket and type.
fn assert_allowed(rig: &Rig, outcome: &PamOutcome, ticket: &str, ticket_type: &str) -> Value {
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_SUCCESS, "{context}");
    assert!(outcome.errors().is_empty(), "{context}");
    let record = rig.record();
    assert_eq!(record["decision"], "allow", "{record}");
    assert_eq!(record["ticket"], ticket, "{record}");
    assert_eq!(record["type"], ticket_type, "{record}");
    record
}

/// Asserts a refused login: PAM_MAXTRIES (one attempt), exactly `message` shown, one
/// `deny` record with that reason and the failed check.
fn assert_refused(
    rig: &Rig,
    outcome: &PamOutcome,
    message: &str,
    check: &str,
    ticket_type: &str,
) -> Value {
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_MAXTRIES, "{context}");
    assert_eq!(outcome.errors(), vec![message], "{context}");
    let record = rig.record();
    assert_eq!(record["decision"], "deny", "{record}");
    assert_eq!(record["reason"], message, "{record}");
    assert_eq!(record["check"], check, "{record}");
    assert_eq!(record["type"], ticket_type, "{record}");
    record
}

/// The one ServiceNow query of a login, on `table`.
fn one_query(rig: &Rig, table: &str) -> ReceivedQuery {
    let received = rig.sn().received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].table, table, "{received:?}");
    received[0].clone()
}

/// Every ticket type of each system. Only incidents and changes are accepted unless
/// TicketTypes lists more, so each test of the other types lists them; what a
/// configuration without TicketTypes does with them is tested at the end of this file.
const SERVICENOW_TYPES: &str =
    "TicketTypes=\"Incident, Change, RequestItem, CatalogTask, Problem\"\n";
const REMEDY_TYPES: &str = "TicketTypes=\"Incident, Change, WorkOrder, ProblemInvestigation\"\n";

const REQUEST_ITEM_CHECKS: &str = "ValidateRequestItemTicketState=Yes\nAllowedRequestItemTicketStates=\"Open, Work in Progress\"\nValidateRequestItemApprovalStatus=Yes\nAllowedRequestItemApprovalStatuses=Approved\nValidateRequestingUser=Yes\n";

#[test]
fn servicenow_requested_items_valid_closed_unapproved_and_whose() {
    let rig = Rig::servicenow();
    let service = rig.service(&format!("{SERVICENOW_TYPES}{REQUEST_ITEM_CHECKS}"));

    let outcome = rig.login(&service, "alice", "RITM0010001");
    let record = assert_allowed(&rig, &outcome, "RITM0010001", "request_item");
    assert_eq!(
        record["reason"],
        "ticket exists; passed state, approval, requester"
    );
    let query = one_query(&rig, "sc_req_item");
    assert_eq!(query.sysparm_query.as_deref(), Some("number=RITM0010001"));
    assert_eq!(
        query.fields.as_deref(),
        Some("number,state,approval,requested_for.user_name,opened_by.user_name")
    );

    // The opener counts as a requester too.
    let outcome = rig.login(&service, "carol", "RITM0010001");
    assert_allowed(&rig, &outcome, "RITM0010001", "request_item");

    let outcome = rig.login(&service, "alice", "RITM0010002");
    assert_refused(
        &rig,
        &outcome,
        "Requested item RITM0010002 is Closed Complete; allowed states: Open, Work in Progress",
        "state",
        "request_item",
    );
    assert_eq!(rig.sn().query_count(), 1);

    let outcome = rig.login(&service, "alice", "RITM0010003");
    assert_refused(
        &rig,
        &outcome,
        "Requested item RITM0010003 is not approved (approval: Requested); allowed: Approved",
        "approval",
        "request_item",
    );

    let outcome = rig.login(&service, "bob", "RITM0010001");
    assert_refused(
        &rig,
        &outcome,
        "Requested item RITM0010001 was not requested by bob",
        "requester",
        "request_item",
    );
}

#[test]
fn servicenow_catalog_tasks_take_their_requester_from_the_requested_item() {
    let rig = Rig::servicenow();
    let service = rig.service(&format!(
        "{SERVICENOW_TYPES}ValidateCatalogTaskTicketState=Yes\nAllowedCatalogTaskTicketStates=\"Open, Work in Progress\"\nValidateRequestingUser=Yes\n"
    ));
    // alice is the requested item's requested_for; carol opened the task.
    for user in ["alice", "carol"] {
        let outcome = rig.login(&service, user, "SCTASK0010001");
        assert_allowed(&rig, &outcome, "SCTASK0010001", "catalog_task");
    }
    let query = one_query(&rig, "sc_task");
    assert_eq!(query.sysparm_query.as_deref(), Some("number=SCTASK0010001"));
    assert_eq!(
        query.fields.as_deref(),
        Some("number,state,request_item.requested_for.user_name,opened_by.user_name")
    );

    let outcome = rig.login(&service, "bob", "SCTASK0010001");
    assert_refused(
        &rig,
        &outcome,
        "Catalog task SCTASK0010001 was not requested by bob",
        "requester",
        "catalog_task",
    );
    let outcome = rig.login(&service, "alice", "SCTASK0010002");
    assert_refused(
        &rig,
        &outcome,
        "Catalog task SCTASK0010002 is Closed Complete; allowed states: Open, Work in Progress",
        "state",
        "catalog_task",
    );
}

#[test]
fn servicenow_problems_valid_and_closed() {
    let rig = Rig::servicenow();
    let service = rig.service(&format!(
        "{SERVICENOW_TYPES}ValidateProblemTicketState=Yes\nAllowedProblemTicketStates=\"Assess, Root Cause Analysis, Fix in Progress\"\n"
    ));
    let outcome = rig.login(&service, "alice", "PRB0010001");
    assert_allowed(&rig, &outcome, "PRB0010001", "problem");
    assert_eq!(
        one_query(&rig, "problem").sysparm_query.as_deref(),
        Some("number=PRB0010001")
    );
    let outcome = rig.login(&service, "alice", "PRB0010002");
    assert_refused(
        &rig,
        &outcome,
        "Problem PRB0010002 is Closed; allowed states: Assess, Root Cause Analysis, Fix in Progress",
        "state",
        "problem",
    );
}

#[test]
fn the_first_identification_regex_that_matches_decides_the_type() {
    let rig = Rig::servicenow();
    // Both the incident and the problem regex match INC0010001: incidents come first.
    let service = rig.service(&format!(
        "{SERVICENOW_TYPES}ProblemTicketIdentification=\"^(PRB|INC)[0-9]{{7,}}$\"\n"
    ));
    let outcome = rig.login(&service, "alice", "INC0010001");
    assert_allowed(&rig, &outcome, "INC0010001", "incident");
    one_query(&rig, "incident");
    // PRB0010001 matches only the problem regex.
    let outcome = rig.login(&service, "alice", "PRB0010001");
    assert_allowed(&rig, &outcome, "PRB0010001", "problem");
    one_query(&rig, "problem");
    // An ID of no type is refused before any request.
    let outcome = rig.login(&service, "alice", "WO0000000000001");
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_MAXTRIES, "{context}");
    assert_eq!(
        outcome.errors(),
        vec!["That ticket ID is not of a ticket type this gateway accepts"]
    );
    assert_eq!(rig.sn().query_count(), 0);
    let record = rig.record();
    assert_eq!(record["decision"], "deny");
    assert_eq!(
        record["reason"],
        "answer matches no identification regex of the types accepted (TicketTypes)"
    );
}

#[test]
fn remedy_work_orders_valid_and_closed() {
    let rig = Rig::remedy();
    let service = rig.service(&format!(
        "{REMEDY_TYPES}ValidateWorkOrderTicketState=Yes\nAllowedWorkOrderTicketStates=\"Assigned, In Progress\"\nValidateRequestingUser=Yes\n"
    ));
    let outcome = rig.login(&service, "alice", "WO0000000000001");
    assert_allowed(&rig, &outcome, "WO0000000000001", "work_order");
    let queries = rig.remedy_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0].form.as_deref(), Some("WOI:WorkOrder"));
    assert_eq!(
        queries[0].q.as_deref(),
        Some("'Work Order ID' = \"WO0000000000001\"")
    );
    assert_eq!(
        queries[0].fields.as_deref(),
        Some("values(Work Order ID,Status,Customer Login ID,Submitter)")
    );
    let outcome = rig.login(&service, "alice", "WO0000000000002");
    assert_refused(
        &rig,
        &outcome,
        "Work order WO0000000000002 is Closed; allowed states: Assigned, In Progress",
        "state",
        "work_order",
    );
    let outcome = rig.login(&service, "bob", "WO0000000000001");
    assert_refused(
        &rig,
        &outcome,
        "Work order WO0000000000001 was not requested by bob",
        "requester",
        "work_order",
    );
}

#[test]
fn remedy_problem_investigations_valid_and_closed() {
    let rig = Rig::remedy();
    let service = rig.service(&format!(
        "{REMEDY_TYPES}ValidateProblemInvestigationTicketState=Yes\nAllowedProblemInvestigationTicketStates=\"Under Investigation\"\n"
    ));
    let outcome = rig.login(&service, "alice", "PBI000000000001");
    assert_allowed(&rig, &outcome, "PBI000000000001", "problem_investigation");
    let queries = rig.remedy_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(
        queries[0].form.as_deref(),
        Some("PBM:Problem Investigation")
    );
    assert_eq!(
        queries[0].q.as_deref(),
        Some("'Problem Investigation ID' = \"PBI000000000001\"")
    );
    let outcome = rig.login(&service, "alice", "PBI000000000002");
    assert_refused(
        &rig,
        &outcome,
        "Problem investigation PBI000000000002 is Closed; allowed states: Under Investigation",
        "state",
        "problem_investigation",
    );
}

#[test]
fn a_key_of_a_type_the_system_does_not_have_is_a_configuration_error() {
    for (rig, line, message) in [
        (
            Rig::remedy(),
            "ValidateRequestItemTicketState=Yes\n",
            "ValidateRequestItemTicketState is for RequestItem tickets, which BMCRemedy does not have; remove it",
        ),
        (
            Rig::servicenow(),
            "WorkOrderTicketIdentification=\"^WO[0-9]+$\"\n",
            "WorkOrderTicketIdentification is for WorkOrder tickets, which ServiceNow does not have; remove it",
        ),
    ] {
        let service = rig.service(line);
        let outcome = rig.login(&service, "alice", "INC0010001");
        let context = outcome.transcript();
        assert_eq!(outcome.code, PAM_SERVICE_ERR, "{context}");
        assert!(outcome.prompts().is_empty(), "{context}");
        let record = rig.record();
        assert_eq!(record["decision"], "error", "{record}");
        let reason = record["reason"].as_str().unwrap_or_default();
        // The line that set it: the base configuration has 7 or 8 lines before it.
        assert!(reason.contains("pam_ticket.conf:"), "{reason}");
        assert!(reason.ends_with(message), "{reason}");
        assert_eq!(
            rig.server.request_count(),
            0,
            "a refused configuration asks nothing"
        );
    }
}

const CI_CHECK: &str = "ValidateConfigurationItem=Yes\n";

#[test]
fn the_ci_check_passes_by_name_fqdn_or_host_name_at_no_extra_request() {
    let rig = Rig::servicenow();
    // INC0010006 names app07 (cmdb_ci_linux_server: fqdn app07.example.com).
    for (target, how) in [
        ("APP07.example.com", "fqdn"),
        ("app07", "name"),
        ("app07.example.com.", "fqdn"),
    ] {
        let service = rig.service(&format!("{CI_CHECK}TargetName=\"{target}\"\n"));
        let outcome = rig.login(&service, "alice", "INC0010006");
        let record = assert_allowed(&rig, &outcome, "INC0010006", "incident");
        assert_eq!(record["reason"], "ticket exists; passed ci", "{target}");
        let query = one_query(&rig, "incident");
        assert_eq!(
            query.fields.as_deref(),
            Some(
                "number,state,caller_id.user_name,opened_by.user_name,cmdb_ci,cmdb_ci.name,cmdb_ci.ip_address,cmdb_ci.fqdn,cmdb_ci.host_name,cmdb_ci.sys_class_name"
            ),
            "{target}"
        );
        // The target never reaches a query: it is compared here, not by the server.
        assert_eq!(query.sysparm_query.as_deref(), Some("number=INC0010006"));
        let _ = how;
    }
}

#[test]
fn without_the_ci_check_a_login_costs_one_query_that_asks_for_no_ci() {
    let rig = Rig::servicenow();
    let service = rig.service("");
    let outcome = rig.login(&service, "alice", "INC0010007");
    assert_allowed(&rig, &outcome, "INC0010007", "incident");
    let query = one_query(&rig, "incident");
    assert_eq!(
        query.fields.as_deref(),
        Some("number,state,caller_id.user_name,opened_by.user_name")
    );
    let service = rig.service("");
    let outcome = rig.login(&service, "alice", "CHG0030008");
    assert_allowed(&rig, &outcome, "CHG0030008", "change");
    one_query(&rig, "change_request");
}

#[test]
fn a_ticket_without_a_ci_or_with_another_one_is_refused_naming_both() {
    let rig = Rig::servicenow();
    let service = rig.service(&format!("{CI_CHECK}TargetName=\"app07.example.com\"\n"));
    let outcome = rig.login(&service, "alice", "INC0010001");
    assert_refused(
        &rig,
        &outcome,
        "Ticket INC0010001 names no configuration item; it must name this gateway (app07.example.com)",
        "ci",
        "incident",
    );
    one_query(&rig, "incident");
    let outcome = rig.login(&service, "alice", "INC0010007");
    assert_refused(
        &rig,
        &outcome,
        "Ticket INC0010007 names configuration item web01.example.com, not this gateway (app07.example.com)",
        "ci",
        "incident",
    );
    one_query(&rig, "incident");
}

#[test]
fn short_names_match_only_with_ci_match_short_name() {
    let rig = Rig::servicenow();
    // INC0010007 names web01.example.com (host_name web01).
    let target = "TargetName=\"web01.prod.example.com\"\n";
    let service = rig.service(&format!("{CI_CHECK}{target}"));
    let outcome = rig.login(&service, "alice", "INC0010007");
    assert_refused(
        &rig,
        &outcome,
        "Ticket INC0010007 names configuration item web01.example.com, not this gateway (web01.prod.example.com)",
        "ci",
        "incident",
    );
    let service = rig.service(&format!("{CI_CHECK}{target}CIMatchShortName=Yes\n"));
    let outcome = rig.login(&service, "alice", "INC0010007");
    assert_allowed(&rig, &outcome, "INC0010007", "incident");
    // Either way round: a short target against a CI's FQDN.
    let service = rig.service(&format!(
        "{CI_CHECK}TargetName=app07.other.example\nCIMatchShortName=Yes\n"
    ));
    let outcome = rig.login(&service, "alice", "INC0010006");
    assert_allowed(&rig, &outcome, "INC0010006", "incident");
    one_query(&rig, "incident");
}

#[test]
fn an_ip_target_matches_the_ci_ip_address_exactly() {
    let rig = Rig::servicenow();
    let service = rig.service(&format!("{CI_CHECK}TargetName=\"192.0.2.7\"\n"));
    let outcome = rig.login(&service, "alice", "INC0010006");
    assert_allowed(&rig, &outcome, "INC0010006", "incident");
    for (target, short) in [("192.0.2.70", ""), ("192.0.2", "CIMatchShortName=Yes\n")] {
        let service = rig.service(&format!("{CI_CHECK}TargetName=\"{target}\"\n{short}"));
        let outcome = rig.login(&service, "alice", "INC0010006");
        assert_refused(
            &rig,
            &outcome,
            &format!(
                "Ticket INC0010006 names configuration item app07, not this gateway ({target})"
            ),
            "ci",
            "incident",
        );
    }
}

#[test]
fn a_change_passes_through_its_affected_cis_at_one_more_request() {
    let rig = Rig::servicenow();
    // CHG0030008 names web01; task_ci adds DB02 and app07.
    let service = rig.service(&format!("{CI_CHECK}TargetName=\"app07.example.com\"\n"));
    let outcome = rig.login(&service, "alice", "CHG0030008");
    assert_allowed(&rig, &outcome, "CHG0030008", "change");
    let received = rig.sn().received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].table, "change_request");
    assert_eq!(received[1].table, "task_ci");
    // By the change's record (its sys_id, read in the change's own query), never by
    // number: `task` spans every task table.
    assert!(
        received[0]
            .fields
            .as_deref()
            .is_some_and(|fields| fields.starts_with("sys_id,number,state")),
        "{received:?}"
    );
    assert_eq!(
        received[1].sysparm_query.as_deref(),
        Some(format!("task={CHANGE_30008}").as_str())
    );
    assert_eq!(
        received[1].fields.as_deref(),
        Some(
            "task,ci_item,ci_item.name,ci_item.ip_address,ci_item.fqdn,ci_item.host_name,ci_item.sys_class_name"
        )
    );
    assert_eq!(received[1].matched, 2);

    // DB02 by its FQDN, a field of its class (cmdb_ci_win_server).
    let service = rig.service(&format!("{CI_CHECK}TargetName=\"db02.corp.example.com\"\n"));
    let outcome = rig.login(&service, "alice", "CHG0030008");
    assert_allowed(&rig, &outcome, "CHG0030008", "change");

    let service = rig.service(&format!("{CI_CHECK}TargetName=\"app08\"\n"));
    let outcome = rig.login(&service, "alice", "CHG0030008");
    assert_refused(
        &rig,
        &outcome,
        "Change CHG0030008 names configuration item web01.example.com, DB02, app07, not this gateway (app08)",
        "ci",
        "change",
    );
    assert_eq!(rig.sn().query_count(), 2);
}

#[test]
fn a_hostile_target_name_never_widens_the_match() {
    let rig = Rig::servicenow();
    for target in [
        "app07^NQnameISNOTEMPTY",
        "app07^ORname!=x",
        "name=app07",
        "app07@corp",
        "app07\\\" OR 'x'='x",
        "\u{e4}pp07",
        "*",
    ] {
        let service = rig.service(&format!(
            "{CI_CHECK}TargetName=\"{target}\"\nCIMatchShortName=Yes\n"
        ));
        for ticket in ["INC0010006", "CHG0030008"] {
            let outcome = rig.login(&service, "alice", ticket);
            let context = outcome.transcript();
            assert_eq!(outcome.code, PAM_MAXTRIES, "{target}: {context}");
            let record = rig.record();
            assert_eq!(record["decision"], "deny", "{target}: {record}");
            assert_eq!(record["check"], "ci", "{target}: {record}");
            for query in rig.sn().received() {
                let asked = format!("{:?} {:?}", query.sysparm_query, query.fields);
                assert!(
                    !asked.contains("app07"),
                    "{target} reached a query: {asked}"
                );
            }
        }
    }
    // What an unquoted condition would do on this simulator: it widens, so the tests
    // above would see it.
    let widened = rig.sn().handle(&support::http::Request {
        method: "GET".to_string(),
        path: "/api/now/table/task_ci".to_string(),
        query: vec![(
            "sysparm_query".to_string(),
            "task.number=CHG0030001^NQci_item.nameISNOTEMPTY".to_string(),
        )],
        headers: [(
            "authorization".to_string(),
            format!(
                "Basic {}",
                base64(&format!("{ACCOUNT_USER}:{ACCOUNT_PASSWORD}"))
            ),
        )]
        .into_iter()
        .collect(),
        ..support::http::Request::default()
    });
    let body: Value = serde_json::from_slice(&widened.body).expect("JSON");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(2), "{body}");
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn without_target_name_the_target_is_this_host() {
    let host = hostname();
    let rig = Rig::servicenow();
    let service = rig.service(CI_CHECK);
    let outcome = rig.login(&service, "alice", "INC0010006");
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_MAXTRIES, "{context}");
    let shown = outcome.errors().join("\n");
    assert!(
        shown.starts_with("Ticket INC0010006 names configuration item app07, not this gateway (")
            && shown.contains(&host),
        "{shown}"
    );
    let record = rig.record();
    assert_eq!(record["check"], "ci", "{record}");

    // A CI named as this host lets the ticket through.
    let sim = rig.sn();
    sim.insert(
        "cmdb_ci",
        serde_json::from_value(serde_json::json!({
            "sys_id": "c10000000000000000000000000000ff",
            "sys_class_name": "cmdb_ci_linux_server",
            "name": host.to_uppercase(),
            "ip_address": "192.0.2.99",
        }))
        .expect("record"),
    );
    sim.set_record_field(
        "incident",
        "INC0010007",
        "cmdb_ci",
        "c10000000000000000000000000000ff",
    );
    let outcome = rig.login(&service, "alice", "INC0010007");
    assert_allowed(&rig, &outcome, "INC0010007", "incident");
}

fn hostname() -> String {
    let output = Command::new("hostname").output().expect("hostname");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn remedy_ci_fields_of_incidents_and_changes() {
    let rig = Rig::remedy();
    let service = rig.service(&format!("{CI_CHECK}TargetName=\"APP07\"\n"));
    let outcome = rig.login(&service, "alice", "INC000000000006");
    assert_allowed(&rig, &outcome, "INC000000000006", "incident");
    let queries = rig.remedy_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(
        queries[0].fields.as_deref(),
        Some("values(Incident Number,Status,Customer Login ID,Submitter,HPD_CI)")
    );
    let outcome = rig.login(&service, "alice", "CRQ000000000009");
    assert_allowed(&rig, &outcome, "CRQ000000000009", "change");
    let queries = rig.remedy_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(
        queries[0]
            .fields
            .as_deref()
            .is_some_and(|fields| fields.ends_with(",CI_Name)")),
        "{queries:?}"
    );

    let outcome = rig.login(&service, "alice", "INC000000000001");
    assert_refused(
        &rig,
        &outcome,
        "Ticket INC000000000001 names no configuration item; it must name this gateway (APP07)",
        "ci",
        "incident",
    );
    let service = rig.service(&format!(
        "{CI_CHECK}TargetName=\"app07.example.com\"\nRemedyChangeCIField=\"Other CI\"\n"
    ));
    let outcome = rig.login(&service, "alice", "INC000000000006");
    assert_refused(
        &rig,
        &outcome,
        "Ticket INC000000000006 names configuration item app07, not this gateway (app07.example.com)",
        "ci",
        "incident",
    );
    let service = rig.service(&format!(
        "{REMEDY_TYPES}{CI_CHECK}TargetName=\"app07.example.com\"\nCIMatchShortName=Yes\n"
    ));
    let outcome = rig.login(&service, "alice", "INC000000000006");
    assert_allowed(&rig, &outcome, "INC000000000006", "incident");
    // A work order has no CI field: with the check on it is refused.
    let outcome = rig.login(&service, "alice", "WO0000000000001");
    assert_refused(
        &rig,
        &outcome,
        "Work order WO0000000000001 names no configuration item; it must name this gateway (app07.example.com)",
        "ci",
        "work_order",
    );
}

#[test]
fn pam_ticket_test_shows_each_verdict_and_the_request_count() {
    let rig = Rig::servicenow();
    let config = rig.config_path(&format!(
        "{CI_CHECK}TargetName=\"app07\"\nValidateChangeTicketState=Yes\nAllowedChangeTicketStates=Implement\n"
    ));
    let run = |ticket: &str| {
        let output = Command::new(TOOL)
            .args(["test", "--user", "alice", "--config"])
            .arg(&config)
            .arg(ticket)
            .output()
            .expect("run pam-ticket test");
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let out = run("CHG0030008");
    for line in [
        "check state     PASS   state Implement",
        "check ci        PASS   configuration item app07 matches app07 by name",
        "requests               2 HTTP request(s) to ServiceNow for this login",
        "decision        ALLOW  PAM_SUCCESS",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert_eq!(rig.sn().query_count(), 2, "{out}");
    let out = run("INC0010007");
    for line in [
        "check ci        FAIL   Ticket INC0010007 names configuration item web01.example.com, not this gateway (app07)",
        "requests               1 HTTP request(s) to ServiceNow for this login",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

/// `pam-ticket check` compares every type's Allowed* lists with the choices the system
/// knows for that type's own table or form, through the same path as incidents'.
#[test]
fn check_compares_the_new_types_allowed_lists_with_the_systems_choices() {
    let rig = Rig::servicenow();
    let config = rig.config_path(&format!(
        "{SERVICENOW_TYPES}ValidateRequestItemTicketState=Yes\nAllowedRequestItemTicketStates=\"Open, Work In-Progress\"\nValidateRequestItemApprovalStatus=Yes\nAllowedRequestItemApprovalStatuses=Approved\nValidateProblemTicketState=Yes\nAllowedProblemTicketStates=Asses\n"
    ));
    let (code, out) = pam_ticket_check(&config);
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "  WARN  AllowedRequestItemTicketStates entry \"Work In-Progress\" names no requested item state ServiceNow knows, so it never matches (did you mean \"Work in Progress\"?)",
        "  OK    AllowedRequestItemApprovalStatuses: every entry names one of the requested item approvals ServiceNow knows",
        "  WARN  AllowedProblemTicketStates entry \"Asses\" names no problem state ServiceNow knows, so it never matches (did you mean \"Assess\"?)",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let choices: Vec<Option<String>> = rig
        .sn()
        .received()
        .into_iter()
        .filter(|query| query.table == "sys_choice")
        .map(|query| query.sysparm_query)
        .collect();
    assert_eq!(
        choices,
        [
            Some("name=sc_req_item^element=state^inactive=false".to_string()),
            Some("name=sc_req_item^element=approval^inactive=false".to_string()),
            Some("name=problem^element=state^inactive=false".to_string()),
        ]
    );

    let rig = Rig::remedy();
    let config = rig.config_path(&format!(
        "{REMEDY_TYPES}ValidateWorkOrderTicketState=Yes\nAllowedWorkOrderTicketStates=\"In Progres\"\nValidateProblemInvestigationTicketState=Yes\nAllowedProblemInvestigationTicketStates=\"Under Investigation\"\n"
    ));
    let (code, out) = pam_ticket_check(&config);
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "  WARN  AllowedWorkOrderTicketStates entry \"In Progres\" names no work order state BMCRemedy knows, so it never matches (did you mean \"In Progress\"?)",
        "  OK    AllowedProblemInvestigationTicketStates: every entry names one of the problem investigation states BMCRemedy knows",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let forms: Vec<Option<String>> = rig
        .rm()
        .received()
        .into_iter()
        .filter(|request| request.endpoint == Endpoint::Fields)
        .map(|request| request.form)
        .collect();
    assert_eq!(
        forms,
        [
            Some("WOI:WorkOrder".to_string()),
            Some("PBM:Problem Investigation".to_string())
        ]
    );
}

/// Each new type refuses an open ticket whose state is simply not in its list, with the
/// type's own noun and the state's label, after one query of its own table or form.
#[test]
fn each_new_type_refuses_a_state_not_in_its_list() {
    let rig = Rig::servicenow();
    for (keys, ticket, message, table, ticket_type) in [
        (
            "ValidateRequestItemTicketState=Yes\nAllowedRequestItemTicketStates=\"Work in Progress\"\n",
            "RITM0010003",
            "Requested item RITM0010003 is Open; allowed states: Work in Progress",
            "sc_req_item",
            "request_item",
        ),
        (
            "ValidateCatalogTaskTicketState=Yes\nAllowedCatalogTaskTicketStates=\"Work in Progress\"\n",
            "SCTASK0010001",
            "Catalog task SCTASK0010001 is Open; allowed states: Work in Progress",
            "sc_task",
            "catalog_task",
        ),
        (
            "ValidateProblemTicketState=Yes\nAllowedProblemTicketStates=\"Fix in Progress, 104\"\n",
            "PRB0010001",
            "Problem PRB0010001 is Assess; allowed states: Fix in Progress, 104",
            "problem",
            "problem",
        ),
    ] {
        let service = rig.service(&format!("{SERVICENOW_TYPES}{keys}"));
        let outcome = rig.login(&service, "alice", ticket);
        assert_refused(&rig, &outcome, message, "state", ticket_type);
        one_query(&rig, table);
    }
    // The stored value names the state too (102 is Assess).
    let service = rig.service(&format!(
        "{SERVICENOW_TYPES}ValidateProblemTicketState=Yes\nAllowedProblemTicketStates=\"102\"\n"
    ));
    let outcome = rig.login(&service, "alice", "PRB0010001");
    assert_allowed(&rig, &outcome, "PRB0010001", "problem");

    let rig = Rig::remedy();
    for (keys, ticket, message, form, ticket_type) in [
        (
            "ValidateWorkOrderTicketState=Yes\nAllowedWorkOrderTicketStates=\"Assigned, Planning\"\n",
            "WO0000000000001",
            "Work order WO0000000000001 is In Progress; allowed states: Assigned, Planning",
            "WOI:WorkOrder",
            "work_order",
        ),
        (
            "ValidateProblemInvestigationTicketState=Yes\nAllowedProblemInvestigationTicketStates=\"Assigned\"\n",
            "PBI000000000001",
            "Problem investigation PBI000000000001 is Under Investigation; allowed states: Assigned",
            "PBM:Problem Investigation",
            "problem_investigation",
        ),
    ] {
        let service = rig.service(&format!("{REMEDY_TYPES}{keys}"));
        let outcome = rig.login(&service, "alice", ticket);
        assert_refused(&rig, &outcome, message, "state", ticket_type);
        let queries = rig.remedy_queries();
        assert_eq!(queries.len(), 1, "{queries:?}");
        assert_eq!(queries[0].form.as_deref(), Some(form));
    }
}

/// The new types carry their people through the same path as incidents and changes:
/// AllowedUserRoles=assignee reads a requested item's assigned_to, and a work order's
/// assignee field, in the one ticket query.
#[test]
fn allowed_user_roles_apply_to_the_new_types() {
    let roles = "ValidateRequestingUser=Yes\nAllowedUserRoles=\"assignee\"\n";
    let rig = Rig::servicenow();
    let service = rig.service(&format!("{SERVICENOW_TYPES}{roles}"));
    let outcome = rig.login(&service, "dave", "RITM0010001");
    assert_allowed(&rig, &outcome, "RITM0010001", "request_item");
    let query = one_query(&rig, "sc_req_item");
    assert_eq!(
        query.fields.as_deref(),
        Some(
            "number,state,approval,requested_for.user_name,opened_by.user_name,assigned_to.user_name"
        )
    );
    let outcome = rig.login(&service, "alice", "RITM0010001");
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_MAXTRIES, "{context}");
    let record = rig.record();
    assert_eq!(record["decision"], "deny", "{record}");
    assert_eq!(record["check"], "roles", "{record}");

    let rig = Rig::remedy();
    let service = rig.service(&format!("{REMEDY_TYPES}{roles}"));
    let outcome = rig.login(&service, "dave", "WO0000000000001");
    assert_allowed(&rig, &outcome, "WO0000000000001", "work_order");
    let queries = rig.remedy_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(
        queries[0].fields.as_deref(),
        Some("values(Work Order ID,Status,Customer Login ID,Submitter,ASLOGID)")
    );
}

/// With ValidateConfigurationItem=Yes, `pam-ticket check` also reads task_ci once, so an
/// account that may not read it shows there, not at a login; the incident probe asks for
/// the dot-walked CI fields as a login would.
#[test]
fn check_reads_task_ci_when_the_ci_check_is_on() {
    let rig = Rig::servicenow();
    let config = rig.config_path(CI_CHECK);
    let (code, out) = pam_ticket_check(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "task_ci answered a query of a change's affected CIs (ValidateConfigurationItem)"
        ),
        "{out}"
    );
    let received = rig.sn().received();
    let tables: Vec<&str> = received.iter().map(|query| query.table.as_str()).collect();
    assert_eq!(tables, ["incident", "task_ci"], "{received:?}");
    assert!(
        received[0]
            .fields
            .as_deref()
            .is_some_and(|fields| fields.contains("cmdb_ci.fqdn")),
        "{received:?}"
    );
    assert_eq!(
        received[1].sysparm_query.as_deref(),
        Some("task=00000000000000000000000000000000")
    );

    // An instance without the table (or an account that may not read it) is a problem
    // that check names.
    rig.sn().remove_table("task_ci");
    let (_, out) = pam_ticket_check(&config);
    assert!(
        out.contains(
            "task_ci, which ValidateConfigurationItem reads for changes, gave no answer: unexpected HTTP 400: Invalid table task_ci"
        ),
        "{out}"
    );
}

/// `pam-ticket check` queries the form of every Remedy ticket type accepted, so a
/// misspelt RemedyWorkOrderForm shows there, with the form's name, not at a login.
#[test]
fn check_queries_every_remedy_types_form() {
    let rig = Rig::remedy();
    let config = rig.config_path(&format!(
        "{REMEDY_TYPES}RemedyWorkOrderForm=\"WOI:Work Order\"\n"
    ));
    let (code, out) = pam_ticket_check(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("  FAIL  setup: Remedy form \"WOI:Work Order\" does not exist (ARERR 303"),
        "{out}"
    );
    let forms: Vec<Option<String>> = rig
        .remedy_queries()
        .into_iter()
        .map(|query| query.form)
        .collect();
    assert_eq!(
        forms,
        [
            Some("HPD:Help Desk".to_string()),
            Some("CHG:Infrastructure Change".to_string()),
            Some("WOI:Work Order".to_string())
        ]
    );
    assert_eq!(rig.rm().logout_count(), 1, "the probe still logs off");
}

/// A configuration written before TicketTypes existed: it gates on the incident and
/// change checks, and never mentions the other types.
const UPGRADED_SERVICENOW: &str = "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New, In Progress\"\nValidateChangeTicketState=Yes\nAllowedChangeTicketStates=Implement\nValidateApprovalStatus=Yes\nAllowedApprovalStatuses=Approved\nValidateRequestingUser=Yes\n";

/// Asserts a login refused before any request because its ID is of no accepted type:
/// PAM_MAXTRIES, the refusal shown, nothing asked of the server, a `deny` that says so.
fn assert_not_a_ticket_id(rig: &Rig, outcome: &PamOutcome, requests_before: usize) {
    let context = outcome.transcript();
    assert_eq!(outcome.code, PAM_MAXTRIES, "{context}");
    assert_eq!(
        outcome.errors(),
        vec!["That ticket ID is not of a ticket type this gateway accepts"],
        "{context}"
    );
    assert_eq!(
        rig.server.request_count(),
        requests_before,
        "no request for an ID of a type not accepted"
    );
    let record = rig.record();
    assert_eq!(record["decision"], "deny", "{record}");
    assert_eq!(
        record["reason"],
        "answer matches no identification regex of the types accepted (TicketTypes)",
        "{record}"
    );
    assert!(record.get("type").is_none_or(Value::is_null), "{record}");
}

/// The review finding: after an upgrade, a configuration that gates on the incident and
/// change checks must not start accepting requested items (which any employee can open
/// for themselves from the Service Catalog), catalog tasks or problems, closed ones
/// included, unchecked. Without TicketTypes they are not ticket IDs; listed, they are
/// looked up and their own checks apply.
#[test]
fn an_upgraded_servicenow_configuration_accepts_only_incidents_and_changes() {
    let rig = Rig::servicenow();
    let service = rig.service(UPGRADED_SERVICENOW);
    // alice is the requested_for of both requested items; RITM0010002 is closed.
    for ticket in ["RITM0010001", "RITM0010002", "SCTASK0010001", "PRB0010002"] {
        let before = rig.server.request_count();
        let outcome = rig.login(&service, "alice", ticket);
        assert_not_a_ticket_id(&rig, &outcome, before);
        assert_eq!(rig.sn().query_count(), 0, "{ticket}");
    }
    // Incidents are looked up and checked as before.
    let outcome = rig.login(&service, "alice", "INC0010001");
    assert_allowed(&rig, &outcome, "INC0010001", "incident");
    one_query(&rig, "incident");

    // Listed, a requested item is looked up on its own table, with its own checks.
    let service = rig.service(&format!(
        "{UPGRADED_SERVICENOW}TicketTypes=\"Incident, Change, RequestItem\"\nValidateRequestItemTicketState=Yes\nAllowedRequestItemTicketStates=\"Open, Work in Progress\"\n"
    ));
    let outcome = rig.login(&service, "alice", "RITM0010001");
    assert_allowed(&rig, &outcome, "RITM0010001", "request_item");
    let query = one_query(&rig, "sc_req_item");
    assert_eq!(query.sysparm_query.as_deref(), Some("number=RITM0010001"));
    let outcome = rig.login(&service, "alice", "RITM0010002");
    assert_refused(
        &rig,
        &outcome,
        "Requested item RITM0010002 is Closed Complete; allowed states: Open, Work in Progress",
        "state",
        "request_item",
    );
    one_query(&rig, "sc_req_item");
    // A problem is still not accepted: only the listed types are.
    let before = rig.server.request_count();
    let outcome = rig.login(&service, "alice", "PRB0010001");
    assert_not_a_ticket_id(&rig, &outcome, before);

    // A type may be left out: changes only.
    let service = rig.service("TicketTypes=Change\n");
    let before = rig.server.request_count();
    let outcome = rig.login(&service, "alice", "INC0010001");
    assert_not_a_ticket_id(&rig, &outcome, before);
}

/// The same for Remedy's work orders and problem investigations: not ticket IDs until
/// TicketTypes lists them, and then looked up on their own form.
#[test]
fn an_upgraded_remedy_configuration_accepts_only_incidents_and_changes() {
    let rig = Rig::remedy();
    let service = rig.service("ValidateRequestingUser=Yes\n");
    // WO0000000000002 is closed; alice requested both.
    for ticket in ["WO0000000000001", "WO0000000000002", "PBI000000000001"] {
        let before = rig.server.request_count();
        let outcome = rig.login(&service, "alice", ticket);
        assert_not_a_ticket_id(&rig, &outcome, before);
        assert!(rig.rm().received().is_empty(), "not even a log-on");
    }
    let outcome = rig.login(&service, "alice", "INC000000000001");
    assert_allowed(&rig, &outcome, "INC000000000001", "incident");

    let service = rig.service(
        "ValidateRequestingUser=Yes\nTicketTypes=\"Incident, Change, WorkOrder\"\nValidateWorkOrderTicketState=Yes\nAllowedWorkOrderTicketStates=\"Assigned, In Progress\"\n",
    );
    let outcome = rig.login(&service, "alice", "WO0000000000001");
    assert_allowed(&rig, &outcome, "WO0000000000001", "work_order");
    let outcome = rig.login(&service, "alice", "WO0000000000002");
    assert_refused(
        &rig,
        &outcome,
        "Work order WO0000000000002 is Closed; allowed states: Assigned, In Progress",
        "state",
        "work_order",
    );
    let queries = rig.remedy_queries();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0].form.as_deref(), Some("WOI:WorkOrder"));
    let before = rig.server.request_count();
    let outcome = rig.login(&service, "alice", "PBI000000000001");
    assert_not_a_ticket_id(&rig, &outcome, before);
}

/// A key of a type TicketTypes leaves out, or a TicketTypes the system cannot honour, is
/// a configuration error at its line: PAM_SERVICE_ERR before any prompt or request,
/// audited with the reason.
#[test]
fn a_key_of_a_type_not_accepted_is_a_configuration_error() {
    for (rig, lines, message) in [
        (
            Rig::servicenow(),
            "ValidateRequestItemTicketState=Yes\nAllowedRequestItemTicketStates=Open\n",
            "ValidateRequestItemTicketState is for RequestItem tickets, which are not accepted (TicketTypes is not set: Incident, Change); add RequestItem to TicketTypes to accept them, or remove ValidateRequestItemTicketState",
        ),
        (
            Rig::remedy(),
            "TicketTypes=\"Incident, Change\"\nWorkOrderTicketIdentification=\"^WO[0-9]+$\"\n",
            "WorkOrderTicketIdentification is for WorkOrder tickets, which are not accepted (TicketTypes is Incident, Change); add WorkOrder to TicketTypes to accept them, or remove WorkOrderTicketIdentification",
        ),
        (
            Rig::servicenow(),
            "TicketTypes=\"Incident, WorkOrder\"\n",
            "TicketTypes: ServiceNow has no WorkOrder tickets; its types are Incident, Change, RequestItem, CatalogTask, Problem",
        ),
        (
            Rig::servicenow(),
            "TicketTypes=\"Incident, Incidents\"\n",
            "TicketTypes: unknown ticket type \"Incidents\" (did you mean Incident?); ServiceNow has Incident, Change, RequestItem, CatalogTask, Problem",
        ),
    ] {
        let service = rig.service(lines);
        // The error names the line of the key it starts with.
        let key = message.split([' ', ':']).next().unwrap_or_default();
        let line = rig
            .config_text(lines)
            .lines()
            .position(|text| text.starts_with(&format!("{key}=")))
            .map_or(0, |index| index + 1);
        let outcome = rig.login(&service, "alice", "INC0010001");
        let context = outcome.transcript();
        assert_eq!(outcome.code, PAM_SERVICE_ERR, "{context}");
        assert!(outcome.prompts().is_empty(), "{context}");
        assert_eq!(
            outcome.errors(),
            vec!["Ticket validation is misconfigured on this gateway; contact your administrator"],
            "{context}"
        );
        let record = rig.record();
        assert_eq!(record["decision"], "error", "{record}");
        let reason = record["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("pam_ticket.conf:{line}: {message}")),
            "{reason}"
        );
        assert_eq!(
            rig.server.request_count(),
            0,
            "a refused configuration asks nothing"
        );
    }
}

/// `pam-ticket check` shows the types accepted, says which identification rules are not
/// in force, and queries only the accepted types' forms: a Remedy without the work order
/// module checks clean.
#[test]
fn check_shows_the_accepted_types_and_probes_only_their_forms() {
    let rig = Rig::remedy();
    let config = rig.config_path("");
    let (code, out) = pam_ticket_check(&config);
    assert_eq!(code, Some(0), "{out}");
    let shown = |key: &str| {
        out.lines()
            .find(|line| line.split_whitespace().next() == Some(key))
            .map(|line| line.trim_start()[key.len()..].trim().to_string())
    };
    assert_eq!(
        shown("TicketTypes").as_deref(),
        Some("Incident, Change"),
        "{out}"
    );
    assert_eq!(
        shown("WorkOrderTicketIdentification").as_deref(),
        Some("(not accepted: WorkOrder is not in TicketTypes)"),
        "{out}"
    );
    let forms: Vec<Option<String>> = rig
        .remedy_queries()
        .into_iter()
        .map(|query| query.form)
        .collect();
    assert_eq!(
        forms,
        [
            Some("HPD:Help Desk".to_string()),
            Some("CHG:Infrastructure Change".to_string()),
        ]
    );

    let config = rig.config_path("TicketTypes=\"ProblemInvestigation, Change\"\n");
    rig.rm().clear_received();
    let (code, out) = pam_ticket_check(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == ["TicketTypes", "Change,", "ProblemInvestigation"]),
        "{out}"
    );
    let forms: Vec<Option<String>> = rig
        .remedy_queries()
        .into_iter()
        .map(|query| query.form)
        .collect();
    assert_eq!(
        forms,
        [
            Some("CHG:Infrastructure Change".to_string()),
            Some("PBM:Problem Investigation".to_string()),
        ]
    );
}

/// CHG0030008's sys_id in the simulator's CI fixture.
const CHANGE_30008: &str = "c4a9e000000000000000000000030008";

/// A task of another table that carries the change's number (an import, a custom task
/// table, a reset counter) and names a CI of its own: its CIs never count for the change,
/// since the affected CIs are found by the change's sys_id.
#[test]
fn affected_cis_of_another_task_with_the_same_number_never_count() {
    let rig = Rig::servicenow();
    let impostor = "1a5c0000000000000000000000000099";
    let record = |fields: &[(&str, &str)]| -> serde_json::Map<String, Value> {
        fields
            .iter()
            .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
            .collect()
    };
    rig.sn().insert(
        "problem",
        record(&[
            ("sys_id", impostor),
            ("number", "CHG0030008"),
            ("state", "102"),
            ("opened_by", sn_sim::ALICE),
        ]),
    );
    rig.sn().insert(
        "task_ci",
        record(&[("task", impostor), ("ci_item", sn_sim::CI_PAYROLL)]),
    );
    let service = rig.service(&format!("{CI_CHECK}TargetName=\"Payroll\"\n"));
    let outcome = rig.login(&service, "alice", "CHG0030008");
    assert_refused(
        &rig,
        &outcome,
        "Change CHG0030008 names configuration item web01.example.com, DB02, app07, not this gateway (Payroll)",
        "ci",
        "change",
    );
    let received = rig.sn().received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(
        received[1].sysparm_query.as_deref(),
        Some(format!("task={CHANGE_30008}").as_str())
    );
    assert_eq!(received[1].matched, 2, "{received:?}");
}

const FAILSAFE_INFO: &str =
    "Ticket validation is unavailable; access is granted under the failsafe policy and audited.";

/// An outage of the change's second request (task_ci) leaves only the CI check open:
/// a ticket that fails another check is refused as it is, in both fail modes, never let
/// through as failsafe; one that passes by its own CI needs no affected CIs; and only when
/// the CI check is the sole open question does FailMode decide.
#[test]
fn an_outage_of_the_affected_cis_never_turns_a_failing_change_into_failsafe() {
    let rig = Rig::servicenow();
    rig.sn().set_table_unavailable("task_ci", true);
    let closed_only = "ValidateChangeTicketState=Yes\nAllowedChangeTicketStates=\"Closed\"\n";
    for mode in ["safe", "secure"] {
        // Fails its state (Implement); app07 is named only through task_ci, which is down.
        let service = rig.service(&format!(
            "{CI_CHECK}TargetName=\"app07.example.com\"\nFailMode={mode}\n{closed_only}"
        ));
        let outcome = rig.login(&service, "alice", "CHG0030008");
        let record = assert_refused(
            &rig,
            &outcome,
            "Change CHG0030008 is Implement; allowed states: Closed",
            "state",
            "change",
        );
        assert!(record.get("failsafe").is_none(), "{record}");
        let tables: Vec<String> = rig.sn().received().into_iter().map(|q| q.table).collect();
        // The 503 is retried once.
        assert_eq!(tables, ["change_request", "task_ci", "task_ci"], "{mode}");
    }

    // web01 is the change's own CI: the affected CIs are not needed.
    let service = rig.service(&format!(
        "{CI_CHECK}TargetName=\"web01.example.com\"\nFailMode=secure\n"
    ));
    let outcome = rig.login(&service, "alice", "CHG0030008");
    let record = assert_allowed(&rig, &outcome, "CHG0030008", "change");
    assert!(
        record["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("ci")),
        "{record}"
    );

    // The CI check alone is open: FailMode decides.
    for (mode, code, decision) in [
        ("safe", PAM_SUCCESS, "failsafe"),
        ("secure", PAM_AUTHINFO_UNAVAIL, "unavailable"),
    ] {
        let service = rig.service(&format!(
            "{CI_CHECK}TargetName=\"app07.example.com\"\nFailMode={mode}\n"
        ));
        let outcome = rig.login(&service, "alice", "CHG0030008");
        let context = outcome.transcript();
        assert_eq!(
            pam::code_name(outcome.code),
            pam::code_name(code),
            "{context}"
        );
        if mode == "safe" {
            assert_eq!(outcome.infos(), vec![FAILSAFE_INFO], "{context}");
        }
        let record = rig.record();
        assert_eq!(record["decision"], decision, "{record}");
        assert!(
            record["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("503")),
            "{record}"
        );
    }
}

/// The same for the assignment group's membership query: its outage never lets a closed
/// change in as failsafe; for a change that passes everything else, FailMode decides.
#[test]
fn an_outage_of_the_membership_query_never_turns_a_failing_ticket_into_failsafe() {
    let rig = Rig::servicenow();
    rig.sn().set_table_unavailable("sys_user_grmember", true);
    let roles = "ValidateRequestingUser=Yes\nAllowedUserRoles=\"requester, assignment_group\"\nValidateChangeTicketState=Yes\nAllowedChangeTicketStates=\"Implement\"\n";
    // CHG0030007 is Closed, requested by alice; bob is only in its assignment group.
    for mode in ["safe", "secure"] {
        let service = rig.service(&format!("{roles}FailMode={mode}\n"));
        let outcome = rig.login(&service, "bob", "CHG0030007");
        assert_refused(
            &rig,
            &outcome,
            "Change CHG0030007 is Closed; allowed states: Implement",
            "state",
            "change",
        );
        let tables: Vec<String> = rig.sn().received().into_iter().map(|q| q.table).collect();
        assert_eq!(
            tables,
            ["change_request", "sys_user_grmember", "sys_user_grmember"],
            "{mode}"
        );
    }
    for (mode, code, decision) in [
        ("safe", PAM_SUCCESS, "failsafe"),
        ("secure", PAM_AUTHINFO_UNAVAIL, "unavailable"),
    ] {
        let service = rig.service(&format!("{roles}FailMode={mode}\n"));
        let outcome = rig.login(&service, "bob", "CHG0030001");
        let context = outcome.transcript();
        assert_eq!(
            pam::code_name(outcome.code),
            pam::code_name(code),
            "{context}"
        );
        let record = rig.record();
        assert_eq!(record["decision"], decision, "{record}");
    }
    // Back up: bob's membership lets him in.
    rig.sn().set_table_unavailable("sys_user_grmember", false);
    let service = rig.service(&format!("{roles}FailMode=secure\n"));
    let outcome = rig.login(&service, "bob", "CHG0030001");
    assert_allowed(&rig, &outcome, "CHG0030001", "change");
}

/// ServiceNow's `pam-ticket check` reads the table of the first type accepted: a gateway
/// that takes only changes is checked against change_request, never against incident,
/// which its account may not read.
#[test]
fn servicenow_check_reads_the_first_accepted_types_table() {
    let rig = Rig::servicenow();
    for (types, table) in [
        ("", "incident"),
        ("TicketTypes=\"Change\"\n", "change_request"),
        ("TicketTypes=\"Problem, RequestItem\"\n", "sc_req_item"),
    ] {
        let config = rig.config_path(types);
        rig.sn().clear_received();
        let (code, out) = pam_ticket_check(&config);
        assert_eq!(code, Some(0), "{types}: {out}");
        let tables: Vec<String> = rig
            .sn()
            .received()
            .into_iter()
            .map(|query| query.table)
            .filter(|table| table != "sys_choice" && table != "sys_user_has_role")
            .collect();
        assert_eq!(tables, [table], "{types}: {out}");
    }
}
