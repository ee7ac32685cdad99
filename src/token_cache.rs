//! Tokens shared by every sshd process: sshd forks a process per connection, so a token
//! that should outlive one login (Remedy's AR-JWT, ServiceNow's OAuth access and refresh
//! tokens, Privilege Cloud's platform token) lives in a file under `CacheDirectory`.
//! [`TokenCache::obtain`] is the one way a backend gets a token: the cached one while it
//! is usable, else one fetched under the lock, so that a burst of logins asks once.
//!
//! One file per (kind, URL, account), so two configurations never share a token:
//! - the directory is a private folder of [`crate::secure_file`] (created 0700, used only
//!   while it passes [`secure_file::private`]: root, or the user the module runs as; no
//!   group or other bits). Each operation opens it with `O_NOFOLLOW` (a link
//!   in its place is refused), checks it on that descriptor, and opens, renames and
//!   removes its files relative to it (`openat`, `renameat`, `unlinkat`), so a directory
//!   swapped for a link after the check gains nothing;
//! - the token file is opened with `O_NOFOLLOW`, checked by the same rule on the opened
//!   file, and trusted only if it was written for this kind, URL and account;
//! - it is replaced atomically (a new 0600 file renamed over it), so a reader never sees
//!   half a file, and a planted or corrupt file is simply replaced;
//! - a `flock` on a lock file beside it, polled until the deadline the caller gives, makes
//!   a burst of logins log on once instead of once per login.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::http::Deadline;
use crate::secret::Secret;
use crate::secure_file;

/// The longest token the cache stores or reads back.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Whether `token` is a token the cache and an Authorization header can carry: 1 to
/// [`MAX_TOKEN_BYTES`] printable ASCII bytes, no space. The one rule of every token the
/// module accepts (a Remedy JWT, an OAuth access or refresh token, a platform token) and
/// of every cache file it reads back.
pub fn is_token_text(token: &[u8]) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token.iter().all(|byte| byte.is_ascii_graphic())
}
/// The most a cache file may hold: the token and a few lines about it.
const MAX_FILE_BYTES: u64 = (MAX_TOKEN_BYTES + 4096) as u64;
/// How long a login waits between attempts to take the lock.
const LOCK_POLL: Duration = Duration::from_millis(10);
/// How far in the future a token's log-on time may lie (clocks of forked processes agree;
/// this only absorbs a small step of the system clock).
const CLOCK_SLACK_SECONDS: u64 = 60;
/// A token with an expiry from its server is renewed this long before it (or a tenth of
/// its life, if that is shorter), so that it never expires between the check and its use.
const RENEW_BEFORE_EXPIRY_SECONDS: u64 = 60;
/// A login waits for the lock for at most the time left divided by this, and then gets a
/// token without the cache: a process that holds the lock and does not go on (a stopped
/// `pam-ticket test`) must not turn every login into a time-out, which FailMode=safe
/// would let in unasked.
const LOCK_WAIT_SHARE: u32 = 2;

/// What a cached token is. It names the file and is written into it, so a token of one
/// kind is never read as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A BMC Remedy AR-JWT from `POST /api/jwt/login`.
    RemedyJwt,
    /// A ServiceNow OAuth access token from `POST /oauth_token.do`.
    ServiceNowAccess,
    /// The refresh token that came with a ServiceNow password-grant access token.
    ServiceNowRefresh,
    /// A Privilege Cloud platform token from the Identity tenant's
    /// `POST /oauth2/platformtoken`.
    PlatformToken,
}

impl TokenKind {
    /// The file-name prefix, and the word in the file's first line.
    fn label(self) -> &'static str {
        match self {
            TokenKind::RemedyJwt => "remedy",
            TokenKind::ServiceNowAccess => "servicenow-access",
            TokenKind::ServiceNowRefresh => "servicenow-refresh",
            TokenKind::PlatformToken => "platform",
        }
    }

    /// How warnings name the cache of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            TokenKind::RemedyJwt => "Remedy token cache",
            TokenKind::ServiceNowAccess => "ServiceNow OAuth token cache",
            TokenKind::ServiceNowRefresh => "ServiceNow refresh token cache",
            TokenKind::PlatformToken => "Privilege Cloud platform token cache",
        }
    }
}

