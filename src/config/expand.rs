//! `${NAME}` expansion inside the config's string values.
//!
//! This module owns the expansion syntax. It runs on each string value after the YAML is
//! parsed, never on the file's text, so a variable's value cannot change the document's
//! structure (a value holding `: ` or a newline stays inside its string) and a failure can be
//! reported at the key the string sits under. Expansion is a single pass: a `${` inside a
//! variable's value is kept as is, not expanded again.
//!
//! Syntax: `${NAME}` with NAME matching `[A-Za-z_][A-Za-z0-9_]*` is replaced by the
//! variable's value; `$${` is a literal `${`; a `$` not followed by `{` is kept.

use std::fmt;

/// Why a string could not be expanded.
///
/// No variant carries the string or any variable's value: the string may be a token reference
/// and the value a token, and this error ends up in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `${NAME}` where the environment has no NAME.
    Missing(String),
    /// A `${` with no `}` after it.
    Unterminated,
    /// A `${...}` whose content is not a variable name.
    InvalidName,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Missing(name) => write!(f, "environment variable {name} is not set"),
            ExpandError::Unterminated => {
                f.write_str("`${` has no closing `}`; write `$${` for a literal `${`")
            }
            ExpandError::InvalidName => f.write_str(
                "`${...}` must hold a variable name (letters, digits and `_`, not starting with \
                 a digit); write `$${` for a literal `${`",
            ),
        }
    }
}

/// Replaces every `${NAME}` in `text` with `env(NAME)`.
pub(crate) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut expanded = String::with_capacity(text.len());
    let mut rest = text;
    // Slicing at the byte offsets of `$`, `{` and `}` is safe: they are ASCII, so never in the
    // middle of a multi-byte character.
    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after_escape) = after.strip_prefix("${") {
            expanded.push_str("${");
            rest = after_escape;
        } else if let Some(reference) = after.strip_prefix('{') {
            let close = reference.find('}').ok_or(ExpandError::Unterminated)?;
            let name = &reference[..close];
            if !is_variable_name(name) {
                return Err(ExpandError::InvalidName);
            }
            let value = env(name).ok_or_else(|| ExpandError::Missing(name.to_owned()))?;
            expanded.push_str(&value);
            rest = &reference[close + 1..];
        } else {
            expanded.push('$');
            rest = after;
        }
    }
    expanded.push_str(rest);
    Ok(expanded)
}

/// Whether `name` matches `[A-Za-z_][A-Za-z0-9_]*`, the names a POSIX shell can export.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("tok".to_owned()),
            "EMPTY" => Some(String::new()),
            "NESTED" => Some("${TOKEN}".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn a_reference_is_replaced_by_the_variables_value() {
        assert_eq!(expand("${TOKEN}", &env), Ok("tok".to_owned()));
        assert_eq!(
            expand("a-${TOKEN}-${TOKEN}.b", &env),
            Ok("a-tok-tok.b".to_owned())
        );
        assert_eq!(expand("x${EMPTY}y", &env), Ok("xy".to_owned()));
    }

    #[test]
    fn text_without_references_is_unchanged() {
        assert_eq!(expand("", &env), Ok(String::new()));
        assert_eq!(expand("plain €uro", &env), Ok("plain €uro".to_owned()));
    }

    #[test]
    fn a_dollar_not_followed_by_a_brace_is_kept() {
        assert_eq!(expand("$TOKEN $ a$", &env), Ok("$TOKEN $ a$".to_owned()));
        assert_eq!(expand("$$x", &env), Ok("$$x".to_owned()));
    }

    #[test]
    fn a_doubled_dollar_before_a_brace_is_a_literal_reference() {
        assert_eq!(expand("$${TOKEN}", &env), Ok("${TOKEN}".to_owned()));
        assert_eq!(
            expand("$${TOKEN}${TOKEN}", &env),
            Ok("${TOKEN}tok".to_owned())
        );
    }

    #[test]
    fn a_variables_value_is_not_expanded_again() {
        assert_eq!(expand("${NESTED}", &env), Ok("${TOKEN}".to_owned()));
    }

    #[test]
    fn a_missing_variable_is_named() {
        assert_eq!(
            expand("a${TOKEN}${NOPE}", &env),
            Err(ExpandError::Missing("NOPE".to_owned()))
        );
        assert_eq!(
            ExpandError::Missing("NOPE".to_owned()).to_string(),
            "environment variable NOPE is not set"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert_eq!(expand("${TOKEN", &env), Err(ExpandError::Unterminated));
        assert_eq!(expand("${", &env), Err(ExpandError::Unterminated));
        assert_eq!(expand("${}", &env), Err(ExpandError::InvalidName));
        assert_eq!(expand("${1A}", &env), Err(ExpandError::InvalidName));
        assert_eq!(expand("${A-B}", &env), Err(ExpandError::InvalidName));
        assert_eq!(expand("${ TOKEN }", &env), Err(ExpandError::InvalidName));
    }
}
