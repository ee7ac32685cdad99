//! `pam-ticket doctor`: finds the sshd and pam.d mistakes that lock people out or let them
//! around the ticket, before users do.
//!
//! It reads sshd's effective authentication settings (`sshd -T`, or a file), the auth
//! stack of the PAM service the module is on (includes and substacks followed), the
//! module's configuration exactly as the module loads it (the pam.d line's own
//! arguments), and then the few things around them that fail at login time: the CA
//! bundle and whether the server's certificate verifies against it, the Remedy token
//! cache directory, SELinux. Each problem is reported with its place and its fix.

mod pam_stack;
mod sshd;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::args::{self, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parsed};
use crate::config::{self, Config, TicketingSystem};

pub use pam_stack::PamLine;
pub use sshd::{MAX_AUTH_TRIES_FOR_A_CLEAN_END, SshdSettings, checked_keywords};

const HELP: &str =
    "usage: pam-ticket doctor [--sshd-config FILE] [--pam-service NAME | --pam-file FILE]
                         [--config FILE]

Finds the sshd and pam.d mistakes that lock people out or let them around the ticket, and
says how to fix each:
  sshd     UsePAM and KbdInteractiveAuthentication off, PasswordAuthentication on,
           AuthenticationMethods lists that log in without keyboard-interactive (the
           ticket) or ask for the ticket first, MaxAuthTries above 4 (a stock client is
           then asked for a password after the last refused ticket), Match blocks
  pam.d    pam_ticket.so missing from the auth stack, not `required`, behind a
           `sufficient` line or a jump over it; a password module (pam_unix, pam_sss,
           @include common-auth, substack password-auth, ...) before or beside it;
           module arguments the module would refuse; Groups/ExemptGroups/ExemptUsers
           without `auth optional pam_permit.so` below the ticket (exempt people locked out);
           with WorkNotes=Yes, no pam_ticket.so session line (no note when a session ends)
  module   the configuration as the module loads it (with the account files, and
           ClientCertificateFile and ClientKeyFile checked against each other); the CA
           bundle, and whether the ticketing system's (or portal's) certificate verifies
           against it; the cache directory (tokens, WorkNotes' session records); SELinux enforcing without a
           pam_ticket policy module

  --sshd-config FILE   read this sshd_config (and its Include files) directly; without
                       it doctor asks `/usr/sbin/sshd -T` for the effective configuration,
                       which needs root (the host keys)
  --pam-service NAME   the PAM service sshd runs, /etc/pam.d/NAME (default: sshd)
  --pam-file FILE      a pam.d file elsewhere; the files it includes are looked up
                       beside it
  --config FILE        the module's configuration when the pam.d line has no config=
                       (default /etc/security/pam_ticket.conf)

exit status:
  0  nothing found that locks people out or lets them around the ticket (warnings may
     be printed)
  1  at least one such problem (each ERROR line)
  2  usage error, or sshd's configuration or the pam.d file could not be read";

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Locks people out or lets them around the ticket: exit status 1.
    Error,
    /// Worth fixing, but logins work and need a ticket.
    Warning,
}

/// One problem: where, what, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub place: String,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    pub fn new(
        severity: Severity,
        place: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            place: place.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The report line: `ERROR place: problem` or `WARN  place: problem`.
    pub fn headline(&self) -> String {
        let tag = match self.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARN ",
        };
        format!("{tag} {}: {}", self.place, self.problem)
    }
}

/// Where the pam.d file comes from.
enum PamSource {
    Service(String),
    File(PathBuf),
}

