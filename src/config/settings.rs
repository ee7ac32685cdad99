//! From entries to a [`Config`]: unknown and duplicate keys refused, then every key read
//! through a typed accessor that reports a bad value at its file:line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::account::read_account_file;
use super::syntax::{ConfigError, Entry, Origin, error, parse_entries, split_list};
use super::{Config, FailMode, PortalAuthMethod, PortalSettings, RemedySettings, TicketingSystem};
use crate::bypass::BypassHash;
use crate::secure_file::{self, Readers};
use crate::trust::{self, CaBundle};
use crate::url::{BaseUrl, ProxyUrl, parse_https_url, parse_proxy_url};

/// Every key the module knows. Anything else is an error.
const KNOWN_KEYS: &[&str] = &[
    "TicketingSystem",
    "SystemURL",
    "ConnectionAccountFile",
    "CAFile",
    "EnterTicketingInfo",
    "ValidateTicketNumber",
    "TicketFormatRegex",
    "IncidentTicketIdentification",
    "ChangeTicketIdentification",
    "ValidateIncidentTicketState",
    "AllowedIncidentTicketStates",
    "ValidateChangeTicketState",
    "AllowedChangeTicketStates",
    "ValidateApprovalStatus",
    "AllowedApprovalStatuses",
    "ValidateOperationTime",
    "ValidateRequestingUser",
    "FailsafeBypassCode",
    "FailMode",
    "Timeout",
    "HTTPSProxy",
    "MaxAttempts",
    "Prompt",
    "AuditLogFile",
    "FetchCredentialsThroughPVWA",
    "PSMPServerConfig",
    "PortalURL",
    "PortalAuthMethod",
    "PortalAccountFile",
    "PortalTicketingSystemName",
    "PortalReason",
    "RemedyIncidentForm",
    "RemedyIncidentIDField",
    "RemedyIncidentStatusField",
    "RemedyIncidentRequesterFields",
    "RemedyChangeForm",
    "RemedyChangeIDField",
    "RemedyChangeStatusField",
    "RemedyChangeApprovalField",
    "RemedyChangeStartField",
    "RemedyChangeEndField",
    "RemedyChangeRequesterFields",
    "RemedyTokenLifetime",
    "CacheDirectory",
];

/// Merges file entries and argument overrides into a map, refusing unknown and duplicate
/// keys, then builds the typed configuration.
pub fn from_entries(
    path: &Path,
    file_entries: Vec<Entry>,
    overrides: Vec<Entry>,
) -> Result<Config, ConfigError> {
    let mut settings: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in &file_entries {
        check_known(entry)?;
        if let Some(previous) = settings.get(&entry.key) {
            return Err(error(
                &entry.origin,
                format!("{} is set twice (first at {})", entry.key, previous.origin),
            ));
        }
        settings.insert(entry.key.clone(), entry.clone());
    }
    let mut overridden: BTreeMap<String, Origin> = BTreeMap::new();
    for entry in overrides {
        check_known(&entry)?;
        if let Some(previous) = overridden.get(&entry.key) {
            return Err(error(
                &entry.origin,
                format!("{} is given twice (first at {})", entry.key, previous),
            ));
        }
        overridden.insert(entry.key.clone(), entry.origin.clone());
        settings.insert(entry.key.clone(), entry);
    }
    Settings {
        path: path.to_path_buf(),
        entries: settings,
    }
    .build()
}

fn check_known(entry: &Entry) -> Result<(), ConfigError> {
    if KNOWN_KEYS.contains(&entry.key.as_str()) {
        return Ok(());
    }
    let hint = KNOWN_KEYS
        .iter()
        .find(|known| {
            known.eq_ignore_ascii_case(&entry.key) || edit_distance(known, &entry.key) <= 2
        })
        .map(|known| format!(" (did you mean {known}?)"))
        .unwrap_or_default();
    Err(error(
        &entry.origin,
        format!("unknown key {}{hint}", entry.key),
    ))
}

