//! The configuration: a `Key="Value"` file in the style of PSM for SSH's
//! basic_psmpserver.conf, overridden per pam.d line by `Key=Value` module arguments, turned
//! into a typed [`Config`].
//!
//! Parsing is strict on purpose: an unknown or duplicate key, a bad value, a regex that does
//! not compile, a plain-http URL, or a Validate* switch without its Allowed* list is an error
//! that names file:line. A typo must never quietly switch a check off.

//!
//! The files, one concern each:
//! - `syntax`: `Key="Value"` lines, where each came from, and the error that names it;
//! - `arguments`: the pam.d line (`config=`, `debug`, `Key=Value` overrides);
//! - `keys`: the one table of keys (name, default, modes, pam.d or not, description);
//! - `settings`: unknown and duplicate keys refused, typed accessors keyed by the table;
//! - `build`: the typed [`Config`], built key by key through those accessors;
//! - `kinds`: the ticket types accepted (TicketTypes), their keys, the CI check;
//! - `audit_trail`: the work-note and reason keys, read for `build`;
//! - `account`: the root-only account files.

mod account;
mod arguments;
mod audit_trail;
mod build;
mod keys;
mod kinds;
mod people;
mod settings;
mod syntax;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use crate::bypass::BypassHash;
use crate::client_cert::ClientIdentity;
use crate::secure_file::{self, Readers};
use crate::ticket::TicketKind;
use crate::trust::CaBundle;

pub use account::{
    Credentials, OAuthClient, ServiceNowAccount, parse_account_text,
    parse_service_now_account_text, read_account_file, read_root_only_file,
    read_service_now_account,
};
pub use arguments::{
    ModuleArguments, audit_file_from_arguments, parse_module_arguments,
    parse_module_arguments_reporting_all,
};
pub use keys::{Argument, DefaultValue, KEYS, Key, KeySpec, KindKeys, Mode, Modes, kind_keys};
pub use people::{
    GroupName, People, UserMap, UserMatchField, UserRole, breaks_encoded_query, parse_user_map,
};
pub use settings::from_entries;
use syntax::parse_entries_reporting;
pub use syntax::{ConfigError, Entry, Origin, parse_entries, split_list};
// The URL types live in their own leaf module, shared with the HTTP client; named here too
// because the backends and admin tools know them as part of the configuration.
pub use crate::url::{BaseUrl, ProxyUrl, parse_https_url};

use syntax::error;

/// Where the module looks for its configuration unless `config=PATH` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/security/pam_ticket.conf";

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

/// How the module signs in to ServiceNow (AuthMethod).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP basic authentication with Username and Password on every request.
    Basic,
    /// An OAuth 2.0 access token from `POST /oauth_token.do` with
    /// `grant_type=client_credentials` (ClientID and ClientSecret only).
    OAuthClientCredentials,
    /// An OAuth 2.0 access token from `POST /oauth_token.do` with `grant_type=password`
    /// (ClientID, ClientSecret, Username and Password), renewed with its refresh token.
    OAuthPassword,
}

impl AuthMethod {
    /// The value written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::OAuthClientCredentials => "oauth-client-credentials",
            AuthMethod::OAuthPassword => "oauth-password",
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

/// How the gateway user logs on to the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalAuthMethod {
    CyberArk,
    Ldap,
    Radius,
    /// Privilege Cloud: a bearer token from the Identity tenant's
    /// `POST /oauth2/platformtoken` (IdentityURL), no PVWA logon and no logoff.
    PlatformToken,
}

impl PortalAuthMethod {
    /// The value as written in the configuration; for the PVWA logons also the path
    /// segment of the portal's logon endpoint (`/API/auth/{segment}/Logon/`).
    pub fn path_segment(self) -> &'static str {
        match self {
            PortalAuthMethod::CyberArk => "CyberArk",
            PortalAuthMethod::Ldap => "LDAP",
            PortalAuthMethod::Radius => "RADIUS",
            PortalAuthMethod::PlatformToken => "PlatformToken",
        }
    }
}

