//! The session record: what the end note needs, kept from `pam_sm_authenticate` to
//! `pam_sm_close_session`.
//!
//! sshd runs authentication, session start and session end on one PAM handle, but with
//! keyboard-interactive authentication it runs `pam_authenticate` in a child process of
//! its own (auth-pam.c's "thread" is a fork) and sends only the PAM environment back to
//! the process that opens and closes the session. Data kept with `pam_set_data` is
//! therefore gone at the session's end under sshd; the PAM environment survives. So
//! something has to travel in the environment, [`ENVIRONMENT_NAME`] (and in `pam_set_data`
//! for applications that keep one process; tests/sshd_e2e.rs proves which one sshd
//! delivers).
//!
//! sshd also copies the PAM environment into the user's session, and others can fill it
//! (pam_env with `user_readenv`, a module earlier in the stack). So the facts themselves
//! stay on this host, in a root-only file named by a random 128-bit [`Handle`] in the
//! folder [`FOLDER_NAME`] under `CacheDirectory`; the environment holds only
//! `v2.<handle>`: nothing secret, nothing about the account, and nothing anyone can
//! forge, because a handle means something only while root's file of that name exists.
//! The file is removed when the session's end uses it, so a handle works once, and it
//! must name the closing session's PAM_USER and this machine.
//!
//! A session that never closes (a crash, a reboot on a disk-backed CacheDirectory) leaves
//! its file behind; files older than [`STALE_AFTER`] are removed whenever a new record is
//! kept.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};

use super::SessionFacts;
use crate::secure_file;
use crate::ticket::TicketKind;

/// The PAM environment variable (and the session environment's) that holds the handle.
pub const ENVIRONMENT_NAME: &str = "TICKET_SESSION";
/// The `pam_set_data` name of the handle.
pub const DATA_NAME: &str = "pam_ticket_session_record";
/// The folder under `CacheDirectory` that holds the records.
pub const FOLDER_NAME: &str = "sessions";
/// How old a record file may grow before a new login removes it: a session that lasts
/// longer than this gets no end note. 30 days is far beyond any working session (even a
/// long-running port forward), while a gateway that crashes or reboots often still does
/// not pile up files.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// What the environment value starts with: a record of this module version (`v1.` was the
/// sealed record of older versions, which is not read).
const VERSION_PREFIX: &str = "v2.";
/// Bytes of randomness in a handle.
const HANDLE_BYTES: usize = 16;
/// The first field of a record file, so that a file of anything else is not read as one.
const FORMAT: &str = "pam_ticket session record 2";
/// The largest record file read: the facts are a few hundred bytes (a reason has at most
/// 200 characters), the checks' texts come from the server.
const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// The most record files kept at once: far more sessions than a gateway holds open, and a
/// bound on what logins that never end their session can fill (and on the work each new
/// record's pruning does).
pub const MAX_RECORDS: usize = 4096;

/// The random name of one session's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handle([u8; HANDLE_BYTES]);

impl Handle {
    /// A new handle from the system's random number generator.
    pub fn generate() -> Result<Handle, RecordError> {
        let mut bytes = [0u8; HANDLE_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| RecordError::NoRandomness)?;
        Ok(Handle(bytes))
    }

    /// The handle in an environment value, if it is `v2.` and 32 lowercase hex digits.
    pub fn parse(value: &str) -> Result<Handle, RecordError> {
        let hex = value
            .strip_prefix(VERSION_PREFIX)
            .filter(|hex| hex.len() == 2 * HANDLE_BYTES)
            .ok_or(RecordError::Malformed)?;
        let digit = |byte: u8| match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            _ => None,
        };
        let mut bytes = [0u8; HANDLE_BYTES];
        for (slot, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            *slot = (digit(pair[0]).ok_or(RecordError::Malformed)? << 4)
                | digit(pair[1]).ok_or(RecordError::Malformed)?;
        }
        Ok(Handle(bytes))
    }

    fn hex(&self) -> String {
        crate::bypass::encode_hex(&self.0)
    }

    /// The environment value: `v2.<32 hex digits>`.
    pub fn environment_value(&self) -> String {
        format!("{VERSION_PREFIX}{}", self.hex())
    }

    /// The record file's name in the folder.
    pub fn file_name(&self) -> OsString {
        OsString::from(self.hex())
    }
}

