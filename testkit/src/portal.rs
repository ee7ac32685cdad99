//! A CyberArk PVWA / Privilege Cloud REST API simulator, for portal mode
//! (FetchCredentialsThroughPVWA=Yes): the four calls a gateway makes, with the portal's
//! own ticket validation done by asking the ServiceNow simulator over real HTTPS.
//!
//! Routes (the path prefix before `/API/`, e.g. `/PasswordVault`, is free; route names are
//! matched case-insensitively, as IIS does):
//!
//! | call | answer |
//! |------|--------|
//! | `POST /API/auth/{CyberArk,LDAP,RADIUS}/Logon/` `{"username","password","concurrentSession"}` | 200 with the session token as a JSON string; 403 `PASWS013E` for a wrong user, password or method |
//! | `GET /API/Accounts?search=&limit=&offset=` | `{"value":[account…],"count":N}`; every word of `search` must occur in one of the account's properties (PVWA's default "contains" search) |
//! | `POST /API/Accounts/{id}/Password/Retrieve` | 200 with the password as a JSON string when the ticket passes; 4xx `{"ErrorCode","ErrorMessage"}` otherwise |
//! | `POST /API/Auth/Logoff/` | 200, the session ends |
//!
//! Every call but Logon needs a live token in `Authorization`, else 401 `PASWS006E`.
//!
//! # Privilege Cloud ([`PortalSim::enable_privilege_cloud`], [`IdentityTenant`])
//!
//! The portal then takes only `Authorization: Bearer <platform token>` (a PVWA session
//! token, or a platform token sent without `Bearer`, is refused with 401 `PASWS006E`), and
//! the tokens come from the Identity tenant, a handler of its own that the chain serves
//! from a second HTTPS server (another origin than the portal's, as the real
//! `<tenant>.id.cyberark.cloud` is another host than `<subdomain>.privilegecloud…`):
//!
//! | call | answer |
//! |------|--------|
//! | `POST /oauth2/platformtoken`, form `grant_type=client_credentials&client_id=&client_secret=` | 200 `{"access_token","token_type":"Bearer","expires_in"}` (900 s unless set) |
//! | the same with a wrong client or secret | [`PortalSim::set_refusal_status`] (400 unless set) `{"error":"access_denied","error_description":"invalid client creds or client not allowed"}`, the body psPAS's tests quote from a real tenant |
//! | another grant type | 400 `{"error":"unsupported_grant_type",…}` |
//!
//! Tokens can be revoked or expired on the server ([`PortalSim::revoke_platform_tokens`]),
//! and every token request is counted and recorded (without its secret).
//!
//! # Error codes: documented ones and assumptions
//!
//! * `PASWS013E` 403 "Authentication failure for User [<name>]." on a failed logon and
//!   `PASWS088E` 400 "Missing mandatory parameter - <Name>." are documented PVWA answers.
//! * Unverified, chosen to look like the portal's ticketing messages (the tests only rely
//!   on their shape, `{"ErrorCode","ErrorMessage"}` with a 4xx status):
//!   `PASWS006E` 401 for a missing or expired session token; `PASWS165E` 404 for an unknown
//!   account id; `ITATS541E` 400 for a ticketing system name the portal does not know
//!   (including the misspelt `TicketingSystemName` field, which leaves `TicketingSystem`
//!   empty); `ITATS542E` 403 "Ticket <ID> is not valid: <why>" when the ticketing system
//!   refused the ticket; `ITATS543E` 403 when the portal could not reach the ticketing
//!   system (the portal turns that into a refusal; the gateway cannot tell it apart).
//!
//! # Default fixture ([`default_accounts`])
//!
//! | id   | userName | address            | safe            | what it is for |
//! |------|----------|--------------------|-----------------|----------------|
//! | 12_1 | root     | db01.example.com   | Linux-Root      | the normal target ([`ROOT_PASSWORD`]) |
//! | 12_2 | oracle   | db02.example.com   | Linux-DBA       | a second target |
//! | 12_3 | rootx    | db01.example.com   | Linux-Root      | found by the search for root@db01, not an exact match |
//! | 12_4 | root     | db01.example.com.old | Linux-Retired | found by the search for root@db01, not an exact match |
//! | 12_5 | deploy   | app01.example.com  | Linux-Deploy    | two accounts match deploy@app01 … |
//! | 12_6 | DEPLOY   | APP01.example.com  | Linux-Deploy-Old | … case-insensitively |
//! | 12_7 | admin    | corp.example.com   | Windows-Domain  | a domain account (`admin#corp.example.com@web01`) |
//!
//! # Ticket validation (like Privilege Cloud's ServiceNow integration)
//!
//! The ticket type comes from the ID (`^INC` incident, `^CHG` change, else refused). The
//! portal asks ServiceNow `GET /api/now/table/{incident|change_request}` with
//! `sysparm_query=number=<ID>` and basic auth, then: an incident's state must be one of
//! `allowed_incident_states` (stored values, default New and In Progress); a change's
//! state must be in `allowed_change_states` (default Scheduled, Implement), its approval
//! `approved`, and now inside start_date..end_date.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::http::{Handler, Request, Response};

