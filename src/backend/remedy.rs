//! BMC Remedy (Helix ITSM) through the AR System REST API: a JWT from `/api/jwt/login`,
//! kept in a root-only cache file shared by every sshd process, then one qualified
//! `GET /api/arsys/v1/entry/{form}` per ticket.
//!
//! sshd forks a process per connection, so the token lives in a file under
//! `CacheDirectory`, and a `flock` on a lock file beside it makes sure that a burst of
//! logins causes one `/api/jwt/login`, not one per login. The token is reused until
//! `RemedyTokenLifetime` has passed, replaced once when the server answers 401, and logged
//! off only when it is replaced (or when it could not be cached at all).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    Lookup, LookupError, Outage, PROBE_TICKET, ProbeLine, TicketSource, bad_response, probe_answer,
    probe_id, sanitise, status_error,
};
use crate::config::{BaseUrl, Credentials, RemedySettings};
use crate::http::percent_encode;
use crate::http::{Body, Deadline, HttpClient, HttpResponse, Method};
use crate::login::Login;
use crate::secret::{Secret, SecretText, secret_text};
use crate::ticket::{Choice, Ticket, TicketId, TicketKind};

/// The longest token accepted from the server; AR JWTs are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8192;
/// How long a login waits between attempts to take the cache lock.
const LOCK_POLL: Duration = Duration::from_millis(10);
/// The most a log-off may add to a login: it is housekeeping, not part of the decision.
const LOGOFF_BUDGET: Duration = Duration::from_secs(2);
/// AR System message numbers the module reacts to.
const ARERR_ENTRY_DOES_NOT_EXIST: i64 = 302;
const ARERR_FORM_DOES_NOT_EXIST: i64 = 303;
const ARERR_AUTHENTICATION_FAILED: i64 = 623;

