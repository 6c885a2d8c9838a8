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

import os

from hypothesis import settings

# Property-based tests (test_properties.py). "ci", the default, is
# derandomized: every run tries the same examples, so a CI failure
# reproduces exactly, and the budget is fixed. "dev" explores new random
# examples on each run: HYPOTHESIS_PROFILE=dev tox -e py3.
# No example database: nothing is written into the source tree.
settings.register_profile(
    'ci',
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
)
settings.register_profile(
    'dev',
    max_examples=2000,
    deadline=None,
    database=None,
    print_blob=True,
)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))
