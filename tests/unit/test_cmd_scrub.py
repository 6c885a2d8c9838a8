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

import io
import os
from unittest import mock

import ddt
import fixtures
from oslo_concurrency import processutils
from oslo_privsep import priv_context

from cyborg_pmem import privsep
from cyborg_pmem.cmd import scrub as scrub_cmd
from tests.unit import base


@ddt.ddt
class ScrubCommandTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        listing = base.fixture_text('driver-listing.json')
        self.execute = self.mock_execute(return_value=(listing, ''))
        self.device = self.scrub_in_process()
        # Never fork a real helper from a unit test.
        self.start = self.useFixture(
            fixtures.MockPatchObject(
                privsep.scrub_context, 'start', autospec=True
            )
        ).mock
        self.conf = os.path.join(self.tmp, 'cyborg.conf')
        with open(self.conf, 'w') as f:
            f.write(
                '[pmem_devices]\n'
                'pmem_namespaces = SMALL:ns0|ns1,LARGE:ns3,FS:ns4\n'
                'daxio_path = /usr/bin/daxio\n'
                'scrub_timeout_base = 30\n'
                'scrub_seconds_per_gib = 2.5\n'
            )

    def _run(self, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = scrub_cmd.run(list(argv), stdout, stderr)
        return code, stdout.getvalue(), stderr.getvalue()

    def test_scrubs_by_name(self):
        listing = self.execute.return_value
        self.execute.side_effect = [listing, ('', '')]
        with mock.patch('os.geteuid', autospec=True, return_value=0):
            code, out, err = self._run('--config-file', self.conf, 'ns3')
        self.assertEqual((0, ''), (code, err))
        self.assertRegex(
            out, r"^zeroed namespace 'ns3' \(/dev/dax1.0\) in \d+\.\d s\n$"
        )
        daxio = self.execute.call_args_list[1]
        self.assertEqual(
            ('/usr/bin/daxio', '-z', '-o', '/dev/dax1.0'), daxio.args
        )
        self.assertEqual(30 + 5, daxio.kwargs['timeout'])
        # root forks the helper itself, no sudo
        self.start.assert_called_once_with(priv_context.Method.FORK)

    def test_non_root_leaves_the_helper_to_sudo(self):
        self.execute.side_effect = [self.execute.return_value, ('', '')]
        with mock.patch('os.geteuid', autospec=True, return_value=1000):
            code, _out, _err = self._run('--config-file', self.conf, 'ns0')
        self.assertEqual(0, code)
        self.start.assert_not_called()

    def test_dry_run_prints_and_runs_nothing_privileged(self):
        code, out, err = self._run(
            '--config-file', self.conf, '--dry-run', 'ns0'
        )
        self.assertEqual((0, ''), (code, err))
        self.assertEqual(
            'would run: /usr/bin/daxio -z -o /dev/dax0.0 (timeout 33 s, '
            "1054867456 bytes) to zero namespace 'ns0' (/dev/dax0.0)\n",
            out,
        )
        self.execute.assert_called_once()  # ndctl only
        self.start.assert_not_called()

    @ddt.data(
        ('ns4', "namespace 'ns4': it is not offered: namespace1.1 is"),
        ('ns7', "namespace 'ns7': it is not in [pmem_devices]"),
    )
    @ddt.unpack
    def test_refusals_exit_1(self, name, message):
        code, out, err = self._run('--config-file', self.conf, name)
        self.assertEqual((1, ''), (code, out))
        self.assertTrue(
            err.startswith('cyborg-pmem-scrub: refused: refusing '), err
        )
        self.assertIn(message, err)
        self.assertEqual(1, err.count('\n'))

    @ddt.data(
        (
            FileNotFoundError(2, 'no'),
            'install the pmdk-tools package (Debian/Ubuntu) or daxio',
        ),
        (
            processutils.ProcessExecutionError(
                exit_code=1, stderr='daxio: mmap failed'
            ),
            'exit status 1: daxio: mmap failed',
        ),
    )
    @ddt.unpack
    def test_daxio_failures_exit_2(self, failure, message):
        self.execute.side_effect = [self.execute.return_value, failure]
        code, out, err = self._run('--config-file', self.conf, 'ns0')
        self.assertEqual((2, ''), (code, out))
        self.assertTrue(err.startswith('cyborg-pmem-scrub: error: '))
        self.assertIn(message, err)
        self.assertEqual(1, err.count('\n'))

    def test_ndctl_failure_exits_2(self):
        self.execute.side_effect = FileNotFoundError(2, 'no')
        code, _out, err = self._run('--config-file', self.conf, 'ns0')
        self.assertEqual(2, code)
        self.assertIn("ndctl executable 'ndctl' not found", err)

    def test_helper_start_failure_exits_2(self):
        self.start.side_effect = OSError(1, 'Operation not permitted')
        with mock.patch('os.geteuid', autospec=True, return_value=0):
            code, _out, err = self._run('--config-file', self.conf, 'ns0')
        self.assertEqual(2, code)
        self.assertEqual(
            'cyborg-pmem-scrub: error: the privileged helper failed: '
            '[Errno 1] Operation not permitted\n',
            err,
        )

    @ddt.data(
        ((), 'the following arguments are required: NAME'),
        (('ns0', '--bogus'), 'unrecognized arguments: --bogus'),
        (('ns0', 'ns1'), 'unrecognized arguments: ns1'),
    )
    @ddt.unpack
    def test_usage_errors_exit_2(self, argv, expected):
        # argparse prints its usage, then "PROG: error: ..." last.
        stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())
        ).new_value
        err = self.assertRaises(
            SystemExit, self._run, '--config-file', self.conf, *argv
        )
        self.assertEqual(2, err.code)
        self.assertEqual(
            f'cyborg-pmem-scrub: error: {expected}',
            stderr.getvalue().splitlines()[-1],
        )
        self.execute.assert_not_called()

    def test_nothing_configured_exits_2(self):
        with open(self.conf, 'w') as f:
            f.write('[pmem_devices]\ndaxio_path = /usr/bin/daxio\n')
        code, out, err = self._run('--config-file', self.conf, 'ns0')
        self.assertEqual(
            (
                2,
                '',
                'cyborg-pmem-scrub: error: [pmem_devices] pmem_namespaces: '
                f'not set in {self.conf}: intel_pmem_driver would offer '
                'nothing\n',
            ),
            (code, out, err),
        )
        self.execute.assert_not_called()

    def test_bad_configuration_exits_2(self):
        with open(self.conf, 'w') as f:
            f.write('[pmem_devices]\npmem_namespaces = SMALL\n')
        code, _out, err = self._run('--config-file', self.conf, 'ns0')
        self.assertEqual(2, code)
        self.assertIn('[pmem_devices] pmem_namespaces', err)
