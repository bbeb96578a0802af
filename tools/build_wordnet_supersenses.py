"""Build skvrf's embedded benchmark: WordNet noun supersenses with three shifts.

Task: classify a noun, given the text ``"lemma: definition"``, into its WordNet
lexicographer class ("supersense", e.g. ``noun.animal``).

Sources (Debian packages, parsed directly; no nltk)::

    apt-get install wordnet-base dict-gcide

* ``/usr/share/wordnet/data.noun`` -- WordNet 3.0 noun synsets (glosses,
  lexicographer files, hypernym pointers).
* ``/usr/share/man/man5/lexnames.5WN.gz`` -- WordNet's description of each
  lexicographer file: the zero-shot head's class descriptions, verbatim.
* ``/usr/share/dictd/gcide.dict.dz`` + ``gcide.index`` -- GCIDE in dictd
  format. GCIDE as a whole is GPL-3+; only definitions whose source
  attribution is exactly ``[1913 Webster]`` (the public-domain Webster's
  Revised Unabridged Dictionary of 1913) are used. Paragraphs marked
  ``[PJC]``, ``[1913 Webster +PJC]``, ``[WordNet 1.5]``, ``[Webster 1913
  Suppl.]`` or any mixed attribution are skipped.

Splits (all deterministic given ``--seed``):

* ID ``train`` / ``validation`` / ``test``: one sample per synset, text
  ``"<first lemma>: <WordNet definition>"``, grouped by lemma (no lemma in two
  splits), per-class caps.
* ``webster`` shift: held-out lemmas (never in ID) whose WordNet noun senses
  all share one supersense; text ``"<lemma>: <1913 Webster definition>"``
  (first noun sense); definitions that largely copy a WordNet gloss of the
  lemma are dropped.
* ``lemma`` shift: the same held-out lemmas, the bare word only.
* ``subpopulation`` shift: whole hypernym subtrees (e.g. all insects, all
  vehicles) removed from ID entirely, together with their lemmas.

Usage::

    python tools/build_wordnet_supersenses.py            # writes the package file
    python tools/build_wordnet_supersenses.py --out x.json.gz --seed 0
"""

import argparse
import collections
import gzip
import json
import random
import re
import sys
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
GCIDE_DICT = Path("/usr/share/dictd/gcide.dict.dz")
GCIDE_INDEX = Path("/usr/share/dictd/gcide.index")
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "skvrf" / "datasets" / "data"
DEFAULT_OUT = PACKAGE_DATA / "wordnet_supersenses.json.gz"

# WordNet 3.0 lexicographer file numbers for nouns (lexnames(5WN)).
LEXNAMES = {
    3: "noun.Tops",
    4: "noun.act",
    5: "noun.animal",
    6: "noun.artifact",
    7: "noun.attribute",
    8: "noun.body",
    9: "noun.cognition",
    10: "noun.communication",
    11: "noun.event",
    12: "noun.feeling",
    13: "noun.food",
    14: "noun.group",
    15: "noun.location",
    16: "noun.motive",
    17: "noun.object",
    18: "noun.person",
    19: "noun.phenomenon",
    20: "noun.plant",
    21: "noun.possession",
    22: "noun.process",
    23: "noun.quantity",
    24: "noun.relation",
    25: "noun.shape",
    26: "noun.state",
    27: "noun.substance",
    28: "noun.time",
}

# Classes kept. The zero-shot head's description of each class is fixed by a
# rule written down before any model was run on it (docs/benchmark.rst): the
# "Contents" column of WordNet's own lexnames(5WN) for the class's
# lexicographer file, verbatim, one per class (e.g. noun.animal: "nouns
# denoting animals"), read from the manual page that wordnet-base installs.
CLASSES = [
    "noun.animal",
    "noun.artifact",
    "noun.body",
    "noun.communication",
    "noun.feeling",
    "noun.food",
    "noun.location",
    "noun.person",
    "noun.plant",
    "noun.quantity",
    "noun.substance",
    "noun.time",
]
LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")


