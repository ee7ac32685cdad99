//! The validations: pure functions over the configuration, a ticket, the person and the
//! current time. No I/O here, so every rule is unit-tested directly.

use chrono::{DateTime, Utc};

use crate::config::{Config, UserRole};
use crate::host::TargetNames;
use crate::sanitise::{has_hidden_characters, sanitise};
use crate::ticket::{Choice, Ticket};

/// The result of one enabled check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// Short name for the admin tool and the audit (`state`, `approval`, …).
    pub check: &'static str,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Passed; the text says what was seen.
    Pass(String),
    /// Failed; the text is the message shown to the user.
    Fail(String),
}

/// The name of the person check when AllowedUserRoles is more than the requester.
pub const ROLES_CHECK: &str = "roles";
/// The name of the configuration item check.
pub const CI_CHECK: &str = "ci";

/// Runs every enabled check, in a fixed order, and returns them all. `identity` is who
/// the person is in the ticketing system ([`crate::login::Login::identity`]). `target` is
/// this gateway's names, needed when ValidateConfigurationItem is Yes (a ticket is then
/// refused without them).
pub fn evaluate(
    config: &Config,
    ticket: &Ticket,
    identity: &str,
    now: DateTime<Utc>,
    target: Option<&TargetNames>,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    if let Some(allowed) = config.allowed_states(ticket.kind) {
        results.push(CheckResult {
            check: "state",
            verdict: check_state(ticket, allowed),
        });
    }
    if let Some(allowed) = config.allowed_approvals(ticket.kind) {
        results.push(CheckResult {
            check: "approval",
            verdict: check_approval(ticket, allowed),
        });
    }
    if ticket.kind.has_window() && config.validate_operation_time {
        results.push(CheckResult {
            check: "window",
            verdict: check_window(ticket, now),
        });
    }
    if config.validate_requesting_user {
        let roles = &config.people.roles;
        results.push(CheckResult {
            check: if roles.as_slice() == [UserRole::Requester] {
                "requester"
            } else {
                ROLES_CHECK
            },
            verdict: check_roles(ticket, roles, identity),
        });
    }
    if let Some(check) = &config.ci_check {
        let nobody = TargetNames { names: Vec::new() };
        results.push(CheckResult {
            check: CI_CHECK,
            verdict: crate::host::check_configuration_item(
                ticket,
                target.unwrap_or(&nobody),
                check.match_short_name,
            ),
        });
    }
    results
}

/// The assignment group whose membership must be asked about before the person checks
/// can be decided: only when assignment_group is an allowed role, the ticket has a group,
/// membership was not asked yet, and no other allowed relation already lets the person
/// in (any one is enough, so the extra request is saved whenever it can be).
pub fn group_to_ask_about<'t>(
    config: &Config,
    ticket: &'t Ticket,
    identity: &str,
) -> Option<&'t str> {
    let roles = &config.people.roles;
    if !config.validate_requesting_user
        || !roles.contains(&UserRole::AssignmentGroup)
        || ticket.group_member.is_some()
    {
        return None;
    }
    let other_relation_holds = roles
        .iter()
        .any(|role| *role != UserRole::AssignmentGroup && relation_holds(ticket, *role, identity));
    if other_relation_holds {
        return None;
    }
    ticket
        .assignment_group
        .as_deref()
        .filter(|group| !group.is_empty() && !has_hidden_characters(group))
}

/// The first failed check's message, if any.
pub fn first_failure(results: &[CheckResult]) -> Option<(&'static str, &str)> {
    results.iter().find_map(|result| match &result.verdict {
        Verdict::Fail(message) => Some((result.check, message.as_str())),
        Verdict::Pass(_) => None,
    })
}

