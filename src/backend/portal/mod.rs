//! Portal mode (FetchCredentialsThroughPVWA=Yes): the gateway holds no ticketing
//! credentials; it asks the CyberArk PVWA / Privilege Cloud portal to retrieve the target
//! account's password with the ticket attached, and the portal validates the ticket with
//! its own ticketing integration. A 200 from Retrieve means "accepted"; the password it
//! carries is wiped at once and never used.
//!
//! One exchange per answer, all inside the one deadline:
//! 1. `POST {PortalURL}/API/auth/{method}/Logon/` → session token (a JSON string);
//! 2. `GET {PortalURL}/API/Accounts?search=<user> <address>&limit=50` → the one account;
//! 3. `POST {PortalURL}/API/Accounts/{id}/Password/Retrieve` with the ticket;
//! 4. `POST {PortalURL}/API/Auth/Logoff/`, whatever happened after a successful logon.
//!
//! With `PortalAuthMethod=PlatformToken` (Privilege Cloud) step 1 is instead a platform
//! token: the cached one while it is usable, else one from the Identity tenant's
//! `POST {IdentityURL}/oauth2/platformtoken` (`grant_type=client_credentials`, the service
//! user as `client_id` and its password as `client_secret`), cached until shortly before
//! its `expires_in`. Steps 2 and 3 send it as `Authorization: Bearer <token>`; a 401 there
//! gets one new token and one retry of the call. There is no step 4: a platform token has
//! no logoff, it expires on its own.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    BadAnswer, Lookup, LookupError, ProbeLine, TicketSource, bad_response, sanitise, status_error,
};
use crate::audit::AuditSink;
use crate::config::PortalSettings;
use crate::http::TransportError;
use crate::http::percent_encode;
use crate::http::{Body, Deadline, HttpClient, HttpResponse, Method, RetryBudget};
use crate::login::{Login, Target};
use crate::oauth::{self, ClientCredentials, Grant};
use crate::secret::{Secret, SecretText};
use crate::ticket::TicketId;
use crate::token_cache::{FreshToken, TokenCache, TokenKind};

/// The page size of the account search; the exact match is looked for in this page.
const SEARCH_LIMIT: usize = 50;
/// Time kept back from the exchange so that the logoff can still be sent inside the
/// deadline (a fifth of the budget when that is less).
const LOGOFF_RESERVE: Duration = Duration::from_millis(500);
/// The longest a platform token is reused. Its `expires_in` decides first (the token is
/// renewed shortly before it); this bounds a token whose answer gave no expiry.
pub const PLATFORM_TOKEN_MAX_REUSE: Duration = Duration::from_secs(3600);
/// The Identity tenant's token endpoint, under IdentityURL.
pub const PLATFORM_TOKEN_PATH: &str = "/oauth2/platformtoken";

pub struct Portal {
    client: HttpClient,
    settings: PortalSettings,
    /// `Some` exactly with PortalAuthMethod=PlatformToken.
    platform: Option<PlatformTokens>,
}

/// Where platform tokens come from, and the cache that shares them between logins.
struct PlatformTokens {
    token_url: String,
    cache: TokenCache,
}

/// How one exchange's portal calls are authorised.
enum Credential {
    /// A PVWA session token from Logon, sent as it is (`Authorization: <token>`, no
    /// scheme, as PVWA wants it) and logged off afterwards.
    Session(Secret),
    /// A Privilege Cloud platform token, sent as `Authorization: Bearer <token>` and never
    /// logged off. `renewable` until the one renewal an exchange may make after a 401.
    Platform { token: Secret, renewable: bool },
}

impl Credential {
    /// The Authorization header's value, in a buffer wiped on drop; `None` when the token
    /// is not text.
    fn header(&self) -> Option<SecretText> {
        let (scheme, token) = match self {
            Credential::Session(token) => ("", token),
            Credential::Platform { token, .. } => ("Bearer ", token),
        };
        crate::http::prefixed_token(scheme, token)
    }

