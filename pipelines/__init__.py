"""Task pipelines: one package per application, all run by ``pipelines.common``.

    python -m pipelines.<task> [train|evaluate|tune|export|predict] ...
"""
