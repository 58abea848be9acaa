//! Built-in transforms, compiled: arguments checked and prepared at load, applied per value.
//!
//! A transform returns the new value, `None` when there is nothing to send (an empty string, a missing
//! query parameter), or an error message when the value cannot be transformed. Messages never hold
//! the value itself: it may be personal data.

use super::condition::as_number;
use super::field_types::FieldType;
use super::phone::{Country, to_e164};
use super::spec::{ContentIdMode, ConversionAmount, ProductIdContentType, Transform};
use crate::event::parse_timestamp;
use crate::text::{number_text, trim};
use indexmap::IndexMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Destination settings that some transforms and field plans read, fixed at compile time.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileContext {
    pub content_id: ContentIdMode,
    pub conversion_amount: ConversionAmount,
    /// The country of national phone numbers when the event names none.
    pub default_country: Option<Country>,
    /// The content type of a content id that is a `product_id`.
    pub product_id_content_type: ProductIdContentType,
    /// The types the platform takes at the fields of its event object ([`FieldType::at`]): each
    /// field plan of a typed field checks its values against its type. `None`: nothing checked.
    pub field_types: Option<&'static [(&'static str, FieldType)]>,
}

/// A transform ready to apply.
#[derive(Debug, Clone)]
pub enum CompiledTransform {
    Trim,
    Lower,
    Upper,
    Sha256,
    E164(Option<Country>),
    Currency,
    Country,
    UnixSeconds,
    Number,
    Integer,
    String,
    ContentId(ContentIdMode),
    ContentType(ContentIdMode, ContentKinds),
    ConversionAmount(ConversionAmount),
    QueryParam(Box<str>),
    /// The prefix `urn:<kind>:`.
    Alias(Box<str>),
    /// The prefix `urn:<kind>:`, every alias of it.
    Aliases(Box<str>),
    Replace(Box<str>, Box<str>),
    StripPrefix(Box<str>),
    Lookup(IndexMap<String, Value>),
}

pub type Outcome<'a> = Result<Option<Cow<'a, Value>>, &'static str>;

impl CompiledTransform {
    /// The type of every value the transform gives, when it is always the same: text or a number.
    /// A field whose last transform gives the type its platform takes needs no check per event.
    pub fn gives(&self) -> Option<FieldType> {
        match self {
            Self::Sha256
            | Self::E164(_)
            | Self::Currency
            | Self::Country
            | Self::String
            | Self::ContentId(_)
            | Self::ContentType(..)
            | Self::QueryParam(_) => Some(FieldType::Text),
            Self::UnixSeconds | Self::Number | Self::Integer | Self::ConversionAmount(_) => {
                Some(FieldType::Number)
            }
            // Text transforms pass other values as they are; the others give any value.
            Self::Trim
            | Self::Lower
            | Self::Upper
            | Self::Replace(..)
            | Self::StripPrefix(_)
            | Self::Alias(_)
            | Self::Aliases(_)
            | Self::Lookup(_) => None,
        }
    }

    pub fn compile(spec: &Transform, ctx: CompileContext) -> Self {
        match spec {
            Transform::Trim => Self::Trim,
            Transform::Lower => Self::Lower,
            Transform::Upper => Self::Upper,
            Transform::Sha256 => Self::Sha256,
            Transform::E164 => Self::E164(ctx.default_country),
            Transform::Currency => Self::Currency,
            Transform::Country => Self::Country,
            Transform::UnixSeconds => Self::UnixSeconds,
            Transform::Number => Self::Number,
            Transform::Integer => Self::Integer,
            Transform::String => Self::String,
            Transform::ContentId => Self::ContentId(ctx.content_id),
            Transform::ContentType => {
                let kinds = ContentKinds::new(ctx.product_id_content_type);
                Self::ContentType(ctx.content_id, kinds)
            }
            Transform::ConversionAmount => Self::ConversionAmount(ctx.conversion_amount),
            Transform::QueryParam(name) => Self::QueryParam(name.as_str().into()),
            Transform::Alias(kind) => Self::Alias(format!("urn:{kind}:").into()),
            Transform::Aliases(kind) => Self::Aliases(format!("urn:{kind}:").into()),
            Transform::Replace(r) => Self::Replace(r.from.as_str().into(), r.to.as_str().into()),
            Transform::StripPrefix(p) => Self::StripPrefix(p.as_str().into()),
            Transform::Lookup(table) => Self::Lookup(table.clone()),
        }
    }

    /// Applies the transform to `v`, a value of `event` (the source event, which `e164` reads its
    /// country from). Inlined into `FieldPlan::transform`, its one caller per event (measured:
    /// called out of line, `map` counted 0.12 k more instructions per event).
    #[inline(always)]
    pub fn apply<'a>(&'a self, v: Cow<'a, Value>, event: &Value) -> Outcome<'a> {
        match self {
            Self::Trim => map_str(v, |s| {
                let t = trim(s);
                (t.len() != s.len()).then(|| t.to_owned())
            }),
            Self::Lower => map_str(v, |s| {
                s.chars().any(char::is_uppercase).then(|| s.to_lowercase())
            }),
            Self::Upper => map_str(v, |s| {
                s.chars().any(char::is_lowercase).then(|| s.to_uppercase())
            }),
            Self::Sha256 => sha256(&v),
            Self::E164(default) => e164(&v, Country::of_event(event).or(*default)),
            Self::Currency => currency(&v),
            Self::Country => country(&v),
            Self::UnixSeconds => parse_timestamp(&v)
                .map(|s| Some(Cow::Owned(Value::from(s))))
                .map_err(|_| "not an ISO-8601 time with a timezone or epoch seconds"),
            Self::Number => to_number(v),
            Self::Integer => to_integer(&v),
            Self::String => to_string(v),
            Self::ContentId(mode) => content_id(v, *mode),
            Self::ContentType(mode, kinds) => content_type(&v, *mode, kinds),
            Self::ConversionAmount(mode) => conversion_amount(&v, *mode),
            Self::QueryParam(name) => query_param(&v, name),
            Self::Alias(prefix) => alias(&v, prefix),
            Self::Aliases(prefix) => aliases(&v, prefix),
            Self::Replace(from, to) => {
                map_str(v, |s| s.contains(&**from).then(|| s.replace(&**from, to)))
            }
            Self::StripPrefix(p) => map_str(v, |s| s.strip_prefix(&**p).map(str::to_owned)),
            Self::Lookup(table) => lookup(v, table),
        }
    }
}

