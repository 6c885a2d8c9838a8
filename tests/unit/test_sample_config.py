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

"""The committed sample configuration is what the options generate."""

import difflib
import os

import fixtures
from oslo_config import cfg
from oslo_config import generator

from tests.unit import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
GENERATOR_CONF = os.path.join(
    ROOT, 'etc', 'oslo-config-generator', 'cyborg-pmem.conf'
)
SAMPLE = os.path.join(ROOT, 'etc', 'cyborg-pmem.conf.sample')


class SampleConfigTest(base.TestCase):
    def test_committed_sample_is_current(self):
        output = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'sample.conf'
        )
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(
            ['--config-file', GENERATOR_CONF, '--output-file', output],
            project='cyborg-pmem',
        )
        # The namespaces come from the installed entry points, as for
        # "tox -e genconfig".
        generator.generate(conf)
        with open(output) as f:
            generated = f.read()
        with open(SAMPLE) as f:
            committed = f.read()
        for section in ('[pmem_devices]', '[cyborg_pmem_privileged]'):
            self.assertIn(section, generated)
        if generated != committed:
            diff = ''.join(
                difflib.unified_diff(
                    committed.splitlines(True),
                    generated.splitlines(True),
                    'etc/cyborg-pmem.conf.sample',
                    'generated',
                )
            )
            self.fail(
                'etc/cyborg-pmem.conf.sample is stale; run "tox -e '
                'genconfig" and commit it:\n' + diff
            )
