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

# Deeper than any exported record (the deepest XDM path is about 5 levels): the parts of a path past this
# name something below a scalar, that is nothing, so they are dropped and the tree (walked recursively)
# stays shallow whatever a request or a restored job asks for.
MAX_TREE_DEPTH = 32


def projected_records(spec: BatchSpec, ids: pa.Array) -> pa.Table:
    """The rows a file shows for these profiles, projected as the request asks.

    `identityMap` is always exported whole (it is the profile's key, and what the job's namespace
    counters count), and an event always keeps its `_id`.
    """
    tree = None if spec.projection is None else projection_tree(spec.projection)
    if tree is not None:
        tree["identityMap"] = None
    columns = None if tree is None else [c for c in PROFILE_COLUMNS if c in tree]
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
        else:
            kept = project(column, None if tree is None else tree[name])
        if kept is not None:
            names.append(name)
            arrays.append(kept)
    return pa.Table.from_arrays(arrays, names=names)


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
