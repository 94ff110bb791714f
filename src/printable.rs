//! Text from outside made safe to show: no byte a terminal or a browser would act on.
//!
//! Meta's answers are JSON, and JSON strings may hold any control character: a NUL, an
//! escape (0x1b) that starts a terminal sequence, a backspace (0x08) that hides what came
//! before it. Everything the exporter shows a person from an answer, an error message in a log
//! line or on the status page, a note in backfill's summary, goes through [`printable`] first:
//! control characters become `\u{..}` escapes, visible and inert. Label values keep
//! Prometheus' own escaping instead (`\\`, `\"`, `\n`), since a label's value is data.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (tabs and newlines included, which would break a log
/// line or a table cell) written as a `\u{..}` escape; borrowed when there is none.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut clean = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(clean, "\\u{{{:x}}}", u32::from(c));
        } else {
            clean.push(c);
        }
    }
    Cow::Owned(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_become_visible_escapes_and_other_text_stays() {
        assert_eq!(
            printable("a\0b\u{1f}c\u{8}d\u{1b}[31m"),
            "a\\u{0}b\\u{1f}c\\u{8}d\\u{1b}[31m"
        );
        assert_eq!(printable("line\nbreak\ttab"), "line\\u{a}break\\u{9}tab");
        assert!(matches!(printable("Café — ünïcode"), Cow::Borrowed(_)));
        // C1 controls, which some terminals also act on.
        assert_eq!(printable("x\u{9b}y"), "x\\u{9b}y");
    }
}
