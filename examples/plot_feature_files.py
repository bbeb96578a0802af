"""
Feature files, fixed heads and saved models: the command line's layout in Python
================================================================================

``skvrf evaluate``, ``skvrf fit`` and ``skvrf predict`` read one ``.npz`` file
per split (the layout: :ref:`feature-files`). This example writes such files
from generated features, reads them back with the loaders the command line
uses, builds the two fixed heads from their files, fits VRF, and saves the
model with skops and loads it back (which ``skvrf fit --save model.skops`` and
``skvrf predict model.skops`` do). Each file lists its classes by **name**, in
an order of its own: rows are matched to classes by label, never by position.

The generated features' hand-set parameters (threshold, temperature) are for
illustration, not a recipe for CLIP features.
"""

# %%
# Writing the files
# -----------------
# A labelled split holds ``features``, ``labels`` (indices into ``classes``) and
# ``classes``; the zero-shot file ``class_embeddings``, ``classes`` and
# ``logit_scale``; a fine-tuned head ``coef``, ``intercept`` and ``classes``.
# Here the zero-shot file lists the classes in reverse order, as a prompt file
# in another order would.
import os
import tempfile

import numpy as np
from sklearn.linear_model import LogisticRegression

from skvrf.datasets import make_shifted_features

data = make_shifted_features(n_classes=4, random_state=0)
names = np.array(["cat", "dog", "fox", "owl"])
root = tempfile.mkdtemp()


def path(name):
    return os.path.join(root, name)


splits = {"train": data.train, "val": data.validation, "test": data.test,
          "ood-sketch": data.shifted}  # fmt: skip
for split, (X, y) in splits.items():
    np.savez(path(f"{split}.npz"), features=X, labels=y, classes=names)
np.savez(
    path("zeroshot.npz"),
    class_embeddings=data.class_embeddings[::-1],
    classes=names[::-1],
    logit_scale=100.0,
)
probe = LogisticRegression(max_iter=2000).fit(*data.train)
np.savez(path("head.npz"), coef=probe.coef_, intercept=probe.intercept_,
         classes=names)  # fmt: skip
print(sorted(os.listdir(root)))

# %%
# Reading them back
# -----------------
# :func:`~skvrf.io.load_features` checks the keys and shapes;
# :func:`~skvrf.io.feature_targets` gives each row's label (a class name);
# :func:`~skvrf.io.feature_class_map` the class map a shift set may carry (none
# here). The two heads come back fitted, their columns in the file's order.
from skvrf.io import (
    FeatureFileError,
    feature_class_map,
    feature_targets,
    load_features,
    load_linear_head_file,
    load_zeroshot_head,
)

train = load_features(path("train.npz"))
X_train, y_train = train["features"], feature_targets(train)
val = load_features(path("val.npz"))
X_val, y_val = val["features"], feature_targets(val)
print(X_train.shape, y_train[:4], feature_class_map(train))

zeroshot = load_zeroshot_head(path("zeroshot.npz"))
head = load_linear_head_file(path("head.npz"))
print("zero-shot head:", type(zeroshot).__name__, zeroshot.classes_)
print("fine-tuned head:", type(head).__name__, head.classes_)

# %%
# A file that lacks a key is refused with a message that says what it must
# hold (:class:`~skvrf.io.FeatureFileError`, a ``ValueError``):
np.savez(path("broken.npz"), features=X_train)
try:
    load_features(path("broken.npz"))
except FeatureFileError as error:
    print(error)

# %%
# VRF on the two heads
# --------------------
# Both heads are fixed (``fit`` learns nothing); VRF calibrates them on the
# validation rows and matches their columns to its sorted ``classes_`` by name.
from skvrf import VRFEnsembleClassifier

vrf = VRFEnsembleClassifier(zeroshot, head, threshold=1.45, temperature=0.05)
vrf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
for split in ("test", "ood-sketch"):
    rows = load_features(path(f"{split}.npz"))
    print(
        f"{split:<11} accuracy {vrf.score(rows['features'], feature_targets(rows)):.3f}"
    )

# %%
# VRF's weight of the fine-tuned head against the distance to its ZSF set, over
# the distances of the test rows and of the sketch rows read from the files:
# the shifted rows lie farther, so the zero-shot head counts more there.
from skvrf.plotting import WeightDisplay

WeightDisplay.from_estimator(
    vrf,
    load_features(path("test.npz"))["features"],
    {"ood-sketch": load_features(path("ood-sketch.npz"))["features"]},
)

# %%
# Saving and loading the model
# ----------------------------
# :func:`~skvrf.persistence.save_model` writes a skops file (no pickle);
# :func:`~skvrf.persistence.load_model` builds only reviewed types and checks the
# fitted values with :func:`~skvrf.persistence.validate_model`. A file that asks
# for any other type raises :class:`~skvrf.persistence.UntrustedModelError`, one
# whose values do not fit together :class:`~skvrf.persistence.InvalidModelError`,
# and a file saved by another skvrf version warns with
# :class:`~skvrf.persistence.ModelVersionWarning`.
from skvrf.persistence import (
    InvalidModelError,
    load_model,
    save_model,
    validate_model,
)

save_model(vrf, path("model.skops"))
loaded = load_model(path("model.skops"))
X_test = load_features(path("test.npz"))["features"]
print("same predictions:", np.array_equal(loaded.predict(X_test), vrf.predict(X_test)))

# an impossible fitted value, as an edited or damaged file could hold
loaded.calibration_temperatures_["zeroshot"] = -1.0
try:
    validate_model(loaded)
except InvalidModelError as error:
    print(type(error).__name__, ":", error)

# %%
# The same from the command line, on these files::
#
#     skvrf fit --train train.npz --val val.npz --zeroshot zeroshot.npz \
#         --head head.npz --threshold 1.45 --temperature 0.05 --save model.skops
#     skvrf predict model.skops --features test.npz --out predictions.npz
