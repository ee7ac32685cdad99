//! NoteTemplate: the text of a work note, with `{name}` placeholders. Parsed once when the
//! configuration loads, so that an unknown placeholder is a configuration error with
//! file:line, never a note that reads `{usr}` on the ticket.

use std::fmt;

/// The values a note can hold. Each is sanitised where it is put in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// PAM_USER as the application set it.
    User,
    /// The identity the ticket was matched against (see [`super::identity`]).
    Identity,
    /// PAM_RHOST.
    Rhost,
    /// This gateway's fully qualified host name.
    Host,
    /// The PAM service (`sshd`).
    Service,
    /// The target of a PSM for SSH connection string, `user[#domain]@address[#port]`.
    Target,
    /// When this note's event happened: UTC, ISO 8601.
    Time,
    /// The ticket ID.
    Ticket,
    /// The checks that passed.
    Checks,
    /// How long the session lasted (the end note only).
    Duration,
    /// The reason given at the `Reason: ` prompt (AskReason=Yes).
    Reason,
}

impl Placeholder {
    pub const ALL: [Placeholder; 11] = [
        Placeholder::User,
        Placeholder::Identity,
        Placeholder::Rhost,
        Placeholder::Host,
        Placeholder::Service,
        Placeholder::Target,
        Placeholder::Time,
        Placeholder::Ticket,
        Placeholder::Checks,
        Placeholder::Duration,
        Placeholder::Reason,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::User => "user",
            Placeholder::Identity => "identity",
            Placeholder::Rhost => "rhost",
            Placeholder::Host => "host",
            Placeholder::Service => "service",
            Placeholder::Target => "target",
            Placeholder::Time => "time",
            Placeholder::Ticket => "ticket",
            Placeholder::Checks => "checks",
            Placeholder::Duration => "duration",
            Placeholder::Reason => "reason",
        }
    }

    fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL
            .into_iter()
            .find(|placeholder| placeholder.name() == name)
    }
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// A parsed NoteTemplate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteTemplate {
    /// As written in the configuration.
    source: String,
    parts: Vec<Part>,
}

/// Why a template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    UnknownPlaceholder(String),
    Unclosed,
    StrayBrace,
    Empty,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<String> = Placeholder::ALL
            .iter()
            .map(|placeholder| format!("{{{}}}", placeholder.name()))
            .collect();
        match self {
            TemplateError::UnknownPlaceholder(name) => write!(
                f,
                "NoteTemplate has an unknown placeholder {{{name}}}; the placeholders are {}",
                known.join(", ")
            ),
            TemplateError::Unclosed => {
                write!(
                    f,
                    "NoteTemplate has a {{ without its }} (write {{{{ for a brace)"
                )
            }
            TemplateError::StrayBrace => {
                write!(
                    f,
                    "NoteTemplate has a }} without its {{ (write }}}} for a brace)"
                )
            }
            TemplateError::Empty => write!(f, "NoteTemplate must not be empty"),
        }
    }
}

impl NoteTemplate {
    /// The built-in note text.
    pub fn built_in() -> NoteTemplate {
        // The built-in text parses: a test holds it to that.
        NoteTemplate::parse(BUILT_IN).unwrap_or(NoteTemplate {
            source: BUILT_IN.to_string(),
            parts: Vec::new(),
        })
    }

    /// Reads `{name}` placeholders, `{{` and `}}` for literal braces and `\n` for a line
    /// break (a configuration value is one line).
    pub fn parse(text: &str) -> Result<NoteTemplate, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(TemplateError::StrayBrace),
                '\\' if chars.peek() == Some(&'n') => {
                    chars.next();
                    literal.push('\n');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(TemplateError::Unclosed),
                        }
                    }
                    let placeholder = Placeholder::from_name(&name)
                        .ok_or(TemplateError::UnknownPlaceholder(name))?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Value(placeholder));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(NoteTemplate {
            source: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text with each placeholder replaced by `value(placeholder)`, which must already
    /// be sanitised.
    pub fn render(&self, value: impl Fn(Placeholder) -> String) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.clone(),
                Part::Value(placeholder) => value(*placeholder),
            })
            .collect()
    }
}

/// The note's text when NoteTemplate is not set; what each line holds is in the README's
/// "Audit" section.
pub const BUILT_IN: &str = "User: {user} (identity {identity})\\nFrom: {rhost}\\nOnto: {host}, PAM service {service}, target {target}\\nTime: {time} (UTC)\\nTicket: {ticket}\\nChecks passed: {checks}\\nReason: {reason}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_braces_and_line_breaks() {
        let template = NoteTemplate::parse("{user}@{host} {{x}}\\n{duration}").expect("parses");
        let text = template.render(|placeholder| placeholder.name().to_uppercase());
        assert_eq!(text, "USER@HOST {x}\nDURATION");
        assert_eq!(
            NoteTemplate::built_in().render(|_| "v".to_string()),
            "User: v (identity v)\nFrom: v\nOnto: v, PAM service v, target v\nTime: v (UTC)\nTicket: v\nChecks passed: v\nReason: v"
        );
    }

    #[test]
    fn unknown_unclosed_and_stray_braces_are_errors() {
        assert_eq!(
            NoteTemplate::parse("{usr} was here"),
            Err(TemplateError::UnknownPlaceholder("usr".to_string()))
        );
        assert!(
            TemplateError::UnknownPlaceholder("usr".to_string())
                .to_string()
                .contains("{user}, {identity}")
        );
        assert_eq!(NoteTemplate::parse("{user"), Err(TemplateError::Unclosed));
        assert_eq!(NoteTemplate::parse("user}"), Err(TemplateError::StrayBrace));
        assert_eq!(NoteTemplate::parse("  "), Err(TemplateError::Empty));
    }
}
