"""Train the factual-consistency pair model (``detectors/data/pair_model.json``), FactCC-style.

Text: the example sentences of WordNet 3.0 (Debian's ``wordnet-base``, ``bash
scripts/install_wordnet.sh``): real, varied English that installs from a package registry.
Each sampled sentence is the *passage*; the *answer sentence* is one of (Kryscinski et al. 2020's
recipe: rule-based transformations as positives, copies and meaning-keeping rewrites as
negatives):

    inconsistent (1): negation added or removed, a word replaced by its WordNet antonym, a
                      qualifier replaced by another of its class (all -> some, may -> must),
                      two nouns exchanged, a noun replaced by one from another sentence
    consistent   (0): a copy, one or two words replaced by WordNet synonyms, an adjective or
                      adverb dropped, an antonym plus a negation (two changes that cancel)

Sentences are split by the lexicographer file of their synset (WordNet's topic classes): the
held-out files in HELD_OUT are never trained on, and the report gives the accuracy there per
kind, and the cost per pair. Reproducible: one seed drives every choice; the same seed and
WordNet give the same JSON.

Usage: .venv/bin/python bench/train_pair_model.py [--sentences 6000] [--seed 0] [--fpr 0.03]
           [--out detectors/data/pair_model.json] [--no-write]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.grounding.lexicon import Lexicon, get_lexicon  # noqa: E402
from parrotwatch.detectors.grounding.pair_model import (  # noqa: E402
    FEATURES,
    MODEL_PATH,
    QUALIFIERS,
    PairModel,
    pair_features,
)
from parrotwatch.detectors.grounding.relations import content_words, tokens  # noqa: E402

HELD_OUT = ("noun.food", "noun.animal", "noun.plant", "noun.body", "verb.weather",
            "verb.consumption", "verb.body", "adj.pert", "noun.feeling", "verb.emotion")
_AUX = re.compile(r"\b(is|are|was|were|can|will|should|must|could|would|has|have|had|does|do|did)\b")
_NEG = re.compile(r"\s(not|never)\b|n't\b")


def _sub_word(text: str, word: str, new: str) -> str | None:
    out, n = re.subn(rf"\b{re.escape(word)}\b", new, text, count=1)
    return out if n else None


def _nouns(words, lex: Lexicon) -> list[str]:
    wn = lex.wordnet
    return [w for w in words if len(w) > 2 and wn._morphy(w, "n") and not wn._morphy(w, "v")
            and not wn._morphy(w, "a")]


def negate(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    if _NEG.search(text):
        return _NEG.sub("", text, count=1).replace("  ", " ")
    m = _AUX.search(text)
    return f"{text[:m.end()]} not{text[m.end():]}" if m else None


def antonym(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    words = [w for w in content_words(tokens(text)) if lex.antonyms(w)]
    if not words:
        return None
    word = rng.choice(words)
    return _sub_word(text, word, sorted(lex.antonyms(word))[0].replace("_", " "))


def qualifier(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    toks = set(tokens(text))
    options = [(w, cls) for cls in QUALIFIERS for w in sorted(cls & toks)]
    if not options:
        return None
    word, cls = rng.choice(options)
    return _sub_word(text, word, rng.choice(sorted(cls - {word})))


def role(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    nouns = list(dict.fromkeys(_nouns(content_words(tokens(text)), lex)))
    if len(nouns) < 2:
        return None
    a, b = rng.sample(nouns, 2)
    swapped = re.sub(rf"\b({re.escape(a)}|{re.escape(b)})\b", lambda m: b if m.group(0) == a else a,
                     text)
    return swapped if swapped != text else None


def synonyms(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    out, changed = text, 0
    words = content_words(tokens(text))
    rng.shuffle(words)
    for w in words:
        alts = sorted(s for s in lex.synonyms(w) if s not in lex.lemmas(w) and s.isalpha())
        if alts:
            out = _sub_word(out, w, rng.choice(alts)) or out
            changed += 1
            if changed == 2:
                break
    return out if changed else None


def shorten(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    wn = lex.wordnet
    mods = [w for w in content_words(tokens(text)) if (wn._morphy(w, "a") or wn._morphy(w, "r"))
            and not wn._morphy(w, "n") and not wn._morphy(w, "v") and not lex.antonyms(w)]
    if not mods:
        return None
    out = _sub_word(text, rng.choice(mods), "")
    return " ".join(out.split()) if out else None


def double_flip(text: str, lex: Lexicon, rng: random.Random) -> str | None:
    flipped = antonym(text, lex, rng)
    return negate(flipped, lex, rng) if flipped and not _NEG.search(text) else None


INCONSISTENT = {"negation": negate, "antonym": antonym, "qualifier": qualifier, "role": role}
CONSISTENT = {"synonyms": synonyms, "shorten": shorten, "double_flip": double_flip}


def make_pairs(sentences: list[str], lex: Lexicon, rng: random.Random):
    """(passage, sentence, label, kind) rows: a copy of every sentence plus each applicable
    transformation, and a noun from another sentence for one in four."""
    rows = []
    for text in tqdm(sentences, desc="pairs", unit="sent"):
        rows.append((text, text, 0, "copy"))
        for kind, fn in [*INCONSISTENT.items(), *CONSISTENT.items()]:
            out = fn(text, lex, rng)
            if out and out != text:
                rows.append((text, out, int(kind in INCONSISTENT), kind))
        if rng.random() < 0.25:
            mine, theirs = _nouns(content_words(tokens(text)), lex), _nouns(
                content_words(tokens(rng.choice(sentences))), lex)
            if mine and theirs and set(theirs) - set(mine):
                new = _sub_word(text, rng.choice(mine), rng.choice(sorted(set(theirs) - set(mine))))
                if new:
                    rows.append((text, new, 1, "noun_swap"))
    return rows


def wordnet_sentences(lex: Lexicon) -> dict[str, list[str]]:
    """WordNet example sentences (6+ words, deduplicated) per lexicographer file."""
    out: dict[str, list[str]] = defaultdict(list)
    seen = set()
    for synset in lex.wordnet.all_synsets():
        for example in synset.examples():
            if len(example.split()) >= 6 and example not in seen:
                seen.add(example)
                out[synset.lexname()].append(example)
    return out


def featurise(rows, lex: Lexicon) -> np.ndarray:
    from parrotwatch.detectors.models.encoder import EncoderSpec, get_encoder

    texts = list(dict.fromkeys(t for r in rows for t in r[:2]))
    emb = get_encoder(EncoderSpec()).encode(texts)
    index = {t: i for i, t in enumerate(texts)}
    sims = [float(emb[index[p]] @ emb[index[s]]) for p, s, *_ in rows]
    return np.array([pair_features(s, p, sim, lex)
                     for (p, s, *_), sim in tqdm(zip(rows, sims, strict=True), total=len(rows),
                                                 desc="features", unit="pair")])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sentences", type=int, default=6000, help="training sentences sampled")
    ap.add_argument("--test-sentences", type=int, default=1500, help="held-out sentences sampled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fpr", type=float, default=0.03,
                    help="share of consistent training pairs the threshold may flag")
    ap.add_argument("--out", default=str(MODEL_PATH))
    ap.add_argument("--no-write", action="store_true", help="report only")
    args = ap.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    lex = get_lexicon()
    if lex is None:
        sys.exit("WordNet is missing: run `bash scripts/install_wordnet.sh` (as root) first")
    rng = random.Random(args.seed)
    by_file = wordnet_sentences(lex)
    train_text = sorted(s for f, ss in by_file.items() if f not in HELD_OUT for s in ss)
    test_text = sorted(s for f, ss in by_file.items() if f in HELD_OUT for s in ss)
    train_text = rng.sample(train_text, min(args.sentences, len(train_text)))
    test_text = rng.sample(test_text, min(args.test_sentences, len(test_text)))
    t0 = time.perf_counter()
    train, test = make_pairs(train_text, lex, rng), make_pairs(test_text, lex, rng)
    x_train, x_test = featurise(train, lex), featurise(test, lex)
    y_train = np.array([r[2] for r in train])
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale[scale < 1e-6] = 1.0  # a feature constant in training (role_swap: WordNet's examples
    # seldom name two entities) keeps scale 1 and gets no weight
    clf = LogisticRegression(C=1.0, max_iter=2000).fit((x_train - mean) / scale, y_train)
    p_train = clf.predict_proba((x_train - mean) / scale)[:, 1]
    threshold = float(np.quantile(p_train[y_train == 0], 1 - args.fpr, method="higher"))
    model = PairModel(tuple(mean.round(6).tolist()), tuple(scale.round(6).tolist()),
                      tuple(clf.coef_[0].round(6).tolist()), round(float(clf.intercept_[0]), 6),
                      round(threshold, 6), f"WordNet 3.0 examples, {len(train)} pairs, seed "
                                           f"{args.seed}, held out: {', '.join(HELD_OUT)}")
    t1 = time.perf_counter()
    probs = [model.probability(x) for x in x_test]
    per_pair_us = (time.perf_counter() - t1) / len(x_test) * 1e6
    print(f"train: {len(train)} pairs from {len(train_text)} sentences; held out: {len(test)} "
          f"pairs from {len(test_text)} sentences of {len(HELD_OUT)} other lexicographer files; "
          f"{t1 - t0:.0f} s")
    print(f"threshold {model.threshold:.3f} (consistent training pairs flagged <= {args.fpr})")
    counts, hits = Counter(), Counter()
    for row, p in zip(test, probs, strict=True):
        counts[row[3]] += 1
        hits[row[3]] += (p > model.threshold) == bool(row[2])
    print(f"{'held-out kind':<14}{'label':>14}{'n':>6}{'correct':>9}")
    for kind in sorted(counts, key=lambda k: (k in CONSISTENT or k == "copy", k)):
        label = "consistent" if kind in CONSISTENT or kind == "copy" else "inconsistent"
        print(f"{kind:<14}{label:>14}{counts[kind]:>6}{hits[kind] / counts[kind]:>9.3f}")
    print(f"held-out accuracy {sum(hits.values()) / len(test):.3f}; model cost "
          f"{per_pair_us:.1f} us per pair (features not included)")
    print("weights: " + ", ".join(f"{n} {w:+.2f}" for n, w in zip(FEATURES, model.weights, strict=True)))
    if not args.no_write:
        Path(args.out).write_text(model.to_json() + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