pub struct Remedy {
    client: HttpClient,
    base_url: BaseUrl,
    account: Credentials,
    settings: RemedySettings,
    cache: TokenCache,
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
        }
    }

    pub fn query_url(&self, id: &TicketId) -> String {
        query_url(&self.base_url, &self.settings, id)
    }

    /// A token to use: the cached one while it is young enough and not the one the server
    /// just rejected, else a new one from a log-on made under the cache lock, so that of
    /// many logins at once only the first logs on.
    fn session(
        &self,
        deadline: Deadline,
        rejected: Option<&Secret>,
    ) -> Result<Session, LookupError> {
        if let Err(problem) = self.cache.prepare_directory() {
            warn(&format!(
                "Remedy token cache unusable, logging on without it: {problem}"
            ));
            return self.uncached_session(deadline);
        }
        if rejected.is_none()
            && let Ok(cached) = self.cache.read()
            && self.cache.is_fresh(cached.obtained, now_seconds())
        {
            return Ok(Session::cached(cached.token));
        }
        let guard = match self.cache.lock(deadline) {
            Ok(guard) => guard,
            Err(LockError::TimedOut) => {
                return Err(LookupError::Unavailable(Outage::TokenLockTimedOut));
            }
            Err(LockError::Unusable(problem)) => {
                warn(&format!(
                    "Remedy token cache lock unusable, logging on without the cache: {problem}"
                ));
                return self.uncached_session(deadline);
            }
        };
        // Another process may have logged on while this one waited for the lock.
        let mut retired = Vec::new();
        match self.cache.read() {
            Ok(cached) if rejected != Some(&cached.token) => {
                if self.cache.is_fresh(cached.obtained, now_seconds()) {
                    return Ok(Session::cached(cached.token));
                }
                // Aged out here but probably still alive on the server: log it off once
                // it has been replaced.
                retired.push(cached.token);
            }
            // The token the server just refused: nothing to log off.
            Ok(_) => {}
            Err(CacheMiss::Absent) => {}
            Err(CacheMiss::Ignored(problem)) => {
                warn(&format!(
                    "Remedy token cache ignored and rebuilt: {problem}"
                ));
            }
        }
        let token = self.log_on(deadline)?;
        let cached = match self.cache.write(&token, now_seconds()) {
            Ok(()) => true,
            Err(problem) => {
                warn(&format!("Remedy token cache not written: {problem}"));
                false
            }
        };
        drop(guard);
        Ok(Session {
            token,
            cached,
            retired,
        })
    }

    /// A log-on whose token no other process will see, so it is logged off after use.
    fn uncached_session(&self, deadline: Deadline) -> Result<Session, LookupError> {
        Ok(Session {
            token: self.log_on(deadline)?,
            cached: false,
            retired: Vec::new(),
        })
    }

    /// `POST /api/jwt/login`; the answer's body is the token.
    fn log_on(&self, deadline: Deadline) -> Result<Secret, LookupError> {
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
        )?;
        read_token(response)
    }

    /// `POST /api/jwt/logout`, best effort: its outcome changes nothing for a login, and
    /// is returned only for `pam-ticket check` to report.
    fn log_off(&self, token: &Secret, deadline: Deadline) -> Result<(), String> {
        let Some(left) = deadline.remaining() else {
            return Err("no time left before the deadline".to_string());
        };
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
                Deadline::after(left.min(LOGOFF_BUDGET)),
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
    ) -> Result<HttpResponse, LookupError> {
        let authorization =
            authorization(token).ok_or_else(|| bad_response("the token is not valid text"))?;
        let headers = [
            ("Accept", "application/json"),
            ("Authorization", authorization.as_str()),
        ];
        Ok(self
            .client
            .send_with_retry(Method::Get, url, &headers, &Body::Empty, deadline)?)
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

    fn lookup(
        &mut self,
        id: &TicketId,
        _login: &Login,
        deadline: Deadline,
    ) -> Result<Lookup, LookupError> {
        let url = self.query_url(id);
        let mut session = self.session(deadline, None)?;
        let mut response = self.query(&url, &session.token, deadline);
        if matches!(&response, Ok(answer) if answer.status == 401) {
            // The token expired or was revoked on the server: log on again once and retry
            // once. The refused token is not logged off; the server has already dropped it.
            let refused = session;
            match self.session(deadline, Some(&refused.token)) {
                Ok(renewed) => {
                    session = Session {
                        retired: refused.retired,
                        ..renewed
                    };
                    response = self.query(&url, &session.token, deadline);
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
        let (form, id_field, _) = form_for(&self.settings, id.kind);
        let result = response.and_then(|answer| {
            interpret(id, &self.settings, form, id_field, &answer).map(Lookup::Found)
        });
        self.finish(session, deadline);
        result
    }

    /// A log-on of its own (never the cached token: a token cached before the password
    /// changed would prove nothing), a query of [`PROBE_TICKET`] on the incident form and
    /// on the change form (so that a misspelt form name shows here, not at a login), and
    /// a log-off. The token cache is neither read nor written, nor its directory created,
    /// so a check run by hand, perhaps by another user or with another account file, can
    /// never leave a token or a wrongly owned file for the module to trip over.
    fn probe(&mut self, deadline: Deadline) -> Result<Vec<ProbeLine>, LookupError> {
        let token = self.log_on(deadline)?;
        let mut lines = vec![ProbeLine::Ok(format!(
            "logged on as {} (POST /api/jwt/login)",
            sanitise(&self.account.username)
        ))];
        let mut outcome = Ok(());
        for kind in [TicketKind::Incident, TicketKind::Change] {
            let id = probe_id(kind);
            let (form, id_field, _) = form_for(&self.settings, kind);
            let answer = self
                .query(&self.query_url(&id), &token, deadline)
                .and_then(|answer| interpret(&id, &self.settings, form, id_field, &answer))
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
            self.cache.directory.display()
        )));
        Ok(lines)
    }
}

/// A token in hand for one lookup.
struct Session {
    token: Secret,
    /// Whether `token` is in the cache; if not, it is logged off after use.
    cached: bool,
    /// Cached tokens this lookup replaced while they may still be alive: logged off after.
    retired: Vec<Secret>,
}

impl Session {
    fn cached(token: Secret) -> Session {
        Session {
            token,
            cached: true,
            retired: Vec::new(),
        }
    }
}

/// The form, ID field and fields to fetch for a ticket of this kind.
fn form_for(settings: &RemedySettings, kind: TicketKind) -> (&str, &str, Vec<&str>) {
    match kind {
        TicketKind::Incident => {
            let mut fields = vec![
                settings.incident_id_field.as_str(),
                settings.incident_status_field.as_str(),
            ];
            fields.extend(
                settings
                    .incident_requester_fields
                    .iter()
                    .map(String::as_str),
            );
            (
                settings.incident_form.as_str(),
                settings.incident_id_field.as_str(),
                fields,
            )
        }
        TicketKind::Change => {
            let mut fields = vec![
                settings.change_id_field.as_str(),
                settings.change_status_field.as_str(),
                settings.change_approval_field.as_str(),
                settings.change_start_field.as_str(),
                settings.change_end_field.as_str(),
            ];
            fields.extend(settings.change_requester_fields.iter().map(String::as_str));
            (
                settings.change_form.as_str(),
                settings.change_id_field.as_str(),
                fields,
            )
        }
    }
}

/// `GET {SystemURL}/api/arsys/v1/entry/{form}?q=…&fields=values(…)&limit=2`, the form name
/// and every parameter percent-encoded. `limit=2` is enough to tell "exactly one" from
/// "more than one".
pub fn query_url(base_url: &BaseUrl, settings: &RemedySettings, id: &TicketId) -> String {
    let (form, id_field, fields) = form_for(settings, id.kind);
    let mut unique: Vec<&str> = Vec::new();
    for field in fields {
        if !unique.contains(&field) {
            unique.push(field);
        }
    }
    format!(
        "{}?q={}&fields={}&limit=2",
        base_url.join(&format!("/api/arsys/v1/entry/{}", percent_encode(form))),
        percent_encode(&qualification(id_field, &id.text)),
        percent_encode(&format!("values({})", unique.join(","))),
    )
}

fn warn(line: &str) {
    crate::audit::syslog_line(crate::audit::Decision::Error, line);
}

/// `AR-JWT <token>` in a buffer wiped on drop, or `None` when the token is not text.
fn authorization(token: &Secret) -> Option<SecretText> {
    let token = token.as_str()?;
    let mut header = secret_text("AR-JWT ".len() + token.len());
    header.push_str("AR-JWT ");
    header.push_str(token);
    Some(header)
}

/// `'<field>' = "<value>"`: the AR System's quoting, a `'` doubled inside a field name and a
/// `"` doubled inside a value. The ID has already passed the charset check; the quoting is
/// done anyway so that the qualification is right whatever reaches it.
pub fn qualification(field: &str, value: &str) -> String {
    format!(
        "'{}' = \"{}\"",
        field.replace('\'', "''"),
        value.replace('"', "\"\"")
    )
}

/// One message of an AR System error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArMessage {
    pub number: Option<i64>,
    pub text: String,
}

