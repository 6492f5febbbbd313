"""Components: one package per capability, one module per backend."""
