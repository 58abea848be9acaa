//! The rule language as written in YAML: mapping files, rows, field specs, transforms, conditions.
//!
//! These types are the single source of truth for the language: serde reads them, schemars turns them
//! into `schemas/mapping.schema.json`, and [`super::compile`] turns them into an evaluation plan.
//! Doc comments here become the schema's descriptions, which editors show on hover.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A mapping file: which source events become which destination events, and how their fields are
/// built. `mappings/tiktok.yaml` is the TikTok destination's default.
///
/// A row's payload is built from the templates in `defaults.use`, then those in the row's `use`,
/// then the row's own `fields`; a later definition of a field replaces an earlier one.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    /// What this mapping is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Settings that apply to every row.
    #[serde(default)]
    pub defaults: MappingDefaults,
    /// Named, reusable sets of fields. A row lists the templates it builds on in `use`.
    #[serde(default)]
    pub templates: IndexMap<String, FieldMap>,
    /// The mapping rows, one per source event → destination event.
    pub rows: Vec<Row>,
}

/// Settings that apply to every row of a mapping file (and to a destination's custom events).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingDefaults {
    /// Templates every row builds on (custom events included), before its own `use`.
    #[serde(default, rename = "use")]
    pub use_templates: Vec<String>,
}

/// Target field → how to build it. Keys are dotted paths into the destination payload
/// (`user.email`, `properties.value`); a later template or the row's own fields override earlier ones.
pub type FieldMap = IndexMap<String, FieldSpec>;

/// One mapping row: a source event becomes a destination event.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// The source event name (`Placed Order`, or any custom event name).
    pub source: String,
    /// The destination event name (`Purchase`, or any custom name the platform accepts).
    pub target: String,
    /// The target is a custom event of the platform, on purpose: `validate` does not warn that it
    /// is not one of the platform's standard event names.
    #[serde(default)]
    pub custom: bool,
    /// Where the event is sent from: the browser, the server, or both.
    #[serde(default)]
    pub mode: Mode,
    /// Switch the row off without deleting it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only events that meet this condition yield this row's event.
    #[serde(default)]
    pub when: Option<Condition>,
    /// More templates to build on, in order, after the file's `defaults.use`.
    #[serde(default, rename = "use")]
    pub use_templates: Option<Vec<String>>,
    /// Fields of this row, on top of its templates.
    #[serde(default)]
    pub fields: FieldMap,
}

fn yes() -> bool {
    true
}

/// Where a row's event is sent from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Only the browser pixel.
    Client,
    /// Only the platform's server API.
    Server,
    /// Both, de-duplicated by the platform on the shared `event_id`.
    #[default]
    ClientAndServer,
}

impl Mode {
    pub fn includes_client(self) -> bool {
        matches!(self, Mode::Client | Mode::ClientAndServer)
    }
    pub fn includes_server(self) -> bool {
        matches!(self, Mode::Server | Mode::ClientAndServer)
    }
}

/// How a field is built. A plain string is a JSONPath into the event (`"$.properties.currency"`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FieldSpec {
    /// A JSONPath into the event; inside `each`, into the current item.
    Path(String),
    /// A field with transforms, defaults, conditions or nested items.
    Rule(Box<FieldRule>),
}

/// A field built from exactly one of `path`, `const`, `first_of` or `each`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// A JSONPath into the event (inside `each`: into the current item). The first node found is used.
    #[serde(default)]
    pub path: Option<String>,
    /// A fixed value.
    #[serde(default, rename = "const")]
    pub constant: Option<Value>,
    /// Candidates tried in order; the first that yields a value wins.
    #[serde(default)]
    pub first_of: Option<Vec<FieldSpec>>,
    /// Candidates whose values are all kept (arrays flattened), each through `transform`, without
    /// repeats, at most `ALL_OF_MAX` (10): one value is sent as is, several as a list (for
    /// platforms that accept several identities, e.g. two e-mails).
    #[serde(default)]
    pub all_of: Option<Vec<FieldSpec>>,
    /// A JSONPath whose every node becomes one item of an array built from `fields`
    /// (`$.properties.items[*]` for each item, `$.properties` for the one product of the event).
    #[serde(default)]
    pub each: Option<String>,
    /// With `each`: the fields of each item, with paths relative to the item (`$.price`).
    #[serde(default)]
    pub fields: Option<FieldMap>,
    /// Transforms applied in order to the value found.
    #[serde(default)]
    pub transform: Vec<Transform>,
    /// Used when nothing is found (or a transform leaves nothing).
    #[serde(default)]
    pub default: Option<Value>,
    /// Only build this field when the condition holds (evaluated on the whole event).
    #[serde(default)]
    pub when: Option<Condition>,
}