impl ArMessage {
    /// `ARERR 623 Authentication failed`, for logs; the text is sanitised.
    pub fn describe(&self) -> String {
        match self.number {
            Some(number) => format!("ARERR {number} {}", self.text),
            None => self.text.clone(),
        }
        .trim()
        .to_string()
    }
}

/// The first message of an AR error body (`[{"messageType","messageText","messageNumber",
/// "messageAppendedText"}]`), preferring one of type ERROR. The appended text is left out:
/// it may hold server internals and adds nothing to the decision.
pub fn ar_error(body: &[u8]) -> Option<ArMessage> {
    let document = crate::json::parse(body).ok()?;
    let messages = document.as_array()?;
    let message = messages
        .iter()
        .find(|message| message.get("messageType").and_then(Value::as_str) == Some("ERROR"))
        .or_else(|| messages.first())?;
    let number = message.get("messageNumber").and_then(|number| {
        number
            .as_i64()
            .or_else(|| number.as_str().and_then(|text| text.trim().parse().ok()))
    });
    let text = sanitise(
        message
            .get("messageText")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    Some(ArMessage { number, text })
}

fn error_detail(response: &HttpResponse) -> String {
    ar_error(&response.body)
        .map(|message| message.describe())
        .unwrap_or_default()
}

/// The token from a log-on answer, or why there is none. A refused log-on (401/403, or
/// ARERR 623 whatever the status) is the module's own account being refused: denied in
/// both fail modes, never "ticket invalid" and never an outage. The answer is taken over
/// so that its body, the token, is wiped with it.
pub fn read_token(response: HttpResponse) -> Result<Secret, LookupError> {
    if response.status != 200 {
        let message = ar_error(&response.body);
        if let Some(message) = message
            .as_ref()
            .filter(|message| message.number == Some(ARERR_AUTHENTICATION_FAILED))
        {
            return Err(LookupError::AccountRefused {
                status: response.status,
                detail: message.describe(),
            });
        }
        return Err(status_error(&response, error_detail(&response)));
    }
    let body = Secret::new(response.body);
    let token = body.as_bytes().trim_ascii();
    if token.is_empty()
        || token.len() > MAX_TOKEN_BYTES
        || !token.iter().all(|byte| byte.is_ascii_graphic())
    {
        return Err(bad_response("the log-on answer is not a token"));
    }
    Ok(Secret::new(token.to_vec()))
}

/// Turns the answer to an entry query into a ticket or an error.
pub fn interpret(
    id: &TicketId,
    settings: &RemedySettings,
    form: &str,
    id_field: &str,
    response: &HttpResponse,
) -> Result<Ticket, LookupError> {
    if response.status != 200 {
        let message = ar_error(&response.body);
        match message.as_ref().and_then(|message| message.number) {
            Some(ARERR_ENTRY_DOES_NOT_EXIST) => return Err(LookupError::NotFound),
            Some(ARERR_FORM_DOES_NOT_EXIST) => {
                return Err(LookupError::Misconfigured {
                    detail: format!(
                        "Remedy form {form:?} does not exist ({}); check the Remedy*Form settings",
                        message
                            .map(|message| message.describe())
                            .unwrap_or_default()
                    ),
                });
            }
            _ => {}
        }
        return Err(status_error(response, error_detail(response)));
    }
    let bad = bad_response;
    // A duplicate key anywhere (two "Status"es, two "entries") makes the answer unreadable.
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad(&problem.to_string()))?;
    let entries = document
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no entries list"))?;
    let values = match entries.as_slice() {
        [] => return Err(LookupError::NotFound),
        [entry] => entry
            .get("values")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("an entry without values"))?,
        more => {
            return Err(LookupError::Ambiguous {
                records: more.len(),
            });
        }
    };
    // The qualification asked for exactly this ID; an entry with another one means the
    // query did not mean what was sent, so nothing in it is trusted.
    if values.get(id_field).and_then(Value::as_str) != Some(id.text.as_str()) {
        return Err(LookupError::Ambiguous { records: 1 });
    }
    // Fields as the server sent them: choices and requesters are matched raw (a control
    // character in them is a mismatch) and sanitised only where they are shown. Only
    // spaces around a value are dropped; an all-space value counts as absent.
    let text = |field: &str| {
        values
            .get(field)
            .and_then(Value::as_str)
            .map(|text| text.trim_matches(' '))
            .filter(|text| !text.is_empty())
    };
    // Remedy returns selection fields as their labels: label and stored value are one.
    let choice = |field: &str| text(field).map(|label| Choice::new(label, label));
    let requesters = |fields: &[String]| {
        fields
            .iter()
            .filter_map(|field| text(field))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    Ok(match id.kind {
        TicketKind::Incident => Ticket {
            id: id.text.clone(),
            kind: id.kind,
            state: choice(&settings.incident_status_field),
            approval: None,
            planned_start: None,
            planned_end: None,
            requesters: requesters(&settings.incident_requester_fields),
        },
        TicketKind::Change => Ticket {
            id: id.text.clone(),
            kind: id.kind,
            state: choice(&settings.change_status_field),
            approval: choice(&settings.change_approval_field),
            planned_start: text(&settings.change_start_field).and_then(parse_ar_date),
            planned_end: text(&settings.change_end_field).and_then(parse_ar_date),
            requesters: requesters(&settings.change_requester_fields),
        },
    })
}

