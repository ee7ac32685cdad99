//! The end of a session on a verified ticket: the sealed record checked, the end note
//! written, a `session_end` audit record. `pam_sm_close_session` finds the record and
//! maps the answer to a PAM code.

use crate::audit::{AuditRecord, AuditSink, Decision};
use crate::backend;
use crate::clock::{Clock, Deadline};
use crate::config::Config;

use super::{NoteEvent, NoteOutcome, NoteSettings, carrier, duration_text, write};

/// How the session record reached the session's end.
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

/// The session that is closing, as libpam knows it, and the record it carries.
pub struct ClosingSession {
    /// PAM_USER now: the record must name the same user.
    pub user: String,
    pub rhost: Option<String>,
    pub service: Option<String>,
    pub sealed: String,
    pub carried_by: CarriedBy,
}

/// Writes the end note for `session` and its `session_end` record. `false` when the
/// record is not one this module sealed for this user and system: nothing is written to
/// the ticket then, and the record says why.
pub fn record_end(
    config: &Config,
    settings: &NoteSettings,
    session: &ClosingSession,
    clock: &dyn Clock,
    audit: &mut dyn AuditSink,
) -> bool {
    audit.debug(&format!(
        "session record found in the {}",
        match session.carried_by {
            CarriedBy::PamData => "PAM data (pam_set_data)",
            CarriedBy::Environment => "PAM environment",
        }
    ));
    let mut record = AuditRecord {
        time: clock.now(),
        decision: Decision::SessionEnd,
        user: session.user.clone(),
        rhost: session.rhost.clone(),
        service: session.service.clone(),
        ticket: None,
        ticket_type: None,
        system: Some(crate::flow::system_name(config)),
        reason: "session ended".to_string(),
        elapsed_ms: 0,
        extra: vec![("session_record", session.carried_by.name().to_string())],
    };
    let facts = match carrier::open(config, &session.sealed) {
        Ok(facts) if facts.user != session.user => Err(format!(
            "the session record names another user ({})",
            backend::sanitise(&facts.user)
        )),
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
