//! OAuth 2.0 token requests: ServiceNow's `POST /oauth_token.do` and Privilege Cloud's
//! Identity `POST /oauth2/platformtoken` take the same form-encoded grant (RFC 6749 §4.3,
//! §4.4, §6) and answer with the same JSON (§5.1), or with an error object (§5.2).
//!
//! A token endpoint that answers 400, 401 or 403 has refused the module's own client or
//! account (`invalid_client`, `invalid_grant`, `unauthorized_client`, `access_denied`):
//! that is never an outage, so it is denied in both fail modes. 5xx and 429 are outages,
//! as for every other call.

use serde_json::Value;

use crate::backend::{LookupError, bad_response, sanitise, status_error};
use crate::http::{Body, Deadline, HttpClient, HttpResponse, Method, RetryBudget};
use crate::json;
use crate::secret::Secret;
use crate::token_cache::is_token_text;

/// What the module asks for.
pub enum Grant<'a> {
    /// `grant_type=client_credentials`: the client alone (ServiceNow's
    /// oauth-client-credentials, Privilege Cloud's service user).
    ClientCredentials,
    /// `grant_type=password`: the client on behalf of an integration user.
    Password {
        username: &'a str,
        password: &'a str,
    },
    /// `grant_type=refresh_token`: a new access token for a refresh token.
    Refresh { refresh_token: &'a str },
}

impl Grant<'_> {
    fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password { .. } => "password",
            Grant::Refresh { .. } => "refresh_token",
        }
    }
}

/// The client's identity at the token endpoint.
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

/// A token endpoint's answer.
pub struct TokenAnswer {
    pub access_token: Secret,
    /// Seconds the access token lives, when the server said.
    pub expires_in: Option<u64>,
    /// Given with a password grant by ServiceNow.
    pub refresh_token: Option<Secret>,
}

/// Posts one grant to `url` and reads the answer.
pub fn request_token(
    http: &HttpClient,
    url: &str,
    client: &ClientCredentials<'_>,
    grant: &Grant<'_>,
    deadline: Deadline,
    retries: &mut RetryBudget,
) -> Result<TokenAnswer, LookupError> {
    let mut form = vec![
        ("grant_type", grant.name()),
        ("client_id", client.client_id),
        ("client_secret", client.client_secret),
    ];
    match grant {
        Grant::ClientCredentials => {}
        Grant::Password { username, password } => {
            form.push(("username", username));
            form.push(("password", password));
        }
        Grant::Refresh { refresh_token } => form.push(("refresh_token", refresh_token)),
    }
    let response = http.send_with_retry(
        Method::Post,
        url,
        &[("Accept", "application/json")],
        &Body::Form(&form),
        deadline,
        retries,
    )?;
    interpret_token_answer(response)
}

/// Reads a token endpoint's answer: a 200 with a Bearer token, or why there is none.
pub fn interpret_token_answer(response: HttpResponse) -> Result<TokenAnswer, LookupError> {
    if response.status != 200 {
        let detail = error_detail(&response);
        return Err(match response.status {
            status @ (400 | 401 | 403) => LookupError::AccountRefused { status, detail },
            _ => status_error(&response, detail),
        });
    }
    let Ok(mut value) = json::parse(&response.body) else {
        return Err(bad_response("the token answer is not JSON"));
    };
    let answer = read_answer(&value);
    json::wipe_strings(&mut value);
    answer
}

fn read_answer(value: &Value) -> Result<TokenAnswer, LookupError> {
    let Some(object) = value.as_object() else {
        return Err(bad_response("the token answer is not a JSON object"));
    };
    let token_type = object.get("token_type").and_then(Value::as_str);
    if !token_type.is_some_and(|kind| kind.eq_ignore_ascii_case("bearer")) {
        return Err(bad_response(&format!(
            "the token answer's token_type is {}, not Bearer",
            token_type.map_or("missing".to_string(), |kind| format!(
                "\"{}\"",
                sanitise(kind)
            ))
        )));
    }
    let access_token = object
        .get("access_token")
        .and_then(Value::as_str)
        .and_then(token_text)
        .ok_or_else(|| bad_response("the token answer holds no usable access_token"))?;
    let expires_in = match object.get("expires_in") {
        None | Some(Value::Null) => None,
        // RFC 6749 says a number; some servers send it as a string of digits.
        Some(Value::Number(number)) => Some(number.as_u64().ok_or_else(|| {
            bad_response("the token answer's expires_in is not a whole number of seconds")
        })?),
        Some(Value::String(text)) => Some(text.parse::<u64>().map_err(|_| {
            bad_response("the token answer's expires_in is not a whole number of seconds")
        })?),
        Some(_) => {
            return Err(bad_response(
                "the token answer's expires_in is not a whole number of seconds",
            ));
        }
    };
    if expires_in == Some(0) {
        return Err(bad_response("the token answer's expires_in is 0"));
    }
    let refresh_token = match object.get("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => None,
        Some(Value::String(text)) => {
            Some(token_text(text).ok_or_else(|| bad_response("the refresh_token is not a token"))?)
        }
        Some(_) => return Err(bad_response("the refresh_token is not a string")),
    };
    Ok(TokenAnswer {
        access_token,
        expires_in,
        refresh_token,
    })
}

