//! The ticket types a mode has and the keys of each, and ValidateConfigurationItem: the
//! parts of [`Config`](super::Config) that say which tickets are accepted and what they
//! must name, read through the same [`Settings`] checks as every other key.

use std::collections::BTreeMap;

use super::CiCheck;
use super::TicketingSystem;
use super::keys::{self, Key};
use super::settings::Settings;
use super::syntax::{ConfigError, error};
use crate::ticket::TicketKind;

/// Allowed* lists by ticket type (`None` once a problem was recorded).
pub(super) type ListsByKind = BTreeMap<TicketKind, Vec<String>>;

impl Settings {
    /// The ticket types the mode has, in [`TicketKind::ORDER`]; the keys of every other
    /// type are refused when set, so that an admin never believes a type is accepted, or
    /// a check of it in force, when the system has no such tickets. A mode that is not
    /// known (already reported) reads as ServiceNow's.
    pub(super) fn kinds_of_mode(
        &self,
        portal_mode: Option<bool>,
        system: Option<TicketingSystem>,
    ) -> Vec<TicketKind> {
        let has = |kind: TicketKind| -> bool {
            match (portal_mode, system) {
                (Some(true), _) => kind.is_portal_kind(),
                (_, Some(TicketingSystem::BmcRemedy)) => kind.systems().remedy,
                _ => kind.systems().service_now,
            }
        };
        let mode_name = match (portal_mode, system) {
            (Some(true), _) => "portal mode (FetchCredentialsThroughPVWA=Yes)",
            (_, Some(TicketingSystem::BmcRemedy)) => "BMCRemedy",
            _ => "ServiceNow",
        };
        let mut kinds = Vec::new();
        for kind in TicketKind::ORDER {
            if has(kind) {
                kinds.push(kind);
                continue;
            }
            for key in keys::kind_keys(kind).all() {
                if let Some(entry) = self.entry(key) {
                    self.report(error(
                        &entry.origin,
                        format!(
                            "{key} is for {} tickets, which {mode_name} does not have; remove it",
                            kind.key_name()
                        ),
                    ));
                }
            }
        }
        kinds
    }

    /// The identification regex of each type of the mode, in order.
    pub(super) fn identification(
        &self,
        kinds: &[TicketKind],
        system: Option<TicketingSystem>,
    ) -> Option<Vec<(TicketKind, regex::Regex)>> {
        let mut identification = Some(Vec::new());
        for kind in kinds {
            let key = keys::kind_keys(*kind).identification;
            match self.check(|| self.regex(key, system, false)).flatten() {
                Some(regex) => {
                    if let Some(list) = identification.as_mut() {
                        list.push((*kind, regex));
                    }
                }
                None => identification = None,
            }
        }
        identification
    }

    /// The Allowed* lists of the state and approval checks in force, by ticket type.
    pub(super) fn checked_choices(
        &self,
        kinds: &[TicketKind],
    ) -> (Option<ListsByKind>, Option<ListsByKind>) {
        let mut states = Some(BTreeMap::new());
        let mut approvals = Some(BTreeMap::new());
        for kind in kinds {
            let keys = keys::kind_keys(*kind);
            let checks = [(keys.state, &mut states)]
                .into_iter()
                .chain(keys.approval.map(|approval| (approval, &mut approvals)));
            for ((switch, list_key), lists) in checks {
                match self.check(|| self.checked_list(switch, list_key)) {
                    Some(Some(allowed)) => {
                        if let Some(lists) = lists.as_mut() {
                            lists.insert(*kind, allowed);
                        }
                    }
                    Some(None) => {}
                    None => *lists = None,
                }
            }
        }
        (states, approvals)
    }

