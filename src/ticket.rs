//! The normalised ticket every backend returns, and the ID rules that run before any
//! request is made.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::sanitise::has_hidden_characters;

/// The longest ticket ID the module accepts.
pub const MAX_ID_LENGTH: usize = 64;

/// The type of a ticket, decided from the ID by the identification regexes.
///
/// Every kind goes through the same typed path: its identification, state and approval
/// keys here, its table (ServiceNow) or form (Remedy) and person fields in the backends,
/// and its choice fields for `pam-ticket check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TicketKind {
    Incident,
    Change,
    /// ServiceNow requested item (`sc_req_item`, RITM…).
    RequestItem,
    /// ServiceNow catalog task (`sc_task`, SCTASK…).
    CatalogTask,
    /// ServiceNow problem (`problem`, PRB…).
    Problem,
    /// Remedy work order (`WOI:WorkOrder`, WO…).
    WorkOrder,
    /// Remedy problem investigation (`PBM:Problem Investigation`, PBI…).
    ProblemInvestigation,
}

/// The ticketing systems a kind of ticket exists in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSystems {
    pub service_now: bool,
    pub remedy: bool,
}

impl TicketKind {
    /// Every kind, in the documented order in which the identification regexes are tried:
    /// the first that matches decides the type.
    pub const ORDER: [TicketKind; 7] = [
        TicketKind::Incident,
        TicketKind::Change,
        TicketKind::RequestItem,
        TicketKind::CatalogTask,
        TicketKind::Problem,
        TicketKind::WorkOrder,
        TicketKind::ProblemInvestigation,
    ];

    /// The name used in audit records.
    pub fn audit_name(self) -> &'static str {
        match self {
            TicketKind::Incident => "incident",
            TicketKind::Change => "change",
            TicketKind::RequestItem => "request_item",
            TicketKind::CatalogTask => "catalog_task",
            TicketKind::Problem => "problem",
            TicketKind::WorkOrder => "work_order",
            TicketKind::ProblemInvestigation => "problem_investigation",
        }
    }

    /// How messages to the user name a ticket of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            TicketKind::Incident => "Ticket",
            TicketKind::Change => "Change",
            TicketKind::RequestItem => "Requested item",
            TicketKind::CatalogTask => "Catalog task",
            TicketKind::Problem => "Problem",
            TicketKind::WorkOrder => "Work order",
            TicketKind::ProblemInvestigation => "Problem investigation",
        }
    }

    /// The type's name in running text (`requested item`).
    pub fn type_name(self) -> &'static str {
        match self {
            TicketKind::Incident => "incident",
            TicketKind::Change => "change",
            TicketKind::RequestItem => "requested item",
            TicketKind::CatalogTask => "catalog task",
            TicketKind::Problem => "problem",
            TicketKind::WorkOrder => "work order",
            TicketKind::ProblemInvestigation => "problem investigation",
        }
    }

    /// The type's name in configuration keys (`<T>TicketIdentification`, …).
    pub fn key_name(self) -> &'static str {
        match self {
            TicketKind::Incident => "Incident",
            TicketKind::Change => "Change",
            TicketKind::RequestItem => "RequestItem",
            TicketKind::CatalogTask => "CatalogTask",
            TicketKind::Problem => "Problem",
            TicketKind::WorkOrder => "WorkOrder",
            TicketKind::ProblemInvestigation => "ProblemInvestigation",
        }
    }

    /// The kind whose [`key_name`](TicketKind::key_name) is exactly `name` (TicketTypes).
    pub fn from_key_name(name: &str) -> Option<TicketKind> {
        TicketKind::ORDER
            .into_iter()
            .find(|kind| kind.key_name() == name)
    }

    /// The systems that have tickets of this kind. In portal mode only incidents and
    /// changes are known (the portal classifies nothing else).
    pub fn systems(self) -> KindSystems {
        let (service_now, remedy) = match self {
            TicketKind::Incident | TicketKind::Change => (true, true),
            TicketKind::RequestItem | TicketKind::CatalogTask | TicketKind::Problem => {
                (true, false)
            }
            TicketKind::WorkOrder | TicketKind::ProblemInvestigation => (false, true),
        };
        KindSystems {
            service_now,
            remedy,
        }
    }

    /// Whether the kind is one of the two the module knew first, which portal mode keeps.
    pub fn is_portal_kind(self) -> bool {
        matches!(self, TicketKind::Incident | TicketKind::Change)
    }

    /// Whether tickets of this kind carry an approval the gateway can check (changes and
    /// requested items).
    pub fn has_approval(self) -> bool {
        matches!(self, TicketKind::Change | TicketKind::RequestItem)
    }

    /// Whether tickets of this kind carry a planned window (changes).
    pub fn has_window(self) -> bool {
        self == TicketKind::Change
    }
}

