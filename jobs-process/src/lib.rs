//! jobs-process: filled by its own change.