/// Applies `f` to a string value; `f` returns `None` when the string stays as it is. Other values
/// pass unchanged.
fn map_str<'a>(v: Cow<'a, Value>, f: impl FnOnce(&str) -> Option<String>) -> Outcome<'a> {
    let changed = match v.as_ref() {
        Value::String(s) => f(s),
        _ => None,
    };
    Ok(Some(match changed {
        Some(s) => Cow::Owned(Value::String(s)),
        None => v,
    }))
}

/// Numbers ([`number_text`]) and booleans written out; strings as they are; `None` for `null`,
/// arrays and objects, and the reason for a number whose digits cannot be known.
fn scalar_text(v: &Value) -> Option<Result<Cow<'_, str>, &'static str>> {
    match v {
        Value::String(s) => Some(Ok(Cow::Borrowed(s))),
        Value::Number(n) => Some(number_text(n).map(Cow::Owned)),
        Value::Bool(b) => Some(Ok(Cow::Borrowed(if *b { "true" } else { "false" }))),
        _ => None,
    }
}

/// Whether `s` already is a SHA-256 digest: 64 hex digits, in either case (some shops hash in
/// upper case).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The SHA-256 digest of the empty text: a key that matches no one, never sent.
const EMPTY_TEXT_DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Whether `s` is the SHA-256 digest of the empty text (in either case): a key that stands for no
/// value at all.
pub fn is_empty_text_digest(s: &str) -> bool {
    s.eq_ignore_ascii_case(EMPTY_TEXT_DIGEST)
}

/// A digest passed on as it is, in the lower case TikTok matches on: never hashed twice. The
/// digest of the empty text is refused: it stands for no value at all.
fn digest_as_is<'a>(s: &str) -> Outcome<'a> {
    if is_empty_text_digest(s) {
        return Err("a SHA-256 digest of an empty text (it matches no one)");
    }
    Ok(Some(Cow::Owned(Value::String(s.to_ascii_lowercase()))))
}

fn sha256<'a>(v: &Value) -> Outcome<'a> {
    // `true` is no e-mail, phone or id: hashing the word would send a key that matches no one.
    if v.is_boolean() {
        return Err("only text or a number can be hashed, not true or false");
    }
    let text = scalar_text(v).ok_or("only text can be hashed")??;
    if text.is_empty() {
        return Ok(None);
    }
    if is_sha256_hex(&text) {
        return digest_as_is(&text);
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = [0u8; 64];
    hex::encode_to_slice(digest, &mut hex).map_err(|_| "hash encoding failed")?;
    let hex = std::str::from_utf8(&hex).map_err(|_| "hash encoding failed")?;
    Ok(Some(Cow::Owned(Value::String(hex.to_owned()))))
}

fn e164<'a>(v: &Value, country: Option<Country>) -> Outcome<'a> {
    let text = scalar_text(v).ok_or("not a phone number")??;
    let text = trim(&text);
    if text.is_empty() {
        return Ok(None);
    }
    if is_sha256_hex(text) {
        return digest_as_is(text);
    }
    let e164 = to_e164(text, country)?;
    Ok(Some(Cow::Owned(Value::String(e164))))
}

fn currency<'a>(v: &Value) -> Outcome<'a> {
    let text = trim(v.as_str().ok_or("not a currency code")?);
    if text.is_empty() {
        return Ok(None);
    }
    let code = text.to_ascii_uppercase();
    match iso_currency::Currency::from_code(&code) {
        Some(_) => Ok(Some(Cow::Owned(Value::String(code)))),
        None => Err("not an ISO 4217 currency code"),
    }
}

// Out of line (as `to_integer`): `apply` then stays small enough to be inlined where it is called.
#[inline(never)]
fn country<'a>(v: &Value) -> Outcome<'a> {
    let text = trim(v.as_str().ok_or("not a country code")?);
    if text.is_empty() {
        return Ok(None);
    }
    let code = text.to_ascii_uppercase();
    match code.parse::<iso_country::Country>() {
        Ok(iso_country::Country::Unspecified) | Err(_) => {
            Err("not an ISO 3166-1 alpha-2 country code")
        }
        Ok(_) => Ok(Some(Cow::Owned(Value::String(code)))),
    }
}

/// [`as_number`], rounded to a whole number; one past `i64` is refused, not clamped.
#[inline(never)]
fn to_integer<'a>(v: &Value) -> Outcome<'a> {
    if let Some(i) = v.as_i64() {
        return Ok(Some(Cow::Owned(Value::from(i))));
    }
    let n = as_number(v).ok_or("not a number")?.round();
    // `i64::MAX as f64` is 2^63, itself past i64: the range is [-2^63, 2^63).
    if n < i64::MIN as f64 || n >= i64::MAX as f64 {
        return Err("too large for a whole number");
    }
    Ok(Some(Cow::Owned(Value::from(n as i64))))
}

fn to_number<'a>(v: Cow<'a, Value>) -> Outcome<'a> {
    let number = if v.is_number() {
        v
    } else {
        let s = trim(v.as_str().ok_or("not a number")?);
        if s.is_empty() {
            return Ok(None);
        }
        Cow::Owned(crate::text::number(s).ok_or("not a number")?)
    };
    // `-0` (a float to serde_json) is sent as `0.0`: a platform reads no sign into nothing.
    match number.as_f64() {
        Some(f) if f == 0.0 && f.is_sign_negative() => Ok(Some(Cow::Owned(Value::from(0.0)))),
        _ => Ok(Some(number)),
    }
}

