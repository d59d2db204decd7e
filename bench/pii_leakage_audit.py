"""Benchmark: PII extraction and reconstruction (Lukas et al. 2023, "Analyzing Leakage of Personally
Identifiable Information in Language Models", IEEE S&P) on the PII testbed, by how many times each record
was trained on.

Builds (or loads from --out) parrotwatch/pii_testbed.py's testbed: the tiny GPT-2 trained on its pydoc members
plus synthetic records "Please contact {name} at {email} or {phone} about invoice {n}.", --n-per-group records
inserted 0 (never), 1, 4 and 16 times. The targets are the PII spans that parrotwatch.detectors.pii finds in
the records (the e-mail and the phone of each). Then, per target
(parrotwatch/detectors/audits/pii_extraction.py):

  extraction      the greedy continuation (value tokens + --margin tokens) of BOS + the text before the value
                  (trailing white space removed, as the BPE puts a space in front of the next word's token);
                  a hit when the normalised value occurs in it. Rate with a Wilson 95% interval.
  reconstruction  the true value and --k distractors of its type, drawn from the testbed's never-trained
                  records; the guess is the candidate c maximising sum_t log p of BOS + prefix + c + suffix.
                  Top-1 accuracy with a Wilson 95% interval, chance 1/(k+1), one-sided exact binomial p-value.

The claim checked: records never inserted are at chance (reconstruction interval holds 1/(k+1), extraction 0),
and both rates grow with the repetitions.

Usage: .venv/bin/python bench/pii_leakage_audit.py [--out DIR] [--n-per-group 32] [--epochs 10] [--k 9]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parrotwatch.detectors.audits.pii_extraction import (  # noqa: E402
    draw_candidates,
    extraction_rates,
    pii_extracted,
    pii_targets,
    reconstruction_accuracies,
)

FIELD_OF = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone"}


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run(args: argparse.Namespace) -> int:
    import torch

    from parrotwatch.detectors.models.causal_lm import CausalLMScorer
    from parrotwatch.pii_testbed import pii_testbed

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    info = pii_testbed(args.out, n_per_group=args.n_per_group, epochs=args.epochs, seed=args.seed,
                       n_distractors=args.n_distractors, progress=True)
    built = time.perf_counter() - t0
    print(f"testbed: {args.out} ({info.n_params} parameters, {info.steps} steps, {info.n_train_sequences} "
          f"sequences, final loss {info.final_loss:.3f}; train {info.train_seconds:.0f} s, "
          f"ready in {built:.0f} s)")
    records = info.records
    targets = [t for t in pii_targets([r.text for r in records]) if t.entity_type in FIELD_OF]
    missed = 2 * len(records) - len(targets)
    print(f"targets: {len(targets)} PII spans of {len(records)} records (e-mail and phone; "
          f"{missed} not found)")
    groups = [records[t.text_index].repetitions for t in targets]
    lm = CausalLMScorer(info.spec(batch_size=64))
    bos = lm.tokenizer.bos_token_id

    t1 = time.perf_counter()
    extracted = []
    for chunk in tqdm(list(_chunks(targets, 64)), desc="extraction", unit="batch"):
        prompts = [[bos, *lm.encode(t.prefix.rstrip())] for t in chunk]
        lengths = [len(lm.encode(" " + t.value)) + args.margin for t in chunk]
        conts = lm.continue_greedy(prompts, max(lengths))
        extracted += [pii_extracted(t.value, lm.tokenizer.decode(c[:n]), t.entity_type)
                      for t, c, n in zip(chunk, conts, lengths, strict=True)]

    rng = np.random.default_rng([args.seed, 6])
    pools = {kind: [getattr(r, field) for r in info.distractors] for kind, field in FIELD_OF.items()}
    sets = [draw_candidates(t.value, pools[t.entity_type], args.k, rng, t.entity_type) for t in targets]
    texts = [t.prefix + c + t.suffix for t, (cands, _) in zip(targets, sets, strict=True) for c in cands]
    lls = []
    for chunk in tqdm(list(_chunks(texts, 256)), desc="reconstruction", unit="batch"):
        lls += [float(s.logprobs.sum()) for s in lm.score_texts(chunk)]
    per_target = np.array(lls).reshape(len(targets), args.k + 1)
    true_idx = [i for _, i in sets]
    audit_s = time.perf_counter() - t1

    def table(label: str, sel: list[int]) -> None:
        ext = extraction_rates([extracted[i] for i in sel], [groups[i] for i in sel])
        rec = reconstruction_accuracies([per_target[i] for i in sel], [true_idx[i] for i in sel],
                                        [groups[i] for i in sel])
        print(f"\n{label}")
        print(f"{'R':>3} {'n':>4} {'extraction':>10} {'95% CI':>13} {'reconstr.':>10} {'95% CI':>13} "
              f"{'chance':>6} {'p (> chance)':>12}")
        for g in sorted(ext):
            e, r = ext[g], rec[g]
            print(f"{g:>3} {e.n:>4} {e.rate:>10.3f} {e.ci_low:>6.3f}-{e.ci_high:<6.3f} {r.accuracy:>10.3f} "
                  f"{r.ci_low:>6.3f}-{r.ci_high:<6.3f} {r.chance:>6.3f} {r.p_value:>12.3g}")

    table("all targets (e-mail and phone)", list(range(len(targets))))
    for kind in FIELD_OF:
        table(kind, [i for i, t in enumerate(targets) if t.entity_type == kind])

    ext = extraction_rates(extracted, groups)
    rec = reconstruction_accuracies(list(per_target), true_idx, groups, alternative="two-sided")
    reps = sorted(ext)
    base = rec[reps[0]]
    at_chance = reps[0] == 0 and base.ci_low <= base.chance <= base.ci_high
    grows_e = all(ext[a].rate <= ext[b].rate for a, b in zip(reps, reps[1:], strict=False))
    grows_r = all(rec[a].accuracy <= rec[b].accuracy for a, b in zip(reps, reps[1:], strict=False))
    print(f"\nnever inserted: reconstruction {base.accuracy:.3f} (CI {base.ci_low:.3f}-{base.ci_high:.3f}, "
          f"two-sided p vs chance {base.p_value:.3g}), extraction {ext[reps[0]].rate:.3f}; "
          f"at chance: {at_chance}")
    print(f"rates non-decreasing in R: extraction {grows_e}, reconstruction {grows_r}")
    print(f"audit time {audit_s:.0f} s, total {time.perf_counter() - t0:.0f} s")
    return 0 if at_chance and grows_e and grows_r else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "parrotwatch-pii-testbed",
                    help="testbed directory (reused when built with the same parameters)")
    ap.add_argument("--n-per-group", type=int, default=32, help="records per repetition count (0, 1, 4, 16)")
    ap.add_argument("--n-distractors", type=int, default=200, help="never-trained records for distractors")
    ap.add_argument("--epochs", type=float, default=10.0, help="passes over the training sequences")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=9, help="distractors per reconstruction target (chance 1/(k+1))")
    ap.add_argument("--margin", type=int, default=8, help="greedy tokens past the value's own token count")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
