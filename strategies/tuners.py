"""NNI's HPO tuners (TPE, Anneal, …) as multi-trial strategies over the pose space.

NNI 3.0 wraps a tuner as a NAS strategy (``nni.nas.strategy.hpo.HPOTunerStrategy``) by turning
each decision into the tuner's legacy search-space dict — which it cannot do for an input
choice (``CategoricalMultiple`` with one chosen input, the fabric's ``…/input`` labels): the
strategy fails before its first trial. :class:`IndexInputsMixin` gives the tuner those labels as
plain choices over the candidate indices, as the ``nnictl`` space file does
(:mod:`strategies.nnictl.space_json`), and hands the model space NNI's one-element list back.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import nni
from nni.mutable import CategoricalMultiple
from nni.nas.strategy import TPE

__all__ = ["IndexInputsMixin", "PoseTPE"]

logger = logging.getLogger(__name__)


class IndexInputsMixin:
    """For an ``HPOTunerStrategy`` subclass: input choices as index choices for the tuner."""

    def _tuner_space(self) -> tuple[dict[str, Any], set[str]]:
        space, multiple = {}, set()
        for label, mutable in self.model_space.simplify().items():  # type: ignore[attr-defined]
            if isinstance(mutable, CategoricalMultiple) and mutable.n_chosen == 1:
                space[label] = {"_type": "choice", "_value": list(mutable.values)}
                multiple.add(label)
            else:
                space[label] = mutable.as_legacy_dict()
        return space, multiple

    def _run(self) -> None:
        # NNI 3.0 nni/nas/strategy/hpo.py HPOTunerStrategy._run, with the tuner's parameters
        # translated for the model space and kept for on_metric
        space, multiple = self._tuner_space()
        self._tuner_params: dict[int, dict[str, Any]] = {}
        with self._thread_lock:
            self.tuner.update_search_space(space)
        while self.engine.budget_available():
            if self.engine.idle_worker_available():
                with self._thread_lock:
                    try:
                        param = self.tuner.generate_parameters(self._model_count)
                    except nni.NoMoreTrialError:
                        logger.warning("no more trials from the tuner; stopping")
                        break
                    sample = {k: ([v] if k in multiple else v) for k, v in param.items()}
                    model = self.model_space.freeze(sample)
                    self._model_to_id[model] = self._model_count
                    self._tuner_params[self._model_count] = param
                    self._model_count += 1
                self.engine.submit_models(model)
            time.sleep(0.05)

    def on_metric(self, event: Any) -> None:
        with self._thread_lock:
            model_id = self._model_to_id[event.model]
            self.tuner.receive_trial_result(model_id, self._tuner_params[model_id], event.metric)


class PoseTPE(IndexInputsMixin, TPE):
    """NNI's TPE (``nni.algorithms.hpo.tpe_tuner.TpeTuner``) over the pose space."""