    /// The deadline for the calls between logon and logoff: time is kept back only when
    /// there is a logoff to send.
    fn exchange_deadline<'c>(&self, deadline: Deadline<'c>) -> Deadline<'c> {
        match self {
            Credential::Session(_) => keep_back(deadline),
            Credential::Platform { .. } => deadline,
        }
    }
}

/// The account the portal returned for the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub user_name: String,
    pub address: String,
}

impl Portal {
    /// `cache_directory` holds the platform-token cache (PortalAuthMethod=PlatformToken);
    /// the PVWA logons cache nothing.
    pub fn new(client: HttpClient, settings: PortalSettings, cache_directory: PathBuf) -> Portal {
        let platform = settings
            .identity_url
            .as_ref()
            .map(|identity| PlatformTokens {
                token_url: identity.join(PLATFORM_TOKEN_PATH),
                // One file per (Identity tenant, service user): two configurations never
                // share a token.
                cache: TokenCache::new(
                    cache_directory,
                    TokenKind::PlatformToken,
                    &identity.base,
                    &settings.account.username,
                    PLATFORM_TOKEN_MAX_REUSE,
                ),
            });
        Portal {
            client,
            settings,
            platform,
        }
    }

    /// `POST {IdentityURL}/oauth2/platformtoken` with the service user as the OAuth
    /// client. A 400, 401 or 403 is the service user refused (denied in both fail modes);
    /// 5xx, 429 and an unreachable tenant are outages, as any logon's.
    fn request_platform_token(
        &self,
        platform: &PlatformTokens,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<FreshToken, LookupError> {
        let account = &self.settings.account;
        let secret = account
            .password
            .as_str()
            .ok_or_else(|| LookupError::Misconfigured {
                detail: format!("the password in {} is not UTF-8", account.source.display()),
            })?;
        let answer = oauth::request_token(
            &self.client,
            &platform.token_url,
            &ClientCredentials {
                client_id: &account.username,
                client_secret: secret,
            },
            &Grant::ClientCredentials,
            deadline,
            retries,
        )?;
        Ok(FreshToken {
            token: answer.access_token,
            expires_in: answer.expires_in,
        })
    }

    /// A platform token for a login: the cached one while it is usable and not the one
    /// the portal just `rejected`, else a new one requested under the cache lock, so that
    /// of many logins at once only the first asks ([`TokenCache::obtain`]).
    fn platform_token(
        &self,
        platform: &PlatformTokens,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
        rejected: Option<&Secret>,
    ) -> Result<Secret, LookupError> {
        platform
            .cache
            .obtain(deadline, audit, rejected, || {
                self.request_platform_token(platform, deadline, retries)
            })
            .map(|obtained| obtained.token)
    }

    /// The logon step of a login: a platform token, or a PVWA logon.
    fn open(
        &self,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
    ) -> Result<Credential, LookupError> {
        match &self.platform {
            Some(platform) => Ok(Credential::Platform {
                token: self.platform_token(platform, deadline, retries, audit, None)?,
                renewable: true,
            }),
            None => Ok(Credential::Session(self.logon(deadline, retries)?)),
        }
    }

    /// Sends one portal call through `send` with the credential's Authorization header.
    /// A 401 to a platform token (expired or revoked on the tenant) gets one new token
    /// and the call is sent once more with it; the outcome of that is the answer. The
    /// token request's own failure is returned as the outer error, as at the logon step.
    fn send_authorized(
        &self,
        credential: &mut Credential,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
        mut send: impl FnMut(&[(&str, &str)], &mut RetryBudget) -> Result<HttpResponse, TransportError>,
    ) -> Result<Result<HttpResponse, TransportError>, LookupError> {
        let first = send_with(credential, retries, &mut send)?;
        let refused = matches!(&first, Ok(answer) if answer.status == 401);
        let (Some(platform), Credential::Platform { token, renewable }) =
            (&self.platform, &mut *credential)
        else {
            return Ok(first);
        };
        if !refused || !*renewable {
            return Ok(first);
        }
        *renewable = false;
        *token = self.platform_token(platform, deadline, retries, audit, Some(token))?;
        send_with(credential, retries, &mut send)
    }

    /// Logs a PVWA session off (a platform token has no logoff): `None` when there was
    /// nothing to log off.
    fn close(&self, credential: &Credential, deadline: Deadline) -> Option<Result<(), String>> {
        match credential {
            Credential::Session(token) => Some(self.logoff(token, deadline)),
            Credential::Platform { .. } => None,
        }
    }

    fn url(&self, path: &str) -> String {
        self.settings.url.join(path)
    }

    /// Logs the gateway user on; the token is kept in a wiped buffer.
    fn logon(&self, deadline: Deadline, retries: &mut RetryBudget) -> Result<Secret, LookupError> {
        let account = &self.settings.account;
        let password = account
            .password
            .as_str()
            .ok_or_else(|| LookupError::Misconfigured {
                detail: format!("the password in {} is not UTF-8", account.source.display()),
            })?;
        let mut body = json!({
            "username": account.username,
            "password": password,
            "concurrentSession": true,
        });
        let url = self.url(&format!(
            "/API/auth/{}/Logon/",
            self.settings.auth_method.path_segment()
        ));
        let result = self.client.send_with_retry(
            Method::Post,
            &url,
            &[("Accept", "application/json")],
            &Body::Json(&body),
            deadline,
            retries,
        );
        // The JSON value holds a copy of the password; wipe it before anything else.
        crate::json::wipe_strings(&mut body);
        let response = result?;
        interpret_logon(response)
    }

    /// Ends the session. Best effort: its outcome changes nothing for a login (it is
    /// returned only for `pam-ticket check` to report), but it is only started while time
    /// is left, so that it never stretches the check past the deadline.
    fn logoff(&self, token: &Secret, deadline: Deadline) -> Result<(), String> {
        let Some(token) = token.as_str() else {
            return Err("the session token is not text".to_string());
        };
        if deadline.remaining().is_none() {
            return Err("no time left before the deadline".to_string());
        }
        let response = self
            .client
            .send(
                Method::Post,
                &self.url("/API/Auth/Logoff/"),
                &[("Accept", "application/json"), ("Authorization", token)],
                &Body::Empty,
                deadline,
            )
            .map_err(|error| error.to_string())?;
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        let detail = error_detail(&response.body);
        Err(if detail.is_empty() {
            format!("HTTP {}", response.status)
        } else {
            format!("HTTP {}: {detail}", response.status)
        })
    }

    /// `GET /API/Accounts?limit=1` with no search: the `count` is every account the
    /// gateway user may list. Only the count is read; no password is ever asked for.
    fn count_accounts(
        &self,
        credential: &Credential,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<u64, LookupError> {
        let header = credential
            .header()
            .ok_or_else(|| bad_response("the logon token is not text"))?;
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", header.as_str()),
        ];
        let url = format!("{}?limit=1", self.url("/API/Accounts"));
        // After the logon worked, as at a login: a search with no answer is not an outage.
        let response = self
            .client
            .send_with_retry(Method::Get, &url, &headers, &Body::Empty, deadline, retries)
            .map_err(|error| search_failed(LookupError::from(error)))?;
        if response.status != 200 {
            return Err(search_failed(error_for_status(&response)));
        }
        crate::json::parse(&response.body)
            .ok()
            .and_then(|document| document.get("count").and_then(Value::as_u64))
            .ok_or_else(|| bad_response("account list without a count"))
    }

    /// Everything between logon and logoff.
    #[allow(clippy::too_many_arguments)]
    fn in_session(
        &self,
        credential: &mut Credential,
        id: &TicketId,
        login: &Login,
        target: &Target,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        let wanted_address = account_address(target);
        let search = format!("{} {}", target.user, wanted_address);
        let url = format!(
            "{}?search={}&limit={SEARCH_LIMIT}",
            self.url("/API/Accounts"),
            percent_encode(&search)
        );
        let response = self
            .send_authorized(credential, deadline, retries, audit, |headers, retries| {
                self.client.send_with_retry(
                    Method::Get,
                    &url,
                    headers,
                    &Body::Empty,
                    deadline,
                    retries,
                )
            })?
            .map_err(|error| search_failed(LookupError::from(error)))?;
        let account = pick_account(&response, &target.user, wanted_address)?;

        let reason = expand_reason(&self.settings.reason_template, login, target);
        let body = json!({
            "reason": reason,
            "TicketingSystem": self.settings.ticketing_system_name,
            "TicketId": id.text,
            "ActionType": "connect",
            "isUse": true,
            "Machine": target.address,
        });
        let url = self.url(&format!(
            "/API/Accounts/{}/Password/Retrieve",
            percent_encode(&account.id)
        ));
        // No retry here: the portal may have validated the ticket, retrieved the password
        // and audited both before the answer was lost; a second Retrieve would be a second
        // password release in the vault's audit for one login. (A 401 to a platform token
        // is sent again with a new one: the portal refused the token, so nothing was
        // released.)
        let response = self
            .send_authorized(credential, deadline, retries, audit, |headers, _| {
                self.client
                    .send(Method::Post, &url, headers, &Body::Json(&body), deadline)
            })?
            .map_err(retrieve_failed)?;
        interpret_retrieve(response, &account, &self.settings.ticketing_system_name)
    }
}

impl TicketSource for Portal {
    fn system_name(&self) -> &str {
        "portal"
    }

