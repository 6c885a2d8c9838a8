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

"""Nova's Cyborg client against the real (patched) Cyborg API.

Nova's own, unchanged ``nova.accelerator.cyborg`` client does what
nova-conductor and nova-compute do for a server whose flavor has
``accel:device_profile``: it reads the device profile's request groups,
creates the ARQs, binds them, reads them back, and deletes them with the
server. Behind it everything is real except ndctl and keystone:

* Cyborg's API (``cyborg.api.app.setup_app()``) over HTTP intercepted by
  wsgi-intercept, with :class:`KeystoneStandIn` in front of it doing what
  keystonemiddleware's auth_token does for two known tokens;
* Cyborg's conductor and the agent running ``intel_pmem_driver`` on a
  fake ndctl, the database (MariaDB when reachable, else sqlite) and the
  real Placement: tests/integration/pipeline.py's fixtures.

The ARQ Nova gets back is handed to the patched libvirt driver
(tests/nova/guest_xml.py, in a process of its own) and must come out as
the nvdimm of the namespace Cyborg bound.

Nova and Cyborg cannot share one ``cfg.CONF`` (both register ``host``,
``[glance]`` and ``[service_user]`` options): Nova keeps the global one,
Cyborg gets its own, which ``oslo_config.cfg.CONF`` names while a test
runs, so that Cyborg's modules (imported inside the tests) bind to it.
"""

import json
import os
import time
from unittest import mock
import uuid

import fixtures
from lxml import etree
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslotest import base

from tests.integration import pipeline
from tests.nova import guest_xml

HOSTNAME = 'compute-0'
PROFILE = 'pmem-small'
RESOURCE_CLASS = 'CUSTOM_PMEM_NAMESPACE_SMALL'
# The device profile an operator creates (doc/source/operator-guide.rst).
PROFILE_GROUPS = [
    {
        f'resources:{RESOURCE_CLASS}': '1',
        f'trait:{RESOURCE_CLASS}': 'required',
    }
]
# SMALL:ns0|ns1,LARGE:ns3 on real ndctl output of the QEMU rig.
HOST_CONFIG = os.path.join(pipeline.SAMPLE_HOST, 'cyborg.conf')
LISTING = os.path.join(pipeline.SAMPLE_HOST, 'ndctl-list.json')
SMALL_NAMESPACES = {'/dev/dax0.0': 'ns0', '/dev/dax0.1': 'ns1'}
# What intel_pmem_driver puts in a namespace's attach handle.
ATTACH_INFO_KEYS = {
    'align',
    'dev',
    'devpath',
    'label',
    'name',
    'numa_node',
    'size',
    'uuid',
}

CYBORG_HOST = 'cyborg.test'
CYBORG_ENDPOINT = f'http://{CYBORG_HOST}/accelerator/v2'
PROJECT_ID = uuid.uuid4().hex
USER_TOKEN = 'user-token'  # noqa: S105 (fixture tokens, not secrets)
ADMIN_TOKEN = 'admin-token'  # noqa: S105
NOVA_SERVICE_TOKEN = 'nova-service-token'  # noqa: S105
# Binding and resolving take one synchronous call for PMEM; bounded anyway.
RESOLVE_TIMEOUT = 60


# What auth_token sets; a client's own are dropped (not X-Service-Token).
IDENTITY_HEADERS = (
    'HTTP_X_USER',
    'HTTP_X_PROJECT',
    'HTTP_X_ROLE',
    'HTTP_X_SERVICE_USER',
    'HTTP_X_SERVICE_ROLES',
)


class KeystoneStandIn:
    """What keystonemiddleware's auth_token puts in front of Cyborg.

    It validates the two user tokens below and Nova's service token, and
    sets the identity headers Cyborg's ContextHook reads; a request
    without a known token gets 401, and the identity headers a client
    sends itself are dropped, as auth_token does.
    """

    USERS = {
        USER_TOKEN: ('demo', PROJECT_ID, 'member,reader'),
        ADMIN_TOKEN: ('admin', PROJECT_ID, 'admin,member,reader'),
    }

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        for key in list(environ):
            if key.startswith(IDENTITY_HEADERS):
                del environ[key]
        user = self.USERS.get(environ.get('HTTP_X_AUTH_TOKEN'))
        if user is None:
            start_response('401 Unauthorized', [('Content-Length', '0')])
            return [b'']
        user_id, project_id, roles = user
        environ['HTTP_X_USER_ID'] = user_id
        environ['HTTP_X_PROJECT_ID'] = project_id
        environ['HTTP_X_ROLES'] = roles
        if environ.get('HTTP_X_SERVICE_TOKEN') == NOVA_SERVICE_TOKEN:
            environ['HTTP_X_SERVICE_USER_ID'] = 'nova'
            environ['HTTP_X_SERVICE_ROLES'] = 'service'
        return self.app(environ, start_response)


