"""Completion and signature popups: the public API's signatures carry type
hints with slim's argument names, the package ships py.typed and a stub of
the C module that matches it."""

import ast
import inspect
import os

import pyconv
import pyconv as slim
from pyconv import _conv
from pyconv.nets import mobilenet_v1, nets_factory, resnet_v1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_layer_signatures_show_slims_arguments_with_types():
    sig = inspect.signature(slim.conv2d)
    assert list(sig.parameters)[:5] == ["inputs", "num_outputs", "kernel_size", "stride",
                                        "padding"]
    assert sig.parameters["inputs"].annotation == "ArrayLike"
    assert sig.parameters["padding"].annotation == "Padding"
    assert sig.parameters["padding"].default == "SAME"
    assert sig.return_annotation == "np.ndarray"
    assert inspect.signature(slim.nn.conv2d).parameters["strides"].annotation == "IntOrPair"
    assert inspect.signature(slim.explain_padding).return_annotation == "PaddingExplanation"
    assert inspect.signature(slim.train.load_checkpoint).return_annotation == "CheckpointReader"
    assert inspect.signature(resnet_v1.resnet_v1_50).return_annotation == "NetOutput"
    assert inspect.signature(mobilenet_v1.mobilenet_v1_arg_scope).return_annotation == "ArgScope"
    assert inspect.signature(nets_factory.get_network_fn).parameters["name"].annotation == "str"
    assert inspect.signature(slim.VariableStore.load).return_annotation == "list[str]"


def test_hint_names_resolve():
    """Every name a hint uses is defined in pyconv._typing (what checkers import)."""
    import pyconv._typing as t

    for fn in (slim.conv2d, slim.batch_norm, slim.fully_connected, slim.nn.conv2d,
               slim.get_variable, resnet_v1.resnet_v1_50, slim.train.save_checkpoint,
               slim.conv_output_size):
        for p in [*inspect.signature(fn).parameters.values()]:
            if p.annotation is not inspect.Parameter.empty:
                eval(p.annotation, vars(t))  # noqa: S307 - our own annotation strings


def test_package_data_and_the_c_stub():
    assert os.path.isfile(os.path.join(ROOT, "pyconv", "py.typed"))
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        toml = f.read()
    assert '"py.typed"' in toml and '"_conv.pyi"' in toml
    with open(os.path.join(ROOT, "pyconv", "_conv.pyi")) as f:
        stub = ast.parse(f.read())
    stubbed = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(_conv) if not n.startswith("_") and callable(getattr(_conv, n))}
    assert stubbed == public
    conv = next(n for n in stub.body if isinstance(n, ast.FunctionDef) and n.name == "conv2d")
    assert [a.arg for a in conv.args.posonlyargs][:4] == ["input", "filters", "bias", "pad_top"]
    assert pyconv._conv.__doc__ is None or isinstance(pyconv._conv.__doc__, str)
