#!/usr/bin/env bash
# Install nova 34.0.0 with the PMEM patch series (contrib/nova/*.patch)
# into a Python environment.
#
#   tools/nova-env.sh [--python] PYTHON [--patches DIR] [--cache-dir DIR]
#                     [--force]
#
# PYTHON is a python executable (tox: {envpython}) or a virtualenv
# directory. The sdist is downloaded once into the cache directory
# (${CYBORG_PMEM_CACHE:-$HOME/.cache/cyborg-pmem}) and checked against its
# known sha256. A wheel of the patched tree is built once per series (the
# sdist unpacked fresh, the patches applied with `patch -p1` in file name
# order) and kept in the cache under the series' sha256; every later
# environment pip-installs that wheel. The installed tree carries
# nova/_pmem_series.py with the series' sha256; when it already matches,
# nothing is reinstalled. Needs only PyPI.

set -euo pipefail

NOVA_VERSION=34.0.0
SDIST_NAME="nova-${NOVA_VERSION}.tar.gz"
SDIST_SHA256=919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df
WHEEL_NAME="nova-${NOVA_VERSION}-py3-none-any.whl"
MARKER_REL=nova/_pmem_series.py

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
patch_dir="$script_dir/../contrib/nova"
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
    || die "$python is older than 3.10, which nova $NOVA_VERSION needs"
"$python" -m pip --version >/dev/null 2>&1 || die "$python has no pip"
# patch(1) where installed; else git apply, which works outside a
# repository too.
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

# The series identity: nova version, then every patch's name and content
# in the order they are applied (the glob is sorted).
series=$(
    {
        echo "nova $NOVA_VERSION"
        for p in "${patches[@]}"; do
            printf '%s %s\n' "$(basename "$p")" \
                "$(sha256sum < "$p" | cut -d' ' -f1)"
        done
    } | sha256sum | cut -d' ' -f1
)

installed_series() {
    # Read the marker without importing nova (which may be broken).
    "$python" - "$NOVA_VERSION" "$MARKER_REL" <<'EOF' 2>/dev/null || true
import importlib.metadata as md
import re
import sys

try:
    dist = md.distribution('nova')
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

# Nova's tests find etc/nova/api-paste.ini under [DEFAULT] state_path,
# the directory above the nova package (site-packages); the wheel puts
# it under the environment's prefix.
link_etc() {
    "$python" - <<'EOF' || die "cannot link etc/nova beside the nova package"
import os
import sys
import sysconfig

purelib = sysconfig.get_paths()['purelib']
link = os.path.join(purelib, 'etc')
target = os.path.join(sys.prefix, 'etc')
if os.path.isfile(os.path.join(target, 'nova', 'api-paste.ini')) and not (
    os.path.lexists(link)
):
    os.symlink(target, link)
EOF
}

if [ "$force" -eq 0 ] && [ "$(installed_series)" = "$series" ]; then
    link_etc
    info "nova $NOVA_VERSION with series ${series:0:12}" \
        "is already installed in $python"
    exit 0
fi

mkdir -p "$cache_dir" || die "cannot create cache directory $cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)

# One run at a time per cache (e.g. parallel tox environments).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_dir/.lock-nova"
    flock 9
fi

work=$(mktemp -d "$cache_dir/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

wheel_dir="$cache_dir/nova-$NOVA_VERSION-series-$series"
wheel="$wheel_dir/$WHEEL_NAME"

if [ "$force" -eq 1 ] || [ ! -f "$wheel" ]; then
    sdist="$cache_dir/$SDIST_NAME"
    sdist_ok() {
        [ -f "$sdist" ] \
            && [ "$(sha256sum < "$sdist" | cut -d' ' -f1)" = "$SDIST_SHA256" ]
    }
    if ! sdist_ok; then
        info "downloading the nova $NOVA_VERSION sdist into $cache_dir"
        mkdir "$work/dl"
        "$python" -m pip download --quiet --no-binary :all: --no-deps \
            --dest "$work/dl" "nova==$NOVA_VERSION" \
            || die "pip download of nova==$NOVA_VERSION failed"
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
    tree="$work/src/nova-$NOVA_VERSION"
    [ -d "$tree" ] || die "$SDIST_NAME did not unpack into ${tree##*/}/"

    for p in "${patches[@]}"; do
        if ! out=$(cd "$tree" && "${apply[@]}" < "$p" 2>&1); then
            echo "$out" >&2
            die "patch $(basename "$p") does not apply to nova $NOVA_VERSION"
        fi
    done

    cat > "$tree/$MARKER_REL" <<EOF
# Written by cyborg-pmem tools/nova-env.sh: this nova $NOVA_VERSION
# carries the cyborg-pmem patch series below.
SERIES = '$series'
PATCHES = (
$(for p in "${patches[@]}"; do
    printf "    '%s',\n" "$(basename "$p")"
done)
)
EOF

    info "building a wheel of patched nova $NOVA_VERSION" \
        "(series ${series:0:12})"
    mkdir "$work/wheel"
    # The tree has no git metadata; pbr reads the version from PKG-INFO.
    PBR_VERSION=$NOVA_VERSION "$python" -m pip wheel --quiet --no-deps \
        --disable-pip-version-check --wheel-dir "$work/wheel" "$tree" \
        || die "building a wheel of the patched nova tree failed"
    [ -f "$work/wheel/$WHEEL_NAME" ] \
        || die "pip wheel did not produce $WHEEL_NAME"
    rm -rf "$wheel_dir"
    mkdir -p "$wheel_dir"
    mv "$work/wheel/$WHEEL_NAME" "$wheel"
fi

info "installing patched nova $NOVA_VERSION (series ${series:0:12})" \
    "into $python"
"$python" -m pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps "$wheel" \
    || die "pip install of $wheel into $python failed"
# Then its dependencies, as a normal install would resolve them.
"$python" -m pip install --quiet --disable-pip-version-check "$wheel" \
    || die "pip install of the dependencies of $wheel into $python failed"
link_etc

[ "$(installed_series)" = "$series" ] \
    || die "the installed nova in $python does not carry" \
        "series ${series:0:12}"
info "done: nova $NOVA_VERSION + ${#patches[@]} patches" \
    "(series ${series:0:12}) in $python"