/// A choice's label for a message: sanitised here, where it is shown, never before it is
/// matched. A label that holds control or invisible characters says so, since it does
/// not match the entry it may read as.
fn describe(choice: Option<&Choice>) -> String {
    match choice {
        None => "(none)".to_string(),
        Some(choice) if has_hidden_characters(&choice.label) => {
            format!(
                "{} (with control or invisible characters)",
                sanitise(&choice.label)
            )
        }
        Some(choice) => sanitise(&choice.label),
    }
}

fn check_state(ticket: &Ticket, allowed: &[String]) -> Verdict {
    let state = ticket.state.as_ref();
    if state.is_some_and(|state| allowed.iter().any(|entry| state.is_named_by(entry))) {
        return Verdict::Pass(format!("state {}", describe(state)));
    }
    Verdict::Fail(format!(
        "{} {} is {}; allowed states: {}",
        ticket.kind.noun(),
        ticket.id,
        describe(state),
        allowed.join(", ")
    ))
}

fn check_approval(ticket: &Ticket, allowed: &[String]) -> Verdict {
    let approval = ticket.approval.as_ref();
    if approval.is_some_and(|approval| allowed.iter().any(|entry| approval.is_named_by(entry))) {
        return Verdict::Pass(format!("approval {}", describe(approval)));
    }
    Verdict::Fail(format!(
        "{} {} is not approved (approval: {}); allowed: {}",
        ticket.kind.noun(),
        ticket.id,
        describe(approval),
        allowed.join(", ")
    ))
}

fn check_window(ticket: &Ticket, now: DateTime<Utc>) -> Verdict {
    let (Some(start), Some(end)) = (ticket.planned_start, ticket.planned_end) else {
        let missing = match (ticket.planned_start, ticket.planned_end) {
            (None, None) => "planned start and end",
            (None, Some(_)) => "planned start",
            _ => "planned end",
        };
        return Verdict::Fail(format!(
            "Change {} has no {missing} date, so it has no planned window to work in",
            ticket.id
        ));
    };
    let window = format_window(start, end);
    if start <= now && now <= end {
        Verdict::Pass(format!("inside its planned window ({window})"))
    } else {
        Verdict::Fail(format!(
            "Change {} is outside its planned window ({window})",
            ticket.id
        ))
    }
}

/// `2026-11-30 10:00 to 12:00 UTC`, or with both dates when they differ.
pub fn format_window(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let end_text = if start.date_naive() == end.date_naive() {
        end.format("%H:%M").to_string()
    } else {
        end.format("%Y-%m-%d %H:%M").to_string()
    };
    format!("{} to {end_text} UTC", start.format("%Y-%m-%d %H:%M"))
}

/// People are compared as the server sent them (ASCII case folded); a value that holds a
/// control or invisible character matches nobody.
fn same_person(held: &str, identity: &str) -> bool {
    !held.is_empty() && !has_hidden_characters(held) && held.eq_ignore_ascii_case(identity)
}

/// Whether the person has this relation to the ticket, from what the ticket holds (the
/// group membership from what the flow asked).
fn relation_holds(ticket: &Ticket, role: UserRole, identity: &str) -> bool {
    match role {
        UserRole::Requester => ticket
            .requesters
            .iter()
            .any(|requester| same_person(requester, identity)),
        UserRole::Assignee => ticket
            .assignee
            .as_deref()
            .is_some_and(|assignee| same_person(assignee, identity)),
        UserRole::AssignmentGroup => ticket.group_member == Some(true),
    }
}

