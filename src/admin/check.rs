//! `pam-ticket check`: parses the configuration with the module's own parser, prints the
//! effective settings (secrets masked), then makes one request through the module's own
//! backend to prove that the account and the TLS trust work.

use super::args::{self, EXIT_CODES, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parsed};
use crate::backend::{
    self, BadAnswer, ChoiceField, LookupError, Outage, PROBE_TICKET, ProbeLine, TicketSource,
};
use crate::clock::{Clock, Deadline, SystemClock};
use crate::config::{Config, Credentials, FailMode, KEYS, Key, kind_keys};
use crate::http::{TransportError, Unreachable};
use crate::spelling;
use crate::ticket::TicketKind;

const HELP: &str = "usage: pam-ticket check [--config PATH] [--arg MODULE-ARGUMENT]...

Reads the configuration exactly as the module does (default /etc/security/pam_ticket.conf)
and reports every error with file:line (the module stops at the first), prints the
effective settings of the keys that have an effect in its mode (ServiceNow, BMCRemedy or
portal) with secrets masked, then logs on to the ticketing system (or the portal) once,
with the module's own HTTP client, and says whether the connection account and the TLS
trust work.

What it asks, by ticketing system (nothing is written to the audit log):
  ServiceNow  looks up an incident that does not exist (PAMTICKETCHECK0); \"not found\"
              proves that the certificate verified and that the account may read tickets.
              With an OAuth AuthMethod it first gets a token of its own from
              /oauth_token.do (a new grant; the token cache is neither read nor written).
  BMCRemedy   logs on (its own token: the token cache is neither read nor written),
              queries PAMTICKETCHECK0 on the form of each ticket type TicketTypes
              accepts (the incident and the change form unless set), logs off.
  portal      (FetchCredentialsThroughPVWA=Yes) logs on, counts the vault accounts the
              gateway user may list, logs off; no password is retrieved, so the portal's
              ticketing integration is not exercised (use `pam-ticket test` for that).
              With PortalAuthMethod=PlatformToken (Privilege Cloud) it gets a platform
              token of its own from IdentityURL (the token cache is neither read nor
              written) instead of the logon, and there is no logoff.

