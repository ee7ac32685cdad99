//! BMC Remedy (Helix ITSM) through the AR System REST API: a JWT from `/api/jwt/login`,
//! kept in a root-only cache file shared by every sshd process, then one qualified
//! `GET /api/arsys/v1/entry/{form}` per ticket.
//!
//! sshd forks a process per connection, so the token lives in a file under
//! `CacheDirectory`, and a `flock` on a lock file beside it makes sure that a burst of
//! logins causes one `/api/jwt/login`, not one per login. A login waits for that lock for
//! at most half of the time it has left, then logs on without the cache: a process that
//! holds the lock and does not go on must not make every login time out. The token is reused until
//! `RemedyTokenLifetime` has passed, replaced once when the server answers 401, and logged
//! off only when it is replaced (or when it could not be cached at all).

mod forms;
mod support_group;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use self::support_group::{interpret_membership, membership_url};
pub use self::wire::{
    ArMessage, FormSpec, ar_error, fields_url, form_spec, interpret, interpret_created,
    interpret_field_choices, no_such_form, parse_ar_date, qualification, query_url, read_token,
    work_log_entry,
};
use self::wire::{authorization, error_detail};
use super::{
    ChoiceField, KnownChoices, Lookup, LookupError, NoteTarget, PROBE_MEMBER, PROBE_TICKET,
    ProbeLine, TicketSource, bad_response, membership_problem, probe_answer, probe_id, sanitise,
};
use crate::audit::AuditSink;
use crate::config::{BaseUrl, Credentials, RemedySettings, UserRole};
use crate::http::{Body, Deadline, HttpClient, HttpResponse, Method, RetryBudget, percent_encode};
use crate::login::Login;
use crate::secret::Secret;
use crate::ticket::{TicketId, TicketKind};
use crate::token_cache::{FreshToken, Obtained, TokenCache, TokenKind};

/// The most a log-off may add to a login: it is housekeeping, not part of the decision.
const LOGOFF_BUDGET: Duration = Duration::from_secs(2);

pub struct Remedy {
    client: HttpClient,
    base_url: BaseUrl,
    account: Credentials,
    settings: RemedySettings,
    cache: TokenCache,
    /// ValidateConfigurationItem: the ticket query also fetches the form's CI field.
    with_ci: bool,
    /// The types the configuration accepts (TicketTypes): the probe queries their forms.
    ticket_types: Vec<TicketKind>,
}

impl Remedy {
    pub fn new(
        client: HttpClient,
        base_url: BaseUrl,
        account: Credentials,
        settings: RemedySettings,
        cache_directory: PathBuf,
    ) -> Remedy {
        let cache = TokenCache::new(
            cache_directory,
            TokenKind::RemedyJwt,
            &base_url.base,
            &account.username,
            settings.token_lifetime,
        );
        Remedy {
            client,
            base_url,
            account,
            settings,
            cache,
            with_ci: false,
            ticket_types: vec![TicketKind::Incident, TicketKind::Change],
        }
    }

    /// The ticket types accepted (TicketTypes; incidents and changes unless set), whose
    /// forms `pam-ticket check` queries. A form of a type not accepted is never asked
    /// for, so a site without, say, the work order module checks clean.
    pub fn with_ticket_types(mut self, ticket_types: Vec<TicketKind>) -> Remedy {
        self.ticket_types = ticket_types;
        self
    }

    /// Fetches each ticket's configuration item field too (ValidateConfigurationItem).
    pub fn with_ci(mut self, with_ci: bool) -> Remedy {
        self.with_ci = with_ci;
        self
    }

    pub fn query_url(&self, id: &TicketId) -> Result<String, LookupError> {
        let spec = form_spec(&self.settings, id.kind).ok_or_else(|| no_such_form(id.kind))?;
        Ok(query_url(&self.base_url, &spec, id, self.with_ci))
    }

    /// A token to use: the cached one while it is young enough and not the one the server
    /// just rejected, else a new one from a log-on made under the cache lock, so that of
    /// many logins at once only the first logs on ([`TokenCache::obtain`]). A token that
    /// could not be cached is logged off after use.
    fn session(
        &self,
        deadline: Deadline,
        retries: &mut RetryBudget,
        audit: &mut dyn AuditSink,
        rejected: Option<&Secret>,
    ) -> Result<Session, LookupError> {
        self.cache.obtain(deadline, audit, rejected, || {
            Ok(FreshToken {
                token: self.log_on(deadline, retries)?,
                // An AR-JWT says nothing of its life: RemedyTokenLifetime decides.
                expires_in: None,
            })
        })
    }

