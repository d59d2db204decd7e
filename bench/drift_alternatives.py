"""Development bench: two-sample tests that were tried for 10% drift and not adopted (docs/drift.md).

Runs on the development pairs only (people -> miscellaneous, love, work; never the benchmark pairs
of bench/drift_power.py), 400 vs 400 texts, seeds 1000.., beside the shipped ``mmd_test``:

  k-NN (Schilling 1986)   share of each pooled point's k nearest neighbours (cosine, MiniLM
                          embeddings) that carry its own sample label; permutation p-value
  TF-IDF words / chars    the texts as sublinear TF-IDF vectors (words; character 2-4-grams within
                          words) fitted on the pooled sample, compared by MMD with the linear kernel
                          (the squared distance of the two mean vectors) and 1,000 relabellings

Each p-value is exact under the null: the neighbour graph and the TF-IDF vocabulary depend on the
pooled sample only. ``--layers`` instead compares the shipped MMD on other views of the same encoder:
the mean-pooled hidden states of each of its six layers, its first token and its max-pooled last layer
(the shipped embedding is the mean-pooled last layer, "mean 6").

Usage: .venv/bin/python bench/drift_alternatives.py [--trials 20] [--layers]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from drift_power import load_fortunes, trial_sets  # noqa: E402

from parrotwatch.detectors.drift import mmd_test  # noqa: E402

DEV_PAIRS = (("people", "miscellaneous"), ("people", "love"), ("people", "work"))
TFIDF = {"TF-IDF words": dict(analyzer="word", sublinear_tf=True, min_df=2),
         "TF-IDF chars": dict(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, min_df=2)}


def permutation_p(statistic, labels: np.ndarray, rng: np.random.Generator, n: int) -> float:
    """(1 + #{relabellings at least as extreme}) / (1 + n) (Phipson & Smyth 2010)."""
    observed = statistic(labels[None])[0]
    relabelled = statistic(np.array([rng.permutation(labels) for _ in range(n)]))
    return float((1 + np.sum(relabelled >= observed)) / (1 + n))


def knn_statistic(pooled: np.ndarray, k: int):
    """Schilling's statistic: mean share of same-label points among each point's k nearest neighbours."""
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    neighbours = np.argsort(-sim, axis=1)[:, :k]
    return lambda labels: (labels[:, :, None] == labels[:, neighbours]).mean(axis=(1, 2))


def linear_mmd_statistic(features: np.ndarray):
    """||mean(Y) - mean(X)||² for every relabelling (MMD² with k(a, b) = aᵀb, biased form)."""
    gram = features @ features.T

    def stat(labels):
        w = np.where(labels, 1.0 / labels[0].sum(), -1.0 / (~labels[0]).sum())
        return np.einsum("bi,ij,bj->b", w, gram, w)
    return stat


def encoder_views(encoder, texts: list[str]) -> dict[str, np.ndarray]:
    """L2-normalised views of ``texts`` from one forward pass of the encoder's transformer."""
    import torch

    model = encoder._model  # the sentence-transformers model: [Transformer, Pooling, Normalize]
    tokenizer, transformer = model.tokenizer, model[0].auto_model
    views: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(texts), 64):
        batch = tokenizer(texts[i:i + 64], padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            hidden = transformer(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"].unsqueeze(-1).float()
        for layer in range(1, len(hidden)):
            pooled = (hidden[layer] * mask).sum(1) / mask.sum(1)
            views.setdefault(f"mean {layer}", []).append(pooled.numpy())
        views.setdefault("first token", []).append(hidden[-1][:, 0].numpy())
        views.setdefault("max", []).append(hidden[-1].masked_fill(mask == 0, -1e4).max(1).values.numpy())
    out = {}
    for name, parts in views.items():
        matrix = np.concatenate(parts)
        out[name] = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return out


def layer_table(encoder, texts: dict[str, list[str]], args) -> None:
    """Detection rate of the shipped MMD on each encoder view, per development pair and share."""
    views = {name: encoder_views(encoder, items) for name, items in texts.items()}
    names = list(next(iter(views.values())))
    print(f"{'pair':<24} {'share':>5} " + " ".join(f"{n:>11}" for n in names))
    for base, other in DEV_PAIRS:
        pool = [(base, i) for i in range(len(texts[base]))]
        extra = [(other, i) for i in range(len(texts[other]))]
        for fraction in (0.0, 0.1, 0.2):
            hits = dict.fromkeys(names, 0)
            for t in range(args.trials):
                ref, cur = trial(pool, extra, args.n, fraction, 1000 + t)
                for name in names:
                    def rows(picks, name=name):
                        return np.stack([views[c][name][i] for c, i in picks])
                    hits[name] += mmd_test(rows(ref), rows(cur), n_permutations=args.permutations,
                                           seed=1000 + t).p_value < args.alpha
            row = " ".join(f"{hits[n] / args.trials:>11.2f}" for n in names)
            print(f"{base + ' -> ' + other:<24} {fraction:>5.2f} {row}", flush=True)


def trial(base: list, other: list, n: int, fraction: float, seed: int) -> tuple[list, list]:
    """The rows of ``base`` / ``other`` that drift_power.trial_sets draws for one trial (same seeds)."""
    rows = base + other
    ids = np.arange(len(rows))
    ref, cur = trial_sets(ids[:len(base)], ids[len(base):], n, fraction, seed)
    return [rows[i] for i in ref], [rows[i] for i in cur]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--layers", action="store_true",
                    help="compare the shipped MMD on other views of the encoder instead")
    args = ap.parse_args()

    from parrotwatch.detectors.models.encoder import get_encoder

    names = sorted({name for pair in DEV_PAIRS for name in pair})
    texts = {name: load_fortunes(name) for name in names}
    encoder = get_encoder()
    if args.layers:
        layer_table(encoder, texts, args)
        return
    emb = {name: encoder.encode(texts[name]) for name in names}
    methods = ["MMD (shipped)", "k-NN k=10", "k-NN k=30", *TFIDF]
    print(f"{'pair':<24} {'share':>5} " + " ".join(f"{m:>13}" for m in methods))
    for base, other in DEV_PAIRS:
        t0 = time.perf_counter()
        pool = [(base, i) for i in range(len(texts[base]))]
        extra = [(other, i) for i in range(len(texts[other]))]
        for fraction in (0.0, 0.1, 0.2):
            hits = dict.fromkeys(methods, 0)
            for t in range(args.trials):
                seed = 1000 + t
                ref, cur = trial(pool, extra, args.n, fraction, seed)
                rows = ref + cur
                vectors = np.stack([emb[c][i] for c, i in rows])
                strings = [texts[c][i] for c, i in rows]
                labels = np.r_[np.zeros(args.n, bool), np.ones(args.n, bool)]
                rng = np.random.default_rng(seed)
                p = {"MMD (shipped)": mmd_test(vectors[:args.n], vectors[args.n:],
                                               n_permutations=args.permutations, seed=seed).p_value}
                for k in (10, 30):
                    p[f"k-NN k={k}"] = permutation_p(knn_statistic(vectors, k), labels, rng,
                                                     args.permutations)
                for name, options in TFIDF.items():
                    features = TfidfVectorizer(**options).fit_transform(strings).toarray()
                    p[name] = permutation_p(linear_mmd_statistic(features), labels, rng, args.permutations)
                for m in methods:
                    hits[m] += p[m] < args.alpha
            row = " ".join(f"{hits[m] / args.trials:>13.2f}" for m in methods)
            print(f"{base + ' -> ' + other:<24} {fraction:>5.2f} {row}", flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
