//! The seam between the login flow and the ticketing systems: one trait, one error enum.
//! Whether a failure is "the ticket is not valid" or "we could not ask" is decided here,
//! by the variant a backend returns, never guessed later from a message.

pub mod cmdb;
pub mod portal;
pub mod remedy;
pub mod servicenow;
pub mod tables;

use std::fmt;

use crate::audit::AuditSink;
use crate::config::Config;
use crate::http::{Deadline, HttpResponse, TransportError, Unreachable, retry_after};
use crate::login::Login;
use crate::ticket::{Choice, Ticket, TicketId, TicketKind};
use crate::token_cache::TokenCache;

/// The ticket `pam-ticket check` asks for: valid in a query, absent from any real system.
pub const PROBE_TICKET: &str = "PAMTICKETCHECK0";
/// The person whose group membership `pam-ticket check` asks about (AllowedUserRoles=
/// assignment_group): valid in a query, a member of nothing in any real system.
pub const PROBE_MEMBER: &str = "pam-ticket-check";

/// What an admin reads when a group membership query of `pam-ticket check` failed.
pub fn membership_problem(what: &str, error: &LookupError) -> String {
    format!(
        "{what}, which AllowedUserRoles=assignment_group reads, gave no answer: {}",
        why_unanswered(error)
    )
}

/// Why a query that `pam-ticket check` makes for a check gave no answer, in a few words.
pub fn why_unanswered(error: &LookupError) -> String {
    match error {
        LookupError::AccountRefused { status, detail } => format!(
            "the module's account was refused (HTTP {status}{}): it needs read access there",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        ),
        LookupError::Unavailable(outage) => outage.to_string(),
        LookupError::BadAnswer(why) => why.to_string(),
        LookupError::Misconfigured { detail } => detail.clone(),
        LookupError::UntrustedServer { detail } => format!("untrusted certificate: {detail}"),
        LookupError::NotCheckable { message } => message.clone(),
        other => format!("{other:?}"),
    }
}

/// One finding of [`TicketSource::probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeLine {
    /// A step that worked.
    Ok(String),
    /// Something the exchange survived but a login would suffer from (e.g. a failed
    /// logoff, which leaves a session open on the server after every login).
    Problem(String),
}

/// What a backend established about a ticket.
// One Lookup per answer, moved once into the flow: boxing the ticket would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The ticket record itself: the gateway's own policy decides.
    Found(Ticket),
    /// A portal validated the ticket on the gateway's behalf and accepted it.
    AcceptedByPortal { detail: String },
}

/// Why a lookup gave no ticket.
///
/// Which variant a backend returns is the decision between "FailMode decides" and "denied
/// in both modes": only [`LookupError::Unavailable`] ever reaches the failsafe, and it
/// holds an [`Outage`], which can only be a refused, reset or timed-out connection, a
/// failed name lookup, a 5xx or a 429.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// The system answered: no such ticket.
    NotFound,
    /// The system answered with more than one record, or one whose ID differs.
    Ambiguous { records: usize },
    /// The portal looked at the ticket and refused it (its message is shown to the user).
    RefusedByPortal {
        code: Option<String>,
        message: String,
    },
    /// The login itself cannot be checked this way (e.g. no target in portal mode).
    NotCheckable { message: String },
    /// The system could not be asked: a real outage. FailMode decides.
    Unavailable(Outage),
    /// The system refused the module's own account (401/403, ARERR 623, PASWS013E). Not an
    /// outage: whoever can lock that account, or let its password expire, would otherwise
    /// open a safe-mode gateway to everyone. Denied in both fail modes.
    AccountRefused { status: u16, detail: String },
    /// Something answered, but not with the API's answer. It comes from the request, the
    /// configuration or something in between, and would last as long as the mistake:
    /// denied in both fail modes.
    BadAnswer(BadAnswer),
    /// The server's certificate did not verify. Possibly an attack: denied in both fail
    /// modes, never let through as failsafe.
    UntrustedServer { detail: String },
    /// The module itself is set up wrongly (e.g. no CA bundle): a service error.
    Misconfigured { detail: String },
}

