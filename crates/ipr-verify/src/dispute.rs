//! A verdict between claimants: several claims on one model, each verified on its own, then
//! compared: which claim is supported, which look derived from another (a signature copied from
//! another claim, bits that are not the hash of the claimant's own key and passports, a
//! signature absent from the other side's original model), and when the evidence cannot tell.

use serde::{Deserialize, Serialize};

use crate::{Binding, ClaimCheck, Decision, Thresholds, Verdict, log10_binomial_tail};
use ipr_models::LayerSignature;

/// What a receipt says of a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "receipt")]
pub enum Registration {
    /// No receipt was given for the claim.
    None,
    /// A receipt commits to exactly this claim and its signature verifies.
    Registered {
        /// The time the receipt states (seconds since 1970, UTC).
        created: u64,
    },
    /// A receipt names the claimant's key but commits to another claim, or does not verify.
    Mismatch {
        /// Why.
        why: String,
    },
}

/// One claim's result against one claimant's original model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnOriginal {
    /// Whose original.
    pub of: String,
    /// The decision on the claim against that model.
    pub decision: Decision,
    /// Its bit agreement there.
    pub agreement: f64,
}

/// Everything known of one claim in a dispute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimEvidence {
    /// The claimant, as the reports name it.
    pub name: String,
    /// The claim's own verdict against the disputed model (`None` when the model is not the
    /// architecture the claim names, see `structure`).
    pub verdict: Option<Verdict>,
    /// How the disputed model differs from the architecture the claim names (`None`: it is
    /// that architecture).
    pub structure: Option<String>,
    /// The claimed signature.
    pub layers: Vec<LayerSignature>,
    /// Its registration.
    pub registration: Registration,
    /// The claim against each other claimant's original model, where given.
    pub on_originals: Vec<OnOriginal>,
}

/// What a dispute concludes of one claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// The evidence supports this claim, and no other claim.
    Supported,
    /// The claim holds on its own but another claim holds too, and nothing separates them.
    Ambiguous,
    /// The claim looks made from another's (or from nothing of its own).
    Derived {
        /// Why.
        why: String,
    },
    /// The claim does not hold against the model.
    Rejected {
        /// Why.
        why: String,
    },
}

/// The verdict between claimants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    /// Each claim with its status, in the order given.
    pub claims: Vec<(ClaimEvidence, Status)>,
    /// The supported claim, if exactly one is.
    pub supported: Option<String>,
    /// What the dispute concludes, in sentences.
    pub reasons: Vec<String>,
}

/// How a record's tensors differ from those of the architecture a claim names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructureDiff {
    /// Tensors the architecture does not have (an accessory block, say).
    pub extra: Vec<String>,
    /// Tensors of the architecture the record lacks.
    pub missing: Vec<String>,
    /// Tensors of another shape, as `name [found] instead of [expected]`.
    pub reshaped: Vec<String>,
}

impl StructureDiff {
    /// Whether the record holds every tensor of the architecture, in its shape, and only
    /// tensors under none of `evidence` are extra: the tensors a claim's evidence is read from
    /// are those of the claimed architecture, unchanged in meaning.
    pub fn spares(&self, evidence: &[String]) -> bool {
        self.missing.is_empty()
            && self.reshaped.is_empty()
            && !self.extra.iter().any(|e| evidence.iter().any(|t| e.starts_with(&format!("{t}."))))
    }

