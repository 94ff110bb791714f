//! One Graph API read, described as data.
//!
//! A [`GraphRequest`] is a path relative to the versioned API root plus query parameters,
//! without any token. Keeping it as data (rather than a built URL) is what lets the client
//! send it alone today and inside a `POST /{version}/` batch call later, where each entry
//! is exactly a `relative_url`, without the pollers knowing the difference. Each request
//! also says which [`Api`] it belongs to, since the Marketing API can be pinned to another
//! version than the rest (`graph_api.marketing_version`).

use reqwest::Url;

pub use crate::catalog::versions::Api;

/// Which read path a request belongs to; a label on the request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /{page-id}/insights`
    PageInsights,
    /// `GET /{campaign-id}/insights`
    CampaignInsights,
    /// `GET /{waba-id}?fields=analytics...,pricing_analytics...,conversation_analytics...`
    WhatsappAnalytics,
    /// `GET /{waba-id}/message_templates`
    WhatsappTemplates,
    /// `GET /{waba-id}/template_analytics`
    WhatsappTemplateAnalytics,
    /// `GET /{waba-id}/phone_numbers`
    WhatsappPhoneNumbers,
    /// `GET /{phone-number-id}?fields=health_status`, where the list refuses the field
    WhatsappPhoneNumberHealth,
    /// `GET /act_{id}/insights`
    AdAccountInsights,
    /// `GET /{id}?fields=name[,currency]` of a Page, campaign or ad account
    ObjectNames,
    /// `GET /me/accounts`: the Pages a token manages
    DiscoveryPages,
    /// `GET /{business-id}/owned_whatsapp_business_accounts` and `client_...`
    DiscoveryWhatsappBusinessAccounts,
    /// `debug_token?input_token=..` inside a batch call (token health, with the app token)
    DebugToken,
}

impl Endpoint {
    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::PageInsights => "page_insights",
            Endpoint::CampaignInsights => "campaign_insights",
            Endpoint::WhatsappAnalytics => "whatsapp_analytics",
            Endpoint::WhatsappTemplates => "whatsapp_message_templates",
            Endpoint::WhatsappTemplateAnalytics => "whatsapp_template_analytics",
            Endpoint::WhatsappPhoneNumbers => "whatsapp_phone_numbers",
            Endpoint::WhatsappPhoneNumberHealth => "whatsapp_phone_number_health",
            Endpoint::AdAccountInsights => "ad_account_insights",
            Endpoint::ObjectNames => "object_names",
            Endpoint::DiscoveryPages => "discovery_pages",
            Endpoint::DiscoveryWhatsappBusinessAccounts => "discovery_whatsapp_business_accounts",
            Endpoint::DebugToken => "debug_token",
        }
    }

    /// The API family the read belongs to by its path alone. Name reads
    /// ([`Endpoint::ObjectNames`]) are the one kind that can be either, so requests carry
    /// their own [`GraphRequest::api`].
    pub fn api(self) -> Api {
        match self {
            Endpoint::CampaignInsights | Endpoint::AdAccountInsights => Api::Marketing,
            _ => Api::Graph,
        }
    }

    /// Whether the call counts against the WhatsApp Business Management limit of its WABA.
    pub fn is_whatsapp(self) -> bool {
        matches!(
            self,
            Endpoint::WhatsappAnalytics
                | Endpoint::WhatsappTemplates
                | Endpoint::WhatsappTemplateAnalytics
                | Endpoint::WhatsappPhoneNumbers
                | Endpoint::WhatsappPhoneNumberHealth
        )
    }
}

/// A GET relative to `{base_url}/{version}/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphRequest {
    /// Which read path this is.
    pub endpoint: Endpoint,
    /// Which API's version it is sent with: Marketing API versions expire years sooner.
    pub api: Api,
    /// The object the request is about, for logs.
    pub object_id: String,
    /// Path below the version, e.g. `1234/insights`.
    pub path: String,
    /// Query parameters in order; never a token.
    pub query: Vec<(&'static str, String)>,
}

