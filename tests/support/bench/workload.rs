//! The objects a benchmark applies: for each key, what one operator needs to make a key with an
//! alias, yearly rotation, a description and two tags (the shape of `examples/basic.yaml`).

use serde_json::{Value, json};

/// The name of key `i`'s objects, and of its alias after `alias/`.
pub fn name(i: usize) -> String {
    format!("bench-{i}")
}

/// A key policy of about 1 KB in six statements, as a large object to hold in memory.
pub fn six_statement_policy() -> String {
    let statement = |sid: &str, action: &str| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::123456789012:role/{sid}")},
            "Action": action,
            "Resource": "*"
        })
    };
    let root = json!({
        "Sid": "Root", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"
    });
    let statements = vec![
        root,
        statement("Admins", "kms:Describe*"),
        statement("Encrypters", "kms:Encrypt"),
        statement("Decrypters", "kms:Decrypt"),
        statement("DataKeys", "kms:GenerateDataKey*"),
        statement("Granters", "kms:CreateGrant"),
    ];
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Key `i` as one KmsKey; with `policy`, also the six-statement policy and a label.
pub fn kms_key(i: usize, policy: bool) -> Value {
    let mut obj = json!({
        "apiVersion": "kms.boosterpack.io/v1alpha1",
        "kind": "KmsKey",
        "metadata": {"name": name(i)},
        "spec": {
            "aliasName": name(i),
            "keyDescription": "Benchmark key with rotation",
            "enableKeyRotation": true,
            "tags": {"Environment": "bench", "Example": "basic"}
        }
    });
    if policy {
        obj["spec"]["keyPolicy"] = six_statement_policy().into();
        obj["metadata"]["labels"] = json!({"team": "bench"});
    }
    obj
}

/// Key `i` as the ACK controller's Key; with `policy`, also the six-statement policy and a label.
pub fn ack_key(i: usize, policy: bool) -> Value {
    let mut obj = json!({
        "apiVersion": "kms.services.k8s.aws/v1alpha1",
        "kind": "Key",
        "metadata": {"name": name(i)},
        "spec": {
            "description": "Benchmark key with rotation",
            "enableKeyRotation": true,
            "tags": [
                {"tagKey": "Environment", "tagValue": "bench"},
                {"tagKey": "Example", "tagValue": "basic"}
            ]
        }
    });
    if policy {
        obj["spec"]["policy"] = six_statement_policy().into();
        obj["metadata"]["labels"] = json!({"team": "bench"});
    }
    obj
}

/// Key `i`'s alias as the ACK controller's Alias, pointing at the Key of the same name.
pub fn ack_alias(i: usize) -> Value {
    json!({
        "apiVersion": "kms.services.k8s.aws/v1alpha1",
        "kind": "Alias",
        "metadata": {"name": name(i)},
        "spec": {"name": format!("alias/{}", name(i)), "targetKeyRef": {"from": {"name": name(i)}}}
    })
}
