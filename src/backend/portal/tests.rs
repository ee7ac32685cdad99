use super::*;

fn response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec().into(),
    }
}

fn account() -> Account {
    Account {
        id: "12_3".to_string(),
        user_name: "root".to_string(),
        address: "db01.example.com".to_string(),
    }
}

#[test]
fn reason_expands_placeholders() {
    let login = Login::new("alice@root@db01.example.com", None, None);
    let target = login.target.clone().expect("target");
    assert_eq!(
        expand_reason("SSH by %u as %t on %h (100%% %x)", &login, &target),
        "SSH by alice as root on db01.example.com (100% %x)"
    );
}

#[test]
fn domain_accounts_are_searched_by_domain() {
    let login = Login::new("alice@admin#corp.example.com@web01", None, None);
    let target = login.target.expect("target");
    assert_eq!(account_address(&target), "corp.example.com");
}

#[test]
fn logon_token_is_a_json_string() {
    let token = interpret_logon(response(200, "\"tok-123\"")).expect("token");
    assert_eq!(token.as_str(), Some("tok-123"));
    assert!(matches!(
        interpret_logon(response(200, "{\"a\":1}")),
        Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
    ));
    assert_eq!(
        interpret_logon(response(
            403,
            r#"{"ErrorCode":"PASWS013E","ErrorMessage":"Authentication failure for User [gw]."}"#
        ))
        .err(),
        Some(LookupError::AccountRefused {
            status: 403,
            detail: "PASWS013E: Authentication failure for User [gw].".to_string()
        })
    );
    // Older portals refuse a logon with a 500; the code says what it is.
    assert!(matches!(
        interpret_logon(response(
            500,
            r#"{"ErrorCode":"ITATS004E","ErrorMessage":"Authentication failure for User [gw]."}"#
        )),
        Err(LookupError::AccountRefused { status: 500, .. })
    ));
    assert!(matches!(
        interpret_logon(response(503, r#"{"ErrorCode":"X","ErrorMessage":"down"}"#)),
        Err(LookupError::Unavailable(
            crate::backend::Outage::ServerError { status: 503, .. }
        ))
    ));
}

#[test]
fn exactly_one_account_must_match() {
    let body = r#"{"value":[
        {"id":"12_3","userName":"ROOT","address":"db01.example.com"},
        {"id":"12_4","userName":"root","address":"db01.example.com.old"},
        {"id":"12_5","userName":"rootx","address":"db01.example.com"}],"count":3}"#;
    assert_eq!(
        pick_account(&response(200, body), "root", "DB01.example.com"),
        Ok(Account {
            id: "12_3".to_string(),
            user_name: "ROOT".to_string(),
            address: "db01.example.com".to_string()
        })
    );
    let none = pick_account(&response(200, r#"{"value":[],"count":0}"#), "root", "x");
    assert!(
        matches!(none, Err(LookupError::NotCheckable { ref message }) if message.contains("No vault account root@x")),
        "{none:?}"
    );
    let two = r#"{"value":[{"id":"1","userName":"a","address":"h"},{"id":"2","userName":"A","address":"H"}],"count":2}"#;
    assert!(matches!(
        pick_account(&response(200, two), "a", "h"),
        Err(LookupError::NotCheckable { ref message }) if message.starts_with("2 vault accounts match a@h")
    ));
}

#[test]
fn a_duplicate_key_is_a_bad_response() {
    let body = r#"{"value":[],"value":[{"id":"12_3","userName":"root","address":"db01.example.com"}],"count":1}"#;
    assert!(matches!(
        pick_account(&response(200, body), "root", "db01.example.com"),
        Err(LookupError::BadAnswer(BadAnswer::BadResponse { ref detail }))
            if detail.contains("twice")
    ));
    let body = r#"{"value":[{"id":"12_3","userName":"nobody","userName":"root","address":"db01.example.com"}],"count":1}"#;
    assert!(matches!(
        pick_account(&response(200, body), "root", "db01.example.com"),
        Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
    ));
    // A refusal with two codes is not the portal's verdict either.
    assert!(matches!(
        interpret_retrieve(
            response(
                403,
                r#"{"ErrorCode":"ITATS542E","ErrorMessage":"no","ErrorCode":"X"}"#
            ),
            &account(),
            "ServiceNow"
        ),
        Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
            status: 403,
            ..
        }))
    ));
}

#[test]
fn retrieve_verdicts() {
    assert!(matches!(
        interpret_retrieve(response(200, "\"s3cr3t\""), &account(), "ServiceNow"),
        Ok(Lookup::AcceptedByPortal { ref detail }) if !detail.contains("s3cr3t")
    ));
    assert_eq!(
        interpret_retrieve(
            response(
                403,
                "{\"ErrorCode\":\"ITATS542E\",\"ErrorMessage\":\"Ticket INC1 is not valid:\\u001b[31m closed\"}"
            ),
            &account(),
            "ServiceNow"
        ),
        Err(LookupError::RefusedByPortal {
            code: Some("ITATS542E".to_string()),
            message: "Ticket INC1 is not valid: [31m closed".to_string()
        })
    );
    // After a logon and a search that worked, no status but the verdict is an outage.
    for status in [401, 429, 500, 502, 503] {
        let answer = interpret_retrieve(
            response(status, r#"{"ErrorCode":"X","ErrorMessage":"y"}"#),
            &account(),
            "ServiceNow",
        );
        assert_eq!(
            answer,
            Err(LookupError::BadAnswer(BadAnswer::TicketCheckFailed {
                what: format!("HTTP {status}: X: y")
            }))
        );
    }
    assert!(matches!(
        interpret_retrieve(response(404, "<html>"), &account(), "ServiceNow"),
        Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
            status: 404,
            ..
        }))
    ));
}

