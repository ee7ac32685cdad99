//! The one table of configuration keys: name, default, the systems or modes it is for,
//! whether the pam.d line may set it, and what it does.
//!
//! Everything that knows a key reads it from here: the unknown-key check and its "did you
//! mean" hint, the module-argument check, the typed accessors of [`super::settings`]
//! (which take a [`Key`], never a string, and take their defaults from this table),
//! `pam-ticket check`'s dump, and the test that holds pam_ticket.conf(5) to the table.
//! A key read by the code but missing here does not compile; a key listed here but never
//! read fails `build::tests::every_key_in_the_table_is_read_in_each_mode_it_is_for`.

use std::fmt;

use super::syntax::{ConfigError, Entry, Origin, error};
use crate::config::TicketingSystem;
use crate::ticket::TicketKind;

/// A key's value when the configuration does not set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// No default: the key must be set where its description says.
    Required,
    /// Not set means what the text says (a check off, nothing used).
    Unset(&'static str),
    /// A Yes/No switch.
    Flag(bool),
    /// A whole number, and the range a set value must lie in.
    Number {
        default: u64,
        min: u64,
        max: u64,
    },
    Text(&'static str),
    /// A comma-separated list.
    List(&'static [&'static str]),
    /// A text that depends on TicketingSystem (ServiceNow also when it is not set).
    PerSystem {
        service_now: &'static str,
        remedy: &'static str,
    },
}

impl DefaultValue {
    /// The default text for `system`, for the kinds that have one.
    pub fn text(self, system: Option<TicketingSystem>) -> Option<&'static str> {
        match self {
            DefaultValue::Text(text) => Some(text),
            DefaultValue::PerSystem {
                service_now,
                remedy,
            } => Some(match system {
                Some(TicketingSystem::BmcRemedy) => remedy,
                Some(TicketingSystem::ServiceNow) | None => service_now,
            }),
            DefaultValue::Required
            | DefaultValue::Unset(_)
            | DefaultValue::Flag(_)
            | DefaultValue::Number { .. }
            | DefaultValue::List(_) => None,
        }
    }
}

/// The ways the module can run: against ServiceNow or BMC Remedy directly, or through a
/// portal (FetchCredentialsThroughPVWA=Yes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    ServiceNow,
    Remedy,
    Portal,
}

/// The modes a key has an effect in. Outside them it is still parsed and checked; a
/// Yes/No switch that is not for portal mode is refused there when set to Yes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    pub service_now: bool,
    pub remedy: bool,
    pub portal: bool,
}

impl Modes {
    pub const ALL: Modes = Modes {
        service_now: true,
        remedy: true,
        portal: true,
    };
    /// The gateway asks the ticketing system itself.
    pub const DIRECT: Modes = Modes {
        service_now: true,
        remedy: true,
        portal: false,
    };
    pub const REMEDY: Modes = Modes {
        service_now: false,
        remedy: true,
        portal: false,
    };
    pub const SERVICE_NOW: Modes = Modes {
        service_now: true,
        remedy: false,
        portal: false,
    };
    pub const PORTAL: Modes = Modes {
        service_now: false,
        remedy: false,
        portal: true,
    };

    pub fn allows(self, mode: Mode) -> bool {
        match mode {
            Mode::ServiceNow => self.service_now,
            Mode::Remedy => self.remedy,
            Mode::Portal => self.portal,
        }
    }
}

impl fmt::Display for Modes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.service_now, "ServiceNow"),
            (self.remedy, "BMCRemedy"),
            (self.portal, "portal"),
        ]
        .into_iter()
        .filter_map(|(allowed, name)| allowed.then_some(name))
        .collect();
        f.write_str(&names.join(", "))
    }
}

/// Whether a key may be given as `Key=Value` on the pam.d line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argument {
    Allowed,
    /// Refused there, for the reason given (said in the error).
    Refused(&'static str),
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub key: Key,
    pub name: &'static str,
    pub default: DefaultValue,
    pub modes: Modes,
    pub argument: Argument,
    /// One line: what the key does.
    pub about: &'static str,
}