/// Runs the subcommand; returns the process exit code.
pub fn run(arguments: &[String]) -> i32 {
    let options = match args::parse(
        arguments,
        &["sshd-config", "pam-service", "pam-file", "config"],
        &[],
        &[],
    ) {
        Ok(Parsed::Help) => {
            println!("{HELP}");
            return EXIT_OK;
        }
        Ok(Parsed::Run(options)) => options,
        Err(problem) => return usage(&problem),
    };
    if let Some(extra) = options.positional.first() {
        return usage(&format!("unexpected argument {extra:?}"));
    }
    let pam_source = match (options.value("pam-service"), options.value("pam-file")) {
        (Some(_), Some(_)) => return usage("give --pam-service or --pam-file, not both"),
        (Some(name), None) if name.is_empty() || name.contains('/') => {
            return usage(&format!("--pam-service {name:?} is not a service name"));
        }
        (Some(name), None) => PamSource::Service(name.to_string()),
        (None, Some(file)) => PamSource::File(PathBuf::from(file)),
        (None, None) => PamSource::Service("sshd".to_string()),
    };
    let config_option = options.value("config").map(PathBuf::from);
    if let Some(path) = &config_option
        && !path.exists()
    {
        return usage(&format!("--config {}: no such file", path.display()));
    }

    let sshd_settings = match options.value("sshd-config") {
        Some(file) => SshdSettings::from_file(Path::new(file)),
        None => SshdSettings::from_sshd_test(None)
            .map(|mut settings| {
                settings.add_match_blocks_of(Path::new("/etc/ssh/sshd_config"));
                settings
            })
            .map_err(|problem| {
                format!(
                    "{problem}\n(run as root, or name the file: --sshd-config /etc/ssh/sshd_config)"
                )
            }),
    };
    let sshd_settings = match sshd_settings {
        Ok(settings) => settings,
        Err(problem) => return cannot_check(&problem),
    };
    let (service, service_file, directories) = match &pam_source {
        PamSource::Service(name) => {
            let etc = PathBuf::from("/etc/pam.d");
            let vendor = PathBuf::from("/usr/lib/pam.d");
            let file = [&etc, &vendor]
                .iter()
                .map(|directory| directory.join(name))
                .find(|path| path.is_file())
                .unwrap_or_else(|| etc.join(name));
            (name.clone(), file, vec![etc, vendor])
        }
        PamSource::File(file) => {
            if !file.is_file() {
                return usage(&format!("--pam-file {}: no such file", file.display()));
            }
            let directory = file.parent().unwrap_or(Path::new(".")).to_path_buf();
            let name = file
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, file.clone(), vec![directory])
        }
    };

    println!("pam-ticket doctor");
    println!("  sshd     {}", sshd_settings.source);
    println!("  pam.d    {}", service_file.display());
    let mut report = Report::default();
    report.extend(sshd::findings(&sshd_settings));

    let stack = if service_file.is_file() {
        match pam_stack::auth_stack(&service_file, &directories) {
            Ok(stack) => Some(stack),
            Err(problem) => return cannot_check(&problem),
        }
    } else {
        report.push(Finding::new(
            Severity::Error,
            service_file.display().to_string(),
            format!(
                "there is no pam.d file for the service {service}: libpam uses \
                 /etc/pam.d/other, so nobody is asked for a ticket"
            ),
            "create it (pam.d/sshd.debian and pam.d/sshd.rhel are complete examples)",
        ));
        None
    };
    if let Some(stack) = &stack {
        report.extend(pam_stack::findings(stack, &service_file));
        let ticket_lines: Vec<&PamLine> = stack
            .entries
            .iter()
            .filter(|entry| entry.line.is_pam_ticket())
            .map(|entry| &entry.line)
            .collect();
        let mut loaded: Option<Config> = None;
        for line in ticket_lines {
            if let Some(config) =
                module_configuration(line, &service, config_option.as_deref(), &mut report)
                && loaded.is_none()
            {
                loaded = Some(config);
            }
        }
        if let Some(config) = &loaded {
            report.extend(module_findings(config));
            report.extend(exemption_findings(stack, config));
            report.extend(session_line_findings(config, &service_file));
        }
    }
    report.extend(selinux_findings(
        fs::read_to_string(SELINUX_ENFORCE).ok().as_deref(),
        semodule_list,
    ));
    report.print()
}

