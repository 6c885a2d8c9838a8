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

"""The privileged zeroing against a fake ``daxio`` (real processes).

zero_devdax runs in this process (privsep's client mode off), with the
device-node check, which needs a real /dev/daxN.M, stood in for. daxio
goes through the same runner as ndctl: a daxio that outlives its timeout
is killed with everything it started, and the wait for it is bounded,
so it cannot go on writing to a namespace whose release has failed.
"""

import time

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture

from cyborg_pmem import conf
from cyborg_pmem import exception
from cyborg_pmem import privsep
from cyborg_pmem import runner
from tests.fault import test_ndctl_faults as faults

DEVPATH = '/dev/dax0.0'


class DaxioFaultTest(faults.FaultTestCase):
    def setUp(self):
        super().setUp()
        privsep.scrub_context.set_client_mode(False)
        self.addCleanup(privsep.scrub_context.set_client_mode, True)
        self.useFixture(
            fixtures.MockPatchObject(
                privsep, '_check_dax_device', autospec=True
            )
        )
        self.config = self.useFixture(config_fixture.Config(cfg.CONF))
        conf.register_opts(cfg.CONF)

    def fake_daxio(self, body):
        fake = self.useFixture(faults.FakeNdctl(body, sh=True, name='daxio'))
        self.config.config(daxio_path=fake.path, group='pmem_devices')
        return fake

    def zero(self, timeout):
        started = time.monotonic()
        err = self.assertRaises(
            exception.ScrubTimeout, privsep.zero_devdax, DEVPATH, timeout
        )
        self.assertEqual(
            f'zeroing {DEVPATH} did not finish within {timeout} s and was '
            'killed ([pmem_devices] scrub_timeout_base, '
            'scrub_seconds_per_gib)',
            str(err),
        )
        return time.monotonic() - started

    def test_hung_daxio_and_its_child_are_killed(self):
        fake = self.fake_daxio(faults.with_child('wait'))
        self.assertLess(self.zero(timeout=1), 1 + 4)
        _daxio, grandchild = fake.started()
        # The grandchild is init's child once daxio died: dead is what
        # matters; reaping it is init's job.
        self.assertAllGone(fake, allow_zombie=(grandchild,))

    def test_escaped_descendant_cannot_hang_the_release(self):
        fake = self.fake_daxio(faults.with_escaping_child('sleep 600'))
        self.addCleanup(self.kill_escaped, fake)
        self.assertLess(self.zero(timeout=1), 1 + runner.REAP_TIMEOUT + 4)
        daxio = fake.started()[0]
        self.assertIsNone(faults.proc_state(daxio))

    def test_daxio_that_works(self):
        fake = self.fake_daxio('exit 0\n')
        self.assertIsNone(privsep.zero_devdax(DEVPATH, 10))
        self.assertAllGone(fake)