/// Settings for portal mode (FetchCredentialsThroughPVWA=Yes).
#[derive(Clone, Debug)]
pub struct PortalSettings {
    pub url: BaseUrl,
    pub auth_method: PortalAuthMethod,
    /// The Identity tenant that issues platform tokens: set exactly when `auth_method`
    /// is [`PortalAuthMethod::PlatformToken`].
    pub identity_url: Option<BaseUrl>,
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
    /// The field that names an incident's configuration item.
    pub incident_ci_field: String,
    /// The field that names a change's configuration item.
    pub change_ci_field: String,
    pub work_order_form: String,
    pub work_order_id_field: String,
    pub work_order_status_field: String,
    pub work_order_requester_fields: Vec<String>,
    pub problem_investigation_form: String,
    pub problem_investigation_id_field: String,
    pub problem_investigation_status_field: String,
    pub problem_investigation_requester_fields: Vec<String>,
    /// The assignee and assignment group fields, and where group membership is read.
    pub people: RemedyPeople,
    pub token_lifetime: Duration,
    /// Where work notes go: a work-log form and the field that names the ticket, per kind.
    pub incident_work_log_form: String,
    pub incident_work_log_id_field: String,
    pub change_work_log_form: String,
    pub change_work_log_id_field: String,
    /// The change form's entry ID field, which the change work log names its change by.
    pub change_entry_id_field: String,
    /// Whether a change lookup reads `change_entry_id_field` too (WorkNotes=Yes).
    pub read_change_entry_id: bool,
}

/// Remedy's fields for AllowedUserRoles' assignee and assignment_group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemedyPeople {
    pub incident_assignee_field: String,
    pub incident_group_field: String,
    pub change_assignee_field: String,
    pub change_group_field: String,
    pub support_group_form: String,
    pub support_group_login_field: String,
    pub support_group_id_field: String,
    /// The relations AllowedUserRoles checks, so that a query fetches the fields of
    /// those relations only (and nothing more when the check is off).
    pub roles: Vec<UserRole>,
}

/// The fields of a ticket that name its people, for one kind of ticket: one mapping that
/// the query (which fields to fetch) and the reader of the answer both use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonFields<'a> {
    /// Any of these names the requester.
    pub requesters: Vec<&'a str>,
    pub assignee: &'a str,
    pub group: &'a str,
}

impl<'a> PersonFields<'a> {
    /// The fields to fetch for the relations `roles` checks: the requesters always (the
    /// requester check is the default), the assignee and the group only when asked for.
    pub fn wanted(&self, roles: &[UserRole]) -> Vec<&'a str> {
        let mut fields = self.requesters.clone();
        if roles.contains(&UserRole::Assignee) {
            fields.push(self.assignee);
        }
        if roles.contains(&UserRole::AssignmentGroup) {
            fields.push(self.group);
        }
        fields
    }
}

impl RemedySettings {
    /// The person fields of a ticket of this kind on its form.
    pub fn person_fields(&self, kind: crate::ticket::TicketKind) -> PersonFields<'_> {
        use crate::ticket::TicketKind;
        let (requesters, assignee, group) = match kind {
            TicketKind::Incident => (
                &self.incident_requester_fields,
                &self.people.incident_assignee_field,
                &self.people.incident_group_field,
            ),
            TicketKind::Change => (
                &self.change_requester_fields,
                &self.people.change_assignee_field,
                &self.people.change_group_field,
            ),
            // Work orders carry the change form's assignment fields, problem
            // investigations the incident form's (unconfirmed: docs/remedy.md).
            TicketKind::WorkOrder => (
                &self.work_order_requester_fields,
                &self.people.change_assignee_field,
                &self.people.change_group_field,
            ),
            TicketKind::ProblemInvestigation => (
                &self.problem_investigation_requester_fields,
                &self.people.incident_assignee_field,
                &self.people.incident_group_field,
            ),
            // Not Remedy types: form_spec refuses them before any query is built.
            TicketKind::RequestItem | TicketKind::CatalogTask | TicketKind::Problem => {
                return PersonFields {
                    requesters: Vec::new(),
                    assignee: &self.people.incident_assignee_field,
                    group: &self.people.incident_group_field,
                };
            }
        };
        PersonFields {
            requesters: requesters.iter().map(String::as_str).collect(),
            assignee,
            group,
        }
    }
}

/// ValidateConfigurationItem=Yes: what the ticket's configuration item must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CiCheck {
    /// TargetName; `None` means this gateway's canonical FQDN and `gethostname()`.
    pub target_name: Option<String>,
    /// CIMatchShortName: the first labels may match too.
    pub match_short_name: bool,
}

