//! GetKeyLastUsage (2026; aws-sdk-kms 1.129), which moto 5.2.5 does not serve: the layer
//! answers it from the cryptographic calls it passed for the key, on the test clock. Per the
//! API reference: `KeyLastUsage` holds the operation and time of the last successful
//! cryptographic call (an empty object when there was none), `TrackingStartDate` is when KMS
//! began recording, or the key's creation if later, and `KeyCreationDate` the key's creation.

use std::collections::HashMap;

use serde_json::{Value, json};

/// The operations KMS tracks as a key's use (`KeyLastUsageTrackingOperation`).
const TRACKED: [&str; 14] = [
    "Decapsulate",
    "Decrypt",
    "DeriveSharedSecret",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// What the layer saw of each key's use.
#[derive(Debug, Default)]
pub struct Usage {
    /// Per key: when the layer saw it created (epoch seconds, test clock).
    created: HashMap<String, i64>,
    /// Per key: the last tracked operation and when (epoch seconds, test clock).
    last: HashMap<String, (String, i64)>,
}

impl Usage {
    pub fn created(&mut self, key_id: &str, at: i64) {
        self.created.insert(key_id.to_owned(), at);
    }

    /// Records a successful call of `operation` on the key, if KMS tracks it.
    pub fn used(&mut self, key_id: &str, operation: &str, at: i64) {
        if TRACKED.contains(&operation) {
            self.last.insert(key_id.to_owned(), (operation.to_owned(), at));
        }
    }

    /// The GetKeyLastUsage answer for `key_id`; `moto_created` is the key's CreationDate as
    /// moto has it, for a key the layer did not see created.
    pub fn answer(&self, key_id: &str, moto_created: f64) -> Value {
        let created = self.created.get(key_id).map_or(moto_created, |at| *at as f64);
        let last = match self.last.get(key_id) {
            Some((operation, at)) => json!({"Operation": operation, "Timestamp": at}),
            None => json!({}),
        };
        json!({"KeyId": key_id, "KeyLastUsage": last, "TrackingStartDate": created, "KeyCreationDate": created})
    }
}
