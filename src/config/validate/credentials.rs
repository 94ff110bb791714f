//! Access tokens and the app secret, wherever they are set: in the file, through `${VAR}`,
//! or read from an `access_token_file`; and which token a target uses, its own or the one
//! it inherits from `graph_api`.

use super::*;
use crate::config::token_files::{read_token_file, token_flaw};

impl Checker<'_> {
    /// The target's own token if it sets one, else the inherited `graph_api` token.
    pub(super) fn credentials(
        &mut self,
        key: &str,
        access_token: Option<&str>,
        access_token_file: Option<&str>,
        inherited: &Checked<Option<Credentials>>,
    ) -> Checked<Credentials> {
        if let Some(own) = self.token_source(key, access_token, access_token_file)? {
            return Ok(own);
        }
        match inherited {
            Ok(Some(credentials)) => Ok(credentials.clone()),
            Ok(None) => Err(self.problem(
                &format!("{key}.access_token"),
                "no access token is set here nor in graph_api (set access_token or \
                 access_token_file)",
            )),
            // The graph_api token's own problem is already reported; repeating it for every
            // target would bury it.
            Err(reported) => Err(*reported),
        }
    }

    /// Resolves `access_token` or `access_token_file` under `key`; `Ok(None)` when neither is set.
    pub(super) fn token_source(
        &mut self,
        key: &str,
        access_token: Option<&str>,
        access_token_file: Option<&str>,
    ) -> Checked<Option<Credentials>> {
        match (access_token, access_token_file) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(self.problem(
                &format!("{key}.access_token_file"),
                "is set together with access_token; set only one of them",
            )),
            (Some(raw), None) => {
                let token = self.secret(&format!("{key}.access_token"), raw, None)?;
                Ok(Some(Credentials {
                    token: AccessToken::new(token),
                    file: None,
                }))
            }
            (None, Some(raw)) => {
                let key = format!("{key}.access_token_file");
                let path = self.expand(&key, raw)?;
                if path.is_empty() {
                    return Err(self.problem(&key, "is empty"));
                }
                let path = self.base_dir.join(path);
                let contents = read_token_file(&path).map_err(|error| {
                    self.problem(
                        &key,
                        format!("cannot read token file {}: {error}", path.display()),
                    )
                })?;
                let token = self.secret_value(&key, &contents, Some(&path))?;
                Ok(Some(Credentials {
                    token: AccessToken::new(token),
                    file: Some(path),
                }))
            }
        }
    }

    /// Expands a token or app secret written in the config and checks its value.
    pub(super) fn secret(&mut self, key: &str, raw: &str, file: Option<&Path>) -> Checked<String> {
        let value = self.expand(key, raw)?;
        self.secret_value(key, &value, file)
    }

    /// Trims a token or app secret and checks it could be valid, never quoting it.
    ///
    /// Surrounding whitespace is dropped because files and secret stores usually end in a
    /// newline that is not part of the value.
    fn secret_value(&mut self, key: &str, value: &str, file: Option<&Path>) -> Checked<String> {
        let value = value.trim();
        let Some(flaw) = token_flaw(value) else {
            return Ok(value.to_owned());
        };
        let message = match file {
            Some(path) => format!("token file {} {flaw}", path.display()),
            None => flaw.to_owned(),
        };
        Err(self.problem(key, message))
    }
}
