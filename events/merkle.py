"""Which stored subtrees an RFC 9162 proof needs: pure planning, no hashing of stored data, no I/O.

The log stores the hash of every *complete, aligned* subtree: leaf ``i`` is node ``(0, i)`` and node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``. Every node of an RFC
9162 tree of any size is either such a subtree or an ephemeral node on its right edge, whose hash is the
right fold of the complete subtrees its range decomposes into (``blocks``). So a proof is read from
O(log n) stored nodes and never recomputes the tree.

A range ``(start, end)`` below is half-open over leaf indices; every range these functions produce starts
at a multiple of its largest block, as RFC 9162's recursion guarantees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from scripts.verify_bundle import node_hash

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # [start, end) of leaf indices


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` >= 2): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def blocks(start: int, end: int) -> list[Node]:
    """The complete subtrees ``[start, end)`` decomposes into, largest (leftmost) first."""
    out: list[Node] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start % (1 << level):
            raise ValueError(f"range [{start}, {end}) is not aligned as an RFC 9162 subtree")
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its blocks' hashes (right fold: node(b1, node(b2, ...)))."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form the inclusion proof of leaf ``index`` in a tree of ``size`` leaves,
    nearest the leaf first (RFC 9162 PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    return list(reversed(path))


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose hashes form the consistency proof from size ``first`` to ``second`` (RFC 9162
    SUBPROOF), in proof order. Empty when ``first`` is 0 or equals ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    path: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                path.append((start, end))
            break
        k = _split(n)
        if m <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start, m, whole = start + k, m - k, False
    return list(reversed(path))


def nodes_for(ranges: Sequence[Range]) -> set[Node]:
    """Every stored node the ranges need."""
    return {node for start, end in ranges for node in blocks(start, end)}


def hashes_for(ranges: Sequence[Range], stored: Callable[[Node], bytes]) -> list[bytes]:
    """The hashes of ``ranges`` from the stored nodes ``stored`` returns."""
    return [fold([stored(node) for node in blocks(start, end)]) for start, end in ranges]
