# shellcheck shell=bash
# Sourced by the image tests: podman as this machine allows it (rootful, no systemd, no Docker
# Hub), `docker` and `docker compose` as the README writes them, and the stand-in base images.
#
# Facts behind each setting: ../shared/CONTAINERS.md. Everything lives under $CALLMON_IMAGE_CACHE
# (default /var/tmp/callmon-image), outside the clone, so that a clean clone reuses the stand-in
# bases and the build cache of the last run.

CALLMON_IMAGE_CACHE=${CALLMON_IMAGE_CACHE:-/var/tmp/callmon-image}
export CALLMON_IMAGE_CACHE
mkdir -p "$CALLMON_IMAGE_CACHE"/{storage,run,tmp}

# runc: crun 1.8 refuses this machine's hybrid cgroups; no systemd for cgroups, events or
# health timers; ulimits at or below the sandbox's hard limits (it lacks CAP_SYS_RESOURCE).
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] && nproc=32768
[ "$nproc" -gt 32768 ] && nproc=32768
cat >"$CALLMON_IMAGE_CACHE/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$CALLMON_IMAGE_CACHE/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$CALLMON_IMAGE_CACHE/storage"
runroot = "$CALLMON_IMAGE_CACHE/run"
CONF
export CONTAINERS_CONF="$CALLMON_IMAGE_CACHE/containers.conf"
export CONTAINERS_STORAGE_CONF="$CALLMON_IMAGE_CACHE/storage.conf"
# podman build's OCI format drops HEALTHCHECK; the Docker format keeps it.
export BUILDAH_FORMAT=docker
export TMPDIR="$CALLMON_IMAGE_CACHE/tmp"

# The README's commands say `docker`: here that is podman, whose complaint that it has no
# systemd to time health checks with is left out (the tests run them by hand).
docker() {
    if [ "${1:-}" = compose ]; then
        shift
        podman-compose "$@"
    else
        podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
    fi
}

# What the image tests need from Debian, installed when missing (CI runs as root).
need_packages() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v runc >/dev/null || missing+=(runc)
    command -v curl >/dev/null || missing+=(curl)
    # Compose's services find each other by name through CNI's dnsname plugin.
    [ -e /usr/lib/cni/dnsname ] || missing+=(golang-github-containernetworking-plugin-dnsname)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "image tests need: ${missing[*]} (Debian packages)" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null
}

# A stand-in for python:3.11-slim, made from Debian's archive: debootstrap, then Python 3.11
# (with its headers, as in the official image), pip on PATH from a venv at /usr/local, and this
# machine's extra CA certificates (its egress proxy intercepts TLS; they belong here, never in
# the project's Dockerfile).
build_python_base() {
    podman image exists localhost/python:3.11-slim && return 0
    echo "building the stand-in python:3.11-slim from Debian's archive (once)" >&2
    local mirror rootfs
    mirror=$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
        /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1)
    rootfs="$CALLMON_IMAGE_CACHE/rootfs"
    rm -rf "$rootfs"
    env -u TMPDIR debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
        >"$CALLMON_IMAGE_CACHE/debootstrap.log"
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" \
        2>/dev/null || true
    env -u TMPDIR chroot "$rootfs" /bin/sh -ec '
        export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip \
            python3-dev ca-certificates netbase tzdata >/dev/null
        update-ca-certificates >/dev/null
        python3 -m venv /usr/local
        apt-get clean
        rm -rf /var/lib/apt/lists/*' >"$CALLMON_IMAGE_CACHE/chroot.log" 2>&1
    tar -C "$rootfs" -c . | podman import \
        --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' - localhost/python:3.11-slim >/dev/null
    rm -rf "$rootfs"
}

# A stand-in for postgres:16 (Docker Hub's image cannot be pulled here): Debian's PostgreSQL on
# the stand-in base, with the official image's POSTGRES_USER/PASSWORD/DB and data folder.
build_postgres_base() {
    podman image exists localhost/postgres:16 && return 0
    echo "building the stand-in postgres:16 from Debian's archive (once)" >&2
    podman build --pull=never -q -t localhost/postgres:16 "$(dirname "${BASH_SOURCE[0]}")/postgres" \
        >/dev/null
}
