//! Unit tests of the in-flight table.