/// Any one allowed relation lets the person in. A refusal names the relations that were
/// required and how each failed, in terms of the person only: it never names the
/// ticket's requester, assignee or group.
fn check_roles(ticket: &Ticket, roles: &[UserRole], identity: &str) -> Verdict {
    let who = sanitise(identity);
    if let Some(role) = roles
        .iter()
        .find(|role| relation_holds(ticket, **role, identity))
    {
        return Verdict::Pass(match role {
            UserRole::Requester => format!("requested by {who}"),
            UserRole::Assignee => format!("assigned to {who}"),
            UserRole::AssignmentGroup => format!("{who} is in its assignment group"),
        });
    }
    let ticket_name = format!("{} {}", ticket.kind.noun(), ticket.id);
    let failure = |role: &UserRole| match role {
        UserRole::Requester => format!("was not requested by {who}"),
        UserRole::Assignee => format!("is not assigned to {who}"),
        UserRole::AssignmentGroup if ticket.assignment_group.is_none() => {
            "has no assignment group".to_string()
        }
        UserRole::AssignmentGroup => {
            format!("has an assignment group that {who} is not a member of")
        }
    };
    match roles {
        [only] => Verdict::Fail(format!("{ticket_name} {}", failure(only))),
        _ => {
            let names: Vec<&str> = roles.iter().map(|role| role.name()).collect();
            let failures: Vec<String> = roles.iter().map(failure).collect();
            Verdict::Fail(format!(
                "{ticket_name} {}; any one of {} is required",
                failures.join(", "),
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_entries;
    use crate::ticket::TicketKind;
    use chrono::TimeZone;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let text = format!("TicketingSystem=ServiceNow\nValidateTicketNumber=No\n{extra}");
        let entries = crate::config::parse_entries(&text, Path::new("/t.conf")).expect("parse");
        from_entries(Path::new("/t.conf"), entries, Vec::new()).expect("valid")
    }

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, hour, minute, 0)
            .single()
            .expect("valid time")
    }

    fn change() -> Ticket {
        Ticket {
            id: "CHG0030001".to_string(),
            kind: TicketKind::Change,
            state: Some(Choice::new("Implement", "-1")),
            approval: Some(Choice::new("Approved", "approved")),
            planned_start: Some(at(10, 0)),
            planned_end: Some(at(12, 0)),
            requesters: vec!["Alice".to_string()],
            assignee: Some("dave".to_string()),
            assignment_group: Some("0a5f0000000000000000000000000001".to_string()),
            group_member: None,
            unanswered: Vec::new(),
            configuration_items: None,
            record_id: None,
        }
    }

    fn incident(state: Choice) -> Ticket {
        Ticket {
            id: "INC0010002".to_string(),
            kind: TicketKind::Incident,
            state: Some(state),
            approval: None,
            planned_start: None,
            planned_end: None,
            requesters: vec!["alice".to_string(), "carol".to_string()],
            assignee: None,
            assignment_group: None,
            group_member: None,
            unanswered: Vec::new(),
            configuration_items: None,
            record_id: None,
        }
    }

    #[test]
    fn nothing_enabled_means_no_checks() {
        assert!(evaluate(&config(""), &change(), "alice", at(11, 0), None).is_empty());
    }

    #[test]
    fn state_check_names_state_and_allowed_list() {
        let config = config(
            "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New, In Progress\"\n",
        );
        let results = evaluate(
            &config,
            &incident(Choice::new("Closed", "7")),
            "alice",
            at(11, 0),
            None,
        );
        assert_eq!(
            first_failure(&results),
            Some((
                "state",
                "Ticket INC0010002 is Closed; allowed states: New, In Progress"
            ))
        );
        let results = evaluate(
            &config,
            &incident(Choice::new("In  progress", "2")),
            "alice",
            at(11, 0),
            None,
        );
        assert_eq!(first_failure(&results), None);
        let by_value = config_with_values();
        assert_eq!(
            first_failure(&evaluate(
                &by_value,
                &incident(Choice::new("In Progress", "2")),
                "alice",
                at(11, 0),
                None,
            )),
            None
        );
    }

    fn config_with_values() -> Config {
        config("ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"1,2\"\n")
    }

    #[test]
    fn cancelled_spellings_are_one_state() {
        let config =
            config("ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=Cancelled\n");
        let results = evaluate(
            &config,
            &incident(Choice::new("Canceled", "8")),
            "alice",
            at(11, 0),
            None,
        );
        assert_eq!(first_failure(&results), None);
    }

    #[test]
    fn states_are_matched_raw_and_shown_sanitised() {
        let config = config(
            "ValidateIncidentTicketState=Yes\nAllowedIncidentTicketStates=\"New, In Progress\"\n",
        );
        for hidden in [
            "In\u{0}Progress",
            "In\tProgress",
            "In Progress\r\n",
            "In\u{202E}Progress",
            "In\u{200B} Progress",
        ] {
            let results = evaluate(
                &config,
                &incident(Choice::new(hidden, hidden)),
                "alice",
                at(11, 0),
                None,
            );
            let failure = first_failure(&results).map(|(check, text)| (check, text.to_string()));
            let expected = format!(
                "Ticket INC0010002 is {} (with control or invisible characters); allowed states: New, In Progress",
                sanitise(hidden)
            );
            assert_eq!(failure, Some(("state", expected)), "{hidden:?}");
        }
        // Today's folding still holds: case, runs of white space, spellings.
        for folded in ["in progress", "IN   PROGRESS", " In Progress "] {
            let results = evaluate(
                &config,
                &incident(Choice::new(folded, "2")),
                "alice",
                at(11, 0),
                None,
            );
            assert_eq!(first_failure(&results), None, "{folded:?}");
        }
        // A shown label never carries what the server hid in it.
        let results = evaluate(
            &config,
            &incident(Choice::new("Clo\u{1b}[8msed\u{2067}", "7")),
            "alice",
            at(11, 0),
            None,
        );
        assert_eq!(
            first_failure(&results),
            Some((
                "state",
                "Ticket INC0010002 is Clo [8msed (with control or invisible characters); allowed states: New, In Progress"
            ))
        );
    }

    #[test]
    fn a_requester_with_hidden_characters_is_nobody() {
        let config = config("ValidateRequestingUser=Yes\n");
        let mut ticket = change();
        for hidden in ["alice\u{0}", "alice\n", "al\u{200B}ice", "\u{202E}alice"] {
            ticket.requesters = vec![hidden.to_string()];
            assert_eq!(
                first_failure(&evaluate(&config, &ticket, "alice", at(11, 0), None)),
                Some(("requester", "Change CHG0030001 was not requested by alice")),
                "{hidden:?}"
            );
        }
    }

    #[test]
    fn approval_check() {
        let config = config("ValidateApprovalStatus=Yes\nAllowedApprovalStatuses=Approved\n");
        let mut ticket = change();
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "alice", at(11, 0), None)),
            None
        );
        ticket.approval = Some(Choice::new("Requested", "requested"));
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "alice", at(11, 0), None)),
            Some((
                "approval",
                "Change CHG0030001 is not approved (approval: Requested); allowed: Approved"
            ))
        );
        ticket.approval = None;
        assert!(first_failure(&evaluate(&config, &ticket, "alice", at(11, 0), None)).is_some());
        // Incidents have no approval: the check does not apply to them.
        assert!(
            evaluate(
                &config,
                &incident(Choice::new("New", "1")),
                "alice",
                at(11, 0),
                None,
            )
            .is_empty()
        );
    }

    #[test]
    fn not_requested_matches_not_yet_requested() {
        let config =
            config("ValidateApprovalStatus=Yes\nAllowedApprovalStatuses=\"Not Yet Requested\"\n");
        let mut ticket = change();
        ticket.approval = Some(Choice::new("not requested", "not requested"));
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "alice", at(11, 0), None)),
            None
        );
    }

    #[test]
    fn window_check_inclusive_bounds_and_missing_dates() {
        let config = config("ValidateOperationTime=Yes\n");
        let ticket = change();
        for (hour, minute, inside) in [(9, 59, false), (10, 0, true), (12, 0, true), (12, 1, false)]
        {
            let failed =
                first_failure(&evaluate(&config, &ticket, "alice", at(hour, minute), None))
                    .is_some();
            assert_eq!(failed, !inside, "{hour}:{minute}");
        }
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "alice", at(13, 0), None)),
            Some((
                "window",
                "Change CHG0030001 is outside its planned window (2026-11-30 10:00 to 12:00 UTC)"
            ))
        );
        let mut missing = change();
        missing.planned_start = None;
        let failure = first_failure(&evaluate(&config, &missing, "alice", at(11, 0), None))
            .map(|(_, text)| text.to_string());
        assert_eq!(
            failure.as_deref(),
            Some(
                "Change CHG0030001 has no planned start date, so it has no planned window to work in"
            )
        );
    }

    #[test]
    fn window_across_days_shows_both_dates() {
        let start = at(22, 0);
        let end = start + chrono::Duration::hours(4);
        assert_eq!(
            format_window(start, end),
            "2026-11-30 22:00 to 2026-12-01 02:00 UTC"
        );
    }

    #[test]
    fn requester_check_is_case_insensitive_and_any_of() {
        let config = config("ValidateRequestingUser=Yes\n");
        assert_eq!(
            first_failure(&evaluate(&config, &change(), "ALICE", at(11, 0), None)),
            None
        );
        assert_eq!(
            first_failure(&evaluate(
                &config,
                &incident(Choice::new("New", "1")),
                "carol",
                at(11, 0),
                None,
            )),
            None
        );
        assert_eq!(
            first_failure(&evaluate(&config, &change(), "bob", at(11, 0), None)),
            Some(("requester", "Change CHG0030001 was not requested by bob"))
        );
        let mut nobody = change();
        nobody.requesters = vec![String::new()];
        assert!(first_failure(&evaluate(&config, &nobody, "", at(11, 0), None)).is_some());
    }

    #[test]
    fn any_allowed_relation_lets_the_person_in_and_a_refusal_names_only_them() {
        let config =
            config("ValidateRequestingUser=Yes\nAllowedUserRoles=\"assignment_group, assignee\"\n");
        let mut ticket = change();
        // dave is the assignee: no group membership is needed.
        assert_eq!(group_to_ask_about(&config, &ticket, "dave"), None);
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "DAVE", at(11, 0), None)),
            None
        );
        // bob is not: the group must be asked about, and until it is he is not in it.
        assert_eq!(
            group_to_ask_about(&config, &ticket, "bob"),
            Some("0a5f0000000000000000000000000001")
        );
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "bob", at(11, 0), None)),
            Some((
                "roles",
                "Change CHG0030001 is not assigned to bob, has an assignment group that bob is not a member of; any one of assignee, assignment_group is required"
            ))
        );
        ticket.group_member = Some(true);
        assert_eq!(group_to_ask_about(&config, &ticket, "bob"), None);
        assert_eq!(
            first_failure(&evaluate(&config, &ticket, "bob", at(11, 0), None)),
            None
        );
        ticket.group_member = None;
        ticket.assignment_group = None;
        assert_eq!(group_to_ask_about(&config, &ticket, "bob"), None);
        let failure = first_failure(&evaluate(&config, &ticket, "bob", at(11, 0), None))
            .map(|(_, text)| text.to_string())
            .unwrap_or_default();
        assert!(failure.contains("has no assignment group"), "{failure}");
        assert!(
            !failure.contains("dave") && !failure.contains("Alice"),
            "{failure}"
        );
        // An assignee with hidden characters is nobody.
        ticket.assignee = Some("dave\u{200B}".to_string());
        assert!(first_failure(&evaluate(&config, &ticket, "dave", at(11, 0), None)).is_some());
    }

    #[test]
    fn without_the_group_role_membership_is_never_asked() {
        let requester_only = config("ValidateRequestingUser=Yes\n");
        assert_eq!(group_to_ask_about(&requester_only, &change(), "bob"), None);
        let off = config("");
        assert_eq!(group_to_ask_about(&off, &change(), "bob"), None);
    }
}
