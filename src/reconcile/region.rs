//! Which AWS Region an object's key lives in. A key never moves: once status records a key (or
//! a create in flight), its Region is the one recorded, whatever the spec says now. Before
//! that, `spec.region` or the operator's own Region, if the operator may make keys there.

use super::outcome::Outcome;

/// Where status says the object's key is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordedRegion<'a> {
    /// `status.keyArn`.
    pub key_arn: Option<&'a str>,
    /// `status.region`.
    pub region: Option<&'a str>,
    /// `status.createIntent.region`: a create or adoption in flight.
    pub intent: Option<&'a str>,
}

impl RecordedRegion<'_> {
    /// The Region of the recorded key: its ARN's, else the one status names, else that of the
    /// create in flight.
    pub fn region(&self) -> Option<String> {
        let from_arn = self.key_arn.and_then(arn_region);
        (from_arn.or(self.region).or(self.intent)).map(str::to_owned)
    }
}

/// What the operator allows: its own Region, and the Regions new keys may be made in (empty:
/// any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionRules {
    pub home: Option<String>,
    pub allowed: Vec<String>,
}

/// The Region the spec asks for: `spec.region`, else the Region of the key ARN that
/// `spec.adopt.keyId` names (a bare key ID names none). Stalled when the two differ: a key is
/// adopted in the Region it lives in.
pub fn wanted_region<'a>(
    spec_region: Option<&'a str>,
    adopt_key_id: Option<&'a str>,
) -> Result<Option<&'a str>, Outcome> {
    let adopted_from = adopt_key_id.filter(|id| id.starts_with("arn:")).and_then(arn_region);
    match (spec_region, adopted_from) {
        (Some(wanted), Some(lives_in)) if wanted != lives_in => Err(Outcome::Stalled {
            reason: "InvalidSpec",
            message: format!(
                "spec.adopt.keyId names a key in {lives_in} but spec.region is {wanted}: a key is adopted in the Region it lives in"
            ),
        }),
        (wanted, adopted_from) => Ok(wanted.or(adopted_from)),
    }
}

/// The Region to reconcile the object's key in, or why the object cannot have one (Stalled,
/// nothing made). `spec` is the Region the spec asks for (`wanted_region`).
pub fn key_region(
    spec: Option<&str>,
    recorded: RecordedRegion,
    rules: &RegionRules,
) -> Result<String, Outcome> {
    if let Some(lives_in) = recorded.region() {
        return match spec {
            Some(wanted) if wanted != lives_in => Err(Outcome::Stalled {
                reason: "RegionChanged",
                message: format!(
                    "spec.region is {wanted} but the key lives in {lives_in}: a KMS key cannot move between Regions; set spec.region to {lives_in} (or remove it), or make a new KmsKey for a key in {wanted}"
                ),
            }),
            _ => Ok(lives_in),
        };
    }
    let Some(wanted) = spec.or(rules.home.as_deref()) else {
        return Err(Outcome::Stalled {
            reason: "NoRegion",
            message:
                "spec.region is not set and the operator has no Region of its own (--region, AWS_REGION)"
                    .to_owned(),
        });
    };
    if !rules.allowed.is_empty() && !rules.allowed.iter().any(|r| r == wanted) {
        let whose = if spec.is_some() { "spec.region" } else { "the operator's Region" };
        return Err(Outcome::Stalled {
            reason: "RegionNotAllowed",
            message: format!(
                "{whose} {wanted} is not one of the Regions this operator may make keys in (--allowed-regions {})",
                rules.allowed.join(",")
            ),
        });
    }
    Ok(wanted.to_owned())
}

/// The Region a released object's key is looked for in: where status says it is, else where
/// the spec would have made it. None: no Region, so no key was ever made.
pub fn release_region(spec: Option<&str>, recorded: RecordedRegion, rules: &RegionRules) -> Option<String> {
    recorded.region().or_else(|| spec.or(rules.home.as_deref()).map(str::to_owned))
}

/// The Region field of an ARN (`arn:aws:kms:eu-west-1:123456789012:key/...`).
pub fn arn_region(arn: &str) -> Option<&str> {
    let region = arn.split(':').nth(3)?;
    is_region_name(region).then_some(region)
}

/// The ARN `arn` would have in `region`: that of a replica of a multi-Region key. `None` when
/// `arn` is not an ARN with a Region.
pub fn arn_in_region(arn: &str, region: &str) -> Option<String> {
    let mut parts: Vec<&str> = arn.split(':').collect();
    arn_region(arn)?;
    parts[3] = region;
    Some(parts.join(":"))
}