/// A token as the cache and an Authorization header can carry it.
fn token_text(text: &str) -> Option<Secret> {
    let bytes = text.as_bytes();
    is_token_text(bytes).then(|| Secret::new(bytes.to_vec()))
}

/// RFC 6749 §5.2's `error` and `error_description`, sanitised; or the status alone.
fn error_detail(response: &HttpResponse) -> String {
    let Ok(value) = json::parse(&response.body) else {
        return String::new();
    };
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(|text| sanitise(&text.chars().take(200).collect::<String>()))
    };
    match (field("error"), field("error_description")) {
        (Some(error), Some(description)) if !description.is_empty() => {
            format!("{error}: {description}")
        }
        (Some(error), _) => error,
        (None, Some(description)) => description,
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BadAnswer, Outage};
    use crate::fakes::answer as http_answer;

    fn token(response: HttpResponse) -> Result<TokenAnswer, LookupError> {
        interpret_token_answer(response)
    }

    #[test]
    fn a_bearer_answer_gives_its_token_expiry_and_refresh_token() {
        let Ok(answer) = token(http_answer(
            200,
            r#"{"access_token":"abc.def","refresh_token":"r-1","scope":"useraccount",
               "token_type":"Bearer","expires_in":1799}"#,
        )) else {
            panic!("a good answer");
        };
        assert_eq!(answer.access_token.as_bytes(), b"abc.def");
        assert_eq!(answer.expires_in, Some(1799));
        assert_eq!(
            answer.refresh_token.as_ref().map(Secret::as_bytes),
            Some(&b"r-1"[..])
        );
        let Ok(answer) = token(http_answer(
            200,
            r#"{"access_token":"x","token_type":"bearer","expires_in":"3600"}"#,
        )) else {
            panic!("lower-case bearer and a string expiry");
        };
        assert_eq!(answer.expires_in, Some(3600));
        assert!(answer.refresh_token.is_none());
    }

    #[test]
    fn a_refused_client_is_the_account_refused_never_an_outage() {
        for status in [400, 401, 403] {
            match token(http_answer(
                status,
                r#"{"error":"invalid_client","error_description":"bad \u001b[31msecret"}"#,
            )) {
                Err(LookupError::AccountRefused {
                    status: got,
                    detail,
                }) => {
                    assert_eq!(got, status);
                    assert!(detail.starts_with("invalid_client: bad "), "{detail}");
                    assert!(!detail.contains('\u{1b}'), "{detail:?}");
                }
                _ => panic!("HTTP {status} must be the account refused"),
            }
        }
        assert!(matches!(
            token(http_answer(503, "down")),
            Err(LookupError::Unavailable(Outage::ServerError {
                status: 503,
                ..
            }))
        ));
        assert!(matches!(
            token(http_answer(429, "")),
            Err(LookupError::Unavailable(Outage::RateLimited { .. }))
        ));
        assert!(matches!(
            token(http_answer(302, "")),
            Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus { .. }))
        ));
    }

    #[test]
    fn answers_that_are_not_a_bearer_token_are_bad_answers() {
        for body in [
            "<html>login</html>",
            "[]",
            r#"{"access_token":"x","expires_in":60}"#,
            r#"{"access_token":"x","token_type":"MAC","expires_in":60}"#,
            r#"{"access_token":"","token_type":"Bearer"}"#,
            r#"{"access_token":"a b","token_type":"Bearer"}"#,
            r#"{"access_token":"x","token_type":"Bearer","expires_in":-5}"#,
            r#"{"access_token":"x","token_type":"Bearer","expires_in":0}"#,
            r#"{"access_token":"x","token_type":"Bearer","expires_in":true}"#,
            r#"{"access_token":"x","access_token":"y","token_type":"Bearer"}"#,
            r#"{"access_token":"x","token_type":"Bearer","refresh_token":7}"#,
        ] {
            assert!(
                matches!(
                    token(http_answer(200, body)),
                    Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
                ),
                "{body}"
            );
        }
    }
}
