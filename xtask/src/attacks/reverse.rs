//! `attack = "reverse"`: ambiguity attack 2. The attacker's copy with every weight frozen;
//! each passport layer's γ reset to the forger's ±1 signature and β to 0, then only γ/β trained.

use anyhow::Result;
use ipr_attacks::reverse;
use ipr_models::Net;
use ipr_passport::Route;
use ipr_schemes::TrainConfig;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, last};
use crate::report::{pct, verdict_text};

/// Ambiguity attack 2: reverse-engineering γ/β.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reverse {
    /// Fraction of the owner's bits the forger's signature flips.
    pub flip: f64,
    /// Training settings.
    pub config: TrainConfig,
}

/// The keys of an attack-2 stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Fraction of the owner's bits flipped (default 0.5).
    flip: Option<f64>,
}

impl AttackKind for Reverse {
    const NAME: &'static str = "reverse";
    type Keys = Keys;

    fn paper_training() -> Option<toml::Table> {
        Some(super::paper_training())
    }

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        Ok(Self { flip: r.fraction("flip", keys.flip, 0.5)?, config: r.config() })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let owner = &s.owner;
        let target = s.target(self.flip, 0x0f4e_0002);
        let before = s.accuracy_before(Route::Public, &s.test)?;
        let out = s.train(&self.config, s.ctx.data, &s.test, |model, run| reverse(model, owner.signatures(), &target, run))?;
        let mut report = format!(
            "The attacker's copy with every weight frozen; each passport layer's γ set to the forger's signature (the owner's with {:.0}% of the bits flipped) as ±1 and β to 0, then only γ/β trained. Before: {} with the genuine γ/β.\n\n",
            100.0 * self.flip,
            pct(before)
        );
        report += &s.training_report("Ambiguity attack 2 (reverse-engineered γ/β)", &out.history, &|r| r.test_acc, &[
            ("owner's bits in γ", out.probes.iter().map(|p| p.owner_detection).collect()),
            ("forger's bits in γ", out.probes.iter().map(|p| p.forger_detection).collect()),
        ]);
        let model = out.model.valid();
        let verdict = owner.verdict(&model)?;
        report += &format!(
            "\nVerdict on the owner's claim against the attacked copy (γ from the owner's passports through its unchanged conv weights): {}.\n",
            verdict_text(&verdict)
        );
        let end = last(&out.probes)?;
        let after = out.history.last().map_or(f64::NAN, |r| r.test_acc);
        Ok(Outcome {
            summary: json!({ "flip": self.flip, "history": out.history, "probes": out.probes, "verdict": verdict }),
            report,
            line: AttackLine::new(before, after, end.owner_detection, &verdict, format!("γ/β retrained to a signature {:.0}% flipped", 100.0 * self.flip)),
            // The attacker claims the γ it trained (its ±1 target), read from the norm scales.
            dispute: Some(s.dispute(&model, &s.attacker_claim(&model, target.clone(), vec![], &s.attacker_key(0x2e5e)))?),
        })
    }
}
