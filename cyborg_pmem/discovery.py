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

"""One discovery: run ndctl, read its output, plan, log.

The code path shared by the driver and the operator CLI. Configuration is
validated once, when the object is built, so a bad ``pmem_namespaces``
stops the driver from loading instead of failing every periodic cycle.
"""

import logging
import time

from cyborg_pmem import exception
from cyborg_pmem import inventory as inventory_mod
from cyborg_pmem import labels as labels_mod
from cyborg_pmem import planner

# The standard library's logger: in the agent, oslo.log configures the
# standard logging these records go through, and the commands attach a
# handler of their own (cmd/common.py), so neither needs oslo.log here.
LOG = logging.getLogger(__name__)


class Discovery:
    def __init__(self, pmem_namespaces, ndctl_path, ndctl_timeout):
        self.labels = labels_mod.parse_pmem_namespaces(pmem_namespaces)
        self.ndctl_path = ndctl_path
        self.ndctl_timeout = ndctl_timeout

    @classmethod
    def from_conf(cls, group):
        """Build from a ``[pmem_devices]`` option group."""
        return cls(
            group.pmem_namespaces, group.ndctl_path, group.ndctl_timeout
        )

    def read_host(self):
        """Run ``ndctl list`` once; return its output."""
        # Imported here: the runner loads oslo.concurrency, which the
        # CLI on a saved listing (--ndctl-output) never uses.
        from cyborg_pmem import ndctl

        started = time.monotonic()
        try:
            output = ndctl.run_list(self.ndctl_path, self.ndctl_timeout)
        except exception.NdctlError:
            # The caller (the agent's periodic task, the CLI) reports the
            # error itself; the time taken tells a hang from a quick
            # failure.
            LOG.debug(
                'Running %s failed after %.3f s',
                ndctl.list_argv(self.ndctl_path),
                time.monotonic() - started,
            )
            raise
        LOG.debug(
            'Ran %s in %.3f s (%d bytes of output)',
            ndctl.list_argv(self.ndctl_path),
            time.monotonic() - started,
            len(output),
        )
        return output

    def run(self, hostname, listing=None):
        """Discover and return a :class:`cyborg_pmem.planner.Plan`.

        :param listing: a saved ``ndctl list`` output to use instead of
            running ndctl (the CLI's ``--ndctl-output``).
        :raises PmemError: a typed error; never an empty plan because
            ndctl failed.
        """
        if listing is None:
            listing = self.read_host()
        inventory = inventory_mod.parse_listing(listing)
        result = planner.plan(inventory, self.labels, hostname)
        for refusal in result.refusals:
            LOG.warning('Not offering PMEM %s', refusal)
        offered = result.offered()
        LOG.info(
            'PMEM discovery: %(regions)d region(s), %(devices)d reported, '
            '%(offered)s offered, %(refused)d refused',
            {
                'regions': len(inventory.regions),
                'devices': len(result.devices),
                'offered': ', '.join(
                    f'{label}={count}' for label, count in offered.items()
                )
                or 'none',
                'refused': len(result.refusals),
            },
        )
        return result
