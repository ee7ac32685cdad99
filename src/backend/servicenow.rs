//! ServiceNow through the Table API: one GET per ticket, stored values only (a change
//! checked for its configuration items: one more, see [`super::cmdb`]).
//!
//! The module signs in with HTTP basic authentication (AuthMethod=basic) or with an
//! OAuth 2.0 access token from `POST /oauth_token.do` (AuthMethod=oauth-client-credentials
//! or oauth-password), sent as `Authorization: Bearer …`. A token is shared by every sshd
//! process through the root-only token cache ([`TokenCache::obtain`]: one token request
//! for a burst of logins), used until shortly before its `expires_in`, then renewed: with
//! the refresh token that came with a password grant, or, when there is none or the
//! instance refuses it, with a new grant. A 401 on a Table API call means the instance
//! dropped the token (expired early, revoked): a new one is got once and the call retried
//! once. A token request the instance refuses (400 or 401) is the module's client refused:
//! denied in both fail modes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use super::cmdb::{MAX_AFFECTED_CIS, ci_field_list, interpret_affected_cis, referenced_ci};
use super::tables::no_such_table;
pub use super::tables::{TableSpec, table_spec};
use super::{
    ChoiceField, KnownChoices, Lookup, LookupError, NoteTarget, PROBE_MEMBER, ProbeLine,
    TicketSource, bad_response, membership_problem, probe_answer, probe_id, sanitise, status_error,
    why_unanswered,
};
use crate::audit::AuditSink;
use crate::config::{
    AuthMethod, BaseUrl, Credentials, OAuthClient, People, PersonFields, UserMatchField, UserRole,
};
use crate::http::{Body, Deadline, HttpClient, HttpResponse, Method, RetryBudget, percent_encode};
use crate::login::Login;
use crate::oauth::{self, ClientCredentials, Grant, TokenAnswer};
use crate::secret::{Secret, SecretText, secret_text};
use crate::ticket::{Choice, Ticket, TicketId, TicketKind};
use crate::token_cache::{FreshToken, TokenCache, TokenKind};

/// ServiceNow's access token lifespan when the token answer gives none (the default of an
/// Application Registry entry is 1,800 s).
const DEFAULT_ACCESS_TOKEN_SECONDS: u64 = 1800;
/// The longest the module keeps an access token, whatever its `expires_in` says.
const ACCESS_TOKEN_CACHE_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// The longest the module keeps a refresh token: ServiceNow's default refresh token
/// lifespan (8,640,000 s, 100 days). One that the instance ends sooner is refused there,
/// and the module falls back to a new grant.
const REFRESH_TOKEN_CACHE_LIMIT: Duration = Duration::from_secs(8_640_000);

/// How the module signs in to the instance.
pub enum ServiceNowAuth {
    /// Username and Password on every request.
    Basic(Credentials),
    /// An OAuth 2.0 access token from `/oauth_token.do`.
    OAuth(Box<OAuthSession>),
}

/// The OAuth client, the user of a password grant, and the caches of its tokens.
pub struct OAuthSession {
    client: OAuthClient,
    /// The integration user of a password grant; `None` for client credentials.
    user: Option<Credentials>,
    access: TokenCache,
    /// Refresh tokens (password grant only). Written and read under the access token's
    /// lock: only a login that is about to fetch an access token uses it.
    refresh: Option<TokenCache>,
}

impl OAuthSession {
    /// The session for `client` (and `user`, for the password grant) against `base_url`,
    /// its tokens cached under `cache_directory`.
    pub fn new(
        base_url: &BaseUrl,
        client: OAuthClient,
        user: Option<Credentials>,
        cache_directory: PathBuf,
    ) -> OAuthSession {
        // The cache key names the grant, the client and the user: a token of one never
        // serves another.
        let account = match &user {
            Some(user) => format!("password:{}:{}", client.client_id, user.username),
            None => format!("client_credentials:{}", client.client_id),
        };
        let access = TokenCache::new(
            cache_directory.clone(),
            TokenKind::ServiceNowAccess,
            &base_url.base,
            &account,
            ACCESS_TOKEN_CACHE_LIMIT,
        );
        let refresh = user.is_some().then(|| {
            TokenCache::new(
                cache_directory,
                TokenKind::ServiceNowRefresh,
                &base_url.base,
                &account,
                REFRESH_TOKEN_CACHE_LIMIT,
            )
        });
        OAuthSession {
            client,
            user,
            access,
            refresh,
        }
    }

