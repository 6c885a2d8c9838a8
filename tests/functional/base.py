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

import json

import testtools

from tests.functional import rig


class TestCase(testtools.TestCase):
    """Tests that judge what one boot of the rig recorded."""

    def setUp(self):
        super().setUp()
        self.results = rig.results()

    def assertNoError(self, recorded, what):
        if 'error' in recorded:
            error = recorded['error']
            if isinstance(error, dict):
                error = error.get('traceback') or error
            self.fail(f'{what} failed in the guest: {error}')


def handles(devices):
    """{namespace name: (region, resource class, attach_info dict)}."""
    found = {}
    for device in devices:
        board = json.loads(device['std_board_info'])
        for deployable in device['deployable_list']:
            rc = dict(
                (a['key'], a['value']) for a in deployable['attribute_list']
            )['rc']
            for handle in deployable['attach_handle_list']:
                info = json.loads(handle['attach_info'])
                found[info['name']] = (board['region'], rc, info)
    return found


def warned_names(log):
    """The namespace named by each WARNING record, in order."""
    names = []
    for record in log:
        if record['level'] == 'WARNING':
            # "Not offering PMEM namespace 'ns2' (label 'SMALL'): ..."
            names.append(record['message'].split("'")[1])
    return names


def by_cpid(devices):
    return {d['controlpath_id']['cpid_info']: d for d in devices}