/// Levenshtein distance, for the "did you mean" hint on a mistyped key.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[right.len()]
}

/// The merged entries, with typed accessors that report errors at the entry's origin.
struct Settings {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl Settings {
    fn whole(&self) -> Origin {
        Origin::Whole {
            path: self.path.clone(),
        }
    }

    fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key)
            .map_or_else(|| default.to_string(), |entry| entry.value.clone())
    }

    fn non_empty_string(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(entry) if entry.value.trim().is_empty() => {
                Err(error(&entry.origin, format!("{key} must not be empty")))
            }
            Some(entry) => Ok(entry.value.trim().to_string()),
        }
    }

    fn yes_no(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(entry) = self.get(key) else {
            return Ok(default);
        };
        match entry.value.trim().to_ascii_lowercase().as_str() {
            "yes" => Ok(true),
            "no" => Ok(false),
            _ => Err(error(
                &entry.origin,
                format!("{key} must be Yes or No, not {:?}", entry.value),
            )),
        }
    }

    fn number(
        &self,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(entry) = self.get(key) else {
            return Ok(default);
        };
        match entry.value.trim().parse::<u64>() {
            Ok(number) if range.contains(&number) => Ok(number),
            _ => Err(error(
                &entry.origin,
                format!(
                    "{key} must be a whole number from {} to {}, not {:?}",
                    range.start(),
                    range.end(),
                    entry.value
                ),
            )),
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|entry| split_list(&entry.value))
            .unwrap_or_default()
    }

    fn list_or(&self, key: &str, default: &[&str]) -> Result<Vec<String>, ConfigError> {
        match self.get(key) {
            None => Ok(default.iter().map(|item| item.to_string()).collect()),
            Some(entry) => {
                let items = split_list(&entry.value);
                if items.is_empty() {
                    return Err(error(
                        &entry.origin,
                        format!("{key} must name at least one field"),
                    ));
                }
                Ok(items)
            }
        }
    }

    fn regex(
        &self,
        key: &str,
        default: Option<&str>,
        anchor: bool,
    ) -> Result<Option<Regex>, ConfigError> {
        let (pattern, origin) = match self.get(key) {
            Some(entry) => (entry.value.clone(), entry.origin.clone()),
            None => match default {
                Some(pattern) => (pattern.to_string(), self.whole()),
                None => return Ok(None),
            },
        };
        if pattern.trim().is_empty() {
            return Err(error(&origin, format!("{key} must not be empty")));
        }
        let source = if anchor {
            format!("^(?:{pattern})$")
        } else {
            pattern.clone()
        };
        Regex::new(&source).map(Some).map_err(|regex_error| {
            error(
                &origin,
                format!("{key} is not a valid regex: {regex_error}"),
            )
        })
    }

    /// A Validate* switch and its Allowed* list: `Some(list)` when the check is on.
    fn checked_list(
        &self,
        switch: &str,
        list_key: &str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        if !self.yes_no(switch, false)? {
            // A list without its switch would look like a check in force and never run
            // (an admin adding `[AllowedIncidentTicketStates=…]` to one pam.d line, say).
            if let Some(entry) = self
                .get(list_key)
                .filter(|entry| !split_list(&entry.value).is_empty())
            {
                return Err(error(
                    &entry.origin,
                    format!(
                        "{list_key} is set but {switch} is not Yes, so the list would never be checked; set {switch}=Yes or remove the list"
                    ),
                ));
            }
            return Ok(None);
        }
        let allowed = self.list(list_key);
        if allowed.is_empty() {
            let origin = self
                .get(switch)
                .map_or_else(|| self.whole(), |entry| entry.origin.clone());
            return Err(error(
                &origin,
                format!("{switch} is Yes but {list_key} is empty: nothing could ever pass"),
            ));
        }
        Ok(Some(allowed))
    }

    fn https_url(&self, key: &str) -> Result<Option<BaseUrl>, ConfigError> {
        self.get(key)
            .map(|entry| {
                parse_https_url(&entry.value)
                    .map_err(|problem| error(&entry.origin, format!("{key}: {problem}")))
            })
            .transpose()
    }

    fn absolute_path(&self, key: &str) -> Result<Option<(PathBuf, Origin)>, ConfigError> {
        let Some(entry) = self.get(key) else {
            return Ok(None);
        };
        let path = PathBuf::from(entry.value.trim());
        if !path.is_absolute() {
            return Err(error(
                &entry.origin,
                format!("{key} must be an absolute path, not {:?}", entry.value),
            ));
        }
        Ok(Some((path, entry.origin.clone())))
    }

    fn build(&self) -> Result<Config, ConfigError> {
        let portal_mode = self.portal_mode()?;
        let ticketing_system = match self.get("TicketingSystem") {
            Some(entry) => Some(match entry.value.trim() {
                "ServiceNow" => TicketingSystem::ServiceNow,
                "BMCRemedy" => TicketingSystem::BmcRemedy,
                other => {
                    return Err(error(
                        &entry.origin,
                        format!("TicketingSystem must be ServiceNow or BMCRemedy, not {other:?}"),
                    ));
                }
            }),
            None if portal_mode => None,
            None => return Err(error(&self.whole(), "TicketingSystem is required")),
        };
        let validate_ticket_number = self.yes_no("ValidateTicketNumber", true)?;
        let system_url = self.https_url("SystemURL")?;
        let needs_direct_access = validate_ticket_number && !portal_mode;
        if needs_direct_access && system_url.is_none() {
            return Err(error(&self.whole(), "SystemURL is required"));
        }
        let connection_account = match self.absolute_path("ConnectionAccountFile")? {
            Some((path, origin)) if needs_direct_access => Some(read_account_file(&path, &origin)?),
            Some(_) => None,
            None if needs_direct_access => {
                return Err(error(
                    &self.whole(),
                    "ConnectionAccountFile is required when ValidateTicketNumber is Yes",
                ));
            }
            None => None,
        };
        let remedy = ticketing_system == Some(TicketingSystem::BmcRemedy);
        let (incident_default, change_default) = if remedy {
            ("^INC[0-9]{12}$", "^CRQ[0-9]{12}$")
        } else {
            ("^INC[0-9]+$", "^CHG[0-9]+$")
        };
        let incident_identification = self
            .regex(
                "IncidentTicketIdentification",
                Some(incident_default),
                false,
            )?
            .ok_or_else(|| error(&self.whole(), "IncidentTicketIdentification is missing"))?;
        let change_identification = self
            .regex("ChangeTicketIdentification", Some(change_default), false)?
            .ok_or_else(|| error(&self.whole(), "ChangeTicketIdentification is missing"))?;
        let fail_mode = match self.get("FailMode") {
            None => FailMode::Secure,
            Some(entry) => match entry.value.trim().to_ascii_lowercase().as_str() {
                "secure" => FailMode::Secure,
                "safe" => FailMode::Safe,
                _ => {
                    return Err(error(
                        &entry.origin,
                        format!("FailMode must be secure or safe, not {:?}", entry.value),
                    ));
                }
            },
        };
        let portal = if portal_mode {
            self.refuse_gateway_checks_in_portal_mode()?;
            Some(self.portal()?)
        } else {
            None
        };
        Ok(Config {
            source: self.path.clone(),
            ticketing_system,
            system_url,
            connection_account,
            ca_bundle: self.ca_bundle()?,
            enter_ticketing_info: self.yes_no("EnterTicketingInfo", true)?,
            validate_ticket_number,
            ticket_format: self.regex("TicketFormatRegex", None, true)?,
            incident_identification,
            change_identification,
            allowed_incident_states: self
                .checked_list("ValidateIncidentTicketState", "AllowedIncidentTicketStates")?,
            allowed_change_states: self
                .checked_list("ValidateChangeTicketState", "AllowedChangeTicketStates")?,
            allowed_approval_statuses: self
                .checked_list("ValidateApprovalStatus", "AllowedApprovalStatuses")?,
            validate_operation_time: self.yes_no("ValidateOperationTime", false)?,
            validate_requesting_user: self.yes_no("ValidateRequestingUser", false)?,
            bypass_codes: self.bypass_codes()?,
            fail_mode,
            timeout: Duration::from_secs(self.number("Timeout", 10, 1..=120)?),
            https_proxy: self.proxy()?,
            max_attempts: u32::try_from(self.number("MaxAttempts", 3, 1..=10)?).unwrap_or(3),
            prompt: self.prompt()?,
            audit_log_file: self.absolute_path("AuditLogFile")?.map(|(path, _)| path),
            portal,
            remedy: self.remedy()?,
            cache_directory: self
                .absolute_path("CacheDirectory")?
                .map_or_else(|| PathBuf::from("/run/pam_ticket"), |(path, _)| path),
            debug: false,
        })
    }

    /// FetchCredentialsThroughPVWA from this configuration, or else from the
    /// basic_psmpserver.conf that PSMPServerConfig names (where only that key is read).
    fn portal_mode(&self) -> Result<bool, ConfigError> {
        if self.get("FetchCredentialsThroughPVWA").is_some() {
            return self.yes_no("FetchCredentialsThroughPVWA", false);
        }
        let Some((path, origin)) = self.absolute_path("PSMPServerConfig")? else {
            return Ok(false);
        };
        let text = secure_file::read_text(&path, Readers::Anyone, true)
            .map_err(|problem| error(&origin, format!("cannot use PSMPServerConfig: {problem}")))?;
        let psmp = Settings {
            path: path.clone(),
            entries: parse_entries(&text, &path)?
                .into_iter()
                .filter(|entry| entry.key == "FetchCredentialsThroughPVWA")
                .map(|entry| (entry.key.clone(), entry))
                .collect(),
        };
        psmp.yes_no("FetchCredentialsThroughPVWA", false)
    }

    /// In portal mode the portal validates the ticket; the gateway's own ticket checks
    /// would never run. Switching one on there is refused rather than silently ignored,
    /// so that an admin never believes a check is in force when it is not.
    fn refuse_gateway_checks_in_portal_mode(&self) -> Result<(), ConfigError> {
        for switch in [
            "ValidateIncidentTicketState",
            "ValidateChangeTicketState",
            "ValidateApprovalStatus",
            "ValidateOperationTime",
            "ValidateRequestingUser",
        ] {
            if self.yes_no(switch, false)? {
                let origin = self
                    .get(switch)
                    .map_or_else(|| self.whole(), |entry| entry.origin.clone());
                return Err(error(
                    &origin,
                    format!(
                        "{switch} has no effect in portal mode (FetchCredentialsThroughPVWA=Yes): the portal validates the ticket; configure the check in the portal and remove it here"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn portal(&self) -> Result<PortalSettings, ConfigError> {
        let url = self.https_url("PortalURL")?.ok_or_else(|| {
            error(
                &self.whole(),
                "PortalURL is required when FetchCredentialsThroughPVWA is Yes",
            )
        })?;
        let auth_method = match self.get("PortalAuthMethod") {
            None => PortalAuthMethod::CyberArk,
            Some(entry) => match entry.value.trim() {
                "CyberArk" => PortalAuthMethod::CyberArk,
                "LDAP" => PortalAuthMethod::Ldap,
                "RADIUS" => PortalAuthMethod::Radius,
                other => {
                    return Err(error(
                        &entry.origin,
                        format!("PortalAuthMethod must be CyberArk, LDAP or RADIUS, not {other:?}"),
                    ));
                }
            },
        };
        let (account_path, account_origin) =
            self.absolute_path("PortalAccountFile")?.ok_or_else(|| {
                error(
                    &self.whole(),
                    "PortalAccountFile is required when FetchCredentialsThroughPVWA is Yes",
                )
            })?;
        let default_name = match self.get("TicketingSystem").map(|entry| entry.value.trim()) {
            Some("BMCRemedy") => "BMC Remedy",
            _ => "ServiceNow",
        };
        Ok(PortalSettings {
            url,
            auth_method,
            account: read_account_file(&account_path, &account_origin)?,
            ticketing_system_name: self
                .non_empty_string("PortalTicketingSystemName", default_name)?,
            reason_template: self.non_empty_string("PortalReason", "SSH connection by %u")?,
        })
    }

    fn remedy(&self) -> Result<RemedySettings, ConfigError> {
        Ok(RemedySettings {
            incident_form: self.non_empty_string("RemedyIncidentForm", "HPD:Help Desk")?,
            incident_id_field: self.non_empty_string("RemedyIncidentIDField", "Incident Number")?,
            incident_status_field: self.non_empty_string("RemedyIncidentStatusField", "Status")?,
            incident_requester_fields: self.list_or(
                "RemedyIncidentRequesterFields",
                &["Customer Login ID", "Submitter"],
            )?,
            change_form: self.non_empty_string("RemedyChangeForm", "CHG:Infrastructure Change")?,
            change_id_field: self
                .non_empty_string("RemedyChangeIDField", "Infrastructure Change ID")?,
            change_status_field: self
                .non_empty_string("RemedyChangeStatusField", "Change Request Status")?,
            change_approval_field: self
                .non_empty_string("RemedyChangeApprovalField", "Approval Status")?,
            change_start_field: self
                .non_empty_string("RemedyChangeStartField", "Scheduled Start Date")?,
            change_end_field: self
                .non_empty_string("RemedyChangeEndField", "Scheduled End Date")?,
            change_requester_fields: self.list_or(
                "RemedyChangeRequesterFields",
                &["Requested By", "Submitter"],
            )?,
            token_lifetime: Duration::from_secs(self.number(
                "RemedyTokenLifetime",
                3300,
                60..=86_400,
            )?),
        })
    }

    /// CAFile, or the first system bundle that exists, read and parsed here once: the
    /// roots that pass the checks are the ones the HTTPS client trusts.
    fn ca_bundle(&self) -> Result<Option<CaBundle>, ConfigError> {
        let (path, origin) = match self.absolute_path("CAFile")? {
            Some(configured) => configured,
            None => match trust::system_bundle() {
                Some(path) => (path, self.whole()),
                None => return Ok(None),
            },
        };
        trust::load(&path)
            .map(Some)
            .map_err(|problem| error(&origin, problem.to_string()))
    }

    fn bypass_codes(&self) -> Result<Vec<BypassHash>, ConfigError> {
        let Some(entry) = self.get("FailsafeBypassCode") else {
            return Ok(Vec::new());
        };
        split_list(&entry.value)
            .iter()
            .enumerate()
            .map(|(index, item)| {
                BypassHash::parse(item, index + 1).map_err(|problem| error(&entry.origin, problem))
            })
            .collect()
    }

    fn proxy(&self) -> Result<Option<ProxyUrl>, ConfigError> {
        let Some(entry) = self.get("HTTPSProxy") else {
            return Ok(None);
        };
        parse_proxy_url(entry.value.trim())
            .map(Some)
            .map_err(|problem| error(&entry.origin, format!("HTTPSProxy: {problem}")))
    }

    fn prompt(&self) -> Result<String, ConfigError> {
        let prompt = self.string("Prompt", "Ticket ID: ");
        if prompt.trim().is_empty() || prompt.chars().any(char::is_control) {
            let origin = self
                .get("Prompt")
                .map_or_else(|| self.whole(), |entry| entry.origin.clone());
            return Err(error(
                &origin,
                "Prompt must be non-empty text without control characters",
            ));
        }
        Ok(prompt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_module_arguments;
    use crate::url::parse_proxy_url;

    fn entries(text: &str) -> Result<Vec<Entry>, ConfigError> {
        parse_entries(text, Path::new("/etc/test.conf"))
    }

    fn build(text: &str) -> Result<Config, ConfigError> {
        from_entries(Path::new("/etc/test.conf"), entries(text)?, Vec::new())
    }

    const MINIMAL: &str = "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n";

    #[test]
    fn unknown_key_is_an_error_with_a_hint() {
        let problem =
            build(&format!("{MINIMAL}ValidateRequestngUser=\"Yes\"\n")).expect_err("typo");
        assert_eq!(
            problem.to_string(),
            "/etc/test.conf:3: unknown key ValidateRequestngUser (did you mean ValidateRequestingUser?)"
        );
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let problem = build(&format!("{MINIMAL}Timeout=5\nTimeout=6\n")).expect_err("duplicate");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:4");
        assert!(
            problem
                .problem
                .contains("set twice (first at /etc/test.conf:3)")
        );
    }

    #[test]
    fn bad_values_are_errors_at_their_line() {
        for (line, needle) in [
            ("EnterTicketingInfo=\"Maybe\"", "Yes or No"),
            ("Timeout=\"0\"", "whole number"),
            ("Timeout=\"ten\"", "whole number"),
            ("MaxAttempts=\"99\"", "whole number"),
            ("TicketFormatRegex=\"([\"", "not a valid regex"),
            ("FailMode=\"open\"", "secure or safe"),
            (
                "ValidateIncidentTicketState=\"Yes\"",
                "AllowedIncidentTicketStates is empty",
            ),
            ("HTTPSProxy=\"https://proxy:3128\"", "http://host:port"),
            ("FailsafeBypassCode=\"letmein\"", "sha256:"),
            ("AuditLogFile=\"relative.log\"", "absolute path"),
            (
                "AllowedApprovalStatuses=\"Approved\"",
                "ValidateApprovalStatus is not Yes",
            ),
        ] {
            let problem = build(&format!("{MINIMAL}{line}\n")).expect_err(line);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{line}");
            assert!(problem.problem.contains(needle), "{line}: {problem}");
        }
    }

    #[test]
    fn plain_bypass_code_is_never_echoed() {
        let problem =
            build(&format!("{MINIMAL}FailsafeBypassCode=\"letmein-secret\"\n")).expect_err("plain");
        assert!(!problem.to_string().contains("letmein-secret"), "{problem}");
    }

    #[test]
    fn http_system_url_is_refused() {
        let problem = build("TicketingSystem=ServiceNow\nSystemURL=\"http://sn.example.com\"\n")
            .expect_err("http");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:2");
        assert!(problem.problem.contains("not an https:// URL"));
    }

    #[test]
    fn urls_the_client_would_refuse_or_servers_could_misread_are_errors() {
        for (raw, needle) in [
            (
                "https://<instance>.service-now.com",
                "invalid uri character",
            ),
            ("https://sn.example.com/<instance>", "invalid uri character"),
            ("https://sn.example.com/a`b", "invalid uri character"),
            ("https://sn.example.com/a\tb", "invalid uri character"),
            ("https://sn.example.com/a b", "invalid uri character"),
            ("https://sn.example.com/a>b", "invalid uri character"),
            ("https://sn.example.com/{x}", "'{', which"),
            ("https://sn.example.com/a|b", "'|', which"),
            ("https://sn.example.com/a\\b", "'\\\\', which"),
            ("https://sn.example.com/a^b", "'^', which"),
            ("https://sn.example.com/a\"b", "'\"', which"),
            ("https://sn.example.com/caf\u{e9}", "'\u{e9}', which"),
            ("https://sn.example.com/100%", "'%', which"),
            ("https://sn.example.com/a%zz", "'%', which"),
        ] {
            let problem = parse_https_url(raw).expect_err(raw);
            assert!(problem.contains(needle), "{raw:?}: {problem}");
        }
        let url = parse_https_url("https://sn.example.com/a%20b~c").expect("escapes are fine");
        assert_eq!(url.base, "https://sn.example.com/a%20b~c");
        for raw in [
            "http://proxy:3128/<x>",
            "http://pro xy:3128",
            "http://proxy\t:3128",
        ] {
            let problem = parse_proxy_url(raw).expect_err(raw);
            assert!(
                problem.contains("invalid uri character"),
                "{raw:?}: {problem}"
            );
        }
        let problem = build(&format!(
            "{MINIMAL}HTTPSProxy=\"http://proxy:3128/{{x}}\"\n"
        ))
        .expect_err("proxy");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:3");
        assert!(problem.problem.starts_with("HTTPSProxy: "), "{problem}");
    }

    #[test]
    fn module_arguments_override_the_file_and_are_strict() {
        let args: Vec<String> = [
            "config=/etc/x.conf",
            "debug",
            "MaxAttempts=5",
            "ValidateIncidentTicketState=Yes",
            "AllowedIncidentTicketStates=New,In Progress",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let parsed = parse_module_arguments(&args, "sshd").expect("valid");
        assert_eq!(parsed.config_path, Some(PathBuf::from("/etc/x.conf")));
        assert!(parsed.debug);
        let config = from_entries(
            Path::new("/etc/x.conf"),
            entries(&format!("{MINIMAL}MaxAttempts=2\n")).expect("ok"),
            parsed.overrides,
        )
        .expect("valid");
        assert_eq!(config.max_attempts, 5);

        let problem =
            parse_module_arguments(&["nodebug".to_string()], "sshd").expect_err("unknown");
        assert_eq!(
            problem.to_string(),
            "pam.d/sshd argument 1: unknown module argument \"nodebug\""
        );
        let parsed =
            parse_module_arguments(&["Timout=3".to_string()], "sshd").expect("shape is fine");
        let problem = from_entries(
            Path::new("/etc/x.conf"),
            entries(MINIMAL).expect("ok"),
            parsed.overrides,
        )
        .expect_err("unknown key");
        assert!(
            problem
                .to_string()
                .starts_with("pam.d/sshd argument 1: unknown key Timout")
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = build(MINIMAL).expect("valid");
        assert!(config.enter_ticketing_info);
        assert_eq!(config.fail_mode, FailMode::Secure);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.prompt, "Ticket ID: ");
        assert!(config.incident_identification.is_match("INC0010001"));
        assert!(config.change_identification.is_match("CHG0030001"));
        assert!(config.allowed_incident_states.is_none());
        let remedy = build("TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n").expect("valid");
        assert!(remedy.incident_identification.is_match("INC000000000701"));
        assert!(!remedy.incident_identification.is_match("INC0010001"));
    }

    #[test]
    fn gateway_checks_are_refused_in_portal_mode() {
        let problem = build("FetchCredentialsThroughPVWA=Yes\nValidateRequestingUser=Yes\n")
            .expect_err("portal");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:2");
        assert!(
            problem
                .problem
                .starts_with("ValidateRequestingUser has no effect in portal mode"),
            "{problem}"
        );
    }

    #[test]
    fn direct_mode_needs_url_and_account() {
        let problem = build("TicketingSystem=ServiceNow\n").expect_err("no url");
        assert_eq!(problem.to_string(), "/etc/test.conf: SystemURL is required");
        let problem = build("TicketingSystem=ServiceNow\nSystemURL=https://sn.example.com\n")
            .expect_err("no account");
        assert!(
            problem
                .problem
                .contains("ConnectionAccountFile is required")
        );
    }
}