/// The outages FailMode=safe exists for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outage {
    /// Refused, reset or timed-out connection, failed name lookup, no route.
    Unreachable(Unreachable),
    /// HTTP 5xx.
    ServerError { status: u16, detail: String },
    /// HTTP 429; `retry_after` is what the server asked for.
    RateLimited { retry_after: Option<u64> },
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outage::Unreachable(why) => write!(f, "{why}"),
            Outage::ServerError { status, detail } => {
                write!(f, "server error HTTP {status}")?;
                write_detail(f, detail)
            }
            Outage::RateLimited {
                retry_after: Some(seconds),
            } => {
                write!(f, "rate limited (HTTP 429, Retry-After {seconds}s)")
            }
            Outage::RateLimited { retry_after: None } => write!(f, "rate limited (HTTP 429)"),
        }
    }
}

/// Answers that are not the API's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadAnswer {
    /// A failure below HTTP that is not an outage: TLS (alert, old version, not TLS at
    /// all), not HTTP, a header or body over the limit, a proxy that refused the tunnel, a
    /// request that could not be sent.
    Transport(TransportError),
    /// A 2xx answer that is not what the API defines.
    BadResponse { detail: String },
    /// An HTTP status the API gives no meaning for this call.
    UnexpectedStatus { status: u16, detail: String },
    /// Portal mode: the ticket check (Password/Retrieve) gave no verdict after the logon
    /// and the account search had worked. The portal was up, and its answer depends on
    /// the ticket, so it is never an outage.
    TicketCheckFailed { what: String },
    /// Portal mode: the account search for the target gave no answer (a 5xx, a 429, a
    /// refused, reset or timed-out connection) after the logon had worked. The portal was
    /// up, and the search text comes from PAM_USER, which the person connecting chooses (a
    /// broad search on a big vault can be made to run past the deadline), so it is never
    /// an outage.
    TargetLookupFailed { what: String },
}

impl fmt::Display for BadAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadAnswer::Transport(error) => write!(f, "{error}"),
            BadAnswer::BadResponse { detail } => write!(f, "unexpected answer: {detail}"),
            BadAnswer::UnexpectedStatus { status, detail } => {
                write!(f, "unexpected HTTP {status}")?;
                write_detail(f, detail)
            }
            BadAnswer::TicketCheckFailed { what } => {
                write!(f, "the portal's ticket check gave no verdict: {what}")
            }
            BadAnswer::TargetLookupFailed { what } => {
                write!(f, "the portal's account search gave no answer: {what}")
            }
        }
    }
}

/// How every backend reads an error status the API does not give a meaning of its own:
/// 401/403 is the module's own account refused, 429 rate limiting, 5xx a server error,
/// anything else unexpected. `detail` is the backend's sanitised error text.
pub fn status_error(response: &HttpResponse, detail: String) -> LookupError {
    match response.status {
        status @ (401 | 403) => LookupError::AccountRefused { status, detail },
        429 => LookupError::Unavailable(Outage::RateLimited {
            retry_after: retry_after(response),
        }),
        status @ 500..=599 => LookupError::Unavailable(Outage::ServerError { status, detail }),
        status => LookupError::BadAnswer(BadAnswer::UnexpectedStatus { status, detail }),
    }
}

/// A 2xx answer that is not what the API defines.
pub fn bad_response(detail: &str) -> LookupError {
    LookupError::BadAnswer(BadAnswer::BadResponse {
        detail: detail.to_string(),
    })
}

/// An error in a few words, for `pam-ticket check`'s lines.
pub fn error_text(error: &LookupError) -> String {
    match error {
        LookupError::AccountRefused { status, detail } if detail.is_empty() => {
            format!("HTTP {status}")
        }
        LookupError::AccountRefused { status, detail } => format!("HTTP {status}: {detail}"),
        LookupError::Unavailable(outage) => outage.to_string(),
        LookupError::BadAnswer(why) => why.to_string(),
        LookupError::UntrustedServer { detail } | LookupError::Misconfigured { detail } => {
            detail.clone()
        }
        LookupError::NotFound => "not found".to_string(),
        other => format!("{other:?}"),
    }
}

