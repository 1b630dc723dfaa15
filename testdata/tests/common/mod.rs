//! Shared by the test targets that exercise generated code.

#![allow(dead_code)]

pub mod ours;
