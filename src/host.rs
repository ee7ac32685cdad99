//! The gateway's own names, for ValidateConfigurationItem: TargetName when set, else the
//! canonical name of `gethostname()` (its FQDN, from the resolver) and `gethostname()` as
//! it is.
//!
//! The resolver is asked in a thread of its own, waited for only until the deadline: a
//! slow DNS server must not hold a login past the one deadline every request shares. A
//! name that cannot be had only narrows what a CI may match, so a failure here is never
//! an outage and never widens anything.

use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::time::Duration;

use crate::config::CiCheck;

/// The names a ticket's configuration item must match, in the order they are shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetNames {
    pub names: Vec<String>,
}

impl TargetNames {
    /// The names for `check`: TargetName, or this host's canonical FQDN and
    /// `gethostname()`, each once. `time_left` bounds the resolver's answer.
    pub fn for_check(check: &CiCheck, time_left: Option<Duration>) -> TargetNames {
        if let Some(name) = &check.target_name {
            return TargetNames {
                names: vec![name.clone()],
            };
        }
        let mut names = Vec::new();
        let host = hostname::get()
            .ok()
            .and_then(|name| name.into_string().ok())
            .filter(|name| !name.is_empty());
        if let Some(host) = host {
            if let Some(canonical) = time_left.and_then(|left| canonical_name(&host, left))
                && !canonical.eq_ignore_ascii_case(&host)
            {
                names.push(canonical);
            }
            names.push(host);
        }
        TargetNames { names }
    }

    /// `a, b` for messages.
    pub fn describe(&self) -> String {
        if self.names.is_empty() {
            return "(this gateway's name could not be read)".to_string();
        }
        self.names
            .iter()
            .map(|name| crate::sanitise::sanitise(name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The resolver's canonical name for `host` (`getaddrinfo` with `AI_CANONNAME`), when it
/// answers within `time_left`.
fn canonical_name(host: &str, time_left: Duration) -> Option<String> {
    let host = CString::new(host).ok()?;
    let (sender, receiver) = mpsc::channel();
    // The thread is left to finish on its own if the deadline comes first; its answer is
    // then dropped with the channel.
    std::thread::Builder::new()
        .name("pam_ticket-canonname".to_string())
        .spawn(move || {
            let _ = sender.send(resolve_canonical(&host));
        })
        .ok()?;
    receiver.recv_timeout(time_left).ok().flatten()
}

fn resolve_canonical(host: &CStr) -> Option<String> {
    // SAFETY: addrinfo is a plain C struct for which all-zero bytes is a valid value (null
    // pointers, zero lengths); only the hint fields are set below.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `host` is a NUL-terminated string that outlives the call, the service is
    // null (allowed when a node is given), `hints` is a valid addrinfo, and `found` is a
    // valid place for the result list, which is freed below.
    let status = unsafe { libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut found) };
    if status != 0 || found.is_null() {
        return None;
    }
    // SAFETY: getaddrinfo succeeded, so `found` points at the first entry of a list it
    // allocated; with AI_CANONNAME the first entry's ai_canonname is null or a
    // NUL-terminated string owned by that list, copied out before the list is freed.
    let canonical = unsafe {
        let name = (*found).ai_canonname;
        (!name.is_null()).then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
    };
    // SAFETY: `found` came from a successful getaddrinfo and is freed exactly once.
    unsafe { libc::freeaddrinfo(found) };
    canonical.filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_name_replaces_the_host_names() {
        let check = CiCheck {
            target_name: Some("app07.example.com".to_string()),
            match_short_name: false,
        };
        assert_eq!(
            TargetNames::for_check(&check, None).names,
            ["app07.example.com"]
        );
    }

    #[test]
    fn the_host_name_is_always_among_the_names() {
        let check = CiCheck {
            target_name: None,
            match_short_name: false,
        };
        let host = hostname::get()
            .expect("hostname")
            .into_string()
            .expect("utf-8");
        let names = TargetNames::for_check(&check, Some(Duration::from_secs(5))).names;
        assert_eq!(names.last(), Some(&host), "{names:?}");
        // Without time for the resolver, gethostname() alone.
        assert_eq!(TargetNames::for_check(&check, None).names, [host]);
    }
}