/// Declares [`Key`] and [`KEYS`] from one list, so that the two cannot disagree: the
/// variant is the key's name, and `KEYS[key as usize]` is its row.
macro_rules! key_table {
    ($($key:ident: $default:expr, $modes:expr, $argument:expr, $about:literal;)*) => {
        /// A configuration key. Its name in the file is the variant's name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Key {
            $($key,)*
        }

        /// Every key the module knows, in the order `pam-ticket check` shows them.
        /// Anything else is an error.
        pub const KEYS: &[KeySpec] = &[$(KeySpec {
            key: Key::$key,
            name: stringify!($key),
            default: $default,
            modes: $modes,
            argument: $argument,
            about: $about,
        },)*];
    };
}

use Argument::Allowed;
use DefaultValue::{Flag, List, Number, PerSystem, Required, Text, Unset};

key_table! {
    TicketingSystem: Required, Modes::ALL, Allowed,
        "ServiceNow or BMCRemedy; required except in portal mode";
    SystemURL: Required, Modes::DIRECT, Allowed,
        "https base URL of the ticketing system's API; required when ValidateTicketNumber=Yes";
    ConnectionAccountFile: Required, Modes::DIRECT, Allowed,
        "root-only file with the Username and Password (and for OAuth the ClientID and ClientSecret) the module queries with";
    AuthMethod: Text("basic"), Modes::SERVICE_NOW, Allowed,
        "ServiceNow: basic, oauth-client-credentials or oauth-password (a token from /oauth_token.do)";
    CAFile: Unset("the first system CA bundle that exists"), Modes::ALL, Allowed,
        "PEM bundle of the CAs trusted for the ticketing system and the portal";
    ClientCertificateFile: Unset("no client certificate"), Modes::ALL, Allowed,
        "PEM client certificate (and chain) sent on every TLS connection; needs ClientKeyFile";
    ClientKeyFile: Unset("no client certificate"), Modes::ALL, Allowed,
        "root-only PEM private key of ClientCertificateFile (unencrypted)";
    EnterTicketingInfo: Flag(true), Modes::ALL, Allowed,
        "Yes: ask for a ticket; No: return PAM_IGNORE without asking";
    ValidateTicketNumber: Flag(true), Modes::ALL, Allowed,
        "Yes: look the ticket up; No: check the ID's form only";
    UppercaseTicketId: Flag(true), Modes::ALL, Allowed,
        "Yes: an answer is upper-cased before the ID rules (the system's IDs are upper case)";
    TicketFormatRegex: Unset("no format check"), Modes::ALL, Allowed,
        "regular expression the whole ticket ID must match";
    TicketTypes: List(&["Incident", "Change"]), Modes::DIRECT, Allowed,
        "the ticket types accepted (Incident, Change, RequestItem, CatalogTask, Problem, WorkOrder, ProblemInvestigation): an ID of any other type is refused before any request";
    IncidentTicketIdentification:
        PerSystem { service_now: "^INC[0-9]+$", remedy: "^INC[0-9]{12}$" }, Modes::ALL, Allowed,
        "regular expression that makes an ID an incident";
    ChangeTicketIdentification:
        PerSystem { service_now: "^CHG[0-9]+$", remedy: "^CRQ[0-9]{12}$" }, Modes::ALL, Allowed,
        "regular expression that makes an ID a change";
    ValidateIncidentTicketState: Flag(false), Modes::DIRECT, Allowed,
        "check an incident's state against AllowedIncidentTicketStates";
    AllowedIncidentTicketStates: Unset("none"), Modes::DIRECT, Allowed,
        "the incident states that pass";
    ValidateChangeTicketState: Flag(false), Modes::DIRECT, Allowed,
        "check a change's state against AllowedChangeTicketStates";
    AllowedChangeTicketStates: Unset("none"), Modes::DIRECT, Allowed,
        "the change states that pass";
    ValidateApprovalStatus: Flag(false), Modes::DIRECT, Allowed,
        "check a change's approval against AllowedApprovalStatuses";
    AllowedApprovalStatuses: Unset("none"), Modes::DIRECT, Allowed,
        "the approval statuses that pass";
    ValidateOperationTime: Flag(false), Modes::DIRECT, Allowed,
        "a change passes only between its planned start and end";
    ValidateRequestingUser: Flag(false), Modes::DIRECT, Allowed,
        "the ticket's requester (or another relation of AllowedUserRoles) must be the person logging in";
    AllowedUserRoles: List(&["requester"]), Modes::DIRECT, Allowed,
        "relations to the ticket that let a person in (any one): requester, assignee, assignment_group; needs ValidateRequestingUser=Yes";
    Groups: Unset("everyone is asked"), Modes::DIRECT, Allowed,
        "only members of these groups (NSS, primary group included) are asked; others get PAM_IGNORE";
    ExemptGroups: Unset("none"), Modes::DIRECT, Allowed,
        "members of these groups are never asked (PAM_IGNORE, audited as exempt); beats Groups";
    ExemptUsers: Unset("none"), Modes::DIRECT, Allowed,
        "these logins are never asked (PAM_IGNORE, audited as exempt); beats Groups";
    UserMatchField: Text("user_name"), Modes::SERVICE_NOW, Allowed,
        "the sys_user field the person is matched on: user_name, email or employee_number";
    UserMatchDomain: Unset("none"), Modes::SERVICE_NOW, Allowed,
        "with UserMatchField=email, @domain appended to the login to make the address";
    UserMapFile: Unset("none"), Modes::DIRECT, Allowed,
        "root-only file of `login = itsm-identity` lines: who a login is in the ticketing system";
    RequestItemTicketIdentification: Text("^RITM[0-9]{7,}$"), Modes::SERVICE_NOW, Allowed,
        "regular expression that makes an ID a requested item (sc_req_item)";
    ValidateRequestItemTicketState: Flag(false), Modes::SERVICE_NOW, Allowed,
        "check a requested item's state against AllowedRequestItemTicketStates";
    AllowedRequestItemTicketStates: Unset("none"), Modes::SERVICE_NOW, Allowed,
        "the requested item states that pass";
    ValidateRequestItemApprovalStatus: Flag(false), Modes::SERVICE_NOW, Allowed,
        "check a requested item's approval against AllowedRequestItemApprovalStatuses";
    AllowedRequestItemApprovalStatuses: Unset("none"), Modes::SERVICE_NOW, Allowed,
        "the requested item approval statuses that pass";
    CatalogTaskTicketIdentification: Text("^SCTASK[0-9]{7,}$"), Modes::SERVICE_NOW, Allowed,
        "regular expression that makes an ID a catalog task (sc_task)";
    ValidateCatalogTaskTicketState: Flag(false), Modes::SERVICE_NOW, Allowed,
        "check a catalog task's state against AllowedCatalogTaskTicketStates";
    AllowedCatalogTaskTicketStates: Unset("none"), Modes::SERVICE_NOW, Allowed,
        "the catalog task states that pass";
    ProblemTicketIdentification: Text("^PRB[0-9]{7,}$"), Modes::SERVICE_NOW, Allowed,
        "regular expression that makes an ID a problem (problem)";
    ValidateProblemTicketState: Flag(false), Modes::SERVICE_NOW, Allowed,
        "check a problem's state against AllowedProblemTicketStates";
    AllowedProblemTicketStates: Unset("none"), Modes::SERVICE_NOW, Allowed,
        "the problem states that pass";
    WorkOrderTicketIdentification: Text("^WO[0-9]{13}$"), Modes::REMEDY, Allowed,
        "regular expression that makes an ID a work order (WOI:WorkOrder)";
    ValidateWorkOrderTicketState: Flag(false), Modes::REMEDY, Allowed,
        "check a work order's status against AllowedWorkOrderTicketStates";
    AllowedWorkOrderTicketStates: Unset("none"), Modes::REMEDY, Allowed,
        "the work order statuses that pass";
    ProblemInvestigationTicketIdentification: Text("^PBI[0-9]{12}$"), Modes::REMEDY, Allowed,
        "regular expression that makes an ID a problem investigation (PBM:Problem Investigation)";
    ValidateProblemInvestigationTicketState: Flag(false), Modes::REMEDY, Allowed,
        "check a problem investigation's status against AllowedProblemInvestigationTicketStates";
    AllowedProblemInvestigationTicketStates: Unset("none"), Modes::REMEDY, Allowed,
        "the problem investigation statuses that pass";
    ValidateConfigurationItem: Flag(false), Modes::DIRECT, Allowed,
        "the ticket's configuration item must be this gateway (or TargetName)";
    TargetName: Unset("this gateway's canonical FQDN and gethostname()"), Modes::DIRECT, Allowed,
        "the name the ticket's configuration item must match, instead of this gateway's own";
    CIMatchShortName: Flag(false), Modes::DIRECT, Allowed,
        "Yes: the first labels of the CI's name and of the target may also match";
    FailsafeBypassCode: Unset("no bypass codes"), Modes::ALL,
        Argument::Refused(
            "files in /etc/pam.d are readable by every local user, who could then guess the \
             codes offline from their hashes; set it in the configuration file (mode 0600) \
             instead",
        ),
        "salted SHA-256 hashes of codes accepted instead of a ticket when the system is down";
    FailMode: Text("secure"), Modes::ALL, Allowed,
        "on an outage, secure: deny; safe: allow and audit as failsafe";
    Timeout: Number { default: 10, min: 1, max: 120 }, Modes::ALL, Allowed,
        "seconds for the whole check: resolution, connect, TLS and every request";
    HTTPSProxy: Unset("direct connections"), Modes::ALL, Allowed,
        "http://host:port of a proxy to tunnel through with CONNECT";
    MaxAttempts: Number { default: 3, min: 1, max: 10 }, Modes::ALL, Allowed,
        "answers per login before PAM_MAXTRIES";
    Prompt: Text("Ticket ID: "), Modes::ALL, Allowed,
        "the prompt text";
    AuditLogFile: Unset("syslog only"), Modes::ALL, Allowed,
        "file that gets one JSON line per decision, besides syslog";
    FetchCredentialsThroughPVWA: Flag(false), Modes::ALL, Allowed,
        "Yes: portal mode, the portal validates the ticket";
    PSMPServerConfig: Unset("none"), Modes::ALL, Allowed,
        "basic_psmpserver.conf to read FetchCredentialsThroughPVWA from when unset here";
    PortalURL: Required, Modes::PORTAL, Allowed,
        "https base URL of the portal's REST API; required in portal mode";
    PortalAuthMethod: Text("CyberArk"), Modes::PORTAL, Allowed,
        "how the gateway user logs on: CyberArk, LDAP, RADIUS or PlatformToken (Privilege Cloud)";
    IdentityURL: Unset("none; required with PortalAuthMethod=PlatformToken"), Modes::PORTAL,
        Allowed,
        "https URL of the Privilege Cloud Identity tenant that issues platform tokens";
    PortalAccountFile: Required, Modes::PORTAL, Allowed,
        "root-only file with the gateway user's Username and Password; required in portal mode";
    PortalTicketingSystemName:
        PerSystem { service_now: "ServiceNow", remedy: "BMC Remedy" }, Modes::PORTAL, Allowed,
        "the ticketing system's name as configured in the portal";
    PortalReason: Text("SSH connection by %u"), Modes::PORTAL, Allowed,
        "reason sent to the portal; %u, %t and %h expand to vault user, target user, address";
    RemedyIncidentForm: Text("HPD:Help Desk"), Modes::REMEDY, Allowed,
        "the incident form";
    RemedyIncidentIDField: Text("Incident Number"), Modes::REMEDY, Allowed,
        "the incident form's ID field";
    RemedyIncidentStatusField: Text("Status"), Modes::REMEDY, Allowed,
        "the incident form's status field";
    RemedyIncidentRequesterFields: List(&["Customer Login ID", "Submitter"]), Modes::REMEDY,
        Allowed, "the incident fields that name a requester";
    RemedyChangeForm: Text("CHG:Infrastructure Change"), Modes::REMEDY, Allowed,
        "the change form";
    RemedyChangeIDField: Text("Infrastructure Change ID"), Modes::REMEDY, Allowed,
        "the change form's ID field";
    RemedyChangeStatusField: Text("Change Request Status"), Modes::REMEDY, Allowed,
        "the change form's status field";
    RemedyChangeApprovalField: Text("Approval Status"), Modes::REMEDY, Allowed,
        "the change form's approval field";
    RemedyChangeStartField: Text("Scheduled Start Date"), Modes::REMEDY, Allowed,
        "the change form's planned start field";
    RemedyChangeEndField: Text("Scheduled End Date"), Modes::REMEDY, Allowed,
        "the change form's planned end field";
    RemedyChangeRequesterFields: List(&["Requested By", "Submitter"]), Modes::REMEDY,
        Allowed, "the change fields that name a requester";
    RemedyIncidentAssigneeField: Text("Assignee Login ID"), Modes::REMEDY, Allowed,
        "the incident field that holds the assignee's login";
    RemedyIncidentAssignedGroupField: Text("Assigned Group ID"), Modes::REMEDY, Allowed,
        "the incident field that holds the assigned support group's ID";
    RemedyChangeAssigneeField: Text("ASLOGID"), Modes::REMEDY, Allowed,
        "the change field that holds the assignee's login";
    RemedyChangeAssignedGroupField: Text("ASGRPID"), Modes::REMEDY, Allowed,
        "the change field that holds the assigned support group's ID";
    RemedySupportGroupForm: Text("CTM:Support Group Association"), Modes::REMEDY, Allowed,
        "the form that says which people are members of which support group";
    RemedySupportGroupLoginField: Text("Login ID"), Modes::REMEDY, Allowed,
        "the support group association form's field for the member's login";
    RemedySupportGroupIDField: Text("Support Group ID"), Modes::REMEDY, Allowed,
        "the support group association form's field for the group's ID";
    RemedyIncidentCIField: Text("HPD_CI"), Modes::REMEDY, Allowed,
        "the incident form's configuration item field (ValidateConfigurationItem)";
    RemedyChangeCIField: Text("CI_Name"), Modes::REMEDY, Allowed,
        "the change form's configuration item field (ValidateConfigurationItem)";
    RemedyWorkOrderForm: Text("WOI:WorkOrder"), Modes::REMEDY, Allowed,
        "the work order form";
    RemedyWorkOrderIDField: Text("Work Order ID"), Modes::REMEDY, Allowed,
        "the work order form's ID field";
    RemedyWorkOrderStatusField: Text("Status"), Modes::REMEDY, Allowed,
        "the work order form's status field";
    RemedyWorkOrderRequesterFields: List(&["Customer Login ID", "Submitter"]), Modes::REMEDY,
        Allowed, "the work order fields that name a requester";
    RemedyProblemInvestigationForm: Text("PBM:Problem Investigation"), Modes::REMEDY, Allowed,
        "the problem investigation form";
    RemedyProblemInvestigationIDField: Text("Problem Investigation ID"), Modes::REMEDY,
        Allowed, "the problem investigation form's ID field";
    RemedyProblemInvestigationStatusField: Text("Investigation Status"), Modes::REMEDY,
        Allowed, "the problem investigation form's status field";
    RemedyProblemInvestigationRequesterFields: List(&["Submitter"]), Modes::REMEDY, Allowed,
        "the problem investigation fields that name a requester";
    RemedyTokenLifetime: Number { default: 3300, min: 60, max: 86_400 }, Modes::REMEDY,
        Allowed, "seconds a logon token is reused before the module logs on again";
    CacheDirectory: Text("/run/pam_ticket"), Modes::ALL, Allowed,
        "where the token cache lives (folder 0700, file 0600, owned by root): Remedy, ServiceNow OAuth and Privilege Cloud platform tokens";
    WorkNotes: Flag(false), Modes::DIRECT, Allowed,
        "Yes: write a work note to the verified ticket when access starts and when it ends";
    WorkNoteTimeout: Number { default: 3, min: 1, max: 30 }, Modes::DIRECT, Allowed,
        "seconds for writing one work note, its one retry included";
    NoteTemplate: Unset("the built-in note text"), Modes::DIRECT, Allowed,
        "the work note's text, with {user}, {identity}, {rhost}, {host}, {time} … placeholders";
    AskReason: Flag(false), Modes::DIRECT, Allowed,
        "Yes: after a valid ticket or bypass code, ask why access is needed";
    ReasonPrompt: Text("Reason: "), Modes::DIRECT, Allowed,
        "the prompt for the reason";
    RemedyIncidentWorkLogForm: Text("HPD:WorkLog"), Modes::REMEDY, Allowed,
        "the form an incident's work notes are created on";
    RemedyIncidentWorkLogIDField: Text("Incident Number"), Modes::REMEDY, Allowed,
        "the incident work log's field that names the incident (its Incident Number)";
    RemedyChangeWorkLogForm: Text("CHG:WorkLog"), Modes::REMEDY, Allowed,
        "the form a change's work notes are created on";
    RemedyChangeWorkLogIDField: Text("Infra. Change Entry ID"), Modes::REMEDY, Allowed,
        "the change work log's field that names the change (its entry ID)";
    RemedyChangeEntryIDField: Text("Request ID"), Modes::REMEDY, Allowed,
        "the change form's entry ID field, read with the change when WorkNotes=Yes";
}