With Allowed* lists in force it then reads, once, the choices the system knows for those
fields (ServiceNow: the active sys_choice rows of incident.state, change_request.state,
change_request.approval; BMCRemedy: another log-on, each form's field definitions from
/api/arsys/v1.0/fields/{form}, a log-off) and warns about each entry that names none of
them, with the nearest choice (In-Progress: did you mean \"In Progress\"?). A list that
cannot be read is a warning too; warnings never change the exit status.

With --flush-cache it asks nothing: it removes the token files this configuration's
logins share under CacheDirectory (BMCRemedy: the AR-JWT; ServiceNow with an OAuth
AuthMethod: the access token and, for oauth-password, the refresh token), says which it
removed, and exits. The next login fetches new tokens. Use it after changing an account's
password or client secret, or revoking its tokens on the server.

  --config PATH          the configuration file (as config=PATH on the pam.d line)
  --arg MODULE-ARGUMENT  an argument as written on the pam.d line (debug, Key=Value);
                         repeat it for several, e.g. --arg FailMode=safe
  --flush-cache          remove this configuration's cached tokens instead of checking
";

/// Runs the subcommand; returns the process exit code.
pub fn run(arguments: &[String]) -> i32 {
    let options = match args::parse(arguments, &["config"], &["arg"], &["flush-cache"]) {
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
    let config = match args::load_config_reporting_all(options.value("config"), &module_arguments) {
        Ok(config) => config,
        Err(problems) => {
            for problem in &problems {
                // A message over several lines (the regex crate's) stays under its ERROR.
                println!(
                    "  ERROR {}",
                    problem.to_string().replace('\n', "\n        ")
                );
            }
            let count = match problems.len() {
                1 => "1 problem".to_string(),
                more => format!("{more} problems"),
            };
            println!(
                "result: configuration error ({count}); the module would return \
                 PAM_SERVICE_ERR, logging the first"
            );
            return EXIT_CONFIG;
        }
    };
    println!("  OK    parsed and validated");
    println!();
    if options.switch("flush-cache") {
        return flush_cache(&config);
    }
    println!("effective settings:");
    for (key, value) in settings(&config) {
        println!("  {key:<30} {value}");
    }
    println!();
    probe(&config)
}

/// Every setting that has an effect in this configuration's mode, in the order of the
/// key table, as `(key, shown value)`; account passwords are never shown, and bypass codes
/// only as a count.
pub fn settings(config: &Config) -> Vec<(&'static str, String)> {
    let mode = config.mode();
    let mut shown: Vec<(&'static str, String)> = KEYS
        .iter()
        .filter(|spec| spec.modes.allows(mode))
        .filter_map(|spec| shown_value(config, spec.key).map(|value| (spec.name, value)))
        .collect();
    shown.push(("debug", yes_no(config.debug)));
    shown
}

/// How one key's effective value is shown; `None` for a key shown on another key's line.
fn shown_value(config: &Config, key: Key) -> Option<String> {
    let list = |allowed: Option<&[String]>| match allowed {
        Some(entries) => format!("Yes: {}", entries.join(", ")),
        None => "No".to_string(),
    };
    let portal = config.portal.as_ref();
    let remedy = &config.remedy;
    let people = &config.people;
    for kind in TicketKind::ORDER {
        let keys = kind_keys(kind);
        if key == keys.identification {
            // Only the keys of this mode are shown: a type without a regex here is one
            // that TicketTypes leaves out.
            return Some(config.identification_of(kind).map_or_else(
                || format!("(not accepted: {} is not in TicketTypes)", kind.key_name()),
                ToString::to_string,
            ));
        }
        for (switch, list_key, allowed) in [(keys.state, config.allowed_states(kind))]
            .into_iter()
            .chain(
                keys.approval
                    .map(|approval| (approval, config.allowed_approvals(kind))),
            )
            .map(|((switch, list_key), allowed)| (switch, list_key, allowed))
        {
            if key == switch {
                return Some(list(allowed));
            }
            // Shown with its switch, as "Yes: the list".
            if key == list_key {
                return None;
            }
        }
    }
    Some(match key {
        Key::TicketingSystem => config
            .ticketing_system
            .map_or_else(|| "(none)".to_string(), |system| system.name().to_string()),
        Key::SystemURL => optional(config.system_url.as_ref()),
        Key::ConnectionAccountFile => connection_account(config),
        Key::AuthMethod => config.auth_method.name().to_string(),
        Key::CAFile => config.ca_bundle.as_ref().map_or_else(
            || "(none found: set CAFile)".to_string(),
            |bundle| bundle.path().display().to_string(),
        ),
        Key::ClientCertificateFile => config.client_identity.as_ref().map_or_else(
            || "(none)".to_string(),
            |identity| {
                let path = identity.certificate_path().display();
                match super::x509::parse_certificate(identity.certificate_der()) {
                    Ok(facts) => format!(
                        "{path} (subject {}, issued by {})",
                        crate::sanitise::sanitise(&facts.subject),
                        crate::sanitise::sanitise(&facts.issuer)
                    ),
                    Err(_) => path.to_string(),
                }
            },
        ),
        Key::ClientKeyFile => config.client_identity.as_ref().map_or_else(
            || "(none)".to_string(),
            |identity| {
                format!(
                    "{} (matches the certificate; not shown)",
                    identity.key_path().display()
                )
            },
        ),
        Key::EnterTicketingInfo => yes_no(config.enter_ticketing_info),
        Key::ValidateTicketNumber => yes_no(config.validate_ticket_number),
        Key::UppercaseTicketId => yes_no(config.uppercase_ticket_id),
        Key::TicketFormatRegex => optional(config.ticket_format.as_ref()),
        Key::TicketTypes => config
            .ticket_types()
            .into_iter()
            .map(TicketKind::key_name)
            .collect::<Vec<_>>()
            .join(", "),
        // Shown above, by ticket type.
        Key::IncidentTicketIdentification
        | Key::ChangeTicketIdentification
        | Key::ValidateIncidentTicketState
        | Key::ValidateChangeTicketState
        | Key::ValidateApprovalStatus
        | Key::AllowedIncidentTicketStates
        | Key::AllowedChangeTicketStates
        | Key::AllowedApprovalStatuses
        | Key::RequestItemTicketIdentification
        | Key::ValidateRequestItemTicketState
        | Key::AllowedRequestItemTicketStates
        | Key::ValidateRequestItemApprovalStatus
        | Key::AllowedRequestItemApprovalStatuses
        | Key::CatalogTaskTicketIdentification
        | Key::ValidateCatalogTaskTicketState
        | Key::AllowedCatalogTaskTicketStates
        | Key::ProblemTicketIdentification
        | Key::ValidateProblemTicketState
        | Key::AllowedProblemTicketStates
        | Key::WorkOrderTicketIdentification
        | Key::ValidateWorkOrderTicketState
        | Key::AllowedWorkOrderTicketStates
        | Key::ProblemInvestigationTicketIdentification
        | Key::ValidateProblemInvestigationTicketState
        | Key::AllowedProblemInvestigationTicketStates => return None,
        Key::ValidateConfigurationItem => yes_no(config.ci_check.is_some()),
        Key::TargetName => match config.ci_check.as_ref() {
            Some(crate::config::CiCheck {
                target_name: Some(name),
                ..
            }) => name.clone(),
            _ => "(none: this gateway's canonical FQDN and gethostname())".to_string(),
        },
        Key::CIMatchShortName => yes_no(
            config
                .ci_check
                .as_ref()
                .is_some_and(|check| check.match_short_name),
        ),
        Key::ValidateOperationTime => yes_no(config.validate_operation_time),
        Key::ValidateRequestingUser => yes_no(config.validate_requesting_user),
        Key::AllowedUserRoles => people
            .roles
            .iter()
            .map(|role| role.name())
            .collect::<Vec<_>>()
            .join(", "),
        Key::Groups => people.groups.as_ref().map_or_else(
            || "(not set: everyone is asked)".to_string(),
            |groups| group_names(groups),
        ),
        Key::ExemptGroups => none_if_empty(group_names(&people.exempt_groups)),
        Key::ExemptUsers => none_if_empty(people.exempt_users.join(", ")),
        Key::UserMatchField => people.match_field.field().to_string(),
        Key::UserMatchDomain => optional(people.match_domain.as_ref()),
        Key::UserMapFile => people.user_map.as_ref().map_or_else(
            || "(none)".to_string(),
            |map| format!("{} login(s) mapped", map.len()),
        ),
        Key::FailsafeBypassCode => {
            format!("{} hashed code(s) (not shown)", config.bypass_codes.len())
        }
        Key::FailMode => match config.fail_mode {
            FailMode::Secure => "secure",
            FailMode::Safe => "safe",
        }
        .to_string(),
        Key::Timeout => format!("{} s", config.timeout.as_secs_f64()),
        Key::HTTPSProxy => optional(config.https_proxy.as_ref()),
        Key::MaxAttempts => config.max_attempts.to_string(),
        Key::Prompt => format!("{:?}", config.prompt),
        Key::AuditLogFile => config.audit_log_file.as_ref().map_or_else(
            || "(none: syslog only)".to_string(),
            |path| path.display().to_string(),
        ),
        Key::FetchCredentialsThroughPVWA => yes_no(portal.is_some()),
        // Its one effect is FetchCredentialsThroughPVWA, shown above.
        Key::PSMPServerConfig => return None,
        Key::PortalURL => portal?.url.to_string(),
        Key::PortalAuthMethod => portal?.auth_method.path_segment().to_string(),
        Key::IdentityURL => optional(portal?.identity_url.as_ref()),
        Key::PortalAccountFile => account(Some(&portal?.account)),
        Key::PortalTicketingSystemName => portal?.ticketing_system_name.clone(),
        Key::PortalReason => format!("{:?}", portal?.reason_template),
        Key::RemedyIncidentForm => remedy.incident_form.clone(),
        Key::RemedyIncidentIDField => remedy.incident_id_field.clone(),
        Key::RemedyIncidentStatusField => remedy.incident_status_field.clone(),
        Key::RemedyIncidentRequesterFields => remedy.incident_requester_fields.join(", "),
        Key::RemedyChangeForm => remedy.change_form.clone(),
        Key::RemedyChangeIDField => remedy.change_id_field.clone(),
        Key::RemedyChangeStatusField => remedy.change_status_field.clone(),
        Key::RemedyChangeApprovalField => remedy.change_approval_field.clone(),
        Key::RemedyChangeStartField => remedy.change_start_field.clone(),
        Key::RemedyChangeEndField => remedy.change_end_field.clone(),
        Key::RemedyChangeRequesterFields => remedy.change_requester_fields.join(", "),
        Key::RemedyIncidentCIField => remedy.incident_ci_field.clone(),
        Key::RemedyChangeCIField => remedy.change_ci_field.clone(),
        Key::RemedyWorkOrderForm => remedy.work_order_form.clone(),
        Key::RemedyWorkOrderIDField => remedy.work_order_id_field.clone(),
        Key::RemedyWorkOrderStatusField => remedy.work_order_status_field.clone(),
        Key::RemedyWorkOrderRequesterFields => remedy.work_order_requester_fields.join(", "),
        Key::RemedyProblemInvestigationForm => remedy.problem_investigation_form.clone(),
        Key::RemedyProblemInvestigationIDField => remedy.problem_investigation_id_field.clone(),
        Key::RemedyProblemInvestigationStatusField => {
            remedy.problem_investigation_status_field.clone()
        }
        Key::RemedyProblemInvestigationRequesterFields => {
            remedy.problem_investigation_requester_fields.join(", ")
        }
        Key::RemedyIncidentAssigneeField => remedy.people.incident_assignee_field.clone(),
        Key::RemedyIncidentAssignedGroupField => remedy.people.incident_group_field.clone(),
        Key::RemedyChangeAssigneeField => remedy.people.change_assignee_field.clone(),
        Key::RemedyChangeAssignedGroupField => remedy.people.change_group_field.clone(),
        Key::RemedySupportGroupForm => remedy.people.support_group_form.clone(),
        Key::RemedySupportGroupLoginField => remedy.people.support_group_login_field.clone(),
        Key::RemedySupportGroupIDField => remedy.people.support_group_id_field.clone(),
        Key::RemedyTokenLifetime => format!("{} s", remedy.token_lifetime.as_secs()),
        Key::CacheDirectory => config.cache_directory.display().to_string(),
        Key::WorkNotes => yes_no(config.work_notes.is_some()),
        Key::WorkNoteTimeout => config.work_notes.as_ref().map_or_else(
            || "(no notes: WorkNotes is No)".to_string(),
            |notes| format!("{} s", notes.timeout.as_secs()),
        ),
        Key::NoteTemplate => config.work_notes.as_ref().map_or_else(
            || "(no notes: WorkNotes is No)".to_string(),
            |notes| format!("{:?}", notes.template.source()),
        ),
        Key::AskReason => yes_no(config.reason_prompt.is_some()),
        Key::ReasonPrompt => config.reason_prompt.as_ref().map_or_else(
            || "(not asked: AskReason is No)".to_string(),
            |prompt| format!("{prompt:?}"),
        ),
        Key::RemedyIncidentWorkLogForm => remedy.incident_work_log_form.clone(),
        Key::RemedyIncidentWorkLogIDField => remedy.incident_work_log_id_field.clone(),
        Key::RemedyChangeWorkLogForm => remedy.change_work_log_form.clone(),
        Key::RemedyChangeWorkLogIDField => remedy.change_work_log_id_field.clone(),
        Key::RemedyChangeEntryIDField => remedy.change_entry_id_field.clone(),
    })
}

fn group_names(groups: &[crate::config::GroupName]) -> String {
    groups
        .iter()
        .map(|group| group.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn none_if_empty(text: String) -> String {
    if text.is_empty() {
        "(none)".to_string()
    } else {
        text
    }
}

fn yes_no(flag: bool) -> String {
    if flag { "Yes" } else { "No" }.to_string()
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

/// `--flush-cache`: removes the token file of each cache the configured source uses.
fn flush_cache(config: &Config) -> i32 {
    let source = match backend::from_config(config) {
        Ok(source) => source,
        Err(problem) => {
            println!("token cache: FAIL cannot set up the ticket source: {problem}");
            println!("result: FAILED");
            return EXIT_FAILED;
        }
    };
    let caches = source.token_caches();
    if caches.is_empty() {
        println!("token cache: this configuration caches no tokens; nothing to remove");
        println!("result: OK");
        return EXIT_OK;
    }
    println!("token cache: {}", config.cache_directory.display());
    let (mut removed, mut failed) = (0, 0);
    for cache in caches {
        let path = cache.token_path().display();
        let noun = cache.kind().noun();
        match cache.remove() {
            Ok(true) => {
                removed += 1;
                println!("  REMOVED {path} ({noun})");
            }
            Ok(false) => println!("  NONE    {path} ({noun}): no cached token"),
            Err(problem) => {
                failed += 1;
                println!("  FAIL    {noun}: {problem}");
            }
        }
    }
    let tokens = if removed == 1 { "token" } else { "tokens" };
    if failed == 0 {
        println!("result: OK ({removed} cached {tokens} removed; the next login fetches new ones)");
        EXIT_OK
    } else {
        println!("result: FAILED ({removed} cached {tokens} removed, {failed} could not be)");
        EXIT_FAILED
    }
}

/// ConnectionAccountFile with the lines the module uses from it, secrets masked.
fn connection_account(config: &Config) -> String {
    let Some(client) = &config.oauth_client else {
        return account(config.connection_account.as_ref());
    };
    let user = config
        .connection_account
        .as_ref()
        .map(|user| format!(", Username={}, Password=********", user.username))
        .unwrap_or_default();
    format!(
        "{} (ClientID={}, ClientSecret=********{user})",
        client.source.display(),
        client.client_id
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
        Some(portal) => match &portal.identity_url {
            Some(identity) => println!(
                "connection: getting a platform token from {identity} for the portal at {} (Timeout {timeout} s)",
                portal.url
            ),
            None => println!(
                "connection: logging on to the portal at {} (Timeout {timeout} s)",
                portal.url
            ),
        },
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
            let mut problems = print_probe_lines(lines);
            println!("  answered in {elapsed} ms");
            if config.work_notes.is_some() {
                problems +=
                    print_probe_lines(source.write_access(Deadline::new(&clock, config.timeout)));
            }
            compare_choices(config, source.as_mut());
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
            let tls_verified = !matches!(outage, Outage::Unreachable(_));
            let hint = match &outage {
                Outage::Unreachable(Unreachable::NameResolution) => " (check the host name)",
                Outage::Unreachable(Unreachable::TimedOut) => {
                    " (check the firewall, HTTPSProxy and Timeout)"
                }
                Outage::Unreachable(_) => " (check the URL, port, firewall and HTTPSProxy)",
                Outage::ServerError { .. } | Outage::RateLimited { .. } => "",
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
        Err(LookupError::BadAnswer(BadAnswer::Transport(
            TransportError::ClientCertificateRefused { sent, alert },
        ))) => {
            let who = if config.portal.is_some() {
                "the portal"
            } else {
                "the ticketing system"
            };
            let what = match (sent, &config.client_identity) {
                (true, Some(identity)) => format!(
                    "TLS: {who} refused the client certificate {} (TLS alert {alert}); check \
                     that the server trusts the CA that issued it, that it has not expired \
                     or been revoked, and that ClientCertificateFile holds the chain up to \
                     that CA",
                    identity.certificate_path().display()
                ),
                _ => format!(
                    "TLS: {who} requires a client certificate and none is configured (TLS \
                     alert {alert}); set ClientCertificateFile and ClientKeyFile to the \
                     certificate and key the server's administrators issued for this gateway"
                ),
            };
            // The server's own certificate verified before it asked for ours.
            fail(
                true,
                format!(
                    "{what}; not an outage: every login is denied, in both fail modes, until \
                     it is fixed"
                ),
            )
        }
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
                    | TransportError::UntrustedCertificate(_)
                    | TransportError::ClientCertificateRefused { .. },
                ) => (false, ""),
                BadAnswer::UnexpectedStatus { .. } | BadAnswer::BadResponse { .. } => {
                    (true, " (check the URL's path and the account's roles)")
                }
                BadAnswer::TicketCheckFailed { .. } | BadAnswer::TargetLookupFailed { .. } => {
                    (true, "")
                }
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

/// Prints the probe's lines, `OK` or `FAIL` each, and returns how many were problems.
fn print_probe_lines(lines: Vec<ProbeLine>) -> usize {
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
    problems
}

/// Compares each Allowed* list that is in force with the choices the ticketing system
/// knows for its field, read once: an entry that names none of them can never match, so
/// its check refuses every ticket it was meant to let through. Only ever a warning: a
/// choice list that cannot be read (an account that may not read it, an instance that
/// names its fields otherwise) changes nothing, and the exit status stays what the
/// connection made it.
fn compare_choices(config: &Config, source: &mut dyn TicketSource) {
    if config.portal.is_some() {
        return;
    }
    let mut lists: Vec<(ChoiceField, Key, &[String])> = Vec::new();
    for kind in TicketKind::ORDER {
        let keys = kind_keys(kind);
        if let Some(allowed) = config.allowed_states(kind) {
            lists.push((ChoiceField::State(kind), keys.state.1, allowed));
        }
        if let (Some(allowed), Some((_, list_key))) =
            (config.allowed_approvals(kind), keys.approval)
        {
            lists.push((ChoiceField::Approval(kind), list_key, allowed));
        }
    }
    if lists.is_empty() {
        return;
    }
    let fields: Vec<ChoiceField> = lists.iter().map(|(field, _, _)| *field).collect();
    let clock = SystemClock;
    let known = source.known_choices(&fields, Deadline::new(&clock, config.timeout));
    let system = source.system_name().to_string();
    println!();
    println!("allowed choices: compared with the choices {system} knows (warnings only)");
    for (field, key, allowed) in lists {
        let Some((_, answer)) = known.iter().find(|(known, _)| *known == field) else {
            continue;
        };
        let choices = match answer {
            Ok(choices) => choices,
            Err(error) => {
                println!(
                    "  WARN  could not read the {} choices ({}); {key} was not compared",
                    field.noun(),
                    reading_problem(error)
                );
                continue;
            }
        };
        let labels: Vec<String> = choices
            .iter()
            .map(|choice| backend::sanitise(&choice.label))
            .collect();
        let mut unknown = 0;
        for entry in allowed {
            if choices.iter().any(|choice| choice.is_named_by(entry)) {
                continue;
            }
            unknown += 1;
            let hint = spelling::closest(entry, labels.iter().map(String::as_str))
                .map(|label| format!(" (did you mean {label:?}?)"))
                .unwrap_or_default();
            println!(
                "  WARN  {key} entry {entry:?} names no {} {system} knows, so it never \
                 matches{hint}; {system} knows: {}",
                field.noun(),
                labels.join(", ")
            );
        }
        if unknown == 0 {
            println!(
                "  OK    {key}: every entry names one of the {}s {system} knows",
                field.noun()
            );
        }
    }
}

/// Why choices could not be read, in a few words.
fn reading_problem(error: &LookupError) -> String {
    match error {
        LookupError::Unavailable(outage) => format!("unavailable: {outage}"),
        LookupError::AccountRefused { status, detail } if detail.is_empty() => {
            format!("the account may not read them: HTTP {status}")
        }
        LookupError::AccountRefused { status, detail } => {
            format!("the account may not read them: HTTP {status}: {detail}")
        }
        LookupError::BadAnswer(why) => why.to_string(),
        LookupError::UntrustedServer { detail } => {
            format!("the server's certificate did not verify: {detail}")
        }
        LookupError::Misconfigured { detail } | LookupError::NotCheckable { message: detail } => {
            detail.clone()
        }
        LookupError::NotFound
        | LookupError::Ambiguous { .. }
        | LookupError::RefusedByPortal { .. } => "an unexpected answer".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Mode, from_entries, parse_entries};

    fn shown_keys(text: &str) -> Vec<&'static str> {
        let path = Path::new("/etc/test.conf");
        let entries = parse_entries(text, path).expect("valid syntax");
        let config = from_entries(path, entries, Vec::new()).expect("valid");
        settings(&config).into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn the_dump_shows_the_keys_the_table_gives_the_mode_in_its_order() {
        for (mode, text) in [
            (
                Mode::ServiceNow,
                "TicketingSystem=ServiceNow\nValidateTicketNumber=No\n",
            ),
            (
                Mode::Remedy,
                "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n",
            ),
        ] {
            let shown = shown_keys(text);
            // Allowed* state lists are shown on their switch's line (AllowedUserRoles,
            // which has a default, on its own); PSMPServerConfig's one effect is
            // FetchCredentialsThroughPVWA.
            let expected: Vec<&str> = KEYS
                .iter()
                .filter(|spec| spec.modes.allows(mode))
                .map(|spec| spec.name)
                .filter(|name| {
                    (!name.starts_with("Allowed") || *name == "AllowedUserRoles")
                        && *name != "PSMPServerConfig"
                })
                .chain(["debug"])
                .collect();
            assert_eq!(shown, expected, "{mode:?}");
        }
        let service_now = shown_keys("TicketingSystem=ServiceNow\nValidateTicketNumber=No\n");
        assert!(!service_now.contains(&"RemedyTokenLifetime"));
        assert!(!service_now.contains(&"PortalURL"));
    }
}