/// A built-in transform. Write the name alone (`sha256`) or, for those that take an argument, as a
/// one-key map (`{ query_param: ttclid }`). A transform that cannot apply leaves the field out and
/// records a warning in the output; it never fails the event.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Remove leading and trailing white space.
    Trim,
    /// Lower-case.
    Lower,
    /// Upper-case.
    Upper,
    /// SHA-256, lower-case hex. A value that already is a SHA-256 hex digest is kept as is.
    Sha256,
    /// A phone number to E.164 (`+`, country code, national number), checked by a phone-number
    /// library: an international number (`+` or `00`) as written; a national number in the event's
    /// country (`$country_code` in profile properties, then in event properties), else the
    /// destination's `default_country`. A number that is not valid there is left out, with a
    /// warning. A value that already is a SHA-256 hex digest passes as it is.
    E164,
    /// An ISO 4217 currency code, upper-cased (`eur` → `EUR`); anything else is left out, with a
    /// warning.
    Currency,
    /// An ISO 3166-1 alpha-2 country code, upper-cased (`fr` → `FR`); anything else (`France`,
    /// `FRA`) is left out, with a warning.
    Country,
    /// An ISO-8601 time with a timezone, or epoch seconds, to unix seconds.
    UnixSeconds,
    /// To a number (numeric strings such as `"12.50"` included).
    Number,
    /// To a whole number (numeric strings included; fractions are rounded).
    Integer,
    /// To a string (numbers and booleans are written out).
    String,
    /// Pick the content id of a product object by the destination's `content_id` mode.
    ContentId,
    /// The catalog content type of a product object: `product` when its content id is a variant or
    /// SKU, the destination's `product_id_content_type` when it is the `product_id`.
    ContentType,
    /// Compute the conversion amount of an order or product object by the destination's
    /// `conversion_amount` setting.
    ConversionAmount,
    /// The value of a query parameter of a URL.
    QueryParam(String),
    /// From an array of aliases (`urn:<kind>:<value>`), the value of the first of this kind.
    Alias(String),
    /// From an array of aliases, the values of every alias of this kind, as an array.
    Aliases(String),
    /// Replace every occurrence of `from` with `to` in text (`{ replace: { from: "-", to: "_" } }`).
    Replace(Replacement),
    /// Remove a prefix (a value without it is kept as is).
    StripPrefix(String),
    /// Replace a value found in the table (keys are the values written as strings); others pass.
    Lookup(IndexMap<String, Value>),
}

/// The argument of the `replace` transform.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// The text to replace (not empty).
    #[schemars(length(min = 1))]
    pub from: String,
    /// What replaces it (may be empty, to remove it).
    pub to: String,
}

/// Which product id becomes the content id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentIdMode {
    /// `variant_id` if present, otherwise `product_id`.
    #[default]
    Default,
    /// Always `product_id`.
    ProductId,
    /// Always `variant_id`.
    VariantId,
    /// Always `sku`.
    Sku,
}

/// The catalog content type a `product_id` stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductIdContentType {
    /// A product (catalogs whose items are whole products; TikTok's usual default).
    #[default]
    Product,
    /// A product group (catalogs whose items are variants, grouped by the product id).
    ProductGroup,
}

impl ProductIdContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductGroup => "product_group",
            Self::Product => "product",
        }
    }
}

/// Which amount becomes the conversion value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversionAmount {
    /// `total_price` as sent (tax and shipping included).
    #[default]
    Total,
    /// `total_price - total_tax`.
    TotalExclTax,
    /// `total_price - total_shipping`.
    TotalExclShipping,
    /// `total_price - total_tax - total_shipping`.
    TotalExclTaxAndShipping,
    /// The sum of `price × quantity` over `items[]`.
    Subtotal,
}

/// A condition on the event: a comparison, or `all` / `any` / `not` of conditions.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Condition {
    All(AllOf),
    Any(AnyOf),
    Not(NotOf),
    Compare(Comparison),
}

/// True when every condition holds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllOf {
    /// The conditions that must all hold (at least one: an empty list would always hold).
    #[schemars(length(min = 1))]
    pub all: Vec<Condition>,
}

/// True when at least one condition holds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnyOf {
    /// The conditions of which at least one must hold (at least one: an empty list would never
    /// hold).
    #[schemars(length(min = 1))]
    pub any: Vec<Condition>,
}

/// True when the condition does not hold.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotOf {
    pub not: Box<Condition>,
}

/// Compares what a JSONPath finds in the event with a value. When the path finds several nodes,
/// the comparison holds if it holds for any of them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// A JSONPath into the event (`$.properties.total_price`).
    pub path: String,
    /// The operator.
    pub op: Operator,
    /// The value to compare with (not used by `exists` / `not_exists`; an array for `in` / `not_in`;
    /// a number for `gt`, `gte`, `lt`, `lte`; a regular expression for `matches`).
    #[serde(default)]
    pub value: Option<Value>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    NotExists,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    Matches,
}
