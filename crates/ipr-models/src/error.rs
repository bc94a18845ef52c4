//! The error type of the models crate.

use ipr_passport::PassportError;

/// What can go wrong when building a model from a config and a passport layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The layout names a conv block the architecture does not have.
    #[error("passport layout `{source_name}` names `{path}`, which is not a conv block of {arch}; valid paths: {}", valid.join(", "))]
    UnknownPath {
        /// Where the layout came from (a file name).
        source_name: String,
        /// The unknown path.
        path: String,
        /// The architecture.
        arch: String,
        /// Every conv block path of the architecture.
        valid: Vec<String>,
    },
    /// A layout value is neither `false`, `true` nor a string.
    #[error("passport layout `{source_name}`: `{path}` is {found}; a value must be false, true (random signature) or a string (text signature)")]
    BadValue {
        /// Where the layout came from.
        source_name: String,
        /// The key.
        path: String,
        /// What was found instead.
        found: String,
    },
    /// The layout is not valid TOML.
    #[error("passport layout `{source_name}` is not valid TOML: {message}")]
    Syntax {
        /// Where the layout came from.
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A model setting is out of range.
    #[error("model config: {0}")]
    Config(String),
    /// A layer's passports are not whole.
    #[error("the passports of layer `{layer}` are damaged: {problem}")]
    Passports {
        /// Layer path.
        layer: String,
        /// What is wrong.
        problem: String,
    },
    /// A signature or passport did not fit its layer.
    #[error(transparent)]
    Passport(#[from] PassportError),
}
