//! The default mapping tables of the built-in destinations, as shipped beside this file and
//! embedded in the binary. Users copy a table to start their own (`mapping: my-table.yaml`).

/// `tiktok.yaml`: the TikTok Ads destination's default table.
pub const TIKTOK: &str = include_str!("tiktok.yaml");
