//! KMS calls counted by the quota proxy, by operation: differences between two counts, split
//! into reads and writes, and divided per key.

use std::collections::BTreeMap;

/// Calls by operation (`CreateKey`, `DescribeKey`, ...).
pub type Counts = BTreeMap<String, u64>;

/// Calls made between the counts `before` and `after`.
pub fn between(before: &Counts, after: &Counts) -> Counts {
    (after.iter())
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// A read changes nothing in KMS: Describe*, Get* and List* (the Tagging API's GetResources
/// included).
pub fn is_read(operation: &str) -> bool {
    ["Describe", "Get", "List"].iter().any(|p| operation.starts_with(p))
}

/// Calls per key (or per key and resync): each count divided by `per`.
#[derive(Clone, Debug, Default)]
pub struct PerKey {
    pub by_operation: BTreeMap<String, f64>,
}

impl PerKey {
    pub fn of(counts: &Counts, per: f64) -> Self {
        let per = per.max(f64::MIN_POSITIVE);
        PerKey { by_operation: counts.iter().map(|(op, n)| (op.clone(), *n as f64 / per)).collect() }
    }

    pub fn total(&self) -> f64 {
        self.by_operation.values().sum()
    }

    pub fn reads(&self) -> f64 {
        self.by_operation.iter().filter(|(op, _)| is_read(op)).map(|(_, n)| n).sum()
    }

    pub fn writes(&self) -> f64 {
        self.total() - self.reads()
    }

    /// `DescribeKey 2.00, ListAliases 1.00`, largest first.
    pub fn describe(&self) -> String {
        let mut ops: Vec<_> = self.by_operation.iter().collect();
        ops.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        ops.iter().map(|(op, n)| format!("{op} {n:.2}")).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_and_writes_per_key() {
        use super::{Counts, PerKey, between};
        let before = Counts::from([("DescribeKey".to_owned(), 4)]);
        let after = Counts::from([("DescribeKey".to_owned(), 8), ("CreateKey".to_owned(), 2)]);
        let per = PerKey::of(&between(&before, &after), 2.0);
        assert_eq!((per.reads(), per.writes(), per.total()), (2.0, 1.0, 3.0));
        assert_eq!(per.describe(), "DescribeKey 2.00, CreateKey 1.00");
    }
}