/// The token file for one (kind, URL, account) under one directory.
pub struct TokenCache {
    directory: PathBuf,
    token_name: OsString,
    lock_name: OsString,
    token_path: PathBuf,
    lock_path: PathBuf,
    kind: TokenKind,
    url: String,
    account: String,
    lifetime: Duration,
}

/// A token read back from the cache.
pub struct CachedToken {
    pub token: Secret,
    /// Unix time of the log-on that produced it.
    pub obtained: u64,
    /// Unix time at which its server said it ends (`expires_in`), when it said.
    pub expires: Option<u64>,
}

/// A token just fetched from its server, for [`TokenCache::obtain`] to cache.
pub struct FreshToken {
    pub token: Secret,
    /// Seconds the server said it lives (`expires_in`), when it said.
    pub expires_in: Option<u64>,
}

/// A token in hand for one login, from [`TokenCache::obtain`].
pub struct Obtained {
    pub token: Secret,
    /// Whether `token` is in the cache. One that is not is this login's alone: a source
    /// with sessions logs it off after use.
    pub cached: bool,
    /// Cached tokens this call replaced while they may still be alive on the server: a
    /// source with sessions logs them off after use.
    pub retired: Vec<Secret>,
}

impl Obtained {
    fn from_cache(token: Secret) -> Obtained {
        Obtained {
            token,
            cached: true,
            retired: Vec::new(),
        }
    }
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

/// Why the lock was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Another process held the lock until the deadline given to [`TokenCache::lock`].
    TimedOut,
    /// The lock file cannot be used (not ours, not a file, no `flock`).
    Unusable(String),
}

/// Held while a process logs on and writes the cache; closing the file releases the lock.
pub struct LockGuard {
    _file: File,
}

