//! The built-in destination types: the one place that names each destination plugin. A config's
//! `destinations[].type` picks a variant of [`DestinationConfig`]; the rest of the service works
//! with the [`DestinationPlugin`] it builds and never names a platform.
//!
//! Adding a destination type: a crate under `plugins/destinations/` whose config flattens
//! `DestinationCommon` and whose object implements `DestinationPlugin`, then one variant here.

use schemars::JsonSchema;
use serde::Deserialize;
use switchyard_core::destination::{DestinationCommon, DestinationPlugin};
use switchyard_core::load::{Diagnostic, FileScope, Placer, Pointer};
use switchyard_core::secret::Secret;
use switchyard_tiktok::{Tiktok, TiktokConfig};

/// A destination, by `type`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationConfig {
    /// TikTok Ads: Events API (server side) and pixel (browser side).
    Tiktok(Box<TiktokConfig>),
}

/// A destination plugin as built, and what `validate` should warn about it.
pub struct Built {
    pub plugin: Box<dyn DestinationPlugin>,
    pub warnings: Vec<Diagnostic>,
}

/// Where a destination's config sits, to build it and place its errors.
pub struct BuildContext<'a> {
    /// The files the config may load (mapping paths are relative to its folder).
    pub files: &'a FileScope,
    pub placer: &'a Placer,
    /// The destination's pointer in the config file.
    pub at: &'a Pointer,
}

impl DestinationConfig {
    /// The settings every destination has.
    pub fn common(&self) -> &DestinationCommon {
        match self {
            Self::Tiktok(t) => &t.common,
        }
    }

    /// Its `type`, as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Tiktok(_) => "tiktok",
        }
    }

    /// The secrets of this destination, with the field each is set in.
    pub fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        match self {
            Self::Tiktok(t) => vec![("access_token", &t.access_token)],
        }
    }

    /// Builds the destination plugin: loads and compiles its mapping, filters and rows. With the
    /// plugin, its warnings (findings that do not stop loading, e.g. unknown event names).
    pub fn build(&self, ctx: &BuildContext<'_>) -> Result<Built, Vec<Diagnostic>> {
        match self {
            Self::Tiktok(t) => {
                let (plugin, warnings) = Tiktok::new((**t).clone(), ctx.files, ctx.placer, ctx.at)?;
                Ok(Built {
                    plugin: Box::new(plugin),
                    warnings,
                })
            }
        }
    }
}