    /// `POST /api/jwt/login`; the answer's body is the token.
    fn log_on(&self, deadline: Deadline, retries: &mut RetryBudget) -> Result<Secret, LookupError> {
        let Some(password) = self.account.password.as_str() else {
            return Err(LookupError::Misconfigured {
                detail: format!(
                    "the password in {} is not valid UTF-8",
                    self.account.source.display()
                ),
            });
        };
        let form = [
            ("username", self.account.username.as_str()),
            ("password", password),
        ];
        let response = self.client.send_with_retry(
            Method::Post,
            &self.base_url.join("/api/jwt/login"),
            &[("Accept", "text/plain, application/json")],
            &Body::Form(&form),
            deadline,
            retries,
        )?;
        read_token(response)
    }

    /// `POST /api/jwt/logout`, best effort: its outcome changes nothing for a login, and
    /// is returned only for `pam-ticket check` to report.
    fn log_off(&self, token: &Secret, deadline: Deadline) -> Result<(), String> {
        if deadline.remaining().is_none() {
            return Err("no time left before the deadline".to_string());
        }
        let Some(authorization) = authorization(token) else {
            return Err("the token is not valid text".to_string());
        };
        let response = self
            .client
            .send(
                Method::Post,
                &self.base_url.join("/api/jwt/logout"),
                &[("Authorization", authorization.as_str())],
                &Body::Empty,
                deadline.within(LOGOFF_BUDGET),
            )
            .map_err(|error| error.to_string())?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!(
                "HTTP {}{}",
                response.status,
                match error_detail(&response) {
                    detail if detail.is_empty() => String::new(),
                    detail => format!(": {detail}"),
                }
            ))
        }
    }

    fn query(
        &self,
        url: &str,
        token: &Secret,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<HttpResponse, LookupError> {
        let authorization =
            authorization(token).ok_or_else(|| bad_response("the token is not valid text"))?;
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization.as_str()),
        ];
        Ok(self.client.send_with_retry(
            Method::Get,
            url,
            &headers,
            &Body::Empty,
            deadline,
            retries,
        )?)
    }

    /// A GET with a session token: the cached one, renewed once when the server answers
    /// 401; whatever this replaced or could not cache is logged off afterwards.
    fn authenticated_get(
        &self,
        url: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<HttpResponse, LookupError> {
        let mut retries = RetryBudget::for_check();
        let mut session = self.session(deadline, &mut retries, audit, None)?;
        let mut response = self.query(url, &session.token, deadline, &mut retries);
        if matches!(&response, Ok(answer) if answer.status == 401) {
            // The token expired or was revoked on the server: log on again once and retry
            // once. The refused token is not logged off; the server has already dropped it.
            let refused = session;
            match self.session(deadline, &mut retries, audit, Some(&refused.token)) {
                Ok(renewed) => {
                    session = Session {
                        retired: refused.retired,
                        ..renewed
                    };
                    response = self.query(url, &session.token, deadline, &mut retries);
                }
                Err(error) => {
                    self.finish(
                        Session {
                            cached: true,
                            ..refused
                        },
                        deadline,
                    );
                    return Err(error);
                }
            }
        }
        self.finish(session, deadline);
        response
    }

    /// `POST /api/arsys/v1/entry/{form}` with `{"values": {…}}`.
    fn create(
        &self,
        url: &str,
        body: &serde_json::Value,
        token: &Secret,
        deadline: Deadline,
        retries: &mut RetryBudget,
    ) -> Result<HttpResponse, LookupError> {
        let authorization =
            authorization(token).ok_or_else(|| bad_response("the token is not valid text"))?;
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization.as_str()),
        ];
        Ok(self.client.send_with_retry(
            Method::Post,
            url,
            &headers,
            &Body::Json(body),
            deadline,
            retries,
        )?)
    }

    /// Logs off whatever this lookup replaced or could not cache.
    fn finish(&self, session: Session, deadline: Deadline) {
        for token in &session.retired {
            let _ = self.log_off(token, deadline);
        }
        if !session.cached {
            let _ = self.log_off(&session.token, deadline);
        }
    }
}

impl TicketSource for Remedy {
    fn system_name(&self) -> &str {
        "BMCRemedy"
    }

    fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    fn lookup(
        &mut self,
        id: &TicketId,
        _login: &Login,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<Lookup, LookupError> {
        let response = self.authenticated_get(&self.query_url(id)?, deadline, audit);
        let spec = form_spec(&self.settings, id.kind).ok_or_else(|| no_such_form(id.kind))?;
        response.and_then(|answer| interpret(id, &spec, self.with_ci, &answer).map(Lookup::Found))
    }

    /// One query of the support group association form, with the lookup's session (the
    /// cached token: no second log-on).
    fn group_member(
        &mut self,
        identity: &str,
        group: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<bool, LookupError> {
        let url = membership_url(&self.base_url, &self.settings, identity, group)?;
        let response = self.authenticated_get(&url, deadline, audit)?;
        interpret_membership(&self.settings, identity, group, &response)
    }

    /// A new entry on the kind's work-log form (`HPD:WorkLog` for incidents, named by the
    /// Incident Number; `CHG:WorkLog` for changes, named by the change's entry ID that the
    /// lookup read), with the cached token. A 401 (the token expired on the server) gets
    /// one new log-on and one more try: the write's one retry.
    fn write_note(
        &mut self,
        target: &NoteTarget,
        text: &str,
        deadline: Deadline,
        audit: &mut dyn AuditSink,
    ) -> Result<(), LookupError> {
        let (form, body) = work_log_entry(&self.settings, target, text)?;
        let url = self
            .base_url
            .join(&format!("/api/arsys/v1/entry/{}", percent_encode(form)));
        let mut retries = RetryBudget::for_check();
        let mut session = self.session(deadline, &mut retries, audit, None)?;
        let mut response = self.create(&url, &body, &session.token, deadline, &mut retries);
        if matches!(&response, Ok(answer) if answer.status == 401) && !retries.is_spent() {
            let refused = session;
            match self.session(deadline, &mut retries, audit, Some(&refused.token)) {
                Ok(renewed) => {
                    session = Session {
                        retired: refused.retired,
                        ..renewed
                    };
                    response = self.create(
                        &url,
                        &body,
                        &session.token,
                        deadline,
                        &mut RetryBudget::spent(),
                    );
                }
                Err(error) => {
                    self.finish(
                        Session {
                            cached: true,
                            ..refused
                        },
                        deadline,
                    );
                    return Err(error);
                }
            }
        }
        let result = response.and_then(|answer| interpret_created(form, &answer));
        self.finish(session, deadline);
        result
    }

    /// A log-on of its own (never the cached token: a token cached before the password
    /// changed would prove nothing), a query of [`PROBE_TICKET`] on the form of each ticket
    /// type accepted (TicketTypes: so that a misspelt form name shows here, not at a
    /// login), and
    /// a log-off. The token cache is neither read nor written, nor its directory created,
    /// so a check run by hand, perhaps by another user or with another account file, can
    /// never leave a token or a wrongly owned file for the module to trip over. With
    /// AllowedUserRoles=assignment_group, one membership query of the support group form
    /// too, so that a misspelt form or field shows here as well.
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let mut retries = RetryBudget::for_check();
        let token = self.log_on(deadline, &mut retries)?;
        let mut lines = vec![ProbeLine::Ok(format!(
            "logged on as {} (POST /api/jwt/login)",
            sanitise(&self.account.username)
        ))];
        let mut outcome = Ok(());
        // Every type accepted: the configuration gives each its form.
        for kind in self.ticket_types.clone() {
            let id = probe_id(kind);
            let Some(spec) = form_spec(&self.settings, kind) else {
                continue;
            };
            let (form, id_field) = (spec.form, spec.id_field);
            let answer = self
                .query(
                    &query_url(&self.base_url, &spec, &id, false),
                    &token,
                    deadline,
                    &mut retries,
                )
                .and_then(|answer| interpret(&id, &spec, false, &answer))
                .map(Lookup::Found);
            match answer {
                Err(LookupError::NotFound) => lines.push(ProbeLine::Ok(format!(
                    "form {form:?} answered a query on {id_field:?} (no entry {PROBE_TICKET}, as expected)"
                ))),
                other => match probe_answer(other) {
                    Ok(_) => lines.push(ProbeLine::Ok(format!(
                        "form {form:?} answered a query on {id_field:?}"
                    ))),
                    Err(error) => {
                        outcome = Err(error);
                        break;
                    }
                },
            }
        }
        if outcome.is_ok()
            && self
                .settings
                .people
                .roles
                .contains(&UserRole::AssignmentGroup)
        {
            let form = &self.settings.people.support_group_form;
            let answer = membership_url(&self.base_url, &self.settings, PROBE_MEMBER, PROBE_TICKET)
                .and_then(|url| self.query(&url, &token, deadline, &mut retries))
                .and_then(|answer| {
                    interpret_membership(&self.settings, PROBE_MEMBER, PROBE_TICKET, &answer)
                });
            lines.push(match answer {
                Ok(_) => ProbeLine::Ok(format!(
                    "form {form:?} answered a membership query (AllowedUserRoles=assignment_group)"
                )),
                Err(error) => {
                    ProbeLine::Problem(membership_problem(&format!("form {form:?}"), &error))
                }
            });
        }
        let logged_off = self.log_off(&token, deadline);
        outcome?;
        lines.push(match logged_off {
            Ok(()) => ProbeLine::Ok("logged off (POST /api/jwt/logout)".to_string()),
            Err(problem) => ProbeLine::Problem(format!(
                "the log-off failed ({problem}); replaced tokens would stay alive on the server until they expire"
            )),
        });
        lines.push(ProbeLine::Ok(format!(
            "token cache in {} neither read nor written",
            self.cache.directory().display()
        )));
        Ok(lines)
    }

    fn known_choices(&mut self, fields: &[ChoiceField], deadline: Deadline) -> Vec<KnownChoices> {
        self.read_choices(fields, deadline)
    }

    fn token_caches(&self) -> Vec<&TokenCache> {
        vec![&self.cache]
    }

    /// The work-log forms' field definitions, read with a log-on of its own: a form that
    /// does not exist (a misspelt Remedy*WorkLogForm) shows here. Whether the account may
    /// create entries on them cannot be told without creating one.
    fn write_access(&mut self, deadline: Deadline) -> Vec<ProbeLine> {
        let mut retries = RetryBudget::for_check();
        let token = match self.log_on(deadline, &mut retries) {
            Ok(token) => token,
            Err(error) => {
                return vec![ProbeLine::Problem(format!(
                    "work notes: could not log on to read the work-log forms: {}",
                    crate::backend::error_text(&error)
                ))];
            }
        };
        let mut lines = Vec::new();
        for form in [
            self.settings.incident_work_log_form.clone(),
            self.settings.change_work_log_form.clone(),
        ] {
            let answer = self.query(
                &fields_url(&self.base_url, &form),
                &token,
                deadline,
                &mut retries,
            );
            lines.push(match answer {
                Ok(response) if response.status == 200 => ProbeLine::Ok(format!(
                    "work notes: form {form:?} exists; whether the account may create entries on it cannot be told without writing one (a failed note is logged at warning)"
                )),
                Ok(response) => ProbeLine::Problem(format!(
                    "work notes: form {form:?} cannot be read (HTTP {}{}); check the Remedy*WorkLogForm settings and the account's permissions",
                    response.status,
                    match error_detail(&response) {
                        detail if detail.is_empty() => String::new(),
                        detail => format!(": {detail}"),
                    }
                )),
                Err(error) => ProbeLine::Problem(format!(
                    "work notes: form {form:?} could not be read: {}", crate::backend::error_text(&error)
                )),
            });
        }
        let _ = self.log_off(&token, deadline);
        lines
    }
}

impl Remedy {
    /// The form and field that hold a choice field's choices, for the kinds Remedy has.
    fn choice_field(&self, field: ChoiceField) -> Option<(&str, &str)> {
        match field {
            ChoiceField::State(kind) => {
                form_spec(&self.settings, kind).map(|spec| (spec.form, spec.status_field))
            }
            ChoiceField::Approval(kind) => form_spec(&self.settings, kind)
                .and_then(|spec| spec.approval_field.map(|field| (spec.form, field))),
        }
    }