    /// The platform-token cache, when there is one.
    fn token_caches(&self) -> Vec<&TokenCache> {
        self.platform
            .iter()
            .map(|platform| &platform.cache)
            .collect()
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    fn lookup(
        &mut self,
        id: &TicketId,
        login: &Login,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        // The flow refuses a login without a target before it prompts; this is the same
        // refusal for any other caller.
        let Some(target) = &login.target else {
            return Err(LookupError::NotCheckable {
                message: no_target_message(&login.pam_user),
            });
        };
        if let Err(part) = target.check_well_formed() {
            return Err(LookupError::NotCheckable {
                message: format!(
                    "{part} in your login name is not a valid name or address; {}",
                    no_target_message(&login.pam_user)
                ),
            });
        }
        let mut retries = RetryBudget::for_check();
        let mut credential = self.open(deadline, &mut retries, audit)?;
        let exchange_deadline = credential.exchange_deadline(deadline);
        let result = self.in_session(
            &mut credential,
            id,
            login,
            target,
            exchange_deadline,
            &mut retries,
            audit,
        );
        let _ = self.close(&credential, deadline);
        result
    }

    /// Logon, a count of the accounts the gateway user may list, logoff. No ticket and no
    /// target are involved and Retrieve is never called, so the check cannot release a
    /// password or leave a line in the vault's password audit.
    ///
    /// With a platform token: a token of its own from the Identity tenant (the cache is
    /// neither read nor written: a cached token proves nothing about the secret, and a
    /// check run by hand must leave nothing a login would use), the count, no logoff.
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let mut retries = RetryBudget::for_check();
        let (credential, first_line) = match &self.platform {
            Some(platform) => {
                let fresh = self.request_platform_token(platform, deadline, &mut retries)?;
                let life = fresh.expires_in.map_or_else(
                    || "no expires_in given".to_string(),
                    |seconds| format!("expires_in {seconds} s"),
                );
                let line = format!(
                    "got a platform token from {} as {} ({life}; the token cache in {} was neither read nor written)",
                    platform.token_url,
                    sanitise(&self.settings.account.username),
                    platform.cache.directory().display()
                );
                (
                    Credential::Platform {
                        token: fresh.token,
                        renewable: false,
                    },
                    line,
                )
            }
            None => (
                Credential::Session(self.logon(deadline, &mut retries)?),
                format!(
                    "logged on to the portal as {} ({} authentication)",
                    sanitise(&self.settings.account.username),
                    self.settings.auth_method.path_segment()
                ),
            ),
        };
        let counted = self.count_accounts(
            &credential,
            credential.exchange_deadline(deadline),
            &mut retries,
        );
        let logged_off = self.close(&credential, deadline);
        let mut lines = vec![ProbeLine::Ok(first_line)];
        match counted? {
            0 => {
                return Err(LookupError::NotCheckable {
                    message: format!(
                        "logged on as {}, but the account list is empty: this gateway user \
                         may list no vault account, so every login would be refused (make it \
                         a member of the targets' safes with List accounts and Retrieve)",
                        sanitise(&self.settings.account.username)
                    ),
                });
            }
            count => lines.push(ProbeLine::Ok(format!(
                "the account list answered: {count} vault account(s) visible to this gateway user (no password retrieved)"
            ))),
        }
        lines.push(match logged_off {
            Some(Ok(())) => ProbeLine::Ok("logged off (POST /API/Auth/Logoff/)".to_string()),
            Some(Err(problem)) => ProbeLine::Problem(format!(
                "the logoff failed ({problem}); every login would leave a session open on the portal until it times out"
            )),
            None => ProbeLine::Ok(
                "no logoff: a platform token has none, it expires on its own".to_string(),
            ),
        });
        Ok(lines)
    }
}

/// Sends one call with the credential's Authorization header (see
/// [`Portal::send_authorized`]).
fn send_with(
    credential: &Credential,
    retries: &mut RetryBudget,
    send: &mut impl FnMut(&[(&str, &str)], &mut RetryBudget) -> Result<HttpResponse, TransportError>,
) -> Result<Result<HttpResponse, TransportError>, LookupError> {
    let header = credential
        .header()
        .ok_or_else(|| bad_response("the logon token is not text"))?;
    let headers = [
        ("Accept", "application/json"),
        ("Authorization", header.as_str()),
    ];
    Ok(send(&headers, retries))
}

/// The message for a PAM_USER that names no target.
pub fn no_target_message(pam_user: &str) -> String {
    format!(
        "This gateway needs a target: connect as <you>@<target user>[#domain]@<target address>[#port] (got {})",
        sanitise(pam_user)
    )
}

/// The deadline for the exchange: the real one, less a reserve for the logoff.
fn keep_back(deadline: Deadline) -> Deadline {
    let reserve = deadline
        .remaining()
        .map_or(Duration::ZERO, |left| LOGOFF_RESERVE.min(left / 5));
    deadline.keep_back(reserve)
}

/// The address the vault account carries. For `user#domain@machine` (a domain account
/// used on a machine, as PSM for SSH reads it) that is the domain; otherwise the target
/// address itself. The machine always goes to Retrieve as `Machine`.
fn account_address(target: &Target) -> &str {
    target.domain.as_deref().unwrap_or(&target.address)
}

/// `PortalReason` with `%u` (vault user), `%t` (target user), `%h` (target address) and
/// `%%` expanded; any other `%x` is kept as written.
pub fn expand_reason(template: &str, login: &Login, target: &Target) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(&login.person),
            Some('t') => out.push_str(&target.user),
            Some('h') => out.push_str(&target.address),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    sanitise(&out)
}