/// The REST API's date-time: `2026-11-30T10:00:00.000+0000` (ISO 8601 with milliseconds
/// and an offset). A value that does not parse counts as missing, which fails the window
/// check rather than passing it.
pub fn parse_ar_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The token cache: one file per (SystemURL, account) under the cache directory, readable
/// by root alone, replaced atomically, and a lock file beside it.
pub struct TokenCache {
    directory: PathBuf,
    token_path: PathBuf,
    lock_path: PathBuf,
    system_url: String,
    username: String,
    lifetime: Duration,
}

/// A token read back from the cache.
pub struct CachedToken {
    pub token: Secret,
    /// Unix time of the log-on that produced it.
    pub obtained: u64,
}

/// Why the cache gave no token.
#[derive(Debug, PartialEq, Eq)]
pub enum CacheMiss {
    /// No cache file yet.
    Absent,
    /// A file that is not to be trusted or not readable: ignored, and replaced on the next
    /// log-on.
    Ignored(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Another process held the lock until the deadline.
    TimedOut,
    Unusable(String),
}

/// Held while a process logs on and writes the cache; closing the file releases the lock.
pub struct LockGuard {
    _file: File,
}

/// The first line of a cache file; a file that does not start with it is not ours.
const CACHE_MAGIC: &str = "pam_ticket remedy token cache 1";

impl TokenCache {
    pub fn new(
        directory: PathBuf,
        system_url: &str,
        username: &str,
        lifetime: Duration,
    ) -> TokenCache {
        // The file name carries a digest of SystemURL and account, so two configurations
        // (two pam.d lines, two servers) never share a token.
        let digest = Sha256::digest(format!("{system_url}\n{username}").as_bytes());
        let key: String = digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        TokenCache {
            token_path: directory.join(format!("remedy-{key}.token")),
            lock_path: directory.join(format!("remedy-{key}.lock")),
            directory,
            system_url: system_url.to_string(),
            username: username.to_string(),
            lifetime,
        }
    }

    pub fn token_path(&self) -> &Path {
        &self.token_path
    }

    /// Whether a token obtained at `obtained` may still be used at `now`. A time in the
    /// future (a clock set back, or a forged file) does not count as fresh.
    pub fn is_fresh(&self, obtained: u64, now: u64) -> bool {
        obtained <= now.saturating_add(60) && now.saturating_sub(obtained) < self.lifetime.as_secs()
    }

