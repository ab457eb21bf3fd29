//! The request handlers, one module per area.

pub mod objects;
pub mod operations;
pub mod status;
pub mod stir;
pub mod users;
