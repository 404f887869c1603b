"""Encoder-decoder with attention: P(y<1..Ty> | x<1..Tx>) = Π_t P(y<t> | y<1..t-1>, x).

    encoder     e<t'> = E_x[x<t'>];  a<t'> = [a→<t'>; a←<t'>]   deep bidirectional zoo RNN
                (batch, Tx, 2u); its final states, forward and backward concatenated,
                start the decoder (units 2u)
    decoder     s<t>, state<t> = cell(E_y[y<t-1>], state<t-1>),  y<0> = <start>
    attention   α<t, t'> = softmax_t'(score(s<t>, a<t'>)) over the real source steps,
                c<t> = Σ_t' α<t, t'> a<t'>   (additive: Bahdanau's score; multiplicative:
                Luong's "general"; see ``zoo.layers.attention``)
    output      h<t> = tanh(W_c [c<t>; s<t>]),  ŷ<t> = softmax(W_y h<t> + b_y)
                (no attention: ŷ<t> = softmax(W_y s<t> + b_y), the plain encoder-decoder)

The context enters after the decoder's recurrent step (Luong et al. 2015's placement),
so a teacher-forced pass over all target steps is one fused recurrent pass; the course's
Bahdanau model, which feeds c<t> into the step, needs the steps one by one.

``build_encoder_decoder`` returns the training model ([source ids, decoder input ids] ->
logits (batch, Ty, V_y)); ``build_inference_models`` makes, from the same layer objects,
the encoder (source ids -> a<1..Tx>, source mask, the decoder's initial states) and the
one-step decoder ([tokens (batch, 1), a, mask, states] -> logits, states, α), which
``zoo.decoding`` drives for greedy and beam search. Ids 0 are padding on both sides.
"""

import keras
from keras import ops

from zoo import cells as zoo_cells
from zoo.layers.attention import AdditiveAttention, MultiplicativeAttention
from zoo.layers.recurrent import Recurrent

ATTENTION = ("additive", "multiplicative", "none")


def build_encoder_decoder(source_vocab, target_vocab, embedding_dim=64, cell="lstm", units=128,
                          num_layers=1, dropout=0.0, attention="additive", attention_units=128,
                          name="encoder_decoder"):
    """The teacher-forced training model.

    Args:
        source_vocab, target_vocab: vocabulary sizes (id 0 = padding).
        embedding_dim: size of E_x and E_y rows.
        cell: a ``zoo.cells.CELLS`` name; units: per direction of each encoder layer
            (the decoder has 2 * units).
        num_layers: encoder layers; dropout: between layers and before the output.
        attention: "additive", "multiplicative" or "none".
        attention_units: hidden size of the additive score.

    Inputs ``source_ids`` (batch, Tx) and ``decoder_ids`` (batch, Ty) int32; output the
    logits (batch, Ty, target_vocab). Layers are named ``source_embedding``,
    ``encoder_{l}_forward``/``_backward``, ``target_embedding``, ``decoder``,
    ``attention``, ``attentional``, ``dropout`` and ``logits``.
    """
    if attention not in ATTENTION:
        raise ValueError(f"Expected attention in {ATTENTION}. Received: attention={attention!r}")
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"Expected num_layers >= 1. Received: num_layers={num_layers!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout!r}")

    # Layers.
    source_embedding = keras.layers.Embedding(source_vocab, embedding_dim, mask_zero=True,
                                              name="source_embedding")
    encoders = [(Recurrent(zoo_cells.get(cell, units), return_sequences=True, return_state=True,
                           name=f"encoder_{i}_forward"),
                 Recurrent(zoo_cells.get(cell, units), return_sequences=True, return_state=True,
                           go_backwards=True, name=f"encoder_{i}_backward"))
                for i in range(num_layers)]
    target_embedding = keras.layers.Embedding(target_vocab, embedding_dim, name="target_embedding")
    decoder = Recurrent(zoo_cells.get(cell, 2 * units), return_sequences=True, return_state=True,
                        name="decoder")
    drop = keras.layers.Dropout(dropout, name="dropout")
    logits_layer = keras.layers.Dense(target_vocab, dtype="float32", name="logits")
    if attention != "none":
        score = (AdditiveAttention(attention_units, name="attention") if attention == "additive"
                 else MultiplicativeAttention(name="attention"))
        attentional = keras.layers.Dense(2 * units, activation="tanh", name="attentional")

    # Functional model.
    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    decoder_ids = keras.Input((None,), dtype="int32", name="decoder_ids")
    mask = ops.not_equal(source_ids, 0)  # (batch, Tx)
    x = source_embedding(source_ids)
    for i, (forward, backward) in enumerate(encoders):
        if i:
            x = drop(x)
        fwd, *fwd_states = forward(x, mask=mask)
        bwd, *bwd_states = backward(x, mask=mask)
        x = ops.concatenate([fwd, ops.flip(bwd, axis=1)], axis=-1)  # (batch, Tx, 2u)
    states = [ops.concatenate([f, b], axis=-1) for f, b in zip(fwd_states, bwd_states)]
    s, *_ = decoder(target_embedding(decoder_ids), initial_state=states)  # (batch, Ty, 2u)
    if attention != "none":
        context, _ = score(s, x, mask=mask)  # (batch, Ty, 2u)
        s = attentional(ops.concatenate([context, s], axis=-1))
    logits = logits_layer(drop(s))
    return keras.Model([source_ids, decoder_ids], logits, name=name)


