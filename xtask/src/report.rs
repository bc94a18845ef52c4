//! The human reports: Markdown tables, percentages and verdict lines, the plan report, and the
//! reports of the train and verify stages and of `cargo xtask verify`. Attack reports are
//! written by each attack (`attacks/`) with these pieces.

use std::fmt;
use std::fs;
use std::path::Path;

use ipr_schemes::EpochRow;
use ipr_verify::{Decision, SignatureReport, Verdict};
use serde::{Deserialize, Serialize};

/// `0.1234` as `12.34%`.
pub fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// A verdict in one line: decision, bits and false-claim probability.
pub fn verdict_text(v: &Verdict) -> String {
    format!("{:?} ({}/{} bits, p = 10^{:.1})", v.decision, v.signature.matched, v.signature.total, v.signature.log10_false_claim)
}

/// A Markdown table, built row by row.
pub struct MdTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl MdTable {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Appends a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }
}

impl fmt::Display for MdTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| {} |", self.header.join(" | "))?;
        writeln!(f, "|{}", " --- |".repeat(self.header.len()))?;
        for row in &self.rows {
            writeln!(f, "| {} |", row.join(" | "))?;
        }
        Ok(())
    }
}

/// One line of the plan report.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Headline {
    /// Stage name.
    pub stage: String,
    /// Stage kind.
    pub kind: String,
    /// The result in one line.
    pub result: String,
    /// Wall time of the stage in seconds (0 when skipped).
    pub seconds: f64,
}

/// `runs/<plan>/report.md`: the stage table, the attacks' summary, then every stage's report.
pub fn plan_report(plan: &str, headlines: &[Headline], run_dir: &Path) -> String {
    let mut stages = MdTable::new(&["stage", "kind", "result", "time"]);
    for h in headlines {
        stages.row(vec![h.stage.clone(), h.kind.clone(), h.result.clone(), format!("{:.0} s", h.seconds)]);
    }
    let disputes: Vec<DisputeRow> = headlines
        .iter()
        .filter_map(|h| fs::read(run_dir.join(&h.stage).join("dispute.json")).ok())
        .filter_map(|bytes| serde_json::from_slice::<Vec<DisputeRow>>(&bytes).ok())
        .flatten()
        .collect();
    let mut out = format!("# Plan `{plan}`\n\n");
    if !disputes.is_empty() {
        let mut table = MdTable::new(&["scenario", "claimant", "verdict", "reason"]);
        for d in &disputes {
            table.row(vec![d.scenario.clone(), d.claimant.clone(), d.verdict.clone(), d.reason.clone()]);
        }
        out += &format!(
            "## Disputes\n\nEvery attack that makes a claim of its own, settled against the owner's claim: the owner's and the attacker's claim on the model the attacker publishes, with the test split, the receipts and both sides' originals.\n\n{table}\n"
        );
    }
    out += &stages.to_string();
    let attacks: Vec<AttackLine> = headlines
        .iter()
        .filter_map(|h| fs::read(run_dir.join(&h.stage).join("attack.json")).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    if !attacks.is_empty() {
        let mut table = MdTable::new(&["stage", "attack", "on", "what", "accuracy before", "after", "owner's bits", "verdict"]);
        for a in &attacks {
            table.row(vec![
                a.stage.clone(),
                a.attack.clone(),
                a.from.clone(),
                a.note.clone(),
                pct(a.before),
                pct(a.after),
                format!("{:.1}%", 100.0 * a.detection),
                a.verdict.clone(),
            ]);
        }
        out += &format!(
            "\n## Attacks\n\nAccuracy before and after each attack, the owner's signature bits the attacked model still carries, and the verifier's decision on the owner's claim against it.\n\n{table}"
        );
    }
    for h in headlines {
        if let Ok(section) = fs::read_to_string(run_dir.join(&h.stage).join("report.md")) {
            out += "\n";
            out += &section;
        }
    }
    out
}

/// The per-layer detection table of a stage report.
pub fn detection_table(s: &SignatureReport) -> MdTable {
    let mut table = MdTable::new(&["passport layer", "bits", "detected", "text"]);
    for l in &s.layers {
        let text = match (&l.expected_text, &l.decoded) {
            (Some(e), Some(d)) => format!("`{e}` → `{d}`"),
            _ => "-".into(),
        };
        table.row(vec![l.path.clone(), l.bits.to_string(), format!("{:.1}%", 100.0 * l.rate), text]);
    }
    table
}

/// The per-epoch table of a training history.
pub fn history_table(history: &[EpochRow]) -> MdTable {
    let mut table = MdTable::new(&["epoch", "lr", "train loss", "train acc", "test acc", "private acc", "detection", "s"]);
    for r in history {
        table.row(vec![
            r.epoch.to_string(),
            r.lr.to_string(),
            format!("{:.4}", r.train_loss),
            pct(r.train_acc),
            pct(r.test_acc),
            r.private_acc.map_or("-".into(), pct),
            r.detection.map_or("-".into(), |d| format!("{:.1}%", 100.0 * d)),
            format!("{:.0}", r.seconds),
        ]);
    }
    table
}

/// The report of a verify stage.
pub fn verify_report(from: &str, v: &Verdict) -> String {
    let mut out = format!("## Stage verify of `{from}`: {:?}\n\n", v.decision);
    for reason in &v.reasons {
        out += &format!("- {reason}\n");
    }
    let mut table = MdTable::new(&["passport layer", "bits", "detected", "claimed text", "read back"]);
    for l in &v.signature.layers {
        table.row(vec![
            l.path.clone(),
            l.bits.to_string(),
            format!("{:.1}%", 100.0 * l.rate),
            l.expected_text.as_deref().map_or("-".into(), |t| format!("`{t}`")),
            l.decoded.as_deref().map_or("-".into(), |t| format!("`{t}`")),
        ]);
    }
    format!("{out}\n{table}")
}

/// The decision in capitals, as `cargo xtask verify` prints it.
pub fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Owned => "OWNED",
        Decision::NotOwned => "NOT OWNED",
        Decision::Inconclusive => "INCONCLUSIVE",
    }
}

