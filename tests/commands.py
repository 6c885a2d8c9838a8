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

"""Run a set-up command of a test harness, failing in one line.

Standard library only: the Cyborg pipeline, the VM boot and the Nova
guest-XML builder run in environments with different packages.
"""

import subprocess


def run(argv, what, error, timeout, **kwargs):
    """Run ``argv`` (a list, no shell) and return its CompletedProcess,
    output captured as text.

    :param what: the step, first in every error message.
    :param error: the exception class to raise, with one line: the
        command not found, out of time, or its exit status and the last
        line of its output.
    """
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except FileNotFoundError:
        raise error(f'{what}: {argv[0]} not found') from None
    except subprocess.TimeoutExpired:
        raise error(f'{what}: timed out after {timeout} s') from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise error(
            f'{what}: exit status {done.returncode}: '
            f'{lines[-1] if lines else "(no output)"}'
        )
    return done
