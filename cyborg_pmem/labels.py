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

"""The ``pmem_namespaces`` grammar: ``LABEL:NAME|NAME,LABEL:NAME``.

Pure: a sequence of entry strings in, an ordered ``{label: (name, ...)}``
out, or :class:`~cyborg_pmem.exception.InvalidConfig` naming the entry.
"""

import os_traits

from cyborg_pmem import exception

RESOURCE_CLASS_PREFIX = 'CUSTOM_PMEM_NAMESPACE_'
# ndctl stores a namespace name in a 64-byte label field, NUL included.
MAX_NAME_LENGTH = 63
# Cyborg keeps attach_info in a String(255) column; with a 63-character
# name, a 16-character label still leaves room for the other fields of
# the largest realistic namespace (tests/unit/test_planner.py proves it).
MAX_LABEL_LENGTH = 16
# Characters that would break the grammar or bloat attach_info's JSON.
_FORBIDDEN = frozenset(',|:"\\')

OPTION = 'pmem_namespaces'


def resource_class(label):
    """Return the resource class (and trait) name of a label."""
    return os_traits.normalize_name('PMEM_NAMESPACE_' + label)


def _refuse(reason):
    return exception.InvalidConfig(option=OPTION, reason=reason)


def _check_text(kind, text, entry, limit):
    if not text:
        raise _refuse(f'entry {entry!r} has an empty {kind}')
    if len(text) > limit:
        raise _refuse(
            f'entry {entry!r}: {kind} {text!r} is longer than {limit} '
            'characters'
        )
    bad = sorted(
        {
            c
            for c in text
            if c in _FORBIDDEN or not c.isprintable() or not c.isascii()
        }
    )
    if bad:
        raise _refuse(
            f'entry {entry!r}: {kind} {text!r} contains {"".join(bad)!r}; '
            'use printable ASCII without , | : " \\'
        )


def parse_pmem_namespaces(entries):
    """Validate ``pmem_namespaces`` and return ``{label: (name, ...)}``.

    :param entries: the option's value: a list of ``LABEL:NAME|NAME``
        strings (oslo.config has split it on commas), or one string.
    :raises InvalidConfig: naming the first bad entry.
    """
    if isinstance(entries, str):
        entries = entries.split(',') if entries.strip() else []
    labels = {}
    label_of_name = {}
    label_of_class = {}
    for position, raw in enumerate(entries, start=1):
        entry = raw.strip()
        if not entry:
            raise _refuse(f'entry {position} is empty (a stray comma?)')
        if entry.count(':') != 1:
            raise _refuse(
                f'entry {entry!r} must have exactly one ":" '
                '(expected LABEL:NAME|NAME|...)'
            )
        label, _sep, names_text = (
            part.strip() for part in entry.partition(':')
        )
        _check_text('label', label, entry, MAX_LABEL_LENGTH)
        if not any(c.isalnum() for c in label):
            raise _refuse(
                f'entry {entry!r}: label {label!r} has no letter or digit'
            )
        # MAX_LABEL_LENGTH keeps rc far below Placement's 255 characters.
        rc = resource_class(label)
        if label in labels:
            raise _refuse(
                f'label {label!r} appears in two entries; list all its '
                'namespaces in one entry'
            )
        if rc in label_of_class:
            raise _refuse(
                f'labels {label_of_class[rc]!r} and {label!r} both give '
                f'resource class {rc}'
            )
        names = []
        for name in (part.strip() for part in names_text.split('|')):
            _check_text('namespace name', name, entry, MAX_NAME_LENGTH)
            if name in label_of_name:
                where = label_of_name[name]
                raise _refuse(
                    f'namespace {name!r} is listed twice (under {where!r} '
                    f'and {label!r})'
                )
            label_of_name[name] = label
            names.append(name)
        labels[label] = tuple(names)
        label_of_class[rc] = label
    return labels
