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

"""The runner's kill and reap, with the process at the boundary mocked.

tests/fault proves the same on real processes; these pin each branch.
"""

import signal
import subprocess
from unittest import mock

from cyborg_pmem import runner
from tests.unit import base

# Taken before the test base's guard replaces it, for autospec only.
POPEN = subprocess.Popen


class KillAndReapTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.execute = self.mock_execute()
        self.killpg = mock.patch('os.killpg', autospec=True).start()
        self.addCleanup(mock.patch.stopall)
        self.child = mock.create_autospec(POPEN, instance=True)
        self.child.pid = 4242
        self.child.returncode = None

    def fail_after_start(self, error):
        def start_then_fail(*args, on_execute, **kwargs):
            on_execute(self.child)
            raise error

        self.execute.side_effect = start_then_fail

    def test_timeout(self):
        self.fail_after_start(subprocess.TimeoutExpired('ndctl', 3))
        self.assertRaises(runner.TimedOut, runner.run, ['ndctl'], 3)
        self.killpg.assert_called_once_with(4242, signal.SIGKILL)
        self.child.communicate.assert_called_once_with(
            timeout=runner.REAP_TIMEOUT
        )

    def test_group_already_gone_is_still_reaped(self):
        self.killpg.side_effect = ProcessLookupError()
        self.fail_after_start(subprocess.TimeoutExpired('ndctl', 3))
        self.assertRaises(runner.TimedOut, runner.run, ['ndctl'], 3)
        self.child.communicate.assert_called_once_with(
            timeout=runner.REAP_TIMEOUT
        )

    def test_exited_meanwhile_is_not_killed(self):
        self.child.returncode = 0
        self.fail_after_start(subprocess.TimeoutExpired('ndctl', 3))
        self.assertRaises(runner.TimedOut, runner.run, ['ndctl'], 3)
        self.killpg.assert_not_called()
        self.child.communicate.assert_called_once_with(
            timeout=runner.REAP_TIMEOUT
        )

    def test_escaped_descendant_holding_the_pipes(self):
        # A descendant out of the group keeps the pipes open: stop reading
        # after REAP_TIMEOUT, close them, collect the command's status.
        self.child.communicate.side_effect = subprocess.TimeoutExpired(
            'ndctl', runner.REAP_TIMEOUT
        )
        # Set by Popen.__init__, so not in the autospec.
        self.child.stdin = None
        self.child.stdout = mock.Mock(spec=['close'])
        self.child.stderr = mock.Mock(spec=['close'])
        self.fail_after_start(subprocess.TimeoutExpired('ndctl', 3))
        self.assertRaises(runner.TimedOut, runner.run, ['ndctl'], 3)
        for pipe in (self.child.stdout, self.child.stderr):
            pipe.close.assert_called_once_with()
        self.child.wait.assert_called_once_with()

    def test_interrupted_wait_kills_and_goes_on(self):
        class Interrupted(BaseException):
            pass

        self.fail_after_start(Interrupted())
        self.assertRaises(Interrupted, runner.run, ['ndctl'], 3)
        self.killpg.assert_called_once_with(4242, signal.SIGKILL)

    def test_child_setup_makes_the_group_then_runs_the_hook(self):
        calls = []
        hook = mock.Mock(side_effect=lambda: calls.append('hook'))
        self.execute.return_value = ('out', '')
        with mock.patch(
            'os.setpgrp', autospec=True, side_effect=lambda: calls.append('pg')
        ):
            self.assertEqual('out', runner.run(['daxio'], 3, preexec_fn=hook))
            self.execute.call_args.kwargs['preexec_fn']()
        self.assertEqual(['pg', 'hook'], calls)
