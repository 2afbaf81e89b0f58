"""Writes the fuzzer's seed corpus (Tests/Fuzz/corpus): one valid request of every type, in the
harness's input format (frames back to back, each a u16 length then its bytes). Sessions 0, 1 and 2
are the harness's greedy, sampling (n = 2) and beam sessions, all vocab_size 16."""

import json
import pathlib
import struct

import numpy as np

OUT = pathlib.Path(__file__).with_name("corpus")
V = 16


def header(kind, flags=0):
    return struct.pack("<4sBBHQ", b"LGTD", 1, kind, flags, 7)


def rows(count, vocab=V, dtype="<f4"):
    return np.linspace(-2, 2, count * vocab).reshape(count, vocab).astype(dtype).tobytes()


def mask(count, vocab=V):
    return np.full((count, (vocab + 31) // 32), 0b1011_0110_1111, dtype="<u4").tobytes()


def descriptor(dtype, count, vocab=V, layout=0):
    return struct.pack("<BBHII", dtype, layout, 0, count, vocab)


def step(session, step_index, count, layout=0, vocab=V):
    return struct.pack("<QIBBHII", session, step_index, 1, layout, 0, count, vocab)


def sparse(count, k=4, lse=False):
    pairs = np.zeros((count, k), dtype=[("token", "<u4"), ("logit", "<f4")])
    pairs["token"] = np.arange(k)
    pairs["logit"] = np.linspace(0, 1, k)
    if not lse:
        return pairs.tobytes()
    packed = np.zeros(count, dtype=[("lse", "<f4"), ("pairs", pairs.dtype, (k,))])
    packed["lse"], packed["pairs"] = 3.0, pairs
    return packed.tobytes()


def verify(session, count, layout):
    return struct.pack("<QIIBBBBIII", session, 0, 0, 1, 0, layout, 0, count, V, 0)


seeds = {
    "hello": [header(0x01)],
    "ping": [header(0x02), b"payload"],
    "decode_f32": [header(0x03), descriptor(1, 2), b"", rows(2)],
    "decode_f16_mask": [header(0x03, 1), descriptor(2, 2), b"", rows(2, dtype="<f2"), mask(2)],
    "decode_bf16": [header(0x03), descriptor(3, 1), b'{"strategy": "greedy"}', np.zeros(V, "<u2").tobytes()],
    "probs": [header(0x04), descriptor(1, 2), b'{"temperature": 0.5, "top_n": 3}', rows(2)],
    "score": [header(0x16), descriptor(1, 2), b'{"temperature": 0.8, "top_k": 4, "prompt_token_ids": [1, 2]}', rows(2), np.array([3, 4], "<u4").tobytes()],
    "classify_mask": [header(0x17, 1), descriptor(1, 2), b'{"token_ids": [1, 2, 3]}', rows(2), mask(2)],
    "open_sample": [header(0x10), json.dumps({"vocab_size": V, "strategy": "sample", "n": 2, "seed": 3, "min_p": 0.1,
                                              "logprobs": 2, "logprobs_mode": "raw", "return_rank": True, "logprob_token_ids": [1],
                                              "return_support": "mask", "mirostat_tau": 2.0, "top_n_sigma": 1.0}).encode()],
    "open_beam_history": [header(0x10), json.dumps({"vocab_size": V, "strategy": "beam", "beam_width": 2,
                                                    "history": {"beams": [{"tokens": [1], "score": -0.5}], "finished": []}}).encode()],
    "step_greedy": [header(0x11), step(0, 0, 1), rows(1)],
    "step_sample_mask": [header(0x11, 1), step(1, 0, 2), rows(2), mask(2)],
    "step_beam": [header(0x11), step(2, 0, 1), rows(1)],
    "step_sparse": [header(0x11), step(1, 0, 2, layout=1, vocab=4), sparse(2)],
    "step_sparse_lse": [header(0x11), step(0, 0, 1, layout=2, vocab=4), sparse(1, lse=True)],
    "batch_step": [header(0x12), struct.pack("<BBHIII", 1, 0, 0, 2, V, 0) + struct.pack("<QII", 0, 0, 1) + struct.pack("<QII", 1, 0, 2), rows(3)],
    "verify_dense": [header(0x14), verify(0, 2, 1), np.array([3, 4], "<u4").tobytes(), rows(3), np.full((2, V), 1 / V, "<f4").tobytes()],
    "verify_none": [header(0x14), verify(1, 1, 0), np.array([5], "<u4").tobytes(), rows(2), b""],
    "close": [header(0x13), struct.pack("<Q", 2)],
}

OUT.mkdir(exist_ok=True)
for name, frames in seeds.items():
    (OUT / name).write_bytes(b"".join(struct.pack("<H", len(f)) + f for f in frames))
print(f"wrote {len(seeds)} seeds to {OUT}")
