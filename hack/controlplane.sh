#!/usr/bin/env bash
# Run a throwaway local Kubernetes control plane (etcd + kube-apiserver) for
# tests, with all of its state in one directory. See hack/README.md.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"

# Marker file: `stop` only deletes directories that `start` set up.
MARKER=".kms-operator-controlplane"
START_TIMEOUT="${KMS_CP_START_TIMEOUT:-180}"
STOP_GRACE="${KMS_CP_STOP_GRACE:-5}"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1"

usage() {
  cat <<EOF
usage: $(basename "$0") start STATE_DIR
       $(basename "$0") stop STATE_DIR
       $(basename "$0") env STATE_DIR
       $(basename "$0") status STATE_DIR
       $(basename "$0") restart-apiserver STATE_DIR
       $(basename "$0") pause-apiserver STATE_DIR
       $(basename "$0") resume-apiserver STATE_DIR

start   builds missing binaries (hack/build-controlplane.sh), then starts etcd
        and kube-apiserver on free 127.0.0.1 ports with their state, logs
        (*.log) and PIDs (*.pid) in STATE_DIR, writes an admin kubeconfig
        (CN=admin, O=system:masters) to STATE_DIR/kubeconfig and waits for
        /readyz. If anything fails, whatever it started is stopped again and
        the logs are left in STATE_DIR.
stop    stops the processes recorded in STATE_DIR (TERM, then KILL after
        ${STOP_GRACE}s) and removes STATE_DIR.
env     prints shell exports: KUBECONFIG=STATE_DIR/kubeconfig and PATH with the
        cached binaries first. Use: eval "\$($(basename "$0") env STATE_DIR)"
status  prints the recorded processes and whether the apiserver is ready.
restart-apiserver
        stops kube-apiserver (etcd keeps running) and starts it again on the
        same port, for tests of an apiserver outage.
pause-apiserver
        freezes kube-apiserver with SIGSTOP: its port still accepts
        connections and requests, but nothing is answered, as with a hung
        server or a network partition. Pair it with resume-apiserver.
resume-apiserver
        sends SIGCONT to the frozen kube-apiserver; it answers again at once.

Environment: KMS_CP_START_TIMEOUT (seconds to wait for readiness, default 180),
KMS_CP_STOP_GRACE (seconds between TERM and KILL, default 5), and the variables
of hack/build-controlplane.sh (--help there).
EOF
}

# ---------------------------------------------------------------- helpers

abs_dir() {
  # Absolute path of a directory that may not exist yet.
  local d="$1"
  case "$d" in
    /*) ;;
    *) d="$PWD/$d" ;;
  esac
  # Drop trailing slashes (but keep "/").
  while [[ "$d" == */ && "$d" != / ]]; do d="${d%/}"; done
  printf '%s\n' "$d"
}

require_cmd() {
  command -v "$1" >/dev/null 2>&1 || kms_cp_die "'$1' is required ($2)"
}

# pick_free_ports N -> N distinct free TCP ports on 127.0.0.1, one per line.
# Binding port 0 lets the kernel choose; there is a small window before the
# real server binds the port, which is acceptable for a test control plane.
pick_free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
    s.close()
PY
}

# is_alive PID: running and not a zombie.
is_alive() {
  local pid="$1" state
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ "$state" != Z && -n "$state" ]]
}

# is_ours PID STATE_DIR: the process's command line mentions STATE_DIR, so a
# recycled PID of some unrelated process is never signalled.
is_ours() {
  local pid="$1" dir="$2"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qF -- "$dir/"
}

