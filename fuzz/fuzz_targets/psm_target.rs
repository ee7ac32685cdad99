//! The PSM for SSH target in PAM_USER (portal mode):
//! `vaultuser@targetuser[#domain]@address[#port]`, through
//! `login::parse_connection_string`, `Login::new` and `Target::check_well_formed`, and
//! the texts built from it.
//!
//! Input: PAM_USER (UTF-8 without NUL, as pam_get_user hands it over). Invariants: no
//! panic; a parsed target puts the string back together exactly; its parts are non-empty
//! and hold no separator; a well-formed target holds nothing that could change the
//! meaning of a portal search; messages and the Retrieve reason are sanitised.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pam_ticket::backend::portal;
use pam_ticket::login::{self, Login};
use pam_ticket_fuzz::assert_shown_text;

fuzz_target!(|data: &[u8]| {
    let Ok(pam_user) = std::str::from_utf8(data) else {
        return;
    };
    if pam_user.contains('\0') {
        return;
    }
    let login = Login::new(
        pam_user,
        Some("192.0.2.7".to_string()),
        Some("sshd".to_string()),
    );
    assert_eq!(login.pam_user, pam_user);
    assert_shown_text(
        &portal::no_target_message(pam_user),
        "the no-target message",
    );
    let Some(target) = &login.target else {
        assert_eq!(login.person, pam_user);
        assert_eq!(login::parse_connection_string(pam_user), None);
        return;
    };
    assert_eq!(
        login::parse_connection_string(pam_user),
        Some((login.person.clone(), target.clone()))
    );

    assert!(!login.person.is_empty() && !target.user.is_empty() && !target.address.is_empty());
    assert!(!target.user.contains(['@', '#']), "user {:?}", target.user);
    assert!(
        !target.address.contains(['@', '#']),
        "address {:?}",
        target.address
    );
    if let Some(domain) = &target.domain {
        assert!(!domain.contains('@'), "domain {domain:?}");
    }
    let mut rebuilt = format!("{}@{}", login.person, target.user);
    if let Some(domain) = &target.domain {
        rebuilt.push('#');
        rebuilt.push_str(domain);
    }
    rebuilt.push('@');
    rebuilt.push_str(&target.address);
    match target.port {
        None => assert_eq!(rebuilt, pam_user),
        Some(port) => {
            let port_text = pam_user
                .strip_prefix(&rebuilt)
                .and_then(|rest| rest.strip_prefix('#'))
                .unwrap_or_else(|| panic!("{pam_user:?} is not {rebuilt:?}#port"));
            assert_eq!(port_text.parse::<u16>().ok(), Some(port));
        }
    }

    if target.check_well_formed().is_ok() {
        let parts = [
            Some(&target.user),
            target.domain.as_ref(),
            Some(&target.address),
        ];
        for part in parts.into_iter().flatten() {
            assert!(!part.is_empty() && part.len() <= 253, "{part:?}");
            assert!(
                part.bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b".-_:$".contains(&byte)),
                "a well-formed target part {part:?}"
            );
        }
        assert!(target.user.len() <= 64);
    }
    let reason = portal::expand_reason("SSH connection by %u to %t@%h (%x, 100%%)", &login, target);
    assert_shown_text(&reason, "the Retrieve reason");
});
