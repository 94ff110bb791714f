//! `campaigns`: each campaign's insights fields and its date preset or time range.

use super::graph_api::is_digits;
use super::*;

const DEFAULT_CAMPAIGN_INTERVAL: Duration = Duration::from_secs(60 * 60);

impl Checker<'_> {
    pub(super) fn campaign(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawCampaign,
        inherited: &Inherited,
    ) -> Checked<CampaignTarget> {
        let (credentials, schedule) =
            self.token_and_schedule(key, &raw, DEFAULT_CAMPAIGN_INTERVAL, inherited);
        let fields = self.campaign_fields(&format!("{key}.fields"), raw.fields);
        let dates = self.campaign_dates(key, raw.date_preset.as_deref(), raw.time_range.as_ref());
        Ok(CampaignTarget {
            id: id?,
            credentials: credentials?,
            schedule: schedule?,
            fields: fields?,
            dates: dates?,
        })
    }

    /// An `ad_accounts` entry: a campaign's keys, for `act_<id>/insights`. The id is written
    /// `act_123` as Meta writes it, or bare; either way it is `act_123` in requests and labels.
    pub(super) fn ad_account(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawCampaign,
        inherited: &Inherited,
    ) -> Checked<CampaignTarget> {
        let id = id.and_then(|id| {
            let digits = id.strip_prefix("act_").unwrap_or(&id);
            if is_digits(digits) {
                Ok(format!("act_{digits}"))
            } else {
                Err(self.problem(
                    &format!("{key}.id"),
                    format!("{id:?} is not an ad account id: act_ followed by digits, or the digits alone"),
                ))
            }
        });
        self.campaign(key, id, raw, inherited)
    }

    fn campaign_fields(&mut self, key: &str, raw: Option<Vec<String>>) -> Checked<Vec<String>> {
        let Some(fields) = raw else {
            return Ok(catalog::CAMPAIGN_FIELDS
                .iter()
                .filter(|field| field.default)
                .map(|field| field.name.to_owned())
                .collect());
        };
        if fields.is_empty() {
            return Err(self.problem(key, "is empty; leave it out to request the default fields"));
        }
        self.list(key, &fields, "field", |checker, key, name| {
            if !is_identifier(&name) {
                return Err(checker.problem(
                    key,
                    format!("{name:?} is not a valid field name: {IDENTIFIER_RULE}"),
                ));
            }
            if catalog::campaign_field(&name).is_none() {
                checker.warn(
                    key,
                    format!(
                        "{name} is not a campaign insights field Meta documents; it is \
                         requested anyway"
                    ),
                );
            }
            Ok(name)
        })
    }

    fn campaign_dates(
        &mut self,
        key: &str,
        date_preset: Option<&str>,
        time_range: Option<&RawTimeRange>,
    ) -> Checked<CampaignDates> {
        let preset =
            date_preset.map(|preset| self.date_preset(&format!("{key}.date_preset"), preset));
        let range = time_range.map(|range| self.time_range(&format!("{key}.time_range"), range));
        match (preset, range) {
            (Some(_), Some(_)) => Err(self.problem(
                &format!("{key}.time_range"),
                "cannot be combined with date_preset; set one of them",
            )),
            (Some(preset), None) => preset,
            (None, Some(range)) => range,
            (None, None) => Ok(CampaignDates::Preset(
                catalog::DEFAULT_DATE_PRESET.to_owned(),
            )),
        }
    }

    fn date_preset(&mut self, key: &str, raw: &str) -> Checked<CampaignDates> {
        let preset = self.expand(key, raw)?;
        if catalog::DATE_PRESETS.contains(&preset.as_str()) {
            Ok(CampaignDates::Preset(preset))
        } else {
            Err(self.problem(
                key,
                format!(
                    "{preset:?} is not a date preset Meta documents; expected one of {}",
                    catalog::DATE_PRESETS.join(", ")
                ),
            ))
        }
    }

    fn time_range(&mut self, key: &str, raw: &RawTimeRange) -> Checked<CampaignDates> {
        let since = self.date(&format!("{key}.since"), &raw.since);
        let until_key = format!("{key}.until");
        let until = self.date(&until_key, &raw.until);
        let (since, until) = (since?, until?);
        if until < since {
            return Err(self.problem(&until_key, format!("{until} is before since ({since})")));
        }
        Ok(CampaignDates::Range { since, until })
    }

    fn date(&mut self, key: &str, raw: &str) -> Checked<NaiveDate> {
        let text = self.expand(key, raw)?;
        // chrono alone would also accept `2025-1-5` and a signed year; the shape check keeps
        // the documented form the only one.
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(index, byte)| match index {
                4 | 7 => byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(date) if shaped => Ok(date),
            _ => Err(self.problem(
                key,
                format!("{text:?} is not a calendar date in the form YYYY-MM-DD"),
            )),
        }
    }
}
