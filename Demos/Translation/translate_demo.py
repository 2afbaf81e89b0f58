"""The translation demo's model process written a second time, in Python with the Python client.

It reads the same data files and computes the same float32 logits as the Swift `TranslationModel`
(every score in float64, rounded to float32 once), so logitd chooses the same tokens: greedy and
beam translations print exactly as `translate-demo --strategy greedy|beam` prints them.

    python3 Demos/Translation/translate_demo.py --endpoint tcp://127.0.0.1:5555 --strategy beam \\
        "the black cat sleeps"
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Clients" / "python"))
from logitd import Client  # noqa: E402

END_OF_SENTENCE = "</s>"
OTHER_WORDS = "<other>"
BANNED_TOKENS = [1]  # <other> is a score, not a word


class TranslationModel:
    """Phrase lexicon + bigram language model; see Demos/Translation/Model/TranslationModel.swift."""

    smoothing = 0.01
    distortion = 1.0
    determiner = "the"  # its translation agrees with the noun it introduces

    def __init__(self, directory: pathlib.Path):
        self.vocabulary = [END_OF_SENTENCE, OTHER_WORDS]
        ids = {END_OF_SENTENCE: 0, OTHER_WORDS: 1}

        def word_id(word: str) -> int:
            if word not in ids:
                ids[word] = len(self.vocabulary)
                self.vocabulary.append(word)
            return ids[word]

        # Ids are given in the order Swift gives them: lexicon targets first, then corpus words.
        self.lexicon: dict[str, list[tuple[list[int], float]]] = {}
        for line in (directory / "lexicon.tsv").read_text(encoding="utf-8").split("\n"):
            fields = [field for field in line.split("\t") if field]
            if len(fields) != 3:
                continue
            targets = [word_id(word) for word in fields[1].split(" ") if word]
            self.lexicon.setdefault(fields[0], []).append((targets, math.log(float(fields[2]))))
        self.bigrams: dict[int, dict[int, float]] = {}
        self.contexts: dict[int, float] = {}
        for sentence in (directory / "corpus.txt").read_text(encoding="utf-8").split("\n"):
            words = [word for word in sentence.split(" ") if word]
            if not words:
                continue
            previous = -1
            for word in words + [END_OF_SENTENCE]:
                current = word_id(word)
                counts = self.bigrams.setdefault(previous, {})
                counts[current] = counts.get(current, 0.0) + 1
                self.contexts[previous] = self.contexts.get(previous, 0.0) + 1
                previous = current

    def language_model(self, word: int, previous: int) -> float:
        count = self.bigrams.get(previous, {}).get(word, 0.0)
        total = self.contexts.get(previous, 0.0)
        return math.log((count + self.smoothing) / (total + self.smoothing * len(self.vocabulary)))

    @staticmethod
    def tokens(sentence: str) -> list[str]:
        return sentence.lower().split()

    def options(self, source: list[str]) -> list[tuple[int, int, list[tuple[list[int], float]]]]:
        """(start, length, phrases) for every lexicon phrase in the source, leftmost, longer first;
        the phrases of one ending in "the" carry their agreement with its noun as probability."""
        found = []
        for start in range(len(source)):
            for length in (2, 1):
                if start + length <= len(source):
                    phrases = self.lexicon.get(" ".join(source[start:start + length]))
                    if phrases is None:
                        continue
                    if source[start + length - 1] == self.determiner:
                        phrases = self.agreeing(phrases, source[start + length:start + length + 3])
                    found.append((start, length, phrases))
        return found

    def agreeing(self, phrases, noun_candidates: list[str]):
        """Phrases ending in an article, rescored by how often the corpus puts that article right
        before a translation of the noun (the first candidate seen after one of the articles)."""
        for word in noun_candidates:
            nouns = {ids[0] for ids, _ in self.lexicon.get(word, [])}
            counts = []
            for ids, _ in phrases:
                count = 0.0
                for noun in nouns:
                    count += self.bigrams.get(ids[-1], {}).get(noun, 0.0)
                counts.append(count)
            total = sum(counts)
            if total > 0:
                denominator = total + self.smoothing * len(phrases)
                return [(ids, math.log((count + self.smoothing) / denominator)) for (ids, _), count in zip(phrases, counts)]
        return phrases

    @staticmethod
    def mass_by_first_word(phrases) -> dict[int, float]:
        """Σ P_lex of the phrases starting with each word, summed in the phrases' order."""
        masses: dict[int, float] = {}
        for ids, log_probability in phrases:
            masses[ids[0]] = masses.get(ids[0], 0.0) + math.exp(log_probability)
        return masses

    @staticmethod
    def is_open(start: int, length: int, covered: list[bool], options) -> bool:
        """Its words are untranslated, and translating them strands no other untranslated word."""
        if any(covered[p] for p in range(start, start + length)):
            return False
        after = list(covered)
        for position in range(start, start + length):
            after[position] = True
        return all(after[position] or any(
            other_start <= position < other_start + other_length
            and all(not after[p] for p in range(other_start, other_start + other_length))
            for other_start, other_length, _ in options) for position in range(len(after)))

    def state(self, options, source_length: int, prefix: list[int]):
        """(covered, continuations as (words to come, phrase log P_lex)), aligned as in Swift."""
        covered = [not any(start <= position < start + length for start, length, _ in options)
                   for position in range(source_length)]
        continuations: list[tuple[list[int], float]] = []
        for token in prefix:
            if continuations:
                continuations = [(rest[1:], log_probability) for rest, log_probability in continuations
                                 if rest[0] == token and len(rest) > 1]
                continue
            for start, length, phrases in options:
                if self.is_open(start, length, covered, options) and any(ids[0] == token for ids, _ in phrases):
                    for position in range(start, start + length):
                        covered[position] = True
                    continuations = [(ids[1:], log_probability) for ids, log_probability in phrases
                                     if ids[0] == token and len(ids) > 1]
                    break
        return covered, continuations

    def logits(self, source: list[str], prefix: list[int]) -> np.ndarray:
        options = self.options(source)
        covered, continuations = self.state(options, len(source), prefix)
        previous = prefix[-1] if prefix else -1
        translation = [-math.inf] * len(self.vocabulary)
        phrase_available = bool(continuations)
        if continuations:
            total = 0.0
            for _, log_probability in continuations:
                total += math.exp(log_probability)
            for word, mass in self.mass_by_first_word(continuations).items():
                translation[word] = math.log(mass / total)
        else:
            first_untranslated = covered.index(False) if False in covered else 0
            for start, length, phrases in options:
                if not self.is_open(start, length, covered, options):
                    continue
                jump = self.distortion * (start - first_untranslated)
                phrase_available = True
                for word, mass in self.mass_by_first_word(phrases).items():
                    translation[word] = max(translation[word], math.log(mass) - jump)
        logits = np.full(len(self.vocabulary), -np.inf, dtype=np.float32)
        for word, score in enumerate(translation):
            if score > -math.inf:
                logits[word] = np.float32(self.language_model(word, previous) + score)
        if not phrase_available:
            logits[0] = np.float32(self.language_model(0, previous))
        # <other>: the language model's mass on every word the source does not allow.
        allowed_mass = 0.0
        for word in range(len(self.vocabulary)):
            if logits[word] > -np.inf:
                allowed_mass += math.exp(self.language_model(word, previous))
        if allowed_mass < 1:
            logits[1] = np.float32(math.log1p(-allowed_mass))
        return logits

    def log_probability(self, source: list[str], tokens: list[int]) -> float:
        """log P(tokens | source): each step's row log-softmaxed with <other> in it, as in Swift."""
        total = 0.0
        for step, token in enumerate(tokens):
            row = [float(value) for value in self.logits(source, tokens[:step])]
            top = max(row)
            mass = 0.0
            for value in row:
                mass += math.exp(value - top)
            total += row[token] - top - math.log(mass)
        return total

    def text(self, ids: list[int]) -> str:
        return " ".join(self.vocabulary[i] for i in ids if i > 1)