/// The password of account 12_1 (root@db01.example.com): a test greps for it everywhere.
pub const ROOT_PASSWORD: &str = "Vault-Pw-root-db01-Q7x9Zr2K";

/// One vault account. `password` is what Retrieve releases.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub user_name: String,
    pub address: String,
    pub safe_name: String,
    pub platform_id: String,
    pub password: String,
}

impl Account {
    pub fn new(id: &str, user_name: &str, address: &str, safe_name: &str) -> Account {
        Account {
            id: id.to_string(),
            user_name: user_name.to_string(),
            address: address.to_string(),
            safe_name: safe_name.to_string(),
            platform_id: "UnixSSH".to_string(),
            password: format!("Vault-Pw-{id}-{user_name}"),
        }
    }

    /// The object PVWA's v10 Accounts API returns.
    fn to_json(&self) -> Value {
        json!({
            "categoryModificationTime": 1_700_000_000,
            "platformId": self.platform_id,
            "safeName": self.safe_name,
            "id": self.id,
            "name": format!("Operating System-{}-{}-{}", self.platform_id, self.address, self.user_name),
            "address": self.address,
            "userName": self.user_name,
            "secretType": "password",
            "platformAccountProperties": {},
            "secretManagement": {
                "automaticManagementEnabled": true,
                "status": "success",
                "lastModifiedTime": 1_700_000_000
            },
            "createdTime": 1_690_000_000
        })
    }

    fn searchable(&self) -> [String; 5] {
        [
            self.to_json()["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            self.address.clone(),
            self.user_name.clone(),
            self.platform_id.clone(),
            self.safe_name.clone(),
        ]
    }
}

pub fn default_accounts() -> Vec<Account> {
    let mut root = Account::new("12_1", "root", "db01.example.com", "Linux-Root");
    root.password = ROOT_PASSWORD.to_string();
    let mut admin = Account::new("12_7", "admin", "corp.example.com", "Windows-Domain");
    admin.platform_id = "WinDomain".to_string();
    vec![
        root,
        Account::new("12_2", "oracle", "db02.example.com", "Linux-DBA"),
        Account::new("12_3", "rootx", "db01.example.com", "Linux-Root"),
        Account::new("12_4", "root", "db01.example.com.old", "Linux-Retired"),
        Account::new("12_5", "deploy", "app01.example.com", "Linux-Deploy"),
        Account::new("12_6", "DEPLOY", "APP01.example.com", "Linux-Deploy-Old"),
        admin,
    ]
}

/// How the portal reaches its ticketing system.
pub struct TicketingLink {
    /// Base URL of the ServiceNow simulator.
    pub url: String,
    /// CA bundle that verifies it.
    pub ca_file: PathBuf,
    pub username: String,
    pub password: String,
}

/// Characters left as they are in a query value: RFC 3986's unreserved set, as the
/// module's own encoder does.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why the portal could not get an answer from its ticketing system.
#[derive(Debug)]
enum LinkError {
    /// The CA bundle could not be read or holds no certificate.
    CaBundle(String),
    /// No HTTP answer: connection, TLS or time-out.
    Transport(ureq::Error),
    /// An answer other than 200.
    Status(u16),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::CaBundle(why) => write!(f, "CA bundle: {why}"),
            LinkError::Transport(error) => write!(f, "{error}"),
            LinkError::Status(status) => write!(f, "HTTP {status}"),
        }
    }
}

