"""Benchmark: tokens/s scored by the batched transformers backend against a one-text-at-a-time loop.

Both paths call :class:`parrotwatch.detectors.models.causal_lm.CausalLMScorer.score_texts` on the same
model and
the same texts: batched, all texts at once (windows sorted by length, right-padded batches of
--batch-size under an attention mask); the loop, one ``score_texts([text])`` call per text. The
per-token log-probabilities of the two paths are compared (padding must change no score).

Model: the project's testbed (:mod:`parrotwatch.testbed`), --preset small (GPT-2 style,
~2.6 M
parameters, 256-token context) by default, trained for --train-steps steps only: throughput depends on
the architecture, not on the weights. --model DIR scores a saved model instead.
Texts: --texts paragraphs of Python's documentation topics (``pydoc_data.topics``), drawn with a seed
over all paragraph lengths (long ones are scored in sliding windows), and, as a second set, the first
sentence of each (at most 120 characters: the size of prompts, canaries and exposure candidates). On a
CPU a long text keeps the matmuls busy on its own, so batching pays mostly on short texts, where the
per-call overhead of the model dominates.

GPU figures come only from a machine with CUDA (--device cuda, fp16 autocast by default there); on a
machine without one the CPU figures alone are printed.

Usage: .venv/bin/python bench/lm_scoring_throughput.py [--preset small] [--texts 256] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pydoc_texts(count: int, seed: int = 0, max_chars: int = 3000) -> list[str]:
    """``count`` distinct paragraphs of the pydoc topics (>= 40 characters), drawn uniformly."""
    from pydoc_data.topics import topics

    paragraphs = sorted({p.strip() for t in topics.values() for p in t.split("\n\n")
                         if 40 <= len(p.strip()) <= max_chars})
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(paragraphs), size=min(count, len(paragraphs)), replace=False)
    return [paragraphs[i] for i in picks]


def run(scorer, texts: list[str], batched: bool, repeat: int) -> tuple[float, int, list]:
    """Best seconds of ``repeat`` runs, tokens scored, and the scores."""
    times, scores = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scores = scorer.score_texts(texts) if batched else [scorer.score_texts([t])[0] for t in texts]
        if scorer.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times), sum(len(s.logprobs) for s in scores), scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", choices=["tiny", "small"], default="small", help="testbed preset to build")
    ap.add_argument("--model", type=Path, help="a saved causal LM directory instead of building the testbed")
    ap.add_argument("--train-steps", type=int, default=20, help="steps when building the testbed")
    ap.add_argument("--texts", type=int, default=256, help="texts to score")
    ap.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (batched path)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is often fastest on a shared machine)")
    ap.add_argument("--device", default=None, help="cpu, cuda, cuda:0 (default: cuda when present)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    ap.add_argument("--repeat", type=int, default=2, help="runs per path (best reported)")
    args = ap.parse_args()

    import torch
    import transformers

    from parrotwatch.detectors.models.causal_lm import CausalLMScorer, CausalLMSpec
    from parrotwatch.testbed import build_testbed

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load {load:.1f}; torch {torch.__version__} "
          f"({args.threads} CPU threads), transformers {transformers.__version__}; GPU: "
          f"{gpu or 'none (GPU figures need a CUDA machine: rerun there with --device cuda)'}")

    with tempfile.TemporaryDirectory(prefix="pw-lm-bench-") as tmp:
        if args.model is None:
            t0 = time.perf_counter()
            info = build_testbed(tmp, preset=args.preset, steps=args.train_steps, progress=False)
            model, what = str(info.path), (f"testbed {args.preset}: {info.n_params / 1e6:.2f} M parameters, "
                                           f"built in {time.perf_counter() - t0:.0f} s")
        else:
            model, what = str(args.model), str(args.model)
        paragraphs = pydoc_texts(args.texts)
        sets = {"paragraphs": paragraphs,
                # prompt- and canary-sized texts: the first sentence of each paragraph, at most 120 characters
                "short texts": [p.split(". ")[0][:120] for p in paragraphs]}
        spec = CausalLMSpec(model=model, device=args.device, precision=args.precision,
                            batch_size=args.batch_size)
        scorer = CausalLMScorer(spec)
        print(f"model: {what}; window {scorer.window} tokens, stride {scorer.stride}; device {scorer.device} "
              f"{scorer.precision}; batches of {args.batch_size} windows, sorted by length, right-padded")
        scorer.score_texts(paragraphs[:4])  # warm-up
        print(f"\n{'texts':<12}{'n':>5}{'tokens':>9}{'min/med/max':>14}{'loop tok/s':>12}"
              f"{'batched tok/s':>15}{'speed-up':>10}{'max |dlogp|':>13}")
        for name, texts in sets.items():
            lengths = np.array([len(scorer.encode(t)) for t in texts])
            t_loop, tokens, loop_scores = run(scorer, texts, batched=False, repeat=args.repeat)
            t_batch, tokens_b, batch_scores = run(scorer, texts, batched=True, repeat=args.repeat)
            assert tokens == tokens_b
            pairs = zip(loop_scores, batch_scores, strict=True)
            diff = max(float(np.abs(a.logprobs - b.logprobs).max()) for a, b in pairs if len(a.logprobs))
            spread = f"{lengths.min()}/{int(np.median(lengths))}/{lengths.max()}"
            print(f"{name:<12}{len(texts):>5}{tokens:>9,}{spread:>14}{tokens / t_loop:>12,.0f}"
                  f"{tokens / t_batch:>15,.0f}{t_loop / t_batch:>9.1f}x{diff:>13.1e}")
        print("goal: batched >= 5x the one-text-at-a-time loop on CPU")


if __name__ == "__main__":
    main()
