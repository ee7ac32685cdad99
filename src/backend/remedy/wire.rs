//! The AR System REST API on the wire, as pure functions: the entry query's URL and its
//! qualification, the `AR-JWT` header, the log-on answer, the entry answer and AR error
//! bodies. No I/O: the client in `mod.rs` sends and receives, these build and read.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::backend::{LookupError, NoteTarget, bad_response, sanitise, status_error};
use crate::config::{BaseUrl, RemedySettings, UserRole};
use crate::http::{HttpResponse, percent_encode};
use crate::secret::{Secret, SecretText};
use crate::ticket::TicketKind;
use crate::ticket::{Choice, ConfigurationItem, Ticket, TicketId};

/// AR System message numbers the module reacts to.
const ARERR_ENTRY_DOES_NOT_EXIST: i64 = 302;
pub(super) const ARERR_FORM_DOES_NOT_EXIST: i64 = 303;
const ARERR_AUTHENTICATION_FAILED: i64 = 623;

pub use super::forms::{FormSpec, form_spec, no_such_form};

/// `GET {SystemURL}/api/arsys/v1/entry/{form}?q=…&fields=values(…)&limit=2`, the form name
/// and every parameter percent-encoded. `limit=2` is enough to tell "exactly one" from
/// "more than one". `with_ci` adds the form's CI field (ValidateConfigurationItem).
pub fn query_url(base_url: &BaseUrl, spec: &FormSpec<'_>, id: &TicketId, with_ci: bool) -> String {
    format!(
        "{}?q={}&fields={}&limit=2",
        base_url.join(&format!(
            "/api/arsys/v1/entry/{}",
            percent_encode(spec.form)
        )),
        percent_encode(&qualification(spec.id_field, &id.text)),
        percent_encode(&format!("values({})", spec.fields(with_ci).join(","))),
    )
}

/// `AR-JWT <token>` in a buffer wiped on drop, or `None` when the token is not text.
pub fn authorization(token: &Secret) -> Option<SecretText> {
    crate::http::prefixed_token("AR-JWT ", token)
}

/// `'<field>' = "<value>"`: the AR System's quoting, a `'` doubled inside a field name and a
/// `"` doubled inside a value. The ID has already passed the charset check; the quoting is
/// done anyway so that the qualification is right whatever reaches it.
pub fn qualification(field: &str, value: &str) -> String {
    format!(
        "'{}' = \"{}\"",
        field.replace('\'', "''"),
        value.replace('"', "\"\"")
    )
}

/// One message of an AR System error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArMessage {
    pub number: Option<i64>,
    pub text: String,
}

impl ArMessage {
    /// `ARERR 623 Authentication failed`, for logs; the text is sanitised.
    pub fn describe(&self) -> String {
        match self.number {
            Some(number) => format!("ARERR {number} {}", self.text),
            None => self.text.clone(),
        }
        .trim()
        .to_string()
    }
}

