#!/usr/bin/env python
"""Writes examples/*.ipynb (outputs stripped) from the cells below.

Edit the cells here and run ``python tools/make_notebooks.py``; the tests
(tests/test_notebooks.py) execute the notebooks in a Jupyter kernel.
"""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "examples")

TRAP = [
    new_markdown_cell("""# The even-size trap: `conv2d(stride=2, padding='SAME')` vs `conv2d_same`

TF's `SAME` padding depends on the input size: when the total padding is odd,
the extra row/column goes **after** (bottom/right). For a 3x3 kernel at stride 2
on an *even* input, SAME pads 0 before and 1 after, so every window is shifted
by one pixel compared with `conv2d(stride=1)` followed by `subsample(2)`.
ResNet's `conv2d_same` pads `k - 1` in total (`// 2` before) whatever the size,
so it always equals the stride-1 convolution subsampled.

pyconv computes forward passes only: everything below is plain NumPy arrays."""),
    new_code_cell("""import numpy as np
import pyconv as slim

slim.explain_padding(4, 3, stride=2, padding='SAME')"""),
    new_markdown_cell("""Grey cells are zero padding, the orange one TF's extra pad after; the
dots are the taps of the first (blue) and last (red) windows. `conv2d_same`
pads one cell on each side instead:"""),
    new_code_cell("slim.explain_padding(4, 3, stride=2, padding='conv2d_same')"),
    new_markdown_cell("All four paddings of the same input, input cells aligned:"),
    new_code_cell("trap = slim.compare_padding(4, 3, stride=2)\ntrap"),
    new_code_cell("print(trap)  # the same explanation as text"),
    new_markdown_cell("""## The numbers: TF-Slim's resnet_utils test

Input and 3x3 kernel both `value = row + column`; `conv2d_same(stride=2)`
must equal `conv2d(stride=1)` then `subsample(2)`."""),
    new_code_cell("""def image(n):
    r = np.arange(n, dtype=np.float32)
    return (r[:, None] + r[None, :]).reshape(1, n, n, 1)

kernel = image(3).reshape(3, 3, 1, 1)

def three_ways(n):
    x = image(n)
    with slim.VariableStore(seed=0):
        common = dict(activation_fn=None, weights_initializer=kernel)
        y1 = slim.conv2d(x, 1, 3, stride=1, padding='SAME', scope='Conv', **common)
        reference = slim.subsample(y1, 2)
        with slim.variable_scope(slim.get_variable_scope(), reuse=True):
            same = slim.conv2d_same(x, 1, 3, stride=2, scope='Conv')
            plain = slim.conv2d(x, 1, 3, stride=2, padding='SAME', scope='Conv',
                                activation_fn=None)
    return reference[0, :, :, 0], same[0, :, :, 0], plain[0, :, :, 0]

ref, same, plain = three_ways(4)
print('4x4 input\\nconv2d(stride 1) + subsample:\\n', ref)
print('conv2d_same(stride 2):\\n', same)
print('conv2d(stride 2, SAME):\\n', plain)
print('conv2d_same agrees:', np.array_equal(same, ref),
      '| conv2d SAME agrees:', np.array_equal(plain, ref))"""),
    new_code_cell("""ref, same, plain = three_ways(5)
print('5x5 input (odd): conv2d_same agrees:', np.array_equal(same, ref),
      '| conv2d SAME agrees:', np.array_equal(plain, ref))
slim.compare_padding(5, 3, stride=2, paddings=('SAME', 'conv2d_same'))"""),
    new_markdown_cell("""## Height and width at once

The same 4x4 input in 2-D: SAME's windows start at the top-left corner and
reach TF's extra row and column of padding; `conv2d_same`'s are centred.
A ResNet stem (7x7, stride 2) on a 224x160 image: both dimensions are even, so
SAME again pads 2 before and 3 after, while `conv2d_same` pads 3 and 3."""),
    new_code_cell("slim.compare_padding((4, 4), 3, stride=2, paddings=('SAME', 'conv2d_same'))"),
    new_code_cell("slim.explain_padding((224, 160), 7, stride=2, padding='SAME')"),
    new_code_cell("slim.explain_padding((224, 160), 7, stride=2, padding='conv2d_same')"),
]