/// The `ErrorCode` and `ErrorMessage` of a PVWA error body, sanitised.
fn portal_error(body: &[u8]) -> Option<(String, String)> {
    let document = crate::json::parse(body).ok()?;
    let code = document.get("ErrorCode").and_then(Value::as_str)?;
    let message = document
        .get("ErrorMessage")
        .and_then(Value::as_str)
        .unwrap_or("");
    Some((sanitise(code), sanitise(message)))
}

fn error_detail(body: &[u8]) -> String {
    portal_error(body)
        .map(|(code, message)| format!("{code}: {message}"))
        .unwrap_or_default()
}

/// The error for a status that Logon and the account search give no meaning of their
/// own (see [`status_error`]).
fn error_for_status(response: &HttpResponse) -> LookupError {
    status_error(response, error_detail(&response.body))
}

/// PVWA error codes of a refused logon (a wrong user, password or authentication method,
/// a suspended or locked user), seen with 403, 400 and, on older versions, 500.
const LOGON_REFUSALS: &[&str] = &["PASWS013E", "PASWS035E", "ITATS004E", "ITATS528E"];

/// The logon answer: the token as a JSON string. A refusal of the gateway user (401/403,
/// or a logon refusal code whatever the status) is the module's own account refused:
/// denied in both fail modes, never "ticket invalid" and never an outage.
pub fn interpret_logon(response: HttpResponse) -> Result<Secret, LookupError> {
    if response.status != 200 {
        if let Some((code, message)) = portal_error(&response.body)
            && LOGON_REFUSALS.contains(&code.as_str())
        {
            return Err(LookupError::AccountRefused {
                status: response.status,
                detail: format!("{code}: {message}"),
            });
        }
        return Err(error_for_status(&response));
    }
    let body = Secret::from_wiped(response.body);
    let token = crate::json::parse_secret_string(body.as_bytes())
        .ok()
        .flatten()
        .filter(|token| !token.is_empty())
        .ok_or_else(|| bad_response("the logon answer is not a token string"))?;
    Ok(token)
}

