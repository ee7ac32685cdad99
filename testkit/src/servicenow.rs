//! A ServiceNow Table API simulator: a pure request → response [`Handler`] that the
//! HTTPS test server drives.
//!
//! It answers `GET [<prefix>]/api/now/[v1/|v2/]table/<table>[/<sys_id>]` the way an
//! instance does (status codes, error bodies, value rendering in the three
//! `sysparm_display_value` modes, `X-Total-Count`) and really evaluates encoded queries
//! (`^`, `^OR`, `^NQ`, the common operators, dot-walking, unknown fields dropped), so a
//! test can prove that an injected `^NQ` or `^OR` would widen the match.
//!
//! Every setter goes through a `Mutex`, so a test can change the instance while the
//! server thread is answering.
//!
//! # Default fixture
//!
//! [`ServiceNowSim::new`] loads [`default_fixture`] built around the current time. Users
//! (`sys_user`, display value = `name`):
//!
//! | user_name | name          | sys_id const |
//! |-----------|---------------|--------------|
//! | alice     | Alice Anders  | [`ALICE`]    |
//! | bob       | Bob Baker     | [`BOB`]      |
//! | carol     | Carol Chen    | [`CAROL`]    |
//! | dave      | Dave Dunn     | [`DAVE`] (has no tickets) |
//!
//! Incidents (`incident`); each differs from INC0010001 in one way only:
//!
//! | number     | state            | caller_id | opened_by | what it is for |
//! |------------|------------------|-----------|-----------|----------------|
//! | INC0010001 | 2 In Progress    | alice     | carol     | the valid incident; caller ≠ opener |
//! | INC0010002 | 7 Closed         | alice     | alice     | refused state |
//! | INC0010003 | 1 New            | bob       | alice     | someone else's ticket (alice only opened it) |
//! | INC0010004 | 8 Canceled       | alice     | alice     | refused state |
//! | INC0010005 | 3 On Hold        | alice     | alice     | a state a site may or may not allow |
//!
//! Changes (`change_request`); all but CHG0030007 are in state -1 Implement, so each
//! fails at most one check:
//!
//! | number     | state       | approval  | window (start .. end)   | requested_by | what it is for |
//! |------------|-------------|-----------|-------------------------|--------------|----------------|
//! | CHG0030001 | -1 Implement| approved  | now-1h .. now+1h        | alice | the valid change |
//! | CHG0030002 | -1 Implement| requested | now-1h .. now+1h        | alice | not approved |
//! | CHG0030003 | -1 Implement| approved  | now+2d .. now+3d        | alice | window not yet open |
//! | CHG0030004 | -1 Implement| approved  | now-3d .. now-2d        | alice | window over |
//! | CHG0030005 | -1 Implement| approved  | now-1h .. now+1h        | bob   | someone else's change |
//! | CHG0030006 | -1 Implement| approved  | "" .. now+1h            | alice | start date missing |
//! | CHG0030007 | 3 Closed    | approved  | now-1h .. now+1h        | alice | refused state |
//!
//! Every change is `opened_by` carol, `assigned_to` dave and in `assignment_group` Linux
//! Ops; incidents have an empty `assigned_to` except INC0010001 (dave), so both empty and
//! set references are rendered. INC0010001's `assignment_group` is Linux Ops
//! ([`LINUX_OPS`]), INC0010003's Database Admins ([`DBA`]), the others have none.
//!
//! People (`sys_user` `email`, `employee_number`): alice `alice@corp.example.com` E1001,
//! bob `bob@corp.example.com` E1002, carol `carol.chen@corp.example.com` E1003, dave
//! `dave@corp.example.com` E1004. Groups (`sys_user_group`, display value = `name`) and
//! memberships (`sys_user_grmember`, `user` and `group` references): bob and dave are in
//! Linux Ops, carol in Database Admins, alice in none.
//! Dates are stored in UTC, truncated to the second.
//!
//! # Behaviour worth knowing
//!
//! * String comparisons in queries are case-insensitive, as on a MySQL-backed instance
//!   (`number=inc0010001` finds INC0010001).
//! * A condition on an unknown field, or one the parser cannot read, is dropped (the
//!   default `glide.invalid_query.returns_no_rows=false`); a `^NQ` group left with no
//!   condition matches everything. [`ServiceNowSim::set_invalid_query_returns_no_rows`]
//!   switches to the strict behaviour.
//! * `display_value=true` renders dates in the API user's time zone, by default a fixed
//!   -05:00 (New York without DST), so a module that reads display values fails.
//! * `sysparm_no_count=true` omits `X-Total-Count` (unverified against an instance).
//! * `sys_choice` holds the choice lists of the schema (incident `state` and `priority`,
//!   change_request `state` and `approval`), one active English row per choice
//!   (`name`, `element`, `value`, `label`, `sequence`, `language`, `inactive`), so
//!   `sysparm_query=name=incident^element=state^inactive=false` lists the incident states.
//!
//! # OAuth 2.0 (`POST /oauth_token.do`)
//!
//! [`ServiceNowSim::set_oauth_client`] registers one Application Registry entry (client ID
//! and secret). The token endpoint then answers, form-encoded, `grant_type=password`
//! (client + the account's user name and password), `grant_type=client_credentials`
//! (client alone; off until [`ServiceNowSim::set_client_credentials_enabled`], as the
//! instance property `glide.oauth.inbound.client.credential.grant_type.enabled`) and
//! `grant_type=refresh_token` (a refresh token from a password grant), with
//! `{"access_token","refresh_token","scope":"useraccount","token_type":"Bearer","expires_in"}`
//! (no refresh token for client credentials). Access tokens expire after
//! [`ServiceNowSim::set_access_token_lifetime`] (1,799 s by default, ServiceNow's default
//! lifespan less a second, as instances answer) and can be revoked or expired early by a
//! test. Every refusal (unknown client, wrong secret, wrong user or password, a refresh
//! token that is unknown, revoked or expired, a grant that is off) is what an instance
//! sends: HTTP 401 with `{"error_description":"access_denied","error":"server_error"}`
//! (the body third-party clients record from real instances; an instance does not tell
//! invalid_client from invalid_grant). [`OAuthErrors::Rfc6749`] answers the RFC 6749 §5.2
//! bodies instead (`invalid_client` 401, `invalid_grant` 400), for a module that must read
//! both. The Table API takes `Authorization: Bearer <access token>`;
//! [`ServiceNowSim::set_basic_auth_enabled`]`(false)` refuses Basic with 401, as an
//! instance whose integration users must use OAuth.
//!
//! # More ticket types and configuration items
//!
//! `sc_req_item`, `sc_task` and `problem` (all tasks: `number`, `state`, `cmdb_ci`, …) and
//! the CMDB: every CI is stored in `cmdb_ci` with its class in `sys_class_name`. The base
//! class has `name`, `ip_address` and `sys_class_name`; the computer classes
//! (`cmdb_ci_computer`, `cmdb_ci_server`, `cmdb_ci_linux_server`, `cmdb_ci_win_server`)
//! add `fqdn` and `host_name`. A dot-walk through a reference to `cmdb_ci`
//! (`cmdb_ci.fqdn`) reads the field of the CI's own class, and is an unknown field (left
//! out of the answer) where that class lacks it. A class table
//! (`GET /api/now/table/cmdb_ci_server`) lists the CIs of that class and the classes that
//! extend it, with the class's fields. `task_ci` links a task (`task`, any task table) to
//! an affected CI (`ci_item`).
//!
//! | number        | table       | state               | approval | requester (field)         | CI |
//! |---------------|-------------|---------------------|----------|---------------------------|----|
//! | RITM0010001   | sc_req_item | 2 Work in Progress  | approved | alice (requested_for)     | app07 |
//! | RITM0010002   | sc_req_item | 3 Closed Complete   | approved | alice                     | |
//! | RITM0010003   | sc_req_item | 1 Open              | requested| alice                     | |
//! | SCTASK0010001 | sc_task     | 1 Open              |          | alice (request_item.requested_for of RITM0010001) | app07 |
//! | SCTASK0010002 | sc_task     | 3 Closed Complete   |          | alice                     | |
//! | PRB0010001    | problem     | 102 Assess          |          | alice (opened_by)         | payroll |
//! | PRB0010002    | problem     | 107 Closed          |          | alice                     | |
//! | INC0010006*   | incident    | 2 In Progress       |          | alice                     | app07 |
//! | INC0010007*   | incident    | 2 In Progress       |          | alice                     | web01 |
//! | CHG0030008*   | change_request | -1 Implement     | approved | alice                     | web01; affected (task_ci): db02, app07 |
//!
//! (*) in [`ci_tickets`], which a test adds; the default fixture's incidents and changes
//! name no CI.
//!
//! CIs: app07 (`cmdb_ci_linux_server`, fqdn app07.example.com, host_name app07,
//! 192.0.2.7), web01 (`cmdb_ci_linux_server`, name web01.example.com, host_name web01,
//! 192.0.2.1), db02 (`cmdb_ci_win_server`, name DB02, fqdn db02.corp.example.com,
//! 192.0.2.22), payroll (`cmdb_ci_appl`, name Payroll, no fqdn or host name).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::http::{Handler, Request, Response};

/// One stored record: field name → stored value, always a JSON string.
pub type Record = Map<String, Value>;

pub const ALICE: &str = "a11ce000000000000000000000000001";
pub const BOB: &str = "b0b00000000000000000000000000002";
pub const CAROL: &str = "ca201000000000000000000000000003";
pub const DAVE: &str = "da7e0000000000000000000000000004";
/// `sys_user_group` "Linux Ops": bob and dave are members; INC0010001 and every change
/// are assigned to it.
pub const LINUX_OPS: &str = "0a5f0000000000000000000000000001";
/// `sys_user_group` "Database Admins": carol is a member; INC0010003 is assigned to it.
pub const DBA: &str = "0db40000000000000000000000000002";

/// The sys_ids of the fixture's configuration items.
pub const CI_APP07: &str = "c1000000000000000000000000000007";
pub const CI_WEB01: &str = "c1000000000000000000000000000001";
pub const CI_DB02: &str = "c1000000000000000000000000000022";
pub const CI_PAYROLL: &str = "c10000000000000000000000000000a1";

/// The stored-date format ServiceNow uses on the wire with `display_value=false`.
pub const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// What the simulator saw for one request whose path is a table route, refused or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedQuery {
    pub method: String,
    /// Whatever stood before `/api/now/` (a reverse-proxy prefix), `""` when nothing.
    pub prefix: String,
    /// `"v1"`, `"v2"` or `""` when the path named no version.
    pub api_version: String,
    pub table: String,
    /// The `/<sys_id>` path segment of a single-record GET.
    pub sys_id: Option<String>,
    pub sysparm_query: Option<String>,
    /// Non-`sysparm_` parameters (the name-value query form), in order.
    pub name_value: Vec<(String, String)>,
    pub fields: Option<String>,
    pub display_value: Option<String>,
    pub exclude_reference_link: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
    /// The status the simulator answered.
    pub status: u16,
    /// Records that matched, before offset and limit (0 for an error answer).
    pub matched: usize,
}

/// How the token endpoint words a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OAuthErrors {
    /// What an instance sends for every refusal: 401
    /// `{"error_description":"access_denied","error":"server_error"}`.
    ServiceNow,
    /// RFC 6749 §5.2: 401 `{"error":"invalid_client",…}` for the client, 400
    /// `{"error":"invalid_grant",…}` for the user's password or a refresh token.
    Rfc6749,
}

/// What the simulator saw for one `POST /oauth_token.do`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_id: String,
    /// The `username` of a password grant.
    pub username: Option<String>,
    /// The status the simulator answered.
    pub status: u16,
    /// The access token it issued, when it did.
    pub issued: Option<String>,
}

/// One token the simulator issued.
struct IssuedToken {
    refresh: bool,
    issued: std::time::Instant,
    lifetime: std::time::Duration,
    revoked: bool,
}

impl IssuedToken {
    fn live(&self) -> bool {
        !self.revoked && self.issued.elapsed() < self.lifetime
    }
}

