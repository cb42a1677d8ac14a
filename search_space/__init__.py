"""What can be searched and built: backbones (HRNet, Lite-HRNet) with width choices, PNFS
fabrics, body-part heads, the unified ``PoseSpace`` (:mod:`search_space.pose_space`), the model
registry, and parameter/FLOP counting. The lowest layer: it imports no other posenas package."""
import warnings

# NNI 3.0 inspects every torch.nn attribute when it is imported and warns about the classes
# newer PyTorch adds (Buffer, ...); nothing we use is affected.
warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*",
                        category=RuntimeWarning)
