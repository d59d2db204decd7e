"""``toxicity``: 0..1, the probability that a response is toxic.

Toxic here means rude, hateful or threatening text aimed at a person or a group: threats,
harassment, insults, identity attacks and dehumanising language (the Jigsaw / Perspective
definition, Dixon et al. 2018, "Measuring and Mitigating Unintended Bias in Text
Classification", AIES; the identity-attack and dehumanisation classes of Vidgen et al. 2021,
"Learning from the Worst: Dynamically Generated Datasets to Improve Online Hate Detection",
ACL). Swearing on its own, not aimed at anyone ("this damn printer"), is not toxic
(docs/toxicity.md states the labelling policy).

Offline default for English, a stacked ensemble (Wolpert 1992, "Stacked Generalization") of three
models:

    p_prof(x)  = alt-profanity-check's linear SVM over character/word n-grams, trained on labelled
                 comments (Zhou 2019, profanity-check; alt-profanity-check, its maintained fork)
    z_emb(x)   = w . e(x) + b, a logistic regression (L2, inverse strength ``C``, on standardised
                 features) over the sentence embedding e(x) of all-MiniLM-L6-v2 (Reimers &
                 Gurevych 2019); it covers toxicity *without* profanity
    z_ngram(x) = v . t(x) + b', a logistic regression over t(x), TF-IDF character 2-5-grams and word
                 1-2-grams (Wulczyn, Thain & Dixon 2017's char-n-gram LR); it reads words, where a
                 short sentence's embedding is dominated by its topic
    toxicity   = sigmoid(a * z_emb + c * logit(p_prof) + g * z_ngram + d)

all fitted on the seed files the project ships (:data:`SEEDS`). (a, c, g, d) is a second logistic
regression, with z_emb and z_ngram taken out-of-fold (stratified 5-fold cross-validation, shuffled
with ``seed``) so that the stacker does not learn to trust models that have seen the very texts.
Stacking rather than max or noisy-or: both of those keep every profane-but-harmless text as toxic
as the profanity model says, while a learnt weight lets the other models overrule the word list
(the ablation in ``bench/toxicity_eval.py``). Under the shipped labelling policy swear words are as
common in benign seed texts as in toxic ones, so the profanity model's weight c is small; a seed set
labelled otherwise (``seed_path``) reweighs it. French is scored by its n-gram model alone. The seed
sets are nearly balanced, so the score is the posterior for an even prior; a threshold for a rarer
base rate comes from configuration (``parrotwatch.detectors.flags``). docs/toxicity.md gives the
fitted weights and the seed files.

Languages and spelling tricks. Each text is first read as a person would see it
(:func:`~parrotwatch.detectors.deobfuscate.deobfuscate`: letter spacing, leetspeak, homoglyphs,
separators, invisible characters and stretched letters undone), then its language is identified
(:mod:`parrotwatch.detectors.language`). One model of the form above is fitted per language it
reads (:data:`LANGUAGES`), each on its own seed files (:data:`SEEDS`): English on the seed set plus
a counterfactual identity set (benign and toxic sentences balanced over 45 identity terms, the
augmentation of Dixon et al. 2018 against identity-term bias), French on a French seed set. A text
whose language is undetermined (too short to tell) gets the larger of the scores; a text in a
language the scorer does not read gets no score (NaN here, null when stored) and a reason, never
a confident 0.

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

from parrotwatch.detectors.deobfuscate import deobfuscate
from parrotwatch.detectors.language import UNDETERMINED, LanguageSupport, identify
from parrotwatch.detectors.models.batching import run_halving_on_oom
from parrotwatch.detectors.models.encoder import EncoderSpec, MissingModelError, get_encoder

DATA = Path(__file__).resolve().parent / "data"
SEED_PATH = DATA / "toxicity_seed.jsonl"
IDENTITY_SEED_PATH = DATA / "toxicity_seed_identity.jsonl"
IDENTITY_FRAMES_PATH = DATA / "toxicity_seed_identity_frames.jsonl"  # bench/build_identity_frames.py
FR_SEED_PATH = DATA / "toxicity_seed_fr.jsonl"
#: The languages the default reads, and the seed files each one's model is fitted on.
SEEDS: dict[str, tuple[Path, ...]] = {"en": (SEED_PATH, IDENTITY_SEED_PATH, IDENTITY_FRAMES_PATH),
                                      "fr": (FR_SEED_PATH,)}
LANGUAGES = tuple(SEEDS)
MAX_READ_CHARS = 8192  # deobfuscation and language identification read this much of a text
_EPS = 1e-6
_FITS: dict[tuple, object] = {}  # (seed files' sha256, encoder spec, seed, C) -> weights; n-gram models
_LOCK = threading.Lock()


def load_labelled(*paths: str | Path) -> tuple[list[str], np.ndarray, list[str]]:
    """``(texts, toxic labels, categories)`` of JSON-lines files of ``{text, toxic, category}``,
    concatenated in order."""
    rows = [json.loads(line) for path in paths
            for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    path = ", ".join(map(str, paths))
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
    ``toxicity = sigmoid(stack_coef[0] z_emb + stack_coef[1] logit(p_prof) [+ stack_coef[2] z_ngram]
    + stack_intercept)``, with z_ngram the logit of :class:`NgramToxicity` when it was stacked."""

    emb_coef: np.ndarray
    emb_intercept: float
    stack_coef: tuple[float, ...]
    stack_intercept: float

    def embedding_logit(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64) @ self.emb_coef + self.emb_intercept

    @property
    def uses_ngrams(self) -> bool:
        return len(self.stack_coef) == 3

    def combine(self, embeddings: np.ndarray, p_prof: np.ndarray,
                z_ngram: np.ndarray | None = None) -> np.ndarray:
        z = self.stack_coef[0] * self.embedding_logit(embeddings) + self.stack_coef[1] * _logit(p_prof)
        if self.uses_ngrams:
            if z_ngram is None:
                raise ValueError("these weights stack an n-gram model: pass its logits (z_ngram)")
            z = z + self.stack_coef[2] * np.asarray(z_ngram, dtype=np.float64)
        return _sigmoid(z + self.stack_intercept)

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
                seed: int = 0, C: float = 0.1, folds: int = 5, class_weight: str | None = None,
                ngram_oof: np.ndarray | None = None) -> ToxicityWeights:
    """Fit the embedding model on all rows and the stacker on its out-of-fold logits (deterministic:
    lbfgs, folds shuffled with ``seed``); ``ngram_oof``: an n-gram model's out-of-fold logits on
    the same rows (:func:`ngram_oof`), stacked as a third input when given."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = np.asarray(embeddings, dtype=np.float64), np.asarray(labels)
    emb = make_pipeline(StandardScaler(),
                        LogisticRegression(C=C, max_iter=2000, class_weight=class_weight))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    z_oof = cross_val_predict(emb, x, y, cv=cv, method="decision_function")
    emb.fit(x, y)
    scaler, lr = emb[0], emb[-1]
    coef = lr.coef_[0] / scaler.scale_  # fold the standardisation into the raw-embedding weights
    intercept = float(lr.intercept_[0] - coef @ scaler.mean_)
    inputs = [z_oof, _logit(p_prof)]
    if ngram_oof is not None:
        inputs.append(np.asarray(ngram_oof, dtype=np.float64))
    stack = LogisticRegression(max_iter=1000, class_weight=class_weight).fit(np.column_stack(inputs), y)
    return ToxicityWeights(coef, intercept, tuple(float(c) for c in stack.coef_[0]),
                           float(stack.intercept_[0]))


def ngram_pipeline(C: float = 3.0):
    """TF-IDF character 2-5-grams within word boundaries and word 1-2-grams (accents stripped,
    sublinear tf) into an L2 logistic regression: :class:`NgramToxicity`'s model, unfitted."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, strip_accents="unicode"),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode"))
    return make_pipeline(features, LogisticRegression(C=C, max_iter=3000))


