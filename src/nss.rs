//! Users and groups as the system's name service (NSS) knows them: which groups a login
//! is in (its primary group included), and whether a group name exists. Behind a trait,
//! so that the decision of who is asked for a ticket is unit-tested without the system's
//! databases; [`SystemDirectory`] is the one implementation that calls libc.

use crate::clock::{Deadline, NoAnswer, answer_within};
use std::ffi::{CString, c_char};
use std::fmt;

/// A group ID.
pub type Gid = libc::gid_t;

/// The name service could not answer (a failing, slow or hung LDAP or SSSD backend, out
/// of memory): never "not a member", and never an exemption (see [`crate::who`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NssError {
    pub what: String,
    pub errno: i32,
}

impl fmt::Display for NssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.what,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// What the name service says about users and groups.
pub trait Directory {
    /// The ID of the group called `name`, or `None` when there is no such group.
    fn group_id(&self, name: &str) -> Result<Option<Gid>, NssError>;

    /// Every group `login` is in, its primary group first, or `None` when the name
    /// service knows no such user.
    fn groups_of(&self, login: &str) -> Result<Option<Vec<Gid>>, NssError>;
}

/// The system's name service, through `getgrnam_r`, `getpwnam_r` and `getgrouplist`.
#[derive(Clone, Copy)]
pub struct SystemDirectory;

/// A directory whose every lookup is waited for only until `deadline`: a hung LDAP or
/// SSSD backend must not hang sshd. The lookup runs through
/// [`crate::clock::answer_within`], as the resolver does in [`crate::host`]. A lookup not
/// answered in time is an error ([`libc::ETIMEDOUT`]), never "not a member".
pub struct Bounded<'c, D> {
    inner: D,
    deadline: Deadline<'c>,
}

impl<'c, D: Directory + Clone + Send + 'static> Bounded<'c, D> {
    pub fn new(inner: D, deadline: Deadline<'c>) -> Bounded<'c, D> {
        Bounded { inner, deadline }
    }

    fn ask<T: Send + 'static>(
        &self,
        what: String,
        lookup: impl FnOnce(D) -> Result<T, NssError> + Send + 'static,
    ) -> Result<T, NssError> {
        let timed_out = |what: String| NssError {
            what: format!("{what}: no answer before the deadline"),
            errno: libc::ETIMEDOUT,
        };
        let Some(time_left) = self.deadline.remaining() else {
            return Err(timed_out(what));
        };
        let inner = self.inner.clone();
        match answer_within("pam_ticket-nss", time_left, move || lookup(inner)) {
            Ok(answer) => answer,
            Err(NoAnswer::NoThread(problem)) => Err(NssError {
                what: format!("{what}: no thread for the lookup"),
                errno: problem.raw_os_error().unwrap_or(libc::EAGAIN),
            }),
            Err(NoAnswer::TimedOut) => Err(timed_out(what)),
        }
    }
}

impl<D: Directory + Clone + Send + 'static> Directory for Bounded<'_, D> {
    fn group_id(&self, name: &str) -> Result<Option<Gid>, NssError> {
        let owned = name.to_string();
        self.ask(format!("looking up group {name}"), move |inner| {
            inner.group_id(&owned)
        })
    }

    fn groups_of(&self, login: &str) -> Result<Option<Vec<Gid>>, NssError> {
        let owned = login.to_string();
        self.ask(format!("listing the groups of {login}"), move |inner| {
            inner.groups_of(&owned)
        })
    }
}

/// The largest buffer a lookup grows to before it gives up (an entry this large is a
/// broken directory, not a real group).
const MAX_BUFFER: usize = 1 << 22;
/// The most groups a user may be in that the lookup reads.
const MAX_GROUPS: usize = 1 << 16;

impl Directory for SystemDirectory {
    fn group_id(&self, name: &str) -> Result<Option<Gid>, NssError> {
        let Ok(c_name) = CString::new(name) else {
            return Ok(None);
        };
        let mut buffer: Vec<c_char> = vec![0; 1024];
        loop {
            // SAFETY: an all-zero `group` is a valid value for a plain C struct of
            // integers and pointers; getgrnam_r fills it in before it is read.
            let mut group: libc::group = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::group = std::ptr::null_mut();
            // SAFETY: every pointer is valid for the call: the name is NUL-terminated,
            // `group` and `result` are live locals, and the buffer's length is passed with
            // it. Nothing that getgrnam_r points into the buffer is read after it returns,
            // only the gid copied out of `group`.
            let status = unsafe {
                libc::getgrnam_r(
                    c_name.as_ptr(),
                    &mut group,
                    buffer.as_mut_ptr(),
                    buffer.len(),
                    &mut result,
                )
            };
            match status {
                0 if result.is_null() => return Ok(None),
                0 => return Ok(Some(group.gr_gid)),
                libc::ERANGE if buffer.len() < MAX_BUFFER => {
                    buffer.resize(buffer.len() * 4, 0);
                }
                // "Not found" is reported as one of these by some NSS modules.
                libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
                errno => {
                    return Err(NssError {
                        what: format!("looking up group {name}"),
                        errno,
                    });
                }
            }
        }
    }

