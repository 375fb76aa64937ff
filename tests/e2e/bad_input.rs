//! Bad input: the corpus in tests/e2e/bad/ must be refused at admission with the field named,
//! and a spec that passes admission but is still wrong must stall without touching KMS.

use std::path::Path;

use crate::env::ROOT;
use crate::world::World;

/// Every manifest in tests/e2e/bad/ is applied to the real apiserver; each must be refused
/// with a message containing its `# expect:` field. A `# setup:` file is applied first.
pub async fn refused_at_admission(w: &World) {
    let ns = "e2e-bad";
    w.namespace(ns);
    let dir = Path::new(ROOT).join("tests/e2e/bad");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    assert!(files.len() >= 30, "the corpus holds at least 30 manifests, found {}", files.len());

    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let header =
            |key: &str| text.lines().find_map(|l| l.strip_prefix(&format!("# {key}: ")).map(str::to_owned));
        let expect = header("expect").unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
        if let Some(setup) = header("setup") {
            w.kubectl_ok(&["apply", "-n", ns, "-f", dir.join("setup").join(setup).to_str().unwrap()]);
        }
        let out = w.cp().kubectl(&["apply", "-n", ns, "-f", file.to_str().unwrap()], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = file.file_name().unwrap().to_string_lossy();
        if out.status.success() {
            problems.push(format!("{name}: accepted"));
        } else if !stderr.contains(&expect) {
            problems.push(format!("{name}: refused without naming {expect}: {}", stderr.trim()));
        }
    }
    w.kubectl_ok(&["delete", "kms", "--all", "-n", ns, "--timeout=60s"]);
    eprintln!("     {} bad manifests, {} refused as expected", files.len(), files.len() - problems.len());
    assert!(
        problems.is_empty(),
        "{} of {} bad manifests misbehaved:\n{}",
        problems.len(),
        files.len(),
        problems.join("\n")
    );
}

/// A policy that is not JSON passes admission; the operator stalls before any KMS call.
pub async fn policy_not_json(w: &World) {
    let ns = "e2e-bad-policy";
    w.namespace(ns);
    let manifest = "apiVersion: kms.boosterpack.io/v1alpha1\nkind: KmsKey\nmetadata:\n  name: broken\nspec:\n  aliasName: e2e-broken-policy\n  keyPolicy: '{\"Statement\": ['\n";
    let keys_before = w.kms.list_keys().send().await.unwrap().keys().len();
    w.moto().start_recording();
    w.apply(ns, manifest);
    let obj = w.wait_condition(ns, "broken", "Stalled").await;
    w.kms.list_keys().send().await.unwrap();
    let calls = w.moto().recorded_operations();
    // Calls keep arriving (other objects' resyncs, the strict layer's own reads); that the
    // recorder has this ListKeys shows it saw everything before it.
    assert!(calls.iter().any(|op| op == "ListKeys"), "the recorder sees KMS calls: {calls:?}");
    let mutations: Vec<&String> = calls.iter().filter(|op| is_mutation(op)).collect();
    assert!(mutations.is_empty(), "a stalled spec must cause no KMS mutation, saw {mutations:?}");
    let conds = obj["status"]["conditions"].as_array().unwrap();
    let stalled = conds.iter().find(|c| c["type"] == "Stalled").unwrap();
    assert_eq!(stalled["reason"], "InvalidSpec");
    assert!(stalled["message"].as_str().unwrap().starts_with("spec.keyPolicy"), "{stalled}");
    assert!(w.keys_owned_by(ns, "broken").await.is_empty());
    assert_eq!(w.kms.list_keys().send().await.unwrap().keys().len(), keys_before, "no key was created");
    assert_eq!(w.alias_target("alias/e2e-broken-policy").await, None);

    // Fixing the spec recovers.
    w.kubectl_ok(&[
        "patch",
        "kms",
        "broken",
        "-n",
        ns,
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/spec/keyPolicy"}]"#,
    ]);
    w.wait_ready(ns, "broken").await;
    assert_eq!(w.keys_owned_by(ns, "broken").await.len(), 1);
}

/// KMS operations that change something.
fn is_mutation(operation: &str) -> bool {
    const READS: [&str; 4] = ["Describe", "Get", "List", "Generate"];
    !READS.iter().any(|prefix| operation.starts_with(prefix))
}
