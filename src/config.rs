//! The configuration: a `Key="Value"` file in the style of PSM for SSH's
//! basic_psmpserver.conf, overridden per pam.d line by `Key=Value` module arguments, turned
//! into a typed [`Config`].
//!
//! Parsing is strict on purpose: an unknown or duplicate key, a bad value, a regex that does
//! not compile, a plain-http URL, or a Validate* switch without its Allowed* list is an error
//! that names file:line. A typo must never quietly switch a check off.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::bypass::BypassHash;
use crate::secret::Secret;
use crate::secure_file::{self, Readers};
use crate::trust::{self, CaBundle};

/// Where the module looks for its configuration unless `config=PATH` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/security/pam_ticket.conf";

/// Where a setting came from, so that every error can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` (1-based) of a file.
    File { path: PathBuf, line: usize },
    /// The `index`th (1-based) argument on the pam.d line of `service`.
    ModuleArgument { service: String, index: usize },
    /// A key that was not set anywhere: the check that failed is about the whole file.
    Whole { path: PathBuf },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::ModuleArgument { service, index } => {
                write!(f, "pam.d/{service} argument {index}")
            }
            Origin::Whole { path } => write!(f, "{}", path.display()),
        }
    }
}

/// A configuration error: what is wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: Origin,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn error(origin: &Origin, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        origin: origin.clone(),
        problem: problem.into(),
    }
}

/// One `Key="Value"` entry with the place it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// Parses `Key="Value"` text. Blank lines and lines starting with `#` are skipped; inside
/// quotes `\"` and `\\` are escapes (any other backslash is kept, so regexes such as `\d`
/// survive); after the closing quote only white space or a `#` comment may follow.
pub fn parse_entries(text: &str, path: &Path) -> Result<Vec<Entry>, ConfigError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: index + 1,
        };
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = split_key_value(line, &origin)
            .and_then(|(key, value)| Ok((key, parse_value(value, &origin)?)));
        let (key, value) = match parsed {
            Ok(parsed) => parsed,
            Err(problem) => {
                // In an account file an earlier line may hold the password.
                for entry in &mut entries {
                    zeroize::Zeroize::zeroize(&mut entry.value);
                }
                return Err(problem);
            }
        };
        entries.push(Entry {
            key: key.to_string(),
            value,
            origin,
        });
    }
    Ok(entries)
}

fn split_key_value<'a>(line: &'a str, origin: &Origin) -> Result<(&'a str, &'a str), ConfigError> {
    let Some((key, value)) = line.split_once('=') else {
        return Err(error(origin, "expected Key=\"Value\""));
    };
    let key = key.trim();
    let key_is_word = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_is_word {
        return Err(error(
            origin,
            format!("expected Key=\"Value\", found key {key:?}"),
        ));
    }
    Ok((key, value.trim()))
}

fn parse_value(raw: &str, origin: &Origin) -> Result<String, ConfigError> {
    let Some(quoted) = raw.strip_prefix('"') else {
        if raw.contains('"') {
            return Err(error(
                origin,
                "a value with a quote must be written in quotes",
            ));
        }
        return Ok(raw.to_string());
    };
    // Sized up front and wiped if the line is refused: the value may be a password, and a
    // buffer that grew would leave copies of its start behind.
    let mut value = zeroize::Zeroizing::new(String::with_capacity(quoted.len()));
    let mut chars = quoted.chars();
    loop {
        match chars.next() {
            None => return Err(error(origin, "the value's closing quote is missing")),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return Err(error(origin, "the value's closing quote is missing")),
            },
            Some(other) => value.push(other),
        }
    }
    let rest = chars.as_str().trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(error(
            origin,
            format!("unexpected text after the closing quote: {rest:?}"),
        ));
    }
    Ok(std::mem::take(&mut *value))
}

/// Which ticketing system the module talks to directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketingSystem {
    ServiceNow,
    BmcRemedy,
}

impl TicketingSystem {
    /// The name used in configuration, audit records and `TICKETING_SYSTEM`.
    pub fn name(self) -> &'static str {
        match self {
            TicketingSystem::ServiceNow => "ServiceNow",
            TicketingSystem::BmcRemedy => "BMCRemedy",
        }
    }
}

/// What to do when the ticketing system cannot be asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Deny with PAM_AUTHINFO_UNAVAIL.
    Secure,
    /// Allow, and audit the login as failsafe.
    Safe,
}

/// An https base URL, split so that requests can be built from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https://host[:port]` plus any path prefix, without a trailing slash.
    pub base: String,
    pub host: String,
    pub port: u16,
}

impl BaseUrl {
    /// `base` joined with an absolute `path` (which starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

/// An HTTP proxy that the module tunnels through with CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

/// A user name and password read from a root-only account file.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    pub source: PathBuf,
}

/// How the gateway user logs on to the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalAuthMethod {
    CyberArk,
    Ldap,
    Radius,
}

impl PortalAuthMethod {
    /// The path segment of the portal's logon endpoint.
    pub fn path_segment(self) -> &'static str {
        match self {
            PortalAuthMethod::CyberArk => "CyberArk",
            PortalAuthMethod::Ldap => "LDAP",
            PortalAuthMethod::Radius => "RADIUS",
        }
    }
}

/// Settings for portal mode (FetchCredentialsThroughPVWA=Yes).
#[derive(Clone, Debug)]
pub struct PortalSettings {
    pub url: BaseUrl,
    pub auth_method: PortalAuthMethod,
    pub account: Credentials,
    pub ticketing_system_name: String,
    pub reason_template: String,
}

/// Remedy forms and fields; sites customise them, so each can be overridden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemedySettings {
    pub incident_form: String,
    pub incident_id_field: String,
    pub incident_status_field: String,
    pub incident_requester_fields: Vec<String>,
    pub change_form: String,
    pub change_id_field: String,
    pub change_status_field: String,
    pub change_approval_field: String,
    pub change_start_field: String,
    pub change_end_field: String,
    pub change_requester_fields: Vec<String>,
    pub token_lifetime: Duration,
}

