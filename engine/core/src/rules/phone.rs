//! Phone numbers to E.164 (`+14155550100`), the form TikTok hashes and matches: parsed and
//! validated with `rlibphonenumber` (a port of Google's libphonenumber, its metadata built in).
//! National numbers take the event's country, then the destination's `default_country`.
//!
//! A person's events carry the same number again and again, and parsing one takes a few
//! microseconds (the library's regular expressions). So the answers for up to
//! [`KNOWN_NUMBERS`] numbers met recently or often are kept ([`quick_cache`], shared by every
//! thread), and a number met again is looked up instead of parsed.

use quick_cache::Equivalent;
use quick_cache::sync::Cache;
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumber, PhoneNumberFormat, Region};
use serde_json::Value;
use std::sync::LazyLock;

/// At most this many numbers (as written, with the country they were read in) keep their
/// answer: some 175 to 225 bytes each, about 1 MB in all. They stay until others push them out
/// (the cache evicts what was met least recently and least often) or the process ends.
pub const KNOWN_NUMBERS: usize = 4_096;

/// Texts longer than this many bytes are parsed every time and never kept, so that no long text
/// takes room among the known numbers (a phone number as written is some 10 to 25 characters).
pub const KNOWN_TEXT_MAX: usize = 64;

/// A country whose phone numbers the library knows (ISO 3166-1 alpha-2), for national numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(Region);

impl Country {
    /// The country of `code` (`US`, `fr`; surrounding spaces ignored), if the library knows its
    /// numbers: `XX` or `001` are not countries.
    pub fn from_code(code: &str) -> Option<Self> {
        let region = Region::from_code(crate::text::trim(code)).ok()?;
        PHONE_NUMBER_UTIL
            .get_country_code_for_region(region)
            .filter(|code| *code > 0)
            .map(|_| Self(region))
    }

    /// The country an event names for its person: `$country_code` in profile properties, then in
    /// event properties.
    pub fn of_event(event: &Value) -> Option<Self> {
        ["profile_properties", "properties"]
            .iter()
            .filter_map(|place| event.get(place)?.get("$country_code")?.as_str())
            .find_map(Self::from_code)
    }
}

/// What [`to_e164`] answered for a number: its E.164 form, or why it is none.
type Answer = Result<Box<str>, &'static str>;

/// A number as written, and the country it was read in.
type Written = (Option<Country>, Box<str>);

/// The answers of numbers met recently or often, by the number as written and the country it was
/// read in.
static KNOWN: LazyLock<Cache<Written, Answer>> = LazyLock::new(|| Cache::new(KNOWN_NUMBERS));

/// A number looked up in [`KNOWN`] without copying its text: hashed as the stored key is.
#[derive(Hash)]
struct Lookup<'a>(Option<Country>, &'a str);

impl Equivalent<Written> for Lookup<'_> {
    fn equivalent(&self, key: &Written) -> bool {
        self.0 == key.0 && self.1 == &*key.1
    }
}

/// `text` (trimmed, not empty) in E.164, or why it is not a phone number. A leading `00` is read
/// as the international prefix `+`. Messages never hold the number. A number met lately is
/// answered from `KNOWN`, as it was the first time.
pub fn to_e164(text: &str, country: Option<Country>) -> Result<String, &'static str> {
    e164_known(&KNOWN, text, country)
}

/// [`to_e164`], with `known` holding the answers of the numbers met before.
fn e164_known(
    known: &Cache<Written, Answer>,
    text: &str,
    country: Option<Country>,
) -> Result<String, &'static str> {
    if text.len() > KNOWN_TEXT_MAX {
        return parse_e164(text, country);
    }
    let answer = known.get(&Lookup(country, text)).unwrap_or_else(|| {
        let answer = parse_e164(text, country).map(String::into_boxed_str);
        known.insert((country, text.into()), answer.clone());
        answer
    });
    answer.map(String::from)
}

/// [`to_e164`], always parsing.
fn parse_e164(text: &str, country: Option<Country>) -> Result<String, &'static str> {
    let international = text.strip_prefix("00").map(|rest| format!("+{rest}"));
    let text = international.as_deref().unwrap_or(text);
    let number = PhoneNumber::parse(text, country.map(|c| c.0)).map_err(|_| {
        if country.is_none() && !text.starts_with('+') {
            "not a phone number in international form, and no country to read it in: the \
             event's `$country_code` is missing or no ISO 3166-1 alpha-2 code, and no \
             `default_country` is set"
        } else {
            "not a phone number"
        }
    })?;
    if !number.is_valid() {
        return Err("not a valid phone number for its country");
    }
    Ok(number.format_as(PhoneNumberFormat::E164).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_those_with_phone_numbers() {
        assert!(Country::from_code("US").is_some());
        assert_eq!(Country::from_code(" fr "), Country::from_code("FR"));
        for no in ["XX", "001", "USA", "", "1"] {
            assert_eq!(Country::from_code(no), None, "{no}");
        }
    }

    #[test]
    fn a_number_met_again_is_answered_from_the_known_ones() {
        let known = Cache::new(8);
        let nl = Country::from_code("NL");
        let national = "06 1234 5678";
        let kept = |country| known.get(&Lookup(country, national));
        assert_eq!(kept(nl), None);
        assert_eq!(e164_known(&known, national, nl), Ok("+31612345678".into()));
        assert_eq!(kept(nl), Some(Ok("+31612345678".into())));
        // The same text read in another country, or in none, is another number.
        assert_eq!(kept(None), None);
        assert_eq!(
            e164_known(&known, national, None),
            parse_e164(national, None)
        );
        assert!(kept(None).is_some_and(|answer| answer.is_err()));
        // What is kept is what is answered: a planted answer comes back, not a parse.
        known.insert((None, "planted".into()), Ok("+15550100".into()));
        assert_eq!(e164_known(&known, "planted", None), Ok("+15550100".into()));
    }

    #[test]
    fn long_texts_are_never_kept_and_pushed_out_numbers_are_parsed_again() {
        let known = Cache::new(8);
        let long = format!("+31 6 1234 5680{}", " ".repeat(KNOWN_TEXT_MAX));
        assert_eq!(e164_known(&known, &long, None), Ok("+31612345680".into()));
        assert_eq!(known.get(&Lookup(None, &long)), None);
        let numbers: Vec<String> = (0..100).map(|i| format!("+31 6 1{i:07}")).collect();
        for _round in 0..2 {
            for n in &numbers {
                assert_eq!(e164_known(&known, n, None), parse_e164(n, None), "{n}");
            }
        }
        assert!(known.len() <= 16, "{} kept", known.len());
    }

    #[test]
    fn to_e164_keeps_its_answers_in_the_shared_cache() {
        // A number no other test uses: the shared cache is the process's.
        let number = "+31 6 1234 5679";
        assert_eq!(to_e164(number, None), Ok("+31612345679".into()));
        assert_eq!(
            KNOWN.get(&Lookup(None, number)),
            Some(Ok("+31612345679".into()))
        );
    }

    #[test]
    fn an_international_number_keeps_its_own_country() {
        // The former library turned this into +495123456789 when the default country was US.
        let us = Country::from_code("US");
        assert_eq!(to_e164("+49 151 23456789", us), Ok("+4915123456789".into()));
        assert_eq!(
            to_e164("0049 151 23456789", us),
            Ok("+4915123456789".into())
        );
        assert_eq!(to_e164("+31 (0)6 12345678", us), Ok("+31612345678".into()));
    }
}