    fn groups_of(&self, login: &str) -> Result<Option<Vec<Gid>>, NssError> {
        let Ok(c_login) = CString::new(login) else {
            return Ok(None);
        };
        let Some(primary) = primary_group(&c_login, login)? else {
            return Ok(None);
        };
        let mut groups: Vec<Gid> = vec![0; 64];
        loop {
            let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
            // SAFETY: the login is NUL-terminated and `groups` holds `count` elements,
            // which getgrouplist writes at most; it sets `count` to the number it needs.
            let status = unsafe {
                libc::getgrouplist(c_login.as_ptr(), primary, groups.as_mut_ptr(), &mut count)
            };
            let needed = usize::try_from(count).unwrap_or(0);
            if status >= 0 {
                groups.truncate(needed.min(groups.len()));
                // The primary group first, once.
                groups.retain(|gid| *gid != primary);
                groups.insert(0, primary);
                return Ok(Some(groups));
            }
            if needed <= groups.len() || needed > MAX_GROUPS {
                return Err(NssError {
                    what: format!("listing the groups of {login}"),
                    errno: libc::ERANGE,
                });
            }
            groups.resize(needed, 0);
        }
    }
}

/// The primary group of `login` from its passwd entry, `None` for an unknown user.
fn primary_group(c_login: &CString, login: &str) -> Result<Option<Gid>, NssError> {
    let mut buffer: Vec<c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value for a plain C struct of integers
        // and pointers; getpwnam_r fills it in before it is read.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as for getgrnam_r above: valid, live pointers and the buffer's length;
        // only the gid is copied out.
        let status = unsafe {
            libc::getpwnam_r(
                c_login.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut result,
            )
        };
        match status {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(entry.pw_gid)),
            libc::ERANGE if buffer.len() < MAX_BUFFER => buffer.resize(buffer.len() * 4, 0),
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            errno => {
                return Err(NssError {
                    what: format!("looking up user {login}"),
                    errno,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_in_group_root_and_unknown_names_are_none() {
        let directory = SystemDirectory;
        assert_eq!(directory.group_id("root"), Ok(Some(0)));
        assert_eq!(directory.group_id("no-such-group-pam-ticket"), Ok(None));
        assert_eq!(directory.group_id("nul\0byte"), Ok(None));
        let groups = directory.groups_of("root").expect("NSS answers");
        assert_eq!(groups.as_ref().and_then(|list| list.first()), Some(&0));
        assert_eq!(directory.groups_of("no-such-user-pam-ticket"), Ok(None));
    }

    /// A directory that answers after `delay` (real time), or never.
    #[derive(Clone)]
    struct Slow(std::time::Duration);

    impl Directory for Slow {
        fn group_id(&self, _name: &str) -> Result<Option<Gid>, NssError> {
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(self.0);
            Ok(Some(0))
        }
        fn groups_of(&self, _login: &str) -> Result<Option<Vec<Gid>>, NssError> {
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(self.0);
            Ok(Some(vec![0]))
        }
    }

    #[test]
    fn a_hung_name_service_is_an_error_at_the_deadline_never_an_answer() {
        use crate::clock::{Clock, SystemClock};
        let clock = SystemClock;
        let started = clock.monotonic();
        let hung = Bounded::new(
            Slow(std::time::Duration::from_secs(30)),
            Deadline::new(&clock, std::time::Duration::from_millis(200)),
        );
        let error = hung.groups_of("alice").expect_err("no answer in time");
        assert_eq!(error.errno, libc::ETIMEDOUT);
        assert_eq!(
            error.what,
            "listing the groups of alice: no answer before the deadline"
        );
        let waited = clock.since(started);
        assert!(
            waited < std::time::Duration::from_secs(2),
            "waited {waited:?}"
        );
        // Past the deadline, nothing more is asked.
        let error = hung.group_id("root").expect_err("deadline gone");
        assert_eq!(error.errno, libc::ETIMEDOUT);

        let quick = Bounded::new(
            Slow(std::time::Duration::from_millis(1)),
            Deadline::new(&clock, std::time::Duration::from_secs(5)),
        );
        assert_eq!(quick.groups_of("alice"), Ok(Some(vec![0])));
        assert_eq!(
            Bounded::new(
                SystemDirectory,
                Deadline::new(&clock, std::time::Duration::from_secs(5))
            )
            .group_id("root"),
            Ok(Some(0))
        );
    }
}
