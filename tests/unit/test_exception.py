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

import logging

import ddt
import fixtures

from cyborg_pmem import exception
from tests.unit import base


class _Unprintable:
    def __str__(self):
        raise RuntimeError('no text')


class Example(exception.PmemError):
    msg_fmt = 'namespace %(name)s has %(count)d refusals'


@ddt.ddt
class PmemErrorTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.log = self.useFixture(
            fixtures.FakeLogger(name='cyborg_pmem', level=logging.ERROR)
        )

    def test_message_from_keywords(self):
        err = Example(name='ns0', count=2)
        self.assertEqual('namespace ns0 has 2 refusals', str(err))
        self.assertEqual({'name': 'ns0', 'count': 2}, err.kwargs)
        self.assertEqual('', self.log.output)

    def test_ready_message_is_kept(self):
        # What oslo.privsep does with an error from its daemon.
        err = Example('namespace ns0 has 2 refusals')
        self.assertEqual('namespace ns0 has 2 refusals', str(err))
        self.assertEqual(str(err), str(Example(*err.args)))

    @ddt.data(
        {'name': 'ns0'},  # a key missing: KeyError
        {'name': 'ns0', 'count': 'two'},  # %d of a str: TypeError
        {'name': _Unprintable(), 'count': 2},  # str() fails
    )
    def test_mismatched_keywords_fall_back_to_the_format(self, kwargs):
        err = Example(**kwargs)
        self.assertIsInstance(err, exception.PmemError)
        self.assertEqual(Example.msg_fmt, str(err))
        self.assertEqual(kwargs, err.kwargs)
        self.assertIn('Cannot fill in the message of Example', self.log.output)

    def test_raising_a_mismatched_error_raises_that_error(self):
        def fail():
            raise exception.NdctlTimeout(cmd='ndctl list')  # no timeout

        err = self.assertRaises(exception.NdctlTimeout, fail)
        self.assertIn('did not finish within %(timeout)s s', str(err))

    def test_bad_format_character_falls_back(self):
        class BadFormat(exception.PmemError):
            msg_fmt = 'at %(where)s: 100%'

        err = BadFormat(where='top level')
        self.assertEqual('at %(where)s: 100%', str(err))
