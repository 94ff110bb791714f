//! Shared settings for the property tests (`proptests` modules beside the code they test).

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm};

/// The default configuration, honouring `PROPTEST_CASES` and the other `PROPTEST_*`
/// variables, with the XorShift generator: in an unoptimised test build ChaCha, proptest's
/// default, takes about half of every test's time, and the tests need speed rather than a
/// cryptographic generator.
pub(crate) fn config() -> Config {
    Config {
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    }
}

/// Strings matching `pattern`, compiled once. A bare `&str` pattern is also a strategy, but
/// one that parses the pattern again for every value it generates.
pub(crate) fn regex(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern)
        .unwrap_or_else(|error| panic!("invalid pattern {pattern:?}: {error}"))
        .boxed()
}

/// Any text without control characters, as `any::<String>()` generates it, but compiled once:
/// `any::<String>()` is a pattern too, and compiling its Unicode class dominates a test's time.
pub(crate) fn any_text() -> BoxedStrategy<String> {
    regex("\\PC*")
}
