//! Where each ticket type lives in ServiceNow: its table, its approval and window fields,
//! and whether a change's affected CIs apply. The people fields are
//! [`super::servicenow::person_fields`]; Remedy's forms are `remedy::form_spec`.

use super::LookupError;
use crate::ticket::TicketKind;

/// Where tickets of one kind live in ServiceNow, and which fields say what: the one typed
/// path every kind takes (query, answer, choices for `pam-ticket check`). The people
/// fields are [`person_fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpec {
    pub table: &'static str,
    /// The approval field, for the kinds that have one.
    pub approval: Option<&'static str>,
    /// The planned start and end fields (changes).
    pub window: Option<(&'static str, &'static str)>,
    /// Whether affected CIs live in `task_ci` beside the ticket's own `cmdb_ci`.
    pub affected_cis: bool,
}

/// The table of a kind of ticket, or `None` for a kind ServiceNow does not have.
pub fn table_spec(kind: TicketKind) -> Option<TableSpec> {
    let spec = |table, approval, window, affected_cis| TableSpec {
        table,
        approval,
        window,
        affected_cis,
    };
    Some(match kind {
        TicketKind::Incident => spec("incident", None, None, false),
        TicketKind::Change => spec(
            "change_request",
            Some("approval"),
            Some(("start_date", "end_date")),
            true,
        ),
        TicketKind::RequestItem => spec("sc_req_item", Some("approval"), None, false),
        TicketKind::CatalogTask => spec("sc_task", None, None, false),
        TicketKind::Problem => spec("problem", None, None, false),
        TicketKind::WorkOrder | TicketKind::ProblemInvestigation => return None,
    })
}

/// The error for a kind of ticket ServiceNow does not have (the configuration refuses
/// its keys, so only a bug gets here).
pub(super) fn no_such_table(kind: TicketKind) -> LookupError {
    LookupError::Misconfigured {
        detail: format!("ServiceNow has no {} tickets", kind.type_name()),
    }
}
