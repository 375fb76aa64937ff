# shellcheck shell=bash
# Shared settings and helpers for hack/build-controlplane.sh and
# hack/controlplane.sh. Source it; do not execute it.
#
# Version pins (override through the environment for experiments only; the
# cache is keyed by version, so different pins do not clobber each other).
KMS_CP_KUBE_VERSION="${KMS_CP_KUBE_VERSION:-v1.35.4}"
KMS_CP_ETCD_VERSION="${KMS_CP_ETCD_VERSION:-v3.6.16}"
KMS_CP_HELM_VERSION="${KMS_CP_HELM_VERSION:-v4.3.2}"

# Every binary this tooling knows how to build, in build order.
# shellcheck disable=SC2034 # used by the scripts that source this file
KMS_CP_ALL_BINARIES=(etcd kube-apiserver kubectl kube-controller-manager helm)

kms_cp_cache_dir() {
  printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/kms-operator"
}

kms_cp_bin_dir() {
  if [[ -n "${KMS_CP_BIN_DIR:-}" ]]; then
    printf '%s\n' "$KMS_CP_BIN_DIR"
  else
    printf '%s/bin\n' "$(kms_cp_cache_dir)"
  fi
}

# kms_cp_version_of BINARY -> pinned version of the project it comes from.
kms_cp_version_of() {
  case "$1" in
    etcd) printf '%s\n' "$KMS_CP_ETCD_VERSION" ;;
    kube-apiserver | kubectl | kube-controller-manager) printf '%s\n' "$KMS_CP_KUBE_VERSION" ;;
    helm) printf '%s\n' "$KMS_CP_HELM_VERSION" ;;
    *) return 1 ;;
  esac
}

# kms_cp_binary_path BINARY -> absolute path of the cached, versioned binary.
kms_cp_binary_path() {
  local version
  version="$(kms_cp_version_of "$1")" || return 1
  printf '%s/%s-%s\n' "$(kms_cp_bin_dir)" "$1" "$version"
}

kms_cp_log() {
  printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

kms_cp_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# kms_cp_duration SECONDS -> "1m05s" / "42s"
kms_cp_duration() {
  local s="$1"
  if ((s >= 60)); then
    printf '%dm%02ds\n' $((s / 60)) $((s % 60))
  else
    printf '%ds\n' "$s"
  fi
}
