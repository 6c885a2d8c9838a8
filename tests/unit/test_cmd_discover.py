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
import json
import os

import ddt
import fixtures
from oslo_concurrency import processutils

from cyborg_pmem.cmd import discover
from tests.unit import base

LISTING = base.fixture_path('driver-listing.json')
SAMPLE_HOST = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    'etc',
    'sample-host',
)


@ddt.ddt
class DiscoverCommandTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def _conf(self, namespaces, extra=''):
        path = os.path.join(
            self.tmp, f'cyborg{len(os.listdir(self.tmp))}.conf'
        )
        with open(path, 'w') as f:
            f.write(
                f'[DEFAULT]\nhost = compute-0\n[pmem_devices]\n'
                f'pmem_namespaces = {namespaces}\n{extra}'
            )
        return path

    def _run(self, *argv, stdin=None):
        stdout, stderr = io.StringIO(), io.StringIO()
        if stdin is not None:
            fake_stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
            self.useFixture(fixtures.MonkeyPatch('sys.stdin', fake_stdin))
        code = discover.run(list(argv), stdout, stderr)
        return code, stdout.getvalue(), stderr.getvalue()

    def test_table(self):
        code, out, err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1,LARGE:ns3'),
            '--ndctl-output',
            LISTING,
        )
        self.assertEqual((0, ''), (code, err))
        lines = out.splitlines()
        self.assertEqual(
            [
                'Region',
                'Resource',
                'class',
                'Namespace',
                'Device',
                'Path',
                'Size',
                'Align',
                'NUMA',
            ],
            lines[0].split(),
        )
        self.assertEqual(
            [
                'region0',
                'CUSTOM_PMEM_NAMESPACE_SMALL',
                'ns0',
                'namespace0.0',
                '/dev/dax0.0',
                '1006',
                'MiB',
                '2',
                'MiB',
                '0',
            ],
            lines[1].split(),
        )
        self.assertEqual(
            [
                'region1',
                'CUSTOM_PMEM_NAMESPACE_LARGE',
                'ns3',
                'namespace1.0',
                '/dev/dax1.0',
                '1.97',
                'GiB',
                '2',
                'MiB',
                '1',
            ],
            lines[3].split(),
        )
        self.assertIn(
            '2 device(s), 2 deployable(s), 3 namespace(s) offered, 0 refused',
            out,
        )
        self.assertRegex(
            out,
            r'compute-0_iset-[0-9a-f]{16}_SMALL: '
            r'CUSTOM_PMEM_NAMESPACE_SMALL x 2',
        )

    def test_old_ndctl_listing(self):
        # ndctl v61 prints align only in the daxregion: the table (and
        # attach_info, which Nova's <alignsize> needs) still has it.
        code, out, err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1,LARGE:ns3'),
            '--ndctl-output',
            base.fixture_path('ndctl61-driver-listing.json'),
        )
        self.assertEqual((0, ''), (code, err))
        self.assertEqual(
            'region0  CUSTOM_PMEM_NAMESPACE_SMALL  ns0        namespace0.0  '
            '/dev/dax0.0  1006 MiB  2 MiB  0',
            out.splitlines()[1],
        )

    def test_json_follows_the_cli_contract(self):
        code, out, _err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1,LARGE:ns3'),
            '--ndctl-output',
            LISTING,
            '--format',
            'json',
        )
        self.assertEqual(0, code)
        document = json.loads(out)
        self.assertEqual([], document['refused'])
        device = document['devices'][0]
        self.assertLessEqual(
            {
                'vendor',
                'model',
                'type',
                'std_board_info',
                'vendor_board_info',
                'controlpath_id',
                'deployable_list',
            },
            set(device),
        )
        self.assertEqual(
            {'cpid_type', 'cpid_info'}, set(device['controlpath_id'])
        )
        deployable = device['deployable_list'][0]
        self.assertEqual(
            {
                'name',
                'driver_name',
                'num_accelerators',
                'attribute_list',
                'attach_handle_list',
            },
            set(deployable),
        )
        self.assertEqual('intel_pmem_driver', deployable['driver_name'])
        self.assertEqual(
            [
                {'key': 'rc', 'value': 'CUSTOM_PMEM_NAMESPACE_SMALL'},
                {'key': 'trait0', 'value': 'CUSTOM_PMEM_NAMESPACE_SMALL'},
                {'key': 'trait1', 'value': 'OWNER_CYBORG'},
            ],
            deployable['attribute_list'],
        )
        handle = deployable['attach_handle_list'][0]
        self.assertEqual(
            ('PMEM', False), (handle['attach_type'], handle['in_use'])
        )
        info = json.loads(handle['attach_info'])
        self.assertLessEqual(
            {'name', 'dev', 'devpath', 'size', 'align', 'label'}, set(info)
        )

    def test_stdin(self):
        with open(LISTING) as f:
            listing = f.read()
        code, out, _err = self._run(
            '--config-file',
            self._conf('L:ns3'),
            '--ndctl-output',
            '-',
            stdin=listing,
        )
        self.assertEqual(0, code)
        self.assertIn('/dev/dax1.0', out)

    def test_refusals_exit_1_one_line_each(self):
        code, out, err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns2,LARGE:ns4|ns9'),
            '--ndctl-output',
            LISTING,
        )
        self.assertEqual(1, code)
        self.assertIn('1 namespace(s) offered, 3 refused', out)
        self.assertEqual(
            [
                "cyborg-pmem-discover: refused namespace 'ns2' (label "
                "'SMALL'): namespace0.2 is disabled (ndctl enable-namespace "
                "namespace0.2)",
                "cyborg-pmem-discover: refused namespace 'ns4' (label "
                "'LARGE'): namespace1.1 is in fsdax mode, not devdax",
                "cyborg-pmem-discover: refused namespace 'ns9' (label "
                "'LARGE'): not found on this host",
            ],
            err.splitlines(),
        )

    def assertOneLineError(self, code, out, err, expected):
        self.assertEqual(2, code)
        self.assertEqual('', out)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertTrue(err.startswith('cyborg-pmem-discover: error: '), err)
        self.assertIn(expected, err)
        self.assertNotIn('Traceback', err)

    @ddt.data(
        # pmem_namespaces, a further [pmem_devices] line, --ndctl-output
        # (in the test's directory unless absolute), the error's words
        ('SMALL', '', LISTING, "entry 'SMALL' must have"),
        ('L:ns0', '', 'bad.json', 'unexpected ndctl list output'),
        ('L:ns0', '', 'missing', 'cannot read ndctl output'),
        ('L:ns0', 'ndctl_timeout = x\n', LISTING, 'ndctl_timeout'),
        (
            'L:ns0',
            '',
            base.fixture_path('no-match.json'),
            'shows no enabled PMEM region',
        ),
    )
    @ddt.unpack
    def test_errors_exit_2_with_one_line(
        self, namespaces, extra, listing, expected
    ):
        with open(os.path.join(self.tmp, 'bad.json'), 'w') as f:
            f.write('{"regions": [')
        code, out, err = self._run(
            '--config-file',
            self._conf(namespaces, extra),
            '--ndctl-output',
            os.path.join(self.tmp, listing),
        )
        self.assertOneLineError(code, out, err, expected)

    def test_missing_config_file_exits_2(self):
        code, out, err = self._run(
            '--config-file', os.path.join(self.tmp, 'nope.conf')
        )
        self.assertOneLineError(code, out, err, 'nope.conf')

    def test_host_too_long_exits_2(self):
        long_host = os.path.join(self.tmp, 'long-host.conf')
        with open(long_host, 'w') as f:
            f.write('[DEFAULT]\nhost = ' + 'h' * 200 + '\n')
        code, out, err = self._run(
            '--config-file',
            self._conf('L:ns0'),
            '--config-file',
            long_host,
            '--ndctl-output',
            LISTING,
        )
        self.assertOneLineError(
            code, out, err, '[DEFAULT] host is 200 characters'
        )

    def _main(self, *argv):
        """The installed command: main() with this argv; (exit status,
        stdout, stderr). argparse writes its usage errors to sys.stderr."""
        stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())
        ).new_value
        stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())
        ).new_value
        self.useFixture(
            fixtures.MonkeyPatch('sys.argv', ['cyborg-pmem-discover', *argv])
        )
        err = self.assertRaises(SystemExit, discover.main)
        return err.code, stdout.getvalue(), stderr.getvalue()

    @ddt.data(
        (
            ('--format', 'yaml'),
            "argument --format: invalid choice 'yaml' (choose from table, "
            'json)',
        ),
        (('--bogus',), 'unrecognized arguments: --bogus'),
        (('--format',), 'argument --format: expected one argument'),
        (('--ndctl-output',), 'argument --ndctl-output: expected one'),
        (('extra',), 'unrecognized arguments: extra'),
    )
    @ddt.unpack
    def test_usage_errors_exit_2_with_the_program_name(self, argv, expected):
        execute = self.mock_execute()
        code, out, err = self._main(
            '--config-file',
            self._conf('SMALL:ns0'),
            '--ndctl-output',
            LISTING,
            *argv,
        )
        self.assertEqual((2, ''), (code, out))
        # argparse shows its usage first; the error is the last line.
        last = err.splitlines()[-1]
        self.assertTrue(last.startswith('cyborg-pmem-discover: error: '), err)
        self.assertIn(expected, last)
        self.assertNotIn('Traceback', err)
        execute.assert_not_called()

    def test_format_is_checked_before_anything_runs(self):
        execute = self.mock_execute()
        code, out, err = self._main(
            '--config-file', self._conf('SMALL:ns0'), '--format', 'yaml'
        )
        self.assertEqual(
            (
                2,
                '',
                "cyborg-pmem-discover: error: argument --format: invalid "
                "choice 'yaml' (choose from table, json)\n",
            ),
            (code, out, err),
        )
        execute.assert_not_called()

    @ddt.data(
        '[DEFAULT]\nhost = compute-0\n',
        '[pmem_devices]\n',
        '[pmem_devices]\npmem_namespaces =\n',
        '',
    )
    def test_nothing_configured_exits_2(self, text):
        path = os.path.join(self.tmp, 'empty.conf')
        with open(path, 'w') as f:
            f.write(text)
        execute = self.mock_execute()
        code, out, err = self._main('--config-file', path)
        self.assertEqual(
            (
                2,
                '',
                'cyborg-pmem-discover: error: [pmem_devices] '
                f'pmem_namespaces: not set in {path}: intel_pmem_driver '
                'would offer nothing\n',
            ),
            (code, out, err),
        )
        execute.assert_not_called()

    def test_no_config_file_found_exits_2(self):
        # Where oslo.config looks for cyborg.conf (~/.cyborg, ~, /etc/cyborg,
        # /etc): found nowhere.
        for finder in ('find_config_files', 'find_config_dirs'):
            self.useFixture(
                fixtures.MockPatch(
                    f'oslo_config.cfg.{finder}', autospec=True, return_value=[]
                )
            )
        execute = self.mock_execute()
        code, out, err = self._main('--ndctl-output', LISTING)
        self.assertEqual(
            (
                2,
                '',
                'cyborg-pmem-discover: error: [pmem_devices] '
                'pmem_namespaces: not set, and no configuration file was '
                'found (pass --config-file, e.g. /etc/cyborg/cyborg.conf): '
                'intel_pmem_driver would offer nothing\n',
            ),
            (code, out, err),
        )
        execute.assert_not_called()

    def test_ndctl_failure_is_an_error(self):
        self.mock_execute(side_effect=FileNotFoundError(2, 'no'))
        code, out, err = self._run('--config-file', self._conf('L:ns0'))
        self.assertEqual(2, code)
        self.assertIn("ndctl executable 'ndctl' not found", err)

    def test_debug_shows_the_driver_log(self):
        code, _out, err = self._run(
            '--config-file',
            self._conf('L:ns0|ns9'),
            '--ndctl-output',
            LISTING,
            '--debug',
        )
        self.assertEqual(1, code)
        self.assertIn("WARNING Not offering PMEM namespace 'ns9'", err)
        self.assertIn('INFO PMEM discovery: 2 region(s), 1 reported', err)

    @ddt.data(
        (None, '-'),
        (512, '512 B'),
        (2097152, '2 MiB'),
        (1054867456, '1006 MiB'),
        (1 << 50, '1024 TiB'),
    )
    @ddt.unpack
    def test_human_bytes(self, value, expected):
        self.assertEqual(expected, discover._human_bytes(value))