impl TicketingLink {
    /// GETs `url` with basic auth, trusting only `ca_file`, through no proxy, following no
    /// redirect, within five seconds: the body of a 200 answer.
    fn get(&self, url: &str) -> Result<Vec<u8>, LinkError> {
        let pem = std::fs::read(&self.ca_file)
            .map_err(|error| LinkError::CaBundle(format!("{}: {error}", self.ca_file.display())))?;
        let roots = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => Some(certificate),
                _ => None,
            })
            .collect::<Vec<_>>();
        if roots.is_empty() {
            return Err(LinkError::CaBundle(format!(
                "no certificate in {}",
                self.ca_file.display()
            )));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let credentials = BASE64.encode(format!("{}:{}", self.username, self.password));
        let mut response = agent
            .get(url)
            .header("Accept", "application/json")
            .header("Authorization", &format!("Basic {credentials}"))
            .call()
            .map_err(LinkError::Transport)?;
        if response.status() != 200 {
            return Err(LinkError::Status(response.status().as_u16()));
        }
        response
            .body_mut()
            .read_to_vec()
            .map_err(LinkError::Transport)
    }
}

/// One Retrieve as received.
#[derive(Clone, Debug)]
pub struct RetrieveCall {
    pub account_id: String,
    pub body: Value,
    pub status: u16,
}

/// Per-endpoint counters; every request counts, refused or not.
#[derive(Default, Debug)]
pub struct Counters {
    pub logons: AtomicUsize,
    pub searches: AtomicUsize,
    pub retrieves: AtomicUsize,
    pub logoffs: AtomicUsize,
    /// Logons that produced a token.
    pub sessions_opened: AtomicUsize,
    /// Logoffs that ended a live session.
    pub sessions_closed: AtomicUsize,
    /// Requests to the Identity tenant's `/oauth2/platformtoken`, refused or not.
    pub token_requests: AtomicUsize,
}

/// One request to the Identity tenant's token endpoint, as received (the secret is only
/// said to have matched or not).
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub content_type: String,
    pub grant_type: String,
    pub client_id: String,
    pub secret_matched: bool,
    pub status: u16,
    /// The token issued, when one was.
    pub token: Option<String>,
}

/// Privilege Cloud's side: Bearer-only portal calls and the Identity tenant's tokens.
struct PlatformState {
    /// Portal calls take only `Bearer <platform token>`.
    enabled: bool,
    /// Live tokens and when each expires.
    tokens: BTreeMap<String, Instant>,
    next_token: u64,
    token_lifetime: Duration,
    refusal_status: u16,
    token_requests: Vec<TokenRequest>,
    /// What every token request gets instead of the tenant's answer.
    token_override: Option<Response>,
    token_delay: Duration,
}

pub struct PortalSim {
    state: Mutex<State>,
    pub counters: Counters,
    link: TicketingLink,
}

struct State {
    gateway_user: String,
    gateway_password: String,
    auth_method: String,
    accounts: Vec<Account>,
    sessions: BTreeMap<String, String>,
    next_token: u64,
    retrieve_calls: Vec<RetrieveCall>,
    ticketing_system_name: String,
    search_delay: Duration,
    /// What every account search with a live session gets instead of the portal's answer
    /// (a 5xx from a vault that is slow or failing on this search).
    search_override: Option<Response>,
    /// What every Retrieve gets instead of the portal's verdict (a ticketing integration
    /// that fails, a maintenance page), after the session check.
    retrieve_override: Option<Response>,
    /// How long Retrieve sleeps before answering (a ticket check that hangs).
    retrieve_delay: Duration,
    allowed_incident_states: Vec<String>,
    allowed_change_states: Vec<String>,
    platform: PlatformState,
    /// The Authorization header of every call that needs a session, in order.
    authorizations: Vec<String>,
}

