//! Client-side rate limits per KMS operation, shared by every reconcile worker, so that the
//! operator stays under the account's request quotas instead of meeting ThrottlingException.
//! The defaults are AWS's quotas (`../shared/kms-facts.md`); because other software in the
//! account spends the same quotas, a fraction of them or per-operation rates can be set.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// AWS KMS request quotas, requests per second, per account and Region.
pub const AWS_QUOTAS: [(&str, f64); 26] = [
    ("CreateKey", 5.0),
    ("ReplicateKey", 5.0),
    ("CreateAlias", 5.0),
    ("DeleteAlias", 15.0),
    ("CreateGrant", 50.0),
    ("RevokeGrant", 50.0),
    ("ListGrants", 100.0),
    ("EnableKeyRotation", 15.0),
    ("DisableKeyRotation", 5.0),
    ("ScheduleKeyDeletion", 15.0),
    ("CancelKeyDeletion", 5.0),
    ("EnableKey", 5.0),
    ("DisableKey", 5.0),
    ("TagResource", 10.0),
    ("UntagResource", 5.0),
    ("UpdateKeyDescription", 5.0),
    ("DescribeKey", 2000.0),
    ("ListAliases", 500.0),
    ("ListKeys", 500.0),
    ("ListResourceTags", 2000.0),
    ("GetKeyPolicy", 1000.0),
    ("PutKeyPolicy", 15.0),
    ("GetKeyRotationStatus", 1000.0),
    ("RotateKeyOnDemand", 5.0),
    ("ListKeyRotations", 100.0),
    ("GetKeyLastUsage", 100.0),
];

/// A token bucket that hands out reservations: a caller is told how long to wait for its turn,
/// and callers are served in arrival order. It holds one token at most, so calls leave evenly
/// spaced at the rate: AWS's bucket, which holds a second's worth, then never runs dry when a
/// network delay brings two of them closer together (a burst at AWS's full rate would leave
/// it empty, and the next early arrival throttled).
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_second: f64, now: Instant) -> Self {
        Self { per_second, tokens: 1.0, at: now }
    }

    /// Takes one token at `now`; how long the caller must wait before using it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(1.0);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

/// Rate limits by operation name.
#[derive(Debug, Default)]
pub struct Quotas {
    buckets: HashMap<String, Mutex<Bucket>>,
}

impl Quotas {
    /// No limits.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// `fraction` of AWS's quotas, with `overrides` (requests per second by operation) on top.
    pub fn of_aws(fraction: f64, overrides: &BTreeMap<String, f64>) -> Self {
        let now = Instant::now();
        let mut rates: BTreeMap<String, f64> =
            AWS_QUOTAS.iter().map(|(op, rps)| ((*op).to_owned(), rps * fraction)).collect();
        rates.extend(overrides.iter().map(|(op, rps)| (op.clone(), *rps)));
        let buckets = rates.into_iter().map(|(op, rps)| (op, Mutex::new(Bucket::new(rps, now)))).collect();
        Self { buckets }
    }

    /// How long a call of `operation` at `now` must wait for its turn (and books the turn).
    pub fn reserve(&self, operation: &str, now: Instant) -> Duration {
        match self.buckets.get(operation) {
            Some(bucket) => bucket.lock().unwrap_or_else(|e| e.into_inner()).reserve(now),
            None => Duration::ZERO,
        }
    }

    /// Waits for the turn of one call of `operation`.
    pub async fn acquire(&self, operation: &str) {
        let wait = self.reserve(operation, Instant::now());
        if !wait.is_zero() {
            tracing::debug!(
                operation,
                wait_ms = wait.as_millis() as u64,
                "waiting for the KMS request quota"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// Parses `CreateKey=2,PutKeyPolicy=5` into rates by operation, refusing unknown operations.
pub fn parse_overrides(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut rates = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (op, rate) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not OPERATION=RATE"))?;
        if !AWS_QUOTAS.iter().any(|(known, _)| *known == op) {
            return Err(format!("'{op}' is not a KMS operation the operator calls"));
        }
        let rate: f64 =
            rate.parse().map_err(|_| format!("'{rate}' is not a number of requests per second"))?;
        if rate.is_nan() || rate <= 0.0 {
            return Err(format!("the rate of {op} must be more than zero"));
        }
        rates.insert(op.to_owned(), rate);
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_leave_evenly_spaced_at_the_rate_without_a_burst() {
        let start = Instant::now();
        let quotas = Quotas::of_aws(1.0, &BTreeMap::new());
        let waits: Vec<u128> = (0..4).map(|_| quotas.reserve("CreateKey", start).as_millis()).collect();
        assert_eq!(waits, vec![0, 200, 400, 600]);
    }

    #[test]
    fn tokens_come_back_with_time() {
        let start = Instant::now();
        let quotas = Quotas::of_aws(1.0, &BTreeMap::new());
        quotas.reserve("CreateKey", start);
        assert_eq!(quotas.reserve("CreateKey", start + Duration::from_millis(200)), Duration::ZERO);
        assert_eq!(
            quotas.reserve("CreateKey", start + Duration::from_millis(300)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_fraction_and_overrides_shape_the_rates() {
        let start = Instant::now();
        let overrides = BTreeMap::from([("PutKeyPolicy".to_owned(), 1.0)]);
        let quotas = Quotas::of_aws(0.2, &overrides);
        // CreateKey: 5 rps * 0.2 = 1 rps, so the second call waits a second.
        assert_eq!(quotas.reserve("CreateKey", start), Duration::ZERO);
        assert_eq!(quotas.reserve("CreateKey", start), Duration::from_secs(1));
        assert_eq!(quotas.reserve("PutKeyPolicy", start), Duration::ZERO);
        assert_eq!(quotas.reserve("PutKeyPolicy", start), Duration::from_secs(1));
        assert_eq!(quotas.reserve("SomethingElse", start), Duration::ZERO);
    }

    #[test]
    fn every_operation_the_adapter_calls_has_a_quota() {
        let adapter = include_str!("aws.rs");
        let called: Vec<&str> =
            adapter.split("self.turn(\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
        assert!(called.len() > 10, "{called:?}");
        for op in called {
            assert!(AWS_QUOTAS.iter().any(|(known, _)| *known == op), "{op} has no quota");
        }
    }

    #[test]
    fn overrides_parse_and_refuse_unknown_operations() {
        let parsed = parse_overrides("CreateKey=2, PutKeyPolicy=0.5").unwrap();
        assert_eq!(parsed.get("CreateKey"), Some(&2.0));
        assert!(parse_overrides("Encrypt=3").unwrap_err().contains("not a KMS operation"));
        assert!(parse_overrides("CreateKey").is_err());
        assert!(parse_overrides("CreateKey=0").is_err());
    }
}
