//! pam_ticket: a PAM module that asks the person logging in for an IT ticket ID and lets
//! them in only if the ticketing system says the ticket is real and fit for the job.
//!
//! This file holds the PAM entry points only: guard against panics, read the PAM items,
//! run the flow, map its outcome to a PAM return code. The FFI details live in
//! `pam_glue.rs`; the logic in `flow.rs` and below is plain, unit-tested Rust.

pub mod admin;
pub mod audit;
pub mod backend;
pub mod bypass;
pub mod client_cert;
pub mod clock;
pub mod config;
pub mod conversation;
#[cfg(test)]
mod fakes;
pub mod flow;
pub mod host;
pub mod http;
pub mod json;
pub mod login;
pub mod notes;
pub mod nss;
pub mod oauth;
mod pam_glue;
pub mod policy;
pub mod sanitise;
pub mod secret;
pub mod secure_file;
pub mod spelling;
pub mod ticket;
pub mod token_cache;
pub mod trust;
pub mod url;
pub mod who;

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};
use pam::pam_hooks;

use crate::audit::{AuditRecord, AuditSink, Decision, SystemAudit};
use crate::clock::{Clock, Deadline, SystemClock};
use crate::flow::{Flow, Outcome};
use crate::login::Login;

struct PamTicket;
pam_hooks!(PamTicket);

impl PamHooks for PamTicket {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| authenticate(pamh, &args))
    }

    /// sshd drops the session when the stack's setcred fails, and this module has no
    /// credentials to set, so it always succeeds.
    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }

    /// The start note is written at authentication, right after the decision (its cost
    /// was measured there: one request on the connection the lookup opened), so nothing
    /// is sent here. PAM_SUCCESS when authentication left a session record, for a reason
    /// of libpam's: `pam_close_session` acts on what each module answered to
    /// `pam_open_session` (the chain is frozen there), so a module that ignored the
    /// opening has its closing ignored too. PAM_IGNORE otherwise: no handle (then no
    /// configuration is read either), or one with no record of this user behind it.
    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| open_session(pamh, &args))
    }

    /// The end note (WorkNotes=Yes), when authentication left a session record; else
    /// PAM_IGNORE, without reading the configuration when no handle came, and without
    /// touching the network unless a record was there.
    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        guarded(|| close_session(pamh, &args))
    }

    fn sm_chauthtok(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }
}

/// Runs a hook body, turning a panic into PAM_ABORT after logging it. pam-bindings
/// guards each hook too; this inner guard is ours so that the panic is also logged.
fn guarded(body: impl FnOnce() -> PamResultCode) -> PamResultCode {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let _ = audit::syslog_line(
                Decision::Error,
                &format!(
                    "decision=error reason=\"internal error (panic): {}\"",
                    backend::sanitise(&message)
                ),
            );
            PamResultCode::PAM_ABORT
        }
    }
}

