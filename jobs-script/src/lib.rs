//! jobs-script: filled by its own change.
