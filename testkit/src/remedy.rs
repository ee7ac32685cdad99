//! A BMC Remedy (Helix ITSM) AR System REST API simulator: a pure request → response
//! [`Handler`] that the HTTPS test server drives.
//!
//! It answers, under any path prefix (a reverse proxy):
//!
//! * `POST /api/jwt/login` (form-urlencoded `username`, `password`): 200 with the token as
//!   `text/plain`, or 401 with ARERR 623 "Authentication failed".
//! * `POST /api/jwt/logout` (`Authorization: AR-JWT <token>`): 204, the token is dropped.
//! * `GET /api/arsys/v1/entry/{form}?q=…&fields=values(…)&limit=N&offset=N`: `{"entries":
//!   [{"values":{…},"_links":{"self":[{"href":…}]}}],"_links":{"self":[…]}}`; no match is
//!   200 with an empty list.
//! * `GET /api/arsys/v1/entry/{form}/{Request ID}`: one entry, or 404 with ARERR 302
//!   "Entry does not exist in database".
//! * `GET /api/arsys/v1.0/fields/{form}[/{id,id…}]?field_criteria=NAME,DATATYPE,LIMIT`: the
//!   form's field definitions, a JSON array of `{"id","name","datatype","limit"}` (only
//!   the criteria asked for, `id` always). The selection fields of the default forms are
//!   `ENUM` with `"limit": {"datatype":"ENUM","list_style":"REGULAR","selection_values":
//!   [{"id":0,"name":"New"}…]}`: `Status` of `HPD:Help Desk` and `Change Request Status` of
//!   `CHG:Infrastructure Change` with the labels BMC documents, `Approval Status` with
//!   Requested, Approved, Rejected (the simulator's own). Every other field that an entry
//!   carries is `CHAR`. The path follows BMC's "Get multiple fields metadata" endpoint;
//!   the shape of `limit` is unverified (docs/remedy.md).
//!
//! Every other call needs a live token: a missing, unknown, logged-off or expired one gets
//! 401 with the AR error array (ARERR 623). An unknown form is 404 with ARERR 303 "Form
//! does not exist on server". Errors are always a JSON array of `{"messageType":"ERROR",
//! "messageText","messageNumber","messageAppendedText"}`.
//!
//! The qualification `q` is really evaluated: `AND`/`&&`, `OR`/`||`, `NOT`/`!` (NOT binds
//! tightest, then AND, then OR), parentheses, `=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`
//! (`%` and `_`), field names in single quotes with `''` for a quote, values in double
//! quotes with `""` for a quote, numbers and `$NULL$`. So a qualification built without
//! quoting, such as `'Incident Number' = "X" OR 'Status' != "x"`, visibly matches every
//! entry. Comparisons of text are case-insensitive (as on a SQL Server-backed server).
//!
//! Unverified against a real server, and chosen here: a qualification that does not parse
//! or names an unknown field is 400 with ARERR 1587; unknown names in `fields=values(…)`
//! are left out of the answer; a logout answers 204.
//!
//! # Default fixture
//!
//! [`RemedySim::new`] loads [`default_fixture`] built around the current time. The
//! numbering mirrors the ServiceNow simulator's fixture: INC0010001 ↔ INC000000000001,
//! CHG0030001 ↔ CRQ000000000001, each with the same role.
//!
//! `HPD:Help Desk` (`Incident Number`, `Status`, `Customer Login ID`, `Submitter`):
//!
//! | Incident Number | Status      | Customer Login ID | Submitter | what it is for |
//! |-----------------|-------------|-------------------|-----------|----------------|
//! | INC000000000001 | In Progress | alice | carol | the valid incident; customer ≠ submitter |
//! | INC000000000002 | Closed      | alice | alice | refused state |
//! | INC000000000003 | New         | bob   | alice | someone else's ticket (alice only submitted it) |
//! | INC000000000004 | Cancelled   | alice | alice | refused state |
//! | INC000000000005 | Pending     | alice | alice | a state a site may or may not allow |
//!
//! `CHG:Infrastructure Change` (`Infrastructure Change ID`, `Change Request Status`,
//! `Approval Status`, `Scheduled Start Date`, `Scheduled End Date`, `Requested By`,
//! `Submitter` = carol for all):
//!
//! | Infrastructure Change ID | Change Request Status | Approval Status | window | Requested By | for |
//! |-----------------|----------------------------|-----------|-------------------|-------|-----|
//! | CRQ000000000001 | Implementation In Progress | Approved  | now-1h .. now+1h  | alice | the valid change |
//! | CRQ000000000002 | Implementation In Progress | Requested | now-1h .. now+1h  | alice | not approved |
//! | CRQ000000000003 | Implementation In Progress | Approved  | now+2d .. now+3d  | alice | window not yet open |
//! | CRQ000000000004 | Implementation In Progress | Approved  | now-3d .. now-2d  | alice | window over |
//! | CRQ000000000005 | Implementation In Progress | Approved  | now-1h .. now+1h  | bob   | someone else's change |
//! | CRQ000000000006 | Implementation In Progress | Approved  | null .. now+1h    | alice | start date missing |
//! | CRQ000000000007 | Closed                     | Approved  | now-1h .. now+1h  | alice | refused state |
//! | CRQ000000000008 | Scheduled                  | Approved  | now-1h .. now+1h  | alice | a second allowed state |
//!
//! Incidents carry `Assignee Login ID` (dave on INC000000000001) and `Assigned Group ID`
//! ([`LINUX_OPS_GROUP`] on INC000000000001, [`DBA_GROUP`] on INC000000000003); every change
//! carries `ASLOGID` dave and `ASGRPID` [`LINUX_OPS_GROUP`]. `CTM:Support Group
//! Association` (`Support Group Association ID`, `Login ID`, `Full Name`, `Support Group
//! ID`): bob and dave in Linux Ops, carol in Database Admins, alice in none.
//!
//! Dates are `YYYY-MM-DDTHH:MM:SS.000+0000`, truncated to the second; empty fields are null.
//!
//! `WOI:WorkOrder` (`Work Order ID`, `Status`, `Customer Login ID`, `Submitter` = carol,
//! `ASLOGID` = dave)
//! and `PBM:Problem Investigation` (`Problem Investigation ID`, `Investigation Status`,
//! `Submitter`):
//!
//! | ID              | Status              | requester | for |
//! |-----------------|---------------------|-----------|-----|
//! | WO0000000000001 | In Progress         | alice (Customer Login ID) | the valid work order |
//! | WO0000000000002 | Closed              | alice     | refused state |
//! | PBI000000000001 | Under Investigation | alice (Submitter) | the valid problem investigation |
//! | PBI000000000002 | Closed              | alice     | refused state |
//!
//! [`ci_entries`], which a test adds, holds INC000000000006 (`HPD_CI` app07) and
//! CRQ000000000009 (`CI_Name` app07); the default incidents and changes name no CI.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::http::{Handler, Request, Response};
use super::https::parse_query;

/// One entry's field values (null for an empty field).
pub type Entry = Map<String, Value>;