/// The first message of an AR error body (`[{"messageType","messageText","messageNumber",
/// "messageAppendedText"}]`), preferring one of type ERROR. The appended text is left out:
/// it may hold server internals and adds nothing to the decision.
pub fn ar_error(body: &[u8]) -> Option<ArMessage> {
    let document = crate::json::parse(body).ok()?;
    let messages = document.as_array()?;
    let message = messages
        .iter()
        .find(|message| message.get("messageType").and_then(Value::as_str) == Some("ERROR"))
        .or_else(|| messages.first())?;
    let number = message.get("messageNumber").and_then(|number| {
        number
            .as_i64()
            .or_else(|| number.as_str().and_then(|text| text.trim().parse().ok()))
    });
    let text = sanitise(
        message
            .get("messageText")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    Some(ArMessage { number, text })
}

pub fn error_detail(response: &HttpResponse) -> String {
    ar_error(&response.body)
        .map(|message| message.describe())
        .unwrap_or_default()
}

/// The token from a log-on answer, or why there is none. A refused log-on (401/403, or
/// ARERR 623 whatever the status) is the module's own account being refused: denied in
/// both fail modes, never "ticket invalid" and never an outage. The answer is taken over
/// so that its body, the token, is wiped with it.
pub fn read_token(response: HttpResponse) -> Result<Secret, LookupError> {
    if response.status != 200 {
        let message = ar_error(&response.body);
        if let Some(message) = message
            .as_ref()
            .filter(|message| message.number == Some(ARERR_AUTHENTICATION_FAILED))
        {
            return Err(LookupError::AccountRefused {
                status: response.status,
                detail: message.describe(),
            });
        }
        return Err(status_error(&response, error_detail(&response)));
    }
    let body = Secret::from_wiped(response.body);
    let token = body.as_bytes().trim_ascii();
    if !crate::token_cache::is_token_text(token) {
        return Err(bad_response("the log-on answer is not a token"));
    }
    Ok(Secret::new(token.to_vec()))
}

/// Turns the answer to an entry query into a ticket or an error.
pub fn interpret(
    id: &TicketId,
    spec: &FormSpec<'_>,
    with_ci: bool,
    response: &HttpResponse,
) -> Result<Ticket, LookupError> {
    let (form, id_field) = (spec.form, spec.id_field);
    if response.status != 200 {
        let message = ar_error(&response.body);
        match message.as_ref().and_then(|message| message.number) {
            Some(ARERR_ENTRY_DOES_NOT_EXIST) => return Err(LookupError::NotFound),
            Some(ARERR_FORM_DOES_NOT_EXIST) => {
                return Err(LookupError::Misconfigured {
                    detail: format!(
                        "Remedy form {form:?} does not exist ({}); check the Remedy*Form settings",
                        message
                            .map(|message| message.describe())
                            .unwrap_or_default()
                    ),
                });
            }
            _ => {}
        }
        return Err(status_error(response, error_detail(response)));
    }
    let bad = bad_response;
    // A duplicate key anywhere (two "Status"es, two "entries") makes the answer unreadable.
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad(&problem.to_string()))?;
    let entries = document
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no entries list"))?;
    let values = match entries.as_slice() {
        [] => return Err(LookupError::NotFound),
        [entry] => entry
            .get("values")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("an entry without values"))?,
        more => {
            return Err(LookupError::Ambiguous {
                records: more.len(),
            });
        }
    };
    // The qualification asked for exactly this ID; an entry with another one means the
    // query did not mean what was sent, so nothing in it is trusted.
    if values.get(id_field).and_then(Value::as_str) != Some(id.text.as_str()) {
        return Err(LookupError::Ambiguous { records: 1 });
    }
    // Fields as the server sent them: choices and requesters are matched raw (a control
    // character in them is a mismatch) and sanitised only where they are shown. Only
    // spaces around a value are dropped; an all-space value counts as absent.
    let text = |field: &str| {
        values
            .get(field)
            .and_then(Value::as_str)
            .map(|text| text.trim_matches(' '))
            .filter(|text| !text.is_empty())
    };
    // Remedy returns selection fields as their labels: label and stored value are one.
    let choice = |field: &str| text(field).map(|label| Choice::new(label, label));
    let people = &spec.people;
    let wants = |role| spec.roles.contains(&role);
    let requesters: Vec<String> = people
        .requesters
        .iter()
        .filter_map(|field| text(field))
        .map(str::to_string)
        .collect();
    let assignee = wants(UserRole::Assignee)
        .then(|| text(people.assignee))
        .flatten()
        .map(str::to_string);
    let assignment_group = wants(UserRole::AssignmentGroup)
        .then(|| text(people.group))
        .flatten()
        .map(str::to_string);
    Ok(Ticket {
        id: id.text.clone(),
        kind: id.kind,
        state: choice(spec.status_field),
        approval: spec.approval_field.and_then(choice),
        planned_start: spec
            .window
            .and_then(|(start, _)| text(start))
            .and_then(parse_ar_date),
        planned_end: spec
            .window
            .and_then(|(_, end)| text(end))
            .and_then(parse_ar_date),
        requesters,
        assignee,
        assignment_group,
        group_member: None,
        unanswered: Vec::new(),
        // The CI field holds the CI's name; a form without one names no CI.
        // What a work note needs beside the ticket ID (a change's entry ID).
        record_id: spec.entry_id_field.and_then(text).map(str::to_string),
        configuration_items: with_ci.then(|| {
            spec.ci_field
                .and_then(text)
                .map(|name| vec![ConfigurationItem::named(name)])
                .unwrap_or_default()
        }),
    })
}

