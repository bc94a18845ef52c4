//! The error type of the passport crate.

/// What can go wrong when building signatures or passports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassportError {
    /// A text signature holds more bits than the layer has channels.
    #[error(
        "the signature text for layer `{layer}` is {len} characters long, but the layer has {channels} \
         channels and so holds at most {capacity} characters (8 bits each); shorten the text or put it \
         on a wider layer"
    )]
    Capacity {
        /// Layer path.
        layer: String,
        /// Output channels of the layer.
        channels: usize,
        /// Characters the layer can hold (`channels / 8`).
        capacity: usize,
        /// Characters in the text.
        len: usize,
    },
    /// A text signature contains a character outside ASCII.
    #[error("the signature text for layer `{layer}` contains `{ch}`, which is not ASCII; use ASCII characters only")]
    NotAscii {
        /// Layer path.
        layer: String,
        /// The offending character.
        ch: char,
    },
    /// A passport tensor does not have the shape the layer needs.
    #[error("the passport for layer `{layer}` has shape {got:?}, but the layer needs [n, {channels}, h, w]")]
    Shape {
        /// Layer path.
        layer: String,
        /// Shape of the given passport.
        got: Vec<usize>,
        /// Input channels of the layer.
        channels: usize,
    },
    /// A block cannot be retrofitted with passports.
    #[error("layer `{layer}` cannot take retrofitted passports: {why}")]
    Retrofit {
        /// Layer path.
        layer: String,
        /// What is wrong, and the fix.
        why: String,
    },
}
