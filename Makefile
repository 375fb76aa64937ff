# Two commands for a newcomer: `make demo` (issue "Real control plane") and `make test`.
# Each installs what it needs on first use.

SHELL := /bin/bash
VENV := .venv
MOTO := $(VENV)/bin/moto_server
PYTHON ?= python3

.PHONY: demo test unit lint crds moto controlplane clean

## demo: control plane + moto + operator + both examples, until Ctrl-C.
demo:
	@bash hack/demo.sh

## test: every test (unit, CRD, moto integration, end-to-end); installs what is missing first.
test: $(MOTO) controlplane
	@echo "==> cargo test (first build compiles the dependencies: a few minutes on 2 cores)"
	MOTO_SERVER=$(abspath $(MOTO)) cargo test --locked --all-targets

## controlplane: build etcd, kube-apiserver and kubectl from source into the cache, if missing.
controlplane:
	@bash hack/build-controlplane.sh etcd kube-apiserver kubectl

## unit: the tests that need no server.
unit:
	cargo test --locked --lib

## lint: formatting and clippy, as CI runs them.
lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

## crds: regenerate crds/kmskey.yaml from the Rust types.
crds:
	cargo run --quiet --locked -- crd > crds/kmskey.yaml

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