/// The validated configuration the login flow runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file the configuration came from.
    pub source: PathBuf,
    /// `None` only in portal mode, where the gateway never talks to the ticketing system.
    pub ticketing_system: Option<TicketingSystem>,
    pub system_url: Option<BaseUrl>,
    pub connection_account: Option<Credentials>,
    /// The CA bundle to trust, read and checked once when the configuration loaded;
    /// `None` when CAFile is not set and no system bundle exists either (an error when
    /// the ticket source is set up, reported as such).
    pub ca_bundle: Option<CaBundle>,
    pub enter_ticketing_info: bool,
    pub validate_ticket_number: bool,
    pub ticket_format: Option<Regex>,
    pub incident_identification: Regex,
    pub change_identification: Regex,
    /// `Some(list)` when the incident state is checked.
    pub allowed_incident_states: Option<Vec<String>>,
    pub allowed_change_states: Option<Vec<String>>,
    pub allowed_approval_statuses: Option<Vec<String>>,
    pub validate_operation_time: bool,
    pub validate_requesting_user: bool,
    pub bypass_codes: Vec<BypassHash>,
    pub fail_mode: FailMode,
    pub timeout: Duration,
    pub https_proxy: Option<ProxyUrl>,
    pub max_attempts: u32,
    pub prompt: String,
    pub audit_log_file: Option<PathBuf>,
    pub portal: Option<PortalSettings>,
    pub remedy: RemedySettings,
    pub cache_directory: PathBuf,
    pub debug: bool,
}

/// Every key the module knows. Anything else is an error.
const KNOWN_KEYS: &[&str] = &[
    "TicketingSystem",
    "SystemURL",
    "ConnectionAccountFile",
    "CAFile",
    "EnterTicketingInfo",
    "ValidateTicketNumber",
    "TicketFormatRegex",
    "IncidentTicketIdentification",
    "ChangeTicketIdentification",
    "ValidateIncidentTicketState",
    "AllowedIncidentTicketStates",
    "ValidateChangeTicketState",
    "AllowedChangeTicketStates",
    "ValidateApprovalStatus",
    "AllowedApprovalStatuses",
    "ValidateOperationTime",
    "ValidateRequestingUser",
    "FailsafeBypassCode",
    "FailMode",
    "Timeout",
    "HTTPSProxy",
    "MaxAttempts",
    "Prompt",
    "AuditLogFile",
    "FetchCredentialsThroughPVWA",
    "PSMPServerConfig",
    "PortalURL",
    "PortalAuthMethod",
    "PortalAccountFile",
    "PortalTicketingSystemName",
    "PortalReason",
    "RemedyIncidentForm",
    "RemedyIncidentIDField",
    "RemedyIncidentStatusField",
    "RemedyIncidentRequesterFields",
    "RemedyChangeForm",
    "RemedyChangeIDField",
    "RemedyChangeStatusField",
    "RemedyChangeApprovalField",
    "RemedyChangeStartField",
    "RemedyChangeEndField",
    "RemedyChangeRequesterFields",
    "RemedyTokenLifetime",
    "CacheDirectory",
];

/// The module arguments, split into the config path, the debug switch and key overrides.
#[derive(Clone, Debug, Default)]
pub struct ModuleArguments {
    pub config_path: Option<PathBuf>,
    pub debug: bool,
    pub overrides: Vec<Entry>,
    /// Set only by a build with the `panic-probe` feature; see lib.rs.
    pub panic_probe: bool,
}

/// Splits the pam.d arguments. `service` only serves to name where an error is.
pub fn parse_module_arguments(
    arguments: &[String],
    service: &str,
) -> Result<ModuleArguments, ConfigError> {
    let mut parsed = ModuleArguments::default();
    for (position, argument) in arguments.iter().enumerate() {
        let origin = Origin::ModuleArgument {
            service: service.to_string(),
            index: position + 1,
        };
        if argument == "debug" {
            parsed.debug = true;
            continue;
        }
        if cfg!(feature = "panic-probe") && argument == "panic_probe" {
            parsed.panic_probe = true;
            continue;
        }
        let Some((key, value)) = argument.split_once('=') else {
            return Err(error(
                &origin,
                format!("unknown module argument {argument:?}"),
            ));
        };
        if key == "FailsafeBypassCode" {
            // Not echoed: the value is a hash that must not spread to more logs.
            return Err(error(
                &origin,
                "FailsafeBypassCode must not be a module argument: files in /etc/pam.d are \
                 readable by every local user, who could then guess the codes offline from \
                 their hashes; set it in the configuration file (mode 0600) instead",
            ));
        }
        if key == "config" {
            if parsed.config_path.is_some() {
                return Err(error(&origin, "config= is given twice"));
            }
            parsed.config_path = Some(PathBuf::from(value));
            continue;
        }
        parsed.overrides.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            origin,
        });
    }
    Ok(parsed)
}

/// Reads the configuration file named by the arguments (or the default), applies the
/// overrides and validates the result.
pub fn load(arguments: &ModuleArguments) -> Result<Config, ConfigError> {
    let path = arguments
        .config_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    // Others may read the configuration, but never change it: it decides whether and
    // how tickets are checked. When it holds bypass code hashes, it is a secret (see
    // `check_bypass_file_mode`).
    let text = secure_file::read_text(&path, Readers::Anyone, true).map_err(|problem| {
        error(
            &Origin::Whole { path: path.clone() },
            format!("cannot use the configuration: {problem}"),
        )
    })?;
    let file_entries = parse_entries(&text, &path)?;
    check_bypass_file_mode(&path, &file_entries)?;
    let mut config = from_entries(&path, file_entries, arguments.overrides.clone())?;
    config.debug = arguments.debug;
    Ok(config)
}

