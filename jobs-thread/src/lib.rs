//! jobs-thread: filled by its own change.