impl PortalSim {
    /// A portal with [`default_accounts`], one gateway user (CyberArk authentication) and
    /// a ServiceNow integration named `ServiceNow`.
    pub fn new(gateway_user: &str, gateway_password: &str, link: TicketingLink) -> PortalSim {
        PortalSim {
            state: Mutex::new(State {
                gateway_user: gateway_user.to_string(),
                gateway_password: gateway_password.to_string(),
                auth_method: "CyberArk".to_string(),
                accounts: default_accounts(),
                sessions: BTreeMap::new(),
                next_token: 1,
                retrieve_calls: Vec::new(),
                ticketing_system_name: "ServiceNow".to_string(),
                search_delay: Duration::ZERO,
                search_override: None,
                retrieve_override: None,
                retrieve_delay: Duration::ZERO,
                allowed_incident_states: vec!["1".to_string(), "2".to_string()],
                allowed_change_states: vec!["-2".to_string(), "-1".to_string()],
                platform: PlatformState {
                    enabled: false,
                    tokens: BTreeMap::new(),
                    next_token: 1,
                    token_lifetime: Duration::from_secs(900),
                    refusal_status: 400,
                    token_requests: Vec::new(),
                    token_override: None,
                    token_delay: Duration::ZERO,
                },
                authorizations: Vec::new(),
            }),
            counters: Counters::default(),
            link,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn logons(&self) -> usize {
        self.counters.logons.load(Ordering::SeqCst)
    }
    pub fn searches(&self) -> usize {
        self.counters.searches.load(Ordering::SeqCst)
    }
    pub fn retrieves(&self) -> usize {
        self.counters.retrieves.load(Ordering::SeqCst)
    }
    pub fn logoffs(&self) -> usize {
        self.counters.logoffs.load(Ordering::SeqCst)
    }
    pub fn sessions_opened(&self) -> usize {
        self.counters.sessions_opened.load(Ordering::SeqCst)
    }
    pub fn sessions_closed(&self) -> usize {
        self.counters.sessions_closed.load(Ordering::SeqCst)
    }
    /// `(logons, searches, retrieves, logoffs)`
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.logons(),
            self.searches(),
            self.retrieves(),
            self.logoffs(),
        )
    }
    /// Sessions still open (logged on, never logged off).
    pub fn open_sessions(&self) -> usize {
        self.lock().sessions.len()
    }
    pub fn retrieve_calls(&self) -> Vec<RetrieveCall> {
        self.lock().retrieve_calls.clone()
    }
    pub fn set_gateway_password(&self, password: &str) {
        self.lock().gateway_password = password.to_string();
    }
    pub fn set_auth_method(&self, method: &str) {
        self.lock().auth_method = method.to_string();
    }
    /// Makes the account search sleep this long before answering (a portal that hangs
    /// after a successful logon).
    pub fn set_search_delay(&self, delay: Duration) {
        self.lock().search_delay = delay;
    }
    /// From now on every account search with a live session gets `answer` instead of the
    /// portal's answer; `None` restores it.
    pub fn set_search_override(&self, answer: Option<Response>) {
        self.lock().search_override = answer;
    }
    /// From now on every Retrieve with a live session gets `answer` instead of the
    /// portal's verdict, and the ticketing system is not asked; `None` restores it.
    pub fn set_retrieve_override(&self, answer: Option<Response>) {
        self.lock().retrieve_override = answer;
    }
    /// Makes Retrieve sleep this long before answering (a ticket check that hangs).
    pub fn set_retrieve_delay(&self, delay: Duration) {
        self.lock().retrieve_delay = delay;
    }
    pub fn add_account(&self, account: Account) {
        self.lock().accounts.push(account);
    }

