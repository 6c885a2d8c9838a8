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

"""One compute host's PMEM pipeline through the real Cyborg and Placement.

Shared by the integration tests and ``tox -e demo``. What runs is real:

* Placement (openstack-placement) in-process on sqlite, through its own
  ``PlacementFixture``; HTTP to it is intercepted by wsgi-intercept, so
  Cyborg's ``PlacementClient`` talks to it unchanged. The only stand-in is
  authentication: ``[placement] auth_type = admin_token`` points
  keystoneauth at the fixture's endpoint with the fixture's noauth token.
* Cyborg's database, migrated by ``cyborg-dbsync`` as an operator would:
  MariaDB (``upgrade`` of the stock 17.0.0 schema, then ``upgrade`` again
  for the PMEM migration) or, as the quick local mode, sqlite
  (``create_schema`` then ``upgrade``).
* Cyborg's RPC: oslo.messaging's in-process ``fake://`` transport, with
  real RPC servers for the conductor and the agent, so every call goes
  through the versioned-object serializer as it would over RabbitMQ.
* The agent (``AgentManager``, whose ResourceTracker loads
  ``intel_pmem_driver`` by its entry point) and the conductor
  (``ConductorManager.report_data``).

``ndctl`` is not run: :func:`ndctl_output` replaces
``processutils.execute`` (with autospec) at the driver's process boundary.
"""

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from unittest import mock
from urllib import parse
import uuid

import fixtures
from oslo_concurrency import processutils

# Re-exported: the timing and the cycle benchmark build their hosts here.
from tests import commands
from tests.fixtures.listing import synthetic_listing  # noqa: F401

# Cyborg's alembic head before the PMEM patch series, and the head of the
# series' migrations on top of it (26ed30a648d7 adds the PMEM types,
# 64732b7598e8 the ARQ state UnbindFailed).
STOCK_HEAD = 'b47c8f2d1e3a'
SERIES_HEAD = '64732b7598e8'

DB_URL_ENV = 'CYBORG_PMEM_DB_URL'
MYSQL_SOCKET = '/run/mysqld/mysqld.sock'
# Every external command gets a timeout.
COMMAND_TIMEOUT = 120

# Placement's noauth2 middleware makes the token "admin" an admin.
PLACEMENT_TOKEN = 'admin'  # noqa: S105 (a test fixture's, not a secret)
PLACEMENT_VERSION = 'placement 1.36'
# The operator view's reads carry this agent so that request counts can
# tell them from Cyborg's own.
OPERATOR_AGENT = 'cyborg-pmem-operator-view'

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
SAMPLE_HOST = os.path.join(REPO, 'etc', 'sample-host')

# Cyborg tables from children to parents, for emptying a shared database.
_CYBORG_TABLES = (
    'extended_accelerator_requests',
    'attach_handles',
    'attributes',
    'deployables',
    'controlpath_ids',
    'devices',
    'device_profiles',
)


class PipelineError(Exception):
    """A step of the pipeline's own set-up failed (one line)."""


def run_command(argv, what, timeout=COMMAND_TIMEOUT):
    """Run ``argv``; return its stdout, or raise a one-line
    :class:`PipelineError` that starts with ``what``."""
    return commands.run(argv, what, PipelineError, timeout).stdout


def _venv_command(name):
    """A console script of the Python running this (tox's env)."""
    return os.path.join(os.path.dirname(sys.executable), name)


# -- Which database ---------------------------------------------------------


