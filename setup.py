"""Build of the C extension for `pip install .` (metadata: pyproject.toml).

The extension is compiled from python/smallworld/_core.c plus every library
source, so the wheel needs no installed libsmallworld.  No -march flags:
the library picks its SIMD kernels at run time, so the wheel runs on any
CPU of its architecture.
"""
import glob
import os

from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))


def rel(pattern):
    return sorted(os.path.relpath(p, here) for p in glob.glob(os.path.join(here, pattern)))


sources = ["python/smallworld/_core.c"] + rel("src/*.c") + rel("src/simd/*.c")

setup(
    ext_modules=[
        Extension(
            "smallworld._core",
            sources=sources,
            include_dirs=["include", "src"],
            define_macros=[("SW_BUILDING_LIBRARY", None)],
            extra_compile_args=["-std=c11", "-O3", "-fvisibility=hidden"],
            extra_link_args=["-pthread"],
            libraries=["m"],
        )
    ],
)
