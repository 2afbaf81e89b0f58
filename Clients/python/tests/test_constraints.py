"""Structured output end to end: llguidance computes the masks (logitd.constraints), the daemon
decodes under them, and every output is JSON valid for its schema — with greedy, sampling over many
seeds and beam search. The tokenizer is a real byte-level BPE, trained here (no downloads)."""

from __future__ import annotations

import json
import pathlib
import sys

import jsonschema
import llguidance
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
from json_output import EOS, VOCAB, build_tokenizer, generate, guidance_tokenizer, toy_logits  # noqa: E402
from logitd import Client  # noqa: E402
from logitd.constraints import ConstrainedSession, Grammar  # noqa: E402

SCHEMAS = {
    "required keys and bounded integers": {
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 10, "maximum": 99},
                       "size": {"type": "integer", "minimum": -5, "maximum": 5}},
        "required": ["id", "size"], "additionalProperties": False},
    "enums and booleans": {
        "type": "object",
        "properties": {"color": {"enum": ["red", "green", "blue"]}, "ok": {"type": "boolean"},
                       "kind": {"enum": ["cat", "dog", 7, None]}},
        "required": ["color", "ok", "kind"], "additionalProperties": False},
    "arrays": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9},
                                 "minItems": 1, "maxItems": 4},
                       "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]{1,5}$"}, "maxItems": 2}},
        "required": ["items", "tags"], "additionalProperties": False},
    "nesting": {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^[a-z]{2,8}$"},
                       "nested": {"type": "object",
                                  "properties": {"count": {"type": "integer", "minimum": 0, "maximum": 1000},
                                                 "color": {"enum": ["red", "blue"]}},
                                  "required": ["count", "color"], "additionalProperties": False}},
        "required": ["name", "nested"], "additionalProperties": False},
}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def guidance(tokenizer):
    return guidance_tokenizer(tokenizer)


def allowed_by_llguidance(guidance, grammar: Grammar, prefix: list[int]) -> set[int]:
    """The tokens llguidance's matcher itself accepts after `prefix`, one consume at a time."""
    accepted = set()
    for token in range(VOCAB):
        matcher = llguidance.LLMatcher(guidance, grammar.source, log_level=0)
        assert matcher.consume_tokens(prefix)
        if matcher.consume_token(token):
            accepted.add(token)
    return accepted


