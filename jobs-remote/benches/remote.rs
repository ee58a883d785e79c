//! Remote job benchmarks (filled in below).
fn main() {}
