#!/usr/bin/env bash
# Install openstack-cyborg 17.0.0 with the PMEM patch series
# (contrib/cyborg/*.patch) into a Python environment.
#
#   tools/cyborg-env.sh [--python] PYTHON [--patches DIR] [--cache-dir DIR]
#                       [--force]
#
# PYTHON is a python executable (tox: {envpython}) or a virtualenv
# directory. The sdist is downloaded once into the cache directory
# (${CYBORG_PMEM_CACHE:-$HOME/.cache/cyborg-pmem}) and checked against its
# known sha256. The first run for a series unpacks it, applies the patches
# with `patch -p1` in file name order and builds one wheel into
# CACHE/wheels/SERIES/; every environment then installs that wheel, so a
# tox run builds Cyborg once, not once per environment. The installed tree
# carries cyborg/_pmem_series.py with SERIES, a sha256 of the series; when
# it already matches, nothing is reinstalled. --force rebuilds the wheel.
# Needs only PyPI.

set -euo pipefail

CYBORG_VERSION=17.0.0
SDIST_NAME="openstack_cyborg-${CYBORG_VERSION}.tar.gz"
SDIST_SHA256=27b433cbf0cda309d8675d399031d82f95452dcf3635f0c80d2ccc4b98678ca6
MARKER_REL=cyborg/_pmem_series.py

prog=$(basename "$0")
script_dir=$(cd "$(dirname "$0")" && pwd)

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

info() {
    echo "$prog: $*" >&2
}

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
    exit "${1:-2}"
}

python=
patch_dir="$script_dir/../contrib/cyborg"
cache_dir="${CYBORG_PMEM_CACHE:-${HOME:?HOME is not set}/.cache/cyborg-pmem}"
force=0

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --python)
            need_value "$1" $#
            python=$2
            shift 2
            ;;
        --python=*)
            python=${1#*=}
            shift
            ;;
        --patches)
            need_value "$1" $#
            patch_dir=$2
            shift 2
            ;;
        --patches=*)
            patch_dir=${1#*=}
            shift
            ;;
        --cache-dir)
            need_value "$1" $#
            cache_dir=$2
            shift 2
            ;;
        --cache-dir=*)
            cache_dir=${1#*=}
            shift
            ;;
        --force)
            force=1
            shift
            ;;
        -h|--help)
            usage 0
            ;;
        -*)
            die "unknown option: $1 (see --help)"
            ;;
        *)
            [ -z "$python" ] || die "more than one python: $python, $1"
            python=$1
            shift
            ;;
    esac
done

[ -n "$python" ] || die "no target python given (see --help)"
if [ -d "$python" ]; then
    [ -x "$python/bin/python" ] \
        || die "$python is a directory but not a virtualenv (no bin/python)"
    python=$python/bin/python
fi
command -v "$python" >/dev/null 2>&1 \
    || die "target python not found: $python"
python=$(command -v "$python")
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$python is older than 3.10, which Cyborg $CYBORG_VERSION needs"
"$python" -m pip --version >/dev/null 2>&1 || die "$python has no pip"
# patch(1) where installed; else git apply, which works outside a
# repository too (a fresh machine may have git but not patch).
if command -v patch >/dev/null 2>&1; then
    apply=(patch -p1 --forward --batch --no-backup-if-mismatch)
elif command -v git >/dev/null 2>&1; then
    apply=(git apply -p1)
else
    die "neither 'patch' nor 'git' is installed (apt-get install patch)"
fi
command -v sha256sum >/dev/null 2>&1 \
    || die "'sha256sum' is not installed"