def build_inference_models(model):
    """(encoder, step) models sharing ``model``'s layers (no copy).

    encoder: source_ids (batch, Tx) -> {"encoded": a (batch, Tx, 2u), "mask": (batch,
        Tx) bool, "states": the decoder's initial states}.
    step: [tokens (batch, 1), encoded, mask, *states] -> {"logits": (batch, V_y),
        "states": [...], "attention": α (batch, Tx) (zeros without attention)}.
    Fed the teacher-forced inputs one token at a time, step gives the training model's
    logits (tested).
    """
    layers = {layer.name: layer for layer in model.layers}
    num_layers = sum(1 for name in layers if name.endswith("_forward"))
    decoder = layers["decoder"]
    has_attention = "attention" in layers

    source_ids = keras.Input((None,), dtype="int32", name="source_ids")
    mask = ops.not_equal(source_ids, 0)
    x = layers["source_embedding"](source_ids)
    for i in range(num_layers):
        fwd, *fwd_states = layers[f"encoder_{i}_forward"](x, mask=mask)
        bwd, *bwd_states = layers[f"encoder_{i}_backward"](x, mask=mask)
        x = ops.concatenate([fwd, ops.flip(bwd, axis=1)], axis=-1)
    states = [ops.concatenate([f, b], axis=-1) for f, b in zip(fwd_states, bwd_states)]
    encoder = keras.Model(source_ids, {"encoded": x, "mask": mask, "states": states},
                          name=f"{model.name}_encoder")

    tokens = keras.Input((1,), dtype="int32", name="tokens")
    encoded = keras.Input((None, x.shape[-1]), name="encoded")
    source_mask = keras.Input((None,), dtype="bool", name="source_mask")
    state_inputs = [keras.Input((decoder.units,), name=f"state_{i}")
                    for i in range(decoder.num_states)]
    s, *new_states = decoder(layers["target_embedding"](tokens), initial_state=state_inputs)
    s = s[:, 0]  # (batch, 2u)
    if has_attention:
        context, alpha = layers["attention"](s, encoded, mask=source_mask)
        s = layers["attentional"](ops.concatenate([context, s], axis=-1))
    else:
        alpha = ops.zeros_like(ops.cast(source_mask, "float32"))
    logits = layers["logits"](s)
    step = keras.Model([tokens, encoded, source_mask] + state_inputs,
                       {"logits": logits, "states": new_states, "attention": alpha},
                       name=f"{model.name}_step")
    return encoder, step