/// The longest `Description` (the work log's summary line) written; the field is short on
/// the work-log forms.
const WORK_LOG_SUMMARY_LIMIT: usize = 100;

/// The work-log form and the new entry's values for a note on `target`, per ticket kind:
/// an incident's work log names it by its Incident Number, a change's by the entry ID the
/// lookup read.
pub fn work_log_entry<'s>(
    settings: &'s RemedySettings,
    target: &NoteTarget,
    text: &str,
) -> Result<(&'s str, Value), LookupError> {
    let summary: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(WORK_LOG_SUMMARY_LIMIT)
        .collect();
    let mut values = serde_json::Map::new();
    let form = match target.kind {
        TicketKind::Incident => {
            values.insert(
                settings.incident_work_log_id_field.clone(),
                Value::from(target.id.as_str()),
            );
            values.insert("View Access".into(), Value::from("Internal"));
            values.insert("Secure Work Log".into(), Value::from("No"));
            settings.incident_work_log_form.as_str()
        }
        TicketKind::Change => {
            let entry_id = target.record_id.as_deref().ok_or_else(|| {
                bad_response(&format!(
                    "the lookup read no {} for the change",
                    settings.change_entry_id_field
                ))
            })?;
            values.insert(
                settings.change_work_log_id_field.clone(),
                Value::from(entry_id),
            );
            settings.change_work_log_form.as_str()
        }
        // No work-log form is mapped for these yet: one arm each when they get one.
        TicketKind::WorkOrder | TicketKind::ProblemInvestigation => {
            return Err(LookupError::Misconfigured {
                detail: format!(
                    "work notes are written to incidents and changes only, not to {} tickets",
                    target.kind.type_name()
                ),
            });
        }
        TicketKind::RequestItem | TicketKind::CatalogTask | TicketKind::Problem => {
            return Err(super::no_such_form(target.kind));
        }
    };
    values.insert("Work Log Type".into(), Value::from("General Information"));
    values.insert("Description".into(), Value::from(summary));
    values.insert("Detailed Description".into(), Value::from(text));
    Ok((form, serde_json::json!({ "values": values })))
}

/// Reads the answer to an entry creation: 201 (with a `Location`), or the AR error.
pub fn interpret_created(form: &str, response: &HttpResponse) -> Result<(), LookupError> {
    if response.status == 201 {
        return Ok(());
    }
    let message = ar_error(&response.body);
    if message.as_ref().and_then(|message| message.number) == Some(ARERR_FORM_DOES_NOT_EXIST) {
        return Err(LookupError::Misconfigured {
            detail: format!(
                "Remedy form {form:?} does not exist; check the Remedy*WorkLogForm settings"
            ),
        });
    }
    if (200..300).contains(&response.status) {
        return Err(bad_response(&format!(
            "HTTP {} where 201 Created was expected",
            response.status
        )));
    }
    Err(status_error(response, error_detail(response)))
}

/// `GET {SystemURL}/api/arsys/v1.0/fields/{form}?field_criteria=NAME,DATATYPE,LIMIT`: the
/// definitions of a form's fields, with the limits that hold a selection field's choices.
/// Field names are not keys of this API (it addresses a single field by its number), so
/// the whole form's list is read once and the field looked up by name.
pub fn fields_url(base_url: &BaseUrl, form: &str) -> String {
    format!(
        "{}?field_criteria={}",
        base_url.join(&format!("/api/arsys/v1.0/fields/{}", percent_encode(form))),
        percent_encode("NAME,DATATYPE,LIMIT"),
    )
}