fn to_string<'a>(v: Cow<'a, Value>) -> Outcome<'a> {
    match v.as_ref() {
        Value::String(_) => Ok(Some(v)),
        other => {
            let text =
                scalar_text(other).ok_or("only numbers, booleans and strings become strings")??;
            Ok(Some(Cow::Owned(Value::String(text.into_owned()))))
        }
    }
}

/// A product's id field as text, trimmed, with the field's own value; `None` when missing or
/// blank. The text is borrowed from the product unless it is a number or a boolean (written out,
/// never blank); a number whose digits cannot be known gives the reason instead.
fn id_field<'v>(product: &'v Value, field: &str) -> Option<(&'v Value, IdText<'v>)> {
    let own = product.get(field)?;
    let text = match scalar_text(own)? {
        Ok(Cow::Borrowed(text)) => Some(trim(text))
            .filter(|t| !t.is_empty())
            .map(|t| Ok(Cow::Borrowed(t)))?,
        written => written,
    };
    Some((own, text))
}

/// An id's text, or why it has none that can be sent.
type IdText<'v> = Result<Cow<'v, str>, &'static str>;

/// The id field `mode` picks from a product: its name, its own value and its text.
type PickedId<'v> = (&'static str, &'v Value, IdText<'v>);

/// The id field `mode` picks from a product.
fn picked_id(v: &Value, mode: ContentIdMode) -> Option<PickedId<'_>> {
    let pick = |field: &'static str| id_field(v, field).map(|(own, id)| (field, own, id));
    match mode {
        ContentIdMode::Default => pick("variant_id").or_else(|| pick("product_id")),
        ContentIdMode::ProductId => pick("product_id"),
        ContentIdMode::VariantId => pick("variant_id"),
        ContentIdMode::Sku => pick("sku"),
    }
}

fn content_id<'a>(v: Cow<'a, Value>, mode: ContentIdMode) -> Outcome<'a> {
    if !v.is_object() {
        return Err("content_id needs a product object (use `path: $` inside `each`)");
    }
    Ok(match v {
        // An id the product holds as a string with nothing to trim is sent as the product has
        // it: borrowed, not copied.
        Cow::Borrowed(product) => match picked_id(product, mode) {
            Some((_, own, id)) => Some(match (own.as_str(), id?) {
                (Some(text), id) if text.len() == id.len() => Cow::Borrowed(own),
                (_, id) => made_id(id),
            }),
            None => None,
        },
        Cow::Owned(product) => match picked_id(&product, mode) {
            Some((_, _, id)) => Some(made_id(id?)),
            None => None,
        },
    })
}

/// A content id made anew: trimmed, or a number or boolean written out.
fn made_id<'a>(id: Cow<'_, str>) -> Cow<'a, Value> {
    Cow::Owned(Value::String(id.into_owned()))
}

/// The two values `content_type` sends, made once at load: the one for a product picked by its
/// `product_id` (`product_group` or `product`, as the destination is set), and `product` for a
/// product picked by another id.
#[derive(Debug, Clone)]
pub struct ContentKinds {
    of_product_id: Value,
    of_others: Value,
}

impl ContentKinds {
    fn new(of_product_id: ProductIdContentType) -> Self {
        Self {
            of_product_id: Value::from(of_product_id.as_str()),
            of_others: Value::from("product"),
        }
    }
}

fn content_type<'a>(v: &Value, mode: ContentIdMode, kinds: &'a ContentKinds) -> Outcome<'a> {
    if !v.is_object() {
        return Err("content_type needs a product object (use `path: $` inside `each`)");
    }
    // An id that cannot be sent (its `content_id` is left out with the reason) gets no type.
    let sendable = picked_id(v, mode).filter(|(_, _, id)| id.is_ok());
    Ok(sendable.map(|(field, _, _)| {
        Cow::Borrowed(if field == "product_id" {
            &kinds.of_product_id
        } else {
            &kinds.of_others
        })
    }))
}

/// The number at `field` of `obj`: `None` when the field is missing, `null` or blank; the error
/// `bad` when it holds anything else that is not a number (`"12,50"`, `"NaN"`, `true`), so that an
/// amount is never computed from part of its inputs.
fn num(obj: &Value, field: &str, bad: &'static str) -> Result<Option<f64>, &'static str> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if trim(s).is_empty() => Ok(None),
        Some(v) => as_number(v).map(Some).ok_or(bad),
    }
}

