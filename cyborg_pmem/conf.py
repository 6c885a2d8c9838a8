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

"""Configuration options of the PMEM driver, group ``[pmem_devices]``."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'pmem_devices',
    title='Intel PMEM driver options',
    help='Options for the Cyborg Intel persistent memory (PMEM) driver, '
    'enabled with ``[agent] enabled_drivers = intel_pmem_driver``.',
)

OPTS = [
    cfg.ListOpt(
        'pmem_namespaces',
        default=[],
        help='Device-DAX namespaces the driver offers, grouped by label: a '
        'comma-separated list of ``LABEL:NAME|NAME|...`` entries, for '
        'example ``6GB:ns0|ns1|ns2,LARGE:ns3``. NAME is the namespace '
        'name given with ``ndctl create-namespace -n NAME``. Each label '
        'becomes the resource class and trait '
        '``CUSTOM_PMEM_NAMESPACE_<LABEL>``. Namespaces no label names are '
        'ignored; an empty list offers nothing.',
    ),
    cfg.StrOpt(
        'ndctl_path',
        default='ndctl',
        help='The ndctl executable: a name looked up in PATH or an '
        'absolute path.',
    ),
    cfg.IntOpt(
        'ndctl_timeout',
        default=30,
        min=1,
        help='Seconds one ``ndctl list`` call may take before it is killed '
        'and discovery fails (the last reported inventory stays).',
    ),
    cfg.StrOpt(
        'daxio_path',
        default='daxio',
        help='The daxio executable (Debian/Ubuntu package ``pmdk-tools``, '
        'RHEL ``daxio``) that zeroes a namespace when its attach handle is '
        'released: a name looked up in PATH or an absolute path. It is '
        'read and run by the privileged helper, so the helper\'s '
        'configuration file and PATH are the ones that count.',
    ),
    cfg.IntOpt(
        'scrub_timeout_base',
        default=60,
        min=1,
        help='Seconds allowed for zeroing a namespace regardless of its '
        'size; ``scrub_seconds_per_gib`` is added for every GiB. A scrub '
        'that runs longer is killed and fails, and the attach handle '
        'stays in use.',
    ),
    cfg.FloatOpt(
        'scrub_seconds_per_gib',
        default=10.0,
        min=0,
        help='Seconds allowed per GiB of namespace size when zeroing it, on '
        'top of ``scrub_timeout_base``. The default is about ten times '
        'what writing zeros to Optane PMEM takes; lower it to fail faster, '
        'raise it for slow or emulated persistent memory.',
    ),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    """Return the options for oslo-config-generator and the docs."""
    return [(GROUP, OPTS)]
