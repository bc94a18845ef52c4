//! ipr-verify
