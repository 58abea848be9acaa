//! TikTok's event names: the standard web events (as of 2025, when `Purchase` replaced
//! `CompletePayment` and `Lead` replaced `SubmitForm`), the deprecated ones, and the check that
//! `validate` runs on every row's target. Anything else is a custom event, which TikTok accepts,
//! but which its optimisation and reporting treat apart: a row whose custom target is on purpose
//! says `custom: true`.

/// The current standard web event names (`PageView` included: the server copy of a page view).
pub const STANDARD: &[&str] = &[
    "PageView",
    "ViewContent",
    "Search",
    "AddToWishlist",
    "AddToCart",
    "InitiateCheckout",
    "AddPaymentInfo",
    "Purchase",
    "Contact",
    "Download",
    "Lead",
    "CompleteRegistration",
    "Subscribe",
    "ApplicationApproval",
    "FindLocation",
    "Schedule",
    "StartTrial",
    "SubmitApplication",
    "CustomizeProduct",
];

/// Names TikTok deprecated, with the name that replaced each (when one did).
pub const DEPRECATED: &[(&str, Option<&str>)] = &[
    ("CompletePayment", Some("Purchase")),
    ("SubmitForm", Some("Lead")),
    ("PlaceAnOrder", None),
    ("ClickButton", None),
];

/// What is wrong with `target` as a TikTok event name, if anything (`custom`: the row says the
/// target is a custom event on purpose).
pub fn check(target: &str, custom: bool) -> Option<String> {
    if let Some((_, replacement)) = DEPRECATED.iter().find(|(name, _)| *name == target) {
        return Some(match replacement {
            Some(new) => format!("TikTok replaced the event `{target}` with `{new}`: use `{new}`"),
            None => {
                format!("TikTok deprecated the event `{target}`; pick a current standard event")
            }
        });
    }
    if custom || STANDARD.contains(&target) {
        return None;
    }
    let near = STANDARD
        .iter()
        .find(|s| s.eq_ignore_ascii_case(target))
        .copied()
        .or_else(|| switchyard_core::load::closest(target, STANDARD))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Some(format!(
        "`{target}` is not a TikTok standard event{near}; it is sent as a custom event (say `custom: true` on the row if that is intended)"
    ))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn deprecated_names_name_their_replacement() {
        assert_eq!(
            check("CompletePayment", false).unwrap(),
            "TikTok replaced the event `CompletePayment` with `Purchase`: use `Purchase`"
        );
        assert!(check("SubmitForm", true).unwrap().contains("`Lead`"));
        assert!(check("ClickButton", false).unwrap().contains("deprecated"));
    }

    #[test]
    fn standard_and_declared_custom_names_pass() {
        assert_eq!(check("Purchase", false), None);
        assert_eq!(check("NewCustomerPurchase", true), None);
        let warning = check("Pageview", false).unwrap();
        assert!(warning.contains("did you mean `PageView`"), "{warning}");
        for (typo, meant) in [("Purchas", "Purchase"), ("AddToCard", "AddToCart")] {
            let warning = check(typo, false).unwrap();
            assert!(
                warning.contains(&format!("did you mean `{meant}`")),
                "{warning}"
            );
        }
        let far = check("QuizCompleted", false).unwrap();
        assert!(!far.contains("did you mean"), "{far}");
    }
}
