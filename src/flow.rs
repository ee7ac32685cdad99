//! The login flow: prompt loop, bypass codes, ID rules, lookup, policy, fail mode, audit.
//! Plain Rust, generic over the conversation, the ticket source, the audit sink and the
//! clock, so that every path is unit-tested without libpam or a network.

use std::time::Instant;

use crate::audit::{AuditRecord, AuditSink, Decision};
use crate::backend::{Lookup, LookupError, TicketSource};
use crate::bypass;
use crate::clock::Deadline;
use crate::config::{Config, FailMode};
use crate::login::Login;
use crate::policy;
use crate::ticket::TicketId;

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
}

impl<C: Conversation, A: AuditSink, K: Clock> Flow<'_, C, A, K> {
    /// Runs the whole authentication.
    pub fn run(mut self) -> Outcome {
        if !self.config.enter_ticketing_info {
            self.audit
                .debug("EnterTicketingInfo is No: this module does not apply");
            return Outcome::NotApplicable;
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
            self.write_audit(
                Decision::Bypass,
                None,
                format!("failsafe bypass code entry {entry} used"),
                started,
                vec![("bypass_entry", entry.to_string())],
            );
            return AnswerVerdict::Done(Outcome::Granted {
                exports: vec![("TICKET_DECISION".to_string(), "bypass".to_string())],
            });
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
            self.write_audit(
                Decision::Allow,
                Some(&id),
                "format checks only (ValidateTicketNumber=No)".to_string(),
                started,
                vec![],
            );
            return AnswerVerdict::Done(self.granted(&id, "allow"));
        };
        let deadline = Deadline::new(self.clock, self.config.timeout);
        let result = source.lookup(&id, self.login, deadline, &mut *self.audit);
        self.audit.debug(&format!(
            "lookup of {} {} at {}: {}",
            id.kind.audit_name(),
            id.text,
            source.system_name(),
            lookup_summary(&result)
        ));
        self.judge(&id, result, started)
    }

    fn judge(
        &mut self,
        id: &TicketId,
        result: Result<Lookup, LookupError>,
        started: Instant,
    ) -> AnswerVerdict {
        let noun = id.kind.noun();
        match result {
            Ok(Lookup::Found(ticket)) => {
                let results =
                    policy::evaluate(self.config, &ticket, &self.login.person, self.clock.now());
                if let Some((check, message)) = policy::first_failure(&results) {
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
                let reason = if passed.is_empty() {
                    "ticket exists".to_string()
                } else {
                    format!("ticket exists; passed {}", passed.join(", "))
                };
                self.write_audit(Decision::Allow, Some(id), reason, started, vec![]);
                AnswerVerdict::Done(self.granted(id, "allow"))
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
            exports: vec![
                ("TICKET_ID".to_string(), id.text.clone()),
                ("TICKETING_SYSTEM".to_string(), self.system_name()),
                ("TICKET_DECISION".to_string(), decision.to_string()),
            ],
        }
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
mod tests {
    use super::*;
    use crate::backend::{BadAnswer, Outage};
    use crate::bypass::BypassHash;
    use crate::config::{from_entries, parse_entries};
    use crate::fakes::ManualClock;
    use crate::http::{TransportError, Unreachable};
    use crate::secret::Secret;
    use crate::ticket::{Choice, Ticket};
    use std::collections::VecDeque;
    use std::path::Path;

    /// A scripted person: answers in order, records everything shown, and fails the
    /// test if asked more often than scripted or, when dropped, if answers are left
    /// unused (as kanidm's scripted PAM handler does), so a script says exactly what the
    /// flow asks.
    struct Script {
        answers: VecDeque<Result<&'static [u8], ConversationFailed>>,
        prompts: usize,
        errors: Vec<String>,
        infos: Vec<String>,
    }

    impl Script {
        fn new(answers: &[&'static str]) -> Script {
            Script::with_replies(answers.iter().map(|answer| Ok(answer.as_bytes())))
        }

        /// Replies that may be raw bytes or a failed conversation.
        fn with_replies(
            replies: impl IntoIterator<Item = Result<&'static [u8], ConversationFailed>>,
        ) -> Script {
            Script {
                answers: replies.into_iter().collect(),
                prompts: 0,
                errors: Vec::new(),
                infos: Vec::new(),
            }
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            // A second panic while unwinding would abort and hide the first failure.
            if !std::thread::panicking() {
                assert!(
                    self.answers.is_empty(),
                    "the flow left {} scripted answer(s) unused after {} prompt(s)",
                    self.answers.len(),
                    self.prompts
                );
            }
        }
    }

    impl Conversation for Script {
        fn ask(&mut self, prompt: &str) -> Result<Secret, ConversationFailed> {
            assert_eq!(prompt, "Ticket ID: ");
            self.prompts += 1;
            let answer = self
                .answers
                .pop_front()
                .expect("asked more often than scripted");
            answer.map(|bytes| Secret::new(bytes.to_vec()))
        }
        fn show_error(&mut self, message: &str) {
            self.errors.push(message.to_string());
        }
        fn show_info(&mut self, message: &str) {
            self.infos.push(message.to_string());
        }
    }

    #[derive(Default)]
    struct Records(Vec<AuditRecord>);

    impl AuditSink for Records {
        fn record(&mut self, record: &AuditRecord) {
            self.0.push(record.clone());
        }
        fn debug(&mut self, _message: &str) {}
        fn warn(&mut self, _message: &str) {}
    }

    type Answer = Box<dyn Fn(&TicketId) -> Result<Lookup, LookupError>>;

    /// A source that answers from a closure and counts lookups.
    struct FakeSource {
        answer: Answer,
        lookups: usize,
    }

    impl TicketSource for FakeSource {
        fn system_name(&self) -> &str {
            "ServiceNow"
        }
        fn lookup(
            &mut self,
            id: &TicketId,
            _login: &Login,
            _deadline: Deadline,
            _audit: &mut dyn AuditSink,
        ) -> Result<Lookup, LookupError> {
            self.lookups += 1;
            (self.answer)(id)
        }
    }

    fn config(extra: &str) -> Config {
        let text = format!("TicketingSystem=ServiceNow\nValidateTicketNumber=No\n{extra}");
        let entries = parse_entries(&text, Path::new("/t.conf")).expect("parse");
        let mut config = from_entries(Path::new("/t.conf"), entries, Vec::new()).expect("valid");
        // The fake source stands in for the network; the flow only needs the switch.
        config.validate_ticket_number = true;
        config
    }

    fn ticket(id: &TicketId, state: &str) -> Ticket {
        Ticket {
            id: id.text.clone(),
            kind: id.kind,
            state: Some(Choice::new(state, state)),
            approval: None,
            planned_start: None,
            planned_end: None,
            requesters: vec!["alice".to_string()],
        }
    }

    fn run(
        config: &Config,
        script: &mut Script,
        source: &mut FakeSource,
    ) -> (Outcome, Vec<AuditRecord>) {
        let login = Login::new(
            "alice",
            Some("10.1.2.3".to_string()),
            Some("sshd".to_string()),
        );
        let mut records = Records::default();
        let outcome = Flow {
            config,
            login: &login,
            conversation: script,
            source: Some(source),
            audit: &mut records,
            clock: &ManualClock::new(),
        }
        .run();
        (outcome, records.0)
    }

    fn source_with_state(state: &'static str) -> FakeSource {
        FakeSource {
            answer: Box::new(move |id| Ok(Lookup::Found(ticket(id, state)))),
            lookups: 0,
        }
    }

    #[test]
    fn valid_ticket_is_granted_and_exported() {
        let config = config("");
        let mut script = Script::new(&["  INC0010001 \n"]);
        let mut source = source_with_state("In Progress");
        let (outcome, records) = run(&config, &mut script, &mut source);
        assert_eq!(
            outcome,
            Outcome::Granted {
                exports: vec![
                    ("TICKET_ID".to_string(), "INC0010001".to_string()),
                    ("TICKETING_SYSTEM".to_string(), "ServiceNow".to_string()),
                    ("TICKET_DECISION".to_string(), "allow".to_string()),
                ]
            }
        );
        assert_eq!((script.prompts, source.lookups), (1, 1));
        assert!(script.errors.is_empty());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].decision, Decision::Allow);
        assert_eq!(records[0].ticket.as_deref(), Some("INC0010001"));
        assert_eq!(records[0].rhost.as_deref(), Some("10.1.2.3"));
    }

    #[test]
    fn not_applicable_never_prompts() {
        let config = config("EnterTicketingInfo=No\n");
        let mut script = Script::new(&[]);
        let mut source = source_with_state("New");
        let (outcome, records) = run(&config, &mut script, &mut source);
        assert_eq!(outcome, Outcome::NotApplicable);
        assert_eq!((script.prompts, source.lookups, records.len()), (0, 0, 0));
    }

    #[test]
    fn hostile_answers_never_reach_the_source_and_are_not_logged() {
        let config = config("MaxAttempts=5\n");
        let mut script = Script::new(&[
            "INC0010001^NQnumberISNOTEMPTY",
            "INC0010001\" OR \"1\"=\"1",
            "INC 0010001",
            "INC0010001\u{7}",
            "",
        ]);
        let mut source = source_with_state("New");
        let (outcome, records) = run(&config, &mut script, &mut source);
        assert_eq!(outcome, Outcome::AttemptsExhausted);
        assert_eq!((script.prompts, source.lookups), (5, 0));
        assert_eq!(script.errors.len(), 5);
        assert_eq!(
            script.errors[0],
            "A ticket ID may only contain letters, digits, '-' and '_'"
        );
        assert_eq!(script.errors[4], "No ticket ID was entered");
        for record in &records {
            assert_eq!(record.decision, Decision::Deny);
            assert_eq!(record.ticket, None);
            let json = record.to_json().to_string();
            assert!(!json.contains("NQnumber") && !json.contains("OR"), "{json}");
        }
        assert_eq!(records[0].extra, vec![("answer_length", "29".to_string())]);
    }

    #[test]
    fn non_utf8_and_overlong_answers_are_refused() {
        let config = config("MaxAttempts=2\n");
        let mut script = Script::with_replies([
            Ok(&b"INC\xff\xfe"[..]),
            Ok("INC".repeat(30).leak().as_bytes()),
        ]);
        let mut source = source_with_state("New");
        let (outcome, _) = run(&config, &mut script, &mut source);
        assert_eq!(outcome, Outcome::AttemptsExhausted);
        assert_eq!(source.lookups, 0);
        assert_eq!(
            script.errors[1],
            "A ticket ID has at most 64 characters; this answer has 90"
        );
    }

    #[test]
    fn wrong_then_right_answer() {
        let config = config(
            "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New,In Progress\"\n",
        );
        let mut script = Script::new(&["INC0010002", "INC0010001"]);
        let mut source = FakeSource {
            answer: Box::new(|id| {
                let state = if id.text == "INC0010002" {
                    "Closed"
                } else {
                    "In Progress"
                };
                Ok(Lookup::Found(ticket(id, state)))
            }),
            lookups: 0,
        };
        let (outcome, records) = run(&config, &mut script, &mut source);
        assert!(matches!(outcome, Outcome::Granted { .. }));
        assert_eq!(
            script.errors,
            vec!["Ticket INC0010002 is Closed; allowed states: New, In Progress".to_string()]
        );
        assert_eq!(
            records
                .iter()
                .map(|record| record.decision)
                .collect::<Vec<_>>(),
            vec![Decision::Deny, Decision::Allow]
        );
        assert_eq!(source.lookups, 2);
    }

    #[test]
    fn conversation_failure_counts_as_a_refused_attempt() {
        let config = config("MaxAttempts=2\n");
        let mut script = Script::with_replies([Err(ConversationFailed), Err(ConversationFailed)]);
        let mut source = source_with_state("New");
        let (outcome, records) = run(&config, &mut script, &mut source);
        assert_eq!(outcome, Outcome::AttemptsExhausted);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].reason, "conversation failed");
    }

    #[test]
    fn bypass_code_is_accepted_without_lookup_and_never_logged() {
        let hash = BypassHash::create(b"open-sesame-2026", b"\x10\x20");
        let config = config(&format!("FailsafeBypassCode=\"{}\"\n", hash));
        let mut script = Script::new(&["open-sesame-2026"]);
        let mut source = source_with_state("New");
        let (outcome, records) = run(&config, &mut script, &mut source);
        assert!(matches!(outcome, Outcome::Granted { .. }));
        assert_eq!(source.lookups, 0);
        assert_eq!(records[0].decision, Decision::Bypass);
        assert_eq!(records[0].extra, vec![("bypass_entry", "1".to_string())]);
        assert!(!records[0].to_json().to_string().contains("open-sesame"));
    }

    #[test]
    fn unavailable_follows_fail_mode() {
        let down = || FakeSource {
            answer: Box::new(|_| {
                Err(LookupError::Unavailable(Outage::Unreachable(
                    Unreachable::ConnectionRefused,
                )))
            }),
            lookups: 0,
        };
        let mut script = Script::new(&["INC0010001"]);
        let (outcome, records) = run(&config(""), &mut script, &mut down());
        assert_eq!(outcome, Outcome::Unavailable);
        assert_eq!(script.errors, vec![UNAVAILABLE_MESSAGE.to_string()]);
        assert_eq!(records[0].decision, Decision::Unavailable);
        assert_eq!(records[0].reason, "unavailable: connection refused");

        let mut script = Script::new(&["INC0010001"]);
        let (outcome, records) = run(&config("FailMode=safe\n"), &mut script, &mut down());
        assert!(
            matches!(outcome, Outcome::Granted { ref exports } if exports.contains(&("TICKET_DECISION".to_string(), "failsafe".to_string())))
        );
        assert_eq!(records[0].decision, Decision::Failsafe);
    }

    #[test]
    fn an_unexpected_answer_is_never_failsafe() {
        let mut source = FakeSource {
            answer: Box::new(|_| {
                Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                    status: 404,
                    detail: String::new(),
                }))
            }),
            lookups: 0,
        };
        let mut script = Script::new(&["INC0010001"]);
        let (outcome, records) = run(&config("FailMode=safe\n"), &mut script, &mut source);
        assert_eq!(outcome, Outcome::Unavailable);
        assert_eq!(script.errors, vec![UNAVAILABLE_MESSAGE.to_string()]);
        assert_eq!(records[0].decision, Decision::Unavailable);
        assert_eq!(
            records[0].reason,
            "unavailable (not an outage, so never failsafe): unexpected HTTP 404"
        );
    }

    /// Every answer that is not the API's, below HTTP or above it, is denied in both
    /// modes with the unavailable message; only an `Outage` reaches the failsafe.
    #[test]
    fn answers_that_are_not_the_apis_are_denied_in_both_modes() {
        let failures = [
            BadAnswer::Transport(TransportError::Tls("received fatal alert".to_string())),
            BadAnswer::Transport(TransportError::Protocol("conflicting".to_string())),
            BadAnswer::Transport(TransportError::BodyTooLarge { limit: 1 << 20 }),
            BadAnswer::Transport(TransportError::HeaderTooLarge { limit: 65536 }),
            BadAnswer::Transport(TransportError::ProxyRefused("407".to_string())),
            BadAnswer::Transport(TransportError::InvalidRequest("char".to_string())),
            BadAnswer::TicketCheckFailed {
                what: "HTTP 503".to_string(),
            },
        ];
        for failure in failures {
            for mode in ["secure", "safe"] {
                let answer = failure.clone();
                let mut source = FakeSource {
                    answer: Box::new(move |_| Err(LookupError::BadAnswer(answer.clone()))),
                    lookups: 0,
                };
                let mut script = Script::new(&["INC0010001"]);
                let config = config(&format!("FailMode={mode}\n"));
                let (outcome, records) = run(&config, &mut script, &mut source);
                assert_eq!(outcome, Outcome::Unavailable, "{failure:?} {mode}");
                assert_eq!(script.errors, vec![UNAVAILABLE_MESSAGE.to_string()]);
                assert!(script.infos.is_empty());
                assert_eq!(records[0].decision, Decision::Unavailable);
                assert_eq!(
                    records[0].reason,
                    format!("unavailable (not an outage, so never failsafe): {failure}")
                );
            }
        }
    }

    #[test]
    fn a_refused_module_account_is_denied_in_both_modes_and_says_what_to_fix() {
        for mode in ["secure", "safe"] {
            let mut source = FakeSource {
                answer: Box::new(|_| {
                    Err(LookupError::AccountRefused {
                        status: 401,
                        detail: "User Not Authenticated".to_string(),
                    })
                }),
                lookups: 0,
            };
            let mut script = Script::new(&["INC0010001"]);
            let (outcome, records) = run(
                &config(&format!("FailMode={mode}\n")),
                &mut script,
                &mut source,
            );
            assert_eq!(outcome, Outcome::Unavailable);
            assert_eq!(script.errors, vec![ACCOUNT_REFUSED_MESSAGE.to_string()]);
            assert_eq!(records[0].decision, Decision::Unavailable);
            assert!(
                records[0].reason.starts_with(
                    "unavailable (not an outage, so never failsafe): the module's account (none) \
                     was refused by the ticketing system (HTTP 401: User Not Authenticated): \
                     check ConnectionAccountFile"
                ),
                "{}",
                records[0].reason
            );
        }
    }

    #[test]
    fn untrusted_certificate_is_denied_even_in_safe_mode() {
        let mut source = FakeSource {
            answer: Box::new(|_| {
                Err(LookupError::UntrustedServer {
                    detail: "UnknownIssuer".to_string(),
                })
            }),
            lookups: 0,
        };
        let mut script = Script::new(&["INC0010001"]);
        let (outcome, records) = run(&config("FailMode=safe\n"), &mut script, &mut source);
        assert_eq!(outcome, Outcome::Unavailable);
        assert_eq!(records[0].decision, Decision::Unavailable);
        assert!(records[0].reason.contains("UnknownIssuer"));
    }

    #[test]
    fn not_found_names_the_ticket() {
        let mut source = FakeSource {
            answer: Box::new(|_| Err(LookupError::NotFound)),
            lookups: 0,
        };
        let mut script = Script::new(&["INC0099999"]);
        let (outcome, _) = run(&config("MaxAttempts=1\n"), &mut script, &mut source);
        assert_eq!(outcome, Outcome::AttemptsExhausted);
        assert_eq!(
            script.errors,
            vec!["Ticket INC0099999 was not found".to_string()]
        );
    }
}
