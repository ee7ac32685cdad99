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

/// Audit records, and the warnings beside them.
#[derive(Default)]
struct Records(Vec<AuditRecord>, Vec<String>);

impl AuditSink for Records {
    fn record(&mut self, record: &AuditRecord) {
        self.0.push(record.clone());
    }
    fn debug(&mut self, _message: &str) {}
    fn warn(&mut self, message: &str) {
        self.1.push(message.to_string());
    }
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
    /// A fake sends nothing over HTTP.
    fn requests_sent(&self) -> u64 {
        0
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
        assignee: None,
        assignment_group: None,
        group_member: None,
        unanswered: Vec::new(),
        configuration_items: None,
        record_id: None,
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
        directory: &crate::nss::SystemDirectory,
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

/// alice is in group 0 (root); "broken" makes the name service fail.
struct Directory(bool);

impl crate::nss::Directory for Directory {
    fn group_id(&self, name: &str) -> Result<Option<crate::nss::Gid>, crate::nss::NssError> {
        Ok((name == "root").then_some(0))
    }
    fn groups_of(&self, login: &str) -> Result<Option<Vec<crate::nss::Gid>>, crate::nss::NssError> {
        if self.0 {
            return Err(crate::nss::NssError {
                what: format!("looking up user {login}"),
                errno: libc::EIO,
            });
        }
        Ok(Some(vec![0]))
    }
}

fn run_with(
    config: &Config,
    script: &mut Script,
    source: &mut dyn TicketSource,
    directory: &Directory,
) -> (Outcome, Vec<AuditRecord>) {
    let login = Login::new("alice", None, Some("sshd".to_string())).identified(&config.people);
    let mut records = Records::default();
    let outcome = Flow {
        config,
        login: &login,
        conversation: script,
        source: Some(source),
        audit: &mut records,
        clock: &ManualClock::new(),
        directory,
    }
    .run();
    (outcome, records.0)
}

#[test]
fn a_login_that_is_not_asked_is_ignored_and_audited_as_exempt() {
    for (extra, reason) in [
        ("ExemptUsers=alice\n", "alice is listed in ExemptUsers"),
        (
            "ExemptGroups=root\n",
            "alice is a member of root, listed in ExemptGroups",
        ),
    ] {
        let mut script = Script::new(&[]);
        let mut source = source_with_state("2");
        let (outcome, records) =
            run_with(&config(extra), &mut script, &mut source, &Directory(false));
        assert_eq!(outcome, Outcome::NotApplicable, "{extra}");
        assert_eq!(script.prompts, 0);
        assert_eq!(source.lookups, 0);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].decision, Decision::Exempt);
        assert_eq!(records[0].reason, reason);
    }
}

/// A name service that cannot tell exempts nobody and grants nothing: the login is
/// asked for a ticket in both fail modes, the ticket decides, and a warning says why.
#[test]
fn a_name_service_that_cannot_tell_exempts_nobody_and_the_ticket_decides() {
    for keys in ["Groups=root\n", "ExemptGroups=root\n"] {
        for mode in ["secure", "safe"] {
            let config = config(&format!(
                "{keys}FailMode={mode}\nMaxAttempts=1\nValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"In Progress\"\n"
            ));
            for (state, granted) in [("In Progress", true), ("Closed", false)] {
                let mut script = Script::new(&["INC0010001"]);
                let mut source = source_with_state(state);
                let login =
                    Login::new("alice", None, Some("sshd".to_string())).identified(&config.people);
                let mut records = Records::default();
                let outcome = Flow {
                    config: &config,
                    login: &login,
                    conversation: &mut script,
                    source: Some(&mut source),
                    audit: &mut records,
                    clock: &ManualClock::new(),
                    directory: &Directory(true),
                }
                .run();
                let context = format!("{keys} {mode} state {state}: {outcome:?}");
                assert_eq!(
                    matches!(outcome, Outcome::Granted { .. }),
                    granted,
                    "{context}"
                );
                assert_eq!(script.prompts, 1, "{context}");
                assert_eq!(source.lookups, 1, "{context}");
                assert!(script.infos.is_empty(), "{context}");
                assert_eq!(records.0.len(), 1, "{context}");
                assert_eq!(
                    records.0[0].decision,
                    if granted {
                        Decision::Allow
                    } else {
                        Decision::Deny
                    },
                    "{context}"
                );
                assert_eq!(
                    records.1,
                    [
                        "group membership of alice could not be read (looking up user alice: Input/output error (os error 5)); asked for a ticket as if no exemption applied"
                    ],
                    "{context}"
                );
            }
        }
    }
}

/// A source whose ticket has an assignment group, and which answers the membership.
struct GroupSource {
    member: Result<bool, LookupError>,
    asked: Vec<(String, String)>,
}

impl TicketSource for GroupSource {
    /// A fake sends nothing over HTTP.
    fn requests_sent(&self) -> u64 {
        0
    }
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
        let mut found = ticket(id, "2");
        found.requesters = vec!["carol".to_string()];
        found.assignment_group = Some("0a5f0000000000000000000000000001".to_string());
        Ok(Lookup::Found(found))
    }
    fn group_member(
        &mut self,
        identity: &str,
        group: &str,
        _deadline: Deadline,
        _audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        self.asked.push((identity.to_string(), group.to_string()));
        self.member.clone()
    }
}

#[test]
fn the_assignment_group_is_asked_about_once_and_its_outage_is_an_outage() {
    let roles =
        config("ValidateRequestingUser=Yes\nAllowedUserRoles=\"requester, assignment_group\"\n");
    let mut source = GroupSource {
        member: Ok(true),
        asked: Vec::new(),
    };
    let mut script = Script::new(&["INC0010001"]);
    let (outcome, records) = run_with(&roles, &mut script, &mut source, &Directory(false));
    assert!(matches!(outcome, Outcome::Granted { .. }), "{outcome:?}");
    assert_eq!(
        source.asked,
        [(
            "alice".to_string(),
            "0a5f0000000000000000000000000001".to_string()
        )]
    );
    assert_eq!(records[0].reason, "ticket exists; passed roles");

    let mut source = GroupSource {
        member: Err(LookupError::Unavailable(Outage::Unreachable(
            Unreachable::ConnectionRefused,
        ))),
        asked: Vec::new(),
    };
    let mut script = Script::new(&["INC0010001"]);
    let (outcome, records) = run_with(&roles, &mut script, &mut source, &Directory(false));
    assert_eq!(outcome, Outcome::Unavailable);
    assert_eq!(records[0].reason, "unavailable: connection refused");
}
