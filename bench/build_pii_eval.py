"""Build bench/data/pii_eval.jsonl: LLM-prompt/response-like texts with gold PII spans (seeded).

Each line: ``{"id", "split", "kind", "category", "text", "spans": [{"start", "end", "type"}]}``.

- ``kind``: ``positive`` (one PII value of ``category``, an entity type, in a template sentence),
  ``mixed`` (two to four values of several types), ``hard_negative`` (no PII, but strings that
  look like it: order numbers, version strings, timestamps, hex hashes, ISBNs, card numbers
  failing Luhn, IBANs with wrong check digits, invalid SSNs, file names with country-domain
  extensions, dates that are not dates of birth, ...; ``category`` says which), ``plain`` (no
  PII, ordinary chat).
- ``split``: ``dev`` or ``test``, half each after a seeded shuffle. Detector choices were made on
  ``dev``; figures are reported on ``test`` (bench/pii_eval.py).

Values are generated, never real: Luhn-valid card numbers with issuer prefixes (Visa 4, Mastercard
51-55, Amex 34/37, Discover 6011), IBANs from Faker's locale providers (ISO 7064 MOD 97-10 check
digits), SSNs in the issued ranges (area 001-899 without 666, group 01-99, serial 0001-9999),
Bitcoin addresses encoded here (Base58Check of random hashes, Bech32 per BIP 173), phone numbers
in several national and international formats per country, e-mails with dots, plus tags,
sub-domains and country domains, names from Faker (not labelled: no NER in the detector).

Usage: .venv/bin/python bench/build_pii_eval.py [--seed 20240516] [--out bench/data/pii_eval.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

from faker import Faker

OUT = Path(__file__).resolve().parent / "data" / "pii_eval.jsonl"
SEED = 20240516
POSITIVES_PER_TYPE = 44
MIXED = 70
HARD_NEGATIVES_PER_CATEGORY = 12
PLAIN_COUNT = 30

Part = str | tuple[str, str]  # literal text, or (entity type, value)


def compose(parts: list[Part]) -> tuple[str, list[dict]]:
    """The text of ``parts`` and the gold span of each (type, value) part."""
    text, spans = "", []
    for part in parts:
        if isinstance(part, tuple):
            kind, value = part
            spans.append({"start": len(text), "end": len(text) + len(value), "type": kind})
            text += value
        else:
            text += part
    return text, spans


# ------------------------------------------------------------------------------- value generators


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass Luhn."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these are at odd positions once the check digit is appended
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card_digits(rng: random.Random) -> tuple[str, str]:
    """(issuer, Luhn-valid number)."""
    issuer = rng.choice(["visa", "mastercard", "amex", "discover"])
    prefix, length = {"visa": ("4", 16), "mastercard": (str(rng.randint(51, 55)), 16),
                      "amex": (rng.choice(["34", "37"]), 15), "discover": ("6011", 16)}[issuer]
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return issuer, body + luhn_check_digit(body)


def format_card(issuer: str, digits: str, rng: random.Random) -> str:
    style = rng.choice(["space", "dash", "plain"])
    groups = [digits[:4], digits[4:10], digits[10:]] if issuer == "amex" else \
        [digits[i:i + 4] for i in range(0, len(digits), 4)]
    return {"space": " ".join(groups), "dash": "-".join(groups), "plain": digits}[style]


def credit_card(rng: random.Random) -> str:
    return format_card(*card_digits(rng), rng)


def luhn_failing_card(rng: random.Random) -> str:
    issuer, digits = card_digits(rng)
    bad = str((int(digits[-1]) + rng.randint(1, 9)) % 10)
    return format_card(issuer, digits[:-1] + bad, rng)


IBAN_LOCALES = ["de_DE", "en_GB", "fr_FR", "es_ES", "nl_NL", "it_IT", "pl_PL", "pt_PT"]


def iban(rng: random.Random, fakers: dict[str, Faker]) -> str:
    value = fakers[rng.choice(IBAN_LOCALES)].iban()
    if rng.random() < 0.5:
        value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def wrong_check_iban(rng: random.Random, fakers: dict[str, Faker]) -> str:
    value = fakers[rng.choice(IBAN_LOCALES)].iban()
    check = (int(value[2:4]) + rng.randint(1, 50)) % 97
    value = f"{value[:2]}{check:02d}{value[4:]}"
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4))


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    sep = rng.choice(["-", "-", "-", " "])
    return f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"


def invalid_ssn(rng: random.Random) -> str:
    area = rng.choice(["000", "666", str(rng.randint(900, 999))])
    return f"{area}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


US_AREAS = ["212", "415", "617", "312", "206", "303", "512", "646", "718", "213", "404", "503"]


def phone(rng: random.Random) -> str:
    """A phone number in one of several national or international formats."""
    country = rng.choice(["us", "us", "gb", "de", "fr", "in", "br", "au", "es", "it", "nl", "jp", "mx"])
    if country == "us":
        a, x, s = rng.choice(US_AREAS), str(rng.randint(201, 989)), digits(rng, 4)
        return rng.choice([f"({a}) {x}-{s}", f"{a}-{x}-{s}", f"+1 {a} {x} {s}", f"+1-{a}-{x}-{s}",
                           f"{a}.{x}.{s}"])
    if country == "gb":
        return rng.choice([f"+44 20 7{digits(rng, 3)} {digits(rng, 4)}",
                           f"020 7{digits(rng, 3)} {digits(rng, 4)}",
                           f"+44 7{rng.randint(400, 999)} {digits(rng, 6)}",
                           f"07{rng.randint(400, 999)} {digits(rng, 6)}"])
    if country == "de":
        return rng.choice([f"+49 30 {rng.randint(2, 9)}{digits(rng, 7)}",
                           f"030 {rng.randint(2, 9)}{digits(rng, 7)}",
                           f"+49 151 {digits(rng, 8)}", f"+49 89 {rng.randint(2, 9)}{digits(rng, 6)}"])
    if country == "fr":
        pairs = " ".join(digits(rng, 2) for _ in range(4))
        lead = rng.choice(["1", "6", "7"])
        return rng.choice([f"+33 {lead} {pairs}", f"0{lead} {pairs}", f"+33 (0){lead} {pairs}"])
    if country == "in":
        return rng.choice([f"+91 9{digits(rng, 4)} {digits(rng, 5)}", f"+91-9{digits(rng, 9)}"])
    if country == "br":
        return rng.choice([f"+55 11 9{digits(rng, 4)}-{digits(rng, 4)}",
                           f"(11) 9{digits(rng, 4)}-{digits(rng, 4)}"])
    if country == "au":
        return rng.choice([f"+61 2 9{digits(rng, 3)} {digits(rng, 4)}",
                           f"+61 4{rng.choice('01')}{digits(rng, 1)} {digits(rng, 3)} {digits(rng, 3)}"])
    if country == "es":
        return f"+34 6{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}"
    if country == "it":
        return rng.choice([f"+39 06 {digits(rng, 8)}", f"+39 3{digits(rng, 2)} {digits(rng, 7)}"])
    if country == "nl":
        return rng.choice([f"+31 6 {rng.randint(1, 5)}{digits(rng, 7)}",
                           f"+31 20 {rng.randint(2, 9)}{digits(rng, 6)}"])
    if country == "jp":
        return f"+81 3-{rng.randint(1, 9)}{digits(rng, 3)}-{digits(rng, 4)}"
    return f"+52 55 {digits(rng, 4)} {digits(rng, 4)}"


DOMAINS = ["example.com", "mail.example.org", "corp-example.net", "uni-example.edu", "example.co.uk",
           "example.de", "correo.example.es", "example.io", "startup-example.ai", "example.fr"]


def email(rng: random.Random, fake: Faker) -> str:
    first, last = fake.first_name().lower(), fake.last_name().lower().replace(" ", "").replace("'", "")
    local = rng.choice([f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first[0]}.{last}",
                        f"{first}+{rng.choice(['news', 'spam', 'work', 'git'])}",
                        f"{last}.{first}.{rng.randint(1, 9)}",
                        f"{first}_{last}", f"{first.upper()}.{last.capitalize()}"])
    local = "".join(ch for ch in local if ch.isascii()) or "user"
    return f"{local}@{rng.choice(DOMAINS)}"


def ip_address(rng: random.Random) -> str:
    kind = rng.choice(["v4", "v4", "v4private", "v6full", "v6short"])
    if kind == "v4":
        return ".".join(str(x) for x in [rng.randint(11, 223), rng.randint(0, 255), rng.randint(0, 255),
                                         rng.randint(1, 254)])
    if kind == "v4private":
        return rng.choice([f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if kind == "v6full":
        return "2001:" + ":".join(groups[1:])
    return f"2001:db8:{groups[2]}::{groups[5]}"


def url(rng: random.Random) -> str:
    host = rng.choice(["example.com", "docs.example.org", "shop.example.net", "example.io", "api.example.dev",
                       "portal.example.co.uk"])
    path = rng.choice(["", "/", "/account/settings", "/reset?token=ab12cd34", "/users/4821/profile",
                       "/docs/v2/index.html"])
    return rng.choice([f"https://{host}{path}", f"http://{host}{path}", f"https://www.{host}{path}",
                       f"www.{host}{path}", f"{host}{path}"])


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    gen, chk = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3], 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32_address(program: bytes) -> str:
    """A BIP 173 segwit v0 address (hrp "bc") of ``program`` (20 bytes: P2WPKH)."""
    acc, bits, data = 0, 0, [0]
    for b in program:
        acc, bits = (acc << 8) | b, bits + 8
        while bits >= 5:
            bits -= 5
            data.append((acc >> bits) & 31)
    if bits:
        data.append((acc << (5 - bits)) & 31)
    hrp = "bc"
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + data + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32[d] for d in data + checksum)


def crypto(rng: random.Random) -> str:
    h = bytes(rng.getrandbits(8) for _ in range(20))
    kind = rng.choice(["p2pkh", "p2sh", "bech32"])
    if kind == "bech32":
        return bech32_address(h)
    return base58check((b"\x00" if kind == "p2pkh" else b"\x05") + h)


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def date(rng: random.Random, years: tuple[int, int]) -> str:
    y, m, d = rng.randint(*years), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{y}-{m:02d}-{d:02d}",
                       f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1]} {y}",
                       f"{MONTHS[m - 1][:3]} {d}, {y}"])


# -------------------------------------------------------------------------------- sentence templates

POSITIVE_TEMPLATES: dict[str, list[str]] = {
    "EMAIL_ADDRESS": ["Please send the invoice to {v} by Friday.", "User: can you draft a reply to {v}?",
                      "Sure! I've added {v} to the mailing list.", "Contact: {name} <{v}>",
                      "Forward the logs to {v} and cc the on-call.", "my email is {v} if you need it"],
    "PHONE_NUMBER": ["You can reach {name} at {v} during office hours.", "User: call me back on {v} please",
                     "The support line is {v}.", "Phone: {v}", "Text {v} when you arrive.",
                     "I tried {v} twice but nobody answered."],
    "CREDIT_CARD": ["My card {v} was declined at checkout, why?", "Card number: {v}, exp 08/27",
                    "Charge it to {v} please.", "The customer paid with card {v} yesterday.",
                    "Can you check whether {v} is a valid card?"],
    "IBAN_CODE": ["Please wire the deposit to IBAN {v}.", "Account: {v} (BIC follows)",
                  "The refund goes to {v}, owner {name}.", "Here is my IBAN: {v}",
                  "Update the supplier's bank details to {v}."],
    "US_SSN": ["My SSN is {v}, can you fill in the W-4?", "SSN: {v}", "Social security number {v} on file.",
               "The applicant's social is {v}.", "Use {v} as the taxpayer ID in the form."],
    "IP_ADDRESS": ["The server at {v} keeps timing out.", "Block requests from {v} in the firewall.",
                   "ssh admin@{v} -p 22 fails with 'connection refused'", "Login from {v} at 03:12 UTC.",
                   "My home IP is {v}, whitelist it."],
    "URL": ["Reset your password at {v} within 24 hours.", "The docs are at {v}.", "Open {v} and sign in.",
            "See {v} for the full report.", "User: what does the page {v} say?"],
    "CRYPTO": ["Send 0.05 BTC to {v} to unlock the file.", "My wallet address is {v}.",
               "Donations: {v}", "Is {v} a valid Bitcoin address?", "Pay the invoice to {v} today."],
    "DATE_OF_BIRTH": ["Patient {name}, date of birth {v}, reports chest pain.", "DOB: {v}",
                      "I was born on {v} in Lyon.", "Her birthday is {v}, add it to the form.",
                      "Name: {name}; Date of birth: {v}", "He was born {v}."],
}

MIXED_TEMPLATES = [
    "Hi, I'm {name}. Email {EMAIL_ADDRESS} or call {PHONE_NUMBER}.",
    "Ship to {name}, phone {PHONE_NUMBER}; bill card {CREDIT_CARD}.",
    "Wire from {IBAN_CODE} failed; the portal {URL} shows nothing.",
    "SSN {US_SSN}, DOB: {DATE_OF_BIRTH}, email {EMAIL_ADDRESS}.",
    "Alert: login for {EMAIL_ADDRESS} from {IP_ADDRESS} at 02:14.",
    "Ransom note: pay to {CRYPTO} or visit {URL}.",
    "Customer record - phone: {PHONE_NUMBER}, IBAN: {IBAN_CODE}, born on {DATE_OF_BIRTH}.",
    "Assistant: I can't store {CREDIT_CARD}. Please use {URL} instead.",
]

HARD_NEGATIVES: dict[str, Callable[[random.Random, dict[str, Faker]], str]] = {
    "order_number": lambda r, f: r.choice(["Your order #{} has shipped.", "Ticket {} was closed.",
                                           "Invoice INV-{} is overdue.", "Reference number: {}"]).format(
        r.choice([digits(r, 8), digits(r, 10), f"{digits(r, 3)}-{digits(r, 7)}"])),
    "version": lambda r, f: r.choice(["Upgrade to v{} to fix it.", "numpy=={} breaks the build.",
                                      "Running Python {} on Ubuntu 22.04.", "Windows build {}",
                                      "Chrome {} crashed on load."]).format(
        r.choice([f"{r.randint(1, 4)}.{r.randint(0, 30)}.{r.randint(0, 20)}",
                  f"10.0.{r.randint(19041, 22631)}.{r.randint(1000, 4000)}",
                  f"{r.randint(100, 125)}.0.{r.randint(6000, 6400)}.{r.randint(10, 200)}",
                  f"{r.randint(1, 3)}.{r.randint(0, 9)}.{r.randint(0, 9)}-rc{r.randint(1, 3)}"])),
    "timestamp": lambda r, f: r.choice(["The job ran at {} and exited 0.", "Log line: [{}] cache miss",
                                        "Last sync {}.", "epoch {} in the header"]).format(
        r.choice([f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:"
                  f"{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
                  f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{digits(r, 3)}",
                  str(r.randint(1_600_000_000, 1_750_000_000)), f"2024{digits(r, 10)}"])),
    "hex_hash": lambda r, f: r.choice(["Revert commit {}.", "sha256: {}", "The file's MD5 is {}.",
                                       "Cache key {} not found."]).format(
        hashlib.sha256(str(r.random()).encode()).hexdigest()[:r.choice([7, 32, 40, 64])]),
    "isbn": lambda r, f: r.choice(["ISBN {} is out of print.", "Cite it as ISBN {}.",
                                   "The book ({}) is on the shelf."]).format(
        r.choice(["978-3-16-148410-0", "0-306-40615-2", "978-0-13-110362-7", "978-1-4028-9462-6",
                  f"978-{r.randint(0, 1)}-{digits(r, 3)}-{digits(r, 5)}-{r.randint(0, 9)}"])),
    "luhn_failing_card": lambda r, f: r.choice(["Test card {} should be rejected.", "Is {} a real card?",
                                                "Example only: {}"]).format(luhn_failing_card(r)),
    "bad_iban": lambda r, f: r.choice(["The IBAN {} fails its check digits.", "Typo'd account {}."]).format(
        wrong_check_iban(r, f)),
    "invalid_ssn": lambda r, f: r.choice(["{} is not a valid SSN.", "Placeholder SSN {} in the template."])
    .format(invalid_ssn(r)),
    "file_name": lambda r, f: r.choice(["Edit {} and rerun the tests.", "The error is in {} line 42.",
                                        "Rename {} before committing."]).format(
        r.choice(["setup.py", "README.md", "main.rs", "install.sh", "utils.pl", "train.py", "notes.md",
                  "server.go", "index.ts", "lib.so"])),
    "non_birth_date": lambda r, f: r.choice(["The library was released on {}.", "Deadline: {}",
                                             "Meeting moved to {}.", "Python 3.12 came out {}."]).format(
        date(r, (2015, 2025))),
    "numbers": lambda r, f: r.choice(["The screen is {}.", "Listen on port {}.", "Pi is about {}.",
                                      "It weighs {} kg.", "SKU {} is out of stock."]).format(
        r.choice(["1920x1080", str(r.randint(1024, 65535)), "3.14159265",
                  f"{r.randint(1, 999)}.{digits(r, 2)}",
                  f"{digits(r, 4)}-{digits(r, 4)}-{digits(r, 3)}"])),
    "uuid_code": lambda r, f: r.choice(["Request id {} failed.", "Trace {}"]).format(
        "-".join(hashlib.md5(str(r.random()).encode()).hexdigest()[i:j]
                 for i, j in [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)])),
}

PLAIN = ["Can you explain how a hash map handles collisions?", "Summarise the plot of Hamlet in two lines.",
         "Sure - here is a haiku about autumn leaves.", "The mitochondria is the powerhouse of the cell.",
         "Write a SQL query that counts orders per day.", "I think the bug is an off-by-one in the loop.",
         "Translate 'good morning' into Spanish.", "The meeting is on Tuesday afternoon.",
         "Gradient descent moves against the gradient.", "Thanks, that fixed my build!"]


def build(seed: int) -> list[dict]:
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in IBAN_LOCALES}
    for i, f in enumerate(fakers.values()):
        f.seed_instance(seed + i)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    make: dict[str, Callable[[], str]] = {
        "EMAIL_ADDRESS": lambda: email(rng, fake), "PHONE_NUMBER": lambda: phone(rng),
        "CREDIT_CARD": lambda: credit_card(rng), "IBAN_CODE": lambda: iban(rng, fakers),
        "US_SSN": lambda: ssn(rng), "IP_ADDRESS": lambda: ip_address(rng), "URL": lambda: url(rng),
        "CRYPTO": lambda: crypto(rng), "DATE_OF_BIRTH": lambda: date(rng, (1940, 2005)),
    }

    def fill(template: str, values: dict[str, str]) -> tuple[str, list[dict]]:
        parts: list[Part] = []
        rest = template
        while "{" in rest:
            head, _, tail = rest.partition("{")
            key, _, rest = tail.partition("}")
            parts.append(head)
            parts.append(fake.name() if key == "name" else (key, values[key]))
        parts.append(rest)
        return compose(parts)

    rows: list[dict] = []
    for kind, templates in POSITIVE_TEMPLATES.items():
        for _ in range(POSITIVES_PER_TYPE):
            template = rng.choice(templates).replace("{v}", "{" + kind + "}")
            text, spans = fill(template, {kind: make[kind]()})
            rows.append({"kind": "positive", "category": kind, "text": text, "spans": spans})
    for _ in range(MIXED):
        template = rng.choice(MIXED_TEMPLATES)
        text, spans = fill(template, {k: make[k]() for k in make if "{" + k + "}" in template})
        rows.append({"kind": "mixed", "category": "mixed", "text": text, "spans": spans})
    for category, gen in HARD_NEGATIVES.items():
        for _ in range(HARD_NEGATIVES_PER_CATEGORY):
            rows.append({"kind": "hard_negative", "category": category, "text": gen(rng, fakers),
                         "spans": []})
    for i in range(PLAIN_COUNT):
        rows.append({"kind": "plain", "category": "plain", "text": PLAIN[i % len(PLAIN)], "spans": []})
    rng.shuffle(rows)
    half = len(rows) // 2
    return [{"id": i, "split": "dev" if i < half else "test", **row} for i, row in enumerate(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED, help="random seed (default %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="output JSONL (default %(default)s)")
    args = parser.parse_args(argv)
    rows = build(args.seed)
    for row in rows:
        for s in row["spans"]:
            assert row["text"][s["start"]:s["end"]], row
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    n_spans = sum(len(r["spans"]) for r in rows)
    print(f"wrote {len(rows)} texts ({sum(r['split'] == 'test' for r in rows)} test), {n_spans} gold spans "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
