"""Candidate benchmarks where the zero-shot model may be the robust one.

The rules are those of ``docs/benchmark_search.rst`` (fixed before any model
was run). Each builder returns the data file layout of the embedded
benchmarks (``target_names``, ``class_descriptions``, ``splits``, ``shifts``)
from Debian packages, parsed directly::

    apt-get install wordnet-base dict-gcide dict-devil dict-foldoc dict-jargon

Build one candidate::

    python tools/robust_candidates.py wordnet-verbs --out /tmp/c1.json.gz

Measure the effective robustness of the zero-shot model on each candidate
(needs skvrf with its ``demo`` extra)::

    python tools/robust_candidates.py --measure wordnet-verbs wordnet-nouns foldoc
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import random
import re
import sys
from pathlib import Path

from build_wordnet_supersenses import (
    _b64,
    dedup,
    hyponym_children,
    hyponym_closure,
    lemma_index,
    overlap,
    webster_definition,
    write_json_gz,
)

WORDNET_DIR = Path("/usr/share/wordnet")
LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
DICTD = Path("/usr/share/dictd")

ID_FRACTIONS = (0.6, 0.15, 0.25)
MAX_OVERLAP = 0.5


# ------------------------------------------------------------------ helpers
def cut_words(text, n):
    words = text.split()
    return " ".join(words[:n])


def grouped_split(rows, rng, caps, n_classes):
    """Split rows grouped by ``key`` into train/validation/test, capped per class."""
    keys = sorted({r["key"] for r in rows})
    rng.shuffle(keys)
    n_train = int(ID_FRACTIONS[0] * len(keys))
    n_val = int(ID_FRACTIONS[1] * len(keys))
    assign = {
        k: "train" if i < n_train else "validation" if i < n_train + n_val else "test"
        for i, k in enumerate(keys)
    }
    splits = {}
    for name in ("train", "validation", "test"):
        out = []
        for c in range(n_classes):
            members = [r for r in rows if assign[r["key"]] == name and r["target"] == c]
            members.sort(key=lambda r: (r["text"], r["key"]))
            rng.shuffle(members)
            out.extend(members[: caps[name]] if caps else members)
        out = dedup(out)
        rng.shuffle(out)
        splits[name] = out
    return splits


def pack(rows, extra=()):
    out = {
        "texts": [r["text"] for r in rows],
        "target": [r["target"] for r in rows],
        "lemmas": [r["lemma"] for r in rows],
    }
    for name in extra:  # e.g. "group" is shipped as "groups"
        out[f"{name}s"] = [r[name] for r in rows]
    return out


# ------------------------------------------------------------------ WordNet
def lexnames():
    """{file number: (name, contents)} from WordNet's own lexnames(5WN)."""
    with gzip.open(LEXNAMES_MAN, "rt", encoding="utf-8") as fh:
        text = fh.read()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\d\d)\t(\S+)\s*\t(.+?)\s*$", line)
        if m:
            out[int(m.group(1))] = (m.group(2), m.group(3))
    return out


