"""Every kernel of the catalog against numpy, through a real fleet."""

import numpy as np
import pytest

rng = np.random.default_rng(7)


def f32(*shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def test_vector_add_is_exact(client):
    a, b = f32(1000), f32(1000)
    result = client.run("vector_add", [a, b])
    np.testing.assert_array_equal(result[0], a + b)
    assert result.outputs[0].dtype == np.float32 and result.outputs[0].shape == (1000,)


def test_saxpy(client):
    x, y = f32(513), f32(513)
    out = client.run("saxpy", [x, y], {"alpha": 2.5})[0]
    np.testing.assert_allclose(out, 2.5 * x.astype(np.float64) + y, rtol=1e-6, atol=1e-7)


def test_reduce_sum_gives_a_rank_0_array(client):
    x = f32(4, 257)
    out = client.run("reduce_sum", [x])[0]
    assert out.shape == () and out.dtype == np.float32
    assert out == pytest.approx(x.astype(np.float64).sum(), rel=1e-5, abs=1e-5)


def test_matmul(client):
    a, b = f32(37, 64), f32(64, 29)
    out = client.run("matmul", [a, b])[0]
    assert out.shape == (37, 29)
    np.testing.assert_allclose(out, a.astype(np.float64) @ b, atol=4 * 65 * 1e-6)


def test_softmax_along_the_last_axis(client):
    x = f32(5, 33) * 50
    out = client.run("softmax", [x])[0]
    shifted = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(out, shifted / shifted.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_normalize_with_tensors_and_with_params(client):
    x, scale, shift = f32(8, 3), f32(3), f32(3)
    np.testing.assert_allclose(client.run("normalize", [x, scale, shift])[0], x * scale + shift, rtol=1e-6)
    np.testing.assert_allclose(client.run("normalize", [x], {"scale": 2, "shift": -1})[0], x * 2 - 1, rtol=1e-6)


def bilinear(image, height, width):
    """Half-pixel centres, edges clamped (OpenCV INTER_LINEAR)."""
    h, w = image.shape[:2]
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def test_resize(client):
    image = f32(20, 30)
    out = client.run("resize", [image], {"height": 13, "width": 41})[0]
    assert out.shape == (13, 41)
    np.testing.assert_allclose(out, bilinear(image, 13, 41), atol=1e-5)


def gaussian_blur(image, sigma):
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    img = image.astype(np.float64)
    h, w = img.shape
    rows = np.clip(np.arange(h)[:, None] + np.arange(-radius, radius + 1)[None, :], 0, h - 1)
    cols = np.clip(np.arange(w)[:, None] + np.arange(-radius, radius + 1)[None, :], 0, w - 1)
    vertical = np.einsum("hk,hkw->hw", np.broadcast_to(taps, (h, taps.size)), img[rows])
    return np.einsum("wk,hwk->hw", np.broadcast_to(taps, (w, taps.size)), vertical[:, cols])


def test_blur(client):
    image = f32(24, 17)
    out = client.run("blur", [image], {"sigma": 1.5})[0]
    np.testing.assert_allclose(out, gaussian_blur(image, 1.5), atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8])
def test_passthrough_keeps_every_dtype_and_shape(client, dtype):
    arrays = [np.arange(24).astype(dtype).reshape(2, 3, 4), np.array(7, dtype=dtype), np.zeros((0, 5), dtype)]
    out = client.run("passthrough", arrays).outputs
    for sent, got in zip(arrays, out):
        assert got.dtype == sent.dtype and got.shape == sent.shape
        np.testing.assert_array_equal(got, sent)


def test_sleep_has_no_outputs(client):
    result = client.run("sleep", [], {"ms": 1})
    assert len(result) == 0 and result.outputs == []