/// The OAuth side of the instance.
struct OAuth {
    client: Option<(String, String)>,
    client_credentials_enabled: bool,
    basic_enabled: bool,
    access_lifetime: std::time::Duration,
    refresh_lifetime: std::time::Duration,
    errors: OAuthErrors,
    tokens: BTreeMap<String, IssuedToken>,
    requests: Vec<TokenRequest>,
    /// The `Authorization` scheme of every Table API request (`Basic`, `Bearer`, or `""`).
    table_schemes: Vec<String>,
    issued_count: u64,
}

impl Default for OAuth {
    fn default() -> OAuth {
        OAuth {
            client: None,
            client_credentials_enabled: false,
            basic_enabled: true,
            access_lifetime: std::time::Duration::from_secs(1799),
            refresh_lifetime: std::time::Duration::from_secs(8_640_000),
            errors: OAuthErrors::ServiceNow,
            tokens: BTreeMap::new(),
            requests: Vec::new(),
            table_schemes: Vec::new(),
            issued_count: 0,
        }
    }
}

/// One `PATCH` of a record that the simulator accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordUpdate {
    pub table: String,
    pub sys_id: String,
    /// The record's `number` (empty for a record without one).
    pub number: String,
    /// The fields as sent (string values; anything else as its JSON text).
    pub fields: Vec<(String, String)>,
    /// `sysparm_fields` of the request.
    pub sysparm_fields: Option<String>,
}

impl RecordUpdate {
    /// The `work_notes` written, if this update wrote one.
    pub fn work_notes(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == "work_notes")
            .map(|(_, value)| value.as_str())
    }
}

/// The simulated instance. Cheap to share: wrap it in an `Arc` for the server.
pub struct ServiceNowSim {
    state: Mutex<State>,
}

struct State {
    user: String,
    password: String,
    db: Db,
    received: Vec<ReceivedQuery>,
    rate_limited: Option<u64>,
    /// Tables whose reads are answered 503, as a node whose database for them is down.
    unavailable_tables: Vec<String>,
    forbidden: bool,
    invalid_query_returns_no_rows: bool,
    user_offset: FixedOffset,
    oauth: OAuth,
    /// The account may read but not write (a PATCH gets the ACL's 403).
    read_only: bool,
    /// A status every PATCH is answered with instead of being applied.
    write_failure: Option<u16>,
    /// How long a PATCH waits before it is answered.
    write_delay: std::time::Duration,
    updates: Vec<RecordUpdate>,
}

impl ServiceNowSim {
    /// An instance holding [`default_fixture`] around the current time.
    pub fn new(account_user: &str, account_password: &str) -> ServiceNowSim {
        ServiceNowSim::with_records(account_user, account_password, default_fixture(Utc::now()))
    }

    /// An instance holding exactly these `(table, record)` pairs.
    pub fn with_records(
        account_user: &str,
        account_password: &str,
        records: Vec<(&str, Record)>,
    ) -> ServiceNowSim {
        let sim = ServiceNowSim {
            state: Mutex::new(State {
                user: account_user.to_string(),
                password: account_password.to_string(),
                db: Db::default(),
                received: Vec::new(),
                rate_limited: None,
                unavailable_tables: Vec::new(),
                forbidden: false,
                invalid_query_returns_no_rows: false,
                user_offset: FixedOffset::west_opt(5 * 3600).expect("-05:00 is a valid offset"),
                oauth: OAuth::default(),
                read_only: false,
                write_failure: None,
                write_delay: std::time::Duration::ZERO,
                updates: Vec::new(),
            }),
        };
        for (table, record) in records {
            sim.insert(table, record);
        }
        for record in choice_records() {
            sim.insert("sys_choice", record);
        }
        sim
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the simulator from the others.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Adds a record. Values must be strings, as on the wire; a missing `sys_id` is
    /// derived from the table, `number` (or `user_name`) and position.
    pub fn insert(&self, table: &str, mut record: Record) {
        for (field, value) in &record {
            assert!(
                value.is_string(),
                "{table}.{field} must be a string, ServiceNow stores every value as one"
            );
        }
        let mut state = self.lock();
        let rows = state.db.tables.entry(table.to_string()).or_default();
        if !record.contains_key("sys_id") {
            // The row count keeps two records with the same number apart.
            let seed = format!(
                "{table}/{}{}/{}",
                text(&record, "number"),
                text(&record, "user_name"),
                rows.len()
            );
            record.insert("sys_id".into(), json!(derived_sys_id(&seed)));
        }
        rows.push(record);
    }

    /// Sets one field of the record whose `number`, `user_name` or `sys_id` is `key`.
    pub fn set_record_field(&self, table: &str, key: &str, field: &str, value: &str) {
        let mut state = self.lock();
        let record = state
            .db
            .find_mut(table, key)
            .unwrap_or_else(|| panic!("no {table} record {key} in the simulator"));
        record.insert(field.to_string(), json!(value));
    }

    /// Drops a whole table: a query on it then gets 400 "Invalid table", as for a table
    /// the account's instance does not have.
    pub fn remove_table(&self, table: &str) {
        self.lock().db.tables.remove(table);
    }

    /// Removes the record whose `number`, `user_name` or `sys_id` is `key`.
    pub fn remove(&self, table: &str, key: &str) {
        let mut state = self.lock();
        let rows = state.db.tables.get_mut(table).expect("table exists");
        let before = rows.len();
        rows.retain(|record| !record_has_key(record, key));
        assert!(rows.len() < before, "no {table} record {key} to remove");
    }

    /// Every table request seen so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedQuery> {
        self.lock().received.clone()
    }

    pub fn query_count(&self) -> usize {
        self.lock().received.len()
    }

    pub fn clear_received(&self) {
        self.lock().received.clear();
    }

    /// `Some(seconds)`: answer 429 with `Retry-After: seconds`; `None`: serve normally.
    pub fn set_rate_limited(&self, retry_after: Option<u64>) {
        self.lock().rate_limited = retry_after;
    }

    /// Answers every read of `table` with ServiceNow's 503 body while `down`; the other
    /// tables are served as usual (one request of a login failing, not the instance).
    pub fn set_table_unavailable(&self, table: &str, down: bool) {
        let mut state = self.lock();
        state.unavailable_tables.retain(|held| held != table);
        if down {
            state.unavailable_tables.push(table.to_string());
        }
    }

    /// `true`: the account authenticates but fails the table ACL (403).
    pub fn set_forbidden(&self, forbidden: bool) {
        self.lock().forbidden = forbidden;
    }

    /// `true`: a query naming an unknown field returns no rows instead of dropping the
    /// condition (the instance property `glide.invalid_query.returns_no_rows`).
    pub fn set_invalid_query_returns_no_rows(&self, strict: bool) {
        self.lock().invalid_query_returns_no_rows = strict;
    }

    /// The API user's time zone, used for dates in `display_value=true|all`.
    pub fn set_user_utc_offset(&self, offset: FixedOffset) {
        self.lock().user_offset = offset;
    }

    pub fn set_credentials(&self, user: &str, password: &str) {
        let mut state = self.lock();
        state.user = user.to_string();
        state.password = password.to_string();
    }

    /// Registers the one OAuth client (an Application Registry entry); `None` removes it.
    pub fn set_oauth_client(&self, client: Option<(&str, &str)>) {
        self.lock().oauth.client = client.map(|(id, secret)| (id.to_string(), secret.to_string()));
    }

    /// The instance property `glide.oauth.inbound.client.credential.grant_type.enabled`.
    pub fn set_client_credentials_enabled(&self, enabled: bool) {
        self.lock().oauth.client_credentials_enabled = enabled;
    }

    /// `false`: the Table API refuses Basic authentication with 401 (OAuth only).
    pub fn set_basic_auth_enabled(&self, enabled: bool) {
        self.lock().oauth.basic_enabled = enabled;
    }

    /// How long access tokens issued from now on live (and the `expires_in` they carry).
    pub fn set_access_token_lifetime(&self, lifetime: std::time::Duration) {
        self.lock().oauth.access_lifetime = lifetime;
    }

    pub fn set_oauth_errors(&self, errors: OAuthErrors) {
        self.lock().oauth.errors = errors;
    }

    /// Revokes every token issued so far, access and refresh (as revoking the client's
    /// tokens on the instance does).
    pub fn revoke_tokens(&self) {
        for token in self.lock().oauth.tokens.values_mut() {
            token.revoked = true;
        }
    }

    /// Ends every access token issued so far, as if its lifespan had passed on the
    /// instance; refresh tokens stay valid.
    pub fn expire_access_tokens(&self) {
        for token in self.lock().oauth.tokens.values_mut() {
            if !token.refresh {
                token.revoked = true;
            }
        }
    }

    /// Every `POST /oauth_token.do`, oldest first.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.lock().oauth.requests.clone()
    }

    /// The `Authorization` scheme of every Table API request, oldest first.
    pub fn table_auth_schemes(&self) -> Vec<String> {
        self.lock().oauth.table_schemes.clone()
    }

    /// Access and refresh tokens issued so far that are still live.
    pub fn live_tokens(&self) -> Vec<String> {
        self.lock()
            .oauth
            .tokens
            .iter()
            .filter(|(_, token)| token.live())
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// `true`: the account may read but not write; a PATCH gets 403 with the body an
    /// instance sends when the table's write ACL refuses ("ACL Exception Update Failed
    /// due to security constraints").
    pub fn set_read_only(&self, read_only: bool) {
        self.lock().read_only = read_only;
    }

    /// `Some(status)`: every PATCH is answered with this status (an error envelope) and
    /// nothing is written.
    pub fn set_write_failure(&self, status: Option<u16>) {
        self.lock().write_failure = status;
    }

    /// Every PATCH waits this long before it is answered (a hanging write).
    pub fn set_write_delay(&self, delay: std::time::Duration) {
        self.lock().write_delay = delay;
    }

    /// Gives `user_name` (a `sys_user`, created when missing) the role `role` in
    /// `sys_user_has_role`, which `pam-ticket check` reads.
    pub fn grant_role(&self, user_name: &str, role: &str) {
        let user_id = derived_sys_id(&format!("sys_user/{user_name}"));
        let role_id = derived_sys_id(&format!("sys_user_role/{role}"));
        let has_user = self.lock().db.find_mut("sys_user", user_name).is_some();
        if !has_user {
            self.insert(
                "sys_user",
                record(&[
                    ("sys_id", &user_id),
                    ("user_name", user_name),
                    ("name", user_name),
                ]),
            );
        }
        let has_role = self.lock().db.find_mut("sys_user_role", &role_id).is_some();
        if !has_role {
            self.insert(
                "sys_user_role",
                record(&[("sys_id", &role_id), ("name", role)]),
            );
        }
        let user_id = text(
            self.lock()
                .db
                .find_mut("sys_user", user_name)
                .expect("the user was just made"),
            "sys_id",
        )
        .to_string();
        self.insert(
            "sys_user_has_role",
            record(&[("user", &user_id), ("role", &role_id)]),
        );
    }

    /// Every PATCH the simulator applied, oldest first.
    pub fn updates(&self) -> Vec<RecordUpdate> {
        self.lock().updates.clone()
    }

    /// The work notes written to the record whose `number` is `number`, oldest first.
    pub fn work_notes(&self, number: &str) -> Vec<String> {
        self.lock()
            .updates
            .iter()
            .filter(|update| update.number == number)
            .filter_map(|update| update.work_notes().map(str::to_string))
            .collect()
    }
}

impl Handler for ServiceNowSim {
    fn handle(&self, request: &Request) -> Response {
        if request.method == "PATCH" {
            // Waited for without the lock: the other requests go on meanwhile.
            let delay = self.lock().write_delay;
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
        }
        let mut state = self.lock();
        state.answer(request)
    }
}

