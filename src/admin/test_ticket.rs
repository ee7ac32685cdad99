//! `pam-ticket test`: runs the module's login flow (the same `Flow`, backend and policy)
//! for one user and one answer, without PAM, and prints every step with its verdict.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::args::{self, EXIT_CODES, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parsed};
use crate::audit::{AuditRecord, AuditSink, Delivery, SystemAudit};
use crate::backend::{self, Lookup, LookupError, TicketSource};
use crate::bypass;
use crate::flow::{Clock, Conversation, ConversationFailed, Flow, Outcome, SystemClock};
use crate::host::TargetNames;
use crate::http::Deadline;
use crate::login::Login;
use crate::policy::{self, Verdict};
use crate::secret::Secret;
use crate::ticket::{Ticket, TicketId};

/// The most of standard input `TICKET` = `-` reads; only its first line is used.
const STDIN_LIMIT: usize = 4096;

const HELP: &str =
    "usage: pam-ticket test --user NAME [--rhost HOST] [--service NAME] [--config PATH]
                        [--arg MODULE-ARGUMENT]... [--audit] TICKET

Runs the whole validation the module would run when NAME logs in and answers TICKET at the
prompt: bypass codes, the ID rules, the request to the ticketing system (a real request),
every enabled check, the fail mode. Prints each step with its verdict, the messages the
user would see, the final decision with its PAM return code, and the audit record.

TICKET `-` reads the answer from the first line of standard input (use it for a bypass
code, which should not appear in `ps` or the shell history).