pub const INCIDENT_FORM: &str = "HPD:Help Desk";
pub const CHANGE_FORM: &str = "CHG:Infrastructure Change";
/// The work-log forms notes are created on.
pub const INCIDENT_WORK_LOG_FORM: &str = "HPD:WorkLog";
pub const CHANGE_WORK_LOG_FORM: &str = "CHG:WorkLog";
pub const WORK_ORDER_FORM: &str = "WOI:WorkOrder";
pub const PROBLEM_FORM: &str = "PBM:Problem Investigation";
/// Who is in which support group: `Login ID`, `Support Group ID`, `Full Name`.
pub const SUPPORT_GROUP_FORM: &str = "CTM:Support Group Association";
/// The support group "Linux Ops": bob and dave are members; INC000000000001 and every
/// change are assigned to it.
pub const LINUX_OPS_GROUP: &str = "SGP000000000011";
/// The support group "Database Admins": carol is a member; INC000000000003 is assigned
/// to it.
pub const DBA_GROUP: &str = "SGP000000000012";
/// The date format of the REST API.
pub const DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.000+0000";

/// Which endpoint a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    Logout,
    /// `GET …/entry/{form}` with a qualification.
    Query,
    /// `GET …/entry/{form}/{id}`.
    Entry,
    /// `GET /api/arsys/v1.0/fields/{form}[/{field ids}]`: field definitions.
    Fields,
    Other,
}

/// What the simulator saw for one request, refused or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub endpoint: Endpoint,
    pub method: String,
    /// Whatever stood before `/api/` (a reverse-proxy prefix).
    pub prefix: String,
    pub form: Option<String>,
    pub q: Option<String>,
    pub fields: Option<String>,
    pub limit: Option<String>,
    /// The token sent in `Authorization: AR-JWT …`, if any.
    pub token: Option<String>,
    /// The `username` of a login.
    pub username: Option<String>,
    pub status: u16,
    /// Entries that matched, before offset and limit.
    pub matched: usize,
}

/// The simulated server. Cheap to share: wrap it in an `Arc` for the server.
pub struct RemedySim {
    state: Mutex<State>,
}

struct State {
    user: String,
    password: String,
    forms: BTreeMap<String, Vec<Entry>>,
    /// Live tokens and when they were issued.
    tokens: BTreeMap<String, Instant>,
    /// Tokens older than this are refused, like the server's own JWT lifetime.
    token_lifetime: Option<StdDuration>,
    issued: u64,
    received: Vec<Received>,
    /// The account may read but not create entries (403 with an AR error).
    read_only: bool,
    /// A status every entry creation is answered with instead of being applied.
    write_failure: Option<u16>,
    /// How long an entry creation waits before it is answered.
    write_delay: StdDuration,
    created: u64,
}

impl RemedySim {
    /// A server holding [`default_fixture`] around the current time.
    pub fn new(account_user: &str, account_password: &str) -> RemedySim {
        RemedySim::with_entries(account_user, account_password, default_fixture(Utc::now()))
    }