/// What the admin reads when the system refuses the module's own account: who was
/// refused, by whom, and what to check.
pub fn account_refused_text(config: &Config, status: u16, detail: &str) -> String {
    if config.portal.is_none()
        && let Some(client) = &config.oauth_client
    {
        return oauth_client_refused_text(config, client, status, detail);
    }
    let (server, username, setting, file, more) = match &config.portal {
        // The token request goes to the Identity tenant; the portal calls take its token.
        Some(portal) if portal.identity_url.is_some() => (
            format!(
                "{} (platform token for {})",
                portal
                    .identity_url
                    .as_ref()
                    .map_or_else(String::new, ToString::to_string),
                portal.url
            ),
            portal.account.username.as_str(),
            "PortalAccountFile",
            portal.account.source.display().to_string(),
            ", that it is an OAuth confidential client (service user) of the Identity tenant \
             with a Privilege Cloud role, and IdentityURL",
        ),
        Some(portal) => (
            portal.url.to_string(),
            portal.account.username.as_str(),
            "PortalAccountFile",
            portal.account.source.display().to_string(),
            ", and PortalAuthMethod",
        ),
        None => (
            config
                .system_url
                .as_ref()
                .map_or_else(|| "the ticketing system".to_string(), ToString::to_string),
            config
                .connection_account
                .as_ref()
                .map_or("(none)", |account| account.username.as_str()),
            "ConnectionAccountFile",
            config
                .connection_account
                .as_ref()
                .map_or_else(String::new, |account| account.source.display().to_string()),
            "",
        ),
    };
    let mut text = format!(
        "the module's account {} was refused by {server} (HTTP {status}",
        sanitise(username)
    );
    if !detail.is_empty() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text.push_str(&format!(
        "): check {setting} ({file}) and the account's password, lock state and roles{more}"
    ));
    text
}

/// [`account_refused_text`] for ServiceNow with an OAuth AuthMethod: the refusal may come
/// from `/oauth_token.do` (the client, its secret, the user of a password grant) or from
/// the Table API (the roles of the user the token acts as).
fn oauth_client_refused_text(
    config: &Config,
    client: &crate::config::OAuthClient,
    status: u16,
    detail: &str,
) -> String {
    let server = config
        .system_url
        .as_ref()
        .map_or_else(|| "the ticketing system".to_string(), ToString::to_string);
    let (who, lines, user_hint) = match &config.connection_account {
        Some(user) => (
            format!(
                "OAuth client {} (AuthMethod=oauth-password, user {})",
                sanitise(&client.client_id),
                sanitise(&user.username)
            ),
            "ClientID, ClientSecret, Username and Password",
            "the user's password, lock state and roles",
        ),
        None => (
            format!(
                "OAuth client {} (AuthMethod=oauth-client-credentials)",
                sanitise(&client.client_id)
            ),
            "ClientID and ClientSecret",
            "the entry's OAuth Application User and its roles, and that the instance allows \
             the grant (glide.oauth.inbound.client.credential.grant_type.enabled=true)",
        ),
    };
    let mut text = format!("the module's {who} was refused by {server} (HTTP {status}");
    if !detail.is_empty() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text.push_str(&format!(
        "): check {lines} in ConnectionAccountFile ({}), the client's Application Registry \
         entry on the instance (System OAuth > Application Registry: active, same client \
         secret), and {user_hint}",
        client.source.display()
    ));
    text
}

fn write_detail(f: &mut fmt::Formatter<'_>, detail: &str) -> fmt::Result {
    if detail.is_empty() {
        Ok(())
    } else {
        write!(f, ": {detail}")
    }
}

impl From<TransportError> for LookupError {
    /// Only an unreachable server is an outage; a certificate that does not verify is
    /// kept apart for its message; everything else is an answer that is not the API's.
    fn from(error: TransportError) -> LookupError {
        match error {
            TransportError::Unreachable(why) => LookupError::Unavailable(Outage::Unreachable(why)),
            TransportError::UntrustedCertificate(detail) => LookupError::UntrustedServer { detail },
            error @ (TransportError::Tls(_)
            | TransportError::ClientCertificateRefused { .. }
            | TransportError::Protocol(_)
            | TransportError::HeaderTooLarge { .. }
            | TransportError::BodyTooLarge { .. }
            | TransportError::ProxyRefused(_)
            | TransportError::InvalidRequest(_)
            | TransportError::Other(_)) => LookupError::BadAnswer(BadAnswer::Transport(error)),
        }
    }
}

