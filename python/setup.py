"""What pyproject.toml cannot say: a wheel that bundles libhmt.so.N (make
wheel) holds native code, so it installs into platlib and is tagged for the
platform, py3-none-<plat> (ctypes: any Python 3, no CPython ABI). Without a
bundled library the package is pure Python (py3-none-any)."""
import glob
import os

from setuptools import setup
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
options = {}
if glob.glob(os.path.join(HERE, "hmt", "libhmt.so.*")):
    try:
        from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
    except ImportError:
        from wheel.bdist_wheel import bdist_wheel  # Debian 12: python3-wheel

    class BinaryDistribution(Distribution):
        def has_ext_modules(self):
            return True

    class platform_wheel(bdist_wheel):
        def get_tag(self):
            return ("py3", "none") + tuple(super().get_tag()[2:])

    options = {"distclass": BinaryDistribution, "cmdclass": {"bdist_wheel": platform_wheel}}

setup(**options)
