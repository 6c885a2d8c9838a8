# Sourced by tools/cyborg-env.sh and tools/nova-env.sh: install
# an OpenStack sdist with a patch series into a Python environment, from a
# wheel of the patched tree built once per series and kept in the cache.
#
# The caller sets, then calls `patched_sdist_main "$@"`:
#   DIST          distribution name (nova)
#   VERSION       its version (34.0.0)
#   SDIST_NAME    the sdist's file name (nova-34.0.0.tar.gz)
#   SDIST_SHA256  its sha256
#   TREE          the directory it unpacks into (nova-34.0.0)
#   MARKER_REL    the series marker, relative to site-packages
#                 (nova/_pmem_series.py)
#   PATCH_DIR     the default patch directory
# and may define post_install (run after every install or no-op run,
# with $python set).
#
# Options: [--python] PYTHON [--patches DIR] [--cache-dir DIR] [--force].
# The cache is ${CYBORG_PMEM_CACHE:-$HOME/.cache/cyborg-pmem}.

prog=$(basename "$0")

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

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value"
}

post_install() {
    :
}

# Run a step with its output (pip's progress, setuptools' notices about
# the project's own packaging) in a log that is shown only when it fails.
run_logged() {
    local what=$1
    shift
    if ! "$@" >"$work/log" 2>&1; then
        tail -n 40 "$work/log" >&2
        die "$what failed"
    fi
}

# Read the marker without importing the package (which may be broken).
installed_series() {
    "$python" - "$DIST" "$VERSION" "$MARKER_REL" <<'EOF' 2>/dev/null || true
import importlib.metadata as md
import re
import sys

try:
    dist = md.distribution(sys.argv[1])
except md.PackageNotFoundError:
    sys.exit(0)
if dist.version != sys.argv[2]:
    sys.exit(0)
try:
    with open(dist.locate_file(sys.argv[3])) as f:
        m = re.search(r"^SERIES = '([0-9a-f]{64})'$", f.read(), re.M)
except OSError:
    sys.exit(0)
if m:
    print(m.group(1))
EOF
}

# Build the wheel of the patched tree into $1 (a new directory).
build_wheel() {
    local out=$1 sdist="$cache_dir/$SDIST_NAME" got log p tree
    if ! { [ -f "$sdist" ] && [ "$(sha256sum < "$sdist" | cut -d' ' -f1)" \
            = "$SDIST_SHA256" ]; }; then
        info "downloading the $DIST $VERSION sdist into $cache_dir"
        mkdir "$work/dl"
        run_logged "pip download of $DIST==$VERSION" \
            "$python" -m pip download --no-binary :all: --no-deps \
            --dest "$work/dl" "$DIST==$VERSION"
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
    tree="$work/src/$TREE"
    [ -d "$tree" ] || die "$SDIST_NAME did not unpack into $TREE/"
    for p in "${patches[@]}"; do
        if ! log=$(cd "$tree" && "${apply[@]}" < "$p" 2>&1); then
            echo "$log" >&2
            die "patch $(basename "$p") does not apply to $DIST $VERSION"
        fi
    done
    cat > "$tree/$MARKER_REL" <<EOF
# Written by cyborg-pmem tools/$prog: this $DIST $VERSION
# carries the cyborg-pmem patch series below.
SERIES = '$series'
PATCHES = (
$(for p in "${patches[@]}"; do
    printf "    '%s',\n" "$(basename "$p")"
done)
)
EOF

    info "building a wheel of patched $DIST $VERSION (series ${series:0:12})"
    mkdir "$work/wheel"
    # The tree has no git metadata; pbr reads the version from PKG-INFO.
    run_logged "building a wheel of the patched $DIST tree" \
        env PBR_VERSION="$VERSION" "$python" -m pip wheel --no-deps \
        --disable-pip-version-check --wheel-dir "$work/wheel" "$tree"
    mv "$work/wheel" "$out"
}

