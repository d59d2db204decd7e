"""``toxicity``: 0..1, the probability that a response is toxic.

Toxic here means rude, hateful or threatening text aimed at a person or a group: threats,
harassment, insults, identity attacks and dehumanising language (the Jigsaw / Perspective
definition, Dixon et al. 2018, "Measuring and Mitigating Unintended Bias in Text
Classification", AIES; the identity-attack and dehumanisation classes of Vidgen et al. 2021,
"Learning from the Worst: Dynamically Generated Datasets to Improve Online Hate Detection",
ACL). Swearing on its own, not aimed at anyone ("this damn printer"), is not toxic
(docs/toxicity.md states the labelling policy).

Offline default, a stacked ensemble (Wolpert 1992, "Stacked Generalization") of two models:

    p_prof(x) = alt-profanity-check's linear SVM over character/word n-grams, trained on labelled
                comments (Zhou 2019, profanity-check; alt-profanity-check, its maintained fork)
    z_emb(x)  = w . e(x) + b, a logistic regression (L2, inverse strength ``C``, on standardised
                features) over the sentence embedding e(x) of all-MiniLM-L6-v2 (Reimers &
                Gurevych 2019), fitted on the seed set the project ships
                (``detectors/data/toxicity_seed.jsonl``); it covers toxicity *without* profanity
    toxicity  = sigmoid(a * z_emb + c * logit(p_prof) + d)

(a, c, d) is a second logistic regression fitted on the seed set, with z_emb taken out-of-fold
(stratified 5-fold cross-validation, shuffled with ``seed``) so that the stacker does not learn
to trust an embedding model that has seen the very texts. Stacking rather than max or noisy-or:
both of those keep every profane-but-harmless text as toxic as the profanity model says, while a
learnt weight lets the embedding model overrule the word list (the ablation in
``bench/toxicity_eval.py``). Under the shipped labelling policy the stacker learns c ~ 0.004
(a ~ 1.18): alt-profanity-check adds almost nothing that the embedding model lacks, so the default
is in effect the embedding model; a seed set labelled otherwise (``seed_path``) reweighs it.
The seed set is nearly balanced (195 toxic of 407), so the score is the posterior for an even
prior; a threshold for a rarer base rate comes from configuration (``parrotwatch.detectors.flags``).

Optional: a transformer classifier (Detoxify / unitary toxic-bert style,
``AutoModelForSequenceClassification``) from a local directory ``classifier_path``, never
downloaded, averaged with the default (soft voting, Kuncheva 2004):
``toxicity = (1 - classifier_weight) * default + classifier_weight * p_classifier``, with
``classifier_weight=1`` for the classifier alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from parrotwatch.detectors.models.batching import run_halving_on_oom
from parrotwatch.detectors.models.encoder import EncoderSpec, MissingModelError, get_encoder

SEED_PATH = Path(__file__).resolve().parent / "data" / "toxicity_seed.jsonl"
_EPS = 1e-6
_FITS: dict[tuple, ToxicityWeights] = {}  # (seed-file sha256, encoder spec, seed, C) -> weights
_LOCK = threading.Lock()


def load_labelled(path: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """``(texts, toxic labels, categories)`` of a JSON-lines file of ``{text, toxic, category}``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    bad = [i for i, r in enumerate(rows)
           if r.get("toxic") not in (0, 1) or not isinstance(r.get("text"), str)]
    if bad:
        raise ValueError(f"{path}: rows {bad[:5]} need a string 'text' and 'toxic' 0 or 1")
    texts, labels = [r["text"] for r in rows], np.array([r["toxic"] for r in rows], dtype=np.int64)
    return texts, labels, [r.get("category", "") for r in rows]


def profanity_prob(texts: Sequence[str]) -> np.ndarray:
    """alt-profanity-check's probability that each text is offensive, float64 in [0, 1]."""
    try:
        from profanity_check import predict_prob
    except ImportError as exc:
        raise MissingModelError("toxicity needs the 'alt-profanity-check' package: "
                                "pip install -e '.[models]'") from exc
    texts = list(texts)
    return np.asarray(predict_prob(texts), dtype=np.float64) if texts else np.zeros(0)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


