#!/usr/bin/env bash
# Runs llmkit in its image with docker or podman: every argument goes to llmkit.
#
#   containers/run.sh pipeline                         # = make run, in the container
#   LLMKIT_MODELS=/models containers/run.sh run model=checkpoint model.path=/models/Mixtral-8x7B-Instruct-v0.1 ...
#
# The container gets the GPUs, the host's IPC namespace (--ipc=host), memlock and stack ulimits, the mounts of
# containers/common.sh (models, data, artifacts, runs) and /workspace as its working directory, and runs as the
# caller's user id, so what it writes under runs/ and artifacts/ belongs to the caller. Settings (environment):
#
#   LLMKIT_IMAGE           the image (default llmkit:latest); it must be in the engine's local store
#   LLMKIT_ENGINE          docker or podman (default: docker when its daemon answers, else podman)
#   LLMKIT_GPUS            all, none or a device list such as 0,1 (default: all when nvidia-smi is found); docker
#                          passes --gpus, podman a CDI device (nvidia.com/gpu=...; needs nvidia-ctk cdi generate)
#   LLMKIT_USER            uid:gid in the container (default: the caller's, id -u:id -g)
#   LLMKIT_MEMLOCK         --ulimit memlock (default -1, unlimited; podman clamps it to the caller's hard limit)
#   LLMKIT_STACK           --ulimit stack (default 67108864)
#   LLMKIT_SHM_SIZE        with LLMKIT_IPC=private, the size of /dev/shm (default 32g)
#   LLMKIT_IPC             host (default) or private
#   LLMKIT_NETWORK         host (default) or none
#   LLMKIT_SANDBOX         1 (default): the security options bubblewrap (the MBXP sandbox) needs inside a
#                          container (its own namespaces, a fresh /proc); 0: the engine's defaults (under which
#                          bubblewrap cannot start in a podman container)
#   LLMKIT_RUN_ARGS        more arguments for `docker run` / `podman run` (split on spaces)
#   LLMKIT_DRY_RUN         1: print the command instead of running it
#   LLMKIT_MODELS, LLMKIT_DATA, LLMKIT_ARTIFACTS, LLMKIT_RUNS: the mounts (see containers/common.sh)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

image=${LLMKIT_IMAGE:-llmkit:latest}
engine=${LLMKIT_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        engine=docker
    elif command -v podman >/dev/null 2>&1; then
        engine=podman
    elif command -v docker >/dev/null 2>&1; then
        die "docker is installed but its daemon does not answer (docker info fails); start it, or install podman"
    else
        die "neither docker nor podman is installed; install one of them (or set LLMKIT_ENGINE to its name)"
    fi
fi
case "$engine" in
    docker | podman) ;;
    *) die "LLMKIT_ENGINE=$engine is not supported; use docker or podman" ;;
esac
command -v "$engine" >/dev/null 2>&1 || die "LLMKIT_ENGINE=$engine but $engine is not installed; install it or choose the other engine"
"$engine" image inspect "$image" >/dev/null 2>&1 ||
    die "image '$image' is not in $engine's local store; build it (docker build -f containers/Dockerfile -t $image .), pull it, or set LLMKIT_IMAGE to an image you have"

llmkit_mounts
args=(run --rm --pull=never --workdir "$LLMKIT_WORKDIR" --env HOME=/tmp --env PYTHONUNBUFFERED=1)
for i in "${!MOUNT_SOURCES[@]}"; do
    args+=(--volume "${MOUNT_SOURCES[$i]}:${MOUNT_TARGETS[$i]}:${MOUNT_MODES[$i]}")
done
args+=(--user "${LLMKIT_USER:-$(id -u):$(id -g)}")

case "${LLMKIT_IPC:-host}" in
    host) args+=(--ipc=host) ;;
    private) args+=(--ipc=private "--shm-size=${LLMKIT_SHM_SIZE:-32g}") ;;
    *) die "LLMKIT_IPC=${LLMKIT_IPC} is not supported; use host or private" ;;
esac
case "${LLMKIT_NETWORK:-host}" in
    host | none) args+=("--network=${LLMKIT_NETWORK:-host}") ;;
    *) die "LLMKIT_NETWORK=${LLMKIT_NETWORK} is not supported; use host or none" ;;
esac

memlock=${LLMKIT_MEMLOCK:--1}
if [ "$engine" = podman ]; then
    # podman runs in the caller's limits and cannot raise a hard limit: ask for no more than the caller has.
    hard=$(ulimit -H -l)
    if [ "$hard" != unlimited ] && { [ "$memlock" = -1 ] || [ "$memlock" -gt $((hard * 1024)) ]; }; then
        memlock=$((hard * 1024))
    fi
    # An explicit --ulimit makes podman drop containers.conf's default_ulimits: pass them again.
    for conf in "${CONTAINERS_CONF:-}" "$HOME/.config/containers/containers.conf" /etc/containers/containers.conf; do
        [ -n "$conf" ] && [ -f "$conf" ] || continue
        defaults=$(sed -n 's/^[[:space:]]*default_ulimits[[:space:]]*=[[:space:]]*\[\(.*\)\].*/\1/p' "$conf" | tr -d '" ' | tr ',' ' ')
        for limit in $defaults; do
            case "$limit" in memlock=* | stack=*) ;; *) args+=(--ulimit "$limit") ;; esac
        done
        break
    done
fi
args+=(--ulimit "memlock=$memlock:$memlock" --ulimit "stack=${LLMKIT_STACK:-67108864}:${LLMKIT_STACK:-67108864}")

if [ "${LLMKIT_SANDBOX:-1}" = 1 ]; then
    # bubblewrap makes user, PID, network and mount namespaces and mounts a fresh /proc, which the masked /proc
    # paths forbid (podman: unmask=ALL, tested); docker's default seccomp and AppArmor profiles forbid the
    # namespaces too (not tested here: no docker daemon).
    if [ "$engine" = podman ]; then
        args+=(--security-opt unmask=ALL)
    else
        args+=(--security-opt systempaths=unconfined --security-opt seccomp=unconfined --security-opt apparmor=unconfined)
    fi
fi

gpus=${LLMKIT_GPUS:-}
if [ -z "$gpus" ]; then
    if command -v nvidia-smi >/dev/null 2>&1; then gpus=all; else gpus=none; fi
fi
if [ "$gpus" != none ]; then
    if [ "$engine" = docker ]; then
        if [ "$gpus" = all ]; then args+=(--gpus all); else args+=(--gpus "\"device=$gpus\""); fi
    else
        compgen -G "/etc/cdi/nvidia*.yaml" >/dev/null || compgen -G "/var/run/cdi/nvidia*.yaml" >/dev/null ||
            die "podman finds NVIDIA GPUs through CDI and there is no CDI spec (/etc/cdi/nvidia.yaml); generate it with nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml, or set LLMKIT_GPUS=none"
        IFS=, read -r -a devices <<<"$gpus"
        for device in "${devices[@]}"; do args+=(--device "nvidia.com/gpu=$device"); done
    fi
fi
[ -t 0 ] && [ -t 1 ] && args+=(--interactive --tty)
if [ -n "${LLMKIT_RUN_ARGS:-}" ]; then
    read -r -a extra <<<"$LLMKIT_RUN_ARGS"
    args+=("${extra[@]}")
fi
args+=("$image" "$@")

if [ "${LLMKIT_DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "$engine" "${args[@]}"
    echo
    exit 0
fi
exec "$engine" "${args[@]}"