patched_sdist_main() {
    python=
    patch_dir=$PATCH_DIR
    cache_dir="${CYBORG_PMEM_CACHE:-${HOME:?HOME is not set}/.cache/cyborg-pmem}"
    force=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --python) need_value "$1" $#; python=$2; shift 2 ;;
            --python=*) python=${1#*=}; shift ;;
            --patches) need_value "$1" $#; patch_dir=$2; shift 2 ;;
            --patches=*) patch_dir=${1#*=}; shift ;;
            --cache-dir) need_value "$1" $#; cache_dir=$2; shift 2 ;;
            --cache-dir=*) cache_dir=${1#*=}; shift ;;
            --force) force=1; shift ;;
            -h|--help) usage 0 ;;
            -*) die "unknown option: $1 (see --help)" ;;
            *)
                [ -z "$python" ] || die "more than one python: $python, $1"
                python=$1
                shift
                ;;
        esac
    done

    [ -n "$python" ] || die "no target python given (see --help)"
    if [ -d "$python" ]; then
        [ -x "$python/bin/python" ] || die "$python is a directory but" \
            "not a virtualenv (no bin/python)"
        python=$python/bin/python
    fi
    command -v "$python" >/dev/null 2>&1 \
        || die "target python not found: $python"
    python=$(command -v "$python")
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$python is older than 3.10, which $DIST $VERSION needs"
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
    command -v sha256sum >/dev/null 2>&1 || die "'sha256sum' is not installed"

    [ -d "$patch_dir" ] || die "patch directory not found: $patch_dir"
    patch_dir=$(cd "$patch_dir" && pwd)
    shopt -s nullglob
    patches=("$patch_dir"/*.patch)
    shopt -u nullglob
    [ ${#patches[@]} -gt 0 ] || die "no *.patch files in $patch_dir"

    # The series identity: the version, then every patch's name and
    # content in the order they are applied (the glob is sorted).
    series=$(
        {
            echo "$DIST $VERSION"
            for p in "${patches[@]}"; do
                printf '%s %s\n' "$(basename "$p")" \
                    "$(sha256sum < "$p" | cut -d' ' -f1)"
            done
        } | sha256sum | cut -d' ' -f1
    )

    if [ "$force" -eq 0 ] && [ "$(installed_series)" = "$series" ]; then
        post_install
        info "$DIST $VERSION with series ${series:0:12} is already" \
            "installed in $python"
        return 0
    fi

    mkdir -p "$cache_dir" || die "cannot create cache directory $cache_dir"
    cache_dir=$(cd "$cache_dir" && pwd)
    # One build at a time per cache and project (parallel tox envs).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$cache_dir/.lock-$DIST"
        flock 9
    fi
    work=$(mktemp -d "$cache_dir/work.XXXXXX")
    trap 'rm -rf "$work"' EXIT

    wheel_dir="$cache_dir/$DIST-$VERSION-series-$series"
    if [ "$force" -eq 1 ]; then
        rm -rf "$wheel_dir"
    fi
    if [ ! -d "$wheel_dir" ]; then
        build_wheel "$work/built"
        mv "$work/built" "$wheel_dir"
    fi
    wheels=("$wheel_dir"/*.whl)
    [ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] \
        || die "$wheel_dir does not hold one wheel (delete it to rebuild)"

    info "installing patched $DIST $VERSION (series ${series:0:12})" \
        "into $python"
    # The same version may be installed already: replace it, then let pip
    # add whatever of its dependencies is missing.
    run_logged "pip install of ${wheels[0]} into $python" \
        "$python" -m pip install --disable-pip-version-check \
        --force-reinstall --no-deps "${wheels[0]}"
    run_logged "pip install of the dependencies of $DIST into $python" \
        "$python" -m pip install --disable-pip-version-check "${wheels[0]}"
    post_install

    [ "$(installed_series)" = "$series" ] || die "the installed $DIST in" \
        "$python does not carry series ${series:0:12}"
    info "done: $DIST $VERSION + ${#patches[@]} patches" \
        "(series ${series:0:12}) in $python"
}