/// Why a session record is not used (or not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The value is not `v2.` and 32 hex digits: planted, or a sealed record of an older
    /// module version.
    Malformed,
    /// No record of that handle: used already, removed as stale, or never kept (planted).
    Unknown,
    /// The record names another user than the session's PAM_USER.
    OtherUser(String),
    /// The record is of another login of the same user: its service or remote host differ.
    OtherLogin(&'static str),
    /// The record was kept on another machine (a CacheDirectory shared between hosts).
    OtherMachine(String),
    /// The folder or the file cannot be used: not root's, open to others, a link, not a
    /// regular 0600 file, or an I/O error.
    Unusable(String),
    /// The file holds no record of this module.
    Corrupt(String),
    /// The system's random number generator failed.
    NoRandomness,
    /// The folder already holds [`MAX_RECORDS`] files after pruning: logins that never
    /// reached the end of their session (a client that drops after authentication, an
    /// account stack that refuses) pile up, and the folder is on `/run` by default.
    Full { kept: usize },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Malformed => f.write_str(
                "the session handle is not one of this module (v2. and 32 hex digits)",
            ),
            RecordError::Unknown => f.write_str(
                "no session record for this handle (used already, removed as stale, or never kept by this module)",
            ),
            RecordError::OtherUser(user) => write!(
                f,
                "the session record names another user ({})",
                crate::sanitise::sanitise(user)
            ),
            RecordError::OtherLogin(what) => write!(
                f,
                "the session record is of another login of this user (its {what} differs)"
            ),
            RecordError::OtherMachine(machine) => write!(
                f,
                "the session record was kept on another host ({})",
                crate::sanitise::sanitise(machine)
            ),
            RecordError::Unusable(problem) => {
                write!(f, "the session record cannot be used: {problem}")
            }
            RecordError::Corrupt(problem) => {
                write!(f, "the session record is not valid: {problem}")
            }
            RecordError::NoRandomness => {
                f.write_str("no random number for the session handle (getrandom failed)")
            }
            RecordError::Full { kept } => write!(
                f,
                "{kept} session records are kept already, the most there may be ({MAX_RECORDS}); records of sessions that never ended are removed after {} days",
                STALE_AFTER.as_secs() / 86_400
            ),
        }
    }
}

/// A record just kept.
#[derive(Debug)]
pub struct Kept {
    pub handle: Handle,
    /// Stale record files removed on the way.
    pub pruned: usize,
}

/// Who asks for a record: the session's PAM_USER, PAM_SERVICE and PAM_RHOST, which must
/// be the record's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub user: String,
    pub service: Option<String>,
    pub rhost: Option<String>,
}

/// The session records under one `CacheDirectory`.
pub struct SessionStore {
    cache_directory: PathBuf,
    folder: PathBuf,
    /// This machine's name, which every record carries and must match.
    machine: String,
}

impl SessionStore {
    /// The records under `cache_directory`; nothing is read or created yet.
    pub fn new(cache_directory: &Path) -> SessionStore {
        SessionStore {
            cache_directory: cache_directory.to_path_buf(),
            folder: cache_directory.join(FOLDER_NAME),
            machine: crate::host::machine_name().unwrap_or_default(),
        }
    }

    /// The folder the record files are in.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Keeps `facts` in a new record file and returns its handle. `now` (Unix seconds)
    /// decides which old files are stale.
    pub fn keep(&self, facts: &SessionFacts, now: u64) -> Result<Kept, RecordError> {
        let cache = secure_file::prepare_private_folder(&self.cache_directory)
            .map_err(RecordError::Unusable)?;
        let folder = secure_file::prepare_private_folder_in(
            &cache,
            &self.cache_directory,
            FOLDER_NAME.as_ref(),
        )
        .map_err(RecordError::Unusable)?;
        let Pruned {
            removed: pruned,
            kept,
        } = prune(&folder, now).map_err(|error| {
            RecordError::Unusable(format!("cannot list {}: {error}", self.folder.display()))
        })?;
        if kept >= MAX_RECORDS {
            return Err(RecordError::Full { kept });
        }
        let handle = Handle::generate()?;
        let mut record = facts_json(facts);
        if let Value::Object(fields) = &mut record {
            fields.insert("format".to_string(), Value::from(FORMAT));
            fields.insert("machine".to_string(), Value::from(self.machine.as_str()));
        }
        secure_file::replace_in(
            &folder,
            &self.folder,
            &handle.file_name(),
            record.to_string().as_bytes(),
        )
        .map_err(RecordError::Unusable)?;
        Ok(Kept { handle, pruned })
    }

    /// The record of `handle`, if it exists and names `user` and this machine; the file
    /// stays (for `pam_sm_open_session`, which only asks whether there is one).
    pub fn peek(&self, handle: &Handle, claimant: &Claimant) -> Result<SessionFacts, RecordError> {
        self.read(handle, claimant).map(|(facts, _)| facts)
    }

