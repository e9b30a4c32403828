"""Which types a skops file may name before keel refuses to load it without ``trust=True``.

skops rebuilds an object from a JSON tree; each node names a module and an attribute that skops
resolves and then instantiates or *calls* (``ConstructorFromReduceNode`` calls it with arguments
from the file). skops itself trusts a conservative default set (scikit-learn estimators, numpy
dtypes and ufuncs, builtins containers) and reports everything else through
``skops.io.get_untrusted_types``. Trusting a whole package, as keel once did for ``numpy.*``, let a
file name ``numpy.testing._private.utils.runstring`` and run its own Python on load.

So keel trusts, beyond skops' defaults, exactly the classes below: the ones the estimator families
keel supports need (trees, neighbour indexes, optimizers, the XGBoost/LightGBM scikit-learn wrappers
inside a Pipeline). The list is data, compared by exact name: nothing a file names is imported to
decide. ``tests/models/test_skops_allowlist.py`` regenerates it by saving each family and fails,
showing the new list, when a library upgrade changes what they need.
"""

from __future__ import annotations

from collections.abc import Iterable

from keel.errors import TrustError

__all__ = ["SKOPS_TRUSTED_TYPES", "check_skops_types", "is_trusted_skops_type"]

#: classes a skops file may use without ``trust=True`` besides those skops trusts by default
SKOPS_TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "numpy.dtype",
        # skops leaves TreePredictor untrusted because a crafted node array can make
        # prediction read out of bounds (a crash, not code execution); keel's registry only
        # loads bytes whose sha256 was recorded, and HistGradientBoosting needs it
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.tree._tree.Tree",
        "sklearn.utils._bunch.Bunch",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
    }
)


def is_trusted_skops_type(type_name: str) -> bool:
    """Whether a type that skops reports as untrusted may still load without ``trust=True``.

    Only exact names on :data:`SKOPS_TRUSTED_TYPES` pass, so a function from a trusted package
    (``numpy.testing._private.utils.runstring``, ``builtins.exec``) never does.

    Example::

        >>> is_trusted_skops_type("sklearn.tree._tree.Tree"), is_trusted_skops_type("builtins.exec")
        (True, False)
    """
    return type_name in SKOPS_TRUSTED_TYPES


def check_skops_types(found: Iterable[str], *, trust: bool) -> list[str]:
    """Return the names to hand skops as trusted, or raise TrustError naming the refused ones."""
    names = sorted(set(found))
    refused = [name for name in names if not is_trusted_skops_type(name)]
    if refused and not trust:
        raise TrustError(
            f"The skops file names types keel does not trust by default: {', '.join(refused)}. "
            "skops would import them and may call them while loading, which runs their code. "
            "If the model comes from a source you trust, pass trust=True to load_model "
            "(keel.load_model, Client.load_model or keel.models.load_model); the file's sha256 "
            "is still checked first."
        )
    return names
