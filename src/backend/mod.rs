//! The seam between the login flow and the ticketing systems: one trait, one error enum.
//! Whether a failure is "the ticket is not valid" or "we could not ask" is decided here,
//! by the variant a backend returns, never guessed later from a message.

pub mod portal;
pub mod remedy;
pub mod servicenow;

use std::fmt;

use crate::http::{Deadline, HttpResponse, TransportError, retry_after};
use crate::login::Login;
use crate::ticket::{Ticket, TicketId, TicketKind};

/// The ticket `pam-ticket check` asks for: valid in a query, absent from any real system.
pub const PROBE_TICKET: &str = "PAMTICKETCHECK0";

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The ticket record itself: the gateway's own policy decides.
    Found(Ticket),
    /// A portal validated the ticket on the gateway's behalf and accepted it.
    AcceptedByPortal { detail: String },
}

/// Why a lookup gave no ticket.
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
    /// The system could not be asked: FailMode decides.
    Unavailable(Unavailable),
    /// The server's certificate did not verify. Possibly an attack: denied in both fail
    /// modes, never let through as failsafe.
    UntrustedServer { detail: String },
    /// The module itself is set up wrongly (e.g. no CA bundle): a service error.
    Misconfigured { detail: String },
}

/// The ways in which a ticketing system can be unreachable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    Transport(TransportError),
    /// HTTP 5xx.
    ServerError {
        status: u16,
        detail: String,
    },
    /// HTTP 429; `retry_after` is what the server asked for.
    RateLimited {
        retry_after: Option<u64>,
    },
    /// HTTP 401/403 for the module's own account.
    AccountRejected {
        status: u16,
        detail: String,
    },
    /// A 2xx answer that is not what the API defines.
    BadResponse {
        detail: String,
    },
    /// Any other unexpected HTTP status.
    UnexpectedStatus {
        status: u16,
        detail: String,
    },
}

impl Unavailable {
    /// How every backend reads an error status the API does not give a meaning of its
    /// own: 401/403 is the module's own account refused, 429 rate limiting, 5xx a server
    /// error, anything else unexpected. `detail` is the backend's sanitised error text.
    pub fn from_status(response: &HttpResponse, detail: String) -> Unavailable {
        match response.status {
            status @ (401 | 403) => Unavailable::AccountRejected { status, detail },
            429 => Unavailable::RateLimited {
                retry_after: retry_after(response),
            },
            status if status >= 500 => Unavailable::ServerError { status, detail },
            status => Unavailable::UnexpectedStatus { status, detail },
        }
    }

    /// Whether this is what FailMode=safe exists for: the system is down, overloaded, or
    /// refuses the module's own account (step 9 of the login flow). An unexpected status
    /// or an answer that is not the API's is not: it comes from the request or the
    /// configuration, so letting logins through would last as long as the mistake.
    pub fn is_outage(&self) -> bool {
        match self {
            Unavailable::Transport(_)
            | Unavailable::ServerError { .. }
            | Unavailable::RateLimited { .. }
            | Unavailable::AccountRejected { .. } => true,
            Unavailable::BadResponse { .. } | Unavailable::UnexpectedStatus { .. } => false,
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Transport(error) => write!(f, "{error}"),
            Unavailable::ServerError { status, detail } => {
                write!(f, "server error HTTP {status}")?;
                write_detail(f, detail)
            }
            Unavailable::RateLimited {
                retry_after: Some(seconds),
            } => {
                write!(f, "rate limited (HTTP 429, Retry-After {seconds}s)")
            }
            Unavailable::RateLimited { retry_after: None } => write!(f, "rate limited (HTTP 429)"),
            Unavailable::AccountRejected { status, detail } => {
                write!(f, "the module's account was rejected (HTTP {status})")?;
                write_detail(f, detail)
            }
            Unavailable::BadResponse { detail } => write!(f, "unexpected answer: {detail}"),
            Unavailable::UnexpectedStatus { status, detail } => {
                write!(f, "unexpected HTTP {status}")?;
                write_detail(f, detail)
            }
        }
    }
}

fn write_detail(f: &mut fmt::Formatter<'_>, detail: &str) -> fmt::Result {
    if detail.is_empty() {
        Ok(())
    } else {
        write!(f, ": {detail}")
    }
}

impl From<TransportError> for LookupError {
    fn from(error: TransportError) -> LookupError {
        match error {
            TransportError::UntrustedCertificate(detail) => LookupError::UntrustedServer { detail },
            other => LookupError::Unavailable(Unavailable::Transport(other)),
        }
    }
}

/// A ticketing system (or the portal in front of one).
pub trait TicketSource {
    /// The name written to the audit and exported as TICKETING_SYSTEM.
    fn system_name(&self) -> &str;

    /// Looks one ticket up. Every request it makes must finish before `deadline`.
    fn lookup(
        &mut self,
        id: &TicketId,
        login: &Login,
        deadline: Deadline,
    ) -> Result<Lookup, LookupError>;

    /// For `pam-ticket check`: one exchange that proves that the account and the TLS trust
    /// work, and the lines that say what it proved. It must log on afresh (a cached
    /// session proves nothing about the password), must release nothing (no password
    /// retrieval), and must leave nothing behind that a login would use.
    ///
    /// The default looks up [`PROBE_TICKET`], which fits a source that authenticates every
    /// request and only reads; a source with sessions, a cache or side effects overrides it.
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let login = Login::new("pam-ticket-check", None, Some("pam-ticket".to_string()));
        let found = probe_answer(self.lookup(&probe_id(TicketKind::Incident), &login, deadline))?;
        Ok(vec![ProbeLine::Ok(found)])
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

/// Builds the ticket source the configuration asks for.
pub fn from_config(config: &crate::config::Config) -> Result<Box<dyn TicketSource>, String> {
    let client =
        crate::http::HttpClient::new(config.ca_file.as_deref(), config.https_proxy.as_ref())
            .map_err(|problem| problem.to_string())?;
    if let Some(settings) = &config.portal {
        return Ok(Box::new(portal::Portal::new(client, settings.clone())));
    }
    let (Some(system), Some(url), Some(account)) = (
        config.ticketing_system,
        config.system_url.clone(),
        config.connection_account.clone(),
    ) else {
        return Err(
            "TicketingSystem, SystemURL and ConnectionAccountFile are required".to_string(),
        );
    };
    match system {
        crate::config::TicketingSystem::ServiceNow => {
            Ok(Box::new(servicenow::ServiceNow::new(client, url, account)))
        }
        crate::config::TicketingSystem::BmcRemedy => Ok(Box::new(remedy::Remedy::new(
            client,
            url,
            account,
            config.remedy.clone(),
            config.cache_directory.clone(),
        ))),
    }
}
