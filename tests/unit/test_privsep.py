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

"""The privileged function, run in-process (privsep client mode off, as
os-vif's tests do) with daxio and the device node faked at the boundary."""

import errno
import os
import signal
import stat
import subprocess
from unittest import mock

import ddt
import fixtures
from oslo_concurrency import processutils
from oslo_privsep import capabilities

from cyborg_pmem import exception
from cyborg_pmem import privsep
from cyborg_pmem import runner
from tests.unit import base

POPEN = subprocess.Popen
DAX_MAJOR = 252


class PrivsepTestCase(base.TestCase):
    def setUp(self):
        super().setUp()
        privsep.scrub_context.set_client_mode(False)
        self.addCleanup(privsep.scrub_context.set_client_mode, True)
        self.execute = self.mock_execute(return_value=('', ''))
        # /sys/dev/char/MAJ:MIN/subsystem -> .../class/dax, in a temp dir.
        sysfs = self.useFixture(fixtures.TempDir()).path
        self.useFixture(
            fixtures.MonkeyPatch('cyborg_pmem.privsep.SYSFS_CHAR', sysfs)
        )
        self._link(sysfs, f'{DAX_MAJOR}:0', 'dax')
        self._link(sysfs, f'{DAX_MAJOR}:1', 'dax')
        self._link(sysfs, '259:0', 'block')
        self._link(sysfs, '1:1', 'mem')
        self.lstat = mock.patch('os.lstat', autospec=True).start()
        self.addCleanup(mock.patch.stopall)
        self.device(DAX_MAJOR, 0)

    @staticmethod
    def _link(root, numbers, subsystem):
        os.makedirs(os.path.join(root, numbers))
        os.symlink(
            f'../../../class/{subsystem}',
            os.path.join(root, numbers, 'subsystem'),
        )

    def device(self, major, minor, mode=stat.S_IFCHR | 0o600):
        """What lstat says about the path: its type and device numbers."""
        self.lstat.side_effect = None
        # st_rdev is past the ten positional fields: pass it by name.
        self.lstat.return_value = os.stat_result(
            (mode, 0, 0, 1, 0, 0, 0, 0, 0, 0),
            {'st_rdev': os.makedev(major, minor)},
        )


class ContextTest(base.TestCase):
    def test_context_keeps_only_dac_override(self):
        # The context sets this as the [cyborg_pmem_privileged]
        # capabilities default (the config fixture resets defaults between
        # tests, so the names are checked where they are declared).
        self.assertEqual(('CAP_DAC_OVERRIDE',), privsep.CAPABILITY_NAMES)
        self.assertEqual(
            capabilities.CAP_DAC_OVERRIDE,
            capabilities.CAPS_BYNAME[privsep.CAPABILITY_NAMES[0]],
        )
        self.assertEqual(
            'cyborg_pmem.privsep.scrub_context',
            privsep.scrub_context.pypath,
        )

    def test_helper_command_is_privsep_helper_not_rootwrap(self):
        argv = privsep.scrub_context.helper_command('/run/sock')
        self.assertEqual(['sudo', 'privsep-helper'], argv[:2])
        self.assertEqual(
            [
                '--privsep_context',
                'cyborg_pmem.privsep.scrub_context',
                '--privsep_sock_path',
                '/run/sock',
            ],
            argv[-4:],
        )

    def test_list_opts_documents_the_real_capability(self):
        ((group, opts),) = privsep.list_opts()
        self.assertEqual('cyborg_pmem_privileged', group.name)
        by_name = {opt.name: opt for opt in opts}
        self.assertEqual(['CAP_DAC_OVERRIDE'], by_name['capabilities'].default)
        self.assertIn('helper_command', by_name)

    def test_zero_devdax_is_an_entrypoint(self):
        self.assertTrue(
            privsep.scrub_context.is_entrypoint(privsep.zero_devdax)
        )


