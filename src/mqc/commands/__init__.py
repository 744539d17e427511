"""CLI wiring: parse options -> build config -> call one core function -> render.

Modules here must not import torch, pandas or numpy at import time (``mqc --help`` stays fast);
import core modules inside command bodies.
"""
