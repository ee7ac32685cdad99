//! ServiceNow through the Table API: one GET per ticket, stored values only (a change
//! checked for its configuration items: one more, see [`super::cmdb`]).

use serde_json::Value;
use zeroize::Zeroizing;

use super::cmdb::{MAX_AFFECTED_CIS, ci_field_list, interpret_affected_cis, referenced_ci};
use super::tables::no_such_table;
pub use super::tables::{TableSpec, table_spec};
use super::{
    ChoiceField, KnownChoices, Lookup, LookupError, NoteTarget, PROBE_MEMBER, ProbeLine,
    TicketSource, bad_response, membership_problem, probe_answer, probe_id, sanitise, status_error,
    why_unanswered,
};
use crate::audit::AuditSink;
use crate::config::{BaseUrl, Credentials, People, PersonFields, UserMatchField, UserRole};
use crate::http::{Body, Deadline, HttpClient, HttpResponse, Method, RetryBudget, percent_encode};
use crate::login::Login;
use crate::secret::SecretText;
use crate::ticket::{Choice, Ticket, TicketId, TicketKind};

pub struct ServiceNow {
    client: HttpClient,
    base_url: BaseUrl,
    account: Credentials,
    people: PersonQuery,
    /// Whether a lookup reads the record's `sys_id` (WorkNotes=Yes), which a work note is
    /// written to.
    reads_sys_id: bool,
    /// ValidateConfigurationItem: fetch the ticket's configuration items too.
    with_ci: bool,
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
        account: Credentials,
        people: PersonQuery,
    ) -> ServiceNow {
        ServiceNow {
            client,
            base_url,
            account,
            people,
            reads_sys_id: false,
            with_ci: false,
        }
    }

    /// WorkNotes=Yes: every lookup also reads the record's `sys_id`, so that a note is
    /// written to it with no second query.
    pub fn reading_sys_id(mut self, reads_sys_id: bool) -> ServiceNow {
        self.reads_sys_id = reads_sys_id;
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
        if self.reads_sys_id {
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

    /// `GET task_ci` for the affected CIs of a change, found by the change's number
    /// (which passed the ID rules) through the `task` reference.
    pub fn affected_cis_url(&self, id: &TicketId) -> String {
        format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit={MAX_AFFECTED_CIS}&sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url.join("/api/now/table/task_ci"),
            percent_encode(&format!("task.number={}", id.text)),
            percent_encode(&ci_field_list("ci_item").join(",")),
        )
    }

    fn get(&self, url: &str, deadline: Deadline) -> Result<HttpResponse, LookupError> {
        // Decodes to the password: wiped (on drop) as soon as the request is over.
        let authorization = basic_authorization(&self.account);
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization.as_str()),
        ];
        Ok(self.client.send_with_retry(
            Method::Get,
            url,
            &headers,
            &Body::Empty,
            deadline,
            &mut RetryBudget::for_check(),
        )?)
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

impl ServiceNow {
    /// One request signed in as the module's account, retried only while `retries` has a
    /// retry: the path the work notes and `pam-ticket check`'s role query take. It must
    /// sign in the way the lookup does, so a change to the lookup's sign-in belongs here
    /// too.
    fn send_signed_in(
        &self,
        method: Method,
        url: &str,
        body: &Body<'_>,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<HttpResponse, LookupError> {
        // Decodes to the password: wiped (on drop) as soon as the request is over.
        let authorization = basic_authorization(&self.account);
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization.as_str()),
        ];
        Ok(self
            .client
            .send_with_retry(method, url, &headers, body, deadline, retries)?)
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

