//! The ticket types a mode has, the ones TicketTypes accepts and the keys of each, and
//! ValidateConfigurationItem: the parts of [`Config`](super::Config) that say which
//! tickets are accepted and what they must name, read through the same [`Settings`]
//! checks as every other key.

use std::collections::BTreeMap;

use super::CiCheck;
use super::TicketingSystem;
use super::keys::{self, DefaultValue, Key, Mode};
use super::settings::Settings;
use super::syntax::{ConfigError, Origin, error, split_list};
use crate::ticket::TicketKind;

/// Allowed* lists by ticket type (`None` once a problem was recorded).
pub(super) type ListsByKind = BTreeMap<TicketKind, Vec<String>>;

/// Whether the mode has tickets of `kind`: portal mode only the portal's two.
fn kind_of_mode(kind: TicketKind, mode: Mode) -> bool {
    match mode {
        Mode::Portal => kind.is_portal_kind(),
        Mode::Remedy => kind.systems().remedy,
        Mode::ServiceNow => kind.systems().service_now,
    }
}

/// The ticket types of the mode, in [`TicketKind::ORDER`].
fn kinds_of(mode: Mode) -> impl Iterator<Item = TicketKind> {
    TicketKind::ORDER
        .into_iter()
        .filter(move |kind| kind_of_mode(*kind, mode))
}

/// The mode as errors name it.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Portal => "portal mode (FetchCredentialsThroughPVWA=Yes)",
        Mode::Remedy => "BMCRemedy",
        Mode::ServiceNow => "ServiceNow",
    }
}

impl Settings {
    /// The ticket types accepted, in [`TicketKind::ORDER`]: those of the mode that
    /// TicketTypes lists (in portal mode, the portal's own). The keys of every other type
    /// are refused when set, so that an admin never believes a type is accepted, or a
    /// check of it in force, when it is not: the keys of a type the system does not have
    /// are to be removed, those of a type TicketTypes leaves out need it added there. A
    /// mode that is not known (already reported) reads as ServiceNow's.
    pub(super) fn accepted_kinds(
        &self,
        portal_mode: Option<bool>,
        system: Option<TicketingSystem>,
    ) -> Vec<TicketKind> {
        let mode = match (portal_mode, system) {
            (Some(true), _) => Mode::Portal,
            (_, Some(TicketingSystem::BmcRemedy)) => Mode::Remedy,
            _ => Mode::ServiceNow,
        };
        // A TicketTypes with a problem (reported) stands for every type of the mode, so
        // that their keys are not refused again as a consequence.
        let listed = self
            .check(|| self.ticket_types(mode))
            .unwrap_or_else(|| kinds_of(mode).collect());
        // `listed` is already in TicketKind::ORDER, each type once: it is the answer; the
        // loop only refuses the keys of the types it leaves out.
        for kind in TicketKind::ORDER
            .into_iter()
            .filter(|kind| !listed.contains(kind))
        {
            let name = kind.key_name();
            for key in keys::kind_keys(kind).all() {
                let Some(entry) = self.entry(key) else {
                    continue;
                };
                if !kind_of_mode(kind, mode) {
                    self.report(error(
                        &entry.origin,
                        format!(
                            "{key} is for {name} tickets, which {} does not have; remove it",
                            mode_name(mode)
                        ),
                    ));
                    continue;
                }
                // Left out on the pam.d line, the type's keys in the file are wrong there.
                let (origin, place) = self.blamed(&entry.origin, Key::TicketTypes);
                self.report(error(
                    &origin,
                    format!(
                        "{key}{place} is for {name} tickets, which are not accepted ({}); add {name} to TicketTypes to accept them, or remove {key}",
                        self.ticket_types_shown(&listed)
                    ),
                ));
            }
        }
        // The planned window is a change's: without changes the switch would check nothing.
        if !listed.contains(&TicketKind::Change)
            && self.flag(Key::ValidateOperationTime).ok() == Some(true)
        {
            let (origin, place) =
                self.blamed(&self.origin(Key::ValidateOperationTime), Key::TicketTypes);
            self.report(error(
                &origin,
                format!(
                    "ValidateOperationTime{place} checks a change's planned window, but changes are not accepted ({}); add Change to TicketTypes or remove it",
                    self.ticket_types_shown(&listed)
                ),
            ));
        }
        listed
    }