fn authenticate(pamh: &mut PamHandle, args: &[&CStr]) -> PamResultCode {
    // Only a login this module grants below leaves a session handle: one already there
    // (planted by an earlier module or pam_env, or left by an earlier attempt on this
    // handle) must not outlive a login that is refused, bypassed, failsafe or exempt.
    forget_session_handle(pamh);
    let (config, panic_probe) = match load_configuration(pamh, args) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let service = pam_glue::service(pamh);
    if panic_probe {
        panic!("panic probe requested by the test suite");
    }
    if !config.enter_ticketing_info {
        return PamResultCode::PAM_IGNORE;
    }

    let user = match pam_glue::user(pamh) {
        Ok(user) => user,
        Err(code) => return code,
    };
    let login = Login::new(&user, pam_glue::rhost(pamh), service).identified(&config.people);
    let mut audit = SystemAudit::new(config.audit_log_file.clone(), config.debug);

    let mut source = if config.validate_ticket_number {
        match backend::from_config(&config) {
            Ok(source) => Some(source),
            Err(problem) => {
                let record = error_record(
                    &login.pam_user,
                    login.rhost.clone(),
                    &login.service,
                    format!("cannot set up the ticket source: {problem}"),
                );
                audit.record(&record);
                if let Some(mut conversation) = pam_glue::PamConversation::from_handle(pamh) {
                    flow::Conversation::show_error(&mut conversation, flow::MISCONFIGURED_MESSAGE);
                }
                return PamResultCode::PAM_SERVICE_ERR;
            }
        }
    } else {
        None
    };

    let outcome = match pam_glue::PamConversation::from_handle(pamh) {
        Some(mut conversation) => Flow {
            config: &config,
            login: &login,
            conversation: &mut conversation,
            source: source
                .as_deref_mut()
                .map(|source| source as &mut dyn backend::TicketSource),
            audit: &mut audit,
            clock: &SystemClock,
            directory: &nss::Bounded::new(
                nss::SystemDirectory,
                Deadline::new(&SystemClock, config.timeout),
            ),
        }
        .run(),
        None => return PamResultCode::PAM_CONV_ERR,
    };
    drop(source);

    match outcome {
        Outcome::Granted { exports } => {
            for (name, value) in &exports {
                if pam_glue::putenv(pamh, name, value).is_err() {
                    return PamResultCode::PAM_BUF_ERR;
                }
                // Also kept with the handle: an application that authenticates and
                // closes the session in one process finds it there (see
                // notes/session_record.rs).
                if name == notes::session_record::ENVIRONMENT_NAME
                    && pam_glue::set_session_record(pamh, value).is_err()
                {
                    audit.warn("the session record could not be kept with pam_set_data");
                }
            }
            PamResultCode::PAM_SUCCESS
        }
        Outcome::NotApplicable => PamResultCode::PAM_IGNORE,
        Outcome::AttemptsExhausted => PamResultCode::PAM_MAXTRIES,
        Outcome::Unavailable => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        // A refusal no other ticket can fix ends the exchange the way the last refused
        // ticket does: PAM_MAXTRIES makes sshd stop offering keyboard-interactive, where
        // PAM_AUTH_ERR would let a stock client run the whole prompt loop up to 3 more times.
        Outcome::Refused => PamResultCode::PAM_MAXTRIES,
        Outcome::ServiceError => PamResultCode::PAM_SERVICE_ERR,
    }
}

/// The session handle authentication left, and how it came: `pam_set_data` when this
/// process authenticated, else the PAM environment (sshd).
fn carried_handle(pamh: &mut PamHandle) -> Option<(String, notes::session_end::CarriedBy)> {
    match pam_glue::session_record(pamh) {
        Some(value) => Some((value, notes::session_end::CarriedBy::PamData)),
        None => pam_glue::getenv(pamh, notes::session_record::ENVIRONMENT_NAME)
            .map(|value| (value, notes::session_end::CarriedBy::Environment)),
    }
}

/// Removes the session handle from the PAM environment and from the handle's data.
fn forget_session_handle(pamh: &mut PamHandle) {
    pam_glue::unsetenv(pamh, notes::session_record::ENVIRONMENT_NAME);
    pam_glue::clear_session_record(pamh);
}

/// The configuration this pam.d line names (its arguments and the file), and whether the
/// test suite's panic probe was asked for; `Err` with the code to answer when it cannot be
/// loaded, reported by [`configuration_failed`].
fn load_configuration(
    pamh: &mut PamHandle,
    args: &[&CStr],
) -> Result<(config::Config, bool), PamResultCode> {
    let service_label = pam_glue::service(pamh).unwrap_or_else(|| "unknown".to_string());
    let arguments: Vec<String> = args
        .iter()
        .map(|argument| argument.to_string_lossy().into_owned())
        .collect();
    config::parse_module_arguments(&arguments, &service_label)
        .and_then(|parsed| Ok((config::load(&parsed)?, parsed.panic_probe)))
        .map_err(|problem| configuration_failed(pamh, &arguments, &service_label, &problem))
}

/// Who the session hooks act for: PAM_USER, PAM_SERVICE and PAM_RHOST, which a session
/// record must name.
fn claimant(pamh: &PamHandle) -> notes::session_record::Claimant {
    notes::session_record::Claimant {
        user: pam_glue::user_item(pamh).unwrap_or_default(),
        service: pam_glue::service(pamh),
        rhost: pam_glue::rhost(pamh),
    }
}