/// A choice field whose Allowed* list `pam-ticket check` compares with the choices the
/// ticketing system itself knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceField {
    /// The state (status) of a ticket type.
    State(TicketKind),
    /// The approval of a ticket type that has one.
    Approval(TicketKind),
}

impl ChoiceField {
    /// The ticket type whose field it is.
    pub fn kind(self) -> TicketKind {
        match self {
            ChoiceField::State(kind) | ChoiceField::Approval(kind) => kind,
        }
    }

    /// How messages name the field (`incident state`, `change approval`).
    pub fn noun(self) -> String {
        match self {
            ChoiceField::State(kind) => format!("{} state", kind.type_name()),
            ChoiceField::Approval(kind) => format!("{} approval", kind.type_name()),
        }
    }
}

/// The choices a system knows for one field, or why they could not be read.
pub type KnownChoices = (ChoiceField, Result<Vec<Choice>, LookupError>);

/// The ticket a work note goes to. Each backend maps the kind to where it writes (the
/// ServiceNow table the lookup used, the Remedy work-log form and its fields), so that a
/// new kind is one match arm there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteTarget {
    pub kind: TicketKind,
    /// The ticket ID.
    pub id: String,
    /// What the lookup read for writing: the ServiceNow `sys_id`, the Remedy change's
    /// entry ID.
    pub record_id: Option<String>,
}

/// A ticketing system (or the portal in front of one).
pub trait TicketSource {
    /// The name written to the audit and exported as TICKETING_SYSTEM.
    fn system_name(&self) -> &str;

    /// Looks one ticket up. Every request it makes must finish before `deadline`.
    /// Problems that change no decision (a token cache that cannot be used) are warned
    /// about through `audit`.
    fn lookup(
        &mut self,
        id: &TicketId,
        login: &Login,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError>;

    /// How many HTTP requests this source has sent so far, counted in the HTTP client.
    fn requests_sent(&self) -> u64;

    /// Whether `identity` (the person in the ticketing system) is a member of the
    /// assignment group `group` (as the ticket holds it): one request, under the login's
    /// deadline. Only asked when AllowedUserRoles has assignment_group and no other
    /// relation holds.
    fn group_member(
        &mut self,
        _identity: &str,
        _group: &str,
        _deadline: Deadline,
        _audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        Err(LookupError::Misconfigured {
            detail: format!(
                "{} cannot check assignment group membership",
                self.system_name()
            ),
        })
    }

    /// For `pam-ticket check`: one exchange that proves that the account and the TLS trust
    /// work, and the lines that say what it proved. It must log on afresh (a cached
    /// session proves nothing about the password), must release nothing (no password
    /// retrieval), and must leave nothing behind that a login would use.
    ///
    /// The default looks up [`PROBE_TICKET`], which fits a source that authenticates every
    /// request and only reads; a source with sessions, a cache or side effects overrides it.
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let login = Login::new("pam-ticket-check", None, Some("pam-ticket".to_string()));
        // A source that warns overrides this probe; any warning would reach syslog.
        let mut warnings = crate::audit::SystemAudit::new(None, false);
        let found = probe_answer(self.lookup(
            &probe_id(TicketKind::Incident),
            &login,
            deadline,
            &mut warnings,
        ))?;
        Ok(vec![ProbeLine::Ok(found)])
    }

    /// Writes a work note to a ticket this source looked up. Every request it makes must
    /// finish before `deadline`, and a failed write is retried once at most. The portal
    /// keeps its own audit and takes no notes (the configuration refuses WorkNotes there).
    fn write_note(
        &mut self,
        _target: &NoteTarget,
        _text: &str,
        _deadline: Deadline,
        _audit: &mut dyn AuditSink,
    ) -> Result<(), LookupError> {
        Err(LookupError::Misconfigured {
            detail: format!("{} takes no work notes", self.system_name()),
        })
    }

    /// For `pam-ticket check` with WorkNotes=Yes: whether the account could write a note,
    /// as far as a read can tell (never by writing one). Nothing when the source cannot
    /// tell at all.
    fn write_access(&mut self, _deadline: Deadline) -> Vec<ProbeLine> {
        Vec::new()
    }