_CYBORG_CONF = None


def cyborg_conf():
    """The process's ConfigOpts for Cyborg (made once).

    Libraries register a few groups on ``cfg.CONF`` when imported; Cyborg
    reads them from its own configuration, so they are registered there
    too.
    """
    global _CYBORG_CONF
    if _CYBORG_CONF is None:
        from keystonemiddleware.auth_token import _opts as authtoken_opts
        from oslo_messaging._metrics import client as metrics
        from oslo_messaging._tracing import client as tracing
        from oslo_versionedobjects import exception as ovo_exception

        conf = cfg.ConfigOpts()
        conf.register_opts(
            metrics.oslo_messaging_metrics, group='oslo_messaging_metrics'
        )
        conf.register_opts(
            tracing.oslo_messaging_tracing, group='oslo_messaging_tracing'
        )
        conf.register_opts(
            ovo_exception.exc_log_opts, group='oslo_versionedobjects'
        )
        conf.register_opts(
            authtoken_opts._OPTS, group=authtoken_opts._base.AUTHTOKEN_GROUP
        )
        _CYBORG_CONF = conf
    return _CYBORG_CONF


class CyborgContractTestCase(base.BaseTestCase):
    def setUp(self):
        super().setUp()
        from nova import objects as nova_objects
        import nova.conf

        nova_objects.register_all()
        # Cyborg 17's policies warn about their deprecated defaults on
        # every check.
        self.useFixture(
            fixtures.WarningsFilter(
                [
                    {
                        'action': 'ignore',
                        'category': UserWarning,
                        'module': 'oslo_policy.policy',
                    }
                ]
            )
        )
        self.nova_conf = self.useFixture(config_fixture.Config(nova.conf.CONF))
        self.useFixture(
            fixtures.MonkeyPatch('oslo_config.cfg.CONF', cyborg_conf())
        )

        self.db = self.useFixture(
            pipeline.CyborgDatabase(pipeline.shared_backend())
        )
        self.placement = self.useFixture(pipeline.PlacementService())
        self.host = self.useFixture(
            pipeline.CyborgHost(
                self.db, self.placement, HOST_CONFIG, hostname=HOSTNAME
            )
        )
        with pipeline.ndctl_output(pipeline.read_text(LISTING)):
            self.host.discover()

        # Cyborg tells Nova that a binding is resolved through Nova's
        # os-server-external-events API; Nova's API is not here.
        self.nova_events = self.useFixture(
            fixtures.MockPatch('cyborg.common.nova_client.NovaAPI')
        ).mock.return_value.notify_binding
        self._mount_cyborg_api()
        self._configure_nova()
        self.operator = self._operator_session()
        self.operator.post(
            f'{CYBORG_ENDPOINT}/device_profiles',
            json=[{'name': PROFILE, 'groups': PROFILE_GROUPS}],
        ).raise_for_status()

    def _mount_cyborg_api(self):
        from cyborg.api import app as cyborg_app
        from wsgi_intercept import interceptor

        api = KeystoneStandIn(cyborg_app.setup_app())
        intercept = interceptor.RequestsInterceptor(
            app=lambda: api, url=f'http://{CYBORG_HOST}/accelerator'
        )
        intercept.install_intercept()
        self.addCleanup(intercept.uninstall_intercept)

    def _configure_nova(self, send_service_token=True):
        """Nova's [cyborg] and [service_user], as the operator guide says.

        Nova's service user is keystoneauth's admin_token plugin here: a
        fixed token, which KeystoneStandIn knows as Nova's.
        """
        from keystoneauth1 import loading as ks_loading
        from nova import service_auth

        conf = self.nova_conf.conf
        conf([], project='nova', default_config_files=[])
        conf.register_opts(
            ks_loading.get_auth_plugin_conf_options('admin_token'),
            group='service_user',
        )
        self.nova_conf.config(
            endpoint_override=CYBORG_ENDPOINT, group='cyborg'
        )
        self.nova_conf.config(
            send_service_user_token=send_service_token,
            auth_type='admin_token',
            token=NOVA_SERVICE_TOKEN,
            endpoint=CYBORG_ENDPOINT,
            group='service_user',
        )
        # Nova caches the service user's auth plugin per process.
        service_auth.reset_globals()
        self.addCleanup(service_auth.reset_globals)

    def _operator_session(self):
        import requests

        session = requests.Session()
        session.headers['X-Auth-Token'] = ADMIN_TOKEN
        self.addCleanup(session.close)
        return session

    def _nova_client(self):
        from nova import context as nova_context
        from nova.accelerator import cyborg as nova_cyborg

        ctxt = nova_context.RequestContext(
            user_id='demo',
            project_id=PROJECT_ID,
            auth_token=USER_TOKEN,
            roles=['member', 'reader'],
        )
        return nova_cyborg.get_client(ctxt)

    def _schedule(self, request_groups, instance_uuid):
        """What nova-scheduler does: a candidate from Placement for the
        device profile's group, claimed for the instance. Returns Nova's
        request group to provider mapping."""
        (group,) = request_groups
        query = 'resources={}&required={}'.format(
            ','.join(f'{rc}:{n}' for rc, n in group.resources.items()),
            ','.join(sorted(group.required_traits)),
        )
        rp_uuid = self.placement.claim(
            query, instance_uuid, PROJECT_ID, 'demo'
        )
        return {group.requester_id: [rp_uuid]}, rp_uuid

    @staticmethod
    def _request_groups(cyclient):
        """What nova-api reads from Cyborg for the flavor's profile."""
        from nova.accelerator import cyborg as nova_cyborg

        return nova_cyborg.get_device_profile_request_groups(
            cyclient._context, PROFILE
        )

    @staticmethod
    def _bindings(arqs, instance_uuid):
        """What nova-conductor binds once the instance is scheduled."""
        return {
            arq['uuid']: {
                'hostname': HOSTNAME,
                'device_rp_uuid': arq['device_rp_uuid'],
                'instance_uuid': instance_uuid,
            }
            for arq in arqs
        }

    def _boot(self, cyclient, instance_uuid):
        """What nova-conductor and nova-compute do up to spawn: the ARQs
        created and bound for the instance, and read back once resolved."""
        groups = self._request_groups(cyclient)
        rg_rp_map, rp_uuid = self._schedule(groups, instance_uuid)
        arqs = cyclient.create_arqs_and_match_resource_providers(
            PROFILE, rg_rp_map
        )
        cyclient.bind_arqs(self._bindings(arqs, instance_uuid))
        deadline = time.monotonic() + RESOLVE_TIMEOUT
        while True:
            resolved = cyclient.get_arqs_for_instance(
                instance_uuid, only_resolved=True
            )
            if len(resolved) == len(arqs) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return cyclient.get_arqs_for_instance(instance_uuid), rp_uuid

    def _guest_xml(self, arqs):
        instances = self.useFixture(fixtures.TempDir()).path
        built = guest_xml.build(arqs, instances, 1)
        return etree.fromstring(built['xml'].encode())

    def _handles_in_use(self):
        return [h for h in self.host.attach_handles() if h['in_use']]

    def _namespace_usage(self, rp_uuid):
        return self.placement.get(f'/resource_providers/{rp_uuid}/usages')[
            'usages'
        ][RESOURCE_CLASS]

    def test_boot_and_delete(self):
        cyclient = self._nova_client()
        instance_uuid = str(uuid.uuid4())

        arqs, rp_uuid = self._boot(cyclient, instance_uuid)

        (arq,) = arqs
        self.assertEqual('Bound', arq['state'])
        self.assertEqual('PMEM', arq['attach_handle_type'])
        self.assertEqual(HOSTNAME, arq['hostname'])
        self.assertEqual(instance_uuid, arq['instance_uuid'])
        self.assertEqual(rp_uuid, arq['device_rp_uuid'])
        info = arq['attach_handle_info']
        # Every value a string, as Cyborg's DictOfStringsField makes it.
        self.assertEqual(ATTACH_INFO_KEYS, set(info))
        self.assertTrue(all(isinstance(v, str) for v in info.values()))
        self.assertEqual(SMALL_NAMESPACES[info['devpath']], info['name'])
        self.assertEqual(
            ('SMALL', '1054867456', '2097152'),
            (info['label'], info['size'], info['align']),
        )
        self.assertEqual(1, self._namespace_usage(rp_uuid))
        self.nova_events.assert_called_once_with(
            instance_uuid, [(arq['uuid'], 'completed')]
        )
        (handle,) = self._handles_in_use()
        self.assertEqual(arq['attach_handle_uuid'], handle['uuid'])
        # Cyborg stores numbers and hands Nova their strings.
        stored = json.loads(handle['attach_info'])
        self.assertEqual(1054867456, stored['size'])
        self.assertEqual({k: str(v) for k, v in stored.items()}, info)

        # nova-compute's spawn hands these ARQs to the libvirt driver.
        guest = self._guest_xml(arqs)
        (nvdimm,) = guest.findall("./devices/memory[@model='nvdimm']")
        self.assertEqual(info['devpath'], nvdimm.findtext('./source/path'))
        self.assertEqual(
            str(int(info['size']) // 1024), nvdimm.findtext('./target/size')
        )
        self.assertEqual(
            str(int(info['align']) // 1024),
            nvdimm.findtext('./source/alignsize'),
        )
        self.assertEqual('1', guest.find('./maxMemory').get('slots'))
        self.assertIsNotNone(guest.find('./cpu/numa/cell'))

        # The server is deleted: nova-compute deletes its ARQs, then its
        # allocations.
        with (
            pipeline.ndctl_output(pipeline.read_text(LISTING)),
            pipeline.scrub_boundary() as zero,
        ):
            cyclient.delete_arqs_for_instance(instance_uuid)
        self.placement._call('DELETE', f'/allocations/{instance_uuid}')

        zero.assert_called_once_with(info['devpath'], mock.ANY)
        self.assertEqual([], self._handles_in_use())
        self.assertEqual(
            [], self.db.rows('extended_accelerator_requests', ['id'])
        )
        self.assertEqual(0, self._namespace_usage(rp_uuid))

    def test_two_servers_get_two_namespaces(self):
        cyclient = self._nova_client()
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        (arq_1,), _ = self._boot(cyclient, first)
        (arq_2,), _ = self._boot(cyclient, second)
        devpaths = {
            arq['attach_handle_info']['devpath'] for arq in (arq_1, arq_2)
        }
        self.assertEqual(set(SMALL_NAMESPACES), devpaths)

        # Deleting one server's ARQs wipes its namespace, not the other's.
        with (
            pipeline.ndctl_output(pipeline.read_text(LISTING)),
            pipeline.scrub_boundary() as zero,
        ):
            cyclient.delete_arqs_for_instance(first)
        zero.assert_called_once_with(
            arq_1['attach_handle_info']['devpath'], mock.ANY
        )
        (in_use,) = self._handles_in_use()
        self.assertEqual(arq_2['attach_handle_uuid'], in_use['uuid'])
        self.assertEqual(
            ['Bound'],
            [a['state'] for a in cyclient.get_arqs_for_instance(second)],
        )

    def test_bind_and_delete_need_the_service_token(self):
        from nova import exception as nova_exception

        instance_uuid = str(uuid.uuid4())
        (bound,), _ = self._boot(self._nova_client(), instance_uuid)

        # [service_user] send_service_user_token left at its default.
        self._configure_nova(send_service_token=False)
        cyclient = self._nova_client()
        with pipeline.scrub_boundary() as zero:
            ex = self.assertRaises(
                nova_exception.AcceleratorRequestOpFailed,
                cyclient.delete_arqs_for_instance,
                instance_uuid,
            )
        self.assertIn('403', str(ex))
        if zero is not None:
            zero.assert_not_called()
        self.assertEqual(
            ['Bound'],
            [
                a['state']
                for a in cyclient.get_arqs_for_instance(instance_uuid)
            ],
        )

        other = str(uuid.uuid4())
        rg_rp_map, _ = self._schedule(self._request_groups(cyclient), other)
        arqs = cyclient.create_arqs_and_match_resource_providers(
            PROFILE, rg_rp_map
        )
        ex = self.assertRaises(
            nova_exception.AcceleratorRequestBindingFailed,
            cyclient.bind_arqs,
            self._bindings(arqs, other),
        )
        self.assertIn('403', str(ex))
        (in_use,) = self._handles_in_use()
        self.assertEqual(bound['attach_handle_uuid'], in_use['uuid'])
