"""seqzoo's model parts: recurrent cells (``zoo.cells``), sequence layers
(``zoo.layers``), model builders (``zoo.builders``) and decoding (``zoo.decoding``)."""

from zoo import cells, layers

__all__ = ["cells", "layers"]
