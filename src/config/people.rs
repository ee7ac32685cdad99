//! The keys about people: who must present a ticket (Groups, ExemptGroups, ExemptUsers),
//! who the person is in the ticketing system (UserMatchField, UserMatchDomain,
//! UserMapFile) and which relations to the ticket let them in (AllowedUserRoles).

use std::collections::BTreeMap;
use std::path::Path;

use super::keys::{Key, Mode};
use super::settings::Settings;
use super::syntax::{ConfigError, Origin, error, split_list};
use super::{RemedyPeople, TicketingSystem};
use crate::clock::{Deadline, SystemClock};
use crate::nss::{Bounded, Directory, SystemDirectory};

/// How long loading the configuration waits for the name service to say whether the
/// groups it names exist, all of them together.
const GROUP_CHECK_LIMIT: std::time::Duration = std::time::Duration::from_secs(3);
use crate::sanitise::has_hidden_characters;

/// The sys_user field a person is matched on (ServiceNow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserMatchField {
    UserName,
    Email,
    EmployeeNumber,
}

impl UserMatchField {
    /// The field's name in sys_user.
    pub fn field(self) -> &'static str {
        match self {
            UserMatchField::UserName => "user_name",
            UserMatchField::Email => "email",
            UserMatchField::EmployeeNumber => "employee_number",
        }
    }
}

/// A relation between a person and a ticket that AllowedUserRoles can accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UserRole {
    Requester,
    Assignee,
    AssignmentGroup,
}

impl UserRole {
    /// The name in AllowedUserRoles and in messages.
    pub fn name(self) -> &'static str {
        match self {
            UserRole::Requester => "requester",
            UserRole::Assignee => "assignee",
            UserRole::AssignmentGroup => "assignment_group",
        }
    }
}

/// A group named in Groups or ExemptGroups, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupName {
    pub name: String,
    pub origin: Origin,
    /// Its ID as the name service gave it when the configuration was loaded (at this
    /// same PAM call); `None` when it did not answer then, and the login asks again.
    pub gid: Option<crate::nss::Gid>,
}

/// The identities of UserMapFile: login → identity in the ticketing system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserMap {
    entries: BTreeMap<String, String>,
    /// The line of each login, for errors found after parsing.
    lines: BTreeMap<String, usize>,
}

/// Whether `text` cannot be carried by a ServiceNow encoded query as one value: ServiceNow
/// documents no escape, so `^` would start a new condition (`^NQ` a new OR'd query), a
/// value starting `javascript:` is run on the server, and control or invisible characters
/// have no place in a name. Whether the instance trims a value before it looks for
/// `javascript:` is not documented, so a name with leading or trailing white space, or
/// with `javascript:` anywhere in it (any case), is refused too: no real name needs either.
pub fn breaks_encoded_query(text: &str) -> bool {
    text.is_empty()
        || text.len() > 256
        || text.contains('^')
        || has_hidden_characters(text)
        || text.trim() != text
        || text.to_ascii_lowercase().contains("javascript:")
}