    fn method(&self) -> AuthMethod {
        if self.user.is_some() {
            AuthMethod::OAuthPassword
        } else {
            AuthMethod::OAuthClientCredentials
        }
    }
}

pub struct ServiceNow {
    client: HttpClient,
    base_url: BaseUrl,
    auth: ServiceNowAuth,
    people: PersonQuery,
    /// Whether a lookup reads the record's `sys_id` (WorkNotes=Yes), which a work note is
    /// written to.
    reads_sys_id: bool,
    /// ValidateConfigurationItem: fetch the ticket's configuration items too.
    with_ci: bool,
}

/// How people are read from tickets: the sys_user field they are matched on, and the
/// relations (AllowedUserRoles) whose fields are fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonQuery {
    pub match_field: UserMatchField,
    pub roles: Vec<UserRole>,
}

impl Default for PersonQuery {
    /// Requesters by user_name: the query the module always made.
    fn default() -> PersonQuery {
        PersonQuery {
            match_field: UserMatchField::UserName,
            roles: vec![UserRole::Requester],
        }
    }
}

impl PersonQuery {
    pub fn from_people(people: &People) -> PersonQuery {
        PersonQuery {
            match_field: people.match_field,
            roles: people.roles.clone(),
        }
    }

    /// The answer's field that holds a reference field's person, in the matched terms:
    /// `caller_id.user_name`, or the group's sys_id itself for the assignment group.
    fn walked(&self, reference: &str) -> String {
        format!("{reference}.{}", self.match_field.field())
    }
}