def lexname_descriptions(path=LEXNAMES_MAN):
    """``{lexicographer file: its Contents column}`` from lexnames(5WN).

    The table's rows are ``<number> <tab> <file name> <tab> <contents>`` (the
    man page source holds them as plain lines); whitespace is collapsed.
    """
    descriptions = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = re.match(r"^\s*(\d\d)\s+(noun\.\w+)\s+(\S.*?)\s*$", line)
            if m and int(m.group(1)) == _LEXNUMBER[m.group(2)]:
                descriptions[m.group(2)] = " ".join(m.group(3).split())
    missing = [c for c in CLASSES if c not in descriptions]
    if missing:
        raise RuntimeError(f"{path}: no lexnames(5WN) description of {missing}")
    return descriptions


# Subpopulation shift: (class, lemma of the subtree root). The root synset is
# the one with that lemma in that class with the largest subtree; every
# hyponym in the same lexicographer class belongs to the sub-group.
SUBPOPULATIONS = [
    ("noun.animal", "insect"),
    ("noun.plant", "fungus"),
    ("noun.artifact", "vehicle"),
    ("noun.food", "beverage"),
    ("noun.person", "leader"),
    ("noun.body", "bone"),
    ("noun.substance", "metallic_element"),
    ("noun.communication", "music"),
]

CAPS = {"train": 400, "validation": 100, "test": 200}
ID_FRACTIONS = {"train": 0.6, "validation": 0.15, "test": 0.25}
HELDOUT_PER_CLASS = 120
SUBPOP_PER_GROUP = 150
MAX_OVERLAP = 0.5  # drop Webster definitions whose tokens mostly occur in a gloss
MAX_WORDS = 50

_LEXNUMBER = {name: number for number, name in LEXNAMES.items()}

STOPWORDS = set(
    "a an the of or and in on to for by with as at from that which who is are "
    "be it its this these those any some such one two used esp etc especially "
    "other than into not but also".split()
)


# --------------------------------------------------------------------- WordNet
def parse_wordnet(path):
    """Return {offset: synset dict} for all noun synsets in ``data.noun``."""
    synsets = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue  # licence header
            data, _, gloss = line.partition(" | ")
            f = data.split()
            offset, lexfile = f[0], int(f[1])
            n_words = int(f[3], 16)
            words = [f[4 + 2 * i] for i in range(n_words)]
            i = 4 + 2 * n_words
            n_ptr = int(f[i])
            ptrs = [(f[i + 1 + 4 * j], f[i + 2 + 4 * j]) for j in range(n_ptr)]
            definition = re.split(r';\s*"', gloss.strip(), maxsplit=1)[0]
            synsets[offset] = {
                "offset": offset,
                "lexname": LEXNAMES[lexfile],
                "words": [re.sub(r"\([a-z]+\)$", "", w) for w in words],
                "hypernyms": [o for s, o in ptrs if s == "@"],
                "instance": any(s == "@i" for s, _ in ptrs),
                "definition": definition.strip().rstrip(";").strip(),
            }
    return synsets


def lemma_text(word):
    return word.replace("_", " ")


def hyponym_children(synsets):
    """Synset offset -> offsets of its direct hyponyms."""
    children = collections.defaultdict(list)
    for s in synsets.values():
        for h in s["hypernyms"]:
            children[h].append(s["offset"])
    return children


def hyponym_closure(synsets, root, children=None):
    """Offsets below ``root`` (itself included) that stay in its lexname."""
    if children is None:
        children = hyponym_children(synsets)
    lexname = synsets[root]["lexname"]
    seen, stack = set(), [root]
    while stack:
        o = stack.pop()
        if o in seen or synsets[o]["lexname"] != lexname:
            continue
        seen.add(o)
        stack.extend(children[o])
    return seen


# ---------------------------------------------------------------------- GCIDE
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(s):
    v = 0
    for c in s:
        v = v * 64 + _B64.index(c)
    return v


class Gcide:
    """Minimal reader of a dictd database (index + gzip/dictzip data)."""

    def __init__(self, dict_path, index_path):
        with gzip.open(dict_path, "rb") as fh:
            self.data = fh.read()
        self.index = collections.defaultdict(list)
        with open(index_path, encoding="utf-8") as fh:
            for line in fh:
                word, off, length = line.rstrip("\n").split("\t")
                self.index[word.lower()].append((_b64(off), _b64(length)))

    def entries(self, word):
        out = []
        for off, length in self.index.get(word.lower(), []):
            out.append(self.data[off : off + length].decode("utf-8", "replace"))
        return out


