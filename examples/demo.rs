//! `make demo`: the module, loaded by the real libpam, asking for tickets and checking them
//! against a ServiceNow simulator over HTTPS on loopback, with a CA made for this run.
//! `make demo SYSTEM=remedy` (`cargo run --example demo -- remedy`) does the same against
//! the BMC Remedy AR REST simulator, and `make demo SYSTEM=privilege-cloud` runs portal
//! mode (FetchCredentialsThroughPVWA=Yes) through a simulated CyberArk Privilege Cloud:
//! platform tokens from an Identity tenant, sent as Bearer to the portal, which checks the
//! ticket with its own ServiceNow integration.
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
use support::portal::PortalChain;
use support::remedy::RemedySim;
use support::servicenow::ServiceNowSim;
use support::tmp::TestDir;

fn main() {
    if std::env::args()
        .nth(1)
        .is_some_and(|arg| arg.eq_ignore_ascii_case("privilege-cloud"))
    {
        privilege_cloud();
        return;
    }
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
            "TicketingSystem=\"{system}\"\nSystemURL=\"{}\"\nConnectionAccountFile=\"{}\"\nCAFile=\"{}\"\nAuditLogFile=\"{}\"\nValidateIncidentTicketState=\"Yes\"\nAllowedIncidentTicketStates=\"New, In Progress\"\nValidateRequestingUser=\"Yes\"\nMaxAttempts=\"2\"\nTimeout=\"5\"\nCacheDirectory=\"{}\"\n",
            server.base_url(),
            account.display(),
            pki.ca_pem_path().display(),
            audit.display(),
            // Remedy's token and, with WorkNotes, the session records: the demo's own,
            // not /run/pam_ticket, which a user that is not root cannot create.
            dir.join("token-cache").display(),
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

/// Portal-mode logins through a simulated Privilege Cloud: the Identity tenant issues a
/// platform token to the gateway's service user once, every login reuses it from the
/// cache, a revoked one is replaced after one 401, and nothing is ever logged off.
fn privilege_cloud() {
    const SERVICE_USER: &str = "pam-gateway@cyberark.cloud.4711";
    const SECRET: &str = "demo-service-secret";
    let chain = PortalChain::start_privilege_cloud("demo-cloud", SERVICE_USER, SECRET);
    let dir = &chain.dir;
    let account = dir.join("portal-account");
    fs::write(
        &account,
        format!("Username=\"{SERVICE_USER}\"\nPassword=\"{SECRET}\"\n"),
    )
    .expect("write the account file");
    fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let audit = dir.join("audit.jsonl");
    let cache = dir.join("token-cache");
    let config = dir.join("pam_ticket.conf");
    fs::write(
        &config,
        format!(
            "FetchCredentialsThroughPVWA=\"Yes\"\nPortalURL=\"{}\"\nPortalAuthMethod=\"PlatformToken\"\nIdentityURL=\"{}\"\nPortalAccountFile=\"{}\"\nCAFile=\"{}\"\nCacheDirectory=\"{}\"\nAuditLogFile=\"{}\"\nPortalReason=\"SSH by %u to %t@%h\"\nMaxAttempts=\"2\"\nTimeout=\"5\"\n",
            chain.portal_url(),
            chain.identity_url(),
            account.display(),
            chain.pki.ca_pem_path().display(),
            cache.display(),
            audit.display(),
        ),
    )
    .expect("write the configuration");
    let service = PamService::new(
        &dir.join("pam.d"),
        "psmp-demo",
        &pam::module_path(),
        &[format!("config={}", config.display())],
    );

    println!("pam_ticket demo: CyberArk Privilege Cloud (portal mode, platform tokens)");
    println!("  module:          {}", pam::module_path().display());
    println!(
        "  Identity tenant: {} (POST /oauth2/platformtoken)",
        chain.identity_url()
    );
    println!(
        "  portal:          {} (Bearer-only, validates tickets with ServiceNow at {})",
        chain.portal_url(),
        chain.servicenow_server.base_url()
    );
    println!("  config:          {}\n", config.display());
    println!("{}", fs::read_to_string(&config).unwrap_or_default());

    let portal = &chain.portal;
    let scenarios: [(&str, &str, Vec<&str>, bool); 4] = [
        (
            "alice asks for root@db01 with a valid incident (INC0010001, In Progress)",
            "alice@root@db01.example.com",
            vec!["INC0010001"],
            false,
        ),
        (
            "bob asks for root@db01 with the same incident: the cached token is reused",
            "bob@root@db01.example.com",
            vec!["INC0010001"],
            false,
        ),
        (
            "alice tries a closed incident, then nothing better",
            "alice@root@db01.example.com",
            vec!["INC0010002", "INC0010002"],
            false,
        ),
        (
            "the tenant revokes the token; alice logs in again: one 401, one new token",
            "alice@root@db01.example.com",
            vec!["INC0010001"],
            true,
        ),
    ];
    let logins = scenarios.len();
    for (title, user, answers, revoke_first) in scenarios {
        println!("=== {title}");
        if revoke_first {
            portal.revoke_platform_tokens();
        }
        let login = answers
            .iter()
            .fold(Login::new(user).rhost("192.0.2.10"), |login, answer| {
                login.answer(answer)
            });
        let before = fs::read_to_string(&audit).unwrap_or_default();
        let tokens_before = portal.token_requests();
        let (_, searches_before, retrieves_before, logoffs_before) = portal.counts();
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
        let (_, searches, retrieves, logoffs) = portal.counts();
        println!(
            "  -> platform token requests: {}; portal calls with Bearer: {} account search(es), {} Retrieve(s); logoffs: {}",
            portal.token_requests() - tokens_before,
            searches - searches_before,
            retrieves - retrieves_before,
            logoffs - logoffs_before
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
    let files: Vec<String> = fs::read_dir(&cache)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    println!(
        "token cache {} (0700, token file 0600): {}",
        cache.display(),
        files.join(", ")
    );
    println!(
        "in all: {} platform token request(s) for {} logins, no logoff",
        portal.token_requests(),
        logins
    );
}
