//! jobs-remote: filled by its own change.
