"""Layers: shapes in each framework's layout, their fans, and shape parsing."""

from __future__ import annotations

import math

import pytest

from initcheck.errors import InputError
from initcheck.layers import LAYOUTS, Layer, format_shape, parse_shape

# (torch shape, fan_in, fan_out)
TORCH_SHAPES = [
    ((10, 20), 20, 10),  # dense 20 -> 10
    ((1, 1), 1, 1),
    ((1000, 784), 784, 1000),
    ((32, 16, 5), 80, 160),  # conv1d
    ((128, 64, 3, 3), 576, 1152),  # conv2d
    ((64, 3, 7, 7), 147, 3136),
    ((16, 8, 1, 1), 8, 16),  # 1x1 conv
    ((8, 4, 3, 5), 60, 120),  # non-square kernel
    ((16, 8, 3, 3, 3), 216, 432),  # conv3d
    ((4, 2, 2, 3, 5), 60, 120),
]


def keras_of(torch_shape: tuple[int, ...]) -> tuple[int, ...]:
    out, inp, *kernel = torch_shape
    return (*kernel, inp, out)


# ---------------------------------------------------------------- dense


@pytest.mark.parametrize("fan_in, fan_out", [(1, 1), (20, 10), (784, 1000), (4096, 4096)])
def test_dense(fan_in, fan_out):
    layer = Layer.dense(fan_in, fan_out)
    assert layer.in_features == fan_in
    assert layer.out_features == fan_out
    assert layer.kernel == ()
    assert layer.receptive_field == 1
    assert layer.fan_in == fan_in
    assert layer.fan_out == fan_out
    assert layer.size == fan_in * fan_out
    assert layer.shape("torch") == (fan_out, fan_in)
    assert layer.shape("keras") == (fan_in, fan_out)
    assert layer.shape() == (fan_out, fan_in)


def test_dense_equals_the_layer_read_from_either_layout():
    layer = Layer.dense(20, 10)
    assert Layer.from_shape((10, 20)) == layer
    assert Layer.from_shape((10, 20), "torch") == layer
    assert Layer.from_shape((20, 10), "keras") == layer


@pytest.mark.parametrize("fan_in, fan_out", [(0, 10), (10, 0), (-1, 10), (10, -5), (None, 10), (10, None)])
def test_dense_rejects_non_positive_fans(fan_in, fan_out):
    with pytest.raises(InputError):
        Layer.dense(fan_in, fan_out)


# ---------------------------------------------------------------- from_shape and fans


@pytest.mark.parametrize("shape, fan_in, fan_out", TORCH_SHAPES, ids=lambda v: str(v))
def test_fans_torch_layout(shape, fan_in, fan_out):
    layer = Layer.from_shape(shape, "torch")
    assert layer.out_features == shape[0]
    assert layer.in_features == shape[1]
    assert layer.kernel == tuple(shape[2:])
    assert layer.receptive_field == math.prod(shape[2:])
    assert (layer.fan_in, layer.fan_out) == (fan_in, fan_out)
    assert layer.size == math.prod(shape)


@pytest.mark.parametrize("shape, fan_in, fan_out", TORCH_SHAPES, ids=lambda v: str(v))
def test_fans_keras_layout(shape, fan_in, fan_out):
    kshape = keras_of(shape)
    layer = Layer.from_shape(kshape, "keras")
    assert layer.in_features == kshape[-2]
    assert layer.out_features == kshape[-1]
    assert layer.kernel == tuple(kshape[:-2])
    assert (layer.fan_in, layer.fan_out) == (fan_in, fan_out)
    assert layer.size == math.prod(kshape)
    # the same layer as the torch shape describes
    assert layer == Layer.from_shape(shape, "torch")


def test_conv2d_example():
    layer = Layer.from_shape((128, 64, 3, 3))
    assert layer.fan_in == 576
    assert layer.fan_out == 1152
    assert layer.shape("keras") == (3, 3, 64, 128)
    keras = Layer.from_shape((3, 3, 64, 128), layout="keras")
    assert (keras.fan_in, keras.fan_out) == (576, 1152)
    assert keras.shape("torch") == (128, 64, 3, 3)


def test_conv1d_and_conv3d_examples():
    conv1d = Layer.from_shape((32, 16, 5))
    assert (conv1d.fan_in, conv1d.fan_out) == (16 * 5, 32 * 5)
    conv3d = Layer.from_shape((16, 8, 3, 3, 3))
    assert (conv3d.fan_in, conv3d.fan_out) == (8 * 27, 16 * 27)
    assert conv3d.shape("keras") == (3, 3, 3, 8, 16)


@pytest.mark.parametrize("shape, fan_in, fan_out", TORCH_SHAPES, ids=lambda v: str(v))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_shape_round_trips(shape, fan_in, fan_out, layout):
    given = shape if layout == "torch" else keras_of(shape)
    layer = Layer.from_shape(given, layout)
    assert layer.shape(layout) == tuple(given)
    assert Layer.from_shape(layer.shape("torch"), "torch") == layer
    assert Layer.from_shape(layer.shape("keras"), "keras") == layer
    assert layer.shape("torch") == tuple(shape)
    assert layer.shape("keras") == keras_of(shape)


