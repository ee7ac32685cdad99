//! The ServiceNow Table API answer: `backend::servicenow::interpret`.
//!
//! Input: a header line `<status> <incident|change> <ticket id>`, then the response body
//! as the server sent it. Invariants: no panic; only a 200 yields a ticket; the answer it
//! came from holds exactly one record, whose `number` (plain or `{"value": …}`) is the ID
//! asked for; the ticket's ID and kind are the ones asked for; every error's server text
//! is sanitised.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_ticket::backend::servicenow;
use pam_ticket::http::HttpResponse;
use pam_ticket::ticket::TicketKind;
use pam_ticket_fuzz::{accepted_json, check_lookup_error, split_header, status, ticket_id};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((header, body)) = split_header(data) else {
        return;
    };
    let mut words = header.split(' ');
    let (Some(status), Some(id)) = (
        words.next().and_then(status),
        ticket_id(words.next().unwrap_or(""), words.next().unwrap_or("")),
    ) else {
        return;
    };
    let response = HttpResponse {
        status,
        headers: vec![("Retry-After".to_string(), "7".to_string())],
        body: body.to_vec().into(),
    };
    match servicenow::interpret(&id, &response) {
        Ok(ticket) => {
            assert_eq!(status, 200, "a ticket from HTTP {status}");
            let document = accepted_json(body);
            let records = document["result"].as_array().map(Vec::as_slice);
            let [record] = records.unwrap_or_default() else {
                panic!("a ticket from an answer without exactly one record: {records:?}");
            };
            let number = match &record["number"] {
                Value::Object(field) => field.get("value").and_then(Value::as_str),
                other => other.as_str(),
            };
            assert_eq!(
                number,
                Some(id.text.as_str()),
                "a record of another ticket was accepted"
            );
            assert_eq!(ticket.id, id.text, "a ticket with another ID was accepted");
            assert_eq!(ticket.kind, id.kind);
            if id.kind == TicketKind::Incident {
                assert_eq!(ticket.approval, None, "an incident with an approval");
            }
            assert!(ticket.requesters.iter().all(|login| !login.is_empty()));
        }
        Err(error) => check_lookup_error(&error),
    }
});