@dataclass(frozen=True, eq=False)
class ToxicityWeights:
    """The fitted default: ``z_emb = emb_coef . e + emb_intercept`` (raw embeddings) and
    ``toxicity = sigmoid(stack_coef[0] z_emb + stack_coef[1] logit(p_prof) + stack_intercept)``."""

    emb_coef: np.ndarray
    emb_intercept: float
    stack_coef: tuple[float, float]
    stack_intercept: float

    def embedding_logit(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64) @ self.emb_coef + self.emb_intercept

    def combine(self, embeddings: np.ndarray, p_prof: np.ndarray) -> np.ndarray:
        a, c = self.stack_coef
        return _sigmoid(a * self.embedding_logit(embeddings) + c * _logit(p_prof) + self.stack_intercept)

    def save(self, path: Path) -> None:
        """Write to ``path`` (.npz) atomically: a reader never sees a half-written file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, emb_coef=self.emb_coef, emb_intercept=self.emb_intercept,
                 stack_coef=np.asarray(self.stack_coef), stack_intercept=self.stack_intercept)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ToxicityWeights:
        with np.load(path) as z:
            return cls(z["emb_coef"], float(z["emb_intercept"]), tuple(map(float, z["stack_coef"])),
                       float(z["stack_intercept"]))


def fit_weights(embeddings: np.ndarray, p_prof: np.ndarray, labels: np.ndarray,
                seed: int = 0, C: float = 0.1, folds: int = 5) -> ToxicityWeights:
    """Fit the embedding model on all rows and the stacker on its out-of-fold logits (deterministic:
    lbfgs, folds shuffled with ``seed``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    emb = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    z_oof = cross_val_predict(emb, x, y, cv=cv, method="decision_function")
    emb.fit(x, y)
    scaler, lr = emb[0], emb[-1]
    coef = lr.coef_[0] / scaler.scale_  # fold the standardisation into the raw-embedding weights
    intercept = float(lr.intercept_[0] - coef @ scaler.mean_)
    stack = LogisticRegression(max_iter=1000).fit(np.column_stack([z_oof, _logit(p_prof)]), y)
    return ToxicityWeights(coef, intercept, (float(stack.coef_[0, 0]), float(stack.coef_[0, 1])),
                           float(stack.intercept_[0]))


class ToxicityScorer:
    """Batch toxicity scores in [0, 1] (higher = more likely toxic); see the module docstring.

    ``score(texts, embeddings=None)`` takes the texts' embeddings from the same encoder when the
    caller has them, so the stream encodes each response once for all detectors. Pickles small:
    the fitted weights and the options, never the encoder or classifier weights (reloaded, once
    per process, on the other side). A ``protocols.RequestScorer`` of ``toxicity`` (:meth:`scores`).
    """

    score_names: tuple[str, ...] = ("toxicity",)

    def __init__(self, encoder_spec: EncoderSpec | None = None, classifier_path: str | None = None,
                 seed: int = 0, *, C: float = 0.1, classifier_weight: float = 0.5,
                 seed_path: str | Path | None = None, cache_dir: str | Path | None = None,
                 device: str | None = None, batch_size: int = 32):
        if not 0.0 <= classifier_weight <= 1.0:
            raise ValueError(f"classifier_weight must be in [0, 1], got {classifier_weight}")
        self.encoder_spec = encoder_spec or EncoderSpec()
        self.classifier_path = classifier_path
        self.seed = seed
        self.C = C
        self.classifier_weight = classifier_weight if classifier_path else 0.0
        self.seed_path = Path(seed_path) if seed_path else SEED_PATH
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.device = device
        self.batch_size = batch_size
        if classifier_path and not (Path(classifier_path).expanduser() / "config.json").is_file():
            raise MissingModelError(
                f"ToxicityScorer(classifier_path={classifier_path!r}): no transformers model there "
                f"(config.json missing). Classifiers are never downloaded: save one with "
                f"save_pretrained() and give its local directory, or leave classifier_path unset "
                f"(PARROTWATCH_TOXICITY_CLASSIFIER) for the offline default")
        self._reset()

    def _reset(self) -> None:
        self._classifier = None
        self._weights = self._fit() if self.classifier_weight < 1.0 else None

    def _fit(self) -> ToxicityWeights:
        """The fitted default for (seed-file sha256, encoder spec, seed, C): from this process's
        cache, else from ``cache_dir`` when given, else fitted now (and written there)."""
        digest = hashlib.sha256(self.seed_path.read_bytes()).hexdigest()
        key = (digest, self.encoder_spec, self.seed, self.C)
        with _LOCK:
            name = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
            path = self.cache_dir / f"toxicity-{name}.npz" if self.cache_dir else None
            if key not in _FITS:
                _FITS[key] = ToxicityWeights.load(path) if path and path.is_file() else self._fit_now()
            if path and not path.is_file():
                _FITS[key].save(path)
            return _FITS[key]

    def _fit_now(self) -> ToxicityWeights:
        texts, labels, _ = load_labelled(self.seed_path)
        emb = get_encoder(self.encoder_spec).encode(texts)
        return fit_weights(emb, profanity_prob(texts), labels, self.seed, self.C)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_classifier": None}

    def score(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """``toxicity`` of each text, float64 in [0, 1], in input order."""
        if isinstance(texts, str):
            raise TypeError("score() takes a sequence of texts; wrap a single text in a list")
        texts = list(texts)
        if not texts:
            return np.zeros(0)
        w = self.classifier_weight
        out = np.zeros(len(texts))
        if w < 1.0:
            out += (1.0 - w) * self.default_score(texts, embeddings)
        if w > 0.0:
            out += w * self.classifier_score(texts)
        return np.clip(out, 0.0, 1.0)

    def scores(self, batch: Sequence[str]) -> list[dict[str, float | None]]:
        """``{"toxicity": p}`` per text of ``batch``, as :meth:`score`."""
        return [{"toxicity": float(p)} for p in self.score(batch)]

    @classmethod
    def _unit_test_batch(cls) -> list[str]:
        return ["Thanks, that fixed my build.", "You are a worthless idiot and everyone hates you.",
                "The Eiffel Tower is 330 metres tall and opened in 1889."]

    def default_score(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The offline default (stacked embedding + profanity models) alone."""
        texts = list(texts)
        if self._weights is None:
            self._weights = self._fit()
        if embeddings is None:
            embeddings = get_encoder(self.encoder_spec).encode(texts)
        if np.shape(embeddings) != (len(texts), self._weights.emb_coef.size):
            raise ValueError(f"embeddings must have shape ({len(texts)}, {self._weights.emb_coef.size}) "
                             f"from encoder {self.encoder_spec.model!r}, got {np.shape(embeddings)}")
        return self._weights.combine(embeddings, profanity_prob(texts))

    def classifier_score(self, texts: Sequence[str]) -> np.ndarray:
        """The transformer classifier's probability of its toxic label alone."""
        if not self.classifier_path:
            raise ValueError("no classifier: ToxicityScorer(classifier_path=...) is unset")
        if self._classifier is None:
            self._classifier = TransformerToxicity(self.classifier_path, self.device, self.batch_size)
        return self._classifier.predict(list(texts))


class TransformerToxicity:
    """P(toxic) from a local ``AutoModelForSequenceClassification``: sigmoid of the logit of the
    label named ``toxic``/``toxicity`` for multi-label models (Detoxify, toxic-bert) or one-logit
    models, else the softmax probability of that label (the last label when none is named so).
    CUDA when present with fp16 autocast; a CUDA out-of-memory error halves the batch and retries
    (:func:`~parrotwatch.detectors.models.batching.run_halving_on_oom`)."""

    def __init__(self, path: str, device: str | None = None, batch_size: int = 32):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
        self.model.to(self.device).eval()
        cfg = self.model.config
        names = {i: str(n).lower() for i, n in cfg.id2label.items()}
        named = [i for i, n in names.items() if n in ("toxic", "toxicity")]
        self.index = named[0] if named else cfg.num_labels - 1
        self.multilabel = cfg.num_labels == 1 or cfg.problem_type == "multi_label_classification"
        self.batch_size = batch_size
        limits = (getattr(self.tokenizer, "model_max_length", None),
                  getattr(cfg, "max_position_embeddings", None))
        self.max_length = min([512] + [int(n) for n in limits if n])  # truncate long responses

    def predict(self, texts: list[str]) -> np.ndarray:
        return np.asarray(run_halving_on_oom(self._batch, texts, self.batch_size), dtype=np.float64)

    def _batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="pt").to(self.device)
        cuda = self.device.startswith("cuda")
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            logits = self.model(**enc).logits.float()
        probs = torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=-1)
        return probs[:, self.index].cpu().numpy().astype(np.float64)