    pub fn with_entries(
        account_user: &str,
        account_password: &str,
        entries: Vec<(&'static str, Entry)>,
    ) -> RemedySim {
        let mut forms: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        forms.insert(INCIDENT_FORM.to_string(), Vec::new());
        forms.insert(CHANGE_FORM.to_string(), Vec::new());
        forms.insert(INCIDENT_WORK_LOG_FORM.to_string(), Vec::new());
        forms.insert(CHANGE_WORK_LOG_FORM.to_string(), Vec::new());
        for (form, entry) in entries {
            forms.entry(form.to_string()).or_default().push(entry);
        }
        RemedySim {
            state: Mutex::new(State {
                user: account_user.to_string(),
                password: account_password.to_string(),
                forms,
                tokens: BTreeMap::new(),
                token_lifetime: None,
                issued: 0,
                received: Vec::new(),
                read_only: false,
                write_failure: None,
                write_delay: StdDuration::ZERO,
                created: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test thread that panicked while holding the lock must not hide the real failure.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds an entry to a form (creating the form).
    pub fn insert(&self, form: &str, entry: Entry) {
        self.lock()
            .forms
            .entry(form.to_string())
            .or_default()
            .push(entry);
    }

    /// Sets one field of the entry whose `id_field` is `id`.
    pub fn set_field(&self, form: &str, id_field: &str, id: &str, field: &str, value: Value) {
        let mut state = self.lock();
        if let Some(entry) = state.forms.get_mut(form).and_then(|entries| {
            entries
                .iter_mut()
                .find(|entry| entry.get(id_field).and_then(Value::as_str) == Some(id))
        }) {
            entry.insert(field.to_string(), value);
        }
    }

    /// Removes a whole form (so that queries on it get ARERR 303).
    pub fn remove_form(&self, form: &str) {
        self.lock().forms.remove(form);
    }

    pub fn set_credentials(&self, user: &str, password: &str) {
        let mut state = self.lock();
        state.user = user.to_string();
        state.password = password.to_string();
    }

    /// Invalidates every token issued so far, as a server restart or an expiry would.
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Makes tokens expire this long after they were issued.
    pub fn set_token_lifetime(&self, lifetime: Option<StdDuration>) {
        self.lock().token_lifetime = lifetime;
    }

    /// Tokens currently accepted (logged on and neither logged off nor expired).
    pub fn live_tokens(&self) -> Vec<String> {
        let state = self.lock();
        state
            .tokens
            .keys()
            .filter(|token| state.token_is_live(token))
            .cloned()
            .collect()
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    pub fn clear_received(&self) {
        self.lock().received.clear();
    }

    fn count(&self, endpoint: Endpoint) -> usize {
        self.lock()
            .received
            .iter()
            .filter(|received| received.endpoint == endpoint)
            .count()
    }

    /// `POST /api/jwt/login` requests, successful or not.
    pub fn login_count(&self) -> usize {
        self.count(Endpoint::Login)
    }

    /// `POST /api/jwt/logout` requests.
    pub fn logout_count(&self) -> usize {
        self.count(Endpoint::Logout)
    }

    /// Entry queries (`GET …/entry/{form}`), refused or not.
    pub fn query_count(&self) -> usize {
        self.count(Endpoint::Query)
    }

    /// Every request that reached the simulator.
    pub fn request_count(&self) -> usize {
        self.lock().received.len()
    }

    /// The entries of a form, oldest first (the work logs: the notes written).
    pub fn entries(&self, form: &str) -> Vec<Entry> {
        self.lock().forms.get(form).cloned().unwrap_or_default()
    }

    /// `true`: the account may read but not create entries; a creation gets 403 with an AR
    /// error (ARERR 9273 "No permission to submit", the simulator's choice: unverified).
    pub fn set_read_only(&self, read_only: bool) {
        self.lock().read_only = read_only;
    }

    /// `Some(status)`: every entry creation is answered with this status and nothing is
    /// created.
    pub fn set_write_failure(&self, status: Option<u16>) {
        self.lock().write_failure = status;
    }

    /// Every entry creation waits this long before it is answered (a hanging write).
    pub fn set_write_delay(&self, delay: StdDuration) {
        self.lock().write_delay = delay;
    }
}

impl Handler for RemedySim {
    fn handle(&self, request: &Request) -> Response {
        if request.method == "POST" && request.path.contains("/api/arsys/v1/entry/") {
            // Waited for without the lock: the other requests go on meanwhile.
            let delay = self.lock().write_delay;
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
        }
        self.lock().answer(request)
    }
}

/// The AR System error body.
pub fn ar_error(status: u16, number: i64, text: &str, appended: Option<&str>) -> Response {
    Response::json(
        status,
        &json!([{
            "messageType": "ERROR",
            "messageText": text,
            "messageNumber": number,
            "messageAppendedText": appended,
        }]),
    )
}

fn authentication_failed() -> Response {
    ar_error(401, 623, "Authentication failed", None)
}

impl State {
    fn token_is_live(&self, token: &str) -> bool {
        match (self.tokens.get(token), self.token_lifetime) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(issued), Some(lifetime)) => issued.elapsed() < lifetime,
        }
    }

    fn answer(&mut self, request: &Request) -> Response {
        let route = Route::parse(&request.path);
        let token = request
            .header("authorization")
            .and_then(|header| header.trim().strip_prefix("AR-JWT "))
            .map(|token| token.trim().to_string());
        let mut received = Received {
            endpoint: route.endpoint,
            method: request.method.clone(),
            prefix: route.prefix.clone(),
            form: route.form.clone(),
            q: request.param("q").map(str::to_string),
            fields: request.param("fields").map(str::to_string),
            limit: request.param("limit").map(str::to_string),
            token: token.clone(),
            username: None,
            status: 0,
            matched: 0,
        };
        let (response, matched) = match route.endpoint {
            Endpoint::Login => {
                let (response, username) = self.login(request);
                received.username = username;
                (response, 0)
            }
            Endpoint::Logout if request.method == "POST" => {
                match token.filter(|token| self.token_is_live(token)) {
                    Some(token) => {
                        self.tokens.remove(&token);
                        (
                            Response {
                                status: 204,
                                headers: vec![],
                                body: vec![],
                            },
                            0,
                        )
                    }
                    None => (authentication_failed(), 0),
                }
            }
            Endpoint::Query | Endpoint::Entry if request.method == "GET" => {
                if token
                    .as_deref()
                    .is_some_and(|token| self.token_is_live(token))
                {
                    self.serve(request, &route)
                } else {
                    (authentication_failed(), 0)
                }
            }
            Endpoint::Query if request.method == "POST" => {
                if token
                    .as_deref()
                    .is_some_and(|token| self.token_is_live(token))
                {
                    (self.create(request, &route), 1)
                } else {
                    (authentication_failed(), 0)
                }
            }
            Endpoint::Fields if request.method == "GET" => {
                if token
                    .as_deref()
                    .is_some_and(|token| self.token_is_live(token))
                {
                    (self.fields(request, &route), 0)
                } else {
                    (authentication_failed(), 0)
                }
            }
            Endpoint::Logout | Endpoint::Query | Endpoint::Entry | Endpoint::Fields => (
                ar_error(405, 8793, "Method not allowed", Some(&request.method)),
                0,
            ),
            Endpoint::Other => (
                ar_error(404, 8794, "Resource not found", Some(&request.path)),
                0,
            ),
        };
        received.status = response.status;
        received.matched = matched;
        self.received.push(received);
        response
    }

    fn login(&mut self, request: &Request) -> (Response, Option<String>) {
        if request.method != "POST" {
            return (ar_error(405, 8793, "Method not allowed", None), None);
        }
        let form_encoded = request
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
        if !form_encoded {
            return (
                ar_error(
                    415,
                    8795,
                    "Unsupported media type",
                    request.header("content-type"),
                ),
                None,
            );
        }
        let fields = parse_query(&String::from_utf8_lossy(&request.body));
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let username = field("username");
        if username.as_deref() != Some(self.user.as_str())
            || field("password").as_deref() != Some(self.password.as_str())
        {
            return (authentication_failed(), username);
        }
        self.issued += 1;
        let token = format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJzaW0iOiJyZW1lZHkiLCJuIjo{:08x}.c2lt{:04x}",
            self.issued,
            self.issued.wrapping_mul(7919) & 0xffff
        );
        self.tokens.insert(token.clone(), Instant::now());
        let response = Response {
            status: 200,
            headers: vec![("Content-Type".to_string(), "text/plain".to_string())],
            body: token.into_bytes(),
        };
        (response, username)
    }

    /// The field definitions of a form (see the module documentation).
    fn fields(&self, request: &Request, route: &Route) -> Response {
        let Some(form) = route.form.as_deref() else {
            return ar_error(404, 8794, "Resource not found", None);
        };
        let Some(entries) = self.forms.get(form) else {
            return ar_error(404, 303, "Form does not exist on server", Some(form));
        };
        let criteria: Option<Vec<String>> = request.param("field_criteria").map(|list| {
            list.split(',')
                .map(|criterion| criterion.trim().to_ascii_uppercase())
                .collect()
        });
        let wanted = |criterion: &str| {
            criteria
                .as_ref()
                .is_none_or(|list| list.iter().any(|given| given == criterion))
        };
        let ids: Option<Vec<i64>> = route.entry_id.as_ref().map(|ids| {
            ids.split(',')
                .filter_map(|id| id.trim().parse().ok())
                .collect()
        });
        let definitions: Vec<Value> = field_definitions(form, entries)
            .into_iter()
            .filter(|(id, _, _)| ids.as_ref().is_none_or(|ids| ids.contains(id)))
            .map(|(id, name, selection)| {
                let mut definition = Map::new();
                definition.insert("id".into(), json!(id));
                if wanted("NAME") {
                    definition.insert("name".into(), json!(name));
                }
                let datatype = if selection.is_some() { "ENUM" } else { "CHAR" };
                if wanted("DATATYPE") {
                    definition.insert("datatype".into(), json!(datatype));
                }
                if wanted("LIMIT") {
                    let limit = match selection {
                        Some(names) => json!({
                            "datatype": "ENUM",
                            "list_style": "REGULAR",
                            "selection_values": names
                                .iter()
                                .enumerate()
                                .map(|(id, name)| json!({"id": id, "name": name}))
                                .collect::<Vec<_>>(),
                        }),
                        None => json!({"datatype": "CHAR", "max_length": 0}),
                    };
                    definition.insert("limit".into(), limit);
                }
                Value::Object(definition)
            })
            .collect();
        Response::json(200, &Value::Array(definitions))
    }

    /// `POST /api/arsys/v1/entry/{form}` with `{"values": {…}}`: 201 with the new entry's
    /// `Location`, its `Request ID` numbered like the fixture's.
    fn create(&mut self, request: &Request, route: &Route) -> Response {
        let Some(form) = route.form.clone() else {
            return ar_error(404, 8794, "Resource not found", None);
        };
        if !self.forms.contains_key(&form) {
            return ar_error(404, 303, "Form does not exist on server", Some(&form));
        }
        if self.read_only {
            return ar_error(
                403,
                9273,
                "No permission to submit to this form",
                Some(&form),
            );
        }
        if let Some(status) = self.write_failure {
            return ar_error(status, 9350, "Simulated failure", Some("set_write_failure"));
        }
        let values = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|body| body.get("values").and_then(Value::as_object).cloned());
        let Some(mut values) = values else {
            return ar_error(400, 8790, "Invalid JSON in the request body", None);
        };
        self.created += 1;
        let id = format!("{:015}", 900_000 + self.created);
        values.insert("Request ID".to_string(), json!(id));
        let host = request.header("host").unwrap_or("remedy.test").to_string();
        let location = format!(
            "https://{host}{}/api/arsys/v1/entry/{}/{}",
            route.prefix,
            encode_segment(&form),
            id
        );
        self.forms.entry(form).or_default().push(values);
        Response {
            status: 201,
            headers: vec![("Location".to_string(), location)],
            body: vec![],
        }
    }

    fn serve(&self, request: &Request, route: &Route) -> (Response, usize) {
        let Some(form) = route.form.as_deref() else {
            return (ar_error(404, 8794, "Resource not found", None), 0);
        };
        let Some(entries) = self.forms.get(form) else {
            return (
                ar_error(404, 303, "Form does not exist on server", Some(form)),
                0,
            );
        };
        let host = request.header("host").unwrap_or("remedy.test");
        let self_link = |id: &str| {
            json!({"self": [{"href": format!(
                "https://{host}{}/api/arsys/v1/entry/{}/{}",
                route.prefix,
                encode_segment(form),
                encode_segment(id)
            )}]})
        };
        let projection = match request.param("fields").map(parse_fields) {
            None => None,
            Some(Some(fields)) => Some(fields),
            Some(None) => {
                return (
                    ar_error(
                        400,
                        8754,
                        "Invalid fields parameter",
                        request.param("fields"),
                    ),
                    0,
                );
            }
        };
        let project = |entry: &Entry| -> Value {
            let values: Map<String, Value> = entry
                .iter()
                .filter(|(name, _)| {
                    projection
                        .as_ref()
                        .is_none_or(|fields| fields.iter().any(|field| field == *name))
                })
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            let id = entry
                .get("Request ID")
                .and_then(Value::as_str)
                .unwrap_or("");
            json!({"values": values, "_links": self_link(id)})
        };

        if let Some(id) = &route.entry_id {
            return match entries
                .iter()
                .find(|entry| entry.get("Request ID").and_then(Value::as_str) == Some(id))
            {
                Some(entry) => (Response::json(200, &project(entry)), 1),
                None => (
                    ar_error(404, 302, "Entry does not exist in database", Some(id)),
                    0,
                ),
            };
        }

        let matching: Vec<&Entry> = match request.param("q") {
            None => entries.iter().collect(),
            Some(q) => {
                let expression = match qualification::parse(q) {
                    Ok(expression) => expression,
                    Err(problem) => {
                        return (
                            ar_error(
                                400,
                                1587,
                                "Error found in the qualification line",
                                Some(&problem),
                            ),
                            0,
                        );
                    }
                };
                let known = |field: &str| {
                    field == "Request ID" || entries.iter().any(|entry| entry.contains_key(field))
                };
                if let Some(unknown) = expression.fields().into_iter().find(|field| !known(field)) {
                    return (
                        ar_error(
                            400,
                            1587,
                            "Error found in the qualification line",
                            Some(&format!("unknown field '{unknown}'")),
                        ),
                        0,
                    );
                }
                entries
                    .iter()
                    .filter(|entry| {
                        expression.matches(&|field| match entry.get(field) {
                            Some(Value::String(text)) => Some(text.clone()),
                            Some(Value::Null) | None => None,
                            Some(other) => Some(other.to_string()),
                        })
                    })
                    .collect()
            }
        };
        let number = |name: &str| {
            request
                .param(name)
                .and_then(|text| text.trim().parse::<usize>().ok())
        };
        let offset = number("offset").unwrap_or(0);
        let limit = number("limit").unwrap_or(usize::MAX);
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|entry| project(entry))
            .collect();
        let body = json!({
            "entries": page,
            "_links": {"self": [{"href": format!(
                "https://{host}{}/api/arsys/v1/entry/{}",
                route.prefix,
                encode_segment(form)
            )}]}
        });
        (Response::json(200, &body), matching.len())
    }
}

/// `values(a, b)` → `["a", "b"]`.
fn parse_fields(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix("values(")?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|field| field.trim().to_string())
            .filter(|field| !field.is_empty())
            .collect(),
    )
}

fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~:".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

struct Route {
    endpoint: Endpoint,
    prefix: String,
    form: Option<String>,
    entry_id: Option<String>,
}

impl Route {
    /// `path` is already percent-decoded by the server.
    fn parse(path: &str) -> Route {
        let other = Route {
            endpoint: Endpoint::Other,
            prefix: String::new(),
            form: None,
            entry_id: None,
        };
        let Some(at) = path.find("/api/") else {
            return other;
        };
        let prefix = path[..at].to_string();
        let rest = path[at..].trim_end_matches('/');
        let endpoint = |endpoint| Route {
            endpoint,
            prefix: prefix.clone(),
            form: None,
            entry_id: None,
        };
        match rest {
            "/api/jwt/login" => return endpoint(Endpoint::Login),
            "/api/jwt/logout" => return endpoint(Endpoint::Logout),
            _ => {}
        }
        if let Some(rest) = rest.strip_prefix("/api/arsys/v1.0/fields/") {
            let mut segments = rest.split('/');
            let form = segments
                .next()
                .filter(|form| !form.is_empty())
                .map(str::to_string);
            // The field ids, kept as the entry id's slot.
            let ids = segments.next().map(str::to_string);
            if form.is_none() || segments.next().is_some() {
                return Route { prefix, ..other };
            }
            return Route {
                endpoint: Endpoint::Fields,
                prefix,
                form,
                entry_id: ids,
            };
        }
        let Some(rest) = rest.strip_prefix("/api/arsys/v1/entry/") else {
            return Route { prefix, ..other };
        };
        let mut segments = rest.split('/');
        let form = segments
            .next()
            .filter(|form| !form.is_empty())
            .map(str::to_string);
        let entry_id = segments.next().map(str::to_string);
        if form.is_none() || segments.next().is_some() {
            return Route { prefix, ..other };
        }
        Route {
            endpoint: if entry_id.is_some() {
                Endpoint::Entry
            } else {
                Endpoint::Query
            },
            prefix,
            form,
            entry_id,
        }
    }
}

/// AR System qualifications: parser and evaluator.
pub mod qualification {
    use std::cmp::Ordering;