class Backend:
    """Where Cyborg's databases go.

    ``server_url`` is a ``mysql+pymysql://`` URL whose database part is
    a prefix: each test run creates and drops its own databases named
    from it. For sqlite it is None and every database is a temporary file.
    """

    def __init__(self, kind, server_url=None, why=''):
        self.kind = kind
        self.server_url = server_url
        self.why = why

    @property
    def is_mysql(self):
        return self.kind == 'mariadb'

    def describe(self):
        if not self.is_mysql:
            return f'Cyborg database: sqlite ({self.why})'
        shown = parse.urlsplit(self.server_url)
        netloc = shown.hostname or 'localhost'
        return (
            f'Cyborg database: MariaDB {self.server_version()} at '
            f'{netloc} ({self.why})'
        )

    def _connect(self):
        import pymysql

        url = parse.urlsplit(self.server_url)
        query = dict(parse.parse_qsl(url.query))
        kwargs = {'user': parse.unquote(url.username or 'root')}
        if url.password:
            kwargs['password'] = parse.unquote(url.password)
        if 'unix_socket' in query:
            kwargs['unix_socket'] = query['unix_socket']
        else:
            kwargs['host'] = url.hostname or 'localhost'
            if url.port:
                kwargs['port'] = url.port
        return pymysql.connect(connect_timeout=10, **kwargs)

    def server_version(self):
        with contextlib.closing(self._connect()) as conn:
            with conn.cursor() as cursor:
                cursor.execute('SELECT VERSION()')
                return cursor.fetchone()[0]

    def prefix(self):
        return parse.urlsplit(self.server_url).path.strip('/') or (
            'cyborg_pmem_it'
        )

    def create_database(self, name):
        with contextlib.closing(self._connect()) as conn:
            with conn.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS `{name}`')
                cursor.execute(
                    f'CREATE DATABASE `{name}` CHARACTER SET utf8mb4'
                )
        url = parse.urlsplit(self.server_url)
        query = dict(parse.parse_qsl(url.query))
        query.setdefault('charset', 'utf8mb4')
        return parse.urlunsplit(
            (url.scheme, url.netloc, '/' + name, parse.urlencode(query), '')
        )

    def drop_database(self, name):
        with contextlib.closing(self._connect()) as conn:
            with conn.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS `{name}`')