    /// The record of `handle`, if it exists and names `user` and this machine, removed
    /// as it is read: a handle is used once. Of two processes that close with the same
    /// handle, only the one whose removal succeeds gets the record. A record of another
    /// user or machine is left alone, so that whoever learns a handle cannot cancel
    /// someone else's end note with it.
    pub fn take(&self, handle: &Handle, claimant: &Claimant) -> Result<SessionFacts, RecordError> {
        let (facts, folder) = self.read(handle, claimant)?;
        match secure_file::remove_in(&folder, &handle.file_name()) {
            Ok(()) => Ok(facts),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(RecordError::Unknown),
            Err(error) => Err(RecordError::Unusable(format!(
                "cannot remove {}: {error}",
                self.folder.join(handle.file_name()).display()
            ))),
        }
    }

    /// Reads and checks the record of `handle`: a regular file of root's (or the user the
    /// module runs as), mode 0600, in the private folder, opened without following a link.
    fn read(
        &self,
        handle: &Handle,
        claimant: &Claimant,
    ) -> Result<(SessionFacts, File), RecordError> {
        let cache = secure_file::open_private_folder(&self.cache_directory)
            .map_err(RecordError::Unusable)?
            .ok_or(RecordError::Unknown)?;
        let folder = secure_file::open_private_folder_in(
            &cache,
            &self.cache_directory,
            FOLDER_NAME.as_ref(),
        )
        .map_err(RecordError::Unusable)?
        .ok_or(RecordError::Unknown)?;
        let name = handle.file_name();
        let path = self.folder.join(&name);
        let (file, metadata) = secure_file::open_private_file_in(&folder, &self.folder, &name)
            .map_err(RecordError::Unusable)?
            .ok_or(RecordError::Unknown)?;
        // Stricter than the folder's rule: exactly what `keep` writes.
        let mode = metadata.mode() & 0o7777;
        if mode != 0o600 {
            return Err(RecordError::Unusable(format!(
                "{} has mode {mode:04o}, not 0600",
                path.display()
            )));
        }
        if metadata.len() > MAX_RECORD_BYTES {
            return Err(RecordError::Corrupt(format!(
                "{} is too large",
                path.display()
            )));
        }
        let mut bytes = Vec::new();
        file.take(MAX_RECORD_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|error| {
                RecordError::Unusable(format!("cannot read {}: {error}", path.display()))
            })?;
        let record = crate::json::parse(&bytes)
            .map_err(|_| RecordError::Corrupt(format!("{} is not JSON", path.display())))?;
        if record.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(RecordError::Corrupt(format!(
                "{} is not a session record",
                path.display()
            )));
        }
        let facts = facts_from_json(&record).ok_or_else(|| {
            RecordError::Corrupt(format!("{} lacks a field of the record", path.display()))
        })?;
        let machine = record
            .get("machine")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if machine != self.machine {
            return Err(RecordError::OtherMachine(machine.to_string()));
        }
        if facts.user != claimant.user {
            return Err(RecordError::OtherUser(facts.user));
        }
        // The same user's handle from another of their logins (another service, another
        // client address) is not this session's: it could otherwise open a session that
        // this module never authenticated, or end another session's record early.
        if facts.service != claimant.service {
            return Err(RecordError::OtherLogin("service"));
        }
        if facts.rhost != claimant.rhost {
            return Err(RecordError::OtherLogin("remote host"));
        }
        Ok((facts, folder))
    }
}

/// Removes the files in `folder` last changed more than [`STALE_AFTER`] before `now`
/// (Unix seconds): records of sessions that never closed, temporary files of a write that
/// was cut off. A file dated after `now` (a clock set back) is left. Best effort: whatever
/// cannot be examined or removed stays, to be tried by the next login. One listing of
/// the folder serves both the pruning and the count of what stays; a folder that cannot be
/// listed is an error.
fn prune(folder: &File, now: u64) -> std::io::Result<Pruned> {
    let names = secure_file::names_in(folder)?;
    let bound = now.saturating_sub(STALE_AFTER.as_secs());
    let removed = names
        .iter()
        .filter(|name| {
            // O_PATH: the entry itself (a link is not followed), without reading it.
            secure_file::open_in(folder, name, libc::O_PATH, 0)
                .and_then(|entry| entry.metadata())
                .is_ok_and(|metadata| {
                    !metadata.is_dir() && u64::try_from(metadata.mtime()).unwrap_or(0) < bound
                })
        })
        .filter(|name| secure_file::remove_in(folder, name).is_ok())
        .count();
    Ok(Pruned {
        removed,
        kept: names.len() - removed,
    })
}

