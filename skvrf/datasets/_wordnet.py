"""Loader for the embedded WordNet noun-supersense benchmark.

The data file is built by ``tools/build_wordnet_supersenses.py`` from Debian's
``wordnet-base`` (WordNet 3.0) and ``dict-gcide`` (only definitions attributed
to the public-domain 1913 Webster); see ``data/LICENSE-DATA.txt``.
"""

import gzip
import json
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["load_wordnet_supersenses"]

DATA_FILE = "wordnet_supersenses.json.gz"

DESCR = """\
WordNet noun supersenses
------------------------

Classify an English noun, given the text ``"lemma: definition"``, into its
WordNet 3.0 lexicographer class ("supersense"), e.g. ``noun.animal``,
``noun.artifact``, ``noun.feeling``. {n_classes} classes.

In-distribution (ID) splits ``train``, ``validation`` and ``test`` hold one
sample per WordNet synset: its first lemma and its WordNet definition. Splits
are grouped by lemma (no lemma occurs in two splits) and capped per class;
``noun.feeling`` is smaller than the other classes.

Shifts (same classes, ``shifts[name]``):

- ``webster``: held-out lemmas (in no ID split) whose WordNet noun senses all
  share one supersense, defined by the first noun sense of Webster's Revised
  Unabridged Dictionary (1913), from GCIDE; definitions whose words largely
  copy a WordNet gloss of the lemma were dropped.
- ``lemma``: the same held-out lemmas, the bare word with no definition.
- ``subpopulation``: whole WordNet hypernym subtrees removed from ID entirely
  (with every lemma that occurs in them): {subpopulations}. Its extra field
  ``groups`` names each sample's sub-group.

Sizes: {sizes}.

The data is deterministic (built with seed {seed}). Zero-shot prompts:
``class_descriptions[i]`` is a list of descriptions of class ``i`` (a
zero-shot head averages their normalised embeddings), fixed by a rule chosen
before any model was run on them and without looking at any split: {rule}
(e.g. ``noun.animal``: "nouns denoting animals").

Sources and licences: WordNet 3.0, Copyright 2006 by Princeton University
(WordNet licence, redistribution permitted with its notice); Webster's Revised
Unabridged Dictionary (1913), public domain, via GCIDE (GPL-3+ parts of GCIDE
are not included). See ``skvrf/datasets/data/LICENSE-DATA.txt``.
"""


def _split(d):
    extra = {k: v for k, v in d.items() if k not in ("texts", "target", "lemmas")}
    return Bunch(
        texts=list(d["texts"]),
        target=np.asarray(d["target"], dtype=np.intp),
        lemmas=list(d["lemmas"]),
        **extra,
    )


def _load_benchmark(data_file, descr, *, return_X_y=False):
    """Read a packaged WordNet benchmark file into the loaders' Bunch.

    Parameters
    ----------
    data_file : str
        Name of the gzipped JSON file in ``skvrf/datasets/data``.
    descr : str
        The ``DESCR`` template; its ``{n_classes}``, ``{subpopulations}``,
        ``{sizes}``, ``{seed}`` and ``{rule}`` fields (those it has) are filled
        from the file.
    return_X_y : bool, default=False
        Return ``(texts, target)`` of the ``train`` split instead.

    Returns
    -------
    data : Bunch or tuple
        As documented by the public loaders.
    """
    ref = resources.files(__package__).joinpath("data", data_file)
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        raw_data = json.load(fh)

    splits = {name: _split(d) for name, d in raw_data["splits"].items()}
    shifts = {name: _split(d) for name, d in raw_data["shifts"].items()}
    if return_X_y:
        return splits["train"].texts, splits["train"].target

    sizes = ", ".join(
        f"{name} {len(s.target)}" for name, s in {**splits, **shifts}.items()
    )
    descr = descr.format(
        n_classes=len(raw_data["target_names"]),
        subpopulations=", ".join(raw_data["subpopulations"]),
        sizes=sizes,
        seed=raw_data["seed"],
        rule=raw_data.get("class_descriptions_rule", "hand-written"),
    )
    return Bunch(
        **splits,
        shifts=shifts,
        target_names=list(raw_data["target_names"]),
        class_descriptions=[list(d) for d in raw_data["class_descriptions"]],
        DESCR=descr,
    )


def load_wordnet_supersenses(*, return_X_y=False):
    """Load the WordNet noun-supersense benchmark (ID splits and three shifts).

    Real, offline data shipped with skvrf: classify a noun from the text
    ``"lemma: definition"`` into its WordNet lexicographer class. The
    ``webster``, ``lemma`` and ``subpopulation`` shifts keep the classes and
    change the definitions' source, drop the definition, or show sub-groups
    never seen in training. Read ``DESCR`` for details.

    Parameters
    ----------
    return_X_y : bool, default=False
        If True, return ``(texts, target)`` of the ``train`` split instead of
        the full Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        train, validation, test : Bunch
            ID splits, each with ``texts`` (list of str), ``target`` (int
            ndarray indexing ``target_names``) and ``lemmas`` (list of str,
            the grouping variable: no lemma is in two splits).
        shifts : dict of str to Bunch
            ``"webster"``, ``"subpopulation"``, ``"lemma"``; same fields (the
            subpopulation split also has ``groups``).
        target_names : list of str
            Class names, e.g. ``"noun.animal"``.
        class_descriptions : list of list of str
            Natural-language descriptions per class for zero-shot prompts:
            WordNet's own description of each lexicographer file
            (``lexnames(5WN)``), verbatim.
        DESCR : str
            Description of the dataset, its construction and licences.

    (texts, target) : tuple of (list of str, ndarray)
        The ``train`` split, if ``return_X_y`` is True.

    Examples
    --------
    >>> from skvrf.datasets import load_wordnet_supersenses
    >>> data = load_wordnet_supersenses()
    >>> data.target_names[:3]
    ['noun.animal', 'noun.artifact', 'noun.body']
    >>> sorted(data.shifts)
    ['lemma', 'subpopulation', 'webster']
    >>> len(data.train.texts) == len(data.train.target)
    True
    >>> texts, y = load_wordnet_supersenses(return_X_y=True)
    >>> y.dtype.kind
    'i'
    """
    return _load_benchmark(DATA_FILE, DESCR, return_X_y=return_X_y)
