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

"""The report_data patch changes what a report costs, not what it does.

The scenario of ``scenario.py`` runs once on Cyborg with the whole series
and once on Cyborg without the report_data patch (``variants.py``: two
Pythons, both in subprocesses, side by side); after every step the Cyborg
tables (timestamps aside) and Placement's providers, inventories, usages
and traits must be the same. Both use the database the other integration
tests use (``tox -e integration`` prints which).
"""

from oslotest import base

from tests.integration import pipeline
from tests.integration import scenario
from tests.integration import variants

# Steps that report exactly what the previous report said.
UNCHANGED_REPORTS = (
    'repeat',
    'repeat while bound',
    'repeat while it is gone',
    'region of B gone while bound',
    'repeat after unbind',
    'repeat without them',
)
MAX_UNCHANGED_STATEMENTS = 8


class _Runs:
    """The scenario's dumps on each Cyborg, run once per process."""

    results = None

    @classmethod
    def get(cls):
        if cls.results is None:
            pythons = {
                'before': variants.before_python(),
                'after': variants.after_python(),
            }
            processes = {
                name: variants.start(
                    python, '-m', 'tests.integration.scenario'
                )
                for name, python in pythons.items()
            }
            cls.results = {
                name: variants.json_result(
                    process, f'the scenario on Cyborg {name} the patch'
                )
                for name, process in processes.items()
            }
        return cls.results


class ReportDataPatchTest(base.BaseTestCase):
    def setUp(self):
        super().setUp()
        self.runs = _Runs.get()
        self.before = self.runs['before']
        self.after = self.runs['after']

    def test_each_run_had_its_own_cyborg_and_the_same_database(self):
        self.assertEqual(
            variants.series_without_report_data(),
            self.before['cyborg_patches'],
        )
        self.assertEqual(variants.series(), self.after['cyborg_patches'])
        self.assertEqual(self.before['backend'], self.after['backend'])
        kind = 'MariaDB' if pipeline.backend().is_mysql else 'sqlite'
        self.assertTrue(
            self.after['backend'].startswith(f'Cyborg database: {kind}'),
            self.after['backend'],
        )

    def test_same_tables_and_placement_after_every_step(self):
        steps = [name for name, _ in scenario.STEPS]
        self.assertEqual(steps, [s['step'] for s in self.before['steps']])
        self.assertEqual(steps, [s['step'] for s in self.after['steps']])
        for before, after in zip(
            self.before['steps'], self.after['steps'], strict=True
        ):
            step = before['step']
            self.assertEqual(before['outcome'], after['outcome'], step)
            self.assertEqual(before['warnings'], after['warnings'], step)
            self.assertEqual(
                before['placement_requests'],
                after['placement_requests'],
                step,
            )
            for table, rows in before['tables'].items():
                self.assertEqual(rows, after['tables'][table], (step, table))
            self.assertEqual(before['placement'], after['placement'], step)

    def test_the_scenario_did_what_it_says(self):
        # A comparison of two runs that both went wrong would prove
        # nothing: pin the landmarks.
        steps = {s['step']: s for s in self.after['steps']}
        self.assertEqual('NdctlFailed', steps['ndctl failing']['outcome'])
        self.assertEqual(
            'ScrubRefused', steps['unbind A while it is gone']['outcome']
        )
        failed = {
            s['step'] for s in self.after['steps'] if s['outcome'] != 'ok'
        }
        self.assertEqual(
            {'ndctl failing', 'unbind A while it is gone'}, failed
        )

        def handles(step):
            return {
                h['row'].split('#')[0]: h['in_use']
                for h in steps[step]['tables']['attach_handles']
            }

        self.assertEqual(3, len(handles('discover')))
        # The bound namespace gone, its handle kept in use (0003); the
        # region gone under B, its device kept (0006).
        kept = steps['region of B gone while bound']['tables']
        self.assertEqual(2, len(kept['devices']))
        in_use = handles('region of B gone while bound')
        self.assertEqual([False, True, True], sorted(in_use.values()))
        self.assertEqual(
            {'UnbindFailed', 'Bound'},
            {arq['state'] for arq in kept['extended_accelerator_requests']},
        )
        # Released and gone: deleted, a region and all.
        self.assertEqual(
            1, len(steps['ns0 and ns3 gone']['tables']['devices'])
        )
        back = steps['all back again']
        self.assertEqual(3, len(handles('all back again')))
        self.assertFalse(any(handles('all back again').values()))
        self.assertEqual(3, len(back['placement']['providers']))

    def test_an_unchanged_report_costs_a_constant_after_the_patch(self):
        for name in UNCHANGED_REPORTS:
            (after,) = [s for s in self.after['steps'] if s['step'] == name]
            (before,) = [s for s in self.before['steps'] if s['step'] == name]
            cost = after['cost']
            self.assertLessEqual(
                sum(cost['statements'].values()),
                MAX_UNCHANGED_STATEMENTS,
                name,
            )
            self.assertEqual(0, cost['statements']['SELECT FOR UPDATE'], name)
            self.assertEqual(
                {'read': 1, 'writer': 0}, cost['transactions'], name
            )
            self.assertEqual({'GET': 1}, cost['placement'], name)
            # Before the patch, the same report locked rows.
            self.assertGreater(
                before['cost']['statements']['SELECT FOR UPDATE'], 0, name
            )