fn usage(problem: &str) -> i32 {
    eprintln!("pam-ticket doctor: {problem}\n\n{HELP}");
    EXIT_USAGE
}

fn cannot_check(problem: &str) -> i32 {
    eprintln!("pam-ticket doctor: {problem}");
    EXIT_USAGE
}

/// The findings, printed in order.
#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
    notes: Vec<String>,
}

impl Report {
    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn extend(&mut self, findings: Vec<Finding>) {
        self.findings.extend(findings);
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn print(&self) -> i32 {
        for note in &self.notes {
            println!("  {note}");
        }
        println!();
        for finding in &self.findings {
            println!("{}", finding.headline());
            println!("      fix: {}", finding.fix);
        }
        let errors = self
            .findings
            .iter()
            .filter(|finding| finding.severity == Severity::Error)
            .count();
        let warnings = self.findings.len() - errors;
        if errors == 0 {
            println!("result: OK, {warnings} warning(s)");
            EXIT_OK
        } else {
            println!(
                "result: {errors} problem(s) that lock people out or let them around the \
                 ticket, {warnings} warning(s)"
            );
            EXIT_FAILED
        }
    }
}

/// Loads the configuration one pam_ticket line names, the way the module does: its own
/// arguments (`config=`, overrides, `debug`), with `--config` standing in for `config=`
/// only when the line has none.
fn module_configuration(
    line: &PamLine,
    service: &str,
    config_option: Option<&Path>,
    report: &mut Report,
) -> Option<Config> {
    let mut arguments = line.arguments.clone();
    let named = arguments
        .iter()
        .find_map(|argument| argument.strip_prefix("config=").map(PathBuf::from));
    match (&named, config_option) {
        (Some(named), Some(option)) if named != option => report.note(format!(
            "note: {} names config={}, which is what the module reads; --config {} is not used",
            line.place,
            named.display(),
            option.display()
        )),
        (None, Some(option)) => arguments.insert(0, format!("config={}", option.display())),
        _ => {}
    }
    let path = named
        .or_else(|| config_option.map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG_PATH));
    report.note(format!("config   {} (for {})", path.display(), line.place));
    let loaded = config::parse_module_arguments(&arguments, service)
        .and_then(|parsed| config::load(&parsed));
    match loaded {
        Ok(config) => Some(config),
        Err(problem) => {
            report.push(Finding::new(
                Severity::Error,
                line.place.to_string(),
                format!(
                    "the module would refuse its configuration and fail every login \
                     (PAM_SERVICE_ERR): {problem}"
                ),
                "fix the line or file named; `pam-ticket check` reports the same",
            ));
            None
        }
    }
}

