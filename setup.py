"""Build the one C extension (initcheck._kernels); everything else is in pyproject.toml.

The extension is an accelerator, not a requirement: initcheck.kernels falls
back to a NumPy implementation that gives the same cells and counts.  So each
compiler flag is used only where the compiler accepts it, and a build that
fails for any reason (no compiler, no Python headers, an exotic platform)
prints one warning line and the install goes on without the extension.
"""

import os
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: Flags for GCC-style compilers (GCC, clang, Apple clang, icx), each kept if it compiles.
GCC_FLAGS = [
    "-O3",
    # reassociation lets the power sums vectorize; no -ffast-math, which
    # would assume away the NaN and Inf the kernel must count
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-fassociative-math",
    # the cell rule must round exactly as grid.py and the NumPy path do
    "-ffp-contract=off",
    # `omp simd` reductions (the extremes) vectorize; no OpenMP runtime
    "-fopenmp-simd",
]
#: MSVC: precise floating point (no contraction into FMA, no reassociation).
MSVC_FLAGS = ["/O2", "/fp:precise"]

WARNING = "warning: initcheck._kernels was not built ({}); initcheck will use its NumPy path"


class OptionalBuildExt(build_ext):
    """build_ext that keeps only the flags the compiler accepts and never fails."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - any failure leaves the NumPy path
            self._skip(error)

    def build_extensions(self):
        try:
            flags, macros = self._flags()
        except Exception:  # noqa: BLE001 - probing failed: build with no extra flags
            flags, macros = [], []
        for ext in self.extensions:
            ext.extra_compile_args = list(flags) + list(ext.extra_compile_args or [])
            ext.define_macros = list(macros) + list(ext.define_macros or [])
        super().build_extensions()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            self._skip(error)

    def _flags(self):
        if self.compiler.compiler_type == "msvc":
            return MSVC_FLAGS, []
        flags = []
        for flag in GCC_FLAGS:  # with those before it: -fassociative-math needs the two above
            if self._accepts(flags + [flag]):
                flags.append(flag)
        macros = [("IC_OPENMP_SIMD", "1")] if "-fopenmp-simd" in flags else []
        return flags, macros

    def _accepts(self, flags: list) -> bool:
        """Whether a trivial C file compiles with ``flags`` and no warning."""
        with tempfile.TemporaryDirectory() as folder:
            source = os.path.join(folder, "probe.c")
            with open(source, "w") as f:
                f.write("int probe(int x) { return x + 1; }\n")
            try:
                self.compiler.compile([source], output_dir=folder, extra_postargs=[*flags, "-Werror"])
            except Exception:  # noqa: BLE001
                return False
        return True

    def _skip(self, error):
        reason = " ".join(str(error).split())
        reason = f"{type(error).__name__}: {reason[:100]}{'...' if len(reason) > 100 else ''}"
        print(WARNING.format(reason), file=sys.stderr)


setup(
    ext_modules=[Extension("initcheck._kernels", sources=["initcheck/_kernels.c"], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
