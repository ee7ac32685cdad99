//! The PVWA portal answers, each parser run on every input: the logon token
//! (`backend::portal::interpret_logon`), the account search (`pick_account`) and the
//! Password/Retrieve answer or error body (`interpret_retrieve`).
//!
//! Input: a header line `<status> <target user> <target address>`, then the body.
//! Invariants: no panic; a token only from a 200 and never empty; a picked account only
//! from a 200, with an ID, and the user and address asked for (case-insensitively); a
//! Retrieve is accepted only on a 200, refused by the portal only on a 4xx other than
//! 401 and 429; every message from the server is sanitised.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_ticket::backend::portal::{self, Account};
use pam_ticket::backend::{Lookup, LookupError};
use pam_ticket::http::HttpResponse;
use pam_ticket_fuzz::{assert_shown_text, check_lookup_error, split_header, status};

fuzz_target!(|data: &[u8]| {
    let Some((header, body)) = split_header(data) else {
        return;
    };
    let mut words = header.split(' ');
    let Some(status) = words.next().and_then(status) else {
        return;
    };
    let user = words.next().unwrap_or("");
    let address = words.next().unwrap_or("");
    let response = HttpResponse {
        status,
        headers: vec![("Retry-After".to_string(), "7".to_string())],
        body: body.to_vec().into(),
    };

    match portal::interpret_logon(response.clone()) {
        Ok(token) => {
            assert_eq!(status, 200, "a logon token from HTTP {status}");
            assert!(!token.is_empty(), "an empty logon token");
        }
        Err(error) => check_lookup_error(&error),
    }

    match portal::pick_account(&response, user, address) {
        Ok(account) => {
            assert_eq!(status, 200, "an account from HTTP {status}");
            assert!(!account.id.is_empty(), "an account without an id");
            assert!(account.user_name.eq_ignore_ascii_case(user));
            assert!(account.address.eq_ignore_ascii_case(address));
        }
        Err(error) => check_lookup_error(&error),
    }

    let account = Account {
        id: "42_7".to_string(),
        user_name: user.to_string(),
        address: address.to_string(),
    };
    match portal::interpret_retrieve(response, &account, "ServiceNow") {
        Ok(Lookup::AcceptedByPortal { detail }) => {
            assert_eq!(status, 200, "a Retrieve accepted on HTTP {status}");
            assert_shown_text(&detail, "the acceptance detail");
        }
        Ok(other) => panic!("Retrieve gave a ticket record: {other:?}"),
        Err(error) => {
            if let LookupError::RefusedByPortal { .. } = error {
                assert!(
                    (400..=499).contains(&status) && status != 401 && status != 429,
                    "a portal refusal on HTTP {status}"
                );
            }
            check_lookup_error(&error);
        }
    }
});