impl TokenCache {
    /// The cache for tokens of `kind` from `url` for `account`, with files under
    /// `directory`. Nothing is read or created yet.
    pub fn new(
        directory: PathBuf,
        kind: TokenKind,
        url: &str,
        account: &str,
        lifetime: Duration,
    ) -> TokenCache {
        // The file name carries a digest of URL and account, so two configurations (two
        // pam.d lines, two servers) never share a token.
        let digest = Sha256::digest(format!("{url}\n{account}").as_bytes());
        let key: String = digest[..16]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let label = kind.label();
        let token_name = OsString::from(format!("{label}-{key}.token"));
        let lock_name = OsString::from(format!("{label}-{key}.lock"));
        TokenCache {
            token_path: directory.join(&token_name),
            lock_path: directory.join(&lock_name),
            token_name,
            lock_name,
            directory,
            kind,
            url: url.to_string(),
            account: account.to_string(),
            lifetime,
        }
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    pub fn token_path(&self) -> &Path {
        &self.token_path
    }

    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// The first line of a cache file of this kind; a file that does not start with it is
    /// not ours.
    fn magic(&self) -> String {
        format!("pam_ticket {} token cache 1", self.kind.label())
    }

    /// Whether a token obtained at `obtained` may still be used at `now` (both Unix
    /// seconds). A time in the future (a clock set back, or a forged file) does not count
    /// as fresh.
    pub fn is_fresh(&self, obtained: u64, now: u64) -> bool {
        obtained <= now.saturating_add(CLOCK_SLACK_SECONDS)
            && now.saturating_sub(obtained) < self.lifetime.as_secs()
    }

    /// Whether a cached token may still be used at `now`: fresh by the cache's lifetime
    /// and, when its server gave it an expiry, not within the renewal margin of it.
    pub fn is_usable(&self, cached: &CachedToken, now: u64) -> bool {
        self.is_fresh(cached.obtained, now)
            && cached.expires.is_none_or(|expires| {
                let life = expires.saturating_sub(cached.obtained);
                let margin = RENEW_BEFORE_EXPIRY_SECONDS.min(life / 10);
                now.saturating_add(margin) < expires
            })
    }

    /// The cached token while it is usable and not the one its server just `rejected`,
    /// else one from `fetch`, called under the cache lock and cached, so that of many
    /// logins at once only the first asks. A cache that cannot be used never fails the
    /// login: the problem goes to `audit` as a warning, and `fetch` is called without the
    /// cache (the token is then not cached, and [`Obtained::cached`] says so).
    pub fn obtain<E>(
        &self,
        deadline: Deadline,
        audit: &mut dyn crate::audit::AuditSink,
        rejected: Option<&Secret>,
        mut fetch: impl FnMut() -> Result<FreshToken, E>,
    ) -> Result<Obtained, E> {
        let clock = deadline.clock();
        let noun = self.kind.noun();
        let uncached = |fetch: &mut dyn FnMut() -> Result<FreshToken, E>| {
            Ok(Obtained {
                token: fetch()?.token,
                cached: false,
                retired: Vec::new(),
            })
        };
        if let Err(problem) = self.prepare_directory() {
            audit.warn(&format!("{noun} unusable, going on without it: {problem}"));
            return uncached(&mut fetch);
        }
        let usable_other_than_rejected = |cached: &CachedToken| {
            rejected != Some(&cached.token) && self.is_usable(cached, clock.unix_seconds())
        };
        if let Ok(cached) = self.read()
            && usable_other_than_rejected(&cached)
        {
            return Ok(Obtained::from_cache(cached.token));
        }
        // Another login's fetch takes a moment; waiting for the lock at most half of the
        // time left keeps the other half for a fetch of this login's own.
        let lock_wait = deadline.within(
            deadline
                .remaining()
                .map_or(Duration::ZERO, |left| left / LOCK_WAIT_SHARE),
        );
        let guard = match self.lock(lock_wait) {
            Ok(guard) => guard,
            Err(LockError::TimedOut) => {
                // The holder may have written a token after all.
                if let Ok(cached) = self.read()
                    && usable_other_than_rejected(&cached)
                {
                    return Ok(Obtained::from_cache(cached.token));
                }
                audit.warn(&format!(
                    "{noun} lock {} held by another process; going on without the cache",
                    self.lock_path.display()
                ));
                return uncached(&mut fetch);
            }
            Err(LockError::Unusable(problem)) => {
                audit.warn(&format!(
                    "{noun} lock unusable, going on without the cache: {problem}"
                ));
                return uncached(&mut fetch);
            }
        };
        // Another process may have fetched one while this one waited for the lock.
        let mut retired = Vec::new();
        match self.read() {
            Ok(cached) if rejected != Some(&cached.token) => {
                if self.is_usable(&cached, clock.unix_seconds()) {
                    return Ok(Obtained::from_cache(cached.token));
                }
                // Aged out here but perhaps still alive on the server.
                retired.push(cached.token);
            }
            // The token the server just refused: nothing to retire.
            Ok(_) => {}
            Err(CacheMiss::Absent) => {}
            Err(CacheMiss::Ignored(problem)) => {
                audit.warn(&format!("{noun} ignored and rebuilt: {problem}"));
            }
        }
        let fresh = fetch()?;
        let obtained = clock.unix_seconds();
        let expires = fresh
            .expires_in
            .map(|seconds| obtained.saturating_add(seconds));
        let cached = match self.write_until(&fresh.token, obtained, expires) {
            Ok(()) => true,
            Err(problem) => {
                audit.warn(&format!("{noun} not written: {problem}"));
                false
            }
        };
        drop(guard);
        Ok(Obtained {
            token: fresh.token,
            cached,
            retired,
        })
    }

    /// Removes this cache's token file, for `pam-ticket check --flush-cache`. Whether
    /// there was one to remove.
    pub fn remove(&self) -> Result<bool, String> {
        let Some(directory) = secure_file::open_private_folder(&self.directory)? else {
            return Ok(false);
        };
        match secure_file::remove_in(&directory, &self.token_name) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(format!(
                "cannot remove {}: {error}",
                self.token_path.display()
            )),
        }
    }

    /// Creates the directory (0700) when missing, and checks that it is a real directory
    /// (not a link) that passes the owner rule and that nobody else may enter.
    pub fn prepare_directory(&self) -> Result<(), String> {
        secure_file::prepare_private_folder(&self.directory).map(drop)
    }

    /// The directory itself, opened with `O_NOFOLLOW` and checked on that descriptor: every
    /// file of the cache is then opened, renamed or removed relative to it.
    fn open_directory(&self) -> Result<File, String> {
        secure_file::open_private_folder(&self.directory)?
            .ok_or_else(|| format!("{} does not exist", self.directory.display()))
    }

