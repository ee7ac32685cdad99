//! The keys that make the ticket the audit trail (WorkNotes, WorkNoteTimeout,
//! NoteTemplate, AskReason, ReasonPrompt), read for [`super::build`]: each refused where
//! it would have no effect, so that nobody believes notes or a reason are in force when
//! they are not.

use std::time::Duration;

use super::keys::{self, Key};
use super::settings::Settings;
use super::syntax::{ConfigError, error};
use crate::notes::{NoteSettings, NoteTemplate};

impl Settings {
    /// WorkNotes, WorkNoteTimeout and NoteTemplate. A timeout or template without
    /// WorkNotes=Yes, or WorkNotes=Yes without lookups, would look like notes in force and
    /// never be used: an error.
    pub(super) fn work_notes(&self) -> Result<Option<NoteSettings>, ConfigError> {
        let enabled = self.flag(Key::WorkNotes)?;
        let timeout = self.number(Key::WorkNoteTimeout)?;
        let template = match self.entry(Key::NoteTemplate) {
            Some(entry) => NoteTemplate::parse(&entry.value)
                .map_err(|problem| error(&entry.origin, problem.to_string()))?,
            None => NoteTemplate::built_in(),
        };
        if !enabled {
            for key in [Key::WorkNoteTimeout, Key::NoteTemplate] {
                if let Some(entry) = self.entry(key) {
                    return Err(error(
                        &entry.origin,
                        format!(
                            "{key} is set but WorkNotes is not Yes, so it would never be used; set WorkNotes=Yes or remove it"
                        ),
                    ));
                }
            }
            return Ok(None);
        }
        // A bad ValidateTicketNumber is reported where it is read.
        if self.flag(Key::ValidateTicketNumber).ok() == Some(false) {
            return Err(error(
                &self.blame(self.origin(Key::WorkNotes), &[Key::ValidateTicketNumber]),
                "WorkNotes is Yes but ValidateTicketNumber is No: no ticket is looked up, so no note would ever be written; set ValidateTicketNumber=Yes or WorkNotes=No",
            ));
        }
        Ok(Some(NoteSettings {
            timeout: Duration::from_secs(timeout),
            template,
        }))
    }

    /// AskReason and ReasonPrompt: the prompt when the reason is asked for.
    pub(super) fn reason_prompt(&self) -> Result<Option<String>, ConfigError> {
        let enabled = self.flag(Key::AskReason)?;
        let (prompt, origin) = self.text(Key::ReasonPrompt, None)?;
        if prompt.trim().is_empty() || prompt.chars().any(char::is_control) {
            return Err(error(
                &origin,
                "ReasonPrompt must be non-empty text without control characters",
            ));
        }
        if !enabled {
            if let Some(entry) = self.entry(Key::ReasonPrompt) {
                return Err(error(
                    &entry.origin,
                    "ReasonPrompt is set but AskReason is not Yes, so it would never be shown; set AskReason=Yes or remove it",
                ));
            }
            return Ok(None);
        }
        Ok(Some(prompt))
    }

