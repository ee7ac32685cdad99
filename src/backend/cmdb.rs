//! ServiceNow's CMDB as the CI check reads it: the fields of a configuration item
//! dot-walked through a reference (the ticket's `cmdb_ci`, a `task_ci` row's `ci_item`),
//! and the answer of the `task_ci` query that lists a change's affected CIs.
//!
//! With ValidateConfigurationItem=Yes the ticket's one GET also dot-walks its `cmdb_ci`
//! (name, IP address, and the FQDN and host name where the CI's class has them), so an
//! incident, requested item, catalog task or problem costs no extra request; a change
//! costs one more, a GET of `task_ci` (its affected CIs), dot-walked the same way.

use serde_json::Value;

use super::servicenow::{field_value, result_rows};
use super::{LookupError, bad_response};
use crate::http::HttpResponse;
use crate::ticket::ConfigurationItem;

/// The CI fields read through a reference to `cmdb_ci`: the base class's `name`,
/// `ip_address` and `sys_class_name`, and `fqdn` and `host_name`, which only some classes
/// have (cmdb_ci_computer and the classes that extend it). Where a CI's class lacks a
/// field, the instance leaves it out of the answer, so it can only narrow the match.
const CI_FIELDS: [&str; 5] = ["name", "ip_address", "fqdn", "host_name", "sys_class_name"];

/// The most affected CIs read for one change.
pub const MAX_AFFECTED_CIS: usize = 100;

/// `reference` and its dot-walked CI fields, for `sysparm_fields`.
pub(super) fn ci_field_list(reference: &str) -> Vec<String> {
    std::iter::once(reference.to_string())
        .chain(CI_FIELDS.iter().map(|field| format!("{reference}.{field}")))
        .collect()
}

/// The CI a reference field points at, read from its dot-walked fields; `None` when the
/// reference is empty.
pub(super) fn referenced_ci(record: &Value, reference: &str) -> Option<ConfigurationItem> {
    let sys_id = field_value(record, reference).filter(|value| !value.is_empty())?;
    let field = |name: &str| {
        field_value(record, &format!("{reference}.{name}")).filter(|value| !value.is_empty())
    };
    // The reference's display value is the CI's name, should the dot-walk not answer.
    let display = record
        .get(reference)
        .and_then(|value| value.get("display_value"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(ConfigurationItem {
        name: field("name").or(display).unwrap_or(sys_id),
        ip_address: field("ip_address"),
        fqdn: field("fqdn"),
        host_name: field("host_name"),
        class: field("sys_class_name"),
    })
}

/// The affected CIs in a `task_ci` answer to the query for the change `sys_id`. Every
/// row must name that change in its `task`: an instance that drops a condition it finds
/// invalid (`glide.invalid_query.returns_no_rows=false`, the default) would otherwise
/// answer with other tasks' CIs, and the check would pass on them. Such an answer is a
/// bad answer, never a match.
pub fn interpret_affected_cis(
    sys_id: &str,
    response: &HttpResponse,
) -> Result<Vec<ConfigurationItem>, LookupError> {
    let rows = result_rows(response)?;
    if rows
        .iter()
        .any(|row| !field_value(row, "task").is_some_and(|task| task.eq_ignore_ascii_case(sys_id)))
    {
        return Err(bad_response(
            "task_ci answered with a row of another task than the change asked for",
        ));
    }
    Ok(rows
        .iter()
        .filter_map(|row| referenced_ci(row, "ci_item"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BadAnswer;
    use serde_json::json;

    const CHANGE: &str = "c4a9e000000000000000000000030008";

    fn answer(rows: Value) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: vec![],
            body: json!({ "result": rows }).to_string().into_bytes().into(),
        }
    }

    /// A row of another task (a dropped `task=` condition) makes the whole answer bad:
    /// its CIs never count for the change.
    #[test]
    fn every_row_must_name_the_change_asked_for() {
        let row = |task: &str, name: &str| json!({"task": {"value": task, "display_value": "x"}, "ci_item": {"value": "c1000000000000000000000000000007", "display_value": name}, "ci_item.name": name});
        let items = interpret_affected_cis(CHANGE, &answer(json!([row(CHANGE, "app07")])))
            .expect("the change's rows");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].name, "app07");
        assert_eq!(
            interpret_affected_cis(CHANGE, &answer(json!([]))),
            Ok(Vec::new())
        );
        for rows in [
            json!([
                row(CHANGE, "app07"),
                row("1a5c0000000000000000000000000099", "payroll")
            ]),
            json!([{"ci_item": {"value": "c1000000000000000000000000000007"}, "ci_item.name": "app07"}]),
        ] {
            assert!(
                matches!(
                    interpret_affected_cis(CHANGE, &answer(rows.clone())),
                    Err(LookupError::BadAnswer(BadAnswer::BadResponse { .. }))
                ),
                "{rows}"
            );
        }
    }
}
