//! One KMS client per AWS identity (the operator's own, or a KmsAccount's role) and Region the
//! operator's keys live in, made on first use and kept: each with its own client-side quota
//! buckets (AWS's KMS quotas are per account and Region) and its own shared listing of the
//! Region's aliases.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::kms::KmsPort;
use crate::reconcile::account::Identity;
use crate::reconcile::region::RegionRules;
use crate::reconcile::{AccountAliases, Regional, ReplicaRegions};

/// Makes the KMS port of an identity in a Region.
pub type MakePort = Box<dyn Fn(&Identity, &str) -> Arc<dyn KmsPort> + Send + Sync>;

/// At most this many Regions get a client for new keys, per identity (AWS has fewer than 40):
/// without `--allowed-regions`, a namespace user naming made-up Regions cannot make the
/// operator hold a client for each.
pub const MAX_REGIONS: usize = 64;

pub struct Regions {
    /// The operator's own Region and the Regions new keys may be made in.
    pub rules: RegionRules,
    home: String,
    max_regions: usize,
    make: MakePort,
    alias_max_age: Duration,
    known: Mutex<HashMap<(Identity, String), Arc<Regional>>>,
}

impl Regions {
    /// Regions whose ports `make` builds, `home` the operator's own; new keys may be made in
    /// `allowed` (empty: any). Alias listings are reused until `alias_max_age` old.
    pub fn new(home: String, allowed: Vec<String>, make: MakePort, alias_max_age: Duration) -> Self {
        let rules = RegionRules { home: Some(home.clone()), allowed };
        Regions { rules, home, max_regions: MAX_REGIONS, make, alias_max_age, known: Mutex::default() }
    }

    /// KMS in `region` as `identity`, made now if it is the first use. None when `MAX_REGIONS`
    /// Regions have a client for that identity already and this one holds no recorded key
    /// (`holds_key`): a key that exists is always reached.
    pub fn get(&self, identity: &Identity, region: &str, holds_key: bool) -> Option<Arc<Regional>> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let key = (identity.clone(), region.to_owned());
        let served = known.keys().filter(|(i, _)| i == identity).count();
        if !known.contains_key(&key) && !holds_key && served >= self.max_regions {
            return None;
        }
        Some(self.kept(&mut known, key))
    }

    /// KMS in the operator's own Region with its own identity, for what is not about one key
    /// (learning the account).
    pub fn home(&self) -> Arc<Regional> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        self.kept(&mut known, (Identity::Own, self.home.clone()))
    }

    /// The Regions as `identity` reaches them: where its replicas are.
    pub fn as_identity<'a>(&'a self, identity: &'a Identity) -> AsIdentity<'a> {
        AsIdentity { regions: self, identity }
    }

    /// The port of `key` in `known`, made and kept there on first use.
    fn kept(
        &self,
        known: &mut HashMap<(Identity, String), Arc<Regional>>,
        key: (Identity, String),
    ) -> Arc<Regional> {
        let regional = known.entry(key).or_insert_with_key(|(identity, region)| {
            tracing::info!(region, role = role_of(identity), "KMS client made for a Region");
            Arc::new(Regional {
                kms: (self.make)(identity, region),
                account_aliases: AccountAliases::new(self.alias_max_age),
            })
        });
        regional.clone()
    }
}

fn role_of(identity: &Identity) -> &str {
    match identity {
        Identity::Own => "(own)",
        Identity::Role(role) => &role.role_arn,
    }
}

/// The Regions as one identity reaches them.
pub struct AsIdentity<'a> {
    regions: &'a Regions,
    identity: &'a Identity,
}

impl ReplicaRegions for AsIdentity<'_> {
    /// As `get`; and a Region that holds no replica yet must be one new keys may be made in.
    fn regional(&self, region: &str, holds_key: bool) -> Result<Arc<Regional>, String> {
        let allowed = &self.regions.rules.allowed;
        if !holds_key && !allowed.is_empty() && !allowed.iter().any(|a| a == region) {
            return Err(format!(
                "spec.replicaRegions names {region}, where the operator may not make keys (--allowed-regions: {}); nothing was made there",
                allowed.join(", ")
            ));
        }
        self.regions.get(self.identity, region, holds_key).ok_or_else(|| {
            format!(
                "the operator already serves {MAX_REGIONS} Regions; {region} is not one of them (a cluster admin can list the Regions with --allowed-regions)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn each_region_gets_one_port_made_on_first_use() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = made.clone();
        let make: MakePort = Box::new(move |_, region| {
            counter.fetch_add(1, Ordering::Relaxed);
            Arc::new(crate::kms::AwsKms::new(crate::kms::AwsClients::unused(region)))
        });
        let regions = Regions::new("us-east-1".into(), vec![], make, Duration::from_secs(60));
        assert_eq!(made.load(Ordering::Relaxed), 0);
        let a = regions.get(&Identity::Own, "eu-west-1", false).unwrap();
        let b = regions.get(&Identity::Own, "eu-west-1", false).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(made.load(Ordering::Relaxed), 1);
        let home = regions.home();
        assert!(!Arc::ptr_eq(&a, &home));
        assert_eq!(made.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn each_identity_gets_its_own_port_and_quota_buckets_in_a_region() {
        use crate::reconcile::account::AssumedRole;
        let make: MakePort =
            Box::new(|_, region| Arc::new(crate::kms::AwsKms::new(crate::kms::AwsClients::unused(region))));
        let regions = Regions::new("us-east-1".into(), vec![], make, Duration::from_secs(60));
        let role = |account: &str| {
            Identity::Role(AssumedRole {
                role_arn: format!("arn:aws:iam::{account}:role/r"),
                external_id: None,
                session_tags: Default::default(),
                account_id: account.into(),
            })
        };
        let (a, b) = (role("111111111111"), role("222222222222"));
        let in_a = regions.get(&a, "eu-west-1", false).unwrap();
        let in_b = regions.get(&b, "eu-west-1", false).unwrap();
        let own = regions.get(&Identity::Own, "eu-west-1", false).unwrap();
        assert!(!Arc::ptr_eq(&in_a, &in_b) && !Arc::ptr_eq(&in_a, &own), "AWS's quotas are per account");
        assert!(Arc::ptr_eq(&in_a, &regions.get(&a, "eu-west-1", false).unwrap()));
    }

    #[test]
    fn made_up_regions_cannot_grow_the_clients_past_the_cap() {
        let make: MakePort =
            Box::new(|_, region| Arc::new(crate::kms::AwsKms::new(crate::kms::AwsClients::unused(region))));
        let regions = Regions {
            max_regions: 2,
            ..Regions::new("us-east-1".into(), vec![], make, Duration::from_secs(60))
        };
        assert!(regions.get(&Identity::Own, "xx-fake-1", false).is_some());
        assert!(regions.get(&Identity::Own, "xx-fake-2", false).is_some());
        assert!(regions.get(&Identity::Own, "xx-fake-3", false).is_none(), "a third new Region is refused");
        assert!(regions.get(&Identity::Own, "xx-fake-1", false).is_some(), "a known one is still served");
        assert!(
            regions.get(&Identity::Own, "eu-west-1", true).is_some(),
            "a Region holding a recorded key always is"
        );
    }
}
