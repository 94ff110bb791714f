//! Secrets out of everything the exporter shows that came from Meta.
//!
//! Meta echoes what it is given: a Page's name, a template's name or a verified phone name can
//! hold a token if someone pasted one there, and an error message can quote one. Error
//! messages are redacted by the Graph API client with the tokens of their request; label
//! values and backfill samples pass through a [`Redactor`] built from every secret in use
//! (each configured token, the app secret, the Page tokens discovery found), so a token that
//! belongs to another target is caught too. Matching is one pass of an Aho-Corasick automaton
//! over each value (`aho-corasick`, already in the tree through `regex`), so its cost does not
//! grow with the number of tokens.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::exposition::Family;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Finds and replaces every secret of a set.
#[derive(Clone, Default)]
pub struct Redactor {
    /// `None` when there are no secrets (or the automaton could not be built, which only a
    /// set far beyond any config's size could cause).
    matcher: Option<Arc<AhoCorasick>>,
}

impl std::fmt::Debug for Redactor {
    /// Without the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field(
                "patterns",
                &self.matcher.as_ref().map_or(0, |m| m.patterns_len()),
            )
            .finish()
    }
}

impl Redactor {
    /// A redactor of `secrets` (empty ones ignored).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut patterns: Vec<&str> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Self::default();
        }
        // A contiguous NFA: compact (10,000 tokens take a few MB), and matching stays linear.
        // Leftmost-longest, so a secret that contains another is replaced whole.
        let matcher = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns);
        match matcher {
            Ok(matcher) => Self {
                matcher: Some(Arc::new(matcher)),
            },
            Err(error) => {
                tracing::error!(%error, "building the secret matcher failed; label values are not redacted");
                Self::default()
            }
        }
    }

    /// `text` with every secret replaced by [`REDACTED`]; borrowed when there is none.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.matcher {
            Some(matcher) if matcher.is_match(text) => {
                Cow::Owned(matcher.replace_all(text, &vec![REDACTED; matcher.patterns_len()]))
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Redacts every label value of `families` in place; returns how many values changed.
    pub fn redact_families(&self, families: &mut [Family]) -> usize {
        if self.matcher.is_none() {
            return 0;
        }
        let mut changed = 0;
        for sample in families
            .iter_mut()
            .flat_map(|family| family.samples.iter_mut())
        {
            for (_, value) in &mut sample.labels {
                if let Cow::Owned(clean) = self.redact(value) {
                    *value = clean;
                    changed += 1;
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Sample;

    #[test]
    fn every_secret_of_the_set_is_replaced_wherever_it_appears() {
        let redactor = Redactor::new(["EAAsecret", "EAAother", "", "app-secret"]);
        assert_eq!(
            redactor.redact("Shop EAAsecret and EAAother, app-secret"),
            "Shop [redacted] and [redacted], [redacted]"
        );
        assert!(matches!(redactor.redact("Demo Bakery"), Cow::Borrowed(_)));
        // A secret that contains another goes whole.
        let nested = Redactor::new(["EAA", "EAAlonger"]);
        assert_eq!(nested.redact("xEAAlongery"), "x[redacted]y");
        assert!(!format!("{redactor:?}").contains("EAA"));
    }

    #[test]
    fn label_values_are_redacted_and_counted() {
        let redactor = Redactor::new(["EAAsecret"]);
        let mut families = vec![Family {
            name: "meta_page_info".into(),
            help: "h".into(),
            samples: vec![Sample {
                labels: vec![
                    ("page_id".into(), "1".into()),
                    ("name".into(), "My EAAsecret page".into()),
                ],
                value: 1.0,
            }],
        }];
        assert_eq!(redactor.redact_families(&mut families), 1);
        assert_eq!(families[0].samples[0].labels[1].1, "My [redacted] page");
        assert_eq!(Redactor::default().redact_families(&mut families), 0);
    }
}
