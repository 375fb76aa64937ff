//! The account's aliases, listed once and shared by every object's quick look (see
//! `plan::reads`): one ListAliases call per 100 aliases for the whole account, instead of one
//! per key. A listing is reused until it is `max_age` old; concurrent lookers wait for the one
//! listing in flight. Only quick looks use it: a stale listing can delay the notice of an
//! alias changed by hand, never cause a change (a quick look that sees anything to do reads
//! the key in full before acting).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::kms::{KmsError, KmsPort};

/// Alias name → the ID of the key it points at.
pub type AliasListing = Arc<BTreeMap<String, String>>;

/// The latest listing of the account's aliases, and when it was made.
#[derive(Debug)]
pub struct AccountAliases {
    max_age: Duration,
    latest: Mutex<Option<(Instant, AliasListing)>>,
}

impl AccountAliases {
    /// Listings are reused until they are `max_age` old.
    pub fn new(max_age: Duration) -> Self {
        AccountAliases { max_age, latest: Mutex::new(None) }
    }

    /// A listing at most `max_age` old, made now if there is none.
    pub async fn get(&self, kms: &dyn KmsPort) -> Result<AliasListing, KmsError> {
        let mut latest = self.latest.lock().await;
        if let Some((at, listing)) = latest.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok(listing.clone());
        }
        let listing = Arc::new(kms.account_aliases().await?);
        *latest = Some((Instant::now(), listing.clone()));
        Ok(listing)
    }
}
