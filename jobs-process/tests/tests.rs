//! Integration tests of the BackgroundJob executor, with real processes.

mod suite;