/// What [`prune`] did: the files it removed, and how many the folder still holds.
struct Pruned {
    removed: usize,
    kept: usize,
}

/// The facts as the record file holds them.
fn facts_json(facts: &SessionFacts) -> Value {
    json!({
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
    })
}

/// The facts in a record file, when every required field is there.
fn facts_from_json(record: &Value) -> Option<SessionFacts> {
    let text = |name: &str| record.get(name).and_then(Value::as_str).map(str::to_string);
    let kind_name = text("kind")?;
    let kind = TicketKind::ORDER
        .into_iter()
        .find(|kind| kind.audit_name() == kind_name)?;
    Some(SessionFacts {
        ticket: text("ticket")?,
        kind,
        record_id: text("record_id"),
        system: text("system")?,
        user: text("user")?,
        identity: text("identity")?,
        rhost: text("rhost"),
        host: text("host")?,
        service: text("service"),
        target: text("target"),
        checks: record
            .get("checks")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        reason: text("reason"),
        started: record.get("started")?.as_i64()?,
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::fakes::Scratch;

    fn store_in(scratch: &Scratch) -> SessionStore {
        SessionStore::new(&scratch.0.join("cache"))
    }

    /// "Now" as the file system stamps it (the records' own times are the system's), read
    /// from a file made for it: the tests decide staleness against it, not the clock.
    fn now(scratch: &Scratch) -> u64 {
        let probe = scratch.0.join("now");
        fs::write(&probe, "").expect("write");
        let seconds = fs::metadata(&probe).expect("stat").mtime();
        u64::try_from(seconds).expect("after 1970")
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

    /// The session of `user` by sshd from no remote host, as [`facts`] names it.
    fn claimant(user: &str) -> Claimant {
        Claimant {
            user: user.to_string(),
            service: Some("sshd".to_string()),
            rhost: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).expect("stat").mode() & 0o7777
    }

    #[test]
    fn a_handle_is_v2_and_32_hex_digits_and_nothing_else() {
        let handle = Handle::generate().expect("random");
        let value = handle.environment_value();
        assert!(value.starts_with("v2.") && value.len() == 35, "{value}");
        assert_eq!(Handle::parse(&value), Ok(handle.clone()));
        assert_ne!(Handle::generate().expect("random"), handle);
        for bad in [
            "",
            "v2.",
            "v1.e30.abc",
            "v2.0123456789abcdef0123456789ABCDEF",
            "v2.0123456789abcdef0123456789abcde",
            "v2.0123456789abcdef0123456789abcdef0",
            "v2.../../../../etc/shadow0000000000",
            "v2.0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(Handle::parse(bad), Err(RecordError::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_kept_record_is_root_only_and_is_taken_once() {
        let scratch = Scratch::new("session-record-once");
        let store = store_in(&scratch);
        let now = now(&scratch);
        let kept = store.keep(&facts(), now).expect("kept");
        assert_eq!(kept.pruned, 0);
        let file = store.folder().join(kept.handle.file_name());
        assert_eq!(mode(&scratch.0.join("cache")), 0o700);
        assert_eq!(mode(store.folder()), 0o700);
        assert_eq!(mode(&file), 0o600);
        // Nothing of the facts is in the handle.
        assert!(!kept.handle.environment_value().contains("alice"));

        assert_eq!(store.peek(&kept.handle, &claimant("alice")), Ok(facts()));
        assert_eq!(
            store.peek(&kept.handle, &claimant("bob")),
            Err(RecordError::OtherUser("alice".to_string()))
        );
        assert_eq!(
            store.take(&kept.handle, &claimant("bob")),
            Err(RecordError::OtherUser("alice".to_string()))
        );
        assert!(file.exists(), "another user's attempt leaves the record");
        assert_eq!(store.take(&kept.handle, &claimant("alice")), Ok(facts()));
        assert!(!file.exists());
        assert_eq!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::Unknown)
        );
        let unknown = Handle::generate().expect("random");
        assert_eq!(
            store.peek(&unknown, &claimant("alice")),
            Err(RecordError::Unknown)
        );
        // No folder at all: unknown too, and nothing is created by looking.
        let empty = Scratch::new("session-record-empty");
        assert_eq!(
            store_in(&empty).take(&unknown, &claimant("alice")),
            Err(RecordError::Unknown)
        );
        assert!(!empty.0.join("cache").exists());
    }

    #[test]
    fn a_record_file_that_is_not_roots_0600_file_is_refused() {
        let scratch = Scratch::new("session-record-refused");
        let store = store_in(&scratch);
        let now = now(&scratch);
        let kept = store.keep(&facts(), now).expect("kept");
        let file = store.folder().join(kept.handle.file_name());

        fs::set_permissions(&file, fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(matches!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::Unusable(why)) if why.contains("mode 0400, not 0600")
        ));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::Unusable(why)) if why.contains("group and others must have no access")
        ));
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
        std::os::unix::fs::chown(&file, Some(65534), None).expect("chown");
        assert!(matches!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::Unusable(why)) if why.contains("uid 65534")
        ));
        assert!(file.exists(), "a refused file is left for root to see");

        // A link to a good record, in the record's place.
        let other = store.keep(&facts(), now).expect("kept");
        fs::remove_file(&file).expect("remove");
        std::os::unix::fs::symlink(store.folder().join(other.handle.file_name()), &file)
            .expect("symlink");
        assert!(matches!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::Unusable(why)) if why.contains("symbolic link")
        ));

        // Not a record: refused, whatever its mode.
        fs::remove_file(&file).expect("remove");
        fs::write(&file, br#"{"ticket":"INC1","user":"alice"}"#).expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::Corrupt(_))
        ));

        // The folder opened to others is not used at all.
        fs::set_permissions(store.folder(), fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(matches!(
            store.take(&other.handle, &claimant("alice")),
            Err(RecordError::Unusable(_))
        ));
        assert!(matches!(
            store.keep(&facts(), now),
            Err(RecordError::Unusable(_))
        ));
    }

    #[test]
    fn a_record_of_another_machine_is_refused() {
        let scratch = Scratch::new("session-record-machine");
        let mut store = store_in(&scratch);
        let kept = store.keep(&facts(), now(&scratch)).expect("kept");
        store.machine = "other-gateway".to_string();
        assert!(matches!(
            store.take(&kept.handle, &claimant("alice")),
            Err(RecordError::OtherMachine(_))
        ));
    }

    /// Logins that never end their session cannot fill the folder: at MAX_RECORDS files no
    /// new record is kept (the login itself is not changed by it), until pruning or the
    /// end of sessions makes room.
    #[test]
    fn no_more_than_max_records_are_kept() {
        let scratch = Scratch::new("session-record-full");
        let store = store_in(&scratch);
        let now = now(&scratch);
        let first = store.keep(&facts(), now).expect("kept");
        for number in 1..MAX_RECORDS {
            fs::write(store.folder().join(format!("filler-{number}")), "x").expect("write");
        }
        assert_eq!(
            store.keep(&facts(), now).map(|kept| kept.handle),
            Err(RecordError::Full { kept: MAX_RECORDS })
        );
        store
            .take(&first.handle, &claimant("alice"))
            .expect("the first ends");
        store.keep(&facts(), now).expect("room again");
    }

    #[test]
    fn files_older_than_the_bound_are_pruned_when_a_record_is_kept() {
        let scratch = Scratch::new("session-record-prune");
        let store = store_in(&scratch);
        let now = now(&scratch);
        let first = store.keep(&facts(), now).expect("kept");
        let second = store.keep(&facts(), now).expect("kept");
        let at = |seconds: u64| UNIX_EPOCH + Duration::from_secs(seconds);
        let set_time = |name: &OsString, time: SystemTime| {
            fs::File::options()
                .write(true)
                .open(store.folder().join(name))
                .expect("open")
                .set_modified(time)
                .expect("set mtime");
        };
        let stale = now - STALE_AFTER.as_secs() - 1;
        set_time(&first.handle.file_name(), at(stale));
        set_time(&second.handle.file_name(), at(stale + 2));
        let leftover = OsString::from(".abc.123.0.tmp");
        fs::write(store.folder().join(&leftover), "x").expect("write");
        set_time(&leftover, at(stale));
        let third = store.keep(&facts(), now).expect("kept");
        assert_eq!(
            third.pruned, 2,
            "the stale record and the stale temporary file"
        );
        assert_eq!(
            store.peek(&first.handle, &claimant("alice")),
            Err(RecordError::Unknown)
        );
        assert_eq!(store.peek(&second.handle, &claimant("alice")), Ok(facts()));
        assert_eq!(store.peek(&third.handle, &claimant("alice")), Ok(facts()));
        assert!(!store.folder().join(&leftover).exists());
    }
}
