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

"""Properties of the pure core under hostile input (hypothesis).

The ndctl reader, the label grammar and the planner must, for any input,
give either a correct result or our typed error (a ``PmemError``) with a
one-line message: never another exception, which the agent would log as
a traceback and the CLI would print as one. Inputs are arbitrary JSON
values and mutated real ndctl outputs (tests/fixtures/ndctl).

Each test records how many examples it ran in the file named by
``CYBORG_PMEM_EXAMPLES_LOG`` (tox sets it and prints the total with
tools/hypothesis-examples.py). The profile (budget, derandomization) is
set in tests/unit/__init__.py.
"""

import dataclasses
import functools
import glob
import json
import os
import string

from hypothesis import given
from hypothesis import strategies as st

from cyborg_pmem import exception
from cyborg_pmem import inventory
from cyborg_pmem import labels
from cyborg_pmem import planner
from tests.unit import base

EXAMPLES_LOG = 'CYBORG_PMEM_EXAMPLES_LOG'


def _real_listings():
    listings = {}
    for path in sorted(glob.glob(base.fixture_path('*.json'))):
        with open(path) as f:
            text = f.read()
        if text.strip():
            listings[os.path.basename(path)] = json.loads(text)
    return listings


REAL = _real_listings()

# Keys ndctl prints (and we read), so arbitrary objects look like ndctl's
# often enough to get past the first check.
NDCTL_KEYS = (
    'dev',
    'name',
    'mode',
    'size',
    'state',
    'uuid',
    'align',
    'chardev',
    'daxregion',
    'devices',
    'numa_node',
    'iset_id',
    'mappings',
    'dimm',
    'position',
    'id',
    'health',
    'buses',
    'dimms',
    'regions',
    'namespaces',
)
NUMBER_KEYS = frozenset({'size', 'iset_id', 'numa_node', 'align', 'position'})
DEVS = st.sampled_from(
    [
        'namespace0.0',
        'namespace0.1',
        'namespace1.0',
        'region0',
        'region1',
        'region10',
        'nmem0',
        'nmem1',
        'ndbus0',
        'namespace',
        'regionX',
        'dax0.0',
    ]
)
# Any character, lone surrogates included (JSON can escape them).
ANY_TEXT = st.text(st.characters(codec=None), max_size=20)
HUGE_NUMBERS = st.sampled_from(
    [
        2**63,
        -(2**63),
        2**64 + 1,
        10**300,
        -(10**300),
        1e308,
        -1,
        0,
        '9' * 5000,
        '9' * 400 + '.5 EiB',
        '0x' + 'f' * 64,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | ANY_TEXT
    | DEVS
    | HUGE_NUMBERS
    | st.sampled_from(['devdax', 'fsdax', 'raw', 'disabled', 'system-ram'])
    | st.sampled_from(['1.50 GiB (1.61 GB)', '0x1000', ' 42 ', '', '1e5'])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(NDCTL_KEYS) | ANY_TEXT, children, max_size=8
        )
    ),
    max_leaves=40,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _get(doc, path):
    for step in path:
        doc = doc[step]
    return doc


def _replace(doc, path, new):
    """``doc`` with the value at ``path`` replaced (a copy)."""
    if not path:
        return new
    doc = json.loads(json.dumps(doc))
    parent = _get(doc, path[:-1])
    parent[path[-1]] = new
    return doc


def _remove(doc, path):
    doc = json.loads(json.dumps(doc))
    parent = _get(doc, path[:-1])
    del parent[path[-1]]
    return doc


# Rewritings ndctl itself may print for a number: they must not change
# what we read.
def _number_as_text(value, choice):
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    return [str(value), hex(value), f' {value} '][choice]


