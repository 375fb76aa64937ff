#!/usr/bin/env bash
# Build the binaries of a local Kubernetes control plane (etcd, kube-apiserver,
# kubectl) and helm from source, through the Go module proxy, and cache them
# by version. See hack/README.md.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"

usage() {
  cat <<EOF
usage: $(basename "$0") [BINARY...]

Builds the named binaries (default: all) unless they are already cached:
  etcd            $KMS_CP_ETCD_VERSION  go.etcd.io/etcd/server/v3
  kube-apiserver  $KMS_CP_KUBE_VERSION  k8s.io/kubernetes/cmd/kube-apiserver
  kubectl         $KMS_CP_KUBE_VERSION  k8s.io/kubernetes/cmd/kubectl
  kube-controller-manager  $KMS_CP_KUBE_VERSION  k8s.io/kubernetes/cmd/kube-controller-manager
  helm            $KMS_CP_HELM_VERSION  helm.sh/helm/${KMS_CP_HELM_VERSION%%.*}/cmd/helm

Binaries are written as NAME-VERSION into the cache directory, with a NAME
symlink to the pinned version. The directory is printed on stdout at the end;
progress goes to stderr.

Environment:
  KMS_CP_BINARIES   binaries to build when no argument is given
                    (space or comma separated; default: all)
  KMS_CP_BIN_DIR    cache directory (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/kms-operator/bin)
  GO                Go command to use (default: go on PATH, else /usr/local/go/bin/go)
  KMS_CP_KEEP_GO_BUILD_CACHE=1
                    keep the Go build cache (several GiB, next to the cache
                    directory) instead of deleting it after a successful build
  KMS_CP_KUBE_VERSION, KMS_CP_ETCD_VERSION, KMS_CP_HELM_VERSION
                    override the pinned versions
EOF
}

# ---------------------------------------------------------------- arguments

requested_raw=()
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      usage
      exit 0
      ;;
    -*) kms_cp_die "unknown option: $arg (see --help)" ;;
    *) requested_raw+=("$arg") ;;
  esac
