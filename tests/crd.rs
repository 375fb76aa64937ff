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

/// Every example is a KmsKey, linked from the README, and applied by the end-to-end run (by
/// its file name in tests/e2e/), so none can rot unseen.
#[test]
fn every_example_parses_is_in_the_readme_and_is_applied_end_to_end() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap();
    let readme = read("README.md");
    let e2e: String = std::fs::read_dir(format!("{root}/tests/e2e"))
        .unwrap()
        .filter_map(|e| e.ok()?.path().to_str().filter(|p| p.ends_with(".rs")).map(std::fs::read_to_string))
        .map(Result::unwrap)
        .collect();
    let mut examples: Vec<String> = std::fs::read_dir(format!("{root}/examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    examples.sort();
    assert!(examples.len() >= 9, "{examples:?}");
    for file in examples {
        let text = read(&format!("examples/{file}"));
        let key: KmsKey =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file} is not a KmsKey: {e}"));
        assert!(!key.spec.alias_name.is_empty(), "{file}");
        assert!(readme.contains(&format!("examples/{file}")), "the README does not link examples/{file}");
        assert!(
            e2e.contains(&format!("\"{file}\"")) || e2e.contains(&format!("examples/{file}")),
            "no e2e applies {file}"
        );
    }
}
