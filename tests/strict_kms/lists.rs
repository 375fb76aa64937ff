//! Pagination of every list, the lags of eventual consistency, tag:GetResources, and what the
//! proxy counts.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use aws_sdk_kms::types::GrantOperation;

use super::common::{CLUSTER_TAG, Kms, code, tag, tagging_for};
use crate::support::strict::{IdentityPolicy, StrictConfig};

/// Every page of a list: `fetch(marker)` gives a page's items and the marker for the next one
/// (`None` when the list is done).
async fn pages<F, Fut>(mut fetch: F) -> Vec<Vec<String>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = (Vec<String>, Option<String>)>,
{
    let (mut all, mut marker) = (Vec::new(), None);
    loop {
        let (items, next) = fetch(marker.take()).await;
        all.push(items);
        assert!(all.len() < 100, "the list never ends");
        match next {
            Some(next) => marker = Some(next),
            None => return all,
        }
    }
}

fn sizes(pages: &[Vec<String>]) -> Vec<usize> {
    pages.iter().map(Vec::len).collect()
}

fn union(pages: &[Vec<String>]) -> BTreeSet<String> {
    pages.iter().flatten().cloned().collect()
}

async fn list_keys(t: &Kms, limit: Option<i32>) -> Vec<Vec<String>> {
    pages(|marker| async move {
        let out = t.kms.list_keys().set_limit(limit).set_marker(marker).send().await.unwrap();
        let ids = out.keys().iter().map(|k| k.key_id().unwrap().to_owned()).collect();
        (ids, out.truncated().then(|| out.next_marker().unwrap().to_owned()))
    })
    .await
}

