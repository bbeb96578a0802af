"""Build skvrf's second embedded benchmark: WordNet verb supersenses.

Task: classify an English verb, given the text ``"lemma: definition"``, into
its WordNet 3.0 lexicographer class ("supersense", e.g. ``verb.motion``); 14
classes (every verb lexicographer file with at least 200 synsets). The
zero-shot class descriptions are WordNet's own: the "Contents" column of
``lexnames(5WN)``, verbatim (``verb.motion``: "verbs of walking, flying,
swimming"). This is candidate C1 of ``docs/benchmark_search.rst``, built by the
rules written there before any model was run; the search chose it because its
zero-shot model is the robust one (see ``docs/benchmark_wordnet_verbs.rst``).

Sources (Debian packages, parsed directly; no nltk)::

    apt-get install wordnet-base dict-gcide

* ``/usr/share/wordnet/data.verb`` (``wordnet-base``): synsets, glosses,
  usage examples, lexicographer files, hypernym pointers.
* ``/usr/share/man/man5/lexnames.5WN.gz`` (``wordnet-base``): the class
  descriptions.
* ``/usr/share/dictd/gcide.dict.dz`` (``dict-gcide``): only paragraphs
  attributed exactly to ``[1913 Webster]`` (public domain).

Splits (deterministic given ``--seed``):

* ID ``train`` / ``validation`` / ``test``: one sample per synset,
  ``"<first lemma>: <gloss without its usage examples>"``, grouped by lemma,
  capped at 300 / 75 / 150 per class.
* ``usage`` (register): held-out lemmas (every verb sense in one class, never
  in ID), ``"<lemma>: <the synset's first usage example>"``.
* ``webster`` (source): the same held-out lemmas defined by the first verb
  sense of Webster's 1913 dictionary; definitions that largely copy a WordNet
  gloss of the lemma are dropped.
* ``subpopulation``: in each class, the second-largest hyponym subtree
  (rooted where the hypernym chain leaves the class) is removed from ID and
  sampled (at most 100 per class).

Usage::

    python tools/build_wordnet_verbs.py            # writes the package file
    python tools/build_wordnet_verbs.py --out x.json.gz --seed 0
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_wordnet_supersenses import PACKAGE_DATA, write_json_gz
from robust_candidates import LEXNAMES_MAN, WORDNET_DIR, build_wordnet

DEFAULT_OUT = PACKAGE_DATA / "wordnet_verbs.json.gz"
GCIDE_DICT = Path("/usr/share/dictd/gcide.dict.dz")

#: The parameters of candidate C1 (docs/benchmark_search.rst).
PARAMS = {
    "min_synsets": 200,
    "caps": {"train": 300, "validation": 75, "test": 150},
    "heldout_per_class": 100,
    "subpop_per_class": 100,
    "webster": True,
}


def build(seed=0):
    """The benchmark as the data file's dict."""
    return build_wordnet("verb", seed=seed, **PARAMS)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    for f in (WORDNET_DIR / "data.verb", LEXNAMES_MAN, GCIDE_DICT):
        if not f.exists():
            sys.exit(f"missing {f}: apt-get install wordnet-base dict-gcide")
    result = build(seed=args.seed)
    write_json_gz(result, args.out)
    sizes = {
        k: len(v["target"]) for k, v in {**result["splits"], **result["shifts"]}.items()
    }
    print(f"sizes: {sizes}; build stats: {result['build_stats']}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