/// The keys of the work notes and the reason: the portal keeps its own audit, so in
/// portal mode setting any of them is an error (see `build.rs`).
pub const AUDIT_TRAIL_KEYS: [Key; 5] = [
    Key::WorkNotes,
    Key::WorkNoteTimeout,
    Key::NoteTemplate,
    Key::AskReason,
    Key::ReasonPrompt,
];

impl Key {
    /// This key's row of the table.
    pub fn spec(self) -> &'static KeySpec {
        // The macro writes KEYS in the order of the variants, so the index is in range.
        &KEYS[self as usize]
    }

    /// The name written in the configuration.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The key spelt exactly `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Key> {
        KEYS.iter()
            .find(|spec| spec.name == name)
            .map(|spec| spec.key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The entry's key, or an unknown-key error that suggests the nearest known one.
pub fn known(entry: &Entry) -> Result<Key, ConfigError> {
    if let Some(key) = Key::from_name(&entry.key) {
        return Ok(key);
    }
    // On the pam.d line `config=` is a name too.
    let on_pam_d_line = matches!(entry.origin, Origin::ModuleArgument { .. });
    let names = KEYS
        .iter()
        .map(|known| known.name)
        .chain(on_pam_d_line.then_some("config"));
    let hint = crate::spelling::closest(&entry.key, names)
        .map(|name| format!(" (did you mean {name}?)"))
        .unwrap_or_default();
    Err(error(
        &entry.origin,
        format!("unknown key {}{hint}", entry.key),
    ))
}

/// The keys of one ticket type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindKeys {
    /// `<T>TicketIdentification`.
    pub identification: Key,
    /// `Validate<T>TicketState` and `Allowed<T>TicketStates`.
    pub state: (Key, Key),
    /// The approval switch and list, for the types that have an approval.
    pub approval: Option<(Key, Key)>,
    /// Every other key that exists for this type alone (its Remedy form and fields).
    pub others: &'static [Key],
}