/// The role names in a `sys_user_has_role` answer.
pub fn interpret_roles(response: &HttpResponse) -> Result<Vec<String>, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
    let mut roles: Vec<String> = rows
        .iter()
        .filter_map(|row| field_value(row, "role.name"))
        .collect();
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// Reads the answer to a work-note PATCH: 200 with the record's `sys_id`.
pub fn interpret_note(sys_id: &str, response: &HttpResponse) -> Result<(), LookupError> {
    let detail = error_detail(&response.body);
    match response.status {
        200 => {}
        404 => return Err(LookupError::NotFound),
        _ => return Err(status_error(response, detail)),
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let written = document
        .get("result")
        .and_then(|result| field_value(result, "sys_id"));
    if written.as_deref() != Some(sys_id) {
        return Err(bad_response(
            "the answer does not name the record written to",
        ));
    }
    Ok(())
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

/// The choices in a `sys_choice` answer, each once (an instance with several languages
/// has a row per language).
pub fn interpret_choices(response: &HttpResponse) -> Result<Vec<Choice>, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
    let mut choices: Vec<Choice> = Vec::new();
    for row in rows {
        let (Some(label), Some(value)) = (field_value(row, "label"), field_value(row, "value"))
        else {
            return Err(bad_response("a choice without label or value"));
        };
        let choice = Choice::new(label, value);
        if !choices.contains(&choice) {
            choices.push(choice);
        }
    }
    Ok(choices)
}

impl TicketSource for ServiceNow {
    fn system_name(&self) -> &str {
        "ServiceNow"
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    /// One `sys_choice` query per field, with the module's own account.
    fn known_choices(&mut self, fields: &[ChoiceField], deadline: Deadline) -> Vec<KnownChoices> {
        fields
            .iter()
            .map(|field| {
                let authorization = basic_authorization(&self.account);
                let headers = [
                    ("Accept", "application/json"),
                    ("Authorization", authorization.as_str()),
                ];
                let answer = match choices_url(&self.base_url, *field) {
                    Some(url) => self
                        .client
                        .send(Method::Get, &url, &headers, &Body::Empty, deadline)
                        .map_err(LookupError::from)
                        .and_then(|response| interpret_choices(&response)),
                    None => Err(no_such_table(match field {
                        ChoiceField::State(kind) | ChoiceField::Approval(kind) => *kind,
                    })),
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
        _audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        let spec = table_spec(id.kind).ok_or_else(|| no_such_table(id.kind))?;
        let mut ticket =
            interpret_for(id, &self.people, &self.get(&self.query_url(id)?, deadline)?)?;
        if self.with_ci {
            let record_cis = ticket.configuration_items.get_or_insert_with(Vec::new);
            if spec.affected_cis {
                // One more request, on the same deadline: the change's affected CIs.
                let answer = self.get(&self.affected_cis_url(id), deadline)?;
                for item in interpret_affected_cis(&answer)? {
                    if !record_cis.contains(&item) {
                        record_cis.push(item);
                    }
                }
            }
        }
        Ok(Lookup::Found(ticket))
    }

    /// The default probe (a lookup of the probe ticket), and, when AllowedUserRoles has
    /// assignment_group, one membership query: an account that may read incidents but
    /// not `sys_user_grmember` shows here, not at a login.
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let login = Login::new("pam-ticket-check", None, Some("pam-ticket".to_string()));
        // Nothing here warns; anything that did would reach syslog.
        let mut warnings = crate::audit::SystemAudit::new(None, false);
        let found = probe_answer(self.lookup(
            &probe_id(TicketKind::Incident),
            &login,
            deadline,
            &mut warnings,
        ))?;
        let mut lines = vec![ProbeLine::Ok(found)];
        if self.people.roles.contains(&UserRole::AssignmentGroup) {
            let nobodys_group = "0".repeat(32);
            lines.push(
                match self.group_member(PROBE_MEMBER, &nobodys_group, deadline, &mut warnings) {
                    Ok(_) => ProbeLine::Ok(
                        "sys_user_grmember answered a membership query (AllowedUserRoles=assignment_group)"
                            .to_string(),
                    ),
                    Err(error) => {
                        ProbeLine::Problem(membership_problem("sys_user_grmember", &error))
                    }
                },
            );
        }
        if self.with_ci {
            // The incident query above dot-walked cmdb_ci; a change also reads task_ci.
            let change = probe_id(TicketKind::Change);
            let answer = self
                .get(&self.affected_cis_url(&change), deadline)
                .and_then(|answer| interpret_affected_cis(&answer));
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
        Ok(lines)
    }

    /// One `sys_user_grmember` query. The identity reaches an encoded query, where no
    /// escape for `^` exists: an identity that could change the query's meaning is
    /// refused before anything is sent, and an answer row that is not the membership
    /// asked for is a bad answer, never a member.
    fn group_member(
        &mut self,
        identity: &str,
        group: &str,
        deadline: Deadline,
        _audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        let query = membership_query(self.people.match_field, identity, group)?;
        let authorization = basic_authorization(&self.account);
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization.as_str()),
        ];
        let response = self.client.send_with_retry(
            Method::Get,
            &self.membership_url(&query),
            &headers,
            &Body::Empty,
            deadline,
            &mut RetryBudget::for_check(),
        );
        drop(authorization);
        interpret_membership(&self.people, identity, group, &response?)
    }

    /// The account's roles from `sys_user_has_role`: a read, never a write. Writing
    /// `work_notes` on incident and change_request comes with `itil` on a stock instance
    /// (or `sn_incident_write` / `sn_change_write`, or `admin`); a customised ACL can say
    /// otherwise, so a role found is "expected", not proven. An account that may not read
    /// its roles leaves the question open.
    fn write_access(&mut self, deadline: Deadline) -> Vec<ProbeLine> {
        let url = roles_url(&self.base_url, &self.account.username);
        let answer = self
            .send_signed_in(
                Method::Get,
                &url,
                &Body::Empty,
                deadline,
                &mut RetryBudget::spent(),
            )
            .and_then(|response| interpret_roles(&response));
        let account = sanitise(&self.account.username);
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
        _audit: &mut dyn AuditSink,
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
        )?;
        interpret_note(sys_id, &response)
    }
}

/// `user.<field>=<identity>^group=<sys_id>`, or why the values cannot go into a query.
/// ServiceNow documents no escape in encoded queries: `^` would start a new condition
/// (`^NQ` a new OR'd query), a value starting `javascript:` is run on the server, and
/// control characters have no place in a name. The group comes from the ticket: it must
/// be a sys_id.
pub fn membership_query(
    match_field: UserMatchField,
    identity: &str,
    group: &str,
) -> Result<String, LookupError> {
    if crate::config::breaks_encoded_query(identity) {
        return Err(LookupError::NotCheckable {
            message: format!(
                "Your name in the ticketing system ({}) cannot be looked up in a group: it holds characters an encoded query cannot carry; ask your administrator to map it in UserMapFile",
                sanitise(identity)
            ),
        });
    }
    if group.len() != 32 || !group.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(bad_response(
            "the ticket's assignment_group is not a sys_id",
        ));
    }
    Ok(format!(
        "user.{}={identity}^group={group}",
        match_field.field()
    ))
}

/// A member when a row is exactly the membership asked for; a row of anyone else's
/// means the query did not mean what was sent, so the answer is not trusted at all.
pub fn interpret_membership(
    people: &PersonQuery,
    identity: &str,
    group: &str,
    response: &HttpResponse,
) -> Result<bool, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
    let user_field = people.walked("user");
    for row in rows {
        let same_user =
            field_value(row, &user_field).is_some_and(|held| held.eq_ignore_ascii_case(identity));
        let same_group =
            field_value(row, "group").is_some_and(|held| held.eq_ignore_ascii_case(group));
        if !(same_user && same_group) {
            return Err(bad_response(
                "sys_user_grmember answered with a membership that was not asked for",
            ));
        }
    }
    Ok(!rows.is_empty())
}

