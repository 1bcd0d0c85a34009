pub mod guard;
pub mod signature;