impl KindKeys {
    /// Every key of the type.
    pub fn all(self) -> impl Iterator<Item = Key> {
        [self.identification, self.state.0, self.state.1]
            .into_iter()
            .chain(
                self.approval
                    .into_iter()
                    .flat_map(|(switch, list)| [switch, list]),
            )
            .chain(self.others.iter().copied())
    }
}

/// The keys of a ticket type, for the one typed path every type takes through the
/// configuration.
pub fn kind_keys(kind: TicketKind) -> KindKeys {
    let keys = |identification, state, approval, others| KindKeys {
        identification,
        state,
        approval,
        others,
    };
    match kind {
        TicketKind::Incident => keys(
            Key::IncidentTicketIdentification,
            (
                Key::ValidateIncidentTicketState,
                Key::AllowedIncidentTicketStates,
            ),
            None,
            &[],
        ),
        TicketKind::Change => keys(
            Key::ChangeTicketIdentification,
            (
                Key::ValidateChangeTicketState,
                Key::AllowedChangeTicketStates,
            ),
            Some((Key::ValidateApprovalStatus, Key::AllowedApprovalStatuses)),
            &[],
        ),
        TicketKind::RequestItem => keys(
            Key::RequestItemTicketIdentification,
            (
                Key::ValidateRequestItemTicketState,
                Key::AllowedRequestItemTicketStates,
            ),
            Some((
                Key::ValidateRequestItemApprovalStatus,
                Key::AllowedRequestItemApprovalStatuses,
            )),
            &[],
        ),
        TicketKind::CatalogTask => keys(
            Key::CatalogTaskTicketIdentification,
            (
                Key::ValidateCatalogTaskTicketState,
                Key::AllowedCatalogTaskTicketStates,
            ),
            None,
            &[],
        ),
        TicketKind::Problem => keys(
            Key::ProblemTicketIdentification,
            (
                Key::ValidateProblemTicketState,
                Key::AllowedProblemTicketStates,
            ),
            None,
            &[],
        ),
        TicketKind::WorkOrder => keys(
            Key::WorkOrderTicketIdentification,
            (
                Key::ValidateWorkOrderTicketState,
                Key::AllowedWorkOrderTicketStates,
            ),
            None,
            &[
                Key::RemedyWorkOrderForm,
                Key::RemedyWorkOrderIDField,
                Key::RemedyWorkOrderStatusField,
                Key::RemedyWorkOrderRequesterFields,
            ],
        ),
        TicketKind::ProblemInvestigation => keys(
            Key::ProblemInvestigationTicketIdentification,
            (
                Key::ValidateProblemInvestigationTicketState,
                Key::AllowedProblemInvestigationTicketStates,
            ),
            None,
            &[
                Key::RemedyProblemInvestigationForm,
                Key::RemedyProblemInvestigationIDField,
                Key::RemedyProblemInvestigationStatusField,
                Key::RemedyProblemInvestigationRequesterFields,
            ],
        ),
    }
}

