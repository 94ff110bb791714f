//! Token rotation: re-reading the token files of a running config, and nothing else.
//!
//! Kubernetes rotates a secret by swapping the files under its mount, and a user may be
//! editing `config.yaml` at the same moment; the watcher must pick up the new tokens without
//! applying a half-edited config file. So rotation starts from the config that is running,
//! re-reads only the files its credentials came from, and checks each new token as the loader
//! does. Either every file reads and checks, or nothing changes.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CampaignTarget, Config, Credentials, PageTarget, WabaTarget};
use crate::secret::AccessToken;

/// A token is a few hundred bytes; anything much larger is the wrong file.
const MAX_TOKEN_FILE_BYTES: usize = 64 * 1024;

/// Reads a token file, refusing files far larger than any token.
pub(super) fn read_token_file(path: &Path) -> io::Result<String> {
    let mut bytes = Vec::new();
    // `take` bounds the read, so pointing at a device or a huge file cannot exhaust memory.
    std::fs::File::open(path)?
        .take(MAX_TOKEN_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_TOKEN_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_TOKEN_FILE_BYTES} bytes, far more than a token"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// What is wrong with a token or secret value, if anything (it is never quoted).
pub(super) fn token_flaw(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains whitespace or control characters (the value is not shown)")
    } else {
        None
    }
}

/// The token files a config text names (`access_token_file` anywhere in it), resolved
/// against `base_dir` as written (a `${VAR}` in one is not expanded): which files a reload of
/// this text will read, to name them when the read does not finish. No file is touched.
pub fn named_token_files(text: &str, base_dir: &Path) -> Vec<PathBuf> {
    fn walk(value: &serde_yaml::Value, base_dir: &Path, found: &mut Vec<PathBuf>) {
        match value {
            serde_yaml::Value::Mapping(map) => {
                for (key, value) in map {
                    match (key.as_str(), value.as_str()) {
                        (Some("access_token_file"), Some(path)) => found.push(base_dir.join(path)),
                        _ => walk(value, base_dir, found),
                    }
                }
            }
            serde_yaml::Value::Sequence(items) => {
                for item in items {
                    walk(item, base_dir, found);
                }
            }
            serde_yaml::Value::Tagged(tagged) => walk(&tagged.value, base_dir, found),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        walk(&value, base_dir, &mut found);
    }
    found.sort();
    found.dedup();
    found
}

/// Every token file the config's credentials came from, sorted, each once.
pub fn token_files(config: &Config) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = credentials(config)
        .filter_map(|credentials| credentials.file.clone())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// What one check read from each token file of a config, each file read once: its token, or
/// why there is none. A rotation applies exactly these tokens, and the digest it records is
/// theirs, so a write that lands after the read is seen at the next check rather than being
/// recorded as seen and never applied.
#[derive(Debug)]
pub struct TokenFileReads(Vec<(PathBuf, Result<AccessToken, String>)>);

impl TokenFileReads {
    /// Reads every token file of `config` once.
    pub fn read(config: &Config) -> Self {
        Self(
            token_files(config)
                .into_iter()
                .map(|path| {
                    let token = read_token(&path);
                    (path, token)
                })
                .collect(),
        )
    }

    /// A digest of what was read, to compare with the last check's.
    pub fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for (path, token) in &self.0 {
            hash_entry(&mut hasher, path, token.as_ref().map(AccessToken::expose));
        }
        hasher.finish()
    }

    /// The digest of reads that found exactly the tokens `config` holds: what a check of
    /// unchanged files gives.
    pub fn digest_of(config: &Config) -> u64 {
        let mut hasher = DefaultHasher::new();
        for path in token_files(config) {
            let token = credentials(config)
                .find(|credentials| credentials.file.as_ref() == Some(&path))
                .map(|credentials| credentials.token.expose());
            hash_entry(&mut hasher, &path, token.ok_or(&String::new()));
        }
        hasher.finish()
    }
}

fn hash_entry(hasher: &mut DefaultHasher, path: &Path, token: Result<&str, &String>) {
    path.hash(hasher);
    match token {
        Ok(token) => {
            0u8.hash(hasher);
            token.hash(hasher);
        }
        Err(error) => {
            1u8.hash(hasher);
            error.hash(hasher);
        }
    }
}

