//! `pam-ticket check`: parses the configuration with the module's own parser, prints the
//! effective settings (secrets masked), then makes one request through the module's own
//! backend to prove that the account and the TLS trust work.

use std::time::Instant;

use super::args::{self, EXIT_CODES, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parsed};
use crate::backend::{self, Lookup, LookupError, Unavailable};
use crate::config::{Config, Credentials, FailMode};
use crate::http::{Deadline, TransportError};
use crate::login::Login;
use crate::ticket::{TicketId, TicketKind};

const HELP: &str = "usage: pam-ticket check [--config PATH] [--arg MODULE-ARGUMENT]...

Reads the configuration exactly as the module does (default /etc/security/pam_ticket.conf),
reports any error with file:line, prints the effective settings with secrets masked, then
logs on to the ticketing system (or the portal) once, with the module's own HTTP client,
and says whether the connection account and the TLS trust work.

The request looks up an incident that does not exist (PAMTICKETCHECK0); a \"not found\"
answer proves that the server's certificate verified and that the account may read
tickets. Nothing is written to the audit log.

  --config PATH          the configuration file (as config=PATH on the pam.d line)
  --arg MODULE-ARGUMENT  an argument as written on the pam.d line (debug, Key=Value);
                         repeat it for several, e.g. --arg FailMode=safe
";

/// The ticket the probe asks for: valid in a query, absent from any real system.
const PROBE_TICKET: &str = "PAMTICKETCHECK0";

/// Runs the subcommand; returns the process exit code.
pub fn run(arguments: &[String]) -> i32 {
    let options = match args::parse(arguments, &["config"], &["arg"], &[]) {
        Ok(Parsed::Help) => {
            println!("{HELP}\n{EXIT_CODES}");
            return EXIT_OK;
        }
        Ok(Parsed::Run(options)) => options,
        Err(problem) => {
            eprintln!("pam-ticket check: {problem}\n\n{HELP}");
            return EXIT_USAGE;
        }
    };
    if !options.positional.is_empty() {
        eprintln!(
            "pam-ticket check: unexpected argument {:?}\n\n{HELP}",
            options.positional[0]
        );
        return EXIT_USAGE;
    }
    let module_arguments = options.all("arg");
    let path = args::config_path_shown(options.value("config"), &module_arguments);
    println!("configuration: {path}");
    let config = match args::load_config(options.value("config"), &module_arguments) {
        Ok(config) => config,
        Err(problem) => {
            println!("  ERROR {problem}");
            println!("result: configuration error; the module would return PAM_SERVICE_ERR");
            return EXIT_CONFIG;
        }
    };
    println!("  OK    parsed and validated");
    println!();
    println!("effective settings:");
    for (key, value) in settings(&config) {
        println!("  {key:<30} {value}");
    }
    println!();
    probe(&config)
}

