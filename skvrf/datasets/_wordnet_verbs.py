"""Loader for the embedded WordNet verb-supersense benchmark.

The data file is built by ``tools/build_wordnet_verbs.py`` from Debian's
``wordnet-base`` (WordNet 3.0) and ``dict-gcide`` (only definitions attributed
to the public-domain 1913 Webster); see ``data/LICENSE-wordnet_verbs.txt``.
"""

from ._wordnet import _load_benchmark

__all__ = ["load_wordnet_verbs"]

DATA_FILE = "wordnet_verbs.json.gz"

DESCR = """\
WordNet verb supersenses
------------------------

Classify an English verb, given the text ``"lemma: definition"``, into its
WordNet 3.0 lexicographer class ("supersense"), e.g. ``verb.motion``,
``verb.communication``, ``verb.possession``. {n_classes} classes: every verb
lexicographer file with at least 200 synsets (``verb.weather`` has 81).

The zero-shot class descriptions are WordNet's own, fixed by a rule before any
model was run: the "Contents" column of ``lexnames(5WN)``, verbatim (e.g.
``verb.motion``: "verbs of walking, flying, swimming"), one per class.

In-distribution (ID) splits ``train``, ``validation`` and ``test`` hold one
sample per synset: its first lemma and its WordNet gloss without the usage
examples. Splits are grouped by lemma (no lemma occurs in two splits) and
capped per class.

Shifts (same classes, ``shifts[name]``):

- ``usage`` (register): held-out lemmas (in no ID split) whose WordNet verb
  senses all share one class, given by a usage example instead of a
  definition: ``"lemma: <the synset's first usage example>"``.
- ``webster`` (source): the same held-out lemmas defined by the first verb
  sense of Webster's Revised Unabridged Dictionary (1913), from GCIDE;
  definitions whose words largely copy a WordNet gloss of the lemma were
  dropped.
- ``subpopulation``: in each class, the second-largest hyponym subtree (rooted
  where the hypernym chain leaves the class) removed from ID entirely:
  {subpopulations}. Its extra field ``groups`` names each sample's sub-group.

Sizes: {sizes}.

The data is deterministic (built with seed {seed}).

Sources and licences: WordNet 3.0, Copyright 2006 by Princeton University
(WordNet licence, redistribution permitted with its notice); Webster's Revised
Unabridged Dictionary (1913), public domain, via GCIDE (GPL parts of GCIDE are
not included). See ``skvrf/datasets/data/LICENSE-wordnet_verbs.txt``.
"""


def load_wordnet_verbs(*, return_X_y=False):
    """Load the WordNet verb-supersense benchmark (ID splits and three shifts).

    Real, offline data shipped with skvrf, built so that the zero-shot model is
    the robust one: classify a verb from the text ``"lemma: definition"`` into
    its WordNet lexicographer class, with WordNet's own class descriptions for
    the zero-shot head. The ``usage``, ``webster`` and ``subpopulation`` shifts
    keep the classes and change the register (usage examples instead of
    definitions), the source (Webster's 1913 dictionary), or show sub-groups
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
            ``"usage"``, ``"webster"``, ``"subpopulation"``; same fields (the
            subpopulation split also has ``groups``).
        target_names : list of str
            Class names, e.g. ``"verb.motion"``.
        class_descriptions : list of list of str
            WordNet's description of each class, for zero-shot prompts.
        DESCR : str
            Description of the dataset, its construction and licences.

    (texts, target) : tuple of (list of str, ndarray)
        The ``train`` split, if ``return_X_y`` is True.

    Examples
    --------
    >>> from skvrf.datasets import load_wordnet_verbs
    >>> data = load_wordnet_verbs()
    >>> data.target_names[:3]
    ['verb.body', 'verb.change', 'verb.cognition']
    >>> data.class_descriptions[9]
    ['verbs of walking, flying, swimming']
    >>> sorted(data.shifts)
    ['subpopulation', 'usage', 'webster']
    >>> texts, y = load_wordnet_verbs(return_X_y=True)
    >>> len(texts) == len(y)
    True
    """
    return _load_benchmark(DATA_FILE, DESCR, return_X_y=return_X_y)