    /// For `pam-ticket check`: the choices the system knows for each of `fields`, each
    /// read once, so that Allowed* entries that name none of them can be pointed out.
    /// Reads only; a source that cannot say (the portal) answers nothing.
    fn known_choices(&mut self, _fields: &[ChoiceField], _deadline: Deadline) -> Vec<KnownChoices> {
        Vec::new()
    }

    /// The token caches this configuration's logins use (every kind it may write), for
    /// `pam-ticket check --flush-cache`. A source that caches nothing has none.
    fn token_caches(&self) -> Vec<&TokenCache> {
        Vec::new()
    }
}

/// The probe ticket, as an ID of the given kind.
pub fn probe_id(kind: TicketKind) -> TicketId {
    TicketId {
        text: PROBE_TICKET.to_string(),
        kind,
    }
}

/// What an answer to a lookup of [`PROBE_TICKET`] proves: any answer about the ticket
/// means that the account was let in; only the errors that are not about the ticket are
/// passed on.
pub fn probe_answer(result: Result<Lookup, LookupError>) -> Result<String, LookupError> {
    match result {
        Err(LookupError::NotFound) => Ok(format!(
            "logged on; the probe ticket {PROBE_TICKET} was not found, as expected"
        )),
        Ok(Lookup::Found(_)) | Err(LookupError::Ambiguous { .. }) => {
            Ok("logged on; the server answered the query".to_string())
        }
        Ok(Lookup::AcceptedByPortal { .. }) | Err(LookupError::RefusedByPortal { .. }) => {
            Ok("logged on; the server answered the ticket check".to_string())
        }
        Err(other) => Err(other),
    }
}

pub use crate::sanitise::sanitise;

/// The HTTPS client for a configuration: its CA bundle, its client certificate
/// (ClientCertificateFile) and its proxy. Every connection the module makes (ticketing
/// system, portal, token endpoints) goes through a client built here, so that each trusts
/// the same CAs and presents the same client certificate.
pub fn http_client(config: &Config) -> Result<crate::http::HttpClient, crate::http::SetupError> {
    crate::http::HttpClient::new(
        config.ca_bundle.as_ref(),
        config.client_identity.as_ref(),
        config.https_proxy.as_ref(),
    )
}

/// Builds the ticket source the configuration asks for.
pub fn from_config(config: &crate::config::Config) -> Result<Box<dyn TicketSource>, String> {
    let client = http_client(config).map_err(|problem| problem.to_string())?;
    if let Some(settings) = &config.portal {
        return Ok(Box::new(portal::Portal::new(
            client,
            settings.clone(),
            config.cache_directory.clone(),
        )));
    }
    let (Some(system), Some(url)) = (config.ticketing_system, config.system_url.clone()) else {
        return Err("TicketingSystem and SystemURL are required".to_string());
    };
    let account = || {
        config
            .connection_account
            .clone()
            .ok_or_else(|| "ConnectionAccountFile is required".to_string())
    };
    match system {
        crate::config::TicketingSystem::ServiceNow => {
            let auth = match (config.auth_method, &config.oauth_client) {
                (crate::config::AuthMethod::Basic, _) => {
                    servicenow::ServiceNowAuth::Basic(account()?)
                }
                (_, Some(client)) => {
                    servicenow::ServiceNowAuth::OAuth(Box::new(servicenow::OAuthSession::new(
                        &url,
                        client.clone(),
                        config.connection_account.clone(),
                        config.cache_directory.clone(),
                    )))
                }
                (method, None) => {
                    return Err(format!(
                        "AuthMethod={} needs ClientID and ClientSecret in ConnectionAccountFile",
                        method.name()
                    ));
                }
            };
            Ok(Box::new(
                servicenow::ServiceNow::new(
                    client,
                    url,
                    auth,
                    servicenow::PersonQuery::from_people(&config.people),
                )
                .reading_sys_id(config.work_notes.is_some())
                .with_ci(config.ci_check.is_some())
                .with_ticket_types(config.ticket_types()),
            ))
        }
        crate::config::TicketingSystem::BmcRemedy => Ok(Box::new(
            remedy::Remedy::new(
                client,
                url,
                account()?,
                config.remedy.clone(),
                config.cache_directory.clone(),
            )
            .with_ci(config.ci_check.is_some())
            .with_ticket_types(config.ticket_types()),
        )),
    }
}