impl State {
    /// Answers and, for a table route, records what was asked, even when refused (so a
    /// test can count the attempts a module made with bad credentials).
    fn answer(&mut self, request: &Request) -> Response {
        if request.path == "/oauth_token.do" {
            return self.token_endpoint(request);
        }
        let route = Route::parse(&request.path);
        if route.is_some() {
            let scheme = request
                .header("authorization")
                .and_then(|header| header.trim().split_once(' '))
                .map(|(scheme, _)| scheme.to_string())
                .unwrap_or_default();
            self.oauth.table_schemes.push(scheme);
        }
        let (response, matched) = if !self.authenticated(request) {
            let response = error(
                401,
                "User Not Authenticated",
                json!("Required to provide Auth information"),
            )
            .with_header("WWW-Authenticate", "BASIC realm=\"Service-now\"");
            (response, 0)
        } else if let Some(route) = &route {
            self.serve(request, route)
        } else {
            let response = error(
                400,
                "Requested URI does not represent any resource",
                Value::Null,
            );
            (response, 0)
        };
        if let Some(route) = route {
            self.received.push(ReceivedQuery {
                method: request.method.clone(),
                prefix: route.prefix,
                api_version: route.api_version,
                table: route.table,
                sys_id: route.sys_id,
                sysparm_query: request.param("sysparm_query").map(str::to_string),
                name_value: request
                    .query
                    .iter()
                    .filter(|(name, _)| !name.starts_with("sysparm_"))
                    .cloned()
                    .collect(),
                fields: request.param("sysparm_fields").map(str::to_string),
                display_value: request.param("sysparm_display_value").map(str::to_string),
                exclude_reference_link: request
                    .param("sysparm_exclude_reference_link")
                    .map(str::to_string),
                limit: request.param("sysparm_limit").map(str::to_string),
                offset: request.param("sysparm_offset").map(str::to_string),
                status: response.status,
                matched,
            });
        }
        response
    }

    fn authenticated(&self, request: &Request) -> bool {
        let Some(header) = request.header("authorization") else {
            return false;
        };
        let Some((scheme, encoded)) = header.trim().split_once(' ') else {
            return false;
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            return self
                .oauth
                .tokens
                .get(encoded.trim())
                .is_some_and(|token| !token.refresh && token.live());
        }
        if !scheme.eq_ignore_ascii_case("basic") || !self.oauth.basic_enabled {
            return false;
        }
        let Some(decoded) = base64_decode(encoded.trim()) else {
            return false;
        };
        let expected = format!("{}:{}", self.user, self.password);
        decoded == expected.as_bytes()
    }

    /// `POST /oauth_token.do`: a form-encoded grant, answered with a token or a refusal.
    fn token_endpoint(&mut self, request: &Request) -> Response {
        if request.method != "POST" {
            return error(405, "Method not Supported", Value::Null);
        }
        let form = super::https::parse_query(&String::from_utf8_lossy(&request.body));
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let grant_type = field("grant_type").unwrap_or_default();
        // The client authenticates in the form (client_secret_post) or, as RFC 6749
        // §2.3.1 requires servers to accept and requests-oauthlib (pysnc) does, with HTTP
        // Basic (client_secret_basic).
        let basic_client = request
            .header("authorization")
            .and_then(|header| header.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, encoded)| base64_decode(encoded.trim()))
            .and_then(|decoded| {
                let text = String::from_utf8(decoded).ok()?;
                let (id, secret) = text.split_once(':')?;
                Some((
                    super::https::percent_decode(id, true),
                    super::https::percent_decode(secret, true),
                ))
            });
        let (client_id, client_secret) = match (field("client_secret"), basic_client) {
            (Some(secret), _) => (field("client_id").unwrap_or_default(), Some(secret)),
            (None, Some((id, secret))) => (id, Some(secret)),
            (None, None) => (field("client_id").unwrap_or_default(), None),
        };
        let username = field("username");
        let client_ok = self.oauth.client.as_ref().is_some_and(|(id, secret)| {
            *id == client_id && client_secret.as_deref() == Some(secret.as_str())
        });
        let outcome = if !client_ok {
            Err(false)
        } else {
            match grant_type.as_str() {
                "password" => {
                    if username.as_deref() == Some(self.user.as_str())
                        && field("password").as_deref() == Some(self.password.as_str())
                    {
                        Ok(true)
                    } else {
                        Err(true)
                    }
                }
                "client_credentials" if self.oauth.client_credentials_enabled => Ok(false),
                "client_credentials" => Err(false),
                "refresh_token" => {
                    let live = field("refresh_token").is_some_and(|token| {
                        self.oauth
                            .tokens
                            .get(&token)
                            .is_some_and(|issued| issued.refresh && issued.live())
                    });
                    if live { Ok(false) } else { Err(true) }
                }
                _ => Err(true),
            }
        };
        let (response, issued) = match outcome {
            Ok(with_refresh) => {
                let access = self.issue(false);
                let mut body = json!({
                    "access_token": access,
                    "scope": "useraccount",
                    "token_type": "Bearer",
                    "expires_in": self.oauth.access_lifetime.as_secs(),
                });
                if with_refresh {
                    body["refresh_token"] = json!(self.issue(true));
                }
                (Response::json(200, &body), Some(access))
            }
            Err(grant_problem) => (self.oauth_refusal(grant_problem), None),
        };
        self.oauth.requests.push(TokenRequest {
            grant_type,
            client_id,
            username,
            status: response.status,
            issued,
        });
        response
    }

    /// A new token, remembered as live.
    fn issue(&mut self, refresh: bool) -> String {
        self.oauth.issued_count += 1;
        let seed = format!(
            "{}/{}/{:?}",
            self.oauth.issued_count,
            refresh,
            std::time::SystemTime::now()
        );
        let token = format!(
            "{}{}",
            derived_sys_id(&seed),
            derived_sys_id(&format!("{seed}+"))
        );
        let lifetime = if refresh {
            self.oauth.refresh_lifetime
        } else {
            self.oauth.access_lifetime
        };
        self.oauth.tokens.insert(
            token.clone(),
            IssuedToken {
                refresh,
                issued: std::time::Instant::now(),
                lifetime,
                revoked: false,
            },
        );
        token
    }

    /// A refused grant: the client (`false`) or the grant itself (`true`).
    fn oauth_refusal(&self, grant_problem: bool) -> Response {
        match (self.oauth.errors, grant_problem) {
            (OAuthErrors::ServiceNow, _) => Response::json(
                401,
                &json!({"error_description": "access_denied", "error": "server_error"}),
            ),
            (OAuthErrors::Rfc6749, false) => Response::json(
                401,
                &json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
            ),
            (OAuthErrors::Rfc6749, true) => Response::json(
                400,
                &json!({"error": "invalid_grant", "error_description": "The grant is invalid or expired"}),
            ),
        }
    }

    /// The answer and the number of records matched.
    /// `PATCH /api/now/table/{table}/{sys_id}` with a JSON object of fields: 200 with the
    /// record (as `sysparm_fields` asks), 404 for an unknown record, 403 when the account
    /// may not write.
    fn update(&mut self, request: &Request, route: &Route) -> (Response, usize) {
        if self.read_only || self.forbidden {
            let response = error(
                403,
                "Operation Failed",
                json!("ACL Exception Update Failed due to security constraints"),
            );
            return (response, 0);
        }
        if let Some(status) = self.write_failure {
            return (
                error(status, "Simulated failure", json!("set_write_failure")),
                0,
            );
        }
        let Some(sys_id) = route.sys_id.clone() else {
            return (
                error(405, "Method not Supported", json!("PATCH needs a sys_id")),
                0,
            );
        };
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&request.body) else {
            return (
                error(
                    400,
                    "Exception while reading request",
                    json!("Invalid JSON"),
                ),
                0,
            );
        };
        let Some(record) = self.db.find_mut(&route.table, &sys_id) else {
            return (
                error(
                    404,
                    "No Record found",
                    json!("Record doesn't exist or ACL restricts the record retrieval"),
                ),
                0,
            );
        };
        let number = text(record, "number").to_string();
        let sent: Vec<(String, String)> = fields
            .iter()
            .map(|(name, value)| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                (name.clone(), value)
            })
            .collect();
        for (name, value) in &sent {
            // A journal field is not stored on the record: the update log holds it.
            if name != "work_notes" && name != "comments" {
                record.insert(name.clone(), json!(value));
            }
        }
        self.updates.push(RecordUpdate {
            table: route.table.clone(),
            sys_id: sys_id.clone(),
            number,
            fields: sent,
            sysparm_fields: request.param("sysparm_fields").map(str::to_string),
        });
        let options = render::Options::from_request(request, self.user_offset);
        let Some(record) = self.db.by_sys_id(&route.table, &sys_id) else {
            return (error(500, "Record vanished", Value::Null), 0);
        };
        let rendered = render::record(&self.db, &route.table, record, &options);
        (Response::json(200, &json!({ "result": rendered })), 1)
    }

    fn serve(&mut self, request: &Request, route: &Route) -> (Response, usize) {
        if request.method == "PATCH" && self.rate_limited.is_none() {
            return self.update(request, route);
        }
        if request.method != "GET" && request.method != "PATCH" {
            let detail = format!(
                "Method {} is not supported by the simulator",
                request.method
            );
            return (error(405, "Method not Supported", json!(detail)), 0);
        }
        if let Some(retry_after) = self.rate_limited {
            let reset = Utc::now().timestamp() + i64::try_from(retry_after).unwrap_or(i64::MAX);
            let detail = format!(
                "The maximum number of requests per hour for this user has been exceeded; retry after {retry_after} seconds"
            );
            let response = error(429, "Rate limit exceeded", json!(detail))
                .with_header("X-RateLimit-Limit", "100")
                .with_header("X-RateLimit-Reset", &reset.to_string())
                .with_header("Retry-After", &retry_after.to_string());
            return (response, 0);
        }
        if self.unavailable_tables.contains(&route.table) {
            let response = error(
                503,
                "Service Unavailable",
                json!("The instance is temporarily unable to serve this request"),
            );
            return (response, 0);
        }
        if self.forbidden {
            let response = error(
                403,
                "User Not Authorized",
                json!("Failed API level ACL Validation"),
            );
            return (response, 0);
        }
        // A CMDB class table holds the CIs of that class and of the classes that extend
        // it; every CI is stored once, in `cmdb_ci`.
        let class_rows: Vec<Record>;
        let rows: &[Record] = match self.db.tables.get(&route.table) {
            Some(rows) => rows,
            None if schema::is_class_table(&route.table) => {
                class_rows = self
                    .db
                    .tables
                    .get("cmdb_ci")
                    .into_iter()
                    .flatten()
                    .filter(|ci| schema::extends(text(ci, "sys_class_name"), &route.table))
                    .cloned()
                    .collect();
                &class_rows
            }
            None => {
                let message = format!("Invalid table {}", route.table);
                return (error(400, &message, Value::Null), 0);
            }
        };
        let options = render::Options::from_request(request, self.user_offset);

        if let Some(sys_id) = &route.sys_id {
            let found = rows
                .iter()
                .find(|record| text(record, "sys_id").eq_ignore_ascii_case(sys_id));
            return match found {
                Some(record) => {
                    let rendered = render::record(&self.db, &route.table, record, &options);
                    (Response::json(200, &json!({ "result": rendered })), 1)
                }
                None => (
                    error(
                        404,
                        "No Record found",
                        json!("Record doesn't exist or ACL restricts the record retrieval"),
                    ),
                    0,
                ),
            };
        }

        let query = self.query_for(request, &route.table);
        let mut matched: Vec<&Record> = if self.invalid_query_returns_no_rows
            && !query
                .invalid_terms(&|path| self.db.is_known_path(&route.table, path))
                .is_empty()
        {
            Vec::new()
        } else {
            rows.iter()
                .filter(|record| query.matches(&|path| self.db.resolve(&route.table, record, path)))
                .collect()
        };
        self.sort(&route.table, &query.order, &mut matched);

        let total = matched.len();
        let offset = number_param(request, "sysparm_offset").unwrap_or(0);
        let limit = number_param(request, "sysparm_limit").unwrap_or(10_000);
        let page: Vec<Value> = matched
            .iter()
            .skip(offset)
            .take(limit)
            .map(|record| Value::Object(render::record(&self.db, &route.table, record, &options)))
            .collect();
        let mut response = Response::json(200, &json!({ "result": page }));
        let no_count = request
            .param("sysparm_no_count")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if !no_count {
            response = response.with_header("X-Total-Count", &total.to_string());
        }
        (response, total)
    }

    /// `sysparm_query` when present and non-empty, otherwise the name-value form (every
    /// non-`sysparm_` parameter is an equality condition).
    fn query_for(&self, request: &Request, table: &str) -> query::EncodedQuery {
        match request.param("sysparm_query") {
            Some(encoded) if !encoded.is_empty() => query::EncodedQuery::parse(encoded),
            _ => {
                let conditions: Vec<String> = request
                    .query
                    .iter()
                    .filter(|(name, _)| {
                        !name.starts_with("sysparm_") && self.db.is_known_path(table, name)
                    })
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                query::EncodedQuery::from_and_conditions(&conditions)
            }
        }
    }

    fn sort(&self, table: &str, order: &[query::Order], rows: &mut [&Record]) {
        for key in order.iter().rev() {
            if !self.db.is_known_path(table, &key.field) {
                continue;
            }
            // Stable sorts applied from the last key to the first give a lexicographic
            // order with the first ORDERBY as the primary key.
            rows.sort_by(|a, b| {
                let left = self.db.resolve(table, a, &key.field).unwrap_or_default();
                let right = self.db.resolve(table, b, &key.field).unwrap_or_default();
                let ordering = query::compare_values(&left, &right);
                if key.descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            });
        }
    }
}