/// The choices of the selection field `field` in a form's field definitions: a JSON array
/// of `{"id","name","datatype","limit":{…,"selection_values":[{"id","name"}…]}}`. The
/// shape of `limit` is unverified against a real server (docs/remedy.md): it follows the
/// C API's enum limits (a regular or a custom list of names) in the REST API's snake
/// case. A selection value may also be given as a bare string.
pub fn interpret_field_choices(
    response: &HttpResponse,
    form: &str,
    field: &str,
) -> Result<Vec<Choice>, LookupError> {
    if response.status != 200 {
        if ar_error(&response.body).and_then(|message| message.number)
            == Some(ARERR_FORM_DOES_NOT_EXIST)
        {
            return Err(LookupError::Misconfigured {
                detail: format!(
                    "Remedy form {form:?} does not exist ({})",
                    error_detail(response)
                ),
            });
        }
        return Err(status_error(response, error_detail(response)));
    }
    let bad = bad_response;
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad(&problem.to_string()))?;
    let definitions = document
        .as_array()
        .ok_or_else(|| bad("the field definitions are not a list"))?;
    let definition = definitions
        .iter()
        .find(|definition| definition.get("name").and_then(Value::as_str) == Some(field))
        .ok_or_else(|| bad(&format!("form {form:?} has no field {field:?}")))?;
    let values = definition
        .get("limit")
        .and_then(|limit| limit.get("selection_values"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(&format!(
                "field {field:?} of form {form:?} is not a selection field"
            ))
        })?;
    let mut choices = Vec::with_capacity(values.len());
    for value in values {
        let name = match value {
            Value::String(name) => name.as_str(),
            other => other
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a selection value without a name"))?,
        };
        // Remedy stores and returns the label itself.
        choices.push(Choice::new(name, name));
    }
    Ok(choices)
}

