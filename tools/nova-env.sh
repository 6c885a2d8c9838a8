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
# nothing is reinstalled. --force rebuilds the wheel. Needs only PyPI.

set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
DIST=nova
VERSION=34.0.0
SDIST_NAME=nova-34.0.0.tar.gz
SDIST_SHA256=919eef77cda4ce0cc4746a5853b5d9341ebd0ae37bc8b1939eb77d17727c00df
TREE=nova-34.0.0
MARKER_REL=nova/_pmem_series.py
PATCH_DIR=$script_dir/../contrib/nova

# shellcheck source=tools/patched-sdist.sh
. "$script_dir/patched-sdist.sh"

# Nova's tests find etc/nova/api-paste.ini under [DEFAULT] state_path, the
# directory above the nova package (site-packages); the wheel installs it
# under the environment's prefix.
post_install() {
    "$python" - <<'PY' || die "cannot link etc/nova beside the nova package"
import os
import sys
import sysconfig

link = os.path.join(sysconfig.get_paths()['purelib'], 'etc')
target = os.path.join(sys.prefix, 'etc')
if os.path.isfile(os.path.join(target, 'nova', 'api-paste.ini')) and not (
    os.path.lexists(link)
):
    os.symlink(target, link)
PY
}

patched_sdist_main "$@"