/// `[prefix]/api/now/[v1/|v2/]table/<table>[/<sys_id>]`.
struct Route {
    prefix: String,
    api_version: String,
    table: String,
    sys_id: Option<String>,
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let at = path.find("/api/now/")?;
        let prefix = path[..at].to_string();
        let mut rest = &path[at + "/api/now/".len()..];
        let mut api_version = String::new();
        for version in ["v1/", "v2/"] {
            if let Some(stripped) = rest.strip_prefix(version) {
                api_version = version.trim_end_matches('/').to_string();
                rest = stripped;
            }
        }
        let rest = rest.strip_prefix("table/")?;
        let mut segments = rest.trim_end_matches('/').split('/');
        let table = segments
            .next()
            .filter(|table| !table.is_empty())?
            .to_string();
        let sys_id = segments.next().map(str::to_string);
        if segments.next().is_some() {
            return None;
        }
        Some(Route {
            prefix,
            api_version,
            table,
            sys_id,
        })
    }
}

/// ServiceNow's error envelope.
fn error(status: u16, message: &str, detail: Value) -> Response {
    Response::json(
        status,
        &json!({"error": {"message": message, "detail": detail}, "status": "failure"}),
    )
}

fn number_param(request: &Request, name: &str) -> Option<usize> {
    request.param(name)?.trim().parse().ok()
}

/// The stored string of a field, `""` when absent.
fn text<'a>(record: &'a Record, field: &str) -> &'a str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

fn record_has_key(record: &Record, key: &str) -> bool {
    ["number", "user_name", "sys_id"]
        .iter()
        .any(|field| text(record, field) == key)
}

/// 32 hex characters, stable for a given seed, like a real sys_id.
fn derived_sys_id(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(seed)
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Standard base64 (with or without padding); `None` when the text is not base64.
fn base64_decode(encoded: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in encoded.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// The field types the simulator knows; a field only present in inserted records is
/// plain text.
mod schema {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        Text,
        DateTime,
        /// A reference to a record of this table.
        Reference(&'static str),
        /// A choice list: stored value → label.
        Choice(&'static [(&'static str, &'static str)]),
    }

    const INCIDENT_STATE: &[(&str, &str)] = &[
        ("1", "New"),
        ("2", "In Progress"),
        ("3", "On Hold"),
        ("6", "Resolved"),
        ("7", "Closed"),
        ("8", "Canceled"),
    ];
    const CHANGE_STATE: &[(&str, &str)] = &[
        ("-5", "New"),
        ("-4", "Assess"),
        ("-3", "Authorize"),
        ("-2", "Scheduled"),
        ("-1", "Implement"),
        ("0", "Review"),
        ("3", "Closed"),
        ("4", "Canceled"),
    ];
    const APPROVAL: &[(&str, &str)] = &[
        ("not requested", "Not Yet Requested"),
        ("requested", "Requested"),
        ("approved", "Approved"),
        ("rejected", "Rejected"),
    ];
    const PRIORITY: &[(&str, &str)] = &[
        ("1", "1 - Critical"),
        ("2", "2 - High"),
        ("3", "3 - Moderate"),
        ("4", "4 - Low"),
        ("5", "5 - Planning"),
    ];

    const TASK_STATE: &[(&str, &str)] = &[
        ("-5", "Pending"),
        ("1", "Open"),
        ("2", "Work in Progress"),
        ("3", "Closed Complete"),
        ("4", "Closed Incomplete"),
        ("7", "Closed Skipped"),
    ];
    const PROBLEM_STATE: &[(&str, &str)] = &[
        ("101", "New"),
        ("102", "Assess"),
        ("103", "Root Cause Analysis"),
        ("104", "Fix in Progress"),
        ("106", "Resolved"),
        ("107", "Closed"),
    ];

    /// A choice list: stored value → label.
    pub type Choices = &'static [(&'static str, &'static str)];

    /// The choice lists the instance keeps in `sys_choice`, as (table, element, list).
    pub const CHOICE_LISTS: &[(&str, &str, Choices)] = &[
        ("incident", "state", INCIDENT_STATE),
        ("incident", "priority", PRIORITY),
        ("change_request", "state", CHANGE_STATE),
        ("change_request", "approval", APPROVAL),
        ("sc_req_item", "state", TASK_STATE),
        ("sc_req_item", "approval", APPROVAL),
        ("sc_task", "state", TASK_STATE),
        ("problem", "state", PROBLEM_STATE),
    ];

    const USER: Kind = Kind::Reference("sys_user");
    const CI: Kind = Kind::Reference("cmdb_ci");
    const GROUP: Kind = Kind::Reference("sys_user_group");

    const INCIDENT: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("number", Kind::Text),
        ("short_description", Kind::Text),
        ("state", Kind::Choice(INCIDENT_STATE)),
        ("priority", Kind::Choice(PRIORITY)),
        ("active", Kind::Text),
        ("caller_id", USER),
        ("opened_by", USER),
        ("assigned_to", USER),
        ("cmdb_ci", CI),
        ("assignment_group", GROUP),
        ("opened_at", Kind::DateTime),
        ("sys_created_on", Kind::DateTime),
        ("sys_updated_on", Kind::DateTime),
    ];
    const CHANGE_REQUEST: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("number", Kind::Text),
        ("short_description", Kind::Text),
        ("state", Kind::Choice(CHANGE_STATE)),
        ("approval", Kind::Choice(APPROVAL)),
        ("type", Kind::Text),
        ("active", Kind::Text),
        ("start_date", Kind::DateTime),
        ("end_date", Kind::DateTime),
        ("requested_by", USER),
        ("opened_by", USER),
        ("assigned_to", USER),
        ("cmdb_ci", CI),
        ("assignment_group", GROUP),
        ("opened_at", Kind::DateTime),
        ("sys_created_on", Kind::DateTime),
        ("sys_updated_on", Kind::DateTime),
    ];
    const SYS_USER: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("user_name", Kind::Text),
        ("name", Kind::Text),
        ("first_name", Kind::Text),
        ("last_name", Kind::Text),
        ("email", Kind::Text),
        ("employee_number", Kind::Text),
        ("active", Kind::Text),
    ];
    const SYS_USER_GROUP: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("name", Kind::Text),
        ("active", Kind::Text),
    ];
    /// Group membership: one row per (user, group).
    const SYS_USER_GRMEMBER: &[(&str, Kind)] =
        &[("sys_id", Kind::Text), ("user", USER), ("group", GROUP)];

    const SC_REQ_ITEM: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("number", Kind::Text),
        ("short_description", Kind::Text),
        ("state", Kind::Choice(TASK_STATE)),
        ("approval", Kind::Choice(APPROVAL)),
        ("active", Kind::Text),
        ("requested_for", USER),
        ("opened_by", USER),
        ("assigned_to", USER),
        ("assignment_group", GROUP),
        ("cmdb_ci", CI),
    ];
    const SC_TASK: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("number", Kind::Text),
        ("short_description", Kind::Text),
        ("state", Kind::Choice(TASK_STATE)),
        ("active", Kind::Text),
        ("request_item", Kind::Reference("sc_req_item")),
        ("opened_by", USER),
        ("assigned_to", USER),
        ("assignment_group", GROUP),
        ("cmdb_ci", CI),
    ];
    const PROBLEM: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("number", Kind::Text),
        ("short_description", Kind::Text),
        ("state", Kind::Choice(PROBLEM_STATE)),
        ("active", Kind::Text),
        ("opened_by", USER),
        ("assigned_to", USER),
        ("assignment_group", GROUP),
        ("cmdb_ci", CI),
    ];
    /// The base class of every CI.
    const CMDB_CI: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("name", Kind::Text),
        ("ip_address", Kind::Text),
        ("sys_class_name", Kind::Text),
    ];
    /// cmdb_ci_computer and the classes that extend it.
    const CMDB_CI_COMPUTER: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("name", Kind::Text),
        ("ip_address", Kind::Text),
        ("sys_class_name", Kind::Text),
        ("fqdn", Kind::Text),
        ("host_name", Kind::Text),
    ];
    const TASK_CI: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("task", Kind::Reference("task")),
        ("ci_item", CI),
    ];
    /// The tables that extend `task`, where a reference to `task` looks.
    pub const TASK_TABLES: &[&str] = &[
        "incident",
        "change_request",
        "sc_req_item",
        "sc_task",
        "problem",
    ];

    /// Whether `table` is the CMDB's base class or one of its classes: their fields are
    /// the schema's alone, never guessed from stored records (a server's `fqdn` must not
    /// make the field known on the base class).
    pub fn is_cmdb(table: &str) -> bool {
        table == "cmdb_ci" || table.starts_with("cmdb_ci_")
    }

    /// The CMDB classes the simulator knows, each with the class it extends.
    const CLASSES: &[(&str, &str)] = &[
        ("cmdb_ci_hardware", "cmdb_ci"),
        ("cmdb_ci_computer", "cmdb_ci_hardware"),
        ("cmdb_ci_server", "cmdb_ci_computer"),
        ("cmdb_ci_linux_server", "cmdb_ci_server"),
        ("cmdb_ci_win_server", "cmdb_ci_server"),
        ("cmdb_ci_appl", "cmdb_ci"),
        ("cmdb_ci_service", "cmdb_ci"),
        ("cmdb_ci_cluster", "cmdb_ci"),
    ];

    /// Whether `table` is a CMDB class table other than the base, which the Table API
    /// answers with the CIs of that class and its subclasses.
    pub fn is_class_table(table: &str) -> bool {
        CLASSES.iter().any(|(class, _)| *class == table)
    }

    /// Whether `class` is `ancestor` or extends it.
    pub fn extends(class: &str, ancestor: &str) -> bool {
        let mut current = class;
        loop {
            if current == ancestor {
                return true;
            }
            match CLASSES.iter().find(|(known, _)| *known == current) {
                Some((_, parent)) => current = parent,
                None => return false,
            }
        }
    }

    const SYS_CHOICE: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("name", Kind::Text),
        ("element", Kind::Text),
        ("value", Kind::Text),
        ("label", Kind::Text),
        ("sequence", Kind::Text),
        ("language", Kind::Text),
        ("inactive", Kind::Text),
    ];

    const SYS_USER_ROLE: &[(&str, Kind)] = &[("sys_id", Kind::Text), ("name", Kind::Text)];
    const SYS_USER_HAS_ROLE: &[(&str, Kind)] = &[
        ("sys_id", Kind::Text),
        ("user", USER),
        ("role", Kind::Reference("sys_user_role")),
    ];

    /// The declared fields of a table, in output order.
    pub fn fields(table: &str) -> &'static [(&'static str, Kind)] {
        match table {
            "incident" => INCIDENT,
            "change_request" => CHANGE_REQUEST,
            "sys_user" => SYS_USER,
            "sys_user_group" => SYS_USER_GROUP,
            "sys_user_grmember" => SYS_USER_GRMEMBER,
            "sys_choice" => SYS_CHOICE,
            "sys_user_role" => SYS_USER_ROLE,
            "sys_user_has_role" => SYS_USER_HAS_ROLE,
            "sc_req_item" => SC_REQ_ITEM,
            "sc_task" => SC_TASK,
            "problem" => PROBLEM,
            "task_ci" => TASK_CI,
            "cmdb_ci_computer"
            | "cmdb_ci_server"
            | "cmdb_ci_linux_server"
            | "cmdb_ci_win_server" => CMDB_CI_COMPUTER,
            table if is_cmdb(table) => CMDB_CI,
            _ => &[],
        }
    }

    pub fn kind(table: &str, field: &str) -> Option<Kind> {
        fields(table)
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, kind)| *kind)
    }

    /// The field whose value stands for a record when another record references it.
    pub fn display_field(table: &str) -> &'static str {
        match table {
            "sys_user" | "sys_user_group" => "name",
            "sys_user_grmember" => "sys_id",
            table if is_cmdb(table) => "name",
            _ => "number",
        }
    }
}

