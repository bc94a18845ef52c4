//! Model surgery shared by the attacks: the attacker's copy of a protected model, choosing which
//! parameters train, forged target signatures, and reading γ.

use std::collections::HashSet;

use burn::module::{Flag, ModuleMapper, Param, ParamId};
use burn::prelude::*;
use ipr_models::{LayerSignature, Net, ParamMapper, ParamVisitor, map_params, tensor_values, visit_params};
use ipr_passport::{Route, Signature};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What an attacker holds of a protected model: every passport layer folded into an affine norm
/// along the public path. For V1 that is the passport-derived γ/β (the passports are public);
/// for V2/V3 it is the public model, γ_pub/β_pub, with no private passport or statistic.
pub fn attacker_copy<M: Net>(model: M) -> M {
    model.fold_route(Route::Public)
}

/// `model` with gradients enabled on exactly the float parameters whose ids are in `ids`, and
/// disabled on every other one, and with every training flag off: batch norm normalises with its
/// running statistics and no longer updates them. The attacks that train a part of a model
/// freeze the rest, statistics included, so nothing but the selected parameters changes.
pub fn train_only<M: Net>(model: M, ids: &HashSet<ParamId>) -> M {
    struct Select<'a>(&'a HashSet<ParamId>);
    impl ModuleMapper for Select<'_> {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let keep = self.0.contains(&param.id);
            param.set_require_grad(keep)
        }
        fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
            flag.with_value(false)
        }
    }
    model.map(&mut Select(ids))
}

/// The ids of the affine scale and shift of the norms of the blocks at `paths` (normal blocks:
/// a folded passport layer's γ/β).
pub fn norm_affine_ids<M: Net>(model: &M, paths: &[String]) -> HashSet<ParamId> {
    model
        .blocks()
        .into_iter()
        .filter(|(p, _)| paths.contains(p))
        .flat_map(|(_, b)| [b.bn.weight.as_ref().map(|w| w.id), b.bn.bias.as_ref().map(|w| w.id)])
        .flatten()
        .collect()
}

/// The ids of the passports (`key`, `skey`) of every passport layer.
pub fn passport_ids<M: Net>(model: &M) -> HashSet<ParamId> {
    model.blocks().into_iter().flat_map(|(_, b)| [b.key.as_ref().map(|p| p.id), b.skey.as_ref().map(|p| p.id)]).flatten().collect()
}

/// The owner's signatures with a fraction `flip` of all their bits (over every layer together)
/// negated, chosen at random from `seed`: the signature a forger claims.
pub fn flipped_signatures(owner: &[LayerSignature], flip: f64, seed: u64) -> Vec<LayerSignature> {
    let total: usize = owner.iter().map(|l| l.signature.len()).sum();
    let count = ((flip.clamp(0.0, 1.0) * total as f64).round() as usize).min(total);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let chosen: HashSet<usize> = sample(&mut rng, total, count).into_iter().collect();
    let mut offset = 0;
    owner
        .iter()
        .map(|l| {
            let bits = l
                .signature
                .bits
                .iter()
                .enumerate()
                .map(|(i, &b)| if chosen.contains(&(offset + i)) { -b } else { b })
                .collect();
            offset += l.signature.len();
            LayerSignature { path: l.path.clone(), signature: Signature { bits, text: None, bound_from: None } }
        })
        .collect()
}

/// Fraction of the bits of `claim` that the signs of `gammas` (`(path, values)`) disagree with:
/// the bit dissimilarity rate. A claimed layer missing from `gammas` counts as fully dissimilar.
pub fn dissimilarity(gammas: &[(String, Vec<f32>)], claim: &[LayerSignature]) -> f64 {
    let (mut differ, mut total) = (0usize, 0usize);
    for layer in claim {
        let gamma = gammas.iter().find(|(p, _)| *p == layer.path).map(|(_, g)| g.as_slice()).unwrap_or(&[]);
        total += layer.signature.len();
        differ += layer.signature.len() - ipr_passport::matching_bits(gamma, &layer.signature);
    }
    differ as f64 / total.max(1) as f64
}

/// Whether a parameter at record path `path` of rank `rank` is a conv or linear weight (not a
/// norm's scale, not a passport).
fn is_weight(path: &str, rank: usize) -> bool {
    rank >= 2 && path.rsplit('.').next() == Some("weight")
}

/// Every conv and linear weight of `model` (see [`is_weight`]), by visiting order, with its
/// values.
pub(crate) fn weight_values<M: Net>(model: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl ParamVisitor for Collect {
        fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
            if is_weight(path, D) {
                self.0.push(tensor_values(param.val()));
            }
        }
    }
    let mut c = Collect(vec![]);
    visit_params(model, &mut c);
    c.0
}

/// `model` with `f` applied to every conv and linear weight (see [`is_weight`]), flattened.
pub(crate) fn map_weights<M: Net>(model: M, f: &mut dyn FnMut(Tensor<1>) -> Tensor<1>) -> M {
    struct Map<'a>(&'a mut dyn FnMut(Tensor<1>) -> Tensor<1>);
    impl ParamMapper for Map<'_> {
        fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if !is_weight(path, D) {
                return param;
            }
            let f = &mut self.0;
            param.map(|t| {
                let shape = t.shape();
                let n = shape.num_elements();
                f(t.reshape([n])).reshape(shape)
            })
        }
    }
    map_params(model, &mut Map(f))
}