RESNET = [
    new_markdown_cell("""# Build a ResNet, write a checkpoint, load it

No checkpoint can be downloaded here, so this notebook writes a small one
itself with `pyconv.train.save_checkpoint` (a TensorFlow V2 checkpoint, the
format `tf.train.Saver` writes), then loads it the way you would load the
zoo's `resnet_v1_50.ckpt`: `store.load(path)` before building the net.
Small images (64x64) and 10 classes keep it quick."""),
    new_code_cell("""import os, tempfile
import numpy as np
import pyconv as slim
from pyconv.nets import nets_factory

network_fn = nets_factory.get_network_fn('resnet_v1_50', num_classes=10)
images = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype(np.float32)

with slim.VariableStore(seed=0) as store:        # random initial weights
    logits, end_points = network_fn(images)
print(logits.shape, len(store), 'variables')   # tf_slim's resnet_v1 keeps [batch, 1, 1, classes]"""),
    new_code_cell("""ckpt_dir = tempfile.mkdtemp()
prefix = os.path.join(ckpt_dir, 'model.ckpt-0')
slim.train.save_checkpoint(prefix, {v.name: v.value for v in store.variables()})
reader = slim.train.load_checkpoint(ckpt_dir)   # a directory: its latest checkpoint
reader"""),
    new_markdown_cell("""Loading into a fresh store: the values wait until the layers that create
the variables take them; `check_loaded()` raises if any variable was left
at its initial value or any value was not used. A checkpoint of 64 MiB or
more shows a progress bar while it loads (this one is ~95 MB)."""),
    new_code_cell("""with slim.VariableStore() as loaded:
    loaded.load(ckpt_dir)
    logits2, _ = network_fn(images)
    loaded.check_loaded()
print('same logits as the saved weights give:', np.array_equal(logits, logits2))
print(np.squeeze(logits2, (1, 2))[:, :5])"""),
    new_code_cell("loaded"),
    new_code_cell("loaded.variable('resnet_v1_50/conv1/weights')"),
    new_markdown_cell("""## Summary

Layer by layer: output shape, parameters, multiply-adds, and the receptive
field and stride (in input pixels) so far."""),
    new_code_cell("slim.summary(network_fn, (1, 64, 64, 3))"),
    new_markdown_cell("slim's `model_analyzer`, with TF-Slim's printed format:"),
    new_code_cell("""total, nbytes = slim.model_analyzer.analyze_vars(loaded.variables()[:6], print_info=True)
reader.close()"""),
]

MOBILENET = [
    new_markdown_cell("""# MobileNet v1: summary and timings

MobileNet v1 (tensorflow/models' `mobilenet_v1`) on pyconv's depthwise and
1x1 convolutions. Random weights (no download): the numbers below are
sizes, multiply-adds and speed, not accuracy."""),
    new_code_cell("""import time
import numpy as np
import pyconv as slim
from pyconv.nets import nets_factory

network_fn = nets_factory.get_network_fn('mobilenet_v1', num_classes=1001)
summary = slim.summary(network_fn, (1, 128, 128, 3), depth_multiplier=0.5)
summary"""),
    new_code_cell("""print(f"{summary.total_params:,} parameters, {summary.total_macs / 1e6:.1f} M mult-adds")
print('last layer sees', summary.rows[-1]['rf'], 'input pixels, stride', summary.rows[-1]['stride'])"""),
    new_markdown_cell("""## Timings

Median of a few forward passes (batch 1) after one untimed pass, for three
widths. Timings depend on the machine and its load."""),
    new_code_cell("""def median_ms(fn, x, repeat=5):
    fn(x)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))

x = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
print(f"{slim.get_num_threads()} threads, {slim._conv.isa()} kernels")
print(f"{'depth multiplier':>16} {'params':>11} {'mult-adds':>13} {'forward ms':>11}")
for dm in (0.25, 0.5, 1.0):
    s = slim.summary(network_fn, x.shape, depth_multiplier=dm)
    with slim.VariableStore(seed=0):
        ms = median_ms(lambda im: network_fn(im, depth_multiplier=dm), x)
    print(f"{dm:>16} {s.total_params:>11,} {s.total_macs:>13,} {ms:>11.2f}")"""),
    new_code_cell("""with slim.VariableStore(seed=0) as store:
    logits, end_points = network_fn(x, depth_multiplier=0.5)
probs = end_points['Predictions'].reshape(-1)
print('top-5 classes (random weights):', np.argsort(-probs)[:5])
slim.summary(end_points, store=store)"""),
]


def write(name, cells):
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        nbformat.write(nb, f)
    print("wrote", os.path.relpath(path))


if __name__ == "__main__":
    write("01_even_size_trap.ipynb", TRAP)
    write("02_resnet_checkpoint.ipynb", RESNET)
    write("03_mobilenet.ipynb", MOBILENET)