    /// The differences in a sentence, naming at most a few tensors of each kind.
    pub fn describe(&self) -> String {
        let list = |what: &str, items: &[String]| {
            (!items.is_empty()).then(|| {
                let shown: Vec<&str> = items.iter().take(4).map(String::as_str).collect();
                format!("{} {what} ({}{})", items.len(), shown.join(", "), if items.len() > 4 { ", …" } else { "" })
            })
        };
        [list("tensors the architecture does not have", &self.extra), list("tensors missing", &self.missing), list("tensors of another shape", &self.reshaped)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// How a record's tensors (`found`, name and shape) differ from those of the architecture a
/// claim names (`expected`, e.g. `param_paths` of the model built from the claim); `None` when
/// they are the same set with the same shapes.
pub fn structure_diff(expected: &[(String, Vec<usize>)], found: &[(String, Vec<usize>)]) -> Option<StructureDiff> {
    let name = |list: &[(String, Vec<usize>)], n: &str| list.iter().find(|(p, _)| p == n).map(|(_, s)| s.clone());
    let diff = StructureDiff {
        extra: found.iter().filter(|(p, _)| name(expected, p).is_none()).map(|(p, _)| p.clone()).collect(),
        missing: expected.iter().filter(|(p, _)| name(found, p).is_none()).map(|(p, _)| p.clone()).collect(),
        reshaped: expected.iter().filter_map(|(p, s)| name(found, p).filter(|f| f != s).map(|f| format!("{p} {f:?} instead of {s:?}"))).collect(),
    };
    (diff != StructureDiff::default()).then_some(diff)
}

/// Agreement of two claims' bits over the layers both name: `(agree, total)`.
fn shared_bits(a: &[LayerSignature], b: &[LayerSignature]) -> (usize, usize) {
    let (mut agree, mut total) = (0, 0);
    for la in a {
        if let Some(lb) = b.iter().find(|l| l.path == la.path) {
            let n = la.signature.bits.len().min(lb.signature.bits.len());
            total += n;
            agree += la.signature.bits.iter().zip(&lb.signature.bits).filter(|(x, y)| x == y).count();
        }
    }
    (agree, total)
}

fn is_bound(v: &Verdict) -> bool {
    matches!(v.binding, Binding::Holds { .. })
}

/// The first reason a claim fails on its own, if it does.
fn own_failure(c: &ClaimEvidence) -> Option<Status> {
    if let Some(diff) = &c.structure {
        return Some(Status::Rejected { why: format!("the model is not the architecture this claim names: {diff}") });
    }
    let Some(v) = &c.verdict else {
        return Some(Status::Rejected { why: "the claim could not be checked against the model".into() });
    };
    if matches!(v.claim_signature, ClaimCheck::Invalid { .. }) {
        return Some(Status::Rejected { why: "its signature does not verify: the claim was changed after it was signed".into() });
    }
    if let Binding::Fails { bits, agree, .. } = &v.binding {
        return Some(Status::Derived {
            why: format!("only {agree} of its {bits} bound bits are the hash of its own key and passports: the bits were taken from elsewhere, not made from these passports"),
        });
    }
    if let Registration::Mismatch { why } = &c.registration {
        return Some(Status::Rejected { why: format!("its receipt does not match: {why}") });
    }
    if v.decision != Decision::Owned {
        let s = &v.signature;
        let bits = format!("{}/{} bits ({:.1}%, p = 10^{:.1})", s.matched, s.total, 100.0 * s.agreement, s.log10_false_claim);
        let why = match &v.fidelity {
            Some(f) if !f.holds && s.log10_false_claim <= v.thresholds.owned_log10_p => format!(
                "its passports do not make the model work: {:.2}% with them{}{} ({bits} agree)",
                100.0 * f.genuine_acc,
                f.public_acc.map_or(String::new(), |p| format!(" against {:.2}% on the public path", 100.0 * p)),
                if f.forged_acc.is_empty() { String::new() } else { format!(", {:.2}% with forged ones", 100.0 * f.forged_acc.iter().sum::<f64>() / f.forged_acc.len() as f64) }
            ),
            _ => match v.reasons.iter().find(|r| r.contains("no better than chance")) {
                Some(r) if s.log10_false_claim <= v.thresholds.owned_log10_p => format!("{bits}, but {r}"),
                _ => format!("the model does not carry it: {bits}"),
            },
        };
        return Some(Status::Rejected { why });
    }
    None
}

/// Resolves a dispute between `claims` on one model.
///
/// A claim is rejected when the model is not the architecture it names, its signature does not
/// verify, its receipt does not match it, or the model does not carry its signature (the
/// single-claim verdict is not `Owned`); derived when its bound bits are not the hash of its own
/// key and passports, when it copies most bits of a claim that is bound and holds, or when it is
/// absent from another claimant's original model while that claimant's is present in its own.
/// Of the claims left, receipts order the claims by their stated times; one claim left is
/// supported, several are ambiguous.
pub fn resolve(claims: Vec<ClaimEvidence>, thresholds: &Thresholds) -> Dispute {
    let mut status: Vec<Option<Status>> = claims.iter().map(own_failure).collect();
    // A claim copying most bits of another claim that is bound and holds is derived from it.
    for i in 0..claims.len() {
        if status[i].is_some() {
            continue;
        }
        for j in 0..claims.len() {
            let bound_j = claims[j].verdict.as_ref().is_some_and(is_bound) && status[j].is_none();
            let bound_i = claims[i].verdict.as_ref().is_some_and(is_bound);
            if i == j || !bound_j || bound_i {
                continue;
            }
            let (agree, total) = shared_bits(&claims[i].layers, &claims[j].layers);
            if total > 0 && log10_binomial_tail(total, agree, 0.5) <= thresholds.owned_log10_p {
                status[i] = Some(Status::Derived {
                    why: format!("its bits agree with `{}`'s on {agree} of {total}, while `{}`'s are bound to its key and passports and its are not", claims[j].name, claims[j].name),
                });
                break;
            }
        }
    }
    // Originals: a signature absent from the other side's original, while the other side's is
    // in this claimant's original, was written over the other's model.
    let candidates: Vec<usize> = (0..claims.len()).filter(|&i| status[i].is_none()).collect();
    for &i in &candidates {
        for &j in &candidates {
            if i == j {
                continue;
            }
            let i_on_j = claims[i].on_originals.iter().find(|o| o.of == claims[j].name);
            let j_on_i = claims[j].on_originals.iter().find(|o| o.of == claims[i].name);
            if let (Some(i_on_j), Some(j_on_i)) = (i_on_j, j_on_i)
                && i_on_j.decision != Decision::Owned
                && j_on_i.decision == Decision::Owned
            {
                status[i] = Some(Status::Derived {
                    why: format!(
                        "its signature is absent from `{}`'s original ({:.1}% of its bits) while `{}`'s is in `{}`'s original: it was written over `{}`'s model",
                        claims[j].name,
                        100.0 * i_on_j.agreement,
                        claims[j].name,
                        claims[i].name,
                        claims[j].name
                    ),
                });
            }
        }
    }
    // Receipts: the earliest registration among the claims left.
    let left: Vec<usize> = (0..claims.len()).filter(|&i| status[i].is_none()).collect();
    let times: Vec<Option<u64>> = left
        .iter()
        .map(|&i| match claims[i].registration {
            Registration::Registered { created } => Some(created),
            _ => None,
        })
        .collect();
    let mut reasons = Vec::new();
    if left.len() > 1 && times.iter().all(Option::is_some) {
        let first = times.iter().flatten().min().copied().unwrap_or(0);
        if times.iter().filter(|t| **t == Some(first)).count() == 1 {
            for (k, &i) in left.iter().enumerate() {
                if times[k] != Some(first) {
                    status[i] = Some(Status::Derived {
                        why: "it was registered later than another claim that holds, by the receipts' stated times (they prove an order only where they were published or timestamped)".into(),
                    });
                }
            }
        }
    }
    let left: Vec<usize> = (0..claims.len()).filter(|&i| status[i].is_none()).collect();
    let supported = (left.len() == 1).then(|| claims[left[0]].name.clone());
    match left.len() {
        0 => reasons.push("no claim is supported: none holds against the model on its own".into()),
        1 => reasons.push(format!("`{}`'s claim is supported; every other claim is rejected or derived", claims[left[0]].name)),
        _ => reasons.push(format!(
            "ambiguous: the claims of {} all hold and nothing given separates them; give each claimant's original model (--original) or their receipts",
            left.iter().map(|&i| format!("`{}`", claims[i].name)).collect::<Vec<_>>().join(", ")
        )),
    }
    let final_status: Vec<Status> = status
        .into_iter()
        .map(|s| s.unwrap_or(if left.len() == 1 { Status::Supported } else { Status::Ambiguous }))
        .collect();
    Dispute { claims: claims.into_iter().zip(final_status).collect(), supported, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SignatureReport, Thresholds};
    use ipr_passport::Signature;

    fn bits(seed: u64, n: usize) -> Vec<i8> {
        (0..n).map(|i| if (seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64 * 2_654_435_761) >> 7) & 1 == 1 { 1 } else { -1 }).collect()
    }

    fn claim(name: &str, b: Vec<i8>, decision: Decision, binding: Binding) -> ClaimEvidence {
        let layers = vec![LayerSignature { path: "4".into(), signature: Signature { bits: b, text: None, bound_from: Some(0) } }];
        let total = layers[0].signature.len();
        let verdict = Verdict {
            decision,
            signature: SignatureReport { layers: vec![], matched: total, total, agreement: 1.0, log10_false_claim: -50.0 },
            weights_match: None,
            fidelity: None,
            black_box: None,
            binding,
            claim_signature: ClaimCheck::Valid { key: "00".repeat(32) },
            thresholds: Thresholds::default(),
            reasons: vec![],
        };
        ClaimEvidence { name: name.into(), verdict: Some(verdict), structure: None, layers, registration: Registration::None, on_originals: vec![] }
    }

    fn status_of<'a>(d: &'a Dispute, name: &str) -> &'a Status {
        &d.claims.iter().find(|(c, _)| c.name == name).unwrap().1
    }

