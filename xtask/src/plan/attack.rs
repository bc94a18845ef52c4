//! Resolving a `kind = "attack"` stage: which attack, its own keys (read by the attack's module
//! in `attacks/`), and for an attack that trains its settings: `TrainConfig`'s defaults, then
//! `[train]`, then the paper's settings for the attack, then the stage's own keys.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{Earlier, StageKind, training_config, training_keys};
use crate::attacks::{Attack, Resolve};
use crate::keys::{Entry, Table};

/// What an attack stage's resolution reads besides its own table.
pub(super) struct AttackContext<'a> {
    /// `[train]`'s entries.
    pub defaults: &'a [Entry],
    /// The plan's seed.
    pub seed: u64,
    /// The project root.
    pub root: &'a Path,
}

/// Resolves an attack stage from its table (`name`, `kind` taken out already); `notes` gains a
/// line for every `[train]` key the attack's paper settings take precedence over.
pub(super) fn resolve(mut table: Table, earlier: &Earlier<'_>, cx: &AttackContext<'_>, notes: &mut Vec<String>) -> Result<StageKind> {
    let from: String = table.get("from")?.with_context(|| format!("{}: set from = \"<the train stage to attack>\"", table.at("from")))?;
    let from = earlier.train_stage(&table, "from", &from)?;
    let specs = Attack::specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let name: String = table.get("attack")?.with_context(|| format!("{}: set attack = one of {}", table.at("attack"), names.join(", ")))?;
    let Some(spec) = specs.iter().find(|s| s.name == name) else {
        bail!("{}: unknown attack \"{name}\"; use one of {}", table.at("attack"), names.join(", "));
    };
    table.take(&["from", "attack"]);
    let training = table.take(&training_keys());
    if let Some(e) = table.entries().iter().find(|e| !spec.keys.contains(&e.key.as_str())) {
        let of_an_attack = specs.iter().any(|s| s.keys.contains(&e.key.as_str()));
        if of_an_attack || e.key == "pretrained" {
            bail!("{}: does not apply to attack = \"{name}\"; remove it", e.at);
        }
        super::only(&table, spec.keys, "attack")?;
    }
    let config = match &spec.paper_training {
        None => {
            if let Some(e) = training.first() {
                bail!("{}: attack = \"{name}\" trains nothing; remove the training keys", e.at);
            }
            None
        }
        Some(paper) => {
            let paper: Vec<Entry> = paper
                .iter()
                .map(|(k, v)| Entry { key: k.clone(), value: v.clone(), at: format!("the paper's settings of attack `{name}`") })
                .collect();
            let overridden: Vec<(&Entry, &Entry)> = paper
                .iter()
                .filter_map(|p| cx.defaults.iter().find(|d| d.key == p.key && d.value != p.value).map(|d| (p, d)))
                .filter(|(p, _)| !training.iter().any(|t| t.key == p.key))
                .collect();
            if !overridden.is_empty() {
                let list = |side: usize| {
                    let entry = |o: &(&Entry, &Entry)| if side == 0 { o.0.clone() } else { o.1.clone() };
                    overridden.iter().map(|o| format!("{} = {}", entry(o).key, entry(o).value)).collect::<Vec<_>>().join(", ")
                };
                notes.push(format!(
                    "{}: attack `{name}` trains with the paper's {} rather than [train]'s {}; set them on the stage to change them",
                    table.place,
                    list(0),
                    list(1)
                ));
            }
            Some(training_config(cx.defaults.iter().chain(&paper).chain(&training), cx.seed, &table.place)?)
        }
    };
    let train_stages = earlier.names();
    let r = Resolve { table: &table, config, train_stages: &train_stages, root: cx.root };
    Ok(StageKind::Attack { from, attack: Attack::resolve(&name, &r)? })
}
