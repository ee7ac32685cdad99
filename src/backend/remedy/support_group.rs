//! Assignment group membership on the AR System: one qualified query of the support group
//! association form (`CTM:Support Group Association` by default) for the person and the
//! ticket's group, and the reading of its answer. Pure functions, like `wire`.

use serde_json::Value;

use super::wire::{ARERR_FORM_DOES_NOT_EXIST, ar_error, error_detail, qualification};
use crate::backend::{LookupError, bad_response, sanitise, status_error};
use crate::config::{BaseUrl, RemedySettings};
use crate::http::{HttpResponse, percent_encode};

/// `GET …/entry/{support group form}?q='Login ID' = "<identity>" AND 'Support Group ID' =
/// "<group>"`: one membership. Both values are quoted the AR System's way (a `"` doubled),
/// so no identity can widen the qualification; one with control or invisible characters
/// is refused before anything is sent.
pub fn membership_url(
    base_url: &BaseUrl,
    settings: &RemedySettings,
    identity: &str,
    group: &str,
) -> Result<String, LookupError> {
    if identity.is_empty()
        || identity.len() > 256
        || crate::sanitise::has_hidden_characters(identity)
    {
        return Err(LookupError::NotCheckable {
            message: format!(
                "Your name in the ticketing system ({}) cannot be looked up in a support group; ask your administrator to map it in UserMapFile",
                sanitise(identity)
            ),
        });
    }
    let q = format!(
        "{} AND {}",
        qualification(&settings.people.support_group_login_field, identity),
        qualification(&settings.people.support_group_id_field, group)
    );
    Ok(format!(
        "{}?q={}&fields={}&limit=2",
        base_url.join(&format!(
            "/api/arsys/v1/entry/{}",
            percent_encode(&settings.people.support_group_form)
        )),
        percent_encode(&q),
        percent_encode(&format!(
            "values({},{})",
            settings.people.support_group_login_field, settings.people.support_group_id_field
        )),
    ))
}

/// A member when an entry is exactly the association asked for; an entry of anyone
/// else's means the qualification did not mean what was sent, so nothing in the answer
/// is trusted.
pub fn interpret_membership(
    settings: &RemedySettings,
    identity: &str,
    group: &str,
    response: &HttpResponse,
) -> Result<bool, LookupError> {
    if response.status != 200 {
        if ar_error(&response.body).and_then(|message| message.number)
            == Some(ARERR_FORM_DOES_NOT_EXIST)
        {
            return Err(LookupError::Misconfigured {
                detail: format!(
                    "Remedy form {:?} does not exist ({}); check RemedySupportGroupForm",
                    settings.people.support_group_form,
                    error_detail(response)
                ),
            });
        }
        return Err(status_error(response, error_detail(response)));
    }
    let document =
        crate::json::parse(&response.body).map_err(|problem| bad_response(&problem.to_string()))?;
    let entries = document
        .get("entries")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_response("no entries list"))?;
    for entry in entries {
        let value = |field: &str| {
            entry
                .get("values")
                .and_then(|values| values.get(field))
                .and_then(Value::as_str)
                .map(|text| text.trim_matches(' '))
        };
        let same_user = value(&settings.people.support_group_login_field)
            .is_some_and(|held| held.eq_ignore_ascii_case(identity));
        let same_group = value(&settings.people.support_group_id_field)
            .is_some_and(|held| held.eq_ignore_ascii_case(group));
        if !(same_user && same_group) {
            return Err(bad_response(
                "the support group form answered with an association that was not asked for",
            ));
        }
    }
    Ok(!entries.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::remedy::wire::tests::settings;
    use serde_json::json;

    #[test]
    fn membership_qualification_quotes_the_identity_and_checks_the_answer() {
        let base = crate::url::parse_https_url("https://remedy.example.com").expect("url");
        let settings = settings();
        let url = membership_url(&base, &settings, "o\"brien", "SGP000000000011").expect("url");
        let q = url
            .split("q=")
            .nth(1)
            .and_then(|rest| rest.split('&').next())
            .expect("q");
        let q = percent_encoding::percent_decode_str(q)
            .decode_utf8()
            .expect("utf-8");
        assert_eq!(
            q,
            "'Login ID' = \"o\"\"brien\" AND 'Support Group ID' = \"SGP000000000011\""
        );
        assert!(matches!(
            membership_url(&base, &settings, "al\u{200B}ice", "SGP1"),
            Err(LookupError::NotCheckable { .. })
        ));
        let answer = |entries: serde_json::Value| HttpResponse {
            status: 200,
            headers: vec![],
            body: json!({ "entries": entries })
                .to_string()
                .into_bytes()
                .into(),
        };
        let row = |login: &str, group: &str| json!({"values": {"Login ID": login, "Support Group ID": group}});
        assert_eq!(
            interpret_membership(
                &settings,
                "bob",
                "SGP1",
                &answer(json!([row("Bob", "SGP1")]))
            ),
            Ok(true)
        );
        assert_eq!(
            interpret_membership(&settings, "bob", "SGP1", &answer(json!([]))),
            Ok(false)
        );
        assert!(matches!(
            interpret_membership(
                &settings,
                "bob",
                "SGP1",
                &answer(json!([row("carol", "SGP1")]))
            ),
            Err(LookupError::BadAnswer(_))
        ));
    }
}
