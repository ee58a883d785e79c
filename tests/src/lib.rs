//! End-to-end tests of the jobctl binary live in tests/.
