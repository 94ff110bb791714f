//! What the three target lists share: each entry's id, that no id repeats in a list, and
//! the entry's `interval` and `stale_after`.

use super::*;
use crate::config::raw::RawTargetKeys;

const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Intervals below this draw a warning: Meta rate-limits Graph API calls, and insights change
/// far more slowly than once a minute.
const SHORT_INTERVAL: Duration = Duration::from_secs(60);

/// How duplicates are told apart: `act_5` and `5` under `ad_accounts` are the same account,
/// so both are reported as `act_5`.
fn same_object(kind: &str, id: &str) -> String {
    match (kind, id.strip_prefix("act_")) {
        ("ad_accounts", Some(_)) => id.to_owned(),
        ("ad_accounts", None) => format!("act_{id}"),
        _ => id.to_owned(),
    }
}

impl Checker<'_> {
    /// Checks the entries of one target list, their ids and that no id repeats.
    pub(super) fn targets<R, T>(
        &mut self,
        kind: &str,
        raws: Vec<R>,
        raw_id: impl Fn(&R) -> &str,
        mut check: impl FnMut(&mut Self, &str, Checked<String>, R) -> Checked<T>,
    ) -> Checked<Vec<T>> {
        let mut ids = Vec::new();
        let mut targets = Vec::with_capacity(raws.len());
        for (index, raw) in raws.into_iter().enumerate() {
            let key = format!("{kind}[{index}]");
            let id_key = format!("{key}.id");
            let id = self.id(&id_key, raw_id(&raw));
            if let Ok(id) = &id {
                ids.push((id_key, same_object(kind, id)));
            }
            targets.push(check(self, &key, id, raw));
        }
        self.report_duplicates(ids, |id| format!("id {id:?}"));
        targets.into_iter().collect()
    }

    fn id(&mut self, key: &str, raw: &str) -> Checked<String> {
        let id = self.expand(key, raw)?;
        if id.is_empty() {
            return Err(self.problem(key, "is empty"));
        }
        // The id becomes a URL path segment, where `.` and `..` would be read as steps.
        if !crate::target::is_path_segment(&id) {
            return Err(self.problem(
                key,
                format!(
                    "{id:?} is not a valid id: use only letters, digits, _, . and -, since it \
                     goes into the request URL"
                ),
            ));
        }
        Ok(id)
    }

    /// The token and schedule of a target entry under `key`, from the keys every kind has.
    pub(super) fn token_and_schedule(
        &mut self,
        key: &str,
        raw: &impl RawTargetKeys,
        default_interval: Duration,
        inherited: &Inherited,
    ) -> (Checked<Credentials>, Checked<Schedule>) {
        let credentials = self.credentials(
            key,
            raw.access_token(),
            raw.access_token_file(),
            &inherited.credentials,
        );
        let schedule = self.schedule(
            key,
            raw.interval(),
            raw.stale_after(),
            default_interval,
            inherited.stale_after_intervals,
        );
        (credentials, schedule)
    }

    /// Checks `interval` and `stale_after` under `key`.
    pub(super) fn schedule(
        &mut self,
        key: &str,
        interval: Option<&str>,
        stale_after: Option<&str>,
        default_interval: Duration,
        stale_after_intervals: Checked<u32>,
    ) -> Checked<Schedule> {
        let interval = self.interval(&format!("{key}.interval"), interval, default_interval);
        let stale_after_key = format!("{key}.stale_after");
        let stale_after = self.duration(&stale_after_key, stale_after);
        let interval = interval?;
        let stale_after = match stale_after? {
            Some(stale_after) if stale_after < interval => {
                return Err(self.problem(
                    &stale_after_key,
                    format!(
                        "must be at least the interval ({}), not {}",
                        human(interval),
                        human(stale_after)
                    ),
                ))
            }
            Some(stale_after) => stale_after,
            None => interval.saturating_mul(stale_after_intervals?),
        };
        Ok(Schedule {
            interval,
            stale_after,
        })
    }

    fn interval(&mut self, key: &str, raw: Option<&str>, default: Duration) -> Checked<Duration> {
        let interval = self.duration(key, raw)?.unwrap_or(default);
        if interval < MIN_INTERVAL {
            return Err(self.problem(
                key,
                format!(
                    "must be at least {}, not {}",
                    human(MIN_INTERVAL),
                    human(interval)
                ),
            ));
        }
        if interval < SHORT_INTERVAL {
            self.warn(
                key,
                format!(
                    "{} is shorter than {}; Meta's rate limits on Graph API calls are shared by \
                     every target using the same app and token, and insights change far more \
                     slowly than that",
                    human(interval),
                    human(SHORT_INTERVAL)
                ),
            );
        }
        Ok(interval)
    }
}
