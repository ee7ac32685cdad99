//! The `auth` stack of a pam.d service as Linux-PAM builds it: lines read with libpam's
//! rules (a `#` starts a comment anywhere, a trailing `\` joins the next line, `[...]` is
//! one token with the brackets taken off and `\]` for a literal `]`), `include`,
//! `@include` and `substack` followed, and every entry remembering the line of the
//! service file that brought it in, because that is the line the admin has to change.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Finding, Severity};

/// How deep includes may nest before the stack counts as broken (libpam stops too).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Modules that ask for a password (or check one passed on), which a ticket login must not
/// run: with them in the auth stack people are asked `Password:`.
const PASSWORD_MODULES: &[&str] = &[
    "pam_unix",
    "pam_unix2",
    "pam_sss",
    "pam_ldap",
    "pam_krb5",
    "pam_winbind",
    "pam_userdb",
    "pam_pwdb",
    "pam_radius_auth",
    "pam_tacplus",
    "pam_systemd_home",
];

/// Modules that only test a condition about the user (group, list, origin): a success that
/// skips the ticket there is an exemption someone may have meant, so it is a warning.
const CONDITION_MODULES: &[&str] = &[
    "pam_succeed_if",
    "pam_listfile",
    "pam_access",
    "pam_localuser",
    "pam_usertype",
    "pam_wheel",
];

/// A line's control field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    Required,
    Requisite,
    Sufficient,
    Optional,
    Include,
    Substack,
    /// `[value=action ...]`, as `(value, action)` pairs.
    Actions(Vec<(String, String)>),
    /// A word libpam does not know: it fails the line on every login.
    Unknown(String),
}

impl Control {
    fn parse(token: &str, bracketed: bool) -> Control {
        if !bracketed {
            return match token {
                "required" => Control::Required,
                "requisite" => Control::Requisite,
                "sufficient" => Control::Sufficient,
                "optional" => Control::Optional,
                "include" => Control::Include,
                "substack" => Control::Substack,
                other => Control::Unknown(other.to_string()),
            };
        }
        Control::Actions(
            token
                .split_whitespace()
                .map(|pair| match pair.split_once('=') {
                    Some((value, action)) => (value.to_string(), action.to_string()),
                    None => (pair.to_string(), String::new()),
                })
                .collect(),
        )
    }

    /// Whether a success of this line ends the stack with success (`sufficient`, or an
    /// action `success=done`).
    fn success_ends_stack(&self) -> bool {
        match self {
            Control::Sufficient => true,
            Control::Actions(actions) => actions
                .iter()
                .any(|(value, action)| value == "success" && action == "done"),
            _ => false,
        }
    }