def test_from_shape_accepts_lists():
    assert Layer.from_shape([128, 64, 3, 3]) == Layer.from_shape((128, 64, 3, 3))


@pytest.mark.parametrize("shape, fan_in, fan_out", TORCH_SHAPES, ids=lambda v: str(v))
def test_fans_match_torch(shape, fan_in, fan_out):
    torch = pytest.importorskip("torch")
    want = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    layer = Layer.from_shape(shape, "torch")
    assert (layer.fan_in, layer.fan_out) == tuple(want)
    keras = Layer.from_shape(keras_of(shape), "keras")
    assert (keras.fan_in, keras.fan_out) == tuple(want)


@pytest.mark.parametrize("shape", [(), (5,), (0,)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_shapes_with_fewer_than_two_dims_raise(shape, layout):
    with pytest.raises(InputError):
        Layer.from_shape(shape, layout)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (128, 64, 0, 3), (128, 64, 3, 0), (4, -1), (-3, 3, 3)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_shapes_with_a_zero_or_negative_dim_raise(shape, layout):
    with pytest.raises(InputError):
        Layer.from_shape(shape, layout)


def test_unknown_layout_raises():
    with pytest.raises(InputError):
        Layer.from_shape((10, 20), "jax")
    with pytest.raises(InputError):
        Layer.dense(20, 10).shape("tf")


def test_layers_are_hashable_values():
    assert Layer.from_shape((128, 64, 3, 3)) == Layer(64, 128, (3, 3))
    assert hash(Layer.from_shape((128, 64, 3, 3))) == hash(Layer(64, 128, (3, 3)))
    assert Layer.dense(20, 10) != Layer.dense(10, 20)


def test_describe():
    assert Layer.dense(20, 10).describe().strip()
    assert "3" in Layer.from_shape((128, 64, 3, 3)).describe()


# ---------------------------------------------------------------- parse_shape


@pytest.mark.parametrize(
    "text, shape",
    [
        ("128,64,3,3", (128, 64, 3, 3)),
        ("128x64", (128, 64)),
        ("128×64", (128, 64)),
        ("128x64x3x3", (128, 64, 3, 3)),
        ("128, 64, 3, 3", (128, 64, 3, 3)),
        (" 10,20 ", (10, 20)),
        ("10,20,", (10, 20)),
        ("7", (7,)),
    ],
)
def test_parse_shape_accepts(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["a,b", "", ",", " ", "128,b", "1.5,2", "12;3", "0x1f,3", "3,x", "3,,3", "x3", "3x"])
def test_parse_shape_rejects(text):
    with pytest.raises(InputError):
        parse_shape(text)


def test_parse_then_layer():
    layer = Layer.from_shape(parse_shape("128,64,3,3"))
    assert (layer.fan_in, layer.fan_out) == (576, 1152)
    layer = Layer.from_shape(parse_shape("3x3x64x128"), layout="keras")
    assert (layer.fan_in, layer.fan_out) == (576, 1152)


@pytest.mark.parametrize("text", ["128", "128,0", "0x5", "128,64,0,3"])
def test_parsed_shapes_that_are_not_layers_raise(text):
    with pytest.raises(InputError):
        Layer.from_shape(parse_shape(text))


def test_format_shape():
    assert format_shape((128, 64, 3, 3)) == "(128, 64, 3, 3)"
    assert format_shape(()) == "()"


# --------------------------------------------------------------------------- 1-d parameters


def test_a_vector_has_its_length_as_shape_in_every_layout():
    from initcheck.layers import Layer

    vector = Layer.from_shape((64,), vector=True)
    assert vector.shape("torch") == vector.shape("keras") == (64,)
    assert (vector.fan_in, vector.fan_out) == (64, 64) and vector.describe() == "vector 64"
    with pytest.raises(InputError):
        Layer.from_shape((64,))  # where fans are needed, a 1-d shape is refused


@pytest.mark.parametrize("framework", ["torch", "reference"])
def test_an_explicit_law_is_checked_on_a_1d_shape(capsys, framework):
    from helpers import run_cli

    code, out, err = run_cli(capsys, "trunc-normal", "--std", "0.02", "--low", "-0.04", "--high", "0.04",
                             "--shape", "64", "-f", framework, "-n", "1e5", "--no-progress")
    assert code == 0, out + err
    assert "vector 64" in out


@pytest.mark.parametrize("args, message", [
    (("xavier", "--shape", "64"), "fans need at least 2"),
    (("defaults", "--shape", "64", "-f", "torch"), "fans need at least 2"),
])
def test_a_1d_shape_is_refused_where_fans_are_needed(capsys, args, message):
    from helpers import run_cli

    code, out, err = run_cli(capsys, *args, "-n", "1e4")
    assert code == 2 and message in err


def test_the_api_checks_a_1d_parameter():
    import initcheck

    result = initcheck.verify(initcheck.trunc_normal(0.02, -0.04, 0.04), framework="reference", shape=(64,),
                              samples=10**5)
    assert result.passed and result.result.shape == (64,)
