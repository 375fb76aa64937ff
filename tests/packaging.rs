//! The packaging stays true to the code: the chart's CRD, the kustomize manifests, the Argo CD
//! health check, the IAM policy and the Dockerfile's build command. Needs helm (built by
//! `make test` into the control-plane cache) and Debian's lua5.4 (installed by `make test`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn helm() -> PathBuf {
    let out = Command::new("bash")
        .args(["-c", "source \"$1/hack/lib.sh\" && kms_cp_binary_path helm", "_", ROOT])
        .output()
        .unwrap();
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.exists(),
        "helm not found at {}: run `make test` or `hack/build-controlplane.sh helm`",
        path.display()
    );
    path
}

fn helm_run(args: &[&str]) -> (bool, String) {
    let out = Command::new(helm()).args(args).current_dir(ROOT).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_charts_crd_is_byte_identical_to_crds_kmskey_yaml() {
    assert!(
        read("charts/kms-operator/files/kmskey.yaml") == read("crds/kmskey.yaml"),
        "charts/kms-operator/files/kmskey.yaml differs from crds/kmskey.yaml: run `make crds`"
    );
}

#[test]
fn the_chart_lints_and_its_schema_refuses_unknown_keys_and_wrong_types() {
    let chart = "charts/kms-operator";
    let (ok, text) = helm_run(&["lint", chart]);
    assert!(ok, "{text}");
    let (ok, text) = helm_run(&["lint", chart, "--set", "replicaCont=2"]);
    assert!(!ok && text.contains("replicaCont"), "a misspelt value must fail: {text}");
    let (ok, text) = helm_run(&["template", "x", chart, "--set", "concurrency=many"]);
    assert!(!ok && text.contains("concurrency"), "a wrong type must fail: {text}");
    let (ok, text) = helm_run(&["template", "x", chart, "--set", "logFormat=xml"]);
    assert!(!ok && text.contains("logFormat"), "{text}");
}

#[test]
fn the_chart_renders_a_restricted_pod_and_namespaced_roles_on_request() {
    let (ok, text) = helm_run(&["template", "kms", "charts/kms-operator", "-n", "kms-system"]);
    assert!(ok, "{text}");
    for want in [
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        "type: RuntimeDefault",
        "drop: [\"ALL\"]",
        "path: /healthz",
        "path: /readyz",
        "kind: ClusterRole",
    ] {
        assert!(text.contains(want), "default rendering lacks {want}");
    }
    assert!(!text.contains("leases"), "no lease rights without leader election");
    assert!(!text.contains("secrets") && !text.contains("configmaps"), "no access to secrets or configmaps");

    let args =
        ["template", "kms", "charts/kms-operator", "-n", "kms-system", "--set", "watchNamespaces={team-a}"];
    let (ok, text) = helm_run(&args);
    assert!(ok, "{text}");
    let cluster_roles: Vec<&str> =
        text.split("---").filter(|doc| doc.contains("\nkind: ClusterRole\n")).collect();
    let cluster_scoped = |doc: &&&str| doc.contains("kmskeypolicies") || doc.contains("kmsaccounts");
    assert!(
        cluster_roles.iter().all(|doc| cluster_scoped(&doc) && !doc.contains("kmskeys\"")),
        "namespaced mode uses Roles, but for reading the cluster-scoped KmsKeyPolicy and KmsAccounts: {cluster_roles:?}"
    );
    assert!(text.contains("namespace: team-a") && text.contains("KMS_OPERATOR_NAMESPACES"));

    let (ok, text) = helm_run(&["template", "kms", "charts/kms-operator"]);
    assert!(
        ok && text.contains("kind: ValidatingAdmissionPolicy\n") && text.contains("paramKind:"),
        "{text}"
    );
    let args = ["template", "kms", "charts/kms-operator", "--set", "clusterPolicy.admission=false"];
    let (ok, text) = helm_run(&args);
    assert!(ok && !text.contains("kind: ValidatingAdmissionPolicy"), "{text}");
    let args = [
        "template",
        "kms",
        "charts/kms-operator",
        "--set",
        "clusterPolicy.create=true",
        "--set",
        "clusterPolicy.spec.minDeletionWindowInDays=14",
    ];
    let (ok, text) = helm_run(&args);
    assert!(
        ok && text.contains("kind: KmsKeyPolicy") && text.contains("minDeletionWindowInDays: 14"),
        "{text}"
    );

    let args = ["template", "kms", "charts/kms-operator", "--set", "exportToConfigMaps=true"];
    let (ok, text) = helm_run(&args);
    assert!(ok && text.contains("configmaps") && !text.contains("secrets"), "{text}");
    assert!(text.contains("KMS_OPERATOR_EXPORT_TO_CONFIG_MAPS\n              value: \"true\""), "{text}");

    let (ok, text) = helm_run(&["template", "kms", "charts/kms-operator", "--set", "replicaCount=2"]);
    assert!(ok && text.contains("KMS_OPERATOR_LEADER_ELECTION") && text.contains("leases"), "{text}");

    let args = [
        "template",
        "kms",
        "charts/kms-operator",
        "--set",
        "shards[0].name=a,shards[0].selector=kms.boosterpack.io/shard=a",
        "--set",
        "shards[1].name=rest,shards[1].selector=kms.boosterpack.io/shard!=a",
    ];
    let (ok, text) = helm_run(&args);
    let deployments: Vec<&str> = text.split("---").filter(|d| d.contains("\nkind: Deployment\n")).collect();
    assert!(ok && deployments.len() == 2, "{text}");
    for (shard, selector) in [("a", "kms.boosterpack.io/shard=a"), ("rest", "kms.boosterpack.io/shard!=a")] {
        let doc = deployments
            .iter()
            .find(|d| d.contains(&format!("name: kms-kms-operator-{shard}\n")))
            .expect(&text);
        assert!(doc.contains(&format!("value: \"{selector}\"")), "{doc}");
        assert!(
            doc.contains(&format!("kms.boosterpack.io/shard: \"{shard}\"")),
            "disjoint pod selectors: {doc}"
        );
    }
    let (ok, text) = helm_run(&["template", "kms", "charts/kms-operator", "--set", "shards[0].name=a"]);
    assert!(!ok && text.contains("selector"), "a shard needs a selector: {text}");

    let args = [
        "template",
        "kms",
        "charts/kms-operator",
        "--set",
        "aws.caBundle.configMap=corp-ca,aws.httpsProxy=http://proxy.internal:3128,aws.noProxy=.internal",
        "--set",
        "aws.useFipsEndpoint=true",
        "--set",
        "aws.allowedRegions={eu-west-1,us-east-1}",
        "--set",
        "aws.regionalKmsEndpoints.eu-west-1=https://vpce-1.kms.eu-west-1.vpce.amazonaws.com",
        "--set",
        "aws.regionalKmsEndpoints.us-east-1=https://vpce-2.kms.us-east-1.vpce.amazonaws.com",
    ];
    let (ok, text) = helm_run(&args);
    for wanted in [
        "name: AWS_CA_BUNDLE\n              value: /etc/kms-operator/ca/ca.pem",
        "mountPath: /etc/kms-operator/ca",
        "name: corp-ca",
        "name: HTTPS_PROXY\n              value: \"http://proxy.internal:3128\"",
        "name: NO_PROXY\n              value: \".internal\"",
        "name: AWS_USE_FIPS_ENDPOINT\n              value: \"true\"",
        "name: KMS_OPERATOR_ALLOWED_REGIONS\n              value: \"eu-west-1,us-east-1\"",
        "name: KMS_OPERATOR_REGIONAL_KMS_ENDPOINTS\n              value: \"eu-west-1=https://vpce-1.kms.eu-west-1.vpce.amazonaws.com,us-east-1=https://vpce-2.kms.us-east-1.vpce.amazonaws.com\"",
    ] {
        assert!(ok && text.contains(wanted), "missing {wanted:?} in {text}");
    }

    let (ok, text) = helm_run(&["template", "kms", "charts/kms-operator"]);
    assert!(ok && !text.contains("grafana_dashboard"), "no dashboard unless asked: {text}");
    let args = ["template", "kms", "charts/kms-operator", "--set", "metrics.dashboard.enabled=true"];
    let (ok, text) = helm_run(&args);
    let doc = text.split("---").find(|d| d.contains("grafana_dashboard: \"1\"")).expect(&text);
    let embedded = doc.split_once("kms-operator.json: |-\n").expect(doc).1;
    let json: String =
        embedded.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n");
    let dashboard: serde_json::Value = serde_json::from_str(&json).expect(&json);
    assert!(ok && dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()), "{text}");
}

