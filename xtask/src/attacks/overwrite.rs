//! `attack = "overwrite"`: the thief writes its own signature over a stolen copy. It puts
//! passports of its own into the owner's model (V1), or into the public model as private
//! passports (V2/V3), binds a signature to them under its key, and fine-tunes the copy with
//! the sign loss, so that the published copy carries both signatures. The owner's original,
//! which cannot carry the thief's signature, settles the dispute.

use anyhow::Result;
use ipr_attacks::AttackError;
use ipr_models::{LayerPassports, Net, restore_private};
use ipr_passport::Route;
use ipr_schemes::{PassportObjective, TrainConfig, train_probed};
use ipr_verify::{check_passports, check_signatures};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session, last};
use crate::report::{pct, verdict_text};

/// The thief's signature written over a stolen copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overwrite {
    /// Training settings.
    pub config: TrainConfig,
}

/// An overwriting stage has no keys of its own besides the training keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {}

/// What the thief's training measures after every epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Probe {
    /// The owner's bits, from the owner's passports through the trained weights.
    pub owner_detection: f64,
    /// The thief's bits in the trained model.
    pub thief_detection: f64,
}

/// `model` (the owner's, on the training device) with the thief's `passports` in its passport
/// layers: in place of the owner's (V1), or as private passports of the public model (V2/V3).
fn thief_model<M: Net>(model: M, passports: &[LayerPassports]) -> Result<M, AttackError> {
    if model.is_private() {
        return Ok(restore_private(model.fold_route(Route::Public), passports)?);
    }
    let device = model.devices().first().cloned().expect("a model lives on a device");
    model.try_map_blocks::<AttackError>(&mut |path, block| match passports.iter().find(|p| p.path == path) {
        Some(p) => {
            let (key, skey) = p.tensors(&device).ok_or_else(|| AttackError::Config(format!("the thief's passports of `{path}` are damaged")))?;
            block.with_passports(path, key, skey).map_err(|e| AttackError::Model(e.into()))
        }
        None => Ok(block),
    })
}

impl AttackKind for Overwrite {
    const NAME: &'static str = "overwrite";
    type Keys = Keys;

    fn paper_training() -> Option<toml::Table> {
        Some(super::paper_training())
    }

    fn resolve(_: Keys, r: &Resolve<'_>) -> Result<Self> {
        Ok(Self { config: r.config() })
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let owner = &s.owner;
        let before = s.accuracy_before(Route::Public, &s.test)?;
        let key = s.attacker_key(0x0e47);
        let passports = s.own_passports(0x0e47);
        let thief = s.bound_signatures(&passports, &key);
        let out = s.train(&self.config, s.ctx.data, &s.test, |model, run| {
            let model = thief_model(model, &passports)?;
            let objective = PassportObjective::new(&thief, run.config.sign_loss, run.device);
            let mut probe = |m: &M| Probe {
                owner_detection: check_passports(m, &owner.passports, owner.signatures()).agreement,
                thief_detection: check_signatures(m, &thief).agreement,
            };
            Ok(train_probed(model, &objective, &thief, run, &mut probe)?)
        })?;
        let trained = out.model.valid();
        let published = if trained.is_private() { trained.clone().fold_route(Route::Public) } else { trained.clone() };
        let mut report = format!(
            "The thief's own passports in the stolen copy (the owner's V1 model, or the public model as private passports), a signature bound to them under the thief's key, and the copy fine-tuned with the sign loss. Before: {}.\n\n",
            pct(before)
        );
        report += &s.training_report("Overwriting attack", &out.history, &|r| r.test_acc, &[
            ("owner's bits", out.probes.iter().map(|p| p.owner_detection).collect()),
            ("thief's bits", out.probes.iter().map(|p| p.thief_detection).collect()),
        ]);
        let verdict = owner.verdict(&published)?;
        report += &format!("\nVerdict on the owner's claim against the thief's published copy: {}.\n", verdict_text(&verdict));
        let end = last(&out.probes)?;
        let after = out.history.last().map_or(f64::NAN, |r| r.test_acc);
        let claim = s.attacker_claim(&published, thief, LayerPassports::of(&trained), &key);
        Ok(Outcome {
            summary: json!({ "history": out.history, "probes": out.probes, "verdict": verdict }),
            report,
            line: AttackLine::new(before, after, end.owner_detection, &verdict, format!("thief's signature written over the copy (thief's bits {})", pct(end.thief_detection))),
            dispute: Some(s.dispute(&published, &claim)?),
        })
    }
}