/// The validated configuration the login flow runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file the configuration came from.
    pub source: PathBuf,
    /// `None` only in portal mode, where the gateway never talks to the ticketing system.
    pub ticketing_system: Option<TicketingSystem>,
    pub system_url: Option<BaseUrl>,
    /// The user of ConnectionAccountFile: for Remedy, and for ServiceNow with
    /// AuthMethod basic or oauth-password; `None` with oauth-client-credentials.
    pub connection_account: Option<Credentials>,
    /// How the module signs in to ServiceNow; always basic for the other systems.
    pub auth_method: AuthMethod,
    /// The OAuth client of ConnectionAccountFile (ServiceNow with an OAuth AuthMethod).
    pub oauth_client: Option<OAuthClient>,
    /// The CA bundle to trust, read and checked once when the configuration loaded;
    /// `None` when CAFile is not set and no system bundle exists either (an error when
    /// the ticket source is set up, reported as such).
    pub ca_bundle: Option<CaBundle>,
    /// The certificate and key sent on every TLS connection (ClientCertificateFile and
    /// ClientKeyFile), read and checked against each other when the configuration loaded.
    pub client_identity: Option<ClientIdentity>,
    pub enter_ticketing_info: bool,
    pub validate_ticket_number: bool,
    /// UppercaseTicketId: an answer is upper-cased before the ID rules, because the
    /// system's IDs are upper case (`inc0042001` is INC0042001).
    pub uppercase_ticket_id: bool,
    pub ticket_format: Option<Regex>,
    /// The identification regex of each ticket type accepted (those of the mode that
    /// TicketTypes lists; in portal mode the portal's two), in [`TicketKind::ORDER`]: the
    /// first that matches an ID decides its type, and an ID that matches none is refused.
    pub identification: Vec<(TicketKind, Regex)>,
    /// The allowed states of each type whose state is checked (Validate<T>TicketState).
    pub allowed_states: BTreeMap<TicketKind, Vec<String>>,
    /// The allowed approvals of each type whose approval is checked
    /// (ValidateApprovalStatus for changes, ValidateRequestItemApprovalStatus).
    pub allowed_approvals: BTreeMap<TicketKind, Vec<String>>,
    /// `Some` when ValidateConfigurationItem is Yes.
    pub ci_check: Option<CiCheck>,
    pub validate_operation_time: bool,
    pub validate_requesting_user: bool,
    /// Who is asked, who they are in the ticketing system, which relations let them in.
    pub people: People,
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
    /// WorkNotes=Yes: the notes' settings.
    pub work_notes: Option<crate::notes::NoteSettings>,
    /// AskReason=Yes: the ReasonPrompt.
    pub reason_prompt: Option<String>,
    pub debug: bool,
}

impl Config {
    /// The states that pass for tickets of `kind`, when their state is checked.
    pub fn allowed_states(&self, kind: TicketKind) -> Option<&[String]> {
        self.allowed_states.get(&kind).map(Vec::as_slice)
    }

    /// The approvals that pass for tickets of `kind`, when their approval is checked.
    pub fn allowed_approvals(&self, kind: TicketKind) -> Option<&[String]> {
        self.allowed_approvals.get(&kind).map(Vec::as_slice)
    }

    /// The ticket types accepted, in [`TicketKind::ORDER`].
    pub fn ticket_types(&self) -> Vec<TicketKind> {
        self.identification.iter().map(|(kind, _)| *kind).collect()
    }

    /// The identification regex of `kind`, when the type is accepted.
    pub fn identification_of(&self, kind: TicketKind) -> Option<&Regex> {
        self.identification
            .iter()
            .find(|(known, _)| *known == kind)
            .map(|(_, regex)| regex)
    }

    /// The mode the module runs in, which decides the keys that have an effect (see
    /// [`KEYS`]): portal mode, else the ticketing system asked directly (which a direct
    /// configuration always names).
    pub fn mode(&self) -> Mode {
        match (&self.portal, self.ticketing_system) {
            (Some(_), _) => Mode::Portal,
            (None, Some(TicketingSystem::BmcRemedy)) => Mode::Remedy,
            (None, Some(TicketingSystem::ServiceNow) | None) => Mode::ServiceNow,
        }
    }
}

/// Reads the configuration file named by the arguments (or the default), applies the
/// overrides and validates the result. Stops at the first problem, which is the error.
pub fn load(arguments: &ModuleArguments) -> Result<Config, ConfigError> {
    load_with(arguments, true).map_err(|problems| {
        problems.into_iter().next().unwrap_or_else(|| ConfigError {
            origin: Origin::Whole {
                path: config_path(arguments),
            },
            problem: "internal error: the configuration was refused without a reason".to_string(),
        })
    })
}

