# Two commands for a newcomer: `make demo` (issue "Real control plane") and `make test`.
# Each installs what it needs on first use.

SHELL := /bin/bash
VENV := .venv
MOTO := $(VENV)/bin/moto_server
PYTHON ?= python3

.PHONY: demo test reliability unit lint crds deploy release moto controlplane lua clean bench

## demo: control plane + moto + operator + both examples, until Ctrl-C.
demo:
	@bash hack/demo.sh

## test: every test (unit, CRD, moto integration, packaging, end-to-end); installs what is missing first.
test: $(MOTO) controlplane lua
	@echo "==> cargo test (first build compiles the dependencies: a few minutes on 2 cores)"
	MOTO_SERVER=$(abspath $(MOTO)) cargo test --locked --all-targets

## controlplane: build etcd, kube-apiserver, kubectl, kube-controller-manager and helm from source into the cache, if missing.
controlplane:
	@bash hack/build-controlplane.sh etcd kube-apiserver kubectl kube-controller-manager helm

## lua: Debian's Lua interpreter, for the Argo CD health-check test.
lua:
	@command -v lua5.4 >/dev/null || { echo "==> installing lua5.4 from Debian (apt-get)"; \
	  apt-get install -y -q lua5.4 >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q lua5.4 >/dev/null; } || \
	  { echo "error: lua5.4 is needed for tests/argocd; install it with apt-get install lua5.4"; exit 1; }; }

## release: the Dockerfile's release build, run outside Docker; prints the binary size.
release:
	@cmd="$$(sed -n '/^# build-command$$/{n;s/^RUN //p}' Dockerfile)"; \
	  echo "==> $$cmd (the Dockerfile's build command; a cold release build takes several minutes)"; \
	  eval "$$cmd" && ls -l target/release/kms-operator | awk '{printf "==> target/release/kms-operator: %.1f MiB\n", $$5/1048576}'

## deploy: regenerate deploy/kms-operator.yaml from the chart.
deploy:
	@bash hack/render-deploy.sh > deploy/kms-operator.yaml

## reliability: the larger fault, quota and crash runs whose figures are in the README (~10 min).
reliability: $(MOTO) controlplane
	KMS_RELIABILITY_KEYS=200 KMS_RELIABILITY_QUOTA_KEYS=200 MOTO_SERVER=$(abspath $(MOTO)) \
	  cargo test --locked --test reliability -- --nocapture --test-threads 1
	KMS_E2E_CRASH_KEYS=100 KMS_E2E_CRASH_KILLS=20 MOTO_SERVER=$(abspath $(MOTO)) \
	  cargo test --locked --test e2e -- sigkill leader

## bench: kms-operator (release build) beside the ACK kms-controller under AWS's KMS quotas, at
## BENCH_KEYS keys each (100, 1000, 10000; 10000 measures memory only); writes BENCHMARKS.md and
## its plots. BENCH_PEER: the peers folder with build-ack.sh (empty: kms-operator only).
## BENCH_ARGS: more harness flags (--strict, --resync S, --window S; see benches/bench.rs).
BENCH_KEYS ?= 100,1000
BENCH_PEER ?= ../shared/peers
BENCH_ARGS ?=
bench: $(MOTO)
	@bash hack/build-controlplane.sh etcd kube-apiserver kubectl kube-controller-manager >/dev/null
	BENCH_COMMAND="make bench BENCH_KEYS=$(BENCH_KEYS) BENCH_PEER=$(BENCH_PEER) BENCH_ARGS='$(BENCH_ARGS)'" \
	  MOTO_SERVER=$(abspath $(MOTO)) cargo bench --locked --bench bench -- \
	  --keys $(BENCH_KEYS) --peer "$(if $(BENCH_PEER),$(abspath $(BENCH_PEER)))" $(BENCH_ARGS)

## unit: the tests that need no server.
unit:
	cargo test --locked --lib

## lint: formatting and clippy, as CI runs them.
lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

## crds: regenerate crds/kmskey.yaml (and the chart's copy) from the Rust types.
crds:
	cargo run --quiet --locked -- crd > crds/kmskey.yaml
	cp crds/kmskey.yaml charts/kms-operator/files/kmskey.yaml

## moto: install moto (pinned in hack/requirements-moto.txt) into .venv.
moto: $(MOTO)

$(MOTO): hack/requirements-moto.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) is needed to install moto"; exit 1; }
	@echo "==> installing moto into $(VENV) (first run only, about 30 s)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r hack/requirements-moto.txt
	@touch $(MOTO)

clean:
	rm -rf $(VENV) target