    /// Reads the cached token, after checking that the opened file is a regular file that
    /// passes the owner rule with no group or other permission bits, and that it was
    /// written for this kind, URL and account.
    pub fn read(&self) -> Result<CachedToken, CacheMiss> {
        let directory = self.open_directory().map_err(CacheMiss::Ignored)?;
        let (mut file, metadata) =
            secure_file::open_private_file_in(&directory, &self.directory, &self.token_name)
                .map_err(CacheMiss::Ignored)?
                .ok_or(CacheMiss::Absent)?;
        let ignored =
            |what: String| CacheMiss::Ignored(format!("{}: {what}", self.token_path.display()));
        if metadata.len() > MAX_FILE_BYTES {
            return Err(ignored("too large".to_string()));
        }
        // Sized from the file (checked above to be small), so that reading never moves the
        // buffer and leaves a copy of the token behind.
        let raw = Secret::read_from(&mut file, metadata.len() as usize)
            .map_err(|error| ignored(format!("cannot read: {error}")))?;
        self.parse(raw.as_bytes())
            .ok_or_else(|| ignored("not a valid cache file".to_string()))
    }

    /// The token in a cache file's contents, if they were written for this kind, URL and
    /// account and hold one well-formed token. Pure: [`TokenCache::read`] calls it after
    /// the file checks.
    pub fn parse(&self, raw: &[u8]) -> Option<CachedToken> {
        let text = std::str::from_utf8(raw).ok()?;
        let mut lines = text.split('\n');
        if lines.next()? != self.magic() {
            return None;
        }
        let mut take =
            |name: &str| -> Option<&str> { lines.next()?.strip_prefix(name)?.strip_prefix('=') };
        if take("system_url")? != self.url || take("username")? != self.account {
            return None;
        }
        let obtained: u64 = take("obtained")?.parse().ok()?;
        // `expires` is written only for tokens whose server gave an expiry, so a Remedy
        // file keeps the format it has always had.
        let mut next = lines.next()?;
        let expires = match next.strip_prefix("expires=") {
            Some(value) => {
                let expires: u64 = value.parse().ok()?;
                next = lines.next()?;
                Some(expires)
            }
            None => None,
        };
        let token = next.strip_prefix("token=")?.as_bytes();
        if !is_token_text(token) {
            return None;
        }
        Some(CachedToken {
            token: Secret::new(token.to_vec()),
            obtained,
            expires,
        })
    }

    /// Writes the token: a new 0600 file beside the cache file, then `rename` over it, so
    /// a reader sees the old file or the new one, never half of one. A wrongly owned or
    /// corrupt file is replaced the same way.
    pub fn write(&self, token: &Secret, obtained: u64) -> Result<(), String> {
        self.write_until(token, obtained, None)
    }

    /// [`TokenCache::write`], with the Unix time at which the server said the token ends.
    pub fn write_until(
        &self,
        token: &Secret,
        obtained: u64,
        expires: Option<u64>,
    ) -> Result<(), String> {
        let directory = self.open_directory()?;
        let expires_line = expires.map_or(String::new(), |expires| format!("expires={expires}\n"));
        let header = format!(
            "{}\nsystem_url={}\nusername={}\nobtained={obtained}\n{expires_line}token=",
            self.magic(),
            self.url,
            self.account
        );
        // Sized for the whole file before the token goes in: a buffer that grew while it
        // held the token would leave a copy of it behind.
        let mut bytes = Vec::with_capacity(header.len() + token.as_bytes().len() + 1);
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(token.as_bytes());
        bytes.push(b'\n');
        let contents = Secret::new(bytes);
        secure_file::replace_in(
            &directory,
            &self.directory,
            &self.token_name,
            contents.as_bytes(),
        )
    }

