//! ipr-schemes