async fn raw_key_ids(t: &Kms) -> BTreeSet<String> {
    let out = t.raw.list_keys().send().await.unwrap();
    out.keys().iter().map(|k| k.key_id().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn list_keys_and_list_aliases_come_in_pages_that_add_up_to_motos_lists() {
    let t = Kms::start().await;
    let mut keys = Vec::new();
    for _ in 0..5 {
        keys.push(t.raw_key("test").await);
    }
    let listed = list_keys(&t, None).await;
    assert_eq!(sizes(&listed), [2, 2, 1]);
    assert_eq!(union(&listed), raw_key_ids(&t).await);
    assert_eq!(sizes(&list_keys(&t, Some(1)).await), [1, 1, 1, 1, 1], "a smaller Limit wins");
    for (i, key) in keys.iter().take(3).enumerate() {
        t.raw.create_alias().alias_name(format!("alias/a{i}")).target_key_id(key).send().await.unwrap();
    }
    let kms = &t.kms;
    let aliases = pages(|marker| async move {
        let out = kms.list_aliases().set_marker(marker).send().await.unwrap();
        let names = out.aliases().iter().map(|a| a.alias_name().unwrap().to_owned()).collect();
        (names, out.truncated().then(|| out.next_marker().unwrap().to_owned()))
    })
    .await;
    let raw = t.raw.list_aliases().send().await.unwrap();
    let raw: BTreeSet<String> = raw.aliases().iter().map(|a| a.alias_name().unwrap().to_owned()).collect();
    assert!(aliases.iter().all(|p| p.len() <= 2) && aliases.len() == raw.len().div_ceil(2));
    assert_eq!(union(&aliases), raw);
    assert_eq!(t.proxy.calls()["ListAliases"], aliases.len() as u64);
}

#[tokio::test]
async fn tags_grants_and_rotations_of_a_key_come_in_pages() {
    // The shipped policy does not allow kms:ListKeyRotations (the operator does not call it).
    let t = Kms::start_with(allow_all()).await;
    let key = t.raw_key("test").await;
    let (key, kms) = (key.as_str(), &t.kms);
    for i in 0..4 {
        t.raw.tag_resource().key_id(key).tags(tag(&format!("t{i}"), "v")).send().await.unwrap();
        let grant = t.raw.create_grant().key_id(key).grantee_principal("arn:aws:iam::123456789012:role/app");
        grant.operations(GrantOperation::Decrypt).name(format!("g{i}")).send().await.unwrap();
    }
    for _ in 0..3 {
        t.raw.rotate_key_on_demand().key_id(key).send().await.unwrap();
    }
    let tags = pages(|marker| async move {
        let out = kms.list_resource_tags().key_id(key).set_marker(marker).send().await.unwrap();
        let keys = out.tags().iter().map(|t| t.tag_key().to_owned()).collect();
        (keys, out.truncated().then(|| out.next_marker().unwrap().to_owned()))
    })
    .await;
    assert_eq!(sizes(&tags), [2, 2, 1]);
    assert_eq!(union(&tags), ["t0", "t1", "t2", "t3", CLUSTER_TAG].map(String::from).into());
    let grants = pages(|marker| async move {
        let out = kms.list_grants().key_id(key).set_marker(marker).send().await.unwrap();
        let names = out.grants().iter().map(|g| g.name().unwrap().to_owned()).collect();
        (names, out.truncated().then(|| out.next_marker().unwrap().to_owned()))
    })
    .await;
    assert_eq!(sizes(&grants), [2, 2]);
    assert_eq!(union(&grants), ["g0", "g1", "g2", "g3"].map(String::from).into());
    let rotations = pages(|marker| async move {
        let out = kms.list_key_rotations().key_id(key).set_marker(marker).send().await.unwrap();
        let dates = out.rotations().iter().map(|r| format!("{:?}", r.rotation_date())).collect();
        (dates, out.truncated().then(|| out.next_marker().unwrap().to_owned()))
    })
    .await;
    assert_eq!(sizes(&rotations), [2, 1]);
}

#[tokio::test]
async fn a_marker_the_layer_did_not_issue_and_a_limit_out_of_range_are_refused() {
    let t = Kms::start().await;
    assert_eq!(code(t.kms.list_keys().marker("bogus").send().await), "InvalidMarkerException");
    assert_eq!(code(t.kms.list_keys().limit(0).send().await), "ValidationException");
    assert_eq!(code(t.kms.list_keys().limit(1001).send().await), "ValidationException");
}

fn allow_all() -> StrictConfig {
    let policy = r#"{"Statement":[{"Effect":"Allow","Action":["kms:*","tag:GetResources"],"Resource":"*"}]}"#;
    StrictConfig { identity_policy: IdentityPolicy::Json(policy.into()), ..StrictConfig::default() }
}

async fn tagged_arns(url: &str, per_page: Option<i32>) -> Vec<Vec<String>> {
    let tagging = &tagging_for(url);
    pages(|token| async move {
        let out = (tagging.get_resources().resource_type_filters("kms:key"))
            .set_resources_per_page(per_page)
            .set_pagination_token(token)
            .send()
            .await
            .unwrap();
        let arns =
            out.resource_tag_mapping_list().iter().map(|r| r.resource_arn().unwrap().to_owned()).collect();
        (arns, out.pagination_token().filter(|t| !t.is_empty()).map(str::to_owned))
    })
    .await
}

#[tokio::test]
async fn get_resources_comes_in_pages_and_is_counted() {
    let t = Kms::start_with(allow_all()).await;
    for _ in 0..5 {
        t.raw_key("test").await;
    }
    let paged = tagged_arns(&t.proxy.url, None).await;
    assert_eq!(sizes(&paged), [2, 2, 1]);
    assert_eq!(sizes(&tagged_arns(&t.proxy.url, Some(1)).await), [1; 5]);
    let whole = tagged_arns(&t.moto.url, None).await;
    assert_eq!(sizes(&whole), [5], "moto answers everything at once");
    assert_eq!(union(&paged), union(&whole));
    assert_eq!(t.proxy.calls()["GetResources"], 8);
}

#[tokio::test]
async fn a_new_key_shows_in_list_keys_and_get_resources_only_after_the_list_lag() {
    let t = Kms::start_with(allow_all()).await;
    let key = t.new_key().await;
    assert!(raw_key_ids(&t).await.contains(&key));
    assert!(!union(&list_keys(&t, None).await).contains(&key));
    let arn = format!("arn:aws:kms:us-east-1:123456789012:key/{key}");
    assert!(!union(&tagged_arns(&t.proxy.url, None).await).contains(&arn));
    t.proxy.clock().advance(Duration::from_secs(5));
    assert!(union(&list_keys(&t, None).await).contains(&key));
    assert!(union(&tagged_arns(&t.proxy.url, None).await).contains(&arn));
}

#[tokio::test]
async fn describe_key_does_not_find_a_key_younger_than_the_describe_lag() {
    let config = StrictConfig { describe_lag: Duration::from_secs(2), ..allow_all() };
    let t = Kms::start_with(config).await;
    let key = t.new_key().await;
    let arn = format!("arn:aws:kms:us-east-1:123456789012:key/{key}");
    assert_eq!(code(t.kms.describe_key().key_id(&key).send().await), "NotFoundException");
    assert_eq!(code(t.kms.describe_key().key_id(&arn).send().await), "NotFoundException");
    let old = t.raw_key("test").await;
    t.kms.describe_key().key_id(&old).send().await.expect("a key the proxy did not see made is old");
    t.proxy.clock().advance(Duration::from_secs(2));
    t.kms.describe_key().key_id(&key).send().await.expect("old enough now");
}

#[tokio::test]
async fn the_layers_own_calls_to_moto_are_not_counted() {
    let t = Kms::start().await;
    let key = t.raw_key("test").await;
    let grant = t.kms.create_grant().key_id(&key).grantee_principal("arn:aws:iam::123456789012:role/app");
    grant.operations(GrantOperation::Decrypt).name("g").send().await.unwrap();
    t.kms.update_key_description().key_id(&key).description("d").send().await.unwrap();
    t.kms.list_grants().key_id(&key).send().await.unwrap();
    let calls: Vec<(String, u64)> = t.proxy.calls().into_iter().collect();
    assert_eq!(
        calls,
        [("CreateGrant".into(), 1), ("ListGrants".into(), 1), ("UpdateKeyDescription".into(), 1)]
    );
}

#[tokio::test]
async fn off_passes_every_call_to_moto_unchanged() {
    let t = Kms::start_with(StrictConfig::off()).await;
    for _ in 0..3 {
        t.kms.create_key().send().await.expect("no IAM");
    }
    let listed = list_keys(&t, None).await;
    assert_eq!(sizes(&listed), [3], "moto does not page");
    let key = &listed[0][0];
    t.kms.cancel_key_deletion().key_id(key).send().await.expect("moto cancels what is not pending");
    t.kms.schedule_key_deletion().key_id(key).pending_window_in_days(7).send().await.unwrap();
    t.kms.enable_key().key_id(key).send().await.expect("moto enables a key pending deletion");
}

#[test]
fn the_test_clock_moves_instants_and_timestamps_together_for_every_clone() {
    let clock = crate::support::clock::TestClock::new();
    let (instant, timestamp) = (clock.now_instant(), clock.now_timestamp());
    clock.clone().advance(Duration::from_secs(300));
    assert!(clock.now_instant().duration_since(instant) >= Duration::from_secs(300));
    let moved = clock.now_timestamp().duration_since(timestamp);
    assert!(moved.as_secs() >= 300 && moved.as_secs() < 310, "{moved:?}");
    assert_eq!(clock.offset(), Duration::from_secs(300));
}
