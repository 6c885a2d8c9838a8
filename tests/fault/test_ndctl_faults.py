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

"""Failure injection: the runner and discovery against a fake ``ndctl``.

These start real processes (a small script written into a temporary
directory put first on PATH), so they live outside tests/unit, whose guard
forbids that. Every failure must end in our typed one-line error an
operator can act on, or in a correct result; none may return an empty
device list by accident, and none may leave a process behind.
"""

import json
import os
import signal
import stat
import sys
import textwrap
import threading
import time

import fixtures
from oslotest import base

from cyborg_pmem import discovery
from cyborg_pmem import exception
from cyborg_pmem import ndctl
from cyborg_pmem import runner
from tests import fixtures as ndctl_fixtures

CONFIG = 'SMALL:ns0|ns1,LARGE:ns3'
ARGV = ' '.join(ndctl.list_argv('ndctl'))


def _read_fixture():
    return ndctl_fixtures.ndctl_text('driver-listing.json')


def proc_state(pid):
    """The state letter of ``pid`` (``Z`` for a zombie), None when gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rpartition(')')[2].split()[0]
    except FileNotFoundError:
        return None


# A shell fake's own pid file, beside it.
_PIDS = os.path.join('$(dirname "$0")', 'pids')


def with_child(then):
    """A shell fake (a wrapper, as a script or sudo would be) that starts
    a child in its own process group, records its pid, then ``then``."""
    return f"""
    sleep 600 &
    echo $! >> {_PIDS}
    {then}
    """


def with_escaping_child(then):
    """A shell fake that starts a child in a session of its own, out of
    reach of the group kill and holding the pipes, then ``then``."""
    return f"""
    setsid sleep 600 &
    echo $! >> {_PIDS}
    {then}
    """


def children_of(ppid):
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rpartition(')')[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == ppid:
            pids.append(int(entry))
    return pids


class FakeNdctl(fixtures.Fixture):
    """An executable ``ndctl`` (or ``name``) first on PATH.

    The script records its pid (and the pids of what it starts) in
    ``pids``, one per line, so the test can check they are all gone.
    """

    def __init__(self, body, sh=False, executable=True, name='ndctl'):
        super().__init__()
        self.body = body
        self.sh = sh
        self.executable = executable
        self.name = name

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, self.name)
        self.pids = os.path.join(self.dir, 'pids')
        if self.sh:
            header = f'#!/bin/sh\necho $$ >> {self.pids}\n'
        else:
            header = (
                f'#!{sys.executable}\n'
                'import os, signal, sys, time\n'
                f'PIDS = {self.pids!r}\n'
                "with open(PIDS, 'a') as f:\n"
                "    f.write(f'{os.getpid()}\\n')\n"
            )
        with open(self.path, 'w') as f:
            f.write(header + textwrap.dedent(self.body))
        if self.executable:
            os.chmod(self.path, stat.S_IRWXU)
        self.useFixture(
            fixtures.EnvironmentVariable(
                'PATH', self.dir + os.pathsep + os.environ['PATH']
            )
        )

    def started(self):
        try:
            with open(self.pids) as f:
                return [int(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


class FaultTestCase(base.BaseTestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(self.assertNoChildLeft)

    def assertNoChildLeft(self):
        # Nothing we started may survive the test: not running, and not a
        # zombie we forgot to reap either.
        self.assertEqual([], children_of(os.getpid()))

    def fake(self, body, **kwargs):
        return self.useFixture(FakeNdctl(body, **kwargs))

    def discover(self, config=CONFIG, path='ndctl', timeout=10):
        return discovery.Discovery(config, path, timeout).run('compute-0')

    def assertTypedError(self, cls, *fragments, **kwargs):
        err = self.assertRaises(cls, self.discover, **kwargs)
        message = str(err)
        self.assertNotIn('\n', message)
        self.assertLess(len(message), 600)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return err

    @staticmethod
    def kill_escaped(fake):
        """Kill what a fake started out of reach of the runner."""
        for pid in fake.started()[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def assertAllGone(self, fake, allow_zombie=()):
        """Every pid the fake recorded is gone (``allow_zombie``: pids that
        are not our children, dead but left for init to reap)."""
        pids = fake.started()
        self.assertTrue(pids, 'the fake ndctl never ran')
        deadline = time.monotonic() + 5
        while True:
            states = {
                pid: proc_state(pid)
                for pid in pids
                if proc_state(pid) is not None
                and not (pid in allow_zombie and proc_state(pid) == 'Z')
            }
            if not states or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual({}, states)


class ToolFailureTest(FaultTestCase):
    def test_not_installed(self):
        empty = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('PATH', empty))
        self.assertTypedError(
            exception.NdctlNotFound,
            "ndctl executable 'ndctl' not found",
            'install the ndctl package or set [pmem_devices] ndctl_path',
        )

    def test_configured_path_missing(self):
        self.assertTypedError(
            exception.NdctlNotFound,
            "'/nonexistent/ndctl' not found",
            path='/nonexistent/ndctl',
        )

    def test_not_executable(self):
        fake = self.fake('print("[]")\n', executable=False)
        self.assertTypedError(
            exception.NdctlFailed,
            'failed (not started)',
            'Permission denied',
            path=fake.path,
        )

    def test_exits_non_zero_with_stderr(self):
        fake = self.fake(
            """
            sys.stderr.write('\\n  Error: unable to init ndctl: No such '
                             'device  \\nsecond line\\n')
            sys.exit(3)
            """
        )
        self.assertTypedError(
            exception.NdctlFailed,
            f'{ARGV} failed (exit status 3): Error: unable to init ndctl: '
            'No such device',
        )
        self.assertAllGone(fake)

    def test_valid_output_but_non_zero_exit_is_not_trusted(self):
        self.fake(f'print({_read_fixture()!r})\nsys.exit(1)\n')
        self.assertTypedError(
            exception.NdctlFailed, 'exit status 1', '(no error output)'
        )

    def test_prints_garbage(self):
        self.fake('print("libndctl: ndctl_new: Operation not permitted")\n')
        self.assertTypedError(
            exception.NdctlOutputError, 'at top level: not JSON'
        )

    def test_prints_invalid_utf8(self):
        # processutils decodes with surrogateescape: the bad byte becomes
        # a lone surrogate, which the reader refuses by name.
        self.fake(
            'sys.stdout.buffer.write(b\'[{"dev": "namespace0.0", '
            '"name": "ns\\xff"}]\')\n'
        )
        self.assertTypedError(
            exception.NdctlOutputError,
            'top level[0].name',
            'not valid Unicode',
        )

    def test_prints_truncated_json(self):
        text = _read_fixture()
        self.fake(f'sys.stdout.write({text[: len(text) // 2]!r})\n')
        self.assertTypedError(
            exception.NdctlOutputError, 'at top level: not JSON'
        )

    def test_prints_nothing_while_namespaces_are_configured(self):
        # ndctl's way of saying "nothing matched": with namespaces
        # configured that is a host whose nvdimm stack is down, and an
        # empty report would delete every device.
        for output in ('', '[]', '\n'):
            with self.subTest(output=output):
                self.fake(f'sys.stdout.write({output!r})\n')
                self.assertTypedError(
                    exception.NvdimmStackDown, 'names 3 namespace(s)'
                )

    def test_prints_nothing_with_nothing_configured(self):
        # The only case an empty report is right: nothing is configured.
        self.fake('pass\n')
        self.assertEqual((), self.discover(config='').devices)

    def test_killed_by_a_signal(self):
        for signame in ('SIGSEGV', 'SIGKILL', 'SIGTERM'):
            with self.subTest(signal=signame):
                fake = self.fake(
                    f'os.kill(os.getpid(), signal.{signame})\ntime.sleep(9)\n'
                )
                self.assertTypedError(
                    exception.NdctlFailed,
                    f'{ARGV} failed (killed by {signame})',
                )
                self.assertAllGone(fake)

    def test_works_when_everything_is_fine(self):
        fake = self.fake(f'sys.stdout.write({_read_fixture()!r})\n')
        result = self.discover()
        self.assertEqual({'SMALL': 2, 'LARGE': 1}, result.offered())
        self.assertAllGone(fake)


class TimeoutTest(FaultTestCase):
    def assertTimesOut(self, timeout=1, within=4):
        started = time.monotonic()
        self.assertTypedError(
            exception.NdctlTimeout,
            f'{ARGV} did not finish within {timeout} s and was killed '
            '([pmem_devices] ndctl_timeout)',
            timeout=timeout,
        )
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, timeout + within)
        return elapsed

    def test_hangs_past_the_timeout(self):
        fake = self.fake('time.sleep(600)\n')
        self.assertTimesOut()
        self.assertAllGone(fake)

    def test_hangs_after_printing_part_of_its_output(self):
        fake = self.fake(
            f'sys.stdout.write({_read_fixture()[:500]!r})\n'
            'sys.stdout.flush()\n'
            'time.sleep(600)\n'
        )
        self.assertTimesOut()
        self.assertAllGone(fake)

    def test_ignores_sigterm(self):
        fake = self.fake(
            'signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n'
        )
        self.assertTimesOut()
        self.assertAllGone(fake)

    def test_wrapper_script_with_a_grandchild(self):
        # ndctl_path may be a wrapper (a shell script, sudo): killing only
        # the wrapper would leave ndctl running and holding our pipes, so
        # the runner kills ndctl's whole process group.
        fake = self.fake(with_child('wait'), sh=True)
        self.assertTimesOut()
        wrapper, grandchild = fake.started()
        # The grandchild is init's child once the wrapper died: dead is
        # what matters; reaping it is init's job.
        self.assertAllGone(fake, allow_zombie=(grandchild,))

    def test_grandchild_escaping_the_group_cannot_hang_discovery(self):
        # A descendant that makes a session of its own is out of reach of
        # the group kill and keeps our pipes open: the runner stops
        # reading after REAP_TIMEOUT instead of waiting for it.
        fake = self.fake(with_escaping_child("echo '[]'"), sh=True)
        self.addCleanup(self.kill_escaped, fake)
        self.assertTimesOut(within=runner.REAP_TIMEOUT + 4)
        wrapper = fake.started()[0]
        self.assertIsNone(proc_state(wrapper))

    def test_interrupted_wait_kills_ndctl(self):
        # The CLI's Ctrl-C, or anything raised into the waiting thread:
        # the exception goes on, and ndctl does not outlive it.
        class Interrupted(BaseException):
            pass

        def interrupt(signum, frame):
            raise Interrupted()

        fake = self.fake('time.sleep(600)\n')
        previous = signal.signal(signal.SIGALRM, interrupt)
        self.addCleanup(signal.signal, signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        self.addCleanup(signal.setitimer, signal.ITIMER_REAL, 0)
        started = time.monotonic()
        self.assertRaises(Interrupted, ndctl.run_list, 'ndctl', 60)
        self.assertLess(time.monotonic() - started, 10)
        self.assertAllGone(fake)


class BigOutputTest(FaultTestCase):
    MB = 1 << 20

    def test_50_mb_of_garbage(self):
        self.fake(
            'chunk = b"x" * (1 << 20)\n'
            'for _ in range(50):\n'
            '    sys.stdout.buffer.write(chunk)\n'
        )
        self.assertTypedError(
            exception.NdctlOutputError, 'at top level: not JSON'
        )

    def test_50_mb_on_stderr(self):
        self.fake(
            'sys.stderr.write("Error: first line\\n")\n'
            'chunk = "y" * (1 << 20)\n'
            'for _ in range(50):\n'
            '    sys.stderr.write(chunk)\n'
            'sys.exit(1)\n'
        )
        self.assertTypedError(
            exception.NdctlFailed, 'exit status 1): Error: first line'
        )

    def test_50_mb_listing_is_read_whole(self):
        # 8 regions of devdax namespaces, as ndctl prints them, about
        # 50 MiB: a correct, complete result.
        listing = json.loads(_read_fixture())
        template = next(
            ns
            for region in listing['regions']
            for ns in region['namespaces']
            if ns.get('mode') == 'devdax'
        )
        template['dev'] = '@DEV@'
        template['name'] = '@NAME@'
        template['daxregion']['devices'][0]['chardev'] = '@CHARDEV@'
        template = json.dumps(template)
        per_region = 50 * self.MB // (8 * len(template)) + 1
        regions = []
        for r in range(8):
            namespaces = ','.join(
                template.replace('@DEV@', f'namespace{r}.{n}')
                .replace('@NAME@', f'ns{r}-{n}')
                .replace('@CHARDEV@', f'dax{r}.{n}')
                for n in range(per_region)
            )
            regions.append(
                f'{{"dev": "region{r}", "iset_id": {r + 1}, '
                f'"namespaces": [{namespaces}]}}'
            )
        document = os.path.join(self.useFixture(fixtures.TempDir()).path, 'l')
        with open(document, 'w') as f:
            f.write('{"regions": [' + ','.join(regions) + ']}')
        self.assertGreater(os.path.getsize(document), 50 * self.MB)
        self.fake(
            f'with open({document!r}, "rb") as f:\n'
            '    sys.stdout.buffer.write(f.read())\n'
        )
        config = f'BIG:ns0-0|ns7-{per_region - 1}'
        result = self.discover(config=config, timeout=60)
        self.assertEqual({'BIG': 2}, result.offered())
        self.assertEqual((), result.refusals)


class ConcurrencyTest(FaultTestCase):
    """Overlapping discoveries run one ndctl at a time, same answer."""

    def test_overlapping_discoveries_are_serialized(self):
        log = os.path.join(self.useFixture(fixtures.TempDir()).path, 'log')
        self.fake(
            f"""
            with open({log!r}, 'a') as f:
                f.write(f'start {{time.time()}}\\n')
            time.sleep(0.5)
            sys.stdout.write({_read_fixture()!r})
            with open({log!r}, 'a') as f:
                f.write(f'end {{time.time()}}\\n')
            """
        )
        callers = 3
        barrier = threading.Barrier(callers)
        results = []
        errors = []

        def discover():
            barrier.wait()
            try:
                results.append(self.discover())
            except Exception as err:  # reported below, not swallowed
                errors.append(err)

        threads = [threading.Thread(target=discover) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual([], errors)
        self.assertEqual(callers, len(results))
        self.assertTrue(all(r == results[0] for r in results))
        with open(log) as f:
            events = [line.split() for line in f]
        # start end start end ...: never two ndctl at once.
        self.assertEqual(
            ['start', 'end'] * callers, [kind for kind, _t in events]
        )
        times = [float(t) for _kind, t in events]
        self.assertEqual(sorted(times), times)
