//! "Did you mean …?": the nearest of a set of known words to a mistyped one, for unknown
//! configuration keys, unknown module arguments and Allowed* entries that name no state the
//! ticketing system knows. One rule for all of them, so that the hints agree.

/// The known word nearest to `typed`, if one is near enough to be a likely typo: the same
/// word in another case, or within two edits (one for words of four letters or fewer, so
/// that short words do not suggest unrelated ones). Case, white space, `-` and `_` count
/// as one kind of separator, so `In-Progress` finds `In Progress`. Ties go to the first
/// candidate.
pub fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_folded = fold(typed);
    let limit = if typed_folded.chars().count() <= 4 {
        1
    } else {
        2
    };
    candidates
        .into_iter()
        .map(|candidate| (candidate, edit_distance(&fold(candidate), &typed_folded)))
        .filter(|(_, distance)| *distance <= limit)
        .min_by_key(|(_, distance)| *distance)
        .map(|(candidate, _)| candidate)
}

/// Lower case, with runs of white space, `-` and `_` made one space.
fn fold(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Levenshtein distance.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_case_and_separators_find_the_known_word() {
        let keys = ["ValidateRequestingUser", "MaxAttempts", "Timeout"];
        assert_eq!(
            closest("ValidateRequestngUser", keys),
            Some("ValidateRequestingUser")
        );
        assert_eq!(closest("maxattempts", keys), Some("MaxAttempts"));
        assert_eq!(closest("Timout", keys), Some("Timeout"));
        assert_eq!(closest("Frobnicate", keys), None);
        let states = ["New", "In Progress", "On Hold", "Closed"];
        assert_eq!(closest("In-Progress", states), Some("In Progress"));
        assert_eq!(closest("in_progres", states), Some("In Progress"));
        assert_eq!(closest("OnHold", states), Some("On Hold"));
        // Short words: one edit at most, so "Done" does not suggest "New".
        assert_eq!(closest("Done", states), None);
        assert_eq!(closest("degub", ["debug", "config"]), Some("debug"));
        assert_eq!(closest("nodebug", ["debug", "config"]), Some("debug"));
    }
}
