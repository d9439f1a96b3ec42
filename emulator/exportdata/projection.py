"""The request's `fields` applied to Arrow columns: a file's rows, projected as the request asks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.arrays import offsets
from emulator.exportdata.audience import statuses_with
from emulator.exportdata.records import EVENT_COLUMN, PROFILE_COLUMNS, profile_records
from emulator.exportdata.spec import BatchSpec

Tree = dict[str, "Tree | None"]  # a projection: None keeps the whole field
IDENTITY_MAP = "identityMap"
BOOKKEEPING = "_repo"  # kept when a projection names nothing a profile has, so that rows remain

# Deeper than any exported record (the deepest XDM path is about 5 levels): the parts of a path past this
# name something below a scalar, that is nothing, so they are dropped and the tree (walked recursively)
# stays shallow whatever a request or a restored job asks for.
MAX_TREE_DEPTH = 32


def projected_records(spec: BatchSpec, ids: pa.Array) -> pa.Table:
    """The rows a file shows for these profiles, projected exactly as the request's `fields` asks: only the
    named fields (`identityMap` too, only when named). Events always keep their `_id` (the event's key).

    A projection that names no field a profile has still exports one row per profile: those rows keep the
    bookkeeping column `_repo` (`modifyDate`), since a file without columns cannot hold rows.
    """
    tree = None if spec.projection is None else projection_tree(spec.projection)
    columns = None if tree is None else [c for c in PROFILE_COLUMNS if c in tree or c == BOOKKEEPING]
    if columns is not None and spec.events is not None:
        columns.append(EVENT_COLUMN)
    table = profile_records(
        spec.population,
        ids,
        spec.selection.shown,
        evaluated=spec.selection.evaluated,
        events=spec.events,
        columns=columns,
        statuses=statuses_with(spec.selection.rules),
    )
    names: list[str] = []
    arrays: list[pa.Array] = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name == EVENT_COLUMN:
            kept = _project_events(column, spec.event_projection)
        elif tree is not None and name not in tree:
            kept = None  # the bookkeeping column, not asked for
        else:
            kept = project(column, None if tree is None else tree[name])
        if kept is not None:
            names.append(name)
            arrays.append(kept)
    if not names:
        names, arrays = [BOOKKEEPING], [table.column(BOOKKEEPING).combine_chunks()]
    return pa.Table.from_arrays(arrays, names=names)


def exported_namespaces(spec: BatchSpec) -> frozenset[str] | None:
    """The identity namespaces the files' `identityMap` shows: None for all of them; none when the
    projection leaves `identityMap` out (the job's namespace counters count what the files hold)."""
    if spec.projection is None:
        return None
    tree = projection_tree(spec.projection)
    if IDENTITY_MAP not in tree:
        return frozenset()
    subtree = tree[IDENTITY_MAP]
    if subtree is None:
        return None
    # The named namespaces (map keys) are shown when what is named below them exists in an identity.
    empty = profile_records(
        spec.population, pa.array([], pa.uint64()), (), evaluated=False, events=None, columns=[IDENTITY_MAP]
    )
    if project(empty.column(IDENTITY_MAP).combine_chunks(), subtree) is None:
        return frozenset()
    return frozenset(subtree)


def _project_events(column: pa.Array, paths: tuple[str, ...] | None) -> pa.Array:
    if paths is None:
        return column
    tree = projection_tree(paths)
    tree["_id"] = None
    projected = project(column, tree)
    assert projected is not None  # `_id` is always there
    return projected


def projection_tree(paths: Sequence[str]) -> Tree:
    tree: Tree = {}
    for path in paths:
        node = tree
        parts = path.split(".")
        if len(parts) > MAX_TREE_DEPTH:
            # Below any data: it names nothing. Keep the part that can exist, ending in an empty subtree.
            *head, _ = parts[:MAX_TREE_DEPTH]
            _name_nothing_below(tree, head)
            continue
        for depth, part in enumerate(parts):
            if part not in node:
                node[part] = None if depth == len(parts) - 1 else {}
            elif node[part] is None:
                break  # an ancestor is kept whole already
            elif depth == len(parts) - 1:
                node[part] = None
            child = node[part]
            if child is None:
                break
            node = child
    return tree


def _name_nothing_below(tree: Tree, parts: list[str]) -> None:
    node = tree
    for part in parts:
        child = node.setdefault(part, {})
        if child is None:
            return  # an ancestor is kept whole already
        node = child


def project(array: pa.Array, tree: Tree | None) -> pa.Array | None:
    """The parts of `array` that the projection names; None when it names nothing in it."""
    if tree is None:
        return array
    kind = array.type
    if pa.types.is_struct(kind):
        names: list[str] = []
        children: list[pa.Array] = []
        for position in range(kind.num_fields):
            name = kind.field(position).name
            if name in tree:
                child = project(pc.struct_field(array, [position]), tree[name])
                if child is not None:
                    names.append(name)
                    children.append(child)
        if not children:
            return None
        return pa.StructArray.from_arrays(children, names=names, mask=array.is_null())
    if pa.types.is_map(kind):
        # Keys are data (namespaces, segment ids): keep the named ones, and project their values with
        # everything named below any of them.
        values = project(array.items, _merge(tree.values()))
        if values is None:
            return None
        keep = pc.is_in(array.keys, value_set=pa.array(list(tree)))
        kept_before = offsets(keep)
        return pa.MapArray.from_arrays(
            pc.take(kept_before, array.offsets),
            pc.filter(array.keys, keep),
            pc.filter(values, keep),
            mask=array.is_null(),
        )
    if pa.types.is_list(kind):
        values = project(array.values, tree)
        if values is None:
            return None
        return pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null())
    return None  # a path below a scalar names nothing


def _merge(subtrees: Iterable[Tree | None]) -> Tree | None:
    merged: Tree = {}
    for subtree in subtrees:
        if subtree is None:
            return None
        for name, child in subtree.items():
            if name in merged and (merged[name] is None or child is None):
                merged[name] = None
            elif name in merged:
                merged[name] = _merge([merged[name], child])
            else:
                merged[name] = child
    return merged