The module would ask again after a refused answer, up to MaxAttempts; this runs one answer.
With TicketingSystem=BMCRemedy, or PortalAuthMethod=PlatformToken (Privilege Cloud), the
token cache in CacheDirectory is used as the module uses it (run as root, like sshd, so that
the cache's owner check passes).

  --user NAME            PAM_USER; in portal mode (FetchCredentialsThroughPVWA=Yes) a PSM for
                         SSH connection string such as alice@root@db01.example.com, split as
                         the module does (the portal is asked to retrieve that account's
                         password with the ticket; the password is wiped unread)
  --rhost HOST           PAM_RHOST, as sshd would set it (default: none)
  --service NAME         PAM_SERVICE (default: pam-ticket)
  --config PATH          the configuration file (as config=PATH on the pam.d line)
  --arg MODULE-ARGUMENT  an argument as written on the pam.d line (debug, Key=Value); repeatable
  --audit                also write the audit record (syslog and AuditLogFile) and say where
                         it went (e.g. that syslog was not written because /dev/log is
                         missing); by default nothing is written
";

/// Runs the subcommand; returns the process exit code.
pub fn run(arguments: &[String]) -> i32 {
    let options = match args::parse(
        arguments,
        &["user", "rhost", "service", "config"],
        &["arg"],
        &["audit"],
    ) {
        Ok(Parsed::Help) => {
            println!("{HELP}\n{EXIT_CODES}");
            return EXIT_OK;
        }
        Ok(Parsed::Run(options)) => options,
        Err(problem) => {
            eprintln!("pam-ticket test: {problem}\n\n{HELP}");
            return EXIT_USAGE;
        }
    };
    let (Some(user), [ticket]) = (options.value("user"), options.positional.as_slice()) else {
        eprintln!("pam-ticket test: give --user NAME and exactly one TICKET\n\n{HELP}");
        return EXIT_USAGE;
    };
    let answer = if ticket == "-" {
        // It may be a bypass code: read into a wiped buffer of a fixed size.
        let input = match Secret::read_from(&mut std::io::stdin().lock(), STDIN_LIMIT) {
            Ok(input) => input,
            Err(io_error) => {
                eprintln!("pam-ticket test: cannot read standard input: {io_error}");
                return EXIT_USAGE;
            }
        };
        let first_line = input.as_bytes().split(|byte| *byte == b'\n').next();
        Secret::new(first_line.unwrap_or_default().to_vec())
    } else {
        Secret::new(ticket.as_bytes().to_vec())
    };

    let module_arguments = options.all("arg");
    let path = args::config_path_shown(options.value("config"), &module_arguments);
    let mut config = match args::load_config(options.value("config"), &module_arguments) {
        Ok(config) => config,
        Err(problem) => {
            row("configuration", "ERROR", &problem.to_string());
            row(
                "decision",
                "ERROR",
                "the module would return PAM_SERVICE_ERR",
            );
            return EXIT_CONFIG;
        }
    };
    row("configuration", "OK", &path);
    // One answer: a refused answer ends the run instead of prompting again.
    let max_attempts = config.max_attempts;
    config.max_attempts = 1;
    // A dry run leaves no trace on the ticket, and has no second answer for a reason.
    if config.work_notes.take().is_some() {
        row(
            "work note",
            "SKIP",
            "WorkNotes=Yes: pam-ticket test writes nothing to the ticket (`pam-ticket check` says whether a write would be allowed)",
        );
    }
    if config.reason_prompt.take().is_some() {
        row(
            "reason",
            "SKIP",
            "AskReason=Yes: not asked by pam-ticket test",
        );
    }

    let login = Login::new(
        user,
        options.value("rhost").map(str::to_string),
        Some(options.value("service").unwrap_or("pam-ticket").to_string()),
    )
    .identified(&config.people);
    print_login(&login);
    let trimmed = answer.as_bytes().trim_ascii().to_vec();
    let trimmed = Secret::new(trimmed);
    if config.enter_ticketing_info && config.portal.is_some() && login.target.is_none() {
        // The Flow refuses this login before it prompts: nothing else is looked at.
        row(
            "target",
            "FAIL",
            &format!(
                "portal mode needs a PSM for SSH connection string: \
                 --user <you>@<target user>[#domain]@<target address>[#port], \
                 e.g. --user {}@root@db01.example.com",
                login.pam_user
            ),
        );
    } else {
        print_answer_checks(&config, &trimmed);
    }

    let mut source = if config.enter_ticketing_info && config.validate_ticket_number {
        match backend::from_config(&config) {
            Ok(source) => Some(source),
            Err(problem) => {
                row("ticket source", "ERROR", &problem);
                row(
                    "decision",
                    "ERROR",
                    "the module would return PAM_SERVICE_ERR",
                );
                return EXIT_CONFIG;
            }
        }
    } else {
        None
    };
    let mut recording = source
        .as_deref_mut()
        .map(|inner| Recording { inner, seen: None });
    let now = SystemClock.now();
    let mut conversation = OneAnswer {
        answer: Some(answer),
        shown: Vec::new(),
    };
    let mut audit = Capture {
        records: Vec::new(),
        forward: options
            .switch("audit")
            .then(|| SystemAudit::new(config.audit_log_file.clone(), config.debug)),
    };
    let outcome = Flow {
        config: &config,
        login: &login,
        conversation: &mut conversation,
        source: recording
            .as_mut()
            .map(|recording| recording as &mut dyn TicketSource),
        audit: &mut audit,
        clock: &FixedClock(now),
        directory: &crate::nss::SystemDirectory,
    }
    .run();

    if let Some(recording) = &recording {
        print_lookup(&config, &login, recording, now);
        // Counted in the HTTP client: every request this login made, retries included.
        row(
            "requests",
            "",
            &format!(
                "{} HTTP request(s) to {} for this login",
                recording.requests_sent(),
                recording.system_name()
            ),
        );
    } else if config.enter_ticketing_info && !config.validate_ticket_number {
        row("lookup", "SKIP", "ValidateTicketNumber=No: no request");
    }
    for (kind, message) in &conversation.shown {
        row("user sees", kind, message);
    }
    let code = print_decision(&outcome, max_attempts);
    for (record, delivery) in &audit.records {
        row("audit record", "", &record.to_json().to_string());
        print_delivery(delivery.as_ref());
    }
    code
}

/// The width of the first column (the longest label, `check requester`, and a space) and
/// of the verdict column (the longest verdict, `IGNORE`, and a space).
const LABEL_WIDTH: usize = 16;
const VERDICT_WIDTH: usize = 7;

/// One line of the report: label, verdict, text, each in its column.
fn row(label: &str, verdict: &str, text: &str) {
    let line = format!("{label:<LABEL_WIDTH$}{verdict:<VERDICT_WIDTH$}{text}");
    println!("{}", line.trim_end());
}

/// Where a record went; `None` when nothing was written (no --audit).
fn print_delivery(delivery: Option<&Delivery>) {
    let Some(delivery) = delivery else {
        row(
            "audit",
            "SKIP",
            "not written (neither syslog nor AuditLogFile); --audit writes it",
        );
        return;
    };
    match &delivery.syslog {
        Ok(()) => row(
            "audit syslog",
            "OK",
            "written (facility authpriv, ident pam_ticket)",
        ),
        Err(failure) => row("audit syslog", "FAIL", &format!("not written: {failure}")),
    }
    match &delivery.file {
        None => row("audit file", "SKIP", "AuditLogFile is not set"),
        Some((path, Ok(()))) => row(
            "audit file",
            "OK",
            &format!("appended to {}", path.display()),
        ),
        Some((_, Err(problem))) => row("audit file", "FAIL", &format!("not written: {problem}")),
    }
}

fn print_login(login: &Login) {
    let mut line = format!("user {}", login.pam_user);
    if login.person != login.pam_user {
        line.push_str(&format!(" (person {})", login.person));
    }
    if login.identity() != login.person {
        line.push_str(&format!(
            ", in the ticketing system {}",
            crate::sanitise::sanitise(login.identity())
        ));
    }
    if let Some(target) = &login.target {
        line.push_str(&format!(
            ", target {}{}@{}{}",
            target.user,
            target
                .domain
                .as_ref()
                .map(|domain| format!("#{domain}"))
                .unwrap_or_default(),
            target.address,
            target
                .port
                .map(|port| format!(":{port}"))
                .unwrap_or_default()
        ));
    }
    if let Some(rhost) = &login.rhost {
        line.push_str(&format!(", rhost {rhost}"));
    }
    row("login", "", &line);
}

/// The steps before any request: bypass codes, then the ID rules. Display only; the
/// decision is the Flow's.
fn print_answer_checks(config: &crate::config::Config, trimmed: &Secret) {
    if !config.enter_ticketing_info {
        row(
            "prompt",
            "SKIP",
            "EnterTicketingInfo=No: the module does not apply",
        );
        return;
    }
    row(
        "prompt",
        "",
        &format!(
            "{:?} answered with {} character(s)",
            config.prompt,
            trimmed.as_bytes().len()
        ),
    );
    if let Some(entry) = bypass::find_match(&config.bypass_codes, trimmed.as_bytes()) {
        row(
            "bypass code",
            "MATCH",
            &format!("FailsafeBypassCode entry {entry}"),
        );
        return;
    }
    if !config.bypass_codes.is_empty() {
        row(
            "bypass code",
            "NO",
            &format!("matches none of {} code(s)", config.bypass_codes.len()),
        );
    }
    match TicketId::parse(trimmed.as_bytes(), config) {
        Ok(id) => row(
            "ID rules",
            "PASS",
            &format!("{} {}", id.kind.audit_name(), id.text),
        ),
        Err(refusal) => row("ID rules", "FAIL", &refusal.user_message()),
    }
}

fn print_lookup(
    config: &crate::config::Config,
    login: &Login,
    recording: &Recording<'_>,
    now: DateTime<Utc>,
) {
    let Some(result) = &recording.seen else {
        return;
    };
    let system = recording.inner.system_name();
    match result {
        Ok(Lookup::Found(ticket)) => {
            row(
                "lookup",
                "FOUND",
                &format!("{system}: {}", describe(ticket)),
            );
            // The same pure function the Flow ran, on the same ticket, person, time and
            // target.
            let target = config
                .ci_check
                .as_ref()
                .map(|check| TargetNames::for_check(check, Some(config.timeout)));
            if let Some(target) = &target {
                row("target", "", &target.describe());
            }
            let results = policy::evaluate(config, ticket, login.identity(), now, target.as_ref());
            if results.is_empty() {
                row(
                    "checks",
                    "",
                    "none enabled: the ticket exists, which is enough",
                );
            }
            for result in results {
                let label = format!("check {}", result.check);
                match result.verdict {
                    Verdict::Pass(text) => row(&label, "PASS", &text),
                    Verdict::Fail(text) => row(&label, "FAIL", &text),
                }
            }
        }
        Ok(Lookup::AcceptedByPortal { detail }) => row(
            "lookup",
            "PASS",
            &format!("{system} accepted the ticket: {detail}"),
        ),
        Err(LookupError::Unavailable(outage)) => row(
            "lookup",
            "DOWN",
            &format!("{system} is unavailable: {outage} (an outage: FailMode decides)"),
        ),
        Err(LookupError::AccountRefused { status, detail }) => row(
            "lookup",
            "FAIL",
            &format!(
                "{system} refused the account: {} (not an outage: denied in both fail modes)",
                crate::backend::account_refused_text(config, *status, detail)
            ),
        ),
        Err(LookupError::BadAnswer(why)) => row(
            "lookup",
            "FAIL",
            &format!(
                "{system} did not give the API's answer: {why} (not an outage: denied in both fail modes)"
            ),
        ),
        Err(LookupError::UntrustedServer { detail }) => row(
            "lookup",
            "FAIL",
            &format!("{system}'s certificate did not verify: {detail} (denied in both fail modes)"),
        ),
        Err(error) => row(
            "lookup",
            "FAIL",
            &format!("{system}: {}", lookup_error(error)),
        ),
    }
}

fn lookup_error(error: &LookupError) -> String {
    match error {
        LookupError::NotFound => "no such ticket".to_string(),
        LookupError::Ambiguous { records } => {
            format!("{records} record(s), or one with another number")
        }
        LookupError::RefusedByPortal { code, message } => match code {
            Some(code) => format!("refused ({code}): {message}"),
            None => format!("refused: {message}"),
        },
        LookupError::NotCheckable { message } => message.clone(),
        LookupError::Misconfigured { detail } => format!("misconfigured: {detail}"),
        LookupError::Unavailable(outage) => outage.to_string(),
        LookupError::AccountRefused { status, detail } => {
            format!("the module's account was refused (HTTP {status}): {detail}")
        }
        LookupError::BadAnswer(why) => why.to_string(),
        LookupError::UntrustedServer { detail } => detail.clone(),
    }
}

fn describe(ticket: &Ticket) -> String {
    let mut parts = vec![format!("{} {}", ticket.kind.audit_name(), ticket.id)];
    // Server text is shown sanitised, as the module shows it; the checks below ran on the
    // raw text.
    if let Some(state) = &ticket.state {
        parts.push(format!("state {}", backend::sanitise(&state.label)));
    }
    if let Some(approval) = &ticket.approval {
        parts.push(format!("approval {}", backend::sanitise(&approval.label)));
    }
    if let (Some(start), Some(end)) = (ticket.planned_start, ticket.planned_end) {
        parts.push(format!("window {}", policy::format_window(start, end)));
    }
    if !ticket.requesters.is_empty() {
        let requesters: Vec<String> = ticket
            .requesters
            .iter()
            .map(|requester| backend::sanitise(requester))
            .collect();
        parts.push(format!("requesters {}", requesters.join("/")));
    }
    if let Some(items) = &ticket.configuration_items {
        let names: Vec<String> = items
            .iter()
            .map(|item| {
                let mut name = backend::sanitise(&item.name);
                let more: Vec<String> = [&item.fqdn, &item.host_name, &item.ip_address]
                    .into_iter()
                    .flatten()
                    .map(|text| backend::sanitise(text))
                    .collect();
                if !more.is_empty() {
                    name.push_str(&format!(" ({})", more.join(" ")));
                }
                name
            })
            .collect();
        parts.push(if names.is_empty() {
            "no configuration item".to_string()
        } else {
            format!("configuration items {}", names.join("/"))
        });
    }
    if let Some(assignee) = &ticket.assignee {
        parts.push(format!("assignee {}", backend::sanitise(assignee)));
    }
    if let Some(group) = &ticket.assignment_group {
        let membership = match ticket.group_member {
            Some(true) => " (the person is a member)",
            Some(false) => " (the person is not a member)",
            None => "",
        };
        parts.push(format!(
            "assignment group {}{membership}",
            backend::sanitise(group)
        ));
    }
    parts.join(", ")
}

fn print_decision(outcome: &Outcome, max_attempts: u32) -> i32 {
    let (verdict, text, code) = match outcome {
        Outcome::Granted { exports } => {
            let exported: Vec<String> = exports
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            (
                "ALLOW",
                format!("PAM_SUCCESS; exports {}", exported.join(" ")),
                EXIT_OK,
            )
        }
        Outcome::NotApplicable => (
            "IGNORE",
            "PAM_IGNORE: no prompt, the rest of the stack decides".to_string(),
            EXIT_OK,
        ),
        Outcome::AttemptsExhausted => (
            "DENY",
            format!(
                "answer refused; the module asks again (MaxAttempts={max_attempts}), then \
                 returns PAM_MAXTRIES"
            ),
            EXIT_FAILED,
        ),
        Outcome::Unavailable => (
            "DENY",
            "ticket validation unavailable (PAM_AUTHINFO_UNAVAIL)".to_string(),
            EXIT_FAILED,
        ),
        Outcome::Refused => (
            "DENY",
            "no ticket can make this login pass; the module returns PAM_MAXTRIES, so sshd \
             does not ask again"
                .to_string(),
            EXIT_FAILED,
        ),
        Outcome::ServiceError => ("ERROR", "PAM_SERVICE_ERR".to_string(), EXIT_CONFIG),
    };
    row("decision", verdict, &text);
    code
}

/// Answers the first prompt with the given answer; any further prompt fails, which the
/// Flow counts as a refused attempt (MaxAttempts is 1 here, so there is none).
struct OneAnswer {
    answer: Option<Secret>,
    shown: Vec<(&'static str, String)>,
}

impl Conversation for OneAnswer {
    fn ask(&mut self, _prompt: &str) -> Result<Secret, ConversationFailed> {
        self.answer.take().ok_or(ConversationFailed)
    }
    fn show_error(&mut self, message: &str) {
        self.shown.push(("ERROR", message.to_string()));
    }
    fn show_info(&mut self, message: &str) {
        self.shown.push(("INFO", message.to_string()));
    }
}

/// Forwards to the real backend and keeps what it answered, for the report.
struct Recording<'a> {
    inner: &'a mut dyn TicketSource,
    seen: Option<Result<Lookup, LookupError>>,
}

impl TicketSource for Recording<'_> {
    fn system_name(&self) -> &str {
        self.inner.system_name()
    }
    fn requests_sent(&self) -> u64 {
        self.inner.requests_sent()
    }
    fn lookup(
        &mut self,
        id: &TicketId,
        login: &Login,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        let result = self.inner.lookup(id, login, deadline, audit);
        self.seen = Some(result.clone());
        result
    }
    /// Forwarded, and the answer kept in the recorded ticket, so that the report's
    /// re-evaluation sees the membership the decision used.
    fn group_member(
        &mut self,
        identity: &str,
        group: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        let result = self.inner.group_member(identity, group, deadline, audit);
        match (&result, &mut self.seen) {
            (Ok(member), Some(Ok(Lookup::Found(ticket)))) => ticket.group_member = Some(*member),
            (Err(error), seen) => *seen = Some(Err(error.clone())),
            _ => {}
        }
        result
    }
}

