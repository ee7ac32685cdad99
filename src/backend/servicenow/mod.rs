//! ServiceNow through the Table API: one GET per ticket, stored values only (a change
//! checked for its configuration items: one more, see [`super::cmdb`]).
//!
//! How the module signs in is [`signin`]; how it reads the instance's answers is
//! [`answers`]. Both are the one path of the lookup, the group check, the work notes
//! and `pam-ticket check`.

mod answers;
mod signin;

pub(in crate::backend) use answers::{field_value, result_rows};
pub use answers::{
    interpret, interpret_choices, interpret_for, interpret_membership, interpret_note,
    interpret_roles, is_sys_id, membership_query, parse_glide_date,
};
pub use signin::{OAuthSession, ServiceNowAuth, basic_authorization};

use super::cmdb::{MAX_AFFECTED_CIS, ci_field_list, interpret_affected_cis};
use super::tables::no_such_table;
pub use super::tables::{TableSpec, table_spec};
use super::{
    ChoiceField, KnownChoices, Lookup, LookupError, NoteTarget, PROBE_MEMBER, ProbeLine,
    TicketSource, bad_response, membership_problem, probe_answer, probe_id, sanitise,
    why_unanswered,
};
use crate::audit::AuditSink;
use crate::config::{BaseUrl, People, PersonFields, UserMatchField, UserRole};
use crate::http::{Body, Deadline, HttpClient, Method, RetryBudget, percent_encode};
use crate::login::Login;
use crate::ticket::{TicketId, TicketKind, Unanswered};
use crate::token_cache::TokenCache;

pub struct ServiceNow {
    client: HttpClient,
    base_url: BaseUrl,
    auth: ServiceNowAuth,
    people: PersonQuery,
    /// Whether a lookup reads the record's `sys_id` (WorkNotes=Yes), which a work note is
    /// written to.
    reads_sys_id: bool,
    /// ValidateConfigurationItem: fetch the ticket's configuration items too.
    with_ci: bool,
    /// The types the configuration accepts (TicketTypes): `pam-ticket check` reads the
    /// table of the first.
    ticket_types: Vec<TicketKind>,
}

/// How people are read from tickets: the sys_user field they are matched on, and the
/// relations (AllowedUserRoles) whose fields are fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonQuery {
    pub match_field: UserMatchField,
    pub roles: Vec<UserRole>,
}

impl Default for PersonQuery {
    /// Requesters by user_name: the query the module always made.
    fn default() -> PersonQuery {
        PersonQuery {
            match_field: UserMatchField::UserName,
            roles: vec![UserRole::Requester],
        }
    }
}

impl PersonQuery {
    pub fn from_people(people: &People) -> PersonQuery {
        PersonQuery {
            match_field: people.match_field,
            roles: people.roles.clone(),
        }
    }

    /// The answer's field that holds a reference field's person, in the matched terms:
    /// `caller_id.user_name`, or the group's sys_id itself for the assignment group.
    fn walked(&self, reference: &str) -> String {
        format!("{reference}.{}", self.match_field.field())
    }
}

