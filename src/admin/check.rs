//! `pam-ticket check`: parses the configuration with the module's own parser, prints the
//! effective settings (secrets masked), then makes one request through the module's own
//! backend to prove that the account and the TLS trust work.

use super::args::{self, EXIT_CODES, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parsed};
use crate::backend::{self, BadAnswer, LookupError, Outage, PROBE_TICKET, ProbeLine};
use crate::clock::{Clock, Deadline, SystemClock};
use crate::config::{Config, Credentials, FailMode};
use crate::http::{TransportError, Unreachable};

const HELP: &str = "usage: pam-ticket check [--config PATH] [--arg MODULE-ARGUMENT]...

Reads the configuration exactly as the module does (default /etc/security/pam_ticket.conf),
reports any error with file:line, prints the effective settings with secrets masked, then
logs on to the ticketing system (or the portal) once, with the module's own HTTP client,
and says whether the connection account and the TLS trust work.

What it asks, by ticketing system (nothing is written to the audit log):
  ServiceNow  looks up an incident that does not exist (PAMTICKETCHECK0); \"not found\"
              proves that the certificate verified and that the account may read tickets.
  BMCRemedy   logs on (its own token: the token cache is neither read nor written),
              queries PAMTICKETCHECK0 on the incident form and on the change form, logs off.
  portal      (FetchCredentialsThroughPVWA=Yes) logs on, counts the vault accounts the
              gateway user may list, logs off; no password is retrieved, so the portal's
              ticketing integration is not exercised (use `pam-ticket test` for that).

  --config PATH          the configuration file (as config=PATH on the pam.d line)
  --arg MODULE-ARGUMENT  an argument as written on the pam.d line (debug, Key=Value);
                         repeat it for several, e.g. --arg FailMode=safe
";

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
            config.ca_bundle.as_ref().map_or_else(
                || "(none found: set CAFile)".to_string(),
                |bundle| bundle.path().display().to_string(),
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

/// One exchange through the module's backend (`TicketSource::probe`); interprets the
/// answer for an admin.
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
    let timeout = config.timeout.as_secs_f64();
    match &config.portal {
        Some(portal) => println!(
            "connection: logging on to the portal at {} (Timeout {timeout} s)",
            portal.url
        ),
        None => println!(
            "connection: asking {} at {} for {PROBE_TICKET} (Timeout {timeout} s)",
            source.system_name(),
            optional(config.system_url.as_ref()),
        ),
    }
    let clock = SystemClock;
    let started = clock.monotonic();
    let result = source.probe(Deadline::new(&clock, config.timeout));
    let elapsed = clock.since(started).as_millis();
    let tls_ok = "  OK    TLS: the server's certificate verified against the trusted CAs";
    let fail = |tls_verified: bool, what: String| {
        if tls_verified {
            println!("{tls_ok}");
        }
        println!("  FAIL  {what}");
        println!("  after {elapsed} ms");
        println!("result: FAILED");
        EXIT_FAILED
    };
    match result {
        Ok(lines) => {
            println!("{tls_ok}");
            let mut problems = 0;
            for line in lines {
                match line {
                    ProbeLine::Ok(text) => println!("  OK    {text}"),
                    ProbeLine::Problem(text) => {
                        problems += 1;
                        println!("  FAIL  {text}");
                    }
                }
            }
            println!("  answered in {elapsed} ms");
            if let Some(portal) = &config.portal {
                // Only a Retrieve with a real ticket exercises the portal's ticketing
                // integration, and check never retrieves a password.
                println!(
                    "  not checked: PortalTicketingSystemName {:?} (only a real ticket tests it: \
                     pam-ticket test --user <you>@<target user>@<target address> TICKET)",
                    portal.ticketing_system_name
                );
            }
            if problems == 0 {
                println!("result: OK");
                EXIT_OK
            } else {
                println!("result: FAILED");
                EXIT_FAILED
            }
        }
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
        Err(LookupError::Unavailable(outage)) => {
            let tls_verified =
                !matches!(outage, Outage::Unreachable(_) | Outage::TokenLockTimedOut);
            let hint = match &outage {
                Outage::Unreachable(Unreachable::NameResolution) => " (check the host name)",
                Outage::Unreachable(Unreachable::TimedOut) => {
                    " (check the firewall, HTTPSProxy and Timeout)"
                }
                Outage::Unreachable(_) => " (check the URL, port, firewall and HTTPSProxy)",
                Outage::ServerError { .. }
                | Outage::RateLimited { .. }
                | Outage::TokenLockTimedOut => "",
            };
            let what = if config.portal.is_some() {
                "the portal is unavailable"
            } else {
                "the ticketing system is unavailable"
            };
            let mode = match config.fail_mode {
                FailMode::Secure => "logins are refused while it lasts (FailMode=secure)",
                FailMode::Safe => "logins are let in as failsafe while it lasts (FailMode=safe)",
            };
            fail(
                tls_verified,
                format!("{what}: {outage}{hint}; an outage: {mode}"),
            )
        }
        Err(LookupError::AccountRefused { status, detail }) => fail(
            true,
            format!(
                "{}. This is not an outage: every login is denied, in both fail modes, \
                 until the account is fixed",
                backend::account_refused_text(config, status, &detail)
            ),
        ),
        Err(LookupError::BadAnswer(why)) => {
            let (tls_verified, hint) = match &why {
                BadAnswer::Transport(TransportError::Tls(_)) => (
                    false,
                    " (is the URL's port the server's HTTPS port, and does it speak TLS 1.2 or 1.3?)",
                ),
                BadAnswer::Transport(TransportError::InvalidRequest(_)) => (
                    false,
                    " (check the URL for a leftover placeholder or a stray character)",
                ),
                BadAnswer::Transport(TransportError::ProxyRefused(_)) => {
                    (false, " (check HTTPSProxy and what the proxy lets through)")
                }
                // The answer came over TLS, unless a proxy may have sent it before the tunnel.
                BadAnswer::Transport(
                    TransportError::Protocol(_)
                    | TransportError::HeaderTooLarge { .. }
                    | TransportError::BodyTooLarge { .. },
                ) => (
                    config.https_proxy.is_none(),
                    " (is the URL the API's, not a web page's?)",
                ),
                BadAnswer::Transport(
                    TransportError::Other(_)
                    | TransportError::Unreachable(_)
                    | TransportError::UntrustedCertificate(_),
                ) => (false, ""),
                BadAnswer::UnexpectedStatus { .. } | BadAnswer::BadResponse { .. } => {
                    (true, " (check the URL's path and the account's roles)")
                }
                BadAnswer::TicketCheckFailed { .. } => (true, ""),
            };
            let who = if config.portal.is_some() {
                "the portal"
            } else {
                "the ticketing system"
            };
            fail(
                tls_verified,
                format!(
                    "{who} did not give the API's answer: {why}{hint}; not an outage: every \
                     login is denied, in both fail modes"
                ),
            )
        }
        // The probes map every answer about the ticket itself to a finding; these remain
        // only if a backend passed one on, and then the server did answer.
        Err(
            error @ (LookupError::NotFound
            | LookupError::Ambiguous { .. }
            | LookupError::RefusedByPortal { .. }),
        ) => fail(true, format!("unexpected answer to the probe: {error:?}")),
    }
}