def ngram_oof(texts: Sequence[str], labels: np.ndarray, seed: int = 0, folds: int = 5,
              C: float = 3.0) -> np.ndarray:
    """Out-of-fold logits of :func:`ngram_pipeline` (the folds of :func:`fit_weights`)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(ngram_pipeline(C), list(texts), np.asarray(labels), cv=cv,
                             method="decision_function")


class NgramToxicity:
    """An n-gram toxicity model (:func:`ngram_pipeline`, the "char-ngram LR" that matched
    Wulczyn, Thain & Dixon 2017's best models on Wikipedia comments):

        z_ngram = w . [tfidf_char(x), tfidf_word(x)] + b,    P(toxic) = sigmoid(z_ngram)

    Alone, the default of a language the sentence encoder does not read (all-MiniLM-L6-v2 was
    trained on English): on the French seed set (5-fold CV) AUC 0.92, against 0.84 for a logistic
    regression on the embeddings and 0.92 for both stacked. In English, the third input of the
    stacker. Fitted on first use from its seed files (about a second for 1,000 texts,
    deterministic: lbfgs), once per process; pickles as its seed files and refits on the other side."""

    def __init__(self, paths: Sequence[Path], C: float = 3.0):
        self.paths, self.C = tuple(paths), C

    def _fitted(self):
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in self.paths)).hexdigest()
        key = ("ngram", digest, self.C)
        with _LOCK:
            if key not in _FITS:
                texts, labels, _ = load_labelled(*self.paths)
                _FITS[key] = ngram_pipeline(self.C).fit([deobfuscate(t) for t in texts], labels)
            return _FITS[key]

    def logit(self, texts: Sequence[str]) -> np.ndarray:
        """z_ngram of each (already deobfuscated) text."""
        return self._fitted().decision_function(list(texts)).astype(np.float64)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """P(toxic) of each (already deobfuscated) text."""
        return _sigmoid(self.logit(texts))


@dataclass(frozen=True)
class ToxicityAssessment:
    """Per text: ``scores`` (NaN where unread), the ``languages`` identified, and ``reasons``
    (None when scored, else why not: the language is one the scorer does not read)."""

    scores: np.ndarray
    languages: list[str]
    reasons: list[str | None]


class ToxicityScorer:
    """Batch toxicity scores in [0, 1] (higher = more likely toxic); see the module docstring.

    ``score(texts, embeddings=None)`` takes the texts' embeddings from the same encoder when the
    caller has them, so the stream encodes each response once for all detectors (a text that
    deobfuscation changes is encoded again, as read). Texts in a language the scorer does not read
    score NaN (:meth:`assess` says why). Pickles small: the fitted weights and the options, never
    the encoder or classifier weights (reloaded, once per process, on the other side). A
    ``protocols.RequestScorer`` of ``toxicity`` (:meth:`scores`).
    """

    score_names: tuple[str, ...] = ("toxicity",)

    def __init__(self, encoder_spec: EncoderSpec | None = None, classifier_path: str | None = None,
                 seed: int = 0, *, C: float = 0.1, classifier_weight: float = 0.5,
                 seed_path: str | Path | None = None, seeds: dict[str, Sequence[str | Path]] | None = None,
                 cache_dir: str | Path | None = None, device: str | None = None, batch_size: int = 32):
        if not 0.0 <= classifier_weight <= 1.0:
            raise ValueError(f"classifier_weight must be in [0, 1], got {classifier_weight}")
        self.encoder_spec = encoder_spec or EncoderSpec()
        self.classifier_path = classifier_path
        self.seed = seed
        self.C = C
        self.classifier_weight = classifier_weight if classifier_path else 0.0
        chosen = {lang: tuple(Path(p) for p in paths) for lang, paths in (seeds or SEEDS).items()}
        if seed_path:  # your own English seed file, alone
            chosen["en"] = (Path(seed_path),)
        if not chosen or not all(chosen.values()):
            raise ValueError(f"seeds must give each language at least one file, got {seeds}")
        self.seeds = chosen
        self.support = LanguageSupport("toxicity", tuple(chosen))
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

    @property
    def languages(self) -> tuple[str, ...]:
        return self.support.languages

    def _reset(self) -> None:
        self._classifier = None
        self._weights = self._fit_all() if self.classifier_weight < 1.0 else None

    def _fit_all(self) -> dict[str, ToxicityWeights | None]:
        """English: the stacked weights (embedding, profanity and n-gram models); other languages:
        None, their :class:`NgramToxicity` alone."""
        self._ngrams = {lang: NgramToxicity(paths) for lang, paths in self.seeds.items()}
        return {lang: self._fit(lang) if lang == "en" else None for lang in self.languages}

    def _fit(self, language: str) -> ToxicityWeights:
        """The fitted default of ``language`` for (seed files' sha256, encoder spec, seed, C): from
        this process's cache, else from ``cache_dir`` when given, else fitted now (and written there)."""
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in self.seeds[language])).hexdigest()
        key = (digest, self.encoder_spec, self.seed, self.C, "stacked-ngram")
        with _LOCK:
            name = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
            path = self.cache_dir / f"toxicity-{name}.npz" if self.cache_dir else None
            if key not in _FITS:
                _FITS[key] = (ToxicityWeights.load(path) if path and path.is_file()
                              else self._fit_now(self.seeds[language]))
            if path and not path.is_file():
                _FITS[key].save(path)
            return _FITS[key]

    def _fit_now(self, paths: Sequence[Path]) -> ToxicityWeights:
        texts, labels, _ = load_labelled(*paths)
        texts = [deobfuscate(t) for t in texts]
        emb = get_encoder(self.encoder_spec).encode(texts)
        return fit_weights(emb, profanity_prob(texts), labels, self.seed, self.C,
                           ngram_oof=ngram_oof(texts, labels, self.seed))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_classifier": None}  # n-gram models pickle as their seed files

    def score(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """``toxicity`` of each text, float64 in [0, 1] (NaN: a language it does not read), in
        input order."""
        return self.assess(texts, embeddings).scores

    def assess(self, texts: Sequence[str], embeddings: np.ndarray | None = None,
               languages: Sequence[str] | None = None) -> ToxicityAssessment:
        """Scores, languages and reasons of ``texts``; ``languages`` (ISO 639-1 codes or "und")
        when the caller has identified them already, on the texts as deobfuscated."""
        if isinstance(texts, str):
            raise TypeError("score() takes a sequence of texts; wrap a single text in a list")
        texts = list(texts)
        heads = [t[:MAX_READ_CHARS] for t in texts]
        read = [deobfuscate(h) for h in heads]
        codes = list(languages) if languages is not None else [identify(r).code for r in read]
        if len(codes) != len(texts):
            raise ValueError(f"got {len(codes)} languages for {len(texts)} texts")
        reasons = [self.support.reason(c) for c in codes]
        out = np.full(len(texts), np.nan)
        todo = [i for i, r in enumerate(reasons) if r is None]
        if todo:
            changed = [i for i in todo if read[i] != heads[i]]
            emb = None
            if self.classifier_weight < 1.0:
                emb = self._check_embeddings(texts, embeddings)
                emb = emb[todo] if emb is not None else get_encoder(self.encoder_spec).encode(
                    [read[i] for i in todo])
                if changed and embeddings is not None:  # read differs from the text: encode it as read
                    at = {i: k for k, i in enumerate(todo)}
                    emb = np.array(emb, dtype=np.float64)
                    emb[[at[i] for i in changed]] = get_encoder(self.encoder_spec).encode(
                        [read[i] for i in changed])
            out[todo] = self._score_read([read[i] for i in todo], emb, [codes[i] for i in todo])
        return ToxicityAssessment(out, codes, reasons)

    def _check_embeddings(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray | None:
        if embeddings is None:
            return None
        dim = self._weights["en"].emb_coef.size if self._weights.get("en") else np.shape(embeddings)[-1]
        if np.shape(embeddings) != (len(texts), dim):
            raise ValueError(f"embeddings must have shape ({len(texts)}, {dim}) "
                             f"from encoder {self.encoder_spec.model!r}, got {np.shape(embeddings)}")
        return np.asarray(embeddings)

    def _score_read(self, read: list[str], emb: np.ndarray | None, codes: list[str]) -> np.ndarray:
        """Scores of texts in languages it reads (as deobfuscated); undetermined: the largest."""
        w = self.classifier_weight
        out = np.zeros(len(read))
        if w < 1.0:
            default = np.full(len(read), -np.inf)
            p_prof = profanity_prob(read)
            for lang, weights in self._weights.items():
                rows = [k for k, c in enumerate(codes) if c in (lang, UNDETERMINED)]
                if rows:
                    default[rows] = np.maximum(default[rows], self._language_score(
                        lang, [read[k] for k in rows], emb[rows] if weights else None, p_prof[rows]))
            out += (1.0 - w) * default
        if w > 0.0:
            out += w * self.classifier_score(read)
        return np.clip(out, 0.0, 1.0)

    def scores(self, batch: Sequence[str]) -> list[dict[str, float | None]]:
        """``{"toxicity": p}`` per text of ``batch``, as :meth:`score` (None where unread)."""
        return [{"toxicity": None if np.isnan(p) else float(p)} for p in self.score(batch)]

    @classmethod
    def _unit_test_batch(cls) -> list[str]:
        return ["Thanks, that fixed my build.", "You are a worthless idiot and everyone knows it.",
                "The Eiffel Tower is 330 metres tall and opened in 1889."]

    def default_score(self, texts: Sequence[str], embeddings: np.ndarray | None = None,
                      language: str = "en") -> np.ndarray:
        """The offline default (stacked embedding + profanity models) of ``language`` alone, on the
        texts as given (no deobfuscation, no language identification)."""
        texts = list(texts)
        if self._weights is None:
            self._weights = self._fit_all()
        emb = None
        if self._weights[language] is not None:
            emb = self._check_embeddings(texts, embeddings)
            if emb is None:
                emb = get_encoder(self.encoder_spec).encode(texts)
        return self._language_score(language, texts, emb, profanity_prob(texts))

    def _language_score(self, language: str, texts: list[str], emb: np.ndarray | None,
                        p_prof: np.ndarray) -> np.ndarray:
        weights, ngrams = self._weights[language], self._ngrams[language]
        if weights is None:
            return ngrams.predict(texts)
        return weights.combine(emb, p_prof, ngrams.logit(texts) if weights.uses_ngrams else None)

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
