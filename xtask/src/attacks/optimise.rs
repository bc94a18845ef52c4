//! `attack = "optimise-passport"`: ambiguity attack 3. The owner's model with every weight
//! frozen; its passports trained from the genuine ones + noise towards the forger's signature,
//! then the verdicts on the owner's claim and on the forger's.

use anyhow::Result;
use ipr_attacks::optimise_passport;
use ipr_models::Net;
use ipr_passport::Route;
use ipr_schemes::{EpochRow, TrainConfig};
use ipr_verify::{Claim, Evidence, LabelledBatches, Thresholds, verify};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, last};
use crate::data::Batches;
use crate::report::{pct, verdict_text};

/// Gradient clipping of attack 3 when the stage sets none (the reference clips to norm 2).
pub const DEFAULT_GRAD_CLIP: f64 = 2.0;

/// Ambiguity attack 3: optimising forged passports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptimisePassport {
    /// Fraction of the owner's bits the forger's signature flips.
    pub flip: f64,
    /// Training settings.
    pub config: TrainConfig,
}

/// The keys of an attack-3 stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Fraction of the owner's bits flipped (default 0).
    flip: Option<f64>,
}

impl AttackKind for OptimisePassport {
    const NAME: &'static str = "optimise-passport";
    type Keys = Keys;

    fn paper_training() -> Option<toml::Table> {
        let mut t = super::paper_training();
        t.insert("grad_clip".into(), toml::Value::Float(DEFAULT_GRAD_CLIP));
        Some(t)
    }

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        Ok(Self { flip: r.fraction("flip", keys.flip, 0.0)?, config: r.config() })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let owner = &s.owner;
        let target = s.target(self.flip, 0x0f4e_0003);
        let before = s.accuracy_before(Route::Private, &s.test)?;
        let out = s.train(&self.config, s.ctx.data, &s.test, |model, run| optimise_passport(model, owner.signatures(), &target, run))?;
        let accuracy = |r: &EpochRow| r.private_acc.unwrap_or(r.test_acc);
        let mut report = format!(
            "The owner's model with every weight frozen; its passports trained from the genuine ones + N(0, 0.001²) towards the forger's signature (the owner's with {:.0}% of the bits flipped) with CE + sign loss + 2·Σ 1/MSE(genuine, forged), gradients clipped to norm {}. Accuracy along the passport path; before: {} with the genuine passports.\n\n",
            100.0 * self.flip,
            self.config.grad_clip.map_or("–".into(), |c| c.to_string()),
            pct(before)
        );
        report += &s.training_report("Ambiguity attack 3 (optimised passports)", &out.history, &accuracy, &[
            ("owner's bits", out.probes.iter().map(|p| p.owner_detection).collect()),
            ("forger's bits", out.probes.iter().map(|p| p.forger_detection).collect()),
            ("cosine to the genuine passports", out.probes.iter().map(|p| p.cosine).collect()),
        ]);
        let model = out.model.valid();
        // The owner's claim against the model carrying the forged passports, and the forger's
        // claim: the forged passports and the target signature, with the fidelity check.
        let verdict = owner.verdict(&model)?;
        let batches = Batches(&s.test);
        let evidence = Evidence { test: Some(&batches as &dyn LabelledBatches), triggers: None, forged_draws: 3, seed: s.ctx.seed };
        let forger = verify(&model, &Claim { layers: &target, passports: &[], weights_sha256: None }, &evidence, &Thresholds::default())?;
        report += &format!(
            "\nVerdict on the owner's claim against the model carrying the forged passports: {}.\nVerdict on the forger's claim (forged passports, their signature, fidelity checked on the test split): {}.\n",
            verdict_text(&verdict),
            verdict_text(&forger)
        );
        for reason in &forger.reasons {
            report += &format!("- {reason}\n");
        }
        let end = last(&out.probes)?;
        let after = out.history.last().map_or(f64::NAN, accuracy);
        let note = format!("passports optimised to a signature {:.0}% flipped (forger's claim: {:?})", 100.0 * self.flip, forger.decision);
        Ok(Outcome {
            summary: json!({ "flip": self.flip, "history": out.history, "probes": out.probes, "verdict": verdict, "forger_verdict": forger }),
            report,
            line: AttackLine::new(before, after, end.owner_detection, &verdict, note),
        })
    }
}
