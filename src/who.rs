//! Who must present a ticket: Groups, ExemptGroups and ExemptUsers, decided from the
//! name service before anything is asked.
//!
//! Precedence, first match wins:
//! 1. the login is in ExemptUsers: exempt (no lookup needed);
//! 2. the login is a member of a group in ExemptGroups: exempt;
//! 3. Groups is set and the login is a member of none of them: exempt ("not asked");
//! 4. otherwise the login is asked.
//!
//! So an exemption always beats Groups. Membership is the login's primary group and its
//! supplementary groups (`getgrouplist`). An exemption needs a fact, never an absence: a
//! login the name service does not know is asked, and so is one whose groups the name
//! service cannot tell (an error, or no answer before the deadline). That is stricter
//! than "FailMode decides": a name service that fails is not the ticketing system being
//! down, so it never grants a failsafe login without a ticket; the person is asked, and
//! the ticketing system (and, if that is down, FailMode) decides.
//!
//! `Groups` exempts by absence (not a member of any listed group), and glibc's
//! `getgrouplist` skips a source that is unavailable without an error: a member whose
//! group comes only from that source then looks like a non-member. `ExemptGroups` fails
//! the other way (a member not seen is asked), which is why the man page prefers it.

use crate::config::{GroupName, People};
use crate::nss::{Directory, NssError};

/// Whether this login must present a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Ask for a ticket.
    Yes,
    /// Not asked: PAM_IGNORE, audited as `decision=exempt` with this reason.
    Exempt { reason: String },
}

/// Why it could not be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhoError {
    /// The name service could not tell (an error, or no answer in time): the login is
    /// asked, as if no exemption applied.
    NameService(NssError),
    /// A configured group no longer exists (it did when the configuration loaded).
    UnknownGroup { name: String, origin: String },
}

impl std::fmt::Display for WhoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WhoError::NameService(error) => write!(f, "the name service could not tell: {error}"),
            WhoError::UnknownGroup { name, origin } => {
                write!(f, "{origin}: there is no group {name:?}")
            }
        }
    }
}

/// Decides whether `login` (PAM_USER, the local account) is asked for a ticket. No
/// lookup is made when no key decides who is asked, and the login's groups are listed
/// only when a group key needs them.
pub fn decide(people: &People, login: &str, directory: &dyn Directory) -> Result<Asked, WhoError> {
    if people.exempt_users.iter().any(|exempt| exempt == login) {
        return Ok(Asked::Exempt {
            reason: format!("{login} is listed in ExemptUsers"),
        });
    }
    if people.exempt_groups.is_empty() && people.groups.is_none() {
        return Ok(Asked::Yes);
    }
    let Some(member_of) = directory.groups_of(login).map_err(WhoError::NameService)? else {
        return Ok(Asked::Yes);
    };
    if let Some(group) = first_member_group(&people.exempt_groups, &member_of, directory)? {
        return Ok(Asked::Exempt {
            reason: format!("{login} is a member of {group}, listed in ExemptGroups"),
        });
    }
    if let Some(groups) = &people.groups
        && first_member_group(groups, &member_of, directory)?.is_none()
    {
        let names: Vec<&str> = groups.iter().map(|group| group.name.as_str()).collect();
        return Ok(Asked::Exempt {
            reason: format!(
                "{login} is not a member of any group in Groups ({}), so is not asked",
                names.join(", ")
            ),
        });
    }
    Ok(Asked::Yes)
}

