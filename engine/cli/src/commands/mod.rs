//! One module per subcommand.

pub mod map;
pub mod plugin;
pub mod replay;
pub mod schema;
pub mod validate;