    /// Creates the directory (0700) when missing, and checks that it is a real directory
    /// owned by this process's user that nobody else may enter.
    pub fn prepare_directory(&self) -> Result<(), String> {
        match fs::DirBuilder::new().mode(0o700).create(&self.directory) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(format!(
                    "cannot create {}: {error}",
                    self.directory.display()
                ));
            }
        }
        let metadata = fs::symlink_metadata(&self.directory)
            .map_err(|error| format!("cannot stat {}: {error}", self.directory.display()))?;
        if !metadata.is_dir() {
            return Err(format!("{} is not a directory", self.directory.display()));
        }
        check_owner_and_mode(&self.directory, &metadata)
    }

    /// Reads the cached token, after checking that the file is a regular file owned by this
    /// process's user (root) with no group or other permission bits, and that it was written
    /// for this SystemURL and account.
    pub fn read(&self) -> Result<CachedToken, CacheMiss> {
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&self.token_path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(CacheMiss::Absent);
            }
            Err(error) => {
                return Err(CacheMiss::Ignored(format!(
                    "cannot open {}: {error}",
                    self.token_path.display()
                )));
            }
        };
        let ignored =
            |what: String| CacheMiss::Ignored(format!("{}: {what}", self.token_path.display()));
        let metadata = file
            .metadata()
            .map_err(|error| ignored(format!("cannot stat: {error}")))?;
        if !metadata.is_file() {
            return Err(ignored("not a regular file".to_string()));
        }
        check_owner_and_mode(&self.token_path, &metadata).map_err(CacheMiss::Ignored)?;
        if metadata.len() > (MAX_TOKEN_BYTES + 4096) as u64 {
            return Err(ignored("too large".to_string()));
        }
        // Sized from the file (checked above to be small), so that reading never moves the
        // buffer and leaves a copy of the token behind.
        let raw = Secret::read_from(&mut file, metadata.len() as usize)
            .map_err(|error| ignored(format!("cannot read: {error}")))?;
        self.parse(raw.as_bytes())
            .ok_or_else(|| ignored("not a valid cache file".to_string()))
    }

    fn parse(&self, raw: &[u8]) -> Option<CachedToken> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut lines = text.split('\n');
        if lines.next()? != CACHE_MAGIC {
            return None;
        }
        let mut take =
            |name: &str| -> Option<&str> { lines.next()?.strip_prefix(name)?.strip_prefix('=') };
        if take("system_url")? != self.system_url || take("username")? != self.username {
            return None;
        }
        let obtained: u64 = take("obtained")?.parse().ok()?;
        let token = take("token")?.as_bytes();
        if token.is_empty()
            || token.len() > MAX_TOKEN_BYTES
            || !token.iter().all(|byte| byte.is_ascii_graphic())
        {
            return None;
        }
        Some(CachedToken {
            token: Secret::new(token.to_vec()),
            obtained,
        })
    }

    /// Writes the token: a new 0600 file beside the cache file, then `rename` over it, so
    /// a reader sees the old file or the new one, never half of one. A wrongly owned or
    /// corrupt file is replaced the same way.
    pub fn write(&self, token: &Secret, obtained: u64) -> Result<(), String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let temporary = self.directory.join(format!(
            ".remedy-token.{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let header = format!(
            "{CACHE_MAGIC}\nsystem_url={}\nusername={}\nobtained={obtained}\ntoken=",
            self.system_url, self.username
        );
        // Sized for the whole file before the token goes in: a buffer that grew while it
        // held the token would leave a copy of it behind.
        let mut bytes = Vec::with_capacity(header.len() + token.as_bytes().len() + 1);
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(token.as_bytes());
        bytes.push(b'\n');
        let contents = Secret::new(bytes);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&temporary)
                .map_err(|error| format!("cannot create {}: {error}", temporary.display()))?;
            // The umask can only take bits away; set the mode explicitly all the same.
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|error| format!("cannot chmod {}: {error}", temporary.display()))?;
            file.write_all(contents.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
            fs::rename(&temporary, &self.token_path).map_err(|error| {
                format!(
                    "cannot rename {} to {}: {error}",
                    temporary.display(),
                    self.token_path.display()
                )
            })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }

    /// Takes the lock, polling a non-blocking `flock` so that the wait ends at the
    /// deadline (a blocking `flock` could outlive it).
    pub fn lock(&self, deadline: Deadline) -> Result<LockGuard, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&self.lock_path)
            .map_err(|error| {
                LockError::Unusable(format!("cannot open {}: {error}", self.lock_path.display()))
            })?;
        let metadata = file.metadata().map_err(|error| {
            LockError::Unusable(format!("cannot stat {}: {error}", self.lock_path.display()))
        })?;
        if !metadata.is_file() {
            return Err(LockError::Unusable(format!(
                "{} is not a regular file",
                self.lock_path.display()
            )));
        }
        check_owner_and_mode(&self.lock_path, &metadata).map_err(LockError::Unusable)?;
        loop {
            // SAFETY: `file` is an open descriptor owned by this function for the call.
            let status = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if status == 0 {
                return Ok(LockGuard { _file: file });
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(code) if code == libc::EWOULDBLOCK || code == libc::EINTR => {}
                _ => {
                    return Err(LockError::Unusable(format!(
                        "cannot lock {}: {error}",
                        self.lock_path.display()
                    )));
                }
            }
            match deadline.remaining() {
                Some(left) => std::thread::sleep(left.min(LOCK_POLL)),
                None => return Err(LockError::TimedOut),
            }
        }
    }
}

