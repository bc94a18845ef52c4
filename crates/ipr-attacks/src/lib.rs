//! ipr-attacks
