//! The annotations a person puts on a KmsKey to steer the operator, and how they read. Kept
//! apart from the spec: they are requests and switches, not the key's desired state, and
//! changing them does not bump the generation.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration::parse_duration;

/// Asks for an on-demand rotation of the key material: each new value rotates once
/// (`kubectl annotate kms NAME --overwrite kms.boosterpack.io/rotate-now=$(date +%s)`).
pub const ROTATE_NOW_ANNOTATION: &str = "kms.boosterpack.io/rotate-now";

/// `"true"`: the operator makes no KMS call for the object, not even a read, until it is
/// removed; a deletion waits too.
pub const PAUSED_ANNOTATION: &str = "kms.boosterpack.io/paused";

/// `"true"`: deleting the object does not release the key while the annotation stays (the
/// object stays Terminating and says why); `"false"` opts out of the operator's default.
pub const DELETION_PROTECTION_ANNOTATION: &str = "kms.boosterpack.io/deletion-protection";

/// How often the object is checked against KMS (`30s`, `10m`, `1h`), instead of the operator's
/// `--resync-interval`; never more often than its `--min-resync-interval`.
pub const RESYNC_INTERVAL_ANNOTATION: &str = "kms.boosterpack.io/resync-interval";

/// The object's resync interval: the annotation's, raised to `minimum`, or else `default`. A
/// value that is not a duration is an error that names the annotation.
pub fn resync_interval(
    annotations: &BTreeMap<String, String>,
    default: Duration,
    minimum: Duration,
) -> Result<Duration, String> {
    let Some(value) = annotations.get(RESYNC_INTERVAL_ANNOTATION) else { return Ok(default) };
    let asked =
        parse_duration(value).map_err(|why| format!("annotation {RESYNC_INTERVAL_ANNOTATION}: {why}"))?;
    Ok(asked.max(minimum))
}

/// Set to `status.aliasHold.token`: an object stalled on `AliasConflict` may take the alias now
/// that it is free (the cluster's `aliasHandover: Manual`, the default, never lets it do so by
/// itself).
pub const CLAIM_ALIAS_ANNOTATION: &str = "kms.boosterpack.io/claim-alias";

/// The claim-alias value, if any.
pub fn alias_claim(annotations: &BTreeMap<String, String>) -> Option<&str> {
    annotations.get(CLAIM_ALIAS_ANNOTATION).map(|v| v.trim())
}

/// Whether the object is paused.
pub fn paused(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(PAUSED_ANNOTATION).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Whether deleting the object is held back: its annotation, else the operator's default.
pub fn deletion_protected(annotations: &BTreeMap<String, String>, default: bool) -> bool {
    match annotations.get(DELETION_PROTECTION_ANNOTATION).map(|v| v.trim().to_ascii_lowercase()) {
        Some(value) if value == "true" => true,
        Some(value) if value == "false" => false,
        _ => default,
    }
}

/// The rotate-now value, if any.
pub fn rotate_now(annotations: &BTreeMap<String, String>) -> Option<&str> {
    annotations.get(ROTATE_NOW_ANNOTATION).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(key.to_owned(), value.to_owned())])
    }

    #[test]
    fn the_resync_annotation_overrides_the_default_but_not_the_minimum() {
        let (default, minimum) = (Duration::from_secs(600), Duration::from_secs(60));
        let read = |value: &str| resync_interval(&with(RESYNC_INTERVAL_ANNOTATION, value), default, minimum);
        assert_eq!(read("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(read("5s"), Ok(minimum), "raised to the operator's minimum");
        assert_eq!(resync_interval(&BTreeMap::new(), default, minimum), Ok(default));
        let bad = read("daily").unwrap_err();
        assert!(bad.starts_with("annotation kms.boosterpack.io/resync-interval: 'daily'"), "{bad}");
    }

    #[test]
    fn only_true_pauses() {
        assert!(paused(&with(PAUSED_ANNOTATION, "true")));
        assert!(paused(&with(PAUSED_ANNOTATION, " True ")));
        assert!(!paused(&with(PAUSED_ANNOTATION, "false")));
        assert!(!paused(&with(PAUSED_ANNOTATION, "yes")), "anything but true is no pause");
        assert!(!paused(&BTreeMap::new()));
    }

    #[test]
    fn protection_follows_the_annotation_then_the_operators_default() {
        let protect = with(DELETION_PROTECTION_ANNOTATION, "true");
        let opt_out = with(DELETION_PROTECTION_ANNOTATION, "false");
        let unclear = with(DELETION_PROTECTION_ANNOTATION, "maybe");
        let none = BTreeMap::new();
        let table = [
            (&protect, false, true),
            (&protect, true, true),
            (&opt_out, true, false),
            (&unclear, true, true),
            (&unclear, false, false),
            (&none, true, true),
            (&none, false, false),
        ];
        for (annotations, default, want) in table {
            assert_eq!(deletion_protected(annotations, default), want, "{annotations:?} default {default}");
        }
    }
}
