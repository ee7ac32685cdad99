//! Account files: `Username="…"` and `Password="…"`, and for ServiceNow OAuth 2.0 also
//! `ClientID="…"` and `ClientSecret="…"`, readable by root alone.
//!
//! Which lines a file must hold follows from how the module signs in with it, and a line
//! it would not use is an error: an account file that holds a secret nobody reads is a
//! secret kept for nothing, and most likely a mistake about which method is in force.
//! - basic (ServiceNow, BMC Remedy, the portal): Username and Password;
//! - oauth-password: ClientID, ClientSecret, Username and Password;
//! - oauth-client-credentials: ClientID and ClientSecret only. The token acts as the
//!   "OAuth Application User" set on the instance's Application Registry entry, so no
//!   user name or password is sent.

use std::path::{Path, PathBuf};

use super::AuthMethod;
use super::syntax::{ConfigError, Origin, error, parse_entries};
use crate::secret::Secret;
use crate::secure_file::{self, Readers};

/// A user name and password read from a root-only account file.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    pub source: PathBuf,
}

/// An OAuth 2.0 client (a ServiceNow Application Registry entry) read from a root-only
/// account file.
#[derive(Clone, Debug)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: Secret,
    pub source: PathBuf,
}

/// What a ServiceNow account file gives, by [`AuthMethod`]: the user for basic and the
/// password grant, the client for both OAuth grants.
#[derive(Clone, Debug)]
pub struct ServiceNowAccount {
    pub user: Option<Credentials>,
    pub client: Option<OAuthClient>,
}

/// The lines of an account file, each with where it was.
#[derive(Default)]
struct AccountLines {
    username: Option<(String, Origin)>,
    password: Option<(Secret, Origin)>,
    client_id: Option<(String, Origin)>,
    client_secret: Option<(Secret, Origin)>,
}

/// Reads `Username="…"` and `Password="…"` from an account file, after checking that it is
/// a regular file owned by root that neither group nor others may read or write.
pub fn read_account_file(path: &Path, origin: &Origin) -> Result<Credentials, ConfigError> {
    let text = zeroize::Zeroizing::new(
        read_root_only_file(path).map_err(|problem| error(origin, problem))?,
    );
    parse_account_text(&text, path)
}

/// Reads a ServiceNow account file with the lines `method` needs (see the module text),
/// after the same checks as [`read_account_file`].
pub fn read_service_now_account(
    path: &Path,
    origin: &Origin,
    method: AuthMethod,
) -> Result<ServiceNowAccount, ConfigError> {
    let text = zeroize::Zeroizing::new(
        read_root_only_file(path).map_err(|problem| error(origin, problem))?,
    );
    parse_service_now_account_text(&text, path, method)
}

/// Username and Password from an account file's text. Errors name the line only: the
/// parser's usual messages quote the offending text, which here may be part of the
/// password, and they end up in syslog and the audit file.
pub fn parse_account_text(text: &str, path: &Path) -> Result<Credentials, ConfigError> {
    let mut lines = parse_lines(text, path)?;
    refuse_client_lines(
        &lines,
        "the account logs on with Username and Password only",
    )?;
    user(&mut lines, path)
}

/// [`parse_account_text`] for a ServiceNow account file signing in with `method`.
pub fn parse_service_now_account_text(
    text: &str,
    path: &Path,
    method: AuthMethod,
) -> Result<ServiceNowAccount, ConfigError> {
    let mut lines = parse_lines(text, path)?;
    match method {
        AuthMethod::Basic => {
            refuse_client_lines(
                &lines,
                "AuthMethod is basic, which sends Username and Password only",
            )?;
            Ok(ServiceNowAccount {
                user: Some(user(&mut lines, path)?),
                client: None,
            })
        }
        AuthMethod::OAuthPassword => {
            let client = client(&mut lines, path, method)?;
            Ok(ServiceNowAccount {
                user: Some(user(&mut lines, path)?),
                client: Some(client),
            })
        }
        AuthMethod::OAuthClientCredentials => {
            for (key, origin) in [
                (
                    "Username",
                    lines.username.as_ref().map(|(_, origin)| origin),
                ),
                (
                    "Password",
                    lines.password.as_ref().map(|(_, origin)| origin),
                ),
            ] {
                if let Some(origin) = origin {
                    return Err(error(
                        origin,
                        format!(
                            "{key} is not used with AuthMethod=oauth-client-credentials, which \
                             sends ClientID and ClientSecret only (the token acts as the OAuth \
                             Application User of the instance's Application Registry entry): \
                             remove it, or use AuthMethod=oauth-password"
                        ),
                    ));
                }
            }
            Ok(ServiceNowAccount {
                user: None,
                client: Some(client(&mut lines, path, method)?),
            })
        }
    }
}

