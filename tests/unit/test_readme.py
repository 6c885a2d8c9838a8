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

"""The README's quick start is what CI runs.

A newcomer types the README's two commands; CI runs ``.ci/run``. The
test command must be the same line in both, and neither may install into
the system interpreter, which Debian's Python refuses (PEP 668).
"""

import os

from tests.unit import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def quick_start_commands(readme):
    """The literal blocks of the README's "Quick start" section."""
    lines = readme.splitlines()
    start = lines.index('Quick start') + 2
    end = next(
        i
        for i in range(start, len(lines))
        if set(lines[i]) == {'-'} and i > start
    )
    blocks = []
    in_block = False
    for line in lines[start : end - 1]:
        if in_block and line.startswith('    '):
            blocks[-1].append(line.strip())
        elif in_block and line.strip():
            in_block = False
        if line.endswith('::'):
            blocks.append([])
            in_block = True
    return [' '.join(block) for block in blocks]


class QuickStartTest(base.TestCase):
    def setUp(self):
        super().setUp()
        self.commands = quick_start_commands(_read('README.rst'))

    def test_two_commands_main_job_first(self):
        self.assertEqual(2, len(self.commands), self.commands)
        demo, tests = self.commands
        self.assertTrue(demo.endswith('tox -e demo'), demo)
        self.assertTrue(tests.endswith('tox'), tests)

    def test_tox_comes_from_a_venv_the_command_makes(self):
        for command in self.commands:
            self.assertTrue(
                command.startswith('python3 -m venv .venv && '), command
            )
            self.assertNotIn('sudo', command)
            self.assertNotRegex(command, r'(^|&& )(python3 -m )?pip ')

    def test_ci_runs_the_readme_test_command(self):
        ci = _read('.ci', 'run')
        self.assertIn(self.commands[1] + ' ', ci)
        self.assertNotRegex(ci, r'(^|\n)\s*python3 -m pip ')