/// Whether `text` has the shape of an AWS Region name: `eu-west-1`, `us-gov-west-1`,
/// `ap-southeast-5`, `cn-north-1`.
pub fn is_region_name(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else { return false };
    let lower = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    text.len() <= 32
        && first.len() == 2
        && lower(first)
        && !middle.is_empty()
        && middle.iter().all(lower)
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN_EU: &str = "arn:aws:kms:eu-west-1:123456789012:key/k1";

    fn rules(home: Option<&str>, allowed: &[&str]) -> RegionRules {
        RegionRules {
            home: home.map(str::to_owned),
            allowed: allowed.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn stalled_reason(result: Result<String, Outcome>) -> &'static str {
        match result {
            Err(Outcome::Stalled { reason, .. }) => reason,
            other => panic!("expected Stalled, got {other:?}"),
        }
    }

    #[test]
    fn a_new_key_goes_to_spec_region_else_the_operators() {
        let home = rules(Some("us-east-1"), &[]);
        let none = RecordedRegion::default();
        assert_eq!(key_region(Some("eu-west-1"), none, &home), Ok("eu-west-1".into()));
        assert_eq!(key_region(None, none, &home), Ok("us-east-1".into()));
        assert_eq!(stalled_reason(key_region(None, none, &rules(None, &[]))), "NoRegion");
    }

    #[test]
    fn a_recorded_key_stays_where_it_lives() {
        let home = rules(Some("us-east-1"), &["us-east-1"]);
        let by_arn = RecordedRegion { key_arn: Some(ARN_EU), ..Default::default() };
        // The operator's Region changed, or eu-west-1 left the allowed list: the key is still
        // managed in eu-west-1, never looked for (and made again) elsewhere.
        assert_eq!(key_region(None, by_arn, &home), Ok("eu-west-1".into()));
        assert_eq!(key_region(Some("eu-west-1"), by_arn, &home), Ok("eu-west-1".into()));
        let in_flight = RecordedRegion { intent: Some("eu-west-1"), ..Default::default() };
        assert_eq!(key_region(None, in_flight, &home), Ok("eu-west-1".into()));
        let by_status = RecordedRegion { region: Some("eu-west-1"), ..Default::default() };
        assert_eq!(key_region(None, by_status, &home), Ok("eu-west-1".into()));
    }

    #[test]
    fn a_spec_region_other_than_the_keys_stalls_and_names_both() {
        let by_arn =
            RecordedRegion { key_arn: Some(ARN_EU), intent: Some("us-east-1"), ..Default::default() };
        let result = key_region(Some("us-west-2"), by_arn, &rules(Some("us-east-1"), &[]));
        let Err(Outcome::Stalled { reason: "RegionChanged", message }) = result else { panic!("{result:?}") };
        assert!(message.contains("us-west-2") && message.contains("lives in eu-west-1"), "{message}");
    }

    #[test]
    fn new_keys_only_in_allowed_regions() {
        let allowed = rules(Some("us-east-1"), &["us-east-1", "eu-west-1"]);
        let none = RecordedRegion::default();
        assert_eq!(key_region(Some("eu-west-1"), none, &allowed), Ok("eu-west-1".into()));
        let result = key_region(Some("ap-south-1"), none, &allowed);
        let Err(Outcome::Stalled { reason: "RegionNotAllowed", message }) = result else {
            panic!("{result:?}")
        };
        assert!(message.starts_with("spec.region ap-south-1") && message.contains("us-east-1,eu-west-1"));
        let home_refused = key_region(None, none, &rules(Some("us-east-1"), &["eu-west-1"]));
        assert_eq!(stalled_reason(home_refused), "RegionNotAllowed");
    }

    #[test]
    fn a_key_adopted_by_arn_is_adopted_in_its_region() {
        let arn = Some(ARN_EU);
        assert_eq!(wanted_region(None, arn), Ok(Some("eu-west-1")));
        assert_eq!(wanted_region(Some("eu-west-1"), arn), Ok(Some("eu-west-1")));
        assert_eq!(
            wanted_region(Some("us-east-1"), Some("1234abcd-12ab-34cd-56ef-1234567890ab")),
            Ok(Some("us-east-1"))
        );
        assert_eq!(wanted_region(None, None), Ok(None));
        let result = wanted_region(Some("us-east-1"), arn);
        let Err(Outcome::Stalled { reason: "InvalidSpec", message }) = result else { panic!("{result:?}") };
        assert!(
            message.contains("in eu-west-1") && message.contains("spec.region is us-east-1"),
            "{message}"
        );
    }

    #[test]
    fn a_release_looks_where_the_key_is_or_would_be() {
        let home = rules(Some("us-east-1"), &["us-east-1"]);
        let by_arn = RecordedRegion { key_arn: Some(ARN_EU), ..Default::default() };
        assert_eq!(release_region(Some("us-west-2"), by_arn, &home).as_deref(), Some("eu-west-1"));
        let none = RecordedRegion::default();
        assert_eq!(release_region(Some("ap-south-1"), none, &home).as_deref(), Some("ap-south-1"));
        assert_eq!(release_region(None, none, &home).as_deref(), Some("us-east-1"));
        assert_eq!(release_region(None, none, &rules(None, &[])), None);
    }

    #[test]
    fn region_names() {
        for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-5", "cn-north-1", "us-isob-east-1"] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in ["", "eu", "eu-1", "EU-west-1", "eu-west-", "eu-west-x", "mars-1", "eu--1", "e-west-1"] {
            assert!(!is_region_name(bad), "{bad}");
        }
        assert_eq!(arn_region(ARN_EU), Some("eu-west-1"));
        assert_eq!(arn_region("arn:k1"), None);
    }

    #[test]
    fn a_replica_arn_is_the_primary_arn_in_its_region() {
        let replica = arn_in_region(ARN_EU, "ap-south-1").unwrap();
        assert_eq!(replica, ARN_EU.replace("eu-west-1", "ap-south-1"));
        assert_eq!(arn_region(&replica), Some("ap-south-1"));
        assert_eq!(arn_in_region("arn:k1", "ap-south-1"), None);
    }
}