/// Turns the Table API's answer into a ticket or an error, reading people as the
/// module always did (requesters by user_name).
pub fn interpret(id: &TicketId, response: &HttpResponse) -> Result<Ticket, LookupError> {
    interpret_for(id, &PersonQuery::default(), response)
}

/// Turns the Table API's answer into a ticket or an error, reading the people fields
/// `people` asked for.
pub fn interpret_for(
    id: &TicketId,
    people: &PersonQuery,
    response: &HttpResponse,
) -> Result<Ticket, LookupError> {
    let detail = error_detail(&response.body);
    match response.status {
        200 => {}
        // The v1 API answered 404 for "no match"; keep reading it as such.
        404 if detail.contains("No Record found") => return Err(LookupError::NotFound),
        _ => return Err(status_error(response, detail)),
    }
    let bad = bad_response;
    // A duplicate key anywhere (two "state"s, two "result"s) makes the answer unreadable.
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad(&problem.to_string()))?;
    let records = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no result list"))?;
    let record = match records.as_slice() {
        [] => return Err(LookupError::NotFound),
        [record] => record,
        more => {
            return Err(LookupError::Ambiguous {
                records: more.len(),
            });
        }
    };
    // The query asked for number=ID; anything else coming back means the query did not
    // mean what we sent, so trust nothing in it.
    if field_value(record, "number").as_deref() != Some(id.text.as_str()) {
        return Err(LookupError::Ambiguous { records: 1 });
    }
    let spec = table_spec(id.kind).ok_or_else(|| no_such_table(id.kind))?;
    let date = |field: Option<&str>| {
        field
            .and_then(|field| field_value(record, field))
            .and_then(|text| parse_glide_date(&text))
    };
    let fields = person_fields(id.kind);
    let wants = |role| people.roles.contains(&role);
    let person = |reference: &str| {
        field_value(record, &people.walked(reference)).filter(|held| !held.is_empty())
    };
    Ok(Ticket {
        record_id: field_value(record, "sys_id").filter(|sys_id| !sys_id.is_empty()),
        id: id.text.clone(),
        kind: id.kind,
        state: field_choice(record, "state"),
        approval: spec.approval.and_then(|field| field_choice(record, field)),
        planned_start: date(spec.window.map(|(start, _)| start)),
        planned_end: date(spec.window.map(|(_, end)| end)),
        requesters: fields
            .requesters
            .iter()
            .filter_map(|field| person(field))
            .collect(),
        assignee: wants(UserRole::Assignee)
            .then(|| person(fields.assignee))
            .flatten(),
        assignment_group: wants(UserRole::AssignmentGroup)
            .then(|| field_value(record, fields.group))
            .flatten()
            .filter(|group| !group.is_empty()),
        group_member: None,
        // Only an answer to a query that asked for `cmdb_ci` carries the key.
        configuration_items: record
            .get("cmdb_ci")
            .map(|_| referenced_ci(record, "cmdb_ci").into_iter().collect()),
    })
}