def _mariadb_is_up():
    mysqladmin = shutil.which('mysqladmin')
    if not mysqladmin or not os.path.exists(MYSQL_SOCKET):
        return False
    try:
        subprocess.run(
            [mysqladmin, '--socket', MYSQL_SOCKET, 'ping'],
            capture_output=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def backend(autodetect=True):
    """Pick the database: ``$CYBORG_PMEM_DB_URL``, else (with
    ``autodetect``) a local MariaDB that answers ``mysqladmin ping`` (as
    root over its socket), else sqlite."""
    url = os.environ.get(DB_URL_ENV, '').strip()
    if url == 'sqlite':
        return Backend('sqlite', why=f'{DB_URL_ENV}=sqlite')
    if url:
        if not url.startswith('mysql+pymysql://'):
            raise PipelineError(
                f'{DB_URL_ENV} must be "sqlite" or a mysql+pymysql:// URL, '
                f'not {url.split("://")[0]}://...'
            )
        return Backend('mariadb', url, why=f'from {DB_URL_ENV}')
    if autodetect and _mariadb_is_up():
        local = Backend(
            'mariadb',
            f'mysql+pymysql://root@localhost/cyborg_pmem_it'
            f'?unix_socket={MYSQL_SOCKET}',
            why='local server answered mysqladmin ping',
        )
        try:
            local.server_version()
        except Exception as err:  # noqa: BLE001 (any refusal means sqlite)
            # mysqladmin ping succeeds even when access is denied.
            return Backend(
                'sqlite',
                why=f'local MariaDB refused root over its socket '
                f'({str(err).splitlines()[0][:80]}); set {DB_URL_ENV}',
            )
        return local
    if not autodetect:
        return Backend('sqlite', why=f'{DB_URL_ENV} names no MariaDB')
    return Backend(
        'sqlite',
        why=f'no MariaDB: set {DB_URL_ENV} or start mariadb for the real one',
    )


@functools.cache
def shared_backend():
    """:func:`backend`, chosen once per process (and said once)."""
    return backend()


# -- Cyborg's database --------------------------------------------------------


def dbsync(config_file, *command):
    """Run ``cyborg-dbsync --config-file FILE COMMAND...``."""
    return run_command(
        [_venv_command('cyborg-dbsync'), '--config-file', config_file]
        + list(command),
        'cyborg-dbsync ' + ' '.join(command),
    )


def _write_db_config(directory, url):
    path = os.path.join(directory, 'cyborg-db.conf')
    with open(path, 'w') as f:
        f.write(f'[database]\nconnection = {url}\n')
    return path


def alembic_version(url):
    """The alembic revision a database is at, read as cyborg-dbsync's
    ``version`` reads it (without paying for another process)."""
    import alembic.migration
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return alembic.migration.MigrationContext.configure(
                conn
            ).get_current_revision()
    finally:
        engine.dispose()


def migrate(backend_, url, directory):
    """Migrate a new, empty database as an operator would; return the
    alembic revisions it went through, in order."""
    config_file = _write_db_config(directory, url)
    if backend_.is_mysql:
        # A cloud that ran the stock 17.0.0 migrations...
        dbsync(config_file, 'upgrade', '--revision', STOCK_HEAD)
    else:
        # Stock migrations do not run on sqlite; Cyborg's create_schema
        # builds the models and stamps the head.
        dbsync(config_file, 'create_schema')
    versions = [alembic_version(url)]
    # ...then the patched Cyborg's upgrade, which adds the series' migrations.
    dbsync(config_file, 'upgrade')
    versions.append(alembic_version(url))
    return versions


_SHARED_DATABASES = {}
# oslotest points tempfile at a directory deleted after each test; a
# database shared by the whole process must live outside it.
_PROCESS_TMPDIR = tempfile.gettempdir()


class CyborgDatabase(fixtures.Fixture):
    """A migrated Cyborg database, wired into Cyborg's enginefacade.

    ``fresh=False`` reuses one migrated database per process (MariaDB
    migrations take seconds) and empties its tables instead.
    """

    def __init__(self, backend_, fresh=False):
        super().__init__()
        self.backend = backend_
        self.fresh = fresh

    def _setUp(self):
        from cyborg.db.sqlalchemy import api as sqlalchemy_api
        from oslo_db.sqlalchemy import enginefacade
        from oslo_db.sqlalchemy import test_fixtures

        key = self.backend.server_url or 'sqlite'
        if not self.fresh and key in _SHARED_DATABASES:
            self.url, self.versions = _SHARED_DATABASES[key]
        else:
            self.url, self.versions = self._create()
            if not self.fresh:
                _SHARED_DATABASES[key] = (self.url, self.versions)
        facade = enginefacade.transaction_context()
        facade.configure(connection=self.url)
        self.useFixture(
            test_fixtures.ReplaceEngineFacadeFixture(
                sqlalchemy_api.main_context_manager, facade
            )
        )
        # Cyborg's engine; what the tests read goes through another, so
        # that counting() sees Cyborg's statements only.
        self.engine = facade.writer.get_engine()
        self.addCleanup(self.engine.dispose)
        import sqlalchemy

        self.view_engine = sqlalchemy.create_engine(self.url)
        self.addCleanup(self.view_engine.dispose)
        if not self.fresh:
            self.empty()

    def _create(self):
        directory = tempfile.mkdtemp(
            prefix='cyborg-pmem-db-',
            dir=None if self.fresh else _PROCESS_TMPDIR,
        )
        if self.backend.is_mysql:
            name = (
                f'{self.backend.prefix()}_{os.getpid()}_'
                + (uuid.uuid4().hex[:8])
            )
            url = self.backend.create_database(name)
            cleanup = [
                lambda: self.backend.drop_database(name),
                lambda: shutil.rmtree(directory, ignore_errors=True),
            ]
        else:
            url = 'sqlite:///' + os.path.join(directory, 'cyborg.db')
            cleanup = [lambda: shutil.rmtree(directory, ignore_errors=True)]
        if self.fresh:
            for step in cleanup:
                self.addCleanup(step)
        else:
            import atexit

            for step in cleanup:
                atexit.register(step)
        versions = migrate(self.backend, url, directory)
        return url, versions

    def empty(self):
        import sqlalchemy

        with self.view_engine.begin() as conn:
            for table in _CYBORG_TABLES:
                # Table names are this module's constants.
                conn.execute(sqlalchemy.text(f'DELETE FROM {table}'))  # noqa: S608

    def rows(self, table, columns):
        """The rows of a table as Cyborg stored them, ordered by id."""
        import sqlalchemy

        quote = self.view_engine.dialect.identifier_preparer.quote
        names = ', '.join(c if c == '*' else quote(c) for c in columns)
        with self.view_engine.connect() as conn:
            result = conn.execute(
                # Callers pass constant names; columns are quoted.
                sqlalchemy.text(f'SELECT {names} FROM {table} ORDER BY id')  # noqa: S608
            )
            return [dict(row._mapping) for row in result]

    def column_type(self, table, column):
        import sqlalchemy

        return {
            c['name']: c['type']
            for c in sqlalchemy.inspect(self.view_engine).get_columns(table)
        }[column]


# -- Placement ----------------------------------------------------------------


class _RequestLog:
    """WSGI middleware noting every request Placement serves."""

    def __init__(self, app, log):
        self.app = app
        self.log = log

    def __call__(self, environ, start_response):
        self.log.append(
            (
                environ.get('HTTP_USER_AGENT', ''),
                environ['REQUEST_METHOD'],
                environ.get('PATH_INFO', ''),
            )
        )
        return self.app(environ, start_response)


class PlacementService(fixtures.Fixture):
    """The real Placement WSGI app on sqlite, reachable over intercepted
    HTTP at ``endpoint``; ``requests`` notes what it served."""

    def _setUp(self):
        from placement import deploy
        from placement.tests.functional.fixtures import placement

        self.requests = []
        loadapp = deploy.loadapp

        def logged_loadapp(conf):
            return _RequestLog(loadapp(conf), self.requests)

        self.useFixture(
            fixtures.MonkeyPatch(
                'placement.tests.functional.fixtures.placement.deploy.loadapp',
                logged_loadapp,
            )
        )
        fixture = self.useFixture(
            placement.PlacementFixture(token=PLACEMENT_TOKEN)
        )
        self.endpoint = fixture.endpoint
        import requests

        self.session = requests.Session()
        self.session.headers.update(
            {
                'X-Auth-Token': PLACEMENT_TOKEN,
                'OpenStack-API-Version': PLACEMENT_VERSION,
                'User-Agent': OPERATOR_AGENT,
            }
        )
        self.addCleanup(self.session.close)

    def _call(self, method, path, body=None):
        resp = self.session.request(
            method, self.endpoint + path, json=body, timeout=30
        )
        if resp.status_code >= 400:
            raise PipelineError(
                f'Placement {method} {path}: HTTP {resp.status_code}: '
                f'{resp.text[:200]}'
            )
        return resp.json() if resp.content else None

    def get(self, path):
        return self._call('GET', path)

    def create_compute_node(self, hostname):
        """Create the compute node's provider the way nova-compute does:
        a root provider named after the host, with its inventory."""
        node_uuid = str(uuid.uuid4())
        provider = self._call(
            'POST',
            '/resource_providers',
            {'name': hostname, 'uuid': node_uuid},
        )
        self._call(
            'PUT',
            f'/resource_providers/{node_uuid}/inventories',
            {
                'resource_provider_generation': provider['generation'],
                'inventories': {
                    'VCPU': {'total': 8},
                    'MEMORY_MB': {'total': 16384},
                    'DISK_GB': {'total': 100},
                },
            },
        )
        return node_uuid

    def claim(self, query, consumer_uuid, project_id, user_id):
        """What Nova's scheduler does: the first allocation candidate for
        ``query`` (one provider) claimed for the consumer. Returns the
        provider's uuid."""
        candidates = self.get(f'/allocation_candidates?{query}')
        if not candidates['allocation_requests']:
            raise PipelineError(f'Placement has no candidate for {query}')
        allocations = candidates['allocation_requests'][0]['allocations']
        (rp_uuid,) = allocations
        self._call(
            'PUT',
            f'/allocations/{consumer_uuid}',
            {
                'allocations': allocations,
                'project_id': project_id,
                'user_id': user_id,
                'consumer_generation': None,
            },
        )
        return rp_uuid

    def cyborg_writes(self):
        """The writes Cyborg (not this view) sent so far."""
        return [
            (method, path)
            for agent, method, path in self.requests
            if agent != OPERATOR_AGENT and method != 'GET'
        ]

    def tree(self, root_uuid):
        """The providers under a root, as an operator would list them:
        ``[{name, uuid, parent, inventories, traits}]``, root first."""
        providers = self.get(f'/resource_providers?in_tree={root_uuid}')[
            'resource_providers'
        ]
        result = []
        for rp in providers:
            result.append(
                {
                    'name': rp['name'],
                    'uuid': rp['uuid'],
                    'parent': rp['parent_provider_uuid'],
                    'generation': rp['generation'],
                    'inventories': self.get(
                        f'/resource_providers/{rp["uuid"]}/inventories'
                    )['inventories'],
                    'usages': self.get(
                        f'/resource_providers/{rp["uuid"]}/usages'
                    )['usages'],
                    'traits': sorted(
                        self.get(f'/resource_providers/{rp["uuid"]}/traits')[
                            'traits'
                        ]
                    ),
                }
            )
        result.sort(key=lambda rp: (rp['parent'] is not None, rp['name']))
        return result

    def resource_classes(self, prefix='CUSTOM_'):
        return sorted(
            rc['name']
            for rc in self.get('/resource_classes')['resource_classes']
            if rc['name'].startswith(prefix)
        )


# -- ndctl at the process boundary --------------------------------------------


@contextlib.contextmanager
def ndctl_output(listing=None, error=None):
    """Make every ``processutils.execute`` print ``listing`` (as ``ndctl
    list`` would) or raise ``error``. Yields the autospec mock."""
    with mock.patch.object(processutils, 'execute', autospec=True) as execute:
        if error is not None:
            execute.side_effect = error
        else:
            execute.return_value = (listing, '')
        yield execute


def ndctl_failure():
    """What processutils raises when ndctl cannot open the NVDIMM bus."""
    return processutils.ProcessExecutionError(
        stdout='',
        stderr='ndctl: error: failed to open /dev/ndctl0\n',
        exit_code=1,
        cmd='ndctl list',
    )


@contextlib.contextmanager
def scrub_boundary():
    """Stand in for the privileged namespace wipe; yield its mock.

    On unbind the agent calls the driver's ``cleanup_attach_handle``,
    which zeroes the namespace through its privsep helper
    (``cyborg_pmem.privsep.zero_devdax``, which runs daxio on a real
    /dev/daxN.M): that call is replaced, with autospec.
    """
    from cyborg_pmem import privsep

    with mock.patch.object(privsep, 'zero_devdax', autospec=True) as zero:
        yield zero


def read_text(path):
    with open(path) as f:
        return f.read()


def without_namespaces(listing, *names):
    """An ndctl listing with the named namespaces gone from the host."""
    data = json.loads(listing)
    for region in data['regions']:
        region['namespaces'] = [
            ns for ns in region['namespaces'] if ns.get('name') not in names
        ]
    return json.dumps(data)


# -- The host: Cyborg's agent and conductor -----------------------------------


def _write_cyborg_config(directory, hostname, db_url, placement_endpoint):
    """The cyborg.conf of a one-host cloud; ``[pmem_devices]`` comes from
    the host's own file, passed as a second --config-file."""
    path = os.path.join(directory, 'cyborg.conf')
    with open(path, 'w') as f:
        f.write(
            f'[DEFAULT]\n'
            f'host = {hostname}\n'
            f'transport_url = fake:/\n'
            f'[database]\n'
            f'connection = {db_url}\n'
            f'[agent]\n'
            f'enabled_drivers = intel_pmem_driver\n'
            f'resource_provider_name = {hostname}\n'
            f'resource_provider_startup_retries = 0\n'
            f'[placement]\n'
            f'auth_type = admin_token\n'
            f'endpoint = {placement_endpoint}\n'
            f'token = {PLACEMENT_TOKEN}\n'
        )
    return path


class CyborgHost(fixtures.Fixture):
    """Cyborg's conductor and one compute host's agent, over real RPC.

    The agent starts with the ndctl output given, as cyborg-agent would
    start on that host; :meth:`discover` runs one periodic cycle.
    """

    def __init__(self, db, placement, host_config, hostname='compute-0'):
        super().__init__()
        self.db = db
        self.placement = placement
        self.host_config = host_config
        self.hostname = hostname

    def _setUp(self):
        from cyborg import context as cyborg_context
        from cyborg import objects
        from cyborg.agent import manager as agent_manager
        from cyborg.common import constants
        from cyborg.common import rpc
        from cyborg.conductor import manager as conductor_manager
        from cyborg.conductor import rpcapi as conductor_rpcapi
        from cyborg.objects import base as objects_base
        from oslo_config import cfg
        from oslo_config import fixture as config_fixture
        import oslo_messaging as messaging

        objects.register_all()
        self.compute_node = self.placement.create_compute_node(self.hostname)
        self.compute_nodes = {self.hostname: self.compute_node}
        directory = self.useFixture(fixtures.TempDir()).path
        self.config_file = _write_cyborg_config(
            directory, self.hostname, self.db.url, self.placement.endpoint
        )
        conf = self.useFixture(config_fixture.Config(cfg.CONF)).conf
        conf(
            args=[
                '--config-file',
                self.config_file,
                '--config-file',
                self.host_config,
            ],
            project='cyborg',
            default_config_files=[],
        )
        rpc.init(conf)
        self.addCleanup(rpc.cleanup)
        self.context = cyborg_context.get_admin_context()

        self.conductor = conductor_manager.ConductorManager(
            constants.CONDUCTOR_TOPIC, self.hostname
        )
        self.agent = agent_manager.AgentManager(
            constants.AGENT_TOPIC, self.hostname
        )
        self.rpc_calls = []
        self.nova_notifications = []
        for topic, endpoint in (
            (constants.CONDUCTOR_TOPIC, self.conductor),
            (constants.AGENT_TOPIC, self.agent),
        ):
            server = rpc.get_server(
                messaging.Target(topic=topic, server=self.hostname),
                [_Recorder(endpoint, self.rpc_calls)],
                objects_base.CyborgObjectSerializer(),
            )
            server.start()
            self.addCleanup(server.wait)
            self.addCleanup(server.stop)
        self.conductor_api = conductor_rpcapi.ConductorAPI()

    def add_agent(self, hostname):
        """Another compute host with its own agent (and the same
        ``[pmem_devices]``), reporting to the same conductor."""
        from cyborg.agent import manager as agent_manager
        from cyborg.common import constants

        self.compute_nodes[hostname] = self.placement.create_compute_node(
            hostname
        )
        with self._as_host(hostname):
            agent = agent_manager.AgentManager(constants.AGENT_TOPIC, hostname)
        return _OtherAgent(self, hostname, agent)

    @contextlib.contextmanager
    def _as_host(self, hostname):
        # Cyborg and the driver read the host name from the global
        # configuration, as each host's own cyborg.conf would set it.
        from oslo_config import cfg

        cfg.CONF.set_override('host', hostname)
        cfg.CONF.set_override(
            'resource_provider_name', hostname, group='agent'
        )
        try:
            yield
        finally:
            cfg.CONF.clear_override('host')
            cfg.CONF.clear_override('resource_provider_name', group='agent')

    def discover(self):
        """One periodic cycle of the agent: every driver's discover(),
        then report_data to the conductor over RPC."""
        self.agent.update_available_resource(self.context)

    # What Cyborg stored.

    def devices(self):
        return self.db.rows(
            'devices',
            ['id', 'type', 'vendor', 'model', 'std_board_info', 'hostname'],
        )

    def controlpath_ids(self):
        return self.db.rows(
            'controlpath_ids', ['id', 'device_id', 'cpid_type', 'cpid_info']
        )

    def deployables(self):
        return self.db.rows(
            'deployables',
            [
                'id',
                'uuid',
                'name',
                'num_accelerators',
                'rp_uuid',
                'driver_name',
                'device_id',
            ],
        )

    def attributes(self):
        return self.db.rows(
            'attributes', ['id', 'deployable_id', 'key', 'value']
        )

    def attach_handles(self):
        return self.db.rows(
            'attach_handles',
            [
                'id',
                'uuid',
                'deployable_id',
                'cpid_id',
                'attach_type',
                'attach_info',
                'in_use',
            ],
        )

    def snapshot(self):
        """Every row Cyborg keeps for the host (timestamps included)."""
        tables = {}
        for table in _CYBORG_TABLES:
            tables[table] = self.db.rows(table, ['*'])
        return tables

    def placement_tree(self):
        return self.placement.tree(self.compute_node)

    # The consumer side, as Nova drives it.

    def create_device_profile(self, name, group):
        from cyborg import objects

        profile = objects.DeviceProfile(
            self.context, name=name, groups=[group]
        )
        return self.conductor_api.device_profile_create(self.context, profile)

    def bind(self, profile, instance_uuid):
        """What Nova does for one instance asking for ``profile``:
        create the ARQ, ask Placement for a candidate, claim it, then
        bind the ARQ to the chosen provider. Returns (arq uuid, provider
        uuid)."""
        from cyborg import objects

        arq = objects.ARQ(
            self.context,
            device_profile_name=profile.name,
            device_profile_group_id=0,
            project_id=self.context.project_id,
        )
        extarq = self.conductor_api.arq_create(
            self.context,
            objects.ExtARQ(self.context, arq=arq),
            profile.id,
        )
        arq_uuid = extarq.arq.uuid
        group = profile.groups[0]
        resources = ','.join(
            f'{k.removeprefix("resources:")}:{v}'
            for k, v in group.items()
            if k.startswith('resources:')
        )
        required = ','.join(
            k.removeprefix('trait:')
            for k, v in group.items()
            if k.startswith('trait:') and v == 'required'
        )
        query = f'resources={resources}'
        if required:
            query += f'&required={required}'
        rp_uuid = self.placement.claim(
            query,
            instance_uuid,
            self.context.project_id or 'demo',
            self.context.user_id or 'demo',
        )
        patch = {
            arq_uuid: [
                {'path': '/hostname', 'op': 'add', 'value': self.hostname},
                {'path': '/device_rp_uuid', 'op': 'add', 'value': rp_uuid},
                {
                    'path': '/instance_uuid',
                    'op': 'add',
                    'value': instance_uuid,
                },
            ]
        }
        valid_fields = {
            arq_uuid: {
                'hostname': self.hostname,
                'device_rp_uuid': rp_uuid,
                'instance_uuid': instance_uuid,
                'project_id': self.context.project_id,
            }
        }
        # Cyborg tells Nova the binding is resolved through Nova's API:
        # Nova is not here, so this view takes the notification.
        with mock.patch(
            'cyborg.common.nova_client.NovaAPI', autospec=True
        ) as nova:
            self.conductor_api.arq_apply_patch(
                self.context, patch, valid_fields
            )
        self.nova_notifications.extend(
            c.args for c in nova.return_value.notify_binding.call_args_list
        )
        return arq_uuid, rp_uuid

    def arq(self, arq_uuid):
        from cyborg import objects

        return objects.ExtARQ.get(self.context, arq_uuid)

    def unbind(self, instance_uuid):
        """What Nova does when the instance goes: delete its ARQs (the
        API unbinds them) and its allocations."""
        from cyborg import objects

        objects.ExtARQ.delete_by_instance(self.context, instance_uuid)
        self.placement._call('DELETE', f'/allocations/{instance_uuid}')

    def delete_arqs(self, arq_uuids):
        """What the owner or an admin does: delete ARQs by uuid (the API
        unbinds them first)."""
        from cyborg import objects

        objects.ExtARQ.delete_by_uuid(self.context, arq_uuids)


class _OtherAgent:
    def __init__(self, host, hostname, agent):
        self._host = host
        self.hostname = hostname
        self.agent = agent

    def discover(self):
        with self._host._as_host(self.hostname):
            self.agent.update_available_resource(self._host.context)


class _Recorder:
    """An RPC endpoint that notes each call, then hands it to the real
    manager (oslo.messaging dispatches by method name)."""

    def __init__(self, manager, calls):
        self._manager = manager
        self._calls = calls
        self.target = manager.target

    def __getattr__(self, name):
        method = getattr(self._manager, name)
        if not callable(method) or name.startswith('_'):
            return method

        def call(*args, **kwargs):
            self._calls.append(name)
            return method(*args, **kwargs)

        return call


# -- What a cycle costs the conductor ----------------------------------------

STATEMENT_KINDS = ('SELECT', 'SELECT FOR UPDATE', 'INSERT', 'UPDATE', 'DELETE')


class Cost:
    """What some work cost Cyborg's database and Placement: statements by
    kind (``STATEMENT_KINDS``, anything else under its first word),
    transactions (``writer``: committed; ``read``: ended without a commit,
    as oslo.db ends a reader, or a writer that failed), Cyborg's Placement
    requests by method, and the wall time."""

    def __init__(self):
        self.statements = dict.fromkeys(STATEMENT_KINDS, 0)
        self.transactions = {'read': 0, 'writer': 0}
        self.placement = {}
        self.seconds = 0.0

    @property
    def total_statements(self):
        return sum(self.statements.values())

    def as_dict(self):
        return {
            'statements': dict(self.statements),
            'transactions': dict(self.transactions),
            'placement': dict(self.placement),
            'seconds': self.seconds,
        }


# Counted as transactions, not statements (oslo.db sends BEGIN on sqlite).
_TRANSACTION_CONTROL = ('BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE')


def _statement_kind(statement, context):
    kind = statement.lstrip().split(None, 1)[0].upper()
    if kind == 'SELECT':
        # sqlite renders no FOR UPDATE: ask the statement, not its SQL.
        compiled = getattr(context, 'compiled', None)
        select = getattr(compiled, 'statement', None)
        if (
            getattr(select, '_for_update_arg', None) is not None
            or 'FOR UPDATE' in statement.upper()
        ):
            return 'SELECT FOR UPDATE'
    return kind


@contextlib.contextmanager
def counting(host):
    """Count what the block costs ``host``'s Cyborg database (its engine's
    events) and Placement (the requests Cyborg sent); yields a
    :class:`Cost`, filled in when the block ends."""
    import sqlalchemy

    cost = Cost()
    engine = host.db.engine
    begun = []

    def on_statement(conn, cursor, statement, params, context, many):
        kind = _statement_kind(statement, context)
        if kind not in _TRANSACTION_CONTROL:
            cost.statements[kind] = cost.statements.get(kind, 0) + 1

    def on_begin(conn):
        begun.append(conn)

    def on_commit(conn):
        cost.transactions['writer'] += 1

    listeners = (
        ('before_cursor_execute', on_statement),
        ('begin', on_begin),
        ('commit', on_commit),
    )
    for name, listener in listeners:
        sqlalchemy.event.listen(engine, name, listener)
    requests = len(host.placement.requests)
    started = time.perf_counter()
    try:
        yield cost
    finally:
        cost.seconds = time.perf_counter() - started
        for name, listener in listeners:
            sqlalchemy.event.remove(engine, name, listener)
    cost.transactions['read'] = len(begun) - cost.transactions['writer']
    for agent, method, _ in host.placement.requests[requests:]:
        if agent != OPERATOR_AGENT:
            cost.placement[method] = cost.placement.get(method, 0) + 1


if __name__ == '__main__':
    # tox -e integration prints which database the tests will use.
    print(backend().describe())
