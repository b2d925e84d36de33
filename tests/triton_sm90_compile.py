"""Compile the Triton kernels for an H100 (sm_90) without a GPU: Triton ships its own ptxas.

Run as a script in a process without TRITON_INTERPRET (the interpreter replaces triton.jit):
    python tests/triton_sm90_compile.py bf16 fp32
Catches what the interpreter cannot: type errors of the compiled language, unsupported
constructs, shared-memory overflows. Prints one line per kernel.
"""

from __future__ import annotations

import inspect
import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from bigbird_genomics.attention import triton_kernels

HALF_POINTERS = {"q_ptr", "k_ptr", "v_ptr", "out_ptr", "d_out_ptr", "dq_ptr", "dk_ptr", "dv_ptr"}
CONSTANTS = {"BLOCK": 64, "HEAD_DIM": 64, "HAS_MASK": True}


def signature(kernel, dtype: str) -> tuple[dict, dict]:  # noqa: ANN001
    """Argument types as the launcher would infer them for [B*H, N, 64] tensors of `dtype`."""
    types, constants = {}, {}
    for name in inspect.signature(kernel.fn).parameters:
        if name in CONSTANTS or name == "PRECISION":
            types[name] = "constexpr"
            constants[name] = CONSTANTS.get(name, "ieee" if dtype == "fp32" else "tf32")
        elif name in HALF_POINTERS:
            types[name] = "*" + dtype
        elif name == "real_ptr":
            types[name] = "*i8"
        elif name.endswith("_ptr"):
            float_buffer = any(word in name for word in ("lse", "delta", "part"))
            types[name] = "*fp32" if float_buffer else "*i32"
        else:
            types[name] = "fp32" if name.startswith("scale") else "i32"
    return types, constants


def main(dtypes: list[str]) -> None:
    for dtype in dtypes:
        for kernel in (triton_kernels.forward_kernel, triton_kernels.dq_kernel,
                       triton_kernels.dkdv_kernel):  # fmt: skip
            types, constants = signature(kernel, dtype)
            compiled = triton.compile(
                ASTSource(fn=kernel, signature=types, constexprs=constants),
                target=GPUTarget("cuda", 90, 32),
                options={"num_warps": 4, "num_stages": 2},
            )
            print(f"{dtype} {kernel.fn.__name__}: shared memory {compiled.metadata.shared} B")


if __name__ == "__main__":
    main(sys.argv[1:] or ["bf16"])
