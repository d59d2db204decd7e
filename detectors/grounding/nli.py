"""Optional NLI cross-encoder: P(entailment | premise, hypothesis) from a local model directory.

Natural language inference as a faithfulness check follows SummaC (Laban et al. 2022, TACL) and
the NLI variant of SelfCheckGPT (Manakul et al. 2023): the premise is the best-matching source
chunk, the hypothesis the response sentence, and the score is the softmax probability of the
label named ``entailment`` in the model's ``config.id2label``:

    p_entail = softmax(logits)[entailment_index]

Any ``transformers`` ``AutoModelForSequenceClassification`` checkpoint works (for example
``cross-encoder/nli-deberta-v3-small`` saved with ``save_pretrained``); it is never downloaded:
the path must be a local directory.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from parrotwatch.detectors.models.encoder import MissingModelError, default_device

_CACHE: dict[tuple[str, str], NLIModel] = {}
_LOCK = threading.Lock()


def entailment_index(id2label: dict[int, str]) -> int:
    """The class index whose label starts with ``entail`` (case-insensitive)."""
    hits = [int(i) for i, label in id2label.items() if str(label).lower().startswith("entail")]
    if len(hits) != 1:
        raise ValueError(
            f"the NLI model's config.id2label {dict(id2label)} must name exactly one 'entailment' "
            "label: edit id2label in its config.json")
    return hits[0]


class NLIModel:
    """A sequence-pair classifier loaded once per (path, device); see :func:`get_nli`."""

    def __init__(self, path: str, device: str | None = None, max_length: int = 256):
        directory = Path(path).expanduser()
        if not (directory / "config.json").is_file():
            raise MissingModelError(
                f"NLI model path {str(directory)!r} has no config.json; models are never downloaded "
                "at run time: save one with transformers' save_pretrained() (model and tokenizer) "
                "and pass that directory as nli_path, or leave nli_path unset")
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer
        except ImportError as exc:
            raise MissingModelError(
                "the NLI check needs torch and transformers: pip install -e '.[models]'") from exc
        self.path = str(directory)
        self._requested_device = device
        self.device = device or default_device()
        self.max_length = max_length
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(self.path, local_files_only=True)
        self._model = model.to(self.device).eval()
        self.entailment_index = entailment_index(model.config.id2label)

    def __reduce__(self):
        return get_nli, (self.path, self._requested_device)

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str],
                   batch_size: int = 32) -> np.ndarray:
        """P(entailment) of each (premise, hypothesis) pair, float64 of shape ``(n,)``."""
        if len(premises) != len(hypotheses):
            raise ValueError(f"{len(premises)} premises for {len(hypotheses)} hypotheses")
        out = np.zeros(len(premises))
        for lo in range(0, len(premises), batch_size):
            batch = self._tokenizer(list(premises[lo: lo + batch_size]),
                                    list(hypotheses[lo: lo + batch_size]), padding=True,
                                    truncation=True, max_length=self.max_length, return_tensors="pt")
            with self._torch.inference_mode():
                logits = self._model(**batch.to(self.device)).logits.float()
            probs = self._torch.softmax(logits, dim=-1)[:, self.entailment_index]
            out[lo: lo + len(probs)] = probs.cpu().numpy()
        return out


def get_nli(path: str, device: str | None = None) -> NLIModel:
    """The process-wide NLI model at ``path`` (loaded on first use)."""
    key = (str(Path(path).expanduser()), device)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = NLIModel(key[0], key[1])
        return _CACHE[key]