/// The record store plus field resolution (known fields, dot-walking).
#[derive(Default)]
struct Db {
    tables: BTreeMap<String, Vec<Record>>,
}

/// Where a (possibly dot-walked) field path ends.
struct Resolved<'a> {
    field: String,
    kind: schema::Kind,
    /// The record holding the final field, `None` when a reference on the way is empty.
    record: Option<&'a Record>,
}

impl Resolved<'_> {
    fn stored(&self) -> String {
        self.record
            .map(|record| text(record, &self.field).to_string())
            .unwrap_or_default()
    }
}

impl Db {
    fn find_mut(&mut self, table: &str, key: &str) -> Option<&mut Record> {
        self.tables
            .get_mut(table)?
            .iter_mut()
            .find(|record| record_has_key(record, key))
    }

    fn by_sys_id(&self, table: &str, sys_id: &str) -> Option<&Record> {
        if sys_id.is_empty() {
            return None;
        }
        if table == "task" {
            return schema::TASK_TABLES
                .iter()
                .find_map(|table| self.by_sys_id(table, sys_id));
        }
        self.tables
            .get(table)?
            .iter()
            .find(|record| text(record, "sys_id").eq_ignore_ascii_case(sys_id))
    }

    /// A field exists when the schema declares it or some stored record carries it.
    fn kind(&self, table: &str, field: &str) -> Option<schema::Kind> {
        if schema::is_cmdb(table) {
            return schema::kind(table, field);
        }
        schema::kind(table, field).or_else(|| {
            let stored = self
                .tables
                .get(table)?
                .iter()
                .any(|record| record.contains_key(field));
            stored.then_some(schema::Kind::Text)
        })
    }

    fn is_known_path(&self, table: &str, path: &str) -> bool {
        self.walk(table, None, path).is_some()
    }

    /// The stored value at `path` for `record`; `None` when the path names an unknown
    /// field (the condition is then dropped).
    fn resolve(&self, table: &str, record: &Record, path: &str) -> Option<String> {
        self.walk(table, Some(record), path)
            .map(|resolved| resolved.stored())
    }

    /// Follows `a.b.c` through reference fields. Validity depends on the schema only, so
    /// an empty reference on the way still resolves (to an empty value).
    fn walk<'a>(
        &'a self,
        table: &str,
        record: Option<&'a Record>,
        path: &str,
    ) -> Option<Resolved<'a>> {
        let mut table = table.to_string();
        let mut record = record;
        let mut segments = path.split('.').peekable();
        while let Some(field) = segments.next() {
            let kind = self.kind(&table, field)?;
            if segments.peek().is_none() {
                return Some(Resolved {
                    field: field.to_string(),
                    kind,
                    record,
                });
            }
            let schema::Kind::Reference(target) = kind else {
                return None;
            };
            record = record.and_then(|current| self.by_sys_id(target, text(current, field)));
            table = target.to_string();
            // A CI is read as its own class: `cmdb_ci.fqdn` exists for a server, not for
            // an application.
            if target == "cmdb_ci"
                && let Some(class) = record
                    .map(|ci| text(ci, "sys_class_name"))
                    .filter(|class| schema::is_cmdb(class))
            {
                table = class.to_string();
            }
        }
        None
    }

    /// The display value of a stored value of this kind.
    fn display(&self, kind: schema::Kind, stored: &str, offset: FixedOffset) -> String {
        match kind {
            schema::Kind::Text => stored.to_string(),
            schema::Kind::Choice(labels) => labels
                .iter()
                .find(|(value, _)| *value == stored)
                .map_or(stored, |(_, label)| label)
                .to_string(),
            schema::Kind::DateTime => NaiveDateTime::parse_from_str(stored, DATE_FORMAT)
                .map(|utc| {
                    (utc.and_utc().with_timezone(&offset))
                        .format(DATE_FORMAT)
                        .to_string()
                })
                .unwrap_or_else(|_| stored.to_string()),
            schema::Kind::Reference(target) => self
                .by_sys_id(target, stored)
                .map(|referenced| text(referenced, schema::display_field(target)).to_string())
                .unwrap_or_default(),
        }
    }
}

/// Turning stored records into the JSON an instance sends.
mod render {
    use super::{Db, Record, Request, schema};
    use chrono::FixedOffset;
    use serde_json::{Map, Value, json};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mode {
        Stored,
        Display,
        All,
    }

    pub struct Options {
        pub mode: Mode,
        pub exclude_reference_link: bool,
        /// `None`: every field.
        pub fields: Option<Vec<String>>,
        /// Host used in reference links (the instance's own name, without any prefix).
        pub host: String,
        pub offset: FixedOffset,
    }

    impl Options {
        pub fn from_request(request: &Request, offset: FixedOffset) -> Options {
            let flag = |name: &str| {
                request
                    .param(name)
                    .map(|value| value.trim().to_ascii_lowercase())
            };
            let mode = match flag("sysparm_display_value").as_deref() {
                Some("true") => Mode::Display,
                Some("all") => Mode::All,
                _ => Mode::Stored,
            };
            let fields = request
                .param("sysparm_fields")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|field| !field.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|list| !list.is_empty());
            Options {
                mode,
                exclude_reference_link: flag("sysparm_exclude_reference_link").as_deref()
                    == Some("true"),
                fields,
                host: request
                    .header("host")
                    .unwrap_or("instance.service-now.com")
                    .to_string(),
                offset,
            }
        }
    }

    pub fn record(db: &Db, table: &str, record: &Record, options: &Options) -> Map<String, Value> {
        let names: Vec<String> = match &options.fields {
            Some(fields) => fields.clone(),
            None => {
                let mut names: Vec<String> = schema::fields(table)
                    .iter()
                    .map(|(name, _)| name.to_string())
                    .collect();
                for name in record.keys() {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
                names
            }
        };
        let mut out = Map::new();
        for name in names {
            // Unknown fields are left out, as the instance does.
            if let Some(value) = field(db, table, record, &name, options) {
                out.insert(name, value);
            }
        }
        out
    }

    fn field(
        db: &Db,
        table: &str,
        record: &Record,
        path: &str,
        options: &Options,
    ) -> Option<Value> {
        let resolved = db.walk(table, Some(record), path)?;
        let stored = resolved.stored();
        let display = db.display(resolved.kind, &stored, options.offset);
        if path.contains('.') {
            // A dot-walked field comes back flat: a string, never a link object.
            return Some(match options.mode {
                Mode::Stored => json!(stored),
                Mode::Display => json!(display),
                Mode::All => json!({"display_value": display, "value": stored}),
            });
        }
        if let schema::Kind::Reference(target) = resolved.kind
            && !stored.is_empty()
        {
            return Some(reference(target, &stored, &display, options));
        }
        Some(match options.mode {
            Mode::Stored => json!(stored),
            Mode::Display => json!(display),
            Mode::All => json!({"display_value": display, "value": stored}),
        })
    }

    fn reference(target: &str, sys_id: &str, display: &str, options: &Options) -> Value {
        let link = format!("https://{}/api/now/table/{target}/{sys_id}", options.host);
        let mut object = Map::new();
        match options.mode {
            Mode::Stored if options.exclude_reference_link => return json!(sys_id),
            Mode::Display if options.exclude_reference_link => return json!(display),
            Mode::Stored => {
                object.insert("value".into(), json!(sys_id));
            }
            Mode::Display => {
                object.insert("display_value".into(), json!(display));
            }
            Mode::All => {
                object.insert("display_value".into(), json!(display));
                object.insert("value".into(), json!(sys_id));
            }
        }
        if !options.exclude_reference_link {
            object.insert("link".into(), json!(link));
        }
        Value::Object(object)
    }
}

/// Encoded queries: parse into groups of clauses, evaluate against a field lookup.
///
/// `a^b^ORc^NQd` is `(a AND (b OR c)) OR d`: `^NQ` separates OR'd groups, `^` separates
/// AND'd clauses, and `^OR` adds an alternative to the clause before it.
pub mod query {
    use std::cmp::Ordering;

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Op {
        Eq,
        Ne,
        Like,
        NotLike,
        StartsWith,
        EndsWith,
        In,
        NotIn,
        IsEmpty,
        IsNotEmpty,
        EmptyString,
        Anything,
        Lt,
        Le,
        Gt,
        Ge,
    }

    /// Longest first, so `NOT LIKE` wins over nothing and `ISNOTEMPTY` over `IN`.
    const OPERATORS: &[(&str, Op)] = &[
        ("ISNOTEMPTY", Op::IsNotEmpty),
        ("ISEMPTY", Op::IsEmpty),
        ("EMPTYSTRING", Op::EmptyString),
        ("ANYTHING", Op::Anything),
        ("NOT LIKE", Op::NotLike),
        ("NOT IN", Op::NotIn),
        ("STARTSWITH", Op::StartsWith),
        ("ENDSWITH", Op::EndsWith),
        ("LIKE", Op::Like),
        ("IN", Op::In),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Condition {
        Compare {
            field: String,
            op: Op,
            value: String,
        },
        /// A term the parser could not read; the instance drops those.
        Unreadable(String),
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Order {
        pub field: String,
        pub descending: bool,
    }

    /// AND of clauses, each an OR of conditions.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Group {
        pub clauses: Vec<Vec<Condition>>,
    }

    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct EncodedQuery {
        /// OR'd groups; no group at all matches everything.
        pub groups: Vec<Group>,
        pub order: Vec<Order>,
    }

    impl EncodedQuery {
        pub fn parse(encoded: &str) -> EncodedQuery {
            let mut query = EncodedQuery::default();
            for part in encoded.split("^NQ") {
                let mut group = Group::default();
                for term in part.split('^') {
                    if term.is_empty() || term == "EQ" {
                        continue;
                    }
                    if let Some(field) = term.strip_prefix("ORDERBYDESC") {
                        query.order.push(Order {
                            field: field.to_string(),
                            descending: true,
                        });
                    } else if let Some(field) = term.strip_prefix("ORDERBY") {
                        query.order.push(Order {
                            field: field.to_string(),
                            descending: false,
                        });
                    } else if let Some(alternative) = term.strip_prefix("OR") {
                        let condition = Condition::parse(alternative);
                        match group.clauses.last_mut() {
                            Some(clause) => clause.push(condition),
                            None => group.clauses.push(vec![condition]),
                        }
                    } else {
                        group.clauses.push(vec![Condition::parse(term)]);
                    }
                }
                query.groups.push(group);
            }
            // A query of only ORDERBY terms filters nothing.
            if query.groups.iter().all(|group| group.clauses.is_empty()) {
                query.groups.clear();
            }
            query
        }

        /// `field=value` conditions AND'd together (the name-value query form).
        pub fn from_and_conditions(conditions: &[String]) -> EncodedQuery {
            if conditions.is_empty() {
                return EncodedQuery::default();
            }
            let clauses = conditions
                .iter()
                .map(|condition| vec![Condition::parse(condition)])
                .collect();
            EncodedQuery {
                groups: vec![Group { clauses }],
                order: Vec::new(),
            }
        }

        /// `lookup(path)` gives the record's stored value, `None` for an unknown field.
        /// Conditions on unknown fields and unreadable terms are dropped; a clause or
        /// group left empty matches.
        pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
            if self.groups.is_empty() {
                return true;
            }
            self.groups.iter().any(|group| {
                group.clauses.iter().all(|clause| {
                    let verdicts: Vec<bool> = clause
                        .iter()
                        .filter_map(|condition| condition.eval(lookup))
                        .collect();
                    verdicts.is_empty() || verdicts.into_iter().any(|verdict| verdict)
                })
            })
        }

        /// The terms an instance would call invalid: unreadable ones and those naming a
        /// field `known` rejects.
        pub fn invalid_terms(&self, known: &dyn Fn(&str) -> bool) -> Vec<String> {
            self.groups
                .iter()
                .flat_map(|group| group.clauses.iter().flatten())
                .filter_map(|condition| match condition {
                    Condition::Compare { field, .. } if known(field) => None,
                    Condition::Compare { field, .. } => Some(field.clone()),
                    Condition::Unreadable(term) => Some(term.clone()),
                })
                .collect()
        }
    }