    /// TicketTypes: the types it lists, each once and of the mode, in
    /// [`TicketKind::ORDER`] whatever the order written (the order of identification is
    /// the documented one). Not set, Incident and Change: exactly the types accepted
    /// before the others existed, so that an upgrade never widens what passes. In portal
    /// mode the portal's two types; setting it there is refused, as the portal decides.
    fn ticket_types(&self, mode: Mode) -> Result<Vec<TicketKind>, ConfigError> {
        let entry = self.entry(Key::TicketTypes);
        if mode == Mode::Portal {
            if let Some(entry) = entry {
                let (origin, place) = self.blamed(&entry.origin, Key::FetchCredentialsThroughPVWA);
                return Err(error(
                    &origin,
                    format!(
                        "TicketTypes{place} has no effect in {}: the portal validates the ticket and knows incidents and changes only; remove it",
                        mode_name(mode)
                    ),
                ));
            }
            return Ok(kinds_of(mode).collect());
        }
        let (names, origin) = match entry {
            Some(entry) => (split_list(&entry.value), entry.origin.clone()),
            None => {
                let DefaultValue::List(default) = Key::TicketTypes.spec().default else {
                    return Err(self.table_error(Key::TicketTypes, "list"));
                };
                (
                    default.iter().map(ToString::to_string).collect(),
                    self.whole(),
                )
            }
        };
        let types_of_mode = || {
            kinds_of(mode)
                .map(TicketKind::key_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if names.is_empty() {
            return Err(error(
                &origin,
                format!(
                    "TicketTypes names no ticket type, so every ticket would be refused; list the types to accept ({} has {})",
                    mode_name(mode),
                    types_of_mode()
                ),
            ));
        }
        let mut listed = Vec::new();
        for name in &names {
            let Some(kind) = TicketKind::from_key_name(name) else {
                let hint = crate::spelling::closest(
                    name,
                    TicketKind::ORDER.into_iter().map(TicketKind::key_name),
                )
                .map(|known| format!(" (did you mean {known}?)"))
                .unwrap_or_default();
                return Err(error(
                    &origin,
                    format!(
                        "TicketTypes: unknown ticket type {name:?}{hint}; {} has {}",
                        mode_name(mode),
                        types_of_mode()
                    ),
                ));
            };
            if !kind_of_mode(kind, mode) {
                return Err(error(
                    &origin,
                    format!(
                        "TicketTypes: {} has no {name} tickets; its types are {}",
                        mode_name(mode),
                        types_of_mode()
                    ),
                ));
            }
            if listed.contains(&kind) {
                return Err(error(&origin, format!("TicketTypes names {name} twice")));
            }
            listed.push(kind);
        }
        Ok(TicketKind::ORDER
            .into_iter()
            .filter(|kind| listed.contains(kind))
            .collect())
    }

    /// What TicketTypes accepts, for the errors that ask for a type to be added there.
    fn ticket_types_shown(&self, listed: &[TicketKind]) -> String {
        let names = listed
            .iter()
            .map(|kind| kind.key_name())
            .collect::<Vec<_>>()
            .join(", ");
        match self.entry(Key::TicketTypes) {
            Some(_) => format!("TicketTypes is {names}"),
            None => format!("TicketTypes is not set: {names}"),
        }
    }

    /// Where a key set at `origin` is reported when `cause` makes it wrong: at the pam.d
    /// argument when `cause` was given there (the file alone may be fine), and then the
    /// key's own place is said too (` (set at …)`, else empty).
    fn blamed(&self, origin: &Origin, cause: Key) -> (Origin, String) {
        let blamed = self.blame(origin.clone(), &[cause]);
        let place = if &blamed == origin {
            String::new()
        } else {
            format!(" (set at {origin})")
        };
        (blamed, place)
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

    fn accepted(config: &Config) -> Vec<TicketKind> {
        config.ticket_types()
    }

    /// An upgraded configuration (no TicketTypes) accepts exactly what it accepted before
    /// the other types existed: incidents and changes, in both systems.
    #[test]
    fn without_ticket_types_only_incidents_and_changes_are_accepted() {
        use crate::ticket::{IdRefusal, TicketId};
        let config = build(MINIMAL).expect("valid");
        assert_eq!(
            accepted(&config),
            [TicketKind::Incident, TicketKind::Change]
        );
        assert!(config.identification_of(TicketKind::RequestItem).is_none());
        for id in ["RITM0010001", "SCTASK0010001", "PRB0010001"] {
            assert_eq!(
                TicketId::parse(id.as_bytes(), &config),
                Err(IdRefusal::UnknownKind),
                "{id}"
            );
        }
        assert_eq!(
            TicketId::parse(b"CHG0030001", &config).map(|id| id.kind),
            Ok(TicketKind::Change)
        );
        let remedy = build("TicketingSystem=BMCRemedy\nValidateTicketNumber=No\n").expect("valid");
        assert_eq!(
            accepted(&remedy),
            [TicketKind::Incident, TicketKind::Change]
        );
        for id in ["WO0000000000001", "PBI000000000001"] {
            assert_eq!(
                TicketId::parse(id.as_bytes(), &remedy),
                Err(IdRefusal::UnknownKind),
                "{id}"
            );
        }
    }

    #[test]
    fn each_mode_has_its_types_with_their_default_rules_in_order() {
        let config = build(&format!(
            "{MINIMAL}TicketTypes=\"Incident, Change, RequestItem, CatalogTask, Problem\"\n"
        ))
        .expect("valid");
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
        let remedy = build(
            "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nTicketTypes=\"Incident, Change, WorkOrder, ProblemInvestigation\"\n",
        )
        .expect("valid");
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
        assert_eq!(
            accepted(&remedy),
            [
                TicketKind::Incident,
                TicketKind::Change,
                TicketKind::WorkOrder,
                TicketKind::ProblemInvestigation
            ]
        );
    }

    /// The order written does not matter: identification follows TicketKind::ORDER. A
    /// type may be left out, incidents and changes too.
    #[test]
    fn ticket_types_choose_the_types_in_the_documented_order() {
        let config = build(&format!("{MINIMAL}TicketTypes=\"Problem,Incident\"\n")).expect("valid");
        assert_eq!(
            accepted(&config),
            [TicketKind::Incident, TicketKind::Problem]
        );
        let config = build(&format!("{MINIMAL}TicketTypes=Change\n")).expect("valid");
        assert_eq!(accepted(&config), [TicketKind::Change]);
        assert!(
            crate::ticket::TicketId::parse(b"INC0010001", &config).is_err(),
            "incidents are not accepted"
        );
        // A type's regex still decides, and is the type's own key.
        let config = build(&format!(
            "{MINIMAL}TicketTypes=\"Incident, Problem\"\nProblemTicketIdentification=\"^PRB-[0-9]+$\"\n"
        ))
        .expect("valid");
        assert_eq!(
            crate::ticket::TicketId::parse(b"PRB-42", &config).map(|id| id.kind),
            Ok(TicketKind::Problem)
        );
    }

    /// Each way TicketTypes can be wrong is an error at its line.
    #[test]
    fn a_wrong_ticket_types_is_an_error_at_its_line() {
        for (system, value, needle) in [
            (
                "ServiceNow",
                "\"Incident, Requestitem\"",
                "TicketTypes: unknown ticket type \"Requestitem\" (did you mean RequestItem?); ServiceNow has Incident, Change, RequestItem, CatalogTask, Problem",
            ),
            (
                "ServiceNow",
                "\"Incident, RITM\"",
                "TicketTypes: unknown ticket type \"RITM\"; ServiceNow has",
            ),
            (
                "ServiceNow",
                "\"Incident, Change, Incident\"",
                "TicketTypes names Incident twice",
            ),
            ("ServiceNow", "\"\"", "TicketTypes names no ticket type"),
            ("ServiceNow", "\" , \"", "TicketTypes names no ticket type"),
            (
                "ServiceNow",
                "\"Incident, WorkOrder\"",
                "TicketTypes: ServiceNow has no WorkOrder tickets; its types are Incident, Change, RequestItem, CatalogTask, Problem",
            ),
            (
                "BMCRemedy",
                "\"Incident, RequestItem\"",
                "TicketTypes: BMCRemedy has no RequestItem tickets; its types are Incident, Change, WorkOrder, ProblemInvestigation",
            ),
        ] {
            let text =
                format!("TicketingSystem={system}\nValidateTicketNumber=No\nTicketTypes={value}\n");
            let problem = build(&text).expect_err(needle);
            assert_eq!(problem.origin.to_string(), "/etc/test.conf:3", "{text}");
            assert!(problem.problem.starts_with(needle), "{problem}");
        }
        // In portal mode the portal decides: the key is refused, like the types' keys.
        let problem =
            build("FetchCredentialsThroughPVWA=Yes\nTicketTypes=Incident\n").expect_err("portal");
        assert_eq!(problem.origin.to_string(), "/etc/test.conf:2");
        assert!(
            problem
                .problem
                .starts_with("TicketTypes has no effect in portal mode"),
            "{problem}"
        );
    }

    /// Setting a key of a type the mode has but TicketTypes leaves out would look like the
    /// type accepted, or checked: an error at the key's line that says to add the type.
    #[test]
    fn keys_of_a_type_not_in_ticket_types_are_errors() {
        for (text, needle) in [
            (
                format!("{MINIMAL}RequestItemTicketIdentification=\"^RITM[0-9]+$\"\n"),
                "RequestItemTicketIdentification is for RequestItem tickets, which are not accepted (TicketTypes is not set: Incident, Change); add RequestItem to TicketTypes to accept them, or remove RequestItemTicketIdentification",
            ),
            (
                format!("{MINIMAL}ValidateRequestItemTicketState=Yes\n"),
                "ValidateRequestItemTicketState is for RequestItem tickets, which are not accepted",
            ),
            (
                format!("{MINIMAL}AllowedRequestItemTicketStates=Open\n"),
                "AllowedRequestItemTicketStates is for RequestItem tickets, which are not accepted",
            ),
            (
                format!("{MINIMAL}ValidateRequestItemApprovalStatus=No\n"),
                "ValidateRequestItemApprovalStatus is for RequestItem tickets",
            ),
            (
                format!("{MINIMAL}AllowedRequestItemApprovalStatuses=Approved\n"),
                "AllowedRequestItemApprovalStatuses is for RequestItem tickets",
            ),
            (
                format!("{MINIMAL}ValidateCatalogTaskTicketState=Yes\n"),
                "ValidateCatalogTaskTicketState is for CatalogTask tickets, which are not accepted",
            ),
            (
                format!("{MINIMAL}AllowedProblemTicketStates=Assess\n"),
                "AllowedProblemTicketStates is for Problem tickets, which are not accepted",
            ),
            (
                "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nRemedyWorkOrderForm=\"WOI:Work Order\"\n".to_string(),
                "RemedyWorkOrderForm is for WorkOrder tickets, which are not accepted (TicketTypes is not set: Incident, Change); add WorkOrder to TicketTypes",
            ),
            (
                "TicketingSystem=BMCRemedy\nValidateTicketNumber=No\nValidateProblemInvestigationTicketState=Yes\n".to_string(),
                "ValidateProblemInvestigationTicketState is for ProblemInvestigation tickets, which are not accepted",
            ),
            (
                format!("{MINIMAL}TicketTypes=Change\nValidateIncidentTicketState=Yes\n"),
                "ValidateIncidentTicketState is for Incident tickets, which are not accepted (TicketTypes is Change); add Incident to TicketTypes",
            ),
            (
                format!("{MINIMAL}TicketTypes=Incident\nAllowedApprovalStatuses=Approved\n"),
                "AllowedApprovalStatuses is for Change tickets, which are not accepted (TicketTypes is Incident)",
            ),
            (
                format!("{MINIMAL}TicketTypes=Incident\nValidateOperationTime=Yes\n"),
                "ValidateOperationTime checks a change's planned window, but changes are not accepted (TicketTypes is Incident); add Change to TicketTypes",
            ),
        ] {
            let problem = build(&text).expect_err(needle);
            let last_line = text.lines().count();
            assert_eq!(
                problem.origin.to_string(),
                format!("/etc/test.conf:{last_line}"),
                "{text}"
            );
            assert!(problem.problem.starts_with(needle), "{problem}");
        }
        // Listed, the same keys are fine.
        build(&format!(
            "{MINIMAL}TicketTypes=\"Incident, Change, RequestItem\"\nValidateRequestItemTicketState=Yes\nAllowedRequestItemTicketStates=Open\n"
        ))
        .expect("RequestItem is listed");
    }

    /// Left out on the pam.d line, a type whose keys the file sets makes the argument
    /// wrong: the error names it, and the key's own line.
    #[test]
    fn a_type_left_out_on_the_pam_d_line_blames_the_argument() {
        let parsed =
            crate::config::parse_module_arguments(&["TicketTypes=Incident".to_string()], "sshd")
                .expect("valid");
        let path = Path::new("/etc/test.conf");
        let problem = from_entries(
            path,
            parse_entries(
                &format!("{MINIMAL}ValidateChangeTicketState=Yes\nAllowedChangeTicketStates=New\n"),
                path,
            )
            .expect("syntax"),
            parsed.overrides,
        )
        .expect_err("changes left out");
        assert_eq!(problem.origin.to_string(), "pam.d/sshd argument 1");
        assert!(
            problem.problem.starts_with(
                "ValidateChangeTicketState (set at /etc/test.conf:3) is for Change tickets, which are not accepted (TicketTypes is Incident)"
            ),
            "{problem}"
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
