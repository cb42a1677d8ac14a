"""What can be searched: HRNet / Lite-HRNet, PNFS fabrics, body parts, ``PoseSpace``."""
import warnings

# NNI 3.0 inspects every torch.nn attribute when it is imported and warns about the classes
# newer PyTorch adds (Buffer, ...); nothing we use is affected.
warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*",
                        category=RuntimeWarning)