    #[derive(Clone, Debug, PartialEq)]
    pub enum Operand {
        Field(String),
        Text(String),
        Number(f64),
        Null,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
        Like,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub enum Expr {
        And(Box<Expr>, Box<Expr>),
        Or(Box<Expr>, Box<Expr>),
        Not(Box<Expr>),
        Compare(Operand, Op, Operand),
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Token {
        Field(String),
        Text(String),
        Number(f64),
        Null,
        Op(Op),
        And,
        Or,
        Not,
        Open,
        Close,
    }

    fn tokenize(text: &str) -> Result<Vec<Token>, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut at = 0;
        // A quoted run with the quote doubled inside.
        let quoted = |at: &mut usize, quote: char| -> Result<String, String> {
            let mut out = String::new();
            *at += 1;
            loop {
                match chars.get(*at) {
                    None => return Err(format!("unterminated {quote}")),
                    Some(&c) if c == quote => {
                        if chars.get(*at + 1) == Some(&quote) {
                            out.push(quote);
                            *at += 2;
                        } else {
                            *at += 1;
                            return Ok(out);
                        }
                    }
                    Some(&c) => {
                        out.push(c);
                        *at += 1;
                    }
                }
            }
        };
        while at < chars.len() {
            let c = chars[at];
            let next = chars.get(at + 1).copied();
            match c {
                c if c.is_whitespace() => at += 1,
                '\'' => tokens.push(Token::Field(quoted(&mut at, '\'')?)),
                '"' => tokens.push(Token::Text(quoted(&mut at, '"')?)),
                '(' => {
                    tokens.push(Token::Open);
                    at += 1;
                }
                ')' => {
                    tokens.push(Token::Close);
                    at += 1;
                }
                '=' => {
                    tokens.push(Token::Op(Op::Eq));
                    at += 1;
                }
                '!' if next == Some('=') => {
                    tokens.push(Token::Op(Op::Ne));
                    at += 2;
                }
                '!' => {
                    tokens.push(Token::Not);
                    at += 1;
                }
                '<' if next == Some('=') => {
                    tokens.push(Token::Op(Op::Le));
                    at += 2;
                }
                '<' => {
                    tokens.push(Token::Op(Op::Lt));
                    at += 1;
                }
                '>' if next == Some('=') => {
                    tokens.push(Token::Op(Op::Ge));
                    at += 2;
                }
                '>' => {
                    tokens.push(Token::Op(Op::Gt));
                    at += 1;
                }
                '&' if next == Some('&') => {
                    tokens.push(Token::And);
                    at += 2;
                }
                '|' if next == Some('|') => {
                    tokens.push(Token::Or);
                    at += 2;
                }
                c if c.is_ascii_digit() || c == '-' => {
                    let start = at;
                    at += 1;
                    while at < chars.len() && (chars[at].is_ascii_digit() || chars[at] == '.') {
                        at += 1;
                    }
                    let number: String = chars[start..at].iter().collect();
                    tokens.push(Token::Number(
                        number.parse().map_err(|_| format!("bad number {number}"))?,
                    ));
                }
                c if c.is_ascii_alphabetic() || c == '$' => {
                    let start = at;
                    while at < chars.len()
                        && (chars[at].is_ascii_alphanumeric()
                            || chars[at] == '$'
                            || chars[at] == '_')
                    {
                        at += 1;
                    }
                    let word: String = chars[start..at].iter().collect();
                    tokens.push(match word.to_ascii_uppercase().as_str() {
                        "AND" => Token::And,
                        "OR" => Token::Or,
                        "NOT" => Token::Not,
                        "LIKE" => Token::Op(Op::Like),
                        "$NULL$" => Token::Null,
                        _ => return Err(format!("unexpected word {word}")),
                    });
                }
                other => return Err(format!("unexpected character {other:?}")),
            }
        }
        Ok(tokens)
    }

    struct Parser {
        tokens: Vec<Token>,
        at: usize,
    }

    impl Parser {
        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.at)
        }

        fn next(&mut self) -> Option<Token> {
            let token = self.tokens.get(self.at).cloned();
            self.at += 1;
            token
        }

        fn or(&mut self) -> Result<Expr, String> {
            let mut left = self.and()?;
            while self.peek() == Some(&Token::Or) {
                self.at += 1;
                left = Expr::Or(Box::new(left), Box::new(self.and()?));
            }
            Ok(left)
        }

        fn and(&mut self) -> Result<Expr, String> {
            let mut left = self.not()?;
            while self.peek() == Some(&Token::And) {
                self.at += 1;
                left = Expr::And(Box::new(left), Box::new(self.not()?));
            }
            Ok(left)
        }

        fn not(&mut self) -> Result<Expr, String> {
            if self.peek() == Some(&Token::Not) {
                self.at += 1;
                return Ok(Expr::Not(Box::new(self.not()?)));
            }
            self.primary()
        }

        fn primary(&mut self) -> Result<Expr, String> {
            if self.peek() == Some(&Token::Open) {
                self.at += 1;
                let inner = self.or()?;
                return match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("missing )".to_string()),
                };
            }
            let left = self.operand()?;
            let op = match self.next() {
                Some(Token::Op(op)) => op,
                other => return Err(format!("expected an operator, found {other:?}")),
            };
            let right = self.operand()?;
            Ok(Expr::Compare(left, op, right))
        }

        fn operand(&mut self) -> Result<Operand, String> {
            match self.next() {
                Some(Token::Field(name)) => Ok(Operand::Field(name)),
                Some(Token::Text(text)) => Ok(Operand::Text(text)),
                Some(Token::Number(number)) => Ok(Operand::Number(number)),
                Some(Token::Null) => Ok(Operand::Null),
                other => Err(format!("expected a field or value, found {other:?}")),
            }
        }
    }

    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("empty qualification".to_string());
        }
        let mut parser = Parser { tokens, at: 0 };
        let expression = parser.or()?;
        if parser.at != parser.tokens.len() {
            return Err(format!("unexpected {:?}", parser.peek()));
        }
        Ok(expression)
    }

    impl Expr {
        /// Every field name the qualification refers to.
        pub fn fields(&self) -> Vec<String> {
            let mut out = Vec::new();
            self.collect_fields(&mut out);
            out
        }

        fn collect_fields(&self, out: &mut Vec<String>) {
            match self {
                Expr::And(left, right) | Expr::Or(left, right) => {
                    left.collect_fields(out);
                    right.collect_fields(out);
                }
                Expr::Not(inner) => inner.collect_fields(out),
                Expr::Compare(left, _, right) => {
                    for operand in [left, right] {
                        if let Operand::Field(name) = operand {
                            out.push(name.clone());
                        }
                    }
                }
            }
        }

        /// Evaluates against an entry; `lookup` gives a field's value (`None` for null).
        pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
            match self {
                Expr::And(left, right) => left.matches(lookup) && right.matches(lookup),
                Expr::Or(left, right) => left.matches(lookup) || right.matches(lookup),
                Expr::Not(inner) => !inner.matches(lookup),
                Expr::Compare(left, op, right) => {
                    let value = |operand: &Operand| match operand {
                        Operand::Field(name) => lookup(name),
                        Operand::Text(text) => Some(text.clone()),
                        Operand::Number(number) => Some(number.to_string()),
                        Operand::Null => None,
                    };
                    compare(value(left), *op, value(right))
                }
            }
        }
    }

    fn compare(left: Option<String>, op: Op, right: Option<String>) -> bool {
        let (left, right) = match (left, right) {
            (Some(left), Some(right)) => (left, right),
            // Only (in)equality with $NULL$ is meaningful for an empty value.
            (left, right) => {
                return match op {
                    Op::Eq => left.is_none() && right.is_none(),
                    Op::Ne => left.is_some() || right.is_some(),
                    _ => false,
                };
            }
        };
        let ordering = match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => left.to_lowercase().cmp(&right.to_lowercase()),
        };
        match op {
            Op::Eq => ordering == Ordering::Equal,
            Op::Ne => ordering != Ordering::Equal,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Like => like(&left.to_lowercase(), &right.to_lowercase()),
        }
    }

    /// SQL LIKE: `%` any run, `_` one character.
    fn like(text: &str, pattern: &str) -> bool {
        fn go(text: &[char], pattern: &[char]) -> bool {
            match pattern.split_first() {
                None => text.is_empty(),
                Some(('%', rest)) => (0..=text.len()).any(|skip| go(&text[skip..], rest)),
                Some(('_', rest)) => !text.is_empty() && go(&text[1..], rest),
                Some((c, rest)) => text.first() == Some(c) && go(&text[1..], rest),
            }
        }
        let text: Vec<char> = text.chars().collect();
        let pattern: Vec<char> = pattern.chars().collect();
        go(&text, &pattern)
    }
}