/// The Yes/No switches that have no effect in portal mode, where the portal validates the
/// ticket: switching one on there is refused rather than silently ignored.
pub fn gateway_switches() -> impl Iterator<Item = Key> {
    KEYS.iter()
        .filter(|spec| !spec.modes.portal && matches!(spec.default, DefaultValue::Flag(_)))
        .filter(|spec| !AUDIT_TRAIL_KEYS.contains(&spec.key))
        .map(|spec| spec.key)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn each_row_is_at_its_keys_index_and_names_are_unique() {
        for (index, spec) in KEYS.iter().enumerate() {
            assert_eq!(spec.key as usize, index, "{}", spec.name);
            assert_eq!(Key::from_name(spec.name), Some(spec.key));
            assert_eq!(spec.key.to_string(), spec.name);
            assert!(!spec.about.is_empty() && !spec.about.contains('\n'));
        }
        assert_eq!(Key::from_name("ticketingsystem"), None, "names are exact");
    }

    #[test]
    fn only_the_bypass_codes_are_refused_on_the_pam_d_line() {
        let refused: Vec<&str> = KEYS
            .iter()
            .filter(|spec| matches!(spec.argument, Argument::Refused(_)))
            .map(|spec| spec.name)
            .collect();
        assert_eq!(refused, ["FailsafeBypassCode"]);
    }

    #[test]
    fn the_switches_refused_in_portal_mode_are_the_gateways_own_checks() {
        let switches: Vec<&str> = gateway_switches().map(Key::name).collect();
        assert_eq!(
            switches,
            [
                "ValidateIncidentTicketState",
                "ValidateChangeTicketState",
                "ValidateApprovalStatus",
                "ValidateOperationTime",
                "ValidateRequestingUser",
                "ValidateRequestItemTicketState",
                "ValidateRequestItemApprovalStatus",
                "ValidateCatalogTaskTicketState",
                "ValidateProblemTicketState",
                "ValidateWorkOrderTicketState",
                "ValidateProblemInvestigationTicketState",
                "ValidateConfigurationItem",
                "CIMatchShortName",
            ]
        );
    }

    #[test]
    fn each_type_has_its_keys_by_the_pattern() {
        for kind in TicketKind::ORDER {
            let keys = kind_keys(kind);
            let name = kind.key_name();
            assert_eq!(
                keys.identification.name(),
                format!("{name}TicketIdentification")
            );
            assert_eq!(keys.state.0.name(), format!("Validate{name}TicketState"));
            assert_eq!(keys.state.1.name(), format!("Allowed{name}TicketStates"));
            assert_eq!(keys.approval.is_some(), kind.has_approval(), "{name}");
            for key in keys.others {
                assert!(key.name().starts_with(&format!("Remedy{name}")), "{key}");
            }
        }
    }

    #[test]
    fn modes_read_as_the_systems_they_name() {
        assert_eq!(Modes::ALL.to_string(), "ServiceNow, BMCRemedy, portal");
        assert_eq!(Modes::DIRECT.to_string(), "ServiceNow, BMCRemedy");
        assert!(Modes::REMEDY.allows(Mode::Remedy) && !Modes::REMEDY.allows(Mode::ServiceNow));
        assert!(Modes::PORTAL.allows(Mode::Portal) && !Modes::DIRECT.allows(Mode::Portal));
    }

    /// pam_ticket.conf(5) as plain text, item by item: the keys named in each `.TP` tag
    /// (set in bold) with the text of the item, up to the next tag or paragraph.
    fn man_page_items() -> Vec<(Vec<String>, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/pam_ticket.conf.5");
        let page = std::fs::read_to_string(path).expect("man/pam_ticket.conf.5 is readable");
        let mut items: Vec<(Vec<String>, String)> = Vec::new();
        let mut lines = page.lines().peekable();
        while let Some(line) = lines.next() {
            if line != ".TP" {
                continue;
            }
            let Some(tag) = lines.next() else { break };
            let names = match tag.split_once(' ') {
                Some((".B" | ".BR", arguments)) => roff_arguments(arguments)
                    .into_iter()
                    .filter(|word| {
                        word.starts_with(|c: char| c.is_ascii_uppercase())
                            && word.chars().all(|c| c.is_ascii_alphanumeric())
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let mut text = Vec::new();
            while let Some(next) = lines.peek() {
                if [".TP", ".PP", ".SH"]
                    .iter()
                    .any(|end| next.starts_with(end))
                {
                    break;
                }
                text.push(plain_text(next));
                lines.next();
            }
            if !names.is_empty() {
                items.push((names, text.join(" ")));
            }
        }
        items
    }

    /// The arguments of a roff request: words, or "quoted words".
    fn roff_arguments(arguments: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut rest = arguments.trim();
        while !rest.is_empty() {
            let (word, after) = match rest.strip_prefix('"') {
                Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
                None => rest.split_once(' ').unwrap_or((rest, "")),
            };
            words.push(word.to_string());
            rest = after.trim_start();
        }
        words
    }

    /// One line of roff as the reader sees it: font requests applied, escapes resolved.
    fn plain_text(line: &str) -> String {
        let text = match line.split_once(' ') {
            Some((".B" | ".I", arguments)) => roff_arguments(arguments).join(" "),
            Some((".BR" | ".RB" | ".IR" | ".RI" | ".BI" | ".IB", arguments)) => {
                roff_arguments(arguments).concat()
            }
            _ if line.starts_with('.') => String::new(),
            _ => line.to_string(),
        };
        text.replace("\\(dq", "\"")
            .replace("\\(ga", "`")
            .replace("\\-", "-")
            .replace("\\fI", "")
            .replace("\\fR", "")
            .replace("\\fB", "")
            .replace("\\e", "\\")
    }

    #[test]
    fn the_man_page_documents_every_key_of_the_table_and_no_other() {
        let documented: BTreeSet<String> = man_page_items()
            .into_iter()
            .flat_map(|(names, _)| names)
            .collect();
        let listed: BTreeSet<String> = KEYS.iter().map(|spec| spec.name.to_string()).collect();
        let undocumented: Vec<&String> = listed.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "pam_ticket.conf(5) has no item for {undocumented:?}"
        );
        let unknown: Vec<&String> = documented.difference(&listed).collect();
        assert!(
            unknown.is_empty(),
            "pam_ticket.conf(5) documents {unknown:?}, which the key table does not list"
        );
    }

    #[test]
    fn the_man_page_states_the_default_of_the_table() {
        for (names, text) in man_page_items() {
            for spec in names
                .iter()
                .filter_map(|name| Key::from_name(name))
                .map(Key::spec)
            {
                let after_default = text.split_once("Default").map(|(_, after)| after);
                let first_word = after_default
                    .unwrap_or_default()
                    .trim_start_matches(['s', ':'])
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .find(|word| !word.is_empty())
                    .unwrap_or_default()
                    .to_string();
                let stated = match spec.default {
                    DefaultValue::Required => text.contains("Required"),
                    // What "not set" means is said in words of the page's own.
                    DefaultValue::Unset(_) => true,
                    DefaultValue::Flag(flag) => first_word == if flag { "Yes" } else { "No" },
                    DefaultValue::Number { default, .. } => first_word == default.to_string(),
                    DefaultValue::Text(default) => {
                        after_default.is_some_and(|after| after.contains(default))
                    }
                    DefaultValue::List(items) => {
                        after_default.is_some_and(|after| after.contains(&items.join(", ")))
                    }
                    DefaultValue::PerSystem {
                        service_now,
                        remedy,
                    } => after_default
                        .is_some_and(|after| after.contains(service_now) && after.contains(remedy)),
                };
                assert!(
                    stated,
                    "pam_ticket.conf(5) does not state {}'s default {:?}: {text}",
                    spec.name, spec.default
                );
            }
        }
    }
}