    impl Condition {
        /// `field` is lower-case letters, digits, `_` and `.` (dot-walks); the operator
        /// follows immediately, then the value.
        pub fn parse(term: &str) -> Condition {
            let split = term
                .find(|c: char| {
                    !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
                })
                .unwrap_or(term.len());
            let (field, rest) = term.split_at(split);
            if field.is_empty() {
                return Condition::Unreadable(term.to_string());
            }
            for (token, op) in OPERATORS {
                if let Some(value) = rest.strip_prefix(token) {
                    return Condition::Compare {
                        field: field.to_string(),
                        op: op.clone(),
                        value: value.to_string(),
                    };
                }
            }
            Condition::Unreadable(term.to_string())
        }

        /// `None` when the condition is dropped (unknown field, unreadable term).
        pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<bool> {
            let Condition::Compare { field, op, value } = self else {
                return None;
            };
            let actual = lookup(field)?.to_lowercase();
            let wanted = value.to_lowercase();
            Some(match op {
                Op::Eq => actual == wanted,
                // An instance's `!=` also matches empty values.
                Op::Ne => actual != wanted,
                Op::Like => actual.contains(&wanted),
                Op::NotLike => !actual.contains(&wanted),
                Op::StartsWith => actual.starts_with(&wanted),
                Op::EndsWith => actual.ends_with(&wanted),
                Op::In => wanted.split(',').any(|item| item.trim() == actual),
                Op::NotIn => !wanted.split(',').any(|item| item.trim() == actual),
                Op::IsEmpty | Op::EmptyString => actual.is_empty(),
                Op::IsNotEmpty => !actual.is_empty(),
                Op::Anything => true,
                // Empty values never satisfy an ordering, like NULL in SQL.
                Op::Lt => !actual.is_empty() && compare_values(&actual, &wanted).is_lt(),
                Op::Le => !actual.is_empty() && compare_values(&actual, &wanted).is_le(),
                Op::Gt => !actual.is_empty() && compare_values(&actual, &wanted).is_gt(),
                Op::Ge => !actual.is_empty() && compare_values(&actual, &wanted).is_ge(),
            })
        }
    }

    /// Numbers compare as numbers (choice values like `-5`), everything else as text,
    /// which orders `YYYY-MM-DD HH:MM:SS` dates correctly.
    pub fn compare_values(left: &str, right: &str) -> Ordering {
        match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
            (Ok(left), Ok(right)) => left.partial_cmp(&right).unwrap_or(Ordering::Equal),
            _ => left.cmp(right),
        }
    }
}

fn user(
    sys_id: &str,
    user_name: &str,
    (first, last): (&str, &str),
    email: &str,
    employee_number: &str,
) -> Record {
    record(&[
        ("sys_id", sys_id),
        ("user_name", user_name),
        ("name", &format!("{first} {last}")),
        ("first_name", first),
        ("last_name", last),
        ("email", email),
        ("employee_number", employee_number),
        ("active", "true"),
    ])
}

/// The `sys_choice` rows of every choice list the schema declares, active and in
/// English, as an instance keeps them (the labels the Table API shows are these).
pub fn choice_records() -> Vec<Record> {
    let mut records = Vec::new();
    for (table, element, list) in schema::CHOICE_LISTS {
        for (position, (value, label)) in list.iter().enumerate() {
            let sequence = (position * 100).to_string();
            records.push(record(&[
                ("name", table),
                ("element", element),
                ("value", value),
                ("label", label),
                ("sequence", &sequence),
                ("language", "en"),
                ("inactive", "false"),
            ]));
        }
    }
    records
}

fn record(fields: &[(&str, &str)]) -> Record {
    fields
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect()
}

/// The records described in the module documentation, dated around `now`.
pub fn default_fixture(now: DateTime<Utc>) -> Vec<(&'static str, Record)> {
    let at = |offset: Duration| (now + offset).format(DATE_FORMAT).to_string();
    let opened = at(Duration::days(-1));
    let mut records = vec![
        (
            "sys_user",
            user(
                ALICE,
                "alice",
                ("Alice", "Anders"),
                "alice@corp.example.com",
                "E1001",
            ),
        ),
        (
            "sys_user",
            user(
                BOB,
                "bob",
                ("Bob", "Baker"),
                "bob@corp.example.com",
                "E1002",
            ),
        ),
        (
            "sys_user",
            user(
                CAROL,
                "carol",
                ("Carol", "Chen"),
                "carol.chen@corp.example.com",
                "E1003",
            ),
        ),
        (
            "sys_user",
            user(
                DAVE,
                "dave",
                ("Dave", "Dunn"),
                "dave@corp.example.com",
                "E1004",
            ),
        ),
        (
            "sys_user_group",
            record(&[
                ("sys_id", LINUX_OPS),
                ("name", "Linux Ops"),
                ("active", "true"),
            ]),
        ),
        (
            "sys_user_group",
            record(&[
                ("sys_id", DBA),
                ("name", "Database Admins"),
                ("active", "true"),
            ]),
        ),
    ];
    for (user, group) in [(BOB, LINUX_OPS), (DAVE, LINUX_OPS), (CAROL, DBA)] {
        records.push((
            "sys_user_grmember",
            record(&[("user", user), ("group", group)]),
        ));
    }

    let incidents = [
        (
            10001,
            "2",
            ALICE,
            CAROL,
            (DAVE, LINUX_OPS),
            "VPN drops every hour",
        ),
        (
            10002,
            "7",
            ALICE,
            ALICE,
            ("", ""),
            "Printer jammed (closed)",
        ),
        (
            10003,
            "1",
            BOB,
            ALICE,
            ("", DBA),
            "Bob's laptop will not boot",
        ),
        (
            10004,
            "8",
            ALICE,
            ALICE,
            ("", ""),
            "Duplicate of INC0010001",
        ),
        (10005, "3", ALICE, ALICE, ("", ""), "Waiting for a vendor"),
    ];
    for (serial, state, caller, opener, (assignee, group), summary) in incidents {
        let active = if ["7", "8"].contains(&state) {
            "false"
        } else {
            "true"
        };
        records.push((
            "incident",
            record(&[
                ("sys_id", &format!("1c1de{serial:027}")),
                ("number", &format!("INC{serial:07}")),
                ("short_description", summary),
                ("state", state),
                ("priority", "3"),
                ("active", active),
                ("caller_id", caller),
                ("opened_by", opener),
                ("assigned_to", assignee),
                ("assignment_group", group),
                ("opened_at", &opened),
                ("sys_created_on", &opened),
                ("sys_updated_on", &opened),
            ]),
        ));
    }

    let hour = Duration::hours(1);
    let in_window = (at(-hour), at(hour));
    let changes = [
        (
            30001,
            "-1",
            "approved",
            in_window.clone(),
            ALICE,
            "Patch web servers",
        ),
        (
            30002,
            "-1",
            "requested",
            in_window.clone(),
            ALICE,
            "Awaiting approval",
        ),
        (
            30003,
            "-1",
            "approved",
            (at(Duration::days(2)), at(Duration::days(3))),
            ALICE,
            "Window not open yet",
        ),
        (
            30004,
            "-1",
            "approved",
            (at(Duration::days(-3)), at(Duration::days(-2))),
            ALICE,
            "Window already over",
        ),
        (
            30005,
            "-1",
            "approved",
            in_window.clone(),
            BOB,
            "Bob's change",
        ),
        (
            30006,
            "-1",
            "approved",
            (String::new(), at(hour)),
            ALICE,
            "No planned start",
        ),
        (30007, "3", "approved", in_window, ALICE, "Closed change"),
    ];
    for (serial, state, approval, (start, end), requester, summary) in changes {
        let active = if state == "3" { "false" } else { "true" };
        records.push((
            "change_request",
            record(&[
                ("sys_id", &format!("c4a9e{serial:027}")),
                ("number", &format!("CHG{serial:07}")),
                ("short_description", summary),
                ("state", state),
                ("approval", approval),
                ("type", "normal"),
                ("active", active),
                ("start_date", &start),
                ("end_date", &end),
                ("requested_by", requester),
                ("opened_by", CAROL),
                ("assigned_to", DAVE),
                ("assignment_group", LINUX_OPS),
                ("opened_at", &opened),
                ("sys_created_on", &opened),
                ("sys_updated_on", &opened),
            ]),
        ));
    }
    records.extend(more_types_and_cis());
    records
}

/// The requested items, catalog tasks, problems and CIs of the module documentation.
fn more_types_and_cis() -> Vec<(&'static str, Record)> {
    let mut records = Vec::new();
    let ci = |sys_id: &str, class: &str, name: &str, ip: &str, fqdn: &str, host: &str| {
        let mut fields = vec![
            ("sys_id", sys_id),
            ("sys_class_name", class),
            ("name", name),
            ("ip_address", ip),
        ];
        if !fqdn.is_empty() {
            fields.push(("fqdn", fqdn));
        }
        if !host.is_empty() {
            fields.push(("host_name", host));
        }
        record(&fields)
    };
    records.extend([
        (
            "cmdb_ci",
            ci(
                CI_APP07,
                "cmdb_ci_linux_server",
                "app07",
                "192.0.2.7",
                "app07.example.com",
                "app07",
            ),
        ),
        (
            "cmdb_ci",
            ci(
                CI_WEB01,
                "cmdb_ci_linux_server",
                "web01.example.com",
                "192.0.2.1",
                "",
                "web01",
            ),
        ),
        (
            "cmdb_ci",
            ci(
                CI_DB02,
                "cmdb_ci_win_server",
                "DB02",
                "192.0.2.22",
                "db02.corp.example.com",
                "DB02",
            ),
        ),
        (
            "cmdb_ci",
            ci(CI_PAYROLL, "cmdb_ci_appl", "Payroll", "", "", ""),
        ),
    ]);
    let request_items = [
        (10001, "2", "approved", CI_APP07),
        (10002, "3", "approved", ""),
        (10003, "1", "requested", ""),
    ];
    for (serial, state, approval, ci) in request_items {
        records.push((
            "sc_req_item",
            record(&[
                ("sys_id", &format!("5c417e{serial:026}")),
                ("number", &format!("RITM{serial:07}")),
                ("short_description", "Access to the payroll database"),
                ("state", state),
                ("approval", approval),
                ("active", if state == "3" { "false" } else { "true" }),
                ("requested_for", ALICE),
                ("opened_by", CAROL),
                ("assigned_to", DAVE),
                ("assignment_group", LINUX_OPS),
                ("cmdb_ci", ci),
            ]),
        ));
    }
    for (serial, state, ci) in [(10001, "1", CI_APP07), (10002, "3", "")] {
        records.push((
            "sc_task",
            record(&[
                ("sys_id", &format!("5c7a5c{serial:026}")),
                ("number", &format!("SCTASK{serial:07}")),
                ("short_description", "Grant the access"),
                ("state", state),
                ("active", if state == "3" { "false" } else { "true" }),
                ("request_item", &format!("5c417e{:026}", 10001)),
                ("opened_by", CAROL),
                ("assigned_to", DAVE),
                ("cmdb_ci", ci),
            ]),
        ));
    }
    for (serial, state, ci) in [(10001, "102", CI_PAYROLL), (10002, "107", "")] {
        records.push((
            "problem",
            record(&[
                ("sys_id", &format!("9b0b1e{serial:026}")),
                ("number", &format!("PRB{serial:07}")),
                ("short_description", "Payroll export fails"),
                ("state", state),
                ("active", if state == "107" { "false" } else { "true" }),
                ("opened_by", ALICE),
                ("assigned_to", DAVE),
                ("cmdb_ci", ci),
            ]),
        ));
    }
    records
}