/// A ticket ID that passed the charset, length and format rules: safe to put in a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketId {
    pub text: String,
    pub kind: TicketKind,
}

/// Why an answer is not acceptable as a ticket ID. None of these carries the answer itself,
/// which may be a mistyped bypass code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdRefusal {
    Empty,
    TooLong { length: usize },
    BadCharacters,
    FormatMismatch,
    UnknownKind,
}

impl IdRefusal {
    /// The message shown to the user.
    pub fn user_message(&self) -> String {
        match self {
            IdRefusal::Empty => "No ticket ID was entered".to_string(),
            IdRefusal::TooLong { length } => {
                format!(
                    "A ticket ID has at most {MAX_ID_LENGTH} characters; this answer has {length}"
                )
            }
            IdRefusal::BadCharacters => {
                "A ticket ID may only contain letters, digits, '-' and '_'".to_string()
            }
            IdRefusal::FormatMismatch => "That is not a valid ticket ID format".to_string(),
            IdRefusal::UnknownKind => {
                "That ticket ID is not of a ticket type this gateway accepts".to_string()
            }
        }
    }

    /// The reason written to the audit.
    pub fn audit_reason(&self) -> String {
        match self {
            IdRefusal::Empty => "empty answer".to_string(),
            IdRefusal::TooLong { length } => format!("answer too long ({length} characters)"),
            IdRefusal::BadCharacters => "answer has characters outside [A-Za-z0-9_-]".to_string(),
            IdRefusal::FormatMismatch => "answer does not match TicketFormatRegex".to_string(),
            // Names the key: after an upgrade, an ID of a type TicketTypes leaves out
            // (a requested item, say) ends here, and the admin reading this looks there.
            IdRefusal::UnknownKind => {
                "answer matches no identification regex of the types accepted (TicketTypes)"
                    .to_string()
            }
        }
    }
}

impl TicketId {
    /// Checks an answer (already trimmed) against every rule that must hold before the
    /// network is touched: at most 64 ASCII letters, digits, `-` and `_`; then, upper-cased
    /// when UppercaseTicketId is Yes, TicketFormatRegex when set and one of the
    /// identification regexes: the first that matches, in [`TicketKind::ORDER`], is the
    /// ticket's type.
    pub fn parse(answer: &[u8], config: &Config) -> Result<TicketId, IdRefusal> {
        if answer.is_empty() {
            return Err(IdRefusal::Empty);
        }
        if answer.len() > MAX_ID_LENGTH {
            return Err(IdRefusal::TooLong {
                length: answer.len(),
            });
        }
        if !answer
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'_')
        {
            return Err(IdRefusal::BadCharacters);
        }
        // The system's IDs are upper case: `inc0042001` is INC0042001. The copy is wiped
        // when dropped: a refused answer may be a mistyped bypass code.
        let upper_cased;
        let answer = if config.uppercase_ticket_id && answer.iter().any(u8::is_ascii_lowercase) {
            upper_cased = zeroize::Zeroizing::new(answer.to_ascii_uppercase());
            upper_cased.as_slice()
        } else {
            answer
        };
        // Every byte is ASCII by now, so this conversion cannot fail. The answer is only
        // borrowed until it is accepted: a refused one may be a mistyped bypass code, and
        // must not be left behind in a copy that is not wiped.
        let Ok(text) = std::str::from_utf8(answer) else {
            return Err(IdRefusal::BadCharacters);
        };
        if let Some(format) = &config.ticket_format
            && !format.is_match(text)
        {
            return Err(IdRefusal::FormatMismatch);
        }
        let Some(kind) = config
            .identification
            .iter()
            .find(|(_, regex)| regex.is_match(text))
            .map(|(kind, _)| *kind)
        else {
            return Err(IdRefusal::UnknownKind);
        };
        Ok(TicketId {
            text: text.to_string(),
            kind,
        })
    }
}

/// A choice field as the ticketing system stores it and as people read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// What people read (`In Progress`).
    pub label: String,
    /// What the system stores (`2` in ServiceNow; the label itself in Remedy).
    pub value: String,
}

impl Choice {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Choice {
        Choice {
            label: label.into(),
            value: value.into(),
        }
    }

    /// Whether an Allowed* entry names this choice, by label or stored value. Each is
    /// matched as the server sent it, never sanitised first: only case, runs of white space
    /// and the spellings of [`normalise_label`] are folded, and a label or value that holds
    /// a control or invisible character (`In\u0000Progress`) names nothing.
    pub fn is_named_by(&self, entry: &str) -> bool {
        let entry = normalise_label(entry);
        [&self.label, &self.value]
            .into_iter()
            .any(|text| !has_hidden_characters(text) && normalise_label(text) == entry)
    }
}

