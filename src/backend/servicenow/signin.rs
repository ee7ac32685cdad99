//! How the module signs in to the instance: with HTTP basic authentication
//! (AuthMethod=basic) or with an OAuth 2.0 access token from `POST /oauth_token.do` (AuthMethod=oauth-client-credentials
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

use zeroize::Zeroizing;

use super::ServiceNow;
use crate::audit::AuditSink;
use crate::backend::{LookupError, bad_response, sanitise};
use crate::config::{AuthMethod, BaseUrl, Credentials, OAuthClient};
use crate::http::{Body, Deadline, HttpResponse, Method, RetryBudget};
use crate::oauth::{self, ClientCredentials, Grant, TokenAnswer};
use crate::secret::{Secret, SecretText};
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

    /// Where its tokens are cached.
    pub(super) fn cache_directory(&self) -> &std::path::Path {
        self.access.directory()
    }

    pub(super) fn method(&self) -> AuthMethod {
        if self.user.is_some() {
            AuthMethod::OAuthPassword
        } else {
            AuthMethod::OAuthClientCredentials
        }
    }
}

impl ServiceNow {
    fn token_url(&self) -> String {
        self.base_url.join("/oauth_token.do")
    }

    /// One grant at `/oauth_token.do`: the session's own (client credentials or
    /// password), or a refresh.
    pub(super) fn request_token(
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
    pub(super) fn fetch_access_token(
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
    pub(super) fn access_token(
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
    pub(super) fn get(
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
    pub(super) fn send(
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
    pub(super) fn get_signed_in(
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
    pub(super) fn send_signed_in(
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
    pub(super) fn acting_user(&self) -> Option<&str> {
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
    pub(super) fn check_authorization(
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
    pub(super) fn caches(&self) -> Vec<&TokenCache> {
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
    crate::http::prefixed_token("Bearer ", token)
        .ok_or_else(|| bad_response("the access token is not valid text"))
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