/// Keeps every record for the report, with where it went; writes them for real only with
/// --audit.
struct Capture {
    records: Vec<(AuditRecord, Option<Delivery>)>,
    forward: Option<SystemAudit>,
}

impl AuditSink for Capture {
    fn record(&mut self, record: &AuditRecord) {
        let delivery = self.forward.as_mut().map(|sink| sink.deliver(record));
        self.records.push((record.clone(), delivery));
    }
    fn debug(&mut self, message: &str) {
        if let Some(sink) = &mut self.forward {
            sink.debug(message);
        }
    }
    /// Warnings reach syslog with or without --audit, as the module's do: they are not
    /// records, and they say what an administrator should fix.
    fn warn(&mut self, message: &str) {
        match &mut self.forward {
            Some(sink) => sink.warn(message),
            None => SystemAudit::new(None, false).warn(message),
        }
    }
    fn warning(&mut self, message: &str) {
        match &mut self.forward {
            Some(sink) => sink.warning(message),
            None => SystemAudit::new(None, false).warning(message),
        }
    }
}

/// One "now" for the Flow and the report's re-evaluation, so both see the same window;
/// deadlines and pauses run on the system's clock, as the module's do.
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
    fn monotonic(&self) -> Instant {
        SystemClock.monotonic()
    }
    fn sleep(&self, duration: Duration) {
        SystemClock.sleep(duration);
    }
}