/// Folds case and runs of white space, and treats spellings that mean the same as one:
/// `Cancelled` = `Canceled`, ServiceNow's `not requested` = `Not Yet Requested`. Nothing
/// else is folded or removed; [`Choice::is_named_by`] refuses control characters first.
pub fn normalise_label(text: &str) -> String {
    let folded = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    match folded.as_str() {
        "cancelled" => "canceled".to_string(),
        "not requested" => "not yet requested".to_string(),
        _ => folded,
    }
}

/// What a backend found, normalised. Policy only ever sees this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: String,
    pub kind: TicketKind,
    pub state: Option<Choice>,
    /// Change tickets only.
    pub approval: Option<Choice>,
    pub planned_start: Option<DateTime<Utc>>,
    pub planned_end: Option<DateTime<Utc>>,
    /// The people who count as the ticket's requester, as the matched field holds them
    /// (a login, an email address, an employee number).
    pub requesters: Vec<String>,
    /// The assignee, in the same terms; fetched only when AllowedUserRoles has assignee.
    pub assignee: Option<String>,
    /// The assignment (support) group's ID; fetched only when AllowedUserRoles has
    /// assignment_group.
    pub assignment_group: Option<String>,
    /// Whether the person is a member of `assignment_group`: `None` until the flow asked
    /// (it asks only when no other allowed relation holds).
    pub group_member: Option<bool>,
    /// What a work note needs to find the record, when the ticket ID is not enough: the
    /// ServiceNow `sys_id`, the Remedy change's entry ID.
    pub record_id: Option<String>,
    /// The configuration items the ticket names (ServiceNow: its `cmdb_ci`, and for a
    /// change its affected CIs too); `None` when they were not asked for
    /// (ValidateConfigurationItem=No).
    pub configuration_items: Option<Vec<ConfigurationItem>>,
    /// Checks that an extra request (a change's affected CIs, the assignment group's
    /// membership) should have informed but could not, for an outage. They decide the
    /// login only when nothing else already refuses the ticket: an outage of a second
    /// request must never turn a ticket that fails on its own into a failsafe grant.
    pub unanswered: Vec<Unanswered>,
}

/// One check an extra request could not inform, and the outage that stopped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unanswered {
    /// The check's name, as [`crate::policy::CheckResult::check`] gives it.
    pub check: &'static str,
    pub outage: crate::backend::Outage,
}

/// One configuration item as the ticketing system describes it. Absent fields are ones
/// the item's class does not have (or that are empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigurationItem {
    pub name: String,
    pub ip_address: Option<String>,
    pub fqdn: Option<String>,
    pub host_name: Option<String>,
    /// ServiceNow's `sys_class_name` (`cmdb_ci_linux_server`).
    pub class: Option<String>,
}

impl ConfigurationItem {
    /// An item known by its name alone (a Remedy CI field).
    pub fn named(name: impl Into<String>) -> ConfigurationItem {
        ConfigurationItem {
            name: name.into(),
            ..ConfigurationItem::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fold_case_space_and_spelling() {
        assert_eq!(normalise_label("  In   PROGRESS "), "in progress");
        assert_eq!(normalise_label("Cancelled"), normalise_label("canceled"));
        assert_eq!(
            normalise_label("not requested"),
            normalise_label("Not Yet Requested")
        );
        let state = Choice::new("In Progress", "2");
        assert!(state.is_named_by("in progress"));
        assert!(state.is_named_by("2"));
        assert!(!state.is_named_by("New"));
    }

    #[test]
    fn control_and_invisible_characters_never_match() {
        for hidden in [
            "In\u{0}Progress",
            "In\tProgress",
            "In Progress\n",
            "\rIn Progress",
            "In\u{1b}[0mProgress",
            "In\u{85}Progress",
            "In\u{7f}Progress",
            "In\u{200B}Progress",
            "In Progress\u{202E}",
            "\u{2066}In Progress\u{2069}",
            "In\u{00AD}Progress",
        ] {
            let by_label = Choice::new(hidden, "2");
            assert!(!by_label.is_named_by("In Progress"), "{hidden:?}");
            // The clean stored value still names it.
            assert!(by_label.is_named_by("2"), "{hidden:?}");
            // Not even an entry spelt the same way names a value with hidden characters.
            let by_value = Choice::new("Closed", hidden);
            assert!(!by_value.is_named_by(hidden), "{hidden:?}");
        }
        // What is folded: case and runs of (Unicode) white space, and the spellings.
        assert!(Choice::new("  iN \u{a0}  PROGRESS ", "x").is_named_by("In Progress"));
        assert!(Choice::new("CANCELLED", "x").is_named_by("Canceled"));
    }
}