    /// The jumps of a bracket control: `(return value, how many lines)`.
    fn jumps(&self) -> Vec<(String, usize)> {
        match self {
            Control::Actions(actions) => actions
                .iter()
                .filter_map(|(value, action)| {
                    action
                        .parse::<usize>()
                        .ok()
                        .filter(|lines| *lines > 0)
                        .map(|lines| (value.clone(), lines))
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Where a line is: file and 1-based line number (of the line's first physical line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One line of a pam.d file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PamLine {
    pub place: Place,
    /// `auth`, `account`, `password`, `session`, or `@include`.
    pub kind: String,
    /// A leading `-`: libpam skips the line silently when the module cannot be loaded.
    pub silent_if_missing: bool,
    pub control: Control,
    /// The module (path or name), or the file an include names.
    pub module: String,
    pub arguments: Vec<String>,
    /// The line as written, comments and surrounding space removed.
    pub text: String,
    /// An argument opened with `[` that no `]` closes.
    pub unterminated_bracket: bool,
}

impl PamLine {
    /// The module's name without directory and `.so`, e.g. `pam_unix`.
    pub fn module_name(&self) -> &str {
        let file = self.module.rsplit('/').next().unwrap_or(&self.module);
        file.strip_suffix(".so").unwrap_or(file)
    }

    /// Whether this line loads pam_ticket (installed as `pam_ticket.so`, built as
    /// `libpam_ticket.so`).
    pub fn is_pam_ticket(&self) -> bool {
        matches!(self.module_name(), "pam_ticket" | "libpam_ticket")
    }

    fn is_include(&self) -> bool {
        self.kind == "@include" || matches!(self.control, Control::Include | Control::Substack)
    }
}

/// Splits pam.d text into lines the way libpam reads them.
pub fn parse(text: &str, file: &Path) -> Vec<PamLine> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    let mut first_line = 0;
    for (index, physical) in text.lines().enumerate() {
        if pending.is_empty() {
            first_line = index + 1;
        }
        // A comment runs to the end of the physical line, wherever the `#` is.
        let without_comment = physical.split('#').next().unwrap_or("");
        if let Some(joined) = without_comment.strip_suffix('\\') {
            pending.push_str(joined);
            pending.push(' ');
            continue;
        }
        pending.push_str(without_comment);
        let logical = std::mem::take(&mut pending);
        if let Some(line) = parse_line(
            &logical,
            Place {
                file: file.to_path_buf(),
                line: first_line,
            },
        ) {
            lines.push(line);
        }
    }
    lines
}

fn parse_line(text: &str, place: Place) -> Option<PamLine> {
    let (tokens, unterminated_bracket) = tokens(text);
    let mut tokens = tokens.into_iter();
    let (kind_token, _) = tokens.next()?;
    if kind_token == "@include" {
        return Some(PamLine {
            place,
            kind: kind_token,
            silent_if_missing: false,
            control: Control::Include,
            module: tokens.next().map(|(token, _)| token).unwrap_or_default(),
            arguments: Vec::new(),
            text: text.trim().to_string(),
            unterminated_bracket,
        });
    }
    let (silent_if_missing, kind) = match kind_token.strip_prefix('-') {
        Some(kind) => (true, kind.to_string()),
        None => (false, kind_token),
    };
    let control = match tokens.next() {
        Some((token, bracketed)) => Control::parse(&token, bracketed),
        None => Control::Unknown(String::new()),
    };
    let module = tokens.next().map(|(token, _)| token).unwrap_or_default();
    Some(PamLine {
        place,
        kind: kind.to_ascii_lowercase(),
        silent_if_missing,
        control,
        module,
        arguments: tokens.map(|(token, _)| token).collect(),
        text: text.trim().to_string(),
        unterminated_bracket,
    })
}

/// libpam's tokens: white space separates, a token that starts with `[` runs to the first
/// `]` not preceded by `\` (brackets removed, `\]` kept as `]`). Each token says whether
/// it was bracketed; the second value whether a bracket was left open.
fn tokens(text: &str) -> (Vec<(String, bool)>, bool) {
    let mut tokens = Vec::new();
    let mut unterminated = false;
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut token = String::new();
        let bracketed = first == '[';
        if bracketed {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&']') {
                    token.push(']');
                    chars.next();
                } else if c == ']' {
                    closed = true;
                    break;
                } else {
                    token.push(c);
                }
            }
            unterminated |= !closed;
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                token.push(c);
                chars.next();
            }
        }
        tokens.push((token, bracketed));
    }
    (tokens, unterminated)
}

/// One module line of the auth stack.
#[derive(Clone, Debug)]
pub struct Entry {
    pub line: PamLine,
    /// The line of the service file that brought this entry in (the entry itself when it
    /// is written there).
    pub origin: PamLine,
    /// 0 in the service's own stack; 1 and more inside a `substack`, whose `sufficient`,
    /// `done` and jumps end or skip only the substack.
    pub depth: usize,
    /// The outermost `substack` line this entry is inside, if any: a jump in the service's
    /// own stack counts a whole substack as one line.
    pub substack: Option<Place>,
}

/// The auth stack of one service file, or why it could not be built.
#[derive(Debug, Default)]
pub struct AuthStack {
    pub entries: Vec<Entry>,
    /// Lines of other types that load pam_ticket (it only works in `auth`).
    pub ticket_elsewhere: Vec<PamLine>,
    pub problems: Vec<Finding>,
}

/// Reads `service_file` and everything it includes. Relative include names are looked up
/// in `directories` in order, as libpam looks in /etc/pam.d and then /usr/lib/pam.d.
pub fn auth_stack(service_file: &Path, directories: &[PathBuf]) -> Result<AuthStack, String> {
    let text = fs::read_to_string(service_file)
        .map_err(|io_error| format!("cannot read {}: {io_error}", service_file.display()))?;
    let mut stack = AuthStack::default();
    for line in parse(&text, service_file) {
        let origin = line.clone();
        expand(line, &origin, 0, None, 0, directories, &mut stack);
    }
    Ok(stack)
}