/// `config` with every token read again from its file. An unreadable file or an invalid
/// token fails the whole refresh, naming the file, and the caller keeps the running config.
pub fn reread_token_files(config: &Config) -> Result<Config, String> {
    rotate_tokens(config, &TokenFileReads::read(config))
}

/// `config` with the tokens of `reads`, read from its token files. A file that did not read
/// or holds no valid token fails the whole rotation, naming the file, and the caller keeps the
/// running config.
pub fn rotate_tokens(config: &Config, reads: &TokenFileReads) -> Result<Config, String> {
    let mut fresh = HashMap::new();
    for (path, token) in &reads.0 {
        fresh.insert(path.clone(), token.clone()?);
    }
    let mut config = config.clone();
    rotate(&mut config.pages, &fresh);
    rotate(&mut config.campaigns, &fresh);
    rotate(&mut config.whatsapp_business_accounts, &fresh);
    rotate(&mut config.ad_accounts, &fresh);
    if let Some(discovery) = &mut config.discovery {
        let defaults = discovery
            .pages
            .iter_mut()
            .map(|pages| &mut pages.defaults.credentials)
            .chain(
                discovery
                    .whatsapp_business_accounts
                    .iter_mut()
                    .map(|wabas| &mut wabas.defaults.credentials),
            );
        for credentials in std::iter::once(&mut discovery.credentials).chain(defaults) {
            if let Some(token) = fresh_token(credentials, &fresh) {
                credentials.token = token.clone();
            }
        }
    }
    Ok(config)
}

fn read_token(path: &Path) -> Result<AccessToken, String> {
    let contents = read_token_file(path)
        .map_err(|error| format!("cannot read token file {}: {error}", path.display()))?;
    // Files usually end in a newline that is not part of the token.
    let token = contents.trim();
    match token_flaw(token) {
        Some(flaw) => Err(format!("token file {} {flaw}", path.display())),
        None => Ok(AccessToken::new(token)),
    }
}

fn credentials(config: &Config) -> impl Iterator<Item = &Credentials> {
    let pages = config.pages.iter().map(|t| &t.credentials);
    let campaigns = config.campaigns.iter().map(|t| &t.credentials);
    let wabas = config
        .whatsapp_business_accounts
        .iter()
        .map(|t| &t.credentials);
    let ad_accounts = config.ad_accounts.iter().map(|t| &t.credentials);
    // Discovery lists with the graph_api token, and discovered WhatsApp accounts poll with it
    // (its defaults hold it), so a rotated graph_api file must reach both.
    let discovery = config.discovery.iter().flat_map(|discovery| {
        std::iter::once(&discovery.credentials)
            .chain(
                discovery
                    .pages
                    .iter()
                    .map(|pages| &pages.defaults.credentials),
            )
            .chain(
                discovery
                    .whatsapp_business_accounts
                    .iter()
                    .map(|wabas| &wabas.defaults.credentials),
            )
    });
    pages
        .chain(campaigns)
        .chain(wabas)
        .chain(ad_accounts)
        .chain(discovery)
}

/// The token `fresh` read from the file `credentials` came from, if it differs.
fn fresh_token<'a>(
    credentials: &Credentials,
    fresh: &'a HashMap<PathBuf, AccessToken>,
) -> Option<&'a AccessToken> {
    let token = fresh.get(credentials.file.as_ref()?)?;
    (token.expose() != credentials.token.expose()).then_some(token)
}

/// A target with its own credentials.
trait Credentialed: Clone {
    fn credentials(&self) -> &Credentials;
    fn credentials_mut(&mut self) -> &mut Credentials;
}

macro_rules! credentialed {
    ($($target:ty),*) => {$(
        impl Credentialed for $target {
            fn credentials(&self) -> &Credentials {
                &self.credentials
            }
            fn credentials_mut(&mut self) -> &mut Credentials {
                &mut self.credentials
            }
        }
    )*};
}

credentialed!(PageTarget, CampaignTarget, WabaTarget);

