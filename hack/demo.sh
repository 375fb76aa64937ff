#!/usr/bin/env bash
# `make demo`: a local control plane, a local KMS (moto), the operator and both examples,
# running until Ctrl-C. Everything it starts is stopped on exit, whatever the exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { printf '\n==> %s\n' "$*"; }

STATE="$(mktemp -d "${TMPDIR:-/tmp}/kms-operator-demo.XXXXXX")"
OPERATOR_PID="" MOTO_PID=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  trap - EXIT INT TERM
  set +e
  step "stopping the operator, moto and the control plane"
  [[ -n "$OPERATOR_PID" ]] && kill "$OPERATOR_PID" 2>/dev/null && wait "$OPERATOR_PID" 2>/dev/null
  [[ -n "$MOTO_PID" ]] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
  bash hack/controlplane.sh stop "$STATE/cp" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  echo "done"
}
trap cleanup EXIT
trap 'exit 0' INT TERM  # Ctrl-C is how the demo is meant to end

step "building the operator (cargo build; the first build takes a few minutes)"
cargo build --locked --quiet
step "installing moto if missing"
make --no-print-directory moto
step "building etcd, kube-apiserver, kubectl and kube-controller-manager if missing (first time: several minutes)"
bash hack/build-controlplane.sh etcd kube-apiserver kubectl kube-controller-manager

step "starting etcd and kube-apiserver"
bash hack/controlplane.sh start "$STATE/cp"
eval "$(bash hack/controlplane.sh env "$STATE/cp")"

step "starting moto's KMS server"
MOTO_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/python3 hack/moto_server.py -H 127.0.0.1 -p "$MOTO_PORT" >"$STATE/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
  sleep 0.2
done
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1

step "installing the CRDs and starting the operator (log: $STATE/operator.log)"
kubectl apply --server-side -f crds/kmskey.yaml >/dev/null
kubectl wait --for=condition=Established crd/kmskeys.kms.boosterpack.io crd/kmskeypolicies.kms.boosterpack.io --timeout=60s >/dev/null
HTTP_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
target/debug/kms-operator run --kms-endpoint "http://127.0.0.1:$MOTO_PORT" --tagging-endpoint "http://127.0.0.1:$MOTO_PORT" \
  --resync-interval 30s --cluster-name demo --http-addr "127.0.0.1:$HTTP_PORT" >"$STATE/operator.log" 2>&1 &
OPERATOR_PID=$!

step "applying examples/basic.yaml and examples/advanced.yaml"
kubectl apply -f examples/basic.yaml -f examples/advanced.yaml
kubectl wait --for=condition=Ready kms/basic-key kms/advanced-key --timeout=120s

step "kubectl get kms -o wide"
kubectl get kms -o wide

step "the keys as KMS reports them"
MOTO_URL="http://127.0.0.1:$MOTO_PORT" .venv/bin/python - <<'PY'
import os, boto3
kms = boto3.client("kms", endpoint_url=os.environ["MOTO_URL"], region_name="us-east-1")
aliases = {a["TargetKeyId"]: a["AliasName"] for a in kms.list_aliases()["Aliases"] if "TargetKeyId" in a}
for key in kms.list_keys()["Keys"]:
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    rotation = kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]
    grants = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    print(f"{aliases.get(meta['KeyId'], '-')}: {meta['KeyId']}")
    print(f"  state={meta['KeyState']} multiRegion={meta.get('MultiRegion')} rotation={rotation}")
    print(f"  description={meta.get('Description')!r}")
    for g in grants:
        ctx = (g.get("Constraints") or {}).get("EncryptionContextEquals")
        print(f"  grant {g.get('Name')}: {g['GranteePrincipal']} {g['Operations']} context={ctx}")
PY

cat <<TXT

==> the demo is running. From another shell:
  export KUBECONFIG=$KUBECONFIG
  export PATH=$(dirname "$(command -v kubectl)"):\$PATH
  kubectl get kms -o wide
  kubectl describe kms basic-key
  kubectl patch kms basic-key --type merge -p '{"spec":{"isEnabled":false}}'
  kubectl delete kms advanced-key
  curl -s http://127.0.0.1:$HTTP_PORT/metrics
The operator logs to $STATE/operator.log. Press Ctrl-C to stop and clean up.
TXT
wait "$OPERATOR_PID"
echo "the operator exited; see the log above" >&2
cat "$STATE/operator.log" >&2
exit 1
