"""A stand-in shaped like XGBoost's training API, small enough to read whole.

``train(params, X, y, num_boost_round, callbacks)`` fits a scikit-learn linear classifier,
one pass over the data per round, and after each round calls every callback (which must
subclass tinyfw's own ``TrainingCallback``, as XGBoost's must) with the history so far.
"""

from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss


class TrainingCallback:
    def after_iteration(self, model, epoch, evals_log):
        """After each round. ``evals_log`` is ``{"train": {"logloss": [...], "error": [...]}}``
        (one value per round so far); returning True stops training."""
        return False


def train(params, X, y, num_boost_round=10, callbacks=None):
    """Train for ``num_boost_round`` rounds; returns the model."""
    callbacks = list(callbacks or [])
    if not all(isinstance(cb, TrainingCallback) for cb in callbacks):
        raise TypeError("callbacks must be tinyfw.TrainingCallback instances")
    model = SGDClassifier(loss="log_loss", random_state=0, **params)
    classes = sorted(set(y))
    evals_log = {"train": {"logloss": [], "error": []}}
    for epoch in range(num_boost_round):
        model.partial_fit(X, y, classes=classes)
        evals_log["train"]["logloss"].append(log_loss(y, model.predict_proba(X), labels=classes))
        evals_log["train"]["error"].append(1.0 - model.score(X, y))
        if any([cb.after_iteration(model, epoch, evals_log) for cb in callbacks]):
            break
    return model