    /// Privilege Cloud: from now on the portal takes only platform tokens from the
    /// Identity tenant ([`IdentityTenant`]), whose OAuth client is the gateway user with
    /// the gateway password as its secret.
    pub fn enable_privilege_cloud(&self) {
        self.lock().platform.enabled = true;
    }
    /// Requests to `/oauth2/platformtoken`, refused or not.
    pub fn token_requests(&self) -> usize {
        self.counters.token_requests.load(Ordering::SeqCst)
    }
    /// Every token request as received, oldest first.
    pub fn token_request_log(&self) -> Vec<TokenRequest> {
        self.lock().platform.token_requests.clone()
    }
    /// The Authorization header of every portal call that needed a session, in order.
    pub fn authorizations(&self) -> Vec<String> {
        self.lock().authorizations.clone()
    }
    /// Platform tokens still alive on the tenant.
    pub fn live_platform_tokens(&self) -> Vec<String> {
        let now = Instant::now();
        self.lock()
            .platform
            .tokens
            .iter()
            .filter(|(_, expires)| now < **expires)
            .map(|(token, _)| token.clone())
            .collect()
    }
    /// Every platform token issued so far stops working (revoked, or expired early).
    pub fn revoke_platform_tokens(&self) {
        self.lock().platform.tokens.clear();
    }
    /// `expires_in` of the tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().platform.token_lifetime = lifetime;
    }
    /// The status of a refused token request (400 unless set; 401 is the other one seen).
    pub fn set_refusal_status(&self, status: u16) {
        self.lock().platform.refusal_status = status;
    }
    /// From now on every token request gets `answer` instead of the tenant's; `None`
    /// restores it.
    pub fn set_token_override(&self, answer: Option<Response>) {
        self.lock().platform.token_override = answer;
    }
    /// Makes every token request sleep this long before answering.
    pub fn set_token_delay(&self, delay: Duration) {
        self.lock().platform.token_delay = delay;
    }

    /// The Identity tenant's `POST /oauth2/platformtoken`.
    fn platform_token(&self, request: &Request) -> Response {
        self.counters.token_requests.fetch_add(1, Ordering::SeqCst);
        let delay = self.lock().platform.token_delay;
        std::thread::sleep(delay);
        let form = super::https::parse_query(&String::from_utf8_lossy(&request.body));
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        let mut logged = TokenRequest {
            content_type: request.header("content-type").unwrap_or("").to_string(),
            grant_type: field("grant_type"),
            client_id: field("client_id"),
            secret_matched: false,
            status: 0,
            token: None,
        };
        let mut state = self.lock();
        logged.secret_matched = logged.client_id == state.gateway_user
            && field("client_secret") == state.gateway_password;
        let answer = if let Some(answer) = state.platform.token_override.clone() {
            answer
        } else if !logged
            .content_type
            .starts_with("application/x-www-form-urlencoded")
        {
            oauth_error(400, "invalid_request", "form-encoded body expected")
        } else if logged.grant_type != "client_credentials" {
            oauth_error(
                400,
                "unsupported_grant_type",
                "grant type not supported for this client",
            )
        } else if !logged.secret_matched {
            oauth_error(
                state.platform.refusal_status,
                "access_denied",
                "invalid client creds or client not allowed",
            )
        } else {
            let number = state.platform.next_token;
            state.platform.next_token += 1;
            let token = format!(
                "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.cGxhdGZvcm0tdG9rZW4tMDAw{number:06}.c2ln{number:04}"
            );
            let lifetime = state.platform.token_lifetime;
            state
                .platform
                .tokens
                .insert(token.clone(), Instant::now() + lifetime);
            logged.token = Some(token.clone());
            Response::json(
                200,
                &json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": lifetime.as_secs(),
                }),
            )
        };
        logged.status = answer.status;
        state.platform.token_requests.push(logged);
        answer
    }

    fn logon(&self, method: &str, request: &Request) -> Response {
        self.counters.logons.fetch_add(1, Ordering::SeqCst);
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return pvwa_error(400, "PASWS167E", "There are some invalid parameters.");
        };
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("");
        let (username, password) = (field("username"), field("password"));
        if username.is_empty() {
            return pvwa_error(400, "PASWS088E", "Missing mandatory parameter - username.");
        }
        let mut state = self.lock();
        if !method.eq_ignore_ascii_case(&state.auth_method)
            || username != state.gateway_user
            || password != state.gateway_password
        {
            return pvwa_error(
                403,
                "PASWS013E",
                &format!("Authentication failure for User [{username}]."),
            );
        }
        let token = format!(
            "{:016X}{:08}ZmFrZS1wdndhLXRva2Vu",
            0x5EED_0000_u64 + state.next_token,
            state.next_token
        );
        state.next_token += 1;
        state.sessions.insert(token.clone(), username.to_string());
        self.counters.sessions_opened.fetch_add(1, Ordering::SeqCst);
        Response::json(200, &json!(token))
    }

    /// The session's user, or the 401 a PVWA sends for a missing or dead token. In
    /// Privilege Cloud mode only `Bearer <live platform token>` is a session.
    fn session(&self, request: &Request) -> Result<String, Response> {
        let authorization = request.header("authorization").unwrap_or("").trim();
        let mut state = self.lock();
        state.authorizations.push(authorization.to_string());
        let refused = || {
            pvwa_error(
                401,
                "PASWS006E",
                "Your session has expired. Please log on again.",
            )
        };
        if state.platform.enabled {
            let live = authorization
                .strip_prefix("Bearer ")
                .and_then(|token| state.platform.tokens.get(token))
                .is_some_and(|expires| Instant::now() < *expires);
            return if live {
                Ok(state.gateway_user.clone())
            } else {
                Err(refused())
            };
        }
        state
            .sessions
            .get(authorization)
            .cloned()
            .ok_or_else(refused)
    }

    fn logoff(&self, request: &Request) -> Response {
        self.counters.logoffs.fetch_add(1, Ordering::SeqCst);
        if let Err(refusal) = self.session(request) {
            return refusal;
        }
        let token = request.header("authorization").unwrap_or("").trim();
        self.lock().sessions.remove(token);
        self.counters.sessions_closed.fetch_add(1, Ordering::SeqCst);
        Response::json(200, &json!({}))
    }

    fn search(&self, request: &Request) -> Response {
        self.counters.searches.fetch_add(1, Ordering::SeqCst);
        let delay = self.lock().search_delay;
        std::thread::sleep(delay);
        if let Err(refusal) = self.session(request) {
            return refusal;
        }
        if let Some(answer) = self.lock().search_override.clone() {
            return answer;
        }
        let words: Vec<String> = request
            .param("search")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        let limit = request
            .param("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .unwrap_or(50)
            .clamp(1, 1000);
        let offset = request
            .param("offset")
            .and_then(|offset| offset.parse::<usize>().ok())
            .unwrap_or(0);
        let state = self.lock();
        let found: Vec<&Account> = state
            .accounts
            .iter()
            .filter(|account| {
                let fields = account.searchable().map(|field| field.to_lowercase());
                words
                    .iter()
                    .all(|word| fields.iter().any(|field| field.contains(word.as_str())))
            })
            .collect();
        let page: Vec<Value> = found
            .iter()
            .skip(offset)
            .take(limit)
            .map(|account| account.to_json())
            .collect();
        Response::json(200, &json!({"value": page, "count": found.len()}))
    }

    fn retrieve(&self, account_id: &str, request: &Request) -> Response {
        self.counters.retrieves.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let response = self.retrieve_answer(account_id, &body, request);
        self.lock().retrieve_calls.push(RetrieveCall {
            account_id: account_id.to_string(),
            body,
            status: response.status,
        });
        response
    }

    fn retrieve_answer(&self, account_id: &str, body: &Value, request: &Request) -> Response {
        let delay = self.lock().retrieve_delay;
        std::thread::sleep(delay);
        if let Err(refusal) = self.session(request) {
            return refusal;
        }
        if let Some(answer) = self.lock().retrieve_override.clone() {
            return answer;
        }
        if !body.is_object() {
            return pvwa_error(400, "PASWS167E", "There are some invalid parameters.");
        }
        let Some(account) = self
            .lock()
            .accounts
            .iter()
            .find(|account| account.id == account_id)
            .cloned()
        else {
            return pvwa_error(
                404,
                "PASWS165E",
                &format!("Account [{account_id}] was not found."),
            );
        };
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("").trim();
        if field("reason").is_empty() {
            return pvwa_error(400, "PASWS088E", "Missing mandatory parameter - Reason.");
        }
        if !matches!(field("ActionType"), "show" | "copy" | "connect") {
            return pvwa_error(
                400,
                "PASWS167E",
                "There are some invalid parameters: ActionType.",
            );
        }
        let system = field("TicketingSystem");
        let configured = self.lock().ticketing_system_name.clone();
        if !system.eq_ignore_ascii_case(&configured) {
            return pvwa_error(
                400,
                "ITATS541E",
                &format!("Ticketing system [{system}] is not configured in the Vault."),
            );
        }
        let ticket = field("TicketId");
        if ticket.is_empty() {
            return pvwa_error(400, "PASWS088E", "Missing mandatory parameter - TicketId.");
        }
        match self.validate_ticket(ticket) {
            Ok(()) => Response::json(200, &json!(account.password)),
            Err(TicketProblem::Invalid(why)) => pvwa_error(
                403,
                "ITATS542E",
                &format!("Ticket {ticket} is not valid: {why}"),
            ),
            Err(TicketProblem::Unreachable(why)) => pvwa_error(
                403,
                "ITATS543E",
                &format!("Ticketing system {configured} could not be reached: {why}"),
            ),
        }
    }

    /// Asks ServiceNow over HTTPS, as the portal would.
    fn validate_ticket(&self, ticket: &str) -> Result<(), TicketProblem> {
        let (table, fields) = if ticket.starts_with("INC") {
            ("incident", "number,state")
        } else if ticket.starts_with("CHG") {
            (
                "change_request",
                "number,state,approval,start_date,end_date",
            )
        } else {
            return Err(TicketProblem::Invalid(
                "not an incident or change number".to_string(),
            ));
        };
        let url = format!(
            "{}/api/now/table/{table}?sysparm_query={}&sysparm_fields={fields}&sysparm_limit=2",
            self.link.url,
            utf8_percent_encode(&format!("number={ticket}"), QUERY_VALUE)
        );
        let body = self
            .link
            .get(&url)
            .map_err(|problem| TicketProblem::Unreachable(problem.to_string()))?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|_| TicketProblem::Unreachable("answer is not JSON".to_string()))?;
        let records = document["result"].as_array().cloned().unwrap_or_default();
        let [record] = records.as_slice() else {
            return Err(TicketProblem::Invalid("ticket not found".to_string()));
        };
        let value = |name: &str| record[name].as_str().unwrap_or("").to_string();
        if value("number") != ticket {
            return Err(TicketProblem::Invalid("ticket not found".to_string()));
        }
        let state = self.lock();
        if table == "incident" {
            if !state.allowed_incident_states.contains(&value("state")) {
                return Err(TicketProblem::Invalid(format!(
                    "incident state {} is not allowed",
                    incident_state_label(&value("state"))
                )));
            }
            return Ok(());
        }
        if !state.allowed_change_states.contains(&value("state")) {
            return Err(TicketProblem::Invalid(format!(
                "change state {} is not allowed",
                value("state")
            )));
        }
        if value("approval") != "approved" {
            return Err(TicketProblem::Invalid(format!(
                "change is not approved ({})",
                value("approval")
            )));
        }
        let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
        let (start, end) = (value("start_date"), value("end_date"));
        if start.is_empty() || end.is_empty() || now < start || now > end {
            return Err(TicketProblem::Invalid(format!(
                "outside the change window {start} to {end} UTC"
            )));
        }
        Ok(())
    }
}