def test_an_llguidance_mask_sent_untouched_admits_exactly_what_llguidance_accepts(daemon, tokenizer, guidance):
    grammar = Grammar.json_schema(SCHEMAS["enums and booleans"])
    prefix = tokenizer.encode('{"color": "').ids
    matcher = llguidance.LLMatcher(guidance, grammar.source, log_level=0)
    assert matcher.consume_tokens(prefix)
    mask = np.full((1, (VOCAB + 31) // 32), -1, dtype=np.int32)  # llguidance's own buffer type
    llguidance.numpy.fill_next_token_bitmask(matcher, mask)
    accepted = allowed_by_llguidance(guidance, grammar, prefix)
    assert 0 < len(accepted) < VOCAB // 4  # a real constraint: some tokens, far from all
    with Client(daemon.endpoint) as client:
        probabilities = client.probs(np.zeros((1, VOCAB), dtype=np.float32), mask=mask)[0]
        tokens, _ = client.decode(toy_logits(prefix)[None, :], mask=mask)
    assert set(np.nonzero(probabilities)[0].tolist()) == accepted
    assert np.allclose(probabilities[list(accepted)], 1 / len(accepted))
    assert int(tokens[0]) in accepted


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_strategy_writes_valid_json_for_each_schema(daemon, guidance, name):
    schema = SCHEMAS[name]
    grammar = Grammar.json_schema(schema)
    outputs = []
    with Client(daemon.endpoint) as client:
        outputs += generate(client, guidance, grammar, "greedy")
        for seed in range(1, 13):
            outputs += generate(client, guidance, grammar, "sample", seed=seed)
        outputs += generate(client, guidance, grammar, "beam")
    assert len(outputs) == 1 + 12 + 2  # beam returns its two best hypotheses
    for output in outputs:
        assert output["complete"] and output["finish_reason"] == "eos", output
        jsonschema.validate(json.loads(output["text"]), schema)
    assert len({output["text"] for output in outputs}) > 1, "sampling explores the schema"


def test_the_same_toy_model_without_masks_writes_no_json(daemon, tokenizer):
    with Client(daemon.endpoint) as client:
        outputs = generate(client, None, None, "greedy")
        for seed in range(1, 13):
            outputs += generate(client, None, None, "sample", seed=seed)
        outputs += generate(client, None, None, "beam")
    for output in outputs:
        text = tokenizer.decode([t for t in output["tokens"] if t != EOS])
        with pytest.raises(ValueError):
            json.loads(text)


def test_a_grammar_forcing_one_token_leaves_one_real_hypothesis(daemon, tokenizer, guidance):
    """From the first step only one token is allowed, so a width-4 beam search has one beam and then
    only EOS: the helper returns that hypothesis alone, never a filler."""
    grammar = Grammar.regex("q")
    assert allowed_by_llguidance(guidance, grammar, []) == {tokenizer.token_to_id("q")}
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, eos_token_ids=[EOS], strategy="beam", beam_width=4, num_return=4,
                              max_new_tokens=8)
        constrained = ConstrainedSession(session, guidance, grammar)
        widths = []
        while not constrained.done:
            widths.append(len(constrained.prefixes()))
            constrained.step(np.stack([toy_logits(p) for p in constrained.prefixes()]))
        results = constrained.results()
    assert widths == [1, 1]
    assert [(r["text"], r["complete"], r["logprob_sum"]) for r in results] == [("q", True, 0.0)]


def run_to_end(constrained: ConstrainedSession) -> list[dict]:
    while not constrained.done:
        constrained.step(np.stack([toy_logits(p) for p in constrained.prefixes()]))
    return constrained.results()


@pytest.mark.parametrize("parameters", [
    dict(strategy="sample", n=3, seed=9, temperature=0.9),
    dict(strategy="beam", beam_width=3, num_return=3),
], ids=["sample", "beam"])
def test_constrained_sessions_recover_token_for_token(make_daemon, guidance, parameters):
    """A daemon killed mid-way: the session re-opens from its history on a new one, and a new
    helper over it rebuilds every matcher from that history; the output is that of an
    uninterrupted run."""
    grammar = Grammar.json_schema(SCHEMAS["nesting"])
    common = dict(vocab_size=VOCAB, eos_token_ids=[EOS], max_new_tokens=48, **parameters)
    reference_daemon = make_daemon()
    with Client(reference_daemon.endpoint) as client:
        reference = run_to_end(ConstrainedSession(client.open(**common), guidance, grammar))
    first = make_daemon()
    with Client(first.endpoint) as client:
        session = client.open(**common)
        constrained = ConstrainedSession(session, guidance, grammar)
        for _ in range(6):
            constrained.step(np.stack([toy_logits(p) for p in constrained.prefixes()]))
        first.process.kill()
        first.process.wait()
        make_daemon(endpoint=first.endpoint)
        rebuilt = ConstrainedSession(session, guidance, grammar)  # matchers from the history alone
        assert rebuilt.masks().tobytes() == constrained.masks().tobytes()
        recovered = run_to_end(rebuilt)
    assert recovered == reference
    assert all(r["complete"] for r in recovered)


def test_constrained_sessions_step_together_in_one_batch(daemon, guidance):
    grammars = [Grammar.json_schema(SCHEMAS[name]) for name in SCHEMAS]
    setups = [dict(strategy="greedy"), dict(strategy="sample", seed=3, n=2), dict(strategy="beam", beam_width=2),
              dict(strategy="sample", seed=4)]
    with Client(daemon.endpoint) as client:
        def open_all():
            return [ConstrainedSession(client.open(vocab_size=VOCAB, eos_token_ids=[EOS], max_new_tokens=48, **setup),
                                       guidance, grammar) for setup, grammar in zip(setups, grammars)]
        alone = [run_to_end(c) for c in open_all()]
        batched = open_all()
        while any(not c.done for c in batched):
            live = [c for c in batched if not c.done]
            entries = [(c.session, np.stack([toy_logits(p) for p in c.prefixes()]), c.masks()) for c in live]
            for c, result in zip(live, client.batch_step(entries)):
                assert not isinstance(result, Exception), result
                c.advance(result)
    assert [c.results() for c in batched] == alone


def test_the_example_prints_valid_json_for_every_strategy(daemon):
    import subprocess
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / "json_output.py"
    run = subprocess.run([sys.executable, str(example), "--endpoint", daemon.endpoint, "--unconstrained"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    constrained = [line for line in lines if not line.startswith("unconstrained")]
    assert [line.split()[0] for line in constrained] == ["greedy", "sample", "sample", "sample", "beam", "beam"]
    from json_output import SCHEMA
    for line in constrained:
        jsonschema.validate(json.loads(line[17:]), SCHEMA)
    assert lines[-1].startswith("unconstrained")
