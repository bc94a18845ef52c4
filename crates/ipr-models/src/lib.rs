//! ipr-models