_ATTR = re.compile(r"^\s+(\[[^\[\]]*(?:\[[^\]]*\][^\[\]]*)*\])\s*$")
_SENSE = re.compile(r"^   (\d+)\.\s+(.*)$")
_LABEL = re.compile(r"^(\((?:[A-Z][A-Za-z.]*\.?\s*(?:&\s*)?)+\)\s*)+")
_ACCENT = re.compile(r"\[(?:[=.^~\"`',]?)([A-Za-z])(?:[=.^~\"`',]|um|ac|cr|dd|sl)?\]")


def is_head(first_line, word, pos_pattern):
    """Whether a GCIDE entry's first line heads ``word`` with a part of speech.

    ``pos_pattern`` is matched after the pronunciation and any parenthesised
    remarks (for example ``n.`` for nouns, ``v. t.`` / ``v. i.`` for verbs).
    """
    m = re.match(r"^(.+?)\s+\\[^\\]*\\(.*)$", first_line)
    if not m:
        return False
    head = re.sub(r"[^a-z ]", "", m.group(1).lower().replace("-", " "))
    if head != re.sub(r"[^a-z ]", "", word.lower().replace("-", " ")):
        return False
    rest = re.sub(r"^(\s*,?\s*\([^()]*(?:\([^()]*\)[^()]*)*\))*", "", m.group(2))
    return re.match(pos_pattern, rest) is not None


