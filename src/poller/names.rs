//! Names on ids: the info series (`meta_page_info`, `meta_campaign_info`,
//! `meta_ad_account_info`) that dashboards join onto the numeric ids.
//!
//! A name changes when someone renames a Page in Business Settings, so it is read with one
//! `GET /{id}?fields=name[,currency]` at most once per names interval (the discovery interval,
//! 1h by default) and kept between reads. It is a read of its own ([`Read::Name`]): a failed
//! name read is counted and shown but costs the insights nothing, and the info series keeps
//! the last name known. A name discovery already gave needs no call.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::read::{Polled, Read};
use super::{PollContext, PollError};
use crate::config::Origin;
use crate::convert::Converted;
use crate::exposition::{Family, Sample};
use crate::graph::request::Api;
use crate::graph::{GraphError, GraphRequest};
use crate::secret::AccessToken;

/// What an object is called, as far as Meta said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectNames {
    /// `name`.
    pub name: Option<String>,
    /// `currency`, for ad accounts.
    pub currency: Option<String>,
}

/// The last names read for one object, and when.
#[derive(Debug)]
pub struct NameLookup {
    fields: &'static str,
    /// Campaign and ad-account names are Marketing API reads, so they follow its version.
    api: Api,
    known: Option<ObjectNames>,
    /// Monotonic, so a wall clock set back or forward neither stops nor hurries name reads.
    read_at: Option<Instant>,
}

impl NameLookup {
    /// A lookup asking for `fields` (`name`, or `name,currency`) with `api`'s version.
    pub fn new(fields: &'static str, api: Api) -> Self {
        Self {
            fields,
            api,
            known: None,
            read_at: None,
        }
    }

    /// The name last read, if any.
    pub fn known_name(&self) -> Option<&str> {
        self.known.as_ref().and_then(|known| known.name.as_deref())
    }

    /// The names of `object_id`, read again first when the last read is older than the names
    /// interval, and the outcome of that read when one was made. A failed read keeps what was
    /// known and waits a whole interval before the next try, so a token without access to the
    /// node costs one call an interval, not one a poll.
    ///
    /// A name discovery already gave (`known`) is used as it is, without a call.
    pub async fn current(
        &mut self,
        context: &PollContext<'_>,
        object_id: &str,
        token: &AccessToken,
        known: Option<&str>,
    ) -> (Option<&ObjectNames>, Option<Result<(), GraphError>>) {
        if let Some(name) = known {
            self.known = Some(ObjectNames {
                name: Some(name.to_owned()),
                currency: None,
            });
            return (self.known.as_ref(), None);
        }
        let now = Instant::now();
        let mut read = None;
        if is_due(self.read_at, now, context.names_interval) {
            self.read_at = Some(now);
            let request = GraphRequest::object_fields(object_id, self.fields).in_api(self.api);
            match context.client.get(&request, token).await {
                Ok(body) => {
                    self.known = Some(parse(&body));
                    read = Some(Ok(()));
                }
                Err(error) => read = Some(Err(error)),
            }
        }
        (self.known.as_ref(), read)
    }
}

/// Adds the name read of a poll to `polled`: the info series of the names known, or the
/// error of a read made this poll (so the series of the last name known stay, and the failure
/// shows). Names served without a call are not fresh.
pub(crate) fn push_outcome(
    polled: &mut Polled,
    (names, read): (Option<ObjectNames>, Option<Result<(), GraphError>>),
    kind: InfoKind,
    id: &str,
    origin: Origin,
) {
    let fresh = read.is_some();
    let result = match read {
        Some(Err(error)) => Err(PollError::Graph(error)),
        _ => Ok(Converted {
            families: names
                .and_then(|names| info_family(kind, id, &names, origin))
                .into_iter()
                .collect(),
            ..Converted::default()
        }),
    };
    polled.push_as(Read::Name, result, fresh);
}

fn is_due(read_at: Option<Instant>, now: Instant, interval: Duration) -> bool {
    read_at.is_none_or(|at| now.saturating_duration_since(at) >= interval)
}

