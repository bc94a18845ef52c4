//! `attack = "forge"`: ambiguity attack 1, forged passports (from images through a public
//! pretrained model, or noise) in place of the genuine ones, `draws` times.

use anyhow::{Context, Result, bail};
use ipr_attacks::{ForgeRow, ForgeSource, Forger, for_each_forgery, forge};
use ipr_models::{LayerPassports, Net};
use ipr_passport::Route;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session};
use crate::ctx::rebuild;
use crate::report::{MdTable, pct};

/// Forged-passport draws a stage makes when `draws` is not set.
pub const DEFAULT_DRAWS: usize = 5;

/// Ambiguity attack 1: forged passports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forge {
    /// Forged draws.
    pub draws: usize,
    /// Where forged passports come from.
    pub source: ForgeSource,
    /// The public pretrained model forged passports pass through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
}

/// The keys of a forging stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Draws (default [`DEFAULT_DRAWS`]).
    draws: Option<usize>,
    /// `pretrained` (default) or `noise`.
    source: Option<ForgeSource>,
    /// The train stage whose model forged passports pass through.
    pretrained: Option<String>,
}

impl Forge {
    /// The forger's claim under its own key: the passports of its first draw and their bound
    /// signature, on the owner's published model.
    fn dispute<M: Net>(&self, s: &Session<'_, M>, forger: &Forger<'_, M>) -> Result<super::Settled> {
        let mut forged = None;
        for_each_forgery(&s.owner.model, forger, &s.ctx.device, &mut |_, m| {
            forged = Some(LayerPassports::of(m));
            Ok(false)
        })?;
        let passports = forged.context("the forger made no draw")?;
        let key = s.attacker_key(0xf04e);
        let published = s.published();
        let claim = s.attacker_claim(&published, s.bound_signatures(&passports, &key), passports, &key);
        s.dispute(&published, &claim)
    }
}

impl AttackKind for Forge {
    const NAME: &'static str = "forge";
    type Keys = Keys;

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        let source = keys.source.unwrap_or_default();
        let pretrained = keys.pretrained.map(|p| r.table.refer("pretrained", &p, r.train_stages)).transpose()?;
        if source == ForgeSource::Pretrained && pretrained.is_none() {
            bail!("{}: source = \"pretrained\" needs pretrained = \"<a train stage>\", or use source = \"noise\"", r.table.at("pretrained"));
        }
        let draws = keys.draws.unwrap_or(DEFAULT_DRAWS);
        if draws == 0 {
            bail!("{}: draws must be at least 1", r.table.at("draws"));
        }
        Ok(Self { draws, source, pretrained })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let (ctx, owner, source) = (s.ctx, &s.owner, self.source);
        let pretrained = self.pretrained.as_ref().map(|p| rebuild::<M>(&ctx.stage_dir(p), &ctx.device)).transpose()?.map(|(m, _)| m);
        let genuine = s.accuracy_before(Route::Private, &s.test)?;
        // Different images than the owner's own sample: another seed for the sample stream.
        let samples = ctx.data.passport_samples(ctx.seed ^ 0x00f0_46e5)?;
        let forger = Forger { source, pretrained: pretrained.as_ref(), samples: &samples, draws: self.draws, seed: ctx.seed };
        let rows = forge(&owner.model, &forger, &s.test, owner.signatures(), &ctx.device)?;
        let mean = |f: &dyn Fn(&ForgeRow) -> f64| rows.iter().map(f).sum::<f64>() / rows.len().max(1) as f64;
        let (acc, det) = (mean(&|r| r.accuracy), mean(&|r| r.detection));
        let min = rows.iter().map(|r| r.accuracy).fold(f64::INFINITY, f64::min);
        let max = rows.iter().map(|r| r.accuracy).fold(f64::NEG_INFINITY, f64::max);
        let mut table = MdTable::new(&["draw", "accuracy", "owner's bits still carried", "owner's claim"]);
        for r in &rows {
            table.row(vec![r.draw.to_string(), pct(r.accuracy), pct(r.detection), format!("{:?}", r.owner_claim)]);
        }
        let report = format!(
            "Forged passports ({source:?}) in place of the genuine ones. Genuine passports: {}; forged: mean {}, range {}–{} over {} draws.\n\n{table}\nThe last column is the verifier's decision on the owner's claim against the model carrying the forged passports: forged passports that keep the owner's bits still name the owner.\n",
            pct(genuine),
            pct(acc),
            pct(min),
            pct(max),
            rows.len()
        );
        let decisions: Vec<String> = rows.iter().map(|r| format!("{:?}", r.owner_claim)).collect();
        let verdict = if decisions.iter().all(|d| *d == decisions[0]) { decisions[0].clone() } else { format!("mixed: {}", decisions.join(", ")) };
        let note = format!("forged passports ({source:?}), mean of {} draws", self.draws);
        Ok(Outcome {
            summary: json!({ "source": source, "genuine_test_acc": genuine, "forged": rows, "mean_acc": acc, "min_acc": min, "max_acc": max }),
            report,
            line: AttackLine { verdict, ..AttackLine::new(genuine, acc, det, &owner.verdict(&owner.model)?, note) },
            dispute: Some(self.dispute(s, &forger)?),
        })
    }
}