/// [`load`], going on after a problem: every problem it finds, in the order the module
/// would meet them (for `pam-ticket check`). Problems that follow from an earlier one (a
/// key reported missing because its line was refused) are left out.
pub fn load_reporting_all(arguments: &ModuleArguments) -> Result<Config, Vec<ConfigError>> {
    load_with(arguments, false)
}

fn config_path(arguments: &ModuleArguments) -> PathBuf {
    arguments
        .config_path
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

fn load_with(arguments: &ModuleArguments, stop_at_first: bool) -> Result<Config, Vec<ConfigError>> {
    let path = config_path(arguments);
    // Others may read the configuration, but never change it: it decides whether and
    // how tickets are checked. When it holds bypass code hashes, it is a secret (see
    // `check_bypass_file_mode`).
    let (text, metadata) = secure_file::read_text_with_metadata(&path, Readers::Anyone, true)
        .map_err(|problem| {
            vec![error(
                &Origin::Whole { path: path.clone() },
                format!("cannot use the configuration: {problem}"),
            )]
        })?;
    let mut problems = Vec::new();
    let file_entries = parse_entries_reporting(&text, &path, &mut problems, stop_at_first);
    // The module stops at the first problem; check goes on.
    let go_on = !stop_at_first || problems.is_empty();
    if go_on && let Err(problem) = check_bypass_file_mode(&path, &metadata, &file_entries) {
        problems.push(problem);
    }
    let mut config = settings::from_entries_reporting(
        &path,
        file_entries,
        arguments.overrides.clone(),
        problems,
        stop_at_first,
    )?;
    config.debug = arguments.debug;
    Ok(config)
}

/// Bypass code hashes are one fast SHA-256 each: anyone who can read them can try
/// guesses offline. A configuration that holds them must be readable by root only.
///
/// `metadata` is that of the file that was opened and read, never of the path stated
/// again: the path may by then name another file (a link moved between the read and the
/// check), and the rule is about the file whose hashes are used.
fn check_bypass_file_mode(
    path: &Path,
    metadata: &fs::Metadata,
    entries: &[Entry],
) -> Result<(), ConfigError> {
    let Some(entry) = entries
        .iter()
        .find(|entry| entry.key == Key::FailsafeBypassCode.name())
    else {
        return Ok(());
    };
    secure_file::check(path, metadata, Readers::OwnerOnly).map_err(|problem| {
        error(
            &entry.origin,
            format!("FailsafeBypassCode is set here, so {problem}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The 0600 rule for bypass hashes is decided on the metadata of the file that was
    /// read. Here the path names a 0600 file while the file read (through a link that was
    /// then moved) was 0644: the file read is what counts, so the hashes are refused.
    #[test]
    fn the_bypass_rule_checks_the_file_that_was_read() {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_bypass_mode_{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        let text = "FailsafeBypassCode=\"sha256:00:11\"\n";
        let (loose, strict, path) = (
            dir.join("loose.conf"),
            dir.join("strict.conf"),
            dir.join("pam_ticket.conf"),
        );
        for (file, mode) in [(&loose, 0o644), (&strict, 0o600)] {
            fs::write(file, text).expect("write");
            fs::set_permissions(file, fs::Permissions::from_mode(mode)).expect("chmod");
        }
        std::os::unix::fs::symlink(&loose, &path).expect("symlink");
        let (read, metadata) =
            secure_file::read_text_with_metadata(&path, Readers::Anyone, true).expect("read");
        let entries = parse_entries(&read, &path).expect("parsed");
        // Swapped after the read: the path now names the 0600 file.
        fs::remove_file(&path).expect("unlink");
        std::os::unix::fs::symlink(&strict, &path).expect("symlink");
        let refused = check_bypass_file_mode(&path, &metadata, &entries);
        assert!(
            matches!(&refused, Err(problem) if problem.to_string().contains("mode is 0644")),
            "{refused:?}"
        );
        // The 0600 file, read as such, passes.
        let (_, metadata) =
            secure_file::read_text_with_metadata(&path, Readers::Anyone, true).expect("read");
        assert!(check_bypass_file_mode(&path, &metadata, &entries).is_ok());
        let _ = fs::remove_dir_all(&dir);
    }
}
