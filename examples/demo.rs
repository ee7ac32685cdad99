//! `make demo`: the module, loaded by the real libpam, asking for tickets and checking them
//! against a ServiceNow simulator over HTTPS on loopback, with a CA made for this run.
//!
//! It prints what the person sees and the audit lines each login writes. Runs as any
//! user; nothing outside a temporary directory is touched.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use support::https::TestServer;
use support::pam::{self, Login, PamService};
use support::pki::{ServerCert, TestPki};
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

fn main() {
    let dir = TestDir::new("demo");
    let pki = TestPki::generate(&dir.join("pki"));
    let simulator = Arc::new(ServiceNowSim::new("svc_gateway", "demo-password"));
    let server = TestServer::start(pki.server_config(ServerCert::Good), simulator.clone());

    let account = dir.join("account.conf");
    fs::write(
        &account,
        "Username=\"svc_gateway\"\nPassword=\"demo-password\"\n",
    )
    .expect("write the account file");
    fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let audit = dir.join("audit.jsonl");
    let config = dir.join("pam_ticket.conf");
    fs::write(
        &config,
        format!(
            "TicketingSystem=\"ServiceNow\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New, In Progress\"\nValidateRequestingUser=\"Yes\"\nMaxAttempts=\"2\"\nTimeout=\"5\"\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display(),
            audit.display()
        ),
    )
    .expect("write the configuration");
    let service = PamService::new(
        &dir.join("pam.d"),
        "sshd-demo",
        &pam::module_path(),
        &[format!("config={}", config.display())],
    );

    println!("pam_ticket demo");
    println!("  module:    {}", pam::module_path().display());
    println!("  simulator: ServiceNow Table API at {}", server.base_url());
    println!("  config:    {}\n", config.display());
    println!("{}", fs::read_to_string(&config).unwrap_or_default());

    let scenarios: [(&str, &[&str]); 3] = [
        (
            "a valid incident (INC0010001, In Progress, caller alice)",
            &["INC0010001"],
        ),
        (
            "a closed incident, then nothing better",
            &["INC0010002", "INC0010002"],
        ),
        (
            "a malformed answer that tries to widen the query",
            &["INC0010001^NQnumberISNOTEMPTY", "INC0010001"],
        ),
    ];
    for (title, answers) in scenarios {
        println!("=== alice logs in with {title}");
        let login = answers
            .iter()
            .fold(Login::new("alice").rhost("192.0.2.10"), |login, answer| {
                login.answer(answer)
            });
        let before = fs::read_to_string(&audit).unwrap_or_default();
        let queries_before = simulator.query_count();
        let outcome = pam::authenticate(&service, &login);
        let mut answers = answers.iter();
        for event in &outcome.events {
            match event {
                pam::Event::Prompt { text, .. } => {
                    println!("  {text}{}", answers.next().unwrap_or(&""))
                }
                pam::Event::Error(text) => println!("  [error] {text}"),
                pam::Event::Info(text) => println!("  [info]  {text}"),
            }
        }
        println!("  -> pam_authenticate: {}", outcome.code_name);
        if let Some(ticket) = outcome.env.get("TICKET_ID") {
            println!("  -> PAM environment: TICKET_ID={ticket}");
        }
        println!(
            "  -> ticket queries sent to ServiceNow: {}",
            simulator.query_count() - queries_before
        );
        let after = fs::read_to_string(&audit).unwrap_or_default();
        for line in after
            .strip_prefix(before.as_str())
            .unwrap_or(&after)
            .lines()
        {
            println!("  audit: {line}");
        }
        println!();
    }
}