/// The body of `cargo xtask verify`'s text output after its header: the per-layer table, the
/// reasons and the thresholds.
pub fn verdict_body(verdict: &Verdict) -> String {
    let mut out = String::from("passport layer         bits  detected  text\n");
    for l in &verdict.signature.layers {
        let text = match (&l.expected_text, &l.decoded) {
            (Some(e), Some(d)) => format!("\"{d}\" (claimed \"{e}\")"),
            _ => "-".into(),
        };
        out += &format!("{:<22} {:>5}  {:>7.1}%  {text}\n", l.path, l.bits, 100.0 * l.rate);
    }
    out += &format!(
        "all layers             {:>5}  {:>7.1}%  p(false claim) = 10^{:.1}\n\n",
        verdict.signature.total,
        100.0 * verdict.signature.agreement,
        verdict.signature.log10_false_claim
    );
    for reason in &verdict.reasons {
        out += &format!("- {reason}\n");
    }
    out += &format!(
        "\nthresholds: owned when p ≤ 10^{} (white-box or trigger set) and fidelity holds; not owned when p > 10^{}\n",
        verdict.thresholds.owned_log10_p, verdict.thresholds.chance_log10_p
    );
    out
}

/// One row of the plan report's summary table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttackLine {
    /// Stage name.
    pub stage: String,
    /// Attack name.
    pub attack: String,
    /// The attacked train stage.
    pub from: String,
    /// Test accuracy before the attack (the path it attacks).
    pub before: f64,
    /// Test accuracy after it.
    pub after: f64,
    /// Fraction of the owner's signature bits the attacked model still carries.
    pub detection: f64,
    /// The verifier's decision on the owner's claim against the attacked model.
    pub verdict: String,
    /// What the numbers are, in a few words.
    pub note: String,
    /// The dispute between the owner's claim and the attacker's, when the attack makes one: who
    /// is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute: Option<String>,
}

impl AttackLine {
    /// The line of an attack: accuracy before and after, the owner's bits, the verdict.
    pub fn new(before: f64, after: f64, detection: f64, verdict: &Verdict, note: String) -> Self {
        Self { before, after, detection, verdict: format!("{:?}", verdict.decision), note, ..Self::default() }
    }
}

/// One row of a dispute table: a claimant of a scenario and what the dispute concluded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisputeRow {
    /// The scenario (the attack stage).
    pub scenario: String,
    /// Who claims.
    pub claimant: String,
    /// `supported`, `derived`, `rejected` or `ambiguous`.
    pub verdict: String,
    /// Why.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table() {
        let mut t = MdTable::new(&["a", "b"]);
        t.row(vec!["1".into(), "2".into()]);
        assert_eq!(t.to_string(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}
