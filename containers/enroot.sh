#!/usr/bin/env bash
# The image under Slurm with enroot and pyxis.
#
#   containers/enroot.sh import IMAGE [SQSH]   enroot import the image into a squashfs file (default:
#                                              $LLMKIT_SQSH_DIR, else ., /<image name>.sqsh); prints its path. An
#                                              existing file is reused. IMAGE: a registry image (nvcr.io/nvidia/...,
#                                              written docker://nvcr.io#nvidia/... for enroot), or an enroot URI
#                                              (docker://..., dockerd://llmkit:latest, podman://llmkit:latest).
#   containers/enroot.sh flags IMAGE|SQSH      prints the srun flags, one line:
#                                              --container-image=... --container-mounts=... --container-workdir=...
#   containers/enroot.sh export IMAGE|SQSH     prints `export LLMKIT_SRUN_CONTAINER_FLAGS='...'` (for eval)
#
# The mounts and the working directory are run.sh's (containers/common.sh): LLMKIT_MODELS -> /models (ro),
# LLMKIT_DATA -> /data (ro), LLMKIT_ARTIFACTS -> /workspace/artifacts, LLMKIT_RUNS -> /workspace/runs, workdir
# /workspace. LLMKIT_CONTAINER_NAME adds --container-name (later steps of a job reuse the container).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

usage="usage: enroot.sh import IMAGE [SQSH] | flags IMAGE|SQSH | export IMAGE|SQSH"

# enroot_uri IMAGE: the URI enroot import takes.
enroot_uri() {
    case "$1" in
        *://*) echo "$1" ;;
        *)
            local first=${1%%/*}
            if [ "$first" != "$1" ] && { [[ "$first" == *.* ]] || [[ "$first" == *:* ]] || [ "$first" = localhost ]; }; then
                echo "docker://${first}#${1#*/}"
            else
                echo "docker://$1"
            fi
            ;;
    esac
}

# container_image IMAGE|SQSH: what --container-image takes (a squashfs file must exist).
container_image() {
    case "$1" in
        *.sqsh)
            [ -f "$1" ] || die "the squashfs image $1 does not exist; make it with containers/enroot.sh import IMAGE $1"
            (cd "$(dirname "$1")" && echo "$(pwd -P)/$(basename "$1")")
            ;;
        *://*) die "--container-image takes a squashfs file or a registry image, not the enroot URI $1; import it first (containers/enroot.sh import $1)" ;;
        *) enroot_uri "$1" | sed 's|^docker://||' ;;
    esac
}

srun_flags() {
    local image mounts="" i
    image=$(container_image "$1")
    llmkit_mounts
    for i in "${!MOUNT_SOURCES[@]}"; do
        mounts+="${mounts:+,}${MOUNT_SOURCES[$i]}:${MOUNT_TARGETS[$i]}"
        [ "${MOUNT_MODES[$i]}" = ro ] && mounts+=":ro"
    done
    printf '%s' "--container-image=$image --container-mounts=$mounts --container-workdir=$LLMKIT_WORKDIR"
    [ -z "${LLMKIT_CONTAINER_NAME:-}" ] || printf '%s' " --container-name=$LLMKIT_CONTAINER_NAME"
    echo
}

command=${1:-}
[ $# -ge 2 ] || die "$usage"
case "$command" in
    import)
        image=$2
        uri=$(enroot_uri "$image")
        name=$(basename "${image##*://}" | tr ':@#/' '____')
        sqsh=${3:-${LLMKIT_SQSH_DIR:-.}/$name.sqsh}
        if [ -f "$sqsh" ]; then
            echo "$sqsh"
            exit 0
        fi
        command -v enroot >/dev/null 2>&1 ||
            die "enroot is not installed here; run this on a node that has enroot (with pyxis for srun), or import there"
        [ -d "$(dirname "$sqsh")" ] || die "the directory of $sqsh does not exist; create it or choose another SQSH path"
        enroot import --output "$sqsh" "$uri" >&2 ||
            die "enroot import $uri failed (see above); check the image name and your registry credentials (~/.config/enroot/.credentials)"
        echo "$sqsh"
        ;;
    flags) srun_flags "$2" ;;
    export)
        flags=$(srun_flags "$2")
        printf "export LLMKIT_SRUN_CONTAINER_FLAGS=%q\n" "$flags"
        ;;
    *) die "$usage" ;;
esac
