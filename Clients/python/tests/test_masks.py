"""Allowed-token masks over the wire (docs/PROTOCOL.md, "Masks"): the header's mask flag and a mask
frame after the logits of DECODE, PROBS, STEP and BATCH STEP."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import raw_dealer
from logitd import BATCH_STEP, DECODE, DESCRIPTOR, HELLO, MASK_FOLLOWS, Client, LogitdError, header
from test_sessions import toy_logits

VOCAB = 50  # not a multiple of 32: the last mask word is partial


def pack(allowed: np.ndarray) -> np.ndarray:
    """Boolean rows (rows, V) → uint32 words (rows, ceil(V/32)), bit j of word w = token 32w + j,
    as llguidance writes them; the bits past V are set, since the daemon must ignore them."""
    allowed = np.atleast_2d(allowed)
    rows, vocab = allowed.shape
    words = (vocab + 31) // 32
    padded = np.ones((rows, words * 32), dtype=bool)
    padded[:, :vocab] = allowed
    bits = padded.reshape(rows, words, 32).astype(np.uint64) << np.arange(32, dtype=np.uint64)
    return bits.sum(axis=2).astype(np.uint32)


def constrained_logprobs(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """float64 log-softmax of the row with -inf wherever the mask disallows."""
    x = np.where(allowed, logits.astype(np.float64), -np.inf)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def random_masks(rng, rows: int, vocab: int = VOCAB) -> np.ndarray:
    masks = rng.random((rows, vocab)) < 0.3
    masks[np.arange(rows), rng.integers(0, vocab, rows)] = True  # at least one token each
    return masks


def as_read(logits: np.ndarray, dtype: str) -> np.ndarray:
    """The float32 values the daemon reads from `logits` sent as `dtype`."""
    return {"f32": logits, "f16": logits.astype(np.float16).astype(np.float32),
            "bf16": (logits.view(np.uint32) + 0x7FFF + ((logits.view(np.uint32) >> 16) & 1) & 0xFFFF0000).view(np.float32)}[dtype]


MASK_KINDS = ["single", "all but one", "ranked last", "random"]


def property_mask(rng, kind: str, logits: np.ndarray) -> np.ndarray:
    """One mask row of `kind` for a row of logits (V = 50: the last word is partial)."""
    allowed = np.zeros(VOCAB, dtype=bool)
    if kind == "single":
        allowed[rng.integers(VOCAB)] = True
    elif kind == "all but one":
        allowed[:] = True
        allowed[int(np.argmax(logits))] = False
    elif kind == "ranked last":
        allowed[np.argsort(logits, kind="stable")[:3]] = True
    else:
        allowed = random_masks(rng, 1)[0]
    return allowed


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16", "sparse"])
@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_masked_steps_never_choose_a_disallowed_token_and_report_the_constrained_logprob(daemon, dtype, strategy):
    """Property over random masks of every kind, per row: the token is allowed, and its
    log-probability (beam: the score's increment) is a float64 reference's over the constrained row."""
    rng = np.random.default_rng(["greedy", "sample", "beam"].index(strategy) * 10 + ["f32", "f16", "bf16", "sparse"].index(dtype))
    temperature = 0.7
    parameters = dict(greedy=dict(strategy="greedy", n=3), sample=dict(strategy="sample", n=4, seed=3, temperature=temperature),
                      beam=dict(strategy="beam", beam_width=3))[strategy]
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, max_new_tokens=6, **parameters)
        steps = 0
        while not session.done:
            rows = session.rows_expected
            logits = rng.normal(0, 3, size=(rows, VOCAB)).astype(np.float32)
            kinds = [MASK_KINDS[(steps + row) % len(MASK_KINDS)] for row in range(rows)]
            allowed = np.stack([property_mask(rng, kind, logits[row]) for row, kind in enumerate(kinds)])
            if dtype == "sparse":
                k = 20  # the top 20 candidates plus the three the logits rank last, shuffled
                ids = np.stack([rng.permutation(np.concatenate([np.argsort(-r)[:k - 3], np.argsort(r)[:3]])) for r in logits])
                candidates = np.zeros((rows, VOCAB), dtype=bool)
                np.put_along_axis(candidates, ids, True, axis=1)
                for row in range(rows):  # a mask allowing no candidate is ALL_MASKED: allow one
                    if not (allowed[row] & candidates[row]).any():
                        allowed[row, ids[row, rng.integers(k)]] = True
                values = np.take_along_axis(logits, ids, axis=1)
                read = np.full((rows, VOCAB), -np.inf, dtype=np.float32)
                np.put_along_axis(read, ids, values, axis=1)
                result = session.step_sparse(ids, values, mask=pack(allowed))
            else:
                read = as_read(logits, dtype)
                result = session.step(logits, dtype=dtype, mask=pack(allowed))
                candidates = np.ones_like(allowed)
            scale = temperature if strategy == "sample" else 1.0
            references = [constrained_logprobs(read[row] / scale, allowed[row] & candidates[row]) for row in range(rows)]
            if strategy == "beam":
                parents = [0.0] if steps == 0 else previous
                for beam in result.beams:
                    assert allowed[beam["parent"], beam["token"]] and candidates[beam["parent"], beam["token"]]
                    increment = references[beam["parent"]][beam["token"]]
                    assert beam["score"] == pytest.approx(parents[beam["parent"]] + increment, abs=1e-4)
                previous = [beam["score"] for beam in result.beams]
            else:
                for row, record in enumerate(result.tokens):
                    token = record["token"]
                    assert allowed[row, token] and candidates[row, token], (kinds[row], token)
                    assert record["logprob"] == pytest.approx(references[row][token], abs=1e-4)
                    if strategy == "greedy":
                        assert token == int(np.argmax(references[row]))
            steps += 1
        assert steps == 6


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_decode_chooses_the_best_allowed_token_with_the_constrained_logprob(daemon, dtype):
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(6, VOCAB)).astype(np.float32)
    allowed = random_masks(rng, 6)
    allowed[0] = False
    allowed[0, int(np.argmin(logits[0]))] = True  # only the token the logits rank last
    with Client(daemon.endpoint) as client:
        tokens, logprobs = client.decode(logits, dtype=dtype, mask=pack(allowed))
    read = as_read(logits, dtype)
    for row in range(6):
        reference = constrained_logprobs(read[row], allowed[row])
        assert tokens[row] == int(np.argmax(reference))
        assert allowed[row, tokens[row]]
        assert logprobs[row] == pytest.approx(reference[tokens[row]], abs=1e-5)


def test_one_mask_row_applies_to_every_row(daemon):
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, size=(4, VOCAB)).astype(np.float32)
    allowed = np.zeros(VOCAB, dtype=bool)
    allowed[[3, 17, 40]] = True
    with Client(daemon.endpoint) as client:
        tokens, _ = client.decode(logits, mask=pack(allowed)[0])
        probabilities = client.probs(logits, mask=pack(allowed)[0])
    assert set(tokens.tolist()) <= {3, 17, 40}
    assert np.all(probabilities[:, ~allowed] == 0)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-6)


def test_masked_sampling_never_draws_a_disallowed_token_and_matches_the_constrained_distribution(daemon):
    logits = toy_logits([4, 2])
    allowed = np.zeros(VOCAB, dtype=bool)
    allowed[[1, 5, 9, 33, 49]] = True
    expected = np.exp(constrained_logprobs(logits, allowed))
    counts = np.zeros(VOCAB)
    with Client(daemon.endpoint) as client:
        draws = 20_000
        per_session = 250
        for seed in range(draws // per_session):
            session = client.open(vocab_size=VOCAB, strategy="sample", seed=seed, n=per_session, max_new_tokens=1)
            result = session.step(np.repeat(logits[None, :], per_session, axis=0), mask=pack(allowed)[0])
            for record in result.tokens:
                counts[record["token"]] += 1
    assert counts[~allowed].sum() == 0
    # Chi-square over the allowed tokens, 4 degrees of freedom: p > 1e-3 means statistic < 18.47.
    observed, wanted = counts[allowed], draws * expected[allowed]
    statistic = (((observed - wanted) ** 2) / wanted).sum()
    assert statistic < 18.47, (observed, wanted)


def test_beam_search_and_sparse_rows_follow_their_masks(daemon):
    rng = np.random.default_rng(3)
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="beam", beam_width=3, max_new_tokens=4, eos_token_ids=[0])
        while not session.done:
            rows = np.stack([toy_logits(prefix) for prefix in session.live_prefixes])
            allowed = random_masks(rng, len(rows))
            result = session.step(rows, mask=pack(allowed))
            for beam in result.beams:
                assert allowed[beam["parent"], beam["token"]]
        sparse = client.open(vocab_size=VOCAB, strategy="greedy", max_new_tokens=1)
        tokens = np.array([[2, 7, 11, 30]])
        values = np.array([[9.0, 1.0, 0.5, 3.0]], dtype=np.float32)
        allowed = np.zeros(VOCAB, dtype=bool)
        allowed[[11, 30]] = True
        result = sparse.step_sparse(tokens, values, mask=pack(allowed))
        assert result.tokens[0]["token"] == 30
        row = np.full(VOCAB, -np.inf)
        row[tokens[0]] = values[0]
        assert result.tokens[0]["logprob"] == pytest.approx(constrained_logprobs(row, allowed)[30], abs=1e-5)


def test_a_mask_allowing_nothing_names_the_row_and_changes_nothing(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", seed=5, n=2, max_new_tokens=3)
        rows = np.stack([toy_logits([]), toy_logits([])])
        allowed = np.ones((2, VOCAB), dtype=bool)
        allowed[1] = False
        with pytest.raises(LogitdError) as refused:
            session.step(rows, mask=pack(allowed))
        assert refused.value.name == "ALL_MASKED" and "row 1" in str(refused.value)
        assert session.next_step == 0
        result = session.step(rows)  # the same step, now unmasked, is accepted
        assert result.step == 0


def test_malformed_masks_get_named_errors(daemon):
    logits = np.zeros((2, VOCAB), dtype=np.float32)
    with Client(daemon.endpoint) as client:
        with pytest.raises(LogitdError) as wrong_size:
            client.decode(logits, mask=np.zeros((2, 3), dtype=np.uint32))
        assert wrong_size.value.name == "BAD_SHAPE" and "16 (or one mask row for all: 8)" in str(wrong_size.value)
        session = client.open(vocab_size=VOCAB, max_new_tokens=2)
        with pytest.raises(LogitdError) as step_size:
            session.step(logits[:1], mask=np.zeros(3, dtype=np.uint32))
        assert step_size.value.name == "BAD_SHAPE"
        assert session.step(logits[:1]).step == 0
    descriptor = DESCRIPTOR.pack(1, 0, 0, 1, VOCAB)
    with raw_dealer(daemon.endpoint) as sock:
        # The flag without the mask frame, and the flag on a message that takes no mask.
        sock.send_multipart([header(DECODE, 7, MASK_FOLLOWS), descriptor, b"", logits[0].tobytes()])
        reply = sock.recv_multipart()
        assert struct.unpack_from("<I", reply[1])[0] == 6  # BAD_FRAME_COUNT
        sock.send_multipart([header(HELLO, 8, MASK_FOLLOWS)])
        reply = sock.recv_multipart()
        assert struct.unpack_from("<I", reply[1])[0] == 5 and b"DECODE, PROBS, STEP, BATCH STEP, VERIFY and BATCH VERIFY" in reply[1]  # UNKNOWN_FLAGS
        sock.send_multipart([header(HELLO, 9, 0x0002)])
        assert struct.unpack_from("<I", sock.recv_multipart()[1])[0] == 5
    with Client(daemon.endpoint) as client:
        assert client.hello()["protocol"] == 1  # and the daemon carries on


def test_the_documented_packing_is_the_layout_the_daemon_reads(daemon):
    from test_protocol_doc import example
    namespace: dict = {}
    exec(example("## Masks"), namespace)
    rng = np.random.default_rng(4)
    allowed = random_masks(rng, 3)
    packed = namespace["pack_mask"](allowed)
    assert packed.shape == (3, 2) and packed.dtype == np.dtype("<u4")
    for row in range(3):
        for token in range(VOCAB):
            assert bool(packed[row, token // 32] >> (token % 32) & 1) == allowed[row, token]
    logits = rng.normal(0, 3, size=(3, VOCAB)).astype(np.float32)
    with Client(daemon.endpoint) as client:
        tokens, _ = client.decode(logits, mask=packed)
    assert all(allowed[row, tokens[row]] for row in range(3))


def test_batch_step_masks_each_entrys_rows_and_refuses_only_the_entry_that_masks_everything(daemon):
    rng = np.random.default_rng(6)
    with Client(daemon.endpoint) as client:
        greedy = client.open(vocab_size=VOCAB, strategy="greedy", n=2, max_new_tokens=3)
        sampled = client.open(vocab_size=VOCAB, strategy="sample", seed=11, n=3, max_new_tokens=3)
        beam = client.open(vocab_size=VOCAB, strategy="beam", beam_width=2, max_new_tokens=3, eos_token_ids=[0])
        plain = client.open(vocab_size=VOCAB, strategy="greedy", max_new_tokens=3)
        # Twins of the masked sessions, stepped alone with the same rows and masks: a batch changes nothing.
        twins = [client.open(vocab_size=VOCAB, strategy="greedy", n=2, max_new_tokens=3),
                 client.open(vocab_size=VOCAB, strategy="sample", seed=11, n=3, max_new_tokens=3),
                 client.open(vocab_size=VOCAB, strategy="beam", beam_width=2, max_new_tokens=3, eos_token_ids=[0])]
        for step in range(2):
            rows = [rng.normal(0, 3, size=(s.rows_expected, VOCAB)).astype(np.float32) for s in (greedy, sampled, beam, plain)]
            allowed = [random_masks(rng, len(r)) for r in rows[:3]]
            masks = [pack(allowed[0]), pack(allowed[1][0])[0], pack(allowed[2])]  # per row, one for all, per beam
            results = client.batch_step([(greedy, rows[0], masks[0]), (sampled, rows[1], masks[1]),
                                         (beam, rows[2], masks[2]), (plain, rows[3])])
            alone = [twin.step(r, mask=m) for twin, r, m in zip(twins, rows, masks)]
            for record, reference in zip(results[0].tokens, alone[0].tokens):
                assert allowed[0][record["sequence"], record["token"]] and record == reference
            assert all(allowed[1][0][record["token"]] for record in results[1].tokens)
            assert results[1].tokens == alone[1].tokens
            assert all(allowed[2][b["parent"], b["token"]] for b in results[2].beams)
            assert results[2].beams == alone[2].beams
            assert results[3].tokens[0]["token"] == int(np.argmax(rows[3][0]))  # no mask: every token allowed
        # An entry whose mask allows nothing is refused alone, naming its row; its session is unchanged.
        rows = [rng.normal(0, 3, size=(s.rows_expected, VOCAB)).astype(np.float32) for s in (greedy, plain)]
        nothing = np.zeros((greedy.rows_expected, VOCAB), dtype=bool)
        nothing[0, 5] = True
        before = greedy.next_step
        refused, accepted = client.batch_step([(greedy, rows[0], pack(nothing)), (plain, rows[1])])
        assert isinstance(refused, LogitdError) and refused.name == "ALL_MASKED" and "row 1" in refused.message
        assert greedy.next_step == before and not isinstance(accepted, LogitdError)


def test_malformed_batch_masks_refuse_the_whole_message(daemon):
    logits = np.zeros((3, VOCAB), dtype=np.float32)
    with Client(daemon.endpoint) as client:
        a = client.open(vocab_size=VOCAB, n=2, max_new_tokens=2)
        b = client.open(vocab_size=VOCAB, max_new_tokens=2)
        table = struct.pack("<BBHIII", 1, 0, 0, 2, VOCAB, 0) + struct.pack("<QII", a.id, 0, 2) + struct.pack("<QII", b.id, 0, 1)
        with raw_dealer(daemon.endpoint) as sock:
            for request_id, frames, code, text in [
                (1, [np.zeros((2, 2), np.uint32).tobytes()], 8, b"3 rows \xc3\x97 2 words \xc3\x97 4 bytes is 24 (or one mask row for all: 8)"),
                (2, [], 6, b"4 frames (header, batch table, logits, mask)"),
            ]:
                sock.send_multipart([header(BATCH_STEP, request_id, MASK_FOLLOWS), table, logits.tobytes(), *frames])
                reply = sock.recv_multipart()
                assert reply[0][5] == 0xFF and struct.unpack_from("<I", reply[1])[0] == code and text in reply[1], reply[1]
        assert a.step(logits[:2]).step == 0 and b.step(logits[:1]).step == 0  # nothing changed


def test_a_mask_forcing_single_tokens_leaves_fewer_beams_never_fillers(daemon):
    """A grammar that allows one token per step leaves a width-4 beam search one finite
    continuation: the reply has one beam record (no filler beams), the next step takes one row, and
    the result holds only real hypotheses."""
    forced = [7, 3, 12, 0]
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="beam", beam_width=4, num_return=3, max_new_tokens=6, eos_token_ids=[0])
        for token in forced:
            assert session.rows_expected == 1
            allowed = np.zeros(VOCAB, dtype=bool)
            allowed[token] = True
            result = session.step(np.stack([toy_logits(p) for p in session.live_prefixes]), mask=pack(allowed)[0])
            assert len(result.beams) == (0 if token == 0 else 1)
            assert all(np.isfinite(b["score"]) for b in result.beams)
        assert session.done
        hypotheses = session.result["sequences"]
    assert [h["tokens"] for h in hypotheses] == [forced]
    expected = sum(constrained_logprobs(toy_logits(forced[:i]), np.eye(VOCAB, dtype=bool)[t])[t] for i, t in enumerate(forced))
    assert hypotheses[0]["logprob_sum"] == pytest.approx(expected) == 0.0