/// INC0010006, INC0010007 and CHG0030008 of the module documentation: tickets that name
/// CIs, kept out of [`default_fixture`] (whose incidents and changes other tests count);
/// a test adds them with [`ServiceNowSim::insert`].
pub fn ci_tickets(now: DateTime<Utc>) -> Vec<(&'static str, Record)> {
    let at = |offset: Duration| (now + offset).format(DATE_FORMAT).to_string();
    let opened = at(Duration::days(-1));
    let mut records = Vec::new();
    for (serial, ci) in [(10006, CI_APP07), (10007, CI_WEB01)] {
        records.push((
            "incident",
            record(&[
                ("sys_id", &format!("1c1de{serial:027}")),
                ("number", &format!("INC{serial:07}")),
                ("short_description", "Names a CI"),
                ("state", "2"),
                ("priority", "3"),
                ("active", "true"),
                ("caller_id", ALICE),
                ("opened_by", ALICE),
                ("assigned_to", ""),
                ("cmdb_ci", ci),
                ("opened_at", &opened),
                ("sys_created_on", &opened),
                ("sys_updated_on", &opened),
            ]),
        ));
    }
    let change = format!("c4a9e{:027}", 30008);
    records.push((
        "change_request",
        record(&[
            ("sys_id", &change),
            ("number", "CHG0030008"),
            ("short_description", "Patch the web tier and its database"),
            ("state", "-1"),
            ("approval", "approved"),
            ("type", "normal"),
            ("active", "true"),
            ("start_date", &at(-Duration::hours(1))),
            ("end_date", &at(Duration::hours(1))),
            ("requested_by", ALICE),
            ("opened_by", CAROL),
            ("assigned_to", DAVE),
            ("cmdb_ci", CI_WEB01),
            ("opened_at", &opened),
            ("sys_created_on", &opened),
            ("sys_updated_on", &opened),
        ]),
    ));
    for ci in [CI_DB02, CI_APP07] {
        records.push(("task_ci", record(&[("task", &change), ("ci_item", ci)])));
    }
    records
}

#[cfg(test)]
mod tests {
    use super::query::{Condition, EncodedQuery, Op};
    use super::*;

    const USER: &str = "svc_pam";
    const PASSWORD: &str = "s3cret";

    fn sim() -> ServiceNowSim {
        ServiceNowSim::new(USER, PASSWORD)
    }

    fn get(sim: &ServiceNowSim, path: &str, params: &[(&str, &str)]) -> Response {
        let mut request = Request {
            method: "GET".into(),
            path: path.into(),
            query: params
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            ..Request::default()
        };
        request
            .headers
            .insert("authorization".into(), basic(USER, PASSWORD));
        request.headers.insert("host".into(), "sn.test:8443".into());
        sim.handle(&request)
    }