class DiscoverHealthTest(base.TestCase):
    HEALTH = base.fixture_path('optane-dimms-regions-health.json')

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    _conf = DiscoverCommandTest._conf
    _run = DiscoverCommandTest._run

    def test_health_table_from_one_live_call(self):
        execute = self.mock_execute(
            side_effect=[
                (base.fixture_text('driver-listing.json'), ''),
                (base.fixture_text(os.path.basename(self.HEALTH)), ''),
            ]
        )
        code, out, err = self._run(
            '--config-file', self._conf('SMALL:ns0|ns1'), '--health'
        )
        self.assertEqual((0, ''), (code, err))
        self.assertEqual(2, execute.call_count)  # the listing, then health
        self.assertEqual(
            ('ndctl', 'list', '--dimms', '--regions', '--health'),
            execute.call_args.args,
        )
        health_lines = out.split('\n\n')[-1].splitlines()
        self.assertEqual(
            [
                'DIMM   Region   Health        Temp C  Spares %  '
                'Life used %  Shutdown  Shutdowns',
                'nmem0  region0  ok            31.0    100       '
                '-            clean     4',
                'nmem1  region0  non-critical  48.0    42        '
                '7            dirty     9',
                'nmem2  region1  ok            255.0   99        '
                '1            clean     -',
                'nmem3  region1  unknown       -       -         '
                '-            -         -',
                'nmem4  region2  -             -       -         '
                '-            -         -',
                '  region0: non-critical (nmem0, nmem1)',
                '  region1: unknown (nmem2, nmem3)',
                '  region2: unknown (nmem4)',
            ],
            health_lines,
        )

    def test_health_unavailable_is_one_line_and_keeps_exit_status(self):
        self.mock_execute(
            side_effect=[
                (base.fixture_text('driver-listing.json'), ''),
                processutils.ProcessExecutionError(
                    exit_code=1, stderr='open /dev/nmem0: Permission denied'
                ),
            ]
        )
        code, out, err = self._run(
            '--config-file', self._conf('SMALL:ns0|ns1'), '--health'
        )
        self.assertEqual(0, code)
        self.assertIn('/dev/dax0.0', out)  # discovery still shown
        self.assertEqual(
            'cyborg-pmem-discover: health: ndctl list --dimms --regions '
            '--health failed (exit status 1): open /dev/nmem0: Permission '
            'denied\n',
            err,
        )

    def test_qemu_health_says_why_it_is_missing(self):
        code, _out, err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1'),
            '--ndctl-output',
            LISTING,
            '--health-output',
            base.fixture_path('dimms-regions-health.json'),
        )
        self.assertEqual(0, code)
        self.assertEqual(
            'cyborg-pmem-discover: health: ndctl shows no DIMM health: '
            'reading it needs root (/dev/nmemN), and emulated NVDIMMs have '
            'none\n',
            err,
        )

    def test_health_in_json(self):
        code, out, _err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1'),
            '--ndctl-output',
            LISTING,
            '--format',
            'json',
            '--health-output',
            self.HEALTH,
        )
        self.assertEqual(0, code)
        document = json.loads(out)
        self.assertEqual(
            'non-critical',
            document['health']['regions']['region0']['health_state'],
        )
        self.assertEqual(1, len(document['devices']))

    def test_unreadable_health_file(self):
        code, _out, err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1'),
            '--ndctl-output',
            LISTING,
            '--health-output',
            os.path.join(self.tmp, 'missing.json'),
        )
        self.assertEqual(0, code)
        self.assertIn('health: cannot read ndctl output', err)

    def test_health_of_a_saved_listing_needs_a_saved_health_listing(self):
        # This host's health next to another host's listing would mislead:
        # a usage error, and nothing is run.
        execute = self.mock_execute()
        code, out, err = self._run(
            '--config-file',
            self._conf('SMALL:ns0|ns1'),
            '--ndctl-output',
            LISTING,
            '--health',
        )
        self.assertEqual((2, ''), (code, out))
        self.assertEqual(
            'cyborg-pmem-discover: error: --health with --ndctl-output '
            'would show the health of this host next to a saved listing; '
            'give the saved health listing with --health-output FILE '
            '("ndctl list --dimms --regions --health"), or leave out '
            '--ndctl-output\n',
            err,
        )
        execute.assert_not_called()

    def test_sample_host_with_its_health(self):
        # What tox -e demo shows: the sample host and its saved health
        # listing, two emulated NVDIMMs that have no health to read.
        code, out, err = self._run(
            '--config-file',
            os.path.join(SAMPLE_HOST, 'cyborg.conf'),
            '--ndctl-output',
            os.path.join(SAMPLE_HOST, 'ndctl-list.json'),
            '--health-output',
            os.path.join(SAMPLE_HOST, 'ndctl-health.json'),
        )
        self.assertEqual(0, code)
        self.assertEqual(
            [
                'DIMM   Region   Health  Temp C  Spares %  Life used %  '
                'Shutdown  Shutdowns',
                'nmem0  region0  -       -       -         -            '
                '-         -',
                'nmem1  region1  -       -       -         -            '
                '-         -',
                '  region0: unknown (nmem0)',
                '  region1: unknown (nmem1)',
            ],
            out.split('\n\n')[-1].splitlines(),
        )
        self.assertEqual(
            'cyborg-pmem-discover: health: ndctl shows no DIMM health: '
            'reading it needs root (/dev/nmemN), and emulated NVDIMMs have '
            'none\n',
            err,
        )

    def test_discovery_failure_is_not_hidden_by_health(self):
        self.mock_execute(side_effect=FileNotFoundError(2, 'no'))
        code, _out, err = self._run(
            '--config-file', self._conf('SMALL:ns0|ns1'), '--health'
        )
        self.assertEqual(2, code)
        self.assertIn("ndctl executable 'ndctl' not found", err)
