"""Mask extraction from image-editor layers: the cases Gradio's ImageEditor has had bugs with."""

import numpy as np
from PIL import Image

from synth import mask_from_layers


def stroke(size, box, alpha=255, colour=(255, 0, 255)):
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    layer.paste(colour + (alpha,), box)
    return layer


def test_empty_layers():
    for layers in (None, [], [None], [Image.new("RGBA", (20, 10), (0, 0, 0, 0))]):
        assert not np.asarray(mask_from_layers(layers, (20, 10))).any()


def test_rgba_alpha_not_colour():
    # a black stroke on a transparent layer: colour says nothing, alpha says painted
    m = np.asarray(mask_from_layers([stroke((20, 10), (2, 3, 6, 7), colour=(0, 0, 0))], (20, 10)))
    assert m.shape == (10, 20) and m[3:7, 2:6].all() and m.sum() == 16 * 255


def test_semi_transparent_strokes_and_faint_edges():
    layers = [stroke((20, 10), (0, 0, 5, 5), alpha=100), stroke((20, 10), (10, 0, 15, 5), alpha=10)]
    m = np.asarray(mask_from_layers(layers, (20, 10))) > 0
    assert m[0:5, 0:5].all()  # a half-transparent brush counts
    assert not m[0:5, 10:15].any()  # 4% alpha anti-aliasing does not


def test_resized_canvas_is_scaled_to_the_photo():
    # the editor returned a 40x20 canvas for a 20x10 photo
    m = np.asarray(mask_from_layers([stroke((40, 20), (0, 0, 20, 10))], (20, 10))) > 0
    assert m.shape == (10, 20) and m[0:5, 0:10].all() and m[5:, :].sum() == 0 and m[:, 10:].sum() == 0


def test_several_layers_union():
    m = np.asarray(mask_from_layers([stroke((8, 8), (0, 0, 2, 2)), stroke((8, 8), (6, 6, 8, 8))], (8, 8))) > 0
    assert m.sum() == 8


def test_app_editor_parts_uses_layers_and_uploaded_mask():
    import pytest

    gr = pytest.importorskip("gradio")
    import app

    photo = Image.new("RGB", (20, 10), (0, 128, 0))
    value = {"background": photo, "layers": [stroke((20, 10), (1, 1, 4, 4))], "composite": photo}
    p, m = app.widgets.editor_parts(value)
    assert p.size == (20, 10) and np.asarray(m).sum() == 9 * 255
    up = Image.new("L", (40, 20), 0)
    up.paste(255, (0, 0, 2, 2))
    _, m2 = app.widgets.editor_parts(value, up)  # uploaded mask wins, resized to the photo
    assert np.asarray(m2).sum() == 1 * 255
    with pytest.raises(gr.Error, match="empty"):
        app.widgets.editor_parts({"background": photo, "layers": [], "composite": photo})
    with pytest.raises(gr.Error, match="upload a photo"):
        app.widgets.editor_parts(None)