    /// For `pam-ticket check`, like [`TicketSource::probe`]: a log-on of its own (the
    /// token cache is left alone), each form's field definitions read once, a log-off.
    fn read_choices(&self, fields: &[ChoiceField], deadline: Deadline) -> Vec<KnownChoices> {
        let mut retries = RetryBudget::for_check();
        let token = match self.log_on(deadline, &mut retries) {
            Ok(token) => token,
            Err(error) => {
                return fields
                    .iter()
                    .map(|field| (*field, Err(error.clone())))
                    .collect();
            }
        };
        let mut definitions: Vec<(&str, Result<HttpResponse, LookupError>)> = Vec::new();
        let mut known = Vec::new();
        for field in fields {
            let Some((form, name)) = self.choice_field(*field) else {
                known.push((*field, Err(no_such_form(field.kind()))));
                continue;
            };
            if !definitions.iter().any(|(read, _)| *read == form) {
                let answer = self.query(
                    &fields_url(&self.base_url, form),
                    &token,
                    deadline,
                    &mut retries,
                );
                definitions.push((form, answer));
            }
            let choices = definitions
                .iter()
                .find(|(read, _)| *read == form)
                .map_or_else(
                    || Err(bad_response("the field definitions were not read")),
                    |(_, answer)| match answer {
                        Ok(response) => interpret_field_choices(response, form, name),
                        Err(error) => Err(error.clone()),
                    },
                );
            known.push((*field, choices));
        }
        let _ = self.log_off(&token, deadline);
        known
    }
}

/// The ticket type a choice field belongs to.
/// A token in hand for one lookup: not cached means logged off after use, and retired
/// tokens (replaced while perhaps still alive) are logged off too.
type Session = Obtained;

#[cfg(test)]
mod tests;