enum TicketProblem {
    Invalid(String),
    Unreachable(String),
}

fn incident_state_label(value: &str) -> String {
    match value {
        "1" => "New",
        "2" => "In Progress",
        "3" => "On Hold",
        "6" => "Resolved",
        "7" => "Closed",
        "8" => "Canceled",
        other => other,
    }
    .to_string()
}

/// An OAuth 2.0 error body (RFC 6749 §5.2).
pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// The Identity tenant of a Privilege Cloud portal: its `/oauth2/platformtoken`, served
/// by a server of its own.
pub struct IdentityTenant(pub Arc<PortalSim>);

impl Handler for IdentityTenant {
    fn handle(&self, request: &Request) -> Response {
        if request.method == "POST" && request.path.eq_ignore_ascii_case("/oauth2/platformtoken") {
            return self.0.platform_token(request);
        }
        Response::text(404, "Not Found")
    }
}

/// A PVWA error body.
pub fn pvwa_error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, &json!({"ErrorCode": code, "ErrorMessage": message}))
}

impl Handler for PortalSim {
    fn handle(&self, request: &Request) -> Response {
        // Everything after the `/API/` segment; PVWA routes ignore case.
        let lower = request.path.to_ascii_lowercase();
        let Some(start) = lower.find("/api/") else {
            return pvwa_error(404, "PASWS001E", "The requested resource was not found.");
        };
        let route = &request.path[start + "/api/".len()..];
        let parts: Vec<&str> = route.trim_end_matches('/').split('/').collect();
        let lowered: Vec<String> = parts.iter().map(|part| part.to_ascii_lowercase()).collect();
        let lowered: Vec<&str> = lowered.iter().map(String::as_str).collect();
        match (request.method.as_str(), lowered.as_slice()) {
            ("POST", ["auth", _, "logon"]) => self.logon(parts[1], request),
            ("POST", ["auth", "logoff"]) => self.logoff(request),
            ("GET", ["accounts"]) => self.search(request),
            ("POST", ["accounts", _, "password", "retrieve"]) => self.retrieve(parts[1], request),
            _ => pvwa_error(404, "PASWS001E", "The requested resource was not found."),
        }
    }
}