/// The first of `groups` whose ID is in `member_of`.
fn first_member_group<'a>(
    groups: &'a [GroupName],
    member_of: &[crate::nss::Gid],
    directory: &dyn Directory,
) -> Result<Option<&'a str>, WhoError> {
    for group in groups {
        // Looked up once per PAM call: at the load when the name service answered then.
        let gid = match group.gid {
            Some(gid) => gid,
            None => directory
                .group_id(&group.name)
                .map_err(WhoError::NameService)?
                .ok_or_else(|| WhoError::UnknownGroup {
                    name: group.name.clone(),
                    origin: group.origin.to_string(),
                })?,
        };
        if member_of.contains(&gid) {
            return Ok(Some(&group.name));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;
    use crate::nss::Gid;
    use std::cell::Cell;
    use std::path::PathBuf;

    /// Groups ops (10), dba (20), breakglass (30); alice is in ops (primary) and dba,
    /// bob in breakglass, carol in nothing known; "broken" makes the service fail.
    struct FakeDirectory {
        lookups: Cell<usize>,
    }

    impl Directory for FakeDirectory {
        fn group_id(&self, name: &str) -> Result<Option<Gid>, NssError> {
            Ok(match name {
                "ops" => Some(10),
                "dba" => Some(20),
                "breakglass" => Some(30),
                _ => None,
            })
        }

        fn groups_of(&self, login: &str) -> Result<Option<Vec<Gid>>, NssError> {
            self.lookups.set(self.lookups.get() + 1);
            match login {
                "alice" => Ok(Some(vec![10, 20])),
                "bob" => Ok(Some(vec![30])),
                "carol" => Ok(Some(vec![99])),
                "broken" => Err(NssError {
                    what: "looking up user broken".to_string(),
                    errno: libc::EIO,
                }),
                _ => Ok(None),
            }
        }
    }

    fn groups(names: &[&str]) -> Vec<GroupName> {
        names
            .iter()
            .map(|name| GroupName {
                name: name.to_string(),
                origin: Origin::File {
                    path: PathBuf::from("/etc/security/pam_ticket.conf"),
                    line: 7,
                },
                gid: None,
            })
            .collect()
    }

    fn directory() -> FakeDirectory {
        FakeDirectory {
            lookups: Cell::new(0),
        }
    }

    #[test]
    fn nobody_is_exempt_and_nothing_is_looked_up_by_default() {
        let directory = directory();
        assert_eq!(
            decide(&People::default(), "alice", &directory),
            Ok(Asked::Yes)
        );
        assert_eq!(directory.lookups.get(), 0);
    }

    #[test]
    fn exemptions_beat_groups() {
        let people = People {
            groups: Some(groups(&["ops"])),
            exempt_groups: groups(&["dba", "breakglass"]),
            exempt_users: vec!["carol".to_string()],
            ..People::default()
        };
        let directory = directory();
        assert_eq!(
            decide(&people, "alice", &directory),
            Ok(Asked::Exempt {
                reason: "alice is a member of dba, listed in ExemptGroups".to_string()
            })
        );
        assert_eq!(
            decide(&people, "carol", &directory),
            Ok(Asked::Exempt {
                reason: "carol is listed in ExemptUsers".to_string()
            })
        );
        // ExemptUsers needs no lookup.
        assert_eq!(directory.lookups.get(), 1);
    }

    #[test]
    fn only_members_of_groups_are_asked_and_unknown_users_are_asked() {
        let people = People {
            groups: Some(groups(&["ops", "dba"])),
            ..People::default()
        };
        let directory = directory();
        assert_eq!(decide(&people, "alice", &directory), Ok(Asked::Yes));
        assert_eq!(
            decide(&people, "bob", &directory),
            Ok(Asked::Exempt {
                reason: "bob is not a member of any group in Groups (ops, dba), so is not asked"
                    .to_string()
            })
        );
        assert_eq!(decide(&people, "nobody-known", &directory), Ok(Asked::Yes));
    }

    #[test]
    fn a_failing_name_service_is_unavailable_and_a_vanished_group_an_error() {
        let people = People {
            exempt_groups: groups(&["breakglass"]),
            ..People::default()
        };
        assert!(matches!(
            decide(&people, "broken", &directory()),
            Err(WhoError::NameService(NssError { errno, .. })) if errno == libc::EIO
        ));
        let people = People {
            groups: Some(groups(&["gone"])),
            ..People::default()
        };
        assert_eq!(
            decide(&people, "alice", &directory()),
            Err(WhoError::UnknownGroup {
                name: "gone".to_string(),
                origin: "/etc/security/pam_ticket.conf:7".to_string()
            })
        );
    }

    /// A group whose ID the configuration's load already read is not looked up again:
    /// here "staff" is unknown to the directory, so only the loaded ID can make alice a
    /// member, and bob, not in it, is still asked.
    #[test]
    fn an_id_read_at_the_load_is_not_looked_up_again() {
        let mut exempt = groups(&["staff"]);
        exempt[0].gid = Some(20);
        let people = People {
            exempt_groups: exempt,
            ..People::default()
        };
        assert_eq!(
            decide(&people, "alice", &directory()),
            Ok(Asked::Exempt {
                reason: "alice is a member of staff, listed in ExemptGroups".to_string()
            })
        );
        assert_eq!(decide(&people, "bob", &directory()), Ok(Asked::Yes));
    }
}
