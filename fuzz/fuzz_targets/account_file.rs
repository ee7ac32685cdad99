//! The account file (`Username="…"` and `Password="…"`; `ClientID` and `ClientSecret`
//! are refused here, they are for ServiceNow's OAuth methods): `config::parse_account_text`,
//! what `config::read_account_file` runs on the text of a file that passed its checks.
//!
//! Input: the file's text (UTF-8, as the reader requires). Invariants: no panic; an
//! accepted file gives a non-empty username and password; an error never repeats any of
//! the file's text (it may be part of the password and goes to syslog and the audit
//! file): it is one of a fixed set of messages and names the line only.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pam_ticket::config::{self, Origin};

/// Every message the account file parser may give. None of them carries file text.
const MESSAGES: &[&str] = &[
    "not a Key=\"Value\" line (the text is not repeated because it may hold a secret)",
    "Username is set twice",
    "Password is set twice",
    "ClientID is set twice",
    "ClientSecret is set twice",
    "an account file holds only Username, Password, ClientID and ClientSecret",
    "ClientID is not used here (the account logs on with Username and Password only); it is for ServiceNow with AuthMethod=oauth-client-credentials or oauth-password: remove it",
    "ClientSecret is not used here (the account logs on with Username and Password only); it is for ServiceNow with AuthMethod=oauth-client-credentials or oauth-password: remove it",
    "Username is missing",
    "Password is missing",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/security/pam_ticket.account");
    match config::parse_account_text(text, path) {
        Ok(credentials) => {
            assert!(!credentials.username.is_empty());
            assert!(!credentials.username.contains('\n'));
            assert!(!credentials.password.is_empty());
            assert_eq!(credentials.source, path);
        }
        Err(error) => {
            assert!(
                MESSAGES.contains(&error.problem.as_str()),
                "an account file error that is not one of the fixed messages: {:?}",
                error.problem
            );
            match &error.origin {
                Origin::File { path: at, line } => {
                    assert_eq!(at, path);
                    assert!(*line >= 1 && *line <= text.lines().count(), "line {line}");
                }
                Origin::Whole { path: at } => assert_eq!(at, path),
                Origin::ModuleArgument { .. } => panic!("an account file error at an argument"),
            }
        }
    }
});
