//! The syntax of the configuration: `Key="Value"` lines, where each came from (file:line
//! or a pam.d argument), and the error that names that place.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a setting came from, so that every error can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` (1-based) of a file.
    File { path: PathBuf, line: usize },
    /// The `index`th (1-based) argument on the pam.d line of `service`.
    ModuleArgument { service: String, index: usize },
    /// A key that was not set anywhere: the check that failed is about the whole file.
    Whole { path: PathBuf },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Origin::ModuleArgument { service, index } => {
                write!(f, "pam.d/{service} argument {index}")
            }
            Origin::Whole { path } => write!(f, "{}", path.display()),
        }
    }
}

/// A configuration error: what is wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: Origin,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.problem)
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn error(origin: &Origin, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        origin: origin.clone(),
        problem: problem.into(),
    }
}

/// One `Key="Value"` entry with the place it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// Parses `Key="Value"` text. Blank lines and lines starting with `#` are skipped; inside
/// quotes `\"` and `\\` are escapes (any other backslash is kept, so regexes such as `\d`
/// survive); after the closing quote only white space or a `#` comment may follow. The
/// first bad line is the error, and every value read before it is wiped (in an account
/// file an earlier line may hold the password).
pub fn parse_entries(text: &str, path: &Path) -> Result<Vec<Entry>, ConfigError> {
    let mut problems = Vec::new();
    let mut entries = parse_entries_reporting(text, path, &mut problems, true);
    match problems.into_iter().next() {
        None => Ok(entries),
        Some(problem) => {
            for entry in &mut entries {
                zeroize::Zeroize::zeroize(&mut entry.value);
            }
            Err(problem)
        }
    }
}

/// [`parse_entries`] for the configuration file, which holds no secret: a bad line is
/// recorded in `problems` and left out, and, unless `stop_at_first`, the lines after it
/// are still read, so that every bad line can be reported at once.
pub fn parse_entries_reporting(
    text: &str,
    path: &Path,
    problems: &mut Vec<ConfigError>,
    stop_at_first: bool,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw_line) in text.lines().enumerate() {
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: index + 1,
        };
        let line = raw_line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = split_key_value(line, &origin)
            .and_then(|(key, value)| Ok((key, parse_value(value, &origin)?)));
        match parsed {
            Ok((key, value)) => entries.push(Entry {
                key: key.to_string(),
                value,
                origin,
            }),
            Err(problem) => {
                problems.push(problem);
                if stop_at_first {
                    break;
                }
            }
        }
    }
    entries
}

fn split_key_value<'a>(line: &'a str, origin: &Origin) -> Result<(&'a str, &'a str), ConfigError> {
    let Some((key, value)) = line.split_once('=') else {
        return Err(error(origin, "expected Key=\"Value\""));
    };
    let key = key.trim();
    let key_is_word = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_is_word {
        return Err(error(
            origin,
            format!("expected Key=\"Value\", found key {key:?}"),
        ));
    }
    Ok((key, value.trim()))
}

fn parse_value(raw: &str, origin: &Origin) -> Result<String, ConfigError> {
    let Some(quoted) = raw.strip_prefix('"') else {
        if raw.contains('"') {
            return Err(error(
                origin,
                "a value with a quote must be written in quotes",
            ));
        }
        return Ok(raw.to_string());
    };
    // Sized up front and wiped if the line is refused: the value may be a password, and a
    // buffer that grew would leave copies of its start behind.
    let mut value = zeroize::Zeroizing::new(String::with_capacity(quoted.len()));
    let mut chars = quoted.chars();
    loop {
        match chars.next() {
            None => return Err(error(origin, "the value's closing quote is missing")),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => return Err(error(origin, "the value's closing quote is missing")),
            },
            Some(other) => value.push(other),
        }
    }
    let rest = chars.as_str().trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(error(
            origin,
            format!("unexpected text after the closing quote: {rest:?}"),
        ));
    }
    Ok(std::mem::take(&mut *value))
}

/// Splits a comma-separated list, trimming each item and dropping empty ones.
pub fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Result<Vec<Entry>, ConfigError> {
        parse_entries(text, Path::new("/etc/test.conf"))
    }

    #[test]
    fn parses_quoted_and_bare_values_with_escapes() {
        let parsed = entries(
            "# comment\n\nA=\"x \\\"y\\\" \\\\ z\"  # trailing\nB = plain value\nC=\"^INC\\d+$\"\n",
        )
        .expect("valid");
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].value, "x \"y\" \\ z");
        assert_eq!(parsed[1].value, "plain value");
        assert_eq!(parsed[2].value, "^INC\\d+$");
        assert_eq!(parsed[2].origin.to_string(), "/etc/test.conf:5");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line, needle) in [
            ("A=\"open\n", 1, "closing quote"),
            ("\nnot a setting\n", 2, "expected Key"),
            ("A=\"x\" junk\n", 1, "after the closing quote"),
            ("1A=\"x\"\n", 1, "expected Key"),
        ] {
            let problem = entries(text).expect_err(text);
            assert_eq!(
                problem.origin.to_string(),
                format!("/etc/test.conf:{line}"),
                "{text}"
            );
            assert!(problem.problem.contains(needle), "{problem}");
        }
    }
}