[ -d "$patch_dir" ] || die "patch directory not found: $patch_dir"
patch_dir=$(cd "$patch_dir" && pwd)
shopt -s nullglob
patches=("$patch_dir"/*.patch)
shopt -u nullglob
[ ${#patches[@]} -gt 0 ] || die "no *.patch files in $patch_dir"

# The series identity: Cyborg version, then every patch's name and content
# in the order they are applied (the glob is sorted).
series=$(
    {
        echo "openstack-cyborg $CYBORG_VERSION"
        for p in "${patches[@]}"; do
            printf '%s %s\n' "$(basename "$p")" \
                "$(sha256sum < "$p" | cut -d' ' -f1)"
        done
    } | sha256sum | cut -d' ' -f1
)

installed_series() {
    # Read the marker without importing cyborg (which may be broken).
    "$python" - "$CYBORG_VERSION" "$MARKER_REL" <<'EOF' 2>/dev/null || true
import importlib.metadata as md
import re
import sys

try:
    dist = md.distribution('openstack-cyborg')
except md.PackageNotFoundError:
    sys.exit(0)
if dist.version != sys.argv[1]:
    sys.exit(0)
try:
    with open(dist.locate_file(sys.argv[2])) as f:
        m = re.search(r"^SERIES = '([0-9a-f]{64})'$", f.read(), re.M)
except OSError:
    sys.exit(0)
if m:
    print(m.group(1))
EOF
}

if [ "$force" -eq 0 ] && [ "$(installed_series)" = "$series" ]; then
    info "openstack-cyborg $CYBORG_VERSION with series ${series:0:12}" \
        "is already installed in $python"
    exit 0
fi

mkdir -p "$cache_dir" || die "cannot create cache directory $cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)

# One run at a time per cache (e.g. parallel tox environments).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_dir/.lock"
    flock 9
fi

work=$(mktemp -d "$cache_dir/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A step's output (pip's progress, setuptools' notices about Cyborg's own
# packaging) goes to a log that is shown only when the step fails.
run_logged() {
    local what=$1
    shift
    if ! "$@" >"$work/log" 2>&1; then
        tail -n 40 "$work/log" >&2
        die "$what failed"
    fi
}

wheel_dir="$cache_dir/wheels/$series"
find_wheel() {
    local found=("$wheel_dir/openstack_cyborg-$CYBORG_VERSION"-*.whl)
    [ -f "${found[0]}" ] && echo "${found[0]}"
    return 0
}

if [ "$force" -eq 1 ] || [ -z "$(find_wheel)" ]; then
    sdist="$cache_dir/$SDIST_NAME"
    sdist_ok() {
        [ -f "$sdist" ] \
            && [ "$(sha256sum < "$sdist" | cut -d' ' -f1)" = "$SDIST_SHA256" ]
    }
    if ! sdist_ok; then
        info "downloading the openstack-cyborg $CYBORG_VERSION sdist" \
            "into $cache_dir"
        mkdir "$work/dl"
        run_logged "pip download of openstack-cyborg==$CYBORG_VERSION" \
            "$python" -m pip download --no-binary :all: --no-deps \
            --dest "$work/dl" "openstack-cyborg==$CYBORG_VERSION"
        [ -f "$work/dl/$SDIST_NAME" ] \
            || die "pip download did not produce $SDIST_NAME"
        got=$(sha256sum < "$work/dl/$SDIST_NAME" | cut -d' ' -f1)
        [ "$got" = "$SDIST_SHA256" ] \
            || die "$SDIST_NAME has sha256 $got, expected $SDIST_SHA256"
        mv -f "$work/dl/$SDIST_NAME" "$sdist"
    fi

    mkdir "$work/src"
    tar -xzf "$sdist" -C "$work/src" --no-same-owner \
        || die "cannot unpack $sdist (delete it to download it again)"
    tree="$work/src/openstack_cyborg-$CYBORG_VERSION"
    [ -d "$tree" ] \
        || die "$SDIST_NAME did not unpack into ${tree##*/}/"

    for p in "${patches[@]}"; do
        if ! out=$(cd "$tree" && "${apply[@]}" < "$p" 2>&1); then
            echo "$out" >&2
            die "patch $(basename "$p") does not apply" \
                "to openstack-cyborg $CYBORG_VERSION"
        fi
    done

    cat > "$tree/$MARKER_REL" <<EOF
# Written by cyborg-pmem tools/cyborg-env.sh: this openstack-cyborg
# $CYBORG_VERSION carries the cyborg-pmem patch series below.
SERIES = '$series'
PATCHES = (
$(for p in "${patches[@]}"; do
        printf "    '%s',\n" "$(basename "$p")"
    done)
)
EOF

    info "building a wheel of patched openstack-cyborg $CYBORG_VERSION" \
        "(series ${series:0:12}) in $wheel_dir"
    mkdir "$work/wheel"
    # The tree has no git metadata; pbr reads the version from PKG-INFO.
    run_logged "building a wheel of the patched tree" \
        env PBR_VERSION="$CYBORG_VERSION" "$python" -m pip wheel --no-deps \
        --disable-pip-version-check --wheel-dir "$work/wheel" "$tree"
    rm -rf "$wheel_dir"
    mkdir -p "$cache_dir/wheels"
    mv "$work/wheel" "$wheel_dir"
fi
wheel=$(find_wheel)
[ -n "$wheel" ] || die "no openstack-cyborg wheel in $wheel_dir"

info "installing patched openstack-cyborg $CYBORG_VERSION" \
    "(series ${series:0:12}) into $python"
# --force-reinstall --no-deps: replace a stock or differently patched
# Cyborg even though the version number is the same.
run_logged "pip install of $wheel into $python" \
    "$python" -m pip install --disable-pip-version-check \
    --force-reinstall --no-deps "$wheel"
run_logged "pip install of openstack-cyborg's dependencies into $python" \
    "$python" -m pip install --disable-pip-version-check "$wheel"

[ "$(installed_series)" = "$series" ] \
    || die "the installed openstack-cyborg in $python does not carry" \
        "series ${series:0:12}"
"$python" -c 'from cyborg.common import constants as c
assert "PMEM" in c.DEVICE_TYPE' \
    || die "the installed cyborg in $python does not know the PMEM type"
info "done: openstack-cyborg $CYBORG_VERSION + ${#patches[@]} patches" \
    "(series ${series:0:12}) in $python"
