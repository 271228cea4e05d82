"""How much like real SVHN is Problem 3's SVHN stand-in? Two measurements on real SVHN crops (a
folder in SVHN's .mat layout, e.g. the development subset), neither of which looks at MNIST:

1. the radial power spectrum of the images as the network sees them (grey, each image standardised:
   problem3_adda.to_input), and the mean absolute Laplacian, a one-number summary of fine detail
   and noise;
2. with --train: the wide LeNet trained on the stand-in with the default source schedule, then
   tested on the real crops, next to its accuracy on the stand-in's own test split.

    .venv/bin/python scripts/check_standin_fidelity.py --real ../shared/data/svhn-subset --train
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
import problem3_adda  # noqa: E402
from digits_standin import SVHN_FILES, write_svhn_standin  # noqa: E402

RADII = (1, 2, 4, 6, 8, 11, 14, 16)


def spectrum_summary(images, count=4000):
    """log10 of the mean radial power at RADII (cycles per 32 pixels) and the mean |Laplacian|."""
    x = problem3_adda.to_input(images[:count])[:, 0].numpy()
    power = (np.abs(np.fft.fftshift(np.fft.fft2(x), axes=(1, 2))) ** 2).mean(0)
    rows, cols = np.indices(power.shape)
    radius = np.hypot(rows - 16, cols - 16).astype(int)
    radial = np.bincount(radius.ravel(), power.ravel()) / np.bincount(radius.ravel())
    laplacian = np.abs(4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1]
                       - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]).mean()
    return np.log10(radial[list(RADII)]), float(laplacian)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="folder with real SVHN .mat files")
    parser.add_argument("--standin", type=Path, default=None,
                        help="folder with a stand-in's .mat files (default: write one as problem3_adda.py does)")
    parser.add_argument("--train", action="store_true", help="also train on the stand-in, test on the real crops")
    args = parser.parse_args()
    settings = problem3_adda.parse_arguments([])  # the script's defaults: stand-in sizes, seed, schedule
    real_splits = [problem3_adda.load_svhn_mat(args.real / name) for name in SVHN_FILES.values()]
    real = (torch.cat([s[0] for s in real_splits]), torch.cat([s[1] for s in real_splits]))
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.standin or Path(scratch)
        if args.standin is None:
            write_svhn_standin({split: folder / name for split, name in SVHN_FILES.items()}, settings.seed,
                               *settings.standin_svhn)
        standin = {split: problem3_adda.load_svhn_mat(folder / name) for split, name in SVHN_FILES.items()}
    print("log10 radial power at radius " + " ".join(f"{r:5d}" for r in RADII) + "   mean |Laplacian|")
    for name, images in (("real SVHN", real[0]), ("stand-in", standin["train"][0])):
        radial, laplacian = spectrum_summary(images)
        print(f"{name:29s}" + " ".join(f"{v:5.2f}" for v in radial) + f"   {laplacian:.3f}")
    if args.train:
        source = problem3_adda.train_source(standin, settings.seed, settings, "cpu")
        encoder, classifier = problem3_adda.load_source(source, settings, "cpu")
        transfer = problem3_adda.per_class_report(encoder, classifier, real, "cpu")
        print(f"wide LeNet trained on the stand-in ({settings.source_steps} steps): stand-in test "
              f"{source['svhn_test_acc']:.3f}, real SVHN crops {transfer['acc']:.3f} "
              f"(per digit {' '.join(f'{v:.2f}' for v in transfer['per_class'])})")


if __name__ == "__main__":
    main()