/// The configuration for a session hook: `Err` with the code to answer when it cannot be
/// loaded (reported as at authentication) or has no work notes (PAM_IGNORE).
fn session_config(
    pamh: &mut PamHandle,
    args: &[&CStr],
) -> Result<(config::Config, notes::NoteSettings), PamResultCode> {
    let (config, _) = load_configuration(pamh, args)?;
    match config.work_notes.clone() {
        Some(settings) => Ok((config, settings)),
        None => Err(PamResultCode::PAM_IGNORE),
    }
}

/// `pam_sm_open_session`: PAM_SUCCESS only for a handle whose record this module kept for
/// this login (PAM_USER, PAM_SERVICE and PAM_RHOST) on this host (a local read);
/// PAM_IGNORE for anything else.
fn open_session(pamh: &mut PamHandle, args: &[&CStr]) -> PamResultCode {
    let Some((value, _)) = carried_handle(pamh) else {
        return PamResultCode::PAM_IGNORE;
    };
    // Not a handle this module could have made (planted by another module or pam_env):
    // nothing to open, and no configuration is read for it.
    if notes::session_record::Handle::parse(&value).is_err() {
        return PamResultCode::PAM_IGNORE;
    }
    let (config, _) = match session_config(pamh, args) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let claimant = claimant(pamh);
    let mut audit = SystemAudit::new(config.audit_log_file.clone(), config.debug);
    if notes::session_end::record_is_there(&config, &value, &claimant, &mut audit) {
        PamResultCode::PAM_SUCCESS
    } else {
        PamResultCode::PAM_IGNORE
    }
}

/// `pam_sm_close_session`: the end note for a session whose login left a session record.
fn close_session(pamh: &mut PamHandle, args: &[&CStr]) -> PamResultCode {
    // Nothing to do unless authentication left a handle: no configuration is read.
    let Some((value, carried_by)) = carried_handle(pamh) else {
        return PamResultCode::PAM_IGNORE;
    };
    let (config, settings) = match session_config(pamh, args) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // Gone from this handle whatever comes next; the record itself is removed as it is
    // used, so that no other handle with the same value can use it again either.
    forget_session_handle(pamh);
    let session = notes::session_end::ClosingSession {
        claimant: claimant(pamh),
        handle: value,
        carried_by,
    };
    let mut audit = SystemAudit::new(config.audit_log_file.clone(), config.debug);
    if notes::session_end::record_end(&config, &settings, &session, &SystemClock, &mut audit) {
        PamResultCode::PAM_SUCCESS
    } else {
        PamResultCode::PAM_IGNORE
    }
}

/// A configuration error: logged with file:line to syslog, and to the audit file only when
/// the pam.d line names one (`AuditLogFile=` as a module argument); a short message to the
/// user; PAM_SERVICE_ERR. Nothing from the refused configuration is used, not even its
/// AuditLogFile: whoever could change it would otherwise choose where root writes.
fn configuration_failed(
    pamh: &mut PamHandle,
    arguments: &[String],
    service: &str,
    problem: &config::ConfigError,
) -> PamResultCode {
    // The item only: a broken configuration must not start a conversation for a user name.
    let user = pam_glue::user_item(pamh).unwrap_or_default();
    let record = error_record(
        &user,
        pam_glue::rhost(pamh),
        &Some(service.to_string()),
        format!("configuration error: {problem}"),
    );
    let audit_file = config::audit_file_from_arguments(arguments);
    SystemAudit::new(audit_file, false).record(&record);
    if let Some(mut conversation) = pam_glue::PamConversation::from_handle(pamh) {
        flow::Conversation::show_error(&mut conversation, flow::MISCONFIGURED_MESSAGE);
    }
    PamResultCode::PAM_SERVICE_ERR
}

/// A record of an error before or outside the flow: who, from where, through which service.
fn error_record(
    user: &str,
    rhost: Option<String>,
    service: &Option<String>,
    reason: String,
) -> AuditRecord {
    AuditRecord {
        time: SystemClock.now(),
        decision: Decision::Error,
        // As given: the audit record escapes its control characters and bounds it.
        user: user.to_string(),
        rhost,
        service: service.clone(),
        ticket: None,
        ticket_type: None,
        system: None,
        reason,
        elapsed_ms: 0,
        extra: Vec::new(),
    }
}