/// The names in a node read's body.
pub(crate) fn parse(body: &Value) -> ObjectNames {
    let text = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    ObjectNames {
        name: text("name"),
        currency: text("currency"),
    }
}

/// Which info family, and the label its id goes in.
#[derive(Debug, Clone, Copy)]
pub struct InfoKind {
    /// Family name.
    pub family: &'static str,
    /// The id label, matching the data series (`page_id`, ...).
    pub id_label: &'static str,
    /// HELP text.
    pub help: &'static str,
    /// Whose version the name read goes to.
    pub api: Api,
}

/// `meta_page_info`.
pub const PAGE_INFO: InfoKind = InfoKind {
    family: "meta_page_info",
    id_label: "page_id",
    api: Api::Graph,
    help: "Always 1: the Page's name, for joining names onto page_id (`* on(page_id) group_left(name) meta_page_info`); origin is static (listed in the config) or discovered. From discovery, or a name read at most once per discovery interval in the background.",
};

/// `meta_campaign_info`.
pub const CAMPAIGN_INFO: InfoKind = InfoKind {
    family: "meta_campaign_info",
    id_label: "campaign_id",
    api: Api::Marketing,
    help: "Always 1: the campaign's name, for joining names onto campaign_id (`* on(campaign_id) group_left(name) meta_campaign_info`). Read at most once per discovery interval (1h by default) in the background.",
};

/// `meta_ad_account_info`.
pub const AD_ACCOUNT_INFO: InfoKind = InfoKind {
    family: "meta_ad_account_info",
    id_label: "ad_account_id",
    api: Api::Marketing,
    help: "Always 1: the ad account's name and the currency its spend is in, for joining names onto ad_account_id (`* on(ad_account_id) group_left(name) meta_ad_account_info`). Read at most once per discovery interval (1h by default) in the background.",
};

/// The info family of one object; `None` while no name is known, since a series without the
/// name would only join an empty label on.
pub fn info_family(
    kind: InfoKind,
    id: &str,
    names: &ObjectNames,
    origin: Origin,
) -> Option<Family> {
    let name = names.name.as_ref()?;
    let mut labels = vec![
        (kind.id_label.to_owned(), id.to_owned()),
        ("name".to_owned(), name.clone()),
    ];
    if let Some(currency) = &names.currency {
        labels.push(("currency".to_owned(), currency.clone()));
    }
    labels.push(("origin".to_owned(), origin.as_str().to_owned()));
    Some(Family {
        name: kind.family.to_owned(),
        help: kind.help.to_owned(),
        samples: vec![Sample { labels, value: 1.0 }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_name_is_read_again_only_after_the_interval() {
        let hour = Duration::from_secs(3600);
        let read = Instant::now();
        assert!(is_due(None, read, hour));
        assert!(!is_due(
            Some(read),
            read + hour - Duration::from_secs(1),
            hour
        ));
        assert!(is_due(Some(read), read + hour, hour));
    }

    #[test]
    fn names_come_from_the_node_and_an_empty_name_counts_as_none() {
        assert_eq!(
            parse(&json!({"id": "act_1", "name": "Acme ads", "currency": "EUR"})),
            ObjectNames {
                name: Some("Acme ads".into()),
                currency: Some("EUR".into())
            }
        );
        assert_eq!(
            parse(&json!({"id": "1", "name": ""})),
            ObjectNames::default()
        );
        assert_eq!(parse(&json!([1, 2])), ObjectNames::default());
    }

    #[test]
    fn the_info_series_carries_id_name_currency_and_origin_and_needs_a_name() {
        let names = ObjectNames {
            name: Some("Acme ads".into()),
            currency: Some("EUR".into()),
        };
        let family = info_family(AD_ACCOUNT_INFO, "act_1", &names, Origin::Static)
            .expect("a named account has an info series");
        assert_eq!(family.name, "meta_ad_account_info");
        let labels: Vec<(&str, &str)> = family.samples[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("ad_account_id", "act_1"),
                ("name", "Acme ads"),
                ("currency", "EUR"),
                ("origin", "static")
            ]
        );
        assert!(info_family(PAGE_INFO, "1", &ObjectNames::default(), Origin::Discovered).is_none());
    }
}