/// Every setting as `(key, shown value)`; account passwords are never shown, and bypass
/// codes only as a count.
pub fn settings(config: &Config) -> Vec<(&'static str, String)> {
    let yes_no = |flag: bool| if flag { "Yes" } else { "No" }.to_string();
    let list = |allowed: &Option<Vec<String>>| match allowed {
        Some(entries) => format!("Yes: {}", entries.join(", ")),
        None => "No".to_string(),
    };
    let mut shown = vec![
        (
            "TicketingSystem",
            config
                .ticketing_system
                .map_or_else(|| "(none)".to_string(), |system| system.name().to_string()),
        ),
        ("SystemURL", optional(config.system_url.as_ref())),
        (
            "ConnectionAccountFile",
            account(config.connection_account.as_ref()),
        ),
        (
            "CAFile",
            config.ca_file.as_ref().map_or_else(
                || "(none found: set CAFile)".to_string(),
                |path| path.display().to_string(),
            ),
        ),
        ("EnterTicketingInfo", yes_no(config.enter_ticketing_info)),
        (
            "ValidateTicketNumber",
            yes_no(config.validate_ticket_number),
        ),
        ("TicketFormatRegex", optional(config.ticket_format.as_ref())),
        (
            "IncidentTicketIdentification",
            config.incident_identification.to_string(),
        ),
        (
            "ChangeTicketIdentification",
            config.change_identification.to_string(),
        ),
        (
            "ValidateIncidentTicketState",
            list(&config.allowed_incident_states),
        ),
        (
            "ValidateChangeTicketState",
            list(&config.allowed_change_states),
        ),
        (
            "ValidateApprovalStatus",
            list(&config.allowed_approval_statuses),
        ),
        (
            "ValidateOperationTime",
            yes_no(config.validate_operation_time),
        ),
        (
            "ValidateRequestingUser",
            yes_no(config.validate_requesting_user),
        ),
        (
            "FailsafeBypassCode",
            format!("{} hashed code(s) (not shown)", config.bypass_codes.len()),
        ),
        (
            "FailMode",
            match config.fail_mode {
                FailMode::Secure => "secure",
                FailMode::Safe => "safe",
            }
            .to_string(),
        ),
        ("Timeout", format!("{} s", config.timeout.as_secs_f64())),
        ("HTTPSProxy", optional(config.https_proxy.as_ref())),
        ("MaxAttempts", config.max_attempts.to_string()),
        ("Prompt", format!("{:?}", config.prompt)),
        (
            "AuditLogFile",
            config.audit_log_file.as_ref().map_or_else(
                || "(none: syslog only)".to_string(),
                |path| path.display().to_string(),
            ),
        ),
        (
            "FetchCredentialsThroughPVWA",
            yes_no(config.portal.is_some()),
        ),
    ];
    if let Some(portal) = &config.portal {
        shown.extend([
            ("PortalURL", portal.url.to_string()),
            (
                "PortalAuthMethod",
                portal.auth_method.path_segment().to_string(),
            ),
            ("PortalAccountFile", account(Some(&portal.account))),
            (
                "PortalTicketingSystemName",
                portal.ticketing_system_name.clone(),
            ),
            ("PortalReason", format!("{:?}", portal.reason_template)),
        ]);
    }
    if config.ticketing_system == Some(crate::config::TicketingSystem::BmcRemedy) {
        let remedy = &config.remedy;
        shown.extend([
            ("RemedyIncidentForm", remedy.incident_form.clone()),
            ("RemedyIncidentIDField", remedy.incident_id_field.clone()),
            (
                "RemedyIncidentStatusField",
                remedy.incident_status_field.clone(),
            ),
            (
                "RemedyIncidentRequesterFields",
                remedy.incident_requester_fields.join(", "),
            ),
            ("RemedyChangeForm", remedy.change_form.clone()),
            ("RemedyChangeIDField", remedy.change_id_field.clone()),
            (
                "RemedyChangeStatusField",
                remedy.change_status_field.clone(),
            ),
            (
                "RemedyChangeApprovalField",
                remedy.change_approval_field.clone(),
            ),
            ("RemedyChangeStartField", remedy.change_start_field.clone()),
            ("RemedyChangeEndField", remedy.change_end_field.clone()),
            (
                "RemedyChangeRequesterFields",
                remedy.change_requester_fields.join(", "),
            ),
            (
                "RemedyTokenLifetime",
                format!("{} s", remedy.token_lifetime.as_secs()),
            ),
        ]);
    }
    shown.push((
        "CacheDirectory",
        config.cache_directory.display().to_string(),
    ));
    shown.push(("debug", yes_no(config.debug)));
    shown
}

fn optional(value: Option<&impl std::fmt::Display>) -> String {
    value.map_or_else(|| "(none)".to_string(), |value| value.to_string())
}

fn account(credentials: Option<&Credentials>) -> String {
    credentials.map_or_else(
        || "(none)".to_string(),
        |credentials| {
            format!(
                "{} (Username={}, Password=********)",
                credentials.source.display(),
                credentials.username
            )
        },
    )
}

