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

import errno
import signal
import subprocess
from unittest import mock

import ddt
from oslo_concurrency import processutils

from cyborg_pmem import exception
from cyborg_pmem import ndctl
from cyborg_pmem import runner
from tests.unit import base

# Taken before the test base's guard replaces it, for autospec only.
POPEN = subprocess.Popen
ARGV = [
    'ndctl',
    'list',
    '--dimms',
    '--regions',
    '--namespaces',
    '--idle',
    '--verbose',
]


class GuardTest(base.TestCase):
    """The test base makes real commands impossible."""

    def test_popen_is_refused(self):
        self.assertRaises(base.RealCommandError, subprocess.Popen, ['true'])

    def test_execute_is_refused(self):
        self.assertRaises(base.RealCommandError, processutils.execute, 'true')

    def test_runner_cannot_reach_a_real_ndctl(self):
        self.assertRaises(base.RealCommandError, ndctl.run_list, 'ndctl', 5)


@ddt.ddt
class RunListTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.execute = self.mock_execute()

    def test_one_call_argv_and_timeout(self):
        self.execute.return_value = ('[]', '')
        self.assertEqual('[]', ndctl.run_list('ndctl', 7))
        self.execute.assert_called_once_with(
            *ARGV,
            timeout=7,
            on_execute=mock.ANY,
            preexec_fn=runner.own_process_group,
        )

    def test_configured_path(self):
        self.execute.return_value = ('', '')
        ndctl.run_list('/opt/ndctl/bin/ndctl', 30)
        self.assertEqual(
            '/opt/ndctl/bin/ndctl', self.execute.call_args.args[0]
        )

    def test_not_found(self):
        self.execute.side_effect = FileNotFoundError(errno.ENOENT, 'nope')
        err = self.assertRaises(
            exception.NdctlNotFound, ndctl.run_list, '/usr/sbin/ndctl', 30
        )
        self.assertEqual(
            "ndctl executable '/usr/sbin/ndctl' not found; install the "
            'ndctl package or set [pmem_devices] ndctl_path',
            str(err),
        )

    def test_not_executable(self):
        self.execute.side_effect = PermissionError(errno.EACCES, 'denied')
        err = self.assertRaises(
            exception.NdctlFailed, ndctl.run_list, 'ndctl', 30
        )
        self.assertIn('failed (not started): [Errno 13] denied', str(err))

    def test_non_zero_exit_gives_first_stderr_line(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=234,
            stderr='\n  Error: bad mode  \nmore\n',
            cmd='ndctl list',
        )
        err = self.assertRaises(
            exception.NdctlFailed, ndctl.run_list, 'ndctl', 30
        )
        self.assertEqual(
            ' '.join(ARGV) + ' failed (exit status 234): Error: bad mode',
            str(err),
        )

    def test_empty_stderr(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1, stderr=''
        )
        err = self.assertRaises(
            exception.NdctlFailed, ndctl.run_list, 'ndctl', 30
        )
        self.assertIn('(no error output)', str(err))

    @ddt.data((-9, 'killed by SIGKILL'), (-99, 'killed by signal 99'))
    @ddt.unpack
    def test_killed_by_signal(self, code, name):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=code
        )
        err = self.assertRaises(
            exception.NdctlFailed, ndctl.run_list, 'ndctl', 30
        )
        self.assertIn(f'failed ({name})', str(err))

    @mock.patch('os.killpg', autospec=True)
    def test_timeout_kills_and_reaps_the_group(self, killpg):
        # tests/fault proves it on real processes; this pins the calls.
        child = mock.create_autospec(POPEN, instance=True)
        child.pid = 4242
        child.returncode = None

        def hang(*args, on_execute, **kwargs):
            on_execute(child)
            raise subprocess.TimeoutExpired(args, kwargs['timeout'])

        self.execute.side_effect = hang
        err = self.assertRaises(
            exception.NdctlTimeout, ndctl.run_list, 'ndctl', 3
        )
        killpg.assert_called_once_with(4242, signal.SIGKILL)
        child.communicate.assert_called_once_with(timeout=runner.REAP_TIMEOUT)
        self.assertEqual(
            ' '.join(ARGV) + ' did not finish within 3 s and '
            'was killed ([pmem_devices] ndctl_timeout)',
            str(err),
        )
