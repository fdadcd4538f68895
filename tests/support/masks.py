"""Small masks the export tests share: shapes whose polygons and RLE are easy to get wrong."""

from __future__ import annotations

import numpy as np


def ring_with_hole(h, w):
    m = np.zeros((h, w), bool)
    m[4:20, 5:25] = True
    m[8:12, 10:15] = False  # hole
    m[24:28, 2:6] = True  # second part
    m[9:11, 11:13] = True  # island inside the hole
    return m


def blob(h, w):
    m = np.zeros((h, w), bool)
    m[2:10, 3:9] = True
    m[10:14, 3:5] = True
    return m