/// What fails only at login time: setting up the ticket source (CA bundle, proxy), the
/// server's certificate against the CA bundle, the cache directory.
fn module_findings(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !config.enter_ticketing_info || !config.validate_ticket_number {
        return findings;
    }
    let source = config.source.display().to_string();
    if let Err(problem) = crate::backend::from_config(config) {
        findings.push(Finding::new(
            Severity::Error,
            source,
            format!(
                "the module cannot set up its ticket source and fails every login \
                 (PAM_SERVICE_ERR): {problem}"
            ),
            "set CAFile to a PEM bundle (`pam-ticket ca add` converts a DER .cer)",
        ));
        return findings;
    }
    let url = config
        .portal
        .as_ref()
        .map(|portal| &portal.url)
        .or(config.system_url.as_ref());
    match (url, &config.ca_bundle, &config.https_proxy) {
        (Some(url), Some(bundle), None) => {
            findings.extend(trust_findings(url, bundle.path(), config.timeout, &source));
        }
        (Some(url), Some(_), Some(proxy)) => findings.push(Finding::new(
            Severity::Warning,
            source.clone(),
            format!(
                "the CA trust was not checked: the module reaches {} through HTTPSProxy {proxy}, \
                 which doctor does not use",
                url.base
            ),
            "run `pam-ticket check`, which goes through the proxy as the module does",
        )),
        _ => {}
    }
    if config.portal.is_none() {
        let mut consequences = Vec::new();
        if config.oauth_client.is_some() {
            consequences.push("every login asks ServiceNow for an OAuth token anew");
        } else if config.ticketing_system == Some(TicketingSystem::BmcRemedy) {
            consequences.push("every login logs on to Remedy anew");
        }
        // The session records live there too (notes/session_record.rs).
        if config.work_notes.is_some() {
            consequences.push("no work note is written when a session ends");
        }
        if !consequences.is_empty() {
            findings.extend(cache_directory_findings(
                &config.cache_directory,
                &source,
                &consequences.join("; "),
            ));
        }
    }
    if let Some(portal) = &config.portal {
        if portal.identity_url.is_some() {
            findings.extend(cache_directory_findings(
                &config.cache_directory,
                &source,
                "every login asks the Identity tenant for a new platform token",
            ));
        }
        findings.push(portal_validation_reminder(portal, &source));
    }
    findings
}

/// Groups, ExemptGroups and ExemptUsers make the module return PAM_IGNORE for the logins
/// it does not ask. PAM_IGNORE alone fails the stack (libpam's "no module decided"), so
/// without a line below the ticket that succeeds for them (`auth optional pam_permit.so`),
/// the people the configuration exempts are locked out.
fn exemption_findings(stack: &pam_stack::AuthStack, config: &Config) -> Vec<Finding> {
    if !config.people.decides_who_is_asked() {
        return Vec::new();
    }
    let Some(ticket) = stack
        .entries
        .iter()
        .position(|entry| entry.line.is_pam_ticket())
    else {
        return Vec::new();
    };
    let let_in_below = stack.entries[ticket + 1..]
        .iter()
        .any(|entry| entry.line.module_name() == "pam_permit");
    if let_in_below {
        return Vec::new();
    }
    vec![Finding::new(
        Severity::Error,
        stack.entries[ticket].line.place.to_string(),
        "Groups, ExemptGroups or ExemptUsers are set, so the module returns PAM_IGNORE for \
         the logins it does not ask, and nothing below this line lets them in: PAM_IGNORE \
         alone fails the stack, so the people it exempts are locked out",
        "add `auth optional pam_permit.so` right below this line (a refused ticket still \
         fails the stack)",
    )]
}

/// WorkNotes=Yes writes the end note from `pam_sm_close_session`, which runs only when the
/// module is in the session stack. Doctor looks at the service file's own lines (a session
/// line in an included file is not seen, and then the warning is one to ignore).
fn session_line_findings(config: &Config, service_file: &Path) -> Vec<Finding> {
    if config.work_notes.is_none() {
        return Vec::new();
    }
    let text = fs::read_to_string(service_file).unwrap_or_default();
    let has_session_line = pam_stack::parse(&text, service_file)
        .iter()
        .any(|line| line.kind == "session" && line.is_pam_ticket());
    if has_session_line {
        return Vec::new();
    }
    vec![Finding::new(
        Severity::Warning,
        service_file.display().to_string(),
        "WorkNotes is Yes but pam_ticket.so is not in the session stack: no work note is written when a session ends",
        "add `session optional pam_ticket.so` (with the auth line's arguments) as the last session line",
    )]
}

