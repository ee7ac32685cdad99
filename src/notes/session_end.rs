//! The session of a login on a verified ticket: whether its record is there
//! (`pam_sm_open_session`), and at its end the record taken (so it is used once), the end
//! note written, a `session_end` audit record. `pam_sm_open_session` and
//! `pam_sm_close_session` find the handle and map the answers to PAM codes.

use crate::audit::{AuditRecord, AuditSink, Decision};
use crate::backend;
use crate::clock::{Clock, Deadline};
use crate::config::Config;

use super::session_record::{Claimant, Handle, SessionStore};
use super::{NoteEvent, NoteOutcome, NoteSettings, duration_text, write};

/// How the session record's handle reached the session's hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarriedBy {
    /// `pam_set_data` on the handle: the application authenticated in this process.
    PamData,
    /// The PAM environment: sshd, which authenticates in a child process of its own.
    Environment,
}

impl CarriedBy {
    /// The audit's `session_record` value.
    pub fn name(self) -> &'static str {
        match self {
            CarriedBy::PamData => "pam_data",
            CarriedBy::Environment => "environment",
        }
    }
}

/// The session that is closing, as libpam knows it, and the handle it carries.
pub struct ClosingSession {
    /// PAM_USER, PAM_SERVICE and PAM_RHOST now: the record must name the same.
    pub claimant: Claimant,
    /// The carried value, `v2.<handle>` when it is this module's.
    pub handle: String,
    pub carried_by: CarriedBy,
}

/// Whether `value` is the handle of a session record kept for this login (`claimant`:
/// its user, service and remote host) on this host: a
/// local read, nothing sent. `pam_sm_open_session` answers PAM_SUCCESS only then, so that
/// a handle planted in the environment never stands for a session of this module (which
/// could make a `sufficient` or `[success=done]` line skip the session modules below it).
pub fn record_is_there(
    config: &Config,
    value: &str,
    claimant: &Claimant,
    audit: &mut dyn AuditSink,
) -> bool {
    let found = Handle::parse(value)
        .and_then(|handle| SessionStore::new(&config.cache_directory).peek(&handle, claimant));
    match found {
        Ok(_) => true,
        Err(problem) => {
            audit.debug(&format!(
                "session opened without a record of this module: {problem}"
            ));
            false
        }
    }
}

/// Writes the end note for `session` and its `session_end` record. `false` when the
/// handle names no record this module kept for this user, host and system: nothing is
/// written to the ticket then, and the record says why.
pub fn record_end(
    config: &Config,
    settings: &NoteSettings,
    session: &ClosingSession,
    clock: &dyn Clock,
    audit: &mut dyn AuditSink,
) -> bool {
    audit.debug(&format!(
        "session handle found in the {}",
        match session.carried_by {
            CarriedBy::PamData => "PAM data (pam_set_data)",
            CarriedBy::Environment => "PAM environment",
        }
    ));
    let mut record = AuditRecord {
        time: clock.now(),
        decision: Decision::SessionEnd,
        user: session.claimant.user.clone(),
        rhost: session.claimant.rhost.clone(),
        service: session.claimant.service.clone(),
        ticket: None,
        ticket_type: None,
        system: Some(crate::flow::system_name(config)),
        reason: "session ended".to_string(),
        elapsed_ms: 0,
        extra: vec![("session_record", session.carried_by.name().to_string())],
    };
    let taken = Handle::parse(&session.handle).and_then(|handle| {
        SessionStore::new(&config.cache_directory).take(&handle, &session.claimant)
    });
    let facts = match taken {
        Ok(facts) if Some(&facts.system) != record.system.as_ref() => Err(format!(
            "the session record is for {}, the configuration now names another system",
            backend::sanitise(&facts.system)
        )),
        Ok(facts) => Ok(facts),
        Err(problem) => Err(problem.to_string()),
    };
    let facts = match facts {
        Ok(facts) => facts,
        Err(why) => {
            audit.warn(&format!("no end note written: {why}"));
            record
                .extra
                .extend(NoteOutcome::Skipped(why).audit_fields());
            audit.record(&record);
            return false;
        }
    };
    record.ticket = Some(facts.ticket.clone());
    record.ticket_type = Some(facts.kind.audit_name());
    let started = chrono::DateTime::from_timestamp(facts.started, 0).unwrap_or(record.time);
    let duration = (record.time - started).to_std().unwrap_or_default();
    record.reason = format!("session ended after {}", duration_text(duration));
    record
        .extra
        .push(("duration_s", duration.as_secs().to_string()));
    let begun = clock.monotonic();
    let outcome = match backend::from_config(config) {
        Ok(mut source) => write(
            config,
            settings,
            source.as_mut(),
            &facts,
            NoteEvent::Ended { duration },
            clock,
            Deadline::new(clock, settings.timeout),
            audit,
        ),
        Err(problem) => NoteOutcome::Failed(format!("cannot set up the ticket source: {problem}")),
    };
    record.elapsed_ms = u64::try_from(clock.since(begun).as_millis()).unwrap_or(u64::MAX);
    record.extra.extend(outcome.audit_fields());
    audit.record(&record);
    true
}
