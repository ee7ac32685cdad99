//! Who must present a ticket (Groups, ExemptGroups, ExemptUsers), who the person is in
//! the ticketing system (UserMatchField, UserMatchDomain, UserMapFile) and whether the
//! ticket is theirs (AllowedUserRoles), through the real libpam against the ServiceNow
//! and Remedy simulators over HTTPS.
//!
//! Every test asserts the PAM code, what the user saw, what the simulator received and
//! what was audited. Group tests use the system's name service: they create the local
//! user `pamticket-e2e` and the group `pamticket-who-ops` (root only; without root they
//! say why and pass without running, as the sshd tests do).

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use serde_json::Value;

use support::files::{audit_records, write_root_only};
use support::https::TestServer;
use support::pam::{
    self, Login, PAM_MAXTRIES, PAM_PERM_DENIED, PAM_SERVICE_ERR, PAM_SUCCESS, PamOutcome,
    PamService, assert_code,
};
use support::pki::{ServerCert, TestPki};
use support::remedy::{DBA_GROUP, Endpoint, LINUX_OPS_GROUP, RemedySim, SUPPORT_GROUP_FORM};
use support::servicenow::{LINUX_OPS, ServiceNowSim};
use support::sshd::{TEST_GROUP, TEST_USER, ensure_test_user_in_group, report};
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";
const MISCONFIGURED: &str =
    "Ticket validation is misconfigured on this gateway; contact your administrator";

enum Sim {
    ServiceNow(Arc<ServiceNowSim>),
    Remedy(Arc<RemedySim>),
}

/// A simulator behind HTTPS, a root-only account file, an audit file and a PAM service.
struct Gate {
    dir: TestDir,
    pki: TestPki,
    server: TestServer,
    sim: Sim,
}

impl Gate {
    fn service_now() -> Gate {
        let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        Gate::start("who-sn", sim.clone(), Sim::ServiceNow(sim))
    }

