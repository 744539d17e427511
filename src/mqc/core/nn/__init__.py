"""Torch building blocks shared by the Kronos code and the candle LM (``core/lm``): top-k/top-p
sampling, binary spherical quantisation and candle standardisation. Imports nothing of core but
errors, so every layer may use it."""
