"""RFC 9162 proofs planned from stored subtrees agree with the RFC's recursive definitions, and fail when altered.

The reference tree here is built by the RFC's own recursion (``root_of``), independently of the planner.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import merkle
from events.log_keys import LogSigner, SigningKeyError
from scripts.verify_bundle import (
    Checkpoint,
    Unreadable,
    VerifierKey,
    consistency_verifies,
    inclusion_verifies,
    leaf_hash,
    root_of,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(n)]


def _stored(leaves: list[bytes]):
    def node(key: merkle.Node) -> bytes:
        level, index = key
        return root_of(leaves[index << level : (index + 1) << level])

    return node


def _reference_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 PATH(m, D[n]), recursively."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return _reference_path(m, leaves[:k]) + [root_of(leaves[k:])]
    return _reference_path(m - k, leaves[k:]) + [root_of(leaves[:k])]


def _reference_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root_of(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return _reference_subproof(m, leaves[:k], whole) + [root_of(leaves[k:])]
    return _reference_subproof(m - k, leaves[k:], False) + [root_of(leaves[:k])]


def test_known_answer_from_rfc_6962_test_vectors() -> None:
    """The empty tree and the one-leaf tree of the empty string, as certificate-transparency-go's tests give them."""
    assert root_of([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([leaf_hash(b"")]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=130), st.data())
def test_inclusion_proofs_from_stored_subtrees_are_the_rfc_paths_and_verify(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.hashes_for(merkle.inclusion_ranges(m, n), _stored(leaves))
    assert proof == _reference_path(m, leaves)
    root = root_of(leaves)
    assert merkle.hashes_for([(0, n)], _stored(leaves)) == [root]
    assert inclusion_verifies(leaves[m], m, n, proof, root)
    assert not inclusion_verifies(leaves[(m + 1) % n], m, n, proof, root) or n == 1
    if proof:
        broken = list(proof)
        broken[data.draw(st.integers(min_value=0, max_value=len(proof) - 1))] = b"\x00" * 32
        assert not inclusion_verifies(leaves[m], m, n, broken, root)
    assert not inclusion_verifies(leaves[m], n, n, proof, root)  # an index outside the tree


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=130), st.data())
def test_consistency_proofs_are_the_rfc_subproofs_and_catch_a_rewritten_prefix(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(min_value=1, max_value=n))
    proof = merkle.hashes_for(merkle.consistency_ranges(m, n), _stored(leaves))
    assert proof == (_reference_subproof(m, leaves, True) if m < n else [])
    old_root, new_root = root_of(leaves[:m]), root_of(leaves)
    assert consistency_verifies(m, n, old_root, new_root, proof)
    if m < n:
        rewritten = list(leaves)
        rewritten[data.draw(st.integers(min_value=0, max_value=m - 1))] = leaf_hash(b"forged")
        forged_proof = merkle.hashes_for(merkle.consistency_ranges(m, n), _stored(rewritten))
        assert not consistency_verifies(m, n, old_root, root_of(rewritten), forged_proof)


def test_blocks_refuse_a_range_no_rfc_tree_has() -> None:
    assert merkle.blocks(0, 13) == [(3, 0), (2, 2), (0, 12)]
    with pytest.raises(ValueError, match="not aligned"):
        merkle.blocks(3, 7)


def test_a_signed_checkpoint_is_a_c2sp_note_that_verifies_only_with_its_key() -> None:
    signer = LogSigner.generate("log.example/escalations")
    note = signer.sign_checkpoint(5, root_of(_leaves(5)))
    text, _, signature_line = note.partition("\n\n")
    assert text.split("\n") == ["log.example/escalations", "5", base64.b64encode(root_of(_leaves(5))).decode()]
    assert signature_line.startswith("\u2014 log.example/escalations ")
    checkpoint = Checkpoint.parse(note)
    assert (checkpoint.size, checkpoint.root) == (5, root_of(_leaves(5)))
    assert checkpoint.problem_with_signature(VerifierKey.parse(signer.vkey())) is None
    other = LogSigner.generate("log.example/escalations")
    assert "no signature by the key" in (checkpoint.problem_with_signature(other.verifier()) or "")
    altered = Checkpoint.parse(note.replace("\n5\n", "\n6\n"))
    assert "does not verify" in (altered.problem_with_signature(signer.verifier()) or "")
    assert LogSigner.parse(signer.text()).vkey() == signer.vkey()


def test_bad_keys_and_notes_are_refused_with_their_rule() -> None:
    with pytest.raises(SigningKeyError, match="log.key_format"):
        LogSigner.parse("PRIVATE+KEY+name+00000000+AAAA")
    with pytest.raises(SigningKeyError, match="log.key_name"):
        LogSigner.generate("has space")
    with pytest.raises(Unreadable, match="name\\+keyid\\+base64"):
        VerifierKey.parse("not a key")
    with pytest.raises(Unreadable, match="signed note"):
        Checkpoint.parse("origin\n1\nAAAA\n")