# stop_process STATE_DIR NAME: stop the process recorded in NAME.pid.
stop_process() {
  local dir="$1" name="$2" pidfile pid waited
  pidfile="$dir/$name.pid"
  [[ -f "$pidfile" ]] || return 0
  pid="$(<"$pidfile")"
  if [[ ! "$pid" =~ ^[0-9]+$ ]]; then
    kms_cp_log "ignoring malformed $pidfile"
    rm -f "$pidfile"
    return 0
  fi
  if ! is_alive "$pid"; then
    rm -f "$pidfile"
    return 0
  fi
  if ! is_ours "$pid" "$dir"; then
    kms_cp_log "PID $pid from $pidfile is not a process of $dir; leaving it alone"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  waited=0
  while is_alive "$pid" && ((waited < STOP_GRACE * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if is_alive "$pid"; then
    kms_cp_log "$name (PID $pid) still running after ${STOP_GRACE}s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    waited=0
    while is_alive "$pid" && ((waited < 100)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if is_alive "$pid"; then
      kms_cp_die "$name (PID $pid) survived KILL"
    fi
  fi
  rm -f "$pidfile"
  STOPPED_PIDS+=("$pid")
}

stop_all() {
  local dir="$1" pid waited=0
  STOPPED_PIDS=()
  # The controller manager and the apiserver first, so they do not spin on a
  # vanished etcd.
  stop_process "$dir" kube-controller-manager
  stop_process "$dir" kube-apiserver
  stop_process "$dir" etcd
  # The processes are gone or zombies; give their parent (init, as `start` has
  # exited) a moment to reap them, so they also vanish from pgrep/ps.
  for pid in "${STOPPED_PIDS[@]}"; do
    while [[ -e "/proc/$pid" ]] && ((waited < 50)); do
      sleep 0.1
      waited=$((waited + 1))
    done
  done
}

log_tail() {
  local file="$1"
  if [[ -f "$file" ]]; then
    printf -- '----- last lines of %s -----\n' "$file" >&2
    tail -n 30 "$file" >&2
    printf -- '-----\n' >&2
  fi
}

# ---------------------------------------------------------------- start

# Set while `start` runs, so a failure (or Ctrl-C) cleans up after it.
STARTING_DIR=""
# PIDs that stop_all signalled.
STOPPED_PIDS=()

on_start_exit() {
  local rc=$?
  if [[ -n "$STARTING_DIR" ]]; then
    trap - EXIT INT TERM
    kms_cp_log "start failed; stopping what was started (logs stay in $STARTING_DIR)"
    stop_all "$STARTING_DIR" || true
    rm -f "$STARTING_DIR/kubeconfig"
    exit $((rc == 0 ? 1 : rc))
  fi
}

wait_for() {
  # wait_for DESCRIPTION TIMEOUT_SECONDS PID LOG COMMAND...
  local what="$1" timeout="$2" pid="$3" log="$4"
  shift 4
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! is_alive "$pid"; then
      log_tail "$log"
      kms_cp_die "$what: the process exited (see $log)"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$log"
      kms_cp_die "$what: not ready after ${timeout}s (see $log)"
    fi
    sleep 0.5
  done
}

gen_certs() {
  local pki="$1"
  local key_opts=(-algorithm EC -pkeyopt ec_paramgen_curve:prime256v1)
  mkdir -p "$pki"
  chmod 700 "$pki"

  # CA.
  openssl genpkey "${key_opts[@]}" -out "$pki/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$pki/ca.key" -sha256 -days 30 \
    -subj "/CN=kms-operator-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$pki/ca.crt" 2>/dev/null

  # issue NAME SUBJECT EXTENSIONS: key + certificate signed by the CA.
  issue() {
    local name="$1" subject="$2" ext="$3"
    openssl genpkey "${key_opts[@]}" -out "$pki/$name.key" 2>/dev/null
    openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
    printf '%b\n' "$ext" >"$pki/$name.ext"
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
      -CAcreateserial -sha256 -days 30 -extfile "$pki/$name.ext" \
      -out "$pki/$name.crt" 2>/dev/null
    rm -f "$pki/$name.csr" "$pki/$name.ext"
  }

  issue apiserver "/CN=kube-apiserver" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$SERVICE_IP"
  issue admin "/O=system:masters/CN=admin" \
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"

  # Service-account token signing key pair.
  openssl genpkey "${key_opts[@]}" -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

cmd_start() {
  local dir="$1"
  require_cmd openssl "to generate the certificates"
  require_cmd python3 "to pick free ports"
  require_cmd curl "to probe readiness"

  if [[ -f "$dir/etcd.pid" || -f "$dir/kube-apiserver.pid" ]]; then
    kms_cp_die "$dir already has a control plane (stop it first: $0 stop $dir)"
  fi
  if [[ -e "$dir" && ! -f "$dir/$MARKER" ]] && [[ -n "$(ls -A "$dir" 2>/dev/null)" ]]; then
    kms_cp_die "$dir exists and is not empty; give start a new or empty directory"
  fi

  local bin_dir etcd_bin apiserver_bin kubectl_bin kcm_bin
  bin_dir="$("$HACK_DIR/build-controlplane.sh" etcd kube-apiserver kubectl kube-controller-manager)"
  etcd_bin="$(kms_cp_binary_path etcd)"
  apiserver_bin="$(kms_cp_binary_path kube-apiserver)"
  kubectl_bin="$(kms_cp_binary_path kubectl)"
  kcm_bin="$(kms_cp_binary_path kube-controller-manager)"
  [[ -x "$etcd_bin" && -x "$apiserver_bin" && -x "$kubectl_bin" && -x "$kcm_bin" ]] ||
    kms_cp_die "binaries missing in $bin_dir after build"

  local start=$SECONDS
  mkdir -p "$dir"
  touch "$dir/$MARKER"
  STARTING_DIR="$dir"
  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local ports etcd_port peer_port api_port
  mapfile -t ports < <(pick_free_ports 3)
  ((${#ports[@]} == 3)) || kms_cp_die "could not pick free ports"
  etcd_port="${ports[0]}"
  peer_port="${ports[1]}"
  api_port="${ports[2]}"

  gen_certs "$dir/pki"

  # etcd: loopback only, plain HTTP (nothing but the apiserver talks to it).
  # --unsafe-no-fsync: the data is thrown away anyway; keeps tests fast.
  rm -rf "$dir/etcd-data"
  "$etcd_bin" \
    --name=kms-cp \
    --data-dir="$dir/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="kms-cp=http://127.0.0.1:$peer_port" \
    --initial-cluster-state=new \
    --unsafe-no-fsync \
    --log-level=warn \
    </dev/null >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_for "etcd" 60 "$(<"$dir/etcd.pid")" "$dir/etcd.log" \
    curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health"

  printf '%s %s\n' "$api_port" "$etcd_port" >"$dir/ports"
  launch_apiserver "$dir" "$apiserver_bin" "$api_port" "$etcd_port"

  local server="https://127.0.0.1:$api_port"
  local kc="$dir/kubeconfig.tmp"
  rm -f "$kc"
  "$kubectl_bin" config --kubeconfig="$kc" set-cluster kms-cp --server="$server" \
    --certificate-authority="$dir/pki/ca.crt" --embed-certs=true >/dev/null
  "$kubectl_bin" config --kubeconfig="$kc" set-credentials admin \
    --client-certificate="$dir/pki/admin.crt" --client-key="$dir/pki/admin.key" \
    --embed-certs=true >/dev/null
  "$kubectl_bin" config --kubeconfig="$kc" set-context kms-cp --cluster=kms-cp \
    --user=admin >/dev/null
  "$kubectl_bin" config --kubeconfig="$kc" use-context kms-cp >/dev/null
  chmod 600 "$kc"
  mv -f "$kc" "$dir/kubeconfig"

  local api_pid
  api_pid="$(<"$dir/kube-apiserver.pid")"
  wait_for "kube-apiserver /readyz" "$START_TIMEOUT" "$api_pid" "$dir/kube-apiserver.log" \
    curl -fsS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" \
    --key "$dir/pki/admin.key" "$server/readyz"
  # /readyz can pass a moment before the bootstrap namespaces exist.
  wait_for "default namespaces" 60 "$api_pid" "$dir/kube-apiserver.log" \
    "$kubectl_bin" --kubeconfig="$dir/kubeconfig" get namespace default kube-system

  # kube-controller-manager, for what the apiserver alone does not do: finishing namespace
  # deletion (it runs the finalizers' wait) and garbage collection. It serves nothing.
  "$kcm_bin" \
    --kubeconfig="$dir/kubeconfig" \
    --controllers=namespace,garbagecollector \
    --leader-elect=false \
    --secure-port=0 \
    --service-account-private-key-file="$dir/pki/sa.key" \
    --root-ca-file="$dir/pki/ca.crt" \
    </dev/null >"$dir/kube-controller-manager.log" 2>&1 &
  echo $! >"$dir/kube-controller-manager.pid"

  printf '%s\n' "$server" >"$dir/apiserver-url"
  STARTING_DIR=""
  trap - EXIT INT TERM
  kms_cp_log "control plane ready in $(kms_cp_duration $((SECONDS - start))): $server (etcd PID $(<"$dir/etcd.pid"), kube-apiserver PID $api_pid)"
  kms_cp_log "kubeconfig: $dir/kubeconfig"
}

# launch_apiserver DIR BINARY API_PORT ETCD_PORT: starts kube-apiserver in the
# background and records its PID in DIR/kube-apiserver.pid.
launch_apiserver() {
  local dir="$1" apiserver_bin="$2" api_port="$3" etcd_port="$4"
  # kube-apiserver: secure port only, on loopback. The ServiceAccount
  # admission plugin is disabled because no controller-manager runs to create
  # the "default" service accounts it insists on.
  "$apiserver_bin" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$api_port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --cert-dir="$dir/pki" \
    --tls-cert-file="$dir/pki/apiserver.crt" \
    --tls-private-key-file="$dir/pki/apiserver.key" \
    --client-ca-file="$dir/pki/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --profiling=false \
    </dev/null >>"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
}

# restart-apiserver: stops kube-apiserver (not etcd) and starts it again on the
# same port with the same state, for tests of an apiserver outage.
cmd_restart_apiserver() {
  local dir="$1" api_port etcd_port
  [[ -f "$dir/$MARKER" && -f "$dir/ports" ]] || kms_cp_die "$dir holds no running control plane"
  read -r api_port etcd_port <"$dir/ports"
  stop_process "$dir" kube-apiserver
  launch_apiserver "$dir" "$(kms_cp_binary_path kube-apiserver)" "$api_port" "$etcd_port"
  wait_for "kube-apiserver /readyz" "$START_TIMEOUT" "$(<"$dir/kube-apiserver.pid")" "$dir/kube-apiserver.log" \
    curl -fsS --max-time 5 --cacert "$dir/pki/ca.crt" --cert "$dir/pki/admin.crt" \
    --key "$dir/pki/admin.key" "https://127.0.0.1:$api_port/readyz"
  kms_cp_log "kube-apiserver restarted (PID $(<"$dir/kube-apiserver.pid"))"
}

# apiserver_pid DIR: the PID of the kube-apiserver that `start` (or
# restart-apiserver) recorded in DIR, if it is alive and ours; dies otherwise.
apiserver_pid() {
  local dir="$1" pid
  [[ -f "$dir/$MARKER" && -f "$dir/kube-apiserver.pid" ]] || kms_cp_die "$dir holds no running control plane"
  pid="$(<"$dir/kube-apiserver.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || kms_cp_die "malformed $dir/kube-apiserver.pid"
  is_alive "$pid" || kms_cp_die "kube-apiserver (PID $pid) is not running"
  is_ours "$pid" "$dir" || kms_cp_die "PID $pid is not the kube-apiserver of $dir"
  printf '%s\n' "$pid"
}

# process_state PID: the state letter from /proc (T when stopped).
process_state() {
  awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true
}

# wait_state PID WANT|!WANT: waits up to 5 s for the process to (not) be in
# state WANT; signals are delivered asynchronously.
wait_state() {
  local pid="$1" want="$2" waited=0 state
  while ((waited < 50)); do
    state="$(process_state "$pid")"
    if [[ "$want" == !* ]]; then
      [[ "$state" != "${want#!}" ]] && return 0
    else
      [[ "$state" == "$want" ]] && return 0
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  return 1
}

# pause-apiserver: SIGSTOP on kube-apiserver, for tests of a hung apiserver.
cmd_pause_apiserver() {
  local dir="$1" pid
  pid="$(apiserver_pid "$dir")"
  kill -STOP "$pid"
  wait_state "$pid" T || kms_cp_die "kube-apiserver (PID $pid) did not stop"
  kms_cp_log "kube-apiserver paused (PID $pid, SIGSTOP); resume it with: $0 resume-apiserver $dir"
}

# resume-apiserver: SIGCONT on a kube-apiserver that pause-apiserver froze.
cmd_resume_apiserver() {
  local dir="$1" pid
  pid="$(apiserver_pid "$dir")"
  kill -CONT "$pid"
  wait_state "$pid" '!T' || kms_cp_die "kube-apiserver (PID $pid) did not resume"
  kms_cp_log "kube-apiserver resumed (PID $pid, SIGCONT)"
}

# ---------------------------------------------------------------- stop / env / status

cmd_stop() {
  local dir="$1"
  if [[ ! -e "$dir" ]]; then
    kms_cp_log "$dir does not exist; nothing to stop"
    return 0
  fi
  [[ -f "$dir/$MARKER" ]] ||
    kms_cp_die "$dir was not set up by '$0 start' (no $MARKER); not touching it"
  stop_all "$dir"
  rm -rf "$dir"
  kms_cp_log "stopped and removed $dir"
}

cmd_env() {
  local dir="$1" bin_dir
  bin_dir="$(kms_cp_bin_dir)"
  printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
  # The literal $PATH is meant: it expands when the output is eval'd.
  # shellcheck disable=SC2016
  printf 'export PATH=%q:"$PATH"\n' "$bin_dir"
}

cmd_status() {
  local dir="$1" name pid rc=0
  for name in etcd kube-apiserver; do
    if [[ -f "$dir/$name.pid" ]]; then
      pid="$(<"$dir/$name.pid")"
      if is_alive "$pid"; then
        printf '%s: running (PID %s)\n' "$name" "$pid"
      else
        printf '%s: not running (stale PID %s)\n' "$name" "$pid"
        rc=1
      fi
    else
      printf '%s: not started\n' "$name"
      rc=1
    fi
  done
  if [[ -f "$dir/apiserver-url" ]] && curl -fsS --max-time 5 --cacert "$dir/pki/ca.crt" \
    --cert "$dir/pki/admin.crt" --key "$dir/pki/admin.key" \
    "$(<"$dir/apiserver-url")/readyz" >/dev/null 2>&1; then
    printf 'apiserver: ready at %s\n' "$(<"$dir/apiserver-url")"
  else
    printf 'apiserver: not ready\n'
    rc=1
  fi
  return "$rc"
}

# ---------------------------------------------------------------- main

if (($# == 1)) && [[ "$1" == -h || "$1" == --help || "$1" == help ]]; then
  usage
  exit 0
fi
if (($# != 2)); then
  usage >&2
  exit 2
fi
STATE_DIR="$(abs_dir "$2")"
[[ "$STATE_DIR" != / ]] || kms_cp_die "refusing to use / as STATE_DIR"

case "$1" in
  start) cmd_start "$STATE_DIR" ;;
  stop) cmd_stop "$STATE_DIR" ;;
  env) cmd_env "$STATE_DIR" ;;
  status) cmd_status "$STATE_DIR" ;;
  restart-apiserver) cmd_restart_apiserver "$STATE_DIR" ;;
  pause-apiserver) cmd_pause_apiserver "$STATE_DIR" ;;
  resume-apiserver) cmd_resume_apiserver "$STATE_DIR" ;;
  *)
    usage >&2
    exit 2
    ;;
esac