/// Every line of the file, each key at most once.
fn parse_lines(text: &str, path: &Path) -> Result<AccountLines, ConfigError> {
    let entries = parse_entries(text, path).map_err(|problem| {
        error(
            &problem.origin,
            "not a Key=\"Value\" line (the text is not repeated because it may hold a secret)",
        )
    })?;
    // Every value is wiped when dropped, on every way out of here; a secret's buffer is
    // moved into its Secret, not copied.
    let entries: Vec<(String, Origin, zeroize::Zeroizing<String>)> = entries
        .into_iter()
        .map(|entry| {
            (
                entry.key,
                entry.origin,
                zeroize::Zeroizing::new(entry.value),
            )
        })
        .collect();
    let mut lines = AccountLines::default();
    for (key, origin, mut value) in entries {
        let twice = |origin: &Origin| Err(error(origin, format!("{key} is set twice")));
        match key.as_str() {
            "Username" if lines.username.is_some() => return twice(&origin),
            "Password" if lines.password.is_some() => return twice(&origin),
            "ClientID" if lines.client_id.is_some() => return twice(&origin),
            "ClientSecret" if lines.client_secret.is_some() => return twice(&origin),
            "Username" => lines.username = Some((value.to_string(), origin)),
            "Password" => {
                lines.password = Some((Secret::from_string(std::mem::take(&mut *value)), origin));
            }
            "ClientID" => lines.client_id = Some((value.to_string(), origin)),
            "ClientSecret" => {
                lines.client_secret =
                    Some((Secret::from_string(std::mem::take(&mut *value)), origin));
            }
            _ => {
                return Err(error(
                    &origin,
                    "an account file holds only Username, Password, ClientID and ClientSecret",
                ));
            }
        }
    }
    Ok(lines)
}

/// ClientID and ClientSecret are an error where nothing would send them.
fn refuse_client_lines(lines: &AccountLines, why: &str) -> Result<(), ConfigError> {
    for (key, origin) in [
        (
            "ClientID",
            lines.client_id.as_ref().map(|(_, origin)| origin),
        ),
        (
            "ClientSecret",
            lines.client_secret.as_ref().map(|(_, origin)| origin),
        ),
    ] {
        if let Some(origin) = origin {
            return Err(error(
                origin,
                format!(
                    "{key} is not used here ({why}); it is for ServiceNow with \
                     AuthMethod=oauth-client-credentials or oauth-password: remove it"
                ),
            ));
        }
    }
    Ok(())
}

fn user(lines: &mut AccountLines, path: &Path) -> Result<Credentials, ConfigError> {
    let whole = Origin::Whole {
        path: path.to_path_buf(),
    };
    let username = lines
        .username
        .take()
        .map(|(name, _)| name)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| error(&whole, "Username is missing"))?;
    let password = lines
        .password
        .take()
        .map(|(secret, _)| secret)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| error(&whole, "Password is missing"))?;
    Ok(Credentials {
        username,
        password,
        source: path.to_path_buf(),
    })
}

fn client(
    lines: &mut AccountLines,
    path: &Path,
    method: AuthMethod,
) -> Result<OAuthClient, ConfigError> {
    let whole = Origin::Whole {
        path: path.to_path_buf(),
    };
    let missing = |key: &str| {
        error(
            &whole,
            format!("{key} is missing (AuthMethod={} needs it)", method.name()),
        )
    };
    let client_id = lines
        .client_id
        .take()
        .map(|(id, _)| id)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| missing("ClientID"))?;
    let client_secret = lines
        .client_secret
        .take()
        .map(|(secret, _)| secret)
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| missing("ClientSecret"))?;
    Ok(OAuthClient {
        client_id,
        client_secret,
        source: path.to_path_buf(),
    })
}

