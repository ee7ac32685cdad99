//! One valid and one closed ticket through the real libpam, against whichever module
//! `$PAM_TICKET_SO` names (else the debug build). tests/dist.sh runs it against the module
//! taken from a scratch root the RPM was installed into, so the file an admin would get is
//! the one that is loaded, over real HTTPS against the ServiceNow simulator.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use support::https::TestServer;
use support::pam::{Login, PAM_MAXTRIES, PAM_SUCCESS, PamService, authenticate, module_path};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

const ACCOUNT_USER: &str = "svc_pam_ticket";
const ACCOUNT_PASSWORD: &str = "S3rvice-Passw0rd!";

fn write_root_only(path: &Path, text: &str) {
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

fn audit_records(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
        .collect()
}

#[test]
fn a_valid_ticket_is_let_in_and_a_closed_one_refused() {
    let module = module_path();
    assert!(module.is_file(), "{} is missing", module.display());
    let dir = TestDir::new("installed-module");
    let pki = TestPki::generate(&dir.join("pki"));
    let sim = Arc::new(ServiceNowSim::new(ACCOUNT_USER, ACCOUNT_PASSWORD));
    let server = TestServer::start(pki.server_config(ServerCert::Good), sim.clone());
    let account = dir.join("account.conf");
    write_root_only(
        &account,
        &format!("Username=\"{ACCOUNT_USER}\"\nPassword=\"{ACCOUNT_PASSWORD}\"\n"),
    );
    let audit = dir.join("audit.jsonl");
    let config = dir.join("pam_ticket.conf");
    write_root_only(
        &config,
        &format!(
            "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nTimeout=\"3\"\nValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New, In Progress\"\nMaxAttempts=\"1\"\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display(),
            audit.display()
        ),
    );
    let service = PamService::new(
        &dir.join("pam.d"),
        "sshd-installed",
        &module,
        &[format!("config={}", config.display())],
    );

    let valid = authenticate(
        &service,
        &Login::new("alice").rhost("10.0.0.7").answer("INC0010001"),
    );
    assert_eq!(valid.code, PAM_SUCCESS, "{}", valid.transcript());
    assert_eq!(
        valid.prompts(),
        vec!["Ticket ID: "],
        "{}",
        valid.transcript()
    );
    assert!(valid.errors().is_empty(), "{}", valid.transcript());

    let closed = authenticate(
        &service,
        &Login::new("alice").rhost("10.0.0.7").answer("INC0010002"),
    );
    assert_eq!(closed.code, PAM_MAXTRIES, "{}", closed.transcript());
    assert_eq!(
        closed.errors(),
        vec!["Ticket INC0010002 is Closed; allowed states: New, In Progress"],
        "{}",
        closed.transcript()
    );

    // The backend was asked once per ticket, for exactly that ticket.
    let received = sim.received();
    assert_eq!(received.len(), 2, "{received:?}");
    for (query, number) in received.iter().zip(["INC0010001", "INC0010002"]) {
        assert_eq!(query.table, "incident", "{query:?}");
        assert!(
            query
                .sysparm_query
                .as_deref()
                .is_some_and(|text| text.contains(number)),
            "{query:?}"
        );
    }

    let records = audit_records(&audit);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["decision"], "allow");
    assert_eq!(records[0]["ticket"], "INC0010001");
    assert_eq!(records[1]["decision"], "deny");
    assert_eq!(records[1]["ticket"], "INC0010002");
}