fn entry(fields: &[(&str, Option<&str>)]) -> Entry {
    fields
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                value.map_or(Value::Null, |text| json!(text)),
            )
        })
        .collect()
}

/// `HPD:Help Desk`'s `Status` as BMC documents it.
pub const INCIDENT_STATUSES: &[&str] = &[
    "New",
    "Assigned",
    "In Progress",
    "Pending",
    "Resolved",
    "Closed",
    "Cancelled",
];

/// `CHG:Infrastructure Change`'s `Change Request Status` as BMC documents it.
pub const CHANGE_STATUSES: &[&str] = &[
    "Draft",
    "Request For Authorization",
    "Request For Change",
    "Planning In Progress",
    "Scheduled For Review",
    "Scheduled For Approval",
    "Scheduled",
    "Implementation In Progress",
    "Pending",
    "Rejected",
    "Completed",
    "Closed",
    "Cancelled",
];

/// `WOI:WorkOrder`'s `Status` (unverified against a server).
pub const WORK_ORDER_STATUSES: &[&str] = &[
    "Assigned",
    "Pending",
    "Waiting Approval",
    "Planning",
    "In Progress",
    "Completed",
    "Rejected",
    "Cancelled",
    "Closed",
];

/// `PBM:Problem Investigation`'s `Investigation Status` (unverified against a server).
pub const PROBLEM_STATUSES: &[&str] = &[
    "Draft",
    "Under Review",
    "Request for Authorization",
    "Assigned",
    "Under Investigation",
    "Pending",
    "Completed",
    "Rejected",
    "Closed",
    "Cancelled",
];

/// `Approval Status` of the change form: the simulator's own list (unverified).
pub const APPROVAL_STATUSES: &[&str] = &["Requested", "Approved", "Rejected"];

/// The fields of a form as (id, name, selection values): the default forms' selection
/// fields and core fields with their ids, then every other field its entries carry.
fn field_definitions(
    form: &str,
    entries: &[Entry],
) -> Vec<(i64, String, Option<&'static [&'static str]>)> {
    let mut fields: Vec<(i64, String, Option<&'static [&'static str]>)> = vec![
        (1, "Request ID".to_string(), None),
        (2, "Submitter".to_string(), None),
        (3, "Submit Date".to_string(), None),
    ];
    match form {
        INCIDENT_FORM => {
            fields.push((7, "Status".to_string(), Some(INCIDENT_STATUSES)));
            fields.push((1_000_000_161, "Incident Number".to_string(), None));
        }
        CHANGE_FORM => {
            fields.push((
                7,
                "Change Request Status".to_string(),
                Some(CHANGE_STATUSES),
            ));
            fields.push((1_000_000_182, "Infrastructure Change ID".to_string(), None));
            fields.push((
                1_000_003_261,
                "Approval Status".to_string(),
                Some(APPROVAL_STATUSES),
            ));
        }
        WORK_ORDER_FORM => {
            fields.push((7, "Status".to_string(), Some(WORK_ORDER_STATUSES)));
            fields.push((1_000_000_182, "Work Order ID".to_string(), None));
        }
        PROBLEM_FORM => {
            fields.push((
                7,
                "Investigation Status".to_string(),
                Some(PROBLEM_STATUSES),
            ));
            fields.push((1_000_000_232, "Problem Investigation ID".to_string(), None));
        }
        _ => {}
    }
    let mut next_id = 536_870_913;
    for entry in entries {
        for name in entry.keys() {
            if !fields.iter().any(|(_, known, _)| known == name) {
                fields.push((next_id, name.clone(), None));
                next_id += 1;
            }
        }
    }
    fields
}

