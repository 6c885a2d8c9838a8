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

import ddt

from cyborg_pmem import exception
from cyborg_pmem import labels
from tests.unit import base


@ddt.ddt
class ParseTest(base.TestCase):
    def test_spec_example(self):
        self.assertEqual(
            {'6GB': ('ns0', 'ns1', 'ns2'), 'LARGE': ('ns3',)},
            labels.parse_pmem_namespaces(['6GB:ns0|ns1|ns2', 'LARGE:ns3']),
        )

    def test_string_and_list_agree(self):
        self.assertEqual(
            labels.parse_pmem_namespaces(['6GB:ns0|ns1', 'LARGE:ns3']),
            labels.parse_pmem_namespaces('6GB:ns0|ns1,LARGE:ns3'),
        )

    def test_order_is_kept(self):
        parsed = labels.parse_pmem_namespaces('Z:a,A:b|c,M:d')
        self.assertEqual(['Z', 'A', 'M'], list(parsed))
        self.assertEqual(('b', 'c'), parsed['A'])

    def test_whitespace_around_parts_is_ignored(self):
        self.assertEqual(
            {'6GB': ('ns0', 'ns1')},
            labels.parse_pmem_namespaces([' 6GB : ns0 | ns1 ']),
        )

    @ddt.data([], '', '   ')
    def test_empty_offers_nothing(self, value):
        self.assertEqual({}, labels.parse_pmem_namespaces(value))

    def test_real_world_names(self):
        parsed = labels.parse_pmem_namespaces(
            ['vmw:VMW-PMemNS-1|ns.0_a+b@c', 'x' * 16 + ':' + 'n' * 63]
        )
        self.assertEqual(('VMW-PMemNS-1', 'ns.0_a+b@c'), parsed['vmw'])
        self.assertEqual(('n' * 63,), parsed['x' * 16])

    @ddt.data(
        (['6GB'], "entry '6GB' must have exactly one"),
        (['a:b:c'], "entry 'a:b:c' must have exactly one"),
        ([':ns0'], "entry ':ns0' has an empty label"),
        (['6GB:'], "entry '6GB:' has an empty namespace name"),
        (['6GB:ns0||ns1'], "entry '6GB:ns0||ns1' has an empty namespace"),
        (['6GB:ns0|'], "entry '6GB:ns0|' has an empty namespace"),
        (['6GB:ns0', ''], 'entry 2 is empty'),
        (['6GB:ns0|ns0'], "namespace 'ns0' is listed twice"),
        (
            ['A:ns0', 'B:ns0'],
            "namespace 'ns0' is listed twice (under 'A' and 'B')",
        ),
        (['A:ns0', 'A:ns1'], "label 'A' appears in two entries"),
        (
            ['6GB:ns0', '6gb:ns1'],
            "labels '6GB' and '6gb' both give "
            'resource class CUSTOM_PMEM_NAMESPACE_6GB',
        ),
        (['x-y:a', 'x.y:b'], "labels 'x-y' and 'x.y' both give"),
        (['--:a'], "label '--' has no letter or digit"),
        (['L' * 17 + ':a'], 'is longer than 16 characters'),
        (['L:' + 'n' * 64], 'is longer than 63 characters'),
        (['L:na\u00efve'], "contains '\u00ef'"),
        (['L:tab\there'], "contains '\\t'"),
        (['L:quo"te'], "contains '\"'"),
        (['L:back\\slash'], "contains '\\\\'"),
    )
    @ddt.unpack
    def test_refusals_name_the_entry(self, value, expected):
        err = self.assertRaises(
            exception.InvalidConfig, labels.parse_pmem_namespaces, value
        )
        message = str(err)
        self.assertIn(expected, message)
        self.assertTrue(message.startswith('[pmem_devices] pmem_namespaces: '))
        self.assertNotIn('\n', message)


@ddt.ddt
class ResourceClassTest(base.TestCase):
    @ddt.data(
        ('6GB', 'CUSTOM_PMEM_NAMESPACE_6GB'),
        ('large', 'CUSTOM_PMEM_NAMESPACE_LARGE'),
        ('fast-1G.a', 'CUSTOM_PMEM_NAMESPACE_FAST_1G_A'),
        ('a--b', 'CUSTOM_PMEM_NAMESPACE_A_B'),
    )
    @ddt.unpack
    def test_normalized_like_os_traits(self, label, expected):
        self.assertEqual(expected, labels.resource_class(label))

    def test_longest_label_fits_placement(self):
        rc = labels.resource_class('L' * labels.MAX_LABEL_LENGTH)
        self.assertLessEqual(len(rc), 255)
