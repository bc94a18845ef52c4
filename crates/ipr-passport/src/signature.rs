//! Signatures: the ±1 bits carried by the signs of a passport layer's scale γ.
//!
//! A text signature stores 8 bits per ASCII character, most significant bit first, with bit `1`
//! encoded as +1 and `0` as -1; the channels after the text carry random bits, or, in a *bound*
//! signature, bits drawn from a hash of the owner's public key, the layer's path and its scale
//! passport ([`bound_bits`]): a forger who changes that passport changes the bits it must match,
//! so passports and signature cannot be chosen apart.
//!
//! The hash covers the scale passport `P_γ` alone: the signs of γ depend on `P_γ` and the conv
//! weights only, so `P_β` adds nothing to what a forger must match, and leaving it out lets `P_β`
//! be chosen after the bits are known (a retrofit solves it to keep a trained network's shift).

use rand::{Rng, SeedableRng};
use sha3::Shake256;
use sha3::digest::{ExtendableOutput, Update, XofReader};
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
    /// For a bound signature, the first bound bit: the bits from here on are [`bound_bits`] of
    /// the owner's key, the layer and its passports (after the text, if any). `None`: unbound
    /// (random bits, as the reference and signatures made before binding have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_from: Option<usize>,
}

/// Domain tag of [`bound_bits`]: the hash of a bound signature is never the hash of anything else.
pub const BOUND_DOMAIN: &[u8] = b"DeepIPR bound signature v2 (scale passport)";

/// The passport a bound signature is bound to: `[n, c, h, w]` and the values of `P_γ` (`skey`),
/// row-major.
#[derive(Clone, Copy, Debug)]
pub struct PassportValues<'a> {
    /// Shape of the passport.
    pub shape: [usize; 4],
    /// Scale passport `P_γ`.
    pub skey: &'a [f32],
}

/// `channels` ±1 bits read from SHAKE-256 over [`BOUND_DOMAIN`] ‖ the owner's 32-byte public key
/// ‖ the layer path ‖ the scale passport (shape as four little-endian `u64`, then `P_γ` as
/// little-endian `f32`, every length prefixed as a little-endian `u64`). Bit `i` is bit
/// `7 - i % 8` of output byte `i / 8`, `1` meaning +1.
pub fn bound_bits(owner: &[u8; 32], layer: &str, passports: PassportValues<'_>, channels: usize) -> Vec<i8> {
    let mut hasher = Shake256::default();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(BOUND_DOMAIN);
    field(owner);
    field(layer.as_bytes());
    let shape: Vec<u8> = passports.shape.iter().flat_map(|d| (*d as u64).to_le_bytes()).collect();
    field(&shape);
    let floats = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    field(&floats(passports.skey));
    let mut bytes = vec![0u8; channels.div_ceil(8)];
    hasher.finalize_xof().read(&mut bytes);
    (0..channels).map(|i| if (bytes[i / 8] >> (7 - i % 8)) & 1 == 1 { 1 } else { -1 }).collect()
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
        Ok(Self { bits, text, bound_from: None })
    }

    /// The signature `spec` asks for, bound to `owner` and the layer's `passports`: the text (if
    /// any) in the first `8·len` bits, [`bound_bits`] in the rest.
    ///
    /// # Errors
    /// Those of [`Signature::generate`] for the text.
    pub fn bound(spec: &SignatureSpec, channels: usize, layer: &str, owner: &[u8; 32], passports: PassportValues<'_>) -> Result<Self, PassportError> {
        let text = Self::generate(spec, channels, layer, 0)?;
        let from = text.text.as_ref().map_or(0, |t| 8 * t.len());
        let hashed = bound_bits(owner, layer, passports, channels);
        let bits = text.bits[..from].iter().chain(&hashed[from..]).copied().collect();
        Ok(Self { bits, text: text.text, bound_from: Some(from) })
    }

    /// Whether the bound bits are those of `owner` and `passports` (`None` for an unbound
    /// signature): how many of the bound bits agree, out of how many.
    pub fn binding(&self, owner: &[u8; 32], layer: &str, passports: PassportValues<'_>) -> Option<(usize, usize)> {
        let from = self.bound_from?.min(self.bits.len());
        let hashed = bound_bits(owner, layer, passports, self.bits.len());
        let agree = self.bits[from..].iter().zip(&hashed[from..]).filter(|(a, b)| a == b).count();
        Some((agree, self.bits.len() - from))
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
        assert_eq!(sig.bound_from, None);
        for g in gamma.iter_mut().take(25) {
            *g = -*g;
        }
        assert!((detection_rate(&gamma, &sig) - 0.75).abs() < 1e-6);
    }

    fn passports(values: &[f32]) -> PassportValues<'_> {
        PassportValues { shape: [1, 2, 2, 2], skey: values }
    }

    #[test]
    fn bound_bits_follow_every_passport_value_the_key_and_the_layer() {
        let values: Vec<f32> = (0..8).map(|i| i as f32 * 0.25 - 1.0).collect();
        let owner = [7u8; 32];
        let sig = Signature::bound(&SignatureSpec::Text("A".into()), 64, "4", &owner, passports(&values)).unwrap();
        assert_eq!((sig.bound_from, sig.text.as_deref()), (Some(8), Some("A")));
        assert_eq!(&sig.bits[..8], &[-1, 1, -1, -1, -1, -1, -1, 1], "'A' = 0100_0001");
        assert_eq!(sig.binding(&owner, "4", passports(&values)), Some((56, 56)));
        // One passport value changed by one ulp: other bits.
        for i in [0, 7] {
            let mut changed = values.clone();
            changed[i] = f32::from_bits(changed[i].to_bits() + 1);
            let (agree, total) = sig.binding(&owner, "4", passports(&changed)).unwrap();
            assert!(agree < total && agree > 10, "value {i}: {agree}/{total}");
        }
        let (agree, _) = sig.binding(&[8u8; 32], "4", passports(&values)).unwrap();
        assert!(agree < 56, "another key");
        let (agree, _) = sig.binding(&owner, "5", passports(&values)).unwrap();
        assert!(agree < 56, "another layer");
        let bits = bound_bits(&owner, "4", passports(&values), 512);
        let ones = bits.iter().filter(|&&b| b == 1).count();
        assert!((200..312).contains(&ones), "{ones}");
        assert_eq!(Signature::generate(&SignatureSpec::Random, 8, "x", 1).unwrap().binding(&owner, "4", passports(&values)), None);
    }
}
