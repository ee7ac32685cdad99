//! The pam.d line: `config=PATH`, `debug`, and `Key=Value` overrides of the file.

use std::path::PathBuf;

use super::keys::{Argument, KEYS, Key};
use super::syntax::{ConfigError, Entry, Origin, error};
use crate::spelling;

/// The module arguments, split into the config path, the debug switch and key overrides.
#[derive(Clone, Debug, Default)]
pub struct ModuleArguments {
    pub config_path: Option<PathBuf>,
    pub debug: bool,
    pub overrides: Vec<Entry>,
    /// Set only by a build with the `panic-probe` feature; see lib.rs.
    pub panic_probe: bool,
}

/// Splits the pam.d arguments. `service` only serves to name where an error is. Stops at
/// the first error, as the module does.
pub fn parse_module_arguments(
    arguments: &[String],
    service: &str,
) -> Result<ModuleArguments, ConfigError> {
    let mut problems = Vec::new();
    let parsed = split_arguments(arguments, service, &mut problems, true);
    match problems.into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(parsed),
    }
}

/// [`parse_module_arguments`], going on after a wrong argument (for `pam-ticket check`):
/// the arguments that are right, and every problem, in order.
pub fn parse_module_arguments_reporting_all(
    arguments: &[String],
    service: &str,
) -> (ModuleArguments, Vec<ConfigError>) {
    let mut problems = Vec::new();
    let parsed = split_arguments(arguments, service, &mut problems, false);
    (parsed, problems)
}

fn split_arguments(
    arguments: &[String],
    service: &str,
    problems: &mut Vec<ConfigError>,
    stop_at_first: bool,
) -> ModuleArguments {
    let mut parsed = ModuleArguments::default();
    for (position, argument) in arguments.iter().enumerate() {
        if stop_at_first && !problems.is_empty() {
            break;
        }
        let origin = Origin::ModuleArgument {
            service: service.to_string(),
            index: position + 1,
        };
        if argument == "debug" {
            parsed.debug = true;
            continue;
        }
        if cfg!(feature = "panic-probe") && argument == "panic_probe" {
            parsed.panic_probe = true;
            continue;
        }
        let Some((key, value)) = argument.split_once('=') else {
            problems.push(error(
                &origin,
                format!(
                    "unknown module argument {argument:?}{}",
                    argument_hint(argument)
                ),
            ));
            continue;
        };
        if let Some(Argument::Refused(reason)) =
            Key::from_name(key).map(|known| known.spec().argument)
        {
            // Not echoed: the value may be one that must not spread to more logs (for
            // FailsafeBypassCode, a hash).
            problems.push(error(
                &origin,
                format!("{key} must not be a module argument: {reason}"),
            ));
            continue;
        }
        if key == CONFIG {
            if parsed.config_path.is_some() {
                problems.push(error(&origin, "config= is given twice"));
                continue;
            }
            parsed.config_path = Some(PathBuf::from(value));
            continue;
        }
        parsed.overrides.push(Entry {
            key: key.to_string(),
            value: value.to_string(),
            origin,
        });
    }
    parsed
}

/// The argument that names the configuration file.
const CONFIG: &str = "config";

/// "Did you mean" for an argument that is neither `debug` nor `Key=Value`: the switch it
/// is nearest to, or the key it names (which needs a value).
fn argument_hint(argument: &str) -> String {
    if let Some(switch) = spelling::closest(argument, ["debug"]) {
        return format!(" (did you mean {switch}?)");
    }
    let names = KEYS
        .iter()
        .map(|spec| spec.name)
        .chain(std::iter::once(CONFIG));
    match spelling::closest(argument, names) {
        Some(CONFIG) => " (did you mean config=PATH?)".to_string(),
        Some(name) => format!(" (did you mean {name}=VALUE?)"),
        None => {
            " (arguments are debug, config=PATH and Key=Value for any key of pam_ticket.conf(5))"
                .to_string()
        }
    }
}

/// Where a configuration error is written besides syslog: `AuditLogFile=` on the pam.d
/// line, which only root can change. Never the configuration file: a configuration that
/// failed its checks may have been written by whoever the checks keep out, and nothing in
/// it is used, not even to find the audit file. The arguments are scanned one by one, so
/// that another bad argument does not hide this one; given twice, or as a relative path,
/// it is not used and the error goes to syslog alone.
pub fn audit_file_from_arguments(arguments: &[String]) -> Option<PathBuf> {
    let mut given = arguments
        .iter()
        .filter_map(|argument| argument.split_once('='))
        .filter(|(name, _)| *name == Key::AuditLogFile.name())
        .map(|(_, value)| PathBuf::from(value.trim()));
    let path = given.next()?;
    if given.next().is_some() {
        return None;
    }
    path.is_absolute().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bypass_code_on_the_pam_d_line_is_refused_without_echoing_it() {
        let arguments = [
            "config=/etc/x.conf".to_string(),
            "FailsafeBypassCode=sha256:00112233:4455".to_string(),
        ];
        let problem = parse_module_arguments(&arguments, "sshd").expect_err("refused");
        assert!(
            problem.to_string().starts_with(
                "pam.d/sshd argument 2: FailsafeBypassCode must not be a module argument"
            ),
            "{problem}"
        );
        assert!(!problem.to_string().contains("4455"), "{problem}");
    }

    #[test]
    fn the_audit_file_for_configuration_errors_comes_from_the_pam_d_line_only() {
        let arguments = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            audit_file_from_arguments(&arguments(&[
                "config=/etc/x.conf",
                "AuditLogFile=/var/log/a"
            ])),
            Some(PathBuf::from("/var/log/a"))
        );
        // The configuration file is never read for it.
        assert_eq!(
            audit_file_from_arguments(&arguments(&["config=/etc/x.conf"])),
            None
        );
        assert_eq!(
            audit_file_from_arguments(&arguments(&["AuditLogFile=relative.log"])),
            None
        );
        assert_eq!(
            audit_file_from_arguments(&arguments(&["AuditLogFile=/a", "AuditLogFile=/b"])),
            None
        );
        assert_eq!(
            audit_file_from_arguments(&arguments(&["nodebug", "AuditLogFile=/var/log/a"])),
            Some(PathBuf::from("/var/log/a"))
        );
    }
}