@ddt.ddt
class CheckDevpathTest(base.TestCase):
    @ddt.data('/dev/dax0.0', '/dev/dax12.345')
    def test_accepted(self, path):
        self.assertIsNone(privsep.check_devpath(path))

    @ddt.data(
        '/dev/dax0.0x',
        '/dev/dax0.0/',
        '/dev/dax0.0\n',
        '/dev/dax0',
        '/dev/dax.0',
        '/dev/pmem0',
        '/dev/pmem1.1',
        '/dev/../dev/dax0.0',
        '/dev/dax0.0/../../etc/passwd',
        '../dax0.0',
        'dax0.0',
        '/tmp/dax0.0',
        '//dev/dax0.0',
        '/dev//dax0.0',
        '/dev/dax０.0',  # a full-width digit
        ' /dev/dax0.0',
        '',
        None,
        b'/dev/dax0.0',
        ['/dev/dax0.0'],
    )
    def test_refused_shapes(self, path):
        err = self.assertRaises(
            exception.ScrubRefused, privsep.check_devpath, path
        )
        self.assertIn('not a device-DAX path', str(err))
        self.assertNotIn('\n', str(err))


@ddt.ddt
class ZeroDevdaxTest(PrivsepTestCase):
    def test_runs_daxio_zero_with_timeout(self):
        self.config.config(daxio_path='/usr/bin/daxio', group='pmem_devices')
        self.assertIsNone(privsep.zero_devdax('/dev/dax0.0', 70))
        self.execute.assert_called_once_with(
            '/usr/bin/daxio',
            '-z',
            '-o',
            '/dev/dax0.0',
            timeout=70,
            on_execute=mock.ANY,
            preexec_fn=mock.ANY,
        )
        self.lstat.assert_called_once_with('/dev/dax0.0')

    def test_default_daxio_is_looked_up_in_path(self):
        privsep.zero_devdax('/dev/dax0.0', 70)
        self.assertEqual(
            ['daxio', '-z', '-o', '/dev/dax0.0'],
            list(self.execute.call_args.args),
        )

    @ddt.data('/dev/pmem0', '/dev/dax0.0x', '/dev/dax0.0/../x')
    def test_refuses_bad_paths_before_touching_anything(self, path):
        self.assertRaises(
            exception.ScrubRefused, privsep.zero_devdax, path, 70
        )
        self.lstat.assert_not_called()
        self.execute.assert_not_called()

    @ddt.data(0, -1, True, None, '70', float('inf'), float('nan'))
    def test_refuses_bad_timeouts(self, timeout):
        err = self.assertRaises(
            exception.ScrubRefused, privsep.zero_devdax, '/dev/dax0.0', timeout
        )
        self.assertIn('invalid timeout', str(err))
        self.execute.assert_not_called()

    def test_refuses_a_missing_device(self):
        self.lstat.side_effect = FileNotFoundError(errno.ENOENT, 'no')
        err = self.assertRaises(
            exception.ScrubRefused, privsep.zero_devdax, '/dev/dax3.0', 70
        )
        self.assertEqual(
            'refusing to scrub /dev/dax3.0: no such device', str(err)
        )
        self.execute.assert_not_called()

    @ddt.data(stat.S_IFLNK | 0o777, stat.S_IFREG | 0o600)
    def test_refuses_a_symlink_or_regular_file(self, mode):
        self.device(DAX_MAJOR, 0, mode=mode)
        err = self.assertRaises(
            exception.ScrubRefused, privsep.zero_devdax, '/dev/dax0.0', 70
        )
        self.assertIn('not a character device', str(err))
        self.execute.assert_not_called()

    @ddt.data((1, 1), (259, 0), (7, 7))
    @ddt.unpack
    def test_refuses_a_character_device_that_is_not_dax(self, major, minor):
        self.device(major, minor)
        err = self.assertRaises(
            exception.ScrubRefused, privsep.zero_devdax, '/dev/dax0.0', 70
        )
        self.assertIn(
            f'character device {major}:{minor} is not a dax device', str(err)
        )
        self.execute.assert_not_called()

    def test_daxio_missing_names_the_package(self):
        self.execute.side_effect = FileNotFoundError(errno.ENOENT, 'no')
        err = self.assertRaises(
            exception.DaxioNotFound, privsep.zero_devdax, '/dev/dax0.0', 70
        )
        self.assertEqual(
            "daxio executable 'daxio' not found; install the pmdk-tools "
            'package (Debian/Ubuntu) or daxio (RHEL), or set '
            '[pmem_devices] daxio_path',
            str(err),
        )

    def test_daxio_failure_is_typed_with_first_stderr_line(self):
        self.execute.side_effect = processutils.ProcessExecutionError(
            exit_code=1,
            stderr='daxio: /dev/dax0.0: Permission denied\nmore\n',
        )
        err = self.assertRaises(
            exception.ScrubFailed, privsep.zero_devdax, '/dev/dax0.0', 70
        )
        self.assertEqual(
            'zeroing /dev/dax0.0 failed: daxio -z -o /dev/dax0.0 exit '
            'status 1: daxio: /dev/dax0.0: Permission denied',
            str(err),
        )

    def test_daxio_not_startable(self):
        self.execute.side_effect = PermissionError(errno.EACCES, 'denied')
        err = self.assertRaises(
            exception.ScrubFailed, privsep.zero_devdax, '/dev/dax0.0', 70
        )
        self.assertIn('not started: [Errno 13] denied', str(err))

    def test_pre_exec_hook_failure(self):
        self.execute.side_effect = subprocess.SubprocessError(
            'Exception occurred in preexec_fn.'
        )
        err = self.assertRaises(
            exception.ScrubFailed, privsep.zero_devdax, '/dev/dax0.0', 70
        )
        self.assertIn(
            'not started: Exception occurred in preexec_fn', str(err)
        )

    @mock.patch('os.killpg', autospec=True)
    def test_timeout_kills_and_reaps_daxio(self, killpg):
        # The same runner as ndctl's: the group is killed, and the reap
        # is bounded (tests/fault proves it on a real daxio stand-in).
        child = mock.create_autospec(POPEN, instance=True)
        child.pid = 4343
        child.returncode = None

        def hang(*args, on_execute, **kwargs):
            on_execute(child)
            raise subprocess.TimeoutExpired(args, kwargs['timeout'])

        self.execute.side_effect = hang
        err = self.assertRaises(
            exception.ScrubTimeout, privsep.zero_devdax, '/dev/dax0.0', 12
        )
        killpg.assert_called_once_with(4343, signal.SIGKILL)
        child.communicate.assert_called_once_with(timeout=runner.REAP_TIMEOUT)
        self.assertEqual(
            'zeroing /dev/dax0.0 did not finish within 12 s and was killed '
            '([pmem_devices] scrub_timeout_base, scrub_seconds_per_gib)',
            str(err),
        )

    @mock.patch('os.setpgrp', autospec=True)
    def test_daxio_gets_a_group_of_its_own_and_no_new_privs(self, setpgrp):
        prctl = mock.Mock(return_value=0)
        with mock.patch('ctypes.CDLL', autospec=True) as cdll:
            cdll.return_value.prctl = prctl
            privsep.zero_devdax('/dev/dax0.0', 70)
        child_setup = self.execute.call_args.kwargs['preexec_fn']
        setpgrp.assert_not_called()  # runs in the child, after the fork
        prctl.assert_not_called()
        child_setup()
        setpgrp.assert_called_once_with()
        prctl.assert_called_once_with(38, 1, 0, 0, 0)

    def test_no_new_privs_hook_calls_prctl(self):
        prctl = mock.Mock(return_value=0)
        with mock.patch('ctypes.CDLL', autospec=True) as cdll:
            cdll.return_value.prctl = prctl
            hook = privsep._no_new_privileges_hook()
        prctl.assert_not_called()  # resolved before the fork, run after
        hook()
        prctl.assert_called_once_with(38, 1, 0, 0, 0)
        prctl.return_value = -1
        self.assertRaises(OSError, hook)


@ddt.ddt
class ErrorRoundTripTest(base.TestCase):
    """privsep rebuilds a daemon-side error as ``cls(*err.args)``."""

    @ddt.data(
        exception.ScrubFailed(
            devpath='/dev/dax0.0', cmd='daxio', status='x', stderr='y'
        ),
        exception.ScrubTimeout(devpath='/dev/dax0.0', timeout=3),
        exception.DaxioNotFound(path='daxio'),
        exception.ScrubRefused(target='/dev/pmem0', reason='no'),
    )
    def test_typed_errors_survive(self, err):
        rebuilt = type(err)(*err.args)
        self.assertEqual(str(err), str(rebuilt))
        self.assertIsInstance(rebuilt, exception.ScrubError)
