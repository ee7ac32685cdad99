//! ServiceNow's CMDB as the CI check reads it: the fields of a configuration item
//! dot-walked through a reference (the ticket's `cmdb_ci`, a `task_ci` row's `ci_item`),
//! and the answer of the `task_ci` query that lists a change's affected CIs.
//!
//! With ValidateConfigurationItem=Yes the ticket's one GET also dot-walks its `cmdb_ci`
//! (name, IP address, and the FQDN and host name where the CI's class has them), so an
//! incident, requested item, catalog task or problem costs no extra request; a change
//! costs one more, a GET of `task_ci` (its affected CIs), dot-walked the same way.

use serde_json::Value;

use super::servicenow::{error_detail, field_value};
use super::{LookupError, bad_response, status_error};
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

/// The affected CIs in a `task_ci` answer.
pub fn interpret_affected_cis(
    response: &HttpResponse,
) -> Result<Vec<ConfigurationItem>, LookupError> {
    if response.status != 200 {
        return Err(status_error(response, error_detail(&response.body)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let rows = document
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no result list"))?;
    Ok(rows
        .iter()
        .filter_map(|row| referenced_ci(row, "ci_item"))
        .collect())
}
