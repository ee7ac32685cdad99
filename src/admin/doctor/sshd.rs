//! sshd's authentication settings, and what is wrong with them for a ticket login.
//!
//! Two sources. By default `sshd -T`, which prints the configuration sshd would run with
//! (defaults, Include files and distribution patches applied) but needs the host keys,
//! so root. With `--sshd-config FILE`, the file is read here instead, so that a file can
//! be checked before it is installed, or without root: keywords are case-insensitive, the
//! first value wins, `Include` is followed (relative names under /etc/ssh, `*` and `?` in
//! the last path component), and settings inside `Match` blocks are reported, not applied
//! (as `sshd -T` without `-C` does not apply them either). OpenSSH 9's defaults fill in
//! what is not set.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Finding, Severity};

/// Where sshd is on Debian and RHEL.
pub const SSHD: &str = "/usr/sbin/sshd";

/// The keywords doctor judges, with OpenSSH 9's compiled-in defaults.
const CHECKED: &[(&str, &str)] = &[
    ("usepam", "no"),
    ("kbdinteractiveauthentication", "yes"),
    ("passwordauthentication", "yes"),
    ("pubkeyauthentication", "yes"),
    ("hostbasedauthentication", "no"),
    ("gssapiauthentication", "no"),
    ("authenticationmethods", "any"),
    ("maxauthtries", "6"),
];

/// The keywords doctor judges (lower case, as `sshd -T` prints them).
pub fn checked_keywords() -> impl Iterator<Item = &'static str> {
    CHECKED.iter().map(|(keyword, _)| *keyword)
}

/// The largest MaxAuthTries with which sshd disconnects a stock OpenSSH client after the
/// last refused ticket before it asks for a password: after PAM_MAXTRIES the client tries
/// publickey again (one failure per key it has), then keyboard-interactive twice more
/// (its three rounds less the one used), then `password:`. One failure for the ticket,
/// at least one for the key, two for keyboard-interactive: the fourth ends it.
pub const MAX_AUTH_TRIES_FOR_A_CLEAN_END: u32 = 4;

/// One setting and where its value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    /// `file:line`, or `None` for sshd's default or a value from `sshd -T`.
    pub place: Option<String>,
}

/// The effective settings doctor judges.
#[derive(Clone, Debug)]
pub struct SshdSettings {
    /// What the settings were read from, for the report.
    pub source: String,
    /// Where a finding about a setting that is not written anywhere points.
    unset_place: String,
    values: BTreeMap<&'static str, Setting>,
    /// Checked keywords set inside a `Match` block: `(keyword, file:line)`.
    pub in_match_blocks: Vec<(String, String)>,
    /// Include patterns that could not be followed.
    pub unreadable_includes: Vec<String>,
}

impl SshdSettings {
    fn with_defaults(source: String, unset_place: String) -> SshdSettings {
        SshdSettings {
            source,
            unset_place,
            values: BTreeMap::new(),
            in_match_blocks: Vec::new(),
            unreadable_includes: Vec::new(),
        }
    }

    /// The value of a checked keyword (lower case), sshd's default when unset.
    pub fn value(&self, keyword: &str) -> &str {
        self.values
            .get(keyword)
            .map(|setting| setting.value.as_str())
            .or_else(|| {
                CHECKED
                    .iter()
                    .find(|(known, _)| *known == keyword)
                    .map(|(_, default)| *default)
            })
            .unwrap_or("")
    }

    /// Where a finding about `keyword` points: its file:line, or the source.
    pub fn place(&self, keyword: &str) -> String {
        match self.values.get(keyword) {
            Some(Setting {
                place: Some(place), ..
            }) => place.clone(),
            Some(_) => self.source.clone(),
            None => self.unset_place.clone(),
        }
    }

    fn is_yes(&self, keyword: &str) -> bool {
        self.value(keyword).eq_ignore_ascii_case("yes")
    }

