//! Signatures: the ±1 bits carried by the signs of a passport layer's scale γ.
//!
//! A text signature stores 8 bits per ASCII character, most significant bit first, with bit `1`
//! encoded as +1 and `0` as -1; the channels after the text carry random bits.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::PassportError;

/// What a layout asks a passport layer to carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureSpec {
    /// Random bits.
    Random,
    /// An ASCII text in the first `8·len` channels, random bits after it.
    Text(String),
}

/// The signature of one passport layer: one ±1 bit per output channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// One entry per channel, each +1 or -1.
    pub bits: Vec<i8>,
    /// The text encoded in the first `8·len` bits, when the signature is text.
    pub text: Option<String>,
}

impl Signature {
    /// Builds the signature a spec asks for, with random bits drawn from `seed`.
    ///
    /// # Errors
    /// [`PassportError::Capacity`] when the text needs more than `channels` bits, and
    /// [`PassportError::NotAscii`] for a non-ASCII text.
    pub fn generate(
        spec: &SignatureSpec,
        channels: usize,
        layer: &str,
        seed: u64,
    ) -> Result<Self, PassportError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bits: Vec<i8> = (0..channels)
            .map(|_| if rng.random::<bool>() { 1 } else { -1 })
            .collect();
        let text = match spec {
            SignatureSpec::Random => None,
            SignatureSpec::Text(text) => {
                if let Some(ch) = text.chars().find(|c| !c.is_ascii()) {
                    return Err(PassportError::NotAscii { layer: layer.into(), ch });
                }
                if text.len() * 8 > channels {
                    return Err(PassportError::Capacity {
                        layer: layer.into(),
                        channels,
                        capacity: channels / 8,
                        len: text.len(),
                    });
                }
                for (i, byte) in text.bytes().enumerate() {
                    for bit in 0..8 {
                        let one = (byte >> (7 - bit)) & 1 == 1;
                        bits[i * 8 + bit] = if one { 1 } else { -1 };
                    }
                }
                Some(text.clone())
            }
        };
        Ok(Self { bits, text })
    }

    /// Number of bits (the layer's output channels).
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// Whether the signature has no bits.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// The bits as `f32` ±1 values, ready to become a tensor.
    pub fn as_f32(&self) -> Vec<f32> {
        self.bits.iter().map(|&b| f32::from(b)).collect()
    }
}

/// Reads `len` characters back from the signs of `gamma` (`sign(γ) > 0` is bit 1).
///
/// Bytes that are not printable ASCII decode to `?`, so a damaged signature still reads as text.
pub fn decode_text(gamma: &[f32], len: usize) -> String {
    gamma
        .chunks(8)
        .take(len)
        .map(|chunk| {
            let byte = chunk
                .iter()
                .fold(0u8, |acc, &g| (acc << 1) | u8::from(g > 0.0));
            if byte.is_ascii_graphic() || byte == b' ' { byte as char } else { '?' }
        })
        .collect()
}

/// Fraction of channels whose sign of `gamma` matches the signature bit (a zero γ matches nothing).
pub fn detection_rate(gamma: &[f32], signature: &Signature) -> f32 {
    matching_bits(gamma, signature) as f32 / signature.len().max(1) as f32
}

/// Number of channels whose sign of `gamma` matches the signature bit.
pub fn matching_bits(gamma: &[f32], signature: &Signature) -> usize {
    gamma
        .iter()
        .zip(&signature.bits)
        .filter(|&(&g, &b)| (g > 0.0 && b > 0) || (g < 0.0 && b < 0))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let sig = Signature::generate(&SignatureSpec::Text("DeepIPR!".into()), 64, "features.4", 3)
            .unwrap();
        // 'D' = 0x44 = 0100_0100
        assert_eq!(&sig.bits[..8], &[-1, 1, -1, -1, -1, 1, -1, -1]);
        let gamma: Vec<f32> = sig.bits.iter().map(|&b| f32::from(b) * 0.3).collect();
        assert_eq!(decode_text(&gamma, 8), "DeepIPR!");
        assert_eq!(detection_rate(&gamma, &sig), 1.0);
    }

    #[test]
    fn capacity_error_names_layer_and_capacity() {
        let err = Signature::generate(&SignatureSpec::Text("123456789".into()), 64, "features.4", 0)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("features.4"), "{msg}");
        assert!(msg.contains("at most 8 characters"), "{msg}");
        assert!(msg.contains("9 characters"), "{msg}");
    }

    #[test]
    fn random_bits_are_seeded_and_balanced() {
        let a = Signature::generate(&SignatureSpec::Random, 512, "x", 9).unwrap();
        let b = Signature::generate(&SignatureSpec::Random, 512, "x", 9).unwrap();
        let c = Signature::generate(&SignatureSpec::Random, 512, "x", 10).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let ones = a.bits.iter().filter(|&&b| b == 1).count();
        assert!((200..312).contains(&ones), "{ones}");
    }

    #[test]
    fn flipped_signs_lower_detection() {
        let sig = Signature::generate(&SignatureSpec::Random, 100, "x", 1).unwrap();
        let mut gamma = sig.as_f32();
        for g in gamma.iter_mut().take(25) {
            *g = -*g;
        }
        assert!((detection_rate(&gamma, &sig) - 0.75).abs() < 1e-6);
    }
}