fn expand(
    line: PamLine,
    origin: &PamLine,
    depth: usize,
    substack: Option<&Place>,
    nesting: usize,
    directories: &[PathBuf],
    stack: &mut AuthStack,
) {
    let applies_to_auth = line.kind == "@include" || line.kind == "auth";
    if !applies_to_auth {
        if line.is_pam_ticket() {
            stack.ticket_elsewhere.push(line);
        }
        return;
    }
    if !line.is_include() {
        stack.entries.push(Entry {
            line,
            origin: origin.clone(),
            depth,
            substack: substack.cloned(),
        });
        return;
    }
    if nesting >= MAX_INCLUDE_DEPTH {
        stack.problems.push(Finding::new(
            Severity::Error,
            origin.place.to_string(),
            format!(
                "`{}` nests includes more than {MAX_INCLUDE_DEPTH} deep (a loop?): \
                 libpam fails every login of this service",
                origin.text
            ),
            "remove the include loop",
        ));
        return;
    }
    let Some(path) = resolve(&line.module, directories) else {
        stack.problems.push(Finding::new(
            Severity::Error,
            line.place.to_string(),
            format!(
                "`{}` names {}, which does not exist: libpam fails every login of this service",
                line.text, line.module
            ),
            "create that file or remove the line",
        ));
        return;
    };
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(io_error) => {
            stack.problems.push(Finding::new(
                Severity::Error,
                line.place.to_string(),
                format!(
                    "`{}`: cannot read {}: {io_error}",
                    line.text,
                    path.display()
                ),
                "make the file readable, or run pam-ticket doctor as root",
            ));
            return;
        }
    };
    let (inner_depth, inner_substack) = if line.control == Control::Substack {
        (depth + 1, substack.or(Some(&line.place)))
    } else {
        (depth, substack)
    };
    for inner in parse(&text, &path) {
        // `auth include X` takes only X's auth lines; `@include X` takes all of them.
        expand(
            inner,
            origin,
            inner_depth,
            inner_substack,
            nesting + 1,
            directories,
            stack,
        );
    }
}

fn resolve(name: &str, directories: &[PathBuf]) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    if name.starts_with('/') {
        return Some(PathBuf::from(name)).filter(|path| path.is_file());
    }
    directories
        .iter()
        .map(|directory| directory.join(name))
        .find(|path| path.is_file())
}

/// Everything wrong with how pam_ticket sits in this stack: missing, not `required`,
/// skipped by a line before it, or a password module before or beside it.
pub fn findings(stack: &AuthStack, service_file: &Path) -> Vec<Finding> {
    let mut findings = stack.problems.clone();
    let tickets: Vec<usize> = stack
        .entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.line.is_pam_ticket())
        .map(|(index, _)| index)
        .collect();

    let Some(&first_ticket) = tickets.first() else {
        let elsewhere = stack
            .ticket_elsewhere
            .first()
            .map(|line| {
                format!(
                    " (it is on `{}` at {}, where it does nothing)",
                    line.text, line.place
                )
            })
            .unwrap_or_default();
        findings.push(Finding::new(
            Severity::Error,
            service_file.display().to_string(),
            format!(
                "pam_ticket.so is not in the auth stack{elsewhere}: sshd lets people in \
                 without asking for a ticket"
            ),
            "add `auth required pam_ticket.so` (pam.d/sshd.debian and pam.d/sshd.rhel are \
             complete examples)",
        ));
        findings.extend(password_findings(stack, None));
        return findings;
    };

    for &index in &tickets {
        findings.extend(ticket_line_findings(&stack.entries[index]));
    }
    findings.extend(skip_findings(stack, first_ticket));
    findings.extend(password_findings(stack, Some(first_ticket)));
    findings
}

fn ticket_line_findings(entry: &Entry) -> Vec<Finding> {
    let line = &entry.line;
    let place = line.place.to_string();
    let mut findings = Vec::new();
    if line.silent_if_missing {
        findings.push(Finding::new(
            Severity::Error,
            place.clone(),
            format!(
                "`{}` starts with `-`: when pam_ticket.so cannot be loaded, libpam skips the \
                 line silently and nobody is asked for a ticket",
                line.text
            ),
            "remove the leading `-`",
        ));
    }
    let control_problem = match &line.control {
        Control::Required | Control::Requisite => None,
        Control::Sufficient => Some(
            "is `sufficient`: a refused ticket does not end the login, the lines after it \
             decide",
        ),
        Control::Optional => Some("is `optional`: a refused ticket is ignored"),
        Control::Actions(_) => None,
        Control::Include | Control::Substack => None,
        Control::Unknown(_) => {
            Some("has a control libpam does not know: it fails this line, and so every login")
        }
    };
    if let Some(problem) = control_problem {
        findings.push(Finding::new(
            Severity::Error,
            place.clone(),
            format!("`{}` {problem}", line.text),
            "make it `auth required pam_ticket.so ...`",
        ));
    }
    if let Control::Actions(_) = &line.control {
        findings.push(Finding::new(
            Severity::Warning,
            place.clone(),
            format!(
                "`{}` uses a bracket control, which doctor does not judge",
                line.text
            ),
            "`required` is what pam_ticket is tested with",
        ));
    }
    if line.unterminated_bracket {
        findings.push(Finding::new(
            Severity::Warning,
            place,
            format!(
                "`{}` opens a `[` that no `]` closes: libpam reads the rest of the line as \
                 one argument",
                line.text
            ),
            "close the bracket",
        ));
    }
    findings
}