/// The whole chain a portal-mode login runs through: a portal simulator in front of a
/// ServiceNow simulator (which it asks to validate tickets), both over HTTPS with one
/// test PKI, and a directory for the test's files.
pub struct PortalChain {
    pub dir: super::tmp::TestDir,
    pub pki: super::pki::TestPki,
    pub servicenow_server: super::https::TestServer,
    pub servicenow: std::sync::Arc<super::servicenow::ServiceNowSim>,
    pub server: super::https::TestServer,
    pub portal: std::sync::Arc<PortalSim>,
    /// The Identity tenant's server, in a Privilege Cloud chain.
    pub identity_server: Option<super::https::TestServer>,
}

impl PortalChain {
    /// Starts both simulators; the portal accepts `gateway_user` / `gateway_password`.
    pub fn start(label: &str, gateway_user: &str, gateway_password: &str) -> PortalChain {
        use super::pki::ServerCert;
        let dir = super::tmp::TestDir::new(label);
        let pki = super::pki::TestPki::generate(&dir.join("pki"));
        let servicenow = std::sync::Arc::new(super::servicenow::ServiceNowSim::new(
            "portal.integration",
            "Sn-Int-Pass",
        ));
        let servicenow_server = super::https::TestServer::start(
            pki.server_config(ServerCert::Good),
            servicenow.clone(),
        );
        let link = TicketingLink {
            url: servicenow_server.base_url(),
            ca_file: pki.ca_pem_path(),
            username: "portal.integration".to_string(),
            password: "Sn-Int-Pass".to_string(),
        };
        let portal = std::sync::Arc::new(PortalSim::new(gateway_user, gateway_password, link));
        let server =
            super::https::TestServer::start(pki.server_config(ServerCert::Good), portal.clone());
        PortalChain {
            dir,
            pki,
            servicenow_server,
            servicenow,
            server,
            portal,
            identity_server: None,
        }
    }

    /// A Privilege Cloud chain: the portal takes only platform tokens, which the Identity
    /// tenant on a second server issues to `service_user` with `secret`.
    pub fn start_privilege_cloud(label: &str, service_user: &str, secret: &str) -> PortalChain {
        let mut chain = PortalChain::start(label, service_user, secret);
        chain.portal.enable_privilege_cloud();
        chain.identity_server = Some(super::https::TestServer::start(
            chain.pki.server_config(super::pki::ServerCert::Good),
            Arc::new(IdentityTenant(chain.portal.clone())),
        ));
        chain
    }

    /// `IdentityURL` for the module: the Identity tenant's server by its IP address, so
    /// that it is another origin than the portal's (`https://localhost:…`) even where
    /// the port would match. Panics in a chain without one.
    pub fn identity_url(&self) -> String {
        self.identity_server
            .as_ref()
            .map(super::https::TestServer::ip_url)
            .expect("a Privilege Cloud chain (start_privilege_cloud)")
    }

    /// `PortalURL` for the module: the server's base URL plus `/PasswordVault`.
    pub fn portal_url(&self) -> String {
        format!("{}/PasswordVault", self.server.base_url())
    }
}
