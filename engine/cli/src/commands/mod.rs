//! One module per subcommand: each opens what its command reads and writes, and calls the
//! library that does the work (`switchyard-service`, `switchyard-wasm`).

pub mod dead_letters;
pub mod map;
pub mod plugin;
pub mod replay;
pub mod schema;
pub mod tap;
pub mod validate;
