//! The settings of the WhatsApp read paths beyond `analytics`: pricing, conversations,
//! templates and phone-number health, as validated from a `whatsapp_business_accounts` entry.

/// Bucket sizes of `pricing_analytics` and `conversation_analytics`, which Meta spells
/// differently from `analytics` (`DAILY`, not `DAY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingGranularity {
    /// `HALF_HOUR`
    HalfHour,
    /// `DAILY`
    Daily,
    /// `MONTHLY`
    Monthly,
}

impl BillingGranularity {
    /// Every spelling, in the order messages list them.
    pub const ALL: [BillingGranularity; 3] = [
        BillingGranularity::HalfHour,
        BillingGranularity::Daily,
        BillingGranularity::Monthly,
    ];

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingGranularity::HalfHour => "HALF_HOUR",
            BillingGranularity::Daily => "DAILY",
            BillingGranularity::Monthly => "MONTHLY",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// The `analytics` granularity that cuts the same buckets.
    pub fn calendar(self) -> super::Granularity {
        match self {
            BillingGranularity::HalfHour => super::Granularity::HalfHour,
            BillingGranularity::Daily => super::Granularity::Day,
            BillingGranularity::Monthly => super::Granularity::Month,
        }
    }
}

/// Which billing field a [`BillingAnalytics`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingField {
    /// `pricing_analytics`: delivered messages and their cost (per-message pricing).
    Pricing,
    /// `conversation_analytics`: conversations and their cost (the pre-2025-07 unit).
    Conversations,
}

impl BillingField {
    /// The field name on the WABA node.
    pub fn field_name(self) -> &'static str {
        match self {
            BillingField::Pricing => "pricing_analytics",
            BillingField::Conversations => "conversation_analytics",
        }
    }

    /// The config key under a WABA entry.
    pub fn config_key(self) -> &'static str {
        match self {
            BillingField::Pricing => "pricing",
            BillingField::Conversations => "conversations",
        }
    }

    /// The dimensions Meta documents, each with the key a data point carries it under, which
    /// is also its label name.
    pub fn known_dimensions(self) -> &'static [(&'static str, &'static str)] {
        match self {
            BillingField::Pricing => &[
                ("PRICING_CATEGORY", "pricing_category"),
                ("PRICING_TYPE", "pricing_type"),
                ("COUNTRY", "country"),
                ("PHONE", "phone_number"),
                ("TIER", "tier"),
            ],
            BillingField::Conversations => &[
                ("CONVERSATION_CATEGORY", "conversation_category"),
                ("CONVERSATION_TYPE", "conversation_type"),
                ("CONVERSATION_DIRECTION", "conversation_direction"),
                ("COUNTRY", "country"),
                ("PHONE", "phone_number"),
            ],
        }
    }

    /// The dimensions asked for when the config names none.
    pub fn default_dimensions(self) -> &'static [&'static str] {
        match self {
            BillingField::Pricing => &["PRICING_CATEGORY", "PRICING_TYPE", "COUNTRY", "PHONE"],
            BillingField::Conversations => &[
                "CONVERSATION_CATEGORY",
                "CONVERSATION_TYPE",
                "CONVERSATION_DIRECTION",
                "COUNTRY",
                "PHONE",
            ],
        }
    }

    /// The optional filters: config key (also the field modifier), and the values Meta
    /// documents (empty for open sets such as phone numbers).
    pub fn filters(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            BillingField::Pricing => &[
                ("phone_numbers", &[]),
                ("country_codes", &[]),
                ("pricing_categories", CATEGORIES),
                (
                    "pricing_types",
                    &["REGULAR", "FREE_CUSTOMER_SERVICE", "FREE_ENTRY_POINT"],
                ),
            ],
            BillingField::Conversations => &[
                ("phone_numbers", &[]),
                ("country_codes", &[]),
                ("conversation_categories", CATEGORIES),
                (
                    "conversation_types",
                    &["FREE_ENTRY", "FREE_ENTRY_POINT", "FREE_TIER", "REGULAR"],
                ),
                (
                    "conversation_directions",
                    &["BUSINESS_INITIATED", "USER_INITIATED", "UNKNOWN"],
                ),
            ],
        }
    }

    /// The label an unknown dimension gets: the key Meta is most likely to send it under.
    pub fn label_of(self, dimension: &str) -> String {
        self.known_dimensions()
            .iter()
            .find(|(name, _)| *name == dimension)
            .map_or_else(
                || dimension.to_ascii_lowercase(),
                |(_, label)| (*label).to_owned(),
            )
    }
}

/// The message categories Meta documents for pricing and conversations; the example
/// responses also show `MARKETING_LITE`, so the set is open.
const CATEGORIES: &[&str] = &[
    "AUTHENTICATION",
    "AUTHENTICATION_INTERNATIONAL",
    "MARKETING",
    "MARKETING_LITE",
    "SERVICE",
    "UTILITY",
    "REFERRAL_CONVERSION",
];

/// One billing field of a WABA: `pricing` or `conversations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAnalytics {
    /// Which field.
    pub field: BillingField,
    /// Bucket size.
    pub granularity: BillingGranularity,
    /// Breakdown dimensions, as the API spells them (`PRICING_CATEGORY`), each a label.
    pub dimensions: Vec<String>,
    /// Filters as (modifier, values), in [`BillingField::filters`] order; only non-empty ones.
    pub filters: Vec<(&'static str, Vec<String>)>,
}

/// `templates`: template analytics of a WABA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSettings {
    /// Template ids; empty means every APPROVED template of the WABA.
    pub ids: Vec<String>,
    /// `metric_types`, as the API spells them (`SENT`).
    pub metrics: Vec<String>,
}

impl TemplateSettings {
    /// The metric types Meta documents, also the default.
    pub const KNOWN_METRICS: [&'static str; 5] = ["SENT", "DELIVERED", "READ", "CLICKED", "COST"];
}
