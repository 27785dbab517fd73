# shellcheck shell=bash
# What containers/run.sh and containers/enroot.sh share: the host directories a container sees, and where.
#
#   LLMKIT_MODELS     -> /models               read-only; mounted only when set
#   LLMKIT_DATA       -> /data                 read-only; mounted only when set
#   LLMKIT_ARTIFACTS  -> /workspace/artifacts  default ./artifacts (created when it is the default)
#   LLMKIT_RUNS       -> /workspace/runs       default ./runs (created when it is the default)
#
# The working directory in the container is /workspace, so the kit's defaults (artifacts_root=artifacts,
# runs_root=runs) land in the mounted directories. A directory that is named but does not exist is an error.

LLMKIT_WORKDIR=/workspace

# die MESSAGE: one sentence on stderr, exit 2.
die() {
    echo "$(basename "$0"): $1" >&2
    exit 2
}

# llmkit_mounts: fills MOUNT_SOURCES, MOUNT_TARGETS and MOUNT_MODES (ro|rw) from the variables above.
llmkit_mounts() {
    MOUNT_SOURCES=()
    MOUNT_TARGETS=()
    MOUNT_MODES=()
    local variable target mode default path
    for spec in LLMKIT_MODELS:/models:ro: LLMKIT_DATA:/data:ro: \
                "LLMKIT_ARTIFACTS:$LLMKIT_WORKDIR/artifacts:rw:artifacts" "LLMKIT_RUNS:$LLMKIT_WORKDIR/runs:rw:runs"; do
        IFS=: read -r variable target mode default <<<"$spec"
        path=${!variable:-}
        if [ -z "$path" ]; then
            [ -n "$default" ] || continue
            path="$PWD/$default"
            mkdir -p "$path" || die "cannot create $path for $variable; set $variable to a writable directory"
        elif [ ! -d "$path" ]; then
            die "$variable=$path does not exist; create the directory or point $variable at an existing one"
        fi
        path=$(cd "$path" && pwd -P)
        case "$path" in
            *,* | *:*) die "$variable=$path has a ',' or ':' that mount options cannot carry; use a path without them" ;;
        esac
        MOUNT_SOURCES+=("$path")
        MOUNT_TARGETS+=("$target")
        MOUNT_MODES+=("$mode")
    done
}