/// The entries described in the module documentation, dated around `now`.
pub fn default_fixture(now: DateTime<Utc>) -> Vec<(&'static str, Entry)> {
    let at = |offset: Duration| (now + offset).format(DATE_FORMAT).to_string();
    let submitted = at(Duration::days(-1));
    let mut entries = Vec::new();
    let incidents = [
        (1, "In Progress", "alice", "carol", "VPN drops every hour"),
        (2, "Closed", "alice", "alice", "Printer jammed (closed)"),
        (3, "New", "bob", "alice", "Bob's laptop will not boot"),
        (
            4,
            "Cancelled",
            "alice",
            "alice",
            "Duplicate of INC000000000001",
        ),
        (5, "Pending", "alice", "alice", "Waiting for a vendor"),
    ];
    for (serial, status, customer, submitter, summary) in incidents {
        entries.push((
            INCIDENT_FORM,
            entry(&[
                ("Request ID", Some(&format!("{serial:015}"))),
                ("Incident Number", Some(&format!("INC{serial:012}"))),
                ("Status", Some(status)),
                ("Customer Login ID", Some(customer)),
                ("Submitter", Some(submitter)),
                ("Assignee Login ID", (serial == 1).then_some("dave")),
                (
                    "Assigned Group ID",
                    match serial {
                        1 => Some(LINUX_OPS_GROUP),
                        3 => Some(DBA_GROUP),
                        _ => None,
                    },
                ),
                ("Description", Some(summary)),
                ("Submit Date", Some(&submitted)),
            ]),
        ));
    }
    let hour = Duration::hours(1);
    let window = (Some(at(-hour)), Some(at(hour)));
    let implementing = "Implementation In Progress";
    let changes = [
        (
            1,
            implementing,
            "Approved",
            window.clone(),
            "alice",
            "Patch web servers",
        ),
        (
            2,
            implementing,
            "Requested",
            window.clone(),
            "alice",
            "Awaiting approval",
        ),
        (
            3,
            implementing,
            "Approved",
            (Some(at(Duration::days(2))), Some(at(Duration::days(3)))),
            "alice",
            "Window not open yet",
        ),
        (
            4,
            implementing,
            "Approved",
            (Some(at(Duration::days(-3))), Some(at(Duration::days(-2)))),
            "alice",
            "Window already over",
        ),
        (
            5,
            implementing,
            "Approved",
            window.clone(),
            "bob",
            "Bob's change",
        ),
        (
            6,
            implementing,
            "Approved",
            (None, Some(at(hour))),
            "alice",
            "No planned start",
        ),
        (
            7,
            "Closed",
            "Approved",
            window.clone(),
            "alice",
            "Closed change",
        ),
        (
            8,
            "Scheduled",
            "Approved",
            window,
            "alice",
            "Scheduled change",
        ),
    ];
    for (serial, status, approval, (start, end), requester, summary) in changes {
        entries.push((
            CHANGE_FORM,
            entry(&[
                ("Request ID", Some(&format!("{serial:015}"))),
                (
                    "Infrastructure Change ID",
                    Some(&format!("CRQ{serial:012}")),
                ),
                ("Change Request Status", Some(status)),
                ("Approval Status", Some(approval)),
                ("Scheduled Start Date", start.as_deref()),
                ("Scheduled End Date", end.as_deref()),
                ("Requested By", Some(requester)),
                ("Submitter", Some("carol")),
                ("ASLOGID", Some("dave")),
                ("ASGRPID", Some(LINUX_OPS_GROUP)),
                ("Description", Some(summary)),
                ("Submit Date", Some(&submitted)),
            ]),
        ));
    }
    for (serial, status) in [(1, "In Progress"), (2, "Closed")] {
        entries.push((
            WORK_ORDER_FORM,
            entry(&[
                ("Request ID", Some(&format!("{serial:015}"))),
                ("Work Order ID", Some(&format!("WO{serial:013}"))),
                ("Status", Some(status)),
                ("Customer Login ID", Some("alice")),
                ("Submitter", Some("carol")),
                ("ASLOGID", Some("dave")),
                ("Description", Some("Rack the new switch")),
                ("Submit Date", Some(&submitted)),
            ]),
        ));
    }
    for (serial, status) in [(1, "Under Investigation"), (2, "Closed")] {
        entries.push((
            PROBLEM_FORM,
            entry(&[
                ("Request ID", Some(&format!("{serial:015}"))),
                (
                    "Problem Investigation ID",
                    Some(&format!("PBI{serial:012}")),
                ),
                ("Investigation Status", Some(status)),
                ("Submitter", Some("alice")),
                ("Description", Some("Nightly export fails")),
                ("Submit Date", Some(&submitted)),
            ]),
        ));
    }
    let memberships = [
        ("bob", "Bob Baker", LINUX_OPS_GROUP),
        ("dave", "Dave Dunn", LINUX_OPS_GROUP),
        ("carol", "Carol Chen", DBA_GROUP),
    ];
    for (serial, (login, name, group)) in memberships.into_iter().enumerate() {
        entries.push((
            SUPPORT_GROUP_FORM,
            entry(&[
                (
                    "Support Group Association ID",
                    Some(&format!("SGA{:012}", serial + 1)),
                ),
                ("Login ID", Some(login)),
                ("Full Name", Some(name)),
                ("Support Group ID", Some(group)),
            ]),
        ));
    }
    entries
}