/// The reference fields that name a ticket's people, per kind: the one mapping that the
/// query and the reader of its answer both use.
pub fn person_fields(kind: TicketKind) -> PersonFields<'static> {
    match kind {
        TicketKind::Incident => PersonFields {
            requesters: vec!["caller_id", "opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        TicketKind::Change => PersonFields {
            requesters: vec!["requested_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        TicketKind::RequestItem => PersonFields {
            requesters: vec!["requested_for", "opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        // The requester of a catalog task is its requested item's requested_for (one
        // dot-walk further), or whoever opened the task.
        TicketKind::CatalogTask => PersonFields {
            requesters: vec!["request_item.requested_for", "opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        TicketKind::Problem => PersonFields {
            requesters: vec!["opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        // Not ServiceNow types: table_spec refuses them before any query is built.
        TicketKind::WorkOrder | TicketKind::ProblemInvestigation => PersonFields {
            requesters: Vec::new(),
            assignee: "assigned_to",
            group: "assignment_group",
        },
    }
}

impl ServiceNow {
    pub fn new(
        client: HttpClient,
        base_url: BaseUrl,
        auth: ServiceNowAuth,
        people: PersonQuery,
    ) -> ServiceNow {
        ServiceNow {
            client,
            base_url,
            auth,
            people,
            reads_sys_id: false,
            with_ci: false,
            ticket_types: vec![TicketKind::Incident, TicketKind::Change],
        }
    }

    /// WorkNotes=Yes: every lookup also reads the record's `sys_id`, so that a note is
    /// written to it with no second query.
    pub fn reading_sys_id(mut self, reads_sys_id: bool) -> ServiceNow {
        self.reads_sys_id = reads_sys_id;
        self
    }

    /// The ticket types accepted (TicketTypes; incidents and changes unless set): the
    /// check's probe reads the first one's table, never a table the gateway does not use.
    pub fn with_ticket_types(mut self, ticket_types: Vec<TicketKind>) -> ServiceNow {
        self.ticket_types = ticket_types;
        self
    }

    /// Fetches each ticket's configuration items too (ValidateConfigurationItem).
    pub fn with_ci(mut self, with_ci: bool) -> ServiceNow {
        self.with_ci = with_ci;
        self
    }

    /// The Table API URL for one ticket. `sysparm_display_value=all` returns each field as
    /// `{display_value, value}`: the label for messages, the stored value for matching and
    /// dates (stored in UTC, whereas display values are in the API user's time zone).
    ///
    /// With WorkNotes=Yes `sys_id` is read too: a work note is written to the record by
    /// it, with no second query.
    pub fn query_url(&self, id: &TicketId) -> Result<String, LookupError> {
        let spec = table_spec(id.kind).ok_or_else(|| no_such_table(id.kind))?;
        let mut fields: Vec<String> = ["number", "state"].map(str::to_string).to_vec();
        // A change's affected CIs are found by its sys_id (see `affected_cis_url`).
        if self.reads_sys_id || (self.with_ci && spec.affected_cis) {
            fields.insert(0, "sys_id".to_string());
        }
        fields.extend(spec.approval.map(str::to_string));
        if let Some((start, end)) = spec.window {
            fields.extend([start.to_string(), end.to_string()]);
        }
        let people = person_fields(id.kind);
        for field in people.wanted(&self.people.roles) {
            fields.push(if field == people.group {
                field.to_string()
            } else {
                self.people.walked(field)
            });
        }
        if self.with_ci {
            fields.extend(ci_field_list("cmdb_ci"));
        }
        Ok(format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit=2&sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url
                .join(&format!("/api/now/table/{}", spec.table)),
            percent_encode(&format!("number={}", id.text)),
            percent_encode(&fields.join(",")),
        ))
    }

    /// `GET task_ci` for the affected CIs of a change, found by the change's `sys_id`
    /// through the `task` reference: by record, never by number, since `task` spans every
    /// task table and a number can repeat across them (custom tables, imports, a reset
    /// counter). The `sys_id` comes from the change's own answer and must be one.
    pub fn affected_cis_url(&self, sys_id: &str) -> Result<String, LookupError> {
        if !is_sys_id(sys_id) {
            return Err(bad_response("the change's sys_id is not a sys_id"));
        }
        Ok(format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit={MAX_AFFECTED_CIS}&sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url.join("/api/now/table/task_ci"),
            percent_encode(&format!("task={sys_id}")),
            percent_encode(&format!("task,{}", ci_field_list("ci_item").join(","))),
        ))
    }

    /// `GET sys_user_grmember` for one membership: the person (by the matched field) in
    /// the group (by sys_id). Both values were checked by [`membership_query`].
    pub fn membership_url(&self, query: &str) -> String {
        format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit=2&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url.join("/api/now/table/sys_user_grmember"),
            percent_encode(query),
            percent_encode(&format!("{},group", self.people.walked("user"))),
        )
    }
}

/// `PATCH /api/now/table/{table}/{sys_id}?sysparm_fields=sys_id`, on the table the lookup
/// queried (every ticket table extends `task`, which has `work_notes`): the answer holds
/// the `sys_id` only, however long the record's journal.
pub fn note_url(base_url: &BaseUrl, kind: TicketKind, sys_id: &str) -> Result<String, LookupError> {
    let spec = table_spec(kind).ok_or_else(|| no_such_table(kind))?;
    Ok(format!(
        "{}?sysparm_fields=sys_id",
        base_url.join(&format!(
            "/api/now/table/{}/{}",
            spec.table,
            percent_encode(sys_id)
        )),
    ))
}

/// The roles that write `work_notes` on incident and change_request on a stock instance.
pub const WRITE_ROLES: [&str; 4] = ["itil", "sn_incident_write", "sn_change_write", "admin"];

/// `GET /api/now/table/sys_user_has_role` for the roles of `user_name`.
pub fn roles_url(base_url: &BaseUrl, user_name: &str) -> String {
    format!(
        "{}?sysparm_query={}&sysparm_fields={}",
        base_url.join("/api/now/table/sys_user_has_role"),
        percent_encode(&format!("user.user_name={user_name}")),
        percent_encode("role.name"),
    )
}

/// Where a choice field's choices live in `sys_choice`: the table and the element.
pub fn choice_element(field: ChoiceField) -> Option<(&'static str, &'static str)> {
    match field {
        ChoiceField::State(kind) => table_spec(kind).map(|spec| (spec.table, "state")),
        ChoiceField::Approval(kind) => {
            table_spec(kind).and_then(|spec| spec.approval.map(|field| (spec.table, field)))
        }
    }
}

/// `GET /api/now/table/sys_choice` for the active choices of one field: each a stored
/// value and its label.
pub fn choices_url(base_url: &BaseUrl, field: ChoiceField) -> Option<String> {
    let (table, element) = choice_element(field)?;
    Some(format!(
        "{}?sysparm_query={}&sysparm_fields={}",
        base_url.join("/api/now/table/sys_choice"),
        percent_encode(&format!("name={table}^element={element}^inactive=false")),
        percent_encode("label,value"),
    ))
}

impl TicketSource for ServiceNow {
    fn system_name(&self) -> &str {
        "ServiceNow"
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    /// One `sys_choice` query per field, with a sign-in of the check's own (see
    /// [`ServiceNow::check_authorization`]).
    fn known_choices(&mut self, fields: &[ChoiceField], deadline: Deadline) -> Vec<KnownChoices> {
        let mut retries = RetryBudget::for_check();
        let authorization = match self.check_authorization(deadline, &mut retries) {
            Ok((authorization, _)) => authorization,
            Err(error) => {
                return fields
                    .iter()
                    .map(|field| (*field, Err(error.clone())))
                    .collect();
            }
        };
        fields
            .iter()
            .map(|field| {
                // Each sent once: a spent budget retries nothing.
                let answer = match choices_url(&self.base_url, *field) {
                    Some(url) => self
                        .get(
                            &url,
                            authorization.as_str(),
                            deadline,
                            &mut RetryBudget::spent(),
                        )
                        .and_then(|response| interpret_choices(&response)),
                    None => Err(no_such_table(field.kind())),
                };
                (*field, answer)
            })
            .collect()
    }

    fn lookup(
        &mut self,
        id: &TicketId,
        _login: &Login,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        let spec = table_spec(id.kind).ok_or_else(|| no_such_table(id.kind))?;
        let mut ticket = interpret_for(
            id,
            &self.people,
            &self.get_signed_in(&self.query_url(id)?, deadline, audit)?,
        )?;
        if self.with_ci {
            ticket.configuration_items.get_or_insert_with(Vec::new);
            if spec.affected_cis {
                // One more request, on the same deadline: the change's affected CIs. An
                // outage leaves the CI check open (the flow decides it last); any other
                // failure is the lookup's.
                let sys_id = ticket.record_id.as_deref().unwrap_or_default();
                let answer = self
                    .affected_cis_url(sys_id)
                    .and_then(|url| self.get_signed_in(&url, deadline, audit))
                    .and_then(|answer| interpret_affected_cis(sys_id, &answer));
                match answer {
                    Ok(items) => {
                        let record_cis = ticket.configuration_items.get_or_insert_with(Vec::new);
                        for item in items {
                            if !record_cis.contains(&item) {
                                record_cis.push(item);
                            }
                        }
                    }
                    Err(LookupError::Unavailable(outage)) => ticket.unanswered.push(Unanswered {
                        check: crate::policy::CI_CHECK,
                        outage,
                    }),
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(Lookup::Found(ticket))
    }

    /// A sign-in of its own (with OAuth a new grant: the token cache is neither read nor
    /// written, nor its directory created, so a check run by hand can never leave a token
    /// or a wrongly owned file for the module to trip over) and a lookup of
    /// [`super::PROBE_TICKET`].
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let mut retries = RetryBudget::for_check();
        let (authorization, signed_in) = self.check_authorization(deadline, &mut retries)?;
        let mut lines: Vec<ProbeLine> = signed_in.into_iter().map(ProbeLine::Ok).collect();
        let kind = self
            .ticket_types
            .first()
            .copied()
            .unwrap_or(TicketKind::Incident);
        let id = probe_id(kind);
        let response = self.get(
            &self.query_url(&id)?,
            authorization.as_str(),
            deadline,
            &mut retries,
        )?;
        lines.push(ProbeLine::Ok(probe_answer(
            interpret_for(&id, &self.people, &response).map(Lookup::Found),
        )?));
        // When AllowedUserRoles has assignment_group, one membership query with the same
        // sign-in: an account that may read incidents but not `sys_user_grmember` shows
        // here, not at a login.
        if self.people.roles.contains(&UserRole::AssignmentGroup) {
            let nobodys_group = "0".repeat(32);
            let member = membership_query(self.people.match_field, PROBE_MEMBER, &nobodys_group)
                .and_then(|query| {
                    self.get(
                        &self.membership_url(&query),
                        authorization.as_str(),
                        deadline,
                        &mut RetryBudget::for_check(),
                    )
                })
                .and_then(|response| {
                    interpret_membership(&self.people, PROBE_MEMBER, &nobodys_group, &response)
                });
            lines.push(match member {
                Ok(_) => ProbeLine::Ok(
                    "sys_user_grmember answered a membership query (AllowedUserRoles=assignment_group)"
                        .to_string(),
                ),
                Err(error) => ProbeLine::Problem(membership_problem("sys_user_grmember", &error)),
            });
        }
        if self.with_ci {
            // The ticket query above dot-walked cmdb_ci; a change also reads task_ci.
            let nobodys_change = "0".repeat(32);
            let answer = self
                .affected_cis_url(&nobodys_change)
                .and_then(|url| {
                    self.get(
                        &url,
                        authorization.as_str(),
                        deadline,
                        &mut RetryBudget::for_check(),
                    )
                })
                .and_then(|answer| interpret_affected_cis(&nobodys_change, &answer));
            lines.push(match answer {
                Ok(_) => ProbeLine::Ok(
                    "task_ci answered a query of a change's affected CIs (ValidateConfigurationItem)"
                        .to_string(),
                ),
                Err(error) => ProbeLine::Problem(format!(
                    "task_ci, which ValidateConfigurationItem reads for changes, gave no answer: {}",
                    why_unanswered(&error)
                )),
            });
        }
        drop(authorization);
        if let ServiceNowAuth::OAuth(session) = &self.auth {
            lines.push(ProbeLine::Ok(format!(
                "AuthMethod={}: token cache in {} neither read nor written",
                session.method().name(),
                session.cache_directory().display()
            )));
        }
        Ok(lines)
    }

    fn token_caches(&self) -> Vec<&TokenCache> {
        self.caches()
    }

    /// One `sys_user_grmember` query, with the module's sign-in (basic, or the shared
    /// OAuth token). The identity reaches an encoded query, where no escape for `^`
    /// exists: an identity that could change the query's meaning is refused before
    /// anything is sent, and an answer row that is not the membership asked for is a bad
    /// answer, never a member.
    fn group_member(
        &mut self,
        identity: &str,
        group: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        let query = membership_query(self.people.match_field, identity, group)?;
        let response = self.get_signed_in(&self.membership_url(&query), deadline, audit)?;
        interpret_membership(&self.people, identity, group, &response)
    }

    /// The account's roles from `sys_user_has_role`: a read, never a write. Writing
    /// `work_notes` on incident and change_request comes with `itil` on a stock instance
    /// (or `sn_incident_write` / `sn_change_write`, or `admin`); a customised ACL can say
    /// otherwise, so a role found is "expected", not proven. An account that may not read
    /// its roles leaves the question open.
    fn write_access(&mut self, deadline: Deadline) -> Vec<ProbeLine> {
        let Some(user) = self.acting_user().map(str::to_string) else {
            return vec![ProbeLine::Ok(
                "work notes: cannot tell whether the OAuth application user may write them (a client-credentials grant acts as the user set on the instance's OAuth entity, which the module does not know); give that user the itil role, and a failed note is logged at warning".to_string(),
            )];
        };
        let url = roles_url(&self.base_url, &user);
        let mut retries = RetryBudget::spent();
        // A sign-in of its own, as the rest of the check: the token cache is left alone.
        let answer = self
            .check_authorization(deadline, &mut retries)
            .and_then(|(authorization, _)| {
                self.get(&url, authorization.as_str(), deadline, &mut retries)
            })
            .and_then(|response| interpret_roles(&response));
        let account = sanitise(&user);
        vec![match answer {
            Ok(roles) => {
                let shown = if roles.is_empty() {
                    "none".to_string()
                } else {
                    sanitise(&roles.join(", "))
                };
                match roles
                    .iter()
                    .find(|role| WRITE_ROLES.contains(&role.as_str()))
                {
                    Some(role) => ProbeLine::Ok(format!(
                        "work notes: the account {account} has the role {role}, which writes work_notes on incident and change_request on a stock instance (roles: {shown})"
                    )),
                    None => ProbeLine::Problem(format!(
                        "work notes: the account {account} has none of the roles that write work_notes ({}; roles: {shown}): every note would fail; give it one",
                        WRITE_ROLES.join(", ")
                    )),
                }
            }
            Err(error) => ProbeLine::Ok(format!(
                "work notes: cannot tell whether {account} may write them (its roles could not be read from sys_user_has_role: {}); a failed note is logged at warning",
                crate::backend::error_text(&error)
            )),
        }]
    }

    /// One PATCH of `work_notes` on the record the lookup found, by its `sys_id`, with the
    /// module's own account; one retry at most (an outage), inside `deadline`.
    fn write_note(
        &mut self,
        target: &NoteTarget,
        text: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<(), LookupError> {
        let Some(sys_id) = target.record_id.as_deref() else {
            return Err(bad_response("the lookup gave no sys_id for the record"));
        };
        let body = serde_json::json!({ "work_notes": text });
        let response = self.send_signed_in(
            Method::Patch,
            &note_url(&self.base_url, target.kind, sys_id)?,
            &Body::Json(&body),
            deadline,
            &mut RetryBudget::for_check(),
            audit,
        )?;
        interpret_note(sys_id, &response)
    }
}