    fn remedy() -> Gate {
        let sim = Arc::new(RemedySim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
        Gate::start("who-remedy", sim.clone(), Sim::Remedy(sim))
    }

    fn start(label: &str, handler: Arc<dyn support::http::Handler>, sim: Sim) -> Gate {
        let dir = TestDir::new(label);
        let pki = TestPki::generate(&dir.join("pki"));
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

    fn config_text(&self, extra: &str) -> String {
        let system = match self.sim {
            Sim::ServiceNow(_) => "ServiceNow".to_string(),
            Sim::Remedy(_) => format!(
                "BMCRemedy\"\nCacheDirectory=\"{}",
                self.dir.join("cache").display()
            ),
        };
        format!(
            "TicketingSystem=\"{system}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nMaxAttempts=1\nTimeout=5\n{extra}",
            self.server.base_url(),
            self.dir.join("account.conf").display(),
            self.pki.ca_pem_path().display(),
            self.dir.join("audit.jsonl").display(),
        )
    }

    /// The module alone in the auth stack: its PAM_IGNORE comes out of libpam as
    /// PAM_PERM_DENIED ("no module decided"), its PAM_SUCCESS as PAM_SUCCESS.
    fn service(&self, extra: &str) -> PamService {
        let config = self.dir.join("pam_ticket.conf");
        write_root_only(&config, &self.config_text(extra));
        PamService::new(
            &self.dir.join("pam.d"),
            "who",
            &pam::module_path(),
            &[format!("config={}", config.display())],
        )
    }

    /// The stack the README recommends when some people are not asked: the ticket, then
    /// `auth optional pam_permit.so`, which decides only when the module ignored the login.
    fn permit_below_service(&self, extra: &str) -> PamService {
        let config = self.dir.join("pam_ticket.conf");
        write_root_only(&config, &self.config_text(extra));
        PamService::with_text(
            &self.dir.join("pam.d"),
            "who-stack",
            &format!(
                "auth required {}\nauth optional {}\n",
                pam::module_line(
                    &pam::module_path(),
                    &[format!("config={}", config.display())]
                ),
                pam::system_module("pam_permit.so").display()
            ),
        )
    }

    fn audit(&self) -> Vec<Value> {
        audit_records(&self.dir.join("audit.jsonl"))
    }

    fn only_record(&self) -> Value {
        let records = self.audit();
        assert_eq!(records.len(), 1, "{records:?}");
        records[0].clone()
    }

    /// ServiceNow: `(table, sysparm_query, sysparm_fields)` of every table request.
    fn table_requests(&self) -> Vec<(String, String, String)> {
        let Sim::ServiceNow(sim) = &self.sim else {
            panic!("a ServiceNow gate");
        };
        sim.received()
            .into_iter()
            .map(|query| {
                (
                    query.table,
                    query.sysparm_query.unwrap_or_default(),
                    query.fields.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Remedy: `(form, q, fields)` of every entry query.
    fn entry_queries(&self) -> Vec<(String, String, String)> {
        let Sim::Remedy(sim) = &self.sim else {
            panic!("a Remedy gate");
        };
        sim.received()
            .into_iter()
            .filter(|received| received.endpoint == Endpoint::Query)
            .map(|received| {
                (
                    received.form.unwrap_or_default(),
                    received.q.unwrap_or_default(),
                    received.fields.unwrap_or_default(),
                )
            })
            .collect()
    }

    fn request_count(&self) -> usize {
        match &self.sim {
            Sim::ServiceNow(sim) => sim.query_count(),
            Sim::Remedy(sim) => sim.query_count(),
        }
    }
}

fn login(service: &PamService, user: &str, answer: &str) -> PamOutcome {
    pam::authenticate(
        service,
        &Login::new(user).rhost("192.0.2.30").answer(answer),
    )
}

/// Root is needed for the local user and group; without it the test says why.
fn local_accounts(label: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        report(&format!(
            "who_pam {label}: SKIPPED: not running as root (useradd, groupadd)"
        ));
        return false;
    }
    ensure_test_user_in_group();
    true
}

fn assert_granted(outcome: &PamOutcome) {
    assert_code(outcome, PAM_SUCCESS);
    assert_eq!(outcome.prompts(), ["Ticket ID: "]);
    assert!(outcome.errors().is_empty(), "{}", outcome.transcript());
}

fn assert_refused(outcome: &PamOutcome, message: &str) {
    assert_code(outcome, PAM_MAXTRIES);
    assert_eq!(outcome.prompts(), ["Ticket ID: "]);
    assert_eq!(outcome.errors(), [message], "{}", outcome.transcript());
}

// ---------------------------------------------------------------------------------------
// 1. Who must present a ticket.

#[test]
fn an_exempt_user_is_not_asked_gets_pam_ignore_and_is_audited_as_exempt() {
    if !local_accounts("exempt user") {
        return;
    }
    let gate = Gate::service_now();
    let service = gate.service(&format!("ExemptUsers=\"root, {TEST_USER}\"\n"));
    let outcome = login(&service, TEST_USER, "INC0010001");
    // PAM_IGNORE alone in a stack: libpam's "no module decided".
    assert_code(&outcome, PAM_PERM_DENIED);
    assert!(outcome.events.is_empty(), "{}", outcome.transcript());
    assert_eq!(gate.request_count(), 0);
    let record = gate.only_record();
    assert_eq!(record["decision"], "exempt");
    assert_eq!(record["user"], TEST_USER);
    assert_eq!(
        record["reason"],
        format!("{TEST_USER} is listed in ExemptUsers")
    );
    assert!(record.get("ticket").is_none(), "{record}");
}

#[test]
fn a_member_of_an_exempt_group_is_not_asked_even_when_in_groups() {
    if !local_accounts("exempt group") {
        return;
    }
    let gate = Gate::service_now();
    // Groups names the user's primary group, ExemptGroups a supplementary one: the
    // exemption wins.
    let service = gate.service(&format!(
        "Groups=\"{TEST_USER}\"\nExemptGroups=\"{TEST_GROUP}\"\n"
    ));
    let outcome = login(&service, TEST_USER, "INC0010001");
    assert_code(&outcome, PAM_PERM_DENIED);
    assert!(outcome.events.is_empty(), "{}", outcome.transcript());
    assert_eq!(gate.request_count(), 0);
    let record = gate.only_record();
    assert_eq!(record["decision"], "exempt");
    assert_eq!(
        record["reason"],
        format!("{TEST_USER} is a member of {TEST_GROUP}, listed in ExemptGroups")
    );
}

#[test]
fn members_of_groups_are_asked_by_primary_and_supplementary_group() {
    if !local_accounts("groups members") {
        return;
    }
    let gate = Gate::service_now();
    for group in [TEST_USER, TEST_GROUP] {
        let service = gate.service(&format!("Groups=\"root, {group}\"\n"));
        let outcome = login(&service, TEST_USER, "INC0010001");
        assert_granted(&outcome);
    }
    assert_eq!(gate.request_count(), 2);
    let records = gate.audit();
    assert_eq!(records.len(), 2);
    for record in records {
        assert_eq!(record["decision"], "allow", "{record}");
        assert_eq!(record["ticket"], "INC0010001");
    }
}

#[test]
fn a_login_outside_groups_is_not_asked_and_the_stack_decides() {
    if !local_accounts("outside groups") {
        return;
    }
    let gate = Gate::service_now();
    let service = gate.service("Groups=\"root\"\n");
    let outcome = login(&service, TEST_USER, "INC0010001");
    assert_code(&outcome, PAM_PERM_DENIED);
    assert!(outcome.events.is_empty(), "{}", outcome.transcript());
    let record = gate.only_record();
    assert_eq!(record["decision"], "exempt");
    assert_eq!(
        record["reason"],
        format!("{TEST_USER} is not a member of any group in Groups (root), so is not asked")
    );

    // With `auth optional pam_permit.so` below the ticket (the README's stack for
    // exemptions) the login that is not asked gets in with its key alone, and a login
    // that is asked still needs a valid ticket.
    let stacked = gate.permit_below_service("Groups=\"root\"\n");
    let outcome = login(&stacked, TEST_USER, "INC0099999");
    assert_code(&outcome, PAM_SUCCESS);
    assert!(outcome.events.is_empty(), "{}", outcome.transcript());
    let outcome = login(&stacked, "root", "INC0099999");
    assert_refused(&outcome, "Ticket INC0099999 was not found");
    assert_eq!(gate.request_count(), 1);
}

#[test]
fn an_unknown_group_is_a_configuration_error_with_its_line() {
    let gate = Gate::service_now();
    let config = gate.dir.join("pam_ticket.conf");
    write_root_only(
        &config,
        &gate.config_text("ExemptGroups=\"no-such-group-pam-ticket\"\n"),
    );
    let audit = gate.dir.join("errors.jsonl");
    let service = PamService::new(
        &gate.dir.join("pam.d"),
        "who-bad",
        &pam::module_path(),
        &[
            format!("config={}", config.display()),
            format!("AuditLogFile={}", audit.display()),
        ],
    );
    let outcome = login(&service, "alice", "INC0010001");
    assert_code(&outcome, PAM_SERVICE_ERR);
    assert_eq!(outcome.errors(), [MISCONFIGURED]);
    assert!(outcome.prompts().is_empty());
    assert_eq!(gate.request_count(), 0);
    let records = audit_records(&audit);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["decision"], "error");
    assert_eq!(
        records[0]["reason"],
        format!(
            "configuration error: {}:8: ExemptGroups: there is no group \"no-such-group-pam-ticket\" (getent group no-such-group-pam-ticket finds none)",
            config.display()
        )
    );
}

// ---------------------------------------------------------------------------------------
// 2. and 3. ServiceNow: who the person is, and whether the ticket is theirs.

const SN_INCIDENT_FIELDS: &str = "number,state,caller_id.user_name,opened_by.user_name";

#[test]
fn servicenow_default_is_the_requester_with_todays_single_query() {
    let gate = Gate::service_now();
    let service = gate.service("ValidateRequestingUser=\"Yes\"\n");
    assert_granted(&login(&service, "alice", "INC0010001"));
    let outcome = login(&service, "bob", "INC0010001");
    assert_refused(&outcome, "Ticket INC0010001 was not requested by bob");
    let requests = gate.table_requests();
    assert_eq!(requests.len(), 2);
    for (table, query, fields) in requests {
        assert_eq!(
            (table.as_str(), query.as_str(), fields.as_str()),
            ("incident", "number=INC0010001", SN_INCIDENT_FIELDS)
        );
    }
    let records = gate.audit();
    assert_eq!(records[1]["decision"], "deny");
    assert_eq!(records[1]["check"], "requester");
    assert!(records[1].get("identity").is_none(), "{}", records[1]);
}

#[test]
fn servicenow_assignee_role_lets_the_assignee_in_with_one_query() {
    let gate = Gate::service_now();
    let service = gate.service("ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"assignee\"\n");
    assert_granted(&login(&service, "dave", "INC0010001"));
    let outcome = login(&service, "alice", "INC0010001");
    assert_refused(&outcome, "Ticket INC0010001 is not assigned to alice");
    let requests = gate.table_requests();
    assert_eq!(requests.len(), 2, "one query per login: {requests:?}");
    assert_eq!(
        requests[0].2,
        "number,state,caller_id.user_name,opened_by.user_name,assigned_to.user_name"
    );
    let records = gate.audit();
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["reason"], "ticket exists; passed roles");
    assert_eq!(records[1]["decision"], "deny");
    assert_eq!(records[1]["check"], "roles");
    assert_eq!(
        records[1]["reason"],
        "Ticket INC0010001 is not assigned to alice"
    );
}

#[test]
fn servicenow_assignment_group_costs_one_membership_query_only_when_needed() {
    let gate = Gate::service_now();
    let service = gate.service(
        "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"requester, assignment_group\"\n",
    );
    // bob is in Linux Ops, INC0010001's group: two requests.
    assert_granted(&login(&service, "bob", "INC0010001"));
    // alice is the requester: the membership is never asked.
    assert_granted(&login(&service, "alice", "INC0010001"));
    // dave is in another group than INC0010003's: refused, naming the relations and
    // nobody else.
    let outcome = login(&service, "dave", "INC0010003");
    assert_refused(
        &outcome,
        "Ticket INC0010003 was not requested by dave, has an assignment group that dave is not a member of; any one of requester, assignment_group is required",
    );
    // INC0010002 has no group: no membership query.
    let outcome = login(&service, "carol", "INC0010002");
    assert_refused(
        &outcome,
        "Ticket INC0010002 was not requested by carol, has no assignment group; any one of requester, assignment_group is required",
    );
    let requests = gate.table_requests();
    let tables: Vec<&str> = requests.iter().map(|(table, ..)| table.as_str()).collect();
    assert_eq!(
        tables,
        [
            "incident",
            "sys_user_grmember",
            "incident",
            "incident",
            "sys_user_grmember",
            "incident"
        ]
    );
    assert_eq!(
        requests[0].2,
        "number,state,caller_id.user_name,opened_by.user_name,assignment_group"
    );
    assert_eq!(
        (requests[1].1.as_str(), requests[1].2.as_str()),
        (
            format!("user.user_name=bob^group={LINUX_OPS}").as_str(),
            "user.user_name,group"
        )
    );
    let records = gate.audit();
    let decisions: Vec<&str> = records
        .iter()
        .map(|record| record["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(decisions, ["allow", "allow", "deny", "deny"]);
    for (record, person) in records[2..].iter().zip(["dave", "carol"]) {
        let reason = record["reason"].as_str().unwrap_or("");
        for other in [
            "alice",
            "bob",
            "carol",
            "dave",
            "Linux Ops",
            "Database Admins",
        ] {
            assert!(
                other == person || !reason.contains(other),
                "names {other}: {reason}"
            );
        }
    }
}

#[test]
fn servicenow_email_with_domain_is_the_identity_everywhere_and_is_audited() {
    let gate = Gate::service_now();
    let service = gate.service(
        "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"requester,assignment_group\"\nUserMatchField=\"email\"\nUserMatchDomain=\"corp.example.com\"\n",
    );
    assert_granted(&login(&service, "alice", "INC0010001"));
    assert_granted(&login(&service, "bob", "INC0010001"));
    let requests = gate.table_requests();
    assert_eq!(
        requests[0].2,
        "number,state,caller_id.email,opened_by.email,assignment_group"
    );
    assert_eq!(
        requests[2].1,
        format!("user.email=bob@corp.example.com^group={LINUX_OPS}")
    );
    assert_eq!(requests[2].2, "user.email,group");
    let records = gate.audit();
    assert_eq!(records[0]["user"], "alice");
    assert_eq!(records[0]["identity"], "alice@corp.example.com");
    assert_eq!(records[1]["identity"], "bob@corp.example.com");
}

#[test]
fn servicenow_user_map_file_maps_a_login_and_must_be_root_only() {
    let gate = Gate::service_now();
    let map = gate.dir.join("users.map");
    write_root_only(&map, "# login = employee number\njdoe = E1003\n");
    let extra = format!(
        "ValidateRequestingUser=\"Yes\"\nUserMatchField=\"employee_number\"\nUserMapFile=\"{}\"\n",
        map.display()
    );
    let service = gate.service(&extra);
    // E1003 is carol, who opened INC0010001 (a requester); alice is not mapped and is
    // compared as "alice", which no employee number is.
    assert_granted(&login(&service, "jdoe", "INC0010001"));
    let outcome = login(&service, "alice", "INC0010001");
    assert_refused(&outcome, "Ticket INC0010001 was not requested by alice");
    let requests = gate.table_requests();
    assert_eq!(
        requests[0].2,
        "number,state,caller_id.employee_number,opened_by.employee_number"
    );
    let records = gate.audit();
    assert_eq!(records[0]["user"], "jdoe");
    assert_eq!(records[0]["identity"], "E1003");
    assert_eq!(records[0]["reason"], "ticket exists; passed requester");

    fs::set_permissions(&map, fs::Permissions::from_mode(0o644)).expect("chmod");
    let outcome = login(&service, "jdoe", "INC0010001");
    assert_code(&outcome, PAM_SERVICE_ERR);
    assert_eq!(outcome.errors(), [MISCONFIGURED]);
    assert_eq!(gate.request_count(), 2);
}

#[test]
fn servicenow_identities_that_could_rewrite_the_membership_query_never_reach_it() {
    let gate = Gate::service_now();
    let service =
        gate.service("ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"assignment_group\"\n");
    // Sent as is, `^NQ` would start a second query that matches every member of the
    // group (the simulator evaluates it: see its test
    // group_memberships_dot_walk_and_an_injected_nq_widens_them).
    let injected = "carol^NQuser.user_nameISNOTEMPTY";
    let outcome = login(&service, injected, "INC0010001");
    assert_code(&outcome, PAM_MAXTRIES);
    assert_eq!(
        outcome.errors(),
        [
            "Your name in the ticketing system (carol^NQuser.user_nameISNOTEMPTY) cannot be looked up in a group: it holds characters an encoded query cannot carry; ask your administrator to map it in UserMapFile"
        ]
    );
    let tables: Vec<String> = gate
        .table_requests()
        .into_iter()
        .map(|(table, ..)| table)
        .collect();
    assert_eq!(tables, ["incident"]);
    let record = gate.only_record();
    assert_eq!(record["decision"], "deny");
    assert_eq!(record["user"], injected);

    // Quotes, `=`, `@` and non-ASCII are carried as they are, percent-encoded, and match
    // nobody: the query means exactly what was sent.
    for user in ["o'brien=x@corp", "jöhn\"doe"] {
        let outcome = login(&service, user, "INC0010001");
        assert_refused(
            &outcome,
            &format!("Ticket INC0010001 has an assignment group that {user} is not a member of"),
        );
        let (table, query, _) = gate.table_requests().pop().expect("a request");
        assert_eq!(table, "sys_user_grmember");
        assert_eq!(query, format!("user.user_name={user}^group={LINUX_OPS}"));
    }
}

// ---------------------------------------------------------------------------------------
// 2. and 3. Remedy.

#[test]
fn remedy_assignee_and_assignment_group_from_the_support_group_form() {
    let gate = Gate::remedy();
    let service = gate.service(
        "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"assignee, assignment_group\"\n",
    );
    // dave is the assignee: one entry query.
    assert_granted(&login(&service, "dave", "INC000000000001"));
    // bob is in the assigned support group: one more query, on the association form.
    assert_granted(&login(&service, "bob", "INC000000000001"));
    // carol is in another group.
    let outcome = login(&service, "carol", "INC000000000001");
    assert_refused(
        &outcome,
        "Ticket INC000000000001 is not assigned to carol, has an assignment group that carol is not a member of; any one of assignee, assignment_group is required",
    );
    let queries = gate.entry_queries();
    let forms: Vec<&str> = queries.iter().map(|(form, ..)| form.as_str()).collect();
    assert_eq!(
        forms,
        [
            "HPD:Help Desk",
            "HPD:Help Desk",
            SUPPORT_GROUP_FORM,
            "HPD:Help Desk",
            SUPPORT_GROUP_FORM
        ]
    );
    assert_eq!(
        queries[0].2,
        "values(Incident Number,Status,Customer Login ID,Submitter,Assignee Login ID,Assigned Group ID)"
    );
    assert_eq!(
        queries[2].1,
        format!("'Login ID' = \"bob\" AND 'Support Group ID' = \"{LINUX_OPS_GROUP}\"")
    );
    assert_eq!(queries[2].2, "values(Login ID,Support Group ID)");
    let records = gate.audit();
    let decisions: Vec<&str> = records
        .iter()
        .map(|record| record["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(decisions, ["allow", "allow", "deny"]);
    assert_eq!(records[2]["check"], "roles");
    assert!(
        !records[2]["reason"]
            .as_str()
            .unwrap_or("")
            .contains(DBA_GROUP)
    );
}

#[test]
fn remedy_change_fields_and_the_user_map() {
    let gate = Gate::remedy();
    let map = gate.dir.join("users.map");
    write_root_only(&map, "ops-dave = dave\n");
    let service = gate.service(&format!(
        "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"assignee\"\nUserMapFile=\"{}\"\n",
        map.display()
    ));
    assert_granted(&login(&service, "ops-dave", "CRQ000000000001"));
    let queries = gate.entry_queries();
    assert_eq!(queries.len(), 1);
    assert!(
        queries[0].2.ends_with(",Requested By,Submitter,ASLOGID)"),
        "{}",
        queries[0].2
    );
    let record = gate.only_record();
    assert_eq!(record["user"], "ops-dave");
    assert_eq!(record["identity"], "dave");
}

#[test]
fn remedy_identities_are_quoted_so_that_they_cannot_widen_the_qualification() {
    let gate = Gate::remedy();
    let service =
        gate.service("ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"assignment_group\"\n");
    // Unquoted, this would read `'Login ID' = "x" OR 'Login ID' != "" AND …`: every
    // member of the group (the simulator evaluates qualifications: see its test
    // quoting_and_injection).
    for user in ["x\" OR 'Login ID' != \"", "jöhn'doe=1@corp"] {
        let outcome = login(&service, user, "INC000000000001");
        assert_refused(
            &outcome,
            &format!(
                "Ticket INC000000000001 has an assignment group that {user} is not a member of"
            ),
        );
        let (form, q, _) = gate.entry_queries().pop().expect("a query");
        assert_eq!(form, SUPPORT_GROUP_FORM);
        assert_eq!(
            q,
            format!(
                "'Login ID' = \"{}\" AND 'Support Group ID' = \"{LINUX_OPS_GROUP}\"",
                user.replace('"', "\"\"")
            )
        );
    }
    let records = gate.audit();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|record| record["decision"] == "deny"));
}

#[test]
fn keys_outside_their_modes_are_configuration_errors() {
    let gate = Gate::remedy();
    let service = gate.service("UserMatchField=\"email\"\n");
    let outcome = login(&service, "alice", "INC000000000001");
    assert_code(&outcome, PAM_SERVICE_ERR);
    assert_eq!(outcome.errors(), [MISCONFIGURED]);
    let gate = Gate::service_now();
    let service = gate.service("AllowedUserRoles=\"assignee\"\n");
    let outcome = login(&service, "alice", "INC0010001");
    assert_code(&outcome, PAM_SERVICE_ERR);
    assert_eq!(gate.request_count(), 0);
}

/// `pam-ticket test` shows who the login is in the ticketing system, the verdict of the
/// roles check with the membership the decision used, and the audit record, as the module
/// would decide.
#[test]
fn pam_ticket_test_shows_the_identity_and_the_roles_verdict() {
    let gate = Gate::service_now();
    let map = gate.dir.join("users.map");
    write_root_only(&map, "ops-bob = bob\n");
    let config = gate.dir.join("pam_ticket.conf");
    write_root_only(
        &config,
        &gate.config_text(&format!(
            "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"assignee, assignment_group\"\nUserMapFile=\"{}\"\n",
            map.display()
        )),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pam-ticket"))
        .args(["test", "--user", "ops-bob", "--config"])
        .arg(&config)
        .arg("INC0010001")
        .output()
        .expect("run pam-ticket");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    for line in [
        "login                  user ops-bob, in the ticketing system bob",
        "lookup          FOUND  ServiceNow: incident INC0010001, state In Progress, requesters alice/carol, assignee dave, assignment group 0a5f0000000000000000000000000001 (the person is a member)",
        "check roles     PASS   bob is in its assignment group",
        "decision        ALLOW  PAM_SUCCESS",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let tables: Vec<String> = gate
        .table_requests()
        .into_iter()
        .map(|(table, ..)| table)
        .collect();
    assert_eq!(tables, ["incident", "sys_user_grmember"]);
    // Without --audit nothing is written, but the record is shown.
    assert!(gate.audit().is_empty());
    assert!(out.contains("\"identity\":\"bob\""), "{out}");
}

/// `pam-ticket check` asks the membership source once when AllowedUserRoles has
/// assignment_group, so that an account that may not read it, or a misspelt form, shows
/// before a login meets it.
#[test]
fn pam_ticket_check_tries_the_membership_query() {
    let check = |gate: &Gate| {
        let config = gate.dir.join("pam_ticket.conf");
        write_root_only(
            &config,
            &gate.config_text(
                "ValidateRequestingUser=\"Yes\"\nAllowedUserRoles=\"requester, assignment_group\"\n",
            ),
        );
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_pam-ticket"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .expect("run pam-ticket");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let service_now = Gate::service_now();
    let (code, out) = check(&service_now);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "  OK    sys_user_grmember answered a membership query (AllowedUserRoles=assignment_group)"
        ),
        "{out}"
    );
    let (table, query, _) = service_now.table_requests().pop().expect("a request");
    assert_eq!(table, "sys_user_grmember");
    assert_eq!(
        query,
        format!("user.user_name=pam-ticket-check^group={}", "0".repeat(32))
    );
    let Sim::ServiceNow(sim) = &service_now.sim else {
        unreachable!()
    };
    sim.remove_table("sys_user_grmember");
    let (code, out) = check(&service_now);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("  FAIL  sys_user_grmember, which AllowedUserRoles=assignment_group reads, gave no answer: unexpected HTTP 400: Invalid table sys_user_grmember"),
        "{out}"
    );

    let remedy = Gate::remedy();
    let (code, out) = check(&remedy);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("  OK    form \"CTM:Support Group Association\" answered a membership query"),
        "{out}"
    );
    let Sim::Remedy(sim) = &remedy.sim else {
        unreachable!()
    };
    sim.remove_form(SUPPORT_GROUP_FORM);
    let (code, out) = check(&remedy);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("  FAIL  form \"CTM:Support Group Association\", which AllowedUserRoles=assignment_group reads, gave no answer: Remedy form \"CTM:Support Group Association\" does not exist"),
        "{out}"
    );
}
