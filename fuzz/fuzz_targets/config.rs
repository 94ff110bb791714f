//! Config text: never a panic, every error a message, no message showing the token that the
//! environment holds.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use meta_messaging_exporter::config::from_yaml;

const MARKER: &str = "EAAB-fuzz-marker-93d1";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Every variable holds the token, so any `${...}` in a secret key reaches it.
    let env = |_: &str| Some(MARKER.to_owned());
    match from_yaml(text, "fuzz.yaml", &env, Path::new("/nonexistent/fuzz")) {
        Ok(config) => {
            let printed = format!("{config:?}{}", config.warnings.join("\n"));
            assert!(!printed.contains(MARKER), "{printed}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.trim().is_empty(), "{error:?}");
            // Other keys quote their expanded values on purpose (a token file's path, say), so
            // only the problems at secret keys are checked.
            let secret_key = |line: &&str| line.contains("access_token: ") || line.contains("app_secret: ");
            for line in message.lines().filter(secret_key) {
                assert!(!line.contains(MARKER), "{line}");
            }
        }
    }
});