/// Finds the one account whose `userName` and `address` equal the target's
/// (case-insensitively) in the search answer.
///
/// None or several is `NotCheckable`: the account does not depend on the ticket, so
/// asking for another ticket could never help. The flow ends at once with PAM_MAXTRIES and
/// a message naming the target, instead of spending the person's remaining attempts.
pub fn pick_account(
    response: &HttpResponse,
    user: &str,
    address: &str,
) -> Result<Account, LookupError> {
    if response.status != 200 {
        return Err(search_failed(error_for_status(response)));
    }
    let bad = bad_response;
    // A duplicate key anywhere (two "value" lists, two "userName"s) makes it unreadable.
    let document = crate::json::parse(&response.body)
        .map_err(|problem| bad(&format!("account search: {problem}")))?;
    let listed = document
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("account search has no value list"))?;
    let text = |account: &Value, field: &str| {
        account
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let matching: Vec<Account> = listed
        .iter()
        .filter(|account| {
            text(account, "userName").eq_ignore_ascii_case(user)
                && text(account, "address").eq_ignore_ascii_case(address)
        })
        .map(|account| Account {
            id: match account.get("id") {
                Some(Value::String(id)) => id.clone(),
                Some(Value::Number(id)) => id.to_string(),
                _ => String::new(),
            },
            user_name: text(account, "userName"),
            address: text(account, "address"),
        })
        .collect();
    let target = format!("{}@{}", sanitise(user), sanitise(address));
    match matching.as_slice() {
        [account] if !account.id.is_empty() => Ok(account.clone()),
        [_] => Err(bad("the matching account has no id")),
        [] => {
            let total = document
                .get("count")
                .and_then(Value::as_u64)
                .unwrap_or(listed.len() as u64);
            let message = if total > listed.len() as u64 {
                format!(
                    "The vault search for {target} returned more than {SEARCH_LIMIT} accounts and none matched exactly; ask your vault administrator"
                )
            } else {
                format!(
                    "No vault account {target} is available to this gateway; check the target user and address"
                )
            };
            Err(LookupError::NotCheckable { message })
        }
        several => Err(LookupError::NotCheckable {
            message: format!(
                "{} vault accounts match {target}; the target is ambiguous, ask your vault administrator",
                several.len()
            ),
        }),
    }
}