/// One request through the module's backend; interprets the answer for an admin.
fn probe(config: &Config) -> i32 {
    if !config.enter_ticketing_info {
        println!("connection: not tried: EnterTicketingInfo=No (the module returns PAM_IGNORE)");
        println!("result: OK");
        return EXIT_OK;
    }
    if !config.validate_ticket_number {
        println!("connection: not tried: ValidateTicketNumber=No (format checks only, no request)");
        println!("result: OK");
        return EXIT_OK;
    }
    let mut source = match backend::from_config(config) {
        Ok(source) => source,
        Err(problem) => {
            println!("connection: FAIL cannot set up the ticket source: {problem}");
            println!("result: FAILED; the module would return PAM_SERVICE_ERR");
            return EXIT_FAILED;
        }
    };
    let target = config.portal.as_ref().map_or_else(
        || optional(config.system_url.as_ref()),
        |portal| portal.url.to_string(),
    );
    println!(
        "connection: asking {} at {target} for {PROBE_TICKET} (Timeout {} s)",
        source.system_name(),
        config.timeout.as_secs_f64()
    );
    let probe_id = TicketId {
        text: PROBE_TICKET.to_string(),
        kind: TicketKind::Incident,
    };
    // In portal mode the probe needs a target; this one names an account no vault holds,
    // so after the logon the account search answers "none" and no password is retrieved.
    let portal = config.portal.is_some();
    let pam_user = if portal {
        "pam-ticket-check@pam-ticket-probe@probe.invalid"
    } else {
        "pam-ticket-check"
    };
    let login = Login::new(pam_user, None, Some("pam-ticket".to_string()));
    let started = Instant::now();
    let result = source.lookup(&probe_id, &login, Deadline::after(config.timeout));
    let elapsed = started.elapsed().as_millis();
    let ok = |what: &str| {
        println!("  OK    TLS: the server's certificate verified against the trusted CAs");
        println!("  OK    account: {what}");
        println!("  answered in {elapsed} ms");
        println!("result: OK");
        EXIT_OK
    };
    let fail = |tls_ok: bool, what: String| {
        if tls_ok {
            println!("  OK    TLS: the server's certificate verified against the trusted CAs");
        }
        println!("  FAIL  {what}");
        println!("  after {elapsed} ms");
        println!("result: FAILED");
        EXIT_FAILED
    };
    match result {
        Err(LookupError::NotFound) => ok("logged on; the probe ticket was not found, as expected"),
        Ok(Lookup::Found(_)) | Err(LookupError::Ambiguous { .. }) => {
            ok("logged on; the server answered the query")
        }
        Ok(Lookup::AcceptedByPortal { .. }) | Err(LookupError::RefusedByPortal { .. }) => {
            ok("logged on to the portal; it answered the ticket check")
        }
        Err(LookupError::NotCheckable { .. }) if portal => ok(
            "logged on to the portal; the account search answered (no probe account, as expected)",
        ),
        Err(LookupError::NotCheckable { message }) => fail(true, message),
        Err(LookupError::UntrustedServer { detail }) => fail(
            false,
            format!(
                "TLS: the server's certificate did not verify: {detail}; \
                 the module denies every login in both fail modes \
                 (check CAFile; `pam-ticket ca check URL` shows the chain)"
            ),
        ),
        Err(LookupError::Misconfigured { detail }) => fail(false, format!("setup: {detail}")),
        Err(LookupError::Unavailable(why)) => {
            let tls_ok = !matches!(why, Unavailable::Transport(_));
            let hint = match &why {
                Unavailable::AccountRejected { .. } => {
                    " (check Username and Password in the account file, and the account's roles)"
                }
                Unavailable::Transport(TransportError::NameResolution) => " (check the host name)",
                Unavailable::Transport(TransportError::TimedOut) => {
                    " (check the firewall, HTTPSProxy and Timeout)"
                }
                Unavailable::Transport(_) => " (check the URL, port, firewall and HTTPSProxy)",
                _ => "",
            };
            fail(
                tls_ok,
                format!("the ticketing system is unavailable: {why}{hint}"),
            )
        }
    }
}
