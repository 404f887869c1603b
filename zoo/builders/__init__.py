"""Functional model builders shared by the task pipelines."""

from zoo.builders.language_model import build_frame_model, build_language_model, build_step_model

__all__ = ["build_frame_model", "build_language_model", "build_step_model"]
