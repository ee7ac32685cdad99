//! The login flow: prompt loop, bypass codes, ID rules, lookup, policy, fail mode, audit.
//! Plain Rust, generic over the conversation, the ticket source, the audit sink and the
//! clock, so that every path is unit-tested without libpam or a network.

use std::time::Instant;

use crate::audit::{AuditRecord, AuditSink, Decision};
use crate::backend::{Lookup, LookupError, TicketSource};
use crate::bypass;
use crate::clock::Deadline;
use crate::config::{Config, FailMode};
use crate::host::TargetNames;
use crate::login::Login;
use crate::notes::{self, NoteEvent, NoteOutcome, REASON_LIMIT, SessionFacts, session_record};
use crate::nss::Directory;
use crate::policy::{self, CheckResult};
use crate::sanitise::sanitise;
use crate::ticket::{TicketId, Unanswered};
use crate::who::{self, Asked, WhoError};

/// The flow's parameters that live in modules of their own, re-exported beside it.
pub use crate::clock::{Clock, SystemClock};
pub use crate::conversation::{
    ACCOUNT_REFUSED_MESSAGE, Conversation, ConversationFailed, MISCONFIGURED_MESSAGE,
    UNAVAILABLE_MESSAGE, UNTRUSTED_MESSAGE,
};

/// How the flow ended; lib.rs maps each to a PAM return code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// EnterTicketingInfo=No: PAM_IGNORE.
    NotApplicable,
    /// PAM_SUCCESS, with the variables to export to the PAM environment.
    Granted { exports: Vec<(String, String)> },
    /// Every attempt was refused: PAM_MAXTRIES.
    AttemptsExhausted,
    /// The ticketing system could not be asked, or could not be trusted:
    /// PAM_AUTHINFO_UNAVAIL.
    Unavailable,
    /// This login can never pass, whatever ticket is typed (portal mode: no target, a
    /// malformed target, no vault account or several for it): PAM_MAXTRIES, like the last
    /// refused ticket, so that sshd does not start the prompts again.
    Refused,
    /// The module cannot run as configured: PAM_SERVICE_ERR.
    ServiceError,
}

/// What one answer led to.
enum AnswerVerdict {
    /// Refused; ask again while attempts remain.
    TryAgain,
    /// The flow is over.
    Done(Outcome),
}

/// Everything one run of the flow needs.
pub struct Flow<'a, C: Conversation, A: AuditSink, K: Clock> {
    pub config: &'a Config,
    pub login: &'a Login,
    pub conversation: &'a mut C,
    /// `None` when ValidateTicketNumber=No: no request is ever made.
    pub source: Option<&'a mut dyn TicketSource>,
    pub audit: &'a mut A,
    pub clock: &'a K,
    /// Where group memberships come from (Groups, ExemptGroups).
    pub directory: &'a dyn Directory,
}

