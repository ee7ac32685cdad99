//! Audit records: one per verdict, to syslog (authpriv, ident pam_ticket) as key=value
//! pairs and, when AuditLogFile is set, as one JSON object per line. Neither may ever hold
//! a password or a bypass code, and neither may ever change a decision: a missing syslog
//! socket or an unwritable file is reported where possible and otherwise ignored.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::sanitise::{login_text, one_line};

/// The verdict of one answer (or of the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Not asked for a ticket (ExemptUsers, ExemptGroups, or outside Groups): PAM_IGNORE.
    Exempt,
    Bypass,
    Failsafe,
    Unavailable,
    Error,
    /// A session on a ticket-verified login ended (WorkNotes=Yes).
    SessionEnd,
}

impl Decision {
    pub fn name(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Exempt => "exempt",
            Decision::Bypass => "bypass",
            Decision::Failsafe => "failsafe",
            Decision::Unavailable => "unavailable",
            Decision::Error => "error",
            Decision::SessionEnd => "session_end",
        }
    }
}

/// The extra fields that are counts: written as JSON numbers (`"answer_length":29`), so
/// that log tools can compare and add them up, as they can `elapsed_ms`.
pub const NUMBER_FIELDS: [&str; 4] = [
    "answer_length",
    "bypass_entry",
    "work_note_ms",
    "duration_s",
];

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
    /// forge a line stays visible as such; like every other field they are cut at 300
    /// characters.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let text = |value: &str| json!(login_text(value));
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
            let count = NUMBER_FIELDS
                .contains(key)
                .then(|| value.parse::<u64>().ok())
                .flatten();
            fields.push((
                key,
                count.map_or_else(|| server_text(value), |count| json!(count)),
            ));
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
    /// A problem that changes no decision but that an administrator should fix (a token
    /// cache that cannot be used). Never part of a record.
    fn warn(&mut self, message: &str);
    /// A failure that changes no decision and blocks nothing (a work note not written),
    /// with what to fix: syslog at warning where [`AuditSink::warn`] is at err.
    fn warning(&mut self, message: &str) {
        self.warn(message);
    }
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

/// Where one record went: syslog, and the audit file when one is set.
#[derive(Debug)]
pub struct Delivery {
    pub syslog: Result<(), SyslogFailure>,
    /// `None` when no AuditLogFile is set.
    pub file: Option<(PathBuf, Result<(), AuditFileError>)>,
}

impl SystemAudit {
    /// Writes a record and says where it went (for `pam-ticket test --audit`). A record
    /// the file refused is followed by an `audit file not written: …` line in syslog.
    pub fn deliver(&mut self, record: &AuditRecord) -> Delivery {
        let line = record.to_key_values();
        let syslog = syslog_line(record.decision, &line);
        let file = self.file.as_ref().map(|path| {
            let written = append_json_line(path, &record.to_json());
            if let Err(problem) = &written {
                let _ = syslog_line(
                    Decision::Error,
                    &format!("audit file not written: {problem}"),
                );
            }
            (path.clone(), written)
        });
        Delivery { syslog, file }
    }
}

impl AuditSink for SystemAudit {
    fn record(&mut self, record: &AuditRecord) {
        // Neither syslog nor the file may change a decision: what failed was reported
        // where it could be.
        let _ = self.deliver(record);
    }

    fn debug(&mut self, message: &str) {
        if self.debug {
            syslog_debug(message);
        }
    }

    /// To syslog at err, like a record that says the module needs attention.
    fn warn(&mut self, message: &str) {
        let _ = syslog_line(Decision::Error, message);
    }

    fn warning(&mut self, message: &str) {
        let _ = syslog_warning(message);
    }
}

/// One line to syslog at warning.
pub fn syslog_warning(line: &str) -> Result<(), SyslogFailure> {
    let mut logger = logger()?;
    logger
        .warning(&*one_line(line))
        .map_err(|problem| SyslogFailure::NotSent(problem.to_string()))
}

/// Why a line did not reach syslog.
#[derive(Debug)]
pub enum SyslogFailure {
    /// No syslog socket could be connected to (`/dev/log` missing, or nobody listening).
    NoSocket(String),
    /// Connected, but the line could not be sent (e.g. a daemon too slow to take it).
    NotSent(String),
}

impl fmt::Display for SyslogFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogFailure::NoSocket(why) => write!(
                f,
                "no syslog socket to write to ({why}); is a syslog daemon or journald listening on /dev/log?"
            ),
            SyslogFailure::NotSent(why) => write!(f, "the line could not be sent ({why})"),
        }
    }
}

