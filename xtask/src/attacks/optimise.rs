//! `attack = "optimise-passport"`: ambiguity attack 3. The owner's model with every weight
//! frozen; its passports trained from the genuine ones + noise towards the forger's signature,
//! then the verdicts on the owner's claim and on the forger's.

use anyhow::{Result, bail};
use ipr_attacks::optimise_passport;
use ipr_models::{LayerPassports, Net};
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

/// Which signature the forger of attack 3 trains its passports towards and claims.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttackerBits {
    /// The owner's signature with a fraction `flip` of its bits flipped, claimed as random bits.
    #[default]
    Flipped,
    /// Bits bound to the forger's own key and passports, as the protocol asks: the target is
    /// bound to the passports it starts from, the claim to the passports it ends with.
    Bound,
}

/// Ambiguity attack 3: optimising forged passports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptimisePassport {
    /// Fraction of the owner's bits the forger's signature flips.
    pub flip: f64,
    /// The forger's signature.
    #[serde(skip_serializing_if = "is_flipped")]
    pub attacker_bits: AttackerBits,
    /// Training settings.
    pub config: TrainConfig,
}

fn is_flipped(bits: &AttackerBits) -> bool {
    *bits == AttackerBits::Flipped
}

/// The keys of an attack-3 stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Fraction of the owner's bits flipped (default 0).
    flip: Option<f64>,
    /// `flipped` (default) or `bound`.
    attacker_bits: Option<AttackerBits>,
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
        let attacker_bits = keys.attacker_bits.unwrap_or_default();
        if attacker_bits == AttackerBits::Bound && keys.flip.is_some() {
            bail!("{}: attacker_bits = \"bound\" flips nothing of the owner's; remove `flip`", r.table.at("flip"));
        }
        Ok(Self { flip: r.fraction("flip", keys.flip, 0.0)?, attacker_bits, config: r.config() })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let owner = &s.owner;
        let key = s.attacker_key(0x0f4e_0003);
        let target = match self.attacker_bits {
            AttackerBits::Flipped => s.target(self.flip, 0x0f4e_0003),
            // The forger starts from the genuine passports (plus noise far below their scale).
            AttackerBits::Bound => s.bound_signatures(&owner.passports, &key),
        };
        let towards = match self.attacker_bits {
            AttackerBits::Flipped => format!("the owner's signature with {:.0}% of its bits flipped", 100.0 * self.flip),
            AttackerBits::Bound => "bits bound to the forger's key".into(),
        };
        let before = s.accuracy_before(Route::Private, &s.test)?;
        let out = s.train(&self.config, s.ctx.data, &s.test, |model, run| optimise_passport(model, owner.signatures(), &target, run))?;
        let accuracy = |r: &EpochRow| r.private_acc.unwrap_or(r.test_acc);
        let mut report = format!(
            "The owner's model with every weight frozen; its passports trained from the genuine ones + N(0, 0.001²) towards {towards} with CE + sign loss + 2·Σ 1/MSE(genuine, forged), gradients clipped to norm {}. Accuracy along the passport path; before: {} with the genuine passports.\n\n",
            self.config.grad_clip.map_or("–".into(), |c| c.to_string()),
            pct(before)
        );
        report += &s.training_report("Ambiguity attack 3 (optimised passports)", &out.history, &accuracy, &[
            ("owner's bits", out.probes.iter().map(|p| p.owner_detection).collect()),
            ("forger's bits", out.probes.iter().map(|p| p.forger_detection).collect()),
            ("cosine to the genuine passports", out.probes.iter().map(|p| p.cosine).collect()),
        ]);
        let model = out.model.valid();
        let passports = LayerPassports::of(&model);
        let claimed = match self.attacker_bits {
            AttackerBits::Flipped => target.clone(),
            AttackerBits::Bound => s.bound_signatures(&passports, &key),
        };
        let published = s.published();
        let dispute = s.dispute(&published, &s.attacker_claim(&published, claimed, passports, &key))?;
        // The owner's claim against the model carrying the forged passports, and the forger's
        // claim: the forged passports and the target signature, with the fidelity check.
        let verdict = owner.verdict(&model)?;
        let batches = Batches(&s.test);
        let evidence = Evidence { test: Some(&batches as &dyn LabelledBatches), triggers: None, forged_draws: 3, seed: s.ctx.seed };
        let forger = verify(&model, &Claim::new(&target), &evidence, &Thresholds::default())?;
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
        let note = format!("passports optimised towards {towards} (forger's claim: {:?})", forger.decision);
        Ok(Outcome {
            summary: json!({ "flip": self.flip, "history": out.history, "probes": out.probes, "verdict": verdict, "forger_verdict": forger }),
            report,
            line: AttackLine::new(before, after, end.owner_detection, &verdict, note),
            dispute: Some(dispute),
        })
    }
}
