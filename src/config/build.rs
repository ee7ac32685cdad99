//! The typed [`Config`] built from the merged settings, one key at a time through the
//! accessors of [`super::settings`], in an order that reports the most basic mistake first.

use std::time::Duration;

use super::account::read_account_file;
use super::keys::{self, Key};
use super::settings::Settings;
use super::syntax::{ConfigError, error, parse_entries, split_list};
use super::{Config, FailMode, PortalAuthMethod, PortalSettings, RemedySettings, TicketingSystem};
use crate::bypass::BypassHash;
use crate::secure_file::{self, Readers};
use crate::trust::{self, CaBundle};
use crate::url::{ProxyUrl, parse_proxy_url};

impl Settings {
    pub(super) fn build(&self) -> Result<Config, ConfigError> {
        let portal_mode = self.portal_mode()?;
        let ticketing_system = self.ticketing_system(portal_mode)?;
        let validate_ticket_number = self.flag(Key::ValidateTicketNumber)?;
        let system_url = self.https_url(Key::SystemURL)?;
        let needs_direct_access = validate_ticket_number && !portal_mode;
        if needs_direct_access && system_url.is_none() {
            return Err(error(&self.whole(), "SystemURL is required"));
        }
        let connection_account = match self.absolute_path(Key::ConnectionAccountFile)? {
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
        let incident_identification = self
            .regex(Key::IncidentTicketIdentification, ticketing_system, false)?
            .ok_or_else(|| error(&self.whole(), "IncidentTicketIdentification is missing"))?;
        let change_identification = self
            .regex(Key::ChangeTicketIdentification, ticketing_system, false)?
            .ok_or_else(|| error(&self.whole(), "ChangeTicketIdentification is missing"))?;
        let fail_mode = self.fail_mode()?;
        let portal = if portal_mode {
            self.refuse_gateway_checks_in_portal_mode()?;
            Some(self.portal(ticketing_system)?)
        } else {
            None
        };
        Ok(Config {
            source: self.path.clone(),
            ticketing_system,
            system_url,
            connection_account,
            ca_bundle: self.ca_bundle()?,
            enter_ticketing_info: self.flag(Key::EnterTicketingInfo)?,
            validate_ticket_number,
            ticket_format: self.regex(Key::TicketFormatRegex, ticketing_system, true)?,
            incident_identification,
            change_identification,
            allowed_incident_states: self.checked_list(
                Key::ValidateIncidentTicketState,
                Key::AllowedIncidentTicketStates,
            )?,
            allowed_change_states: self.checked_list(
                Key::ValidateChangeTicketState,
                Key::AllowedChangeTicketStates,
            )?,
            allowed_approval_statuses: self
                .checked_list(Key::ValidateApprovalStatus, Key::AllowedApprovalStatuses)?,
            validate_operation_time: self.flag(Key::ValidateOperationTime)?,
            validate_requesting_user: self.flag(Key::ValidateRequestingUser)?,
            bypass_codes: self.bypass_codes()?,
            fail_mode,
            timeout: Duration::from_secs(self.number(Key::Timeout)?),
            https_proxy: self.proxy()?,
            // The table's range (1 to 10) keeps it far inside u32.
            max_attempts: u32::try_from(self.number(Key::MaxAttempts)?)
                .map_err(|_| self.table_error(Key::MaxAttempts, "u32"))?,
            prompt: self.prompt()?,
            audit_log_file: self.absolute_path(Key::AuditLogFile)?.map(|(path, _)| path),
            portal,
            remedy: self.remedy()?,
            cache_directory: self.path_or_default(Key::CacheDirectory)?,
            debug: false,
        })
    }

    /// FetchCredentialsThroughPVWA from this configuration, or else from the
    /// basic_psmpserver.conf that PSMPServerConfig names (where only that key is read).
    fn portal_mode(&self) -> Result<bool, ConfigError> {
        if self.entry(Key::FetchCredentialsThroughPVWA).is_some() {
            return self.flag(Key::FetchCredentialsThroughPVWA);
        }
        let Some((path, origin)) = self.absolute_path(Key::PSMPServerConfig)? else {
            return Ok(false);
        };
        let text = secure_file::read_text(&path, Readers::Anyone, true)
            .map_err(|problem| error(&origin, format!("cannot use PSMPServerConfig: {problem}")))?;
        let psmp = Settings::new(
            &path,
            parse_entries(&text, &path)?
                .into_iter()
                .filter(|entry| entry.key == Key::FetchCredentialsThroughPVWA.name())
                .map(|entry| (Key::FetchCredentialsThroughPVWA, entry))
                .collect(),
        );
        psmp.flag(Key::FetchCredentialsThroughPVWA)
    }

    /// Required, except in portal mode.
    fn ticketing_system(&self, portal_mode: bool) -> Result<Option<TicketingSystem>, ConfigError> {
        match self.entry(Key::TicketingSystem) {
            Some(entry) => Ok(Some(match entry.value.trim() {
                "ServiceNow" => TicketingSystem::ServiceNow,
                "BMCRemedy" => TicketingSystem::BmcRemedy,
                other => {
                    return Err(error(
                        &entry.origin,
                        format!("TicketingSystem must be ServiceNow or BMCRemedy, not {other:?}"),
                    ));
                }
            })),
            None if portal_mode => Ok(None),
            None => Err(error(&self.whole(), "TicketingSystem is required")),
        }
    }

    fn fail_mode(&self) -> Result<FailMode, ConfigError> {
        let (value, origin) = self.text(Key::FailMode, None)?;
        match value.trim().to_ascii_lowercase().as_str() {
            "secure" => Ok(FailMode::Secure),
            "safe" => Ok(FailMode::Safe),
            _ => Err(error(
                &origin,
                format!("FailMode must be secure or safe, not {value:?}"),
            )),
        }
    }

    /// In portal mode the portal validates the ticket; the gateway's own ticket checks
    /// would never run. Switching one on there is refused rather than silently ignored,
    /// so that an admin never believes a check is in force when it is not.
    fn refuse_gateway_checks_in_portal_mode(&self) -> Result<(), ConfigError> {
        for switch in keys::gateway_switches() {
            if self.flag(switch)? {
                return Err(error(
                    &self.origin(switch),
                    format!(
                        "{switch} has no effect in portal mode (FetchCredentialsThroughPVWA=Yes): the portal validates the ticket; configure the check in the portal and remove it here"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn portal(
        &self,
        ticketing_system: Option<TicketingSystem>,
    ) -> Result<PortalSettings, ConfigError> {
        let url = self.https_url(Key::PortalURL)?.ok_or_else(|| {
            error(
                &self.whole(),
                "PortalURL is required when FetchCredentialsThroughPVWA is Yes",
            )
        })?;
        let (method, method_origin) = self.text(Key::PortalAuthMethod, ticketing_system)?;
        let auth_method = match method.trim() {
            "CyberArk" => PortalAuthMethod::CyberArk,
            "LDAP" => PortalAuthMethod::Ldap,
            "RADIUS" => PortalAuthMethod::Radius,
            other => {
                return Err(error(
                    &method_origin,
                    format!("PortalAuthMethod must be CyberArk, LDAP or RADIUS, not {other:?}"),
                ));
            }
        };
        let (account_path, account_origin) =
            self.absolute_path(Key::PortalAccountFile)?.ok_or_else(|| {
                error(
                    &self.whole(),
                    "PortalAccountFile is required when FetchCredentialsThroughPVWA is Yes",
                )
            })?;
        Ok(PortalSettings {
            url,
            auth_method,
            account: read_account_file(&account_path, &account_origin)?,
            ticketing_system_name: self
                .non_empty_text(Key::PortalTicketingSystemName, ticketing_system)?,
            reason_template: self.non_empty_text(Key::PortalReason, ticketing_system)?,
        })
    }

    fn remedy(&self) -> Result<RemedySettings, ConfigError> {
        let text = |key: Key| self.non_empty_text(key, None);
        Ok(RemedySettings {
            incident_form: text(Key::RemedyIncidentForm)?,
            incident_id_field: text(Key::RemedyIncidentIDField)?,
            incident_status_field: text(Key::RemedyIncidentStatusField)?,
            incident_requester_fields: self.field_list(Key::RemedyIncidentRequesterFields)?,
            change_form: text(Key::RemedyChangeForm)?,
            change_id_field: text(Key::RemedyChangeIDField)?,
            change_status_field: text(Key::RemedyChangeStatusField)?,
            change_approval_field: text(Key::RemedyChangeApprovalField)?,
            change_start_field: text(Key::RemedyChangeStartField)?,
            change_end_field: text(Key::RemedyChangeEndField)?,
            change_requester_fields: self.field_list(Key::RemedyChangeRequesterFields)?,
            token_lifetime: Duration::from_secs(self.number(Key::RemedyTokenLifetime)?),
        })
    }

    /// CAFile, or the first system bundle that exists, read and parsed here once: the
    /// roots that pass the checks are the ones the HTTPS client trusts.
    fn ca_bundle(&self) -> Result<Option<CaBundle>, ConfigError> {
        let (path, origin) = match self.absolute_path(Key::CAFile)? {
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
        let Some(entry) = self.entry(Key::FailsafeBypassCode) else {
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
        let Some(entry) = self.entry(Key::HTTPSProxy) else {
            return Ok(None);
        };
        parse_proxy_url(entry.value.trim())
            .map(Some)
            .map_err(|problem| error(&entry.origin, format!("HTTPSProxy: {problem}")))
    }

    fn prompt(&self) -> Result<String, ConfigError> {
        let (prompt, origin) = self.text(Key::Prompt, None)?;
        if prompt.trim().is_empty() || prompt.chars().any(char::is_control) {
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
    use std::collections::BTreeSet;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::keys::{KEYS, Mode};
    use crate::config::parse_module_arguments;
    use crate::config::settings::{from_entries, merge};
    use crate::config::syntax::Entry;
    use crate::url::parse_https_url;

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

    /// Which keys `build()` asked the settings for, for a configuration that builds.
    fn consulted(text: &str) -> BTreeSet<Key> {
        let merged = merge(entries(text).expect("valid syntax"), Vec::new()).expect("known keys");
        let settings = Settings::new(Path::new("/etc/test.conf"), merged);
        if let Err(problem) = settings.build() {
            panic!("does not build: {problem}\n{text}");
        }
        settings.consulted.into_inner()
    }

    /// A key that the code reads but the table does not list cannot be written: the
    /// accessors take a `Key`, and the map holds only keys of the table. The other way
    /// round is this test: for representative configurations of each mode, `build()` must
    /// consult every key the table marks for that mode, and over all of them every key.
    #[test]
    fn every_key_in_the_table_is_read_in_each_mode_it_is_for() {
        let dir = std::env::temp_dir().join(format!("pam_ticket_keys_read_{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let account = dir.join("portal-account");
        fs::write(&account, "Username=\"gw\"\nPassword=\"pw\"\n").expect("write");
        fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
        let psmp = dir.join("basic_psmpserver.conf");
        fs::write(&psmp, "FetchCredentialsThroughPVWA=\"Yes\"\n").expect("write");
        fs::set_permissions(&psmp, fs::Permissions::from_mode(0o644)).expect("chmod");
        let portal = format!(
            "PortalURL=https://portal.example.com/PasswordVault\nPortalAccountFile={}\n",
            account.display()
        );
        let cases = [
            (Mode::ServiceNow, MINIMAL.to_string()),
            (
                Mode::Remedy,
                "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n".to_string(),
            ),
            (
                Mode::Portal,
                format!("FetchCredentialsThroughPVWA=Yes\n{portal}"),
            ),
            (
                Mode::Portal,
                format!("PSMPServerConfig={}\n{portal}", psmp.display()),
            ),
        ];
        let mut everywhere = BTreeSet::new();
        for mode in [Mode::ServiceNow, Mode::Remedy, Mode::Portal] {
            let mut read = BTreeSet::new();
            for (_, text) in cases.iter().filter(|(case, _)| *case == mode) {
                let config = build(text).expect("builds");
                assert_eq!(config.mode(), mode, "{text}");
                read.extend(consulted(text));
            }
            for spec in KEYS.iter().filter(|spec| spec.modes.allows(mode)) {
                assert!(
                    read.contains(&spec.key),
                    "{} is in the key table for {mode:?} but build() never reads it there",
                    spec.name
                );
            }
            everywhere.extend(read);
        }
        let never: Vec<&str> = KEYS
            .iter()
            .filter(|spec| !everywhere.contains(&spec.key))
            .map(|spec| spec.name)
            .collect();
        assert!(never.is_empty(), "listed but never read: {never:?}");
        let _ = fs::remove_dir_all(&dir);
    }
}
