//! Phone numbers to E.164 (`+14155550100`), the form TikTok hashes and matches: parsed and
//! validated with `rlibphonenumber` (a port of Google's libphonenumber, its metadata built in).
//! National numbers take the event's country, then the destination's `default_country`.

use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumber, PhoneNumberFormat, Region};
use serde_json::Value;

/// A country whose phone numbers the library knows (ISO 3166-1 alpha-2), for national numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(Region);

impl Country {
    /// The country of `code` (`US`, `fr`; surrounding spaces ignored), if the library knows its
    /// numbers: `XX` or `001` are not countries.
    pub fn from_code(code: &str) -> Option<Self> {
        let region = Region::from_code(code.trim()).ok()?;
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

/// `text` (trimmed, not empty) in E.164, or why it is not a phone number. A leading `00` is read
/// as the international prefix `+`. Messages never hold the number.
pub fn to_e164(text: &str, country: Option<Country>) -> Result<String, &'static str> {
    let international = text.strip_prefix("00").map(|rest| format!("+{rest}"));
    let text = international.as_deref().unwrap_or(text);
    let number = PhoneNumber::parse(text, country.map(|c| c.0)).map_err(|_| {
        if country.is_none() && !text.starts_with('+') {
            "not a phone number in international form, and the event names no country"
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