/// The lines libpam counts in the service's own stack (for jumps, and for the order of
/// evaluation): each of its own lines, and each substack as a whole. Each unit lists its
/// entries' indices.
fn units(stack: &AuthStack) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (index, entry) in stack.entries.iter().enumerate() {
        let same_substack = index > 0
            && entry.substack.is_some()
            && stack.entries[index - 1].substack == entry.substack;
        match units.last_mut() {
            Some(unit) if same_substack => unit.push(index),
            _ => units.push(vec![index]),
        }
    }
    units
}

/// How a run of the stack up to pam_ticket goes when every password module fails (the
/// accounts on a key-only gateway have no password), `pam_deny` fails, and every other
/// module succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// pam_ticket is reached; `failed` when an earlier failure already decides the login.
    ReachesTicket { failed: bool },
    /// The stack ends before pam_ticket, with success or not.
    EndsBefore { success: bool },
}

fn predicted_success(line: &PamLine) -> bool {
    let module = line.module_name();
    !(PASSWORD_MODULES.contains(&module) || module == "pam_deny")
}

/// What a control does with a result: `None` to go on, `Some(success)` to end the stack,
/// plus how many units to jump and whether the login has failed.
fn apply(control: &Control, success: bool, failed: &mut bool) -> (Option<bool>, usize) {
    let action = match control {
        Control::Required => {
            if success {
                "ok"
            } else {
                "bad"
            }
        }
        Control::Requisite => {
            if success {
                "ok"
            } else {
                "die"
            }
        }
        Control::Sufficient => {
            if success {
                "done"
            } else {
                "ignore"
            }
        }
        Control::Optional => {
            if success {
                "ok"
            } else {
                "ignore"
            }
        }
        Control::Include | Control::Substack => {
            if success {
                "ok"
            } else {
                "bad"
            }
        }
        Control::Unknown(_) => "bad",
        Control::Actions(actions) => {
            let wanted = if success { "success" } else { "auth_err" };
            actions
                .iter()
                .find(|(value, _)| value == wanted)
                .or_else(|| actions.iter().find(|(value, _)| value == "default"))
                .map_or("ignore", |(_, action)| action.as_str())
        }
    };
    match action {
        "ok" => {
            *failed |= !success;
            (None, 0)
        }
        "bad" => {
            *failed = true;
            (None, 0)
        }
        "die" => (Some(false), 0),
        "done" if success && !*failed => (Some(true), 0),
        "done" => (Some(false), 0),
        "ignore" | "" => (None, 0),
        jump => (None, jump.parse::<usize>().unwrap_or(0)),
    }
}

/// Runs the units of a substack (entries deeper than the service's own stack): its result.
fn substack_succeeds(stack: &AuthStack, indices: &[usize]) -> bool {
    let mut failed = false;
    let mut position = 0;
    while let Some(&index) = indices.get(position) {
        let line = &stack.entries[index].line;
        let (ended, jump) = apply(&line.control, predicted_success(line), &mut failed);
        if let Some(success) = ended {
            return success;
        }
        position += 1 + jump;
    }
    !failed
}

/// Runs the service's own stack up to `ticket` (an index of a depth-0 entry).
fn run_to_ticket(stack: &AuthStack, ticket: usize) -> Run {
    let units = units(stack);
    let mut failed = false;
    let mut position = 0;
    while let Some(unit) = units.get(position) {
        let first = &stack.entries[unit[0]];
        if unit[0] == ticket {
            return Run::ReachesTicket { failed };
        }
        let (control, success) = match &first.substack {
            Some(_) => (Control::Substack, substack_succeeds(stack, unit)),
            None => (first.line.control.clone(), predicted_success(&first.line)),
        };
        let (ended, jump) = apply(&control, success, &mut failed);
        if let Some(success) = ended {
            return Run::EndsBefore { success };
        }
        position += 1 + jump;
    }
    Run::EndsBefore { success: !failed }
}

