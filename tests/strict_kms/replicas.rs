//! Multi-Region replicas as AWS keeps them (moto stores them through hack/moto_server.py, the
//! layer adds AWS's rules): a replica's own aliases, grants, tags and description; rotation
//! only on the primary; one replica per Region; IAM for a new key in the replica Region; a new
//! replica's tags reaching IAM late; ReplicateKey spending CreateKey's quota there too.

use crate::common::{CLUSTER_TAG, Kms, code, tag};
use crate::support::moto::client_in;

/// A multi-Region primary made straight on moto (IAM sees its tags at once), tagged for the
/// `test` cluster, with its first replica in eu-west-1 made through the proxy.
async fn replicated(t: &Kms) -> String {
    let out = t.raw.create_key().multi_region(true).tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
    let key_id = out.key_metadata().unwrap().key_id().to_owned();
    let replica = (t.kms.replicate_key())
        .key_id(&key_id)
        .replica_region("eu-west-1")
        .description("the replica")
        .tags(tag(CLUSTER_TAG, "test"))
        .send()
        .await
        .expect("the shipped policy lets the operator replicate its own keys");
    let meta = replica.replica_key_metadata().unwrap();
    assert_eq!(meta.arn(), Some(format!("arn:aws:kms:eu-west-1:123456789012:key/{key_id}").as_str()));
    key_id
}

#[tokio::test]
async fn a_replica_is_its_own_key_in_its_region_and_the_primary_lists_it() {
    let t = Kms::start().await;
    let key_id = replicated(&t).await;
    let eu = client_in(&t.moto.url, "eu-west-1");
    let meta = eu.describe_key().key_id(&key_id).send().await.unwrap().key_metadata.unwrap();
    let config = meta.multi_region_configuration().unwrap();
    assert_eq!(config.multi_region_key_type().map(|k| k.as_str()), Some("REPLICA"));
    assert_eq!(meta.description(), Some("the replica"), "ReplicateKey's Description, not the primary's");
    let primary = t.raw.describe_key().key_id(&key_id).send().await.unwrap().key_metadata.unwrap();
    let config = primary.multi_region_configuration().unwrap();
    assert_eq!(config.multi_region_key_type().map(|k| k.as_str()), Some("PRIMARY"));
    let listed: Vec<&str> = config.replica_keys().iter().filter_map(|r| r.region()).collect();
    assert_eq!(listed, ["eu-west-1"]);
    t.raw.create_alias().alias_name("alias/primary-only").target_key_id(&key_id).send().await.unwrap();
    let aliases = eu.list_aliases().key_id(&key_id).send().await.unwrap();
    assert!(aliases.aliases().is_empty(), "aliases are per Region: {:?}", aliases.aliases());
}

#[tokio::test]
async fn one_replica_per_region_and_only_of_a_primary() {
    let t = Kms::start().await;
    let key_id = replicated(&t).await;
    let again =
        t.kms.replicate_key().key_id(&key_id).replica_region("eu-west-1").tags(tag(CLUSTER_TAG, "test"));
    assert_eq!(code(again.send().await), "AlreadyExistsException");
    let home =
        t.kms.replicate_key().key_id(&key_id).replica_region("us-east-1").tags(tag(CLUSTER_TAG, "test"));
    assert_eq!(code(home.send().await), "AlreadyExistsException", "never into the primary's own Region");
    let single = t.raw_key("test").await;
    let refused =
        t.kms.replicate_key().key_id(&single).replica_region("eu-west-1").tags(tag(CLUSTER_TAG, "test"));
    assert_eq!(code(refused.send().await), "UnsupportedOperationException");
}

#[tokio::test]
async fn rotation_is_set_on_the_primary_never_on_a_replica() {
    let t = Kms::start().await;
    let key_id = replicated(&t).await;
    t.after_tag_lag();
    let eu = client_in(&t.proxy.url, "eu-west-1");
    assert_eq!(code(eu.enable_key_rotation().key_id(&key_id).send().await), "UnsupportedOperationException");
    assert_eq!(code(eu.rotate_key_on_demand().key_id(&key_id).send().await), "UnsupportedOperationException");
    t.kms.enable_key_rotation().key_id(&key_id).send().await.expect("on the primary");
}

#[tokio::test]
async fn replicating_needs_the_right_to_make_a_key_tagged_for_the_cluster_and_a_new_replicas_tags_reach_iam_late()
 {
    let t = Kms::start().await;
    let out = t.raw.create_key().multi_region(true).tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
    let key_id = out.key_metadata().unwrap().key_id().to_owned();
    let untagged = t.kms.replicate_key().key_id(&key_id).replica_region("eu-west-1");
    assert_eq!(code(untagged.send().await), "AccessDeniedException", "kms:CreateKey needs the cluster tag");
    let other =
        t.kms.replicate_key().key_id(&key_id).replica_region("eu-west-1").tags(tag(CLUSTER_TAG, "other"));
    assert_eq!(code(other.send().await), "AccessDeniedException");
    replicated_again(&t, &key_id).await;
    let eu = client_in(&t.proxy.url, "eu-west-1");
    let early = eu.update_key_description().key_id(&key_id).description("x");
    assert_eq!(
        code(early.send().await),
        "AccessDeniedException",
        "IAM does not see the new replica's tags yet"
    );
    t.after_tag_lag();
    eu.update_key_description().key_id(&key_id).description("x").send().await.expect("once they reach IAM");
}

async fn replicated_again(t: &Kms, key_id: &str) {
    let ok = t.kms.replicate_key().key_id(key_id).replica_region("eu-west-1").tags(tag(CLUSTER_TAG, "test"));
    ok.send().await.expect("tagged for this cluster");
}

#[tokio::test]
async fn replicate_key_spends_create_keys_quota_in_the_replica_region() {
    let t = Kms::start().await;
    t.proxy.enforce_quotas(&[("CreateKey", 1.0)]);
    let eu = client_in(&t.proxy.url, "eu-west-1");
    eu.create_key().tags(tag(CLUSTER_TAG, "test")).send().await.expect("eu-west-1's CreateKey token");
    let out = t.raw.create_key().multi_region(true).tags(tag(CLUSTER_TAG, "test")).send().await.unwrap();
    let key_id = out.key_metadata().unwrap().key_id().to_owned();
    let replicate =
        t.kms.replicate_key().key_id(&key_id).replica_region("eu-west-1").tags(tag(CLUSTER_TAG, "test"));
    let _ = replicate.send().await;
    assert!(t.proxy.throttled_by_quota() >= 1, "eu-west-1's CreateKey bucket was spent");
}

#[tokio::test]
async fn a_primary_scheduled_for_deletion_with_replicas_waits_for_them() {
    let t = Kms::start().await;
    let key_id = replicated(&t).await;
    t.after_tag_lag();
    t.kms.schedule_key_deletion().key_id(&key_id).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(t.state(&key_id).await, "PendingReplicaDeletion");
}
