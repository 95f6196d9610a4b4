#!/usr/bin/env python3
"""Prints every array of each .npz in a directory, for FileCheck.

Python: the `python3` on PATH (NumPy). Arrays print as
`name dtype shape: values`, then `meta` as sorted JSON.
"""
import json
import pathlib
import sys

import numpy as np

for path in sorted(pathlib.Path(sys.argv[1]).glob("*.npz")):
    print(f"file {path.name}")
    with np.load(path) as npz:
        for name in sorted(npz.files):
            arr = npz[name]
            if name == "meta":
                print("meta", json.dumps(json.loads(bytes(arr)), sort_keys=True))
            else:
                values = " ".join(f"{v:g}" for v in arr.reshape(-1).tolist())
                print(f"{name} {arr.dtype} {list(arr.shape)}: {values}")
