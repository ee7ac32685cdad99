//! Work notes: the ticket as the audit trail. When a login on a verified ticket is
//! granted, a note says who came from where onto what, when, and which checks passed;
//! when the session ends, a second note says how long it lasted.
//!
//! A note never changes a verdict: it is written after the decision, bounded by its own
//! WorkNoteTimeout (one retry at most, inside that time), and its outcome is audited as
//! `work_note` (`written`, `failed`, `skipped`) with `work_note_reason`.
//!
//! The facts a note needs are kept from `pam_sm_authenticate` to `pam_sm_close_session`
//! in a root-only [`session_record`] file; only its random handle travels with the login.

pub mod session_end;
pub mod session_record;
pub mod template;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::audit::AuditSink;
use crate::backend::{LookupError, NoteTarget, TicketSource};
use crate::clock::{Clock, Deadline};
use crate::config::Config;
use crate::login::Login;
use crate::sanitise::sanitise;
use crate::ticket::TicketKind;

pub use template::{NoteTemplate, Placeholder, TemplateError};

/// ServiceNow's `work_notes` holds at most this many characters; every note is cut to it.
pub const NOTE_LIMIT: usize = 4000;
/// The longest reason accepted at the `Reason: ` prompt.
pub const REASON_LIMIT: usize = 200;

/// The work-note settings (WorkNotes=Yes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSettings {
    /// WorkNoteTimeout: the whole write, its one retry included.
    pub timeout: Duration,
    /// NoteTemplate, or the built-in text.
    pub template: NoteTemplate,
}

/// The identity the ticket was matched against, as the notes name it: who the person is
/// in the ticketing system (UserMapFile, UserMatchField, UserMatchDomain; the person
/// itself when none maps it).
pub fn identity(login: &Login) -> &str {
    login.identity()
}

/// Everything a note says about one login; raw values, sanitised when a note is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFacts {
    pub ticket: String,
    pub kind: TicketKind,
    /// What the backend needs to write to the ticket: the ServiceNow `sys_id`, the Remedy
    /// change's entry ID (`None` where the ticket ID is enough).
    pub record_id: Option<String>,
    /// TICKETING_SYSTEM: a session whose system changed since the login writes nothing.
    pub system: String,
    pub user: String,
    pub identity: String,
    pub rhost: Option<String>,
    pub host: String,
    pub service: Option<String>,
    /// `user[#domain]@address[#port]`, for a PSM for SSH connection string.
    pub target: Option<String>,
    /// What each passed check saw (`state In Progress`).
    pub checks: Vec<String>,
    pub reason: Option<String>,
    /// When access was granted, Unix seconds.
    pub started: i64,
}

impl SessionFacts {
    /// Where the note goes, for the backend's per-kind mapping.
    pub fn target_record(&self) -> NoteTarget {
        NoteTarget {
            kind: self.kind,
            id: self.ticket.clone(),
            record_id: self.record_id.clone(),
        }
    }
}

/// Which of the two notes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteEvent {
    Started,
    Ended { duration: Duration },
}

/// The PSM target as the notes show it: `user[#domain]@address[#port]`.
pub fn target_text(login: &Login) -> Option<String> {
    let target = login.target.as_ref()?;
    let mut text = target.user.clone();
    if let Some(domain) = &target.domain {
        text.push('#');
        text.push_str(domain);
    }
    text.push('@');
    text.push_str(&target.address);
    if let Some(port) = target.port {
        text.push_str(&format!("#{port}"));
    }
    Some(text)
}