/// A cache path must belong to the user this process runs as (root under sshd) and be
/// closed to group and others; anything else may have been planted.
fn check_owner_and_mode(path: &Path, metadata: &fs::Metadata) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if metadata.uid() != euid {
        return Err(format!(
            "{} is owned by uid {}, not {euid}",
            path.display(),
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o077 != 0 {
        return Err(format!(
            "{} has mode {:04o}; group and others must have no access",
            path.display(),
            metadata.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BadAnswer;
    use serde_json::json;

    fn settings() -> RemedySettings {
        RemedySettings {
            incident_form: "HPD:Help Desk".to_string(),
            incident_id_field: "Incident Number".to_string(),
            incident_status_field: "Status".to_string(),
            incident_requester_fields: vec![
                "Customer Login ID".to_string(),
                "Submitter".to_string(),
            ],
            change_form: "CHG:Infrastructure Change".to_string(),
            change_id_field: "Infrastructure Change ID".to_string(),
            change_status_field: "Change Request Status".to_string(),
            change_approval_field: "Approval Status".to_string(),
            change_start_field: "Scheduled Start Date".to_string(),
            change_end_field: "Scheduled End Date".to_string(),
            change_requester_fields: vec!["Requested By".to_string(), "Submitter".to_string()],
            token_lifetime: Duration::from_secs(3300),
        }
    }

    fn id(text: &str, kind: TicketKind) -> TicketId {
        TicketId {
            text: text.to_string(),
            kind,
        }
    }

    fn response(status: u16, body: &Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    fn judge(ticket: &TicketId, answer: &HttpResponse) -> Result<Ticket, LookupError> {
        let settings = settings();
        let (form, id_field, _) = form_for(&settings, ticket.kind);
        interpret(ticket, &settings, form, id_field, answer)
    }

    fn ar_body(number: i64, text: &str) -> Value {
        json!([{"messageType": "ERROR", "messageText": text, "messageNumber": number,
                "messageAppendedText": "secret internals"}])
    }

    #[test]
    fn qualification_quotes_field_names_and_values() {
        assert_eq!(
            qualification("Incident Number", "INC000000000001"),
            r#"'Incident Number' = "INC000000000001""#
        );
        assert_eq!(
            qualification("O'Brien's ID", "x"),
            r#"'O''Brien''s ID' = "x""#
        );
        // An injected qualification stays inside one string literal.
        assert_eq!(
            qualification("Incident Number", r#"X" OR 'Status' != "none"#),
            r#"'Incident Number' = "X"" OR 'Status' != ""none""#
        );
    }

    #[test]
    fn query_url_encodes_form_qualification_and_fields() {
        let base =
            crate::config::parse_https_url("https://remedy.example.com:8443/").expect("valid URL");
        let url = query_url(
            &base,
            &settings(),
            &id("INC000000000001", TicketKind::Incident),
        );
        assert_eq!(
            url,
            "https://remedy.example.com:8443/api/arsys/v1/entry/HPD%3AHelp%20Desk\
             ?q=%27Incident%20Number%27%20%3D%20%22INC000000000001%22\
             &fields=values%28Incident%20Number%2CStatus%2CCustomer%20Login%20ID%2CSubmitter%29\
             &limit=2"
        );
        let url = query_url(
            &base,
            &settings(),
            &id("CRQ000000000001", TicketKind::Change),
        );
        assert!(
            url.contains("/entry/CHG%3AInfrastructure%20Change?"),
            "{url}"
        );
        // Submitter is a requester field once, even though both lists could share it.
        assert!(url.contains("Requested%20By%2CSubmitter%29"), "{url}");
    }

    #[test]
    fn reads_an_incident() {
        let body = json!({"entries": [{"values": {
            "Incident Number": "INC000000000001", "Status": "In Progress",
            "Customer Login ID": "alice", "Submitter": null
        }, "_links": {}}], "_links": {}});
        let ticket = judge(
            &id("INC000000000001", TicketKind::Incident),
            &response(200, &body),
        )
        .expect("ticket");
        assert_eq!(
            ticket.state,
            Some(Choice::new("In Progress", "In Progress"))
        );
        assert_eq!(ticket.approval, None);
        assert_eq!(ticket.requesters, vec!["alice".to_string()]);
    }

    #[test]
    fn reads_a_change_with_dates_and_nulls() {
        let body = json!({"entries": [{"values": {
            "Infrastructure Change ID": "CRQ000000000001",
            "Change Request Status": "Implementation In Progress",
            "Approval Status": "Approved",
            "Scheduled Start Date": "2026-11-30T10:00:00.000+0000",
            "Scheduled End Date": "2026-11-30T14:00:00.000+0200",
            "Requested By": "alice", "Submitter": "carol\u{1b}[31m"
        }}]});
        let ticket = judge(
            &id("CRQ000000000001", TicketKind::Change),
            &response(200, &body),
        )
        .expect("ticket");
        assert_eq!(ticket.approval, Some(Choice::new("Approved", "Approved")));
        assert_eq!(
            ticket.planned_start.map(|date| date.to_rfc3339()),
            Some("2026-11-30T10:00:00+00:00".to_string())
        );
        assert_eq!(
            ticket.planned_end.map(|date| date.to_rfc3339()),
            Some("2026-11-30T12:00:00+00:00".to_string())
        );
        // Kept as sent: matched raw (and never matching with the escape in it), sanitised
        // only where shown.
        assert_eq!(
            ticket.requesters,
            vec!["alice".to_string(), "carol\u{1b}[31m".to_string()]
        );

        let body = json!({"entries": [{"values": {
            "Infrastructure Change ID": "CRQ000000000006", "Change Request Status": "Scheduled",
            "Approval Status": null, "Scheduled Start Date": null,
            "Scheduled End Date": "not a date", "Requested By": "alice"
        }}]});
        let ticket = judge(
            &id("CRQ000000000006", TicketKind::Change),
            &response(200, &body),
        )
        .expect("ticket");
        assert_eq!(ticket.approval, None);
        assert_eq!(ticket.planned_start, None);
        assert_eq!(ticket.planned_end, None);
    }

    #[test]
    fn anything_but_exactly_the_ticket_is_refused() {
        let incident = id("INC000000000001", TicketKind::Incident);
        assert_eq!(
            judge(&incident, &response(200, &json!({"entries": []}))),
            Err(LookupError::NotFound)
        );
        let two = json!({"entries": [
            {"values": {"Incident Number": "INC000000000001"}},
            {"values": {"Incident Number": "INC000000000002"}}]});
        assert_eq!(
            judge(&incident, &response(200, &two)),
            Err(LookupError::Ambiguous { records: 2 })
        );
        let other = json!({"entries": [{"values": {"Incident Number": "INC000000000002"}}]});
        assert_eq!(
            judge(&incident, &response(200, &other)),
            Err(LookupError::Ambiguous { records: 1 })
        );
        let lower = json!({"entries": [{"values": {"Incident Number": "inc000000000001"}}]});
        assert_eq!(
            judge(&incident, &response(200, &lower)),
            Err(LookupError::Ambiguous { records: 1 })
        );
    }

    #[test]
    fn error_bodies_decide_between_not_found_unavailable_and_misconfigured() {
        let incident = id("INC000000000001", TicketKind::Incident);
        assert_eq!(
            judge(
                &incident,
                &response(404, &ar_body(302, "Entry does not exist in database"))
            ),
            Err(LookupError::NotFound)
        );
        assert!(matches!(
            judge(&incident, &response(404, &ar_body(303, "Form does not exist on server"))),
            Err(LookupError::Misconfigured { detail }) if detail.contains("ARERR 303")
        ));
        assert_eq!(
            judge(
                &incident,
                &response(401, &ar_body(623, "Authentication failed"))
            ),
            Err(LookupError::AccountRefused {
                status: 401,
                detail: "ARERR 623 Authentication failed".to_string()
            })
        );
        assert_eq!(
            judge(
                &incident,
                &response(500, &ar_body(90, "Cannot establish a\nnetwork connection"))
            ),
            Err(LookupError::Unavailable(Outage::ServerError {
                status: 500,
                detail: "ARERR 90 Cannot establish a network connection".to_string()
            }))
        );
        assert!(matches!(
            judge(
                &incident,
                &response(400, &ar_body(1587, "bad qualification"))
            ),
            Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                status: 400,
                ..
            }))
        ));
        assert!(matches!(
            judge(
                &incident,
                &HttpResponse {
                    status: 200,
                    headers: vec![],
                    body: b"<html>".to_vec()
                }
            ),
            Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
        ));
    }

    #[test]
    fn a_duplicate_key_is_a_bad_response() {
        let incident = id("INC000000000002", TicketKind::Incident);
        let closed_then_open = r#"{"entries":[{"values":{"Incident Number":"INC000000000002","Status":"Closed","Status":"In Progress"}}]}"#;
        let empty_then_entry = r#"{"entries":[],"entries":[{"values":{"Incident Number":"INC000000000002","Status":"In Progress"}}]}"#;
        for body in [closed_then_open, empty_then_entry] {
            let answer = HttpResponse {
                status: 200,
                headers: vec![],
                body: body.as_bytes().to_vec(),
            };
            assert!(
                matches!(
                    judge(&incident, &answer),
                    Err(LookupError::BadAnswer(BadAnswer::BadResponse { ref detail }))
                        if detail.contains("twice")
                ),
                "{body}"
            );
        }
        // An error body with two message numbers decides nothing: not "not found".
        let two_numbers = r#"[{"messageType":"ERROR","messageNumber":303,"messageNumber":302,"messageText":"x"}]"#;
        assert!(matches!(
            judge(
                &incident,
                &HttpResponse {
                    status: 404,
                    headers: vec![],
                    body: two_numbers.as_bytes().to_vec()
                }
            ),
            Err(LookupError::BadAnswer(BadAnswer::UnexpectedStatus {
                status: 404,
                ..
            }))
        ));
    }

    #[test]
    fn error_messages_leave_out_the_appended_text() {
        let message = ar_error(ar_body(623, "Authentication failed").to_string().as_bytes());
        assert_eq!(
            message.map(|message| message.describe()),
            Some("ARERR 623 Authentication failed".to_string())
        );
        let numbered_as_text =
            json!([{"messageType": "WARNING", "messageText": "w", "messageNumber": "9"}]);
        assert_eq!(
            ar_error(numbered_as_text.to_string().as_bytes()),
            Some(ArMessage {
                number: Some(9),
                text: "w".to_string()
            })
        );
        assert_eq!(ar_error(b"{}"), None);
    }

    #[test]
    fn log_on_answers() {
        let ok = HttpResponse {
            status: 200,
            headers: vec![],
            body: b"eyJhbGciOi.J9x-_y\r\n".to_vec(),
        };
        assert_eq!(
            read_token(ok).ok().as_ref().and_then(Secret::as_str),
            Some("eyJhbGciOi.J9x-_y")
        );
        assert!(matches!(
            read_token(response(401, &ar_body(623, "Authentication failed"))),
            Err(LookupError::AccountRefused { status: 401, detail })
                if detail == "ARERR 623 Authentication failed"
        ));
        // A refused log-on is the account refused, whatever status carries it.
        assert!(matches!(
            read_token(response(500, &ar_body(623, "Authentication failed"))),
            Err(LookupError::AccountRefused { status: 500, .. })
        ));
        assert!(matches!(
            read_token(response(503, &json!([]))),
            Err(LookupError::Unavailable(Outage::ServerError {
                status: 503,
                ..
            }))
        ));
        for body in [&b""[..], b"two words", b"tab\there"] {
            let answer = HttpResponse {
                status: 200,
                headers: vec![],
                body: body.to_vec(),
            };
            assert!(matches!(
                read_token(answer),
                Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
            ));
        }
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Scratch {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "pam_ticket-remedy-{label}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&path).expect("create scratch directory");
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn cache_in(scratch: &Scratch) -> TokenCache {
        TokenCache::new(
            scratch.0.join("cache"),
            "https://remedy.example.com:8443",
            "svc_pam",
            Duration::from_secs(3300),
        )
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).expect("stat").mode() & 0o7777
    }

    #[test]
    fn cache_round_trip_with_root_only_modes() {
        let scratch = Scratch::new("roundtrip");
        let cache = cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        assert_eq!(mode(&scratch.0.join("cache")), 0o700);
        assert_eq!(cache.read().err(), Some(CacheMiss::Absent));
        cache
            .write(&Secret::new(b"tok.en-1".to_vec()), 1_000)
            .expect("write");
        assert_eq!(mode(cache.token_path()), 0o600);
        let cached = cache
            .read()
            .map_err(|miss| format!("{miss:?}"))
            .expect("read");
        assert_eq!(cached.token.as_str(), Some("tok.en-1"));
        assert_eq!(cached.obtained, 1_000);
        // Replaced atomically: no temporary file is left behind.
        let names: Vec<String> = fs::read_dir(scratch.0.join("cache"))
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn cache_keys_separate_servers_and_accounts() {
        let scratch = Scratch::new("keys");
        let cache = cache_in(&scratch);
        let other_user = TokenCache::new(
            scratch.0.join("cache"),
            "https://remedy.example.com:8443",
            "svc_other",
            Duration::from_secs(3300),
        );
        let other_url = TokenCache::new(
            scratch.0.join("cache"),
            "https://remedy2.example.com:8443",
            "svc_pam",
            Duration::from_secs(3300),
        );
        assert_ne!(cache.token_path(), other_user.token_path());
        assert_ne!(cache.token_path(), other_url.token_path());
        // A file written for another key, moved under this key's name, is not used.
        cache.prepare_directory().expect("directory");
        other_user
            .write(&Secret::new(b"theirs".to_vec()), 5)
            .expect("write");
        fs::rename(other_user.token_path(), cache.token_path()).expect("rename");
        assert!(matches!(cache.read(), Err(CacheMiss::Ignored(_))));
    }

    #[test]
    fn untrusted_or_corrupt_cache_files_are_ignored_then_replaced() {
        let scratch = Scratch::new("untrusted");
        let cache = cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        let good = |cache: &TokenCache| {
            cache
                .write(&Secret::new(b"good".to_vec()), 7)
                .expect("write")
        };

        good(&cache);
        fs::set_permissions(cache.token_path(), fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(cache.read(), Err(CacheMiss::Ignored(why)) if why.contains("mode 0644")));

        good(&cache);
        std::os::unix::fs::chown(cache.token_path(), Some(65534), None).expect("chown");
        assert!(matches!(cache.read(), Err(CacheMiss::Ignored(why)) if why.contains("uid 65534")));
        // Rebuilt: the rename replaces the planted file with a root-owned one.
        good(&cache);
        assert_eq!(fs::metadata(cache.token_path()).expect("stat").uid(), 0);
        assert!(cache.read().is_ok());

        for corrupt in [
            &b"garbage"[..],
            b"pam_ticket remedy token cache 1\nsystem_url=https://remedy.example.com:8443\nusername=svc_pam\nobtained=soon\ntoken=x\n",
            b"pam_ticket remedy token cache 1\nsystem_url=https://remedy.example.com:8443\nusername=svc_pam\nobtained=5\ntoken=\n",
            b"pam_ticket remedy token cache 1\nsystem_url=https://remedy.example.com:8443\nusername=svc_pam\nobtained=5\ntoken=a b\n",
            b"\xff\xfe",
        ] {
            fs::write(cache.token_path(), corrupt).expect("write corrupt");
            fs::set_permissions(cache.token_path(), fs::Permissions::from_mode(0o600)).expect("chmod");
            assert!(matches!(cache.read(), Err(CacheMiss::Ignored(_))));
        }

        fs::remove_file(cache.token_path()).expect("remove");
        std::os::unix::fs::symlink("/etc/hostname", cache.token_path()).expect("symlink");
        assert!(matches!(cache.read(), Err(CacheMiss::Ignored(_))));
        good(&cache);
        assert!(
            !fs::symlink_metadata(cache.token_path())
                .expect("stat")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn an_open_directory_is_not_used() {
        let scratch = Scratch::new("opendir");
        let cache = cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        fs::set_permissions(scratch.0.join("cache"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        assert!(cache.prepare_directory().is_err());
        fs::set_permissions(scratch.0.join("cache"), fs::Permissions::from_mode(0o700))
            .expect("chmod");
        std::os::unix::fs::chown(scratch.0.join("cache"), Some(65534), None).expect("chown");
        assert!(cache.prepare_directory().is_err());
    }

    #[test]
    fn freshness_follows_the_lifetime() {
        let scratch = Scratch::new("fresh");
        let cache = cache_in(&scratch);
        assert!(cache.is_fresh(1_000, 1_000));
        assert!(cache.is_fresh(1_000, 1_000 + 3299));
        assert!(!cache.is_fresh(1_000, 1_000 + 3300));
        // From the future (clock set back or a forged file): not trusted.
        assert!(!cache.is_fresh(10_000, 1_000));
    }

    #[test]
    fn the_lock_wait_ends_at_the_deadline() {
        let scratch = Scratch::new("lock");
        let cache = cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        let Ok(held) = cache.lock(Deadline::after(Duration::from_secs(1))) else {
            panic!("the first lock must be free");
        };
        let started = std::time::Instant::now();
        assert!(matches!(
            cache.lock(Deadline::after(Duration::from_millis(150))),
            Err(LockError::TimedOut)
        ));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(140) && waited < Duration::from_millis(400),
            "{waited:?}"
        );
        drop(held);
        assert!(
            cache
                .lock(Deadline::after(Duration::from_millis(100)))
                .is_ok()
        );
        assert_eq!(
            mode(
                &scratch.0.join("cache").join(
                    cache
                        .token_path()
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .replace(".token", ".lock")
                )
            ),
            0o600
        );
    }
}