impl<C: Conversation, A: AuditSink, K: Clock> Flow<'_, C, A, K> {
    /// Runs the whole authentication.
    pub fn run(mut self) -> Outcome {
        if !self.config.enter_ticketing_info {
            self.audit
                .debug("EnterTicketingInfo is No: this module does not apply");
            return Outcome::NotApplicable;
        }
        if let Some(outcome) = self.not_asked() {
            return outcome;
        }
        if self.config.portal.is_some() && self.login.target.is_none() {
            let message = crate::backend::portal::no_target_message(&self.login.pam_user);
            self.conversation.show_error(&message);
            self.write_audit(
                Decision::Deny,
                None,
                "no target in PAM_USER (portal mode)".to_string(),
                self.clock.monotonic(),
                vec![],
            );
            return Outcome::Refused;
        }
        if self.config.portal.is_some()
            && let Some(target) = &self.login.target
            && let Err(part) = target.check_well_formed()
        {
            // No ticket can make a malformed target valid: refuse before asking for one.
            let message = format!(
                "{part} in your login name is not a valid name or address; {}",
                crate::backend::portal::no_target_message(&self.login.pam_user)
            );
            self.conversation.show_error(&message);
            self.write_audit(
                Decision::Deny,
                None,
                format!("malformed target in PAM_USER (portal mode): {part}"),
                self.clock.monotonic(),
                vec![],
            );
            return Outcome::Refused;
        }
        for attempt in 1..=self.config.max_attempts {
            self.audit.debug(&format!(
                "attempt {attempt} of {}",
                self.config.max_attempts
            ));
            if let AnswerVerdict::Done(outcome) = self.one_answer() {
                return outcome;
            }
        }
        Outcome::AttemptsExhausted
    }

    /// Whether this login is exempt from presenting a ticket (see [`crate::who`]): the
    /// outcome when it is not asked, or cannot be told; `None` when it must be asked.
    fn not_asked(&mut self) -> Option<Outcome> {
        let started = self.clock.monotonic();
        match who::decide(&self.config.people, &self.login.pam_user, self.directory) {
            Ok(Asked::Yes) => None,
            Ok(Asked::Exempt { reason }) => {
                self.write_audit(Decision::Exempt, None, reason, started, vec![]);
                Some(Outcome::NotApplicable)
            }
            Err(WhoError::NameService(error)) => {
                // An exemption needs a fact (see crate::who): asked, as if none applied.
                self.audit.warn(&format!(
                    "group membership of {} could not be read ({error}); asked for a ticket as if no exemption applied",
                    sanitise(&self.login.pam_user)
                ));
                None
            }
            Err(error @ WhoError::UnknownGroup { .. }) => {
                self.conversation.show_error(MISCONFIGURED_MESSAGE);
                self.write_audit(
                    Decision::Error,
                    None,
                    format!("configuration error: {error}"),
                    started,
                    vec![],
                );
                Some(Outcome::ServiceError)
            }
        }
    }

    fn one_answer(&mut self) -> AnswerVerdict {
        let answer = self.conversation.ask(&self.config.prompt);
        let started = self.clock.monotonic();
        let Ok(answer) = answer else {
            self.write_audit(
                Decision::Deny,
                None,
                "conversation failed".to_string(),
                started,
                vec![],
            );
            return AnswerVerdict::TryAgain;
        };
        let trimmed = answer.as_bytes().trim_ascii();

        if let Some(entry) = bypass::find_match(&self.config.bypass_codes, trimmed) {
            self.conversation
                .show_info("Failsafe bypass code accepted; this login is audited.");
            let reason = match self.ask_reason(None, started) {
                Ok(reason) => reason,
                Err(outcome) => return AnswerVerdict::Done(outcome),
            };
            let mut extra = vec![("bypass_entry", entry.to_string())];
            let mut exports = vec![("TICKET_DECISION".to_string(), "bypass".to_string())];
            with_reason(&mut extra, &mut exports, reason);
            self.write_audit(
                Decision::Bypass,
                None,
                format!("failsafe bypass code entry {entry} used"),
                started,
                extra,
            );
            return AnswerVerdict::Done(Outcome::Granted { exports });
        }

        let id = match TicketId::parse(trimmed, self.config) {
            Ok(id) => id,
            Err(refusal) => {
                self.conversation.show_error(&refusal.user_message());
                self.write_audit(
                    Decision::Deny,
                    None,
                    refusal.audit_reason(),
                    started,
                    vec![("answer_length", trimmed.len().to_string())],
                );
                return AnswerVerdict::TryAgain;
            }
        };
        drop(answer);

        let Some(source) = self.source.as_deref_mut() else {
            if self.config.validate_ticket_number {
                self.conversation.show_error(MISCONFIGURED_MESSAGE);
                self.write_audit(
                    Decision::Error,
                    Some(&id),
                    "no ticket source".to_string(),
                    started,
                    vec![],
                );
                return AnswerVerdict::Done(Outcome::ServiceError);
            }
            let reason = match self.ask_reason(Some(&id), started) {
                Ok(reason) => reason,
                Err(outcome) => return AnswerVerdict::Done(outcome),
            };
            let mut extra = Vec::new();
            let mut exports = self.granted_exports(&id, "allow");
            with_reason(&mut extra, &mut exports, reason);
            self.write_audit(
                Decision::Allow,
                Some(&id),
                "format checks only (ValidateTicketNumber=No)".to_string(),
                started,
                extra,
            );
            return AnswerVerdict::Done(Outcome::Granted { exports });
        };
        let deadline = Deadline::new(self.clock, self.config.timeout);
        let mut result = source.lookup(&id, self.login, deadline, &mut *self.audit);
        // The one extra request of AllowedUserRoles=assignment_group, under the same
        // deadline, made only when no other allowed relation already holds.
        if let Ok(Lookup::Found(ticket)) = &mut result
            && let Some(group) =
                policy::group_to_ask_about(self.config, ticket, self.login.identity())
                    .map(str::to_string)
        {
            let identity = self.login.identity();
            match source.group_member(identity, &group, deadline, &mut *self.audit) {
                Ok(member) => {
                    self.audit.debug(&format!(
                        "assignment group membership of {}: {}",
                        crate::sanitise::sanitise(identity),
                        if member { "member" } else { "not a member" }
                    ));
                    ticket.group_member = Some(member);
                }
                // An outage leaves the person check open: the other checks still decide
                // first (see `judge`). Anything else is not an outage: denied as it is.
                Err(LookupError::Unavailable(outage)) => ticket.unanswered.push(Unanswered {
                    check: policy::ROLES_CHECK,
                    outage,
                }),
                Err(error) => result = Err(error),
            }
        }
        // The gateway's own names, only when a found ticket must name them; resolving
        // them shares the lookup's deadline.
        let target = match (&result, &self.config.ci_check) {
            (Ok(Lookup::Found(_)), Some(check)) => {
                Some(TargetNames::for_check(check, deadline.remaining()))
            }
            _ => None,
        };
        self.audit.debug(&format!(
            "lookup of {} {} at {}: {}",
            id.kind.audit_name(),
            id.text,
            source.system_name(),
            lookup_summary(&result)
        ));
        self.judge(&id, result, target.as_ref(), started)
    }

    fn judge(
        &mut self,
        id: &TicketId,
        result: Result<Lookup, LookupError>,
        target: Option<&TargetNames>,
        started: Instant,
    ) -> AnswerVerdict {
        let noun = id.kind.noun();
        match result {
            Ok(Lookup::Found(mut ticket)) => {
                let unanswered = std::mem::take(&mut ticket.unanswered);
                let results = policy::evaluate(
                    self.config,
                    &ticket,
                    self.login.identity(),
                    self.clock.now(),
                    target,
                );
                // A check that failed for want of an answer an outage kept back is an open
                // question, not a refusal; every other failure refuses the ticket as it
                // is. Only when nothing else refuses it does the outage decide (FailMode).
                let is_open = |check: &str| unanswered.iter().any(|open| open.check == check);
                let decided: Vec<CheckResult> = results
                    .iter()
                    .filter(|result| !is_open(result.check))
                    .cloned()
                    .collect();
                if policy::first_failure(&decided).is_none()
                    && let Some((open_check, _)) = policy::first_failure(&results)
                    && let Some(open) = unanswered.into_iter().find(|open| open.check == open_check)
                {
                    self.audit
                        .debug(&format!("the {open_check} check is open: {}", open.outage));
                    return self.judge(
                        id,
                        Err(LookupError::Unavailable(open.outage)),
                        target,
                        started,
                    );
                }
                if let Some((check, message)) = policy::first_failure(&decided) {
                    let message = message.to_string();
                    self.conversation.show_error(&message);
                    self.write_audit(
                        Decision::Deny,
                        Some(id),
                        message,
                        started,
                        vec![("check", check.to_string())],
                    );
                    return AnswerVerdict::TryAgain;
                }
                let passed: Vec<&str> = results.iter().map(|result| result.check).collect();
                let audit_reason = if passed.is_empty() {
                    "ticket exists".to_string()
                } else {
                    format!("ticket exists; passed {}", passed.join(", "))
                };
                let access_reason = match self.ask_reason(Some(id), started) {
                    Ok(reason) => reason,
                    Err(outcome) => return AnswerVerdict::Done(outcome),
                };
                let mut extra = Vec::new();
                let mut exports = self.granted_exports(id, "allow");
                with_reason(&mut extra, &mut exports, access_reason.clone());
                if self.config.work_notes.is_some() {
                    self.start_note(&ticket, &results, access_reason, &mut extra, &mut exports);
                }
                self.write_audit(Decision::Allow, Some(id), audit_reason, started, extra);
                AnswerVerdict::Done(Outcome::Granted { exports })
            }
            Ok(Lookup::AcceptedByPortal { detail }) => {
                self.write_audit(Decision::Allow, Some(id), detail, started, vec![]);
                AnswerVerdict::Done(self.granted(id, "allow"))
            }
            Err(LookupError::NotFound) => {
                let message = format!("{noun} {} was not found", id.text);
                self.conversation.show_error(&message);
                self.write_audit(Decision::Deny, Some(id), message, started, vec![]);
                AnswerVerdict::TryAgain
            }
            Err(LookupError::Ambiguous { records }) => {
                let message = format!("{noun} {} could not be identified uniquely", id.text);
                self.conversation.show_error(&message);
                self.write_audit(
                    Decision::Deny,
                    Some(id),
                    format!("{message} ({records} records, or a record with another number)"),
                    started,
                    vec![],
                );
                AnswerVerdict::TryAgain
            }
            Err(LookupError::RefusedByPortal { code, message }) => {
                let shown = format!("{noun} {} was refused: {message}", id.text);
                self.conversation.show_error(&shown);
                let extra = code
                    .map(|code| vec![("error_code", code)])
                    .unwrap_or_default();
                self.write_audit(Decision::Deny, Some(id), shown, started, extra);
                AnswerVerdict::TryAgain
            }
            Err(LookupError::NotCheckable { message }) => {
                self.conversation.show_error(&message);
                self.write_audit(Decision::Deny, Some(id), message, started, vec![]);
                AnswerVerdict::Done(Outcome::Refused)
            }
            Err(LookupError::Unavailable(outage)) => {
                // The one path to a failsafe login: an `Outage` can only be a refused,
                // reset or timed-out connection, a failed name lookup, a 5xx or a 429.
                if self.config.fail_mode == FailMode::Safe {
                    self.conversation.show_info(
                        "Ticket validation is unavailable; access is granted under the failsafe policy and audited.",
                    );
                    self.write_audit(
                        Decision::Failsafe,
                        Some(id),
                        format!("unavailable, allowed by FailMode=safe: {outage}"),
                        started,
                        vec![],
                    );
                    return AnswerVerdict::Done(self.granted(id, "failsafe"));
                }
                self.conversation.show_error(UNAVAILABLE_MESSAGE);
                self.write_audit(
                    Decision::Unavailable,
                    Some(id),
                    format!("unavailable: {outage}"),
                    started,
                    vec![],
                );
                AnswerVerdict::Done(Outcome::Unavailable)
            }
            Err(LookupError::AccountRefused { status, detail }) => {
                // Never failsafe: whoever can lock the module's account (systems lock it
                // after failed logons) or let its password expire would open the gateway
                // to everyone for as long as it lasts. The record says what to fix, and
                // goes to syslog at err.
                self.conversation.show_error(ACCOUNT_REFUSED_MESSAGE);
                let what = crate::backend::account_refused_text(self.config, status, &detail);
                self.write_audit(
                    Decision::Unavailable,
                    Some(id),
                    format!("unavailable (not an outage, so never failsafe): {what}"),
                    started,
                    vec![],
                );
                AnswerVerdict::Done(Outcome::Unavailable)
            }
            Err(LookupError::BadAnswer(why)) => {
                // Not an outage: an answer that is not the API's (an unexpected status or
                // body, TLS that fails, bytes that are not HTTP, a body or header over the
                // limit, a proxy that refuses) points at the request, the configuration or
                // something in between, and letting logins through would last as long as
                // the mistake, or the attack.
                self.conversation.show_error(UNAVAILABLE_MESSAGE);
                self.write_audit(
                    Decision::Unavailable,
                    Some(id),
                    format!("unavailable (not an outage, so never failsafe): {why}"),
                    started,
                    vec![],
                );
                AnswerVerdict::Done(Outcome::Unavailable)
            }
            Err(LookupError::UntrustedServer { detail }) => {
                // Never failsafe: a certificate that does not verify may be an attacker
                // who made the real system unreachable on purpose.
                self.conversation.show_error(UNTRUSTED_MESSAGE);
                self.write_audit(
                    Decision::Unavailable,
                    Some(id),
                    format!("server certificate not trusted: {detail}"),
                    started,
                    vec![],
                );
                AnswerVerdict::Done(Outcome::Unavailable)
            }
            Err(LookupError::Misconfigured { detail }) => {
                self.conversation.show_error(MISCONFIGURED_MESSAGE);
                self.write_audit(Decision::Error, Some(id), detail, started, vec![]);
                AnswerVerdict::Done(Outcome::ServiceError)
            }
        }
    }

    fn system_name(&self) -> String {
        system_name(self.config)
    }

    fn granted(&self, id: &TicketId, decision: &str) -> Outcome {
        Outcome::Granted {
            exports: self.granted_exports(id, decision),
        }
    }

    fn granted_exports(&self, id: &TicketId, decision: &str) -> Vec<(String, String)> {
        vec![
            ("TICKET_ID".to_string(), id.text.clone()),
            ("TICKETING_SYSTEM".to_string(), self.system_name()),
            ("TICKET_DECISION".to_string(), decision.to_string()),
        ]
    }

    /// WorkNotes=Yes, once access is granted on `ticket`: writes the start note (after the
    /// decision, which it cannot change) and keeps the session record that the end note
    /// needs, putting its handle into `exports`. What became of the note goes to `extra`, for the audit.
    fn start_note(
        &mut self,
        ticket: &crate::ticket::Ticket,
        results: &[policy::CheckResult],
        reason: Option<String>,
        extra: &mut Vec<(&'static str, String)>,
        exports: &mut Vec<(String, String)>,
    ) {
        let Some(settings) = &self.config.work_notes else {
            return;
        };
        let checks = results
            .iter()
            .filter_map(|result| match &result.verdict {
                policy::Verdict::Pass(seen) => Some(seen.clone()),
                policy::Verdict::Fail(_) => None,
            })
            .collect();
        // WorkNoteTimeout bounds the whole note: finding this host's name too.
        let note_started = self.clock.monotonic();
        let deadline = Deadline::new(self.clock, settings.timeout);
        let facts = self.session_facts(ticket, checks, reason, deadline);
        let outcome = match self.source.as_deref_mut() {
            Some(source) => notes::write(
                self.config,
                settings,
                source,
                &facts,
                NoteEvent::Started,
                self.clock,
                deadline,
                &mut *self.audit,
            ),
            None => NoteOutcome::Skipped("no ticket source".to_string()),
        };
        extra.extend(outcome.audit_fields());
        extra.push((
            "work_note_ms",
            self.clock.since(note_started).as_millis().to_string(),
        ));
        // The facts stay in a root-only file on this host; the session gets only the
        // file's random handle (see notes/session_record.rs).
        let store = session_record::SessionStore::new(&self.config.cache_directory);
        match store.keep(&facts, self.clock.unix_seconds()) {
            Ok(kept) => {
                if kept.pruned > 0 {
                    self.audit.debug(&format!(
                        "removed {} stale session record(s) from {}",
                        kept.pruned,
                        store.folder().display()
                    ));
                }
                exports.push((
                    session_record::ENVIRONMENT_NAME.to_string(),
                    kept.handle.environment_value(),
                ));
            }
            Err(problem) => self.audit.warn(&format!(
                "no work note will be written when the session ends: {problem}"
            )),
        }
    }

    /// What the notes say about this login.
    fn session_facts(
        &self,
        ticket: &crate::ticket::Ticket,
        checks: Vec<String>,
        reason: Option<String>,
        deadline: Deadline,
    ) -> SessionFacts {
        let host_wait = deadline
            .remaining()
            .map_or(std::time::Duration::ZERO, |left| {
                left.min(notes::HOST_NAME_WAIT)
            });
        SessionFacts {
            ticket: ticket.id.clone(),
            kind: ticket.kind,
            record_id: ticket.record_id.clone(),
            system: self.system_name(),
            user: self.login.pam_user.clone(),
            identity: notes::identity(self.login).to_string(),
            rhost: self.login.rhost.clone(),
            host: notes::host_name(host_wait),
            service: self.login.service.clone(),
            target: notes::target_text(self.login),
            checks,
            reason,
            started: self.clock.now().timestamp(),
        }
    }

    /// AskReason=Yes: asks for the reason, once more after an empty or over-long answer.
    /// `Err` ends the login (PAM_MAXTRIES) after the second such answer.
    fn ask_reason(
        &mut self,
        id: Option<&TicketId>,
        started: Instant,
    ) -> Result<Option<String>, Outcome> {
        let Some(prompt) = self.config.reason_prompt.clone() else {
            return Ok(None);
        };
        let mut problem = String::new();
        for attempt in 1..=2 {
            let answer = self.conversation.ask(&prompt);
            let text = answer
                .as_ref()
                .map(|answer| {
                    String::from_utf8_lossy(answer.as_bytes())
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            let length = text.chars().count();
            let reason = sanitise(&text);
            problem = if reason.is_empty() {
                "A reason is required: say why you need this access".to_string()
            } else if length > REASON_LIMIT {
                format!("A reason has at most {REASON_LIMIT} characters; this one has {length}")
            } else {
                return Ok(Some(reason));
            };
            self.conversation.show_error(&problem);
            self.audit
                .debug(&format!("reason {attempt} of 2 not accepted: {problem}"));
        }
        self.write_audit(
            Decision::Deny,
            id,
            format!("no acceptable reason given ({problem})"),
            started,
            vec![],
        );
        Err(Outcome::AttemptsExhausted)
    }

    fn write_audit(
        &mut self,
        decision: Decision,
        id: Option<&TicketId>,
        reason: String,
        started: Instant,
        mut extra: Vec<(&'static str, String)>,
    ) {
        if self.login.person != self.login.pam_user {
            extra.push(("person", self.login.person.clone()));
        }
        // Who the person is in the ticketing system, when that is not the login itself.
        if self.login.identity() != self.login.person {
            extra.push(("identity", self.login.identity().to_string()));
        }
        if self.config.work_notes.is_some() && !extra.iter().any(|(key, _)| *key == "work_note") {
            let why = match decision {
                Decision::Bypass => "bypass login: no verified ticket",
                Decision::Failsafe => "failsafe login: the ticket was not verified",
                Decision::Deny => "login refused",
                Decision::Unavailable | Decision::Error => "no verdict on the ticket",
                Decision::Exempt => "not asked for a ticket (exempt)",
                Decision::Allow | Decision::SessionEnd => "no verified ticket",
            };
            extra.extend(NoteOutcome::Skipped(why.to_string()).audit_fields());
        }
        if let Some(target) = &self.login.target {
            extra.push(("target_user", target.user.clone()));
            extra.push(("target_address", target.address.clone()));
        }
        let record = AuditRecord {
            time: self.clock.now(),
            decision,
            // As given: the audit record escapes its control characters and bounds it.
            user: self.login.pam_user.clone(),
            rhost: self.login.rhost.clone(),
            service: self.login.service.clone(),
            ticket: id.map(|id| id.text.clone()),
            ticket_type: id.map(|id| id.kind.audit_name()),
            system: Some(self.system_name()),
            reason,
            elapsed_ms: u64::try_from(self.clock.since(started).as_millis()).unwrap_or(u64::MAX),
            extra,
        };
        self.audit.record(&record);
    }
}

/// Adds the reason, when one was given, to the audit record and the exports.
fn with_reason(
    extra: &mut Vec<(&'static str, String)>,
    exports: &mut Vec<(String, String)>,
    reason: Option<String>,
) {
    if let Some(reason) = reason {
        extra.push(("access_reason", reason.clone()));
        exports.push(("TICKET_REASON".to_string(), reason));
    }
}

/// What a lookup established, in the words of the debug line (server text sanitised).
fn lookup_summary(result: &Result<Lookup, LookupError>) -> String {
    use crate::sanitise::sanitise;
    match result {
        Ok(Lookup::Found(ticket)) => {
            let mut found = "found".to_string();
            if let Some(state) = &ticket.state {
                found.push_str(&format!(", state {}", sanitise(&state.label)));
            }
            if let Some(approval) = &ticket.approval {
                found.push_str(&format!(", approval {}", sanitise(&approval.label)));
            }
            found
        }
        Ok(Lookup::AcceptedByPortal { .. }) => "accepted by the portal".to_string(),
        Err(LookupError::NotFound) => "not found".to_string(),
        Err(LookupError::Ambiguous { records }) => {
            format!("not one record with that number ({records} records, or another number)")
        }
        Err(LookupError::RefusedByPortal { code, .. }) => match code {
            Some(code) => format!("refused by the portal ({})", sanitise(code)),
            None => "refused by the portal".to_string(),
        },
        Err(LookupError::NotCheckable { message }) => {
            format!("cannot be checked: {}", sanitise(message))
        }
        Err(LookupError::Unavailable(outage)) => format!("unavailable (an outage): {outage}"),
        Err(LookupError::AccountRefused { status, .. }) => {
            format!("the module's account was refused (HTTP {status})")
        }
        Err(LookupError::BadAnswer(why)) => format!("not the API's answer: {why}"),
        Err(LookupError::UntrustedServer { detail }) => {
            format!("the server's certificate was not trusted: {detail}")
        }
        Err(LookupError::Misconfigured { detail }) => format!("misconfigured: {detail}"),
    }
}

/// The system name for audit records and TICKETING_SYSTEM.
pub fn system_name(config: &Config) -> String {
    if config.portal.is_some() {
        return "portal".to_string();
    }
    config
        .ticketing_system
        .map_or_else(|| "none".to_string(), |system| system.name().to_string())
}

#[cfg(test)]
mod tests;