impl UserMap {
    /// The identity the file gives `login`, if it names it.
    pub fn get(&self, login: &str) -> Option<&str> {
        self.entries.get(login).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Everything about people, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct People {
    /// `Some` when Groups is set: only their members are asked.
    pub groups: Option<Vec<GroupName>>,
    pub exempt_groups: Vec<GroupName>,
    pub exempt_users: Vec<String>,
    pub match_field: UserMatchField,
    pub match_domain: Option<String>,
    pub user_map: Option<UserMap>,
    /// AllowedUserRoles: any one lets the person in (when ValidateRequestingUser=Yes).
    pub roles: Vec<UserRole>,
}

impl Default for People {
    /// Everyone asked, matched on user_name as PAM_USER, requester only: the behaviour
    /// before these keys existed.
    fn default() -> People {
        People {
            groups: None,
            exempt_groups: Vec::new(),
            exempt_users: Vec::new(),
            match_field: UserMatchField::UserName,
            match_domain: None,
            user_map: None,
            roles: vec![UserRole::Requester],
        }
    }
}

impl People {
    /// Who `person` (PAM_USER, or the vault user of a connection string) is in the
    /// ticketing system: the UserMapFile entry, else the person with `@UserMatchDomain`
    /// appended when matching on email, else the person as is.
    pub fn identity_of(&self, person: &str) -> String {
        if let Some(mapped) = self.user_map.as_ref().and_then(|map| map.get(person)) {
            return mapped.to_string();
        }
        match (&self.match_domain, self.match_field) {
            (Some(domain), UserMatchField::Email) if !person.contains('@') => {
                format!("{person}@{domain}")
            }
            _ => person.to_string(),
        }
    }

    /// Whether any key decides who is asked.
    pub fn decides_who_is_asked(&self) -> bool {
        self.groups.is_some() || !self.exempt_groups.is_empty() || !self.exempt_users.is_empty()
    }
}

/// The keys of this file that only make sense where the gateway itself asks the
/// ticketing system (portal mode: the portal owns these checks).
const DIRECT_ONLY: [Key; 7] = [
    Key::AllowedUserRoles,
    Key::Groups,
    Key::ExemptGroups,
    Key::ExemptUsers,
    Key::UserMatchField,
    Key::UserMatchDomain,
    Key::UserMapFile,
];

impl Settings {
    /// The people keys; `mode` is `None` when it could not be told (already reported).
    pub(super) fn people(
        &self,
        portal_mode: Option<bool>,
        system: Option<TicketingSystem>,
        validate_requesting_user: Option<bool>,
    ) -> Option<People> {
        let mode = match (portal_mode, system) {
            (Some(true), _) => Some(Mode::Portal),
            (Some(false), Some(TicketingSystem::BmcRemedy)) => Some(Mode::Remedy),
            (Some(false), Some(TicketingSystem::ServiceNow)) => Some(Mode::ServiceNow),
            _ => None,
        };
        self.refuse_outside_their_modes(mode);
        let groups = self.check(|| {
            self.entry(Key::Groups)
                .map(|_| self.group_names(Key::Groups))
                .transpose()
        });
        let exempt_groups = self.check(|| self.group_names(Key::ExemptGroups));
        let exempt_users = self.check(|| self.logins(Key::ExemptUsers));
        let match_field = self.check(|| self.match_field());
        let match_domain = self.check(|| self.match_domain(match_field));
        let user_map = self.check(|| self.user_map(mode));
        let roles = self.check(|| self.roles(validate_requesting_user));
        Some(People {
            groups: groups?,
            exempt_groups: exempt_groups?,
            exempt_users: exempt_users?,
            match_field: match_field?,
            match_domain: match_domain?,
            user_map: user_map?,
            roles: roles?,
        })
    }

    /// Remedy's assignee, assignment group and support group fields, with the roles
    /// whose fields the entry query fetches.
    pub(super) fn remedy_people(&self, people: Option<&People>) -> Option<RemedyPeople> {
        let text = |key: Key| self.check(|| self.non_empty_text(key, None));
        let incident_assignee_field = text(Key::RemedyIncidentAssigneeField);
        let incident_group_field = text(Key::RemedyIncidentAssignedGroupField);
        let change_assignee_field = text(Key::RemedyChangeAssigneeField);
        let change_group_field = text(Key::RemedyChangeAssignedGroupField);
        let support_group_form = text(Key::RemedySupportGroupForm);
        let support_group_login_field = text(Key::RemedySupportGroupLoginField);
        let support_group_id_field = text(Key::RemedySupportGroupIDField);
        Some(RemedyPeople {
            incident_assignee_field: incident_assignee_field?,
            incident_group_field: incident_group_field?,
            change_assignee_field: change_assignee_field?,
            change_group_field: change_group_field?,
            support_group_form: support_group_form?,
            support_group_login_field: support_group_login_field?,
            support_group_id_field: support_group_id_field?,
            roles: people?.roles.clone(),
        })
    }

    /// A key of this file set where it cannot work is refused, never ignored: in portal
    /// mode the portal validates the ticket and the login is a connection string, not a
    /// local account; UserMatchField and UserMatchDomain name ServiceNow's sys_user.
    fn refuse_outside_their_modes(&self, mode: Option<Mode>) {
        let Some(mode) = mode else {
            return;
        };
        for key in DIRECT_ONLY {
            let Some(entry) = self.entry(key) else {
                continue;
            };
            if key.spec().modes.allows(mode) {
                continue;
            }
            let why = match mode {
                Mode::Portal => {
                    "in portal mode (FetchCredentialsThroughPVWA=Yes) the portal validates the ticket and owns these checks; configure them in the portal and remove it here"
                }
                Mode::Remedy | Mode::ServiceNow => {
                    "it names a field of ServiceNow's sys_user; with BMCRemedy choose the compared fields with the Remedy*Field keys and map logins with UserMapFile"
                }
            };
            let mode_name = match mode {
                Mode::Portal => "portal mode",
                Mode::Remedy => "BMCRemedy",
                Mode::ServiceNow => "ServiceNow",
            };
            self.report(error(
                &entry.origin,
                format!("{key} has no effect with {mode_name}: {why}"),
            ));
        }
    }

    /// Group names that must exist: an unknown one is a configuration error here, at the
    /// line that names it. A name service that cannot answer now is not: the login looks
    /// the group up again, and an error then exempts nobody (see [`crate::who`]).
    fn group_names(&self, key: Key) -> Result<Vec<GroupName>, ConfigError> {
        let Some(entry) = self.entry(key) else {
            return Ok(Vec::new());
        };
        let names = split_list(&entry.value);
        if names.is_empty() {
            return Err(error(
                &entry.origin,
                format!("{key} is set but names no group; remove it or name one"),
            ));
        }
        // A hung name service must not hang the load: an unanswered lookup is not
        // "unknown" here, and the login looks the group up again under its own deadline.
        let clock = SystemClock;
        let directory = Bounded::new(SystemDirectory, Deadline::new(&clock, GROUP_CHECK_LIMIT));
        let mut groups = Vec::with_capacity(names.len());
        for name in names {
            let gid = match directory.group_id(&name) {
                Ok(Some(gid)) => Some(gid),
                Ok(None) => {
                    return Err(error(
                        &entry.origin,
                        format!(
                            "{key}: there is no group {name:?} (getent group {name} finds none)"
                        ),
                    ));
                }
                Err(_) => None,
            };
            groups.push(GroupName {
                name,
                origin: entry.origin.clone(),
                gid,
            });
        }
        Ok(groups)
    }

    fn logins(&self, key: Key) -> Result<Vec<String>, ConfigError> {
        let Some(entry) = self.entry(key) else {
            return Ok(Vec::new());
        };
        let names = split_list(&entry.value);
        if names.is_empty() {
            return Err(error(
                &entry.origin,
                format!("{key} is set but names no login; remove it or name one"),
            ));
        }
        Ok(names)
    }

    fn match_field(&self) -> Result<UserMatchField, ConfigError> {
        let (value, origin) = self.text(Key::UserMatchField, None)?;
        match value.trim() {
            "user_name" => Ok(UserMatchField::UserName),
            "email" => Ok(UserMatchField::Email),
            "employee_number" => Ok(UserMatchField::EmployeeNumber),
            other => Err(error(
                &origin,
                format!(
                    "UserMatchField must be user_name, email or employee_number, not {other:?}"
                ),
            )),
        }
    }

    /// A domain is only appended to make an email address.
    fn match_domain(
        &self,
        match_field: Option<UserMatchField>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(entry) = self.entry(Key::UserMatchDomain) else {
            return Ok(None);
        };
        let domain = entry.value.trim().trim_start_matches('@');
        let well_formed = !domain.is_empty()
            && domain.len() <= 253
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
        if !well_formed {
            return Err(error(
                &entry.origin,
                format!(
                    "UserMatchDomain must be a domain name such as corp.example.com, not {:?}",
                    entry.value
                ),
            ));
        }
        if let Some(field) = match_field
            && field != UserMatchField::Email
        {
            return Err(error(
                &self.blame(entry.origin.clone(), &[Key::UserMatchField]),
                format!(
                    "UserMatchDomain is set but UserMatchField is {}, so the domain would never be used; set UserMatchField=email or remove it",
                    field.field()
                ),
            ));
        }
        Ok(Some(domain.to_string()))
    }

    /// The map; with ServiceNow, an identity that no encoded query can carry is an error
    /// at its line here rather than a refused login later.
    fn user_map(&self, mode: Option<Mode>) -> Result<Option<UserMap>, ConfigError> {
        let Some((path, origin)) = self.absolute_path(Key::UserMapFile)? else {
            return Ok(None);
        };
        let text = super::read_root_only_file(&path)
            .map_err(|problem| error(&origin, format!("cannot use UserMapFile: {problem}")))?;
        let map = parse_user_map(&text, &path)?;
        if mode == Some(Mode::ServiceNow)
            && let Some((login, identity)) = map
                .entries
                .iter()
                .find(|(_, identity)| breaks_encoded_query(identity))
        {
            return Err(error(
                &Origin::File {
                    path: path.clone(),
                    line: map.lines.get(login).copied().unwrap_or(0),
                },
                format!(
                    "the identity of {login} ({}) cannot go into a ServiceNow query: it holds `^` or starts with `javascript:`",
                    crate::sanitise::sanitise(identity)
                ),
            ));
        }
        Ok(Some(map))
    }

    /// AllowedUserRoles, requester when not set; only with ValidateRequestingUser=Yes.
    fn roles(&self, validate_requesting_user: Option<bool>) -> Result<Vec<UserRole>, ConfigError> {
        let Some(entry) = self.entry(Key::AllowedUserRoles) else {
            return Ok(vec![UserRole::Requester]);
        };
        let mut roles = Vec::new();
        for name in split_list(&entry.value) {
            let role = match name.as_str() {
                "requester" => UserRole::Requester,
                "assignee" => UserRole::Assignee,
                "assignment_group" => UserRole::AssignmentGroup,
                other => {
                    let hint = crate::spelling::closest(
                        other,
                        ["requester", "assignee", "assignment_group"],
                    )
                    .map(|name| format!(" (did you mean {name}?)"))
                    .unwrap_or_default();
                    return Err(error(
                        &entry.origin,
                        format!(
                            "AllowedUserRoles: unknown role {other:?}{hint}; the roles are requester, assignee and assignment_group"
                        ),
                    ));
                }
            };
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        if roles.is_empty() {
            return Err(error(
                &entry.origin,
                "AllowedUserRoles names no role: nobody could ever pass",
            ));
        }
        if validate_requesting_user == Some(false) {
            return Err(error(
                &self.blame(entry.origin.clone(), &[Key::ValidateRequestingUser]),
                "AllowedUserRoles is set but ValidateRequestingUser is not Yes, so the roles would never be checked; set ValidateRequestingUser=Yes or remove it",
            ));
        }
        roles.sort();
        Ok(roles)
    }
}

/// `login = itsm-identity` lines; blank lines and lines starting with `#` are skipped.
/// Every error names its line. An identity must be one line of visible text: it is
/// compared with what the ticketing system holds and may reach a query.
pub fn parse_user_map(text: &str, path: &Path) -> Result<UserMap, ConfigError> {
    let mut entries = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: index + 1,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((login, identity)) = trimmed.split_once('=') else {
            return Err(error(&origin, "not a `login = itsm-identity` line"));
        };
        let (login, identity) = (login.trim(), identity.trim());
        if login.is_empty() || login.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(error(
                &origin,
                "the login before `=` must be one word without spaces",
            ));
        }
        if identity.is_empty() || has_hidden_characters(identity) || identity.len() > 256 {
            return Err(error(
                &origin,
                format!("the identity of {login} must be 1 to 256 characters of visible text"),
            ));
        }
        if let Some(first) = first_line.get(login) {
            return Err(error(
                &origin,
                format!("{login} is mapped twice (first at line {first})"),
            ));
        }
        first_line.insert(login.to_string(), index + 1);
        entries.insert(login.to_string(), identity.to_string());
    }
    Ok(UserMap {
        entries,
        lines: first_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_map_lines_and_their_errors() {
        let path = Path::new("/etc/security/pam_ticket.users");
        let map = parse_user_map(
            "# who is who\n\njdoe = john.doe@corp.example.com\n  ops1=E1002  \n",
            path,
        )
        .expect("valid");
        assert_eq!(map.get("jdoe"), Some("john.doe@corp.example.com"));
        assert_eq!(map.get("ops1"), Some("E1002"));
        assert_eq!(map.len(), 2);
        for (text, line, needle) in [
            ("jdoe john\n", 1, "not a `login = itsm-identity` line"),
            ("\nj doe = x\n", 2, "one word"),
            ("jdoe =\n", 1, "visible text"),
            ("jdoe = a\u{200B}b\n", 1, "visible text"),
            ("jdoe = a\njdoe = b\n", 2, "mapped twice (first at line 1)"),
        ] {
            let problem = parse_user_map(text, path).expect_err(text);
            assert_eq!(
                problem.origin.to_string(),
                format!("/etc/security/pam_ticket.users:{line}"),
                "{text:?}"
            );
            assert!(problem.problem.contains(needle), "{text:?}: {problem}");
        }
    }

    #[test]
    fn identity_is_the_map_then_the_domain_then_the_login() {
        let mut people = People {
            match_field: UserMatchField::Email,
            match_domain: Some("corp.example.com".to_string()),
            user_map: Some(
                parse_user_map("jdoe = john.doe@corp.example.com\n", Path::new("/m"))
                    .expect("valid"),
            ),
            ..People::default()
        };
        assert_eq!(people.identity_of("jdoe"), "john.doe@corp.example.com");
        assert_eq!(people.identity_of("bob"), "bob@corp.example.com");
        assert_eq!(people.identity_of("bob@other.example"), "bob@other.example");
        people.match_field = UserMatchField::UserName;
        assert_eq!(people.identity_of("bob"), "bob");
        assert_eq!(People::default().identity_of("alice"), "alice");
    }

    fn build(text: &str) -> Result<crate::config::Config, ConfigError> {
        let path = Path::new("/etc/test.conf");
        let entries = crate::config::parse_entries(text, path)?;
        crate::config::from_entries(path, entries, Vec::new())
    }

    #[test]
    fn the_people_keys_are_refused_where_they_cannot_work() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pam_ticket_people_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let account = dir.join("portal-account");
        std::fs::write(&account, "Username=\"gw\"\nPassword=\"pw\"\n").expect("write");
        std::fs::set_permissions(&account, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let portal = format!(
            "FetchCredentialsThroughPVWA=Yes\nPortalURL=https://portal.example.com/PasswordVault\nPortalAccountFile={}\n",
            account.display()
        );
        for line in [
            "Groups=root",
            "ExemptGroups=root",
            "ExemptUsers=root",
            "UserMatchField=email",
            "UserMapFile=/etc/security/pam_ticket.users",
        ] {
            let problem = build(&format!("{portal}{line}\n")).expect_err(line);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:4", "{line}");
            assert!(
                problem.problem.contains("has no effect with portal mode"),
                "{line}: {problem}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        let remedy = "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n";
        for line in ["UserMatchField=email", "UserMatchDomain=corp.example.com"] {
            let problem = build(&format!("{remedy}{line}\n")).expect_err(line);
            assert!(
                problem.problem.contains("has no effect with BMCRemedy"),
                "{line}: {problem}"
            );
        }
    }

    #[test]
    fn bad_people_values_are_errors_at_their_line() {
        let base = "TicketingSystem=ServiceNow\nValidateTicketNumber=No\n";
        for (lines, line, needle) in [
            (
                "AllowedUserRoles=assignee\n",
                3,
                "ValidateRequestingUser is not Yes",
            ),
            (
                "ValidateRequestingUser=Yes\nAllowedUserRoles=\"requester, asignee\"\n",
                4,
                "unknown role \"asignee\" (did you mean assignee?)",
            ),
            (
                "UserMatchField=mail\n",
                3,
                "user_name, email or employee_number",
            ),
            (
                "UserMatchDomain=corp.example.com\n",
                3,
                "UserMatchField is user_name",
            ),
            (
                "UserMatchField=email\nUserMatchDomain=\"corp example\"\n",
                4,
                "domain name",
            ),
            ("Groups=no-such-group-pam-ticket\n", 3, "there is no group"),
            ("ExemptUsers=\",\"\n", 3, "names no login"),
            ("UserMapFile=relative.map\n", 3, "absolute path"),
        ] {
            let problem = build(&format!("{base}{lines}")).expect_err(lines);
            assert_eq!(
                problem.origin.to_string(),
                format!("/etc/test.conf:{line}"),
                "{lines}"
            );
            assert!(problem.problem.contains(needle), "{lines}: {problem}");
        }
        let config = build(&format!(
            "{base}ValidateRequestingUser=Yes\nAllowedUserRoles=\"assignment_group, requester\"\nGroups=root\nExemptUsers=\"svc_backup, root\"\n"
        ))
        .expect("valid");
        assert_eq!(
            config.people.roles,
            [UserRole::Requester, UserRole::AssignmentGroup]
        );
        assert_eq!(config.people.exempt_users, ["svc_backup", "root"]);
        assert_eq!(
            config.people.groups.map(|groups| groups[0].name.clone()),
            Some("root".to_string())
        );
        assert_eq!(build(base).expect("valid").people, People::default());
    }

    #[test]
    fn a_mapped_identity_no_servicenow_query_can_carry_is_an_error_at_its_line() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pam_ticket_map_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let map = dir.join("users.map");
        std::fs::write(&map, "jdoe = john\nmallory = x^NQuser_nameISNOTEMPTY\n").expect("write");
        std::fs::set_permissions(&map, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let problem = build(&format!(
            "TicketingSystem=ServiceNow\nValidateTicketNumber=No\nUserMapFile={}\n",
            map.display()
        ))
        .expect_err("refused");
        assert_eq!(problem.origin.to_string(), format!("{}:2", map.display()));
        assert!(
            problem
                .problem
                .contains("cannot go into a ServiceNow query"),
            "{problem}"
        );
        // Remedy quotes its values: the same map is fine there.
        let remedy = build(&format!(
            "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nUserMapFile={}\n",
            map.display()
        ))
        .expect("valid");
        assert_eq!(
            remedy
                .people
                .user_map
                .and_then(|map| map.get("mallory").map(str::to_string)),
            Some("x^NQuser_nameISNOTEMPTY".to_string())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