/// The REST API's date-time: `2026-11-30T10:00:00.000+0000` (ISO 8601 with milliseconds
/// and an offset). A value that does not parse counts as missing, which fails the window
/// check rather than passing it.
pub fn parse_ar_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::backend::{BadAnswer, Outage};
    use crate::config::{RemedyPeople, RemedySettings, UserRole};
    use crate::ticket::TicketKind;
    use serde_json::json;
    use std::time::Duration;

    /// The default forms and fields (as the configuration sets them).
    pub(in crate::backend::remedy) fn settings() -> RemedySettings {
        RemedySettings {
            incident_form: "HPD:Help Desk".to_string(),
            incident_id_field: "Incident Number".to_string(),
            incident_status_field: "Status".to_string(),
            incident_requester_fields: vec![
                "Customer Login ID".to_string(),
                "Submitter".to_string(),
            ],
            change_form: "CHG:Infrastructure Change".to_string(),
            change_id_field: "Infrastructure Change ID".to_string(),
            change_status_field: "Change Request Status".to_string(),
            change_approval_field: "Approval Status".to_string(),
            change_start_field: "Scheduled Start Date".to_string(),
            change_end_field: "Scheduled End Date".to_string(),
            change_requester_fields: vec!["Requested By".to_string(), "Submitter".to_string()],
            incident_ci_field: "HPD_CI".to_string(),
            change_ci_field: "CI_Name".to_string(),
            work_order_form: "WOI:WorkOrder".to_string(),
            work_order_id_field: "Work Order ID".to_string(),
            work_order_status_field: "Status".to_string(),
            work_order_requester_fields: vec![
                "Customer Login ID".to_string(),
                "Submitter".to_string(),
            ],
            problem_investigation_form: "PBM:Problem Investigation".to_string(),
            problem_investigation_id_field: "Problem Investigation ID".to_string(),
            problem_investigation_status_field: "Investigation Status".to_string(),
            problem_investigation_requester_fields: vec!["Submitter".to_string()],
            people: RemedyPeople {
                incident_assignee_field: "Assignee Login ID".to_string(),
                incident_group_field: "Assigned Group ID".to_string(),
                change_assignee_field: "ASLOGID".to_string(),
                change_group_field: "ASGRPID".to_string(),
                support_group_form: "CTM:Support Group Association".to_string(),
                support_group_login_field: "Login ID".to_string(),
                support_group_id_field: "Support Group ID".to_string(),
                roles: vec![UserRole::Requester],
            },
            token_lifetime: Duration::from_secs(3300),
            incident_work_log_form: "HPD:WorkLog".to_string(),
            incident_work_log_id_field: "Incident Number".to_string(),
            change_work_log_form: "CHG:WorkLog".to_string(),
            change_work_log_id_field: "Infra. Change Entry ID".to_string(),
            change_entry_id_field: "Request ID".to_string(),
            read_change_entry_id: false,
        }
    }

    fn id(text: &str, kind: TicketKind) -> TicketId {
        TicketId {
            text: text.to_string(),
            kind,
        }
    }

    fn response(status: u16, body: &Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: body.to_string().into_bytes().into(),
        }
    }

    fn judge(ticket: &TicketId, answer: &HttpResponse) -> Result<Ticket, LookupError> {
        let settings = settings();
        let spec = form_spec(&settings, ticket.kind).expect("a Remedy kind");
        interpret(ticket, &spec, false, answer)
    }

    /// An AR System error body.
    pub(in crate::backend::remedy) fn ar_body(number: i64, text: &str) -> Value {
        json!([{"messageType": "ERROR", "messageText": text, "messageNumber": number,
                "messageAppendedText": "secret internals"}])
    }

    #[test]
    fn qualification_quotes_field_names_and_values() {
        assert_eq!(
            qualification("Incident Number", "INC000000000001"),
            r#"'Incident Number' = "INC000000000001""#
        );
        assert_eq!(
            qualification("O'Brien's ID", "x"),
            r#"'O''Brien''s ID' = "x""#
        );
        // An injected qualification stays inside one string literal.
        assert_eq!(
            qualification("Incident Number", r#"X" OR 'Status' != "none"#),
            r#"'Incident Number' = "X"" OR 'Status' != ""none""#
        );
    }

    #[test]
    fn query_url_encodes_form_qualification_and_fields() {
        let base =
            crate::config::parse_https_url("https://remedy.example.com:8443/").expect("valid URL");
        let settings = settings();
        let spec = |kind| form_spec(&settings, kind).expect("a Remedy kind");
        let url = query_url(
            &base,
            &spec(TicketKind::Incident),
            &id("INC000000000001", TicketKind::Incident),
            false,
        );
        assert_eq!(
            url,
            "https://remedy.example.com:8443/api/arsys/v1/entry/HPD%3AHelp%20Desk\
             ?q=%27Incident%20Number%27%20%3D%20%22INC000000000001%22\
             &fields=values%28Incident%20Number%2CStatus%2CCustomer%20Login%20ID%2CSubmitter%29\
             &limit=2"
        );
        let url = query_url(
            &base,
            &spec(TicketKind::Change),
            &id("CRQ000000000001", TicketKind::Change),
            false,
        );
        assert!(
            url.contains("/entry/CHG%3AInfrastructure%20Change?"),
            "{url}"
        );
        // Submitter is a requester field once, even though both lists could share it.
        assert!(url.contains("Requested%20By%2CSubmitter%29"), "{url}");
        // The CI field only when the CI check is on.
        let url = query_url(
            &base,
            &spec(TicketKind::Incident),
            &id("INC000000000001", TicketKind::Incident),
            true,
        );
        assert!(url.contains("Submitter%2CHPD_CI%29"), "{url}");
        let url = query_url(
            &base,
            &spec(TicketKind::WorkOrder),
            &id("WO0000000000001", TicketKind::WorkOrder),
            true,
        );
        assert!(
            url.contains("/entry/WOI%3AWorkOrder?q=%27Work%20Order%20ID%27"),
            "{url}"
        );
    }

    #[test]
    fn reads_an_incident() {
        let body = json!({"entries": [{"values": {
            "Incident Number": "INC000000000001", "Status": "In Progress",
            "Customer Login ID": "alice", "Submitter": null
        }, "_links": {}}], "_links": {}});
        let ticket = judge(
            &id("INC000000000001", TicketKind::Incident),
            &response(200, &body),
        )
        .expect("ticket");
        assert_eq!(
            ticket.state,
            Some(Choice::new("In Progress", "In Progress"))
        );
        assert_eq!(ticket.approval, None);
        assert_eq!(ticket.requesters, vec!["alice".to_string()]);
    }

    #[test]
    fn reads_a_change_with_dates_and_nulls() {
        let body = json!({"entries": [{"values": {
            "Infrastructure Change ID": "CRQ000000000001",
            "Change Request Status": "Implementation In Progress",
            "Approval Status": "Approved",
            "Scheduled Start Date": "2026-11-30T10:00:00.000+0000",
            "Scheduled End Date": "2026-11-30T14:00:00.000+0200",
            "Requested By": "alice", "Submitter": "carol\u{1b}[31m"
        }}]});
        let ticket = judge(
            &id("CRQ000000000001", TicketKind::Change),
            &response(200, &body),
        )
        .expect("ticket");
        assert_eq!(ticket.approval, Some(Choice::new("Approved", "Approved")));
        assert_eq!(
            ticket.planned_start.map(|date| date.to_rfc3339()),
            Some("2026-11-30T10:00:00+00:00".to_string())
        );
        assert_eq!(
            ticket.planned_end.map(|date| date.to_rfc3339()),
            Some("2026-11-30T12:00:00+00:00".to_string())
        );
        // Kept as sent: matched raw (and never matching with the escape in it), sanitised
        // only where shown.
        assert_eq!(
            ticket.requesters,
            vec!["alice".to_string(), "carol\u{1b}[31m".to_string()]
        );

        let body = json!({"entries": [{"values": {
            "Infrastructure Change ID": "CRQ000000000006", "Change Request Status": "Scheduled",
            "Approval Status": null, "Scheduled Start Date": null,
            "Scheduled End Date": "not a date", "Requested By": "alice"
        }}]});
        let ticket = judge(
            &id("CRQ000000000006", TicketKind::Change),
            &response(200, &body),
        )
        .expect("ticket");
        assert_eq!(ticket.approval, None);
        assert_eq!(ticket.planned_start, None);
        assert_eq!(ticket.planned_end, None);
    }

    #[test]
    fn anything_but_exactly_the_ticket_is_refused() {
        let incident = id("INC000000000001", TicketKind::Incident);
        assert_eq!(
            judge(&incident, &response(200, &json!({"entries": []}))),
            Err(LookupError::NotFound)
        );
        let two = json!({"entries": [
            {"values": {"Incident Number": "INC000000000001"}},
            {"values": {"Incident Number": "INC000000000002"}}]});
        assert_eq!(
            judge(&incident, &response(200, &two)),
            Err(LookupError::Ambiguous { records: 2 })
        );
        let other = json!({"entries": [{"values": {"Incident Number": "INC000000000002"}}]});
        assert_eq!(
            judge(&incident, &response(200, &other)),
            Err(LookupError::Ambiguous { records: 1 })
        );
        let lower = json!({"entries": [{"values": {"Incident Number": "inc000000000001"}}]});
        assert_eq!(
            judge(&incident, &response(200, &lower)),
            Err(LookupError::Ambiguous { records: 1 })
        );
    }

    #[test]
    fn error_bodies_decide_between_not_found_unavailable_and_misconfigured() {
        let incident = id("INC000000000001", TicketKind::Incident);
        assert_eq!(
            judge(
                &incident,
                &response(404, &ar_body(302, "Entry does not exist in database"))
            ),
            Err(LookupError::NotFound)
        );
        assert!(matches!(
            judge(&incident, &response(404, &ar_body(303, "Form does not exist on server"))),
            Err(LookupError::Misconfigured { detail }) if detail.contains("ARERR 303")
        ));
        assert_eq!(
            judge(
                &incident,
                &response(401, &ar_body(623, "Authentication failed"))
            ),
            Err(LookupError::AccountRefused {
                status: 401,
                detail: "ARERR 623 Authentication failed".to_string()
            })
        );
        assert_eq!(
            judge(
                &incident,
                &response(500, &ar_body(90, "Cannot establish a\nnetwork connection"))
            ),
            Err(LookupError::Unavailable(Outage::ServerError {
                status: 500,
                detail: "ARERR 90 Cannot establish a network connection".to_string()
            }))
        );
        assert!(matches!(
            judge(
                &incident,
                &response(400, &ar_body(1587, "bad qualification"))
            ),
            Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                status: 400,
                ..
            }))
        ));
        assert!(matches!(
            judge(
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
        let incident = id("INC000000000002", TicketKind::Incident);
        let closed_then_open = r#"{"entries":[{"values":{"Incident Number":"INC000000000002","Status":"Closed","Status":"In Progress"}}]}"#;
        let empty_then_entry = r#"{"entries":[],"entries":[{"values":{"Incident Number":"INC000000000002","Status":"In Progress"}}]}"#;
        for body in [closed_then_open, empty_then_entry] {
            let answer = HttpResponse {
                status: 200,
                headers: vec![],
                body: body.as_bytes().to_vec().into(),
            };
            assert!(
                matches!(
                    judge(&incident, &answer),
                    Err(LookupError::BadAnswer(BadAnswer::BadResponse { ref detail }))
                        if detail.contains("twice")
                ),
                "{body}"
            );
        }
        // An error body with two message numbers decides nothing: not "not found".
        let two_numbers = r#"[{"messageType":"ERROR","messageNumber":303,"messageNumber":302,"messageText":"x"}]"#;
        assert!(matches!(
            judge(
                &incident,
                &HttpResponse {
                    status: 404,
                    headers: vec![],
                    body: two_numbers.as_bytes().to_vec().into()
                }
            ),
            Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                status: 404,
                ..
            }))
        ));
    }

    #[test]
    fn error_messages_leave_out_the_appended_text() {
        let message = ar_error(ar_body(623, "Authentication failed").to_string().as_bytes());
        assert_eq!(
            message.map(|message| message.describe()),
            Some("ARERR 623 Authentication failed".to_string())
        );
        let numbered_as_text =
            json!([{"messageType": "WARNING", "messageText": "w", "messageNumber": "9"}]);
        assert_eq!(
            ar_error(numbered_as_text.to_string().as_bytes()),
            Some(ArMessage {
                number: Some(9),
                text: "w".to_string()
            })
        );
        assert_eq!(ar_error(b"{}"), None);
    }

    #[test]
    fn log_on_answers() {
        let ok = HttpResponse {
            status: 200,
            headers: vec![],
            body: b"eyJhbGciOi.J9x-_y\r\n".to_vec().into(),
        };
        assert_eq!(
            read_token(ok).ok().as_ref().and_then(Secret::as_str),
            Some("eyJhbGciOi.J9x-_y")
        );
        assert!(matches!(
            read_token(response(401, &ar_body(623, "Authentication failed"))),
            Err(LookupError::AccountRefused { status: 401, detail })
                if detail == "ARERR 623 Authentication failed"
        ));
        // A refused log-on is the account refused, whatever status carries it.
        assert!(matches!(
            read_token(response(500, &ar_body(623, "Authentication failed"))),
            Err(LookupError::AccountRefused { status: 500, .. })
        ));
        assert!(matches!(
            read_token(response(503, &json!([]))),
            Err(LookupError::Unavailable(Outage::ServerError {
                status: 503,
                ..
            }))
        ));
        for body in [&b""[..], b"two words", b"tab\there"] {
            let answer = HttpResponse {
                status: 200,
                headers: vec![],
                body: body.to_vec().into(),
            };
            assert!(matches!(
                read_token(answer),
                Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
            ));
        }
    }
}