/// Reads a secret file (an account file): see [`crate::secure_file`] for the policy.
pub fn read_root_only_file(path: &Path) -> Result<String, String> {
    secure_file::read_text(path, Readers::OwnerOnly, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn account_file_errors_never_quote_the_text() {
        for text in [
            "Username=\"svc\"\nPassword=\"hun\"ter2\"\n",
            "Password \"hunter2\n",
            "hunter2=\"x\"\n",
        ] {
            let problem = parse_account_text(text, Path::new("/etc/acct")).expect_err(text);
            assert!(!problem.to_string().contains("ter2"), "{problem}");
            assert!(problem.to_string().starts_with("/etc/acct:"), "{problem}");
        }
    }

    #[test]
    fn each_method_takes_the_lines_it_sends_and_refuses_the_others() {
        let path = Path::new("/etc/acct");
        let full = "Username=\"svc\"\nPassword=\"pw\"\nClientID=\"cid\"\nClientSecret=\"cs\"\n";
        let account = parse_service_now_account_text(full, path, AuthMethod::OAuthPassword)
            .expect("all four");
        let user = account.user.expect("a user");
        let client = account.client.expect("a client");
        assert_eq!(
            (user.username.as_str(), user.password.as_str()),
            ("svc", Some("pw"))
        );
        assert_eq!(
            (client.client_id.as_str(), client.client_secret.as_str()),
            ("cid", Some("cs"))
        );
        let only_client = "ClientID=\"cid\"\nClientSecret=\"cs\"\n";
        let account =
            parse_service_now_account_text(only_client, path, AuthMethod::OAuthClientCredentials)
                .expect("client alone");
        assert!(account.user.is_none() && account.client.is_some());
        for (text, method, expected) in [
            (
                full,
                AuthMethod::OAuthClientCredentials,
                "/etc/acct:1: Username is not used",
            ),
            (
                full,
                AuthMethod::Basic,
                "/etc/acct:3: ClientID is not used here",
            ),
            (
                only_client,
                AuthMethod::OAuthPassword,
                "/etc/acct: Username is missing",
            ),
            (
                "ClientSecret=\"cs\"\n",
                AuthMethod::OAuthClientCredentials,
                "/etc/acct: ClientID is missing (AuthMethod=oauth-client-credentials needs it)",
            ),
            (
                "ClientID=\"a\"\nClientID=\"b\"\n",
                AuthMethod::OAuthClientCredentials,
                "/etc/acct:2: ClientID is set twice",
            ),
        ] {
            let problem = parse_service_now_account_text(text, path, method)
                .expect_err(expected)
                .to_string();
            assert!(problem.starts_with(expected), "{problem}");
            assert!(
                !problem.contains("\"cs\"") && !problem.contains("pw"),
                "{problem}"
            );
        }
        // Remedy and the portal read Username and Password only.
        let problem = parse_account_text(full, path)
            .expect_err("client lines")
            .to_string();
        assert!(
            problem.starts_with("/etc/acct:3: ClientID is not used here"),
            "{problem}"
        );
    }

    #[test]
    fn account_file_must_be_root_only() {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_config_test_{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("account");
        let mut file = fs::File::create(&path).expect("create");
        file.write_all(b"Username=\"svc\"\nPassword=\"s3cret\"\n")
            .expect("write");
        let origin = Origin::Whole { path: path.clone() };
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let problem = read_account_file(&path, &origin).expect_err("loose mode");
        assert!(problem.problem.contains("mode is 0644"), "{problem}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        // The tests run as root (CI does); as another user the owner check refuses instead.
        match read_account_file(&path, &origin) {
            Ok(credentials) => {
                assert_eq!(credentials.username, "svc");
                assert_eq!(credentials.password.as_str(), Some("s3cret"));
            }
            Err(problem) => assert!(problem.problem.contains("owned by root")),
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
