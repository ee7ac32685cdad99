//! Account files: `Username="…"` and `Password="…"`, readable by root alone.

use std::path::{Path, PathBuf};

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

/// Reads `Username="…"` and `Password="…"` from an account file, after checking that it is
/// a regular file owned by root that neither group nor others may read or write.
pub fn read_account_file(path: &Path, origin: &Origin) -> Result<Credentials, ConfigError> {
    let text = zeroize::Zeroizing::new(
        read_root_only_file(path).map_err(|problem| error(origin, problem))?,
    );
    parse_account_text(&text, path)
}

/// Username and Password from an account file's text. Errors name the line only: the
/// parser's usual messages quote the offending text, which here may be part of the
/// password, and they end up in syslog and the audit file.
pub fn parse_account_text(text: &str, path: &Path) -> Result<Credentials, ConfigError> {
    let entries = parse_entries(text, path).map_err(|problem| {
        error(
            &problem.origin,
            "not a Key=\"Value\" line (the text is not repeated because it may hold the password)",
        )
    })?;
    // Every value is wiped when dropped, on every way out of here; the password's buffer
    // is moved into its Secret, not copied.
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
    let mut username = None;
    let mut password: Option<Secret> = None;
    for (key, origin, mut value) in entries {
        match key.as_str() {
            "Username" if username.is_none() => username = Some(value.to_string()),
            "Password" if password.is_none() => {
                password = Some(Secret::from_string(std::mem::take(&mut *value)));
            }
            "Username" | "Password" => {
                return Err(error(&origin, format!("{key} is set twice")));
            }
            _ => {
                return Err(error(
                    &origin,
                    "an account file holds only Username and Password",
                ));
            }
        }
    }
    let whole = Origin::Whole {
        path: path.to_path_buf(),
    };
    let username = username
        .filter(|name| !name.is_empty())
        .ok_or_else(|| error(&whole, "Username is missing"))?;
    let password = password
        .filter(|secret| !secret.is_empty())
        .ok_or_else(|| error(&whole, "Password is missing"))?;
    Ok(Credentials {
        username,
        password,
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
