//! One module per subcommand.

pub mod map;
pub mod schema;
pub mod validate;
