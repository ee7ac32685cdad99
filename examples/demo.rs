//! `make demo`: the module, loaded by the real libpam, asking for tickets and checking them
//! against a ServiceNow simulator over HTTPS on loopback, with a CA made for this run.
//! `make demo SYSTEM=remedy` (`cargo run --example demo -- remedy`) does the same against
//! the BMC Remedy AR REST simulator.
//!
//! It prints what the person sees and the audit lines each login writes. Runs as any
//! user; nothing outside a temporary directory is touched.

use pam_ticket_testkit as support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use support::http::Handler;
use support::https::TestServer;
use support::pam::{self, Login, PamService};
use support::pki::{ServerCert, TestPki};
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

fn main() {
    let dir = TestDir::new("demo");
    let pki = TestPki::generate(&dir.join("pki"));
    let remedy = std::env::args()
        .nth(1)
        .is_some_and(|arg| arg.eq_ignore_ascii_case("remedy"));
    let servicenow = Arc::new(ServiceNowSim::new("svc_gateway", "demo-password"));
    let remedy_sim = Arc::new(RemedySim::new("svc_gateway", "demo-password"));
    let handler: Arc<dyn Handler> = if remedy {
        remedy_sim.clone()
    } else {
        servicenow.clone()
    };
    let query_count = || {
        if remedy {
            remedy_sim.query_count()
        } else {
            servicenow.query_count()
        }
    };
    // Remedy IDs are a prefix and 12 digits; the scenarios are the same tickets.
    let (system, api, valid, closed) = if remedy {
        (
            "BMCRemedy",
            "Remedy AR REST API",
            "INC000000000001",
            "INC000000000002",
        )
    } else {
        (
            "ServiceNow",
            "ServiceNow Table API",
            "INC0010001",
            "INC0010002",
        )
    };
    let server = TestServer::start(pki.server_config(ServerCert::Good), handler);

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
            "TicketingSystem=\"{system}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New, In Progress\"\nValidateRequestingUser=\"Yes\"\nMaxAttempts=\"2\"\nTimeout=\"5\"\n{}",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display(),
            audit.display(),
            if remedy {
                format!("CacheDirectory=\"{}\"\n", dir.join("token-cache").display())
            } else {
                String::new()
            }
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
    println!("  simulator: {api} at {}", server.base_url());
    println!("  config:    {}\n", config.display());
    println!("{}", fs::read_to_string(&config).unwrap_or_default());

    let hostile = if remedy {
        format!("{valid}\" OR 'Status' != \"x")
    } else {
        format!("{valid}^NQnumberISNOTEMPTY")
    };
    let scenarios: [(String, Vec<&str>); 3] = [
        (
            format!("a valid incident ({valid}, In Progress, caller alice)"),
            vec![valid],
        ),
        (
            "a closed incident, then nothing better".to_string(),
            vec![closed, closed],
        ),
        (
            "a malformed answer that tries to widen the query".to_string(),
            vec![hostile.as_str(), valid],
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
        let queries_before = query_count();
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
            "  -> ticket queries sent to {system}: {}",
            query_count() - queries_before
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

    // The ticket as the audit trail: WorkNotes and AskReason, with the module in the
    // session stack too, so that closing the session writes the end note.
    let noted_config = dir.join("pam_ticket.notes.conf");
    let text = fs::read_to_string(&config).unwrap_or_default();
    fs::write(
        &noted_config,
        format!("{text}WorkNotes=\"Yes\"\nAskReason=\"Yes\"\n"),
    )
    .expect("write the configuration");
    fs::set_permissions(&noted_config, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let line = pam::module_line(
        &pam::module_path(),
        &[format!("config={}", noted_config.display())],
    );
    let noted = PamService::with_text(
        &dir.join("pam.d"),
        "sshd-demo-notes",
        &format!("auth required {line}\nsession optional {line}\n"),
    );
    println!(
        "=== with WorkNotes=\"Yes\" and AskReason=\"Yes\": alice logs in with {valid}, stays 2 s, logs out"
    );
    let reason = "restart the stuck print spooler";
    let full = pam::run(
        &noted,
        &Login::new("alice")
            .rhost("192.0.2.10")
            .answer(valid)
            .answer(reason),
        pam::Steps {
            acct_mgmt: false,
            open_session: true,
            tty_ssh: true,
            close_session_after: Some(std::time::Duration::from_secs(2)),
        },
    );
    let mut answers = [valid, reason].into_iter();
    for event in &full.auth.events {
        if let pam::Event::Prompt { text, .. } = event {
            println!("  {text}{}", answers.next().unwrap_or(""));
        }
    }
    println!("  -> pam_authenticate: {}", full.auth.code_name);
    println!(
        "  -> pam_close_session: {}",
        full.close_session_code.map_or("-", pam::code_name)
    );
    let notes: Vec<String> = if remedy {
        remedy_sim
            .entries(support::remedy::INCIDENT_WORK_LOG_FORM)
            .iter()
            .filter_map(|entry| entry["Detailed Description"].as_str().map(str::to_string))
            .collect()
    } else {
        servicenow.work_notes(valid)
    };
    println!(
        "  -> work notes now on {valid} in the simulator ({}):",
        if remedy {
            "HPD:WorkLog entries"
        } else {
            "work_notes"
        }
    );
    for note in notes {
        println!("  ----");
        for line in note.lines() {
            println!("  | {line}");
        }
    }
    println!("  ----");
}
