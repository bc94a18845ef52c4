//! `attack = "prune"`: global magnitude pruning of every conv and linear weight at a list of
//! percentages; accuracy along the passport path and detection at each, and the verdict at the
//! level nearest 50%.

use anyhow::{Context, Result, bail};
use ipr_attacks::{prune, prune_weights};
use ipr_models::Net;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, nearest};
use crate::plot::Series;
use crate::report::{MdTable, pct, verdict_text};

/// Global magnitude pruning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prune {
    /// Percentages of weights pruned.
    pub percents: Vec<f64>,
}

/// The keys of a pruning stage.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// Percentages (default 0, 10, …, 100).
    percents: Option<Vec<f64>>,
}

impl AttackKind for Prune {
    const NAME: &'static str = "prune";
    type Keys = Keys;

    fn resolve(keys: Keys, r: &Resolve<'_>) -> Result<Self> {
        let percents = keys.percents.unwrap_or_else(|| (0..=10).map(|i| f64::from(i) * 10.0).collect());
        if let Some(p) = percents.iter().find(|p| !(0.0..=100.0).contains(*p)) {
            bail!("{}: {p} is not a percentage in [0, 100]", r.table.at("percents"));
        }
        Ok(Self { percents })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let owner = &s.owner;
        let rows = prune(&owner.model, &self.percents, &s.test, owner.signatures(), &s.ctx.device)?;
        let mut table = MdTable::new(&["pruned", "accuracy", "public path", "owner's bits"]);
        for r in &rows {
            table.row(vec![format!("{:.0}%", r.percent), pct(r.accuracy), r.public_accuracy.map_or("–".into(), pct), pct(r.detection)]);
        }
        let mut report = format!(
            "Global magnitude pruning of every conv and linear weight; accuracy along the passport path, detection from γ computed with the passports through the pruned weights.\n\n{table}"
        );
        let x: Vec<f64> = rows.iter().map(|r| r.percent).collect();
        report += &s.figure("prune.png", "Pruning", "weights pruned (%)", &x, &[
            Series { label: "accuracy", values: rows.iter().map(|r| r.accuracy).collect() },
            Series { label: "owner's bits detected", values: rows.iter().map(|r| r.detection).collect() },
        ]);
        let at = nearest(&rows, 50.0, |r| r.percent).context("prune has no level")?;
        let verdict = owner.verdict(&prune_weights(owner.model.clone(), at.percent))?;
        report += &format!("\nVerdict on the owner's claim at {:.0}% pruned: {}.\n", at.percent, verdict_text(&verdict));
        let before = nearest(&rows, 0.0, |r| r.percent).map_or(f64::NAN, |r| r.accuracy);
        Ok(Outcome {
            summary: json!({ "rows": rows, "verdict_at": at.percent, "verdict": verdict }),
            report,
            line: AttackLine::new(before, at.accuracy, at.detection, &verdict, format!("{:.0}% of weights pruned", at.percent)),
            dispute: Some(s.thief_dispute(&prune_weights(ipr_attacks::attacker_copy(owner.model.clone()), at.percent), 0x5701)?),
        })
    }
}