def clean_markup(text):
    text = text.replace("{", "").replace("}", "")
    for k, v in {
        "[ae]": "ae",
        "[AE]": "Ae",
        "[oe]": "oe",
        "[OE]": "Oe",
        "[eth]": "th",
        "[thorn]": "th",
        "[ng]": "ng",
        "[deg]": " degrees",
    }.items():
        text = text.replace(k, v)
    text = _ACCENT.sub(r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text


def first_sentence(text):
    """First sentence; long ones are cut at a semicolon (or MAX_WORDS)."""
    words = text.split()
    out = []
    abbrev = {
        "esp.",
        "e.",
        "g.",
        "i.",
        "etc.",
        "St.",
        "Mr.",
        "Gr.",
        "L.",
        "cf.",
        "viz.",
    }
    for i, w in enumerate(words):
        out.append(w)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w.endswith(".") and w not in abbrev and len(w) > 2 and nxt[:1].isupper():
            break
        if len(out) >= MAX_WORDS:
            cut = max((j for j, x in enumerate(out) if x.endswith(";")), default=None)
            if cut is not None and cut >= 5:
                out = out[:cut]
                out[-1] = out[-1].rstrip(";")
            break
    return " ".join(out)


def webster_first_sense(entry):
    """Cleaned text of an entry's first sense if attributed to [1913 Webster].

    ``None`` when the first sense has another attribution, is obsolete, rare or
    archaic, or is empty. Quoted examples, citations and usage labels go.
    """
    lines = entry.split("\n")
    # Locate the first sense: "   1. ..." or the text after the head.
    start, text_lines = None, []
    for i, line in enumerate(lines):
        m = _SENSE.match(line)
        if m:
            if m.group(1) != "1":
                break
            start, text_lines = i, [m.group(2)]
            break
    if start is None:
        # Unnumbered: definition follows the head (after balanced brackets).
        depth, start = 0, len(lines) - 1
        for i, line in enumerate(lines):
            depth += line.count("[") - line.count("]")
            depth += line.count("(") - line.count(")")
            if depth <= 0 and not line.rstrip().endswith(("L.", ";", ",")):
                start = i
                break
    attribution = None
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        m = _ATTR.match(line)
        if m:
            attribution = m.group(1)
            break
        if _SENSE.match(line) or line.lstrip().startswith(("Note:", "Syn:")):
            break
        text_lines.append(line.strip())
    if attribution != "[1913 Webster]" or not text_lines:
        return None
    text = " ".join(text_lines)
    if "[Obs.]" in text or "[R.]" in text or "[Archaic]" in text:
        return None
    text = re.sub(r'\s*"[^"]*"', "", text)  # quoted examples
    text = re.sub(r"\s*--\s?[A-Z][^;]*$", "", text)  # citations (--Shak.)
    text = _LABEL.sub("", text.strip())
    return clean_markup(text)


def plausible_definition(text):
    """At least three words, starting with a letter, no leftover markup."""
    return (
        "[" not in text
        and "\\" not in text
        and len(text.split()) >= 3
        and text[:1].isalpha()
    )


# Part of speech -> (what follows the head, cross-references to skip).
_WEBSTER_POS = {
    "noun": (
        r"^\s*,?\s*n\.(?:\s|;|,|$)",
        r"(?:Same as|See|Pl\. of|Alt\. of|Plural of)\b",
    ),
    "verb": (r"^\s*,?\s*v\.\s*[ti]\.", r"(?:Same as|See|To see)\b"),
}


def webster_definition(gcide, word, pos="noun"):
    """First ``pos`` sense of ``word`` attributed to ``[1913 Webster]`` only."""
    head_pattern, cross_reference = _WEBSTER_POS[pos]
    for entry in gcide.entries(word):
        if not is_head(entry.split("\n", 1)[0], word, head_pattern):
            continue
        text = webster_first_sense(entry)
        if text is None:
            continue
        if pos == "noun":
            text = re.sub(r"^\((?:a|1)\)\s*", "", text)
        text = first_sentence(text)
        if pos == "noun":
            text = re.sub(r"\s+(?:Cf|See)\.?$", "", text)
        if re.match(cross_reference, text):
            continue  # cross-references, not definitions
        if plausible_definition(text):
            return text
    return None


def tokens(text):
    return {t for t in re.findall(r"[a-z]+", text.lower()) if len(t) > 2} - STOPWORDS


def overlap(a, b):
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / min(len(ta), len(tb))


def lemma_index(synsets):
    """Lemma (lower case) -> its classes, and -> its glosses, over all synsets."""
    lemma_classes = collections.defaultdict(set)
    lemma_glosses = collections.defaultdict(list)
    for s in synsets.values():
        for w in s["words"]:
            lemma_classes[w.lower()].add(s["lexname"])
            lemma_glosses[w.lower()].append(s["definition"])
    return lemma_classes, lemma_glosses


# ---------------------------------------------------------------------- build
def build(seed=0, wordnet_dir=WORDNET_DIR, verbose=True):
    rng = random.Random(seed)
    synsets = parse_wordnet(Path(wordnet_dir) / "data.noun")
    classes = sorted(CLASSES)
    descriptions = lexname_descriptions()
    cidx = {c: i for i, c in enumerate(classes)}

    # lemma -> supersenses over all WordNet noun synsets (ambiguity check)
    lemma_classes, lemma_glosses = lemma_index(synsets)

    pool = [
        s
        for s in synsets.values()
        if s["lexname"] in cidx and not s["instance"] and s["definition"]
    ]
    pool.sort(key=lambda s: s["offset"])

    def sample(s):
        w = s["words"][0]
        return {
            "lemma": lemma_text(w),
            "key": w.lower(),
            "text": f"{lemma_text(w)}: {s['definition']}",
            "target": cidx[s["lexname"]],
        }

    # --- subpopulation shift
    sub_offsets, sub_samples, sub_groups = set(), [], []
    for cls, root_word in SUBPOPULATIONS:
        roots = [
            s["offset"]
            for s in synsets.values()
            if s["lexname"] == cls and root_word in s["words"] and not s["instance"]
        ]
        if not roots:
            raise RuntimeError(f"no synset {root_word!r} in {cls}")
        tree = max((hyponym_closure(synsets, r) for r in roots), key=len)
        sub_offsets |= tree
        members = sorted(
            (s for s in pool if s["offset"] in tree), key=lambda s: s["offset"]
        )
        rng.shuffle(members)
        for s in members[:SUBPOP_PER_GROUP]:
            sub_samples.append(sample(s))
            sub_groups.append(f"{cls}/{root_word}")
    # every lemma that occurs anywhere in a removed subtree is held out of ID
    sub_keys = {w.lower() for o in sub_offsets for w in synsets[o]["words"]}

    # --- held-out lemmas for the webster and lemma shifts
    gcide = Gcide(GCIDE_DICT, GCIDE_INDEX)
    by_class = collections.defaultdict(set)
    for s in pool:
        key = s["words"][0].lower()
        if s["offset"] in sub_offsets or key in sub_keys:
            continue
        if len(lemma_classes[key]) == 1:
            by_class[s["lexname"]].add(s["words"][0])
    heldout, stats = [], collections.Counter()
    for cls in classes:
        cands = sorted(by_class[cls])
        rng.shuffle(cands)
        n = 0
        for w in cands:
            if n >= HELDOUT_PER_CLASS:
                break
            if w.lower() in {h["key"] for h in heldout}:
                continue
            d = webster_definition(gcide, lemma_text(w))
            if d is None:
                stats["no_1913_definition"] += 1
                continue
            if max(overlap(d, g) for g in lemma_glosses[w.lower()]) >= MAX_OVERLAP:
                stats["dropped_overlap"] += 1
                continue
            heldout.append(
                {
                    "lemma": lemma_text(w),
                    "key": w.lower(),
                    "def": d,
                    "target": cidx[cls],
                }
            )
            n += 1
    heldout_keys = {h["key"] for h in heldout}

    # --- ID splits grouped by lemma
    id_samples = [
        sample(s)
        for s in pool
        if s["offset"] not in sub_offsets
        and s["words"][0].lower() not in sub_keys
        and s["words"][0].lower() not in heldout_keys
    ]
    keys = sorted({x["key"] for x in id_samples})
    rng.shuffle(keys)
    n_train = int(ID_FRACTIONS["train"] * len(keys))
    n_val = int(ID_FRACTIONS["validation"] * len(keys))
    assign = {}
    for i, k in enumerate(keys):
        assign[k] = (
            "train" if i < n_train else "validation" if i < n_train + n_val else "test"
        )
    splits = {}
    for name, cap in CAPS.items():
        rows = []
        for c in range(len(classes)):
            members = [
                x for x in id_samples if assign[x["key"]] == name and x["target"] == c
            ]
            members.sort(key=lambda x: x["text"])
            rng.shuffle(members)
            rows.extend(members[:cap])
        rows = dedup(rows)
        rng.shuffle(rows)
        splits[name] = rows

    def pack(rows, extra=None):
        out = {
            "texts": [r["text"] for r in rows],
            "target": [r["target"] for r in rows],
            "lemmas": [r["lemma"] for r in rows],
        }
        if extra:
            out.update(extra)
        return out

    rng.shuffle(heldout)
    webster = [
        {
            "text": f"{h['lemma']}: {h['def']}",
            "target": h["target"],
            "lemma": h["lemma"],
        }
        for h in heldout
    ]
    lemma = [
        {"text": h["lemma"], "target": h["target"], "lemma": h["lemma"]}
        for h in heldout
    ]
    order = list(range(len(sub_samples)))
    rng.shuffle(order)
    sub_rows = [sub_samples[i] for i in order]
    sub_groups = [sub_groups[i] for i in order]

    result = {
        "format_version": 1,
        "seed": seed,
        "target_names": classes,
        "class_descriptions": [[descriptions[c]] for c in classes],
        "class_descriptions_rule": (
            "the Contents column of WordNet 3.0's lexnames(5WN) for the class's "
            "lexicographer file, verbatim, one per class"
        ),
        "splits": {k: pack(v) for k, v in splits.items()},
        "shifts": {
            "webster": pack(webster),
            "subpopulation": pack(sub_rows, {"groups": sub_groups}),
            "lemma": pack(lemma),
        },
        "subpopulations": [f"{c}/{w}" for c, w in SUBPOPULATIONS],
        "build_stats": dict(stats),
    }
    if verbose:
        report(result)
    return result


def dedup(rows):
    seen, out = set(), []
    for r in rows:
        if r["text"] not in seen:
            seen.add(r["text"])
            out.append(r)
    return out


def report(result):
    names = result["target_names"]
    parts = dict(result["splits"], **result["shifts"])
    print(
        "split".ljust(20)
        + "".join(n.split(".")[1][:6].rjust(7) for n in names)
        + "  total"
    )
    for split, d in parts.items():
        counts = collections.Counter(d["target"])
        print(
            split.ljust(20)
            + "".join(str(counts[i]).rjust(7) for i in range(len(names)))
            + str(len(d["target"])).rjust(7)
        )
    print("build stats:", result["build_stats"], file=sys.stderr)


def write_json_gz(result, path):
    """Write ``result`` as gzip JSON with fixed bytes (mtime 0: identical
    files across rebuilds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
        ) as fh,
    ):
        fh.write(payload)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    for f in (WORDNET_DIR / "data.noun", GCIDE_DICT, GCIDE_INDEX, LEXNAMES_MAN):
        if not f.exists():
            sys.exit(f"missing {f}: apt-get install wordnet-base dict-gcide")
    write_json_gz(build(seed=args.seed), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