/// Bypass code hashes are one fast SHA-256 each: anyone who can read them can try
/// guesses offline. A configuration that holds them must be readable by root only.
fn check_bypass_file_mode(path: &Path, entries: &[Entry]) -> Result<(), ConfigError> {
    let Some(entry) = entries
        .iter()
        .find(|entry| entry.key == "FailsafeBypassCode")
    else {
        return Ok(());
    };
    let metadata = fs::metadata(path).map_err(|io_error| {
        error(
            &entry.origin,
            format!("cannot stat {}: {io_error}", path.display()),
        )
    })?;
    secure_file::check(path, &metadata, Readers::OwnerOnly).map_err(|problem| {
        error(
            &entry.origin,
            format!("FailsafeBypassCode is set here, so {problem}"),
        )
    })
}

/// Merges file entries and argument overrides into a map, refusing unknown and duplicate
/// keys, then builds the typed configuration.
pub fn from_entries(
    path: &Path,
    file_entries: Vec<Entry>,
    overrides: Vec<Entry>,
) -> Result<Config, ConfigError> {
    let mut settings: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in &file_entries {
        check_known(entry)?;
        if let Some(previous) = settings.get(&entry.key) {
            return Err(error(
                &entry.origin,
                format!("{} is set twice (first at {})", entry.key, previous.origin),
            ));
        }
        settings.insert(entry.key.clone(), entry.clone());
    }
    let mut overridden: BTreeMap<String, Origin> = BTreeMap::new();
    for entry in overrides {
        check_known(&entry)?;
        if let Some(previous) = overridden.get(&entry.key) {
            return Err(error(
                &entry.origin,
                format!("{} is given twice (first at {})", entry.key, previous),
            ));
        }
        overridden.insert(entry.key.clone(), entry.origin.clone());
        settings.insert(entry.key.clone(), entry);
    }
    Settings {
        path: path.to_path_buf(),
        entries: settings,
    }
    .build()
}

fn check_known(entry: &Entry) -> Result<(), ConfigError> {
    if KNOWN_KEYS.contains(&entry.key.as_str()) {
        return Ok(());
    }
    let hint = KNOWN_KEYS
        .iter()
        .find(|known| {
            known.eq_ignore_ascii_case(&entry.key) || edit_distance(known, &entry.key) <= 2
        })
        .map(|known| format!(" (did you mean {known}?)"))
        .unwrap_or_default();
    Err(error(
        &entry.origin,
        format!("unknown key {}{hint}", entry.key),
    ))
}

/// Levenshtein distance, for the "did you mean" hint on a mistyped key.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[right.len()]
}

/// The merged entries, with typed accessors that report errors at the entry's origin.
struct Settings {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl Settings {
    fn whole(&self) -> Origin {
        Origin::Whole {
            path: self.path.clone(),
        }
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key)
            .map_or_else(|| default.to_string(), |entry| entry.value.clone())
    }