/// A tax or shipping amount taken off a total: 0 when missing.
fn deduction(obj: &Value, field: &str, bad: &'static str) -> Result<f64, &'static str> {
    Ok(num(obj, field, bad)?.unwrap_or(0.0))
}

/// `price × quantity` of one product (quantity defaults to 1); `None` without a price.
fn line_amount(product: &Value) -> Result<Option<f64>, &'static str> {
    let Some(price) = num(product, "price", "`price` is not a number")? else {
        return Ok(None);
    };
    let quantity = num(product, "quantity", "`quantity` is not a number")?;
    // A quantity `integer` refuses for `contents` is refused here too: no value computed from it.
    if quantity.is_some_and(|q| q.round() >= i64::MAX as f64 || q.round() < i64::MIN as f64) {
        return Err("`quantity` is too large for a whole number");
    }
    Ok(Some(price * quantity.unwrap_or(1.0)))
}

/// The sum of the line amounts of `items[]`; `None` when no item has a price.
fn items_subtotal(obj: &Value) -> Result<Option<f64>, &'static str> {
    let Some(items) = obj.get("items").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut sum = None;
    for item in items {
        if let Some(amount) = line_amount(item)? {
            *sum.get_or_insert(0.0) += amount;
        }
    }
    Ok(sum)
}

/// Rounds away binary noise (59.970000000000006 → 59.97) without touching real precision.
fn tidy(amount: f64) -> f64 {
    // From 2^53 / 1e6 (~9.0e9) `amount * 1e6` is rounded already, and rounding it again would
    // move the amount (223766421971.75 → 223766421971.75003); far above, it could overflow.
    if amount.abs() >= 9.0e9 {
        return amount;
    }
    (amount * 1e6).round() / 1e6
}

fn conversion_amount<'a>(v: &Value, mode: ConversionAmount) -> Outcome<'a> {
    if !v.is_object() {
        return Err("conversion_amount needs the properties object (`path: $.properties`)");
    }
    let amount = match num(v, "total_price", "`total_price` is not a number")? {
        Some(total) => {
            let tax = || deduction(v, "total_tax", "`total_tax` is not a number");
            let shipping = || deduction(v, "total_shipping", "`total_shipping` is not a number");
            match mode {
                ConversionAmount::Total => Some(total),
                ConversionAmount::TotalExclTax => Some(total - tax()?),
                ConversionAmount::TotalExclShipping => Some(total - shipping()?),
                ConversionAmount::TotalExclTaxAndShipping => Some(total - tax()? - shipping()?),
                ConversionAmount::Subtotal => items_subtotal(v)?,
            }
        }
        // A single product (Viewed Product, Added To Cart), else a list of items.
        None => match line_amount(v)? {
            Some(amount) => Some(amount),
            None => items_subtotal(v)?,
        },
    };
    match amount {
        // JSON has no infinity: `Value::from` would make it `null`, and the value would go
        // missing without a word.
        Some(a) if !a.is_finite() => Err("the amount is too large for a number"),
        // Checked once rounded: `19.99 - 9.99 - 10` is -1.8e-15 before, 0 after. `+ 0.0` turns
        // `-0.0` (from `0 × -1`) into `0.0`: no minus sign is sent.
        Some(a) => match tidy(a) + 0.0 {
            // A total below 0, tax and shipping past it, a price or quantity below 0: no
            // conversion is worth less than nothing, and such a value would take from the revenue
            // reported.
            a if a < 0.0 => Err(
                "the amount is below 0: a conversion is worth 0 or more, and a refund is an event \
                 of its own",
            ),
            a => Ok(Some(Cow::Owned(Value::from(a)))),
        },
        None => Ok(None),
    }
}

/// The query string of a URL is all that is read: the text after `?`, up to any `#`, decoded as
/// `application/x-www-form-urlencoded`. No full URL parse per event.
fn query_param<'a>(v: &Value, name: &str) -> Outcome<'a> {
    let Some(text) = v.as_str() else {
        return Err("not a URL");
    };
    // Byte searches (`?` and `#` are ASCII): `split_once` with a `char` costs some 150
    // instructions on a URL this short.
    // The fragment (from `#`) is cut first: a `?` inside it starts no query.
    let at = |text: &str, byte: u8| text.bytes().position(|b| b == byte);
    let text = at(text, b'#').map_or(text, |end| &text[..end]);
    let Some(start) = at(text, b'?') else {
        return Ok(None);
    };
    let query = &text[start + 1..];
    let found = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name);
    let Some((_, value)) = found.filter(|(_, v)| !v.is_empty()) else {
        return Ok(None);
    };
    // Decoding puts U+FFFD for bytes that are not UTF-8 (`%FF`): such a value is not the one sent.
    // Only a value that was decoded (owned) can hold one that the query did not.
    if let Cow::Owned(decoded) = &value
        && decoded.contains('\u{fffd}')
        && !query.contains('\u{fffd}')
    {
        return Err("its value, percent-decoded, is not UTF-8 text (such as `%FF`)");
    }
    Ok(Some(Cow::Owned(Value::String(value.into_owned()))))
}

fn alias<'a>(v: &Value, prefix: &str) -> Outcome<'a> {
    let aliases = v
        .as_array()
        .ok_or("alias needs the aliases array (`path: $.aliases`)")?;
    Ok(aliases
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| Cow::Owned(Value::String(rest.to_owned()))))
}

fn aliases<'a>(v: &Value, prefix: &str) -> Outcome<'a> {
    let aliases = v
        .as_array()
        .ok_or("aliases needs the aliases array (`path: $.aliases`)")?;
    let values: Vec<Value> = aliases
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|a| a.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| Value::String(rest.to_owned()))
        .collect();
    Ok((!values.is_empty()).then_some(Cow::Owned(Value::Array(values))))
}

