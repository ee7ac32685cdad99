//! Who is logging in: PAM_USER, which on a PSM for SSH gateway is a connection string
//! (`vaultuser@targetuser[#domain]@targetaddress[#port]`) rather than a plain login.

/// The target of a PSM for SSH connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub domain: Option<String>,
    pub address: String,
    pub port: Option<u16>,
}

impl Target {
    /// Whether the target can be sent to a portal as it stands. PAM_USER is chosen by the
    /// person connecting, so before it goes into a search the way a ticket ID is checked
    /// before a query: a user or domain of at most 64 letters, digits, `.`, `_`, `-`, `$`;
    /// an address that is a host name or IP address of at most 253 characters. Anything
    /// else could make the portal answer with an error, and an error must never be a way
    /// to the failsafe.
    pub fn check_well_formed(&self) -> Result<(), String> {
        let name_like = |text: &str| {
            !text.is_empty()
                && text.len() <= 64
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '$'))
        };
        let address_like = |text: &str| {
            !text.is_empty()
                && text.len() <= 253
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        };
        if !name_like(&self.user) {
            return Err("the target user".to_string());
        }
        if let Some(domain) = &self.domain
            && !address_like(domain)
        {
            return Err("the target domain".to_string());
        }
        if !address_like(&self.address) {
            return Err("the target address".to_string());
        }
        Ok(())
    }
}

/// Everything the flow knows about the login being checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// PAM_USER exactly as the application set it.
    pub pam_user: String,
    /// The person: PAM_USER, or the vault user of a connection string.
    pub person: String,
    pub target: Option<Target>,
    pub rhost: Option<String>,
    pub service: Option<String>,
    /// Who the person is in the ticketing system; see [`Login::identity`].
    identity: String,
}

impl Login {
    /// Who the person is in the ticketing system: what every person check compares (the
    /// requester, the assignee, the assignment group's members) and what the audit
    /// records next to PAM_USER. The person as is until [`Login::identified`] applies
    /// UserMapFile, UserMatchField and UserMatchDomain.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// This login with its identity in the ticketing system set from the configuration.
    pub fn identified(mut self, people: &crate::config::People) -> Login {
        self.identity = people.identity_of(&self.person);
        self
    }

    pub fn new(pam_user: &str, rhost: Option<String>, service: Option<String>) -> Login {
        let (person, target) = match parse_connection_string(pam_user) {
            Some((vault_user, target)) => (vault_user, Some(target)),
            None => (pam_user.to_string(), None),
        };
        Login {
            pam_user: pam_user.to_string(),
            identity: person.clone(),
            person,
            target,
            rhost,
            service,
        }
    }
}

/// Splits `vaultuser@targetuser[#domain]@targetaddress[#port]` from the right: the vault
/// user may itself hold one `@` (`user@company.com` in Privilege Cloud). Anything with
/// fewer than two `@`, or an empty part, is not a connection string.
pub fn parse_connection_string(pam_user: &str) -> Option<(String, Target)> {
    let (rest, address_part) = pam_user.rsplit_once('@')?;
    let (vault_user, target_user_part) = rest.rsplit_once('@')?;
    if vault_user.is_empty() || target_user_part.is_empty() || address_part.is_empty() {
        return None;
    }
    let (user, domain) = split_suffix(target_user_part);
    let (address, port_text) = split_suffix(address_part);
    let port = match port_text {
        Some(text) => Some(text.parse::<u16>().ok()?),
        None => None,
    };
    if user.is_empty() || address.is_empty() {
        return None;
    }
    Some((
        vault_user.to_string(),
        Target {
            user,
            domain,
            address,
            port,
        },
    ))
}

fn split_suffix(part: &str) -> (String, Option<String>) {
    match part.split_once('#') {
        Some((head, tail)) => (head.to_string(), Some(tail.to_string())),
        None => (part.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_user_is_the_person() {
        let login = Login::new("alice", None, None);
        assert_eq!(login.person, "alice");
        assert_eq!(login.target, None);
        assert_eq!(
            Login::new("alice@example.com", None, None).person,
            "alice@example.com"
        );
    }

    #[test]
    fn connection_string_is_split_from_the_right() {
        let login = Login::new(
            "alice@example.com@root#corp@db01.example.com#2222",
            None,
            None,
        );
        assert_eq!(login.person, "alice@example.com");
        assert_eq!(
            login.target,
            Some(Target {
                user: "root".to_string(),
                domain: Some("corp".to_string()),
                address: "db01.example.com".to_string(),
                port: Some(2222),
            })
        );
        let simple = Login::new("bob@oracle@10.0.0.5", None, None);
        assert_eq!(simple.person, "bob");
        assert_eq!(
            simple.target.map(|target| target.user),
            Some("oracle".to_string())
        );
    }

    #[test]
    fn targets_are_checked_before_they_reach_a_portal() {
        let good = Login::new(
            "alice@root#corp.example.com@db01.example.com#22",
            None,
            None,
        );
        assert_eq!(
            good.target.map(|target| target.check_well_formed()),
            Some(Ok(()))
        );
        for (user, part) in [
            ("alice@ro ot@db01", "the target user"),
            ("alice@<script>@db01", "the target user"),
            ("alice@root@db01/../x", "the target address"),
            ("alice@root#c%rp@db01", "the target domain"),
        ] {
            let target = Login::new(user, None, None)
                .target
                .expect("a connection string");
            assert_eq!(target.check_well_formed(), Err(part.to_string()), "{user}");
        }
        let long = format!("alice@root@{}", "a".repeat(254));
        let target = Login::new(&long, None, None)
            .target
            .expect("a connection string");
        assert!(target.check_well_formed().is_err());
    }

    #[test]
    fn malformed_connection_strings_are_plain_users() {
        for user in ["@root@host", "bob@@host", "bob@root@", "bob@root@host#port"] {
            assert_eq!(Login::new(user, None, None).target, None, "{user}");
        }
    }
}
