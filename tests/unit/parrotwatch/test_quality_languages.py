"""The quality pipeline's language handling (issue 18): the language is stored, and the detectors
that read only some languages give null and an ``*_unread`` flag instead of a confident score."""

from __future__ import annotations

import pytest

pytest.importorskip("py3langid", reason="needs the models extra: pip install -e '.[models]'")
pytest.importorskip("sentence_transformers", reason="needs the models extra: pip install -e '.[models]'")

from parrotwatch.quality import QualityConfig, score_quality  # noqa: E402
from parrotwatch.scoring import parse_inference  # noqa: E402
from parrotwatch.traffic import encode, generate_inference_events  # noqa: E402


def _events(responses: list[str], sources: bool) -> list:
    out = []
    for base, response in zip(generate_inference_events(len(responses), seed=18), responses, strict=True):
        base.update(
            response=response,
            logprobs=None,
            sources=["The report was published in May."] if sources else None,
        )
        out.append(parse_inference(encode(base)))
    return out


def test_languages_decide_what_is_scored():
    events = _events(
        [
            "Das ist wirklich eine schlechte Idee, und du bist ein Idiot.",
            "T'es vraiment qu'un gros connard, ferme ta gueule.",
            "The report was published in May.",
        ],
        sources=True,
    )
    de, fr, en = score_quality(events, QualityConfig(detectors=("toxicity", "hallucination")))
    assert (de.language, fr.language, en.language) == ("de", "fr", "en")
    assert de.scores["toxicity"] is None and de.scores["toxicity_unread"] == 1.0
    assert fr.scores["toxicity"] > 0.5 and fr.scores["toxicity_unread"] == 0.0
    assert en.scores["toxicity"] < 0.5 and en.scores["toxicity_unread"] == 0.0
    # grounding reads English only: the German and French answers are not judged
    assert "hallucination" not in de.scores and de.scores["hallucination_unread"] == 1.0
    assert "hallucination" not in fr.scores and fr.scores["hallucination_unread"] == 1.0
    assert en.scores["hallucination"] == 0.0 and en.scores["hallucination_unread"] == 0.0


def test_without_sources_hallucination_unread_stays_unset_and_language_is_kept():
    (r,) = score_quality(
        _events(["Это очень плохая идея."], sources=False), QualityConfig(detectors=("hallucination",))
    )
    assert r.language == "ru" and "hallucination_unread" not in r.scores
