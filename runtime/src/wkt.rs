//! The well-known types.
