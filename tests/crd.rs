//! The committed CRD is the one the code generates, and it documents every field.

use kms_operator::api::{KmsKey, crd_yaml};
use kube::CustomResourceExt;
use serde_json::Value;

#[test]
fn crds_kmskey_yaml_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/kmskey.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(committed == crd_yaml(), "crds/kmskey.yaml is stale: run `make crds` and commit it");
}

/// Paths of schema properties that have no description, so `kubectl explain` shows nothing.
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            let top_level = path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
            if prop.get("description").is_none() && !top_level {
                out.push(here.clone());
            }
            undocumented(prop, &here, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, path, out);
    }
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    let crd = serde_json::to_value(KmsKey::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut missing = Vec::new();
    undocumented(schema, "", &mut missing);
    assert!(missing.is_empty(), "fields without a description: {missing:?}");
}

#[test]
fn the_crd_has_the_short_name_and_printer_columns_users_rely_on() {
    let crd = KmsKey::crd();
    assert_eq!(crd.spec.names.short_names, Some(vec!["kms".to_owned()]));
    let columns: Vec<String> =
        (crd.spec.versions[0].additional_printer_columns.iter().flatten()).map(|c| c.name.clone()).collect();
    for want in ["Alias", "Key ID", "State", "Ready", "Age"] {
        assert!(columns.iter().any(|c| c == want), "missing column {want}: {columns:?}");
    }
}

#[test]
fn the_spec_tags_leave_room_for_the_operators_own_within_aws_limit_of_50() {
    let crd = serde_json::to_value(KmsKey::crd()).unwrap();
    let tags =
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tags"];
    let max = tags["maxProperties"].as_u64().unwrap() as usize;
    assert_eq!(max + kms_operator::reconcile::OPERATOR_TAGS, 50);
    assert!(tags["description"].as_str().unwrap().contains(&format!("at most {max}")));
}
