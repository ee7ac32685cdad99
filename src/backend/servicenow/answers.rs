//! Reading the instance's answers: tickets, memberships, roles, choices and the answer to
//! a work note. Anything but exactly what was asked for is a bad answer, never a match.

use serde_json::Value;

use super::{PersonQuery, person_fields};
use crate::backend::cmdb::referenced_ci;
use crate::backend::tables::no_such_table;
use crate::backend::tables::table_spec;
use crate::backend::{LookupError, bad_response, sanitise, status_error};
use crate::config::{UserMatchField, UserRole};
use crate::http::HttpResponse;
use crate::ticket::{Choice, Ticket, TicketId};

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
    if !is_sys_id(group) {
        return Err(bad_response(
            "the ticket's assignment_group is not a sys_id",
        ));
    }
    Ok(format!(
        "user.{}={identity}^group={group}",
        match_field.field()
    ))
}

/// The rows of a Table API list answer (`{"result": [...]}`) to a query whose every
/// status but 200 is an error of the usual meaning.
pub(in crate::backend) fn result_rows(response: &HttpResponse) -> Result<Vec<Value>, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    match document {
        Value::Object(mut object) => match object.remove("result") {
            Some(Value::Array(rows)) => Ok(rows),
            _ => Err(bad_response("no result list")),
        },
        _ => Err(bad_response("no result list")),
    }
}

/// 32 hexadecimal digits: the only shape of a sys_id, checked before one that came in an
/// answer goes into a query.
pub fn is_sys_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// A member when a row is exactly the membership asked for; a row of anyone else's
/// means the query did not mean what was sent, so the answer is not trusted at all.
pub fn interpret_membership(
    people: &PersonQuery,
    identity: &str,
    group: &str,
    response: &HttpResponse,
) -> Result<bool, LookupError> {
    let rows = result_rows(response)?;
    let user_field = people.walked("user");
    for row in &rows {
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
    // The v1 API answered 404 for "no match"; keep reading it as such.
    if response.status == 404 && error_detail(&response.body).contains("No Record found") {
        return Err(LookupError::NotFound);
    }
    // Every other status but 200 is an error; a duplicate key anywhere (two "state"s, two
    // "result"s) makes the answer unreadable.
    let records = result_rows(response)?;
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
        unanswered: Vec::new(),
        // Only an answer to a query that asked for `cmdb_ci` carries the key.
        configuration_items: record
            .get("cmdb_ci")
            .map(|_| referenced_ci(record, "cmdb_ci").into_iter().collect()),
    })
}

/// The stored value of a field, whichever display mode the answer used: a plain string,
/// `{"value": …}` (display_value=all, or a reference link), or absent.
pub(in crate::backend) fn field_value(record: &Value, field: &str) -> Option<String> {
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
pub(in crate::backend) fn error_detail(body: &[u8]) -> String {
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

/// The role names in a `sys_user_has_role` answer.
pub fn interpret_roles(response: &HttpResponse) -> Result<Vec<String>, LookupError> {
    let rows = result_rows(response)?;
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
    match response.status {
        200 => {}
        404 => return Err(LookupError::NotFound),
        _ => return Err(status_error(response, error_detail(&response.body))),
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

/// The choices in a `sys_choice` answer, each once (an instance with several languages
/// has a row per language).
pub fn interpret_choices(response: &HttpResponse) -> Result<Vec<Choice>, LookupError> {
    let rows = result_rows(response)?;
    let mut choices: Vec<Choice> = Vec::new();
    for row in &rows {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BadAnswer, Outage};
    use crate::http::percent_encode;
    use crate::ticket::TicketKind;
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
            " javascript:gs.getUserID()",
            "\tjavascript:gs.getUserID()",
            "bob javascript:x",
            "bob ",
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
