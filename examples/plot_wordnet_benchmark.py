"""
The embedded benchmark in Python: real text features, every method, one report
==============================================================================

``skvrf demo`` compares VRF with its baselines on a real benchmark that ships
with skvrf: WordNet nouns, embedded by the packaged all-MiniLM-L6-v2, classified
into 12 supersenses, with three shifted test sets (:doc:`/benchmark`). This
example does the same steps in Python, on a few hundred rows per split so that
it runs in about half a minute: the texts, their embeddings, every method built
by :func:`~skvrf.evaluation.compare_methods` on the same two components (tuned on
the validation split only), the report, the metrics and the ID/OOD trade-off.
With 300 rows per split the numbers are noisier than the benchmark page's.
Needs ``python -m pip install -e ".[demo]"``.
"""

# %%
# The texts
# ---------
# :func:`~skvrf.datasets.load_wordnet_supersenses` returns the raw benchmark:
# ``"lemma: definition"`` texts, their supersense and one description per class
# (the zero-shot head's "prompts");
# :func:`~skvrf.datasets.load_wordnet_verbs` the verb benchmark, where the
# zero-shot model is the robust one (:doc:`/benchmark_wordnet_verbs`).
from skvrf.datasets import load_wordnet_supersenses, load_wordnet_verbs

nouns = load_wordnet_supersenses()
first = nouns.train.texts[0]
print(first, "->", nouns.target_names[nouns.train.target[0]])
print(nouns.target_names[0], "is described as", nouns.class_descriptions[0])
print(
    "shifts:", list(nouns.shifts), "| verb shifts:", list(load_wordnet_verbs().shifts)
)

# %%
# Embedding
# ---------
# :class:`~skvrf.minilm.MiniLMEmbedder` is a scikit-learn transformer from texts
# to unit-norm 384-dimensional embeddings, cached on disk by content
# (:func:`~skvrf.minilm.default_cache_dir` is the demo's cache).
# :func:`~skvrf.datasets.benchmark_feature_suite` embeds every split and the
# class descriptions into a :class:`~skvrf.datasets.FeatureSuite`
# (:func:`~skvrf.datasets.wordnet_feature_suite` is the same for the nouns);
# ``max_per_split`` keeps the first rows of each split.
from skvrf.datasets import benchmark_feature_suite
from skvrf.minilm import MiniLMEmbedder, default_cache_dir

embedder = MiniLMEmbedder(cache_dir=default_cache_dir())
print(embedder.transform(["oak: a deciduous tree", "nouns denoting plants"]).shape)

suite = benchmark_feature_suite("wordnet-supersenses", max_per_split=300, verbose=0)
print(suite.name, suite.train[0].shape, {k: len(v[1]) for k, v in suite.shifts.items()})

# %%
# :func:`~skvrf.datasets.save_feature_suite` writes the suite in the command
# line's feature-file layout and returns the options that name the files;
# :func:`~skvrf.datasets.load_feature_suite` reads the folder back.
import tempfile

from skvrf.datasets import load_feature_suite, save_feature_suite

folder = tempfile.mkdtemp()
print("skvrf demo", " ".join(save_feature_suite(suite, folder)))
suite = load_feature_suite(folder)

# %%
# Every method on the same two components
# ---------------------------------------
# The zero-shot head reads the class descriptions' embeddings; the fine-tuned
# model is a logistic regression on the training embeddings. Every choice
# (OSE's alpha, VRF's k, threshold and temperature, the selective rules'
# thresholds) is made on the validation split.
from sklearn.linear_model import LogisticRegression

from skvrf import ZeroShotClassifier
from skvrf.evaluation import compare_methods, evaluate_shifts, sweep_alpha

zeroshot = ZeroShotClassifier(suite.class_embeddings).fit(suite.train[0])
probe = LogisticRegression(C=10, max_iter=2000).fit(*suite.train)
estimators, selection = compare_methods(zeroshot, probe, suite.train, suite.validation)
print(list(estimators))
vrf = estimators["VRF (paper defaults)"]  # a VRFEnsembleClassifier
selective = estimators["selective (MSP)"]  # a SelectiveEnsembleClassifier
entropy = estimators["entropy"]  # an EntropyEnsembleClassifier
print("tuned VRF:", selection["vrf"])

# %%
# The report
# ----------
# :func:`~skvrf.evaluation.evaluate_shifts` scores every method on the ID test
# set and each shift (a :class:`~skvrf.evaluation.RobustnessReport`);
# :func:`~skvrf.evaluation.sweep_alpha` adds OSE's curve over its global alpha
# (an :class:`~skvrf.evaluation.AlphaSweep`).
sweep = sweep_alpha(estimators["OSE"], suite.test, suite.shifts)
report = evaluate_shifts(
    estimators, suite.test, suite.shifts, scoring=("accuracy", "ece"),
    sweeps={"OSE": sweep},
)  # fmt: skip
print(report.to_markdown(metric="accuracy"))

# %%
# The metrics are plain functions of ``(y_true, proba, classes)``; a name
# resolves to ``(name, function)`` with
# :func:`~skvrf.evaluation.get_proba_metric`.
from skvrf.evaluation import (
    accuracy_from_proba,
    expected_calibration_error,
    get_proba_metric,
    log_loss_from_proba,
)

X_test, y_test = suite.test
proba = vrf.predict_proba(X_test)
print(f"accuracy {accuracy_from_proba(y_test, proba, vrf.classes_):.3f}")
print(f"log loss {log_loss_from_proba(y_test, proba, vrf.classes_):.3f}")
print(f"ECE      {expected_calibration_error(y_test, proba, vrf.classes_):.3f}")
name, metric = get_proba_metric("ece")
print(f"{name} by name {metric(y_test, proba, vrf.classes_):.3f}")

# %%
# A subset of the classes
# -----------------------
# A test set that covers only some classes (ImageNet-R covers 200 of
# ImageNet's 1000) is scored through a :class:`~skvrf.ClassMappedClassifier`:
# each component's logits are restricted to the kept classes before the mix.
import numpy as np

from skvrf import ClassMappedClassifier

kept = np.array([0, 5, 8])  # noun.animal, noun.food, noun.plant
rows = np.isin(y_test, kept)
view = ClassMappedClassifier(vrf, kept).fit()
print(f"3 classes: {view.score(X_test[rows], y_test[rows]):.3f}"
      f" (all 12: {vrf.score(X_test[rows], y_test[rows]):.3f})")  # fmt: skip

# %%
# The trade-off
# -------------
# Each method's ID accuracy against its mean OOD accuracy, with OSE's alpha
# sweep; the demo draws the same figure for the whole benchmark
# (:ref:`benchmark-figures`).
import matplotlib.pyplot as plt

from skvrf.plotting import RobustnessDisplay

display = RobustnessDisplay.from_report(report)
display.ax_.set_title("WordNet nouns, 300 rows per split")
plt.show()