#[test]
fn retrieve_accepts_only_the_password_string() {
    for body in [" \"s3cr3t\"\n", "\"with \\\"escapes\\\" \\u00e9\""] {
        assert!(
            matches!(
                interpret_retrieve(response(200, body), &account(), "ServiceNow"),
                Ok(Lookup::AcceptedByPortal { .. })
            ),
            "{body}"
        );
    }
    for body in [
        "",
        "   ",
        "\"\"",
        "<html><body>Down for maintenance</body></html>",
        "{\"password\":\"s3cr3t\"}",
        "[\"s3cr3t\"]",
        "\"s3cr3t\" trailing",
        "\"unterminated",
        "null",
        "42",
    ] {
        assert_eq!(
            interpret_retrieve(response(200, body), &account(), "ServiceNow"),
            Err(bad_response(
                "Password/Retrieve answered 200 without the password string (a maintenance or proxy page?)"
            )),
            "{body:?}"
        );
    }
}

/// After a logon that worked, what would be an outage at the account search is not:
/// its text comes from PAM_USER, which the person connecting chooses.
#[test]
fn a_failed_account_search_is_never_an_outage() {
    for (status, what) in [
        (500, "server error HTTP 500: X: y"),
        (503, "server error HTTP 503: X: y"),
        (429, "rate limited (HTTP 429)"),
    ] {
        assert_eq!(
            pick_account(
                &response(status, r#"{"ErrorCode":"X","ErrorMessage":"y"}"#),
                "root",
                "db01.example.com"
            ),
            Err(LookupError::BadAnswer(BadAnswer::TargetLookupFailed {
                what: what.to_string()
            }))
        );
    }
    use crate::http::Unreachable;
    for why in [
        Unreachable::TimedOut,
        Unreachable::ConnectionReset,
        Unreachable::ConnectionRefused,
    ] {
        assert_eq!(
            search_failed(LookupError::from(TransportError::Unreachable(why))),
            LookupError::BadAnswer(BadAnswer::TargetLookupFailed {
                what: why.to_string()
            })
        );
    }
    // The gateway user refused, or a certificate that does not verify, keep their kind.
    assert!(matches!(
        pick_account(&response(403, "{}"), "root", "db01.example.com"),
        Err(LookupError::AccountRefused { status: 403, .. })
    ));
    assert!(matches!(
        search_failed(LookupError::from(TransportError::UntrustedCertificate(
            "x".to_string()
        ))),
        LookupError::UntrustedServer { .. }
    ));
}

/// `pam-ticket check` lists the accounts after its logon the way a login searches, and
/// reports a listing with no answer the way a login would take it: not an outage.
#[test]
fn the_probe_reads_a_failed_account_listing_as_a_login_would() {
    use crate::fakes::{ManualClock, Wire, answer};
    use crate::http::Deadline;
    let wire = Wire::new();
    wire.expect(Method::Post, "/Logon/", Ok(answer(200, "\"tok\"")))
        .expect(Method::Get, "/API/Accounts?limit=1", Ok(answer(503, "")))
        .expect(Method::Get, "/API/Accounts?limit=1", Ok(answer(503, "")))
        .expect(Method::Post, "/API/Auth/Logoff/", Ok(answer(200, "{}")));
    let mut portal = Portal::new(
        wire.client(),
        PortalSettings {
            url: crate::config::parse_https_url("https://portal.example.com/PasswordVault")
                .expect("a URL"),
            auth_method: crate::config::PortalAuthMethod::CyberArk,
            identity_url: None,
            account: crate::config::Credentials {
                username: "gw".to_string(),
                password: Secret::from_string("pw".to_string()),
                source: std::path::PathBuf::from("/etc/security/portal.account"),
            },
            ticketing_system_name: "ServiceNow".to_string(),
            reason_template: "SSH".to_string(),
        },
        std::path::PathBuf::from("/nonexistent/pam_ticket-cache"),
    );
    let clock = ManualClock::new();
    let probed = portal.probe(Deadline::new(&clock, Duration::from_secs(10)));
    assert_eq!(
        probed.err(),
        Some(LookupError::BadAnswer(BadAnswer::TargetLookupFailed {
            what: "server error HTTP 503".to_string()
        }))
    );
}

#[test]
fn a_failed_retrieve_request_is_never_an_outage() {
    use crate::http::Unreachable;
    for why in [
        Unreachable::TimedOut,
        Unreachable::ConnectionReset,
        Unreachable::ConnectionRefused,
    ] {
        assert!(matches!(
            retrieve_failed(TransportError::Unreachable(why)),
            LookupError::BadAnswer(BadAnswer::TicketCheckFailed { .. })
        ));
    }
    assert!(matches!(
        retrieve_failed(TransportError::UntrustedCertificate("x".to_string())),
        LookupError::UntrustedServer { .. }
    ));
}
