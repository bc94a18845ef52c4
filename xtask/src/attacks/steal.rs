//! `attack = "steal"`: a thief who holds the owner's bundle presents it as its own: the owner's
//! passports and signature, signed with the thief's key and dated before the owner's claim.
//! Nothing is trained; the stage settles the dispute over the owner's published model.

use anyhow::Result;
use ipr_models::Net;
use ipr_passport::Route;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AttackKind, AttackLine, Outcome, Resolve, Session};

/// The owner's bundle presented under a thief's key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Steal {}

/// A stealing stage has no keys of its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {}

impl AttackKind for Steal {
    const NAME: &'static str = "steal";
    type Keys = Keys;

    fn resolve(_: Keys, _: &Resolve<'_>) -> Result<Self> {
        Ok(Self {})
    }

    fn run<M: Net>(&self, s: &Session<'_, M>) -> Result<Outcome> {
        let owner = &s.owner;
        let published = s.published();
        let accuracy = s.accuracy_before(Route::Private, &s.test)?;
        let key = s.attacker_key(0x57ea);
        let mut stolen = owner.bundle.clone();
        stolen.owner = None;
        let stolen = s.attacker_claim(&published, stolen.layers, stolen.passports, &key);
        let verdict = owner.verdict(&published)?;
        let report = "The thief presents the owner's bundle (its passports and signature) as its own claim, signed with the thief's key and dated a day before the owner's. Its signature verifies (the thief signed it), but its bound bits are the hash of the owner's key, not the thief's.\n".to_string();
        Ok(Outcome {
            summary: json!({ "verdict": verdict }),
            report,
            line: AttackLine::new(accuracy, accuracy, verdict.signature.agreement, &verdict, "the owner's bundle re-signed under a thief's key".into()),
            dispute: Some(s.dispute(&published, &stolen)?),
        })
    }
}
