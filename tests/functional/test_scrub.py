#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Scrub a real device-DAX namespace through our code, on the QEMU rig.

This file boots its own rig run (rig-scrub-check.sh, about 40 s on
two idle cores) rather than sharing the suite's boot, so that writing to
and zeroing ns0 cannot disturb what the other functional tests observe,
and so that it stays independent of their guest script. Inside the guest,
as root: a pattern is written at both ends of the 1 GiB ns0, then
``cyborg-pmem-scrub ns0`` zeroes it (fresh discovery, privsep helper forked
with CAP_DAC_OVERRIDE only, daxio with no_new_privs), then both ends read
back as zeros. Skipped without QEMU unless CYBORG_PMEM_REQUIRE_QEMU=1.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from tests.functional import hypervisor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHECK = os.path.join(HERE, 'rig-scrub-check.sh')
TIMEOUT = 900


class RigScrubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hypervisor.check()
        subprocess.run(
            [os.path.join(ROOT, 'tools', 'qemu-pmem', 'build.sh')],
            check=True,
            timeout=TIMEOUT,
            capture_output=True,
        )
        cls.out = tempfile.mkdtemp(prefix='rig-scrub.')
        done = subprocess.run(
            [CHECK, cls.out, sys.executable],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        try:
            cls.report = json.loads(done.stdout)
        except ValueError:
            raise AssertionError(
                f'no report from the rig (exit {done.returncode}); see '
                f'{cls.out}: {done.stderr[-2000:]}'
            ) from None

    def test_pattern_was_there_before(self):
        checks = self.report['checks']
        self.assertTrue(checks['pattern_at_start'])
        self.assertTrue(checks['pattern_at_end'])

    def test_scrub_zeroes_the_whole_namespace(self):
        checks = self.report['checks']
        self.assertTrue(checks['scrub_ok'], self.report['scrub'])
        self.assertTrue(checks['zero_at_start'])
        self.assertTrue(checks['zero_at_end'])
        print(f'scrub of {self.report["size"]} bytes: {self.report["scrub"]}')

    def test_daxio_runs_with_dac_override_only(self):
        self.assertTrue(
            self.report['checks']['daxio_caps_only_dac_override'],
            self.report['daxio_status'],
        )

    def test_refusal_and_dry_run(self):
        checks = self.report['checks']
        self.assertTrue(checks['fsdax_refused'], self.report['fsdax_refusal'])
        self.assertTrue(checks['dry_run_ok'], self.report['dry_run'])