    /// Runs `sshd -T` (with `-f FILE` when given) and keeps the checked keywords.
    pub fn from_sshd_test(config: Option<&Path>) -> Result<SshdSettings, String> {
        let mut command = Command::new(SSHD);
        command.arg("-T");
        if let Some(config) = config {
            command.arg("-f").arg(config);
        }
        let shown = match config {
            Some(config) => format!("`{SSHD} -T -f {}`", config.display()),
            None => format!("`{SSHD} -T`"),
        };
        let output = command
            .output()
            .map_err(|io_error| format!("cannot run {shown}: {io_error}"))?;
        if !output.status.success() {
            return Err(format!(
                "{shown} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self::from_sshd_test_output(
            &String::from_utf8_lossy(&output.stdout),
            shown,
        ))
    }

    /// `sshd -T` without `-C` does not apply Match blocks either; the system's file is read
    /// for them only, so that settings made for some connections are still reported.
    pub fn add_match_blocks_of(&mut self, file: &Path) {
        if let Ok(read) = SshdSettings::from_file(file) {
            self.in_match_blocks = read.in_match_blocks;
        }
    }

    /// Reads `sshd -T` output: one lower-case keyword and its value per line.
    pub fn from_sshd_test_output(output: &str, source: String) -> SshdSettings {
        let mut settings = SshdSettings::with_defaults(source.clone(), source);
        for line in output.lines() {
            let (keyword, value) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            if let Some((known, _)) = CHECKED.iter().find(|(known, _)| *known == keyword) {
                settings.values.insert(
                    known,
                    Setting {
                        value: value.trim().to_string(),
                        place: None,
                    },
                );
            }
        }
        settings
    }

    /// Reads an sshd_config file (and what it includes) directly.
    pub fn from_file(path: &Path) -> Result<SshdSettings, String> {
        let text = fs::read_to_string(path)
            .map_err(|io_error| format!("cannot read {}: {io_error}", path.display()))?;
        let mut settings = SshdSettings::with_defaults(
            format!(
                "{} (read directly; Match blocks not applied)",
                path.display()
            ),
            format!("{} (not set; sshd's default)", path.display()),
        );
        settings.read(&text, path, false, 0);
        Ok(settings)
    }

    fn read(&mut self, text: &str, path: &Path, inherited_match: bool, depth: usize) {
        let mut in_match = inherited_match;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let place = format!("{}:{}", path.display(), index + 1);
            let (keyword, value) = split_keyword(line);
            let keyword = keyword.to_ascii_lowercase();
            if keyword == "match" {
                in_match = true;
                continue;
            }
            if keyword == "include" {
                for pattern in value.split_whitespace() {
                    self.include(pattern, &place, in_match, depth);
                }
                continue;
            }
            // The deprecated name of KbdInteractiveAuthentication (OpenSSH 8.7).
            let keyword = if keyword == "challengeresponseauthentication" {
                "kbdinteractiveauthentication".to_string()
            } else {
                keyword
            };
            let Some((known, _)) = CHECKED.iter().find(|(known, _)| *known == keyword) else {
                continue;
            };
            if in_match {
                self.in_match_blocks.push((known.to_string(), place));
                continue;
            }
            // sshd keeps the first value it reads.
            self.values.entry(known).or_insert(Setting {
                value: value.to_string(),
                place: Some(place),
            });
        }
    }

