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

from oslo_config import cfg

from cyborg_pmem import conf
from tests.unit import base


class ConfTest(base.TestCase):
    def test_list_opts_has_every_option_with_help(self):
        ((group, opts),) = conf.list_opts()
        self.assertEqual('pmem_devices', group.name)
        self.assertEqual(
            ['pmem_namespaces', 'ndctl_path', 'ndctl_timeout'],
            [opt.name for opt in opts][:3],
        )
        for opt in opts:
            self.assertTrue(opt.help, opt.name)

    def test_defaults(self):
        group = cfg.CONF.pmem_devices
        self.assertEqual([], group.pmem_namespaces)
        self.assertEqual('ndctl', group.ndctl_path)
        self.assertEqual(30, group.ndctl_timeout)

    def test_list_value(self):
        self.config.config(
            pmem_namespaces='6GB:ns0|ns1,LARGE:ns3', group='pmem_devices'
        )
        self.assertEqual(
            ['6GB:ns0|ns1', 'LARGE:ns3'], cfg.CONF.pmem_devices.pmem_namespaces
        )

    def test_timeout_must_be_positive(self):
        self.assertRaises(
            ValueError,
            self.config.config,
            ndctl_timeout=0,
            group='pmem_devices',
        )
