//! Mapped generated values kept across restarts (`crate::state`). Out:
//! the id and time mappings still live, oldest first (their age is their
//! order, which eviction goes by); in: the same, learned again in that
//! order. Token-like values (`Generated::Value`) and anything learned at a
//! secret field are not kept: the state file must hold no secret, and a
//! mapping lost only makes a later answer a diff, never a false match.

use serde::{Deserialize, Serialize};

use super::{Generated, GeneratedValues};

/// One recorded value and what the candidate generated for it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SavedMapping {
    /// The key: a value's text, or `@<nanoseconds>` for a time.
    pub from: String,
    pub to: String,
    /// `id` or `time`.
    pub kind: String,
    pub field: String,
}

fn is_secret_field(field: &str) -> bool {
    let redactor = crate::redact::redactor();
    redactor.is_secret_path(&format!("/{field}")) || redactor.is_secret_path(&format!("header:{field}"))
}

impl GeneratedValues {
    /// The id and time mappings, oldest first.
    pub fn save(&self) -> Vec<SavedMapping> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut kept: Vec<(&String, &super::Mapping)> =
            map.values.iter().filter(|(_, m)| m.kind != Generated::Value && !is_secret_field(&m.field)).collect();
        kept.sort_by_key(|(_, m)| m.seq);
        kept.into_iter()
            .map(|(from, m)| SavedMapping {
                from: from.clone(),
                to: m.to.clone(),
                kind: if m.kind == Generated::Id { "id" } else { "time" }.to_string(),
                field: m.field.clone(),
            })
            .collect()
    }

    /// Learns saved mappings again, in their order (within the bound).
    pub fn restore(&self, saved: Vec<SavedMapping>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        for s in saved {
            let kind = match s.kind.as_str() {
                "id" => Generated::Id,
                "time" => Generated::Time,
                _ => continue,
            };
            map.insert(s.from, s.to, kind, s.field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{DiffKind, Difference};

    fn diff(path: &str, recorded: serde_json::Value, candidate: serde_json::Value) -> Difference {
        Difference { path: path.into(), kind: DiffKind::Changed, recorded, candidate }
    }

    #[test]
    fn ids_and_times_are_kept_in_their_order_and_tokens_are_not() {
        let values = GeneratedValues::bounded(10);
        values.learn(&diff("/id", 41.into(), 977.into()), Generated::Id);
        values.learn(&diff("/created", "2026-11-28T10:00:00Z".into(), "2026-11-28T10:00:01Z".into()), Generated::Time);
        values.learn(&diff("/token", "abc".into(), "xyz".into()), Generated::Value);
        values.insert_id("7".into(), "8".into());
        let saved = values.save();
        let kinds: Vec<(&str, &str)> = saved.iter().map(|s| (s.from.as_str(), s.kind.as_str())).collect();
        assert_eq!(kinds, [("41", "id"), ("@1795860000000000000", "time"), ("7", "id")]);

        let back = GeneratedValues::bounded(10);
        let later = diff("/items/0/id", 41.into(), 977.into());
        assert_eq!(back.explains(&later, &[]), None);
        back.restore(serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap());
        assert_eq!(back.explains(&later, &[]), Some(Generated::Id));
        assert_eq!(back.rewrite_uri("/items/7").0, "/items/8");
        assert_eq!(back.save(), saved);
    }
}