    /// ValidateConfigurationItem, with TargetName and CIMatchShortName, which mean
    /// nothing without it (set alone, they would look like a check in force).
    pub(super) fn ci_check(&self) -> Result<Option<CiCheck>, ConfigError> {
        let on = self.flag(Key::ValidateConfigurationItem)?;
        let match_short_name = self.flag(Key::CIMatchShortName)?;
        let target_name = match self.entry(Key::TargetName) {
            None => None,
            Some(entry) => {
                let name = entry.value.trim();
                // A hidden character would make the name match nothing, silently.
                if name.is_empty()
                    || crate::sanitise::has_hidden_characters(name)
                    || name.len() > 253
                {
                    return Err(error(
                        &entry.origin,
                        "TargetName must be a name of at most 253 characters without control or invisible characters",
                    ));
                }
                Some((name.to_string(), entry.origin.clone()))
            }
        };
        if !on {
            let stray = target_name
                .as_ref()
                .map(|(_, origin)| (Key::TargetName, origin.clone()))
                .or_else(|| {
                    match_short_name
                        .then(|| (Key::CIMatchShortName, self.origin(Key::CIMatchShortName)))
                });
            if let Some((key, origin)) = stray {
                return Err(error(
                    &origin,
                    format!(
                        "{key} is set but ValidateConfigurationItem is not Yes, so it would never be used; set ValidateConfigurationItem=Yes or remove it"
                    ),
                ));
            }
            return Ok(None);
        }
        Ok(Some(CiCheck {
            target_name: target_name.map(|(name, _)| name),
            match_short_name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::settings::from_entries;
    use super::super::syntax::parse_entries;
    use super::*;
    use crate::config::Config;

    fn build(text: &str) -> Result<Config, ConfigError> {
        let path = Path::new("/etc/test.conf");
        from_entries(path, parse_entries(text, path)?, Vec::new())
    }

    const MINIMAL: &str = "TicketingSystem=\"ServiceNow\"\nValidateTicketNumber=\"No\"\n";

    #[test]
    fn each_mode_has_its_types_with_their_default_rules_in_order() {
        let config = build(MINIMAL).expect("valid");
        let regex = |config: &Config, kind| {
            config
                .identification_of(kind)
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        assert!(
            config
                .identification_of(TicketKind::Incident)
                .is_some_and(|r| r.is_match("INC0010001"))
        );
        assert!(
            config
                .identification_of(TicketKind::Change)
                .is_some_and(|r| r.is_match("CHG0030001"))
        );
        assert_eq!(regex(&config, TicketKind::RequestItem), "^RITM[0-9]{7,}$");
        assert_eq!(regex(&config, TicketKind::CatalogTask), "^SCTASK[0-9]{7,}$");
        assert_eq!(regex(&config, TicketKind::Problem), "^PRB[0-9]{7,}$");
        assert_eq!(
            regex(&config, TicketKind::WorkOrder),
            "",
            "not a ServiceNow type"
        );
        assert!(config.allowed_states(TicketKind::Incident).is_none());
        assert!(config.ci_check.is_none());
        let remedy = build("TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n").expect("valid");
        let incident = remedy
            .identification_of(TicketKind::Incident)
            .expect("incidents");
        assert!(incident.is_match("INC000000000701"));
        assert!(!incident.is_match("INC0010001"));
        assert_eq!(regex(&remedy, TicketKind::WorkOrder), "^WO[0-9]{13}$");
        assert_eq!(
            regex(&remedy, TicketKind::ProblemInvestigation),
            "^PBI[0-9]{12}$"
        );
        assert_eq!(
            regex(&remedy, TicketKind::RequestItem),
            "",
            "not a Remedy type"
        );
        let kinds: Vec<TicketKind> = remedy
            .identification
            .iter()
            .map(|(kind, _)| *kind)
            .collect();
        assert_eq!(
            kinds,
            [
                TicketKind::Incident,
                TicketKind::Change,
                TicketKind::WorkOrder,
                TicketKind::ProblemInvestigation
            ]
        );
    }

    #[test]
    fn keys_of_a_type_the_system_lacks_are_errors() {
        for (text, needle) in [
            (
                "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nRequestItemTicketIdentification=\"^RITM[0-9]+$\"\n",
                "RequestItemTicketIdentification is for RequestItem tickets, which BMCRemedy does not have",
            ),
            (
                "TicketingSystem=ServiceNow\nValidateTicketNumber=No\nAllowedWorkOrderTicketStates=Assigned\n",
                "AllowedWorkOrderTicketStates is for WorkOrder tickets, which ServiceNow does not have",
            ),
            (
                "TicketingSystem=ServiceNow\nValidateTicketNumber=No\nRemedyProblemInvestigationForm=X\n",
                "RemedyProblemInvestigationForm is for ProblemInvestigation tickets",
            ),
        ] {
            let problem = build(text).expect_err(needle);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{text}");
            assert!(problem.problem.starts_with(needle), "{problem}");
        }
        let problem =
            build("FetchCredentialsThroughPVWA=Yes\nProblemTicketIdentification=\"^PRB[0-9]+$\"\n")
                .expect_err("portal");
        assert!(
            problem.problem.starts_with(
                "ProblemTicketIdentification is for Problem tickets, which portal mode"
            ),
            "{problem}"
        );
        // In portal mode the new switches are refused like every gateway check.
        let problem = build("FetchCredentialsThroughPVWA=Yes\nValidateConfigurationItem=Yes\n")
            .expect_err("portal");
        assert!(
            problem
                .problem
                .starts_with("ValidateConfigurationItem has no effect in portal mode"),
            "{problem}"
        );
    }

    #[test]
    fn the_ci_keys_need_their_switch() {
        for line in ["TargetName=app07.example.com", "CIMatchShortName=Yes"] {
            let problem = build(&format!("{MINIMAL}{line}\n")).expect_err(line);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{line}");
            assert!(
                problem
                    .problem
                    .contains("ValidateConfigurationItem is not Yes"),
                "{problem}"
            );
        }
        for hidden in ["app\u{7}07", "app\u{200B}07", "app07\u{202E}"] {
            let problem = build(&format!(
                "{MINIMAL}ValidateConfigurationItem=Yes\nTargetName=\"{hidden}\"\n"
            ))
            .expect_err(hidden);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:4", "{hidden:?}");
            assert!(problem.problem.contains("invisible"), "{problem}");
        }
        let config = build(&format!(
            "{MINIMAL}ValidateConfigurationItem=Yes\nTargetName=\" app07.example.com \"\nCIMatchShortName=Yes\n"
        ))
        .expect("valid");
        assert_eq!(
            config.ci_check,
            Some(crate::config::CiCheck {
                target_name: Some("app07.example.com".to_string()),
                match_short_name: true
            })
        );
    }
}