    fn include(&mut self, pattern: &str, place: &str, in_match: bool, depth: usize) {
        if depth >= 16 {
            self.unreadable_includes
                .push(format!("{place}: Include nests too deep"));
            return;
        }
        let full = if pattern.starts_with('/') {
            PathBuf::from(pattern)
        } else {
            Path::new("/etc/ssh").join(pattern)
        };
        match expand_pattern(&full) {
            Ok(files) => {
                for file in files {
                    match fs::read_to_string(&file) {
                        Ok(text) => self.read(&text, &file, in_match, depth + 1),
                        Err(io_error) => self.unreadable_includes.push(format!(
                            "{place}: cannot read {}: {io_error}",
                            file.display()
                        )),
                    }
                }
            }
            Err(problem) => self.unreadable_includes.push(format!("{place}: {problem}")),
        }
    }
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`; the value without quotes.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    let value = rest
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(rest);
    (keyword, value)
}

/// The files a pattern names, sorted as glob(3) sorts them. Wildcards only in the last
/// component; a pattern that matches nothing names nothing (sshd accepts that too).
fn expand_pattern(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_string_lossy();
    let is_wild = |part: &str| part.contains(['*', '?', '[']);
    let (directory, name) = match (pattern.parent(), pattern.file_name()) {
        (Some(directory), Some(name)) => (directory, name.to_string_lossy().into_owned()),
        _ => return Err(format!("cannot follow Include {text}")),
    };
    if is_wild(&directory.to_string_lossy()) {
        return Err(format!(
            "Include {text}: wildcards in directories are not followed; check with sshd -T"
        ));
    }
    if !is_wild(&name) {
        return Ok(vec![pattern.to_path_buf()]
            .into_iter()
            .filter(|path| path.is_file())
            .collect());
    }
    let Ok(listing) = fs::read_dir(directory) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .filter(|item| {
            let file_name = item.file_name().to_string_lossy().into_owned();
            // glob(3) without GLOB_PERIOD: a leading dot must be matched literally.
            (name.starts_with('.') || !file_name.starts_with('.'))
                && wildcard_match(name.as_bytes(), file_name.as_bytes())
        })
        .map(|item| item.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// `*` and `?` matching (a `[` class is taken literally).
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| wildcard_match(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && wildcard_match(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && wildcard_match(rest, &text[1..]),
    }
}

/// The authentication methods and whether each is switched on.
fn method_enabled(settings: &SshdSettings, method: &str) -> bool {
    let base = method.split(':').next().unwrap_or(method);
    match base {
        "publickey" => settings.is_yes("pubkeyauthentication"),
        "password" => settings.is_yes("passwordauthentication"),
        "keyboard-interactive" => settings.is_yes("kbdinteractiveauthentication"),
        "hostbased" => settings.is_yes("hostbasedauthentication"),
        "gssapi-with-mic" => settings.is_yes("gssapiauthentication"),
        _ => false,
    }
}

/// `keyboard-interactive`, or its PAM device: the step that asks for the ticket.
fn is_ticket_step(method: &str) -> bool {
    method == "keyboard-interactive" || method == "keyboard-interactive:pam"
}

const METHODS_FIX: &str = "AuthenticationMethods publickey,keyboard-interactive:pam";

/// Everything wrong with these settings for a login that asks for the ticket after the key.
pub fn findings(settings: &SshdSettings) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !settings.is_yes("usepam") {
        findings.push(Finding::new(
            Severity::Error,
            settings.place("usepam"),
            format!(
                "UsePAM is {}: sshd never runs the PAM stack, so nobody is asked for a ticket",
                settings.value("usepam")
            ),
            "set `UsePAM yes`",
        ));
    }
    if !settings.is_yes("kbdinteractiveauthentication") {
        findings.push(Finding::new(
            Severity::Error,
            settings.place("kbdinteractiveauthentication"),
            format!(
                "KbdInteractiveAuthentication (or ChallengeResponseAuthentication) is {}: sshd \
                 runs PAM authentication only through keyboard-interactive, so the ticket is \
                 never asked",
                settings.value("kbdinteractiveauthentication")
            ),
            "set `KbdInteractiveAuthentication yes` where sshd reads it first (e.g. in \
             /etc/ssh/sshd_config.d/10-pam_ticket.conf)",
        ));
    }
    findings.extend(method_findings(settings));
    if settings.is_yes("passwordauthentication") {
        findings.push(Finding::new(
            Severity::Warning,
            settings.place("passwordauthentication"),
            "PasswordAuthentication is yes: password authentication can answer only a \
             hidden password prompt, so pam_ticket's ticket prompt fails there and any \
             `password:` prompt sshd offers can never succeed"
                .to_string(),
            "set `PasswordAuthentication no`",
        ));
    }
    let tries = settings.value("maxauthtries");
    if tries
        .parse::<u32>()
        .is_ok_and(|tries| tries > MAX_AUTH_TRIES_FOR_A_CLEAN_END)
    {
        findings.push(Finding::new(
            Severity::Warning,
            settings.place("maxauthtries"),
            format!(
                "MaxAuthTries is {tries}: after the last refused ticket a stock ssh client \
                 falls back to `password:` prompts that can never succeed before sshd \
                 disconnects it"
            ),
            format!(
                "set `MaxAuthTries {MAX_AUTH_TRIES_FOR_A_CLEAN_END}`; users can also set \
                 `PasswordAuthentication no` in ~/.ssh/config"
            ),
        ));
    }
    for (keyword, place) in &settings.in_match_blocks {
        findings.push(Finding::new(
            Severity::Warning,
            place.clone(),
            format!(
                "a Match block sets {keyword} for some connections, and doctor judged the \
                 settings outside Match blocks"
            ),
            "check those connections with `sshd -T -C user=NAME,host=HOST,addr=ADDR`",
        ));
    }
    for problem in &settings.unreadable_includes {
        findings.push(Finding::new(
            Severity::Warning,
            problem.split(": ").next().unwrap_or(problem).to_string(),
            format!(
                "Include not followed ({}), so settings may be missing from this check",
                problem.split_once(": ").map_or("", |(_, why)| why)
            ),
            "run pam-ticket doctor as root without --sshd-config, which asks sshd -T",
        ));
    }
    findings
}

fn method_findings(settings: &SshdSettings) -> Vec<Finding> {
    let place = settings.place("authenticationmethods");
    let value = settings.value("authenticationmethods").trim().to_string();
    if value.eq_ignore_ascii_case("any") || value.is_empty() {
        let alone: Vec<&str> = ["publickey", "password", "hostbased", "gssapi-with-mic"]
            .into_iter()
            .filter(|method| method_enabled(settings, method))
            .collect();
        let problem = if alone.is_empty() {
            "AuthenticationMethods is any: keyboard-interactive alone logs in, so the ticket \
             is the only credential (a ticket number is no secret)"
                .to_string()
        } else {
            format!(
                "AuthenticationMethods is any: {} alone logs in, without a ticket",
                alone.join(" or ")
            )
        };
        return vec![Finding::new(Severity::Error, place, problem, METHODS_FIX)];
    }
    let mut findings = Vec::new();
    let lists: Vec<&str> = value.split_whitespace().collect();
    let mut completable = 0;
    for list in &lists {
        let methods: Vec<&str> = list.split(',').collect();
        let Some(ticket_at) = methods.iter().position(|method| is_ticket_step(method)) else {
            findings.push(Finding::new(
                Severity::Error,
                place.clone(),
                format!(
                    "AuthenticationMethods list `{list}` never reaches keyboard-interactive: it \
                     logs in without a ticket"
                ),
                format!("remove `{list}`, or end it with `,keyboard-interactive:pam`"),
            ));
            continue;
        };
        if methods.len() == 1 {
            findings.push(Finding::new(
                Severity::Error,
                place.clone(),
                format!(
                    "AuthenticationMethods list `{list}` asks only for the ticket: the ticket \
                     is the only credential (a ticket number is no secret)"
                ),
                METHODS_FIX,
            ));
        } else if ticket_at == 0 {
            findings.push(Finding::new(
                Severity::Warning,
                place.clone(),
                format!(
                    "AuthenticationMethods list `{list}` asks for the ticket before the key: \
                     anyone who reaches the port can make the gateway query the ticketing \
                     system"
                ),
                METHODS_FIX,
            ));
        }
        if methods
            .iter()
            .all(|method| method_enabled(settings, method))
        {
            completable += 1;
        }
    }
    if completable == 0 {
        findings.push(Finding::new(
            Severity::Error,
            place,
            format!(
                "no AuthenticationMethods list `{value}` can complete with the methods that \
                 are switched on: nobody can log in (sshd refuses to start)"
            ),
            "switch on every method a list names (PubkeyAuthentication yes, \
             KbdInteractiveAuthentication yes)",
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_values_and_first_wins() {
        assert_eq!(split_keyword("UsePAM yes"), ("UsePAM", "yes"));
        assert_eq!(split_keyword("UsePAM=yes"), ("UsePAM", "yes"));
        assert_eq!(split_keyword("UsePAM = \"yes\""), ("UsePAM", "yes"));
        let mut settings = SshdSettings::with_defaults("t".into(), "t (default)".into());
        settings.read(
            "ChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\n\
             usepam yes\nMatch User x\nPasswordAuthentication yes\n",
            Path::new("/t"),
            false,
            0,
        );
        assert_eq!(settings.value("kbdinteractiveauthentication"), "no");
        assert_eq!(settings.place("kbdinteractiveauthentication"), "/t:1");
        assert_eq!(settings.value("usepam"), "yes");
        assert_eq!(settings.value("passwordauthentication"), "yes");
        assert_eq!(settings.place("passwordauthentication"), "t (default)");
        assert_eq!(
            settings.in_match_blocks,
            vec![("passwordauthentication".to_string(), "/t:5".to_string())]
        );
    }

    #[test]
    fn sshd_test_output() {
        let settings = SshdSettings::from_sshd_test_output(
            "port 22\nusepam yes\nauthenticationmethods publickey,keyboard-interactive:pam\n\
             kbdinteractiveauthentication yes\npasswordauthentication no\nmaxauthtries 4\n",
            "sshd -T".into(),
        );
        assert!(findings(&settings).is_empty(), "{:?}", findings(&settings));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.conf", b"50-redhat.conf"));
        assert!(!wildcard_match(b"*.conf", b"50-redhat.conf.rpmnew"));
        assert!(wildcard_match(b"a?c", b"abc"));
    }
}