/// In portal mode the vault decides whether a ticket is checked at all: Retrieve answers
/// with the password, which the module takes as "accepted", whenever the target's platform
/// does not require a ticket, whatever ticket was typed. Doctor cannot see the vault's
/// platforms, so it reminds the administrator to check them.
fn portal_validation_reminder(portal: &config::PortalSettings, source: &str) -> Finding {
    Finding::new(
        Severity::Warning,
        source.to_string(),
        format!(
            "portal mode: the portal at {} decides whether tickets are checked at all; for a \
             target whose platform does not require ticketing validation, every well-formed \
             ticket ID is let in",
            portal.url.base
        ),
        format!(
            "in the vault, check that the platform of every target account has \
             EnterTicketingInfo and ValidateTicketNumber on, with the ticketing system \
             {:?}; then `pam-ticket test --user <you>@<target user>@<target address> \
             <closed ticket>` must be refused",
            portal.ticketing_system_name
        ),
    )
}

/// Whether the server's certificate verifies against the bundle the module trusts, with
/// the TLS handshake `pam-ticket ca check` makes (no request, no credentials).
fn trust_findings(
    url: &config::BaseUrl,
    bundle: &Path,
    timeout: Duration,
    source: &str,
) -> Vec<Finding> {
    let timeout = timeout.min(Duration::from_secs(10));
    match super::ca_check::check_chain(&url.host, url.port, bundle, timeout) {
        Ok(verdict) if verdict.verified => Vec::new(),
        Ok(verdict) => {
            let reason = verdict
                .report
                .lines()
                .find_map(|line| line.strip_prefix("NOT VERIFIED: "))
                .unwrap_or("the chain does not verify")
                .to_string();
            vec![Finding::new(
                Severity::Error,
                source.to_string(),
                format!(
                    "the certificate of {}:{} does not verify against {} ({reason}): the \
                     module denies every login, in both fail modes",
                    url.host,
                    url.port,
                    bundle.display()
                ),
                format!(
                    "`pam-ticket ca check {}` names the missing issuer; add it with `pam-ticket \
                     ca add`",
                    url.base
                ),
            )]
        }
        Err(problem) => vec![Finding::new(
            Severity::Warning,
            source.to_string(),
            format!("the CA trust was not checked: {problem}"),
            "run `pam-ticket check` from this host once the server is reachable",
        )],
    }
}

/// The cache directory (tokens, session records) as the module will use it under sshd
/// (as root): a directory owned by root that nobody else may enter, or one the module can
/// create.
/// `consequence` says what a login does without it.
fn cache_directory_findings(directory: &Path, source: &str, consequence: &str) -> Vec<Finding> {
    let unusable = |why: String| {
        vec![Finding::new(
            Severity::Warning,
            source.to_string(),
            format!(
                "the cache directory {} is unusable ({why}): {consequence}",
                directory.display()
            ),
            format!(
                "`install -d -m 0700 -o root -g root {}`, or point CacheDirectory at such a \
                 directory",
                directory.display()
            ),
        )]
    };
    match fs::symlink_metadata(directory) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            unusable("it is a symbolic link".to_string())
        }
        Ok(metadata) if !metadata.is_dir() => unusable("it is not a directory".to_string()),
        Ok(metadata) if metadata.uid() != 0 => {
            unusable(format!("owned by uid {}, not root", metadata.uid()))
        }
        Ok(metadata) if metadata.mode() & 0o077 != 0 => unusable(format!(
            "mode {:04o}; group and others must have no access",
            metadata.mode() & 0o7777
        )),
        Ok(_) => Vec::new(),
        Err(_) => match directory.parent() {
            Some(parent) if parent.is_dir() => Vec::new(),
            _ => unusable("neither it nor its parent directory exists".to_string()),
        },
    }
}

/// The kernel's SELinux mode: `1` when enforcing.
const SELINUX_ENFORCE: &str = "/sys/fs/selinux/enforce";
/// The policy module name doctor looks for.
pub const SELINUX_MODULE: &str = "pam_ticket";

