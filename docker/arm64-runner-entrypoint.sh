#!/bin/sh
# Entry point of the edgekd arm64 benchmark runner image (docker/Dockerfile.arm64-runner).
#
#   bench MODEL [OPTIONS]   run bench_script.py on MODEL (.tflite, .onnx); prints ONE JSON line
#   MODEL [OPTIONS]         the same (default command)
#   sshd                    serve as an SSH board for edgekd's ssh runner: key authentication only,
#                           as this image's user, port $SSHD_PORT (2222); the public key comes from
#                           $AUTHORIZED_KEYS_FILE (default ~/.ssh/authorized_keys, mount it read-only)
#   help                    this text
#
# Exit codes: bench_script.py's (0 ok, 2 unusable model or input, 3 runtime failure); 2 for a
# missing key in sshd mode or an unknown command.
set -eu

BENCH_SCRIPT="${EDGEKD_BENCH_SCRIPT:-/opt/edgekd/bench_script.py}"
PYTHON="${EDGEKD_PYTHON:-python3}"

usage() {
    sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'
}

run_sshd() {
    keys="${AUTHORIZED_KEYS_FILE:-$HOME/.ssh/authorized_keys}"
    if [ ! -s "$keys" ]; then
        echo "runner: error: no public key in $keys; mount one, e.g. -v ~/.ssh/id_ed25519.pub:$keys:ro" >&2
        exit 2
    fi
    state="${EDGEKD_SSHD_DIR:-$HOME/.sshd}"
    mkdir -p "$state"
    if [ ! -f "$state/ssh_host_ed25519_key" ]; then
        ssh-keygen -q -t ed25519 -N "" -f "$state/ssh_host_ed25519_key"
    fi
    cat >"$state/sshd_config" <<CONFIG
Port ${SSHD_PORT:-2222}
ListenAddress ${SSHD_LISTEN:-0.0.0.0}
HostKey $state/ssh_host_ed25519_key
PidFile $state/sshd.pid
AuthorizedKeysFile $keys
AllowUsers $(id -un)
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
CONFIG
    echo "runner: sshd on port ${SSHD_PORT:-2222}, user $(id -un), host key:" >&2
    ssh-keygen -l -f "$state/ssh_host_ed25519_key.pub" >&2
    if [ "${EDGEKD_SSHD_CHECK_ONLY:-0}" = 1 ]; then
        exec /usr/sbin/sshd -t -f "$state/sshd_config"
    fi
    exec /usr/sbin/sshd -D -e -f "$state/sshd_config"
}

case "${1:-help}" in
    sshd) run_sshd ;;
    bench)
        shift
        exec "$PYTHON" "$BENCH_SCRIPT" "$@"
        ;;
    help | -h | --help) usage ;;
    -*)
        echo "runner: error: unknown option '$1'; give a model path, 'bench MODEL', 'sshd' or 'help'" >&2
        exit 2
        ;;
    *) exec "$PYTHON" "$BENCH_SCRIPT" "$@" ;;
esac