#[test]
fn deploy_manifests_are_the_charts_default_rendering() {
    let out = Command::new("bash").arg(Path::new(ROOT).join("hack/render-deploy.sh")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout) == read("deploy/kms-operator.yaml"),
        "deploy/kms-operator.yaml is stale: run `make deploy`"
    );
}

/// Dotted paths of the leaves of a YAML mapping (lists and empty maps count as leaves).
fn leaves(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() && prefix != "resources" => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(v, &path, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

#[test]
fn the_chart_readme_describes_every_value() {
    let values: serde_json::Value = serde_saphyr::from_str(&read("charts/kms-operator/values.yaml")).unwrap();
    let readme = read("charts/kms-operator/README.md");
    let mut paths = Vec::new();
    leaves(&values, "", &mut paths);
    let missing: Vec<_> = paths.iter().filter(|p| !readme.contains(&format!("`{p}`"))).collect();
    assert!(missing.is_empty(), "values missing from charts/kms-operator/README.md: {missing:?}");
}

#[test]
fn the_argocd_health_check_reads_the_conditions_as_argo_expects() {
    let lua = which("lua5.4").expect("lua5.4 is missing: `make test` installs it (apt-get install lua5.4)");
    let out = Command::new(lua)
        .args(["tests/argocd/health_test.lua", "deploy/argocd/kmskey-health.lua"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("6 passed, 0 failed"), "{text}");
}

#[test]
fn the_argocd_configmap_embeds_the_health_check_verbatim() {
    let script = read("deploy/argocd/kmskey-health.lua");
    let cm: serde_json::Value = serde_saphyr::from_str(&read("deploy/argocd/argocd-cm.yaml")).unwrap();
    let embedded = cm["data"]["resource.customizations.health.kms.boosterpack.io_KmsKey"].as_str().unwrap();
    assert_eq!(embedded, script);
}

#[test]
fn the_iam_policy_allows_exactly_the_kms_actions_the_operator_calls() {
    let adapter = read("src/kms/aws.rs");
    // Every call is named where it waits for its quota turn, or where its pages are read.
    let named = |marker: &str| -> Vec<String> {
        (adapter.split(marker).skip(1)).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect()
    };
    let operations = [named("self.turn(\""), named("all_pages(\"")].concat();
    let called: BTreeSet<String> = (operations.iter())
        .map(|op| if op == "GetResources" { format!("tag:{op}") } else { format!("kms:{op}") })
        .collect();
    let policy: serde_json::Value = serde_json::from_str(&read("deploy/iam-policy.json")).unwrap();
    let mut allowed = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        if statement["Effect"] == "Allow" {
            allowed.extend(
                statement["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()),
            );
        }
    }
    assert_eq!(allowed, called, "deploy/iam-policy.json must allow exactly what src/kms/aws.rs calls");
}

#[test]
fn the_dockerfile_builds_with_the_command_ci_runs() {
    let dockerfile = read("Dockerfile");
    let line =
        dockerfile.lines().skip_while(|l| *l != "# build-command").nth(1).expect("a # build-command marker");
    assert_eq!(line, "RUN cargo build --release --locked --bin kms-operator");
    assert!(read("Makefile").contains("/^# build-command$$/"), "make release runs the marked command");
    assert!(read(".ci/run").contains("make release"), ".ci/run runs the release build");
    assert!(dockerfile.contains("USER 65532:65532") && dockerfile.contains("distroless"));
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.exists())
}