def parse_wordnet(pos):
    """Return {offset: synset} for ``data.<pos>`` (``noun`` or ``verb``)."""
    names = lexnames()
    synsets = {}
    with open(WORDNET_DIR / f"data.{pos}", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            data, _, gloss = line.partition(" | ")
            f = data.split()
            n_words = int(f[3], 16)
            words = [re.sub(r"\([a-z]+\)$", "", f[4 + 2 * i]) for i in range(n_words)]
            i = 4 + 2 * n_words
            n_ptr = int(f[i])
            ptrs = [(f[i + 1 + 4 * j], f[i + 2 + 4 * j]) for j in range(n_ptr)]
            gloss = gloss.strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = re.split(r';?\s*"', gloss, maxsplit=1)[0]
            synsets[f[0]] = {
                "offset": f[0],
                "lexname": names[int(f[1])][0],
                "words": words,
                "hypernyms": [o for s, o in ptrs if s in ("@", "@i")],
                "instance": any(s == "@i" for s, _ in ptrs),
                "definition": definition.strip().rstrip(";").strip(),
                "examples": [e.strip() for e in examples if len(e.split()) >= 3],
            }
    return synsets


def class_subtrees(synsets, lexname):
    """Hyponym trees of one class, rooted where the hypernym leaves the class."""
    children = hyponym_children(synsets)
    roots = [
        s["offset"]
        for s in synsets.values()
        if s["lexname"] == lexname
        and not any(synsets[h]["lexname"] == lexname for h in s["hypernyms"])
    ]
    trees = [(r, hyponym_closure(synsets, r, children)) for r in sorted(roots)]
    # largest first; ties by root offset
    trees.sort(key=lambda t: (-len(t[1]), t[0]))
    return trees


def build_wordnet(
    pos,
    *,
    min_synsets,
    caps,
    heldout_per_class,
    subpop_per_class,
    seed=0,
    webster=False,
    devil=False,
):
    """Candidates C1 (verbs) and C2 (nouns); see ``docs/benchmark_search.rst``."""
    rng = random.Random(seed)
    synsets = parse_wordnet(pos)
    names = {v[0]: v[1] for v in lexnames().values()}
    sizes = collections.Counter(s["lexname"] for s in synsets.values())
    classes = sorted(
        c for c, n in sizes.items() if n >= min_synsets and c.startswith(pos)
    )
    cidx = {c: i for i, c in enumerate(classes)}

    lemma_classes, lemma_glosses = lemma_index(synsets)

    pool = sorted(
        (
            s
            for s in synsets.values()
            if s["lexname"] in cidx and s["definition"] and not s["instance"]
        ),
        key=lambda s: s["offset"],
    )

    def row(s, text=None, **extra):
        w = s["words"][0]
        lemma = w.replace("_", " ")
        return {
            "lemma": lemma,
            "key": w.lower(),
            "text": text or f"{lemma}: {s['definition']}",
            "target": cidx[s["lexname"]],
            **extra,
        }

    # subpopulation: the second-largest subtree of each class
    sub_offsets, sub_rows, roots = set(), [], []
    for c in classes:
        trees = class_subtrees(synsets, c)
        if len(trees) < 2:
            continue
        root, tree = trees[1]
        roots.append(f"{c}/{synsets[root]['words'][0]}")
        sub_offsets |= tree
        members = [s for s in pool if s["offset"] in tree]
        rng.shuffle(members)
        sub_rows += [row(s, group=roots[-1]) for s in members[:subpop_per_class]]
    sub_keys = {w.lower() for o in sub_offsets for w in synsets[o]["words"]}

    # held-out lemmas: every sense in one kept class, a usage example available
    by_lemma = collections.defaultdict(list)
    for s in pool:
        by_lemma[s["words"][0].lower()].append(s)
    eligible = collections.defaultdict(list)
    for key, members in sorted(by_lemma.items()):
        if key in sub_keys or any(s["offset"] in sub_offsets for s in members):
            continue
        if len(lemma_classes[key]) != 1:
            continue
        with_example = [s for s in members if s["examples"]]
        if with_example:
            eligible[members[0]["lexname"]].append(with_example[0])
    heldout = []
    for c in classes:
        members = eligible[c]
        rng.shuffle(members)
        heldout += members[:heldout_per_class]
    heldout_keys = {s["words"][0].lower() for s in heldout}
    usage = [
        row(s, f"{s['words'][0].replace('_', ' ')}: {s['examples'][0]}")
        for s in heldout
    ]

    shifts = {"usage": usage}
    stats = collections.Counter()
    if webster:
        from build_wordnet_supersenses import GCIDE_DICT, GCIDE_INDEX, Gcide

        gcide = Gcide(GCIDE_DICT, GCIDE_INDEX)
        rows = []
        for s in heldout:
            lemma = s["words"][0].replace("_", " ")
            d = webster_definition(gcide, lemma, pos="verb")
            if d is None:
                stats["webster_missing"] += 1
                continue
            if (
                max(
                    overlap(d, g)
                    for g in lemma_glosses[lemma.lower().replace(" ", "_")]
                )
                >= MAX_OVERLAP
            ):
                stats["webster_overlap"] += 1
                continue
            rows.append(row(s, f"{lemma}: {d}"))
        shifts["webster"] = rows
    if devil:
        rows = []
        taken = set()
        for head, text in devil_entries():
            key = head.lower().replace(" ", "_")
            cls = lemma_classes.get(key)
            if (
                not cls
                or len(cls) != 1
                or next(iter(cls)) not in cidx
                or key in sub_keys
                or key in taken
            ):
                continue
            taken.add(key)
            rows.append(
                {
                    "lemma": head.lower(),
                    "key": key,
                    "text": f"{head.lower()}: {text}",
                    "target": cidx[next(iter(cls))],
                }
            )
        heldout_keys |= taken
        shifts["devil"] = rows
    shifts["subpopulation"] = sub_rows

    id_rows = [
        row(s)
        for s in pool
        if s["offset"] not in sub_offsets
        and s["words"][0].lower() not in sub_keys
        and s["words"][0].lower() not in heldout_keys
    ]
    splits = grouped_split(id_rows, rng, caps, len(classes))
    for rows in shifts.values():
        rng.shuffle(rows)
    return {
        "format_version": 1,
        "seed": seed,
        "target_names": classes,
        "class_descriptions": [[names[c]] for c in classes],
        "splits": {k: pack(v) for k, v in splits.items()},
        "shifts": {
            k: pack(v, ("group",) if k == "subpopulation" else ())
            for k, v in shifts.items()
        },
        "subpopulations": roots,
        "build_stats": dict(stats),
    }


# ------------------------------------------------------------------ dictd
def dictd_entries(name):
    """(headword, entry text) of a dictd database, one per entry, file order."""
    with gzip.open(DICTD / f"{name}.dict.dz", "rb") as fh:
        data = fh.read()
    by_offset = {}
    with open(DICTD / f"{name}.index", encoding="utf-8") as fh:
        for line in fh:
            word, off, length = line.rstrip("\n").split("\t")
            if word.startswith("00-database") or word.startswith("00database"):
                continue
            o = _b64(off)
            by_offset.setdefault(o, (word, _b64(length)))
    out = []
    for o in sorted(by_offset):
        word, length = by_offset[o]
        out.append((word, data[o : o + length].decode("utf-8", "replace")))
    return out


def _paragraphs(body):
    paras, cur = [], []
    for line in body.split("\n"):
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return paras


def devil_entries():
    """(headword, first paragraph of the definition) from The Devil's Dictionary."""
    out = []
    for word, entry in dictd_entries("devil"):
        paras = _paragraphs(entry)
        if not paras:
            continue
        first = paras[0]
        # "HEADWORD, n. Definition ..." -> the definition
        m = re.match(r"^[A-Z][A-Z' -]*,\s*(?:n|v\.\s*[ti]|adj|x)\.\s*(.*)$", first)
        if not m or not re.search(r",\s*n\.", first):
            continue
        text = re.sub(r"\s+", " ", m.group(1)).strip()
        if len(text.split()) < 3:
            continue
        out.append((word, cut_words(text, 60)))
    return out


def foldoc_entries():
    """(headword, first tag, first-sense text, latest year) of FOLDOC."""
    out = []
    for word, entry in dictd_entries("foldoc"):
        lines = entry.split("\n")
        body = "\n".join(lines[1:])
        years = [int(y) for y in re.findall(r"\((\d{4})-\d\d-\d\d\)", entry)]
        paras = _paragraphs(body)
        # skip alias lines (a headword line followed by another headword)
        paras = [p for p in paras if p != word]
        if not paras or not years:
            continue
        first = re.sub(r"^1\.\s*", "", paras[0])
        m = re.match(r"^<([^<>]+)>\s*(.*)$", first)
        if not m:
            continue
        tag = m.group(1).split(",")[0].strip()
        text = m.group(2)
        text = re.sub(r"^/[^/]*/\s*", "", text)  # pronunciation
        text = re.sub(r"^\d+\.\s*", "", text)
        text = text.replace("{", "").replace("}", "")
        text = re.sub(r"\s+", " ", text).strip()
        if len(text.split()) < 3:
            continue
        out.append((word, tag, cut_words(text, 60), max(years)))
    return out


def jargon_entries():
    """(headword, first paragraph) of the Jargon File."""
    out = []
    for word, entry in dictd_entries("jargon"):
        lines = entry.split("\n")
        paras = _paragraphs("\n".join(lines[1:]))
        # the first paragraph after the headword is the part of speech line
        body = [p for p in paras if not re.match(r"^(/[^/]*/,?\s*)?[a-z. ,]+\.$", p)]
        if not body:
            continue
        text = re.sub(r"^\d+\.\s*", "", body[0])
        text = re.sub(r"^\[[^\]]*\]\s*", "", text)
        text = text.replace("{", "").replace("}", "")
        text = re.sub(r"\s+", " ", text).strip()
        if len(text.split()) < 3:
            continue
        out.append((word, cut_words(text, 60)))
    return out


def build_foldoc(seed=0, n_classes=12, old_until=1999, recent_from=2003):
    """Candidate C3; see ``docs/benchmark_search.rst``."""
    rng = random.Random(seed)
    entries = foldoc_entries()
    counts = collections.Counter(tag for _, tag, _, _ in entries if tag != "jargon")
    classes = sorted(t for t, _ in counts.most_common(n_classes))
    cidx = {c: i for i, c in enumerate(classes)}
    tag_of = {}
    for word, tag, _, _ in entries:
        tag_of.setdefault(word.lower(), tag)
    jargon = []
    for word, text in jargon_entries():
        tag = tag_of.get(word.lower())
        if tag in cidx:
            jargon.append(
                {
                    "lemma": word,
                    "key": word.lower(),
                    "text": f"{word}: {text}",
                    "target": cidx[tag],
                }
            )
    jargon = dedup(jargon)
    jargon_keys = {r["key"] for r in jargon}
    old, recent = [], []
    for word, tag, text, year in entries:
        if tag not in cidx or word.lower() in jargon_keys:
            continue
        r = {
            "lemma": word,
            "key": word.lower(),
            "text": f"{word}: {text}",
            "target": cidx[tag],
        }
        if year <= old_until:
            old.append(r)
        elif year >= recent_from:
            recent.append(r)
    splits = grouped_split(dedup(old), rng, None, len(classes))
    recent = dedup(recent)
    rng.shuffle(recent)
    rng.shuffle(jargon)
    return {
        "format_version": 1,
        "seed": seed,
        "target_names": classes,
        "class_descriptions": [[c] for c in classes],
        "splits": {k: pack(v) for k, v in splits.items()},
        "shifts": {"recent": pack(recent), "jargon": pack(jargon)},
        "build_stats": {},
    }


CANDIDATES = {
    "wordnet-verbs": lambda: build_wordnet(
        "verb",
        min_synsets=200,
        caps={"train": 300, "validation": 75, "test": 150},
        heldout_per_class=100,
        subpop_per_class=100,
        webster=True,
    ),
    "wordnet-nouns": lambda: build_wordnet(
        "noun",
        min_synsets=1000,
        caps={"train": 200, "validation": 50, "test": 100},
        heldout_per_class=60,
        subpop_per_class=80,
        devil=True,
    ),
    "foldoc": build_foldoc,
}


# ------------------------------------------------------------------ measure
def embed_candidate(data, cache_dir):
    import numpy as np

    from skvrf.minilm import MiniLMEmbedder

    emb = MiniLMEmbedder(cache_dir=cache_dir, verbose=0)
    flat = [t for group in data["class_descriptions"] for t in group]
    E = emb.fit_transform(flat)
    class_emb, start = [], 0
    for group in data["class_descriptions"]:
        m = E[start : start + len(group)].mean(axis=0)
        class_emb.append(m / np.linalg.norm(m))
        start += len(group)
    feats = {}
    for name, d in {**data["splits"], **data["shifts"]}.items():
        print(f"  embedding {name} ({len(d['texts'])})", file=sys.stderr, flush=True)
        feats[name] = (emb.transform(d["texts"]), np.asarray(d["target"]))
    return np.asarray(class_emb), feats


def effective_robustness(correct_zs, correct_ft, n_boot=2000, seed=0):
    """ER = ft drop - zs drop (points) with its paired bootstrap 95 % interval.

    ``correct_*`` map ``"id"`` and ``"shift"`` to boolean arrays (rows in the
    same order for both models).
    """
    import numpy as np

    def er(i, s):
        zs = correct_zs["id"][i].mean() - correct_zs["shift"][s].mean()
        ft = correct_ft["id"][i].mean() - correct_ft["shift"][s].mean()
        return 100 * (ft - zs)

    n_id, n_s = len(correct_zs["id"]), len(correct_zs["shift"])
    rng = np.random.default_rng(seed)
    boot = np.array(
        [
            er(rng.integers(0, n_id, n_id), rng.integers(0, n_s, n_s))
            for _ in range(n_boot)
        ]
    )
    point = er(np.arange(n_id), np.arange(n_s))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def measure(name, data, cache_dir):
    from skvrf import ZeroShotClassifier
    from skvrf.commands._common import fit_finetuned

    class_emb, feats = embed_candidate(data, cache_dir)
    zs = ZeroShotClassifier(class_emb).fit(feats["train"][0])
    ft, info = fit_finetuned(feats["train"], feats["validation"], max_iter=2000)
    correct = {}
    for split, (X, y) in feats.items():
        correct[split] = (zs.predict(X) == y, ft.predict(X) == y)
    rows = []
    for shift in data["shifts"]:
        point, lo, hi = effective_robustness(
            {"id": correct["test"][0], "shift": correct[shift][0]},
            {"id": correct["test"][1], "shift": correct[shift][1]},
        )
        rows.append(
            {
                "candidate": name,
                "shift": shift,
                "n": len(correct[shift][0]),
                "zs_id": 100 * correct["test"][0].mean(),
                "ft_id": 100 * correct["test"][1].mean(),
                "zs_shift": 100 * correct[shift][0].mean(),
                "ft_shift": 100 * correct[shift][1].mean(),
                "er": point,
                "er_lo": lo,
                "er_hi": hi,
                "C": info["C"],
            }
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("candidates", nargs="+", choices=sorted(CANDIDATES))
    p.add_argument("--out", type=Path, help="write the (single) candidate here")
    p.add_argument("--measure", action="store_true")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--results", type=Path, default=None, help="JSON of measurements")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    all_rows = []
    for name in args.candidates:
        data = CANDIDATES[name]()
        sizes = {
            k: len(v["target"]) for k, v in {**data["splits"], **data["shifts"]}.items()
        }
        print(f"{name}: {len(data['target_names'])} classes, sizes {sizes}", flush=True)
        if args.out:
            write_json_gz(data, args.out)
        if args.measure:
            rows = measure(name, data, args.cache_dir)
            for r in rows:
                print(
                    f"  {r['shift']:<14} n={r['n']:<5}"
                    f" zs {r['zs_id']:.1f}->{r['zs_shift']:.1f}"
                    f"  ft {r['ft_id']:.1f}->{r['ft_shift']:.1f}  ER {r['er']:+.1f}"
                    f" [{r['er_lo']:+.1f}, {r['er_hi']:+.1f}]  (C={r['C']:g})",
                    flush=True,
                )
            all_rows += rows
    if args.results:
        args.results.write_text(json.dumps(all_rows, indent=1))


if __name__ == "__main__":
    main()