    fn basic(user: &str, password: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let input = format!("{user}:{password}").into_bytes();
        let mut out = String::from("Basic ");
        for chunk in input.chunks(3) {
            let bytes = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn token(sim: &ServiceNowSim, form: &str) -> Response {
        sim.handle(&Request {
            method: "POST".into(),
            path: "/oauth_token.do".into(),
            body: form.as_bytes().to_vec(),
            ..Request::default()
        })
    }

    fn bearer_get(sim: &ServiceNowSim, token: &str) -> u16 {
        let mut request = Request {
            method: "GET".into(),
            path: "/api/now/table/incident".into(),
            ..Request::default()
        };
        request
            .headers
            .insert("authorization".into(), format!("Bearer {token}"));
        sim.handle(&request).status
    }

    #[test]
    fn oauth_grants_refresh_expiry_and_refusals() {
        let sim = sim();
        sim.set_oauth_client(Some(("cid", "csecret")));
        let password = format!(
            "grant_type=password&client_id=cid&client_secret=csecret&username={USER}&password={PASSWORD}"
        );
        let answer = body(&token(&sim, &password));
        assert_eq!(answer["token_type"], "Bearer");
        assert_eq!(answer["expires_in"], 1799);
        let access = answer["access_token"].as_str().expect("token").to_string();
        let refresh = answer["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string();
        assert_eq!(bearer_get(&sim, &access), 200);
        assert_eq!(
            bearer_get(&sim, &refresh),
            401,
            "a refresh token is no access token"
        );
        // Refresh, then the access tokens end early: the refresh token still works.
        sim.expire_access_tokens();
        assert_eq!(bearer_get(&sim, &access), 401);
        let refreshed = body(&token(
            &sim,
            &format!(
                "grant_type=refresh_token&client_id=cid&client_secret=csecret&refresh_token={refresh}"
            ),
        ));
        assert!(refreshed["refresh_token"].is_null());
        let renewed = refreshed["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        assert_eq!(bearer_get(&sim, &renewed), 200);
        // Revoked: the refresh token is refused as an instance refuses it.
        sim.revoke_tokens();
        let refused = token(
            &sim,
            &format!(
                "grant_type=refresh_token&client_id=cid&client_secret=csecret&refresh_token={refresh}"
            ),
        );
        assert_eq!(refused.status, 401);
        assert_eq!(
            body(&refused),
            json!({"error_description": "access_denied", "error": "server_error"})
        );
        // Client credentials: off until the instance property is set; no refresh token.
        let client_only = "grant_type=client_credentials&client_id=cid&client_secret=csecret";
        assert_eq!(token(&sim, client_only).status, 401);
        sim.set_client_credentials_enabled(true);
        let answer = body(&token(&sim, client_only));
        assert!(answer["refresh_token"].is_null() && answer["access_token"].is_string());
        // RFC 6749 bodies on request.
        sim.set_oauth_errors(OAuthErrors::Rfc6749);
        let wrong_secret = token(
            &sim,
            "grant_type=client_credentials&client_id=cid&client_secret=x",
        );
        assert_eq!(
            (wrong_secret.status, body(&wrong_secret)["error"].clone()),
            (401, json!("invalid_client"))
        );
        let wrong_user = token(
            &sim,
            "grant_type=password&client_id=cid&client_secret=csecret&username=x&password=y",
        );
        assert_eq!(
            (wrong_user.status, body(&wrong_user)["error"].clone()),
            (400, json!("invalid_grant"))
        );
        // Basic turned off: 401 for Basic, Bearer still served.
        sim.set_basic_auth_enabled(false);
        assert_eq!(get(&sim, "/api/now/table/incident", &[]).status, 401);
        assert_eq!(
            bearer_get(&sim, answer["access_token"].as_str().expect("token")),
            200
        );
        let grants: Vec<(String, u16)> = sim
            .token_requests()
            .into_iter()
            .map(|request| (request.grant_type, request.status))
            .collect();
        assert_eq!(grants.len(), 7);
        assert_eq!(grants[0], ("password".to_string(), 200));
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(&response.body).expect("the simulator answers JSON")
    }

    fn numbers(sim: &ServiceNowSim, table: &str, query: &str) -> Vec<String> {
        let response = get(
            sim,
            &format!("/api/now/table/{table}"),
            &[("sysparm_query", query), ("sysparm_fields", "number")],
        );
        assert_eq!(response.status, 200);
        body(&response)["result"]
            .as_array()
            .expect("result is a list")
            .iter()
            .map(|row| row["number"].as_str().expect("number").to_string())
            .collect()
    }

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    const ALL_INCIDENTS: [&str; 5] = [
        "INC0010001",
        "INC0010002",
        "INC0010003",
        "INC0010004",
        "INC0010005",
    ];

    #[test]
    fn nq_opens_a_new_or_group_that_widens_the_match() {
        let sim = sim();
        assert_eq!(
            numbers(&sim, "incident", "number=INC0010001"),
            ["INC0010001"]
        );
        assert_eq!(
            numbers(&sim, "incident", "number=INC0010001^NQnumberISNOTEMPTY"),
            ALL_INCIDENTS
        );
    }

    #[test]
    fn or_binds_tighter_than_and() {
        let sim = sim();
        // caller alice AND (state 7 OR state 8)
        assert_eq!(
            numbers(
                &sim,
                "incident",
                &format!("caller_id={ALICE}^state=7^ORstate=8")
            ),
            ["INC0010002", "INC0010004"]
        );
        // An injected ^OR after the number widens to every incident of that state.
        assert_eq!(
            numbers(&sim, "incident", "number=INC0010009^ORstate=1"),
            ["INC0010003"]
        );
        let parsed = EncodedQuery::parse("a=1^b=2^ORc=3");
        assert_eq!(parsed.groups.len(), 1);
        assert_eq!(parsed.groups[0].clauses.len(), 2);
        assert_eq!(parsed.groups[0].clauses[1].len(), 2);
    }

    #[test]
    fn unknown_fields_and_unreadable_terms_are_dropped() {
        let sim = sim();
        assert_eq!(
            numbers(&sim, "incident", "number=INC0010001^u_nonsense=1"),
            ["INC0010001"]
        );
        assert_eq!(numbers(&sim, "incident", "u_nonsense=1"), ALL_INCIDENTS);
        assert_eq!(
            numbers(&sim, "incident", "number=INC0010001^ORu_nonsense=1"),
            ["INC0010001"]
        );
        assert_eq!(numbers(&sim, "incident", "numberBOGUSOP1"), ALL_INCIDENTS);
        sim.set_invalid_query_returns_no_rows(true);
        assert!(numbers(&sim, "incident", "number=INC0010001^u_nonsense=1").is_empty());
    }

    #[test]
    fn dot_walks_follow_references() {
        let sim = sim();
        assert_eq!(
            numbers(&sim, "incident", "caller_id.user_name=bob"),
            ["INC0010003"]
        );
        assert_eq!(
            numbers(&sim, "incident", "opened_by.name=Carol Chen"),
            ["INC0010001"]
        );
        // An empty reference walks to an empty value, not to an unknown field.
        assert_eq!(
            numbers(&sim, "incident", "assigned_to.user_nameISNOTEMPTY"),
            ["INC0010001"]
        );
        assert_eq!(numbers(&sim, "incident", "caller_id.u_nonsense=1").len(), 5);
    }

    /// A CI is read as its own class through a reference: a server's `fqdn` comes back,
    /// an application's is an unknown field (left out); the base table never shows it.
    #[test]
    fn ci_fields_follow_the_class_of_the_ci() {
        let sim = sim();
        let fields = "number,cmdb_ci.name,cmdb_ci.fqdn,cmdb_ci.host_name,cmdb_ci.sys_class_name";
        let row = |table: &str, number: &str| {
            let response = get(
                &sim,
                &format!("/api/now/table/{table}"),
                &[
                    ("sysparm_query", &format!("number={number}")),
                    ("sysparm_fields", fields),
                ],
            );
            body(&response)["result"][0].clone()
        };
        let item = row("sc_req_item", "RITM0010001");
        assert_eq!(item["cmdb_ci.fqdn"], "app07.example.com", "{item}");
        assert_eq!(item["cmdb_ci.host_name"], "app07", "{item}");
        assert_eq!(
            item["cmdb_ci.sys_class_name"], "cmdb_ci_linux_server",
            "{item}"
        );
        let problem = row("problem", "PRB0010001");
        assert_eq!(problem["cmdb_ci.name"], "Payroll", "{problem}");
        assert!(problem.get("cmdb_ci.fqdn").is_none(), "{problem}");
        let response = get(
            &sim,
            "/api/now/table/cmdb_ci",
            &[("sysparm_query", "name=app07")],
        );
        let base = body(&response)["result"][0].clone();
        assert_eq!(base["name"], "app07", "{base}");
        assert!(
            base.get("fqdn").is_none() && base.get("host_name").is_none(),
            "{base}"
        );
        // A class table lists the CIs of its class and subclasses, with the class's fields.
        let response = get(
            &sim,
            "/api/now/table/cmdb_ci_server",
            &[
                ("sysparm_fields", "name,fqdn"),
                ("sysparm_query", "ORDERBYname"),
            ],
        );
        assert_eq!(
            body(&response)["result"],
            json!([
                {"name": "DB02", "fqdn": "db02.corp.example.com"},
                {"name": "app07", "fqdn": "app07.example.com"},
                {"name": "web01.example.com", "fqdn": ""}
            ])
        );
        // task_ci finds a task of any task table through `task`.
        for (table, record) in ci_tickets(Utc::now()) {
            sim.insert(table, record);
        }
        let response = get(
            &sim,
            "/api/now/table/task_ci",
            &[
                ("sysparm_query", "task.number=CHG0030008"),
                ("sysparm_fields", "ci_item.name,ci_item.fqdn"),
            ],
        );
        assert_eq!(
            body(&response)["result"],
            json!([
                {"ci_item.name": "DB02", "ci_item.fqdn": "db02.corp.example.com"},
                {"ci_item.name": "app07", "ci_item.fqdn": "app07.example.com"}
            ])
        );
    }

    #[test]
    fn operators() {
        let sim = sim();
        let cases: &[(&str, &[&str])] = &[
            (
                "number!=INC0010001^numberSTARTSWITHINC00100",
                &ALL_INCIDENTS[1..],
            ),
            ("numberENDSWITH3", &["INC0010003"]),
            ("short_descriptionLIKEvpn", &["INC0010001"]),
            ("short_descriptionNOT LIKEe", &["INC0010003"]),
            ("stateIN7,8", &["INC0010002", "INC0010004"]),
            ("stateNOT IN1,2,3", &["INC0010002", "INC0010004"]),
            ("assigned_toISEMPTY^state<3", &["INC0010003"]),
            ("state>=7", &["INC0010002", "INC0010004"]),
            ("state>6^state<=7", &["INC0010002"]),
            ("number=inc0010005", &["INC0010005"]),
        ];
        for (query, expected) in cases {
            assert_eq!(&numbers(&sim, "incident", query), expected, "{query}");
        }
        assert_eq!(
            numbers(&sim, "change_request", "start_dateISEMPTY"),
            ["CHG0030006"]
        );
        assert_eq!(
            numbers(&sim, "change_request", "state<0^ORDERBYDESCnumber").len(),
            6
        );
        assert_eq!(
            numbers(&sim, "change_request", "approval=approved^state=3"),
            ["CHG0030007"]
        );
    }

    #[test]
    fn order_by_sorts() {
        let sim = sim();
        assert_eq!(
            numbers(&sim, "incident", "ORDERBYDESCnumber"),
            ALL_INCIDENTS.iter().rev().copied().collect::<Vec<_>>()
        );
        assert_eq!(
            numbers(&sim, "incident", "ORDERBYstate^ORDERBYDESCnumber"),
            [
                "INC0010003",
                "INC0010001",
                "INC0010005",
                "INC0010002",
                "INC0010004"
            ]
        );
    }

    #[test]
    fn parser_shapes() {
        assert_eq!(
            query::Condition::parse("caller_id.user_name=bob"),
            Condition::Compare {
                field: "caller_id.user_name".into(),
                op: Op::Eq,
                value: "bob".into()
            }
        );
        assert!(matches!(Condition::parse("=x"), Condition::Unreadable(_)));
        assert!(EncodedQuery::parse("").groups.is_empty());
        assert!(EncodedQuery::parse("ORDERBYnumber").groups.is_empty());
        assert_eq!(EncodedQuery::parse("a=1^EQ").groups[0].clauses.len(), 1);
    }

    #[test]
    fn name_value_form_when_no_sysparm_query() {
        let sim = sim();
        let response = get(&sim, "/api/now/table/incident", &[("number", "INC0010003")]);
        let rows = body(&response)["result"].clone();
        assert_eq!(rows.as_array().expect("list").len(), 1);
        assert_eq!(rows[0]["number"], "INC0010003");
        assert_eq!(
            sim.received()[0].name_value,
            [("number".into(), "INC0010003".into())]
        );
    }

    #[test]
    fn stored_values_and_reference_links() {
        let sim = sim();
        let response = get(
            &sim,
            "/api/now/table/incident",
            &[
                ("sysparm_query", "number=INC0010001"),
                (
                    "sysparm_fields",
                    "number,state,caller_id,assigned_to,u_none,caller_id.user_name,opened_at",
                ),
            ],
        );
        assert_eq!(header(&response, "X-Total-Count"), Some("1"));
        let row = &body(&response)["result"][0];
        assert_eq!(row["state"], "2");
        assert_eq!(
            row["caller_id"],
            json!({"link": format!("https://sn.test:8443/api/now/table/sys_user/{ALICE}"), "value": ALICE})
        );
        assert_eq!(row["caller_id.user_name"], "alice");
        assert!(row.get("u_none").is_none());
        assert_eq!(row.as_object().expect("object").len(), 6);

        let response = get(
            &sim,
            "/api/now/table/incident",
            &[
                ("sysparm_query", "number=INC0010002"),
                ("sysparm_exclude_reference_link", "true"),
            ],
        );
        let row = &body(&response)["result"][0];
        assert_eq!(row["caller_id"], ALICE);
        assert_eq!(row["assigned_to"], "");
    }

    #[test]
    fn display_values_use_labels_names_and_the_user_time_zone() {
        let now = DateTime::parse_from_rfc3339("2030-01-15T12:00:00Z")
            .expect("valid date")
            .with_timezone(&Utc);
        let sim = ServiceNowSim::with_records(USER, PASSWORD, default_fixture(now));
        let fields = (
            "sysparm_fields",
            "state,approval,start_date,requested_by,requested_by.user_name",
        );
        let query = ("sysparm_query", "number=CHG0030001");
        let display = get(
            &sim,
            "/api/now/v2/table/change_request",
            &[query, fields, ("sysparm_display_value", "true")],
        );
        let row = &body(&display)["result"][0];
        assert_eq!(row["state"], "Implement");
        assert_eq!(row["approval"], "Approved");
        assert_eq!(row["start_date"], "2030-01-15 06:00:00");
        assert_eq!(row["requested_by"]["display_value"], "Alice Anders");
        assert!(row["requested_by"]["link"].is_string());
        assert_eq!(row["requested_by.user_name"], "alice");

        let all = get(
            &sim,
            "/api/now/table/change_request",
            &[
                query,
                fields,
                ("sysparm_display_value", "all"),
                ("sysparm_exclude_reference_link", "true"),
            ],
        );
        let row = &body(&all)["result"][0];
        assert_eq!(
            row["state"],
            json!({"display_value": "Implement", "value": "-1"})
        );
        assert_eq!(
            row["start_date"],
            json!({"display_value": "2030-01-15 06:00:00", "value": "2030-01-15 11:00:00"})
        );
        assert_eq!(
            row["requested_by"],
            json!({"display_value": "Alice Anders", "value": ALICE})
        );
        assert_eq!(
            row["requested_by.user_name"],
            json!({"display_value": "alice", "value": "alice"})
        );
    }

    #[test]
    fn errors_have_the_instance_shape() {
        let sim = sim();
        let mut request = Request {
            method: "GET".into(),
            path: "/api/now/table/incident".into(),
            ..Request::default()
        };
        let response = sim.handle(&request);
        assert_eq!(response.status, 401);
        assert_eq!(
            body(&response),
            json!({"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"})
        );
        request
            .headers
            .insert("authorization".into(), basic(USER, "wrong"));
        assert_eq!(sim.handle(&request).status, 401);

        let response = get(&sim, "/api/now/table/u_tickets", &[]);
        assert_eq!(response.status, 400);
        assert_eq!(
            body(&response),
            json!({"error":{"message":"Invalid table u_tickets","detail":null},"status":"failure"})
        );

        sim.set_forbidden(true);
        let response = get(&sim, "/api/now/table/incident", &[]);
        assert_eq!(response.status, 403);
        assert_eq!(
            body(&response),
            json!({"error":{"message":"User Not Authorized","detail":"Failed API level ACL Validation"},"status":"failure"})
        );
        sim.set_forbidden(false);

        sim.set_rate_limited(Some(30));
        let response = get(&sim, "/api/now/table/incident", &[]);
        assert_eq!(response.status, 429);
        assert_eq!(body(&response)["error"]["message"], "Rate limit exceeded");
        assert_eq!(header(&response, "Retry-After"), Some("30"));
        assert!(header(&response, "X-RateLimit-Limit").is_some());
        let reset: i64 = header(&response, "X-RateLimit-Reset")
            .expect("reset header")
            .parse()
            .expect("unix time");
        assert!(reset >= Utc::now().timestamp() + 29);
        sim.set_rate_limited(None);

        request.method = "POST".into();
        request
            .headers
            .insert("authorization".into(), basic(USER, PASSWORD));
        let response = sim.handle(&request);
        assert_eq!(response.status, 405);
        assert_eq!(body(&response)["status"], "failure");
    }

    #[test]
    fn prefix_paging_and_recording() {
        let sim = sim();
        let response = get(
            &sim,
            "/sn/proxy/api/now/table/change_request",
            &[
                ("sysparm_query", "ORDERBYnumber"),
                ("sysparm_limit", "2"),
                ("sysparm_offset", "2"),
            ],
        );
        assert_eq!(header(&response, "X-Total-Count"), Some("7"));
        let rows = body(&response)["result"].clone();
        assert_eq!(rows[0]["number"], "CHG0030003");
        assert_eq!(rows.as_array().expect("list").len(), 2);

        let response = get(
            &sim,
            "/api/now/table/incident",
            &[
                ("sysparm_query", "number=INC9"),
                ("sysparm_no_count", "true"),
            ],
        );
        assert_eq!(body(&response), json!({"result": []}));
        assert_eq!(header(&response, "X-Total-Count"), None);

        let received = sim.received();
        assert_eq!(sim.query_count(), 2);
        assert_eq!(received[0].prefix, "/sn/proxy");
        assert_eq!(received[0].table, "change_request");
        assert_eq!(received[0].limit.as_deref(), Some("2"));
        assert_eq!(received[0].matched, 7);
        assert_eq!(received[1].matched, 0);
        assert_eq!(received[1].status, 200);
    }

    #[test]
    fn single_record_by_sys_id() {
        let sim = sim();
        let response = get(&sim, &format!("/api/now/table/sys_user/{BOB}"), &[]);
        assert_eq!(body(&response)["result"]["user_name"], "bob");
        let response = get(
            &sim,
            "/api/now/table/sys_user/ffffffffffffffffffffffffffffffff",
            &[],
        );
        assert_eq!(response.status, 404);
    }

    #[test]
    fn group_memberships_dot_walk_and_an_injected_nq_widens_them() {
        let sim = sim();
        let members = |query: &str| -> Vec<String> {
            let response = get(
                &sim,
                "/api/now/table/sys_user_grmember",
                &[
                    ("sysparm_query", query),
                    ("sysparm_fields", "user.user_name,group"),
                    ("sysparm_exclude_reference_link", "true"),
                ],
            );
            assert_eq!(response.status, 200);
            body(&response)["result"]
                .as_array()
                .expect("list")
                .iter()
                .map(|row| {
                    assert!(row["group"].is_string(), "a bare sys_id: {row}");
                    row["user.user_name"].as_str().expect("login").to_string()
                })
                .collect()
        };
        assert_eq!(
            members(&format!("user.user_name=bob^group={LINUX_OPS}")),
            ["bob"]
        );
        assert_eq!(
            members(&format!(
                "user.email=bob@corp.example.com^group={LINUX_OPS}"
            )),
            ["bob"]
        );
        assert_eq!(
            members(&format!("user.employee_number=E1003^group={DBA}")),
            ["carol"]
        );
        assert!(members(&format!("user.user_name=alice^group={LINUX_OPS}")).is_empty());
        assert_eq!(
            members(&format!(
                "user.user_name=alice^NQuser.user_nameISNOTEMPTY^group={LINUX_OPS}"
            )),
            ["bob", "dave"]
        );
        assert!(members(&format!("user.user_name=o'b=r@x^group={LINUX_OPS}")).is_empty());
    }

    #[test]
    fn tests_can_change_the_instance() {
        let sim = sim();
        sim.set_record_field("incident", "INC0010001", "state", "6");
        assert_eq!(numbers(&sim, "incident", "state=6"), ["INC0010001"]);
        let mut extra = Record::new();
        extra.insert("number".into(), json!("INC0010099"));
        extra.insert("caller_id".into(), json!(DAVE));
        sim.insert("incident", extra);
        assert_eq!(
            numbers(&sim, "incident", "caller_id.user_name=dave"),
            ["INC0010099"]
        );
        sim.remove("incident", "INC0010099");
        assert!(numbers(&sim, "incident", "caller_id.user_name=dave").is_empty());
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("c3ZjOnB3").as_deref(), Some(&b"svc:pw"[..]));
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("a b"), None);
    }
}