/// `semodule -l`, which lists the loaded policy modules (root only).
fn semodule_list() -> Result<String, String> {
    let output = Command::new("semodule")
        .arg("-l")
        .output()
        .map_err(|io_error| format!("cannot run semodule -l: {io_error}"))?;
    if !output.status.success() {
        return Err(format!(
            "semodule -l failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// SELinux enforcing without the pam_ticket policy module: a warning, since sshd (sshd_t)
/// may then be denied the connection to the ticketing system or the cache directory.
pub fn selinux_findings(
    enforce: Option<&str>,
    list_modules: impl FnOnce() -> Result<String, String>,
) -> Vec<Finding> {
    if enforce.map(str::trim) != Some("1") {
        return Vec::new();
    }
    let missing = |why: String| {
        vec![Finding::new(
            Severity::Warning,
            SELINUX_ENFORCE,
            format!(
                "SELinux is enforcing and {why}: sshd may be denied the connection to the \
                 ticketing system or the token cache directory"
            ),
            format!(
                "load the {SELINUX_MODULE} policy module; after a test login, \
                 `ausearch -m AVC -ts recent -c sshd` shows what was denied"
            ),
        )]
    };
    match list_modules() {
        Ok(listing) => {
            let loaded = listing
                .lines()
                .any(|line| line.split_whitespace().next() == Some(SELINUX_MODULE));
            if loaded {
                Vec::new()
            } else {
                missing(format!("no {SELINUX_MODULE} policy module is loaded"))
            }
        }
        Err(problem) => missing(format!(
            "the policy modules could not be listed ({problem})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemptions_need_a_line_below_the_ticket_that_lets_ignored_logins_in() {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_doctor_exempt_{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let stack_of = |text: &str| {
            let file = dir.join("sshd");
            fs::write(&file, text).expect("write");
            pam_stack::auth_stack(&file, std::slice::from_ref(&dir)).expect("stack")
        };
        let config_of = |extra: &str| {
            let text = format!("TicketingSystem=ServiceNow\nValidateTicketNumber=No\n{extra}");
            let path = Path::new("/etc/test.conf");
            let entries = config::parse_entries(&text, path).expect("syntax");
            config::from_entries(path, entries, Vec::new()).expect("valid")
        };
        let alone = stack_of("auth required pam_ticket.so\n");
        let permitted = stack_of("auth required pam_ticket.so\nauth optional pam_permit.so\n");
        let exempting = config_of("ExemptUsers=root\n");
        let found = exemption_findings(&alone, &exempting);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Error);
        assert!(
            found[0].problem.contains("locked out"),
            "{}",
            found[0].problem
        );
        assert!(exemption_findings(&permitted, &exempting).is_empty());
        assert!(exemption_findings(&alone, &config_of("")).is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn selinux_enforcing_without_the_module_is_a_warning() {
        let found = selinux_findings(Some("1\n"), || Ok("apache\nssh 1.0\n".to_string()));
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].headline(),
            "WARN  /sys/fs/selinux/enforce: SELinux is enforcing and no pam_ticket policy \
             module is loaded: sshd may be denied the connection to the ticketing system or \
             the token cache directory"
        );
        assert!(selinux_findings(Some("1"), || Ok("pam_ticket\n".to_string())).is_empty());
        assert!(selinux_findings(Some("0"), || panic!("not asked when permissive")).is_empty());
        assert!(selinux_findings(None, || panic!("not asked without SELinux")).is_empty());
        let unlisted = selinux_findings(Some("1"), || Err("semodule: not found".to_string()));
        assert_eq!(unlisted[0].severity, Severity::Warning);
        assert!(unlisted[0].problem.contains("(semodule: not found)"));
    }

    #[test]
    fn warnings_alone_exit_zero_and_an_error_exits_one() {
        let warning = Finding::new(Severity::Warning, "p", "w", "f");
        let error = Finding::new(Severity::Error, "p", "e", "f");
        let report = Report {
            findings: vec![warning.clone()],
            notes: Vec::new(),
        };
        assert_eq!(report.print(), EXIT_OK);
        let report = Report {
            findings: vec![warning, error],
            notes: Vec::new(),
        };
        assert_eq!(report.print(), EXIT_FAILED);
    }
}