/// What a failed account search means. The logon has just worked, so the portal is up;
/// the search text comes from PAM_USER, which the person connecting chooses, and a search
/// made broad or slow on purpose (`alice@a@a` on a big vault) must not open a safe-mode
/// gateway. So what would be an outage anywhere else (a 5xx, a 429, a refused, reset or
/// timed-out connection) is denied in both fail modes here; every other error keeps its
/// own kind (all of them are denials already).
fn search_failed(error: LookupError) -> LookupError {
    match error {
        LookupError::Unavailable(outage) => LookupError::BadAnswer(BadAnswer::TargetLookupFailed {
            what: outage.to_string(),
        }),
        other => other,
    }
}

/// What went wrong at Password/Retrieve when no answer came. The logon and the account
/// search have just worked, so the portal is up: whatever happens now depends on the
/// ticket (a ticket that makes the portal's ticketing integration hang or fail must not
/// open a safe-mode gateway). Denied in both fail modes; a certificate that does not
/// verify keeps its own message.
fn retrieve_failed(error: TransportError) -> LookupError {
    match error {
        TransportError::UntrustedCertificate(detail) => LookupError::UntrustedServer { detail },
        other => LookupError::BadAnswer(BadAnswer::TicketCheckFailed {
            what: other.to_string(),
        }),
    }
}

