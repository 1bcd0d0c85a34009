pub mod offset;
