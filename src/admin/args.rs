//! What the `check`, `test` and `hash-code` subcommands share: exit codes, a strict option
//! parser, and loading the configuration exactly the way the module does.

use crate::config::{self, Config, ConfigError};

/// Everything was fine / the login would be let in.
pub const EXIT_OK: i32 = 0;
/// A check failed / the login would be refused.
pub const EXIT_FAILED: i32 = 1;
/// The command line was wrong.
pub const EXIT_USAGE: i32 = 2;
/// The configuration has an error; the module would return PAM_SERVICE_ERR.
pub const EXIT_CONFIG: i32 = 3;

/// The exit-code paragraph every subcommand's help ends with.
pub const EXIT_CODES: &str = "exit status:
  0  all is well (for `test`: the module would let this login in)
  1  a check failed (for `test`: the module would refuse this login)
  2  usage error
  3  configuration error (the module would return PAM_SERVICE_ERR)";

/// A parsed command line: options with values (repeatable ones keep every value), switches,
/// positional arguments.
#[derive(Debug, Default)]
pub struct Options {
    values: Vec<(&'static str, String)>,
    switches: Vec<&'static str>,
    pub positional: Vec<String>,
}

/// `--help` was asked for, or the options as parsed.
#[derive(Debug)]
pub enum Parsed {
    Help,
    Run(Options),
}

/// Parses `args` against the options a subcommand knows. `--name value` and `--name=value`
/// both work; `--` ends the options; anything unknown is an error (a typo must not be
/// ignored). Options in `repeatable` may be given more than once.
pub fn parse(
    args: &[String],
    with_value: &[&'static str],
    repeatable: &[&'static str],
    switches: &[&'static str],
) -> Result<Parsed, String> {
    let mut options = Options::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Help);
        }
        if arg == "--" {
            options.positional.extend(rest.by_ref().cloned());
            break;
        }
        let Some(name_and_value) = arg.strip_prefix("--") else {
            if arg.starts_with('-') && arg != "-" {
                return Err(format!("unknown option {arg}"));
            }
            options.positional.push(arg.clone());
            continue;
        };
        let (name, inline_value) = match name_and_value.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (name_and_value, None),
        };
        if let Some(known) = switches.iter().find(|known| **known == name) {
            if inline_value.is_some() {
                return Err(format!("--{name} takes no value"));
            }
            if options.switches.contains(known) {
                return Err(format!("--{name} is given twice"));
            }
            options.switches.push(known);
            continue;
        }
        let Some(known) = with_value
            .iter()
            .chain(repeatable.iter())
            .find(|known| **known == name)
        else {
            return Err(format!("unknown option --{name}"));
        };
        let value = match inline_value {
            Some(value) => value,
            None => rest
                .next()
                .cloned()
                .ok_or_else(|| format!("--{name} needs a value"))?,
        };
        if !repeatable.contains(known) && options.value(known).is_some() {
            return Err(format!("--{name} is given twice"));
        }
        options.values.push((known, value));
    }
    Ok(Parsed::Run(options))
}

impl Options {
    /// The value of a single-valued option.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeatable option, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(known, _)| *known == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }
}

/// Loads the configuration through the module's own code: the pam.d arguments are
/// `config=PATH` (when `--config` is given) followed by `module_arguments` (`debug`,
/// `Key=Value` overrides), parsed and validated by `config::parse_module_arguments` and
/// `config::load`, so the tool accepts and refuses exactly what a login would.
pub fn load_config(
    config_path: Option<&str>,
    module_arguments: &[String],
) -> Result<Config, ConfigError> {
    let mut arguments = Vec::new();
    if let Some(path) = config_path {
        arguments.push(format!("config={path}"));
    }
    arguments.extend(module_arguments.iter().cloned());
    let parsed = config::parse_module_arguments(&arguments, "pam-ticket")?;
    config::load(&parsed)
}

/// [`load_config`], going on after a problem: every problem of the arguments and then of
/// the file, in the order the module would meet them (it stops at the first).
pub fn load_config_reporting_all(
    config_path: Option<&str>,
    module_arguments: &[String],
) -> Result<Config, Vec<ConfigError>> {
    let mut arguments = Vec::new();
    if let Some(path) = config_path {
        arguments.push(format!("config={path}"));
    }
    arguments.extend(module_arguments.iter().cloned());
    let (parsed, mut problems) =
        config::parse_module_arguments_reporting_all(&arguments, "pam-ticket");
    match config::load_reporting_all(&parsed) {
        Ok(config) if problems.is_empty() => Ok(config),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more);
            Err(problems)
        }
    }
}

/// The configuration file the arguments name, for messages.
pub fn config_path_shown(config_path: Option<&str>, module_arguments: &[String]) -> String {
    config_path
        .map(str::to_string)
        .or_else(|| {
            module_arguments
                .iter()
                .find_map(|argument| argument.strip_prefix("config=").map(str::to_string))
        })
        .unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.to_string())
}

/// Reads `count` bytes from /dev/urandom, the kernel's CSPRNG.
pub fn random_bytes(count: usize) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = vec![0u8; count];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut source| source.read_exact(&mut bytes))
        .map_err(|io_error| format!("cannot read /dev/urandom: {io_error}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn options_values_switches_and_positionals() {
        let Ok(Parsed::Run(options)) = parse(
            &strings(&[
                "--user",
                "alice",
                "--rhost=h",
                "--arg",
                "debug",
                "--arg",
                "A=B",
                "--audit",
                "INC1",
            ]),
            &["user", "rhost"],
            &["arg"],
            &["audit"],
        ) else {
            panic!("should parse");
        };
        assert_eq!(options.value("user"), Some("alice"));
        assert_eq!(options.value("rhost"), Some("h"));
        assert_eq!(options.all("arg"), vec!["debug", "A=B"]);
        assert!(options.switch("audit"));
        assert_eq!(options.positional, vec!["INC1"]);
    }

    #[test]
    fn unknown_missing_and_repeated_options_are_errors() {
        let known = |args: &[&str]| parse(&strings(args), &["user"], &[], &["audit"]);
        assert_eq!(known(&["--usr", "x"]).unwrap_err(), "unknown option --usr");
        assert_eq!(known(&["--user"]).unwrap_err(), "--user needs a value");
        assert_eq!(
            known(&["--user", "a", "--user", "b"]).unwrap_err(),
            "--user is given twice"
        );
        assert_eq!(known(&["-x"]).unwrap_err(), "unknown option -x");
        assert!(matches!(known(&["--help"]), Ok(Parsed::Help)));
        let Ok(Parsed::Run(options)) = known(&["--", "--user"]) else {
            panic!("-- ends the options");
        };
        assert_eq!(options.positional, vec!["--user"]);
    }
}
