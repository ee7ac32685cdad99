//! Where each ticket type lives in Remedy: its form, ID, status, approval and window
//! fields, its people fields and its configuration item field; the one typed path every
//! type takes (query, answer, choices for `pam-ticket check`).

use crate::backend::LookupError;
use crate::config::{PersonFields, RemedySettings, UserRole};
use crate::ticket::TicketKind;

/// Where tickets of one kind live in Remedy, and which fields say what: the one typed
/// path every kind takes (query, answer, choices for `pam-ticket check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormSpec<'a> {
    pub form: &'a str,
    pub id_field: &'a str,
    pub status_field: &'a str,
    /// Changes only.
    pub approval_field: Option<&'a str>,
    /// The planned start and end fields (changes only).
    pub window: Option<(&'a str, &'a str)>,
    /// The fields that name the ticket's people.
    pub people: PersonFields<'a>,
    /// The relations AllowedUserRoles checks: the people fields fetched are theirs.
    pub roles: &'a [UserRole],
    /// The field that names the configuration item, for the kinds that have one.
    pub ci_field: Option<&'a str>,
    /// The entry ID field, read when a work note needs it (a change's work log names the
    /// change by it; WorkNotes=Yes).
    pub entry_id_field: Option<&'a str>,
}

impl<'a> FormSpec<'a> {
    /// The fields to fetch, each once: the ID, status, approval and window fields, the
    /// people fields of the relations checked, and the CI field when `with_ci`.
    pub fn fields(&self, with_ci: bool) -> Vec<&'a str> {
        let mut fields = vec![self.id_field, self.status_field];
        fields.extend(self.approval_field);
        if let Some((start, end)) = self.window {
            fields.extend([start, end]);
        }
        fields.extend(self.people.wanted(self.roles));
        if with_ci {
            fields.extend(self.ci_field);
        }
        fields.extend(self.entry_id_field);
        let mut unique: Vec<&'a str> = Vec::new();
        for field in fields {
            if !unique.contains(&field) {
                unique.push(field);
            }
        }
        unique
    }
}

/// The form of a kind of ticket, or `None` for a kind Remedy does not have.
pub fn form_spec(settings: &RemedySettings, kind: TicketKind) -> Option<FormSpec<'_>> {
    Some(match kind {
        TicketKind::Incident => FormSpec {
            form: &settings.incident_form,
            id_field: &settings.incident_id_field,
            status_field: &settings.incident_status_field,
            approval_field: None,
            window: None,
            people: settings.person_fields(TicketKind::Incident),
            roles: &settings.people.roles,
            ci_field: Some(&settings.incident_ci_field),
            // The incident work log names its incident by the Incident Number.
            entry_id_field: None,
        },
        TicketKind::Change => FormSpec {
            form: &settings.change_form,
            id_field: &settings.change_id_field,
            status_field: &settings.change_status_field,
            approval_field: Some(&settings.change_approval_field),
            window: Some((&settings.change_start_field, &settings.change_end_field)),
            people: settings.person_fields(TicketKind::Change),
            roles: &settings.people.roles,
            ci_field: Some(&settings.change_ci_field),
            entry_id_field: settings
                .read_change_entry_id
                .then_some(settings.change_entry_id_field.as_str()),
        },
        TicketKind::WorkOrder => FormSpec {
            form: &settings.work_order_form,
            id_field: &settings.work_order_id_field,
            status_field: &settings.work_order_status_field,
            approval_field: None,
            window: None,
            people: settings.person_fields(TicketKind::WorkOrder),
            roles: &settings.people.roles,
            ci_field: None,
            entry_id_field: None,
        },
        TicketKind::ProblemInvestigation => FormSpec {
            form: &settings.problem_investigation_form,
            id_field: &settings.problem_investigation_id_field,
            status_field: &settings.problem_investigation_status_field,
            approval_field: None,
            window: None,
            people: settings.person_fields(TicketKind::ProblemInvestigation),
            roles: &settings.people.roles,
            ci_field: None,
            entry_id_field: None,
        },
        TicketKind::RequestItem | TicketKind::CatalogTask | TicketKind::Problem => return None,
    })
}

/// The error for a kind of ticket Remedy does not have (the configuration refuses its
/// keys, so only a bug gets here).
pub fn no_such_form(kind: TicketKind) -> LookupError {
    LookupError::Misconfigured {
        detail: format!("BMC Remedy has no {} tickets", kind.type_name()),
    }
}
