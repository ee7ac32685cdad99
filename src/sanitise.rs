//! Text that came from elsewhere (a server, PAM_USER, a module argument), made safe to show
//! to the person logging in and to write to syslog and the audit file.
//!
//! Only what is shown or logged is sanitised: decisions are made on the raw text (see
//! `ticket::Choice::is_named_by`), so nothing a server hides in a value can make it match.

use std::borrow::Cow;

/// The most characters of one server text that are shown or logged.
const LIMIT: usize = 300;

/// Server text for a message or a log: control characters become spaces, invisible and
/// direction-changing characters ([`is_invisible`]) are removed, runs of white space become
/// one space, and the length is bounded (an ellipsis marks a cut).
pub fn sanitise(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| !is_invisible(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if cleaned.chars().count() > LIMIT {
        let truncated: String = cleaned.chars().take(LIMIT).collect();
        format!("{truncated}…")
    } else {
        cleaned
    }
}

/// A message for the PAM conversation or a whole syslog line: control characters become
/// spaces and invisible characters are removed; nothing else changes.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter(|c| !is_invisible(*c))
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

/// Removes invisible characters only. For fields whose control characters are escaped
/// where they are written (the audit record: `\x0a` in syslog, `\n` in JSON), so that an
/// attempt to forge a line stays visible as such.
pub fn strip_invisible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_invisible) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().filter(|c| !is_invisible(*c)).collect())
}

/// For the fields of an audit record that name the login (PAM_USER, PAM_RHOST, the
/// service): invisible characters removed and the length bounded like [`sanitise`]'s, but
/// control characters kept, to be escaped where they are written (`\x0a` in syslog, `\n`
/// in JSON), so that an attempt to forge a line stays visible as such.
pub fn login_text(text: &str) -> Cow<'_, str> {
    let visible = strip_invisible(text);
    if visible.chars().count() <= LIMIT {
        return visible;
    }
    let mut cut: String = visible.chars().take(LIMIT).collect();
    cut.push('…');
    Cow::Owned(cut)
}

/// Whether text holds a character [`sanitise`] would hide: a control or an invisible one.
pub fn has_hidden_characters(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || is_invisible(c))
}

/// Characters that change how the text around them is displayed, or that are not displayed
/// at all, so a message can read differently from what it holds ("Trojan Source",
/// CVE-2021-42574):
///
/// * the bidirectional controls: U+061C ARABIC LETTER MARK, U+200E/U+200F LEFT-TO-RIGHT and
///   RIGHT-TO-LEFT MARK, the embeddings and overrides U+202A–U+202E, the isolates
///   U+2066–U+2069;
/// * zero-width and other invisible formatting: U+200B–U+200D (zero-width space, non-joiner,
///   joiner), U+2060–U+2065 (word joiner, invisible operators), U+206A–U+206F (deprecated
///   format controls), U+FEFF (byte-order mark), U+00AD (soft hyphen), U+034F (combining
///   grapheme joiner), U+180B–U+180F (Mongolian variation selectors and vowel separator),
///   U+FE00–U+FE0F and U+E0100–U+E01EF (variation selectors), U+FFF0–U+FFFB (unassigned
///   specials and interlinear annotation), U+E0000–U+E0FFF (tags);
/// * letters that display as nothing: U+115F/U+1160 and U+3164/U+FFA0 (Hangul fillers),
///   U+17B4/U+17B5 (Khmer inherent vowels), U+1BCA0–U+1BCA3 (shorthand format controls),
///   U+1D173–U+1D17A (musical formatting).
///
/// Together these are Unicode's Default_Ignorable_Code_Point set plus the interlinear
/// annotation characters. Line and paragraph separators (U+2028/U+2029) and the other
/// Unicode spaces are white space, which [`sanitise`] folds into one space.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bidirectional control Unicode defines (UAX #9, table 4, plus the marks).
    const BIDI: &[char] = &[
        '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
        '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    ];

    #[test]
    fn sanitise_strips_control_characters() {
        assert_eq!(
            sanitise("bad\x1b[31m red\r\nline\0end"),
            "bad [31m red line end"
        );
        assert_eq!(sanitise("c1\u{85}next\u{9b}31m"), "c1 next 31m");
        assert_eq!(sanitise(&"x".repeat(400)).chars().count(), 301);
    }

    #[test]
    fn sanitise_strips_every_bidi_control() {
        for &bidi in BIDI {
            let text = format!("Ticket {bidi}INC1{bidi} is {bidi}desolC");
            let cleaned = sanitise(&text);
            assert_eq!(
                cleaned,
                "Ticket INC1 is desolC",
                "U+{:04X}",
                u32::from(bidi)
            );
            assert!(is_invisible(bidi));
        }
    }

    #[test]
    fn sanitise_strips_invisible_characters() {
        let hidden =
            "a\u{200B}b\u{200C}c\u{200D}d\u{2060}e\u{FEFF}f\u{00AD}g\u{E0041}h\u{3164}i\u{FE0F}j";
        assert_eq!(sanitise(hidden), "abcdefghij");
        // Unicode spaces and separators are white space: folded, not removed.
        assert_eq!(
            sanitise("In\u{00A0}\u{2028}Progress\u{3000}"),
            "In Progress"
        );
        // Ordinary text outside ASCII is kept.
        assert_eq!(
            sanitise("Geschlossen – ÄÖÜ 已关闭 مغلق"),
            "Geschlossen – ÄÖÜ 已关闭 مغلق"
        );
    }

    #[test]
    fn one_line_and_strip_invisible_leave_the_rest_alone() {
        assert_eq!(one_line("plain  text"), "plain  text");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\u{202E}c\td"), "a bc d");
        assert_eq!(strip_invisible("a\nb\u{202E}c"), "a\nbc");
        assert!(matches!(strip_invisible("a\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn login_text_keeps_control_characters_and_bounds_the_length() {
        assert_eq!(login_text("a\nb\u{202E}c"), "a\nbc");
        assert!(matches!(login_text("alice"), Cow::Borrowed(_)));
        let newlines = "\n".repeat(1000);
        let long = login_text(&newlines);
        assert_eq!(long.chars().count(), 301);
        assert!(long.starts_with("\n\n") && long.ends_with('…'));
    }

    #[test]
    fn hidden_characters_are_detected() {
        assert!(has_hidden_characters("In\u{0}Progress"));
        assert!(has_hidden_characters("In Progress\t"));
        assert!(has_hidden_characters("In\u{200B}Progress"));
        assert!(has_hidden_characters("\u{202E}ssergorP nI"));
        assert!(!has_hidden_characters("In  Progress\u{00A0}"));
    }
}