/// The stored value of a field, whichever display mode the answer used: a plain string,
/// `{"value": …}` (display_value=all, or a reference link), or absent.
pub(super) fn field_value(record: &Value, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(text) => Some(text.clone()),
        Value::Object(object) => object
            .get("value")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// A choice field: its label (display value) and stored value, as the server sent them.
/// They are matched raw and sanitised only where they are shown.
fn field_choice(record: &Value, field: &str) -> Option<Choice> {
    let value = field_value(record, field)?;
    let label = record
        .get(field)
        .and_then(|field| field.get("display_value"))
        .and_then(Value::as_str)
        .map_or_else(|| value.clone(), str::to_string);
    if value.is_empty() && label.is_empty() {
        return None;
    }
    Some(Choice::new(label, value))
}

/// ServiceNow's stored date-time: `YYYY-MM-DD HH:MM:SS` in UTC; `""` when empty.
pub fn parse_glide_date(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|naive| naive.and_utc())
}

/// The `error.message` and `error.detail` of a ServiceNow error body, sanitised.
pub(super) fn error_detail(body: &[u8]) -> String {
    let Ok(document) = crate::json::parse(body) else {
        return String::new();
    };
    let error = document.get("error");
    let part = |name: &str| {
        error
            .and_then(|error| error.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let joined = [part("message"), part("detail")]
        .into_iter()
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    sanitise(&joined)
}

/// `Basic <base64 of user:password>`, built in buffers sized before the password goes in
/// and wiped on drop.
pub fn basic_authorization(account: &Credentials) -> SecretText {
    let password = account.password.as_bytes();
    let mut raw = Zeroizing::new(Vec::with_capacity(
        account.username.len() + 1 + password.len(),
    ));
    raw.extend_from_slice(account.username.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(password);
    crate::http::prefixed_base64("Basic ", &raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BadAnswer, Outage};
    use serde_json::json;

    fn response(status: u16, body: Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Retry-After".to_string(), "7".to_string())],
            body: body.to_string().into_bytes().into(),
        }
    }

    fn id(text: &str, kind: TicketKind) -> TicketId {
        TicketId {
            text: text.to_string(),
            kind,
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                crate::http::prefixed_base64("", input.as_bytes()).as_str(),
                expected
            );
        }
    }

    #[test]
    fn reads_display_value_all_records() {
        let body = json!({"result": [{
            "number": {"display_value": "CHG0030001", "value": "CHG0030001"},
            "state": {"display_value": "Implement", "value": "-1"},
            "approval": {"display_value": "Approved", "value": "approved"},
            "start_date": {"display_value": "2026-11-30 05:00:00", "value": "2026-11-30 10:00:00"},
            "end_date": {"display_value": "", "value": ""},
            "requested_by.user_name": {"display_value": "alice", "value": "alice"}
        }]});
        let ticket =
            interpret(&id("CHG0030001", TicketKind::Change), &response(200, body)).expect("ticket");
        assert_eq!(ticket.state, Some(Choice::new("Implement", "-1")));
        assert_eq!(ticket.approval, Some(Choice::new("Approved", "approved")));
        assert_eq!(
            ticket.planned_start.map(|date| date.to_rfc3339()),
            Some("2026-11-30T10:00:00+00:00".to_string())
        );
        assert_eq!(ticket.planned_end, None);
        assert_eq!(ticket.requesters, vec!["alice".to_string()]);
    }

    #[test]
    fn reads_plain_string_records() {
        let body = json!({"result": [{"number": "INC0010001", "state": "2", "caller_id.user_name": "alice"}]});
        let ticket = interpret(
            &id("INC0010001", TicketKind::Incident),
            &response(200, body),
        )
        .expect("ticket");
        assert_eq!(ticket.state, Some(Choice::new("2", "2")));
        assert_eq!(ticket.requesters, vec!["alice".to_string()]);
    }

    #[test]
    fn anything_but_exactly_the_ticket_is_refused() {
        let incident = id("INC0010001", TicketKind::Incident);
        assert_eq!(
            interpret(&incident, &response(200, json!({"result": []}))),
            Err(LookupError::NotFound)
        );
        let two = json!({"result": [{"number": "INC0010001"}, {"number": "INC0010002"}]});
        assert_eq!(
            interpret(&incident, &response(200, two)),
            Err(LookupError::Ambiguous { records: 2 })
        );
        let other = json!({"result": [{"number": "INC0010002"}]});
        assert_eq!(
            interpret(&incident, &response(200, other)),
            Err(LookupError::Ambiguous { records: 1 })
        );
    }

    #[test]
    fn errors_are_outages_refusals_or_bad_answers_never_invalid() {
        let incident = id("INC0010001", TicketKind::Incident);
        let unauthenticated = json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"});
        assert_eq!(
            interpret(&incident, &response(401, unauthenticated)),
            Err(LookupError::AccountRefused {
                status: 401,
                detail: "User Not Authenticated: Required to provide Auth information".to_string()
            })
        );
        let acl = json!({"error": {"message": "User Not Authorized", "detail": "Failed API level ACL Validation"}, "status": "failure"});
        assert!(matches!(
            interpret(&incident, &response(403, acl)),
            Err(LookupError::AccountRefused { status: 403, .. })
        ));
        assert_eq!(
            interpret(&incident, &response(429, json!({}))),
            Err(LookupError::Unavailable(Outage::RateLimited {
                retry_after: Some(7)
            }))
        );
        assert!(matches!(
            interpret(&incident, &response(503, json!({}))),
            Err(LookupError::Unavailable(Outage::ServerError {
                status: 503,
                ..
            }))
        ));
        assert!(matches!(
            interpret(&incident, &response(302, json!({}))),
            Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                status: 302,
                ..
            }))
        ));
        assert!(matches!(
            interpret(
                &incident,
                &HttpResponse {
                    status: 200,
                    headers: vec![],
                    body: b"<html>".to_vec().into()
                }
            ),
            Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
        ));
    }

    #[test]
    fn a_duplicate_key_is_a_bad_response() {
        let incident = id("INC0010002", TicketKind::Incident);
        let closed_then_open = r#"{"result":[{"number":"INC0010002","state":{"display_value":"Closed","value":"7"},"state":{"display_value":"In Progress","value":"2"}}]}"#;
        let empty_then_record = r#"{"result":[],"result":[{"number":"INC0010002","state":"2"}]}"#;
        for body in [closed_then_open, empty_then_record] {
            let answer = HttpResponse {
                status: 200,
                headers: vec![],
                body: body.as_bytes().to_vec().into(),
            };
            assert!(
                matches!(
                    interpret(&incident, &answer),
                    Err(LookupError::BadAnswer(BadAnswer::BadResponse { ref detail }))
                        if detail.contains("twice")
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn choices_are_kept_as_sent() {
        let body = json!({"result": [{"number": "INC0010001",
            "state": {"display_value": "In\u{0}Progress", "value": "2\u{202e}"}}]});
        let ticket = interpret(
            &id("INC0010001", TicketKind::Incident),
            &response(200, body),
        )
        .expect("ticket");
        assert_eq!(
            ticket.state,
            Some(Choice::new("In\u{0}Progress", "2\u{202e}"))
        );
    }

    #[test]
    fn membership_queries_refuse_what_would_change_their_meaning() {
        let group = "0a5f0000000000000000000000000001";
        assert_eq!(
            membership_query(UserMatchField::Email, "o'brien@x=y.example", group),
            Ok(format!("user.email=o'brien@x=y.example^group={group}"))
        );
        for identity in [
            "bob^NQuser.user_nameISNOTEMPTY",
            "JavaScript:gs.getUserID()",
            "bob\n",
            "",
        ] {
            assert!(
                matches!(
                    membership_query(UserMatchField::UserName, identity, group),
                    Err(LookupError::NotCheckable { .. })
                ),
                "{identity:?}"
            );
        }
        assert!(matches!(
            membership_query(UserMatchField::UserName, "bob", "abc^NQx"),
            Err(LookupError::BadAnswer(_))
        ));
        let people = PersonQuery::default();
        let rows = |rows: Value| response(200, json!({ "result": rows }));
        assert_eq!(
            interpret_membership(
                &people,
                "bob",
                group,
                &rows(json!([{"user.user_name": "bob", "group": group}]))
            ),
            Ok(true)
        );
        assert_eq!(
            interpret_membership(&people, "bob", group, &rows(json!([]))),
            Ok(false)
        );
        assert!(matches!(
            interpret_membership(
                &people,
                "bob",
                group,
                &rows(json!([{"user.user_name": "carol", "group": group}]))
            ),
            Err(LookupError::BadAnswer(_))
        ));
    }

    #[test]
    fn percent_encoding_covers_query_syntax() {
        assert_eq!(percent_encode("number=INC1^NQ"), "number%3DINC1%5ENQ");
    }
}