/// INC000000000006 and CRQ000000000009, which name the CI `app07`; kept out of
/// [`default_fixture`], whose incidents and changes other tests count.
pub fn ci_entries(now: DateTime<Utc>) -> Vec<(&'static str, Entry)> {
    let at = |offset: Duration| (now + offset).format(DATE_FORMAT).to_string();
    let submitted = at(Duration::days(-1));
    vec![
        (
            INCIDENT_FORM,
            entry(&[
                ("Request ID", Some("000000000000006")),
                ("Incident Number", Some("INC000000000006")),
                ("Status", Some("In Progress")),
                ("Customer Login ID", Some("alice")),
                ("Submitter", Some("alice")),
                ("HPD_CI", Some("app07")),
                ("Description", Some("Names a CI")),
                ("Submit Date", Some(&submitted)),
            ]),
        ),
        (
            CHANGE_FORM,
            entry(&[
                ("Request ID", Some("000000000000009")),
                ("Infrastructure Change ID", Some("CRQ000000000009")),
                ("Change Request Status", Some("Implementation In Progress")),
                ("Approval Status", Some("Approved")),
                ("Scheduled Start Date", Some(&at(-Duration::hours(1)))),
                ("Scheduled End Date", Some(&at(Duration::hours(1)))),
                ("Requested By", Some("alice")),
                ("Submitter", Some("carol")),
                ("CI_Name", Some("app07")),
                ("Description", Some("Names a CI")),
                ("Submit Date", Some(&submitted)),
            ]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::qualification::{Expr, Op, Operand, parse};
    use super::*;

    const USER: &str = "svc_pam";
    const PASSWORD: &str = "s3cret";

    fn login(sim: &RemedySim, user: &str, password: &str) -> Response {
        let mut request = Request {
            method: "POST".into(),
            path: "/api/jwt/login".into(),
            body: format!("username={user}&password={password}").into_bytes(),
            ..Request::default()
        };
        request.headers.insert(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        );
        sim.handle(&request)
    }

    fn token(sim: &RemedySim) -> String {
        let response = login(sim, USER, PASSWORD);
        assert_eq!(response.status, 200);
        String::from_utf8(response.body).expect("text token")
    }

    fn get(sim: &RemedySim, token: &str, path: &str, params: &[(&str, &str)]) -> Response {
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
            .insert("authorization".into(), format!("AR-JWT {token}"));
        request
            .headers
            .insert("host".into(), "remedy.test:8443".into());
        sim.handle(&request)
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(&response.body).expect("JSON")
    }

    fn ids(sim: &RemedySim, token: &str, q: &str) -> Vec<String> {
        let response = get(
            sim,
            token,
            "/api/arsys/v1/entry/HPD:Help Desk",
            &[("q", q), ("fields", "values(Incident Number)")],
        );
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        body(&response)["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|entry| {
                entry["values"]["Incident Number"]
                    .as_str()
                    .expect("id")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn login_tokens_and_logout() {
        let sim = RemedySim::new(USER, PASSWORD);
        let bad = login(&sim, USER, "wrong");
        assert_eq!(bad.status, 401);
        assert_eq!(body(&bad)[0]["messageNumber"], 623);
        assert_eq!(body(&bad)[0]["messageType"], "ERROR");
        let first = token(&sim);
        let second = token(&sim);
        assert_ne!(first, second);
        assert_eq!(sim.login_count(), 3);
        assert_eq!(
            ids(&sim, &first, r#"'Incident Number' = "INC000000000001""#).len(),
            1
        );

        let mut logout = Request {
            method: "POST".into(),
            path: "/api/jwt/logout".into(),
            ..Request::default()
        };
        logout
            .headers
            .insert("authorization".into(), format!("AR-JWT {first}"));
        assert_eq!(sim.handle(&logout).status, 204);
        assert_eq!(sim.handle(&logout).status, 401);
        assert_eq!(sim.logout_count(), 2);
        let refused = get(&sim, &first, "/api/arsys/v1/entry/HPD:Help Desk", &[]);
        assert_eq!(refused.status, 401);
        assert_eq!(body(&refused)[0]["messageText"], "Authentication failed");

        sim.expire_tokens();
        assert_eq!(
            get(&sim, &second, "/api/arsys/v1/entry/HPD:Help Desk", &[]).status,
            401
        );
        assert!(sim.live_tokens().is_empty());
        assert_eq!(sim.query_count(), 3);
    }

    #[test]
    fn server_side_token_lifetime() {
        let sim = RemedySim::new(USER, PASSWORD);
        sim.set_token_lifetime(Some(StdDuration::from_millis(30)));
        let token = token(&sim);
        assert_eq!(
            get(&sim, &token, "/api/arsys/v1/entry/HPD:Help Desk", &[]).status,
            200
        );
        std::thread::sleep(StdDuration::from_millis(40));
        assert_eq!(
            get(&sim, &token, "/api/arsys/v1/entry/HPD:Help Desk", &[]).status,
            401
        );
    }

    #[test]
    fn quoting_and_injection() {
        let sim = RemedySim::new(USER, PASSWORD);
        let token = token(&sim);
        // Unquoted: the injection widens the match to every incident.
        assert_eq!(
            ids(
                &sim,
                &token,
                r#"'Incident Number' = "X" OR 'Status' != "none""#
            )
            .len(),
            5
        );
        // Quoted the AR way: one string literal that matches nothing.
        assert!(
            ids(
                &sim,
                &token,
                r#"'Incident Number' = "X"" OR 'Status' != ""none""#
            )
            .is_empty()
        );
        // Doubled quotes are read back as one quote.
        assert_eq!(
            parse(r#"'O''Brien' = "say ""hi""""#),
            Ok(Expr::Compare(
                Operand::Field("O'Brien".into()),
                Op::Eq,
                Operand::Text(r#"say "hi""#.into())
            ))
        );
    }

    #[test]
    fn boolean_operators_and_precedence() {
        let sim = RemedySim::new(USER, PASSWORD);
        let token = token(&sim);
        let q = |text: &str| ids(&sim, &token, text);
        assert_eq!(
            q(r#"'Status' = "Closed" OR 'Status' = "Cancelled""#),
            ["INC000000000002", "INC000000000004"]
        );
        // NOT > AND > OR.
        assert_eq!(
            q(r#"'Customer Login ID' = "bob" OR 'Status' = "Closed" AND 'Submitter' = "carol""#),
            ["INC000000000003"]
        );
        assert_eq!(
            q(r#"('Customer Login ID' = "bob" OR 'Status' = "Closed") AND 'Submitter' = "alice""#),
            ["INC000000000002", "INC000000000003"]
        );
        assert_eq!(
            q(r#"NOT 'Customer Login ID' = "alice""#),
            ["INC000000000003"]
        );
        assert_eq!(
            q(r#"!('Customer Login ID' = "alice") && 'Status' = "new""#),
            ["INC000000000003"]
        );
        assert_eq!(q(r#"'Incident Number' LIKE "%0005""#), ["INC000000000005"]);
        assert_eq!(q(r#"'Assignee Login ID' != $NULL$"#), ["INC000000000001"]);
        assert_eq!(q(r#"'Request ID' >= "000000000000004""#).len(), 2);
    }

    #[test]
    fn errors_have_the_ar_shape() {
        let sim = RemedySim::new(USER, PASSWORD);
        let token = token(&sim);
        let unknown_form = get(&sim, &token, "/api/arsys/v1/entry/HPD:Nope", &[]);
        assert_eq!(unknown_form.status, 404);
        assert_eq!(body(&unknown_form)[0]["messageNumber"], 303);
        let missing = get(
            &sim,
            &token,
            "/api/arsys/v1/entry/HPD:Help Desk/000000000000099",
            &[],
        );
        assert_eq!(missing.status, 404);
        assert_eq!(body(&missing)[0]["messageNumber"], 302);
        assert_eq!(
            body(&missing)[0]["messageText"],
            "Entry does not exist in database"
        );
        let one = get(
            &sim,
            &token,
            "/api/arsys/v1/entry/HPD:Help Desk/000000000000001",
            &[],
        );
        assert_eq!(body(&one)["values"]["Incident Number"], "INC000000000001");
        for q in [
            r#"'Incident Number' = "x"#,
            r#"'Incident Number' "x""#,
            r#"'No Such Field' = "x""#,
        ] {
            let bad = get(
                &sim,
                &token,
                "/api/arsys/v1/entry/HPD:Help Desk",
                &[("q", q)],
            );
            assert_eq!(bad.status, 400, "{q}");
            assert_eq!(body(&bad)[0]["messageNumber"], 1587);
        }
    }

    #[test]
    fn projection_limit_links_and_recording() {
        let sim = RemedySim::new(USER, PASSWORD);
        let token = token(&sim);
        let response = get(
            &sim,
            &token,
            "/arsys-prefix/api/arsys/v1/entry/CHG:Infrastructure Change",
            &[
                ("q", r#"'Requested By' = "alice""#),
                (
                    "fields",
                    "values(Infrastructure Change ID, Scheduled Start Date, Bogus)",
                ),
                ("limit", "2"),
            ],
        );
        assert_eq!(response.status, 200);
        let document = body(&response);
        let entries = document["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 2);
        let values = entries[0]["values"].as_object().expect("values");
        assert_eq!(values.len(), 2, "{values:?}");
        assert!(
            values["Scheduled Start Date"]
                .as_str()
                .expect("date")
                .ends_with(".000+0000")
        );
        assert_eq!(
            entries[0]["_links"]["self"][0]["href"],
            "https://remedy.test:8443/arsys-prefix/api/arsys/v1/entry/CHG:Infrastructure%20Change/000000000000001"
        );
        let last = sim.received().pop().expect("recorded");
        assert_eq!(last.endpoint, Endpoint::Query);
        assert_eq!(last.prefix, "/arsys-prefix");
        assert_eq!(last.form.as_deref(), Some(CHANGE_FORM));
        assert_eq!(last.matched, 7);
        assert_eq!(last.token.as_deref(), Some(token.as_str()));
        // A null date stays null.
        let missing = get(
            &sim,
            &token,
            "/api/arsys/v1/entry/CHG:Infrastructure Change",
            &[("q", r#"'Infrastructure Change ID' = "CRQ000000000006""#)],
        );
        assert_eq!(
            body(&missing)["entries"][0]["values"]["Scheduled Start Date"],
            Value::Null
        );
    }
}
