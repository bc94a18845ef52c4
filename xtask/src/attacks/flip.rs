//! `attack = "flip"`: negating a fraction of all γ entries of the passport layers at a list of
//! fractions; accuracy and detection at each, and the verdict at the level nearest 50%.

use anyhow::{Context, Result, bail};
use ipr_attacks::{flip, flip_gammas};
use ipr_models::Net;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, nearest};
use crate::plot::Series;
use crate::report::{MdTable, pct, verdict_text};

/// Sign flipping of γ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flip {
    /// Fractions of γ entries negated.
    pub fractions: Vec<f64>,
}

/// The keys of a flipping stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Fractions (default 0, 0.1, …, 1).
    fractions: Option<Vec<f64>>,
}

impl AttackKind for Flip {
    const NAME: &'static str = "flip";
    type Keys = Keys;

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        let fractions = keys.fractions.unwrap_or_else(|| (0..=10).map(|i| f64::from(i) / 10.0).collect());
        if let Some(f) = fractions.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            bail!("{}: {f} is not a fraction in [0, 1]", r.table.at("fractions"));
        }
        Ok(Self { fractions })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let (owner, seed) = (&s.owner, s.ctx.seed);
        let rows = flip(&owner.model, &self.fractions, &s.test, owner.signatures(), seed, &s.ctx.device)?;
        let mut table = MdTable::new(&["flipped", "accuracy", "owner's bits"]);
        for r in &rows {
            table.row(vec![format!("{:.0}%", 100.0 * r.fraction), pct(r.accuracy), pct(r.detection)]);
        }
        let mut report = format!(
            "A fraction of all γ entries of the passport layers negated (passport path, folded); detection from the signs of the flipped γ.\n\n{table}"
        );
        let x: Vec<f64> = rows.iter().map(|r| 100.0 * r.fraction).collect();
        report += &s.figure("flip.png", "Sign flipping", "γ signs flipped (%)", &x, &[
            Series { label: "accuracy", values: rows.iter().map(|r| r.accuracy).collect() },
            Series { label: "owner's bits in γ", values: rows.iter().map(|r| r.detection).collect() },
        ]);
        let at = nearest(&rows, 0.5, |r| r.fraction).context("flip has no level")?;
        let verdict = owner.verdict(&flip_gammas(owner.model.clone(), at.fraction, seed))?;
        report += &format!(
            "\nVerdict on the owner's claim at {:.0}% flipped (γ from the passports through the unchanged conv weights): {}.\n",
            100.0 * at.fraction,
            verdict_text(&verdict)
        );
        let before = nearest(&rows, 0.0, |r| r.fraction).map_or(f64::NAN, |r| r.accuracy);
        Ok(Outcome {
            summary: json!({ "rows": rows, "verdict_at": at.fraction, "verdict": verdict }),
            report,
            line: AttackLine::new(before, at.accuracy, at.detection, &verdict, format!("{:.0}% of γ signs flipped", 100.0 * at.fraction)),
            dispute: Some(s.thief_dispute(&flip_gammas(owner.model.clone(), at.fraction, seed), 0xf119)?),
        })
    }
}
