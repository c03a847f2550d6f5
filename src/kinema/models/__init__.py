"""Torch networks. Plain `nn.Module`s over tensors: no strings, files, tasks or HTTP."""