    #[test]
    fn a_record_with_extra_blocks_is_not_the_architecture() {
        let expected = vec![("features.4.conv.weight".to_string(), vec![8, 4, 3, 3]), ("features.4.bn.weight".to_string(), vec![8])];
        assert_eq!(structure_diff(&expected, &expected), None);
        let mut found = expected.clone();
        found.push(("features.4.bn.weight.erb.w1".into(), vec![8, 10]));
        found[0].1 = vec![8, 4, 5, 5];
        let diff = structure_diff(&expected, &found).unwrap();
        assert!(!diff.spares(&["features.4.conv.weight".into()]), "a reshaped tensor");
        let diff = diff.describe();
        assert!(diff.contains("1 tensors the architecture does not have (features.4.bn.weight.erb.w1)") && diff.contains("features.4.conv.weight [8, 4, 5, 5] instead of [8, 4, 3, 3]"), "{diff}");
        // An accessory block on the norm's scale: a claim read from the conv weights is spared,
        // one read from the scale is not.
        let mut found = expected.clone();
        found.push(("features.4.bn.weight.erb.w1".into(), vec![8, 10]));
        let diff = structure_diff(&expected, &found).unwrap();
        assert!(diff.spares(&["features.4.conv.weight".into()]));
        assert!(!diff.spares(&["features.4.bn.weight".into()]));
    }

