//! `attack = "substitute"`: Chen et al.'s substitution (CVPR 2023). The attacker's copy with
//! every weight frozen; each passport layer's scale stored as γ_raw (the owner's magnitudes,
//! the forger's signs) and applied as γ_raw + ERB(γ_raw), trained on a share of the data.

use anyhow::{Result, bail};
use ipr_attacks::{ErbKind, raw_gammas, substitute};
use ipr_models::{LayerSignature, Net};
use ipr_passport::Signature;
use ipr_passport::Route;
use ipr_schemes::TrainConfig;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, last};
use crate::report::{pct, verdict_text};

/// Share of the training data the attacker has when `data_fraction` is not set (the paper's
/// largest).
pub const DEFAULT_DATA_FRACTION: f64 = 0.1;

/// The ERB substitution attack (Chen et al., CVPR 2023).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Substitute {
    /// IERB or CERB.
    pub erb: ErbKind,
    /// Fraction of the training data the attacker has.
    pub data_fraction: f64,
    /// Fraction of the owner's bits the forger's signature flips.
    pub flip: f64,
    /// Training settings.
    pub config: TrainConfig,
}

/// The keys of a substitution stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `ierb` (default) or `cerb`.
    erb: Option<ErbKind>,
    /// The attacker's share of the training data (default [`DEFAULT_DATA_FRACTION`]).
    data_fraction: Option<f64>,
    /// Fraction of the owner's bits flipped (default 0.5).
    flip: Option<f64>,
}

impl Substitute {
    /// The forger's claim as the forger states it: the signs of γ_raw (its target signature)
    /// on the model with the accessory blocks, and no passport.
    fn dispute<M: Net>(&self, s: &Session<'_, M>, model: &M) -> Result<super::Settled> {
        let paths: Vec<String> = s.owner.signatures().iter().map(|l| l.path.clone()).collect();
        let layers = raw_gammas(model, &paths)
            .into_iter()
            .map(|(path, gamma)| {
                let bits = gamma.iter().map(|g| if *g > 0.0 { 1 } else { -1 }).collect();
                LayerSignature { path, signature: Signature { bits, text: None, bound_from: None } }
            })
            .collect();
        s.dispute(model, &s.attacker_claim(model, layers, vec![], &s.attacker_key(0x5b57)))
    }
}

impl AttackKind for Substitute {
    const NAME: &'static str = "substitute";
    type Keys = Keys;

    fn paper_training() -> Option<toml::Table> {
        Some(super::paper_training())
    }

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        let data_fraction = r.fraction("data_fraction", keys.data_fraction, DEFAULT_DATA_FRACTION)?;
        if data_fraction == 0.0 {
            bail!("{}: the attacker needs some data; use a fraction in (0, 1]", r.table.at("data_fraction"));
        }
        Ok(Self { erb: keys.erb.unwrap_or_default(), data_fraction, flip: r.fraction("flip", keys.flip, 0.5)?, config: r.config() })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let (owner, erb) = (&s.owner, self.erb);
        let target = s.target(self.flip, 0x0f4e_0004);
        let before = s.accuracy_before(Route::Public, &s.test)?;
        let share = s.ctx.data.train_fraction(self.data_fraction, s.ctx.seed ^ 0x0f4e_0005);
        let out = s.train(&self.config, &share, &s.test, |model, run| substitute(model, erb, owner.signatures(), &target, run))?;
        let mut report = format!(
            "Chen et al.'s substitution: the attacker's copy with every weight frozen; each passport layer's scale stored as γ_raw (the owner's magnitudes with the forger's signs, {:.0}% of the owner's bits flipped) and applied as γ_raw + {erb:?}(γ_raw); γ_raw, β and the {erb:?} trained on {} training images ({:.0}% of the plan's). The forger claims the signs of γ_raw. Before: {}.\n\n",
            100.0 * self.flip,
            share.train_len(),
            100.0 * self.data_fraction,
            pct(before)
        );
        report += &s.training_report("Substitution attack (ERB)", &out.history, &|r| r.test_acc, &[
            ("bits of γ_raw dissimilar to the owner's", out.probes.iter().map(|p| p.dissimilarity).collect()),
            ("owner's bits in the effective γ", out.probes.iter().map(|p| p.effective_detection).collect()),
        ]);
        let model = out.model.valid();
        let verdict = owner.verdict(&model)?;
        let end = last(&out.probes)?;
        report += &format!(
            "\nVerdict on the owner's claim against the attacked copy (γ from the owner's passports through its unchanged conv weights): {}. The forger's claim (the signs of γ_raw, {} dissimilar) names no passport: this verifier derives every claimed γ from passports through the conv weights of the standard architecture, so a claim that needs the accessory block cannot be stated to it.\n",
            verdict_text(&verdict),
            pct(end.dissimilarity)
        );
        let after = out.history.last().map_or(f64::NAN, |r| r.test_acc);
        let note = format!("{erb:?} on {:.0}% of the data; forger's γ_raw {} dissimilar", 100.0 * self.data_fraction, pct(end.dissimilarity));
        Ok(Outcome {
            summary: json!({ "erb": erb, "data_fraction": self.data_fraction, "train_images": share.train_len(), "flip": self.flip, "history": out.history, "probes": out.probes, "verdict": verdict }),
            report,
            line: AttackLine::new(before, after, 1.0 - end.dissimilarity, &verdict, note),
            dispute: Some(self.dispute(s, &model)?),
        })
    }
}