    fn non_empty_string(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(entry) if entry.value.trim().is_empty() => {
                Err(error(&entry.origin, format!("{key} must not be empty")))
            }
            Some(entry) => Ok(entry.value.trim().to_string()),
        }
    }

    fn yes_no(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(entry) = self.get(key) else {
            return Ok(default);
        };
        match entry.value.trim().to_ascii_lowercase().as_str() {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => Err(error(
                &entry.origin,
                format!("{key} must be Yes or No, not {:?}", entry.value),
            )),
        }
    }

    fn number(
        &self,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(entry) = self.get(key) else {
            return Ok(default);
        };
        match entry.value.trim().parse::<u64>() {
            Ok(number) if range.contains(&number) => Ok(number),
            _ => Err(error(
                &entry.origin,
                format!(
                    "{key} must be a whole number from {} to {}, not {:?}",
                    range.start(),
                    range.end(),
                    entry.value
                ),
            )),
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|entry| split_list(&entry.value))
            .unwrap_or_default()
    }

    fn list_or(&self, key: &str, default: &[&str]) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(default.iter().map(|item| item.to_string()).collect()),
            Some(entry) => {
                let items = split_list(&entry.value);
                if items.is_empty() {
                    return Err(error(
                        &entry.origin,
                        format!("{key} must name at least one field"),
                    ));
                }
                Ok(items)
            }
        }
    }

    fn regex(
        &self,
        key: &str,
        default: Option<&str>,
        anchor: bool,
    ) -> Result<Option<Regex>, ConfigError> {
        let (pattern, origin) = match self.get(key) {
            Some(entry) => (entry.value.clone(), entry.origin.clone()),
            None => match default {
                Some(pattern) => (pattern.to_string(), self.whole()),
                None => return Ok(None),
            },
        };
        if pattern.trim().is_empty() {
            return Err(error(&origin, format!("{key} must not be empty")));
        }
        let source = if anchor {
            format!("^(?:{pattern})$")
        } else {
            pattern.clone()
        };
        Regex::new(&source).map(Some).map_err(|regex_error| {
            error(
                &origin,
                format!("{key} is not a valid regex: {regex_error}"),
            )
        })
    }

    /// A Validate* switch and its Allowed* list: `Some(list)` when the check is on.
    fn checked_list(
        &self,
        switch: &str,
        list_key: &str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        if !self.yes_no(switch, false)? {
            // A list without its switch would look like a check in force and never run
            // (an admin adding `[AllowedIncidentTicketStates=…]` to one pam.d line, say).
            if let Some(entry) = self
                .get(list_key)
                .filter(|entry| !split_list(&entry.value).is_empty())
            {
                return Err(error(
                    &entry.origin,
                    format!(
                        "{list_key} is set but {switch} is not Yes, so the list would never be checked; set {switch}=Yes or remove the list"
                    ),
                ));
            }
            return Ok(None);
        }
        let allowed = self.list(list_key);
        if allowed.is_empty() {
            let origin = self
                .get(switch)
                .map_or_else(|| self.whole(), |entry| entry.origin.clone());
            return Err(error(
                &origin,
                format!("{switch} is Yes but {list_key} is empty: nothing could ever pass"),
            ));
        }
        Ok(Some(allowed))
    }

    fn https_url(&self, key: &str) -> Result<Option<BaseUrl>, ConfigError> {
        self.get(key)
            .map(|entry| {
                parse_https_url(&entry.value)
                    .map_err(|problem| error(&entry.origin, format!("{key}: {problem}")))
            })
            .transpose()
    }

    fn absolute_path(&self, key: &str) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
        let Some(entry) = self.get(key) else {
            return Ok(None);
        };
        let path = PathBuf::from(entry.value.trim());
        if !path.is_absolute() {
            return Err(error(
                &entry.origin,
                format!("{key} must be an absolute path, not {:?}", entry.value),
            ));
        }
        Ok(Some((path, entry.origin.clone())))
    }

    fn build(&self) -> Result<Config, ConfigError> {
        let portal_mode = self.portal_mode()?;
        let ticketing_system = match self.get("TicketingSystem") {
            Some(entry) => Some(match entry.value.trim() {
                "ServiceNow" => TicketingSystem::ServiceNow,
                "BMCRemedy" => TicketingSystem::BmcRemedy,
                other => {
                    return Err(error(
                        &entry.origin,
                        format!("TicketingSystem must be ServiceNow or BMCRemedy, not {other:?}"),
                    ));
                }
            }),
            None if portal_mode => None,
            None => return Err(error(&self.whole(), "TicketingSystem is required")),
        };
        let validate_ticket_number = self.yes_no("ValidateTicketNumber", true)?;
        let system_url = self.https_url("SystemURL")?;
        let needs_direct_access = validate_ticket_number && !portal_mode;
        if needs_direct_access && system_url.is_none() {
            return Err(error(&self.whole(), "SystemURL is required"));
        }
        let connection_account = match self.absolute_path("ConnectionAccountFile")? {
            Some((path, origin)) if needs_direct_access => Some(read_account_file(&path, &origin)?),
            Some(_) => None,
            None if needs_direct_access => {
                return Err(error(
                    &self.whole(),
                    "ConnectionAccountFile is required when ValidateTicketNumber is Yes",
                ));
            }
            None => None,
        };
        let remedy = ticketing_system == Some(TicketingSystem::BmcRemedy);
        let (incident_default, change_default) = if remedy {
            ("^INC[0-9]{12}$", "^CRQ[0-9]{12}$")
        } else {
            ("^INC[0-9]+$", "^CHG[0-9]+$")
        };
        let incident_identification = self
            .regex(
                "IncidentTicketIdentification",
                Some(incident_default),
                false,
            )?
            .ok_or_else(|| error(&self.whole(), "IncidentTicketIdentification is missing"))?;
        let change_identification = self
            .regex("ChangeTicketIdentification", Some(change_default), false)?
            .ok_or_else(|| error(&self.whole(), "ChangeTicketIdentification is missing"))?;
        let fail_mode = match self.get("FailMode") {
            None => FailMode::Secure,
            Some(entry) => match entry.value.trim().to_ascii_lowercase().as_str() {
                "secure" => FailMode::Secure,
                "safe" => FailMode::Safe,
                _ => {
                    return Err(error(
                        &entry.origin,
                        format!("FailMode must be secure or safe, not {:?}", entry.value),
                    ));
                }
            },
        };
        let portal = if portal_mode {
            self.refuse_gateway_checks_in_portal_mode()?;
            Some(self.portal()?)
        } else {
            None
        };
        Ok(Config {
            source: self.path.clone(),
            ticketing_system,
            system_url,
            connection_account,
            ca_bundle: self.ca_bundle()?,
            enter_ticketing_info: self.yes_no("EnterTicketingInfo", true)?,
            validate_ticket_number,
            ticket_format: self.regex("TicketFormatRegex", None, true)?,
            incident_identification,
            change_identification,
            allowed_incident_states: self
                .checked_list("ValidateIncidentTicketState", "AllowedIncidentTicketStates")?,
            allowed_change_states: self
                .checked_list("ValidateChangeTicketState", "AllowedChangeTicketStates")?,
            allowed_approval_statuses: self
                .checked_list("ValidateApprovalStatus", "AllowedApprovalStatuses")?,
            validate_operation_time: self.yes_no("ValidateOperationTime", false)?,
            validate_requesting_user: self.yes_no("ValidateRequestingUser", false)?,
            bypass_codes: self.bypass_codes()?,
            fail_mode,
            timeout: Duration::from_secs(self.number("Timeout", 10, 1..=120)?),
            https_proxy: self.proxy()?,
            max_attempts: u32::try_from(self.number("MaxAttempts", 3, 1..=10)?).unwrap_or(3),
            prompt: self.prompt()?,
            audit_log_file: self.absolute_path("AuditLogFile")?.map(|(path, _)| path),
            portal,
            remedy: self.remedy()?,
            cache_directory: self
                .absolute_path("CacheDirectory")?
                .map_or_else(|| PathBuf::from("/run/pam_ticket"), |(path, _)| path),
            debug: false,
        })
    }

    /// FetchCredentialsThroughPVWA from this configuration, or else from the
    /// basic_psmpserver.conf that PSMPServerConfig names (where only that key is read).
    fn portal_mode(&self) -> Result<bool, ConfigError> {
        if self.get("FetchCredentialsThroughPVWA").is_some() {
            return self.yes_no("FetchCredentialsThroughPVWA", false);
        }
        let Some((path, origin)) = self.absolute_path("PSMPServerConfig")? else {
            return Ok(false);
        };
        let text = secure_file::read_text(&path, Readers::Anyone, true)
            .map_err(|problem| error(&origin, format!("cannot use PSMPServerConfig: {problem}")))?;
        let psmp = Settings {
            path: path.clone(),
            entries: parse_entries(&text, &path)?
                .into_iter()
                .filter(|entry| entry.key == "FetchCredentialsThroughPVWA")
                .map(|entry| (entry.key.clone(), entry))
                .collect(),
        };
        psmp.yes_no("FetchCredentialsThroughPVWA", false)
    }

    /// In portal mode the portal validates the ticket; the gateway's own ticket checks
    /// would never run. Switching one on there is refused rather than silently ignored,
    /// so that an admin never believes a check is in force when it is not.
    fn refuse_gateway_checks_in_portal_mode(&self) -> Result<(), ConfigError> {
        for switch in [
            "ValidateIncidentTicketState",
            "ValidateChangeTicketState",
            "ValidateApprovalStatus",
            "ValidateOperationTime",
            "ValidateRequestingUser",
        ] {
            if self.yes_no(switch, false)? {
                let origin = self
                    .get(switch)
                    .map_or_else(|| self.whole(), |entry| entry.origin.clone());
                return Err(error(
                    &origin,
                    format!(
                        "{switch} has no effect in portal mode (FetchCredentialsThroughPVWA=Yes): the portal validates the ticket; configure the check in the portal and remove it here"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn portal(&self) -> Result<PortalSettings, ConfigError> {
        let url = self.https_url("PortalURL")?.ok_or_else(|| {
            error(
                &self.whole(),
                "PortalURL is required when FetchCredentialsThroughPVWA is Yes",
            )
        })?;
        let auth_method = match self.get("PortalAuthMethod") {
            None => PortalAuthMethod::CyberArk,
            Some(entry) => match entry.value.trim() {
                "CyberArk" => PortalAuthMethod::CyberArk,
                "LDAP" => PortalAuthMethod::Ldap,
                "RADIUS" => PortalAuthMethod::Radius,
                other => {
                    return Err(error(
                        &entry.origin,
                        format!("PortalAuthMethod must be CyberArk, LDAP or RADIUS, not {other:?}"),
                    ));
                }
            },
        };
        let (account_path, account_origin) =
            self.absolute_path("PortalAccountFile")?.ok_or_else(|| {
                error(
                    &self.whole(),
                    "PortalAccountFile is required when FetchCredentialsThroughPVWA is Yes",
                )
            })?;
        let default_name = match self.get("TicketingSystem").map(|entry| entry.value.trim()) {
            Some("BMCRemedy") => "BMC Remedy",
            _ => "ServiceNow",
        };
        Ok(PortalSettings {
            url,
            auth_method,
            account: read_account_file(&account_path, &account_origin)?,
            ticketing_system_name: self
                .non_empty_string("PortalTicketingSystemName", default_name)?,
            reason_template: self.non_empty_string("PortalReason", "SSH connection by %u")?,
        })
    }

    fn remedy(&self) -> Result<RemedySettings, ConfigError> {
        Ok(RemedySettings {
            incident_form: self.non_empty_string("RemedyIncidentForm", "HPD:Help Desk")?,
            incident_id_field: self.non_empty_string("RemedyIncidentIDField", "Incident Number")?,
            incident_status_field: self.non_empty_string("RemedyIncidentStatusField", "Status")?,
            incident_requester_fields: self.list_or(
                "RemedyIncidentRequesterFields",
                &["Customer Login ID", "Submitter"],
            )?,
            change_form: self.non_empty_string("RemedyChangeForm", "CHG:Infrastructure Change")?,
            change_id_field: self
                .non_empty_string("RemedyChangeIDField", "Infrastructure Change ID")?,
            change_status_field: self
                .non_empty_string("RemedyChangeStatusField", "Change Request Status")?,
            change_approval_field: self
                .non_empty_string("RemedyChangeApprovalField", "Approval Status")?,
            change_start_field: self
                .non_empty_string("RemedyChangeStartField", "Scheduled Start Date")?,
            change_end_field: self
                .non_empty_string("RemedyChangeEndField", "Scheduled End Date")?,
            change_requester_fields: self.list_or(
                "RemedyChangeRequesterFields",
                &["Requested By", "Submitter"],
            )?,
            token_lifetime: Duration::from_secs(self.number(
                "RemedyTokenLifetime",
                3300,
                60..=86_400,
            )?),
        })
    }

    /// CAFile, or the first system bundle that exists, read and parsed here once: the
    /// roots that pass the checks are the ones the HTTPS client trusts.
    fn ca_bundle(&self) -> Result<Option<CaBundle>, ConfigError> {
        let (path, origin) = match self.absolute_path("CAFile")? {
            Some(configured) => configured,
            None => match trust::system_bundle() {
                Some(path) => (path, self.whole()),
                None => return Ok(None),
            },
        };
        trust::load(&path)
            .map(Some)
            .map_err(|problem| error(&origin, problem.to_string()))
    }

    fn bypass_codes(&self) -> Result<Vec<BypassHash>, ConfigError> {
        let Some(entry) = self.get("FailsafeBypassCode") else {
            return Ok(Vec::new());
        };
        split_list(&entry.value)
            .iter()
            .enumerate()
            .map(|(index, item)| {
                BypassHash::parse(item, index + 1).map_err(|problem| error(&entry.origin, problem))
            })
            .collect()
    }

    fn proxy(&self) -> Result<Option<ProxyUrl>, ConfigError> {
        let Some(entry) = self.get("HTTPSProxy") else {
            return Ok(None);
        };
        parse_proxy_url(entry.value.trim())
            .map(Some)
            .map_err(|problem| error(&entry.origin, format!("HTTPSProxy: {problem}")))
    }

    fn prompt(&self) -> Result<String, ConfigError> {
        let prompt = self.string("Prompt", "Ticket ID: ");
        if prompt.trim().is_empty() || prompt.chars().any(char::is_control) {
            let origin = self
                .get("Prompt")
                .map_or_else(|| self.whole(), |entry| entry.origin.clone());
            return Err(error(
                &origin,
                "Prompt must be non-empty text without control characters",
            ));
        }
        Ok(prompt)
    }
}

/// Splits a comma-separated list, trimming each item and dropping empty ones.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `https://host[:port][/prefix]`.
///
/// The URL is first parsed by the URI parser the HTTP client itself uses (`http::Uri`,
/// through ureq), so that a URL the client would refuse at request time (a space, a tab,
/// `<`, `>`, a backtick, e.g. a leftover `<instance>` placeholder) is a configuration
/// error here, never a request failure that could pass for an outage; characters RFC 3986
/// does not allow unencoded (`{`, `}`, `|`, `\`, `^`, `"`, non-ASCII) are refused too.
/// Beyond that, anything but https, user info, a query or a fragment is refused: the
/// module only ever sends credentials over verified TLS.
pub fn parse_https_url(raw: &str) -> Result<BaseUrl, String> {
    let raw = raw.trim();
    check_uri_syntax(raw)?;
    let Some(rest) = raw.strip_prefix("https://") else {
        return Err(format!("{raw:?} is not an https:// URL"));
    };
    if rest.contains(['?', '#', '@']) {
        return Err(format!(
            "{raw:?} must not contain a query, fragment or user info"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(authority, 443)?;
    let port_text = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    Ok(BaseUrl {
        base: format!("https://{host}{port_text}{path}"),
        host,
        port,
    })
}

/// Refuses a URL that the HTTP client's URI parser would refuse (`invalid uri
/// character`), naming the reason, and then, stricter than that parser, any character
/// RFC 3986 does not allow unencoded: the parser lets `"`, `{`, `}`, `|`, `\`, `^` and
/// non-ASCII text through in a path, which a server may read differently or refuse. The
/// scheme, host and port are checked by the callers' own rules.
fn check_uri_syntax(raw: &str) -> Result<(), String> {
    raw.parse::<ureq::http::Uri>().map_err(|uri_error| {
        format!(
            "{raw:?} is not a URL the HTTP client accepts ({uri_error}); is a placeholder \
             such as <instance> left over?"
        )
    })?;
    let bytes = raw.as_bytes();
    for (index, character) in raw.char_indices() {
        let allowed = character.is_ascii_alphanumeric()
            || "-._~:/?#[]@!$&'()*+,;=".contains(character)
            || (character == '%'
                && bytes.get(index + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(index + 2).is_some_and(u8::is_ascii_hexdigit));
        if !allowed {
            return Err(format!(
                "{raw:?} holds {character:?}, which a URL must not hold unencoded \
                 (percent-encode it; a % must start a %XX escape)"
            ));
        }
    }
    Ok(())
}

fn parse_proxy_url(raw: &str) -> Result<ProxyUrl, String> {
    check_uri_syntax(raw)?;
    let Some(authority) = raw.strip_prefix("http://") else {
        return Err(format!("{raw:?} must look like http://host:port"));
    };
    let authority = authority.trim_end_matches('/');
    if authority.contains(['/', '?', '#', '@']) || !authority.contains(':') {
        return Err(format!("{raw:?} must look like http://host:port"));
    }
    let (host, port) = split_host_port(authority, 0)?;
    Ok(ProxyUrl { host, port })
}

fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!("bad IPv6 address in {authority:?}"));
        };
        (format!("[{host}]"), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if !valid_host {
        return Err(format!("bad host name in {authority:?}"));
    }
    let port = match port {
        None => default_port,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("bad port in {authority:?}")),
        },
    };
    Ok((host, port))
}

/// Reads `Username="…"` and `Password="…"` from an account file, after checking that it is
/// a regular file owned by root that neither group nor others may read or write.
pub fn read_account_file(path: &Path, origin: &Origin) -> Result<Credentials, ConfigError> {
    let text = zeroize::Zeroizing::new(
        read_root_only_file(path).map_err(|problem| error(origin, problem))?,
    );
    parse_account_text(&text, path)
}

/// Username and Password from an account file's text. Errors name the line only: the
/// parser's usual messages quote the offending text, which here may be part of the
/// password, and they end up in syslog and the audit file.
fn parse_account_text(text: &str, path: &Path) -> Result<Credentials, ConfigError> {
    let entries = parse_entries(text, path).map_err(|problem| {
        error(
            &problem.origin,
            "not a Key=\"Value\" line (the text is not repeated because it may hold the password)",
        )
    })?;
    // Every value is wiped when dropped, on every way out of here; the password's buffer
    // is moved into its Secret, not copied.
    let entries: Vec<(String, Origin, zeroize::Zeroizing<String>)> = entries
        .into_iter()
        .map(|entry| {
            (
                entry.key,
                entry.origin,
                zeroize::Zeroizing::new(entry.value),
            )
        })
        .collect();
    let mut username = None;
    let mut password: Option<Secret> = None;
    for (key, origin, mut value) in entries {
        match key.as_str() {
            "Username" if username.is_none() => username = Some(value.to_string()),
            "Password" if password.is_none() => {
                password = Some(Secret::from_string(std::mem::take(&mut *value)));
            }
            "Username" | "Password" => {
                return Err(error(&origin, format!("{key} is set twice")));
            }
            _ => {
                return Err(error(
                    &origin,
                    "an account file holds only Username and Password",
                ));
            }
        }
    }
    let whole = Origin::Whole {
        path: path.to_path_buf(),
    };
    let username = username
        .filter(|name| !name.is_empty())
        .ok_or_else(|| error(&whole, "Username is missing"))?;
    let password = password
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| error(&whole, "Password is missing"))?;
    Ok(Credentials {
        username,
        password,
        source: path.to_path_buf(),
    })
}

/// Reads a secret file (an account file): see [`crate::secure_file`] for the policy.
pub fn read_root_only_file(path: &Path) -> Result<String, String> {
    secure_file::read_text(path, Readers::OwnerOnly, false)
}

/// Where a configuration error is written besides syslog: `AuditLogFile=` on the pam.d
/// line, which only root can change. Never the configuration file: a configuration that
/// failed its checks may have been written by whoever the checks keep out, and nothing in
/// it is used, not even to find the audit file. The arguments are scanned one by one, so
/// that another bad argument does not hide this one; given twice, or as a relative path,
/// it is not used and the error goes to syslog alone.
pub fn audit_file_from_arguments(arguments: &[String]) -> Option<PathBuf> {
    let mut given = arguments
        .iter()
        .filter_map(|argument| argument.split_once('='))
        .filter(|(name, _)| *name == "AuditLogFile")
        .map(|(_, value)| PathBuf::from(value.trim()));
    let path = given.next()?;
    if given.next().is_some() {
        return None;
    }
    path.is_absolute().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn entries(text: &str) -> Result<Vec<Entry>, ConfigError> {
        parse_entries(text, Path::new("/etc/test.conf"))
    }

    fn build(text: &str) -> Result<Config, ConfigError> {
        from_entries(Path::new("/etc/test.conf"), entries(text)?, Vec::new())
    }

    const MINIMAL: &str = "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n";

    #[test]
    fn parses_quoted_and_bare_values_with_escapes() {
        let parsed = entries(
            "# comment\n\nA=\"x \\\"y\\\" \\\\ z\"  # trailing\nB = plain value\nC=\"^INC\\d+$\"\n",
        )
        .expect("valid");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].value, "x \"y\" \\ z");
        assert_eq!(parsed[1].value, "plain value");
        assert_eq!(parsed[2].value, "^INC\\d+$");
        assert_eq!(parsed[2].origin.to_string(), "/etc/test.conf:5");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line, needle) in [
            ("A=\"open\n", 1, "closing quote"),
            ("\nnot a setting\n", 2, "expected Key"),
            ("A=\"x\" junk\n", 1, "after the closing quote"),
            ("1A=\"x\"\n", 1, "expected Key"),
        ] {
            let problem = entries(text).expect_err(text);
            assert_eq!(
                problem.origin.to_string(),
                format!("/etc/test.conf:{line}"),
                "{text}"
            );
            assert!(problem.problem.contains(needle), "{problem}");
        }
    }

    #[test]
    fn unknown_key_is_an_error_with_a_hint() {
        let problem =
            build(&format!("{MINIMAL}ValidateRequestngUser=\"Yes\"\n")).expect_err("typo");
        assert_eq!(
            problem.to_string(),
            "/etc/test.conf:3: unknown key ValidateRequestngUser (did you mean ValidateRequestingUser?)"
        );
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let problem = build(&format!("{MINIMAL}Timeout=5\nTimeout=6\n")).expect_err("duplicate");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:4");
        assert!(
            problem
                .problem
                .contains("set twice (first at /etc/test.conf:3)")
        );
    }

    #[test]
    fn bad_values_are_errors_at_their_line() {
        for (line, needle) in [
            ("EnterTicketingInfo=\"Maybe\"", "Yes or No"),
            ("Timeout=\"0\"", "whole number"),
            ("Timeout=\"ten\"", "whole number"),
            ("MaxAttempts=\"99\"", "whole number"),
            ("TicketFormatRegex=\"([\"", "not a valid regex"),
            ("FailMode=\"open\"", "secure or safe"),
            (
                "ValidateIncidentTicketState=\"Yes\"",
                "AllowedIncidentTicketStates is empty",
            ),
            ("HTTPSProxy=\"https://proxy:3128\"", "http://host:port"),
            ("FailsafeBypassCode=\"letmein\"", "sha256:"),
            ("AuditLogFile=\"relative.log\"", "absolute path"),
            (
                "AllowedApprovalStatuses=\"Approved\"",
                "ValidateApprovalStatus is not Yes",
            ),
        ] {
            let problem = build(&format!("{MINIMAL}{line}\n")).expect_err(line);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{line}");
            assert!(problem.problem.contains(needle), "{line}: {problem}");
        }
    }

    #[test]
    fn plain_bypass_code_is_never_echoed() {
        let problem =
            build(&format!("{MINIMAL}FailsafeBypassCode=\"letmein-secret\"\n")).expect_err("plain");
        assert!(!problem.to_string().contains("letmein-secret"), "{problem}");
    }

    #[test]
    fn http_system_url_is_refused() {
        let problem = build("TicketingSystem=ServiceNow\nSystemURL=\"http://sn.example.com\"\n")
            .expect_err("http");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:2");
        assert!(problem.problem.contains("not an https:// URL"));
    }

    #[test]
    fn https_urls_keep_port_and_prefix() {
        let url = parse_https_url("https://sn.example.com:8443/proxy/sn/").expect("valid");
        assert_eq!(url.base, "https://sn.example.com:8443/proxy/sn");
        assert_eq!(url.port, 8443);
        assert_eq!(
            url.join("/api/now/table/incident"),
            "https://sn.example.com:8443/proxy/sn/api/now/table/incident"
        );
        assert_eq!(
            parse_https_url("https://sn.example.com/")
                .expect("valid")
                .base,
            "https://sn.example.com"
        );
        assert!(parse_https_url("https://user:pw@sn.example.com").is_err());
        assert!(parse_https_url("https://sn.example.com:99999").is_err());
    }

    #[test]
    fn urls_the_client_would_refuse_or_servers_could_misread_are_errors() {
        for (raw, needle) in [
            (
                "https://<instance>.service-now.com",
                "invalid uri character",
            ),
            ("https://sn.example.com/<instance>", "invalid uri character"),
            ("https://sn.example.com/a`b", "invalid uri character"),
            ("https://sn.example.com/a\tb", "invalid uri character"),
            ("https://sn.example.com/a b", "invalid uri character"),
            ("https://sn.example.com/a>b", "invalid uri character"),
            ("https://sn.example.com/{x}", "'{', which"),
            ("https://sn.example.com/a|b", "'|', which"),
            ("https://sn.example.com/a\\b", "'\\\\', which"),
            ("https://sn.example.com/a^b", "'^', which"),
            ("https://sn.example.com/a\"b", "'\"', which"),
            ("https://sn.example.com/caf\u{e9}", "'\u{e9}', which"),
            ("https://sn.example.com/100%", "'%', which"),
            ("https://sn.example.com/a%zz", "'%', which"),
        ] {
            let problem = parse_https_url(raw).expect_err(raw);
            assert!(problem.contains(needle), "{raw:?}: {problem}");
        }
        let url = parse_https_url("https://sn.example.com/a%20b~c").expect("escapes are fine");
        assert_eq!(url.base, "https://sn.example.com/a%20b~c");
        for raw in [
            "http://proxy:3128/<x>",
            "http://pro xy:3128",
            "http://proxy\t:3128",
        ] {
            let problem = parse_proxy_url(raw).expect_err(raw);
            assert!(
                problem.contains("invalid uri character"),
                "{raw:?}: {problem}"
            );
        }
        let problem = build(&format!(
            "{MINIMAL}HTTPSProxy=\"http://proxy:3128/{{x}}\"\n"
        ))
        .expect_err("proxy");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:3");
        assert!(problem.problem.starts_with("HTTPSProxy: "), "{problem}");
    }

    #[test]
    fn a_bypass_code_on_the_pam_d_line_is_refused_without_echoing_it() {
        let arguments = [
            "config=/etc/x.conf".to_string(),
            "FailsafeBypassCode=sha256:00112233:4455".to_string(),
        ];
        let problem = parse_module_arguments(&arguments, "sshd").expect_err("refused");
        assert!(
            problem.to_string().starts_with(
                "pam.d/sshd argument 2: FailsafeBypassCode must not be a module argument"
            ),
            "{problem}"
        );
        assert!(!problem.to_string().contains("4455"), "{problem}");
    }

    #[test]
    fn the_audit_file_for_configuration_errors_comes_from_the_pam_d_line_only() {
        let arguments = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            audit_file_from_arguments(&arguments(&[
                "config=/etc/x.conf",
                "AuditLogFile=/var/log/a"
            ])),
            Some(PathBuf::from("/var/log/a"))
        );
        // The configuration file is never read for it.
        assert_eq!(
            audit_file_from_arguments(&arguments(&["config=/etc/x.conf"])),
            None
        );
        assert_eq!(
            audit_file_from_arguments(&arguments(&["AuditLogFile=relative.log"])),
            None
        );
        assert_eq!(
            audit_file_from_arguments(&arguments(&["AuditLogFile=/a", "AuditLogFile=/b"])),
            None
        );
        assert_eq!(
            audit_file_from_arguments(&arguments(&["nodebug", "AuditLogFile=/var/log/a"])),
            Some(PathBuf::from("/var/log/a"))
        );
    }

    #[test]
    fn module_arguments_override_the_file_and_are_strict() {
        let args: Vec<String> = [
            "config=/etc/x.conf",
            "debug",
            "MaxAttempts=5",
            "ValidateIncidentTicketState=Yes",
            "AllowedIncidentTicketStates=New,In Progress",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let parsed = parse_module_arguments(&args, "sshd").expect("valid");
        assert_eq!(parsed.config_path, Some(PathBuf::from("/etc/x.conf")));
        assert!(parsed.debug);
        let config = from_entries(
            Path::new("/etc/x.conf"),
            entries(&format!("{MINIMAL}MaxAttempts=2\n")).expect("ok"),
            parsed.overrides,
        )
        .expect("valid");
        assert_eq!(config.max_attempts, 5);

        let problem =
            parse_module_arguments(&["nodebug".to_string()], "sshd").expect_err("unknown");
        assert_eq!(
            problem.to_string(),
            "pam.d/sshd argument 1: unknown module argument \"nodebug\""
        );
        let parsed =
            parse_module_arguments(&["Timout=3".to_string()], "sshd").expect("shape is fine");
        let problem = from_entries(
            Path::new("/etc/x.conf"),
            entries(MINIMAL).expect("ok"),
            parsed.overrides,
        )
        .expect_err("unknown key");
        assert!(
            problem
                .to_string()
                .starts_with("pam.d/sshd argument 1: unknown key Timout")
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = build(MINIMAL).expect("valid");
        assert!(config.enter_ticketing_info);
        assert_eq!(config.fail_mode, FailMode::Secure);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.prompt, "Ticket ID: ");
        assert!(config.incident_identification.is_match("INC0010001"));
        assert!(config.change_identification.is_match("CHG0030001"));
        assert!(config.allowed_incident_states.is_none());
        let remedy = build("TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n").expect("valid");
        assert!(remedy.incident_identification.is_match("INC000000000701"));
        assert!(!remedy.incident_identification.is_match("INC0010001"));
    }

    #[test]
    fn gateway_checks_are_refused_in_portal_mode() {
        let problem = build("FetchCredentialsThroughPVWA=Yes\nValidateRequestingUser=Yes\n")
            .expect_err("portal");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:2");
        assert!(
            problem
                .problem
                .starts_with("ValidateRequestingUser has no effect in portal mode"),
            "{problem}"
        );
    }

    #[test]
    fn direct_mode_needs_url_and_account() {
        let problem = build("TicketingSystem=ServiceNow\n").expect_err("no url");
        assert_eq!(problem.to_string(), "/etc/test.conf: SystemURL is required");
        let problem = build("TicketingSystem=ServiceNow\nSystemURL=https://sn.example.com\n")
            .expect_err("no account");
        assert!(
            problem
                .problem
                .contains("ConnectionAccountFile is required")
        );
    }

    #[test]
    fn account_file_errors_never_quote_the_text() {
        for text in [
            "Username=\"svc\"\nPassword=\"hun\"ter2\"\n",
            "Password \"hunter2\n",
            "hunter2=\"x\"\n",
        ] {
            let problem = parse_account_text(text, Path::new("/etc/acct")).expect_err(text);
            assert!(!problem.to_string().contains("ter2"), "{problem}");
            assert!(problem.to_string().starts_with("/etc/acct:"), "{problem}");
        }
    }

    #[test]
    fn account_file_must_be_root_only() {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_config_test_{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("account");
        let mut file = fs::File::create(&path).expect("create");
        file.write_all(b"Username=\"svc\"\nPassword=\"s3cret\"\n")
            .expect("write");
        let origin = Origin::Whole { path: path.clone() };
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let problem = read_account_file(&path, &origin).expect_err("loose mode");
        assert!(problem.problem.contains("mode is 0644"), "{problem}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        // The tests run as root (CI does); as another user the owner check refuses instead.
        match read_account_file(&path, &origin) {
            Ok(credentials) => {
                assert_eq!(credentials.username, "svc");
                assert_eq!(credentials.password.as_str(), Some("s3cret"));
            }
            Err(problem) => assert!(problem.problem.contains("owned by root")),
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
