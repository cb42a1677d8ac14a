"""Knowledge distillation: a trained teacher's heatmaps as a second target.

``loss = (1 − α) · JointsMSE(student, GT) + α · D(student, teacher)`` (:class:`~trainers.engine.losses.DistillLoss`)
where D is :class:`~trainers.engine.losses.JointsMSELoss` to the teacher's heatmaps (``distill.loss mse``)
or :class:`~trainers.engine.losses.HeatmapKLLoss` (``kl``); both weight joints as the GT loss does (target weight 0 for an
unlabelled joint). The teacher runs in eval mode without gradients and is not part of the
trained module, so checkpoints never carry it; it is rebuilt from the config on ``--resume``.
"""
from __future__ import annotations

import logging
from torch import nn

from search_space.joints import keypoint_spec
from trainers.network.build import build_network, load_any_network, network_spec
from trainers.config.schema import Config
from trainers.config.experiment import load_config
from search_space.errors import UserInputError

__all__ = ["build_teacher"]

logger = logging.getLogger(__name__)


def build_teacher(cfg: Config) -> nn.Module:
    """The teacher of ``cfg.distill``: eval mode, no gradients, its trained weights loaded.

    Raises:
        UserInputError: no weights to load, or a teacher predicting other joints than the
            student's dataset — naming the file and the ``distill.*`` field.
    """
    d = cfg.distill
    tcfg = load_config(d.config) if d.config else None
    if d.weights and not d.arch:
        # a posenas checkpoint rebuilds itself; a released file is read as the teacher
        # config's model (its dataset, or else the student's)
        _, spec, teacher = load_any_network(d.weights, tcfg or cfg, field="distill.weights")
        source, field = d.weights, "distill.weights"
    else:
        base = tcfg or cfg
        weights = d.weights or (tcfg.test.model_file or tcfg.model.pretrained if tcfg else "")
        if not weights:
            raise UserInputError(d.config or d.arch, "the teacher has no trained weights: set "
                                 "distill.weights (or the teacher config's test.model_file)",
                                 field="distill.weights")
        spec = network_spec(base, arch=d.arch or None, source=d.config or "config")
        teacher = build_network(spec, weights, field="distill.weights")
        source, field = d.config or d.arch, "distill.config" if d.config else "distill.arch"
    student_joints = keypoint_spec(cfg.dataset.name).names
    teacher_joints = keypoint_spec(spec.dataset).names
    if teacher_joints != student_joints:
        raise UserInputError(source, f"the teacher predicts the {len(teacher_joints)} joints of "
                             f"{spec.dataset}, the student the {len(student_joints)} of "
                             f"{cfg.dataset.name}", field=field)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    logger.info(f"distillation: teacher {spec.name} from {d.weights or source}, alpha {d.alpha}, "
                f"loss {d.loss}")
    return teacher
