"""torch_gemm: thinc's CPU ops with the matrix products done by torch.

The span NER head multiplies every candidate span (about eight per token), so
its matrix products are most of its cost. thinc's `NumpyOps.gemm` runs BLIS on
one thread; torch runs the same product on the thread pool the transformer
already uses. Only the kernel changes: the layers, parameters and
serialization are thinc's. `benchmarks/README.md` (Consolidation) has the
measurement that keeps this path.
"""

import numpy
from thinc.api import Model, NumpyOps


class TorchGemmOps(NumpyOps):
    """NumpyOps whose `gemm` is `torch.matmul` on zero-copy views of float32
    arrays; anything else goes to NumpyOps' own `gemm`."""

    def gemm(self, x, y, out=None, trans1=False, trans2=False):
        import torch

        arrays = (x, y) if out is None else (x, y, out)
        if any(not isinstance(a, numpy.ndarray) or a.dtype != numpy.float32 or not a.flags.writeable for a in arrays):
            return super().gemm(x, y, out=out, trans1=trans1, trans2=trans2)
        a = torch.from_numpy(numpy.ascontiguousarray(x))
        b = torch.from_numpy(numpy.ascontiguousarray(y))
        a = a.t() if trans1 else a
        b = b.t() if trans2 else b
        if out is None:
            return torch.matmul(a, b).numpy()
        if not out.flags.c_contiguous:
            out[...] = torch.matmul(a, b).numpy()
        else:
            torch.matmul(a, b, out=torch.from_numpy(out))
        return out


def use_torch_gemm(model: Model) -> Model:
    """Give every node of `model` that runs on plain `NumpyOps` a
    `TorchGemmOps`. Other backends (CupyOps under `--gpu-id`, AppleOps) are
    left alone, and `Model.to_gpu` replaces these ops as usual.

    model (Model): The model whose nodes get the ops.
    RETURNS (Model): `model`.
    """
    ops = TorchGemmOps()
    for node in model.walk():
        if type(node.ops) is NumpyOps:
            node.ops = ops
    return model
