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
# known sha256. A wheel of the patched tree is built once per series (the
# sdist unpacked fresh, the patches applied with `patch -p1` in file name
# order) and kept in the cache under the series' sha256; every later
# environment pip-installs that wheel, so a tox run builds Cyborg once.
# The installed tree carries cyborg/_pmem_series.py with the series'
# sha256; when it already matches, nothing is reinstalled. --patches
# installs another series (the integration suite's Cyborg without the
# last patch). --force rebuilds the wheel. Needs only PyPI.

set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
DIST=openstack-cyborg
VERSION=17.0.0
SDIST_NAME=openstack_cyborg-17.0.0.tar.gz
SDIST_SHA256=27b433cbf0cda309d8675d399031d82f95452dcf3635f0c80d2ccc4b98678ca6
TREE=openstack_cyborg-17.0.0
MARKER_REL=cyborg/_pmem_series.py
PATCH_DIR=$script_dir/../contrib/cyborg

# shellcheck source=tools/patched-sdist.sh
. "$script_dir/patched-sdist.sh"

# The series' first change is the one the driver cannot load without.
post_install() {
    "$python" -c 'from cyborg.common import constants as c
assert "PMEM" in c.DEVICE_TYPE' 2>/dev/null \
        || die "the installed cyborg in $python does not know the PMEM type"
}

patched_sdist_main "$@"