done
if ((${#requested_raw[@]} == 0)) && [[ -n "${KMS_CP_BINARIES:-}" ]]; then
  read -r -a requested_raw <<<"${KMS_CP_BINARIES//,/ }"
fi
if ((${#requested_raw[@]} == 0)); then
  requested_raw=(all)
fi

# Normalise to the canonical order, without duplicates.
declare -A want=()
for b in "${requested_raw[@]}"; do
  if [[ "$b" == all ]]; then
    for a in "${KMS_CP_ALL_BINARIES[@]}"; do want[$a]=1; done
  elif kms_cp_version_of "$b" >/dev/null; then
    want[$b]=1
  else
    kms_cp_die "unknown binary '$b' (known: ${KMS_CP_ALL_BINARIES[*]})"
  fi
done
requested=()
for a in "${KMS_CP_ALL_BINARIES[@]}"; do
  if [[ -n "${want[$a]:-}" ]]; then requested+=("$a"); fi
done

bin_dir="$(kms_cp_bin_dir)"
mkdir -p "$bin_dir"

link_and_report() {
  local b path
  for b in "${requested[@]}"; do
    path="$(kms_cp_binary_path "$b")"
    ln -sfn "$(basename "$path")" "$bin_dir/$b"
  done
  printf '%s\n' "$bin_dir"
}

missing_binaries() {
  local b
  for b in "${requested[@]}"; do
    if [[ ! -x "$(kms_cp_binary_path "$b")" ]]; then printf '%s\n' "$b"; fi
  done
}

# Fast path: nothing to build, no Go needed.
if [[ -z "$(missing_binaries)" ]]; then
  link_and_report
  exit 0
fi

# ---------------------------------------------------------------- Go toolchain

GO_BIN="${GO:-}"
if [[ -z "$GO_BIN" ]]; then
  GO_BIN="$(command -v go || true)"
fi
if [[ -z "$GO_BIN" && -x /usr/local/go/bin/go ]]; then
  GO_BIN=/usr/local/go/bin/go
fi
if [[ -z "$GO_BIN" ]] || ! "$GO_BIN" version >/dev/null 2>&1; then
  kms_cp_die "no working Go toolchain found (looked at \$GO, go on PATH, /usr/local/go/bin/go); install Go >= 1.26 or set GO=/path/to/go"
fi
go_version="$("$GO_BIN" env GOVERSION)"

# Never let the go command fetch a different toolchain: fail clearly instead.
export GOTOOLCHAIN=local
# Static binaries; no C toolchain needed.
export CGO_ENABLED=0
# A go.work somewhere above the temp dir must not leak into the builds.
export GOWORK=off
# A build cache of our own: it grows to several GiB for these builds and is
# deleted once every requested binary is built (KMS_CP_KEEP_GO_BUILD_CACHE=1
# keeps it). Modules are downloaded into the normal module cache (go env
# GOMODCACHE), where later builds reuse them.
GOCACHE="$(kms_cp_cache_dir)/go-build"
export GOCACHE

# version_ge A B: is Go version A (e.g. 1.26.8) >= B (e.g. 1.26.0)?
version_ge() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

# ---------------------------------------------------------------- locking

# One build at a time per cache directory; a second caller waits and then
# finds the binaries already built.
exec 9>"$bin_dir/.build.lock"
if ! flock -n 9; then
  kms_cp_log "another build holds $bin_dir/.build.lock; waiting for it"
  flock -w 3600 9 || kms_cp_die "timed out waiting for $bin_dir/.build.lock"
fi
mapfile -t missing < <(missing_binaries)
if ((${#missing[@]} == 0)); then
  link_and_report
  exit 0
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/kms-cp-build.XXXXXX")"
cleanup() {
  rm -rf "$workdir"
  rm -f "$bin_dir"/.*.tmp.$$
}
trap cleanup EXIT

kms_cp_log "building: ${missing[*]} (with $go_version at $GO_BIN; GOPROXY=$("$GO_BIN" env GOPROXY))"
kms_cp_log "cache: $bin_dir"
total_start=$SECONDS

# ---------------------------------------------------------------- wrapper modules

# prepare_module DIR MODULE VERSION PACKAGE...
#
# Generates a throwaway main module in DIR that requires MODULE@VERSION and
# resolves the dependencies of PACKAGE... through the module proxy.
#
# Projects such as k8s.io/kubernetes require their in-repo (staging) modules at
# v0.0.0 and point them at local directories with replace directives. Replace
# directives of a dependency are ignored, so for every module that MODULE
# requires at v0.0.0 the wrapper adds its own replace directive pinning it to
# the published v0.MINOR.PATCH that matches VERSION (v1.35.4 -> v0.35.4).
prepare_module() {
  local dir="$1" module="$2" version="$3"
  shift 3
  local step_start=$SECONDS dl gomod dep_go staging_version m
  local -a edits=()

  mkdir -p "$dir"
  kms_cp_log "  fetching $module@$version"
  if ! dl="$(cd "$dir" && "$GO_BIN" mod download -json "$module@$version" 2>&1)"; then
    printf '%s\n' "$dl" >&2
    kms_cp_die "could not download $module@$version through the Go module proxy (GOPROXY=$("$GO_BIN" env GOPROXY)); is the proxy reachable?"
  fi
  gomod="$(printf '%s\n' "$dl" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$gomod" ]] || kms_cp_die "could not find the go.mod of $module@$version in: $dl"

  dep_go="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
  if [[ -n "$dep_go" ]] && ! version_ge "${go_version#go}" "$dep_go"; then
    kms_cp_die "$module@$version needs Go >= $dep_go, but $GO_BIN is $go_version"
  fi

  printf 'module kms-operator.local/controlplane-build\n\ngo %s\n' "${dep_go:-1.26}" >"$dir/go.mod"
  edits+=("-require=$module@$version")

  # The dependency's godebug defaults (e.g. "godebug default=go1.25") describe
  # how upstream builds it; carry them over (single-line and block forms).
  while read -r m; do
    [[ -n "$m" ]] && edits+=("-godebug=$m")
  done < <(awk '
    $1 == "godebug" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")" { inblock = 0; next }
    inblock { print $1; next }
    $1 == "godebug" { print $2 }
  ' "$gomod")

  # Modules required at v0.0.0 (single-line and block require forms).
  local -a staging=()
  mapfile -t staging < <(awk '
    $1 == "require" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")" { inblock = 0; next }
    inblock && $2 == "v0.0.0" { print $1; next }
    $1 == "require" && $3 == "v0.0.0" { print $2 }
  ' "$gomod")
  if ((${#staging[@]} > 0)); then
    [[ "$version" == v1.* ]] || kms_cp_die "$module@$version requires modules at v0.0.0 but is not a v1.x release; cannot derive their versions"
    staging_version="v0.${version#v1.}"
    for m in "${staging[@]}"; do
      edits+=("-replace=$m=$m@$staging_version")
    done
    kms_cp_log "  pinning ${#staging[@]} modules required at v0.0.0 to $staging_version"
  fi

  # Non-local replace directives (module => module version) of the dependency
  # would be ignored too; copy them. Local ones (=> ./dir) are dropped.
  while read -r m; do
    [[ -n "$m" ]] && edits+=("-replace=$m")
  done < <(awk '
    function emit(a, b, c) { if (c != "" && b !~ /^\.{0,2}\//) print a "=" b "@" c }
    $1 == "replace" && $2 == "(" { inblock = 1; next }
    inblock && $1 == ")" { inblock = 0; next }
    inblock && $2 == "=>" { emit($1, $3, $4); next }
    inblock && $3 == "=>" { emit($1 "@" $2, $4, $5); next }
    $1 == "replace" && $3 == "=>" { emit($2, $4, $5) }
    $1 == "replace" && $4 == "=>" { emit($2 "@" $3, $5, $6) }
  ' "$gomod")

  (cd "$dir" && "$GO_BIN" mod edit "${edits[@]}")

  local -a targets=()
  for m in "$@"; do targets+=("$m@$version"); done
  kms_cp_log "  resolving dependencies of $*"
  if ! (cd "$dir" && nice -n 15 "$GO_BIN" get "${targets[@]}" >"$dir/go-get.log" 2>&1); then
    tail -n 40 "$dir/go-get.log" >&2
    kms_cp_die "could not resolve the dependencies of $module@$version (see above)"
  fi
  kms_cp_log "  dependencies ready in $(kms_cp_duration $((SECONDS - step_start)))"
}

# build_binary DIR NAME PACKAGE LDFLAGS
build_binary() {
  local dir="$1" name="$2" pkg="$3" ldflags="$4"
  local out tmp step_start=$SECONDS size
  out="$(kms_cp_binary_path "$name")"
  tmp="$bin_dir/.$(basename "$out").tmp.$$"
  kms_cp_log "  compiling $name ($pkg)"
  if ! (cd "$dir" && nice -n 15 "$GO_BIN" build -mod=mod -trimpath \
    -ldflags="-s -w $ldflags" -o "$tmp" "$pkg"); then
    kms_cp_die "building $name failed"
  fi
  mv -f "$tmp" "$out"
  size="$(du -h "$out" | cut -f1)"
  kms_cp_log "  built $(basename "$out") ($size) in $(kms_cp_duration $((SECONDS - step_start)))"
}

needs() {
  local b
  for b in "${missing[@]}"; do
    if [[ "$b" == "$1" ]]; then return 0; fi
  done
  return 1
}

build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# ---------------------------------------------------------------- etcd

if needs etcd; then
  kms_cp_log "==> etcd $KMS_CP_ETCD_VERSION"
  prepare_module "$workdir/etcd" go.etcd.io/etcd/server/v3 "$KMS_CP_ETCD_VERSION" \
    go.etcd.io/etcd/server/v3
  build_binary "$workdir/etcd" etcd go.etcd.io/etcd/server/v3 ""
fi

# ---------------------------------------------------------------- kubernetes

if needs kube-apiserver || needs kubectl || needs kube-controller-manager; then
  kms_cp_log "==> kubernetes $KMS_CP_KUBE_VERSION"
  kube_pkgs=()
  needs kube-apiserver && kube_pkgs+=(k8s.io/kubernetes/cmd/kube-apiserver)
  needs kubectl && kube_pkgs+=(k8s.io/kubernetes/cmd/kubectl)
  needs kube-controller-manager && kube_pkgs+=(k8s.io/kubernetes/cmd/kube-controller-manager)
  prepare_module "$workdir/kubernetes" k8s.io/kubernetes "$KMS_CP_KUBE_VERSION" "${kube_pkgs[@]}"

  # What upstream's build sets, so that `kubectl version` and the server's
  # /version report the real release instead of v0.0.0-master.
  kube_minor="${KMS_CP_KUBE_VERSION#v1.}"
  kube_minor="${kube_minor%%.*}"
  kube_ldflags=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $p.gitVersion=$KMS_CP_KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$kube_minor"
    kube_ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date -X $p.gitCommit="
  done
  if needs kube-apiserver; then
    build_binary "$workdir/kubernetes" kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
  fi
  if needs kubectl; then
    build_binary "$workdir/kubernetes" kubectl k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"
  fi
  if needs kube-controller-manager; then
    build_binary "$workdir/kubernetes" kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
  fi
fi

# ---------------------------------------------------------------- helm

if needs helm; then
  kms_cp_log "==> helm $KMS_CP_HELM_VERSION"
  helm_module="helm.sh/helm/${KMS_CP_HELM_VERSION%%.*}"
  prepare_module "$workdir/helm" "$helm_module" "$KMS_CP_HELM_VERSION" "$helm_module/cmd/helm"
  build_binary "$workdir/helm" helm "$helm_module/cmd/helm" \
    "-X $helm_module/internal/version.version=$KMS_CP_HELM_VERSION -X $helm_module/internal/version.gitTreeState=clean"
fi

if [[ "${KMS_CP_KEEP_GO_BUILD_CACHE:-0}" != 1 ]]; then
  kms_cp_log "removing the Go build cache $GOCACHE ($(du -sh "$GOCACHE" | cut -f1))"
  rm -rf "$GOCACHE"
fi
kms_cp_log "done in $(kms_cp_duration $((SECONDS - total_start))); $bin_dir holds $(du -sh "$bin_dir" | cut -f1); module cache $("$GO_BIN" env GOMODCACHE) holds $(du -sh "$("$GO_BIN" env GOMODCACHE)" | cut -f1)"
link_and_report
