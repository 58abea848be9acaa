//! Errors in words: an error and every cause under it on one line (`what: why: why`), for
//! diagnostics and logs, where there is no `anyhow` to print the chain.

/// `e` and its sources, joined with `: `.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("the queue failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(super::with_causes(&e), "the queue failed: disk full");
    }
}