/// Gives each target its fresh token. Copy-on-write: only a target whose token changed is
/// copied; the running tasks share the others with the config.
fn rotate<T: Credentialed>(targets: &mut [Arc<T>], fresh: &HashMap<PathBuf, AccessToken>) {
    for target in targets {
        if let Some(token) = fresh_token(target.credentials(), fresh) {
            Arc::make_mut(target).credentials_mut().token = token.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_yaml;

    fn load(dir: &Path) -> Config {
        let yaml = "graph_api:\n  access_token_file: token\npages:\n  - id: \"1\"\n  - id: \"2\"\n    access_token: inline-token\n";
        from_yaml(yaml, "test", &|_: &str| None, dir).expect("valid config")
    }

    #[test]
    fn a_rotation_copies_only_the_targets_whose_token_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "first-token\n").expect("write");
        let config = load(dir.path());
        // Read again unchanged: every target is still the config's own allocation, which
        // the running tasks share.
        let same = reread_token_files(&config).expect("rotation");
        assert!(Arc::ptr_eq(&same.pages[0], &config.pages[0]));
        assert!(Arc::ptr_eq(&same.pages[1], &config.pages[1]));
        std::fs::write(dir.path().join("token"), "second-token\n").expect("write");
        let rotated = reread_token_files(&config).expect("rotation");
        assert!(!Arc::ptr_eq(&rotated.pages[0], &config.pages[0]));
        assert!(Arc::ptr_eq(&rotated.pages[1], &config.pages[1]));
    }

    #[test]
    fn only_tokens_from_files_change_and_the_rest_of_the_config_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "first-token\n").expect("write");
        let config = load(dir.path());
        std::fs::write(dir.path().join("token"), "second-token\n").expect("write");
        let rotated = reread_token_files(&config).expect("rotation");
        assert_eq!(rotated.pages[0].credentials.token.expose(), "second-token");
        assert_eq!(rotated.pages[1].credentials.token.expose(), "inline-token");
        let mut expected = config.clone();
        Arc::make_mut(&mut expected.pages[0]).credentials.token = AccessToken::new("second-token");
        assert_eq!(rotated, expected);
    }

    #[test]
    fn the_token_files_a_config_text_names_are_found_without_reading_them() {
        let text = "graph_api:\n  access_token_file: shared\npages:\n  - id: \"1\"\n    access_token_file: /abs/page\n  - id: \"2\"\n    access_token_file: shared\n";
        assert_eq!(
            named_token_files(text, Path::new("/etc/exporter")),
            vec![
                PathBuf::from("/abs/page"),
                PathBuf::from("/etc/exporter/shared")
            ]
        );
        assert!(named_token_files(": not yaml [", Path::new(".")).is_empty());
    }

    #[test]
    fn a_write_after_the_tokens_were_read_is_seen_at_the_next_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n").expect("write");
        let config = load(dir.path());
        // What a check of the unchanged file reads is what the config holds.
        assert_eq!(
            TokenFileReads::read(&config).digest(),
            TokenFileReads::digest_of(&config)
        );
        // The check reads "second"; "third" is written before the rotation is applied.
        std::fs::write(&path, "second-token\n").expect("write");
        let reads = TokenFileReads::read(&config);
        std::fs::write(&path, "third-token\n").expect("write");
        let rotated = rotate_tokens(&config, &reads).expect("rotation");
        assert_eq!(rotated.pages[0].credentials.token.expose(), "second-token");
        // The digest recorded is that of what was applied, so the next check sees the third
        // write as a change instead of taking it for the content already applied.
        assert_eq!(TokenFileReads::digest_of(&rotated), reads.digest());
        let next = TokenFileReads::read(&rotated);
        assert_ne!(next.digest(), TokenFileReads::digest_of(&rotated));
        let rotated = rotate_tokens(&rotated, &next).expect("rotation");
        assert_eq!(rotated.pages[0].credentials.token.expose(), "third-token");
    }

    #[test]
    fn an_empty_or_missing_token_file_fails_the_rotation_naming_the_file_not_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n").expect("write");
        let config = load(dir.path());
        std::fs::write(&path, "\n").expect("write");
        let error = reread_token_files(&config).expect_err("empty file");
        assert!(
            error.contains("token") && error.contains("is empty"),
            "{error}"
        );
        std::fs::write(&path, "half token\n").expect("write");
        let error = reread_token_files(&config).expect_err("whitespace");
        assert!(!error.contains("half"), "{error}");
        std::fs::remove_file(&path).expect("remove");
        let error = reread_token_files(&config).expect_err("missing file");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