fn lookup<'a>(v: Cow<'a, Value>, table: &IndexMap<String, Value>) -> Outcome<'a> {
    // A number whose digits cannot be known matches no key: it passes on as it is.
    let hit = match scalar_text(&v) {
        Some(Ok(key)) => table.get(key.as_ref()),
        _ => None,
    };
    Ok(Some(match hit {
        Some(replacement) => Cow::Owned(replacement.clone()),
        None => v,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: CompiledTransform, v: Value) -> Result<Option<Value>, &'static str> {
        run_in(t, v, &Value::Null)
    }

    /// `t` on `v`, a value of `event`.
    fn run_in(
        t: CompiledTransform,
        v: Value,
        event: &Value,
    ) -> Result<Option<Value>, &'static str> {
        t.apply(Cow::Owned(v), event)
            .map(|o| o.map(Cow::into_owned))
    }

    #[test]
    fn an_email_of_invisible_characters_is_no_value_and_around_one_they_are_cut() {
        let email = |text: &str| {
            let trimmed = run(CompiledTransform::Trim, json!(text)).unwrap();
            run(CompiledTransform::Sha256, trimmed.unwrap_or(json!(text))).unwrap()
        };
        for blank in ["\u{200b}", "\u{0}", " \u{feff}\u{7f} "] {
            assert_eq!(email(blank), None, "{blank:?}");
        }
        let plain = email("jane@example.com");
        assert!(plain.is_some());
        for around in ["jane@example.com\u{200b}", "\u{feff}jane@example.com\u{0}"] {
            assert_eq!(email(around), plain, "{around:?}");
        }
    }

    #[test]
    fn sha256_matches_known_digests() {
        // printf 'jane@example.com' | sha256sum
        assert_eq!(
            run(CompiledTransform::Sha256, json!("jane@example.com")).unwrap(),
            Some(json!(
                "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"
            ))
        );
        // printf '+14155550100' | sha256sum
        assert_eq!(
            run(CompiledTransform::Sha256, json!("+14155550100")).unwrap(),
            Some(json!(
                "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0"
            ))
        );
        assert_eq!(run(CompiledTransform::Sha256, json!("")).unwrap(), None);
        let hashed = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d";
        assert_eq!(
            run(CompiledTransform::Sha256, json!(hashed)).unwrap(),
            Some(json!(hashed))
        );
        // A digest in upper case is the same digest: passed on in lower case, not hashed again.
        let upper = hashed.to_ascii_uppercase();
        assert_eq!(
            run(CompiledTransform::Sha256, json!(upper)).unwrap(),
            Some(json!(hashed))
        );
        assert_eq!(
            run(CompiledTransform::Sha256, json!(true)),
            Err("only text or a number can be hashed, not true or false")
        );
        // The digest of "" (printf '' | sha256sum), in either case, is no value to send.
        for empty in [
            EMPTY_TEXT_DIGEST.to_owned(),
            EMPTY_TEXT_DIGEST.to_ascii_uppercase(),
        ] {
            for t in [CompiledTransform::Sha256, CompiledTransform::E164(None)] {
                assert_eq!(
                    run(t, json!(empty)),
                    Err("a SHA-256 digest of an empty text (it matches no one)")
                );
            }
        }
        // 64 characters that are not all hex are hashed.
        let not_hex = format!("{}g", &hashed[..63]);
        assert_ne!(
            run(CompiledTransform::Sha256, json!(not_hex)).unwrap(),
            Some(json!(not_hex))
        );
    }

    #[test]
    fn a_phone_already_hashed_passes_in_lower_case() {
        let hashed = "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0";
        for input in [hashed.to_owned(), hashed.to_ascii_uppercase()] {
            assert_eq!(
                run(CompiledTransform::E164(None), json!(input)).unwrap(),
                Some(json!(hashed)),
                "{input}"
            );
        }
    }

    #[test]
    fn an_amount_that_is_no_number_leaves_the_value_out_with_a_reason() {
        let amount = |mode, v: Value| run(CompiledTransform::ConversionAmount(mode), v);
        for bad in [
            json!("12,50"),
            json!("NaN"),
            json!("inf"),
            json!("0x10"),
            json!(true),
        ] {
            let order = json!({"total_price": bad, "items": [{"price": 5}]});
            assert_eq!(
                amount(ConversionAmount::Total, order),
                Err("`total_price` is not a number"),
                "{bad}"
            );
            let product = json!({"price": bad, "quantity": 2});
            assert_eq!(
                amount(ConversionAmount::Total, product),
                Err("`price` is not a number")
            );
        }
        let bad_tax = json!({"total_price": 10, "total_tax": "two"});
        assert_eq!(
            amount(ConversionAmount::TotalExclTax, bad_tax.clone()),
            Err("`total_tax` is not a number")
        );
        // A deduction the setting does not take off is not read.
        assert_eq!(
            amount(ConversionAmount::Total, bad_tax),
            Ok(Some(json!(10.0)))
        );
        let bad_item = json!({"items": [{"price": 5}, {"price": "n/a"}]});
        assert_eq!(
            amount(ConversionAmount::Total, bad_item),
            Err("`price` is not a number")
        );
        let bad_quantity = json!({"price": 5, "quantity": "two"});
        assert_eq!(
            amount(ConversionAmount::Total, bad_quantity),
            Err("`quantity` is not a number")
        );
        // Missing, null and blank amounts are absent, not errors: 0 is a value.
        let blank = json!({"total_price": " ", "price": null, "items": [{"price": 0}]});
        assert_eq!(amount(ConversionAmount::Total, blank), Ok(Some(json!(0.0))));
        assert_eq!(amount(ConversionAmount::Total, json!({})), Ok(None));
    }

    #[test]
    fn an_amount_below_0_leaves_the_value_out_with_a_reason_and_0_has_no_sign() {
        let amount = |mode, v: Value| run(CompiledTransform::ConversionAmount(mode), v);
        let below = Err(
            "the amount is below 0: a conversion is worth 0 or more, and a refund is an event of \
             its own",
        );
        let order = json!({"total_price": -25.5});
        assert_eq!(amount(ConversionAmount::Total, order), below);
        let taxed = json!({"total_price": 10, "total_tax": 8, "total_shipping": 4});
        assert_eq!(
            amount(ConversionAmount::TotalExclTaxAndShipping, taxed.clone()),
            below
        );
        assert_eq!(
            amount(ConversionAmount::TotalExclTax, taxed),
            Ok(Some(json!(2.0)))
        );
        // Binary noise below 0 is 0, once rounded.
        let noise = json!({"total_price": 19.99, "total_tax": 9.99, "total_shipping": 10.0});
        assert_eq!(
            amount(ConversionAmount::TotalExclTaxAndShipping, noise),
            Ok(Some(json!(0.0)))
        );
        // A discount line below 0 is part of a subtotal that is not.
        let items = json!({"items": [{"price": 20, "quantity": 2}, {"price": -5}]});
        assert_eq!(
            amount(ConversionAmount::Total, items),
            Ok(Some(json!(35.0)))
        );
        let zero = amount(ConversionAmount::Total, json!({"price": 0, "quantity": -1}));
        assert_eq!(
            zero.map(|v| v.map(|v| v.to_string())),
            Ok(Some("0.0".into()))
        );
    }

    #[test]
    fn ids_and_texts_of_numbers_keep_their_digits_or_say_why_not() {
        let id = |product: Value| {
            run(
                CompiledTransform::ContentId(ContentIdMode::Default),
                product,
            )
        };
        let too_large = Err(
            "a whole number too large to be read exactly (outside 64-bit integers, or past 2^53 \
             written with a fraction or an exponent; send it as text): left out",
        );
        let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(
            id(parsed(r#"{"product_id": 18446744073709551615}"#)),
            Ok(Some(json!("18446744073709551615")))
        );
        assert_eq!(
            id(parsed(r#"{"product_id": 18446744073709551616}"#)),
            too_large
        );
        assert_eq!(
            id(parsed(r#"{"product_id": 9007199254740993.0}"#)),
            too_large
        );
        assert_eq!(
            id(parsed(r#"{"product_id": -123}"#)),
            Ok(Some(json!("-123")))
        );
        assert_eq!(
            id(parsed(r#"{"product_id": 1.2e1}"#)),
            Ok(Some(json!("12")))
        );
        assert_eq!(
            id(parsed(r#"{"product_id": 12.5}"#)),
            Ok(Some(json!("12.5")))
        );
        // A variant id that cannot be read is not passed over for the product id.
        assert_eq!(
            id(parsed(r#"{"variant_id": 1e30, "product_id": "p-1"}"#)),
            too_large
        );
        let hashed = run(CompiledTransform::Sha256, parsed("1e30"));
        assert_eq!(hashed, too_large);
        assert_eq!(
            run(CompiledTransform::Sha256, parsed("12.0")),
            run(CompiledTransform::Sha256, json!("12"))
        );
        assert_eq!(run(CompiledTransform::String, parsed("1e30")), too_large);
        // An id that cannot be sent gets no content type either.
        let kinds = ContentKinds::new(ProductIdContentType::Product);
        let kind = CompiledTransform::ContentType(ContentIdMode::Default, kinds);
        assert_eq!(
            run(kind.clone(), parsed(r#"{"variant_id": 1e30}"#)),
            Ok(None)
        );
        assert_eq!(
            run(kind, parsed(r#"{"variant_id": 7}"#)),
            Ok(Some(json!("product")))
        );
        // The `number` transform keeps a whole number up to 2^64 - 1 written as text.
        assert_eq!(
            run(CompiledTransform::Number, json!("18446744073709551615")),
            Ok(Some(parsed("18446744073709551615")))
        );
    }

    #[test]
    fn e164_normalises_or_refuses() {
        let us = Country::from_code("US");
        for (input, out) in [
            ("+1 (415) 555-0100", "+14155550100"),
            ("0044 20 7946 0958", "+442079460958"),
            ("14155550100", "+14155550100"),
        ] {
            assert_eq!(
                run(CompiledTransform::E164(us), json!(input)).unwrap(),
                Some(json!(out)),
                "{input}"
            );
        }
        assert!(run(CompiledTransform::E164(us), json!("+1 555")).is_err());
        assert!(run(CompiledTransform::E164(us), json!("call me")).is_err());
    }

    #[test]
    fn national_numbers_take_the_events_country_then_the_default() {
        let e164 = |default, number: &str, event: Value| {
            run_in(CompiledTransform::E164(default), json!(number), &event)
        };
        let us = Country::from_code("US");
        let in_fr = json!({"profile_properties": {"$country_code": "fr"}, "properties": {}});
        let order_in_fr = json!({"profile_properties": {}, "properties": {"$country_code": "FR"}});
        // The examples that used to become wrong numbers (+4155550100, +0612345678, +310612345678).
        assert_eq!(
            e164(us, "(415) 555-0100", json!({})),
            Ok(Some(json!("+14155550100")))
        );
        assert_eq!(
            e164(None, "06 12 34 56 78", in_fr.clone()),
            Ok(Some(json!("+33612345678")))
        );
        assert_eq!(
            e164(us, "06 12 34 56 78", order_in_fr),
            Ok(Some(json!("+33612345678")))
        );
        assert_eq!(
            e164(None, "+31 (0)6 12345678", json!({})),
            Ok(Some(json!("+31612345678")))
        );
        // Nothing is sent for what cannot be a number of its country.
        assert!(
            e164(None, "(415) 555-0100", json!({})).is_err(),
            "no country at all"
        );
        assert!(e164(None, "01 23", in_fr).is_err(), "too short for France");
        // Already hashed: passed on, never hashed again.
        let hashed = "40d3f4e02db27d66cf4cfdda506c2c945f115a7955cc8491dda98ce5beabcda0";
        assert_eq!(e164(None, hashed, json!({})), Ok(Some(json!(hashed))));
    }

    #[test]
    fn currencies_are_iso_4217_codes_upper_cased() {
        assert_eq!(
            run(CompiledTransform::Currency, json!(" eur ")),
            Ok(Some(json!("EUR")))
        );
        assert_eq!(
            run(CompiledTransform::Currency, json!("USD")),
            Ok(Some(json!("USD")))
        );
        assert!(run(CompiledTransform::Currency, json!("EURO")).is_err());
        assert!(run(CompiledTransform::Currency, json!("XYZ")).is_err());
        assert!(run(CompiledTransform::Currency, json!(978)).is_err());
    }

    #[test]
    fn countries_are_iso_3166_alpha_2_codes_upper_cased() {
        for (given, sent) in [(" fr ", "FR"), ("US", "US"), ("gb", "GB")] {
            assert_eq!(
                run(CompiledTransform::Country, json!(given)),
                Ok(Some(json!(sent))),
                "{given}"
            );
        }
        assert_eq!(run(CompiledTransform::Country, json!(" ")), Ok(None));
        // A name, a three-letter code or a made-up code is not sent; nor is a number.
        for wrong in ["France", "FRA", "XX"] {
            assert_eq!(
                run(CompiledTransform::Country, json!(wrong)),
                Err("not an ISO 3166-1 alpha-2 country code"),
                "{wrong}"
            );
        }
        assert!(run(CompiledTransform::Country, json!(250)).is_err());
    }

    #[test]
    fn content_id_modes() {
        let p = json!({"product_id": 111, "variant_id": "222", "sku": "SKU-3"});
        let id = |m| run(CompiledTransform::ContentId(m), p.clone()).unwrap();
        assert_eq!(id(ContentIdMode::Default), Some(json!("222")));
        assert_eq!(id(ContentIdMode::ProductId), Some(json!("111")));
        assert_eq!(id(ContentIdMode::VariantId), Some(json!("222")));
        assert_eq!(id(ContentIdMode::Sku), Some(json!("SKU-3")));
        let no_variant = json!({"product_id": 111, "variant_id": ""});
        assert_eq!(
            run(
                CompiledTransform::ContentId(ContentIdMode::Default),
                no_variant
            )
            .unwrap(),
            Some(json!("111"))
        );
    }

    #[test]
    fn content_ids_of_a_borrowed_product_are_borrowed_when_unchanged() {
        let p = json!({"product_id": 111, "variant_id": " 222 ", "sku": "SKU-3"});
        fn id<'a>(t: &'a CompiledTransform, p: &'a Value) -> Option<Cow<'a, Value>> {
            t.apply(Cow::Borrowed(p), &Value::Null).unwrap()
        }
        let t = CompiledTransform::ContentId;
        // A string with nothing to trim: the product's own value, not a copy.
        let sku = t(ContentIdMode::Sku);
        assert!(matches!(id(&sku, &p), Some(Cow::Borrowed(v)) if std::ptr::eq(v, &p["sku"])));
        // Trimmed, or a number written out: made.
        let variant = t(ContentIdMode::VariantId);
        assert!(matches!(id(&variant, &p), Some(Cow::Owned(v)) if v == json!("222")));
        let product = t(ContentIdMode::ProductId);
        assert!(matches!(id(&product, &p), Some(Cow::Owned(v)) if v == json!("111")));
        // The content type is one of the two values made at load.
        let kinds = ContentKinds::new(ProductIdContentType::ProductGroup);
        let of = |m| {
            let t = CompiledTransform::ContentType(m, kinds.clone());
            match t.apply(Cow::Borrowed(&p), &Value::Null) {
                Ok(Some(Cow::Borrowed(v))) => v.clone(),
                other => panic!("not lent: {other:?}"),
            }
        };
        assert_eq!(of(ContentIdMode::ProductId), json!("product_group"));
        assert_eq!(of(ContentIdMode::Sku), json!("product"));
        // A blank id is no id.
        let blank = json!({"sku": "  "});
        assert_eq!(id(&sku, &blank), None);
    }

    #[test]
    fn conversion_amounts() {
        let order = json!({"total_price": "120.00", "total_tax": 20, "total_shipping": 5.5,
                           "items": [{"price": 19.99, "quantity": 3}, {"price": "10", "quantity": 2}]});
        let amount = |m| run(CompiledTransform::ConversionAmount(m), order.clone()).unwrap();
        assert_eq!(amount(ConversionAmount::Total), Some(json!(120.0)));
        assert_eq!(amount(ConversionAmount::TotalExclTax), Some(json!(100.0)));
        assert_eq!(
            amount(ConversionAmount::TotalExclShipping),
            Some(json!(114.5))
        );
        assert_eq!(
            amount(ConversionAmount::TotalExclTaxAndShipping),
            Some(json!(94.5))
        );
        assert_eq!(amount(ConversionAmount::Subtotal), Some(json!(79.97)));
        let total = |v| {
            run(
                CompiledTransform::ConversionAmount(ConversionAmount::Total),
                v,
            )
        };
        let product = json!({"price": 19.99, "quantity": 3});
        assert_eq!(total(product).unwrap(), Some(json!(59.97)));
        // A quantity `contents` leaves out (past a whole number) computes no value either.
        for quantity in [
            json!(18_446_744_073_709_551_615_u64),
            json!(1e20),
            json!("1e22"),
        ] {
            let product = json!({"price": 1, "quantity": quantity});
            assert_eq!(
                total(product),
                Err("`quantity` is too large for a whole number"),
                "{quantity}"
            );
        }
        // Past the largest number, the amount is refused by name rather than sent as nothing.
        for (price, quantity) in [(json!(1e308), json!(10)), (json!(-1e308), json!(10))] {
            let product = json!({"price": price, "quantity": quantity});
            assert_eq!(
                total(product),
                Err("the amount is too large for a number"),
                "{price}"
            );
        }
        let huge = json!({"total_price": 1e300});
        assert_eq!(total(huge).unwrap(), Some(json!(1e300)));
    }

    #[test]
    fn query_param_reads_the_query_not_the_fragment() {
        // The fragment is not the query; a `?` inside the fragment starts no query.
        for (url, want) in [
            ("https://s.co/p?ttclid=E.1#x&ttclid=E.2", Some(json!("E.1"))),
            ("https://s.co/p?a=1#ttclid=E.2", None),
            ("https://s.co/p#f?ttclid=E.3", None),
            ("https://s.co/p?", None),
            ("https://s.co/é?ttclid=été#", Some(json!("été"))),
        ] {
            let got = run(CompiledTransform::QueryParam("ttclid".into()), json!(url));
            assert_eq!(got.unwrap(), want, "{url}");
        }
        // Percent-decoded bytes that are no UTF-8: refused, not sent as U+FFFD.
        let broken = run(
            CompiledTransform::QueryParam("ttclid".into()),
            json!("https://s.co/p?ttclid=%FF%FE"),
        );
        assert!(broken.is_err());
        let encoded = run(
            CompiledTransform::QueryParam("ttclid".into()),
            json!("https://s.co/p?ttclid=%C3%A9t%C3%A9"),
        );
        assert_eq!(encoded.unwrap(), Some(json!("été")));
    }

    #[test]
    fn number_sends_minus_zero_as_zero() {
        for zero in [json!(-0.0), json!("-0"), json!("-0.0")] {
            let number = run(CompiledTransform::Number, zero.clone()).unwrap();
            let text = number.map(|n| n.to_string()).unwrap_or_default();
            assert!(text == "0" || text == "0.0", "{zero}: {text}");
        }
    }

    #[test]
    fn small_transforms() {
        assert_eq!(
            run(CompiledTransform::Trim, json!("  a ")).unwrap(),
            Some(json!("a"))
        );
        assert_eq!(
            run(CompiledTransform::Lower, json!("AbC")).unwrap(),
            Some(json!("abc"))
        );
        assert_eq!(
            run(CompiledTransform::Number, json!("12.50")).unwrap(),
            Some(json!(12.5))
        );
        assert_eq!(
            run(CompiledTransform::Integer, json!("2")).unwrap(),
            Some(json!(2))
        );
        assert_eq!(
            run(CompiledTransform::Integer, json!(2.5)).unwrap(),
            Some(json!(3))
        );
        // Past i64 a whole number is refused, not clamped to i64::MAX.
        for huge in [json!(1e19), json!(u64::MAX), json!("-1e300")] {
            assert_eq!(
                run(CompiledTransform::Integer, huge.clone()),
                Err("too large for a whole number"),
                "{huge}"
            );
        }
        assert_eq!(
            run(CompiledTransform::Integer, json!(i64::MAX)).unwrap(),
            Some(json!(i64::MAX))
        );
        assert!(run(CompiledTransform::Number, json!("abc")).is_err());
        assert_eq!(
            run(CompiledTransform::String, json!(42)).unwrap(),
            Some(json!("42"))
        );
        assert_eq!(
            run(
                CompiledTransform::QueryParam("ttclid".into()),
                json!("https://s.co/p?a=1&ttclid=E.C.x")
            )
            .unwrap(),
            Some(json!("E.C.x"))
        );
        assert_eq!(
            run(
                CompiledTransform::QueryParam("ttclid".into()),
                json!("https://s.co/p")
            )
            .unwrap(),
            None
        );
        assert_eq!(
            run(
                CompiledTransform::Alias("urn:user_id:".into()),
                json!(["urn:email:a", "urn:user_id:42"])
            )
            .unwrap(),
            Some(json!("42"))
        );
        assert_eq!(
            run(
                CompiledTransform::UnixSeconds,
                json!("2024-09-02T12:34:56+00:00")
            )
            .unwrap(),
            Some(json!(1_725_280_496))
        );
    }
}