fn logger() -> Result<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>, SyslogFailure> {
    let logger = syslog::unix(syslog::Formatter3164 {
        facility: syslog::Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "pam_ticket".to_string(),
        pid: std::process::id(),
    })
    .map_err(|problem| {
        // The crate also tries BSD's socket paths; when /dev/log is missing, that is what
        // an admin on Linux needs to hear, not what the last path tried answered.
        if std::path::Path::new("/dev/log").exists() {
            SyslogFailure::NoSocket(format!("/dev/log: {problem}"))
        } else {
            SyslogFailure::NoSocket("/dev/log does not exist".to_string())
        }
    })?;
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
    Ok(logger)
}

/// Writes one line to syslog at the level the decision deserves. A failure is returned
/// for those who report it (`pam-ticket test --audit`); the module ignores it: a missing
/// syslog socket must never change a decision.
pub fn syslog_line(decision: Decision, line: &str) -> Result<(), SyslogFailure> {
    let mut logger = logger()?;
    // Record lines arrive escaped already; a warning or a panic message may not.
    let line = &*one_line(line);
    match decision {
        Decision::Allow | Decision::Exempt | Decision::SessionEnd => logger.info(line),
        Decision::Deny => logger.notice(line),
        Decision::Bypass | Decision::Failsafe => logger.warning(line),
        Decision::Unavailable | Decision::Error => logger.err(line),
    }
    .map_err(|problem| SyslogFailure::NotSent(problem.to_string()))
}

fn syslog_debug(line: &str) {
    if let Ok(mut logger) = logger() {
        let _ = logger.debug(&*one_line(line));
    }
}

/// Why a record could not be appended to the audit file. Each says what to fix; none is
/// ever fatal to a login (the record still reaches syslog).
#[derive(Debug)]
pub enum AuditFileError {
    /// The path has no parent directory or no file name (e.g. `/`).
    NotAFilePath(PathBuf),
    /// The folder that holds the file is a symbolic link, which is never followed.
    DirectoryIsLink {
        directory: PathBuf,
    },
    /// The folder that holds the file cannot be opened or inspected.
    DirectoryUnusable {
        directory: PathBuf,
        error: io::Error,
    },
    /// The folder is not a root-only folder: someone else could plant a link, a FIFO or a
    /// file of their own there.
    DirectoryNotRootOnly {
        directory: PathBuf,
        problem: String,
    },
    /// The file cannot be opened: a symbolic link (never followed), a FIFO without a reader,
    /// a missing folder …
    Open {
        path: PathBuf,
        error: io::Error,
    },
    /// The opened file is a FIFO, a device or a folder: nothing is written to it.
    NotARegularFile {
        path: PathBuf,
        kind: &'static str,
    },
    /// The opened file is owned by someone else, or others may read or write it.
    UnsafeFile(String),
    Write {
        path: PathBuf,
        error: io::Error,
    },
}

