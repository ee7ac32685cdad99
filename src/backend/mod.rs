//! The seam between the login flow and the ticketing systems: one trait, one error enum.
//! Whether a failure is "the ticket is not valid" or "we could not ask" is decided here,
//! by the variant a backend returns, never guessed later from a message.

pub mod portal;
pub mod remedy;
pub mod servicenow;

use std::fmt;

use crate::http::{Deadline, TransportError};
use crate::login::Login;
use crate::ticket::{Ticket, TicketId};

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
}

/// Text from a server, made safe to show and log: control characters removed, length
/// bounded.
pub fn sanitise(text: &str) -> String {
    const LIMIT: usize = 300;
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.chars().count() > LIMIT {
        let truncated: String = cleaned.chars().take(LIMIT).collect();
        format!("{truncated}…")
    } else {
        cleaned
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_strips_control_characters() {
        assert_eq!(
            sanitise("bad\x1b[31m red\r\nline\0end"),
            "bad [31m red line end"
        );
        assert_eq!(sanitise(&"x".repeat(400)).chars().count(), 301);
    }
}
