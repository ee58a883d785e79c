//! The jobctl command.
fn main() {}