impl fmt::Display for AuditFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditFileError::NotAFilePath(path) => {
                write!(f, "{} does not name a file in a folder", path.display())
            }
            AuditFileError::DirectoryIsLink { directory } => write!(
                f,
                "the folder {} is a symbolic link, which is never followed (name the folder \
                 it points to)",
                directory.display()
            ),
            AuditFileError::DirectoryUnusable { directory, error } => {
                write!(f, "cannot open the folder {}: {error}", directory.display())
            }
            AuditFileError::DirectoryNotRootOnly { directory, problem } => write!(
                f,
                "the folder {} must be writable by root alone: {problem}",
                directory.display()
            ),
            AuditFileError::Open { path, error } => {
                let hint = match error.raw_os_error() {
                    Some(libc::ELOOP) => " (a symbolic link, which is never followed)",
                    Some(libc::ENXIO) => " (a FIFO, which is never written to)",
                    _ => "",
                };
                write!(f, "cannot open {}: {error}{hint}", path.display())
            }
            AuditFileError::NotARegularFile { path, kind } => {
                write!(f, "{} is {kind}, not a regular file", path.display())
            }
            AuditFileError::UnsafeFile(problem) => f.write_str(problem),
            AuditFileError::Write { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for AuditFileError {}

/// Appends one JSON object as a line to the audit file.
///
/// Root writes this file, so where it writes must be beyond anyone else's reach. The folder
/// that holds the file (not its ancestors) must be writable by root alone (or by the user
/// the module runs as, when that is not root: see [`crate::secure_file`]), checked on the
/// opened folder, which is opened with `O_NOFOLLOW` (a link in its place is refused). The
/// file is opened relative to that folder with `O_NOFOLLOW` (a link is
/// refused) and `O_NONBLOCK` (a FIFO never stalls the login), created 0600 if missing, and
/// written only if the opened file is a regular file that others can neither read nor
/// write.
pub fn append_json_line(path: &Path, value: &Value) -> Result<(), AuditFileError> {
    let (Some(directory), Some(name)) = (
        path.parent()
            .filter(|parent| !parent.as_os_str().is_empty()),
        path.file_name(),
    ) else {
        return Err(AuditFileError::NotAFilePath(path.to_path_buf()));
    };
    // The folder itself, never a link in its place: a link would let whoever can change
    // it choose where root writes (its ancestors are followed, as the README says).
    let folder = crate::secure_file::open_folder(directory).map_err(|error| {
        if crate::secure_file::is_symlink(directory) {
            AuditFileError::DirectoryIsLink {
                directory: directory.to_path_buf(),
            }
        } else {
            AuditFileError::DirectoryUnusable {
                directory: directory.to_path_buf(),
                error,
            }
        }
    })?;
    let folder_metadata = folder
        .metadata()
        .map_err(|error| AuditFileError::DirectoryUnusable {
            directory: directory.to_path_buf(),
            error,
        })?;
    crate::secure_file::check_directory(&folder_metadata).map_err(|problem| {
        AuditFileError::DirectoryNotRootOnly {
            directory: directory.to_path_buf(),
            problem,
        }
    })?;
    let mut file = open_in(&folder, name).map_err(|error| AuditFileError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let metadata = file.metadata().map_err(|error| AuditFileError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "a device"
        } else if file_type.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(AuditFileError::NotARegularFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    crate::secure_file::check(path, &metadata, crate::secure_file::Readers::OwnerOnly)
        .map_err(AuditFileError::UnsafeFile)?;
    let mut line = value.to_string();
    line.push('\n');
    // One write call, so that concurrent logins never interleave within a line.
    file.write_all(line.as_bytes())
        .map_err(|error| AuditFileError::Write {
            path: path.to_path_buf(),
            error,
        })
}

/// `openat(folder, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600)`:
/// the file is looked up in the folder that was checked, not through the path again.
fn open_in(folder: &fs::File, name: &OsStr) -> io::Result<fs::File> {
    crate::secure_file::open_in(
        folder,
        name,
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NONBLOCK | libc::O_NOCTTY,
        0o600,
    )
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
    fn counts_are_json_numbers() {
        let mut counted = record();
        counted.extra = vec![
            ("answer_length", "29".to_string()),
            ("bypass_entry", "2".to_string()),
            ("error_code", "42".to_string()),
        ];
        let value = counted.to_json();
        assert_eq!(value["answer_length"], json!(29));
        assert_eq!(value["bypass_entry"], json!(2));
        // Not a count: a server's code stays text, whatever it looks like.
        assert_eq!(value["error_code"], json!("42"));
        assert!(
            counted
                .to_key_values()
                .ends_with("answer_length=29 bypass_entry=2 error_code=42")
        );
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
    fn the_audit_file_is_written_only_in_a_root_only_folder_and_only_as_a_regular_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pam_ticket_audit_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod");
        let value = record().to_json();
        let path = dir.join("audit.jsonl");
        append_json_line(&path, &value).expect("a root-only folder");
        let mode = fs::metadata(&path).expect("created").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let link = dir.join("link.jsonl");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        let problem = append_json_line(&link, &value).expect_err("a link");
        assert!(problem.to_string().contains("symbolic link"), "{problem}");

        let folder = dir.join("shared");
        fs::create_dir(&folder).expect("mkdir");
        for loose in [0o770, 0o707, 0o1777] {
            fs::set_permissions(&folder, fs::Permissions::from_mode(loose)).expect("chmod");
            let problem = append_json_line(&folder.join("a.jsonl"), &value).expect_err("loose");
            assert!(
                matches!(problem, AuditFileError::DirectoryNotRootOnly { .. }),
                "{loose:o}: {problem}"
            );
            assert!(!folder.join("a.jsonl").exists());
        }
        assert!(matches!(
            append_json_line(Path::new("/"), &value),
            Err(AuditFileError::NotAFilePath(_))
        ));
        // A folder in place of the file: openat refuses to open it for writing.
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(matches!(
            append_json_line(&folder, &value),
            Err(AuditFileError::Open { .. })
        ));
        assert_eq!(
            fs::read_to_string(&path).expect("audit").lines().count(),
            1,
            "only the first record was written"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// The folder itself must not be a link, even to a folder that passes every check:
    /// whoever can change the link would choose where root writes.
    #[test]
    fn a_folder_that_is_a_symbolic_link_is_not_written_into() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_audit_link_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let real = dir.join("real");
        fs::create_dir_all(&real).expect("dir");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).expect("chmod");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let problem =
            append_json_line(&link.join("audit.jsonl"), &record().to_json()).expect_err("a link");
        assert!(
            matches!(problem, AuditFileError::DirectoryIsLink { .. }),
            "{problem}"
        );
        assert!(problem.to_string().contains("symbolic link"), "{problem}");
        assert!(!real.join("audit.jsonl").exists());
        // The folder it points to, named as itself, is fine.
        append_json_line(&real.join("audit.jsonl"), &record().to_json()).expect("written");
        let _ = fs::remove_dir_all(&dir);
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
