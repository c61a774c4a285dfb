#!/usr/bin/env python
"""Fold-by-fold comparison report of trained systems (the logic is ser_hf.reports.compare; same flags as
``ser-hf compare``).

    python scripts/compare.py --system mel_cnn=runs/ravdess_melcnn_cv --system whisper_lora=runs/whisper_lora \\
        --corpus ravdess --data_dir ../shared/data/ravdess-16k --output_dir docs/results/ravdess
"""

import sys

from ser_hf.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
