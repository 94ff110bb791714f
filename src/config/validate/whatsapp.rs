//! `whatsapp_business_accounts`: each account's granularity, phone numbers and country codes.

use super::*;

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
        let phone_numbers = self.list(
            &format!("{key}.phone_numbers"),
            &raw.phone_numbers
                .unwrap_or_default()
                .into_iter()
                .map(|number| number.0)
                .collect::<Vec<_>>(),
            "phone number",
            |checker, key, number| {
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
            },
        );
        let country_codes = self.list(
            &format!("{key}.country_codes"),
            &raw.country_codes.unwrap_or_default(),
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
        );
        Ok(WabaTarget {
            id: id?,
            credentials: credentials?,
            schedule: schedule?,
            granularity: granularity?,
            phone_numbers: phone_numbers?,
            country_codes: country_codes?,
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
                     spells them)",
                    allowed.join(", ")
                ),
            )
        })
    }
}