    /// The portal keeps its own audit of who used which ticket, and the gateway never
    /// talks to the ticketing system there: work notes and the reason are refused in
    /// portal mode rather than silently ignored.
    pub(super) fn refuse_audit_trail_in_portal_mode(&self) {
        for key in keys::AUDIT_TRAIL_KEYS {
            let in_force = match key.spec().default {
                keys::DefaultValue::Flag(_) => self.flag(key).ok() == Some(true),
                _ => self.entry(key).is_some(),
            };
            if !in_force {
                continue;
            }
            let origin = self.blame(self.origin(key), &[Key::FetchCredentialsThroughPVWA]);
            self.report(error(
                &origin,
                format!(
                    "{key} has no effect in portal mode (FetchCredentialsThroughPVWA=Yes): the portal keeps its own audit of ticket use and the gateway never writes to the ticketing system; remove it here"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::Config;
    use crate::config::settings::from_entries;
    use crate::config::syntax::{ConfigError, parse_entries};

    fn build(text: &str) -> Result<Config, ConfigError> {
        let path = Path::new("/etc/test.conf");
        from_entries(path, parse_entries(text, path)?, Vec::new())
    }

    const MINIMAL: &str = "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n";

    /// A configuration that looks tickets up: a URL and a root-only account file.
    fn direct() -> String {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_audit_trail_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let account = dir.join("account");
        std::fs::write(&account, "Username=\"svc\"\nPassword=\"pw\"\n").expect("write");
        std::fs::set_permissions(&account, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        format!(
            "TicketingSystem=\"ServiceNow\"\nSystemURL=\"https://acme.service-now.com\"\nConnectionAccountFile=\"{}\"\n",
            account.display()
        )
    }

    #[test]
    fn note_and_reason_keys_are_refused_in_portal_mode() {
        for (line, key) in [
            ("WorkNotes=Yes", "WorkNotes"),
            ("WorkNoteTimeout=5", "WorkNoteTimeout"),
            ("NoteTemplate=\"{user}\"", "NoteTemplate"),
            ("AskReason=Yes", "AskReason"),
            ("ReasonPrompt=\"Why: \"", "ReasonPrompt"),
        ] {
            let problem =
                build(&format!("FetchCredentialsThroughPVWA=Yes\n{line}\n")).expect_err(line);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:2", "{line}");
            assert!(
                problem.problem.starts_with(&format!(
                    "{key} has no effect in portal mode (FetchCredentialsThroughPVWA=Yes): the portal keeps its own audit"
                )),
                "{problem}"
            );
        }
        // Switched off, a flag is no error.
        let problem = build("FetchCredentialsThroughPVWA=Yes\nWorkNotes=No\n").expect_err("no url");
        assert!(!problem.problem.contains("WorkNotes"), "{problem}");
    }

    #[test]
    fn a_note_template_with_an_unknown_placeholder_is_an_error_at_its_line() {
        let problem = build(&format!(
            "{MINIMAL}WorkNotes=Yes\nNoteTemplate=\"{{user}} from {{rhots}}\"\n"
        ))
        .expect_err("unknown placeholder");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:4");
        assert!(
            problem
                .problem
                .starts_with("NoteTemplate has an unknown placeholder {rhots}; the placeholders are {user}, {identity}, {rhost}"),
            "{problem}"
        );
        let config = build(&format!(
            "{}WorkNotes=Yes\nWorkNoteTimeout=7\nNoteTemplate=\"{{user}} on {{host}}\\n{{reason}}\"\nAskReason=Yes\n",
            direct()
        ))
        .expect("valid");
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("pam_ticket_audit_trail_{}", std::process::id())),
        );
        let notes = config.work_notes.expect("on");
        assert_eq!(notes.timeout, Duration::from_secs(7));
        assert_eq!(notes.template.source(), "{user} on {host}\\n{reason}");
        assert_eq!(config.reason_prompt.as_deref(), Some("Reason: "));
        assert!(config.remedy.read_change_entry_id);
    }

    #[test]
    fn notes_without_lookups_are_an_error() {
        let problem = build(&format!("{MINIMAL}WorkNotes=Yes\n")).expect_err("no lookups");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:3");
        assert!(
            problem
                .problem
                .starts_with("WorkNotes is Yes but ValidateTicketNumber is No"),
            "{problem}"
        );
    }

    #[test]
    fn note_settings_without_their_switch_are_errors() {
        for (line, switch) in [
            ("WorkNoteTimeout=5", "WorkNotes"),
            ("NoteTemplate=\"{user}\"", "WorkNotes"),
            ("ReasonPrompt=\"Why: \"", "AskReason"),
        ] {
            let problem = build(&format!("{MINIMAL}{line}\n")).expect_err(line);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{line}");
            assert!(
                problem
                    .problem
                    .contains(&format!("but {switch} is not Yes")),
                "{problem}"
            );
        }
        let config = build(MINIMAL).expect("valid");
        assert!(config.work_notes.is_none() && config.reason_prompt.is_none());
        assert!(!config.remedy.read_change_entry_id);
    }
}