@st.composite
def mutated_listing(draw, hostile=True):
    """A real ndctl output, mutated.

    With ``hostile``, anything goes: fields removed, values of other
    types, huge numbers, unicode, nesting changed. Without, only
    rewritings that keep the meaning (numbers as decimal or hex strings,
    reordered lists, the whole listing boxed in a bus), and the name of
    the fixture is returned too.
    """
    name = draw(st.sampled_from(sorted(REAL)))
    doc = REAL[name]
    for _ in range(draw(st.integers(1, 5))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        target = _get(doc, path)
        if not hostile:
            kind = draw(st.sampled_from(['number', 'shuffle', 'box']))
            if kind == 'number' and path and path[-1] in NUMBER_KEYS:
                new = _number_as_text(target, draw(st.integers(0, 2)))
                doc = _replace(doc, path, new)
            elif kind == 'shuffle' and isinstance(target, list):
                shuffled = list(target)
                draw(st.randoms(use_true_random=False)).shuffle(shuffled)
                doc = _replace(doc, path, shuffled)
            elif kind == 'box':
                doc = {'buses': [{'dev': 'ndbus0', 'regions': [doc]}]}
            continue
        kind = draw(
            st.sampled_from(
                [
                    'remove',
                    'replace',
                    'number',
                    'huge',
                    'wrap',
                    'unwrap',
                    'unicode',
                    'box',
                    'duplicate',
                ]
            )
        )
        if kind == 'remove' and path:
            doc = _remove(doc, path)
        elif kind == 'replace':
            doc = _replace(doc, path, draw(JSON_VALUES))
        elif kind == 'number':
            new = _number_as_text(target, draw(st.integers(0, 2)))
            doc = _replace(doc, path, new)
        elif kind == 'huge':
            doc = _replace(doc, path, draw(HUGE_NUMBERS))
        elif kind == 'wrap':
            doc = _replace(doc, path, [target])
        elif kind == 'unwrap' and isinstance(target, list) and target:
            doc = _replace(doc, path, target[0])
        elif kind == 'unicode':
            doc = _replace(doc, path, draw(ANY_TEXT))
        elif kind == 'box':
            doc = {'buses': [{'dev': 'ndbus0', 'regions': [doc]}]}
        elif kind == 'duplicate' and isinstance(target, list) and target:
            doc = _replace(doc, path, [*target, target[0]])
    return doc if hostile else (name, doc)


def _dumps(doc):
    # ensure_ascii keeps lone surrogates as \\udXXX escapes, as a hostile
    # file would carry them.
    return json.dumps(doc)


# The label grammar.
LABEL_CHARS = string.ascii_letters + string.digits + '_-. '
NAME_CHARS = string.ascii_letters + string.digits + '_-.+ '
LABEL = st.text(LABEL_CHARS, min_size=1, max_size=16).filter(
    lambda s: s.strip() == s and any(c.isalnum() for c in s)
)
NAME = st.text(NAME_CHARS, min_size=1, max_size=63).filter(
    lambda s: s.strip() == s
)


@st.composite
def valid_config(draw):
    """A ``{label: (name, ...)}`` the grammar must accept."""
    result = {}
    classes = set()
    seen_names = set()
    for label in draw(st.lists(LABEL, max_size=5, unique=True)):
        rc = labels.resource_class(label)
        if rc in classes:
            continue
        names = [
            n
            for n in draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
            if n not in seen_names
        ]
        if not names:
            continue
        classes.add(rc)
        seen_names.update(names)
        result[label] = tuple(names)
    return result


def _format_config(config, pad):
    return ','.join(
        f'{pad}{label}{pad}:{pad}' + '|'.join(names)
        for label, names in config.items()
    )


# Inventories for the planner, built directly: small pools make name
# clashes, shared interleave-set cookies and every refusal reason likely.
NS_NAMES = [f'ns{r}{n}' for r in range(4) for n in range(4)] + [
    'n' * 63,
    'VMW-PMemNS-1',
]


@st.composite
def _namespaces(draw, r, n):
    # Mostly offerable namespaces, so that plans have devices to check;
    # otherwise any value of every field the planner reads.
    if draw(st.integers(0, 3)) < 3:
        return inventory.Namespace(
            dev=f'namespace{r}.{n}',
            region=f'region{r}',
            mode='devdax',
            # Its own name, or sometimes any: two namespaces may share it.
            name=(
                draw(st.sampled_from(NS_NAMES))
                if draw(st.integers(0, 4)) == 4
                else f'ns{r}{n}'
            ),
            size=draw(st.integers(0, 2**70)),
            uuid=str(draw(st.uuids())),
            align=draw(st.sampled_from([4096, 2**21, 2**30])),
            chardev=f'dax{r}.{n}',
            dax_mode=draw(st.sampled_from([None, 'devdax'])),
            numa_node=draw(st.none() | st.integers(0, 2**31)),
        )
    return inventory.Namespace(
        dev=f'namespace{r}.{n}',
        region=f'region{r}',
        mode=draw(
            st.none() | st.sampled_from(['devdax', 'fsdax', 'raw', 'sector'])
        ),
        name=draw(st.none() | st.sampled_from(NS_NAMES)),
        enabled=draw(st.booleans()),
        size=draw(st.none() | st.integers(0, 2**70)),
        uuid=draw(st.none() | st.uuids().map(str)),
        align=draw(st.none() | st.sampled_from([4096, 2**21])),
        chardev=draw(st.none() | st.just(f'dax{r}.{n}')),
        dax_mode=draw(st.none() | st.sampled_from(['devdax', 'system-ram'])),
        numa_node=draw(st.none() | st.integers(0, 2**31)),
    )


@st.composite
def inventories(draw):
    region_count = draw(st.integers(0, 4))
    dimms = tuple(
        inventory.Dimm(
            dev=f'nmem{i}',
            id=draw(st.none() | st.sampled_from(['8680-56341200', 'bad'])),
        )
        for i in range(3)
    )
    regions = []
    namespaces = []
    for r in range(region_count):
        regions.append(
            inventory.Region(
                dev=f'region{r}',
                size=draw(st.none() | st.integers(0, 2**64)),
                # Few cookies, so that two regions sometimes share one.
                iset_id=draw(
                    st.none() | st.sampled_from([-1, 0, 2**63 - 1, 77, 77])
                ),
                numa_node=draw(st.none() | st.integers(0, 7)),
                # Mostly enabled; ndctl shows none of a disabled region's
                # namespaces, but hostile input may.
                enabled=draw(st.integers(0, 7)) > 0,
                dimms=tuple(
                    draw(
                        st.lists(
                            st.sampled_from([d.dev for d in dimms]),
                            max_size=3,
                            unique=True,
                        )
                    )
                ),
            )
        )
        for n in range(draw(st.integers(0, 4))):
            namespaces.append(draw(_namespaces(r, n)))
    return inventory.Inventory(
        dimms=dimms, regions=tuple(regions), namespaces=tuple(namespaces)
    )


PLANNER_LABELS = st.dictionaries(
    st.sampled_from(['SMALL', 'LARGE', 'L' * 16, '6GB']),
    st.lists(st.sampled_from(NS_NAMES + ['missing']), min_size=1, max_size=8),
    max_size=3,
).map(
    # The grammar forbids a name under two labels; keep the first.
    lambda raw: _unique_names(raw)
)


@st.composite
def planner_cases(draw):
    """An inventory and a configuration that names most of it."""
    inv = draw(inventories())
    present = sorted({ns.name for ns in inv.namespaces if ns.name})
    pool = present + ['missing', 'ns33']
    raw = {}
    for label in draw(
        st.lists(
            st.sampled_from(['SMALL', 'LARGE', 'L' * 16, '6GB']),
            min_size=1,
            max_size=3,
            unique=True,
        )
    ):
        raw[label] = draw(st.lists(st.sampled_from(pool), min_size=1))
    return inv, _unique_names(raw)


def _unique_names(raw):
    seen = set()
    result = {}
    for label, names in raw.items():
        kept = tuple(n for n in dict.fromkeys(names) if n not in seen)
        seen.update(kept)
        if kept:
            result[label] = kept
    return result


HOSTNAMES = st.one_of(
    st.from_regex(r'\A[a-z][a-z0-9-]{0,30}(\.[a-z0-9-]{1,10})?\Z'),
    # Up to DNS's 253: long enough to overflow Placement's provider names.
    st.integers(140, 253).map(lambda length: 'h' * length),
)


def counted(test):
    """Count the examples hypothesis runs through ``test``."""

    @functools.wraps(test)
    def wrapper(self, *args, **kwargs):
        self.examples += 1
        return test(self, *args, **kwargs)

    return wrapper


class PropertyTestCase(base.TestCase):
    def setUp(self):
        super().setUp()
        self.examples = 0
        self.addCleanup(self._record_examples)

    def _record_examples(self):
        path = os.environ.get(EXAMPLES_LOG)
        if path:
            # One short line per test, appended: safe across the stestr
            # workers.
            with open(path, 'a') as log:
                log.write(f'{self.id()} {self.examples}\n')

    def assertOneLineTypedError(self, err):
        self.assertIsInstance(err, exception.PmemError)
        self.assertNotIn('\n', str(err))
        self.assertTrue(str(err))

    def assertSaneInventory(self, inv):
        self.assertIsInstance(inv, inventory.Inventory)
        region_devs = [r.dev for r in inv.regions]
        self.assertEqual(len(region_devs), len(set(region_devs)))
        ns_devs = [n.dev for n in inv.namespaces]
        self.assertEqual(len(ns_devs), len(set(ns_devs)))
        for dimm in inv.dimms:
            self.assertTrue(dimm.dev.startswith('nmem'))
        for region in inv.regions:
            self.assertTrue(region.dev.startswith('region'))
            self.assertTrue(all(isinstance(d, str) for d in region.dimms))
            self.assertIn(type(region.iset_id), (int, type(None)))
            self.assertIn(type(region.size), (int, type(None)))
        for ns in inv.namespaces:
            self.assertTrue(ns.dev.startswith('namespace'))
            self.assertIn(ns.region, region_devs)
            self.assertIsInstance(ns.enabled, bool)
            for number in (ns.size, ns.align, ns.numa_node):
                self.assertIn(type(number), (int, type(None)))
            # None where the kernel reports none (-1), else a node.
            self.assertTrue(ns.numa_node is None or ns.numa_node >= 0)
            for text in (ns.name, ns.mode, ns.uuid, ns.chardev, ns.dax_mode):
                if text is not None:
                    # Printable by the CLI on a UTF-8 terminal.
                    text.encode('utf-8')

    def assertPlanInvariants(self, inv, config, hostname, result):
        """What every plan must satisfy, whatever the host shows."""
        self.assertEqual(result, planner.plan(inv, config, hostname))
        by_name = {}
        for ns in inv.namespaces:
            by_name.setdefault(ns.name, []).append(ns)
        configured = sorted(
            (label, name) for label, names in config.items() for name in names
        )
        offered = []
        deployable_names = []
        for device in result.devices:
            self.assertTrue(device.deployables)
            for deployable in device.deployables:
                deployable_names.append(deployable.name)
                self.assertLessEqual(
                    len(deployable.name), planner.MAX_PROVIDER_NAME_LENGTH
                )
                self.assertEqual(
                    labels.resource_class(deployable.label),
                    deployable.resource_class,
                )
                self.assertEqual(
                    len(deployable.attach_handles),
                    deployable.num_accelerators,
                )
                self.assertGreater(deployable.num_accelerators, 0)
                for handle in deployable.attach_handles:
                    offered.append((deployable.label, handle.namespace))
                    self.assertIn(handle.namespace, config[deployable.label])
                    (ns,) = by_name[handle.namespace]
                    self.assertEqual('devdax', ns.mode)
                    self.assertTrue(ns.enabled)
                    self.assertIn(ns.dax_mode, (None, 'devdax'))
                    self.assertTrue(ns.chardev)
                    self.assertEqual(device.region, ns.region)
                    self.assertLessEqual(len(handle.attach_info), 255)
                    info = json.loads(handle.attach_info)
                    self.assertEqual(
                        handle.attach_info,
                        json.dumps(
                            info, sort_keys=True, separators=(',', ':')
                        ),
                    )
                    self.assertEqual(handle.namespace, info['name'])
                    self.assertEqual(deployable.label, info['label'])
                    self.assertEqual('/dev/' + ns.chardev, info['devpath'])
                    self.assertEqual(ns.dev, info['dev'])
        refused = [(r.label, r.name) for r in result.refusals]
        for refusal in result.refusals:
            self.assertNotIn('\n', str(refusal))
        # Every configured name is either offered or refused, once.
        self.assertEqual(configured, sorted(offered + refused))
        # Placement provider names (deployables) and the conductor's
        # device keys must not collide.
        self.assertEqual(len(deployable_names), len(set(deployable_names)))
        cpids = [d.cpid_info for d in result.devices]
        self.assertEqual(len(cpids), len(set(cpids)))


class ReaderPropertiesTest(PropertyTestCase):
    @given(JSON_VALUES)
    @counted
    def test_any_json_value(self, value):
        self._check(_dumps(value))

    @given(mutated_listing())
    @counted
    def test_mutated_real_listings(self, doc):
        self._check(_dumps(doc))

    @given(st.binary(max_size=200) | st.text(st.characters(codec=None)))
    @counted
    def test_any_bytes_or_text(self, data):
        self._check(data)

    @given(mutated_listing(hostile=False))
    @counted
    def test_meaning_preserving_rewrites(self, named_doc):
        name, doc = named_doc
        original = inventory.parse_listing(_dumps(REAL[name]))
        rewritten = inventory.parse_listing(_dumps(doc))
        self.assertEqual(_canonical(original), _canonical(rewritten))

    def _check(self, text):
        try:
            inv = inventory.parse_listing(text)
        except exception.PmemError as err:
            self.assertOneLineTypedError(err)
            self.assertIsInstance(err, exception.NdctlOutputError)
            return
        self.assertSaneInventory(inv)


def _canonical(inv):
    """An inventory regardless of the order ndctl listed things in."""
    return (
        sorted(map(repr, inv.dimms)),
        sorted(map(repr, inv.regions)),
        sorted(map(repr, inv.namespaces)),
    )


class LabelPropertiesTest(PropertyTestCase):
    @given(
        st.text(st.characters(codec=None))
        | st.lists(st.text(st.characters(codec=None), max_size=30))
        | st.lists(
            st.sampled_from(
                ['A:ns0', 'A:ns1', 'B:ns0', 'a:x', ' : ', 'A:b|', 'c:d|e']
            )
        )
    )
    @counted
    def test_any_text(self, entries):
        try:
            result = labels.parse_pmem_namespaces(entries)
        except exception.PmemError as err:
            self.assertOneLineTypedError(err)
            self.assertIsInstance(err, exception.InvalidConfig)
            self.assertTrue(str(err).startswith('[pmem_devices] '))
            return
        self._check_accepted(result)

    @given(valid_config(), st.sampled_from(['', ' ', '  ']), st.booleans())
    @counted
    def test_valid_configs_round_trip(self, config, pad, as_list):
        text = _format_config(config, pad)
        entries = text.split(',') if as_list and text else text
        result = labels.parse_pmem_namespaces(entries)
        self.assertEqual(config, result)
        self._check_accepted(result)

    def _check_accepted(self, result):
        names = [n for group in result.values() for n in group]
        self.assertEqual(len(names), len(set(names)))
        classes = [labels.resource_class(label) for label in result]
        self.assertEqual(len(classes), len(set(classes)))
        for label, group in result.items():
            self.assertTrue(group)
            self.assertLessEqual(len(label), labels.MAX_LABEL_LENGTH)
            for text in (label, *group):
                self.assertTrue(text.isascii() and text.isprintable())
                self.assertFalse(set(text) & set(',|:"\\'))
            for name in group:
                self.assertLessEqual(len(name), labels.MAX_NAME_LENGTH)
        # What was accepted, written back, reads the same.
        self.assertEqual(
            result, labels.parse_pmem_namespaces(_format_config(result, ''))
        )


class PlannerPropertiesTest(PropertyTestCase):
    @given(planner_cases(), HOSTNAMES, st.randoms())
    @counted
    def test_invariants(self, case, hostname, rnd):
        inv, config = case
        configured = sum(len(names) for names in config.values())
        try:
            result = planner.plan(inv, config, hostname)
        except exception.NvdimmStackDown as err:
            self.assertOneLineTypedError(err)
            self.assertTrue(configured)
            self.assertFalse([r for r in inv.regions if r.enabled])
            return
        except exception.HostNameTooLong as err:
            self.assertOneLineTypedError(err)
            # Only because of the host: with a short one, the same
            # inventory plans, and some name grows past the limit.
            short = planner.plan(inv, config, 'h')
            longest = max(
                len(dep.name) - 1
                for device in short.devices
                for dep in device.deployables
            )
            self.assertGreater(
                len(hostname) + longest, planner.MAX_PROVIDER_NAME_LENGTH
            )
            return
        self.assertPlanInvariants(inv, config, hostname, result)
        # ndctl's output order is not sorted: it must not matter.
        shuffled = dataclasses.replace(
            inv,
            regions=tuple(rnd.sample(inv.regions, len(inv.regions))),
            namespaces=tuple(rnd.sample(inv.namespaces, len(inv.namespaces))),
        )
        self.assertEqual(result, planner.plan(shuffled, config, hostname))

    @given(mutated_listing(), PLANNER_LABELS, HOSTNAMES)
    @counted
    def test_mutated_real_listings_end_to_end(self, doc, config, hostname):
        # Parse then plan, as discover() does.
        try:
            inv = inventory.parse_listing(_dumps(doc))
            result = planner.plan(inv, config, hostname)
        except exception.PmemError as err:
            self.assertOneLineTypedError(err)
            return
        self.assertPlanInvariants(inv, config, hostname, result)
