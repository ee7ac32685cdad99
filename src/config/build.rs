//! The typed [`Config`] built from the merged settings, one key at a time through the
//! accessors of [`super::settings`], in an order that reports the most basic mistake first.
//!
//! Every check goes through [`Settings::check`], which records a problem and goes on, so
//! that `pam-ticket check` can report every mistake at once; the module stops at the first
//! (the settings are then made with `stop_at_first`, and no check after it runs). A check
//! that combines keys runs only when the keys it reads were read without a problem, so a
//! mistake is reported once, not again as a consequence. A configuration with any problem
//! is never returned.

use std::time::Duration;

use super::account::{read_account_file, read_service_now_account};
use super::keys::{self, Key};
use super::settings::Settings;
use super::syntax::{ConfigError, Origin, error, parse_entries, split_list};
use super::{
    AuthMethod, Config, FailMode, PortalAuthMethod, PortalSettings, RemedySettings, TicketingSystem,
};
use crate::bypass::BypassHash;
use crate::client_cert::{self, ClientIdentity};
use crate::secure_file::{self, Readers};
use crate::trust::{self, CaBundle};
use crate::url::{ApiBase, BaseUrl, ProxyUrl, parse_proxy_url};

impl Settings {
    /// The configuration, or its first problem.
    pub(super) fn build(&self) -> Result<Config, ConfigError> {
        self.build_reporting_all()
            .map_err(|problems| self.first_problem(problems))
    }

