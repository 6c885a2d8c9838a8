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

"""Base class of the unit tests.

Unit tests never start a process: the guard below replaces the two doors
every command goes through (``subprocess.Popen`` and
``processutils.execute``) with ones that fail the test, as
ironic-python-agent's test base does. A test that needs a command mocks
``processutils.execute`` itself, with autospec, at that boundary.
"""

import json
from unittest import mock

import fixtures
from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslotest import base

from cyborg_pmem import conf
from cyborg_pmem import privsep
from tests import fixtures as ndctl_fixtures


class RealCommandError(AssertionError):
    pass


def _refuse(*args, **kwargs):
    raise RealCommandError(
        f'unit tests must not run real commands: {args!r:.200}'
    )


class TestCase(base.BaseTestCase):
    def setUp(self):
        super().setUp()
        self.useFixture(
            fixtures.MonkeyPatch(
                'oslo_concurrency.processutils.execute', _refuse
            )
        )
        self.useFixture(fixtures.MonkeyPatch('subprocess.Popen', _refuse))
        self.config = self.useFixture(config_fixture.Config(cfg.CONF))
        conf.register_opts(cfg.CONF)

    def mock_execute(self, **kwargs):
        """Replace processutils.execute at the boundary, with autospec."""
        patcher = mock.patch.object(
            processutils, 'execute', autospec=True, **kwargs
        )
        mocked = patcher.start()
        self.addCleanup(patcher.stop)
        return mocked

    def scrub_in_process(self):
        """Run the privileged scrub function in this process (no helper is
        started) with the device-node check, the filesystem boundary that
        tests/unit/test_privsep.py covers, mocked; return that mock."""
        privsep.scrub_context.set_client_mode(False)
        self.addCleanup(privsep.scrub_context.set_client_mode, True)
        return self.useFixture(
            fixtures.MockPatchObject(
                privsep, '_check_dax_device', autospec=True
            )
        ).mock


def fixture_path(name):
    """A saved ``ndctl list`` output (tests/fixtures/ndctl/MANIFEST)."""
    return ndctl_fixtures.ndctl_path(name)


def fixture_text(name):
    return ndctl_fixtures.ndctl_text(name)


def fixture_json(name):
    return json.loads(fixture_text(name))
