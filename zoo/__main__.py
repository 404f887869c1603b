"""A short tour of the zoo: every cell over a padded batch of real text.

    python -m zoo

Encodes three sentences of the Python documentation (``pydoc_data.topics``, part of
the standard library) as characters, pads them to one length, and runs every zoo cell
forwards and bidirectionally with masking, showing that the padded steps change nothing.
"""

import sys

import numpy as np


def main(argv=None):
    import keras
    from pydoc_data.topics import topics

    import zoo

    sentences = [s.strip() for s in topics["if"].split(".") if s.strip()][:4]
    lengths = [len(s) for s in sentences]
    ids = np.zeros((len(sentences), max(lengths)), dtype="int32")
    for i, s in enumerate(sentences):
        ids[i, : len(s)] = [min(ord(ch), 255) for ch in s]
    embed = keras.layers.Embedding(256, 16, mask_zero=True)
    x = embed(ids)
    mask = ids != 0
    print(f"{len(sentences)} sentences of {lengths} characters, padded to {ids.shape[1]}")
    print(f"{'cell':<16}{'params':>8}{'forward':>16}{'bidirectional':>18}{'pad-invariant':>16}")
    for name in zoo.cells.CELLS:
        keras.utils.set_random_seed(0)
        layer = zoo.layers.Recurrent(zoo.cells.get(name, 32))
        out = np.asarray(layer(x, mask=mask))
        bidi = keras.layers.Bidirectional(zoo.layers.Recurrent(zoo.cells.get(name, 32)))
        out_bidi = np.asarray(bidi(x, mask=mask))
        short = int(np.argmin(lengths))
        alone = np.asarray(layer(x[short : short + 1, : lengths[short]]))
        same = np.allclose(alone, out[short : short + 1], atol=1e-5)
        print(
            f"{name:<16}{layer.count_params():>8}{str(out.shape):>16}"
            f"{str(out_bidi.shape):>18}{str(same):>16}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
