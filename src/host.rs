//! ValidateConfigurationItem: the gateway's own names (TargetName when set, else the
//! canonical name of `gethostname()`, its FQDN from the resolver, and `gethostname()` as
//! it is), and whether one of a ticket's configuration items is one of them (a pure
//! function, like every check of [`crate::policy`]).
//!
//! The resolver is asked in a thread of its own, waited for only until the deadline: a
//! slow DNS server must not hold a login past the one deadline every request shares. A
//! name that cannot be had only narrows what a CI may match, so a failure here is never
//! an outage and never widens anything.

use std::ffi::{CStr, CString};
use std::time::Duration;

use std::net::IpAddr;

use crate::config::CiCheck;
use crate::policy::Verdict;
use crate::sanitise::{has_hidden_characters, sanitise};
use crate::ticket::{ConfigurationItem, Ticket};

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
        if let Some(host) = machine_name() {
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
            .map(|name| sanitise(name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// This gateway's fully qualified name, as the work notes show it: the resolver's
/// canonical name of `gethostname()` when it answers within `time_left`, else
/// `gethostname()` as it is.
pub fn fqdn(time_left: Duration) -> String {
    let Some(host) = machine_name() else {
        return "(unknown host)".to_string();
    };
    canonical_name(&host, time_left).unwrap_or(host)
}

/// `gethostname()`, when it is set and UTF-8: this machine's own name, without asking the
/// resolver (so it costs nothing and never waits).
pub fn machine_name() -> Option<String> {
    hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
}

/// The resolver's canonical name for `host` (`getaddrinfo` with `AI_CANONNAME`), when it
/// answers within `time_left`.
fn canonical_name(host: &str, time_left: Duration) -> Option<String> {
    let host = CString::new(host).ok()?;
    crate::clock::answer_within("pam_ticket-canonname", time_left, move || {
        resolve_canonical(&host)
    })
    .ok()
    .flatten()
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

/// Whether one of the ticket's configuration items is this gateway: a CI's name, FQDN or
/// host name equal to a target name (case folded, a trailing dot ignored), its IP address
/// equal to a target that is an IP address, or, with CIMatchShortName, the first labels
/// of a CI name and a target name equal. Names are compared as the server sent them: one
/// that holds a control or invisible character matches nothing.
pub fn check_configuration_item(
    ticket: &Ticket,
    target: &TargetNames,
    short_names: bool,
) -> Verdict {
    let items = ticket.configuration_items.as_deref().unwrap_or_default();
    let named: Vec<String> = items
        .iter()
        .map(|item| sanitise(&item.name))
        .filter(|name| !name.is_empty())
        .collect();
    if items.is_empty() {
        return Verdict::Fail(format!(
            "{} {} names no configuration item; it must name this gateway ({})",
            ticket.kind.noun(),
            ticket.id,
            target.describe()
        ));
    }
    for item in items {
        for name in &target.names {
            if let Some(how) = ci_matches(item, name, short_names) {
                return Verdict::Pass(format!(
                    "configuration item {} matches {} by {how}",
                    sanitise(&item.name),
                    sanitise(name)
                ));
            }
        }
    }
    Verdict::Fail(format!(
        "{} {} names configuration item {}, not this gateway ({})",
        ticket.kind.noun(),
        ticket.id,
        if named.is_empty() {
            "(without a name)".to_string()
        } else {
            named.join(", ")
        },
        target.describe()
    ))
}

/// How `item` matches the target name `name`, if it does.
fn ci_matches(item: &ConfigurationItem, name: &str, short_names: bool) -> Option<&'static str> {
    let name = name.trim();
    if name.is_empty() || has_hidden_characters(name) {
        return None;
    }
    if let Ok(address) = name.parse::<IpAddr>() {
        // An IP literal matches the CI's IP address, and nothing else.
        return item
            .ip_address
            .as_deref()
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
            .filter(|ip| *ip == address)
            .map(|_| "ip_address");
    }
    let fold = |text: &str| text.trim_end_matches('.').to_lowercase();
    let wanted = fold(name);
    let texts = [
        ("name", Some(item.name.as_str())),
        ("fqdn", item.fqdn.as_deref()),
        ("host_name", item.host_name.as_deref()),
    ];
    let usable = |text: &&str| !text.is_empty() && !has_hidden_characters(text);
    for (field, text) in texts {
        if text.filter(usable).is_some_and(|text| fold(text) == wanted) {
            return Some(field);
        }
    }
    if short_names {
        let first_label = |text: &str| fold(text).split('.').next().unwrap_or_default().to_string();
        let wanted = first_label(name);
        for (_, text) in texts {
            if let Some(text) = text.filter(usable)
                && text.parse::<IpAddr>().is_err()
                && !wanted.is_empty()
                && first_label(text) == wanted
            {
                return Some("short name");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{Choice, TicketKind};

    fn incident(state: Choice) -> Ticket {
        Ticket {
            id: "INC0010002".to_string(),
            kind: TicketKind::Incident,
            state: Some(state),
            approval: None,
            planned_start: None,
            planned_end: None,
            requesters: Vec::new(),
            assignee: None,
            assignment_group: None,
            group_member: None,
            unanswered: Vec::new(),
            record_id: None,
            configuration_items: None,
        }
    }

    fn ci_ticket(items: Vec<ConfigurationItem>) -> Ticket {
        let mut ticket = incident(Choice::new("New", "1"));
        ticket.configuration_items = Some(items);
        ticket
    }

    fn server(name: &str, ip: &str, fqdn: Option<&str>) -> ConfigurationItem {
        ConfigurationItem {
            name: name.to_string(),
            ip_address: Some(ip.to_string()),
            fqdn: fqdn.map(str::to_string),
            host_name: None,
            class: Some("cmdb_ci_linux_server".to_string()),
        }
    }

    fn ci_verdict(ticket: &Ticket, target: &[&str], short: bool) -> Verdict {
        let target = TargetNames {
            names: target.iter().map(|name| name.to_string()).collect(),
        };
        check_configuration_item(ticket, &target, short)
    }

    #[test]
    fn ci_names_match_exactly_and_case_insensitively() {
        let ticket = ci_ticket(vec![server(
            "App07",
            "192.0.2.7",
            Some("app07.example.com."),
        )]);
        for target in ["app07", "APP07.EXAMPLE.COM", "app07.example.com."] {
            assert!(
                matches!(ci_verdict(&ticket, &[target], false), Verdict::Pass(_)),
                "{target}"
            );
        }
        for target in [
            "app0",
            "app07.example",
            "app07.example.com.evil",
            "",
            "app\u{200B}07",
        ] {
            assert!(
                matches!(ci_verdict(&ticket, &[target], false), Verdict::Fail(_)),
                "{target:?}"
            );
        }
        // Short names, either way round, only when asked for.
        for target in ["app07.other.example", "APP07"] {
            assert!(matches!(
                ci_verdict(&ticket, &[target], true),
                Verdict::Pass(_)
            ));
        }
        assert!(matches!(
            ci_verdict(&ticket, &["app07.other.example"], false),
            Verdict::Fail(_)
        ));
        // A CI whose name holds a hidden character matches nothing.
        let hidden = ci_ticket(vec![server("app07\u{0}", "", None)]);
        assert!(matches!(
            ci_verdict(&hidden, &["app07"], true),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn an_ip_target_matches_the_ip_address_only() {
        let ticket = ci_ticket(vec![
            server("192.0.2.8", "192.0.2.7", None),
            server("v6", "2001:db8::7", None),
        ]);
        assert!(matches!(
            ci_verdict(&ticket, &["192.0.2.7"], false),
            Verdict::Pass(_)
        ));
        assert!(matches!(
            ci_verdict(&ticket, &["2001:0db8:0:0::7"], false),
            Verdict::Pass(_)
        ));
        // The CI named like an address is not matched by name, nor by its first label.
        assert!(matches!(
            ci_verdict(&ticket, &["192.0.2.8"], true),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            ci_verdict(&ticket, &["192.1.1.1"], true),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn a_refusal_names_the_cis_and_the_target() {
        let none = ci_ticket(Vec::new());
        assert_eq!(
            ci_verdict(&none, &["gw1.example.com", "gw1"], false),
            Verdict::Fail(
                "Ticket INC0010002 names no configuration item; it must name this gateway (gw1.example.com, gw1)"
                    .to_string()
            )
        );
        let two = ci_ticket(vec![
            server("web01", "", None),
            server("db\u{1b}02", "", None),
        ]);
        assert_eq!(
            ci_verdict(&two, &["gw1"], false),
            Verdict::Fail(
                "Ticket INC0010002 names configuration item web01, db 02, not this gateway (gw1)"
                    .to_string()
            )
        );
        // Without the gateway's names nothing can match.
        assert!(matches!(
            ci_verdict(&ci_ticket(vec![server("gw1", "", None)]), &[], true),
            Verdict::Fail(_)
        ));
    }

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
