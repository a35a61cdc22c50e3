"""Build the one C extension (initcheck._kernels); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "initcheck._kernels",
            sources=["initcheck/_kernels.c"],
            extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros", "-fassociative-math"],
        )
    ]
)