    /// The configuration, or every problem found (only the first when the settings stop
    /// at the first).
    pub(super) fn build_reporting_all(&self) -> Result<Config, Vec<ConfigError>> {
        let config = self.assemble();
        let problems = self.take_problems();
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ if !problems.is_empty() => Err(problems),
            _ => Err(vec![error(
                &self.whole(),
                "internal error: a setting was not read, yet no problem was recorded",
            )]),
        }
    }

    /// Reads every key; `None` when a problem was recorded (the values read are then
    /// thrown away).
    fn assemble(&self) -> Option<Config> {
        let portal_mode = self.check(|| self.portal_mode());
        let ticketing_system =
            portal_mode.and_then(|portal_mode| self.check(|| self.ticketing_system(portal_mode)));
        // The defaults of the regexes depend on the system; a bad TicketingSystem (already
        // reported) reads them as ServiceNow's.
        let system = ticketing_system.flatten();
        let validate_ticket_number = self.check(|| self.flag(Key::ValidateTicketNumber));
        let system_url = self.check(|| self.system_url(portal_mode, system));
        let needs_direct_access = match (validate_ticket_number, portal_mode) {
            (Some(validate), Some(portal)) => Some(validate && !portal),
            _ => None,
        };
        let direct_causes = [
            Key::ValidateTicketNumber,
            Key::TicketingSystem,
            Key::FetchCredentialsThroughPVWA,
        ];
        if needs_direct_access == Some(true) && system_url.as_ref().is_some_and(Option::is_none) {
            self.report_missing(error(
                &self.blame(self.whole(), &direct_causes),
                "SystemURL is required",
            ));
        }
        let auth_method = self.check(|| self.auth_method(portal_mode, system));
        let account_path = self.check(|| self.absolute_path(Key::ConnectionAccountFile));
        // (the user, the OAuth client)
        let connection_account = match (account_path, needs_direct_access, auth_method) {
            (Some(Some((path, origin))), Some(true), Some(method)) => match system {
                Some(TicketingSystem::ServiceNow) => self
                    .check(|| read_service_now_account(&path, &origin, method))
                    .map(|account| (account.user, account.client)),
                _ => self
                    .check(|| read_account_file(&path, &origin))
                    .map(|user| (Some(user), None)),
            },
            // AuthMethod's problem is reported already.
            (Some(Some(_)), Some(true), None) => None,
            (Some(None), Some(true), _) => {
                self.report_missing(error(
                    &self.blame(self.whole(), &direct_causes),
                    "ConnectionAccountFile is required when ValidateTicketNumber is Yes",
                ));
                None
            }
            (Some(_), _, _) => Some((None, None)),
            (None, _, _) => None,
        };
        let kinds = self.accepted_kinds(portal_mode, system);
        let identification = self.identification(&kinds, system);
        let fail_mode = self.check(|| self.fail_mode());
        let portal = match portal_mode {
            Some(true) => {
                self.refuse_gateway_checks_in_portal_mode();
                self.refuse_audit_trail_in_portal_mode();
                self.portal(system).map(Some)
            }
            Some(false) => Some(None),
            None => None,
        };
        let ca_bundle = self.check(|| self.ca_bundle());
        let client_identity = self.check(|| self.client_identity());
        let enter_ticketing_info = self.check(|| self.flag(Key::EnterTicketingInfo));
        let uppercase_ticket_id = self.check(|| self.flag(Key::UppercaseTicketId));
        let ticket_format = self.check(|| self.regex(Key::TicketFormatRegex, system, true));
        let (allowed_states, allowed_approvals) = self.checked_choices(&kinds);
        let ci_check = self.check(|| self.ci_check());
        let validate_operation_time = self.check(|| self.flag(Key::ValidateOperationTime));
        let validate_requesting_user = self.check(|| self.flag(Key::ValidateRequestingUser));
        let people = self.people(portal_mode, system, validate_requesting_user);
        let bypass_codes = self.check(|| self.bypass_codes());
        let timeout = self.check(|| self.number(Key::Timeout));
        let https_proxy = self.check(|| self.proxy());
        // The table's range (1 to 10) keeps it far inside u32.
        let max_attempts = self.check(|| {
            u32::try_from(self.number(Key::MaxAttempts)?)
                .map_err(|_| self.table_error(Key::MaxAttempts, "u32"))
        });
        let prompt = self.check(|| self.prompt());
        let audit_log_file = self.check(|| self.absolute_path(Key::AuditLogFile));
        let remedy = self.remedy(people.as_ref());
        let cache_directory = self.check(|| self.path_or_default(Key::CacheDirectory));
        let work_notes = self.check(|| self.work_notes());
        let reason_prompt = self.check(|| self.reason_prompt());
        if self.has_problems() {
            return None;
        }
        let (user, client) = connection_account?;
        Some(Config {
            source: self.path.clone(),
            ticketing_system: ticketing_system?,
            system_url: system_url?,
            connection_account: user,
            auth_method: auth_method?,
            oauth_client: client,
            ca_bundle: ca_bundle?,
            client_identity: client_identity?,
            enter_ticketing_info: enter_ticketing_info?,
            validate_ticket_number: validate_ticket_number?,
            uppercase_ticket_id: uppercase_ticket_id?,
            ticket_format: ticket_format?,
            identification: identification?,
            allowed_states: allowed_states?,
            allowed_approvals: allowed_approvals?,
            ci_check: ci_check?,
            validate_operation_time: validate_operation_time?,
            validate_requesting_user: validate_requesting_user?,
            people: people?,
            bypass_codes: bypass_codes?,
            fail_mode: fail_mode?,
            timeout: Duration::from_secs(timeout?),
            https_proxy: https_proxy?,
            max_attempts: max_attempts?,
            prompt: prompt?,
            audit_log_file: audit_log_file?.map(|(path, _)| path),
            portal: portal?,
            remedy: RemedySettings {
                read_change_entry_id: work_notes.as_ref().is_some_and(Option::is_some),
                ..remedy?
            },
            cache_directory: cache_directory?,
            work_notes: work_notes?,
            reason_prompt: reason_prompt?,
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
            None => Err(error(
                &self.blame(self.whole(), &[Key::FetchCredentialsThroughPVWA]),
                "TicketingSystem is required",
            )),
        }
    }

    /// SystemURL, whose path must fit the system it points at (see
    /// [`BaseUrl::check_path`]). Unused in portal mode, where only its syntax is checked.
    fn system_url(
        &self,
        portal_mode: Option<bool>,
        system: Option<TicketingSystem>,
    ) -> Result<Option<BaseUrl>, ConfigError> {
        let Some(url) = self.https_url(Key::SystemURL)? else {
            return Ok(None);
        };
        let kind = match (portal_mode, system) {
            (Some(false), Some(TicketingSystem::ServiceNow)) => ApiBase::ServiceNow,
            (Some(false), Some(TicketingSystem::BmcRemedy)) => ApiBase::Remedy,
            _ => return Ok(Some(url)),
        };
        url.check_path(kind).map_err(|problem| {
            error(
                &self.origin(Key::SystemURL),
                format!("SystemURL: {problem}"),
            )
        })?;
        Ok(Some(url))
    }

    /// AuthMethod: how the module signs in to ServiceNow. The OAuth methods are refused
    /// where nothing would use them (BMC Remedy, portal mode), so that an admin never
    /// believes the module signs in in a way it does not.
    fn auth_method(
        &self,
        portal_mode: Option<bool>,
        system: Option<TicketingSystem>,
    ) -> Result<AuthMethod, ConfigError> {
        let (value, origin) = self.text(Key::AuthMethod, system)?;
        let method = match value.trim() {
            "basic" => AuthMethod::Basic,
            "oauth-client-credentials" => AuthMethod::OAuthClientCredentials,
            "oauth-password" => AuthMethod::OAuthPassword,
            other => {
                return Err(error(
                    &origin,
                    format!(
                        "AuthMethod must be basic, oauth-client-credentials or oauth-password, \
                         not {other:?}"
                    ),
                ));
            }
        };
        if method == AuthMethod::Basic {
            return Ok(method);
        }
        let elsewhere = match (portal_mode, system) {
            (Some(true), _) => Some(
                "portal mode (FetchCredentialsThroughPVWA=Yes), where PortalAuthMethod decides how \
                 the gateway user logs on",
            ),
            (_, Some(TicketingSystem::BmcRemedy)) => {
                Some("BMC Remedy, which logs on with Username and Password (POST /api/jwt/login)")
            }
            _ => None,
        };
        match elsewhere {
            Some(place) => Err(error(
                &self.blame(
                    origin,
                    &[Key::FetchCredentialsThroughPVWA, Key::TicketingSystem],
                ),
                format!(
                    "AuthMethod={} is for ServiceNow only; it has no effect in {place}: remove it",
                    method.name()
                ),
            )),
            None => Ok(method),
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
    /// so that an admin never believes a check is in force when it is not. When portal
    /// mode comes from the pam.d line, the error names that argument: it is what made a
    /// switch in the file wrong.
    fn refuse_gateway_checks_in_portal_mode(&self) {
        for switch in keys::gateway_switches() {
            // A bad value is reported where the switch itself is read.
            if self.flag(switch).ok() != Some(true) {
                continue;
            }
            let origin = self.blame(self.origin(switch), &[Key::FetchCredentialsThroughPVWA]);
            let place = if origin == self.origin(switch) {
                String::new()
            } else {
                format!(" (set at {})", self.origin(switch))
            };
            self.report(error(
                &origin,
                format!(
                    "{switch}{place} has no effect in portal mode (FetchCredentialsThroughPVWA=Yes): the portal validates the ticket; configure the check in the portal and remove it here"
                ),
            ));
        }
    }

    fn portal(&self, ticketing_system: Option<TicketingSystem>) -> Option<PortalSettings> {
        let portal_causes = [Key::FetchCredentialsThroughPVWA, Key::PSMPServerConfig];
        let url = self.check(|| {
            let url = self.https_url(Key::PortalURL)?;
            if let Some(url) = &url {
                url.check_path(ApiBase::Portal).map_err(|problem| {
                    error(
                        &self.origin(Key::PortalURL),
                        format!("PortalURL: {problem}"),
                    )
                })?;
            }
            Ok(url)
        });
        if url.as_ref().is_some_and(Option::is_none) {
            self.report_missing(error(
                &self.blame(self.whole(), &portal_causes),
                "PortalURL is required when FetchCredentialsThroughPVWA is Yes",
            ));
        }
        let auth_method = self.check(|| {
            let (method, method_origin) = self.text(Key::PortalAuthMethod, ticketing_system)?;
            match method.trim() {
                "CyberArk" => Ok(PortalAuthMethod::CyberArk),
                "LDAP" => Ok(PortalAuthMethod::Ldap),
                "RADIUS" => Ok(PortalAuthMethod::Radius),
                "PlatformToken" => Ok(PortalAuthMethod::PlatformToken),
                other => Err(error(
                    &method_origin,
                    format!(
                        "PortalAuthMethod must be CyberArk, LDAP, RADIUS or PlatformToken, not {other:?}"
                    ),
                )),
            }
        });
        let identity_url = self.check(|| {
            let url = self.https_url(Key::IdentityURL)?;
            if let Some(url) = &url {
                url.check_path(ApiBase::IdentityTenant).map_err(|problem| {
                    error(
                        &self.origin(Key::IdentityURL),
                        format!("IdentityURL: {problem}"),
                    )
                })?;
            }
            Ok(url)
        });
        // A platform token comes from the Identity tenant, which only IdentityURL names;
        // an IdentityURL with a PVWA logon would never be used, and an admin who set it
        // must not believe that it is.
        match (auth_method, identity_url.as_ref()) {
            (Some(PortalAuthMethod::PlatformToken), Some(None)) => {
                self.report_missing(error(
                    &self.origin(Key::PortalAuthMethod),
                    "IdentityURL is required when PortalAuthMethod is PlatformToken \
                     (https://<tenant>.id.cyberark.cloud, the Identity tenant that issues \
                     platform tokens)",
                ));
            }
            (Some(method), Some(Some(_))) if method != PortalAuthMethod::PlatformToken => {
                self.report(error(
                    &self.origin(Key::IdentityURL),
                    format!(
                        "IdentityURL has no effect with PortalAuthMethod={} (only a platform \
                         token comes from the Identity tenant): set PortalAuthMethod=PlatformToken \
                         for Privilege Cloud, or remove IdentityURL",
                        method.path_segment()
                    ),
                ));
            }
            _ => {}
        }
        let account = match self.check(|| self.absolute_path(Key::PortalAccountFile)) {
            Some(Some((path, origin))) => self.check(|| read_account_file(&path, &origin)),
            Some(None) => {
                self.report_missing(error(
                    &self.blame(self.whole(), &portal_causes),
                    "PortalAccountFile is required when FetchCredentialsThroughPVWA is Yes",
                ));
                None
            }
            None => None,
        };
        let ticketing_system_name =
            self.check(|| self.non_empty_text(Key::PortalTicketingSystemName, ticketing_system));
        let reason_template =
            self.check(|| self.non_empty_text(Key::PortalReason, ticketing_system));
        let identity_url = identity_url?;
        let auth_method = auth_method?;
        if (auth_method == PortalAuthMethod::PlatformToken) != identity_url.is_some() {
            // Reported above.
            return None;
        }
        Some(PortalSettings {
            url: url??,
            auth_method,
            identity_url,
            account: account?,
            ticketing_system_name: ticketing_system_name?,
            reason_template: reason_template?,
        })
    }

    fn remedy(&self, people: Option<&super::People>) -> Option<RemedySettings> {
        let text = |key: Key| self.check(|| self.non_empty_text(key, None));
        let fields = |key: Key| self.check(|| self.field_list(key));
        let incident_form = text(Key::RemedyIncidentForm);
        let incident_id_field = text(Key::RemedyIncidentIDField);
        let incident_status_field = text(Key::RemedyIncidentStatusField);
        let incident_requester_fields = fields(Key::RemedyIncidentRequesterFields);
        let change_form = text(Key::RemedyChangeForm);
        let change_id_field = text(Key::RemedyChangeIDField);
        let change_status_field = text(Key::RemedyChangeStatusField);
        let change_approval_field = text(Key::RemedyChangeApprovalField);
        let change_start_field = text(Key::RemedyChangeStartField);
        let change_end_field = text(Key::RemedyChangeEndField);
        let change_requester_fields = fields(Key::RemedyChangeRequesterFields);
        let incident_ci_field = text(Key::RemedyIncidentCIField);
        let change_ci_field = text(Key::RemedyChangeCIField);
        let work_order_form = text(Key::RemedyWorkOrderForm);
        let work_order_id_field = text(Key::RemedyWorkOrderIDField);
        let work_order_status_field = text(Key::RemedyWorkOrderStatusField);
        let work_order_requester_fields = fields(Key::RemedyWorkOrderRequesterFields);
        let problem_investigation_form = text(Key::RemedyProblemInvestigationForm);
        let problem_investigation_id_field = text(Key::RemedyProblemInvestigationIDField);
        let problem_investigation_status_field = text(Key::RemedyProblemInvestigationStatusField);
        let problem_investigation_requester_fields =
            fields(Key::RemedyProblemInvestigationRequesterFields);
        let remedy_people = self.remedy_people(people);
        let token_lifetime = self.check(|| self.number(Key::RemedyTokenLifetime));
        let incident_work_log_form = text(Key::RemedyIncidentWorkLogForm);
        let incident_work_log_id_field = text(Key::RemedyIncidentWorkLogIDField);
        let change_work_log_form = text(Key::RemedyChangeWorkLogForm);
        let change_work_log_id_field = text(Key::RemedyChangeWorkLogIDField);
        let change_entry_id_field = text(Key::RemedyChangeEntryIDField);
        Some(RemedySettings {
            incident_form: incident_form?,
            incident_id_field: incident_id_field?,
            incident_status_field: incident_status_field?,
            incident_requester_fields: incident_requester_fields?,
            change_form: change_form?,
            change_id_field: change_id_field?,
            change_status_field: change_status_field?,
            change_approval_field: change_approval_field?,
            change_start_field: change_start_field?,
            change_end_field: change_end_field?,
            change_requester_fields: change_requester_fields?,
            incident_ci_field: incident_ci_field?,
            change_ci_field: change_ci_field?,
            work_order_form: work_order_form?,
            work_order_id_field: work_order_id_field?,
            work_order_status_field: work_order_status_field?,
            work_order_requester_fields: work_order_requester_fields?,
            problem_investigation_form: problem_investigation_form?,
            problem_investigation_id_field: problem_investigation_id_field?,
            problem_investigation_status_field: problem_investigation_status_field?,
            problem_investigation_requester_fields: problem_investigation_requester_fields?,
            people: remedy_people?,
            token_lifetime: Duration::from_secs(token_lifetime?),
            incident_work_log_form: incident_work_log_form?,
            incident_work_log_id_field: incident_work_log_id_field?,
            change_work_log_form: change_work_log_form?,
            change_work_log_id_field: change_work_log_id_field?,
            change_entry_id_field: change_entry_id_field?,
            // Set once WorkNotes is read (see `assemble`).
            read_change_entry_id: false,
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

    /// ClientCertificateFile and ClientKeyFile, both or neither, read here once and checked
    /// against each other: a key that does not belong to the certificate would fail every
    /// handshake, so it is a configuration error now rather than a refusal at each login.
    fn client_identity(&self) -> Result<Option<ClientIdentity>, ConfigError> {
        let certificate = self.absolute_path(Key::ClientCertificateFile)?;
        let key = self.absolute_path(Key::ClientKeyFile)?;
        let ((certificate_path, certificate_origin), (key_path, key_origin)) =
            match (certificate, key) {
                (None, None) => return Ok(None),
                (Some(certificate), Some(key)) => (certificate, key),
                (Some((_, origin)), None) => {
                    return Err(error(
                        &origin,
                        "ClientCertificateFile is set but ClientKeyFile is not: set both \
                         (the certificate and its private key) or neither",
                    ));
                }
                (None, Some((_, origin))) => {
                    return Err(error(
                        &origin,
                        "ClientKeyFile is set but ClientCertificateFile is not: set both \
                         (the certificate and its private key) or neither",
                    ));
                }
            };
        client_cert::load(&certificate_path, &key_path)
            .map(Some)
            .map_err(|problem| {
                let origin = match problem {
                    client_cert::ClientCertError::CertificateUnusable(_)
                    | client_cert::ClientCertError::NoCertificate(_)
                    | client_cert::ClientCertError::KeyInReadableCertificateFile(_)
                    | client_cert::ClientCertError::BadCertificate { .. } => &certificate_origin,
                    client_cert::ClientCertError::KeyUnusable(_)
                    | client_cert::ClientCertError::KeyEncrypted(_)
                    | client_cert::ClientCertError::NoKey(_)
                    | client_cert::ClientCertError::SeveralKeys(_)
                    | client_cert::ClientCertError::KeyNotPem(_)
                    | client_cert::ClientCertError::KeyUnsupported { .. }
                    | client_cert::ClientCertError::KeyMismatch { .. } => &key_origin,
                };
                error(origin, problem.to_string())
            })
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

    /// Where an error that several keys caused is reported: the first of `causes` that
    /// the pam.d line set (an override there is what made the configuration wrong, and
    /// the file alone may be fine), else `otherwise`.
    pub(super) fn blame(&self, otherwise: Origin, causes: &[Key]) -> Origin {
        causes
            .iter()
            .filter_map(|key| self.entry(*key))
            .find(|entry| matches!(entry.origin, Origin::ModuleArgument { .. }))
            .map_or(otherwise, |entry| entry.origin.clone())
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
    use crate::ticket::TicketKind;
    use crate::url::parse_https_url;

    fn entries(text: &str) -> Result<Vec<Entry>, ConfigError> {
        parse_entries(text, Path::new("/etc/test.conf"))
    }

    fn build(text: &str) -> Result<Config, ConfigError> {
        from_entries(Path::new("/etc/test.conf"), entries(text)?, Vec::new())
    }

    const MINIMAL: &str = "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n";

    /// Found by fuzz/config (fuzz/corpus/config/crash-proxy-*): a bracketed host without a
    /// port was taken as port 0, and a host ureq refuses was accepted.
    #[test]
    fn a_proxy_needs_a_port_and_a_host_ureq_accepts() {
        for proxy in ["http://[::1]", "http://[::1]/", "http://[proxy[::1]:3128"] {
            let problem = build(&format!("{MINIMAL}HTTPSProxy=\"{proxy}\"\n")).expect_err(proxy);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{proxy}");
            assert!(
                problem.problem.starts_with("HTTPSProxy: "),
                "{}",
                problem.problem
            );
        }
        let config = build(&format!("{MINIMAL}HTTPSProxy=\"http://[::1]:3128\"\n"))
            .expect("a bracketed IPv6 address with a port");
        let proxy = config.https_proxy.expect("set");
        assert_eq!((proxy.host.as_str(), proxy.port), ("[::1]", 3128));
    }

    /// A pattern that closes the anchoring group itself would match every ID
    /// (fuzz/corpus/config/crash-ticket-format-escapes-anchors).
    #[test]
    fn a_ticket_format_that_escapes_its_anchors_is_refused() {
        let problem = build(&format!("{MINIMAL}TicketFormatRegex=\"INC[0-9]+)|(.*\"\n"))
            .expect_err("not a regex on its own");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:3");
        assert!(
            problem
                .problem
                .contains("TicketFormatRegex is not a valid regex"),
            "{}",
            problem.problem
        );
        let config = build(&format!(
            "{MINIMAL}TicketFormatRegex=\"(INC|CHG)[0-9]{{7}}\"\n"
        ))
        .expect("a regex on its own");
        let format = config.ticket_format.expect("set");
        assert!(format.is_match("INC0012345"));
        assert!(!format.is_match("xINC0012345"));
    }

    /// The module carries the Unicode tables of \d, \w, \s and case-insensitive matching
    /// only (Cargo.toml): a pattern with a script or category class is a configuration
    /// error at its line, never a pattern that matches something else.
    #[test]
    fn unicode_classes_beyond_perl_and_case_are_configuration_errors() {
        let problem = build(&format!("{MINIMAL}TicketFormatRegex=\"\\p{{Greek}}+\"\n"))
            .expect_err("no script tables");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:3");
        assert!(
            problem
                .problem
                .contains("TicketFormatRegex is not a valid regex"),
            "{}",
            problem.problem
        );
        let config = build(&format!(
            "{MINIMAL}TicketFormatRegex=\"(?i)inc\\d{{7}}\\w*\"\n"
        ))
        .expect("perl classes and case folding");
        let format = config.ticket_format.expect("set");
        assert!(format.is_match("INC0012345"));
        assert!(format.is_match("inc0012345x"));
        assert!(!format.is_match("INC001234"));
    }

    #[test]
    fn auth_method_is_for_servicenow_only() {
        let config = build(MINIMAL).expect("valid");
        assert_eq!(config.auth_method, AuthMethod::Basic);
        let config =
            build(&format!("{MINIMAL}AuthMethod=\"oauth-password\"\n")).expect("ServiceNow");
        assert_eq!(config.auth_method, AuthMethod::OAuthPassword);
        let problem = build(&format!("{MINIMAL}AuthMethod=\"oauth\"\n")).expect_err("bad value");
        assert_eq!(
            problem.to_string(),
            "/etc/test.conf:3: AuthMethod must be basic, oauth-client-credentials or \
             oauth-password, not \"oauth\""
        );
        let problem = build(
            "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nAuthMethod=oauth-client-credentials\n",
        )
        .expect_err("Remedy");
        assert!(
            problem.to_string().starts_with(
                "/etc/test.conf:3: AuthMethod=oauth-client-credentials is for ServiceNow only"
            ),
            "{problem}"
        );
        // basic, said outright, is what Remedy does anyway.
        assert!(
            build("TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nAuthMethod=basic\n").is_ok()
        );
    }

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
            "pam.d/sshd argument 1: unknown module argument \"nodebug\" (did you mean debug?)"
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
        assert!(config.allowed_states(TicketKind::Incident).is_none());
        assert!(config.ci_check.is_none());
        let remedy = build("TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n").expect("valid");
        let incident = remedy
            .identification_of(TicketKind::Incident)
            .expect("incidents");
        assert!(incident.is_match("INC000000000701"));
        assert!(!incident.is_match("INC0010001"));
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

    /// PlatformToken takes its token from IdentityURL, so it needs one; any other method
    /// would never use one, so setting it there is refused rather than ignored.
    #[test]
    fn a_platform_token_needs_identity_url_and_only_it_takes_one() {
        let dir =
            std::env::temp_dir().join(format!("pam_ticket_identity_url_{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let account = dir.join("portal-account");
        fs::write(&account, "Username=\"svc\"\nPassword=\"pw\"\n").expect("write");
        fs::set_permissions(&account, fs::Permissions::from_mode(0o600)).expect("chmod");
        let portal = format!(
            "FetchCredentialsThroughPVWA=Yes\nPortalURL=https://acme.privilegecloud.cyberark.cloud/PasswordVault\nPortalAccountFile={}\n",
            account.display()
        );
        let problem = build(&format!("{portal}PortalAuthMethod=PlatformToken\n"))
            .expect_err("no IdentityURL");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:4");
        assert!(
            problem
                .problem
                .starts_with("IdentityURL is required when PortalAuthMethod is PlatformToken"),
            "{problem}"
        );
        let problem = build(&format!(
            "{portal}PortalAuthMethod=LDAP\nIdentityURL=https://abc1234.id.cyberark.cloud\n"
        ))
        .expect_err("IdentityURL with LDAP");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:5");
        assert!(
            problem
                .problem
                .starts_with("IdentityURL has no effect with PortalAuthMethod=LDAP"),
            "{problem}"
        );
        let problem = build(&format!(
            "{portal}PortalAuthMethod=PlatformToken\nIdentityURL=https://abc1234.id.cyberark.cloud/oauth2/platformtoken\n"
        ))
        .expect_err("the route itself");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:5");
        assert!(problem.problem.starts_with("IdentityURL: "), "{problem}");
        let problem = build(&format!(
            "{portal}PortalAuthMethod=PlatformToken\nIdentityURL=http://abc1234.id.cyberark.cloud\n"
        ))
        .expect_err("plain http");
        assert!(problem.problem.contains("not an https:// URL"), "{problem}");
        let config = build(&format!(
            "{portal}PortalAuthMethod=PlatformToken\nIdentityURL=https://abc1234.id.cyberark.cloud/\n"
        ))
        .expect("a platform-token configuration");
        let settings = config.portal.expect("portal mode");
        assert_eq!(settings.auth_method, PortalAuthMethod::PlatformToken);
        assert_eq!(
            settings.identity_url.map(|url| url.base),
            Some("https://abc1234.id.cyberark.cloud".to_string())
        );
        let _ = fs::remove_dir_all(&dir);
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
        let mut problems = Vec::new();
        let merged = merge(
            entries(text).expect("valid syntax"),
            Vec::new(),
            &mut problems,
            true,
        );
        assert!(problems.is_empty(), "known keys: {problems:?}");
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
                Mode::ServiceNow,
                format!(
                    "TicketingSystem=ServiceNow\nSystemURL=https://acme.service-now.com\nConnectionAccountFile={}\nWorkNotes=Yes\nNoteTemplate=\"{{user}}\"\nAskReason=Yes\n",
                    account.display()
                ),
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
