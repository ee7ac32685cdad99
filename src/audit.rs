//! Audit records: one per verdict, to syslog (authpriv, ident pam_ticket) as key=value
//! pairs and, when AuditLogFile is set, as one JSON object per line. Neither may ever hold
//! a password or a bypass code, and neither may ever change a decision: a missing syslog
//! socket or an unwritable file is reported where possible and otherwise ignored.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::sanitise::{one_line, strip_invisible};

/// The verdict of one answer (or of the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    Bypass,
    Failsafe,
    Unavailable,
    Error,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Bypass => "bypass",
            Decision::Failsafe => "failsafe",
            Decision::Unavailable => "unavailable",
            Decision::Error => "error",
        }
    }
}

/// One audit record. Optional fields are left out when empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub time: DateTime<Utc>,
    pub decision: Decision,
    pub user: String,
    pub rhost: Option<String>,
    pub service: Option<String>,
    /// Only for answers that passed the ID rules; a refused answer is never logged.
    pub ticket: Option<String>,
    pub ticket_type: Option<&'static str>,
    pub system: Option<String>,
    pub reason: String,
    pub elapsed_ms: u64,
    /// Extra facts: `answer_length`, `bypass_entry`, `target_user`, `error_code` …
    pub extra: Vec<(&'static str, String)>,
}