    #[test]
    fn the_owner_wins_against_a_copied_and_a_flipped_claim() {
        let owner_bits = bits(1, 200);
        let owner = claim("owner", owner_bits.clone(), Decision::Owned, Binding::Holds { bits: 200 });
        // A thief re-signing the owner's bits under its own key: the binding fails.
        let thief = claim("thief", owner_bits.clone(), Decision::Inconclusive, Binding::Fails { bits: 200, agree: 101, layers: vec!["4".into()] });
        // A forger whose unbound claim copies 90% of the owner's bits and holds on the model.
        let mut flipped = owner_bits.clone();
        for b in flipped.iter_mut().take(20) {
            *b = -*b;
        }
        let forger = claim("forger", flipped, Decision::Owned, Binding::Unbound);
        let d = resolve(vec![owner, thief, forger], &Thresholds::default());
        assert_eq!(d.supported.as_deref(), Some("owner"), "{d:#?}");
        assert!(matches!(status_of(&d, "thief"), Status::Derived { why } if why.contains("bound bits")));
        assert!(matches!(status_of(&d, "forger"), Status::Derived { why } if why.contains("180 of 200")), "{:?}", status_of(&d, "forger"));
    }

    #[test]
    fn originals_settle_an_overwrite_and_without_them_it_is_ambiguous() {
        let owner = claim("owner", bits(1, 128), Decision::Owned, Binding::Holds { bits: 128 });
        let thief = claim("thief", bits(2, 128), Decision::Owned, Binding::Holds { bits: 128 });
        let d = resolve(vec![owner.clone(), thief.clone()], &Thresholds::default());
        assert_eq!(d.supported, None);
        assert_eq!(status_of(&d, "owner"), &Status::Ambiguous);
        assert!(d.reasons[0].contains("ambiguous"), "{:?}", d.reasons);
        // The thief fine-tuned the owner's model: the owner's signature is in the thief's
        // original, the thief's is absent from the owner's.
        let mut owner = owner;
        let mut thief = thief;
        owner.on_originals.push(OnOriginal { of: "thief".into(), decision: Decision::Owned, agreement: 0.97 });
        thief.on_originals.push(OnOriginal { of: "owner".into(), decision: Decision::NotOwned, agreement: 0.49 });
        let d = resolve(vec![owner, thief], &Thresholds::default());
        assert_eq!(d.supported.as_deref(), Some("owner"));
        assert!(matches!(status_of(&d, "thief"), Status::Derived { why } if why.contains("written over")));
    }

    #[test]
    fn a_claim_on_another_architecture_or_unsigned_change_or_earlier_receipt() {
        let owner = claim("owner", bits(1, 64), Decision::Owned, Binding::Holds { bits: 64 });
        let mut erb = claim("forger", bits(3, 64), Decision::Owned, Binding::Unbound);
        erb.verdict = None;
        erb.structure = Some("extra tensors features.4.bn.weight.erb.w1".into());
        let d = resolve(vec![owner.clone(), erb], &Thresholds::default());
        assert_eq!(d.supported.as_deref(), Some("owner"));
        assert!(matches!(status_of(&d, "forger"), Status::Rejected { why } if why.contains("not the architecture")));
        // Two claims that both hold: the earlier receipt decides.
        let mut a = owner;
        let mut b = claim("later", bits(4, 64), Decision::Owned, Binding::Holds { bits: 64 });
        a.registration = Registration::Registered { created: 100 };
        b.registration = Registration::Registered { created: 200 };
        let d = resolve(vec![b, a], &Thresholds::default());
        assert_eq!(d.supported.as_deref(), Some("owner"));
        assert!(matches!(status_of(&d, "later"), Status::Derived { why } if why.contains("registered later")));
    }
}
