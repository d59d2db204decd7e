"""Build the short identity statements of the English toxicity seed (``detectors/data/
toxicity_seed_identity_frames.jsonl``): balanced identity mentions against identity-term bias.

Dixon et al. 2018 ("Measuring and Mitigating Unintended Bias in Text Classification", AIES) trace
identity-term bias to training data where identity terms appear mostly in toxic texts, and
mitigate it by adding benign texts that mention each identity. The project's hand-written
identity seed (``toxicity_seed_identity.jsonl``) does this with sentences of 8-30 words; short
statements ("He is gay.", "Some of my colleagues are Muslims.") were still flagged, because the
term then dominates the sentence embedding. This script adds, for each of the 45 identity terms,
5 benign short statements and 3 short toxic generalisations (so that an identity mention does
not become a sign of benign text either), drawn from the frames below with a fixed seed.

The frames were written for training only: none is a template of the evaluation set
(``bench/data/toxicity_identity_eval.jsonl``, built by ``bench/build_identity_eval.py``), and the
development frames (:data:`DEV_BENIGN`, :data:`DEV_TOXIC`, used by ``bench/toxicity_robustness.py
--dev`` to choose the model) are disjoint from both.

Usage: .venv/bin/python bench/build_identity_frames.py [--out PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "detectors" / "data" / "toxicity_seed_identity_frames.jsonl"

#: term -> (predicate after "is"/"am", plural)
FORMS: dict[str, tuple[str, str]] = {
    "woman": ("a woman", "women"),
    "man": ("a man", "men"),
    "transgender": ("transgender", "transgender people"),
    "trans": ("trans", "trans people"),
    "nonbinary": ("nonbinary", "nonbinary people"),
    "gay": ("gay", "gay people"),
    "lesbian": ("a lesbian", "lesbians"),
    "bisexual": ("bisexual", "bisexual people"),
    "queer": ("queer", "queer people"),
    "straight": ("straight", "straight people"),
    "asexual": ("asexual", "asexual people"),
    "Muslim": ("Muslim", "Muslims"),
    "Christian": ("Christian", "Christians"),
    "Jewish": ("Jewish", "Jews"),
    "Hindu": ("Hindu", "Hindus"),
    "Buddhist": ("Buddhist", "Buddhists"),
    "Sikh": ("Sikh", "Sikhs"),
    "Catholic": ("Catholic", "Catholics"),
    "atheist": ("an atheist", "atheists"),
    "Mexican": ("Mexican", "Mexicans"),
    "Chinese": ("Chinese", "Chinese people"),
    "Indian": ("Indian", "Indians"),
    "American": ("American", "Americans"),
    "French": ("French", "the French"),
    "Nigerian": ("Nigerian", "Nigerians"),
    "Syrian": ("Syrian", "Syrians"),
    "Polish": ("Polish", "Poles"),
    "immigrant": ("an immigrant", "immigrants"),
    "refugee": ("a refugee", "refugees"),
    "Black": ("Black", "Black people"),
    "white": ("white", "white people"),
    "Asian": ("Asian", "Asians"),
    "Latino": ("Latino", "Latinos"),
    "Arab": ("Arab", "Arabs"),
    "Native American": ("Native American", "Native Americans"),
    "blind": ("blind", "blind people"),
    "deaf": ("deaf", "deaf people"),
    "disabled": ("disabled", "disabled people"),
    "autistic": ("autistic", "autistic people"),
    "wheelchair user": ("a wheelchair user", "wheelchair users"),
    "mentally ill": ("mentally ill", "people with mental illness"),
    "old": ("old", "old people"),
    "young": ("young", "young people"),
    "elderly": ("elderly", "elderly people"),
    "teenage": ("a teenager", "teenagers"),
}
TRAIN_BENIGN = [
    "She is {p}.",
    "He is {p}.",
    "My cousin is {p}.",
    "Our teacher is {p}.",
    "I'm {p}, by the way.",
    "You're {p}? Me too!",
    "The new nurse on our ward is {p}.",
    "Dad says his boss is {p}.",
    "{P} are welcome here.",
    "I know many {pl}.",
    "We talked with some {pl} after the match.",
    "Some of my colleagues are {pl}.",
]
TRAIN_TOXIC = [
    "{P} are filth.",
    "I can't stand {pl}.",
    "Get rid of all {pl}.",
    "{P} are subhuman.",
    "Never trust {pl}, they are all liars.",
    "{P} should be kicked out of every job.",
]
#: Development frames: never trained on, never in the evaluation set.
DEV_BENIGN = [
    "Her husband is {p}.",
    "Apparently the mayor is {p}.",
    "My aunt is {p}.",
    "Yes, I'm {p}.",
    "Our landlord is {p}.",
    "{P} live on my street.",
    # added in the second round (docs/toxicity.md, "Counter-speech"): counter-speech, everyday life
    "Nobody should be insulted for being {p}.",
    "{P} should be treated fairly at work.",
    "I'm {p} and I coach the kids' football team.",
]
DEV_TOXIC = [
    "{P} are cockroaches.",
    "I wish all {pl} would just disappear.",
    "{P} are too stupid to vote.",
    "Nobody wants {pl} in this neighbourhood, get out.",
    "Disgusting {pl} ruin everything they touch.",
    # second round: the hostile shapes that counter-speech training data must not unlearn
    "We all hate {pl} around here.",
    "Honestly, being {p} is shameful.",
]


def fill(frame: str, term: str) -> str:
    p, pl = FORMS[term]
    return frame.format(p=p, pl=pl, P=pl[0].upper() + pl[1:])


def rows(seed: int = 0, benign: int = 5, toxic: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for term in FORMS:
        out += [
            {"text": fill(f, term), "toxic": 0, "category": "identity_mention", "identity": term}
            for f in rng.sample(TRAIN_BENIGN, benign)
        ]
        out += [
            {"text": fill(f, term), "toxic": 1, "category": "identity_attack", "identity": term}
            for f in rng.sample(TRAIN_TOXIC, toxic)
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT, help=f"output JSON lines (default {OUT})")
    ap.add_argument("--seed", type=int, default=0, help="frame sampling seed")
    args = ap.parse_args()
    data = rows(args.seed)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    print(f"wrote {len(data)} rows ({sum(r['toxic'] for r in data)} toxic) to {args.out}")


if __name__ == "__main__":
    main()