/// Whether a body is exactly one JSON string (what Retrieve answers with the password).
/// The string is skipped, never copied out: the password stays where it is, in the
/// caller's wiped buffer.
fn is_one_json_string(body: &[u8]) -> bool {
    let starts_with_quote = body.trim_ascii_start().first() == Some(&b'"');
    starts_with_quote && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// The Retrieve answer. 200 with the password as a JSON string: accepted (the password is
/// wiped here, unread). Any other 200 (an HTML maintenance or WAF page, a JSON object, an
/// empty body) is not the portal's verdict: denied. A 4xx other than 401/429 that carries
/// `ErrorCode`: the portal refused the ticket. Every other status is a ticket check that
/// gave no verdict: denied in both fail modes (see [`retrieve_failed`]).
pub fn interpret_retrieve(
    response: HttpResponse,
    account: &Account,
    system: &str,
) -> Result<Lookup, LookupError> {
    let HttpResponse { status, body, .. } = response;
    // On 200 this body is the target's password: kept in its wiped buffer, never copied.
    let body = Secret::from_wiped(body);
    match status {
        200 if is_one_json_string(body.as_bytes()) && body.as_bytes().trim_ascii() != b"\"\"" => {
            drop(body);
            Ok(Lookup::AcceptedByPortal {
                detail: format!(
                    "accepted by the portal (account id {}, {}@{}, ticketing system {})",
                    sanitise(&account.id),
                    sanitise(&account.user_name),
                    sanitise(&account.address),
                    sanitise(system)
                ),
            })
        }
        200 => Err(bad_response(
            "Password/Retrieve answered 200 without the password string (a maintenance or proxy page?)",
        )),
        400..=499 if status != 401 && status != 429 => match portal_error(body.as_bytes()) {
            Some((code, message)) => Err(LookupError::RefusedByPortal {
                code: Some(code),
                message: if message.is_empty() {
                    "no reason given".to_string()
                } else {
                    message
                },
            }),
            // A 4xx without the portal's error shape came from something in between (a
            // proxy, a load balancer): we did not hear the portal's verdict.
            None => Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                status,
                detail: String::new(),
            })),
        },
        _ => {
            let detail = error_detail(body.as_bytes());
            Err(LookupError::BadAnswer(BadAnswer::TicketCheckFailed {
                what: if detail.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {detail}")
                },
            }))
        }
    }
}

#[cfg(test)]
mod tests;