/// `HH:MM:SS (N s)`.
pub fn duration_text(duration: Duration) -> String {
    let seconds = duration.as_secs();
    format!(
        "{:02}:{:02}:{:02} ({seconds} s)",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// UTC, ISO 8601, to the second.
pub fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// ServiceNow renders what a journal entry holds between `[code]` and `[/code]` as HTML
/// (`glide.ui.security.allow_codetag`, true by default), so a reason, a host name or a
/// login that opened such a block would plant markup, and possibly script, in the ticket
/// for every agent who reads it. The bracket that would open `[code` or `[/code` (any
/// case) becomes `(`: the text stays readable, and no tag can form.
pub fn defuse_code_tags(value: &str) -> String {
    let mut defused = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('[') {
        defused.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let word = after.strip_prefix('/').unwrap_or(after);
        let opens_tag = word
            .get(..4)
            .is_some_and(|start| start.eq_ignore_ascii_case("code"));
        defused.push(if opens_tag { '(' } else { '[' });
        rest = after;
    }
    defused.push_str(rest);
    defused
}

/// The note's text: a first line that says which event it is, then the template with
/// every value sanitised (no control, invisible or direction-changing character, no line
/// break inside a value), cut to [`NOTE_LIMIT`] characters.
pub fn compose(
    template: &NoteTemplate,
    facts: &SessionFacts,
    event: NoteEvent,
    now: DateTime<Utc>,
) -> String {
    let absent = || "-".to_string();
    let clean = |value: Option<&str>| {
        value
            .map(sanitise)
            .filter(|value| !value.is_empty())
            .unwrap_or_else(absent)
    };
    let headline = match event {
        NoteEvent::Started => {
            "pam_ticket: SSH access granted on this ticket; session started.".to_string()
        }
        NoteEvent::Ended { duration } => format!(
            "pam_ticket: SSH session ended after {}.",
            duration_text(duration)
        ),
    };
    let checks = if facts.checks.is_empty() {
        "ticket exists".to_string()
    } else {
        facts.checks.join("; ")
    };
    let body = template.render(|placeholder| match placeholder {
        Placeholder::User => clean(Some(&facts.user)),
        Placeholder::Identity => clean(Some(&facts.identity)),
        Placeholder::Rhost => clean(facts.rhost.as_deref()),
        Placeholder::Host => clean(Some(&facts.host)),
        Placeholder::Service => clean(facts.service.as_deref()),
        Placeholder::Target => clean(facts.target.as_deref()),
        Placeholder::Time => time_text(now),
        Placeholder::Ticket => clean(Some(&facts.ticket)),
        Placeholder::Checks => clean(Some(&checks)),
        Placeholder::Duration => match event {
            NoteEvent::Started => absent(),
            NoteEvent::Ended { duration } => duration_text(duration),
        },
        Placeholder::Reason => clean(facts.reason.as_deref()),
    });
    // The template's own text is the admin's, from a root-only file; only its control
    // characters other than the line breaks it asked for are taken out. Code tags are
    // defused in the whole note, not value by value: a tag can form where a value meets
    // the template's text (`[{reason}]` with a reason of `code]…`) or another value.
    let text: String = format!("{headline}\n{body}")
        .chars()
        .filter(|c| *c == '\n' || !(c.is_control() || crate::sanitise::is_invisible(*c)))
        .collect();
    let text = defuse_code_tags(&text);
    if text.chars().count() <= NOTE_LIMIT {
        return text;
    }
    let mut cut: String = text.chars().take(NOTE_LIMIT - 1).collect();
    cut.push('…');
    cut
}

/// What became of a note, for the audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteOutcome {
    Written,
    Failed(String),
    Skipped(String),
}

impl NoteOutcome {
    /// The audit fields `work_note` and, unless it was written, `work_note_reason`.
    pub fn audit_fields(&self) -> Vec<(&'static str, String)> {
        match self {
            NoteOutcome::Written => vec![("work_note", "written".to_string())],
            NoteOutcome::Failed(why) => vec![
                ("work_note", "failed".to_string()),
                ("work_note_reason", why.clone()),
            ],
            NoteOutcome::Skipped(why) => vec![
                ("work_note", "skipped".to_string()),
                ("work_note_reason", why.clone()),
            ],
        }
    }
}

/// Writes one note before `deadline` (set to WorkNoteTimeout when the note was begun,
/// see [`host_name`]) and says what became of it. A failure is logged at warning with
/// what to fix; it never changes anything else.
#[allow(clippy::too_many_arguments)] // each is one thing the note needs
pub fn write(
    config: &Config,
    settings: &NoteSettings,
    source: &mut dyn TicketSource,
    facts: &SessionFacts,
    event: NoteEvent,
    clock: &dyn Clock,
    deadline: Deadline,
    audit: &mut dyn AuditSink,
) -> NoteOutcome {
    let text = compose(&settings.template, facts, event, clock.now());
    match source.write_note(&facts.target_record(), &text, deadline, audit) {
        Ok(()) => NoteOutcome::Written,
        Err(error) => {
            let why = failure_text(config, settings, &error);
            audit.warning(&format!(
                "work note on {} {} not written: {why}",
                facts.kind.audit_name(),
                sanitise(&facts.ticket)
            ));
            NoteOutcome::Failed(why)
        }
    }
}

/// What the admin reads about a failed write: what happened and what to fix.
fn failure_text(config: &Config, settings: &NoteSettings, error: &LookupError) -> String {
    match error {
        LookupError::AccountRefused { status, detail } => {
            let username = config
                .connection_account
                .as_ref()
                .map_or("(none)", |account| account.username.as_str());
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            format!(
                "the module's account {} may not write to the ticket (HTTP {status}{detail}); give it write access (see the README's \"Audit\" section for the roles)",
                sanitise(username)
            )
        }
        LookupError::Unavailable(outage) => format!(
            "{outage}; the write gave up within WorkNoteTimeout ({} s)",
            settings.timeout.as_secs()
        ),
        LookupError::NotFound => {
            "the ticket's record was not found for writing (removed since the login?)".to_string()
        }
        LookupError::BadAnswer(why) => {
            format!("{why}; check SystemURL and the account's access to the ticket's table or form")
        }
        LookupError::UntrustedServer { detail } => {
            format!("the server's certificate was not trusted: {detail}")
        }
        LookupError::Misconfigured { detail } => detail.clone(),
        LookupError::Ambiguous { .. }
        | LookupError::RefusedByPortal { .. }
        | LookupError::NotCheckable { .. } => "the ticketing system refused the note".to_string(),
    }
}

/// How long a note waits for the resolver to give this host's canonical name, at most.
pub const HOST_NAME_WAIT: Duration = Duration::from_millis(500);

/// This gateway's fully qualified name ([`crate::host::fqdn`]), waited for at most `wait`
/// so that a slow resolver never holds up a login (the short name is used then). A note's
/// wait is part of its WorkNoteTimeout: [`HOST_NAME_WAIT`] or what is left of it, if less.
pub fn host_name(wait: Duration) -> String {
    crate::host::fqdn(wait)
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_tags_never_form_in_a_value() {
        for (value, expected) in [
            (
                "[code]<img src=x onerror=alert(1)>[/code]",
                "(code]<img src=x onerror=alert(1)>(/code]",
            ),
            ("[CoDe]x[/CODE]", "(CoDe]x(/CODE]"),
            ("[[code]]", "[(code]]"),
            ("[urgent] see [1]", "[urgent] see [1]"),
            ("[cod", "[cod"),
            ("ends with [", "ends with ["),
            ("[/", "[/"),
            ("[é code]", "[é code]"),
        ] {
            assert_eq!(defuse_code_tags(value), expected, "{value}");
        }
    }

    use super::*;
    use chrono::TimeZone;

    fn facts() -> SessionFacts {
        SessionFacts {
            ticket: "INC0010001".to_string(),
            kind: TicketKind::Incident,
            record_id: Some("abc".to_string()),
            system: "ServiceNow".to_string(),
            user: "alice".to_string(),
            identity: "alice".to_string(),
            rhost: Some("192.0.2.7".to_string()),
            host: "gw1.example.com".to_string(),
            service: Some("sshd".to_string()),
            target: None,
            checks: vec!["state In Progress".to_string()],
            reason: Some("patch \u{202e}kernel\nnow".to_string()),
            started: 0,
        }
    }

    #[test]
    fn the_built_in_note_names_who_where_what_when_and_the_checks() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 5, 10, 0, 0)
            .single()
            .expect("time");
        let text = compose(&NoteTemplate::built_in(), &facts(), NoteEvent::Started, now);
        assert_eq!(
            text,
            "pam_ticket: SSH access granted on this ticket; session started.\n\
             User: alice (identity alice)\nFrom: 192.0.2.7\n\
             Onto: gw1.example.com, PAM service sshd, target -\n\
             Time: 2026-12-05T10:00:00Z (UTC)\nTicket: INC0010001\n\
             Checks passed: state In Progress\nReason: patch kernel now"
        );
        let ended = compose(
            &NoteTemplate::built_in(),
            &facts(),
            NoteEvent::Ended {
                duration: Duration::from_secs(3725),
            },
            now,
        );
        assert!(ended.starts_with("pam_ticket: SSH session ended after 01:02:05 (3725 s).\n"));
    }

    #[test]
    fn values_are_sanitised_and_the_note_is_capped() {
        let mut facts = facts();
        facts.user = format!("mallory\n\u{1b}[2J{}", "x".repeat(5000));
        let template = NoteTemplate::parse("{user}{user}{user}{user}{user}{user}{user}{user}{user}{user}{user}{user}{user}{user}{user}")
            .expect("parses");
        let now = Utc
            .with_ymd_and_hms(2026, 12, 5, 10, 0, 0)
            .single()
            .expect("time");
        let text = compose(&template, &facts, NoteEvent::Started, now);
        assert_eq!(text.chars().count(), NOTE_LIMIT);
        assert!(text.ends_with('…'));
        assert_eq!(
            text.matches('\n').count(),
            1,
            "only the headline's line break"
        );
        assert!(!text.contains('\u{1b}'));
    }
}