    /// Takes the lock, polling a non-blocking `flock` so that the wait ends at the
    /// deadline (a blocking `flock` could outlive it).
    pub fn lock(&self, deadline: Deadline) -> Result<LockGuard, LockError> {
        let directory = self.open_directory().map_err(LockError::Unusable)?;
        let file = secure_file::open_in(
            &directory,
            &self.lock_name,
            libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK,
            0o600,
        )
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
        secure_file::private(&self.lock_path, &metadata).map_err(LockError::Unusable)?;
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
                Some(left) => deadline.clock().sleep(left.min(LOCK_POLL)),
                None => return Err(LockError::TimedOut),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::fakes::{ManualClock, Scratch};
    use std::fs;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

    fn cache_in(scratch: &Scratch) -> TokenCache {
        TokenCache::new(
            scratch.0.join("cache"),
            TokenKind::RemedyJwt,
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
        let scratch = Scratch::new("token-cache-roundtrip");
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

    /// The file a Remedy login wrote before the cache became a module of its own is read
    /// as it is: same name, same contents.
    #[test]
    fn the_remedy_file_keeps_its_name_and_format() {
        let scratch = Scratch::new("token-cache-format");
        let cache = cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        cache
            .write(&Secret::new(b"jwt".to_vec()), 5)
            .expect("write");
        let name = cache
            .token_path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            name.starts_with("remedy-") && name.ends_with(".token") && name.len() == 45,
            "{name}"
        );
        assert_eq!(
            fs::read_to_string(cache.token_path()).expect("read"),
            "pam_ticket remedy token cache 1\nsystem_url=https://remedy.example.com:8443\n\
             username=svc_pam\nobtained=5\ntoken=jwt\n"
        );
    }

    #[test]
    fn cache_keys_separate_servers_and_accounts() {
        let scratch = Scratch::new("token-cache-keys");
        let cache = cache_in(&scratch);
        let other_user = TokenCache::new(
            scratch.0.join("cache"),
            TokenKind::RemedyJwt,
            "https://remedy.example.com:8443",
            "svc_other",
            Duration::from_secs(3300),
        );
        let other_url = TokenCache::new(
            scratch.0.join("cache"),
            TokenKind::RemedyJwt,
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
        let scratch = Scratch::new("token-cache-untrusted");
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
        let scratch = Scratch::new("token-cache-opendir");
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

    /// The directory must be the directory itself, not a link to one, even to a folder that
    /// passes every check: the files are opened relative to the directory that was
    /// checked, so swapping it for a link after the check gains nothing either.
    #[test]
    fn a_directory_that_is_a_link_is_not_used_even_after_the_check() {
        let scratch = Scratch::new("token-cache-linkdir");
        let cache = cache_in(&scratch);
        let elsewhere = scratch.0.join("elsewhere");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&elsewhere)
            .expect("a private folder");
        std::os::unix::fs::symlink(&elsewhere, scratch.0.join("cache")).expect("symlink");
        let refused = cache.prepare_directory();
        assert!(
            matches!(&refused, Err(why) if why.contains("symbolic link")),
            "{refused:?}"
        );

        // Checked while it was a real directory, then swapped for the link.
        fs::remove_file(scratch.0.join("cache")).expect("remove the link");
        cache.prepare_directory().expect("a real directory");
        fs::rename(scratch.0.join("cache"), scratch.0.join("was-cache")).expect("move it away");
        std::os::unix::fs::symlink(&elsewhere, scratch.0.join("cache")).expect("symlink");
        let token = Secret::new(b"tok".to_vec());
        assert!(cache.write(&token, 5).is_err());
        assert!(
            matches!(cache.read(), Err(CacheMiss::Ignored(why)) if why.contains("symbolic link"))
        );
        let clock = ManualClock::new();
        assert!(matches!(
            cache.lock(Deadline::new(&clock, Duration::from_secs(1))),
            Err(LockError::Unusable(_))
        ));
        assert_eq!(
            fs::read_dir(&elsewhere).expect("list").count(),
            0,
            "nothing was written through the link"
        );
    }

    #[test]
    fn freshness_follows_the_lifetime() {
        let scratch = Scratch::new("token-cache-fresh");
        let cache = cache_in(&scratch);
        assert!(cache.is_fresh(1_000, 1_000));
        assert!(cache.is_fresh(1_000, 1_000 + 3299));
        assert!(!cache.is_fresh(1_000, 1_000 + 3300));
        // From the future (clock set back or a forged file): not trusted.
        assert!(!cache.is_fresh(10_000, 1_000));
    }

    fn platform_cache_in(scratch: &Scratch) -> TokenCache {
        TokenCache::new(
            scratch.0.join("cache"),
            TokenKind::PlatformToken,
            "https://abc1234.id.cyberark.cloud",
            "svc_pam@cyberark.cloud.1234",
            Duration::from_secs(24 * 3600),
        )
    }

    #[test]
    fn a_server_expiry_is_kept_and_renewed_before_it() {
        let scratch = Scratch::new("token-cache-expiry");
        let cache = platform_cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        cache
            .write_until(
                &Secret::new(b"eyJ.platform".to_vec()),
                1_000,
                Some(1_000 + 900),
            )
            .expect("write");
        let cached = cache.read().expect("read back");
        assert_eq!((cached.obtained, cached.expires), (1_000, Some(1_900)));
        assert_eq!(cached.token.as_bytes(), b"eyJ.platform");
        // Renewed a minute before its end; the cache's own lifetime is far longer.
        assert!(cache.is_usable(&cached, 1_000 + 839));
        assert!(!cache.is_usable(&cached, 1_000 + 840));
        // A short-lived token keeps nine tenths of its life.
        let short = CachedToken {
            token: Secret::new(b"t".to_vec()),
            obtained: 1_000,
            expires: Some(1_030),
        };
        assert!(cache.is_usable(&short, 1_026) && !cache.is_usable(&short, 1_027));
        // The file names the kind: a Remedy cache for the same URL never reads it.
        assert!(
            cache
                .token_path()
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("platform-"))
        );
    }

    #[test]
    fn obtain_fetches_once_then_serves_the_cache_until_the_expiry() {
        let scratch = Scratch::new("token-cache-obtain");
        let cache = platform_cache_in(&scratch);
        let clock = ManualClock::new();
        let mut notes = crate::fakes::Notes::default();
        let fetches = std::cell::Cell::new(0);
        let fetch = || -> Result<FreshToken, String> {
            fetches.set(fetches.get() + 1);
            Ok(FreshToken {
                token: Secret::new(format!("token-{}", fetches.get()).into_bytes()),
                expires_in: Some(900),
            })
        };
        let deadline = Deadline::new(&clock, Duration::from_secs(5));
        let first = cache
            .obtain(deadline, &mut notes, None, &fetch)
            .expect("first");
        let second = cache
            .obtain(deadline, &mut notes, None, &fetch)
            .expect("second");
        assert!(first.cached && second.cached);
        assert_eq!(second.token.as_bytes(), b"token-1");
        // The server refused the cached token: one new fetch, and the refused one is not
        // handed back.
        let renewed = cache
            .obtain(deadline, &mut notes, Some(&second.token), fetch)
            .expect("renewed");
        assert_eq!(renewed.token.as_bytes(), b"token-2");
        assert!(renewed.retired.is_empty(), "a refused token is not retired");
        // Near its end it is replaced, and the old one is retired.
        clock.advance(Duration::from_secs(850));
        let late = cache
            .obtain(deadline, &mut notes, None, &fetch)
            .expect("late");
        assert_eq!(late.token.as_bytes(), b"token-3");
        assert_eq!(late.retired.len(), 1);
        assert_eq!(fetches.get(), 3);
        assert!(notes.warnings.is_empty(), "{:?}", notes.warnings);
        // Flushed: removed once, and nothing is left to remove.
        assert_eq!(cache.remove(), Ok(true));
        assert_eq!(cache.remove(), Ok(false));
        assert!(matches!(cache.read(), Err(CacheMiss::Absent)));
    }

    #[test]
    fn removing_from_a_cache_directory_that_does_not_exist_removes_nothing() {
        let scratch = Scratch::new("token-cache-flush-none");
        assert_eq!(platform_cache_in(&scratch).remove(), Ok(false));
    }

    #[test]
    fn the_lock_wait_ends_at_the_deadline() {
        let scratch = Scratch::new("token-cache-lock");
        let cache = cache_in(&scratch);
        cache.prepare_directory().expect("directory");
        let clock = ManualClock::new();
        let Ok(held) = cache.lock(Deadline::new(&clock, Duration::from_secs(1))) else {
            panic!("the first lock must be free");
        };
        let started = clock.monotonic();
        assert!(matches!(
            cache.lock(Deadline::new(&clock, Duration::from_millis(150))),
            Err(LockError::TimedOut)
        ));
        let waited = clock.since(started);
        assert!(
            waited >= Duration::from_millis(140) && waited < Duration::from_millis(400),
            "{waited:?}"
        );
        // Polled, not blocked: many short pauses, none longer than the poll interval.
        let pauses = clock.slept();
        assert!(pauses.len() >= 14, "{pauses:?}");
        assert!(pauses.iter().all(|pause| *pause <= LOCK_POLL), "{pauses:?}");
        drop(held);
        assert!(
            cache
                .lock(Deadline::new(&clock, Duration::from_millis(100)))
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
