//! `whatsapp_business_accounts`: each account's `analytics` granularity and filters, and its
//! `pricing`, `conversations`, `templates` and `phone_numbers_health` sections.

use super::*;
use crate::config::raw::{RawBilling, RawTemplates, RawToggle, StringOrInteger};

const DEFAULT_WABA_INTERVAL: Duration = Duration::from_secs(15 * 60);
const DEFAULT_GRANULARITY: Granularity = Granularity::Day;
const ALL_GRANULARITIES: [Granularity; 3] =
    [Granularity::HalfHour, Granularity::Day, Granularity::Month];

impl Checker<'_> {
    pub(super) fn waba(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawWaba,
        inherited: &Inherited,
    ) -> Checked<WabaTarget> {
        let (credentials, schedule) =
            self.token_and_schedule(key, &raw, DEFAULT_WABA_INTERVAL, inherited);
        let granularity =
            self.granularity(&format!("{key}.granularity"), raw.granularity.as_deref());
        let phone_numbers = self.phone_numbers(
            &format!("{key}.phone_numbers"),
            raw.phone_numbers.as_deref(),
        );
        let country_codes = self.country_codes(
            &format!("{key}.country_codes"),
            raw.country_codes.as_deref(),
        );
        let pricing = match raw.pricing {
            None | Some(RawToggle::Switch(true)) => self
                .billing(key, BillingField::Pricing, RawBilling::default())
                .map(Some),
            Some(RawToggle::Switch(false)) => Ok(None),
            Some(RawToggle::Settings(settings)) => {
                self.billing(key, BillingField::Pricing, settings).map(Some)
            }
        };
        let conversations = match raw.conversations {
            None | Some(RawToggle::Switch(false)) => Ok(None),
            Some(RawToggle::Switch(true)) => self
                .billing(key, BillingField::Conversations, RawBilling::default())
                .map(Some),
            Some(RawToggle::Settings(settings)) => self
                .billing(key, BillingField::Conversations, settings)
                .map(Some),
        };
        let templates = match raw.templates {
            None | Some(RawToggle::Switch(false)) => Ok(None),
            Some(RawToggle::Switch(true)) => self
                .templates(&format!("{key}.templates"), RawTemplates::default())
                .map(Some),
            Some(RawToggle::Settings(settings)) => self
                .templates(&format!("{key}.templates"), settings)
                .map(Some),
        };
        Ok(WabaTarget {
            id: id?,
            credentials: credentials?,
            schedule: schedule?,
            granularity: granularity?,
            phone_numbers: phone_numbers?,
            country_codes: country_codes?,
            pricing: pricing?,
            conversations: conversations?,
            templates: templates?,
            phone_numbers_health: raw.phone_numbers_health.unwrap_or(true),
            origin: Origin::Static,
        })
    }

    fn phone_numbers(
        &mut self,
        key: &str,
        raw: Option<&[StringOrInteger]>,
    ) -> Checked<Vec<String>> {
        let numbers: Vec<String> = raw
            .unwrap_or_default()
            .iter()
            .map(|number| number.0.clone())
            .collect();
        self.list(key, &numbers, "phone number", |checker, key, number| {
            if !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()) {
                Ok(number)
            } else {
                Err(checker.problem(
                    key,
                    format!(
                        "{number:?} is not a phone number as Meta gives it: digits only, \
                         country code first, without + or spaces"
                    ),
                ))
            }
        })
    }

    fn country_codes(&mut self, key: &str, raw: Option<&[String]>) -> Checked<Vec<String>> {
        self.list(
            key,
            raw.unwrap_or_default(),
            "country code",
            |checker, key, code| {
                if code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase()) {
                    Ok(code)
                } else {
                    Err(checker.problem(
                        key,
                        format!(
                            "{code:?} is not a country code: two upper-case letters \
                             (ISO 3166-1 alpha-2) such as US"
                        ),
                    ))
                }
            },
        )
    }

    /// `pricing` or `conversations` of the entry at `waba_key`.
    fn billing(
        &mut self,
        waba_key: &str,
        field: BillingField,
        raw: RawBilling,
    ) -> Checked<BillingAnalytics> {
        let key = format!("{waba_key}.{}", field.config_key());
        let granularity = self.billing_granularity(&format!("{key}.granularity"), raw.granularity);
        let dimensions = match raw.dimensions {
            None => Ok(field
                .default_dimensions()
                .iter()
                .map(|d| (*d).to_owned())
                .collect()),
            Some(dimensions) => {
                let known: Vec<&str> = field.known_dimensions().iter().map(|(d, _)| *d).collect();
                self.api_names(
                    &format!("{key}.dimensions"),
                    &dimensions,
                    "dimension",
                    &known,
                )
            }
        };
        // Each field takes its own filters; a filter of the other field is named, not ignored.
        let given: [(&'static str, Option<Vec<String>>); 7] = [
            (
                "phone_numbers",
                raw.phone_numbers
                    .map(|numbers| numbers.into_iter().map(|n| n.0).collect()),
            ),
            ("country_codes", raw.country_codes),
            ("pricing_categories", raw.pricing_categories),
            ("pricing_types", raw.pricing_types),
            ("conversation_categories", raw.conversation_categories),
            ("conversation_types", raw.conversation_types),
            ("conversation_directions", raw.conversation_directions),
        ];
        let accepted = field.filters();
        let mut filters: Checked<Vec<(&'static str, Vec<String>)>> = Ok(Vec::new());
        for (name, values) in given {
            let Some(values) = values else { continue };
            let filter_key = format!("{key}.{name}");
            let checked = match accepted.iter().find(|(filter, _)| *filter == name) {
                None => Err(self.problem(
                    &filter_key,
                    format!(
                        "is not a filter of {}; it takes {}",
                        field.field_name(),
                        accepted
                            .iter()
                            .map(|(filter, _)| *filter)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                Some((_, known)) => match name {
                    "phone_numbers" => {
                        let raw: Vec<StringOrInteger> =
                            values.into_iter().map(StringOrInteger).collect();
                        self.phone_numbers(&filter_key, Some(&raw))
                    }
                    "country_codes" => self.country_codes(&filter_key, Some(&values)),
                    _ => self.api_names(&filter_key, &values, "value", known),
                },
            };
            filters = match (filters, checked) {
                (Ok(mut filters), Ok(values)) => {
                    if !values.is_empty() {
                        filters.push((name, values));
                    }
                    Ok(filters)
                }
                _ => Err(Reported),
            };
        }
        Ok(BillingAnalytics {
            field,
            granularity: granularity?,
            dimensions: dimensions?,
            filters: filters?,
        })
    }

    /// Upper-case API names: an empty or malformed one is an error; one Meta does not document
    /// is a warning, since Meta adds dimensions, categories and types.
    fn api_names(
        &mut self,
        key: &str,
        names: &[String],
        what: &str,
        known: &[&str],
    ) -> Checked<Vec<String>> {
        self.list(key, names, what, |checker, item_key, name| {
            let well_formed = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !well_formed {
                return Err(checker.problem(
                    item_key,
                    format!("{name:?} is not an API name: upper-case letters, digits and _"),
                ));
            }
            if !known.is_empty() && !known.contains(&name.as_str()) {
                checker.warn(
                    item_key,
                    format!(
                        "{name} is not a {what} Meta documents ({}); it is sent as written",
                        known.join(", ")
                    ),
                );
            }
            Ok(name)
        })
    }

    fn billing_granularity(
        &mut self,
        key: &str,
        raw: Option<String>,
    ) -> Checked<BillingGranularity> {
        let Some(raw) = raw else {
            return Ok(BillingGranularity::Daily);
        };
        let text = self.expand(key, &raw)?;
        BillingGranularity::parse(&text).ok_or_else(|| {
            let allowed: Vec<&str> = BillingGranularity::ALL.iter().map(|g| g.as_str()).collect();
            let hint = if Granularity::parse(&text).is_some() {
                " (DAY and MONTH are the spellings of `analytics`' granularity; pricing and \
                 conversation analytics spell them DAILY and MONTHLY)"
            } else {
                ""
            };
            self.problem(
                key,
                format!(
                    "{text:?} is not a granularity of this field; expected one of {}{hint}",
                    allowed.join(", ")
                ),
            )
        })
    }

    fn templates(&mut self, key: &str, raw: RawTemplates) -> Checked<TemplateSettings> {
        let ids: Vec<String> = raw
            .ids
            .unwrap_or_default()
            .into_iter()
            .map(|id| id.0)
            .collect();
        let ids = self.list(
            &format!("{key}.ids"),
            &ids,
            "template id",
            |checker, key, id| {
                if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(id)
                } else {
                    Err(checker.problem(key, format!("{id:?} is not a template id: digits only")))
                }
            },
        );
        let metrics = match raw.metrics {
            None => Ok(TemplateSettings::KNOWN_METRICS
                .iter()
                .map(|m| (*m).to_owned())
                .collect()),
            Some(metrics) if metrics.is_empty() => Err(self.problem(
                &format!("{key}.metrics"),
                "must name at least one metric type (leave it out for all five)",
            )),
            Some(metrics) => self.api_names(
                &format!("{key}.metrics"),
                &metrics,
                "template metric type",
                &TemplateSettings::KNOWN_METRICS,
            ),
        };
        Ok(TemplateSettings {
            ids: ids?,
            metrics: metrics?,
        })
    }

    fn granularity(&mut self, key: &str, raw: Option<&str>) -> Checked<Granularity> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_GRANULARITY);
        };
        let text = self.expand(key, raw)?;
        Granularity::parse(&text).ok_or_else(|| {
            let allowed: Vec<&str> = ALL_GRANULARITIES.iter().map(|g| g.as_str()).collect();
            self.problem(
                key,
                format!(
                    "{text:?} is not a granularity; expected one of {} (upper case, as the API \
                     spells them){}",
                    allowed.join(", "),
                    if BillingGranularity::parse(&text).is_some() {
                        "; DAILY and MONTHLY are the spellings of pricing and conversation \
                         analytics"
                    } else {
                        ""
                    }
                ),
            )
        })
    }
}