impl AuditRecord {
    /// The fields in their documented order, leaving out empty optional ones.
    ///
    /// This is the one place both the syslog line and the JSON line come from, so every
    /// text is cleaned here: invisible and bidirectional characters are removed from all
    /// of them. In `reason` and the extra fields, which carry text from servers (error
    /// messages, and whatever a transport error quotes), control characters become spaces
    /// too. In the fields that name the login (`user`, `rhost`, `service`) control
    /// characters are kept and escaped where they are written, so that an attempt to
    /// forge a line stays visible as such.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let text = |value: &str| json!(strip_invisible(value));
        let server_text = |value: &str| json!(one_line(value));
        let mut fields = vec![
            (
                "time",
                json!(self.time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            ),
            ("decision", json!(self.decision.name())),
            ("user", text(&self.user)),
        ];
        let optional = [
            ("rhost", self.rhost.as_deref()),
            ("service", self.service.as_deref()),
            ("ticket", self.ticket.as_deref()),
            ("type", self.ticket_type),
            ("system", self.system.as_deref()),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                fields.push((key, text(value)));
            }
        }
        fields.push(("reason", server_text(&self.reason)));
        fields.push(("elapsed_ms", json!(self.elapsed_ms)));
        for (key, value) in &self.extra {
            fields.push((key, server_text(value)));
        }
        fields
    }

    pub fn to_json(&self) -> Value {
        let object: Map<String, Value> = self
            .fields()
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect();
        Value::Object(object)
    }

    /// The syslog line: `decision=deny user=alice … reason="…"` (syslog stamps the time).
    pub fn to_key_values(&self) -> String {
        self.fields()
            .into_iter()
            .filter(|(key, _)| *key != "time")
            .map(|(key, value)| {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                format!("{key}={}", quote_if_needed(&text))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes a value for the syslog line when it needs it, and escapes control characters
/// whatever it holds: PAM_USER, PAM_RHOST and server text reach this line, and a newline
/// in any of them must not forge a second record.
fn quote_if_needed(text: &str) -> String {
    let needs_quotes = text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
    if !needs_quotes {
        return text.to_string();
    }
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Where records go. The flow only knows this trait, so tests can collect records.
pub trait AuditSink {
    fn record(&mut self, record: &AuditRecord);
    /// A debug line, written only when the `debug` argument is given.
    fn debug(&mut self, message: &str);
}

/// The real sink: syslog plus the optional JSON-lines file.
pub struct SystemAudit {
    file: Option<PathBuf>,
    debug: bool,
}

impl SystemAudit {
    pub fn new(file: Option<PathBuf>, debug: bool) -> SystemAudit {
        SystemAudit { file, debug }
    }
}

impl AuditSink for SystemAudit {
    fn record(&mut self, record: &AuditRecord) {
        let line = record.to_key_values();
        syslog_line(record.decision, &line);
        if let Some(path) = &self.file
            && let Err(problem) = append_json_line(path, &record.to_json())
        {
            syslog_line(
                Decision::Error,
                &format!("audit file not written: {problem}"),
            );
        }
    }

    fn debug(&mut self, message: &str) {
        if self.debug {
            syslog_debug(message);
        }
    }
}

fn logger() -> Option<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>> {
    let logger = syslog::unix(syslog::Formatter3164 {
        facility: syslog::Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "pam_ticket".to_string(),
        pid: std::process::id(),
    })
    .ok()?;
    // A stalled syslog daemon must not stall the login: a line that cannot be sent
    // within this time is dropped (the JSON audit file, when set, still has it).
    let limit = Some(std::time::Duration::from_millis(500));
    match &logger.backend {
        syslog::LoggerBackend::Unix(socket) => {
            let _ = socket.set_write_timeout(limit);
        }
        syslog::LoggerBackend::UnixStream(stream) => {
            let _ = stream.get_ref().set_write_timeout(limit);
        }
        _ => {}
    }
    Some(logger)
}

/// Writes one line to syslog at the level the decision deserves. Failures are ignored: a
/// missing syslog socket must never change a decision.
pub fn syslog_line(decision: Decision, line: &str) {
    let Some(mut logger) = logger() else {
        return;
    };
    // Record lines arrive escaped already; a warning or a panic message may not.
    let line = &*one_line(line);
    let _ = match decision {
        Decision::Allow => logger.info(line),
        Decision::Deny => logger.notice(line),
        Decision::Bypass | Decision::Failsafe => logger.warning(line),
        Decision::Unavailable | Decision::Error => logger.err(line),
    };
}

fn syslog_debug(line: &str) {
    if let Some(mut logger) = logger() {
        let _ = logger.debug(&*one_line(line));
    }
}

/// Appends one JSON object as a line to a root-only file (created 0600 if missing). An
/// existing file that others could read or write is not written to.
pub fn append_json_line(path: &Path, value: &Value) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        // O_NONBLOCK: a FIFO planted at the path must not stall the login.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|io_error| format!("cannot open {}: {io_error}", path.display()))?;
    let metadata = file
        .metadata()
        .map_err(|io_error| format!("cannot stat {}: {io_error}", path.display()))?;
    crate::secure_file::check(path, &metadata, crate::secure_file::Readers::OwnerOnly)?;
    let mut line = value.to_string();
    line.push('\n');
    // One write call, so that concurrent logins never interleave within a line.
    file.write_all(line.as_bytes())
        .map_err(|io_error| format!("cannot write {}: {io_error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn record() -> AuditRecord {
        AuditRecord {
            time: Utc
                .with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
                .single()
                .expect("time"),
            decision: Decision::Deny,
            user: "alice".to_string(),
            rhost: Some("10.0.0.1".to_string()),
            service: Some("sshd".to_string()),
            ticket: Some("INC0010002".to_string()),
            ticket_type: Some("incident"),
            system: Some("ServiceNow".to_string()),
            reason: "Ticket INC0010002 is Closed".to_string(),
            elapsed_ms: 12,
            extra: vec![],
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let value = record().to_json();
        assert_eq!(value["time"], "2026-11-30T10:00:00.000Z");
        assert_eq!(value["decision"], "deny");
        assert_eq!(value["ticket"], "INC0010002");
        assert_eq!(value["type"], "incident");
        assert_eq!(value["elapsed_ms"], 12);
    }

    #[test]
    fn key_values_escape_control_characters() {
        let mut forged = record();
        forged.user = "mallory\ndecision=allow user=alice".to_string();
        forged.rhost = Some("h\u{1b}[2J".to_string());
        let line = forged.to_key_values();
        assert!(!line.chars().any(char::is_control), "{line}");
        assert!(
            line.contains("user=\"mallory\\x0adecision=allow user=alice\""),
            "{line}"
        );
        assert!(line.contains("rhost=\"h\\x1b[2J\""), "{line}");
    }

    #[test]
    fn invisible_and_bidi_characters_are_stripped_from_every_field() {
        let mut spoofed = record();
        spoofed.user = "mal\u{202E}ecila".to_string();
        spoofed.rhost = Some("h\u{2066}ost\u{2069}".to_string());
        spoofed.reason = "Ticket \u{200B}INC1 is \u{202D}Closed\u{061C}".to_string();
        spoofed.extra = vec![("error_code", "X\u{FEFF}1\u{7}".to_string())];
        let line = spoofed.to_key_values();
        let json = spoofed.to_json().to_string();
        for written in [&line, &json] {
            assert!(
                !written.chars().any(crate::sanitise::is_invisible),
                "{written:?}"
            );
        }
        assert!(line.contains("user=malecila rhost=host"), "{line}");
        assert!(line.contains("reason=\"Ticket INC1 is Closed\""), "{line}");
        assert!(line.contains("error_code=\"X1 \""), "{line}");
        // Server text: controls become spaces in the JSON line as well.
        let mut quoted = record();
        quoted.reason = "bad header: \u{1b}[2J\r\nforged".to_string();
        assert_eq!(quoted.to_json()["reason"], "bad header:  [2J  forged");
        assert!(
            !quoted.to_key_values().contains("\\x"),
            "nothing left to escape"
        );
    }

    #[test]
    fn key_values_quote_spaces() {
        let line = record().to_key_values();
        assert!(line.starts_with("decision=deny user=alice"), "{line}");
        assert!(
            line.contains("reason=\"Ticket INC0010002 is Closed\""),
            "{line}"
        );
    }
}
