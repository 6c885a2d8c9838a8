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


"""What the operator commands share."""

import contextlib
import logging

from cyborg_pmem import exception
from cyborg_pmem import labels


class UsageError(Exception):
    """The command line asks for something the command does not do."""


def check_configured(config, configured_labels):
    """Refuse a configuration that names no namespace.

    The driver loads with it and offers nothing (an empty option is a
    valid choice there); for a command that checks or acts on the
    configured namespaces it is a mistake: a config file that was not
    found, or not the one meant.

    :raises InvalidConfig: naming ``[pmem_devices] pmem_namespaces`` and
        the files read.
    """
    if configured_labels:
        return
    read = [*config.config_file, *(config.config_dir or [])]
    if read:
        where = 'not set in ' + ', '.join(read)
    else:
        where = (
            'not set, and no configuration file was found (pass '
            '--config-file, e.g. /etc/cyborg/cyborg.conf)'
        )
    raise exception.InvalidConfig(
        option=labels.OPTION,
        reason=f'{where}: intel_pmem_driver would offer nothing',
    )


@contextlib.contextmanager
def driver_log(stream, debug):
    """Send the driver's log to ``stream``: everything with --debug, else
    only errors, since the commands give refusals a line of their own."""
    logger = logging.getLogger('cyborg_pmem')
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter('%(levelname)s %(message)s'))
    saved = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG if debug else logging.ERROR)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
