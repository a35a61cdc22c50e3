"""Build the one C extension (initcheck._kernels); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "initcheck._kernels",
            sources=["initcheck/_kernels.c"],
            extra_compile_args=[
                "-O3",
                # reassociation lets the power sums vectorize; no -ffast-math, which
                # would assume away the NaN and Inf the kernel must count
                "-fno-math-errno",
                "-fno-trapping-math",
                "-fno-signed-zeros",
                "-fassociative-math",
                # the cell rule must round exactly as grid.py and the torch reducer do
                "-ffp-contract=off",
                # `omp simd` reductions (the extremes) vectorize; no OpenMP runtime
                "-fopenmp-simd",
            ],
        )
    ]
)
