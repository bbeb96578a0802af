"""Generated CLIP-like features with a distribution shift, for examples and tests."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

__all__ = ["make_shifted_features"]


def make_shifted_features(
    n_train=4000,
    n_val=1000,
    n_test=2000,
    n_shifted=2000,
    *,
    n_classes=10,
    n_features=64,
    cue_strength=1.2,
    noise=2.5,
    style_strength=3.0,
    random_state=None,
):
    """Generate features where fine-tuning helps in distribution and hurts under shift.

    Each class has a "text" direction (its zero-shot class embedding) and a
    dataset-specific cue. In-distribution rows are ``text[y] + cue_strength *
    cue[y] + noise``: a probe fitted on them learns to rely on the cue. Shifted
    rows replace each class's cue by a new random one and add a common "style"
    offset, so they lie away from the training data: the probe breaks, while the
    zero-shot head (cosine to ``text``) degrades gently. This is the situation VRF
    is built for, in a form small enough for examples and tests.

    Parameters
    ----------
    n_train, n_val, n_test, n_shifted : int, default=4000, 1000, 2000, 2000
        Rows of the training, validation, ID test and shifted test sets.
    n_classes : int, default=10
        Number of classes.
    n_features : int, default=64
        Dimension of the features.
    cue_strength : float, default=1.2
        Weight of the dataset-specific cue.
    noise : float, default=2.5
        Standard deviation of the isotropic noise.
    style_strength : float, default=3.0
        Scale of the shifted set's common offset.
    random_state : int, Generator, RandomState instance or None, default=None
        Seeds the draws.

    Returns
    -------
    data : Bunch
        ``train``, ``validation``, ``test``, ``shifted``: tuples ``(X, y)``;
        ``class_embeddings``: the text directions, shape (n_classes, n_features).

    Examples
    --------
    >>> from skvrf.datasets import make_shifted_features
    >>> data = make_shifted_features(200, 50, 50, 50, random_state=0)
    >>> data.train[0].shape, data.class_embeddings.shape
    ((200, 64), (10, 64))
    """
    if isinstance(random_state, np.random.RandomState):
        random_state = random_state.randint(2**31)
    rng = np.random.default_rng(random_state)
    text = rng.normal(size=(n_classes, n_features))
    cue = rng.normal(size=(n_classes, n_features))
    style = style_strength * rng.normal(size=n_features)

    def sample(n, shifted=False):
        y = rng.integers(0, n_classes, n)
        cues = rng.normal(size=(n_classes, n_features)) if shifted else cue
        X = (
            text[y]
            + cue_strength * cues[y]
            + rng.normal(scale=noise, size=(n, n_features))
        )
        return (X + style if shifted else X), y

    return Bunch(
        train=sample(n_train),
        validation=sample(n_val),
        test=sample(n_test),
        shifted=sample(n_shifted, shifted=True),
        class_embeddings=text,
    )