impl GraphRequest {
    /// `GET /{page-id}/insights` with the given parameters.
    pub fn page_insights(page_id: &str, query: Vec<(&'static str, String)>) -> Self {
        Self {
            endpoint: Endpoint::PageInsights,
            api: Endpoint::PageInsights.api(),
            object_id: page_id.to_owned(),
            path: format!("{page_id}/insights"),
            query,
        }
    }

    /// `GET /{campaign-id}/insights` with the given parameters.
    pub fn campaign_insights(campaign_id: &str, query: Vec<(&'static str, String)>) -> Self {
        Self {
            endpoint: Endpoint::CampaignInsights,
            api: Endpoint::CampaignInsights.api(),
            object_id: campaign_id.to_owned(),
            path: format!("{campaign_id}/insights"),
            query,
        }
    }

    /// `GET /act_{id}/insights` with the given parameters; `ad_account_id` includes `act_`.
    pub fn ad_account_insights(ad_account_id: &str, query: Vec<(&'static str, String)>) -> Self {
        Self {
            endpoint: Endpoint::AdAccountInsights,
            api: Endpoint::AdAccountInsights.api(),
            object_id: ad_account_id.to_owned(),
            path: format!("{ad_account_id}/insights"),
            query,
        }
    }

    /// `GET /{id}?fields=<fields>`: names for the info series.
    pub fn object_fields(object_id: &str, fields: &str) -> Self {
        Self {
            endpoint: Endpoint::ObjectNames,
            api: Endpoint::ObjectNames.api(),
            object_id: object_id.to_owned(),
            path: object_id.to_owned(),
            query: vec![("fields", fields.to_owned())],
        }
    }

    /// `GET /{object}/{edge}` of a discovery list, at most `limit` entries a page.
    pub fn discovery_list(
        endpoint: Endpoint,
        object_id: &str,
        edge: &str,
        fields: &str,
        limit: usize,
    ) -> Self {
        Self {
            endpoint,
            api: endpoint.api(),
            object_id: object_id.to_owned(),
            path: format!("{object_id}/{edge}"),
            query: vec![("fields", fields.to_owned()), ("limit", limit.to_string())],
        }
    }

    /// `GET /{waba-id}?fields=<field expressions, comma-separated>`.
    pub fn whatsapp_analytics(waba_id: &str, fields: String) -> Self {
        Self {
            endpoint: Endpoint::WhatsappAnalytics,
            api: Endpoint::WhatsappAnalytics.api(),
            object_id: waba_id.to_owned(),
            path: waba_id.to_owned(),
            query: vec![("fields", fields)],
        }
    }

    /// `GET /{waba-id}/{edge}` of a WhatsApp Business Account (`message_templates`,
    /// `template_analytics`, `phone_numbers`) with the given parameters.
    pub fn whatsapp_edge(
        endpoint: Endpoint,
        waba_id: &str,
        edge: &str,
        query: Vec<(&'static str, String)>,
    ) -> Self {
        Self {
            endpoint,
            api: endpoint.api(),
            object_id: waba_id.to_owned(),
            path: format!("{waba_id}/{edge}"),
            query,
        }
    }

    /// `GET /{phone-number-id}?fields=<fields>` of a number of account `waba_id`: the call
    /// counts against that account's WhatsApp budget and is logged as its.
    pub fn whatsapp_phone_number(waba_id: &str, phone_number_id: &str, fields: &str) -> Self {
        Self {
            endpoint: Endpoint::WhatsappPhoneNumberHealth,
            api: Endpoint::WhatsappPhoneNumberHealth.api(),
            object_id: waba_id.to_owned(),
            path: phone_number_id.to_owned(),
            query: vec![("fields", fields.to_owned())],
        }
    }

    /// The same read sent with `api`'s version: for a name read of a campaign or ad account.
    pub fn in_api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// The same request for the page after `cursor` of a list edge: Graph's `paging.next`
    /// link is not followed as given, since it can carry the token in its query string.
    pub fn after(&self, cursor: &str) -> Self {
        let mut next = self.clone();
        next.query.retain(|(name, _)| *name != "after");
        next.query.push(("after", cursor.to_owned()));
        next
    }

    /// The full URL below `api_root` (which ends with the version).
    pub fn url(&self, api_root: &Url) -> Result<Url, url_error::UrlError> {
        let mut url = api_root
            .join(&self.path)
            .map_err(|e| url_error::UrlError(format!("path {:?}: {e}", self.path)))?;
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Ok(url)
    }

    /// The `relative_url` of this request inside a batch call.
    pub fn relative_url(&self) -> String {
        let mut query = Url::parse("http://batch.invalid/").map_or_else(
            |_| String::new(),
            |mut url| {
                url.query_pairs_mut().extend_pairs(&self.query);
                url.query().unwrap_or_default().to_owned()
            },
        );
        if query.is_empty() {
            self.path.clone()
        } else {
            query.insert(0, '?');
            format!("{}{query}", self.path)
        }
    }
}

/// Error type for URL building, kept separate so it can be turned into a `GraphError`.
pub mod url_error {
    /// A request path that does not form a URL.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot build the request URL: {0}")]
    pub struct UrlError(pub String);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_and_appended_after_the_version() {
        let request = GraphRequest::page_insights(
            "123",
            vec![("metric", "a,b".into()), ("breakdown", "x y".into())],
        );
        let root = Url::parse("https://graph.facebook.com/v23.0/").expect("static url");
        let url = request.url(&root).expect("valid");
        assert_eq!(
            url.as_str(),
            "https://graph.facebook.com/v23.0/123/insights?metric=a%2Cb&breakdown=x+y"
        );
        assert_eq!(
            request.relative_url(),
            "123/insights?metric=a%2Cb&breakdown=x+y"
        );
    }

    #[test]
    fn whatsapp_requests_read_the_account_node() {
        let request = GraphRequest::whatsapp_analytics("999", "analytics.start(1)".into());
        assert_eq!(request.relative_url(), "999?fields=analytics.start%281%29");
    }
}
