//! The wall clock, as the service records it: unix milliseconds and seconds.

/// Now, in unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    unix_ms() / 1000
}
