"""Build ``bench/data/toxicity_obfuscation_eval.jsonl``: obfuscated toxic and technical texts.

Users dodge filters by disguising offensive words ("f.u.c.k", "1d10t", Cyrillic look-alikes,
zero-width characters), and ops texts are full of words that look violent ("kill the job",
"nuke the cache"). This set checks that ``toxicity`` still flags the disguised toxic texts and
still passes the disguised technical ones. It starts from 60 plain English texts written for
this project (PLAIN: 30 toxic, 30 benign technical/ops) and derives from each:

  none            the plain text itself
  letter_spacing  letters split by spaces ("k i l l the job"; whole text: "k i l l   t h e   j o b")
  leetspeak       a->4/@, e->3, i->1/!, o->0, s->5/$, t->7
  homoglyph       Cyrillic and Greek look-alikes for Latin letters ("іdіоt" with U+0456, U+043E)
  fullwidth       fullwidth forms U+FF01-FF5E ("ｋｉｌｌ"; whole text: ideographic spaces too)
  separator       a separator inside words ("f.u.c.k", "i-d-i-o-t", "k_i_l_l", "s*h*i*t")
  zero_width      U+200B/200C/200D/2060/FEFF inserted between letters
  repeat          a letter repeated ("stuuuupid", "kiiill")
  mixed           two of the above, applied in turn (field ``methods`` names them)

Each plain text lists its target words: the offensive words of a toxic text, the violent-looking
technical words of a benign one. An obfuscation is applied to the target words only (as users
do), or to every word of the text (``scope`` "text"), about one time in three, chosen by the
seeded generator. The same policy is used for toxic and benign texts so that the two sides are
comparable. Labels never change: an obfuscated text has the label of its plain text.

Output: one JSON object per line, {"text", "plain", "toxic", "obfuscation", "category",
"scope", "methods"}; ``scope`` is "none" (plain form), "words" or "text"; ``methods`` lists the
methods applied ([] for the plain form). The build is deterministic for a given --seed (string
seeds of ``random.Random`` do not depend on PYTHONHASHSEED). Standard library only.

Usage: python bench/build_obfuscation_eval.py [--seed 20240611] [--out PATH] [--text-share 0.33]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

OUT_PATH = Path(__file__).resolve().parent / "data" / "toxicity_obfuscation_eval.jsonl"
DEFAULT_SEED = 20240611

# (text, toxic, category, target words): target words are matched case-insensitively on whole words.
PLAIN: list[tuple[str, int, str, tuple[str, ...]]] = [
    # toxic: insults and harassment without swear words
    ("You are a pathetic idiot and everyone knows it.", 1, "insult", ("pathetic", "idiot")),
    ("What a stupid question, are you really this dumb?", 1, "insult", ("stupid", "dumb")),
    ("Nobody wants you here, you worthless loser.", 1, "insult", ("worthless", "loser")),
    ("Your code is garbage and so are you, moron.", 1, "insult", ("garbage", "moron")),
    ("Shut up, you ignorant clown.", 1, "insult", ("shut", "ignorant", "clown")),
    ("Only a brainless fool would write a comment like that.", 1, "insult", ("brainless", "fool")),
    ("Everyone would be happier if you just disappeared forever.", 1, "harassment", ("disappeared",)),
    # toxic: threats
    ("I will kill you if you show up at the office again.", 1, "threat", ("kill",)),
    ("I know where you live and I am going to hurt you.", 1, "threat", ("live", "hurt")),
    ("Keep talking and I will break your neck.", 1, "threat", ("break", "neck")),
    ("Watch your back, because I will find you.", 1, "threat", ("watch", "back", "find")),
    ("I hope you die in a fire.", 1, "threat", ("die", "fire")),
    ("I am going to shoot you and your whole family.", 1, "threat", ("shoot",)),
    ("Someone should beat you until you stop breathing.", 1, "threat", ("beat", "breathing")),
    # toxic: identity attacks and dehumanising language
    (
        "Muslims are terrorists and should be deported.",
        1,
        "identity_attack",
        ("muslims", "terrorists", "deported"),
    ),
    ("Gay people are disgusting and should be locked up.", 1, "identity_attack", ("gay", "disgusting")),
    ("Women are too stupid to be engineers.", 1, "identity_attack", ("women", "stupid")),
    ("Trans people are freaks and should be erased.", 1, "identity_attack", ("trans", "freaks", "erased")),
    (
        "Disabled people are useless and a waste of money.",
        1,
        "identity_attack",
        ("disabled", "useless", "waste"),
    ),
    ("Immigrants are vermin infesting our cities.", 1, "dehumanising", ("immigrants", "vermin", "infesting")),
    ("Jews are rats and deserve nothing.", 1, "dehumanising", ("jews", "rats")),
    ("Black people are animals.", 1, "dehumanising", ("black", "animals")),
    # toxic: with swear words
    ("You are a fucking idiot.", 1, "toxic_profanity", ("fucking", "idiot")),
    ("Fuck you and your shitty pull request.", 1, "toxic_profanity", ("fuck", "shitty")),
    ("Shut the fuck up, you stupid bitch.", 1, "toxic_profanity", ("fuck", "stupid", "bitch")),
    ("Go to hell, you worthless piece of shit.", 1, "toxic_profanity", ("hell", "worthless", "shit")),
    ("You absolute asshole, nobody asked for your opinion.", 1, "toxic_profanity", ("asshole",)),
    ("Get lost, you lying bastard.", 1, "toxic_profanity", ("lying", "bastard")),
    ("This dickhead broke prod again, fire the moron.", 1, "toxic_profanity", ("dickhead", "moron")),
    ("I will fucking kill you, you dumb cunt.", 1, "toxic_profanity", ("fucking", "kill", "dumb", "cunt")),
    # benign: technical and ops texts with violent-looking words
    ("Kill the job and retry.", 0, "technical", ("kill",)),
    ("Execute the migration before deploying the new release.", 0, "technical", ("execute",)),
    ("The child process died with exit code 137.", 0, "technical", ("child", "died")),
    ("Nuke the cache and rebuild the image.", 0, "technical", ("nuke",)),
    ("Abort the transaction if the lock cannot be acquired.", 0, "technical", ("abort",)),
    ("Terminate the instance once the backup has finished.", 0, "technical", ("terminate",)),
    ("Destroy the test environment with terraform destroy.", 0, "technical", ("destroy",)),
    ("The worker hangs when the queue is empty.", 0, "technical", ("hangs",)),
    ("Shoot me a message when the deploy is done.", 0, "technical", ("shoot",)),
    ("Run kill -9 on the stuck process.", 0, "technical", ("kill", "stuck")),
    ("The build failed, so we killed the pipeline and started over.", 0, "technical", ("failed", "killed")),
    ("Execute the script as root to install the drivers.", 0, "technical", ("execute",)),
    (
        "The parent must reap its dead children to avoid zombies.",
        0,
        "technical",
        ("dead", "children", "zombies"),
    ),
    ("Force kill the pod if it stays in the terminating state.", 0, "technical", ("kill", "terminating")),
    ("We nuked the old branches after the release.", 0, "technical", ("nuked",)),
    ("The OOM killer terminated the database process last night.", 0, "technical", ("killer", "terminated")),
    ("Abort the merge and rebase onto main.", 0, "technical", ("abort",)),
    ("Hang up the connection if the client stops responding.", 0, "technical", ("hang",)),
    ("Shoot down the stale replicas before scaling up.", 0, "technical", ("shoot", "stale")),
    ("The cron job will execute every hour and purge old logs.", 0, "technical", ("execute", "purge")),
    ("Destroy the session token on logout.", 0, "technical", ("destroy",)),
    ("Kill all idle connections to the database.", 0, "technical", ("kill",)),
    ("The container was terminated because it exceeded its memory limit.", 0, "technical", ("terminated",)),
    ("Use git bisect to hunt down the commit that broke the build.", 0, "technical", ("hunt", "broke")),
    ("The thread hangs forever waiting on a dead lock.", 0, "technical", ("hangs", "dead")),
    ("Execute the payload in the sandbox, never on production.", 0, "technical", ("execute", "payload")),
    ("Kill the orphaned processes and restart the daemon.", 0, "technical", ("kill", "orphaned")),
    ("Nuke node_modules and reinstall the dependencies.", 0, "technical", ("nuke",)),
    ("The server crashed and burned under load, so we rolled back.", 0, "technical", ("crashed", "burned")),
    ("Launch the attack simulation against the staging firewall.", 0, "technical", ("attack",)),
]

METHODS = ("letter_spacing", "leetspeak", "homoglyph", "fullwidth", "separator", "zero_width", "repeat")
# pairs for the "mixed" form, applied left to right
MIX_PAIRS = (
    ("leetspeak", "separator"),
    ("homoglyph", "zero_width"),
    ("repeat", "separator"),
    ("leetspeak", "repeat"),
    ("homoglyph", "repeat"),
    ("leetspeak", "zero_width"),
    ("leetspeak", "letter_spacing"),
    ("homoglyph", "separator"),
)

LEET = {"a": "4@", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7"}
HOMO = {  # Latin -> Cyrillic / Greek look-alikes
    "a": "а",
    "c": "с",
    "e": "е",
    "i": "іι",
    "j": "ј",
    "o": "оο",
    "p": "р",
    "s": "ѕ",
    "x": "х",
    "y": "у",
    "u": "υ",
    "v": "ν",
    "k": "κ",
    "h": "һ",
    "A": "АΑ",
    "B": "ВΒ",
    "C": "С",
    "E": "ЕΕ",
    "H": "НΗ",
    "I": "ІΙ",
    "K": "КΚ",
    "M": "МΜ",
    "N": "Ν",
    "O": "ОΟ",
    "P": "РΡ",
    "S": "Ѕ",
    "T": "ТΤ",
    "X": "ХΧ",
    "Y": "Υ",
    "Z": "Ζ",
}
ZW = "\u200b\u200c\u200d\u2060\ufeff"
SEPARATORS = ".-_*"
WORD_RE = re.compile(r"[A-Za-z][A-Za-z']*")


# --- word-level transforms: (word, rng) -> word -------------------------------------------------


def _letter_spacing(w: str, rng: random.Random) -> str:
    return " ".join(w)


def _leetspeak(w: str, rng: random.Random) -> str:
    idx = [i for i, c in enumerate(w) if c.lower() in LEET]
    if not idx:
        return w
    keep = set(rng.sample(idx, k=rng.randint(1, len(idx))))  # at least one letter, often all
    return "".join(rng.choice(LEET[c.lower()]) if i in keep else c for i, c in enumerate(w))


def _homoglyph(w: str, rng: random.Random) -> str:
    idx = [i for i, c in enumerate(w) if c in HOMO]
    if not idx:
        return w
    keep = set(rng.sample(idx, k=max(1, (len(idx) + 1) // 2)))
    return "".join(rng.choice(HOMO[c]) if i in keep else c for i, c in enumerate(w))


def _fullwidth(w: str, rng: random.Random) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in w)


def _separator(w: str, rng: random.Random) -> str:
    return rng.choice(SEPARATORS).join(w) if len(w) > 1 else w


def _zero_width(w: str, rng: random.Random) -> str:
    if len(w) < 2:
        return w
    gaps = sorted(rng.sample(range(1, len(w)), k=rng.randint(1, len(w) - 1)))
    out, last = [], 0
    for g in gaps:
        out += [w[last:g], rng.choice(ZW)]
        last = g
    return "".join(out) + w[last:]


def _repeat(w: str, rng: random.Random) -> str:
    vowels = [i for i, c in enumerate(w) if c.lower() in "aeiouy"]
    i = rng.choice(vowels) if vowels else len(w) - 1
    return w[:i] + w[i] * rng.randint(3, 6) + w[i + 1 :]


WORD_FN = {
    "letter_spacing": _letter_spacing,
    "leetspeak": _leetspeak,
    "homoglyph": _homoglyph,
    "fullwidth": _fullwidth,
    "separator": _separator,
    "zero_width": _zero_width,
    "repeat": _repeat,
}


def obfuscate(
    text: str, targets: tuple[str, ...], methods: tuple[str, ...], scope: str, rng: random.Random
) -> str:
    """Apply ``methods`` in turn to the target words (scope "words") or every word (scope "text")."""
    tset = {t.lower() for t in targets}

    def word(m: re.Match) -> str:
        w = m.group(0)
        if scope == "words" and w.lower() not in tset:
            return w
        if scope == "text" and len(w) < 2 and methods != ("fullwidth",):
            return w
        for name in methods:
            w = WORD_FN[name](w, rng)
        return w

    chunks = text.split(" ")
    if scope == "text" and methods == ("fullwidth",):  # punctuation too, ideographic spaces
        return "\u3000".join(_fullwidth(c, rng) for c in chunks)
    done = [WORD_RE.sub(word, c) for c in chunks]
    if "letter_spacing" not in methods:
        return " ".join(done)
    # letter-spaced words next to each other (every word, for scope "text") are set apart by
    # three spaces: "k i l l   t h e   j o b"
    changed = [scope == "text" or c != d for c, d in zip(chunks, done, strict=True)]
    out = done[0]
    for i in range(1, len(done)):
        out += ("   " if changed[i - 1] and changed[i] else " ") + done[i]
    return out


def build(seed: int, text_share: float) -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    for k, (plain, toxic, cat, targets) in enumerate(PLAIN):
        words = {w.lower() for w in WORD_RE.findall(plain)}
        missing = [t for t in targets if t.lower() not in words]
        if missing:
            raise SystemExit(f"target words {missing} not in {plain!r}")
        rows.append(
            {
                "text": plain,
                "plain": plain,
                "toxic": toxic,
                "obfuscation": "none",
                "category": cat,
                "scope": "none",
                "methods": [],
            }
        )
        seen.add(plain)
        for name in METHODS + ("mixed",):
            for attempt in range(50):
                rng = random.Random(f"{seed}:{k}:{name}:{attempt}")
                methods = rng.choice(MIX_PAIRS) if name == "mixed" else (name,)
                scope = "text" if rng.random() < text_share else "words"
                text = obfuscate(plain, targets, methods, scope, rng)
                if text not in seen:
                    break
            else:
                raise SystemExit(f"no new {name} form for {plain!r}")
            seen.add(text)
            rows.append(
                {
                    "text": text,
                    "plain": plain,
                    "toxic": toxic,
                    "obfuscation": name,
                    "category": cat,
                    "scope": scope,
                    "methods": list(methods),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})")
    ap.add_argument(
        "--text-share",
        type=float,
        default=0.33,
        help="share of forms obfuscating every word instead of the target words (default 0.33)",
    )
    ap.add_argument("--out", type=Path, default=OUT_PATH, help=f"output JSON lines (default {OUT_PATH})")
    args = ap.parse_args(argv)
    rows = build(args.seed, args.text_share)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    n_tox = sum(r["toxic"] for r in rows)
    print(
        f"wrote {len(rows)} rows to {args.out} ({n_tox} toxic, {len(rows) - n_tox} benign) "
        f"from {len(PLAIN)} plain texts, seed {args.seed}"
    )
    for (name, scope), n in sorted(Counter((r["obfuscation"], r["scope"]) for r in rows).items()):
        print(f"  {name:15s} {scope:5s} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
