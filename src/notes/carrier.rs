//! The session record: what the end note needs, carried from `pam_sm_authenticate` to
//! `pam_sm_close_session`.
//!
//! sshd runs authentication, session start and session end on one PAM handle, but with
//! keyboard-interactive authentication it runs `pam_authenticate` in a child process of
//! its own (auth-pam.c's "thread" is a fork) and sends only the PAM environment back to
//! the process that opens and closes the session. Data kept with `pam_set_data` is
//! therefore gone at the session's end under sshd; the PAM environment survives. So the
//! record travels in both: `pam_set_data` for applications that keep one process, and the
//! PAM environment variable [`ENVIRONMENT_NAME`] for sshd (tests/sshd_e2e.rs proves which
//! one sshd delivers).
//!
//! The environment can also be filled by others (pam_env with `user_readenv`, a module
//! earlier in the stack), so the record is sealed: an HMAC-SHA256 over it, keyed by the
//! module's account password, which only root can read. A record that does not verify is
//! ignored (and audited): nobody can make the module write an end note to a ticket of
//! their choosing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::{Value, json};

use super::SessionFacts;
use crate::config::Config;
use crate::ticket::TicketKind;

/// The PAM environment variable (and the session environment's) that holds the record.
pub const ENVIRONMENT_NAME: &str = "TICKET_SESSION";
/// The `pam_set_data` name of the record.
pub const DATA_NAME: &str = "pam_ticket_session_record";
const VERSION: &str = "v1";

/// Why a carried record is not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CarrierError {
    /// Not `v1.<record>.<seal>`, or not the record's fields.
    Malformed,
    /// The seal does not verify: not written by this module with this account.
    BadSeal,
    /// No account password to key the seal with.
    NoKey,
}

impl std::fmt::Display for CarrierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CarrierError::Malformed => "the session record is malformed",
            CarrierError::BadSeal => {
                "the session record's seal does not verify (not written by this module, or the account's password changed since the login)"
            }
            CarrierError::NoKey => "no account password to seal the session record with",
        })
    }
}

fn key(config: &Config) -> Result<hmac::Key, CarrierError> {
    let account = config
        .connection_account
        .as_ref()
        .ok_or(CarrierError::NoKey)?;
    let mut material = zeroize::Zeroizing::new(Vec::new());
    material.extend_from_slice(b"pam_ticket session record\0");
    material.extend_from_slice(account.username.as_bytes());
    material.push(0);
    material.extend_from_slice(account.password.as_bytes());
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &material))
}

/// The sealed record, `v1.<record>.<seal>` in URL-safe base64: one environment value.
pub fn seal(config: &Config, facts: &SessionFacts) -> Result<String, CarrierError> {
    let record = json!({
        "ticket": facts.ticket,
        "kind": facts.kind.audit_name(),
        "record_id": facts.record_id,
        "system": facts.system,
        "user": facts.user,
        "identity": facts.identity,
        "rhost": facts.rhost,
        "host": facts.host,
        "service": facts.service,
        "target": facts.target,
        "checks": facts.checks,
        "reason": facts.reason,
        "started": facts.started,
    });
    let encoded = URL_SAFE_NO_PAD.encode(record.to_string());
    let signed = format!("{VERSION}.{encoded}");
    let tag = hmac::sign(&key(config)?, signed.as_bytes());
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
}

/// The record, if `text` is one this module sealed with this account.
pub fn open(config: &Config, text: &str) -> Result<SessionFacts, CarrierError> {
    let (signed, tag) = text.rsplit_once('.').ok_or(CarrierError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| CarrierError::Malformed)?;
    hmac::verify(&key(config)?, signed.as_bytes(), &tag).map_err(|_| CarrierError::BadSeal)?;
    let encoded = signed
        .strip_prefix(VERSION)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(CarrierError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| CarrierError::Malformed)?;
    let record = crate::json::parse(&bytes).map_err(|_| CarrierError::Malformed)?;
    let text = |name: &str| record.get(name).and_then(Value::as_str).map(str::to_string);
    let required = |name: &str| text(name).ok_or(CarrierError::Malformed);
    let kind_name = required("kind")?;
    let kind = TicketKind::ORDER
        .into_iter()
        .find(|kind| kind.audit_name() == kind_name)
        .ok_or(CarrierError::Malformed)?;
    Ok(SessionFacts {
        ticket: required("ticket")?,
        kind,
        record_id: text("record_id"),
        system: required("system")?,
        user: required("user")?,
        identity: required("identity")?,
        rhost: text("rhost"),
        host: required("host")?,
        service: text("service"),
        target: text("target"),
        checks: record
            .get("checks")
            .and_then(Value::as_array)
            .ok_or(CarrierError::Malformed)?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        reason: text("reason"),
        started: record
            .get("started")
            .and_then(Value::as_i64)
            .ok_or(CarrierError::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(password: &str) -> Config {
        let mut config = crate::config::from_entries(
            Path::new("/etc/test.conf"),
            crate::config::parse_entries(
                "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n",
                Path::new("/etc/test.conf"),
            )
            .expect("entries"),
            Vec::new(),
        )
        .expect("config");
        config.connection_account = Some(
            crate::config::parse_account_text(
                &format!("Username=\"svc\"\nPassword=\"{password}\"\n"),
                Path::new("/etc/account.conf"),
            )
            .expect("account"),
        );
        config
    }

    fn facts() -> SessionFacts {
        SessionFacts {
            ticket: "CHG0030001".to_string(),
            kind: TicketKind::Change,
            record_id: Some("abc123".to_string()),
            system: "ServiceNow".to_string(),
            user: "alice".to_string(),
            identity: "alice".to_string(),
            rhost: None,
            host: "gw1.example.com".to_string(),
            service: Some("sshd".to_string()),
            target: Some("root@db01".to_string()),
            checks: vec!["state Implement".to_string()],
            reason: Some("fix it".to_string()),
            started: 1_764_928_800,
        }
    }

    #[test]
    fn a_sealed_record_opens_to_the_same_facts() {
        let config = config("pw-1");
        let sealed = seal(&config, &facts()).expect("sealed");
        assert!(sealed.starts_with("v1."));
        assert_eq!(open(&config, &sealed), Ok(facts()));
    }

    #[test]
    fn a_forged_altered_or_foreign_record_is_refused() {
        let config = config("pw-1");
        let sealed = seal(&config, &facts()).expect("sealed");
        // Another ticket, with the seal of the first.
        let mut other = facts();
        other.ticket = "CHG0039999".to_string();
        let forged = seal(&config, &other).expect("sealed");
        let (forged_record, _) = forged.rsplit_once('.').expect("three parts");
        let (_, seal_of_first) = sealed.rsplit_once('.').expect("three parts");
        assert_eq!(
            open(&config, &format!("{forged_record}.{seal_of_first}")),
            Err(CarrierError::BadSeal)
        );
        // Sealed with another account password.
        assert_eq!(
            open(&self::config("pw-2"), &sealed),
            Err(CarrierError::BadSeal)
        );
        assert_eq!(open(&config, "no-dots"), Err(CarrierError::Malformed));
        assert_eq!(open(&config, "v1.e30.!!"), Err(CarrierError::Malformed));
    }
}