/// The reference fields that name a ticket's people, per kind: the one mapping that the
/// query and the reader of its answer both use.
pub fn person_fields(kind: TicketKind) -> PersonFields<'static> {
    match kind {
        TicketKind::Incident => PersonFields {
            requesters: vec!["caller_id", "opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        TicketKind::Change => PersonFields {
            requesters: vec!["requested_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        TicketKind::RequestItem => PersonFields {
            requesters: vec!["requested_for", "opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        // The requester of a catalog task is its requested item's requested_for (one
        // dot-walk further), or whoever opened the task.
        TicketKind::CatalogTask => PersonFields {
            requesters: vec!["request_item.requested_for", "opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        TicketKind::Problem => PersonFields {
            requesters: vec!["opened_by"],
            assignee: "assigned_to",
            group: "assignment_group",
        },
        // Not ServiceNow types: table_spec refuses them before any query is built.
        TicketKind::WorkOrder | TicketKind::ProblemInvestigation => PersonFields {
            requesters: Vec::new(),
            assignee: "assigned_to",
            group: "assignment_group",
        },
    }
}

impl ServiceNow {
    pub fn new(
        client: HttpClient,
        base_url: BaseUrl,
        auth: ServiceNowAuth,
        people: PersonQuery,
    ) -> ServiceNow {
        ServiceNow {
            client,
            base_url,
            auth,
            people,
            reads_sys_id: false,
            with_ci: false,
        }
    }

    /// WorkNotes=Yes: every lookup also reads the record's `sys_id`, so that a note is
    /// written to it with no second query.
    pub fn reading_sys_id(mut self, reads_sys_id: bool) -> ServiceNow {
        self.reads_sys_id = reads_sys_id;
        self
    }

    /// Fetches each ticket's configuration items too (ValidateConfigurationItem).
    pub fn with_ci(mut self, with_ci: bool) -> ServiceNow {
        self.with_ci = with_ci;
        self
    }

    /// The Table API URL for one ticket. `sysparm_display_value=all` returns each field as
    /// `{display_value, value}`: the label for messages, the stored value for matching and
    /// dates (stored in UTC, whereas display values are in the API user's time zone).
    ///
    /// With WorkNotes=Yes `sys_id` is read too: a work note is written to the record by
    /// it, with no second query.
    pub fn query_url(&self, id: &TicketId) -> Result<String, LookupError> {
        let spec = table_spec(id.kind).ok_or_else(|| no_such_table(id.kind))?;
        let mut fields: Vec<String> = ["number", "state"].map(str::to_string).to_vec();
        if self.reads_sys_id {
            fields.insert(0, "sys_id".to_string());
        }
        fields.extend(spec.approval.map(str::to_string));
        if let Some((start, end)) = spec.window {
            fields.extend([start.to_string(), end.to_string()]);
        }
        let people = person_fields(id.kind);
        for field in people.wanted(&self.people.roles) {
            fields.push(if field == people.group {
                field.to_string()
            } else {
                self.people.walked(field)
            });
        }
        if self.with_ci {
            fields.extend(ci_field_list("cmdb_ci"));
        }
        Ok(format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit=2&sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url
                .join(&format!("/api/now/table/{}", spec.table)),
            percent_encode(&format!("number={}", id.text)),
            percent_encode(&fields.join(",")),
        ))
    }

    /// `GET task_ci` for the affected CIs of a change, found by the change's number
    /// (which passed the ID rules) through the `task` reference.
    pub fn affected_cis_url(&self, id: &TicketId) -> String {
        format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit={MAX_AFFECTED_CIS}&sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url.join("/api/now/table/task_ci"),
            percent_encode(&format!("task.number={}", id.text)),
            percent_encode(&ci_field_list("ci_item").join(",")),
        )
    }

    /// `GET sys_user_grmember` for one membership: the person (by the matched field) in
    /// the group (by sys_id). Both values were checked by [`membership_query`].
    pub fn membership_url(&self, query: &str) -> String {
        format!(
            "{}?sysparm_query={}&sysparm_fields={}&sysparm_limit=2&sysparm_exclude_reference_link=true&sysparm_no_count=true",
            self.base_url.join("/api/now/table/sys_user_grmember"),
            percent_encode(query),
            percent_encode(&format!("{},group", self.people.walked("user"))),
        )
    }

    fn token_url(&self) -> String {
        self.base_url.join("/oauth_token.do")
    }

    /// One grant at `/oauth_token.do`: the session's own (client credentials or
    /// password), or a refresh.
    fn request_token(
        &self,
        session: &OAuthSession,
        refresh_token: Option<&Secret>,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<TokenAnswer, LookupError> {
        let not_text = |what: &str| LookupError::Misconfigured {
            detail: format!(
                "the {what} in {} is not valid UTF-8",
                session.client.source.display()
            ),
        };
        let client_secret = session
            .client
            .client_secret
            .as_str()
            .ok_or_else(|| not_text("ClientSecret"))?;
        let client = ClientCredentials {
            client_id: &session.client.client_id,
            client_secret,
        };
        let grant = match (refresh_token, &session.user) {
            (Some(token), _) => Grant::Refresh {
                refresh_token: token
                    .as_str()
                    .ok_or_else(|| bad_response("the cached refresh token is not valid text"))?,
            },
            (None, Some(user)) => Grant::Password {
                username: &user.username,
                password: user.password.as_str().ok_or_else(|| not_text("Password"))?,
            },
            (None, None) => Grant::ClientCredentials,
        };
        oauth::request_token(
            &self.client,
            &self.token_url(),
            &client,
            &grant,
            deadline,
            retries,
        )
    }

    /// A new access token for the cache, fetched under its lock: with the cached refresh
    /// token when there is one, else (or when the instance refuses it) with a new grant.
    /// A refresh token that comes with the answer replaces the cached one. Problems with
    /// the refresh token's file change no decision and are returned as `warnings`.
    fn fetch_access_token(
        &self,
        session: &OAuthSession,
        deadline: Deadline,
        retries: &mut RetryBudget,
        warnings: &mut Vec<String>,
    ) -> Result<FreshToken, LookupError> {
        let now = deadline.clock().unix_seconds();
        let cached_refresh = session.refresh.as_ref().and_then(|cache| {
            cache
                .read()
                .ok()
                .filter(|cached| cache.is_usable(cached, now))
        });
        let mut answer = None;
        if let Some(cached) = cached_refresh {
            match self.request_token(session, Some(&cached.token), deadline, retries) {
                Ok(refreshed) => answer = Some(refreshed),
                // Expired, revoked, or the client's refresh tokens reset: a new grant
                // decides whether the client itself is still let in.
                Err(LookupError::AccountRefused { .. }) => {
                    if let Some(cache) = &session.refresh
                        && let Err(problem) = cache.remove()
                    {
                        warnings.push(format!("{} not cleared: {problem}", cache_noun(cache)));
                    }
                }
                Err(other) => return Err(other),
            }
        }
        let answer = match answer {
            Some(answer) => answer,
            None => self.request_token(session, None, deadline, retries)?,
        };
        if let (Some(cache), Some(refresh_token)) = (&session.refresh, &answer.refresh_token) {
            let written = cache
                .prepare_directory()
                .and_then(|()| cache.write_until(refresh_token, now, None));
            if let Err(problem) = written {
                warnings.push(format!("{} not written: {problem}", cache_noun(cache)));
            }
        }
        Ok(FreshToken {
            token: answer.access_token,
            expires_in: Some(answer.expires_in.unwrap_or(DEFAULT_ACCESS_TOKEN_SECONDS)),
        })
    }

    /// The access token to use: the cached one while usable and not `rejected`, else a new
    /// one, fetched once for a burst of logins ([`TokenCache::obtain`]).
    fn access_token(
        &self,
        session: &OAuthSession,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
        rejected: Option<&Secret>,
    ) -> Result<Secret, LookupError> {
        let mut warnings = Vec::new();
        let obtained = session.access.obtain(deadline, audit, rejected, || {
            self.fetch_access_token(session, deadline, retries, &mut warnings)
        });
        for warning in warnings {
            audit.warn(&warning);
        }
        Ok(obtained?.token)
    }

    /// One GET with the given `Authorization` header value.
    fn get(
        &self,
        url: &str,
        authorization: &str,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<HttpResponse, LookupError> {
        self.send(
            Method::Get,
            url,
            &Body::Empty,
            authorization,
            deadline,
            retries,
        )
    }

    /// One request with the given `Authorization` header value.
    fn send(
        &self,
        method: Method,
        url: &str,
        body: &Body<'_>,
        authorization: &str,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<HttpResponse, LookupError> {
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization),
        ];
        Ok(self
            .client
            .send_with_retry(method, url, &headers, body, deadline, retries)?)
    }

    /// One GET with the module's sign-in: basic, or the shared access token (renewed once
    /// and the call retried once when the instance answers 401).
    fn get_signed_in(
        &self,
        url: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<HttpResponse, LookupError> {
        let mut retries = RetryBudget::for_check();
        self.send_signed_in(
            Method::Get,
            url,
            &Body::Empty,
            deadline,
            &mut retries,
            audit,
        )
    }

    /// One request with the module's sign-in, the one path of the lookup and of the work
    /// notes: basic, or the shared access token (renewed once and the call retried once
    /// when the instance answers 401).
    fn send_signed_in(
        &self,
        method: Method,
        url: &str,
        body: &Body<'_>,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
    ) -> Result<HttpResponse, LookupError> {
        match &self.auth {
            ServiceNowAuth::Basic(account) => {
                // Decodes to the password: wiped (on drop) as soon as the request is over.
                let authorization = basic_authorization(account);
                self.send(method, url, body, authorization.as_str(), deadline, retries)
            }
            ServiceNowAuth::OAuth(session) => {
                let token = self.access_token(session, deadline, retries, audit, None)?;
                let response = self.send(method, url, body, &bearer(&token)?, deadline, retries)?;
                if response.status != 401 {
                    return Ok(response);
                }
                // The instance dropped the token before its time (revoked, or its
                // lifespan shortened): one new token, one retry.
                let renewed = self.access_token(session, deadline, retries, audit, Some(&token))?;
                self.send(method, url, body, &bearer(&renewed)?, deadline, retries)
            }
        }
    }

    /// The instance user the module acts as, when the configuration names it (basic and
    /// the password grant; a client-credentials grant acts as the OAuth entity's
    /// application user, which only the instance knows).
    fn acting_user(&self) -> Option<&str> {
        match &self.auth {
            ServiceNowAuth::Basic(account) => Some(&account.username),
            ServiceNowAuth::OAuth(session) => {
                session.user.as_ref().map(|user| user.username.as_str())
            }
        }
    }

    /// For `pam-ticket check`: the `Authorization` header value of a sign-in of its own (a
    /// new grant, never a cached or refresh token, which would prove nothing about the
    /// client's secret today; nothing is written to the cache), and what it proved.
    fn check_authorization(
        &self,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<(SecretText, Option<String>), LookupError> {
        match &self.auth {
            ServiceNowAuth::Basic(account) => Ok((basic_authorization(account), None)),
            ServiceNowAuth::OAuth(session) => {
                let answer = self.request_token(session, None, deadline, retries)?;
                let who = match &session.user {
                    Some(user) => format!(
                        "client {} for user {} (grant_type=password)",
                        sanitise(&session.client.client_id),
                        sanitise(&user.username)
                    ),
                    None => format!(
                        "client {} (grant_type=client_credentials)",
                        sanitise(&session.client.client_id)
                    ),
                };
                let lifetime = answer.expires_in.map_or_else(
                    || format!("no expires_in given: taken as {DEFAULT_ACCESS_TOKEN_SECONDS} s"),
                    |seconds| format!("expires in {seconds} s"),
                );
                let refresh = match (&session.user, &answer.refresh_token) {
                    (Some(_), Some(_)) => ", with a refresh token",
                    (Some(_), None) => {
                        ", without a refresh token (each renewal is a new password grant)"
                    }
                    (None, _) => "",
                };
                let line = format!(
                    "got an OAuth access token for {who} from POST /oauth_token.do ({lifetime}{refresh})"
                );
                Ok((bearer(&answer.access_token)?, Some(line)))
            }
        }
    }

    /// The token caches this configuration uses, for `pam-ticket check --flush-cache`.
    fn caches(&self) -> Vec<&TokenCache> {
        match &self.auth {
            ServiceNowAuth::Basic(_) => Vec::new(),
            ServiceNowAuth::OAuth(session) => std::iter::once(&session.access)
                .chain(session.refresh.as_ref())
                .collect(),
        }
    }
}

fn cache_noun(cache: &TokenCache) -> String {
    format!(
        "ServiceNow refresh token cache {}",
        cache.token_path().display()
    )
}

/// `Bearer <token>`, in a buffer wiped on drop.
fn bearer(token: &Secret) -> Result<SecretText, LookupError> {
    let text = token
        .as_str()
        .ok_or_else(|| bad_response("the access token is not valid text"))?;
    let mut header = secret_text("Bearer ".len() + text.len());
    header.push_str("Bearer ");
    header.push_str(text);
    Ok(header)
}

/// `PATCH /api/now/table/{table}/{sys_id}?sysparm_fields=sys_id`, on the table the lookup
/// queried (every ticket table extends `task`, which has `work_notes`): the answer holds
/// the `sys_id` only, however long the record's journal.
pub fn note_url(base_url: &BaseUrl, kind: TicketKind, sys_id: &str) -> Result<String, LookupError> {
    let spec = table_spec(kind).ok_or_else(|| no_such_table(kind))?;
    Ok(format!(
        "{}?sysparm_fields=sys_id",
        base_url.join(&format!(
            "/api/now/table/{}/{}",
            spec.table,
            percent_encode(sys_id)
        )),
    ))
}

/// The roles that write `work_notes` on incident and change_request on a stock instance.
pub const WRITE_ROLES: [&str; 4] = ["itil", "sn_incident_write", "sn_change_write", "admin"];

/// `GET /api/now/table/sys_user_has_role` for the roles of `user_name`.
pub fn roles_url(base_url: &BaseUrl, user_name: &str) -> String {
    format!(
        "{}?sysparm_query={}&sysparm_fields={}",
        base_url.join("/api/now/table/sys_user_has_role"),
        percent_encode(&format!("user.user_name={user_name}")),
        percent_encode("role.name"),
    )
}

/// The role names in a `sys_user_has_role` answer.
pub fn interpret_roles(response: &HttpResponse) -> Result<Vec<String>, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
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
    let detail = error_detail(&response.body);
    match response.status {
        200 => {}
        404 => return Err(LookupError::NotFound),
        _ => return Err(status_error(response, detail)),
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

/// Where a choice field's choices live in `sys_choice`: the table and the element.
pub fn choice_element(field: ChoiceField) -> Option<(&'static str, &'static str)> {
    match field {
        ChoiceField::State(kind) => table_spec(kind).map(|spec| (spec.table, "state")),
        ChoiceField::Approval(kind) => {
            table_spec(kind).and_then(|spec| spec.approval.map(|field| (spec.table, field)))
        }
    }
}

/// `GET /api/now/table/sys_choice` for the active choices of one field: each a stored
/// value and its label.
pub fn choices_url(base_url: &BaseUrl, field: ChoiceField) -> Option<String> {
    let (table, element) = choice_element(field)?;
    Some(format!(
        "{}?sysparm_query={}&sysparm_fields={}",
        base_url.join("/api/now/table/sys_choice"),
        percent_encode(&format!("name={table}^element={element}^inactive=false")),
        percent_encode("label,value"),
    ))
}

/// The choices in a `sys_choice` answer, each once (an instance with several languages
/// has a row per language).
pub fn interpret_choices(response: &HttpResponse) -> Result<Vec<Choice>, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
    let mut choices: Vec<Choice> = Vec::new();
    for row in rows {
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

impl TicketSource for ServiceNow {
    fn system_name(&self) -> &str {
        "ServiceNow"
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    /// One `sys_choice` query per field, with a sign-in of the check's own (see
    /// [`ServiceNow::check_authorization`]).
    fn known_choices(&mut self, fields: &[ChoiceField], deadline: Deadline) -> Vec<KnownChoices> {
        let mut retries = RetryBudget::for_check();
        let authorization = match self.check_authorization(deadline, &mut retries) {
            Ok((authorization, _)) => authorization,
            Err(error) => {
                return fields
                    .iter()
                    .map(|field| (*field, Err(error.clone())))
                    .collect();
            }
        };
        fields
            .iter()
            .map(|field| {
                let headers = [
                    ("Accept", "application/json"),
                    ("Authorization", authorization.as_str()),
                ];
                let answer = match choices_url(&self.base_url, *field) {
                    Some(url) => self
                        .client
                        .send(Method::Get, &url, &headers, &Body::Empty, deadline)
                        .map_err(LookupError::from)
                        .and_then(|response| interpret_choices(&response)),
                    None => Err(no_such_table(match field {
                        ChoiceField::State(kind) | ChoiceField::Approval(kind) => *kind,
                    })),
                };
                (*field, answer)
            })
            .collect()
    }

    fn lookup(
        &mut self,
        id: &TicketId,
        _login: &Login,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        let spec = table_spec(id.kind).ok_or_else(|| no_such_table(id.kind))?;
        let mut ticket = interpret_for(
            id,
            &self.people,
            &self.get_signed_in(&self.query_url(id)?, deadline, audit)?,
        )?;
        if self.with_ci {
            let record_cis = ticket.configuration_items.get_or_insert_with(Vec::new);
            if spec.affected_cis {
                // One more request, on the same deadline: the change's affected CIs.
                let answer = self.get_signed_in(&self.affected_cis_url(id), deadline, audit)?;
                for item in interpret_affected_cis(&answer)? {
                    if !record_cis.contains(&item) {
                        record_cis.push(item);
                    }
                }
            }
        }
        Ok(Lookup::Found(ticket))
    }

    /// A sign-in of its own (with OAuth a new grant: the token cache is neither read nor
    /// written, nor its directory created, so a check run by hand can never leave a token
    /// or a wrongly owned file for the module to trip over) and a lookup of
    /// [`super::PROBE_TICKET`].
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let mut retries = RetryBudget::for_check();
        let (authorization, signed_in) = self.check_authorization(deadline, &mut retries)?;
        let mut lines: Vec<ProbeLine> = signed_in.into_iter().map(ProbeLine::Ok).collect();
        let id = probe_id(TicketKind::Incident);
        let response = self.get(
            &self.query_url(&id)?,
            authorization.as_str(),
            deadline,
            &mut retries,
        )?;
        lines.push(ProbeLine::Ok(probe_answer(
            interpret_for(&id, &self.people, &response).map(Lookup::Found),
        )?));
        // When AllowedUserRoles has assignment_group, one membership query with the same
        // sign-in: an account that may read incidents but not `sys_user_grmember` shows
        // here, not at a login.
        if self.people.roles.contains(&UserRole::AssignmentGroup) {
            let nobodys_group = "0".repeat(32);
            let member = membership_query(self.people.match_field, PROBE_MEMBER, &nobodys_group)
                .and_then(|query| {
                    self.get(
                        &self.membership_url(&query),
                        authorization.as_str(),
                        deadline,
                        &mut RetryBudget::for_check(),
                    )
                })
                .and_then(|response| {
                    interpret_membership(&self.people, PROBE_MEMBER, &nobodys_group, &response)
                });
            lines.push(match member {
                Ok(_) => ProbeLine::Ok(
                    "sys_user_grmember answered a membership query (AllowedUserRoles=assignment_group)"
                        .to_string(),
                ),
                Err(error) => ProbeLine::Problem(membership_problem("sys_user_grmember", &error)),
            });
        }
        if self.with_ci {
            // The incident query above dot-walked cmdb_ci; a change also reads task_ci.
            let change = probe_id(TicketKind::Change);
            let answer = self
                .get(
                    &self.affected_cis_url(&change),
                    authorization.as_str(),
                    deadline,
                    &mut RetryBudget::for_check(),
                )
                .and_then(|answer| interpret_affected_cis(&answer));
            lines.push(match answer {
                Ok(_) => ProbeLine::Ok(
                    "task_ci answered a query of a change's affected CIs (ValidateConfigurationItem)"
                        .to_string(),
                ),
                Err(error) => ProbeLine::Problem(format!(
                    "task_ci, which ValidateConfigurationItem reads for changes, gave no answer: {}",
                    why_unanswered(&error)
                )),
            });
        }
        drop(authorization);
        if let ServiceNowAuth::OAuth(session) = &self.auth {
            lines.push(ProbeLine::Ok(format!(
                "AuthMethod={}: token cache in {} neither read nor written",
                session.method().name(),
                session.access.directory().display()
            )));
        }
        Ok(lines)
    }

    fn token_caches(&self) -> Vec<&TokenCache> {
        self.caches()
    }

    /// One `sys_user_grmember` query, with the module's sign-in (basic, or the shared
    /// OAuth token). The identity reaches an encoded query, where no escape for `^`
    /// exists: an identity that could change the query's meaning is refused before
    /// anything is sent, and an answer row that is not the membership asked for is a bad
    /// answer, never a member.
    fn group_member(
        &mut self,
        identity: &str,
        group: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        let query = membership_query(self.people.match_field, identity, group)?;
        let response = self.get_signed_in(&self.membership_url(&query), deadline, audit)?;
        interpret_membership(&self.people, identity, group, &response)
    }

    /// The account's roles from `sys_user_has_role`: a read, never a write. Writing
    /// `work_notes` on incident and change_request comes with `itil` on a stock instance
    /// (or `sn_incident_write` / `sn_change_write`, or `admin`); a customised ACL can say
    /// otherwise, so a role found is "expected", not proven. An account that may not read
    /// its roles leaves the question open.
    fn write_access(&mut self, deadline: Deadline) -> Vec<ProbeLine> {
        let Some(user) = self.acting_user().map(str::to_string) else {
            return vec![ProbeLine::Ok(
                "work notes: cannot tell whether the OAuth application user may write them (a client-credentials grant acts as the user set on the instance's OAuth entity, which the module does not know); give that user the itil role, and a failed note is logged at warning".to_string(),
            )];
        };
        let url = roles_url(&self.base_url, &user);
        let mut retries = RetryBudget::spent();
        // A sign-in of its own, as the rest of the check: the token cache is left alone.
        let answer = self
            .check_authorization(deadline, &mut retries)
            .and_then(|(authorization, _)| {
                self.get(&url, authorization.as_str(), deadline, &mut retries)
            })
            .and_then(|response| interpret_roles(&response));
        let account = sanitise(&user);
        vec![match answer {
            Ok(roles) => {
                let shown = if roles.is_empty() {
                    "none".to_string()
                } else {
                    sanitise(&roles.join(", "))
                };
                match roles
                    .iter()
                    .find(|role| WRITE_ROLES.contains(&role.as_str()))
                {
                    Some(role) => ProbeLine::Ok(format!(
                        "work notes: the account {account} has the role {role}, which writes work_notes on incident and change_request on a stock instance (roles: {shown})"
                    )),
                    None => ProbeLine::Problem(format!(
                        "work notes: the account {account} has none of the roles that write work_notes ({}; roles: {shown}): every note would fail; give it one",
                        WRITE_ROLES.join(", ")
                    )),
                }
            }
            Err(error) => ProbeLine::Ok(format!(
                "work notes: cannot tell whether {account} may write them (its roles could not be read from sys_user_has_role: {}); a failed note is logged at warning",
                crate::backend::error_text(&error)
            )),
        }]
    }

    /// One PATCH of `work_notes` on the record the lookup found, by its `sys_id`, with the
    /// module's own account; one retry at most (an outage), inside `deadline`.
    fn write_note(
        &mut self,
        target: &NoteTarget,
        text: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<(), LookupError> {
        let Some(sys_id) = target.record_id.as_deref() else {
            return Err(bad_response("the lookup gave no sys_id for the record"));
        };
        let body = serde_json::json!({ "work_notes": text });
        let response = self.send_signed_in(
            Method::Patch,
            &note_url(&self.base_url, target.kind, sys_id)?,
            &Body::Json(&body),
            deadline,
            &mut RetryBudget::for_check(),
            audit,
        )?;
        interpret_note(sys_id, &response)
    }
}

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
    if group.len() != 32 || !group.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(bad_response(
            "the ticket's assignment_group is not a sys_id",
        ));
    }
    Ok(format!(
        "user.{}={identity}^group={group}",
        match_field.field()
    ))
}

/// A member when a row is exactly the membership asked for; a row of anyone else's
/// means the query did not mean what was sent, so the answer is not trusted at all.
pub fn interpret_membership(
    people: &PersonQuery,
    identity: &str,
    group: &str,
    response: &HttpResponse,
) -> Result<bool, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
    let user_field = people.walked("user");
    for row in rows {
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
    let detail = error_detail(&response.body);
    match response.status {
        200 => {}
        // The v1 API answered 404 for "no match"; keep reading it as such.
        404 if detail.contains("No Record found") => return Err(LookupError::NotFound),
        _ => return Err(status_error(response, detail)),
    }
    let bad = bad_response;
    // A duplicate key anywhere (two "state"s, two "result"s) makes the answer unreadable.
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad(&problem.to_string()))?;
    let records = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no result list"))?;
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
        // Only an answer to a query that asked for `cmdb_ci` carries the key.
        configuration_items: record
            .get("cmdb_ci")
            .map(|_| referenced_ci(record, "cmdb_ci").into_iter().collect()),
    })
}

/// The stored value of a field, whichever display mode the answer used: a plain string,
/// `{"value": …}` (display_value=all, or a reference link), or absent.
pub(super) fn field_value(record: &Value, field: &str) -> Option<String> {
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
pub(super) fn error_detail(body: &[u8]) -> String {
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

/// `Basic <base64 of user:password>`, built in buffers sized before the password goes in
/// and wiped on drop.
pub fn basic_authorization(account: &Credentials) -> SecretText {
    let password = account.password.as_bytes();
    let mut raw = Zeroizing::new(Vec::with_capacity(
        account.username.len() + 1 + password.len(),
    ));
    raw.extend_from_slice(account.username.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(password);
    crate::http::prefixed_base64("Basic ", &raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BadAnswer, Outage};
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
