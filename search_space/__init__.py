"""What can be searched: HRNet / Lite-HRNet, PNFS fabrics, body parts, ``PoseSpace``."""
import warnings

# NNI 3.0 inspects every torch.nn attribute when it is imported and warns about the classes
# newer PyTorch adds (Buffer, ...); nothing we use is affected.
warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*",
                        category=RuntimeWarning)

__all__ = ["build", "freeze"]


def build(cfg):  # noqa: ANN001,ANN201 - lazy: keep `import search_space` light
    """The supernet (``PoseSpace``, an NNI ``ModelSpace``) of an experiment config's space."""
    from search_space.pose_space import build as build_space

    return build_space(cfg.space, cfg.dataset.name)


def freeze(cfg, choices):  # noqa: ANN001,ANN201
    """The frozen network of ``choices`` in an experiment config's space (see
    :func:`search_space.pose_space.freeze`)."""
    from search_space.pose_space import freeze as freeze_space

    return freeze_space(cfg.space, cfg.dataset.name, choices)