/// Lines before the first pam_ticket entry (in the service's own stack) that end the stack
/// on success or jump over pam_ticket. A pam_ticket inside a substack is not judged here.
fn skip_findings(stack: &AuthStack, first_ticket: usize) -> Vec<Finding> {
    if stack.entries[first_ticket].depth != 0 {
        return Vec::new();
    }
    let units: Vec<usize> = units(stack).iter().map(|unit| unit[0]).collect();
    let Some(ticket_unit) = units.iter().position(|index| *index == first_ticket) else {
        return Vec::new();
    };
    let mut findings: Vec<Finding> = Vec::new();
    for (unit, &index) in units[..ticket_unit].iter().enumerate() {
        let entry = &stack.entries[index];
        if entry.depth != 0 {
            continue;
        }
        let line = &entry.line;
        let condition = CONDITION_MODULES.contains(&line.module_name());
        let severity = if condition {
            Severity::Warning
        } else {
            Severity::Error
        };
        let via = via(entry);
        if line.control.success_ends_stack() {
            let consequence = if condition {
                "everyone it matches logs in without a ticket; make sure that is meant"
            } else {
                "when it succeeds the stack ends there, and the ticket is never asked"
            };
            findings.push(Finding::new(
                severity,
                entry.origin.place.to_string(),
                format!(
                    "`{}`{via} comes before pam_ticket and ends the stack on success: \
                     {consequence}",
                    line.text
                ),
                if condition {
                    "keep it only for users who must never be asked for a ticket"
                } else {
                    "remove it, or move it below pam_ticket and make it `required`"
                },
            ));
            continue;
        }
        for (value, lines) in line.control.jumps() {
            if unit + lines >= ticket_unit {
                findings.push(Finding::new(
                    severity,
                    entry.origin.place.to_string(),
                    format!(
                        "`{}`{via} jumps {lines} line(s) on `{value}`, over pam_ticket: \
                         then the ticket is not asked",
                        line.text
                    ),
                    if condition {
                        "keep it only for users who must never be asked for a ticket"
                    } else {
                        "make the jump land before pam_ticket"
                    },
                ));
                break;
            }
        }
    }
    findings
}

/// Password modules anywhere in the auth stack, reported once per service-file line.
fn password_findings(stack: &AuthStack, first_ticket: Option<usize>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let mut reported: Vec<Place> = Vec::new();
    for (index, entry) in stack.entries.iter().enumerate() {
        let module = entry.line.module_name();
        if !PASSWORD_MODULES.contains(&module) || reported.contains(&entry.origin.place) {
            continue;
        }
        reported.push(entry.origin.place.clone());
        let effect = match first_ticket {
            Some(ticket) if index < ticket && stack.entries[ticket].depth == 0 => {
                match run_to_ticket(stack, ticket) {
                    Run::EndsBefore { success: false } => {
                        "people are asked `Password:` before the ticket, and without the \
                         right password the stack ends there: they never see the ticket prompt"
                    }
                    Run::ReachesTicket { failed: true } => {
                        "people are asked `Password:` before the ticket, and without the \
                         right password the login fails whatever ticket they give"
                    }
                    _ => "people are asked `Password:` before the ticket",
                }
            }
            Some(ticket) if index < ticket => "people are asked `Password:` before the ticket",
            Some(_) => "people are asked `Password:` after the ticket",
            None => "people are asked `Password:` instead of a ticket",
        };
        let (what, fix) = if entry.origin.place == entry.line.place {
            (
                format!("`{}` asks for a password", entry.line.text),
                "remove this line: the SSH key (AuthenticationMethods \
                 publickey,keyboard-interactive:pam) and the ticket replace the password"
                    .to_string(),
            )
        } else {
            (
                format!(
                    "`{}` brings {module}.so ({}) into the auth stack",
                    entry.origin.text, entry.line.place
                ),
                format!(
                    "remove this line: the SSH key (AuthenticationMethods \
                     publickey,keyboard-interactive:pam) and the ticket replace the password \
                     (lines of other types that include {} stay)",
                    entry.origin.module
                ),
            )
        };
        findings.push(Finding::new(
            Severity::Error,
            entry.origin.place.to_string(),
            format!("{what}: {effect}"),
            fix,
        ));
    }
    findings
}

fn via(entry: &Entry) -> String {
    if entry.origin.place == entry.line.place {
        String::new()
    } else {
        format!(" (from `{}`)", entry.origin.text)
    }
}

#[cfg(test)]
mod tests;
