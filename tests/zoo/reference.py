"""NumPy references of the course equations, float64, column-vector notation.

Each gate is W_g [a<t-1>, x<t>] + b_g with W_g of shape (units, units + input_dim); the
helpers build W_g from a zoo cell's fused weights by the mapping its docstring states.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def gate_matrices(cell, gates):
    """{gate: (W_g (units, units+in), b_g (units,))} from the cell's fused weights."""
    n = cell.units
    kernel = np.asarray(cell.kernel)  # (in, G*n)
    recurrent = np.asarray(cell.recurrent_kernel)  # (n, G*n)
    bias = np.asarray(cell.bias)
    out = {}
    for i, g in enumerate(gates):
        cols = slice(i * n, (i + 1) * n)
        W = np.concatenate([recurrent[:, cols], kernel[:, cols]], axis=0).T  # W_g = [U_g | K_g]
        out[g] = (W, bias[cols])
    return out


def basic_rnn(W, x, a0, activation="tanh"):
    g = np.tanh if activation == "tanh" else (lambda z: np.maximum(z, 0.0))
    Wa, ba = W["a"]
    a, outs = a0, []
    for x_t in x:  # x: (time, input_dim); a: (units,)
        a = g(Wa @ np.concatenate([a, x_t]) + ba)
        outs.append(a)
    return np.array(outs), [a]


def simplified_gru(W, x, c0):
    c, outs = c0, []
    for x_t in x:
        ax = np.concatenate([c, x_t])
        c_tilde = np.tanh(W["c"][0] @ ax + W["c"][1])
        gamma_u = sigmoid(W["u"][0] @ ax + W["u"][1])
        c = gamma_u * c_tilde + (1 - gamma_u) * c
        outs.append(c)
    return np.array(outs), [c]


def gru(W, x, c0):
    c, outs = c0, []
    for x_t in x:
        ax = np.concatenate([c, x_t])
        gamma_u = sigmoid(W["u"][0] @ ax + W["u"][1])
        gamma_r = sigmoid(W["r"][0] @ ax + W["r"][1])
        c_tilde = np.tanh(W["c"][0] @ np.concatenate([gamma_r * c, x_t]) + W["c"][1])
        c = gamma_u * c_tilde + (1 - gamma_u) * c
        outs.append(c)
    return np.array(outs), [c]


def lstm(W, x, a0, c0, peepholes=None, output_peephole="previous"):
    """peepholes: None or {"u": p_u, "f": p_f, "o": p_o}, elementwise on c<t-1>."""
    p = peepholes or {g: 0.0 for g in "ufo"}
    a, c, outs = a0, c0, []
    for x_t in x:
        ax = np.concatenate([a, x_t])
        c_tilde = np.tanh(W["c"][0] @ ax + W["c"][1])
        gamma_u = sigmoid(W["u"][0] @ ax + p["u"] * c + W["u"][1])
        gamma_f = sigmoid(W["f"][0] @ ax + p["f"] * c + W["f"][1])
        c_new = gamma_u * c_tilde + gamma_f * c
        seen = c if output_peephole == "previous" else c_new
        gamma_o = sigmoid(W["o"][0] @ ax + p["o"] * seen + W["o"][1])
        c = c_new
        a = gamma_o * np.tanh(c)
        outs.append(a)
    return np.array(outs), [a, c]


def run(cell, x, initial_states):
    """The reference of ``cell`` over one sequence x (time, in) from its initial states."""
    name = type(cell).__name__
    W = gate_matrices(cell, cell.gates)
    if name == "BasicRNNCell":
        return basic_rnn(W, x, *initial_states, activation=cell.activation)
    if name == "SimplifiedGRUCell":
        return simplified_gru(W, x, *initial_states)
    if name == "GRUCell":
        return gru(W, x, *initial_states)
    if name == "LSTMCell":
        return lstm(W, x, *initial_states)
    if name == "PeepholeLSTMCell":
        peep = {g: np.asarray(getattr(cell, f"peephole_{g}")) for g in "ufo"}
        return lstm(W, x, *initial_states, peepholes=peep, output_peephole=cell.output_peephole)
    raise ValueError(f"no reference for {name}")
