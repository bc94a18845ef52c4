//! The keys of one plan table (a `[[stage]]` or `[train]`) as written, each with its line, and
//! typed reads of them whose errors name the file, the line, the table and the key.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserializer;
use toml::Spanned;

/// A table as the plan parser reads it: keys and values with their spans.
pub type RawTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// One `key = value` of a table.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: toml::Value,
    /// Where it was written, for errors: `plan `f`, line 12, stage `v1`, key `epochs``.
    pub at: String,
}

/// The keys of one table, in the order they were written.
#[derive(Clone, Debug)]
pub struct Table {
    /// `plan `f`, line 7, stage `v1`` (or `plan `f`, [train]`): what errors start with.
    pub place: String,
    /// `file` and the line of the table's header.
    file: String,
    line: usize,
    entries: Vec<Entry>,
}

/// 1-based line of a byte offset of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Table {
    /// The table `raw` of the plan `file` (whose text is `text`); `name` says which table it is
    /// (`stage `v1``, `[train]`) and `line` where it starts.
    pub fn new(raw: &RawTable, text: &str, file: &str, name: &str, line: usize) -> Self {
        let mut entries: Vec<(usize, Entry)> = raw
            .iter()
            .map(|(k, v)| {
                let key_line = line_of(text, k.span().start);
                let entry = Entry {
                    key: k.get_ref().clone(),
                    value: v.get_ref().clone(),
                    at: format!("plan `{file}`, line {key_line}, {name}, key `{}`", k.get_ref()),
                };
                (k.span().start, entry)
            })
            .collect();
        entries.sort_by_key(|(start, _)| *start);
        Self {
            place: format!("plan `{file}`, line {line}, {name}"),
            file: file.into(),
            line,
            entries: entries.into_iter().map(|(_, e)| e).collect(),
        }
    }

    /// The plan file.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line of the table's header.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The error prefix for `key`: its own line when it is written, else the table's.
    pub fn at(&self, key: &str) -> String {
        match self.entries.iter().find(|e| e.key == key) {
            Some(e) => e.at.clone(),
            None => format!("{}, key `{key}`", self.place),
        }
    }

    /// Whether `key` is written.
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// The entries, in the order they were written.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Removes and returns the entries whose key is in `keys`.
    pub fn take(&mut self, keys: &[&str]) -> Vec<Entry> {
        let (taken, kept) = std::mem::take(&mut self.entries).into_iter().partition(|e| keys.contains(&e.key.as_str()));
        self.entries = kept;
        taken
    }

    /// Checks that `target`, the value of `key`, names one of `train_stages` (the train stages
    /// before this one), and returns it.
    ///
    /// # Errors
    /// Any other name, with the list to choose from.
    pub fn refer(&self, key: &str, target: &str, train_stages: &[&str]) -> Result<String> {
        if !train_stages.contains(&target) {
            anyhow::bail!(
                "{}: `{target}` is not a train stage before this one; use one of: {}",
                self.at(key),
                if train_stages.is_empty() { "(none yet: add a train stage above)".to_string() } else { train_stages.join(", ") }
            );
        }
        Ok(target.to_string())
    }

    /// Reads `key` as a `T`, if it is written.
    ///
    /// # Errors
    /// A value of the wrong type, naming the line and the key.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.clone().try_into().map_err(|err: toml::de::Error| anyhow!("{}: {}", e.at, err.message())))
            .transpose()
    }
}

/// Reads `entries` as a `T` (a struct whose every field is optional or defaulted).
///
/// # Errors
/// The first entry whose value does not fit its field, naming its line and key.
pub fn typed<T: DeserializeOwned>(entries: &[Entry]) -> Result<T> {
    let table: toml::Table = entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
    toml::Value::Table(table).try_into().map_err(|all: toml::de::Error| {
        // Find the entry at fault: each one alone.
        let culprit = entries.iter().find_map(|e| {
            let alone: toml::Table = [(e.key.clone(), e.value.clone())].into_iter().collect();
            toml::Value::Table(alone).try_into::<T>().err().map(|err| anyhow!("{}: {}", e.at, err.message()))
        });
        culprit.unwrap_or_else(|| anyhow!("{}", all.message()))
    })
}

/// The field names of the struct `T` deserialises (its keys in a plan), read from its
/// `Deserialize` implementation, so a key is declared once: as a field.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe(&'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], _: V) -> Result<V::Value, Stop> {
            self.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
            newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut probe = Probe(&[]);
    let _ = T::deserialize(&mut probe);
    probe.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Keys {
        epochs: Option<usize>,
        flip: Option<f64>,
    }

    fn table(text: &str) -> Table {
        #[derive(Deserialize)]
        struct Doc {
            stage: Spanned<RawTable>,
        }
        let doc: Doc = toml::from_str(text).unwrap();
        Table::new(doc.stage.get_ref(), text, "p.toml", "stage `s`", line_of(text, doc.stage.span().start))
    }

    #[test]
    fn field_names_come_from_the_derive() {
        assert_eq!(fields_of::<Keys>(), ["epochs", "flip"]);
        assert_eq!(fields_of::<ipr_schemes::TrainConfig>()[0], "epochs");
    }

    #[test]
    fn a_bad_value_names_its_own_line_and_key() {
        let t = table("[stage]\nflip = 0.5\n\nepochs = \"two\"\n");
        assert_eq!(t.entries().iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["flip", "epochs"], "file order");
        let e = typed::<Keys>(t.entries()).unwrap_err().to_string();
        assert!(e.starts_with("plan `p.toml`, line 4, stage `s`, key `epochs`: invalid type"), "{e}");
        let ok: Keys = typed(&t.entries()[..1]).unwrap();
        assert_eq!(ok, Keys { epochs: None, flip: Some(0.5) });
        assert_eq!(t.at("missing"), "plan `p.toml`, line 1, stage `s`, key `missing`");
    }
}