def translate(client: Client, model: TranslationModel, sentence: str, strategy: str, beam_width: int):
    """One sentence through logitd: [(text, log p)], best first."""
    source = TranslationModel.tokens(sentence)
    parameters = dict(vocab_size=len(model.vocabulary), strategy=strategy, max_new_tokens=2 * len(source) + 2,
                      eos_token_ids=[0], banned_token_ids=BANNED_TOKENS)
    if strategy == "beam":
        parameters.update(beam_width=beam_width, length_penalty=0.0)
    session = client.open(**parameters)

    def rows(session) -> np.ndarray:
        prefixes = session.live_prefixes if strategy == "beam" else \
            [tokens for tokens, reason in zip(session.sequences, session.finished) if reason is None]
        return np.stack([model.logits(source, prefix) for prefix in prefixes])

    for _ in session.events(rows):
        pass
    return [(model.text(sequence["tokens"]), model.log_probability(source, sequence["tokens"]))
            for sequence in session.result["sequences"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sentences", nargs="*")
    parser.add_argument("--file", help="a file with one English sentence per line")
    parser.add_argument("--strategy", choices=["greedy", "beam", "both"], default="both")
    parser.add_argument("--beam-width", type=int, default=8)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    parser.add_argument("--data", default=str(ROOT / "Demos" / "Translation" / "data"))
    args = parser.parse_args()

    model = TranslationModel(pathlib.Path(args.data))
    sentences = args.sentences
    if not sentences and args.file:
        sentences = [line for line in pathlib.Path(args.file).read_text(encoding="utf-8").split("\n") if line]
    strategies = ["greedy", "beam"] if args.strategy == "both" else [args.strategy]
    with Client(args.endpoint, timeout=30.0) as client:
        for sentence in sentences:
            print(f"\n{sentence}")
            for strategy in strategies:
                for text, logprob in translate(client, model, sentence, strategy, args.beam_width):
                    print(f"  {strategy:<9} {text}  (log p {logprob:.2f})")


if __name__ == "__main__":
    main()
