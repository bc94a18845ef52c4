//! Passport layouts: which conv blocks are passport layers, and what signature each carries.
//!
//! A layout is a TOML table whose keys are conv block paths (`4` for AlexNet's feature 4,
//! `layer4.0.shortcut` for a ResNet block, written as nested tables or dotted keys) and whose
//! values are `false` (a normal block), `true` (a passport layer with a random signature) or a
//! string (a passport layer whose signature spells that ASCII text).

use std::collections::BTreeMap;

use ipr_passport::{PassportValues, Signature, SignatureSpec};

use crate::{ModelError, Net, PublicKey, tensor_values};

/// The passport layers of a model and their signature specs, keyed by block path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    layers: BTreeMap<String, SignatureSpec>,
    /// Where the layout came from, for error messages.
    source: String,
    /// Whether the passport layers are private (V2/V3) rather than public (V1).
    private: bool,
    /// The owner whose key the signatures are bound to; `None`: unbound (random) signatures.
    owner: Option<PublicKey>,
}

impl Layout {
    /// A layout with no passport layers (a normal model, scheme V0).
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a layout from TOML text; `source_name` names it in errors.
    ///
    /// # Errors
    /// [`ModelError::Syntax`] for invalid TOML and [`ModelError::BadValue`] for a value that is
    /// not a bool or a string. Paths are checked against an architecture by [`Layout::check`].
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ModelError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ModelError::Syntax {
            source_name: source_name.into(),
            message: e.to_string(),
        })?;
        let mut layers = BTreeMap::new();
        flatten(&table, "", source_name, &mut layers)?;
        Ok(Self { layers, source: source_name.into(), private: false, owner: None })
    }

    /// The same layout with private passport layers (schemes V2/V3: a public path beside the
    /// passport path) when `private`, public ones (V1) otherwise.
    pub fn with_private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// The same layout with its signatures bound to `owner` ([`Signature::bound`]): the bits
    /// after a text are drawn from a hash of the owner's key, the layer and its passports.
    /// `None` keeps them random (the reference's signatures).
    pub fn with_owner(mut self, owner: Option<PublicKey>) -> Self {
        self.owner = owner;
        self
    }

    /// Whether the passport layers are private (V2/V3).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The layout that rebuilds the structure of a saved model from its passport layer paths
    /// (signatures are not part of a structure): private layers when `private` (V2/V3).
    pub fn structure(paths: impl IntoIterator<Item = String>, private: bool) -> Self {
        Self::from_entries(paths.into_iter().map(|p| (p, SignatureSpec::Random))).with_private(private)
    }

    /// Builds a layout from `(path, spec)` pairs.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, SignatureSpec)>) -> Self {
        Self { layers: entries.into_iter().collect(), source: "layout".into(), private: false, owner: None }
    }

    /// Checks every path against the architecture's conv block paths.
    ///
    /// # Errors
    /// [`ModelError::UnknownPath`] with the list of valid paths.
    pub fn check(&self, valid: &[String], arch: &str) -> Result<(), ModelError> {
        match self.layers.keys().find(|p| !valid.contains(p)) {
            Some(path) => Err(ModelError::UnknownPath {
                source_name: self.source.clone(),
                path: path.clone(),
                arch: arch.into(),
                valid: valid.to_vec(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `path` is a passport layer.
    pub fn is_passport(&self, path: &str) -> bool {
        self.layers.contains_key(path)
    }

    /// The passport layers and their specs, in path order.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &SignatureSpec)> {
        self.layers.iter().map(|(p, s)| (p.as_str(), s))
    }

    /// Whether the layout has no passport layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Generates the signature of every passport layer of `net`: bound to the owner's key and
    /// the layer's passports as they are now (with [`Layout::with_owner`]; so passports are
    /// sampled first), else random bits seeded per layer from `seed`.
    ///
    /// # Errors
    /// A [`ModelError::Passport`] capacity error when a text is too long for its layer.
    pub fn signatures<M: Net>(&self, net: &M, seed: u64) -> Result<Vec<(String, Signature)>, ModelError> {
        net.blocks()
            .into_iter()
            .filter(|(path, block)| block.is_passport() && self.is_passport(path))
            .enumerate()
            .map(|(i, (path, block))| {
                let spec = &self.layers[&path];
                let sig = match (&self.owner, &block.skey) {
                    (Some(owner), Some(skey)) => {
                        let shape: [usize; 4] = skey.val().dims();
                        let skey = tensor_values(skey.val());
                        Signature::bound(spec, block.out_channels(), &path, &owner.0, PassportValues { shape, skey: &skey })?
                    }
                    _ => {
                        let layer_seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64);
                        Signature::generate(spec, block.out_channels(), &path, layer_seed)?
                    }
                };
                Ok((path, sig))
            })
            .collect()
    }
}

fn flatten(
    table: &toml::Table,
    prefix: &str,
    source_name: &str,
    out: &mut BTreeMap<String, SignatureSpec>,
) -> Result<(), ModelError> {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(inner) => flatten(inner, &path, source_name, out)?,
            toml::Value::Boolean(false) => {}
            toml::Value::Boolean(true) => {
                out.insert(path, SignatureSpec::Random);
            }
            toml::Value::String(text) => {
                out.insert(path, SignatureSpec::Text(text.clone()));
            }
            other => {
                return Err(ModelError::BadValue {
                    source_name: source_name.into(),
                    path,
                    found: format!("{} `{other}`", other.type_str()),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_tables_and_dotted_keys_flatten() {
        let layout = Layout::parse(
            "convbnrelu_1 = false\n[layer4.0]\nconvbnrelu_1 = true\nshortcut = \"hello\"\n",
            "t.toml",
        )
        .unwrap();
        let got: Vec<_> = layout.layers().map(|(p, s)| (p.to_string(), s.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("layer4.0.convbnrelu_1".into(), SignatureSpec::Random),
                ("layer4.0.shortcut".into(), SignatureSpec::Text("hello".into())),
            ]
        );
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = Layout::parse("4 = 3\n", "alexnet.toml").unwrap_err().to_string();
        assert!(err.contains("alexnet.toml") && err.contains("`4`") && err.contains("integer"), "{err}");
    }

    #[test]
    fn unknown_path_lists_valid_paths() {
        let layout = Layout::parse("7 = true\n", "alexnet.toml").unwrap();
        let valid = vec!["0".to_string(), "2".into(), "4".into()];
        let err = layout.check(&valid, "alexnet").unwrap_err().to_string();
        assert!(err.contains("alexnet.toml") && err.contains("`7`") && err.contains("0, 2, 4"), "{err}");
    }
}
